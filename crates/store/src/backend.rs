use crate::changes::Change;
use crate::error::StoreError;

/// Which database is behind a [`crate::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Embedded, one file in the data directory.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A statement parameter. Typed so that PostgreSQL, which checks parameter types, and SQLite,
/// which does not, receive the same values from the same code.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// `TEXT`.
    Text(&'a str),
    /// `TEXT` or NULL.
    OptText(Option<&'a str>),
    /// `BIGINT` / `INTEGER`.
    Int(i64),
    /// `BIGINT` or NULL.
    OptInt(Option<i64>),
    /// `DOUBLE PRECISION` / `REAL`.
    Real(f64),
    /// `TEXT[]`: one column of a set-based write (PostgreSQL only, through `unnest`).
    Texts(&'a [&'a str]),
    /// `TEXT[]` with NULLs (PostgreSQL only).
    OptTexts(&'a [Option<&'a str>]),
    /// `BIGINT[]` (PostgreSQL only).
    Ints(&'a [i64]),
    /// `DOUBLE PRECISION[]` (PostgreSQL only).
    Reals(&'a [f64]),
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer column.
    Int(i64),
    /// A floating-point column.
    Real(f64),
    /// A text column.
    Text(String),
}

/// One value of a row being scanned, borrowed from the database's buffer: scans over many
/// rows copy only what they keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellRef<'a> {
    /// SQL NULL.
    Null,
    /// An integer column.
    Int(i64),
    /// A floating-point column.
    Real(f64),
    /// A text column.
    Text(&'a str),
}

impl<'a> CellRef<'a> {
    /// The integer, or a [`StoreError::Corrupt`].
    pub fn int(self) -> Result<i64, StoreError> {
        match self {
            CellRef::Int(i) => Ok(i),
            other => Err(StoreError::Corrupt(format!(
                "expected integer, got {other:?}"
            ))),
        }
    }

    /// The number as `f64` (integers widen).
    pub fn real(self) -> Result<f64, StoreError> {
        match self {
            CellRef::Real(f) => Ok(f),
            CellRef::Int(i) => Ok(i as f64),
            other => Err(StoreError::Corrupt(format!(
                "expected number, got {other:?}"
            ))),
        }
    }

    /// The text, or a [`StoreError::Corrupt`].
    pub fn text(self) -> Result<&'a str, StoreError> {
        match self {
            CellRef::Text(t) => Ok(t),
            other => Err(StoreError::Corrupt(format!("expected text, got {other:?}"))),
        }
    }
}

impl Cell {
    /// Borrowed.
    pub fn as_ref(&self) -> CellRef<'_> {
        match self {
            Cell::Null => CellRef::Null,
            Cell::Int(i) => CellRef::Int(*i),
            Cell::Real(f) => CellRef::Real(*f),
            Cell::Text(t) => CellRef::Text(t),
        }
    }

    /// The integer, or a [`StoreError::Corrupt`].
    pub fn int(&self) -> Result<i64, StoreError> {
        match self {
            Cell::Int(i) => Ok(*i),
            other => Err(StoreError::Corrupt(format!(
                "expected integer, got {other:?}"
            ))),
        }
    }

    /// The number as `f64` (integers widen).
    pub fn real(&self) -> Result<f64, StoreError> {
        match self {
            Cell::Real(f) => Ok(*f),
            Cell::Int(i) => Ok(*i as f64),
            other => Err(StoreError::Corrupt(format!(
                "expected number, got {other:?}"
            ))),
        }
    }

    /// The text, or a [`StoreError::Corrupt`].
    pub fn text(self) -> Result<String, StoreError> {
        match self {
            Cell::Text(s) => Ok(s),
            other => Err(StoreError::Corrupt(format!("expected text, got {other:?}"))),
        }
    }

    /// The text, or `None` for NULL.
    pub fn opt_text(self) -> Result<Option<String>, StoreError> {
        match self {
            Cell::Null => Ok(None),
            other => other.text().map(Some),
        }
    }

    /// The integer, or `None` for NULL.
    pub fn opt_int(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Cell::Null => Ok(None),
            other => other.int().map(Some),
        }
    }
}

/// Identifies what a write transaction saw of the database: cross-transaction caches kept by
/// the single writer are valid only while nothing else wrote in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeToken {
    /// SQLite's `data_version`: changes when another connection (or process) commits.
    pub data_version: i64,
    /// This store's write transactions, counted in the order they took the writer lock.
    pub seq: u64,
}

impl ChangeToken {
    /// Whether this transaction came straight after `prev` with no other commit, in this
    /// process or another, in between.
    pub fn follows(&self, prev: &ChangeToken) -> bool {
        self.data_version == prev.data_version && self.seq == prev.seq.wrapping_add(1)
    }
}

/// Refuses a statement whose text parameters hold U+0000, on both stores alike: PostgreSQL
/// cannot store it, and SQLite storing it would make the stores differ.
pub(crate) fn refuse_nul(params: &[Param<'_>]) -> Result<(), StoreError> {
    let nul = params.iter().any(|p| match p {
        Param::Text(s) | Param::OptText(Some(s)) => s.contains('\0'),
        Param::Texts(all) => all.iter().any(|s| s.contains('\0')),
        Param::OptTexts(all) => all.iter().flatten().any(|s| s.contains('\0')),
        _ => false,
    });
    if nul {
        Err(StoreError::NulInText)
    } else {
        Ok(())
    }
}

/// A connection, inside a transaction or not. Statements use `?N` placeholders; backends that
/// spell them otherwise translate.
pub trait Conn {
    /// Which database this connection talks to (for the few statements that differ).
    fn kind(&self) -> BackendKind;
    /// Runs a statement, returning the number of rows it changed.
    fn exec(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StoreError>;
    /// Runs several `;`-separated statements without parameters (schema migrations).
    fn exec_batch(&mut self, sql: &'static str) -> Result<(), StoreError>;
    /// Runs a query, returning all rows.
    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<Vec<Cell>>, StoreError>;
    /// Runs a query, giving each row to `row` as it is read (exactly `width` columns).
    fn scan(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        row: &mut dyn FnMut(&[CellRef<'_>]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for r in self.query(sql, params)? {
            let cells: Vec<CellRef<'_>> = r.iter().map(Cell::as_ref).collect();
            row(&cells)?;
        }
        Ok(())
    }
    /// Inside a write transaction of a single-writer database, a token that tells whether
    /// anything else wrote since an earlier transaction; `None` where that cannot be known
    /// (PostgreSQL: other instances may write at any time).
    fn change_token(&mut self) -> Result<Option<ChangeToken>, StoreError> {
        Ok(None)
    }
}

/// What a database must provide. Object-safe, so the binary picks SQLite or PostgreSQL at run
/// time behind one `Box<dyn Backend>`.
pub trait Backend: Send + Sync {
    /// Which database this is.
    fn kind(&self) -> BackendKind;
    /// Runs `work` in one transaction: committed (durably) if it returns `Ok`, rolled back
    /// otherwise. Writers are serialised where the database needs it.
    fn transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// [`Backend::transaction`] for work that rewrites many pages at once (an erasure): the
    /// database may give it more memory than the many small transactions get.
    fn large_transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.transaction(work)
    }
    /// [`Backend::transaction`] (or the large one) that may return once the commit is written
    /// but before it is on stable storage: then it returns the commit's number, which the
    /// caller must pass to [`Backend::flush`] before telling anyone the work is done. Lets a
    /// serialised writer start the next transaction while the disk flushes this one.
    fn transaction_unflushed(
        &self,
        large: bool,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<Option<u64>, StoreError> {
        match large {
            true => self.large_transaction(work)?,
            false => self.transaction(work)?,
        }
        Ok(None)
    }
    /// Returns once commit `n` of [`Backend::transaction_unflushed`] is on stable storage.
    fn flush(&self, n: u64) -> Result<(), StoreError> {
        let _ = n;
        Ok(())
    }
    /// Whether a short write begun now should be committed and durable within a fraction of
    /// a millisecond: no large transaction holds or awaits the writer, no write has held it
    /// for long, and flushes are quick.
    /// A caller that serves others on its thread (an async runtime's worker) may then write
    /// there instead of handing the work to a thread that can wait. `false` when unknown.
    fn writes_are_quick(&self) -> bool {
        false
    }
    /// Runs `work` on a connection for reading; may run concurrently with a writer.
    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// [`Backend::read`] for a few point reads that should be fast (a decision's facts): the
    /// database may run them on a connection whose cache is warm. SQLite discards a reader's
    /// whole page cache when its next read begins after any commit, so there they run on the
    /// writer's connection when no write holds it, and on a reader otherwise.
    fn read_short(
        &self,
        work: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.read(work)
    }
    /// A feed of what other processes on the database announce ([`crate::Change`]); `None`
    /// where no other process writes behind this one's back (SQLite's single file).
    fn listen(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        Ok(None)
    }
    /// Tries to take the cluster's leader lock (see [`crate::Leadership`]); `None` if another
    /// process holds it. A single-process database has no one to lose it to.
    fn try_lead(&self) -> Result<Option<Box<dyn LeaderLock>>, StoreError> {
        Ok(Some(Box::new(AlwaysHeld)))
    }
    /// Applies pending migrations; called once when the store opens.
    fn migrate(&self) -> Result<(), StoreError>;
    /// Moves everything committed into the main database file and empties the write-ahead log,
    /// so deleted rows survive nowhere but as zeroed free pages (SQLite). A no-op where the
    /// server manages its own log.
    fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A connection of its own that hears what other processes announce.
pub trait ChangeFeed: Send {
    /// The next change, waiting at most `wait`: `Ok(None)` when none came. An error means the
    /// connection is gone and announcements may have been missed.
    fn next(&mut self, wait: std::time::Duration) -> Result<Option<Change>, StoreError>;
}

/// Held leadership of the processes on one database (see [`crate::Leadership`]).
pub trait LeaderLock: Send {
    /// Whether the lock is still held (its connection still open).
    fn held(&mut self) -> bool;
}

/// The leader lock of a database only one process serves.
struct AlwaysHeld;

impl LeaderLock for AlwaysHeld {
    fn held(&mut self) -> bool {
        true
    }
}
