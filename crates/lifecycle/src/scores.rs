//! Scoring a whole population at once: P(alive), expected purchases and CLV for every
//! customer. Customers who share `(x, t_x, T)` share everything but their spend, so the
//! expensive part (a dozen hypergeometric series per customer) is computed once per distinct
//! history, and the distinct histories are split over the machine's cores.

use std::collections::HashMap;

use serde::Serialize;

use crate::clv::{discounted_purchases, ClvSettings};
use crate::gamma_gamma::GammaGamma;
use crate::summary::CustomerSummary;
use crate::PurchaseModel;

/// One customer's scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    /// Probability the customer is still active.
    pub p_alive: f64,
    /// Expected purchases in the next `horizon` weeks.
    pub expected_purchases: f64,
    /// Discounted value over the CLV horizon, when a spend model is given.
    pub clv: Option<f64>,
}

/// What depends on a history alone.
#[derive(Clone, Copy, Default)]
struct HistoryScore {
    p_alive: f64,
    expected: f64,
    discounted: f64,
}

/// Scores every customer, in input order; `horizon` is in weeks.
pub fn score_all<M: PurchaseModel + Sync>(
    model: &M,
    spend: Option<&GammaGamma>,
    customers: &[CustomerSummary],
    horizon: f64,
    settings: ClvSettings,
) -> Vec<Score> {
    let key = |c: &CustomerSummary| (c.x.to_bits(), c.t_x.to_bits(), c.t.to_bits());
    let mut index: HashMap<(u64, u64, u64), usize> = HashMap::new();
    let mut histories: Vec<&CustomerSummary> = Vec::new();
    let slots: Vec<usize> = customers
        .iter()
        .map(|c| {
            *index.entry(key(c)).or_insert_with(|| {
                histories.push(c);
                histories.len() - 1
            })
        })
        .collect();
    let score = |c: &CustomerSummary| HistoryScore {
        p_alive: model.p_alive(c),
        expected: model.expected_purchases(horizon, c),
        discounted: if spend.is_some() {
            discounted_purchases(model, c, settings)
        } else {
            0.0
        },
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = histories.len().div_ceil(threads.max(1)).max(1);
    let mut by_history = vec![HistoryScore::default(); histories.len()];
    std::thread::scope(|scope| {
        for (out, part) in by_history.chunks_mut(chunk).zip(histories.chunks(chunk)) {
            scope.spawn(move || {
                for (o, c) in out.iter_mut().zip(part) {
                    *o = score(c);
                }
            });
        }
    });
    customers
        .iter()
        .zip(slots)
        .map(|(c, slot)| {
            let h = by_history[slot];
            Score {
                p_alive: h.p_alive,
                expected_purchases: h.expected,
                clv: spend.map(|g| h.discounted * g.expected_spend(c)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clv, BgNbd};

    #[test]
    fn the_same_as_scoring_one_by_one() {
        let bg = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let gg = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let customers: Vec<CustomerSummary> = (0..500)
            .map(|i| CustomerSummary {
                x: f64::from(i % 5),
                t_x: if i % 5 == 0 { 0.0 } else { f64::from(i % 30) },
                t: 38.0,
                monetary: if i % 5 == 0 {
                    0.0
                } else {
                    10.0 + f64::from(i % 7)
                },
            })
            .collect();
        let s = ClvSettings::default();
        let all = score_all(&bg, Some(&gg), &customers, 13.0, s);
        for (c, got) in customers.iter().zip(&all) {
            assert_eq!(got.p_alive, bg.p_alive(c));
            assert_eq!(got.expected_purchases, bg.expected_purchases(13.0, c));
            let want = clv(&bg, &gg, c, s);
            let g = got.clv.expect("clv");
            assert!(
                (g - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{g} vs {want}"
            );
        }
    }
}
