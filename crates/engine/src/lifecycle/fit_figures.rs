//! What a fit is judged by, computed once when the models are fitted (never per page view):
//! the tracking plot of actual against expected cumulative repeat purchases, week by week over
//! calibration and holdout (as in Fader, Hardie & Lee's CDNOW figures), and the distributions
//! of P(alive) and CLV across the customers fitted on.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use consentric_lifecycle::summary::by_day;
use consentric_lifecycle::{BgNbd, CustomerSummary, Purchase, PurchaseModel};
use serde::{Deserialize, Serialize};

use super::scoring::Scorer;

/// The most weeks a tracking plot covers.
const MAX_WEEKS: i64 = 260;
/// Bins of a distribution.
const BINS: usize = 10;

/// Actual against expected cumulative repeat purchases, per week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracking {
    /// The first day of each week, from the earliest first purchase.
    pub weeks: Vec<NaiveDate>,
    /// Repeat purchase days (after each customer's first) by the end of each week, summed.
    pub actual: Vec<u64>,
    /// What BG/NBD expects by then, summed over the same customers from their first purchase;
    /// `None` where its hypergeometric series did not converge.
    pub expected: Vec<Option<f64>>,
    /// The first week after the calibration window (the holdout), `weeks.len()` if none.
    pub holdout_from: usize,
}

/// How many customers fall in each bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Each bin's lower edge (the last bin also takes everything above it).
    pub edges: Vec<f64>,
    /// Customers per bin.
    pub counts: Vec<u64>,
}

/// P(alive) and CLV across the customers fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distributions {
    /// P(alive), in tenths.
    pub p_alive: Distribution,
    /// CLV in ten equal bins up to its 99th percentile, where a spend model was fitted.
    pub clv: Option<Distribution>,
}

/// The tracking plot of `bg` over `customers`' purchase histories, with the calibration window
/// ending on `calibration_end`.
pub(crate) fn tracking(
    bg: &BgNbd,
    customers: &[Vec<Purchase>],
    calibration_end: NaiveDate,
) -> Option<Tracking> {
    let histories: Vec<Vec<Purchase>> = customers
        .iter()
        .map(|p| by_day(p))
        .filter(|days| days.first().is_some_and(|f| f.day <= calibration_end))
        .collect();
    let start = histories
        .iter()
        .filter_map(|d| d.first())
        .map(|p| p.day)
        .min()?;
    let end = histories
        .iter()
        .filter_map(|d| d.last())
        .map(|p| p.day)
        .max()?;
    let n = ((end - start).num_days() / 7 + 1).min(MAX_WEEKS);
    let n_weeks = usize::try_from(n).ok()?;
    let mut actual = vec![0u64; n_weeks];
    let mut firsts: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for days in &histories {
        let Some(first) = days.first() else { continue };
        *firsts.entry(first.day).or_default() += 1;
        for d in &days[1..] {
            if let Ok(w) = usize::try_from((d.day - start).num_days() / 7) {
                if w < n_weeks {
                    actual[w] += 1;
                }
            }
        }
    }
    for w in 1..n_weeks {
        actual[w] += actual[w - 1];
    }
    // A customer new at their first purchase: E[X(t)] unconditional, the same for every
    // customer who started on the same day.
    let new = CustomerSummary {
        x: 0.0,
        t_x: 0.0,
        t: 0.0,
        monetary: 0.0,
    };
    let weeks: Vec<NaiveDate> = (0..n).map(|w| start + Duration::days(7 * w)).collect();
    let expected = weeks
        .iter()
        .map(|week| {
            let end_of_week = *week + Duration::days(7);
            let sum: f64 = firsts
                .iter()
                .filter(|(first, _)| **first < end_of_week)
                .map(|(first, count)| {
                    let t = (end_of_week - *first).num_days() as f64 / 7.0;
                    *count as f64 * bg.expected_purchases(t, &new)
                })
                .sum();
            sum.is_finite().then_some(sum)
        })
        .collect();
    let holdout_from = weeks
        .iter()
        .position(|w| *w > calibration_end)
        .unwrap_or(weeks.len());
    Some(Tracking {
        weeks,
        actual,
        expected,
        holdout_from,
    })
}

fn histogram(values: &[f64], low: f64, high: f64) -> Distribution {
    let width = ((high - low) / BINS as f64).max(f64::MIN_POSITIVE);
    let mut counts = vec![0u64; BINS];
    for v in values.iter().filter(|v| v.is_finite()) {
        let bin = (((v - low) / width).floor().max(0.0) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    Distribution {
        edges: (0..BINS).map(|i| low + width * i as f64).collect(),
        counts,
    }
}

/// P(alive) and CLV of each of `summaries` under `scorer`, binned.
pub(crate) fn distributions(scorer: &Scorer, summaries: &[CustomerSummary]) -> Distributions {
    let scores: Vec<_> = summaries.iter().map(|s| scorer.score(s)).collect();
    let p_alive: Vec<f64> = scores.iter().map(|s| s.p_alive).collect();
    let mut clv: Vec<f64> = scores
        .iter()
        .filter_map(|s| s.clv)
        .filter(|v| v.is_finite())
        .collect();
    let clv = (!clv.is_empty()).then(|| {
        clv.sort_by(f64::total_cmp);
        let p99 = clv[(clv.len() - 1) * 99 / 100].max(1e-9);
        histogram(&clv, 0.0, p99)
    });
    Distributions {
        p_alive: histogram(&p_alive, 0.0, 1.0),
        clv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn buys(days: &[&str]) -> Vec<Purchase> {
        days.iter()
            .map(|d| Purchase {
                day: day(d),
                amount: 10.0,
            })
            .collect()
    }

    #[test]
    fn the_tracking_plot_counts_repeat_days_and_sums_what_the_model_expects() {
        let bg = BgNbd {
            r: 0.24,
            alpha: 4.41,
            a: 0.79,
            b: 2.43,
        };
        let customers = vec![
            buys(&["1997-01-01", "1997-01-03", "1997-01-03", "1997-02-20"]),
            buys(&["1997-01-08"]),
            buys(&["1997-06-01"]), // first bought after the window: left out
        ];
        let t = tracking(&bg, &customers, day("1997-01-31")).expect("a plot");
        assert_eq!(t.weeks[0], day("1997-01-01"));
        assert_eq!(
            t.actual[0], 1,
            "one repeat day in week 0 (two orders on one day count once)"
        );
        assert_eq!(*t.actual.last().expect("weeks"), 2);
        assert_eq!(
            t.holdout_from, 5,
            "the week starting 5 February is the first after the window"
        );
        let expected: Vec<f64> = t.expected.iter().map(|e| e.expect("converges")).collect();
        assert!(expected.windows(2).all(|w| w[1] >= w[0]), "cumulative");
        let one_week = bg.expected_purchases(
            1.0,
            &CustomerSummary {
                x: 0.0,
                t_x: 0.0,
                t: 0.0,
                monetary: 0.0,
            },
        );
        assert!(
            (expected[0] - one_week).abs() < 1e-12,
            "only the first customer had started"
        );
    }

    #[test]
    fn histograms_put_everything_in_a_bin() {
        let h = histogram(&[0.0, 0.05, 0.95, 1.0, 2.0, f64::NAN], 0.0, 1.0);
        assert_eq!(h.counts.iter().sum::<u64>(), 5);
        assert_eq!((h.counts[0], h.counts[9]), (2, 3));
    }
}
