//! Bulk reads for aggregates over many customers: one scan per table, each row matched to the
//! grant that opens it, the answer aligned with the grants (`out[i]` is `grants[i]`'s). Rows of
//! customers without a grant are skipped unread. The caller releases only aggregates, with
//! noise.

use std::collections::HashMap;

use consentric_policy::Grant;

use crate::backend::Cell;
use crate::error::StoreError;
use crate::records::ProfileCounters;
use crate::store::Store;
use crate::tx::{next, take};

const ALL_COUNTERS: &str =
    "SELECT profile_id, first_seen, last_seen, event_count, order_count, revenue FROM profiles";
/// Every transition, oldest first per customer: the last is the current stage.
const ALL_TRANSITIONS: &str =
    "SELECT profile_id, to_stage FROM lifecycle_transitions ORDER BY profile_id, n";
const ALL_PURCHASE_DAYS: &str =
    "SELECT profile_id, day FROM lifecycle_purchases ORDER BY profile_id, day";
/// Which events each customer sent (names are kept in the clear; payloads are sealed).
const ALL_EVENT_NAMES: &str = "SELECT profile_id, event_name, COUNT(*) FROM events WHERE event_name IS NOT NULL GROUP BY profile_id, event_name";

impl Store {
    /// Runs `sql` (whose first column is the profile id) and gives each row of a granted
    /// customer to `row` with that grant's index.
    fn aligned<T: Default + Clone>(
        &self,
        grants: &[Grant],
        sql: &'static str,
        columns: usize,
        mut row: impl FnMut(&mut T, &mut std::vec::IntoIter<Cell>) -> Result<(), StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let index: HashMap<&str, usize> = grants
            .iter()
            .enumerate()
            .map(|(i, g)| (g.subject(), i))
            .collect();
        let mut out = vec![T::default(); grants.len()];
        self.read(|c| {
            for r in c.query(sql, &[])? {
                let mut it = take(r, columns)?;
                let id = next(&mut it)?.text()?;
                if let Some(&i) = index.get(id.as_str()) {
                    row(&mut out[i], &mut it)?;
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Each granted customer's counters.
    ///
    /// # Errors
    /// Database faults.
    pub fn counters_for(
        &self,
        grants: &[Grant],
    ) -> Result<Vec<Option<ProfileCounters>>, StoreError> {
        self.aligned(grants, ALL_COUNTERS, 6, |out, it| {
            *out = Some(ProfileCounters {
                first_seen: next(it)?.int()?,
                last_seen: next(it)?.int()?,
                event_count: next(it)?.int()?,
                order_count: next(it)?.int()?,
                revenue: next(it)?.real()?,
            });
            Ok(())
        })
    }

    /// Every stage each granted customer has entered, oldest first (the last is current).
    ///
    /// # Errors
    /// Database faults.
    pub fn stage_histories_for(&self, grants: &[Grant]) -> Result<Vec<Vec<String>>, StoreError> {
        self.aligned(grants, ALL_TRANSITIONS, 2, |out: &mut Vec<String>, it| {
            out.push(next(it)?.text()?);
            Ok(())
        })
    }

    /// The days (since the epoch) on which each granted customer purchased, ascending.
    ///
    /// # Errors
    /// Database faults.
    pub fn purchase_days_for(&self, grants: &[Grant]) -> Result<Vec<Vec<i64>>, StoreError> {
        self.aligned(grants, ALL_PURCHASE_DAYS, 2, |out: &mut Vec<i64>, it| {
            out.push(next(it)?.int()?);
            Ok(())
        })
    }

    /// How many of each named event (`track` calls) each granted customer sent.
    ///
    /// # Errors
    /// Database faults.
    pub fn event_counts_for(
        &self,
        grants: &[Grant],
    ) -> Result<Vec<Vec<(String, i64)>>, StoreError> {
        self.aligned(
            grants,
            ALL_EVENT_NAMES,
            3,
            |out: &mut Vec<(String, i64)>, it| {
                let event = next(it)?.text()?;
                out.push((event, next(it)?.int()?));
                Ok(())
            },
        )
    }
}
