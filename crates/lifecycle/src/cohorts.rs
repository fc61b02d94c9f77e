//! Cohorts: retention by acquisition month, and the funnel of stages over time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use consentric_model::Stage;
use serde::Serialize;

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Month {
    /// Year.
    pub year: i32,
    /// 1–12.
    pub month: u32,
}

impl Month {
    /// The month a day falls in.
    pub fn of(day: NaiveDate) -> Month {
        Month {
            year: day.year(),
            month: day.month(),
        }
    }

    /// Whole months from `self` to `later`.
    pub fn until(self, later: Month) -> i64 {
        i64::from(later.year - self.year) * 12 + i64::from(later.month) - i64::from(self.month)
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The first day of the month after (the end, exclusive).
    pub fn end(self) -> Option<NaiveDate> {
        let n = self.next();
        NaiveDate::from_ymd_opt(n.year, n.month, 1)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One acquisition cohort's row of the retention matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    /// Month of the customers' first purchase.
    pub cohort: String,
    /// Customers acquired that month.
    pub size: u64,
    /// `active[k]`: customers of the cohort who bought in month `k` after it (`active[0]` is
    /// the cohort itself).
    pub active: Vec<u64>,
}

/// The retention matrix from each customer's purchase days, cohorts by first purchase month.
pub fn retention<'a>(customers: impl Iterator<Item = &'a [NaiveDate]>) -> Vec<CohortRow> {
    let mut cohorts: BTreeMap<Month, (u64, BTreeMap<i64, u64>)> = BTreeMap::new();
    for days in customers {
        let Some(first) = days.iter().min() else {
            continue;
        };
        let cohort = Month::of(*first);
        let months: BTreeSet<i64> = days.iter().map(|d| cohort.until(Month::of(*d))).collect();
        let entry = cohorts.entry(cohort).or_default();
        entry.0 += 1;
        for m in months {
            *entry.1.entry(m).or_default() += 1;
        }
    }
    cohorts
        .into_iter()
        .map(|(cohort, (size, by))| {
            let width = by.keys().max().map_or(0, |m| *m + 1);
            CohortRow {
                cohort: cohort.to_string(),
                size,
                active: (0..width)
                    .map(|k| by.get(&k).copied().unwrap_or(0))
                    .collect(),
            }
        })
        .collect()
}

/// Customers per stage at the end of each month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelRow {
    /// The month.
    pub month: String,
    /// Customers in each stage at its end.
    pub stages: BTreeMap<Stage, u64>,
}

/// The funnel over time from each customer's transitions `(at, to)` (any order; `at` as days).
pub fn funnel<'a>(customers: impl Iterator<Item = &'a [(NaiveDate, Stage)]>) -> Vec<FunnelRow> {
    let mut histories: Vec<Vec<(NaiveDate, Stage)>> = customers
        .map(|t| {
            let mut t = t.to_vec();
            t.sort_by_key(|(d, _)| *d);
            t
        })
        .filter(|t| !t.is_empty())
        .collect();
    histories.sort();
    let (Some(first), Some(last)) = (
        histories
            .iter()
            .filter_map(|h| h.first())
            .map(|(d, _)| *d)
            .min(),
        histories
            .iter()
            .filter_map(|h| h.last())
            .map(|(d, _)| *d)
            .max(),
    ) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    let mut month = Month::of(first);
    while month <= Month::of(last) {
        let Some(end) = month.end() else { break };
        let mut stages = BTreeMap::new();
        for h in &histories {
            if let Some((_, s)) = h.iter().take_while(|(d, _)| *d < end).last() {
                *stages.entry(*s).or_insert(0) += 1;
            }
        }
        rows.push(FunnelRow {
            month: month.to_string(),
            stages,
        });
        month = month.next();
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn retention_counts_each_customer_once_per_month() {
        let a = [d(1997, 1, 3), d(1997, 1, 20), d(1997, 3, 1)];
        let b = [d(1997, 1, 9)];
        let c = [d(1997, 2, 1), d(1997, 3, 5)];
        let rows = retention([&a[..], &b[..], &c[..]].into_iter());
        assert_eq!(rows[0].cohort, "1997-01");
        assert_eq!(rows[0].size, 2);
        assert_eq!(rows[0].active, vec![2, 0, 1]);
        assert_eq!(rows[1].active, vec![1, 1]);
    }

    #[test]
    fn funnel_replays_transitions() {
        let a = [
            (d(1997, 1, 3), Stage::Onboarding),
            (d(1997, 2, 10), Stage::Engagement),
        ];
        let b = [(d(1997, 2, 1), Stage::Acquisition)];
        let rows = funnel([&a[..], &b[..]].into_iter());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].stages, BTreeMap::from([(Stage::Onboarding, 1)]));
        assert_eq!(
            rows[1].stages,
            BTreeMap::from([(Stage::Engagement, 1), (Stage::Acquisition, 1)])
        );
    }
}
