//! Bulk reads for aggregates over many customers: one scan per table, each row matched to the
//! grant that opens it, the answer aligned with the grants (`out[i]` is `grants[i]`'s). Rows of
//! customers without a grant are skipped unread. The caller releases only aggregates, with
//! noise.

use std::collections::HashMap;

use consentric_model::Stage;
use consentric_policy::Grant;

use crate::backend::{CellRef, Param};
use crate::error::StoreError;
use crate::records::ProfileCounters;
use crate::store::Store;

const ALL_COUNTERS: &str =
    "SELECT profile_id, first_seen, last_seen, event_count, order_count, revenue FROM profiles";
/// Every transition, oldest first per customer: the last is the current stage.
const ALL_TRANSITIONS: &str =
    "SELECT profile_id, to_stage FROM lifecycle_transitions ORDER BY profile_id, n";
const ALL_PURCHASE_DAYS: &str =
    "SELECT profile_id, day FROM lifecycle_purchases ORDER BY profile_id, day";
/// Which events each customer sent (names are kept in the clear; payloads are sealed).
const ALL_EVENT_NAMES: &str = "SELECT profile_id, event_name, COUNT(*) FROM events WHERE event_name IS NOT NULL GROUP BY profile_id, event_name";

fn first<'a>(cells: &[CellRef<'a>]) -> Result<CellRef<'a>, StoreError> {
    cells
        .first()
        .copied()
        .ok_or_else(|| StoreError::Corrupt("a missing column".into()))
}

/// Where a customer has been in the lifecycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StagePath {
    /// The stage they are in now, if placed.
    pub current: Option<Stage>,
    entered: u16,
}

impl StagePath {
    /// Whether they ever entered `stage`.
    pub fn entered(&self, stage: Stage) -> bool {
        self.entered & (1 << stage_bit(stage)) != 0
    }
}

fn stage_bit(stage: Stage) -> u16 {
    Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0) as u16
}

impl Store {
    /// Runs `sql` (whose first column is the profile id) and gives each row of a granted
    /// customer (its other columns) to `row` with that grant's slot.
    fn aligned<T: Default + Clone>(
        &self,
        grants: &[Grant],
        sql: &'static str,
        mut row: impl FnMut(&mut T, &[CellRef<'_>]) -> Result<(), StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let index: HashMap<&str, usize> = grants
            .iter()
            .enumerate()
            .map(|(i, g)| (g.subject(), i))
            .collect();
        let mut out = vec![T::default(); grants.len()];
        self.read(|c| {
            c.scan(sql, &[], &mut |cells| {
                let (id, rest) = cells
                    .split_first()
                    .ok_or_else(|| StoreError::Corrupt("a scan without columns".into()))?;
                if let Some(&i) = index.get(id.text()?) {
                    row(&mut out[i], rest)?;
                }
                Ok(())
            })
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
        self.aligned(grants, ALL_COUNTERS, |out, c| {
            let [first_seen, last_seen, events, orders, revenue] = c else {
                return Err(StoreError::Corrupt("counters: 5 columns".into()));
            };
            *out = Some(ProfileCounters {
                first_seen: first_seen.int()?,
                last_seen: last_seen.int()?,
                event_count: events.int()?,
                order_count: orders.int()?,
                revenue: revenue.real()?,
            });
            Ok(())
        })
    }

    /// Each granted customer's current stage and every stage they have entered.
    ///
    /// # Errors
    /// Database faults, or a stage this build does not know.
    pub fn stage_paths_for(&self, grants: &[Grant]) -> Result<Vec<StagePath>, StoreError> {
        self.aligned(grants, ALL_TRANSITIONS, |out: &mut StagePath, c| {
            let name = first(c)?.text()?;
            let stage: Stage = name
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("unknown stage {name:?}")))?;
            out.current = Some(stage);
            out.entered |= 1 << stage_bit(stage);
            Ok(())
        })
    }

    /// The days (since the epoch) on which each granted customer purchased, ascending.
    ///
    /// # Errors
    /// Database faults.
    pub fn purchase_days_for(&self, grants: &[Grant]) -> Result<Vec<Vec<i64>>, StoreError> {
        self.aligned(grants, ALL_PURCHASE_DAYS, |out: &mut Vec<i64>, c| {
            out.push(first(c)?.int()?);
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
            |out: &mut Vec<(String, i64)>, c| {
                let [event, n] = c else {
                    return Err(StoreError::Corrupt("event names: 2 columns".into()));
                };
                out.push((event.text()?.to_owned(), n.int()?));
                Ok(())
            },
        )
    }
}

const EVENTS_PER_HOUR: &str = "SELECT received_at / 3600000, COUNT(*) FROM events WHERE received_at >= ?1 GROUP BY received_at / 3600000 ORDER BY 1";
const CONSENT_NOW: &str = "SELECT purpose, decision, COUNT(*) FROM (SELECT purpose, decision, ROW_NUMBER() OVER (PARTITION BY profile_id, purpose ORDER BY seq DESC) AS latest FROM consent_ledger) AS l WHERE latest = 1 GROUP BY purpose, decision ORDER BY purpose, decision";

impl Store {
    /// Events received per hour since `since` (ms): (the hour's start in ms, events).
    ///
    /// # Errors
    /// Database faults.
    pub fn events_per_hour(&self, since: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        self.read(|c| {
            c.query(EVENTS_PER_HOUR, &[Param::Int(since)])?
                .into_iter()
                .map(|r| {
                    let mut c = crate::tx::take(r, 2)?;
                    let hour = crate::tx::next(&mut c)?.int()?;
                    let n = crate::tx::next(&mut c)?.int()?;
                    Ok((hour * 3_600_000, u64::try_from(n).unwrap_or(0)))
                })
                .collect()
        })
    }

    /// Each purpose's customers by their latest recorded decision: (purpose, decision, customers).
    ///
    /// # Errors
    /// Database faults.
    pub fn consent_now(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.read(|c| {
            c.query(CONSENT_NOW, &[])?
                .into_iter()
                .map(|r| {
                    let mut c = crate::tx::take(r, 3)?;
                    let purpose = crate::tx::next(&mut c)?.text()?;
                    let decision = crate::tx::next(&mut c)?.text()?;
                    let n = crate::tx::next(&mut c)?.int()?;
                    Ok((purpose, decision, u64::try_from(n).unwrap_or(0)))
                })
                .collect()
        })
    }
}

const CONSENT_BY_DAY: &str = "SELECT purpose, decided_at / 86400000, decision, COUNT(*) FROM consent_ledger GROUP BY purpose, decided_at / 86400000, decision";

impl Store {
    /// Decisions recorded per purpose, day (days since 1970) and decision.
    ///
    /// # Errors
    /// Database faults.
    pub fn consent_by_day(&self) -> Result<Vec<(String, i64, String, u64)>, StoreError> {
        self.read(|c| {
            c.query(CONSENT_BY_DAY, &[])?
                .into_iter()
                .map(|r| {
                    let mut c = crate::tx::take(r, 4)?;
                    let purpose = crate::tx::next(&mut c)?.text()?;
                    let day = crate::tx::next(&mut c)?.int()?;
                    let decision = crate::tx::next(&mut c)?.text()?;
                    let n = crate::tx::next(&mut c)?.int()?;
                    Ok((purpose, day, decision, u64::try_from(n).unwrap_or(0)))
                })
                .collect()
        })
    }
}
