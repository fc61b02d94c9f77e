//! Two real `consentric serve` processes on loopback run a whole clean-room session: the host
//! invites over its API, the guest joins and runs it over its own, and the host learns the
//! cardinality and the sum of the guest's revenue over the customers in common.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::support::command;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary on `data`, logging JSON at `info` (how the test learns the port it serves on).
fn logged(data: &std::path::Path) -> Command {
    let mut c = command(data);
    c.env("CONSENTRIC_LOG_FORMAT", "json")
        .env("CONSENTRIC_LOG", "info");
    c
}

/// Customers `range` with e-mails and one order of `i` dollars each, all consenting to
/// partner matching; an admin key; a server on an ephemeral port.
fn start(dir: &std::path::Path, range: std::ops::Range<usize>) -> (Server, String) {
    let data = dir.join("data");
    let file = dir.join("events.ndjson");
    let lines: Vec<String> = range
        .flat_map(|i| {
            [
                json!({"type": "identify", "userId": format!("u{i}"), "messageId": format!("i{i}"),
                    "timestamp": "2024-01-01T00:00:00Z", "traits": {"email": format!("Person{i}@Example.net")},
                    "context": {"consent": {"categoryPreferences": {"partner_matching": true}}}}),
                json!({"type": "track", "event": "Order Completed", "userId": format!("u{i}"),
                    "messageId": format!("o{i}"), "timestamp": "2024-01-02T00:00:00Z",
                    "properties": {"revenue": i}}),
            ]
        })
        .map(|v| v.to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let out = logged(&data)
        .args(["import", "--quiet"])
        .arg(&file)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = logged(&data)
        .args(["keys", "create", "--scope", "admin"])
        .output()
        .expect("keys");
    assert!(out.status.success());
    let admin = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    let mut child = logged(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server said where it listens")
            .expect("line");
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "listening" {
            break v["fields"]["addr"].as_str().expect("addr").to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (
        Server {
            child,
            base: format!("http://{addr}"),
        },
        admin,
    )
}

#[test]
fn two_servers_run_a_session_over_http() {
    let (host_dir, guest_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (host, host_admin) = start(host_dir.path(), 0..60);
    let (guest, guest_admin) = start(guest_dir.path(), 40..100);
    let client = reqwest::blocking::Client::new();

    let inv: Value = client
        .post(format!("{}/v1/cleanroom/sessions", host.base))
        .bearer_auth(&host_admin)
        .body(json!({"partner": "guest co", "output": "matches", "sum": true}).to_string())
        .send()
        .expect("invite")
        .json()
        .expect("json");
    let session = inv["session"].as_str().expect("session").to_owned();
    let token = inv["token"].as_str().expect("token").to_owned();

    // A wrong token is refused before anything is revealed.
    let r = client
        .post(format!(
            "{}/v1/cleanroom/sessions/{session}/blinded",
            host.base
        ))
        .bearer_auth("0".repeat(64))
        .send()
        .expect("request");
    assert_eq!(r.status(), 401);

    let joined = client
        .post(format!("{}/v1/cleanroom/joined", guest.base))
        .bearer_auth(&guest_admin)
        .body(
            json!({"host_url": host.base, "session": session, "token": token, "partner": "host co",
            "output": "matches", "sum": true})
            .to_string(),
        )
        .send()
        .expect("join");
    assert_eq!(joined.status(), 200);
    let ran = client
        .post(format!("{}/v1/cleanroom/joined/{session}/run", guest.base))
        .bearer_auth(&guest_admin)
        .send()
        .expect("run");
    assert_eq!(ran.status(), 200, "{}", ran.text().unwrap_or_default());
    let guest_view: Value = ran.json().expect("json");
    assert_eq!(guest_view["state"], "done");
    assert_eq!(guest_view["result"]["cardinality"], 20);
    assert!(
        guest_view["result"].get("matched").is_none(),
        "the guest learns no matches"
    );

    let host_view: Value = client
        .get(format!("{}/v1/cleanroom/sessions/{session}", host.base))
        .bearer_auth(&host_admin)
        .send()
        .expect("status")
        .json()
        .expect("json");
    assert_eq!(host_view["state"], "done");
    assert_eq!(host_view["result"]["cardinality"], 20);
    // Customers 40..60 in common; the guest's revenue over them, in cents.
    let want: usize = (40..60).map(|i| i * 100).sum();
    assert_eq!(host_view["result"]["sum"], want.to_string());
    assert_eq!(
        host_view["result"]["matched"].as_array().map(Vec::len),
        Some(20)
    );

    // A replay after the end is refused.
    let r = client
        .post(format!(
            "{}/v1/cleanroom/sessions/{session}/blinded",
            host.base
        ))
        .bearer_auth(&token)
        .send()
        .expect("request");
    assert_eq!(r.status(), 409);
}
