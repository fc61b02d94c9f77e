//! From purchases to the repeat-purchase summary every BTYD model takes: `x` repeat purchases,
//! the time `t_x` of the last one and the customer's age `T`, in weeks since the first purchase,
//! with purchases aggregated by day as the literature does.

use chrono::NaiveDate;
use serde::Serialize;

/// Days in one model period: the models count time in weeks.
pub const DAYS_PER_PERIOD: f64 = 7.0;

/// One purchase: the day it happened and what it was worth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Purchase {
    /// Calendar day of the purchase.
    pub day: NaiveDate,
    /// Amount spent.
    pub amount: f64,
}

/// One customer's calibration summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CustomerSummary {
    /// Repeat purchase days: distinct purchase days after the first one.
    pub x: f64,
    /// Weeks from the first purchase to the last.
    pub t_x: f64,
    /// Weeks from the first purchase to the end of the calibration window.
    pub t: f64,
    /// Mean amount of the repeat purchase days (0 when there are none).
    pub monetary: f64,
}

/// What a customer did after the calibration window: the holdout the models are judged on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Holdout {
    /// Purchase days inside the holdout window.
    pub x: f64,
    /// Weeks in the holdout window.
    pub duration: f64,
}

/// Purchases summed per day, in day order.
pub fn by_day(purchases: &[Purchase]) -> Vec<Purchase> {
    let mut sorted = purchases.to_vec();
    sorted.sort_by_key(|p| p.day);
    let mut days: Vec<Purchase> = Vec::with_capacity(sorted.len());
    for p in sorted {
        match days.last_mut() {
            Some(last) if last.day == p.day => last.amount += p.amount,
            _ => days.push(p),
        }
    }
    days
}

/// Weeks between two days.
pub fn weeks_between(from: NaiveDate, to: NaiveDate) -> f64 {
    (to - from).num_days() as f64 / DAYS_PER_PERIOD
}

/// The calibration summary of one customer's purchases up to and including `calibration_end`,
/// or `None` if the customer had not bought by then.
pub fn summarise(purchases: &[Purchase], calibration_end: NaiveDate) -> Option<CustomerSummary> {
    let days: Vec<Purchase> = by_day(purchases)
        .into_iter()
        .filter(|p| p.day <= calibration_end)
        .collect();
    let first = days.first()?;
    let last = days.last()?;
    let repeats = &days[1..];
    let monetary = if repeats.is_empty() {
        0.0
    } else {
        repeats.iter().map(|p| p.amount).sum::<f64>() / repeats.len() as f64
    };
    Some(CustomerSummary {
        x: repeats.len() as f64,
        t_x: weeks_between(first.day, last.day),
        t: weeks_between(first.day, calibration_end),
        monetary,
    })
}

/// Purchase days after `calibration_end` up to and including `observation_end`.
pub fn holdout(
    purchases: &[Purchase],
    calibration_end: NaiveDate,
    observation_end: NaiveDate,
) -> Holdout {
    let x = by_day(purchases)
        .iter()
        .filter(|p| p.day > calibration_end && p.day <= observation_end)
        .count();
    Holdout {
        x: x as f64,
        duration: weeks_between(calibration_end, observation_end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    #[test]
    fn same_day_purchases_count_once_and_add_up() {
        let p = [
            Purchase {
                day: day("1997-01-01"),
                amount: 10.0,
            },
            Purchase {
                day: day("1997-01-15"),
                amount: 5.0,
            },
            Purchase {
                day: day("1997-01-15"),
                amount: 7.0,
            },
            Purchase {
                day: day("1997-12-01"),
                amount: 99.0,
            },
        ];
        let s = summarise(&p, day("1997-09-30")).expect("bought");
        assert_eq!(s.x, 1.0);
        assert_eq!(s.monetary, 12.0);
        assert_eq!(s.t_x, 2.0);
        assert!((s.t - 272.0 / 7.0).abs() < 1e-12);
        let h = holdout(&p, day("1997-09-30"), day("1998-06-30"));
        assert_eq!(h.x, 1.0);
        assert_eq!(summarise(&p[3..], day("1997-09-30")), None);
    }
}
