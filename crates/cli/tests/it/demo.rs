//! The demo lives in one time: started as a newcomer starts it, every command it prints,
//! run against the demo it serves, answers something non-empty and consistent with the others
//! (events that retention kept, the stage a decision used, noisy counts around the exact
//! funnel, segment proposals measured in days since recent purchases).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The served demo, stopped when the test ends however it ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `curl` line of the demo's guide, as a request.
#[derive(Debug, Default)]
struct Curl {
    /// The comment above it.
    label: String,
    method: Option<String>,
    url: String,
    headers: Vec<(String, String)>,
    basic_user: Option<String>,
    body: Option<String>,
    output: Option<String>,
    /// The jq filter it pipes to, if any (`.funnel, .models`).
    jq: Option<String>,
}

/// Shell words with single quotes, as the guide writes them.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in s.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn parse_curl(label: &str, line: &str) -> Curl {
    let (command, jq) = match line.split_once(" | jq") {
        Some((c, f)) => (c, Some(f.trim().trim_matches('\'').to_owned())),
        None => (line, None),
    };
    let mut curl = Curl {
        label: label.to_owned(),
        jq,
        ..Curl::default()
    };
    let w = words(command);
    assert_eq!(w.first().map(String::as_str), Some("curl"), "{line}");
    let mut it = w.into_iter().skip(1);
    while let Some(word) = it.next() {
        match word.as_str() {
            "-s" => {}
            "-X" => curl.method = it.next(),
            "-H" => {
                let h = it.next().expect("a header");
                let (k, v) = h.split_once(": ").expect("name: value");
                curl.headers.push((k.to_owned(), v.to_owned()));
            }
            "-u" => curl.basic_user = it.next().map(|u| u.trim_end_matches(':').to_owned()),
            "-d" => curl.body = it.next(),
            "-o" => curl.output = it.next(),
            url if url.starts_with("http://") => curl.url = url.to_owned(),
            other => panic!("an option the test does not know: {other} in {line}"),
        }
    }
    curl
}

/// The guide's requests, in order: comment lines label the commands below them; a line
/// ending in `\` continues on the next; `a; b` is two commands.
fn guide(lines: &[String]) -> Vec<Curl> {
    let mut out = Vec::new();
    let mut label = String::new();
    let mut pending = String::new();
    for line in lines {
        let t = line.trim();
        if let Some(comment) = t.strip_prefix("# ") {
            label = comment.to_owned();
            continue;
        }
        if !t.starts_with("curl ") && pending.is_empty() {
            continue;
        }
        pending.push_str(t.trim_end_matches('\\'));
        pending.push(' ');
        if t.ends_with('\\') {
            continue;
        }
        for command in std::mem::take(&mut pending).split("; ") {
            out.push(parse_curl(&label, command.trim()));
        }
    }
    out
}

/// Runs one request as curl would: `-d` without `-X` is a POST, and without a content type
/// it is sent as a form, which the server must still read as JSON.
fn run(client: &reqwest::blocking::Client, c: &Curl) -> (u16, Vec<u8>) {
    let method = c
        .method
        .clone()
        .unwrap_or_else(|| if c.body.is_some() { "POST" } else { "GET" }.into());
    let mut req = client.request(method.parse().expect("method"), &c.url);
    for (k, v) in &c.headers {
        req = req.header(k, v);
    }
    if let Some(user) = &c.basic_user {
        req = req.basic_auth(user, Some(""));
    }
    if let Some(body) = &c.body {
        if !c
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req = req.header("Content-Type", "application/x-www-form-urlencoded");
        }
        req = req.body(body.clone());
    }
    let r = req.send().unwrap_or_else(|e| panic!("{}: {e}", c.url));
    let status = r.status().as_u16();
    (status, r.bytes().expect("body").to_vec())
}

/// The top-level fields a jq filter such as `.funnel, .models` or `.purposes[].id` reads.
fn jq_fields(filter: &str) -> Vec<String> {
    filter
        .split(',')
        .filter_map(|f| {
            let f = f.trim().strip_prefix('.')?;
            let name: String = f
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A small MovieLens file where the demo looks for one (the real one comes from the
/// network, which tests do not use): 40 users rating 15 of 60 films in its months.
fn movielens(dir: &std::path::Path) {
    let path = dir.join("target/movielens/ml-100k.inter");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let mut f = std::fs::File::create(path).expect("file");
    writeln!(
        f,
        "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    )
    .expect("write");
    for u in 1..=40u32 {
        for k in 0..15u32 {
            let item = (u * 7 + k * 3) % 60 + 1;
            let ts = 874_724_710 + u64::from(u * 15 + k) * 10_000;
            writeln!(f, "{u}\t{item}\t{}\t{ts}", (u + k) % 5 + 1).expect("write");
        }
    }
}

#[test]
fn every_command_the_demo_prints_answers_consistently() {
    let dir = tempfile::tempdir().expect("dir");
    movielens(dir.path());
    let mut command = Command::new(env!("CARGO_BIN_EXE_consentric"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CONSENTRIC_")) {
        command.env_remove(k);
    }
    let child = command
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .current_dir(dir.path())
        .env("CONSENTRIC_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("consentric demo");
    let mut demo = Demo(child);
    // A demo that never gets to serving fails the test instead of hanging it.
    let pid = demo.0.id();
    let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = started.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(900));
        if !watchdog.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let stdout = demo.0.stdout.take().expect("stdout");
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let done = line.starts_with("Stop with Ctrl-C.");
        printed.push(line);
        if done {
            break;
        }
    }
    started.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        printed.iter().any(|l| l.starts_with("Stop with Ctrl-C.")),
        "the demo stopped before serving:\n{}",
        printed.join("\n")
    );
    let requests = guide(&printed);
    assert!(
        requests.len() >= 20,
        "{} commands:\n{}",
        requests.len(),
        printed.join("\n")
    );

    // Some answers (proposals, exports) take seconds in a debug build on a slow machine.
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .expect("client");
    // The console's log-ins it printed work, each role landing on its first page.
    let console = printed
        .iter()
        .find_map(|l| l.strip_prefix("The console: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the console's address")
        .to_owned();
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (role, home) in [
        ("admin", "/console"),
        ("dpo", "/console"),
        ("marketer", "/console"),
        ("analyst", "/console/analytics"),
    ] {
        let password = printed
            .iter()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(role)?
                    .trim()
                    .strip_prefix("password ")
            })
            .unwrap_or_else(|| panic!("no password for {role}"));
        let r = no_redirects
            .post(format!("{console}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name={role}&password={password}"))
            .send()
            .expect("log in");
        assert_eq!(r.status(), 303, "{role}");
        assert_eq!(r.headers()["location"], home, "{role}");
    }
    let mut answers: Vec<(Curl, Value)> = Vec::new();
    for c in requests {
        let (status, body) = run(&client, &c);
        assert!(
            (200..300).contains(&status),
            "{} ({}) answered {status}: {}",
            c.url,
            c.label,
            String::from_utf8_lossy(&body)
        );
        assert!(
            !body.is_empty() || c.url.ends_with("/v1/identify"),
            "{}: empty",
            c.url
        );
        if c.output.is_some() {
            assert!(body.starts_with(b"PK"), "{} is a ZIP", c.url);
            continue;
        }
        let Ok(json) = serde_json::from_slice::<Value>(&body) else {
            assert!(c.url.ends_with("/metrics"), "{} answered no JSON", c.url);
            continue;
        };
        match c.jq.as_deref() {
            Some(f) if !f.is_empty() => {
                for field in jq_fields(f) {
                    assert!(
                        !is_empty(&json[&field]),
                        "{}: `.{field}` is empty: {json}",
                        c.url
                    );
                }
            }
            _ => assert!(!is_empty(&json), "{}: {json}", c.url),
        }
        answers.push((c, json));
    }
    let find = |method: &str, path: &str| -> &Value {
        answers
            .iter()
            .find(|(c, _)| {
                c.method
                    .as_deref()
                    .unwrap_or(if c.body.is_some() { "POST" } else { "GET" })
                    == method
                    && c.url.contains(path)
            })
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("the guide has no {method} {path}"))
    };

    // Retention kept what was imported: the data ends today, within every purpose's retention.
    let events = find("GET", "/v1/profiles/00001/events")["events"]
        .as_array()
        .expect("events")
        .clone();
    assert!(!events.is_empty());

    // One stage for customer 00001, wherever it is read.
    let stage = find("GET", "/v1/customers/00001/lifecycle")["stage"]
        .as_str()
        .expect("a stage")
        .to_owned();
    let summary = find("GET", "/v1/lifecycle/summary");
    let funnel: BTreeMap<String, i64> = summary["funnel"]
        .as_object()
        .expect("funnel")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().expect("count")))
        .collect();
    assert!(
        funnel.get(&stage).is_some_and(|n| *n > 0),
        "{stage} in {funnel:?}"
    );
    assert!(funnel.get("churned").is_some_and(|n| *n > 0), "{funnel:?}");
    let decided = find("POST", "/v1/decisions/00001");
    assert_eq!(decided["stage"], stage.as_str(), "{decided}");
    assert_eq!(decided["explanation"]["personal"], true, "{decided}");
    assert_ne!(
        decided["action"]["channel"], "email",
        "no e-mail consent: {decided}"
    );
    // The guide's next line reads it back from their decision log.
    let logged = find("GET", "/v1/profiles/00001/decisions");
    assert_eq!(
        logged["decisions"][0]["decision"]["action"], decided["action"]["name"],
        "{logged}"
    );

    // MovieLens user 1 gets items of their own.
    let ml = find("GET", "/v1/decisions/user_id:ml-1");
    assert_eq!(ml["explanation"]["personal"], true, "{ml}");
    assert!(!is_empty(&ml["items"]), "{ml}");

    // Segments and proposals measure recent behaviour.
    assert!(
        !is_empty(&find("GET", "/v1/segments/loyal?")["members"]),
        "{}",
        find("GET", "/v1/segments/loyal?")
    );
    for cluster in find("GET", "/v1/segments/proposals")["clusters"]
        .as_array()
        .expect("clusters")
    {
        let days = cluster["centre"]["days_since_last_seen"]
            .as_f64()
            .expect("days");
        assert!(
            (0.0..600.0).contains(&days),
            "data that ends today: {cluster}"
        );
    }

    // The noisy stage counts sit around the exact ones.
    let (histogram, interval) = answers
        .iter()
        .find(|(c, _)| c.body.as_deref().is_some_and(|b| b.contains("histogram")))
        .map(|(_, v)| {
            (
                v["bins"].clone(),
                v["interval95"].as_f64().expect("interval"),
            )
        })
        .expect("the guide's histogram");
    let bins = histogram.as_object().expect("bins");
    for stage in funnel.keys() {
        assert!(
            bins.contains_key(stage),
            "the histogram has every stage: {stage} in {bins:?}"
        );
    }
    for (bin, noisy) in bins {
        let exact = funnel.get(bin).copied().unwrap_or(0) as f64;
        let noisy = noisy.as_f64().expect("count");
        assert!(
            (noisy - exact).abs() <= 4.0 * interval,
            "{bin}: {noisy} against {exact} (95% within {interval})"
        );
    }
    let quantile = answers
        .iter()
        .find(|(c, _)| c.body.as_deref().is_some_and(|b| b.contains("quantile")))
        .map(|(_, v)| v["value"].as_f64().expect("value"))
        .expect("the guide's quantile");
    assert!((0.0..=500.0).contains(&quantile));
    drop(demo);
}
