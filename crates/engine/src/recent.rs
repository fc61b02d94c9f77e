//! A value that is expensive to compute and may be a little old: kept, and computed again once
//! it is older than the caller allows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The latest value computed, and when.
pub(crate) struct Recent<T> {
    slot: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent {
            slot: Mutex::new(None),
        }
    }
}

impl<T> Recent<T> {
    /// The kept value if it is younger than `max_age`, else `compute`'s (then kept). Two
    /// callers that both find it stale may both compute; the later one's is kept.
    pub(crate) fn get_or<E>(
        &self,
        max_age: Duration,
        compute: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Some((at, value)) = &*self.slot.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < max_age {
                return Ok(value.clone());
            }
        }
        let value = Arc::new(compute()?);
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_young_value_is_kept_and_an_old_one_computed_again() {
        let recent = Recent::default();
        let n = recent
            .get_or(Duration::from_secs(60), || Ok::<_, ()>(1))
            .expect("one");
        let kept = recent
            .get_or(Duration::from_secs(60), || Ok::<_, ()>(2))
            .expect("kept");
        assert_eq!((*n, *kept), (1, 1));
        let fresh = recent
            .get_or(Duration::ZERO, || Ok::<_, ()>(3))
            .expect("fresh");
        assert_eq!(*fresh, 3);
        assert!(recent.get_or(Duration::ZERO, || Err(())).is_err());
        assert_eq!(
            *recent
                .get_or(Duration::from_secs(60), || Ok::<_, ()>(4))
                .expect("kept"),
            3
        );
    }
}
