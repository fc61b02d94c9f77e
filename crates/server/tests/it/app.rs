//! The real server on an ephemeral port, real HTTP: what every suite of this binary starts
//! with, and the checks they share.

use std::path::PathBuf;
use std::sync::Arc;

use consentric_engine::{Engine, FixedClock, KeyKind, Scope, ServerSettings};
use consentric_server::Application;
use consentric_testkit::{at, TestDb};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub analyst: String,
    pub analyst_id: String,
    /// A server write key: what analytics-node and the RudderStack server SDKs hold.
    pub write: String,
    /// A browser write key: what a web page holds.
    pub browser: String,
    /// The deployment's identity secret (hex), as a site's backend holds it.
    pub identity_secret: String,
    pub clock: Arc<FixedClock>,
    pub client: Client,
}

/// The server on `db` at an ephemeral loopback port, with an admin, a write and an analyst
/// key, its clock at 2024-05-14T10:21:33.517Z until a test moves it.
pub fn spawn_app(db: &TestDb) -> TestApp {
    spawn_app_with(db, |engine| engine)
}

/// [`spawn_app`] with the engine as `configure` makes it (other settings, say).
pub fn spawn_app_with(db: &TestDb, configure: impl FnOnce(Engine) -> Engine) -> TestApp {
    spawn_app_full(db, configure, ServerSettings::default())
}

/// [`spawn_app`] with the engine as `configure` makes it and the server's limits from
/// `server` (its `listen` is replaced by an ephemeral loopback port).
pub fn spawn_app_full(
    db: &TestDb,
    configure: impl FnOnce(Engine) -> Engine,
    server: ServerSettings,
) -> TestApp {
    let server = ServerSettings {
        listen: "127.0.0.1:0".into(),
        ..server
    };
    let clock = Arc::new(FixedClock::new(at("2024-05-14T10:21:33.517Z")));
    let engine = Arc::new(configure(Engine::new(db.store(), clock.clone())));
    let admin = engine
        .create_key(Scope::Admin, Some("test"))
        .expect("admin key")
        .secret()
        .to_owned();
    let write = engine
        .create_key_of_kind(Scope::Write, KeyKind::Server, Some("test server"))
        .expect("write key")
        .secret()
        .to_owned();
    let browser = engine
        .create_key(Scope::Write, Some("test browser"))
        .expect("browser key")
        .secret()
        .to_owned();
    let identity_secret = engine.identity_secret().expect("identity secret");
    let analyst = engine
        .create_key(Scope::Analyst, Some("test"))
        .expect("analyst key");
    let (analyst_id, analyst) = (analyst.key_id.clone(), analyst.secret().to_owned());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = Application::with_settings(engine, &server)
                .await
                .expect("bind");
            tx.send(app.port()).expect("send port");
            app.run_until_stopped().await.expect("serve");
        });
    });
    let port = rx.recv().expect("port");
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        admin,
        analyst,
        analyst_id,
        write,
        browser,
        identity_secret,
        clock,
        client: Client::new(),
    }
}

/// The bytes of `tests/fixtures/<dir>/<name>`.
pub fn fixture_in(dir: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Segment fixture's bytes (`tests/fixtures/segment/`).
pub fn fixture(name: &str) -> Vec<u8> {
    fixture_in("segment", name)
}

/// A Segment fixture as JSON.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

impl TestApp {
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    /// As analytics-node sends: Basic auth with the write key as user name.
    pub fn send(&self, path: &str, body: &Value) -> Response {
        self.post(path)
            .basic_auth(&self.write, Some(""))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("request")
    }

    /// As a web page sends: the browser key as the Basic user name.
    pub fn send_from_browser(&self, path: &str, body: &Value) -> Response {
        self.post(path)
            .basic_auth(&self.browser, Some(""))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("request")
    }

    /// The user hash a site's backend computes for `user_id`: `hex(HMAC-SHA256(secret, id))`.
    pub fn user_hash(&self, user_id: &str) -> String {
        use hmac::Mac;
        let key = hex::decode(&self.identity_secret).expect("hex");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
        mac.update(user_id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .expect("request")
    }

    pub fn profile(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/profiles/{id}"));
        assert_eq!(r.status(), 200, "profile {id}");
        r.json().expect("json")
    }

    pub fn events(&self, id: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/profiles/{id}/events?limit=1000"));
        assert_eq!(r.status(), 200);
        let v: Value = r.json().expect("json");
        v["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["event"].clone())
            .collect()
    }
}

/// The value of the trait `name` in a profile as the API shows it (null when absent).
pub fn trait_of(profile: &Value, name: &str) -> Value {
    profile["traits"]
        .as_array()
        .expect("traits")
        .iter()
        .find(|t| t["name"] == name)
        .map(|t| t["value"].clone())
        .unwrap_or(Value::Null)
}

/// A refusal with `status`, a JSON error body of `code` with a message, naming `field` if given.
pub fn assert_error(r: Response, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some(f) = field {
        assert_eq!(body["error"]["field"], f, "{body}");
    }
}
