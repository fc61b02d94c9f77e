//! What placing one customer needs — counters, current stage, purchase days, counted events —
//! read once and then kept in step in memory: for the rest of an ingest transaction, and on
//! SQLite across transactions (see `ingest_cache`), so a returning customer's stage is decided
//! without reading the store.

use std::collections::BTreeMap;

use consentric_lifecycle::{Facts, Placement};
use consentric_model::{ProfileId, Stage};
use consentric_store::{ProfileCounters, PurchaseDay, StageFacts, StoreError, WriteTx};

use super::scoring::summary_of_days;
use super::{Lifecycle, Scorer, DAY_MS};

/// One customer's facts as the store holds them (after this transaction's writes so far).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CustomerFacts {
    first_seen: i64,
    last_seen: i64,
    orders: u64,
    revenue: f64,
    stage: Option<(Stage, i64)>,
    /// Number of the latest transition (0 before the first).
    transitions: i64,
    /// Purchase days in day order; `None` until something needs them.
    days: Option<Vec<PurchaseDay>>,
    /// Counts of rule-named events.
    counts: BTreeMap<String, u64>,
}

impl CustomerFacts {
    /// Reads `profile`'s facts; `None` if it does not exist.
    pub fn read(
        tx: &mut WriteTx<'_>,
        life: &Lifecycle,
        profile: &ProfileId,
    ) -> Result<Option<CustomerFacts>, StoreError> {
        let Some(f) = tx.stage_facts(profile)? else {
            return Ok(None);
        };
        Self::from_stored(tx, life, profile, f).map(Some)
    }

    /// The facts of `profile` from its stored stage facts (read with others), with its counted
    /// events read where rules count any.
    pub fn from_stored(
        tx: &mut WriteTx<'_>,
        life: &Lifecycle,
        profile: &ProfileId,
        f: StageFacts,
    ) -> Result<CustomerFacts, StoreError> {
        let counts = if life.counted.is_empty() || !f.has_counts {
            BTreeMap::new()
        } else {
            tx.event_counts(profile)?
        };
        Ok(CustomerFacts {
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            orders: f.orders,
            revenue: f.revenue,
            transitions: f.stage.as_ref().map_or(0, |s| s.n),
            stage: f.stage.map(|s| (s.stage, s.since)),
            days: None,
            counts,
        })
    }

    /// The facts of a profile just created at `at` (as `WriteTx::create_profile` stores it).
    pub fn new_profile(at: i64) -> CustomerFacts {
        CustomerFacts {
            first_seen: at,
            last_seen: at,
            orders: 0,
            revenue: 0.0,
            stage: None,
            transitions: 0,
            days: Some(Vec::new()),
            counts: BTreeMap::new(),
        }
    }

    /// Takes in counters just added to the store.
    pub fn add_counters(&mut self, d: &ProfileCounters) {
        self.first_seen = self.first_seen.min(d.first_seen);
        self.last_seen = self.last_seen.max(d.last_seen);
        self.orders += d.order_count.max(0) as u64;
        self.revenue += d.revenue;
    }

    /// Takes in an order amount just added to the store.
    pub fn add_purchase(&mut self, day: i64, amount: f64) {
        if let Some(days) = &mut self.days {
            match days.binary_search_by_key(&day, |d| d.day) {
                Ok(i) => days[i].amount += amount,
                Err(i) => days.insert(i, PurchaseDay { day, amount }),
            }
        }
    }

    /// Takes in counted events just added to the store.
    pub fn add_count(&mut self, event: &str, n: u64) {
        *self.counts.entry(event.to_owned()).or_default() += n;
    }

    /// Loads purchase days if the decision will look at them.
    fn ensure_days(
        &mut self,
        tx: &mut WriteTx<'_>,
        profile: &ProfileId,
        needed: bool,
    ) -> Result<(), StoreError> {
        if needed && self.days.is_none() {
            self.days = Some(tx.purchase_days(profile)?);
        }
        Ok(())
    }

    /// Where the rules place the customer as of `now` (their latest event when `None`), if
    /// that is a change: (stage left, placement, moment).
    fn decide(
        &self,
        life: &Lifecycle,
        scorer: Option<&Scorer>,
        now: Option<i64>,
    ) -> Option<(Option<Stage>, Placement, i64)> {
        let now = now.unwrap_or(self.last_seen);
        let days = self.days.as_deref().unwrap_or_default();
        let summary = scorer.and_then(|_| summary_of_days(days, now));
        let (p_alive, clv) = match (scorer, summary) {
            (Some(s), Some(summary)) => (
                Some(consentric_lifecycle::PurchaseModel::p_alive(
                    &s.bg, &summary,
                )),
                life.rules.needs_clv().then(|| s.clv_of(&summary)).flatten(),
            ),
            _ => (None, None),
        };
        let facts = Facts {
            now,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            orders: self.orders,
            revenue: self.revenue,
            first_order: days.first().map(|d| d.day * DAY_MS),
            last_order: days.last().map(|d| d.day * DAY_MS),
            events: self.counts.clone(),
            p_alive,
            clv,
            current: self.stage,
        };
        let placed = life.rules.place(&facts);
        let current = self.stage.map(|(s, _)| s);
        (current != Some(placed.stage)).then_some((current, placed, now))
    }

    /// Decides and, on a change, records the transition (here and in the store). Returns
    /// whether the stage changed.
    pub fn place(
        &mut self,
        tx: &mut WriteTx<'_>,
        life: &Lifecycle,
        scorer: Option<&Scorer>,
        profile: &ProfileId,
        now: Option<i64>,
    ) -> Result<bool, StoreError> {
        // Scores only where the rules look at them; purchase days only where they are used.
        let scorer = scorer.filter(|_| life.rules.needs_scores());
        self.ensure_days(
            tx,
            profile,
            scorer.is_some() || life.rules.uses_order_days(),
        )?;
        let Some((from, placed, at)) = self.decide(life, scorer, now) else {
            return Ok(false);
        };
        tx.set_stage(
            profile,
            self.transitions + 1,
            from,
            placed.stage,
            at,
            &placed.rule,
        )?;
        self.transitions += 1;
        self.stage = Some((placed.stage, at));
        Ok(true)
    }
}
