//! Per-customer scores from the fitted models: P(alive), expected purchases, expected spend,
//! CLV, RFM and churn risk.

use chrono::NaiveDate;
use consentric_lifecycle::{
    churn_risk, clv, BgNbd, ChurnRisk, ChurnSettings, ClvSettings, CustomerSummary, GammaGamma,
    ParetoNbd, PurchaseModel, Rfm, RfmBoundaries, RfmInput,
};
use consentric_store::PurchaseDay;
use serde::Serialize;

use super::DAY_MS;

/// The fitted models, ready to score customers.
#[derive(Debug, Clone)]
pub(crate) struct Scorer {
    pub bg: BgNbd,
    pub pareto: Option<ParetoNbd>,
    pub spend: Option<GammaGamma>,
    pub rfm: Option<RfmBoundaries>,
    pub clv: ClvSettings,
    pub churn: ChurnSettings,
}

/// One customer's scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Score {
    pub p_alive: f64,
    pub expected_purchases_90d: f64,
    pub expected_spend: Option<f64>,
    pub clv: Option<f64>,
}

impl Scorer {
    pub fn score(&self, s: &CustomerSummary) -> Score {
        let spend = self.spend.as_ref();
        Score {
            p_alive: self.bg.p_alive(s),
            expected_purchases_90d: self.bg.expected_purchases(90.0 / 7.0, s),
            expected_spend: spend.map(|g| g.expected_spend(s)),
            clv: spend.map(|g| clv(&self.bg, g, s, self.clv)),
        }
    }

    /// CLV alone, where a rule needs it (it costs a dozen hypergeometric series).
    pub fn clv_of(&self, s: &CustomerSummary) -> Option<f64> {
        self.spend.as_ref().map(|g| clv(&self.bg, g, s, self.clv))
    }

    pub fn rfm(&self, input: &RfmInput) -> Option<Rfm> {
        self.rfm.as_ref().map(|b| b.score(input))
    }

    pub fn churn(&self, p_alive: Option<f64>, days_since_purchase: f64) -> ChurnRisk {
        churn_risk(p_alive, days_since_purchase, self.churn)
    }
}

/// The day a millisecond timestamp falls on, as days since the epoch.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// A stored day number as a date.
pub(crate) fn date_of(day: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(day))
}

/// The BTYD summary as of `now` from a customer's purchase days (later days are ignored).
pub(crate) fn summary_of_days(days: &[PurchaseDay], now: i64) -> Option<CustomerSummary> {
    let today = day_of(now);
    let days: Vec<PurchaseDay> = days.iter().copied().filter(|d| d.day <= today).collect();
    let first = days.iter().map(|d| d.day).min()?;
    let last = days.iter().map(|d| d.day).max()?;
    let repeats: Vec<f64> = days
        .iter()
        .filter(|d| d.day != first)
        .map(|d| d.amount)
        .collect();
    let x = repeats.len() as f64;
    let t_x = (last - first) as f64 / 7.0;
    Some(CustomerSummary {
        x,
        t_x,
        t: ((day_of(now) - first) as f64 / 7.0).max(t_x),
        monetary: if x > 0.0 {
            repeats.iter().sum::<f64>() / x
        } else {
            0.0
        },
    })
}
