//! How long something has been running, readable from any thread without a lock, so that a
//! caller can ask whether the writer or a flush has been busy for longer than a quick one is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When the one thing it times began, if it is running.
pub(crate) struct Running {
    epoch: Instant,
    /// Nanoseconds from `epoch` to when it began, plus one; 0 when it is not running.
    since: AtomicU64,
}

impl Running {
    pub(crate) fn new() -> Self {
        Running {
            epoch: Instant::now(),
            since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        nanos.saturating_add(1)
    }

    /// It begins; ends when the guard is dropped (also by a panic).
    pub(crate) fn begin(&self) -> RunningGuard<'_> {
        self.since.store(self.now(), Ordering::Release);
        RunningGuard(self)
    }

    /// Whether it is running and began more than `limit` ago.
    pub(crate) fn longer_than(&self, limit: Duration) -> bool {
        match self.since.load(Ordering::Acquire) {
            0 => false,
            since => {
                let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
                self.now().saturating_sub(since) > limit
            }
        }
    }
}

/// Ends what [`Running::begin`] began.
pub(crate) struct RunningGuard<'a>(&'a Running);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.since.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_runs_for_longer_than_the_limit_is_long() {
        let clock = Running::new();
        let limit = Duration::from_micros(200);
        assert!(!clock.longer_than(limit), "nothing is running");
        let guard = clock.begin();
        assert!(!clock.longer_than(Duration::from_secs(60)));
        std::thread::sleep(limit * 2);
        assert!(clock.longer_than(limit));
        drop(guard);
        assert!(!clock.longer_than(limit), "it ended");
        let ended_by_a_panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = clock.begin();
            std::thread::sleep(limit * 2);
            panic!("while running")
        }));
        assert!(ended_by_a_panic.is_err());
        assert!(!clock.longer_than(limit), "a panic ended it too");
    }
}
