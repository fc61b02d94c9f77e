//! Durable commits without holding the writer during the disk flush.
//!
//! With `synchronous = FULL`, SQLite flushes the WAL inside `COMMIT`, while the one writer
//! connection is held: the next transaction waits for the disk even though its frames would
//! go after the flushed ones anyway. Instead the writer commits with `synchronous = NORMAL`
//! (frames written, not flushed) and lets go; the caller then waits here until a flush of the
//! WAL that began after its commit has finished. Concurrent callers share one flush, and the
//! next transaction is written while the disk works.
//!
//! What is promised is unchanged: a caller is answered only once its commit is on stable
//! storage, and since the WAL is replayed as a prefix (every frame's checksum chains to the
//! one before), a durable commit implies that every earlier one is durable too. What is new
//! is a window of one flush in which other connections can read a commit that a power cut
//! would still undo; its own caller has not been answered yet, so nothing acknowledged is lost.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::StoreError;

/// Counts the writer's commits and makes them durable on request.
pub(crate) struct WalSync {
    wal: PathBuf,
    dir: PathBuf,
    /// Commits whose frames are written to the WAL, counted under the writer lock.
    committed: AtomicU64,
    /// Every commit numbered below this is on stable storage.
    durable: AtomicU64,
    /// Held while flushing, so waiters share a flush; `true` once the directory entry of the
    /// WAL file has been flushed (SQLite does that itself only at a checkpoint under `NORMAL`).
    flushing: Mutex<bool>,
}

impl WalSync {
    /// For the database file at `db`.
    pub(crate) fn new(db: &Path) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let dir = match db.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        WalSync {
            wal: PathBuf::from(wal),
            dir,
            committed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            flushing: Mutex::new(false),
        }
    }

    /// Numbers a commit that has just returned; call under the writer lock.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::AcqRel)
    }

    /// Returns once commit `n` is on stable storage: at once if a flush since covered it,
    /// otherwise after flushing the WAL (and, the first time, its directory entry).
    ///
    /// # Errors
    /// If the WAL cannot be opened or flushed: then the commit may not be durable.
    pub(crate) fn wait_durable(&self, n: u64) -> Result<(), StoreError> {
        if self.durable.load(Ordering::Acquire) > n {
            return Ok(());
        }
        let mut dir_synced = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        if self.durable.load(Ordering::Acquire) > n {
            return Ok(()); // flushed by whoever held the lock before us
        }
        // Read before the flush: every commit counted so far has its frames in the file, so
        // the flush covers them, and perhaps later ones that it is not credited with.
        let upto = self.committed.load(Ordering::Acquire);
        // Opened for each flush rather than kept: a handle kept open could outlive the file
        // SQLite holds (it deletes the WAL when its last connection closes).
        sync_path(&self.wal, false)?;
        // A new file's name is durable only once its directory is flushed (on Unix; Windows
        // neither needs nor allows it).
        if !*dir_synced && cfg!(unix) {
            sync_path(&self.dir, true)?;
            *dir_synced = true;
        }
        self.durable.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Commits known durable (all numbered below it).
    #[cfg(test)]
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}

fn sync_path(path: &Path, whole: bool) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    if whole {
        file.sync_all().map_err(io)
    } else {
        file.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit is credited only to a flush that began after it, waiters a flush covered
    /// return without another, and a WAL that cannot be flushed is an error, never a claim.
    #[test]
    fn a_commit_is_durable_only_after_a_flush_that_began_after_it() {
        let dir = std::env::temp_dir().join(format!(
            "consentric-walsync-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = dir.join("db.sqlite");
        std::fs::write(dir.join("db.sqlite-wal"), b"frames").expect("wal");
        let sync = WalSync::new(&db);
        assert_eq!(sync.durable(), 0);
        let (a, b) = (sync.committed(), sync.committed());
        sync.wait_durable(a).expect("flush");
        assert_eq!(
            sync.durable(),
            2,
            "the flush covers every commit counted before it"
        );
        sync.wait_durable(b).expect("covered");
        let c = sync.committed();
        assert_eq!(
            sync.durable(),
            2,
            "a later commit is not durable until flushed"
        );
        std::fs::remove_file(dir.join("db.sqlite-wal")).expect("remove");
        assert!(
            sync.wait_durable(c).is_err(),
            "a WAL that is gone cannot be flushed"
        );
        assert_eq!(sync.durable(), 2);
        let _ = std::fs::remove_dir_all(dir);
    }
}
