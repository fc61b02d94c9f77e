//! RFM: each customer's recency, frequency and monetary value as quintile scores 1–5 among
//! the customers scored together (5 is best: most recent, most frequent, highest spend).

use serde::{Deserialize, Serialize};

/// What RFM looks at for one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfmInput {
    /// Days since the latest order.
    pub recency_days: f64,
    /// Orders.
    pub frequency: f64,
    /// Revenue.
    pub monetary: f64,
}

/// Quintile scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rfm {
    /// 5 for the most recent fifth.
    pub recency: u8,
    /// 5 for the most frequent fifth.
    pub frequency: u8,
    /// 5 for the highest-spending fifth.
    pub monetary: u8,
}

impl Rfm {
    /// The conventional three-digit cell, e.g. `"545"`.
    pub fn cell(&self) -> String {
        format!("{}{}{}", self.recency, self.frequency, self.monetary)
    }
}

/// Scores every input against all of them, in input order. Equal values get equal scores:
/// a score is 1 + the fifth of the population strictly below the value.
pub fn rfm_scores(inputs: &[RfmInput]) -> Vec<Rfm> {
    // Recency is better when smaller: score its negation.
    let r = quintiles(inputs.iter().map(|i| -i.recency_days));
    let f = quintiles(inputs.iter().map(|i| i.frequency));
    let m = quintiles(inputs.iter().map(|i| i.monetary));
    (0..inputs.len())
        .map(|i| Rfm {
            recency: r[i],
            frequency: f[i],
            monetary: m[i],
        })
        .collect()
}

fn quintiles(values: impl Iterator<Item = f64>) -> Vec<u8> {
    let values: Vec<f64> = values.collect();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len().max(1) as f64;
    values
        .iter()
        .map(|v| {
            let below = sorted.partition_point(|s| s.total_cmp(v).is_lt()) as f64;
            1 + (5.0 * below / n).floor().min(4.0) as u8
        })
        .collect()
}

/// One customer's scores against fixed quintile boundaries, for scoring a single customer
/// without the whole population at hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmBoundaries {
    /// Four ascending cut points per dimension (recency negated).
    cuts: [[f64; 4]; 3],
}

impl RfmBoundaries {
    /// Cut points at the 20th, 40th, 60th and 80th percentiles of `inputs`.
    pub fn of(inputs: &[RfmInput]) -> RfmBoundaries {
        let cut = |mut v: Vec<f64>| -> [f64; 4] {
            v.sort_by(f64::total_cmp);
            let at = |q: f64| {
                v.get(((v.len() as f64) * q) as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            [at(0.2), at(0.4), at(0.6), at(0.8)]
        };
        RfmBoundaries {
            cuts: [
                cut(inputs.iter().map(|i| -i.recency_days).collect()),
                cut(inputs.iter().map(|i| i.frequency).collect()),
                cut(inputs.iter().map(|i| i.monetary).collect()),
            ],
        }
    }

    /// Scores one customer.
    pub fn score(&self, i: &RfmInput) -> Rfm {
        let s = |d: usize, v: f64| 1 + self.cuts[d].iter().filter(|c| v >= **c).count() as u8;
        Rfm {
            recency: s(0, -i.recency_days),
            frequency: s(1, i.frequency),
            monetary: s(2, i.monetary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_rank_and_tie() {
        let inputs: Vec<RfmInput> = (0..10)
            .map(|i| RfmInput {
                recency_days: f64::from(i),
                frequency: f64::from(i),
                monetary: 7.0,
            })
            .collect();
        let s = rfm_scores(&inputs);
        assert_eq!(s[0].recency, 5); // most recent
        assert_eq!(s[9].recency, 1);
        assert_eq!(s[9].frequency, 5);
        assert_eq!(s[0].frequency, 1);
        assert!(s.iter().all(|r| r.monetary == 1)); // all tied
        assert_eq!(s[0].cell(), "511");
        let b = RfmBoundaries::of(&inputs);
        for (i, r) in inputs.iter().zip(&s) {
            assert_eq!(b.score(i).frequency, r.frequency);
        }
    }
}
