//! The embedded default: one SQLite file in WAL mode, one serialised writer and a small pool of
//! readers that never block it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use crate::backend::{refuse_nul, Backend, BackendKind, Cell, CellRef, ChangeToken, Conn, Param};
use crate::error::StoreError;
use crate::migrations;
use crate::running::Running;
use crate::wal_sync::WalSync;

/// Readers kept open between requests.
const MAX_IDLE_READERS: usize = 8;

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Full (the default): every write returns only once its commit survives power loss,
    /// which is what "acknowledged means durable" requires; the WAL is flushed after the
    /// writer lets go (see `wal_sync`). Otherwise commits survive crashes of the process only.
    pub synchronous_full: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous_full: true,
        }
    }
}

/// SQLite behind [`Backend`].
pub struct SqliteBackend {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Write transactions begun, counted under the writer lock.
    writes: AtomicU64,
    /// Flushes commits after the writer is let go; `None` unless `synchronous_full`.
    durable: Option<WalSync>,
    /// Large transactions holding or awaiting the writer.
    large: AtomicUsize,
    /// Since when a write (a transaction or a checkpoint) has held the writer.
    writing: Running,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database file at `path`.
    ///
    /// # Errors
    /// If the file cannot be opened or configured.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let writer = open_connection(path)?;
        // The WAL lies beside the file SQLite opened, which may not be `path` (a link).
        let opened = writer
            .path()
            .filter(|p| !p.is_empty())
            .map_or_else(|| path.to_owned(), PathBuf::from);
        Ok(SqliteBackend {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            writes: AtomicU64::new(0),
            durable: options.synchronous_full.then(|| WalSync::new(&opened)),
            large: AtomicUsize::new(0),
            writing: Running::new(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Checkpoint the WAL every 64k pages (256 MiB) instead of SQLite's 1,000: each event
/// rewrites pages at random places of the message-id and per-customer indexes and tables,
/// and a rarer checkpoint copies a page rewritten by many commits back once. With the random
/// message ids SDKs send, 64k pages ingested 10% more than 16k in-process (over HTTP, no
/// change; docs/benchmarks.md). The price: a WAL file of about 256 MiB (it keeps its size;
/// the checkpoint of an erasure or a retention sweep truncates it), a commit that crosses the
/// threshold or an erasure copying up to that much back, and what a withdrawal deletes
/// lingering longer in the log.
const CHECKPOINT_PAGES: i64 = 65_536;

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Commits write the WAL without flushing it; with `synchronous_full` the flush comes
    // after the writer lets go (`WalSync`), before the caller is answered. Checkpoints flush.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "busy_timeout", 10_000)?;
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten with zeros, so an erased customer's rows do not linger in
    // free pages of the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // A small page cache. Bigger is slower here: when a B-tree page splits, SQLite swaps page
    // numbers through a temporary one past 1 GiB of file, and a database smaller than that then
    // has every cached page visited at the commit (`pcache1TruncateUnsafe`). The walk costs
    // what the cache holds: with 64 MiB it was a tenth of a decision's time (p99 2.7 ms), with
    // 16 MiB a third of the single writer's time under load; 4 MiB left ingest as it was
    // (docs/benchmarks.md). A transaction that rewrites many pages asks for more
    // (`large_transaction`).
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans never depend on bound values. Without this, SQLite (3.54) marks a statement like
    // `… WHERE profile_id = ?1 ORDER BY n DESC LIMIT 1` on a table without rowid as worth
    // re-planning when `?1` changes, and the statement cache clears bindings when a statement
    // comes back, which expires it: every use was parsed and planned again (two thirds of a
    // decision's reads). We keep no planner statistics that a bound value could select from.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

/// A reader's cache is discarded whole by SQLite whenever a read transaction begins after any
/// write (`pager_reset`), and discarding walks the cache's whole hash table: a big reader
/// cache costs more than it saves on a busy server, so readers keep a small one.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = open_connection(path)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    Ok(conn)
}

/// Page cache of the writer, in KiB (see `open_connection`).
const WRITER_CACHE_KIB: i64 = 4_096;
/// Page cache of a reader, in KiB (see `open_reader`).
const READER_CACHE_KIB: i64 = 4_096;
/// Page cache of the writer during a large transaction, in KiB: an erasure rewrites thousands
/// of pages in one transaction, and with the small cache it spilled and re-read them (10,000
/// events: 83 ms at 64 MiB, 90–95 ms at 4 MiB).
const LARGE_CACHE_KIB: i64 = 65_536;

/// Longest a write may have held the writer for the next short one still to count as quick:
/// a decision's group commit holds it for a fraction of a millisecond, while a segment's
/// membership, a model, an ingest group of thousands of events or a checkpoint SQLite runs
/// inside a commit hold it for many.
const QUICK_HOLD: std::time::Duration = std::time::Duration::from_millis(1);

/// Counts itself in while it lives, also when it is dropped by a panic.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `work` in one write transaction on the writer connection; the commit's number for
/// `WalSync` when there is one.
fn write_in(
    conn: &mut Connection,
    writes: &AtomicU64,
    durable: Option<&WalSync>,
    work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
) -> Result<Option<u64>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let seq = writes.fetch_add(1, Ordering::Relaxed);
    work(&mut SqliteConn {
        conn: &tx,
        seq: Some(seq),
    })?;
    tx.commit()?;
    Ok(durable.map(WalSync::committed))
}

impl SqliteBackend {
    /// Waits, with the writer let go, until commit `n` (if numbered) is on stable storage.
    fn made_durable(&self, n: Option<u64>) -> Result<(), StoreError> {
        match n {
            Some(n) => self.flush(n),
            None => Ok(()),
        }
    }

    fn large_unflushed(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<Option<u64>, StoreError> {
        let _large = Counted::new(&self.large);
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let held = self.writing.begin();
        conn.pragma_update(None, "cache_size", -LARGE_CACHE_KIB)?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_in(&mut conn, &self.writes, self.durable.as_ref(), work)
        }));
        // Shrinking frees the pages beyond the small size at once. Also after a panic (the
        // transaction was rolled back as it unwound), or every later commit would pay for the
        // large cache.
        let restored = conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB);
        drop(held);
        drop(conn);
        let n = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        match restored {
            Ok(()) => Ok(n),
            Err(e) => {
                self.made_durable(n)?;
                Err(e.into())
            }
        }
    }
}

impl Backend for SqliteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let n = self.transaction_unflushed(false, work)?;
        self.made_durable(n)
    }

    fn large_transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let n = self.transaction_unflushed(true, work)?;
        self.made_durable(n)
    }

    fn transaction_unflushed(
        &self,
        large: bool,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<Option<u64>, StoreError> {
        if large {
            return self.large_unflushed(work);
        }
        // A poisoned lock only means another writer panicked mid-transaction; SQLite rolled it
        // back when its Transaction dropped, so the connection is safe to reuse.
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _held = self.writing.begin();
        write_in(&mut conn, &self.writes, self.durable.as_ref(), work)
    }

    fn flush(&self, n: u64) -> Result<(), StoreError> {
        match &self.durable {
            Some(sync) => sync.wait_durable(n),
            None => Ok(()),
        }
    }

    fn writes_are_quick(&self) -> bool {
        self.large.load(Ordering::Acquire) == 0
            && !self.writing.longer_than(QUICK_HOLD)
            && self.durable.as_ref().is_none_or(WalSync::flushes_are_quick)
    }

    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let result = read_in_snapshot(&mut conn, work);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    fn read_short(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // The writer's cache survives its own commits; a reader's does not. Never wait for it:
        // a write in progress means a reader now is sooner than the writer later.
        match self.writer.try_lock() {
            Ok(mut conn) => read_in_snapshot(&mut conn, work),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                read_in_snapshot(&mut p.into_inner(), work)
            }
            Err(std::sync::TryLockError::WouldBlock) => self.read(work),
        }
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _held = self.writing.begin();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.transaction(&mut |c| migrations::apply(c, BackendKind::Sqlite))
    }
}

/// Runs `work` in one read transaction, so everything it reads comes from the same snapshot
/// (and SQLite checks the WAL, and drops a stale cache, once instead of per statement).
fn read_in_snapshot(
    conn: &mut Connection,
    work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    work(&mut SqliteConn {
        conn: &tx,
        seq: None,
    })?;
    tx.commit()?;
    Ok(())
}

struct SqliteConn<'a> {
    conn: &'a Connection,
    /// The write transaction's number; `None` on a read connection.
    seq: Option<u64>,
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Text(s) | Param::OptText(Some(s)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            Param::Int(i) | Param::OptInt(Some(i)) => ToSqlOutput::Owned(Value::Integer(i)),
            Param::Real(f) => ToSqlOutput::Owned(Value::Real(f)),
            Param::OptText(None) | Param::OptInt(None) => ToSqlOutput::Owned(Value::Null),
            Param::Texts(_) | Param::OptTexts(_) | Param::Ints(_) | Param::Reals(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "array parameters are for PostgreSQL's set-based writes".into(),
                ))
            }
        })
    }
}

impl Conn for SqliteConn<'_> {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn exec(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        refuse_nul(params)?;
        let mut stmt = self.conn.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn exec_batch(&mut self, sql: &'static str) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        refuse_nul(params)?;
        let mut stmt = self.conn.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                cells.push(match row.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => {
                        return Err(StoreError::Corrupt("unexpected blob column".into()))
                    }
                });
            }
            out.push(cells);
        }
        Ok(out)
    }

    fn scan(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        row: &mut dyn FnMut(&[CellRef<'_>]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        const MOST: usize = 8;
        refuse_nul(params)?;
        let mut stmt = self.conn.prepare_cached(sql)?;
        let width = stmt.column_count();
        if width > MOST {
            return Err(StoreError::Corrupt(format!("a scan of {width} columns")));
        }
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            let mut cells = [CellRef::Null; MOST];
            for (i, cell) in cells.iter_mut().enumerate().take(width) {
                *cell = match r.get_ref(i)? {
                    ValueRef::Null => CellRef::Null,
                    ValueRef::Integer(v) => CellRef::Int(v),
                    ValueRef::Real(v) => CellRef::Real(v),
                    ValueRef::Text(t) => CellRef::Text(std::str::from_utf8(t).map_err(|_| {
                        StoreError::Corrupt("a text column that is not UTF-8".into())
                    })?),
                    ValueRef::Blob(_) => {
                        return Err(StoreError::Corrupt("unexpected blob column".into()))
                    }
                };
            }
            row(&cells[..width])?;
        }
        Ok(())
    }

    fn change_token(&mut self) -> Result<Option<ChangeToken>, StoreError> {
        let Some(seq) = self.seq else {
            return Ok(None);
        };
        let data_version: i64 = self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?;
        Ok(Some(ChangeToken { data_version, seq }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory no earlier run left behind (process id and time in its name).
    fn fresh_dir(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!("consentric-{name}-{}-{nanos}", std::process::id()))
    }

    fn value(c: &mut dyn Conn) -> i64 {
        let rows = c.query("SELECT x FROM t", &[]).expect("query");
        rows[0][0].int().expect("an integer")
    }

    /// Everything one `read` sees comes from one snapshot: a write committed while it runs
    /// is invisible to it, and visible to the next.
    #[test]
    fn a_read_sees_one_snapshot() {
        let dir = fresh_dir("snapshot");
        let backend =
            SqliteBackend::open(&dir.join("db.sqlite"), SqliteOptions::default()).expect("open");
        backend
            .transaction(&mut |c| {
                c.exec_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            })
            .expect("create");
        let mut seen = Vec::new();
        backend
            .read(&mut |c| {
                seen.push(value(c));
                backend.transaction(&mut |w| w.exec("UPDATE t SET x = 2", &[]).map(drop))?;
                seen.push(value(c));
                Ok(())
            })
            .expect("read");
        assert_eq!(seen, [1, 1], "the write landed inside the read's snapshot");
        let mut after = 0;
        backend
            .read(&mut |c| {
                after = value(c);
                Ok(())
            })
            .expect("read again");
        assert_eq!(after, 2);
        drop(backend);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// With full durability every write returns only after a flush that began after its
    /// commit (each sequential write is flushed anew; concurrent ones may share a flush, and
    /// none returns unflushed). Without it, nothing is flushed by us.
    #[test]
    fn every_write_returns_only_once_flushed() {
        let dir = fresh_dir("durable");
        let backend = std::sync::Arc::new(
            SqliteBackend::open(&dir.join("db.sqlite"), SqliteOptions::default()).expect("open"),
        );
        backend
            .transaction(&mut |c| c.exec_batch("CREATE TABLE t (x INTEGER)"))
            .expect("create");
        let durable = || backend.durable.as_ref().map(WalSync::durable);
        assert_eq!(durable(), Some(1));
        for n in 2..=5 {
            backend
                .transaction(&mut |c| c.exec("INSERT INTO t VALUES (1)", &[]).map(drop))
                .expect("insert");
            assert_eq!(
                durable(),
                Some(n),
                "write {n} returned before it was flushed"
            );
        }
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let backend = backend.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        backend
                            .transaction(&mut |c| c.exec("INSERT INTO t VALUES (2)", &[]).map(drop))
                            .expect("insert");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(durable(), Some(105), "every commit is covered by a flush");
        let relaxed = SqliteBackend::open(
            &dir.join("relaxed.sqlite"),
            SqliteOptions {
                synchronous_full: false,
            },
        )
        .expect("open");
        assert!(relaxed.durable.is_none());
        drop((backend, relaxed));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A database opened through a symbolic link has its WAL beside the file SQLite opened,
    /// and that is the WAL flushed (a flush of the link's name would find nothing).
    #[cfg(unix)]
    #[test]
    fn a_database_opened_through_a_link_is_flushed() {
        let dir = fresh_dir("link");
        std::fs::create_dir_all(dir.join("real")).expect("dir");
        std::fs::File::create(dir.join("real/db.sqlite")).expect("file");
        std::os::unix::fs::symlink(dir.join("real/db.sqlite"), dir.join("link.sqlite"))
            .expect("link");
        let backend =
            SqliteBackend::open(&dir.join("link.sqlite"), SqliteOptions::default()).expect("open");
        backend
            .transaction(&mut |c| c.exec_batch("CREATE TABLE t (x INTEGER)"))
            .expect("a write through the link is flushed");
        assert!(dir.join("real/db.sqlite-wal").exists());
        drop(backend);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A short read runs on the writer's connection when no write holds it (its cache
    /// survives the writer's own commits: `data_version` does not move for them), and on a
    /// reader, without waiting, while a write is open; either way it sees what is committed.
    #[test]
    fn a_short_read_uses_the_idle_writer_and_never_waits_for_a_busy_one() {
        let dir = fresh_dir("short-read");
        let backend = std::sync::Arc::new(
            SqliteBackend::open(&dir.join("db.sqlite"), SqliteOptions::default()).expect("open"),
        );
        backend
            .transaction(&mut |c| {
                c.exec("CREATE TABLE t (x INTEGER)", &[])?;
                c.exec("INSERT INTO t VALUES (1)", &[]).map(drop)
            })
            .expect("create");
        let version = |b: &SqliteBackend| {
            let mut v = 0;
            b.read_short(&mut |c| {
                v = c.query("PRAGMA data_version", &[])?[0][0].int()?;
                Ok(())
            })
            .expect("short read");
            v
        };
        let before = version(&backend);
        backend
            .transaction(&mut |c| c.exec("UPDATE t SET x = 2", &[]).map(drop))
            .expect("update");
        assert_eq!(
            version(&backend),
            before,
            "the short read was not on the writer"
        );

        // A write held open on another thread: the short read goes to a reader at once.
        let (held, hold) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let writer = {
            let backend = backend.clone();
            let (held, hold) = (held.0, hold.1);
            std::thread::spawn(move || {
                backend.transaction(&mut |c| {
                    c.exec("UPDATE t SET x = 3", &[])?;
                    held.send(()).ok();
                    hold.recv().ok();
                    Ok(())
                })
            })
        };
        held.1.recv().expect("the write is open");
        let (done, seen) = std::sync::mpsc::channel();
        let reader = {
            let backend = backend.clone();
            std::thread::spawn(move || {
                let mut x = 0;
                let r = backend.read_short(&mut |c| {
                    x = value(c);
                    Ok(())
                });
                done.send((r.is_ok(), x)).ok();
            })
        };
        // A liveness guard, not a timing: a read that waited for the writer never answers.
        let answer = seen.recv_timeout(std::time::Duration::from_secs(60));
        hold.0.send(()).expect("release the write");
        writer.join().expect("writer").expect("write");
        reader.join().expect("reader");
        assert_eq!(
            answer.expect("the short read waited for the open write"),
            (true, 2)
        );
        drop(backend);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A large transaction makes writes slow from before it takes the writer until it lets
    /// go, also when it panics; a small one does not, unless it holds the writer for long.
    #[test]
    fn writes_are_not_quick_while_a_large_or_long_one_runs() {
        let dir = fresh_dir("quick");
        let backend = std::sync::Arc::new(
            SqliteBackend::open(
                &dir.join("db.sqlite"),
                SqliteOptions {
                    synchronous_full: false,
                },
            )
            .expect("open"),
        );
        assert!(backend.writes_are_quick());
        backend
            .transaction(&mut |_| {
                // Not `writes_are_quick`: that also asks how long the writer has been held,
                // which a loaded machine can stretch past the threshold.
                assert_eq!(
                    backend.large.load(Ordering::Acquire),
                    0,
                    "a small write is not a large one"
                );
                Ok(())
            })
            .expect("small");
        let (inside, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let holder = {
            let (backend, inside, release) = (backend.clone(), inside.0, release.1);
            std::thread::spawn(move || {
                backend.large_transaction(&mut |_| {
                    let _ = inside.send(());
                    let _ = release.recv();
                    Ok(())
                })
            })
        };
        inside.1.recv().expect("the large transaction began");
        assert!(
            !backend.writes_are_quick(),
            "a large transaction holds the writer"
        );
        release.0.send(()).expect("release");
        holder.join().expect("thread").expect("large");
        assert!(backend.writes_are_quick(), "it let go");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            backend.large_transaction(&mut |_| panic!("a bug in a large transaction"))
        }));
        assert!(panicked.is_err());
        assert!(backend.writes_are_quick(), "a panic let go too");
        backend
            .transaction(&mut |_| {
                std::thread::sleep(QUICK_HOLD * 2);
                assert!(
                    !backend.writes_are_quick(),
                    "a small write that has held the writer for long"
                );
                Ok(())
            })
            .expect("long");
        assert!(backend.writes_are_quick(), "it let go");
        drop(backend);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A large transaction gets the large page cache, and the writer goes back to the small
    /// one after it, also when it fails.
    #[test]
    fn a_large_transaction_has_a_larger_cache_for_its_duration() {
        let dir = fresh_dir("large-tx");
        let backend =
            SqliteBackend::open(&dir.join("db.sqlite"), SqliteOptions::default()).expect("open");
        let cache = |c: &mut dyn Conn| -> Result<i64, StoreError> {
            c.query("PRAGMA cache_size", &[])?[0][0].int()
        };
        let mut seen = Vec::new();
        backend
            .large_transaction(&mut |c| {
                seen.push(cache(c)?);
                Ok(())
            })
            .expect("large");
        let failed = backend.large_transaction(&mut |c| {
            seen.push(cache(c)?);
            Err(StoreError::Corrupt("on purpose".into()))
        });
        assert!(failed.is_err());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            backend.large_transaction(&mut |c| {
                seen.push(cache(c)?);
                panic!("a bug in a large transaction")
            })
        }));
        assert!(panicked.is_err());
        backend
            .transaction(&mut |c| {
                seen.push(cache(c)?);
                Ok(())
            })
            .expect("small");
        assert_eq!(
            seen,
            [
                -LARGE_CACHE_KIB,
                -LARGE_CACHE_KIB,
                -LARGE_CACHE_KIB,
                -WRITER_CACHE_KIB
            ],
            "the small cache again after a failure and after a panic"
        );
        drop(backend);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A cached statement runs as prepared: looking a customer up by key in a table without
    /// rowid does not parse and plan the statement again at every use.
    #[test]
    fn cached_statements_are_not_prepared_again() {
        let dir = fresh_dir("qpsg");
        std::fs::create_dir_all(&dir).expect("dir");
        let conn = open_connection(&dir.join("db.sqlite")).expect("open");
        conn.execute_batch(
            "CREATE TABLE t (profile_id TEXT NOT NULL, n INTEGER NOT NULL, v TEXT NOT NULL, \
             PRIMARY KEY (profile_id, n)) WITHOUT ROWID; \
             INSERT INTO t VALUES ('a', 1, 'x'), ('a', 2, 'y'), ('b', 1, 'z');",
        )
        .expect("create");
        let sql = "SELECT v FROM t WHERE profile_id = ?1 ORDER BY n DESC LIMIT 1";
        let mut seen = Vec::new();
        for p in ["a", "b", "a", "b"] {
            let mut stmt = conn.prepare_cached(sql).expect("prepare");
            seen.push(stmt.query_row([p], |r| r.get::<_, String>(0)).expect("row"));
        }
        assert_eq!(seen, ["y", "z", "y", "z"]);
        let stmt = conn.prepare_cached(sql).expect("prepare");
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "the cached statement was parsed and planned again"
        );
        drop(stmt);
        drop(conn);
        let _ = std::fs::remove_dir_all(dir);
    }
}
