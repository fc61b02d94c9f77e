//! Test support, never shipped: fresh SQLite stores in temporary directories and fresh
//! databases in a throwaway PostgreSQL cluster, so one parity suite runs against both; events
//! parsed from JSON as if received at a given instant.
//!
//! The cluster comes from `CONSENTRIC_TEST_PG_URL` (a `key=value` connection string without
//! `dbname`, as `.ci/run` exports) or is started on first use from the machine's
//! `initdb`/`pg_ctl` (as the `postgres` user when running as root, since PostgreSQL refuses
//! root) on a free loopback port; a watchdog stops and deletes it when the test process
//! exits. Without PostgreSQL binaries the PostgreSQL half of each test says so loudly and
//! skips — unless `CI=true`, where that is a failure.
#![forbid(unsafe_code)]

pub mod browser;
mod events;
pub mod module_graph;
pub mod smtp;

pub use events::{at, batch_at, consent_context, typed_events_at};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use consentric_store::{SqliteOptions, Store};

/// Runs a test body once per store: `parity_test!(name, |db| { ... })` makes `name::sqlite`
/// and `name::postgres`, each with `db: TestDb` fresh and empty.
#[macro_export]
macro_rules! parity_test {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn sqlite() {
                let $db = $crate::TestDb::sqlite();
                $body
            }

            #[test]
            fn postgres() {
                let Some($db) = $crate::TestDb::postgres() else {
                    return;
                };
                $body
            }
        }
    };
}

/// A fresh, empty database of either kind; it lives as long as this value (SQLite) or the
/// test process (PostgreSQL).
pub enum TestDb {
    /// A SQLite data directory.
    Sqlite(tempfile::TempDir),
    /// A PostgreSQL connection string of a new database.
    Postgres(String),
}

impl TestDb {
    /// A new SQLite data directory.
    ///
    /// # Panics
    /// If no temporary directory can be made.
    pub fn sqlite() -> Self {
        TestDb::Sqlite(tempfile::tempdir().expect("temporary directory"))
    }

    /// A new PostgreSQL database, or `None` (after a loud message) where PostgreSQL is not
    /// installed and this is not CI.
    ///
    /// # Panics
    /// Under `CI=true` without PostgreSQL, or if the cluster fails.
    pub fn postgres() -> Option<Self> {
        let base = cluster()?;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin =
            postgres::Client::connect(&format!("{base} dbname=postgres"), postgres::NoTls)
                .expect("connect to the test cluster");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        Some(TestDb::Postgres(format!("{base} dbname={name}")))
    }

    /// Opens a store on this database (may be called again to simulate a restart).
    ///
    /// # Panics
    /// If the store cannot be opened.
    pub fn store(&self) -> Store {
        let store = match self {
            TestDb::Sqlite(dir) => {
                Store::open_sqlite(dir.path(), SqliteOptions::default()).expect("open sqlite store")
            }
            TestDb::Postgres(url) => Store::connect_postgres(url, 32).expect("open postgres store"),
        };
        store.with_vault(test_vault())
    }

    /// Runs SQL on the database behind the store's back: how tests play the attacker who
    /// edits the database directly.
    ///
    /// # Panics
    /// If the SQL fails.
    pub fn execute_raw(&self, sql: &str) {
        match self {
            TestDb::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("consentric.db"))
                    .expect("open sqlite");
                conn.execute_batch(sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            TestDb::Postgres(url) => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
                c.batch_execute(sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// The SQLite data directory, if this is SQLite.
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            TestDb::Sqlite(dir) => Some(dir.path()),
            TestDb::Postgres(_) => None,
        }
    }

    /// The PostgreSQL connection string, if this is PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        match self {
            TestDb::Sqlite(_) => None,
            TestDb::Postgres(url) => Some(url),
        }
    }
}

static CLUSTER: OnceLock<Option<String>> = OnceLock::new();

/// The base connection string of the test cluster, started on first use.
fn cluster() -> Option<&'static str> {
    CLUSTER.get_or_init(start_cluster).as_deref()
}

fn start_cluster() -> Option<String> {
    if let Ok(url) = std::env::var("CONSENTRIC_TEST_PG_URL") {
        if !url.trim().is_empty() {
            return Some(url);
        }
    }
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
    let Some(bin) = find_pg_bin() else {
        if ci {
            panic!("CI=true but no PostgreSQL binaries (initdb, pg_ctl) were found and CONSENTRIC_TEST_PG_URL is unset");
        }
        eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("!!! PostgreSQL (initdb/pg_ctl) not found: PostgreSQL tests are SKIPPED !!!");
        eprintln!("!!! install postgresql or set CONSENTRIC_TEST_PG_URL                     !!!");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        return None;
    };
    let base = tempfile::Builder::new()
        .prefix("consentric-pg-")
        .tempdir()
        .expect("cluster directory")
        .keep();
    let as_root = is_root();
    if as_root {
        run(
            Command::new("chown").arg("-R").arg("postgres:").arg(&base),
            "chown the cluster directory",
        );
    }
    let data = base.join("data");
    let port = free_port();
    let runas = |program: &Path| -> Command {
        if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    run(
        runas(&bin.join("initdb"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data),
        "initdb",
    );
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        base.display()
    );
    run(
        runas(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(base.join("log"))
            .args(["-o", &options, "-w", "start"]),
        "pg_ctl start",
    );
    // Stop and delete the cluster when this test process ends. The watchdog must outlive us,
    // so it is deliberately never waited for.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {prefix}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {base}",
        pid = std::process::id(),
        prefix = if as_root { "runuser -u postgres -- " } else { "" },
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        base = base.display(),
    );
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &stop])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the cluster watchdog");
    Some(format!("host=127.0.0.1 port={port} user=postgres"))
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `initdb` and `pg_ctl` on the PATH, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_pg_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((v, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, b)| b)
    })
}

/// The master key every test store is sealed under: fixed, so that a store reopened in the
/// same test reads what it wrote. Public knowledge — tests only.
pub const TEST_MASTER_KEY: &str =
    "7465737420746573742074657374207465737420746573742074657374207465";

/// A vault under [`TEST_MASTER_KEY`].
///
/// # Panics
/// Never: the key is well-formed.
pub fn test_vault() -> std::sync::Arc<consentric_vault::Vault> {
    let master = consentric_vault::MasterKeys::from_hex(TEST_MASTER_KEY).expect("test master key");
    std::sync::Arc::new(consentric_vault::Vault::new(master))
}

/// How many times `needle` occurs in the SQLite store's files in `dir` (the database, its
/// write-ahead log and shared memory): what adversarial tests scan after deleting something.
///
/// # Panics
/// If the directory or a file cannot be read.
pub fn hits_in_database_files(dir: &Path, needle: &[u8]) -> usize {
    std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("consentric.db"))
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("read");
            bytes.windows(needle.len()).filter(|w| *w == needle).count()
        })
        .sum()
}

/// The CDNOW sample's raw purchases (Fader & Hardie's 2,357 customers), shipped in `data/`.
const CDNOW_SAMPLE: &str = include_str!("../../../data/cdnow/CDNOW_sample.txt");

/// Real purchase histories for tests that need data a value model can fit: the CDNOW sample's
/// customers `skip..skip + count` (in file order) as `Order Completed` track events, user ids
/// `cdnow-<sample id>`. Each customer's first order carries a Segment consent object granting
/// `grant` (none when empty). Timestamps are the purchase days (1997-1998).
pub fn cdnow_sample_orders(skip: usize, count: usize, grant: &[&str]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut customers = 0;
    let mut last: Option<&str> = None;
    for (i, line) in CDNOW_SAMPLE.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_, id, date, _, dollars] = f[..] else {
            continue;
        };
        let first = last != Some(id);
        if first {
            customers += 1;
            last = Some(id);
        }
        if customers <= skip {
            continue;
        }
        if customers > skip + count {
            break;
        }
        let mut e = serde_json::json!({"type": "track", "event": "Order Completed",
            "userId": format!("cdnow-{id}"), "messageId": format!("cdnow-sample-{i}"),
            "timestamp": format!("{}-{}-{}T12:00:00Z", &date[..4], &date[4..6], &date[6..]),
            "properties": {"revenue": dollars.parse::<f64>().unwrap_or(0.0)}});
        if first && !grant.is_empty() {
            e["context"] = consent_context(grant);
        }
        out.push(e);
    }
    out
}
