//! References for the ingest bench: the raw SQLite insert rate that bounds what ingestion can
//! reach, and scratch PostgreSQL databases for measuring against a server.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::params;

use consentric_store::{SqliteOptions, Store, StoreError};

/// The raw insert's WAL checkpoint threshold, in pages (see [`sqlite_raw_insert`]).
const RAW_CHECKPOINT_PAGES: i64 = 16_384;

/// One event row as ingestion stores it.
#[derive(Debug, Clone)]
pub struct RawEventRow {
    /// Idempotency key.
    pub message_id: String,
    /// Owning profile.
    pub profile_id: String,
    /// Call type.
    pub call_type: &'static str,
    /// Track name.
    pub event_name: Option<String>,
    /// Event time (ms).
    pub ts: i64,
    /// Arrival time (ms).
    pub received_at: i64,
    /// Segment JSON.
    pub payload: String,
}

/// Inserts `rows` into the `events` table of a fresh SQLite store in `data_dir` with one
/// cached prepared statement and `per_tx` rows per transaction, with the real store's
/// durability but the checkpoint threshold this insert runs fastest at, and returns the time
/// taken. This is the ceiling for ingestion on SQLite.
///
/// # Errors
/// Database faults.
pub fn sqlite_raw_insert(
    data_dir: &Path,
    options: SqliteOptions,
    rows: &[RawEventRow],
    per_tx: usize,
) -> Result<Duration, StoreError> {
    let synchronous = if options.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    drop(Store::open_sqlite(data_dir, options)?); // same schema as the real store
    let mut conn = rusqlite::Connection::open(data_dir.join("consentric.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    // The threshold at which this insert is fastest here (events/s at 1,000 pages: 30k;
    // 4,096: 38k; 16,384: 49k; 32,768: 48k; 65,536: 45k; 131,072: 44k), so that the
    // reference stays the ceiling it claims to be, not the store's setting.
    conn.pragma_update(None, "wal_autocheckpoint", RAW_CHECKPOINT_PAGES)?;
    let started = Instant::now();
    for chunk in rows.chunks(per_tx.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO events (message_id, profile_id, call_type, event_name, ts, received_at, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for r in chunk {
                stmt.execute(params![
                    r.message_id,
                    r.profile_id,
                    r.call_type,
                    r.event_name,
                    r.ts,
                    r.received_at,
                    r.payload
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(started.elapsed())
}

/// Creates an empty database next to the one `base` (a `key=value` connection string without
/// `dbname`) reaches, and returns its connection string.
///
/// # Errors
/// If the server refuses (the role needs CREATEDB).
pub fn create_scratch_postgres(base: &str) -> Result<(String, String), StoreError> {
    let name = format!("consentric_bench_{}", std::process::id());
    let mut admin = postgres::Client::connect(&format!("{base} dbname=postgres"), postgres::NoTls)?;
    // Separate calls: several statements in one would share a transaction, which these refuse.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    Ok((format!("{base} dbname={name}"), name))
}

/// Drops a database made by [`create_scratch_postgres`].
///
/// # Errors
/// If the server refuses.
pub fn drop_scratch_postgres(base: &str, name: &str) -> Result<(), StoreError> {
    let mut admin = postgres::Client::connect(&format!("{base} dbname=postgres"), postgres::NoTls)?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    Ok(())
}
