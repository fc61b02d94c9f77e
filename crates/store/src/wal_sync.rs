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

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::running::Running;

/// Counts the writer's commits and makes them durable on request.
pub(crate) struct WalSync {
    wal: PathBuf,
    dir: PathBuf,
    /// Commits whose frames are written to the WAL, counted under the writer lock.
    committed: AtomicU64,
    /// Every commit numbered below this is on stable storage.
    durable: AtomicU64,
    /// Held while flushing, so that waiters share a flush.
    flusher: Mutex<Flusher>,
    /// How long flushes take lately.
    clock: FlushClock,
}

/// What flushing keeps between flushes.
#[derive(Default)]
struct Flusher {
    /// The WAL, held open: Linux reports a failed write-back once per open file, so a handle
    /// kept since before the failure sees it even if SQLite's own flush (at a checkpoint) saw
    /// it first. Opened again if the file at the path is no longer this one.
    file: Option<File>,
    /// The WAL's directory entry has been flushed.
    dir_synced: bool,
    /// Why a flush failed. A failed flush may have lost frames that are now marked clean and
    /// will not be written again, so no later flush can vouch for what follows them: every
    /// later wait fails until the store is opened again (as PostgreSQL does).
    failed: Option<String>,
}

impl WalSync {
    /// For the database file at `db`, as SQLite names it (symbolic links resolved).
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
            flusher: Mutex::new(Flusher::default()),
            clock: FlushClock::new(),
        }
    }

    /// Whether waiting for a flush now should take no longer than [`QUICK_FLUSH`]: recent
    /// flushes were that quick and none has been running for longer.
    pub(crate) fn flushes_are_quick(&self) -> bool {
        self.clock.is_quick()
    }

    /// Numbers a commit that has just returned; call under the writer lock.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::AcqRel)
    }

    /// Returns once commit `n` is on stable storage: at once if a flush since covered it,
    /// otherwise after flushing the WAL (and, the first time, its directory entry).
    ///
    /// # Errors
    /// If the WAL cannot be opened or flushed, now or at any earlier flush: then the commit
    /// may not be durable.
    pub(crate) fn wait_durable(&self, n: u64) -> Result<(), StoreError> {
        if self.durable.load(Ordering::Acquire) > n {
            return Ok(());
        }
        let mut f = self.flusher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &f.failed {
            return Err(self.io(std::io::Error::other(format!(
                "an earlier flush failed ({why}); reopen the store"
            ))));
        }
        if self.durable.load(Ordering::Acquire) > n {
            return Ok(()); // flushed by whoever held the lock before us
        }
        // Read before the flush: every commit counted so far has its frames in the file, so
        // the flush covers them, and perhaps later ones that it is not credited with.
        let upto = self.committed.load(Ordering::Acquire);
        let flushed = self.clock.time(|| self.flush(&mut f));
        match flushed {
            Ok(()) => {
                self.durable.fetch_max(upto, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                f.failed = Some(e.to_string());
                Err(self.io(e))
            }
        }
    }

    fn flush(&self, f: &mut Flusher) -> std::io::Result<()> {
        let current = std::fs::metadata(&self.wal)?;
        let file = match f.file.take() {
            Some(held) if same_file(&held, &current)? => held,
            _ => OpenOptions::new().write(true).open(&self.wal)?,
        };
        let file = f.file.insert(file);
        file.sync_data()?;
        // A new file's name is durable once its directory is flushed (on Unix; Windows
        // neither needs nor allows it). SQLite does this too when it writes a new WAL's
        // header; once more costs nothing.
        if !f.dir_synced && cfg!(unix) {
            File::open(&self.dir)?.sync_all()?;
            f.dir_synced = true;
        }
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.wal.display().to_string(),
            source,
        }
    }

    /// Commits known durable (all numbered below it).
    #[cfg(test)]
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}

/// Longest flush that still counts as quick: well under what a decision's own work takes
/// (about 0.1–0.3 ms), so a caller serving others can wait for it on its own thread. A tmpfs
/// or a disk with a power-protected cache flushes in microseconds; this machine's virtual
/// disk takes about 150 µs, a spinning disk milliseconds.
pub(crate) const QUICK_FLUSH: Duration = Duration::from_micros(100);

/// How long flushes take: a moving average of the last few, and the one running now.
struct FlushClock {
    running: Running,
    /// Moving average of recent flushes, in nanoseconds (each new one weighs 1/8);
    /// `UNMEASURED` until the first has ended.
    recent: AtomicU64,
}

const UNMEASURED: u64 = u64::MAX;

impl FlushClock {
    fn new() -> Self {
        FlushClock {
            running: Running::new(),
            recent: AtomicU64::new(UNMEASURED),
        }
    }

    fn nanos(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Times `flush`; call under the flusher lock.
    fn time<T>(&self, flush: impl FnOnce() -> T) -> T {
        let began = Instant::now();
        let running = self.running.begin();
        let out = flush();
        // Recorded before the flush stops counting as running, so that no one sees neither.
        self.record(began.elapsed());
        drop(running);
        out
    }

    fn record(&self, took: Duration) {
        let took = Self::nanos(took);
        let new = match self.recent.load(Ordering::Acquire) {
            UNMEASURED => took,
            old => (old.saturating_mul(7) / 8).saturating_add(took / 8),
        };
        self.recent.store(new, Ordering::Release);
    }

    /// Not until a flush has been measured: a first decision on a slow disk would otherwise
    /// be taken for quick.
    fn is_quick(&self) -> bool {
        self.recent.load(Ordering::Acquire) <= Self::nanos(QUICK_FLUSH)
            && !self.running.longer_than(QUICK_FLUSH)
    }
}

/// Whether `held` is still the file now at the path (`current`); on other systems than Unix,
/// never assumed.
fn same_file(held: &File, current: &std::fs::Metadata) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = held.metadata()?;
        Ok(m.dev() == current.dev() && m.ino() == current.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (held, current);
        Ok(false)
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

    /// Flushes are quick only once one has been measured, a slow flush makes them slow
    /// until quick ones have outweighed it, and a flush that has been running too long makes
    /// them slow at once, before it ends.
    #[test]
    fn flushes_are_quick_only_while_recent_ones_were_and_none_is_stuck() {
        let clock = FlushClock::new();
        assert!(!clock.is_quick(), "nothing measured yet");
        clock.record(Duration::from_micros(5));
        assert!(clock.is_quick(), "the first flush sets the average");
        clock.record(Duration::from_millis(5));
        assert!(!clock.is_quick(), "a 5 ms flush weighs 1/8: 0.6 ms");
        let mut quick_ones = 0;
        while !clock.is_quick() {
            clock.record(Duration::from_micros(5));
            quick_ones += 1;
            assert!(
                quick_ones < 100,
                "quick flushes never outweighed a slow one"
            );
        }
        assert!(quick_ones > 1, "one quick flush outweighed a slow one");
        let stuck = clock.time(|| {
            let quick_at_first = clock.is_quick();
            std::thread::sleep(QUICK_FLUSH * 3);
            (quick_at_first, clock.is_quick())
        });
        assert_eq!(
            stuck,
            (true, false),
            "a flush that has only just begun is not slow yet; one running for longer is"
        );
        assert!(
            !clock.is_quick(),
            "its time counts once it has ended ({} ns)",
            clock.recent.load(Ordering::Acquire)
        );
    }
}
