//! Customer lifetime value: expected purchases per month from a purchase model, times the
//! expected value of each from Gamma-Gamma, discounted month by month.

use serde::{Deserialize, Serialize};

use crate::gamma_gamma::GammaGamma;
use crate::summary::CustomerSummary;
use crate::PurchaseModel;

/// Weeks in a month, as the models count time in weeks.
pub const WEEKS_PER_MONTH: f64 = 4.345;

/// How far ahead and how steeply value is discounted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClvSettings {
    /// Months ahead.
    pub months: u32,
    /// Discount rate per month (0.01 is 12.7% a year).
    pub monthly_discount: f64,
}

impl Default for ClvSettings {
    fn default() -> Self {
        ClvSettings {
            months: 12,
            monthly_discount: 0.01,
        }
    }
}

/// The customer's expected purchases month by month over the horizon, each discounted to now:
/// CLV divided by the expected value of a purchase. It depends on `x`, `t_x` and `T` only.
pub fn discounted_purchases(
    model: &dyn PurchaseModel,
    c: &CustomerSummary,
    settings: ClvSettings,
) -> f64 {
    let mut before = 0.0;
    let mut total = 0.0;
    for month in 1..=settings.months {
        let upto = model.expected_purchases(f64::from(month) * WEEKS_PER_MONTH, c);
        total += (upto - before) / (1.0 + settings.monthly_discount).powi(month as i32);
        before = upto;
    }
    total
}

/// The discounted value of a customer's expected purchases over the horizon.
pub fn clv(
    model: &dyn PurchaseModel,
    spend: &GammaGamma,
    c: &CustomerSummary,
    settings: ClvSettings,
) -> f64 {
    discounted_purchases(model, c, settings) * spend.expected_spend(c)
}
