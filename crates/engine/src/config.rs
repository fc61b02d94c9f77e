//! One configuration, `consentric.toml`, with defaults that need no file at all.
//!
//! Precedence, lowest first: built-in defaults, the file, `CONSENTRIC_*` environment variables,
//! command-line flags (applied by the binary). A missing default file is fine; a file that was
//! named explicitly and is missing is an error.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::EngineError;

/// The default file name, looked up in the working directory.
pub const DEFAULT_FILE: &str = "consentric.toml";

/// Everything configurable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The HTTP server.
    pub server: ServerSettings,
    /// Where data lives.
    pub storage: StorageSettings,
    /// Logging.
    pub log: LogSettings,
    /// `[[purposes]]`: when present, these replace the built-in retail purposes.
    pub purposes: Option<Vec<consentric_policy::Purpose>>,
    /// `[[schema]]`: field → category rules, ahead of the built-in ones.
    pub schema: Vec<consentric_policy::FieldRule>,
    /// `[consent]`: how Segment consent categories and TCF purposes map to purposes.
    pub consent: consentric_policy::ConsentSettings,
    /// `[retention]`.
    pub retention: RetentionSettings,
    /// `[ingest]`: what events from clients may claim.
    pub ingest: IngestSettings,
    /// `[dsr]`: deadlines and verification of data-subject requests.
    pub dsr: crate::dsr_settings::DsrSettings,
    /// `[notify]`: how customers are reached (one-time codes).
    pub notify: crate::notify::SmtpSettings,
    /// `[lifecycle]`: stage rules, model settings, the purposes they run under.
    pub lifecycle: crate::lifecycle::LifecycleSettings,
    /// `[personalize]`: recommenders, interaction weights, the action catalogue.
    pub personalize: crate::personalize::PersonalizeSettings,
    /// `[cleanroom]`: the partner-matching purpose, the identifier, session limits.
    pub cleanroom: crate::cleanroom::CleanroomSettings,
    /// `[cluster]`: this node among others on one PostgreSQL.
    pub cluster: ClusterSettings,
}

/// `[cluster]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's name in the leader row, timers' runs, metrics and `/readyz`
    /// (`CONSENTRIC_NODE`); empty: the host name and process id.
    pub node: String,
}

impl ClusterSettings {
    /// The configured name, or `host-pid`.
    pub fn node_name(&self) -> String {
        if !self.node.is_empty() {
            return self.node.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        format!("{host}-{}", std::process::id())
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Minutes between retention sweeps inside `serve`; 0 turns the in-server sweep off
    /// (`CONSENTRIC_RETENTION_SWEEP_MINUTES`).
    pub sweep_every_minutes: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            sweep_every_minutes: 60,
        }
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// How many seconds past its arrival an event may be dated; a later time is clamped to
    /// arrival plus this (the client's own time is kept as `originalTimestamp`).
    pub future_tolerance_seconds: u64,
    /// Hours a withdrawal sent with a browser key restricts processing before its deletion is
    /// carried out without confirmation (by the customer, a server key or an admin).
    pub withdrawal_grace_hours: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            future_tolerance_seconds: 300,
            withdrawal_grace_hours: 72,
        }
    }
}

/// `[server]`: the listener and what it allows a client.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on (`CONSENTRIC_LISTEN`).
    pub listen: String,
    /// Seconds a client has to send a request's head, and that an idle kept-alive connection
    /// stays open.
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send a request's body, from when its head arrived.
    pub body_timeout_seconds: u64,
    /// Open connections at most; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Open connections at most from one address (not counting trusted proxies), so that one
    /// client cannot hold every connection.
    pub max_connections_per_client: usize,
    /// Requests being worked on at most; one more is answered 429 with `Retry-After`. Memory
    /// under overload grows with it (on two cores, 64 admitted 10% less than 256 with a fifth of
    /// the latency and a third of the memory: `consentric-bench soak`).
    pub max_in_flight: usize,
    /// Requests per second one client (its address) may send with one browser
    /// key; bursts of five seconds' worth are allowed.
    pub browser_requests_per_second: u32,
    /// Addresses of proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Sites whose pages may send browser SDK requests with credentials
    /// (`https://shop.example`): their `Origin` is echoed with
    /// `Access-Control-Allow-Credentials`. Any other site gets the wildcard, which is enough
    /// for requests without credentials.
    pub allowed_origins: Vec<crate::web_origin::WebOrigin>,
    /// The address pages reach this server at (`https://events.shop.example`), which
    /// analytics.js's settings point it to; unset, the address each request was made to, over
    /// `http` (set it behind a proxy that terminates TLS).
    pub public_url: Option<crate::web_origin::PublicUrl>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:7878".into(),
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            max_connections: 768,
            max_connections_per_client: 64,
            max_in_flight: 64,
            browser_requests_per_second: 20,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            public_url: None,
        }
    }
}

/// `[storage]`.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Directory of the embedded SQLite database (`CONSENTRIC_DATA_DIR`).
    pub data_dir: PathBuf,
    /// A `postgres://` URL; when set, PostgreSQL is used instead of SQLite
    /// (`CONSENTRIC_DATABASE_URL`).
    pub database_url: Option<String>,
    /// `full` (default: every acknowledged commit survives power loss) or `normal`
    /// (`CONSENTRIC_SQLITE_SYNCHRONOUS`).
    pub sqlite_synchronous: String,
    /// PostgreSQL: most connections this process opens for requests and jobs (a request that
    /// finds them all busy waits for one); the listener and the leader lock have one each
    /// besides (`CONSENTRIC_POOL_SIZE`).
    pub pool_size: usize,
}

/// PostgreSQL connections a node opens for work: three nodes at this size (plus their listener
/// and leader connections) stay inside PostgreSQL's default `max_connections` of 100
/// (docs/scaling.md); requests beyond it wait for a connection.
pub const DEFAULT_POOL_SIZE: usize = 32;

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            data_dir: PathBuf::from("consentric-data"),
            database_url: None,
            sqlite_synchronous: "full".into(),
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

impl fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("StorageSettings")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .finish()
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter such as `info` or `consentric=debug` (`CONSENTRIC_LOG`).
    pub level: String,
    /// `pretty` or `json` (`CONSENTRIC_LOG_FORMAT`).
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: "pretty".into(),
        }
    }
}

impl Settings {
    /// Loads defaults, then the file (`path`, or `consentric.toml` if it exists), then the
    /// environment as read by `env`.
    ///
    /// # Errors
    /// A named file that is missing, a file that is not valid TOML or has unknown keys, or a
    /// value out of range.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, EngineError> {
        let named = path
            .map(Path::to_path_buf)
            .or_else(|| env("CONSENTRIC_CONFIG").map(PathBuf::from));
        let mut settings = match named {
            Some(p) => Self::from_file(&p)?,
            None if Path::new(DEFAULT_FILE).exists() => Self::from_file(Path::new(DEFAULT_FILE))?,
            None => Settings::default(),
        };
        if let Some(v) = env("CONSENTRIC_LISTEN") {
            settings.server.listen = v;
        }
        if let Some(v) = env("CONSENTRIC_DATA_DIR") {
            settings.storage.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("CONSENTRIC_DATABASE_URL").filter(|v| !v.is_empty()) {
            settings.storage.database_url = Some(v);
        }
        if let Some(v) = env("CONSENTRIC_POOL_SIZE") {
            settings.storage.pool_size = v.parse().map_err(|_| {
                EngineError::Config(format!(
                    "CONSENTRIC_POOL_SIZE must be a whole number, not `{v}`"
                ))
            })?;
        }
        if let Some(v) = env("CONSENTRIC_NODE").filter(|v| !v.is_empty()) {
            settings.cluster.node = v;
        }
        if let Some(v) = env("CONSENTRIC_SQLITE_SYNCHRONOUS") {
            settings.storage.sqlite_synchronous = v;
        }
        if let Some(v) = env("CONSENTRIC_LOG") {
            settings.log.level = v;
        }
        if let Some(v) = env("CONSENTRIC_LOG_FORMAT") {
            settings.log.format = v;
        }
        if let Some(v) = env("CONSENTRIC_RETENTION_SWEEP_MINUTES") {
            settings.retention.sweep_every_minutes = v.parse().map_err(|_| {
                EngineError::Config(format!(
                    "CONSENTRIC_RETENTION_SWEEP_MINUTES must be a whole number, not `{v}`"
                ))
            })?;
        }
        if let Some(v) = env("CONSENTRIC_LIFECYCLE_AS_OF").filter(|v| !v.is_empty()) {
            settings.lifecycle.as_of = Some(v.parse().map_err(|_| {
                EngineError::Config(format!(
                    "CONSENTRIC_LIFECYCLE_AS_OF must be a date (YYYY-MM-DD), not `{v}`"
                ))
            })?);
        }
        if let Some(v) = env("CONSENTRIC_LIFECYCLE_RECOMPUTE_MINUTES") {
            settings.lifecycle.recompute_every_minutes = v.parse().map_err(|_| {
                EngineError::Config(format!(
                    "CONSENTRIC_LIFECYCLE_RECOMPUTE_MINUTES must be a whole number, not `{v}`"
                ))
            })?;
        }
        if let Some(v) = env("CONSENTRIC_PERSONALIZE_TRAIN_MINUTES") {
            settings.personalize.train_every_minutes = v.parse().map_err(|_| {
                EngineError::Config(format!(
                    "CONSENTRIC_PERSONALIZE_TRAIN_MINUTES must be a whole number, not `{v}`"
                ))
            })?;
        }
        settings.check()?;
        Ok(settings)
    }

    /// Loads with the process environment.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_env(path: Option<&Path>) -> Result<Self, EngineError> {
        Self::load(path, &|k| std::env::var(k).ok())
    }

    fn from_file(path: &Path) -> Result<Self, EngineError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EngineError::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| EngineError::Config(format!("{}: {e}", path.display())))
    }

    /// Checks values that the types alone do not.
    ///
    /// # Errors
    /// The first value out of range.
    pub fn check(&self) -> Result<(), EngineError> {
        if !matches!(self.storage.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(EngineError::Config(format!(
                "storage.sqlite_synchronous must be `full` or `normal`, not `{}`",
                self.storage.sqlite_synchronous
            )));
        }
        if self.storage.pool_size == 0 {
            return Err(EngineError::Config(
                "storage.pool_size must be at least 1".into(),
            ));
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(EngineError::Config(format!(
                "log.format must be `pretty` or `json`, not `{}`",
                self.log.format
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file_and_environment_overrides_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"0.0.0.0:1\"\n[storage]\ndata_dir = \"/x\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&file), &|k| {
            (k == "CONSENTRIC_DATA_DIR").then(|| "/from-env".to_owned())
        })
        .expect("loads");
        assert_eq!(s.server.listen, "0.0.0.0:1");
        assert_eq!(s.storage.data_dir, PathBuf::from("/from-env"));
    }

    #[test]
    fn a_named_missing_file_and_unknown_keys_are_errors() {
        assert!(Settings::load(Some(Path::new("/nonexistent/c.toml")), &|_| None).is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisten_on = \"x\"\n").expect("write");
        let e = Settings::load(Some(&file), &|_| None).expect_err("unknown key");
        assert!(e.to_string().contains("listen_on"), "{e}");
    }

    #[test]
    fn lifecycle_rules_and_dates_come_from_the_file_and_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            r#"[lifecycle]
calibration_end = "1997-09-30"
clv = { months = 24, monthly_discount = 0.02 }
churn = { threshold = 0.7, horizon_days = 180.0 }

[[lifecycle.rules]]
name = "vip"
stage = "advocacy"
min_revenue = 500.0
events = { "Referral Sent" = 2 }
"#,
        )
        .expect("write");
        let s = Settings::load(Some(&file), &|k| {
            (k == "CONSENTRIC_LIFECYCLE_AS_OF").then(|| "1998-06-30".to_owned())
        })
        .expect("loads");
        let l = &s.lifecycle;
        assert_eq!(
            l.as_of.map(|d| d.to_string()).as_deref(),
            Some("1998-06-30")
        );
        assert_eq!(
            l.calibration_end.map(|d| d.to_string()).as_deref(),
            Some("1997-09-30")
        );
        assert_eq!((l.clv.months, l.churn.threshold), (24, 0.7));
        let rules = l.rules.as_ref().expect("rules");
        assert_eq!(
            (rules[0].name.as_str(), rules[0].events["Referral Sent"]),
            ("vip", 2)
        );
        // A rule with a misspelt condition, or a bad date, is refused with its name.
        std::fs::write(
            &file,
            "[[lifecycle.rules]]\nname = \"x\"\nstage = \"advocacy\"\nmin_revenu = 1.0\n",
        )
        .expect("write");
        let e = Settings::load(Some(&file), &|_| None).expect_err("unknown condition");
        assert!(e.to_string().contains("min_revenu"), "{e}");
        let e = Settings::load(None, &|k| {
            (k == "CONSENTRIC_LIFECYCLE_AS_OF").then(|| "yesterday".to_owned())
        })
        .expect_err("bad date");
        assert!(e.to_string().contains("CONSENTRIC_LIFECYCLE_AS_OF"), "{e}");
    }

    #[test]
    fn the_database_url_is_never_printed() {
        let mut s = Settings::default();
        s.storage.database_url = Some("postgres://u:hunter2@h/db".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
