//! The exact aggregates a release adds noise to, over the customers the gate lets in for the
//! analytics purpose. Each customer's contribution is bounded here — one value, or at most
//! `rows_per_customer` bins — which is what the noise is calibrated to. Nothing computed here
//! leaves the engine without noise.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use consentric_model::CallType;
use consentric_personalize::segments::Condition;
use consentric_policy::{DataCategory, Grant};
use consentric_store::ProfileCounters;

use super::query::{GroupBy, Measure, Parsed, Query, RESOLUTION};
use crate::error::EngineError;

/// What a query computes before noise.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Exact {
    /// A count or a sum (in hundredths).
    Scalar(i64),
    /// A sum (in hundredths) and a count.
    Mean(i64, i64),
    /// One value per customer (quantiles).
    Values(Vec<i64>),
    /// A count per bin, in the bins' order.
    Bins(Vec<i64>),
}

/// The grants that open category `c`: all of them, borrowed, when all do (one purpose's
/// grants permit the same categories), so a bulk read copies nothing.
fn opening<'a>(grants: &'a [Grant], c: &str) -> Cow<'a, [Grant]> {
    let Ok(c) = DataCategory::parse(c) else {
        return Cow::Owned(Vec::new());
    };
    if grants.iter().all(|g| g.permits(&c)) {
        Cow::Borrowed(grants)
    } else {
        Cow::Owned(grants.iter().filter(|g| g.permits(&c)).cloned().collect())
    }
}

fn needs(m: Measure) -> &'static str {
    match m {
        Measure::Orders => "user.behavior.purchase",
        Measure::Revenue => "user.financial.transaction",
        Measure::Events => "user.behavior",
    }
}

fn measure(c: &ProfileCounters, m: Measure) -> f64 {
    match m {
        Measure::Orders => c.order_count as f64,
        Measure::Revenue => c.revenue,
        Measure::Events => c.event_count as f64,
    }
}

/// Months since year 0, so that month arithmetic is subtraction.
fn month_index(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

fn month_of(label: &str) -> Option<i64> {
    NaiveDate::parse_from_str(&format!("{label}-01"), "%Y-%m-%d")
        .ok()
        .map(month_index)
}

/// Keeps the first `limit` of a customer's bins (in the bins' declared order).
fn bounded(hits: impl Iterator<Item = usize>, limit: u32, bins: &mut [i64]) {
    for i in hits.take(limit as usize) {
        bins[i] += 1;
    }
}

/// What this service works on, handed to it by the context.
pub(crate) struct ExactAggregates<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) segment_facts: crate::personalize::facts::SegmentFacts<'a>,
}

impl ExactAggregates<'_> {
    /// Segments' conditions by name, for a histogram by segment: known before anything is
    /// charged, so an unknown name spends nothing.
    pub(super) fn declared_segments(
        &self,
        names: &[String],
    ) -> Result<Vec<Condition>, EngineError> {
        let stored = self.store.segments()?;
        names
            .iter()
            .map(|name| {
                let row = stored.iter().find(|s| &s.name == name).ok_or_else(|| {
                    EngineError::Invalid {
                        field: "categories".into(),
                        message: format!("no segment `{name}`"),
                    }
                })?;
                serde_json::from_str(&row.definition)
                    .map_err(|e| e.to_string())
                    .and_then(|v| Condition::parse(&v))
                    .map_err(|e| EngineError::Config(format!("stored segment `{name}`: {e}")))
            })
            .collect()
    }

    /// The exact aggregate of `parsed` over `grants`.
    pub(super) fn exact(
        &self,
        parsed: &Parsed,
        grants: &[Grant],
        segments: &[Condition],
        now: DateTime<Utc>,
    ) -> Result<Exact, EngineError> {
        // A stage filter keeps the customers whose current stage it names.
        let filtered: Vec<Grant>;
        let grants = match parsed.stage {
            None => grants,
            Some(s) => {
                let paths = self.store.stage_paths_for(grants)?;
                filtered = grants
                    .iter()
                    .zip(&paths)
                    .filter(|(_, p)| p.current == Some(s))
                    .map(|(g, _)| g.clone())
                    .collect();
                &filtered
            }
        };
        let values = |m: Measure, [lo, hi]: [f64; 2], unit: f64| -> Result<Vec<i64>, EngineError> {
            let open = opening(grants, needs(m));
            Ok(self
                .store
                .counters_for(&open)?
                .into_iter()
                .flatten()
                .map(|c| (measure(&c, m).clamp(lo, hi) * unit).round() as i64)
                .collect())
        };
        let l = parsed.rows_per_customer;
        Ok(match &parsed.query {
            Query::Count => Exact::Scalar(grants.len() as i64),
            Query::Sum(m, b) => Exact::Scalar(values(*m, *b, RESOLUTION)?.iter().sum()),
            Query::Mean(m, b) => {
                let v = values(*m, *b, RESOLUTION)?;
                Exact::Mean(v.iter().sum(), v.len() as i64)
            }
            Query::Quantile(m, _, candidates) => {
                let unit = if *m == Measure::Revenue {
                    RESOLUTION
                } else {
                    1.0
                };
                // Clamped to the candidates' span (the bounds, in the measure's units).
                let end = |c: Option<&i64>| c.copied().unwrap_or(0) as f64 / unit;
                let b = [end(candidates.first()), end(candidates.last())];
                Exact::Values(values(*m, b, unit)?)
            }
            Query::Histogram(by) | Query::TopK(by, _) => {
                Exact::Bins(self.bins(by, grants, segments, l, now)?)
            }
            Query::Funnel(stages) => {
                let mut bins = vec![0; stages.len()];
                for path in self.store.stage_paths_for(grants)? {
                    let hits = stages
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| path.entered(**s))
                        .map(|(i, _)| i);
                    bounded(hits, l, &mut bins);
                }
                Exact::Bins(bins)
            }
            Query::Retention(months, periods) => {
                let width = *periods as usize + 1;
                let rows: BTreeMap<i64, usize> = months
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| month_of(m).map(|k| (k, i)))
                    .collect();
                let mut bins = vec![0; months.len() * width];
                let open = opening(grants, "user.behavior.purchase");
                for days in self.store.purchase_days_for(&open)? {
                    let mut active: Vec<i64> = days
                        .iter()
                        .filter_map(|&d| crate::lifecycle::date_of(d).map(month_index))
                        .collect();
                    active.dedup();
                    let Some(&first) = active.first() else {
                        continue;
                    };
                    let Some(&row) = rows.get(&first) else {
                        continue;
                    };
                    let hits = active
                        .iter()
                        .map(|m| m - first)
                        .filter(|&o| o >= 0 && o < width as i64)
                        .map(|o| row * width + o as usize);
                    bounded(hits, l, &mut bins);
                }
                Exact::Bins(bins)
            }
        })
    }

    /// Customers per bin of `by`, each in at most `limit` bins.
    fn bins(
        &self,
        by: &GroupBy,
        grants: &[Grant],
        segments: &[Condition],
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, EngineError> {
        let names = by.bins();
        let index: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut bins = vec![0; names.len()];
        match by {
            GroupBy::Stage => {
                let unplaced = names.len() - 1;
                for path in self.store.stage_paths_for(grants)? {
                    let i = path
                        .current
                        .and_then(|s| index.get(s.as_str()).copied())
                        .unwrap_or(unplaced);
                    bins[i] += 1;
                }
            }
            GroupBy::Cohort(_) => {
                let open = opening(grants, "user.behavior");
                for c in self.store.counters_for(&open)?.into_iter().flatten() {
                    let month = DateTime::from_timestamp_millis(c.first_seen)
                        .map(|d| d.format("%Y-%m").to_string())
                        .unwrap_or_default();
                    if let Some(&i) = index.get(month.as_str()) {
                        bins[i] += 1;
                    }
                }
            }
            GroupBy::Trait(t, _) => {
                let cat = self
                    .policy
                    .schema
                    .category(CallType::Identify, None, &["traits", t.as_str()])
                    .cloned();
                let other = names.len() - 1;
                for g in grants
                    .iter()
                    .filter(|g| cat.as_ref().is_some_and(|c| g.permits(c)))
                {
                    let value = self
                        .store
                        .traits(g)?
                        .into_iter()
                        .find(|r| r.name == *t)
                        .map(|r| match r.value {
                            serde_json::Value::String(s) => s,
                            v => v.to_string(),
                        });
                    let Some(value) = value else { continue };
                    let i = index
                        .get(value.as_str())
                        .copied()
                        .filter(|&i| i != other)
                        .unwrap_or(other);
                    bins[i] += 1;
                }
            }
            GroupBy::Segment(_) => {
                let fields: Vec<_> = segments.iter().flat_map(Condition::fields).collect();
                for g in grants {
                    let facts = self.segment_facts.segment_facts(g, &fields, now)?;
                    let hits = segments
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.holds(&|f| facts.get(f).cloned()))
                        .map(|(i, _)| i);
                    bounded(hits, limit, &mut bins);
                }
            }
            GroupBy::Event(_) => {
                let open = opening(grants, "user.behavior");
                for counts in self.store.event_counts_for(&open)? {
                    let mut hits: Vec<usize> = counts
                        .iter()
                        .filter(|(_, n)| *n > 0)
                        .filter_map(|(e, _)| index.get(e.as_str()).copied())
                        .collect();
                    hits.sort_unstable();
                    bounded(hits.into_iter(), limit, &mut bins);
                }
            }
        }
        Ok(bins)
    }
}
