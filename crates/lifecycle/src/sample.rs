//! Customers compressed for likelihood evaluation: identical `(x, t_x, T)` rows become one row
//! with a weight, and each row points into the distinct values of `x`, `t_x` and `T`, so that
//! terms depending on one of them alone (a log-gamma, a logarithm) are computed once per
//! distinct value per evaluation instead of once per customer. CDNOW's 23,570 master
//! customers have a few dozen distinct `x`, ninety `T` and a few hundred `t_x`.

use std::collections::HashMap;

use crate::summary::CustomerSummary;

/// One distinct `(x, t_x, T)` and how many customers share it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// Index into [`Sample::xs`].
    pub xi: usize,
    /// Index into [`Sample::txs`].
    pub txi: usize,
    /// Index into [`Sample::ts`].
    pub ti: usize,
    pub x: f64,
    pub weight: f64,
}

/// The compressed customers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    pub rows: Vec<Row>,
    /// Distinct values of `x`.
    pub xs: Vec<f64>,
    /// Distinct values of `t_x`.
    pub txs: Vec<f64>,
    /// Distinct values of `T`.
    pub ts: Vec<f64>,
}

/// Interns `v` in `values`, returning its index.
fn intern(values: &mut Vec<f64>, index: &mut HashMap<u64, usize>, v: f64) -> usize {
    *index.entry(v.to_bits()).or_insert_with(|| {
        values.push(v);
        values.len() - 1
    })
}

impl Sample {
    pub fn new(customers: &[CustomerSummary]) -> Sample {
        // Sorting the histories groups identical ones (cheaper than hashing 23k of them).
        let mut keys: Vec<(f64, f64, f64)> = customers.iter().map(|c| (c.x, c.t_x, c.t)).collect();
        keys.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let mut s = Sample::default();
        let (mut xi, mut txi, mut ti) = (HashMap::new(), HashMap::new(), HashMap::new());
        let mut last: Option<(f64, f64, f64)> = None;
        for key in keys {
            if last == Some(key) {
                if let Some(row) = s.rows.last_mut() {
                    row.weight += 1.0;
                }
                continue;
            }
            last = Some(key);
            let (x, t_x, t) = key;
            s.rows.push(Row {
                xi: intern(&mut s.xs, &mut xi, x),
                txi: intern(&mut s.txs, &mut txi, t_x),
                ti: intern(&mut s.ts, &mut ti, t),
                x,
                weight: 1.0,
            });
        }
        s
    }

    /// `f(v)` for each distinct `t_x`.
    pub fn per_tx(&self, f: impl Fn(f64) -> f64) -> Vec<f64> {
        self.txs.iter().map(|v| f(*v)).collect()
    }

    /// `f(v)` for each distinct `T`.
    pub fn per_t(&self, f: impl Fn(f64) -> f64) -> Vec<f64> {
        self.ts.iter().map(|v| f(*v)).collect()
    }
}
