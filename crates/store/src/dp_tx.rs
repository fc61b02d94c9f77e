//! Privacy budgets: what each analyst may still spend on each data set (ρ, in the exact units
//! of `pets::Rho`), and every charge. A charge is one conditional update, so concurrent
//! releases on either database cannot spend past the grant.

use crate::backend::Param;
use crate::error::StoreError;
use crate::store::Store;
use crate::tx::{next, take, WriteTx};

// The total never passes ?4, so it never overflows the 64-bit column.
const GRANT: &str = "INSERT INTO dp_budgets (analyst, dataset, granted, spent) VALUES (?1, ?2, ?3, 0) ON CONFLICT (analyst, dataset) DO UPDATE SET granted = dp_budgets.granted + excluded.granted WHERE dp_budgets.granted <= ?4 - excluded.granted";
const CHARGE: &str = "UPDATE dp_budgets SET spent = spent + ?3 WHERE analyst = ?1 AND dataset = ?2 AND spent + ?3 <= granted";
const BUDGET: &str = "SELECT granted, spent FROM dp_budgets WHERE analyst = ?1 AND dataset = ?2";
const BUDGETS: &str =
    "SELECT dataset, granted, spent FROM dp_budgets WHERE analyst = ?1 ORDER BY dataset";
const RECORD: &str = "INSERT INTO dp_charges (analyst, dataset, n, cost, query, at) VALUES (?1, ?2, (SELECT COALESCE(MAX(n), 0) + 1 FROM dp_charges WHERE analyst = ?1 AND dataset = ?2), ?3, ?4, ?5)";

/// A budget row: granted and spent, in units of 10⁻¹² ρ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetRow {
    /// Granted units.
    pub granted: u64,
    /// Spent units.
    pub spent: u64,
}

fn units(v: i64) -> u64 {
    v.max(0) as u64
}

fn param(u: u64) -> Param<'static> {
    Param::Int(i64::try_from(u).unwrap_or(i64::MAX))
}

impl WriteTx<'_> {
    /// Adds `units` to `analyst`'s grant on `dataset`; the budget after, or `None` (and
    /// nothing changed) if the total would pass `max` units.
    pub fn grant_budget(
        &mut self,
        analyst: &str,
        dataset: &str,
        add: u64,
        max: u64,
    ) -> Result<Option<BudgetRow>, StoreError> {
        if add > max {
            return Ok(None);
        }
        let changed = self.conn.exec(
            GRANT,
            &[
                Param::Text(analyst),
                Param::Text(dataset),
                param(add),
                param(max),
            ],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        Ok(Some(self.budget(analyst, dataset)?.unwrap_or_default()))
    }

    /// `analyst`'s budget on `dataset`, if any was granted.
    pub fn budget(
        &mut self,
        analyst: &str,
        dataset: &str,
    ) -> Result<Option<BudgetRow>, StoreError> {
        let Some(row) = self
            .conn
            .query(BUDGET, &[Param::Text(analyst), Param::Text(dataset)])?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let mut it = take(row, 2)?;
        Ok(Some(BudgetRow {
            granted: units(next(&mut it)?.int()?),
            spent: units(next(&mut it)?.int()?),
        }))
    }

    /// Spends `cost` units if the grant covers them, recording the charge with the query;
    /// `false` (and nothing spent) otherwise.
    pub fn charge_budget(
        &mut self,
        analyst: &str,
        dataset: &str,
        cost: u64,
        query: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let charged = self.conn.exec(
            CHARGE,
            &[Param::Text(analyst), Param::Text(dataset), param(cost)],
        )? == 1;
        if charged {
            self.conn.exec(
                RECORD,
                &[
                    Param::Text(analyst),
                    Param::Text(dataset),
                    param(cost),
                    Param::Text(query),
                    Param::Int(at),
                ],
            )?;
        }
        Ok(charged)
    }
}

impl Store {
    /// Every budget of `analyst`: data set, granted, spent.
    ///
    /// # Errors
    /// Database faults.
    pub fn budgets(&self, analyst: &str) -> Result<Vec<(String, BudgetRow)>, StoreError> {
        self.read(|c| {
            c.query(BUDGETS, &[Param::Text(analyst)])?
                .into_iter()
                .map(|row| {
                    let mut it = take(row, 3)?;
                    Ok((
                        next(&mut it)?.text()?,
                        BudgetRow {
                            granted: units(next(&mut it)?.int()?),
                            spent: units(next(&mut it)?.int()?),
                        },
                    ))
                })
                .collect()
        })
    }
}
