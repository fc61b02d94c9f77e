//! Customers compressed for likelihood evaluation: identical `(x, t_x, T)` rows become one row
//! with a weight, and terms that depend only on `x` are computed once per distinct `x`.

use std::collections::HashMap;

use crate::summary::CustomerSummary;

/// One distinct `(x, t_x, T)` and how many customers share it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// Index into [`Sample::xs`].
    pub xi: usize,
    pub x: f64,
    pub t_x: f64,
    pub t: f64,
    pub weight: f64,
}

/// The compressed customers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    pub rows: Vec<Row>,
    /// Distinct values of `x`.
    pub xs: Vec<f64>,
}

impl Sample {
    pub fn new(customers: &[CustomerSummary]) -> Sample {
        let mut xs: Vec<f64> = Vec::new();
        let mut x_index: HashMap<u64, usize> = HashMap::new();
        let mut rows: Vec<Row> = Vec::new();
        let mut row_index: HashMap<(u64, u64, u64), usize> = HashMap::new();
        for c in customers {
            let key = (c.x.to_bits(), c.t_x.to_bits(), c.t.to_bits());
            if let Some(&i) = row_index.get(&key) {
                rows[i].weight += 1.0;
                continue;
            }
            let xi = *x_index.entry(c.x.to_bits()).or_insert_with(|| {
                xs.push(c.x);
                xs.len() - 1
            });
            row_index.insert(key, rows.len());
            rows.push(Row {
                xi,
                x: c.x,
                t_x: c.t_x,
                t: c.t,
                weight: 1.0,
            });
        }
        Sample { rows, xs }
    }
}
