//! The `consentric` binary as a user runs it, on a fresh SQLite data directory.

use serde_json::Value;

use crate::support::{consentric, ok};

#[test]
fn import_ndjson_then_show_the_profile_and_its_graph() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.ndjson");
    std::fs::write(
        &file,
        [
            r#"{"type":"page","messageId":"p1","anonymousId":"a1","name":"Home","timestamp":"2024-01-01T00:00:00Z"}"#,
            r#"{"type":"identify","messageId":"i1","anonymousId":"a1","userId":"ada","traits":{"email":"ada@example.com"},"timestamp":"2024-01-01T00:01:00Z"}"#,
            r#"{"type":"track","messageId":"t1","userId":"ada","event":"Order Completed","properties":{"revenue":12.5},"timestamp":"2024-01-02T00:00:00Z"}"#,
            r#"{"type":"track","userId":"ada"}"#,
            "not json",
            "",
        ]
        .join("\n"),
    )
    .expect("write");
    let data = dir.path().join("data");
    // Rejected lines fail the command (a script must see it), after storing the rest.
    let out = consentric(&data, &["import", "--quiet", file.to_str().expect("path")]);
    assert!(!out.status.success(), "rejected lines must fail the import");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 of 5 lines were rejected"), "{stderr}");
    let summary = String::from_utf8(out.stdout).expect("utf-8");
    assert!(summary.contains("events stored      3"), "{summary}");
    assert!(summary.contains("lines rejected     2"), "{summary}");
    assert!(
        summary.contains("rejected line 4: missing_field (event)"),
        "{summary}"
    );
    assert!(summary.contains("peak RSS"), "{summary}");
    // Importing again stores nothing new.
    let again = consentric(&data, &["import", "--quiet", file.to_str().expect("path")]);
    let again = String::from_utf8(again.stdout).expect("utf-8");
    assert!(again.contains("already stored     3"), "{again}");

    let shown: Value = serde_json::from_str(&ok(consentric(
        &data,
        &["profile", "show", "ada", "--events", "10"],
    )))
    .expect("json");
    assert_eq!(shown["profile"]["counters"]["events"], 3);
    assert_eq!(shown["profile"]["counters"]["revenue"], 12.5);
    assert_eq!(shown["events"].as_array().expect("events").len(), 3);
    let graph: Value = serde_json::from_str(&ok(consentric(
        &data,
        &["profile", "graph", "anonymous_id:a1"],
    )))
    .expect("json");
    assert_eq!(graph["links"][0]["via"], "identify");

    let missing = consentric(&data, &["profile", "show", "nobody"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No profile for nobody"));
}

#[test]
fn keys_are_created_once_and_listed_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = ok(consentric(
        dir.path(),
        &["keys", "create", "--scope", "write", "--label", "web"],
    ));
    let secret = secret.trim();
    assert!(secret.starts_with("csw_"), "{secret}");
    let list = ok(consentric(dir.path(), &["keys", "list"]));
    assert!(list.contains("write") && list.contains("web"), "{list}");
    assert!(!list.contains(secret), "a listing never shows a secret");
    let bad = consentric(dir.path(), &["keys", "create", "--scope", "root"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a scope"));
}

#[test]
fn a_named_configuration_file_that_is_missing_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = consentric(
        dir.path(),
        &["--config", "/nonexistent/consentric.toml", "keys", "list"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/consentric.toml"));
}

/// The header and first `rows` purchases of the shipped CDNOW master, as a file in `dir`.
fn master_head(dir: &std::path::Path, rows: usize) -> std::path::PathBuf {
    let master = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/cdnow/CDNOW_master.txt"
    );
    let head: String = std::fs::read_to_string(master)
        .expect("shipped data")
        .lines()
        .take(rows + 1)
        .collect::<Vec<_>>()
        .join("\n");
    let file = dir.join("head.txt");
    std::fs::write(&file, head).expect("write");
    file
}

#[test]
fn the_cdnow_sample_imports_as_orders() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first 2,000 rows keep the test fast in debug builds.
    let file = master_head(dir.path(), 2000);
    let summary = ok(consentric(
        &dir.path().join("d"),
        &[
            "import",
            "--quiet",
            "--format",
            "cdnow",
            file.to_str().expect("path"),
        ],
    ));
    assert!(summary.contains("events stored      2000"), "{summary}");
    let shown: Value = serde_json::from_str(&ok(consentric(
        &dir.path().join("d"),
        &["profile", "show", "00001"],
    )))
    .expect("json");
    assert_eq!(shown["profile"]["counters"]["orders"], 1);
    assert_eq!(shown["profile"]["counters"]["revenue"], 11.77);
}

#[test]
fn audit_verify_reports_an_intact_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ok(consentric(dir.path(), &["audit", "verify"]));
    assert!(out.contains("audit chain intact: 0 records"), "{out}");
}

#[test]
fn retention_run_reports_what_it_swept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out: Value =
        serde_json::from_str(&ok(consentric(dir.path(), &["retention", "run"]))).expect("json");
    assert_eq!(out["events_deleted"], 0);
    let verify = ok(consentric(dir.path(), &["audit", "verify"]));
    assert!(
        verify.contains("intact: 1 records"),
        "the sweep is audited: {verify}"
    );
}

#[test]
fn audit_verify_prints_a_head_and_checks_it_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(consentric(dir.path(), &["retention", "run"])); // one audited sweep
    let verify = ok(consentric(dir.path(), &["audit", "verify"]));
    let head = verify
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a head is printed")
        .to_owned();
    assert!(head.starts_with("1:"), "{head}");
    ok(consentric(
        dir.path(),
        &["audit", "verify", "--anchor", &head],
    ));

    // An anchor past the end: the log was cut off since it was taken.
    let hash = head.split_once(':').expect("seq:hash").1;
    let out = consentric(
        dir.path(),
        &["audit", "verify", "--anchor", &format!("2:{hash}")],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cut off"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = consentric(dir.path(), &["audit", "verify", "--anchor", "2:nothex"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"));
}

#[test]
fn dsr_erase_prints_a_receipt_that_verify_receipt_accepts_and_a_forgery_it_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.ndjson");
    std::fs::write(
        &file,
        r#"{"type":"identify","messageId":"i1","userId":"ada","traits":{"plan":"pro"},"timestamp":"2024-01-01T00:01:00Z"}"#,
    )
    .expect("write");
    let data = dir.path().join("d");
    ok(consentric(
        &data,
        &["import", "--quiet", file.to_str().expect("path")],
    ));
    assert!(
        data.join("master.key").exists(),
        "master keys made on first run"
    );

    let receipt = ok(consentric(&data, &["dsr", "erase", "ada"]));
    let parsed: Value = serde_json::from_str(&receipt).expect("json receipt");
    let saved = dir.path().join("receipt.json");
    std::fs::write(&saved, &receipt).expect("write");
    let verified = ok(consentric(
        &data,
        &["dsr", "verify-receipt", saved.to_str().expect("path")],
    ));
    assert!(verified.contains("receipt valid"), "{verified}");

    let mut forged = parsed.clone();
    forged["body"] = Value::String(
        parsed["body"]
            .as_str()
            .expect("body")
            .replace("\"events\":1", "\"events\":0"),
    );
    std::fs::write(&saved, forged.to_string()).expect("write");
    let out = consentric(
        &data,
        &["dsr", "verify-receipt", saved.to_str().expect("path")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT valid"));

    // The customer is gone for every command.
    assert!(!consentric(&data, &["profile", "show", "ada"])
        .status
        .success());
}

#[test]
fn keys_rotate_rewraps_every_data_key_and_the_data_stays_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.ndjson");
    std::fs::write(
        &file,
        [
            r#"{"type":"identify","messageId":"i1","userId":"ada","traits":{"plan":"pro"},"timestamp":"2024-01-01T00:01:00Z"}"#,
            r#"{"type":"identify","messageId":"i2","userId":"bob","traits":{"plan":"free"},"timestamp":"2024-01-01T00:02:00Z"}"#,
        ]
        .join("\n"),
    )
    .expect("write");
    let data = dir.path().join("d");
    ok(consentric(
        &data,
        &["import", "--quiet", file.to_str().expect("path")],
    ));
    let kek = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("kek ="))
            .expect("kek line")
            .to_owned()
    };
    let before = std::fs::read_to_string(data.join("master.key")).expect("keys");
    let out = ok(consentric(&data, &["keys", "rotate"]));
    assert!(out.contains("2 data keys re-wrapped"), "{out}");
    let after = std::fs::read_to_string(data.join("master.key")).expect("keys");
    assert_ne!(kek(&before), kek(&after), "a new key-encryption key");
    assert!(!after.contains("kek_previous"), "the old one is gone");
    let shown: Value =
        serde_json::from_str(&ok(consentric(&data, &["profile", "show", "ada"]))).expect("json");
    assert_eq!(shown["profile"]["traits"][0]["value"], "pro");
}

#[test]
fn lifecycle_fit_report_and_show_on_imported_cdnow_customers() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first 3,000 rows (about a thousand customers) keep the test fast in debug builds.
    let file = master_head(dir.path(), 3000);
    let data = dir.path().join("d");
    let path = file.to_str().expect("path");
    // An unknown purpose is refused before anything is stored.
    let refused = consentric(
        &data,
        &[
            "import",
            "--quiet",
            "--format",
            "cdnow",
            "--consent",
            "telepathy",
            path,
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("telepathy"));
    ok(consentric(
        &data,
        &[
            "import",
            "--quiet",
            "--format",
            "cdnow",
            "--consent",
            "analytics,personalization",
            path,
        ],
    ));
    let fitted = ok(consentric(&data, &["lifecycle", "fit"]));
    assert!(fitted.contains("bg_nbd"), "{fitted}");
    assert!(fitted.contains("0 left out"), "{fitted}");
    let report: Value =
        serde_json::from_str(&ok(consentric(&data, &["lifecycle", "report", "--json"])))
            .expect("json");
    let placed: u64 = report["funnel"]
        .as_object()
        .expect("funnel")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(
        Some(placed),
        report["customers"].as_u64(),
        "every customer has a stage"
    );
    assert_eq!(report["cohorts"][0]["cohort"], "1997-01");
    let shown: Value =
        serde_json::from_str(&ok(consentric(&data, &["lifecycle", "show", "00001"])))
            .expect("json");
    assert!(shown["scores"]["clv"].as_f64().is_some(), "{shown}");
    assert!(shown["stage"].is_string(), "{shown}");
    let text = ok(consentric(&data, &["lifecycle", "report"]));
    assert!(text.contains("cohort retention"), "{text}");
}

/// A small MovieLens-shaped file: 30 users in two tastes, ratings one second apart.
fn ratings(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    let mut t = 880_000_000u64;
    for u in 0..30u32 {
        let items: &[u32] = if u < 18 { &[1, 2, 3, 4] } else { &[5, 6, 7] };
        for i in items.iter().filter(|i| (**i + u) % 5 != 0) {
            t += 1;
            text.push_str(&format!("{u}\t{i}\t4\t{t}\n"));
        }
    }
    let path = dir.join("small.inter");
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn recommend_evaluate_scores_every_model_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = ratings(dir.path());
    let out = ok(consentric(
        dir.path(),
        &[
            "recommend",
            "evaluate",
            "--data",
            data.to_str().expect("path"),
            "--factors",
            "4",
            "--seeds",
            "2",
            "--json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["users"], 30);
    let models: Vec<&str> = v["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| m["model"].as_str().expect("name"))
        .collect();
    assert_eq!(models, ["popularity", "item-kNN", "ALS (consentric)"]);
    for m in v["models"].as_array().expect("models") {
        let ndcg = m["metrics"]["ndcg"].as_f64().expect("ndcg");
        assert!((0.0..=1.0).contains(&ndcg), "{m}");
    }
    // Taste is learnable here: ALS finds held-out items better than chance.
    assert!(
        v["models"][2]["metrics"]["recall"]
            .as_f64()
            .expect("recall")
            > 0.3,
        "{v}"
    );
    assert_eq!(
        v["models"][2]["ndcg_per_seed"].as_array().map(Vec::len),
        Some(2)
    );
    let bad = dir.path().join("bad.inter");
    std::fs::write(&bad, "1\t2\tthree\t4\n").expect("write");
    let out = consentric(
        dir.path(),
        &[
            "recommend",
            "evaluate",
            "--data",
            bad.to_str().expect("path"),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: bad rating"));
}

#[test]
fn movielens_imports_then_recommenders_train_and_decide_explains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = ratings(dir.path());
    ok(consentric(
        dir.path(),
        &[
            "import",
            "--format",
            "movielens",
            "--consent",
            "personalization",
            data.to_str().expect("path"),
        ],
    ));
    let out = ok(consentric(dir.path(), &["recommend", "train"]));
    assert!(out.contains("trained on 30 customers"), "{out}");
    // User 1 rated films 1–3 of their taste's four: the fourth comes first.
    let out = ok(consentric(
        dir.path(),
        &["decide", "user_id:ml-1", "--limit", "2"],
    ));
    let d: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(d["explanation"]["personal"], true);
    assert_eq!(d["items"][0]["item"], "4", "{d}");
    assert_eq!(d["items"].as_array().map(Vec::len), Some(2));
    let out = ok(consentric(
        dir.path(),
        &[
            "segments",
            "define",
            "raters",
            r#"{"field": "event.Product Reviewed", "op": "gte", "value": 3}"#,
        ],
    ));
    assert!(out.contains("\"raters\""));
    let out = ok(consentric(dir.path(), &["segments", "show", "raters"]));
    let p: Value = serde_json::from_str(&out).expect("json");
    assert!(p["size"].as_u64().is_some_and(|n| n > 0 && n < 30), "{p}");
}
