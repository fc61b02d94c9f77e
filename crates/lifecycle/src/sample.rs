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
        let mut s = Sample::default();
        let (mut xi, mut txi, mut ti) = (HashMap::new(), HashMap::new(), HashMap::new());
        let mut row_index: HashMap<(u64, u64, u64), usize> = HashMap::new();
        for c in customers {
            let key = (c.x.to_bits(), c.t_x.to_bits(), c.t.to_bits());
            if let Some(&i) = row_index.get(&key) {
                s.rows[i].weight += 1.0;
                continue;
            }
            let row = Row {
                xi: intern(&mut s.xs, &mut xi, c.x),
                txi: intern(&mut s.txs, &mut txi, c.t_x),
                ti: intern(&mut s.ts, &mut ti, c.t),
                x: c.x,
                weight: 1.0,
            };
            row_index.insert(key, s.rows.len());
            s.rows.push(row);
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
