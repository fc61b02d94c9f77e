//! What the API and `lifecycle report` show: one customer's stage, history and scores (under
//! the stage purpose), and the population's funnel, cohorts and models (under analytics).

use std::collections::BTreeMap;

use consentric_lifecycle::cohorts::{funnel, retention, CohortRow, FunnelRow};
use consentric_lifecycle::{ChurnRisk, Rfm, RfmInput};
use consentric_model::Stage;
use consentric_policy::{gate, ConsentState, Refusal};
use serde::Serialize;
use serde_json::json;

use super::fit::{stored_fits, ModelFit};
use super::scoring::{date_of, day_of, summary_of_days};
use crate::audit;
use crate::error::EngineError;
use crate::ledger::to_records;
use crate::profiles::{iso, ProfileRef};

/// One stage change, as served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionView {
    /// The stage left (absent for the first placement).
    pub from: Option<Stage>,
    /// The stage entered.
    pub to: Stage,
    /// When (RFC 3339).
    pub at: String,
    /// The rule that caused it.
    pub rule: String,
}

/// A customer's scores from the fitted models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// Probability the customer is still active (BG/NBD).
    pub p_alive: f64,
    /// P(alive) under Pareto/NBD, when it was fitted.
    pub p_alive_pareto: Option<f64>,
    /// Expected purchases in the next 90 days.
    pub expected_purchases_90d: f64,
    /// Expected value of a purchase (Gamma-Gamma).
    pub expected_spend: Option<f64>,
    /// Discounted value over the configured horizon.
    pub clv: Option<f64>,
}

/// `GET /v1/customers/{id}/lifecycle`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerLifecycle {
    /// The profile.
    pub profile_id: String,
    /// The purpose this was computed under.
    pub purpose: String,
    /// The moment it was computed for (RFC 3339).
    pub as_of: String,
    /// Current stage, once placed.
    pub stage: Option<Stage>,
    /// Since when.
    pub since: Option<String>,
    /// The rule that placed the customer.
    pub rule: Option<String>,
    /// Every stage change, oldest first.
    pub history: Vec<TransitionView>,
    /// RFM quintile scores against the last fit's population.
    pub rfm: Option<Rfm>,
    /// Model scores (absent until `lifecycle fit` has run, or without purchases).
    pub scores: Option<Scores>,
    /// Churn risk from P(alive) and recency.
    pub churn: Option<ChurnRisk>,
}

/// `GET /v1/lifecycle/summary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LifecycleSummary {
    /// The purpose this was computed under.
    pub purpose: String,
    /// Customers included.
    pub customers: usize,
    /// Customers left out for want of a basis.
    pub left_out: usize,
    /// Customers per current stage.
    pub funnel: BTreeMap<Stage, u64>,
    /// Stage transitions recorded for these customers.
    pub transitions: u64,
    /// Those transitions by where they went from (`None`: a first placement) and to.
    pub flows: Vec<Flow>,
    /// Customers per stage at the end of each month.
    pub funnel_over_time: Vec<FunnelRow>,
    /// Retention by month of first purchase.
    pub cohorts: Vec<CohortRow>,
    /// Fitted models.
    pub models: Vec<ModelFit>,
}

/// Customers moved from one stage to another (or placed first, `from` absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    /// The stage they left, if any.
    pub from: Option<Stage>,
    /// The stage they entered.
    pub to: Stage,
    /// How many times.
    pub transitions: u64,
}

/// What this service works on, handed to it by the context.
pub(crate) struct LifecycleViews<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) lifecycle: &'a crate::lifecycle::Lifecycle,
    pub(crate) lifecycle_scores: crate::lifecycle::service::LifecycleScores<'a>,
    /// The latest summary, for readers that may take one a little old (the console).
    pub(crate) summary_cache: &'a crate::recent::Recent<LifecycleSummary>,
}

impl LifecycleViews<'_> {
    /// A customer's lifecycle under the stage purpose, as `actor`; audited.
    ///
    /// # Errors
    /// Not found, [`EngineError::NoBasis`] without a basis for the stage purpose, or a
    /// database fault.
    pub fn customer_lifecycle(
        &self,
        who: &ProfileRef,
        actor: &str,
    ) -> Result<CustomerLifecycle, EngineError> {
        let life = &self.lifecycle;
        let id = crate::profiles::find_profile(self.store, who)?;
        let now = self.clock.now();
        let consent = ConsentState::fold(to_records(&self.store.consent(&id)?));
        let purpose = &life.settings.stage_purpose;
        let grant = gate::open(&self.policy.registry, &consent, purpose, id.as_str(), now)
            .map_err(|r| match r {
                Refusal::UnknownPurpose(p) => {
                    EngineError::Config(format!("[lifecycle] names the unknown purpose `{p}`"))
                }
                refusal @ Refusal::NoBasis { .. } => EngineError::NoBasis(refusal.to_string()),
            })?;
        let as_of = life.as_of(now).timestamp_millis();
        let stage = self.store.stage(&grant)?;
        let history = self
            .store
            .transitions(&grant)?
            .into_iter()
            .map(|t| TransitionView {
                from: t.from,
                to: t.to,
                at: iso(t.at),
                rule: t.rule,
            })
            .collect();
        let (mut rfm, mut scores, mut churn) = (None, None, None);
        if super::opens_purchases(&grant) {
            let today = day_of(as_of);
            let mut days = self.store.purchases(&grant)?;
            days.retain(|d| d.day <= today);
            let scorer = life.scorer();
            if let (Some(summary), Some(last)) = (
                summary_of_days(&days, as_of),
                days.iter().map(|d| d.day).max(),
            ) {
                let recency = (day_of(as_of) - last) as f64;
                if let Some(s) = &scorer {
                    let sc = s.score(&summary);
                    rfm = s.rfm(&RfmInput {
                        recency_days: recency,
                        frequency: days.len() as f64,
                        monetary: days.iter().map(|d| d.amount).sum(),
                    });
                    churn = Some(s.churn(Some(sc.p_alive), recency));
                    scores = Some(Scores {
                        p_alive: sc.p_alive,
                        p_alive_pareto: s
                            .pareto
                            .as_ref()
                            .map(|p| consentric_lifecycle::PurchaseModel::p_alive(p, &summary)),
                        expected_purchases_90d: sc.expected_purchases_90d,
                        expected_spend: sc.expected_spend,
                        clv: sc.clv,
                    });
                } else {
                    churn = Some(consentric_lifecycle::churn_risk(
                        None,
                        recency,
                        life.settings.churn,
                    ));
                }
            }
        }
        self.store.write(|tx| {
            audit::append(
                tx,
                now.timestamp_millis(),
                actor,
                "lifecycle.viewed",
                Some(id.as_str()),
                &json!({"purpose": grant.purpose().as_str()}),
            )
        })?;
        Ok(CustomerLifecycle {
            profile_id: id.to_string(),
            purpose: purpose.clone(),
            as_of: iso(as_of),
            stage: stage.as_ref().map(|s| s.stage),
            since: stage.as_ref().map(|s| iso(s.since)),
            rule: stage.map(|s| s.rule),
            history,
            rfm,
            scores,
            churn,
        })
    }

    /// The population's funnel, cohorts and models under the analytics purpose; audited.
    ///
    /// # Errors
    /// A database fault.
    pub fn lifecycle_summary(&self, actor: &str) -> Result<LifecycleSummary, EngineError> {
        let summary = self.compute_summary()?;
        self.audit_summary(&summary, actor)?;
        Ok(summary)
    }

    /// [`LifecycleViews::lifecycle_summary`], or the one computed last if it is younger than
    /// `max_age`; audited either way.
    ///
    /// # Errors
    /// A database fault.
    pub fn lifecycle_summary_within(
        &self,
        max_age: std::time::Duration,
        actor: &str,
    ) -> Result<std::sync::Arc<LifecycleSummary>, EngineError> {
        let summary = self
            .summary_cache
            .get_or(max_age, || self.compute_summary())?;
        self.audit_summary(&summary, actor)?;
        Ok(summary)
    }

    /// Computes the summary afresh for readers of [`LifecycleViews::lifecycle_summary_within`]
    /// (a server does it in the background, so that no page view waits for it). Nothing is
    /// shown to anyone, so nothing is audited.
    ///
    /// # Errors
    /// A database fault.
    pub fn refresh_summary(&self) -> Result<(), EngineError> {
        self.summary_cache
            .get_or(std::time::Duration::ZERO, || self.compute_summary())
            .map(drop)
    }

    fn audit_summary(&self, s: &LifecycleSummary, actor: &str) -> Result<(), EngineError> {
        let now = self.clock.now();
        Ok(self.store.write(|tx| {
            audit::append(
                tx,
                now.timestamp_millis(),
                actor,
                "lifecycle.summary",
                None,
                &json!({"purpose": s.purpose, "customers": s.customers, "left_out": s.left_out}),
            )
        })?)
    }

    fn compute_summary(&self) -> Result<LifecycleSummary, EngineError> {
        let life = &self.lifecycle;
        let now = self.clock.now();
        let (grants, left_out) = self
            .lifecycle_scores
            .population(&life.settings.analytics_purpose, now)?;
        let purchases = self.store.purchases_for(&grants)?;
        let dates: Vec<Vec<chrono::NaiveDate>> = purchases
            .values()
            .map(|days| days.iter().filter_map(|d| date_of(d.day)).collect())
            .collect();
        let cohorts = retention(dates.iter().map(Vec::as_slice));
        let transitions = self.store.transitions_for(&grants)?;
        let histories: Vec<Vec<(chrono::NaiveDate, Stage)>> = transitions
            .values()
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| Some((date_of(day_of(t.at))?, t.to)))
                    .collect()
            })
            .collect();
        let funnel_over_time = funnel(histories.iter().map(Vec::as_slice));
        let mut current: BTreeMap<Stage, u64> = BTreeMap::new();
        let mut flows: BTreeMap<(Option<Stage>, Stage), u64> = BTreeMap::new();
        for ts in transitions.values() {
            if let Some(last) = ts.last() {
                *current.entry(last.to).or_default() += 1;
            }
            for t in ts {
                *flows.entry((t.from, t.to)).or_default() += 1;
            }
        }
        let models = stored_fits(&self.store.models()?);
        Ok(LifecycleSummary {
            purpose: life.settings.analytics_purpose.clone(),
            customers: grants.len(),
            left_out,
            funnel: current,
            transitions: transitions.values().map(|t| t.len() as u64).sum(),
            flows: flows
                .into_iter()
                .map(|((from, to), transitions)| Flow {
                    from,
                    to,
                    transitions,
                })
                .collect(),
            funnel_over_time,
            cohorts,
            models,
        })
    }
}
