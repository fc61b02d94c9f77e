//! Who has a basis for each purpose, kept until a commit or the clock could change it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use consentric_policy::Grant;

/// The customers the gate lets in for one purpose.
#[derive(Debug)]
pub(crate) struct Population {
    /// One grant per customer with a basis.
    pub grants: Vec<Grant>,
    /// Customers without one.
    pub refused: usize,
    pub(crate) epoch: i64,
    /// The answer holds for every moment in `[from, until)` (milliseconds): no decision about
    /// the purpose (or a restriction) was recorded as taking effect in between.
    pub(crate) from: i64,
    pub(crate) until: i64,
}

/// The last population computed for each purpose.
#[derive(Debug, Default)]
pub(crate) struct PopulationCache(Mutex<HashMap<String, Arc<Population>>>);

impl Population {
    pub(crate) fn holds(&self, epoch: i64, at: i64) -> bool {
        self.epoch == epoch && self.from <= at && at < self.until
    }
}

impl PopulationCache {
    pub(crate) fn get(&self, purpose: &str) -> Option<Arc<Population>> {
        self.0.lock().ok()?.get(purpose).cloned()
    }

    pub(crate) fn put(&self, purpose: &str, population: Arc<Population>) {
        if let Ok(mut cache) = self.0.lock() {
            cache.insert(purpose.to_owned(), population);
        }
    }
}
