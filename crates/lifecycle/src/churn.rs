//! Churn risk: how likely a customer is gone, from the purchase model's P(alive) and from
//! recency, so that single-purchase customers (whom BG/NBD calls alive by construction) are
//! judged too.

use serde::{Deserialize, Serialize};

/// When a customer counts as at risk.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSettings {
    /// Risk at or above which a customer is flagged.
    pub threshold: f64,
    /// Days without a purchase after which recency alone means certain churn.
    pub horizon_days: f64,
}

impl Default for ChurnSettings {
    fn default() -> Self {
        ChurnSettings {
            threshold: 0.5,
            horizon_days: 365.0,
        }
    }
}

/// A customer's churn risk.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChurnRisk {
    /// In [0, 1]: `max(1 − P(alive), days since last purchase / horizon)`.
    pub score: f64,
    /// `score >= threshold`.
    pub at_risk: bool,
}

/// The risk from `p_alive` (if a model is fitted) and days since the last purchase.
pub fn churn_risk(p_alive: Option<f64>, days_since_purchase: f64, s: ChurnSettings) -> ChurnRisk {
    let model = p_alive.map_or(0.0, |p| 1.0 - p.clamp(0.0, 1.0));
    let recency = (days_since_purchase.max(0.0) / s.horizon_days.max(1.0)).min(1.0);
    let score = model.max(recency);
    ChurnRisk {
        score,
        at_risk: score >= s.threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_and_recency_each_raise_risk() {
        let s = ChurnSettings::default();
        assert!(!churn_risk(Some(0.9), 10.0, s).at_risk);
        assert!(churn_risk(Some(0.2), 10.0, s).at_risk);
        assert!(churn_risk(Some(1.0), 300.0, s).at_risk); // a single purchase long ago
        assert!(!churn_risk(None, 30.0, s).at_risk);
        assert_eq!(churn_risk(None, 9999.0, s).score, 1.0);
    }
}
