//! `[lifecycle]` in `consentric.toml`.

use chrono::NaiveDate;
use consentric_lifecycle::{ChurnSettings, ClvSettings, StageRule};
use serde::Deserialize;

/// How stages, models and scores are computed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    /// Update stages as events arrive (`false`: only `consentric lifecycle recompute`).
    pub on_ingest: bool,
    /// Minutes between full recomputes inside `serve`, which catch what no event shows (time
    /// passing: a customer lapsing); 0 turns them off (`CONSENTRIC_LIFECYCLE_RECOMPUTE_MINUTES`).
    pub recompute_every_minutes: u64,
    /// The purpose stages and per-customer scores are computed under.
    pub stage_purpose: String,
    /// The purpose model fitting, cohorts and the funnel are computed under.
    pub analytics_purpose: String,
    /// Compute as of the end of this day instead of now: historic data sets, the demo
    /// (`CONSENTRIC_LIFECYCLE_AS_OF`).
    pub as_of: Option<NaiveDate>,
    /// Last day of the models' calibration window; default: the latest purchase day.
    pub calibration_end: Option<NaiveDate>,
    /// CLV horizon and discounting.
    pub clv: ClvSettings,
    /// When a customer counts as at risk of churning.
    pub churn: ChurnSettings,
    /// `[[lifecycle.rules]]`: when present, these replace the retail defaults, tried in order.
    pub rules: Option<Vec<StageRule>>,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            on_ingest: true,
            recompute_every_minutes: 1440,
            stage_purpose: "personalization".into(),
            analytics_purpose: "analytics".into(),
            as_of: None,
            calibration_end: None,
            clv: ClvSettings::default(),
            churn: ChurnSettings::default(),
            rules: None,
        }
    }
}
