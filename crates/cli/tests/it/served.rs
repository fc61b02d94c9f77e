//! Real `consentric serve` processes on a test database: one for the crash tests, several on
//! one PostgreSQL for the cluster tests.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consentric_engine::{ProfileRef, Settings};
use consentric_model::{Identity, IdentityKind};
use consentric_testkit::TestDb;

/// A served `consentric`, killed with SIGKILL when dropped if still running.
pub struct Served {
    pub child: Child,
    pub base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `consentric --data-dir DIR [--database-url URL]`, with nothing taken from the caller's
/// `CONSENTRIC_*` environment.
pub fn command(dir: &Path, db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consentric"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CONSENTRIC_")) {
        c.env_remove(k);
    }
    c.arg("--data-dir").arg(dir);
    if let Some(url) = db.database_url() {
        c.arg("--database-url").arg(url);
    }
    c.env("CONSENTRIC_LOG", "warn");
    c
}

/// The settings a test opens the same store with, in-process.
pub fn settings(dir: &Path, db: &TestDb) -> Settings {
    let mut s = Settings::default();
    s.storage.data_dir = dir.to_owned();
    s.storage.database_url = db.database_url().map(str::to_owned);
    s
}

/// A server key of `scope` made by the CLI, as an operator makes one.
pub fn key(dir: &Path, db: &TestDb, scope: &str) -> String {
    key_and_id(dir, db, scope).0
}

/// [`key`], and the key's id (which the CLI prints on standard error).
pub fn key_and_id(dir: &Path, db: &TestDb, scope: &str) -> (String, String) {
    let out = command(dir, db)
        .args(["keys", "create", "--scope", scope, "--kind", "server"])
        .output()
        .expect("keys create");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let id = said
        .split_whitespace()
        .skip_while(|w| *w != "key")
        .nth(1)
        .map(|w| w.trim_end_matches(';').to_owned())
        .unwrap_or_else(|| panic!("no key id in {said}"));
    let secret = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    (secret, id)
}

/// `consentric serve` on a free port, once it answers `/healthz`.
pub fn serve(dir: &Path, db: &TestDb) -> Served {
    serve_with(dir, db, None)
}

/// [`serve`] with a configuration file.
pub fn serve_with(dir: &Path, db: &TestDb, config: Option<&Path>) -> Served {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut c = command(dir, db);
    if let Some(config) = config {
        c.arg("--config").arg(config);
    }
    let child = c
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .expect("consentric serve");
    let mut served = Served {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{}/healthz", served.base))
        .send()
        .map_or(true, |r| !r.status().is_success())
    {
        if let Ok(Some(status)) = served.child.try_wait() {
            panic!("serve exited with {status} before answering");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    served
}

/// SIGKILL: no shutdown, no flush.
pub fn kill_9(served: &mut Served) {
    let _ = Command::new("kill")
        .args(["-9", &served.child.id().to_string()])
        .status();
    let _ = served.child.wait();
}

/// The profile of user id `user`.
pub fn by(user: &str) -> ProfileRef {
    ProfileRef::Identity(Identity {
        kind: IdentityKind::UserId,
        value: user.to_owned(),
    })
}
