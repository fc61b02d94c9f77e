//! The vault's promises: personal data never rests in the clear, and erasure is complete,
//! signed and final.

use std::path::Path;

use consentric_engine::{Engine, EngineError};
use consentric_testkit::{hits_in_database_files, parity_test, TestDb};
use serde_json::{json, Value};

use crate::support::{by, engine, events};

const EMAIL: &str = "quintessa.marplethorpe@zebrafish.example";
const NAME: &str = "Quintessa Marplethorpe";
const PHONE: &str = "+44 7700 900123";
const STREET: &str = "17 Zebrafish Lane";

/// Grants every declared purpose, so that minimisation keeps every personal field.
fn consent_to_everything(engine: &Engine, who: &str) {
    let all: Vec<(String, String)> = engine
        .purposes()
        .into_iter()
        .map(|p| (p.id, "granted".to_owned()))
        .collect();
    engine
        .set_consent(&by(who), &all, "key:test", b"{}")
        .expect("consent");
}

/// A customer with personal data in traits and in event properties. Message ids do not
/// repeat the user id: they are stored in the clear, as the idempotency key.
fn ingest_customer(engine: &Engine, user: &str, events_n: usize) {
    let tag = format!("{:x}", user.len() * 7919 + usize::from(user.as_bytes()[0]));
    engine
        .ingest(events(
            json!([{"type":"identify","messageId":format!("{tag}-id0"),"userId":user,
            "timestamp":"2024-05-01T00:00:00Z","traits":{"email":"first@example.com"}}]),
        ))
        .expect("first");
    consent_to_everything(engine, user);
    let mut batch = Vec::new();
    for i in 0..events_n {
        let ts = format!("2024-05-02T00:{:02}:{:02}Z", (i / 60) % 60, i % 60);
        batch.push(if i % 10 == 0 {
            json!({"type":"identify","messageId":format!("{tag}-{i}"),"userId":user,"timestamp":ts,
                "traits":{"email":EMAIL,"name":NAME,"phone":PHONE,"address":STREET}})
        } else {
            json!({"type":"track","messageId":format!("{tag}-{i}"),"userId":user,"timestamp":ts,
                "event":"Order Completed","properties":{"order_id":format!("o{i}"),"revenue":12.5,
                "email":EMAIL,"name":NAME,"phone":PHONE,"address":STREET}})
        });
        if batch.len() == 100 {
            engine
                .ingest(events(Value::Array(std::mem::take(&mut batch))))
                .expect("ingest");
        }
    }
    if !batch.is_empty() {
        engine.ingest(events(Value::Array(batch))).expect("ingest");
    }
}

/// Counts occurrences of `needle` in every file of the SQLite store (database, WAL, shm).

#[test]
fn personal_data_never_rests_in_the_clear_in_sqlite() {
    let db = TestDb::sqlite();
    let engine = engine(&db);
    // The customer's user id is their e-mail address, as many sites send it.
    ingest_customer(&engine, EMAIL, 1000);
    engine
        .ingest(events(
            json!([{"type":"page","messageId":"tie-1","userId":EMAIL,
            "anonymousId":"anon-Marplethorpe-device","name":"Home"}]),
        ))
        .expect("an anonymous id tied to it");
    // It was kept (so the scan below is not vacuous) and reads back through the vault.
    let who = format!("user_id:{EMAIL}");
    let profile = engine.profile(&by(&who), "test").expect("profile");
    assert!(profile.identities.iter().any(|i| i.value == EMAIL));
    let graph = engine.identity_graph(&by(&who), "test").expect("graph");
    assert!(graph
        .links
        .iter()
        .any(|l| l.to.contains("Marplethorpe") || l.from.contains("Marplethorpe")));
    let email = profile
        .traits
        .iter()
        .find(|t| t.name == "email")
        .expect("email");
    assert_eq!(email.value, json!(EMAIL));
    let stored = engine.events(&by(&who), 20, "test").expect("events");
    let identify = stored
        .iter()
        .find(|e| e.event["type"] == "identify")
        .expect("an identify among the latest");
    assert_eq!(identify.event["traits"]["phone"], json!(PHONE));
    assert_eq!(identify.event["traits"]["address"], json!(STREET));

    let dir = db.data_dir().expect("sqlite");
    for phase in ["before checkpoint", "after checkpoint"] {
        for needle in [EMAIL, NAME, PHONE, STREET, "Zebrafish", "Marplethorpe"] {
            assert_eq!(
                hits_in_database_files(dir, needle.as_bytes()),
                0,
                "{needle} found {phase}"
            );
        }
        engine.checkpoint().expect("checkpoint");
    }
}

/// Counts occurrences of each needle in every file under `dir` (recursively).
fn hits_under(dir: &Path, needles: &[&str]) -> Vec<usize> {
    let mut counts = vec![0; needles.len()];
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                for (n, needle) in needles.iter().enumerate() {
                    counts[n] += bytes
                        .windows(needle.len())
                        .filter(|w| *w == needle.as_bytes())
                        .count();
                }
            }
        }
    }
    counts
}

#[test]
fn personal_data_never_rests_in_the_clear_in_postgres() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let engine = engine(&db);
    ingest_customer(&engine, EMAIL, 1000);
    let who = format!("user_id:{EMAIL}");
    let profile = engine.profile(&by(&who), "test").expect("profile");
    assert!(
        profile.traits.iter().any(|t| t.value == json!(PHONE)),
        "kept"
    );
    let url = db.database_url().expect("postgres");
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    client.batch_execute("CHECKPOINT").expect("checkpoint");
    let dir: String = client
        .query_one("SHOW data_directory", &[])
        .expect("data directory")
        .get(0);
    let oid: u32 = client
        .query_one(
            "SELECT oid FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .expect("oid")
        .get(0);
    // This database's table and index files, and the cluster's write-ahead log.
    let needles = [EMAIL, NAME, PHONE, STREET];
    let mut found = hits_under(
        &Path::new(&dir).join("base").join(oid.to_string()),
        &needles,
    );
    for (f, w) in found
        .iter_mut()
        .zip(hits_under(&Path::new(&dir).join("pg_wal"), &needles))
    {
        *f += w;
    }
    assert_eq!(found, vec![0; needles.len()], "{needles:?} found in {dir}");
}

parity_test!(erasure_is_complete_signed_and_final, |db| {
    let engine = engine(&db);
    ingest_customer(&engine, "gone", 50);
    ingest_customer(&engine, "stays", 50);
    engine
        .ingest(events(json!([{"type":"track","messageId":"anon-1","userId":"gone","anonymousId":"device-9","event":"Viewed"}])))
        .expect("tie an anonymous id");
    let other_before = (
        engine.profile(&by("stays"), "test").expect("p"),
        engine.events(&by("stays"), 1000, "test").expect("e"),
    );

    // Access: everything held about them, in one document.
    let mut doc = Vec::new();
    let written = engine
        .export(&by("gone"), "key:test", &mut doc)
        .expect("export");
    let doc: Value = serde_json::from_slice(&doc).expect("one JSON document");
    assert_eq!(written, 52);
    assert_eq!(doc["events"].as_array().expect("events").len(), 52);
    assert_eq!(doc["profile"]["counters"]["events"], 52);
    assert!(doc["identity_graph"]["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .any(|i| i["value"] == "device-9"));
    assert!(!doc["consent_history"]
        .as_array()
        .expect("history")
        .is_empty());
    let actions: Vec<&str> = doc["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"consent.recorded") && actions.contains(&"profile.read"),
        "{actions:?}"
    );

    let receipt = engine.erase(&by("gone"), "key:test").expect("erase");
    let body = receipt
        .verify(&engine.receipt_public_key().expect("key"))
        .expect("the receipt verifies");
    assert_eq!(body.erased.events, 52);
    assert_eq!(body.erased.identities, 2);
    assert!(
        body.erased.traits >= 4 && body.erased.data_keys == 1,
        "{body:?}"
    );
    assert!(!receipt.body.contains("gone"), "the receipt names no one");

    // Nothing is found by any identity or the profile id; nothing of it can be exported.
    for who in ["gone", "user_id:gone", "anonymous_id:device-9"] {
        assert!(
            matches!(
                engine.profile(&by(who), "test"),
                Err(EngineError::NotFound(_))
            ),
            "{who}"
        );
        assert!(matches!(
            engine.events(&by(who), 10, "test"),
            Err(EngineError::NotFound(_))
        ));
    }
    // The other customer is untouched.
    assert_eq!(
        (
            engine.profile(&by("stays"), "test").expect("p"),
            engine.events(&by("stays"), 1000, "test").expect("e"),
        ),
        other_before
    );
    // Late events for an erased identity are dropped, and bring nobody back.
    let late = engine
        .ingest(events(json!([
            {"type":"track","messageId":"late-1","userId":"gone","event":"Viewed"},
            {"type":"page","messageId":"late-2","anonymousId":"device-9","name":"Home"}
        ])))
        .expect("late");
    assert_eq!((late.accepted, late.erased), (0, 2));
    assert!(engine.find_profile(&by("gone")).is_err());

    // Asking again erases nothing more and returns the same receipt.
    assert_eq!(
        engine.erase(&by("gone"), "key:test").expect("again"),
        receipt
    );
    assert_eq!(
        engine.erase(&by("device-9"), "key:test").expect("again"),
        receipt
    );
    assert!(matches!(
        engine.erase(&by("never-seen"), "key:test"),
        Err(EngineError::NotFound(_))
    ));

    // An altered receipt, or one checked against another key, does not verify.
    let mut forged = receipt.clone();
    forged.body = forged.body.replace("\"events\":52", "\"events\":5");
    assert!(forged
        .verify(&engine.receipt_public_key().expect("key"))
        .is_err());
    assert!(receipt.verify(&"ab".repeat(32)).is_err());
    // The erasure is in the audit chain.
    assert_eq!(engine.verify_audit().expect("verify").first_break, None);
});

#[test]
fn an_erased_customers_wrapped_key_is_gone_from_every_file() {
    let db = TestDb::sqlite();
    let engine = engine(&db);
    ingest_customer(&engine, "gone", 20);
    let dir = db.data_dir().expect("sqlite").to_owned();
    let wrapped: String = rusqlite::Connection::open(dir.join("consentric.db"))
        .expect("open")
        .query_row(
            // The only customer, so the only key.
            "SELECT wrapped FROM customer_keys",
            [],
            |r| r.get(0),
        )
        .expect("a wrapped key");
    engine.checkpoint().expect("checkpoint");
    assert!(
        hits_in_database_files(&dir, wrapped.as_bytes()) > 0,
        "the scan finds the key while it exists"
    );
    engine.erase(&by("gone"), "key:test").expect("erase");
    assert_eq!(
        hits_in_database_files(&dir, wrapped.as_bytes()),
        0,
        "no copy of the wrapped key survives"
    );
}

/// A failure injected at each step of an erasure (a trigger that refuses one table's delete)
/// leaves the customer whole — rows and key, readable — and a retry completes it.
#[test]
fn an_interrupted_erasure_either_never_started_or_completes_on_retry() {
    let db = TestDb::sqlite();
    let engine = engine(&db);
    ingest_customer(&engine, "c", 30);
    engine
        .ingest(events(json!([{"type":"track","messageId":"tie","userId":"c","anonymousId":"d","event":"Viewed"}])))
        .expect("an identity-graph edge");
    let before = engine.profile(&by("c"), "test").expect("profile");
    for table in [
        "customer_keys",
        "identity_links",
        "events",
        "profile_traits",
        "identities",
        "consent_ledger",
        "profiles",
        "erasure_tombstones",
        "erasure_receipts",
    ] {
        let event = if table.starts_with("erasure_") {
            "INSERT"
        } else {
            "DELETE"
        };
        db.execute_raw(&format!(
            "CREATE TRIGGER fail_{table} BEFORE {event} ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ));
        assert!(engine.erase(&by("c"), "key:test").is_err(), "{table}");
        let after = engine.profile(&by("c"), "test").expect("still whole");
        assert_eq!(
            after.traits, before.traits,
            "readable after a failure at {table}"
        );
        assert_eq!(
            engine.events(&by("c"), 1000, "test").expect("events").len(),
            32
        );
        db.execute_raw(&format!("DROP TRIGGER fail_{table};"));
    }
    let receipt = engine
        .erase(&by("c"), "key:test")
        .expect("the retry completes");
    assert_eq!(
        receipt
            .verify(&engine.receipt_public_key().expect("key"))
            .expect("valid")
            .erased
            .events,
        32
    );
}

parity_test!(the_zip_export_holds_the_same_as_csv_files, |db| {
    let engine = engine(&db);
    ingest_customer(&engine, "zipped", 25);
    let mut bytes = Vec::new();
    let written = engine
        .export_zip(&by("zipped"), "key:test", &mut bytes)
        .expect("export");
    assert_eq!(written, 26);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut names: Vec<String> = archive
        .file_names()
        .map(|n| n.expect("a file name").into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "audit.csv",
            "consent.csv",
            "decisions.csv",
            "disclosures.csv",
            "events.csv",
            "identities.csv",
            "identity_links.csv",
            "profile.csv",
            "recipients.csv",
            "traits.csv"
        ]
    );
    let mut read = |name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name(name).expect(name), &mut text)
            .expect("utf-8");
        text
    };
    let events = read("events.csv");
    assert_eq!(
        events.lines().count(),
        27,
        "a header and one line per event"
    );
    assert!(events.starts_with("\"seq\",\"message_id\""));
    let traits = read("traits.csv");
    assert!(
        traits.contains(&format!("\"\"\"{EMAIL}\"\"\"")),
        "JSON values, quotes doubled"
    );
    assert!(read("identities.csv").contains("\"user_id\",\"zipped\""));
});
