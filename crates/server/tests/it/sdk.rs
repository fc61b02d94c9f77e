//! What analytics.js fetches besides ingest (its library, settings and metrics) and CORS on
//! every answer browsers read, over real HTTP.

use std::io::Read;

use consentric_engine::{ServerSettings, WebOrigin};
use consentric_testkit::TestDb;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::{spawn_app, spawn_app_full, TestApp};

/// The pinned checksum of `file` (inflated), from the assets' `SHA256SUMS`.
fn pinned(file: &str) -> String {
    let sums = include_str!("../../assets/analytics-next/SHA256SUMS");
    sums.lines()
        .find_map(|l| {
            let (sum, name) = l.split_once("  ")?;
            (name == file).then(|| sum.to_owned())
        })
        .unwrap_or_else(|| panic!("{file} is not in SHA256SUMS"))
}

fn get(app: &TestApp, path: &str, accept_encoding: &str) -> reqwest::blocking::Response {
    app.client
        .get(format!("{}{path}", app.base))
        .header("accept-encoding", accept_encoding)
        .send()
        .expect("get")
}

fn error_code(r: reqwest::blocking::Response) -> String {
    let body: Value = r.json().expect("json error");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_standard_snippet_s_library_is_segment_s_pinned_file() {
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let path = format!("/analytics.js/v1/{}/analytics.min.js", app.browser);
    let gz = get(&app, &path, "gzip, deflate, br");
    assert_eq!(gz.status(), 200);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["access-control-allow-origin"], "*");
    assert!(gz.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/javascript"));
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&gz.bytes().expect("body")[..])
        .read_to_end(&mut inflated)
        .expect("gzip");
    assert_eq!(
        hex::encode(Sha256::digest(&inflated)),
        pinned("standalone.js")
    );
    // A client that takes no gzip (or refuses it by name) gets the same file inflated.
    let refused = get(&app, &path, "gzip;q=0, *");
    assert!(refused.headers().get("content-encoding").is_none());
    let plain = get(&app, &path, "identity");
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(
        hex::encode(Sha256::digest(plain.bytes().expect("body"))),
        pinned("standalone.js")
    );
    let part = "schemaFilter.bundle.a6a77355d52c20e3a83d.js";
    let r = get(&app, &format!("/analytics-next/bundles/{part}"), "identity");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .contains("immutable"));
    assert_eq!(
        hex::encode(Sha256::digest(r.bytes().expect("body"))),
        pinned(part)
    );
    let r = get(
        &app,
        "/analytics-next/bundles/../../etc/passwd.js",
        "identity",
    );
    assert_eq!(r.status(), 404);
    let r = get(&app, "/analytics-next/bundles/standalone.js", "identity");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(error_code(r), "not_found");
}

#[test]
fn settings_point_analytics_js_back_here_for_browser_keys_only() {
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let r = get(
        &app,
        &format!("/v1/projects/{}/settings", app.browser),
        "identity",
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .starts_with("private"),
        "an address taken from the request is kept by no shared cache"
    );
    let s: Value = r.json().expect("json");
    let io = &s["integrations"]["Segment.io"];
    assert_eq!(io["apiKey"], app.browser.as_str());
    let host = app.base.trim_start_matches("http://");
    assert_eq!(io["apiHost"], format!("{host}/v1"));
    assert_eq!(io["protocol"], "http");
    assert_eq!(s["metrics"]["host"], format!("{host}/v1"));
    let categories: Vec<&str> = s["consentSettings"]["allCategories"]
        .as_array()
        .expect("categories")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(categories.contains(&"analytics"), "{categories:?}");
    assert_eq!(
        s["integrations"].as_object().map(|o| o.len()),
        Some(1),
        "no device-mode destination is loaded"
    );
    // Naming the key did not record a use of it.
    let keys: Value = app
        .client
        .get(format!("{}/v1/keys", app.base))
        .bearer_auth(&app.admin)
        .send()
        .expect("keys")
        .json()
        .expect("json");
    let browser = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["label"] == "test browser")
        .expect("the browser key");
    assert!(browser["last_used_at"].is_null(), "{browser}");
    // A server key, an admin key and no key at all get the same answer: nothing to see.
    for secret in [app.write.as_str(), app.admin.as_str(), "nope"] {
        let r = get(&app, &format!("/v1/projects/{secret}/settings"), "identity");
        assert_eq!(r.status(), 404, "{secret}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(error_code(r), "not_found");
    }
}

#[test]
fn a_public_url_and_allowed_origins_shape_what_browsers_get() {
    let db = TestDb::sqlite();
    let settings = ServerSettings {
        public_url: Some(
            consentric_engine::PublicUrl::try_from("https://events.shop.example/c/".to_owned())
                .expect("url"),
        ),
        allowed_origins: vec![
            WebOrigin::try_from("https://shop.example".to_owned()).expect("origin")
        ],
        ..ServerSettings::default()
    };
    let app = spawn_app_full(&db, |e| e, settings);
    let settings_path = format!("{}/v1/projects/{}/settings", app.base, app.browser);
    let s: Value = app
        .client
        .get(&settings_path)
        .send()
        .expect("settings")
        .json()
        .expect("json");
    assert_eq!(
        s["integrations"]["Segment.io"]["apiHost"],
        "events.shop.example/c/v1"
    );
    assert_eq!(s["integrations"]["Segment.io"]["protocol"], "https");

    // An allowed site is echoed with credentials, on the preflight and on the answer.
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/t", app.base))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .expect("preflight");
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
    let sent = app
        .client
        .post(format!("{}/v1/t", app.base))
        .basic_auth(&app.browser, Some(""))
        .header("origin", "https://shop.example")
        .body(json!({"anonymousId":"a-1","event":"Viewed"}).to_string())
        .send()
        .expect("track");
    assert_eq!(sent.status(), 200);
    assert_eq!(
        sent.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert!(sent.headers().get_all("vary").iter().any(|v| v == "Origin"));
    // Any other site gets the wildcard and no credentials; caches are told the answer varies.
    let other = app
        .client
        .get(&settings_path)
        .header("origin", "https://evil.example")
        .send()
        .expect("settings");
    assert_eq!(other.headers()["access-control-allow-origin"], "*");
    assert!(other
        .headers()
        .get_all("vary")
        .iter()
        .any(|v| v == "Origin"));
    assert_eq!(other.headers()["cache-control"], "public, max-age=60");
    assert!(other
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
}

#[test]
fn metrics_and_unknown_paths_answer_readably_while_the_keyed_api_stays_same_origin() {
    let db = TestDb::sqlite();
    let app = spawn_app(&db);
    let m = app
        .client
        .post(format!("{}/v1/m", app.base))
        .header("content-type", "text/plain")
        .body(r#"{"series":[{"type":"Counter","metric":"analytics_js.invoke.track","value":1,"tags":{}}]}"#)
        .send()
        .expect("metrics");
    assert_eq!(m.status(), 200);
    assert_eq!(m.headers()["access-control-allow-origin"], "*");
    let missing = get(&app, "/v1/projects/x/settings/extra", "identity");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["access-control-allow-origin"], "*");
    assert_eq!(error_code(missing), "no_such_endpoint");
    let read = app
        .client
        .get(format!("{}/v1/profiles/nobody", app.base))
        .bearer_auth(&app.admin)
        .send()
        .expect("read");
    assert_eq!(read.status(), 404);
    assert!(
        read.headers().get("access-control-allow-origin").is_none(),
        "a keyed read's 404 is not for other sites"
    );
    assert!(get(&app, "/metrics", "identity")
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
