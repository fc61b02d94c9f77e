//! Differentially private analytics: aggregates over the customers the gate lets in for the
//! analytics purpose, released only with calibrated noise and charged against the asking
//! analyst's budget first — in one transaction, so concurrent queries cannot overspend and a
//! refused query spends nothing and draws no noise.
//!
//! The unit of privacy is a customer: each contributes one row (their counters, stage or
//! trait), so neighbouring data sets differ by one customer added or removed.

mod query;

use std::collections::BTreeMap;

use consentric_model::{CallType, Stage};
use consentric_pets::{calibrate, Noise, Privacy, Rho};
use consentric_policy::{DataCategory, Grant};
use serde::Serialize;
use serde_json::json;

use query::{GroupBy, Measure, Query};
pub use query::{QueryRequest, DATASETS};

use crate::audit;
use crate::engine::Engine;
use crate::error::EngineError;

/// The δ at which a budget's ε is reported.
const DELTA: f64 = 1e-6;
/// Sums are computed in hundredths (cents), so a fractional measure is exact.
const RESOLUTION: f64 = 100.0;

/// A budget as shown to its analyst.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    /// The data set.
    pub dataset: String,
    /// ρ granted.
    pub granted_rho: f64,
    /// ρ spent.
    pub spent_rho: f64,
    /// ρ remaining.
    pub remaining_rho: f64,
    /// The (ε, δ = 10⁻⁶) guarantee of what has been spent.
    pub spent_epsilon: f64,
    /// δ of `spent_epsilon`.
    pub delta: f64,
}

fn view(dataset: &str, granted: Rho, spent: Rho) -> BudgetView {
    BudgetView {
        dataset: dataset.to_owned(),
        granted_rho: granted.value(),
        spent_rho: spent.value(),
        remaining_rho: granted.minus(spent).value(),
        spent_epsilon: spent.epsilon_at(DELTA),
        delta: DELTA,
    }
}

/// A noisy release.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Release {
    /// The query as asked.
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
    /// The released number (count, sum, mean).
    pub value: Option<f64>,
    /// The released counts per category (histograms).
    pub bins: Option<BTreeMap<String, i64>>,
    /// The noise added (per number released).
    #[schema(value_type = Object)]
    pub noise: Noise,
    /// Half-width of the 95% interval of the noise, in the result's units (each number is
    /// within ± this of the exact value with probability 95%); absent for means.
    pub interval95: Option<f64>,
    /// ρ this release cost.
    pub spent_rho: f64,
    /// Its pure ε, when made with discrete Laplace noise.
    pub epsilon: Option<f64>,
    /// The analyst's budget after it.
    pub budget: BudgetView,
    /// Whose privacy is protected: one customer (all of their rows).
    pub unit_of_privacy: String,
    /// Rows each customer contributes at most.
    pub rows_per_customer: u32,
}

fn category(name: &str) -> Option<DataCategory> {
    DataCategory::parse(name).ok()
}

fn permits(g: &Grant, c: &str) -> bool {
    category(c).is_some_and(|c| g.permits(&c))
}

impl Engine {
    /// Grants `analyst` (an API key id) `rho` more on `dataset`. Audited.
    ///
    /// # Errors
    /// Invalid ρ or data set; a database fault.
    pub fn grant_budget(
        &self,
        analyst: &str,
        dataset: &str,
        rho: f64,
        actor: &str,
    ) -> Result<BudgetView, EngineError> {
        if !DATASETS.contains(&dataset) {
            return Err(EngineError::Invalid {
                field: "dataset".into(),
                message: format!("unknown data set; known: {}", DATASETS.join(", ")),
            });
        }
        let add = Rho::floor(rho)
            .filter(|r| *r > Rho::ZERO && rho <= 1000.0)
            .ok_or_else(|| EngineError::Invalid {
                field: "rho".into(),
                message: "must be a positive finite number at most 1000".into(),
            })?;
        let now = self.now().timestamp_millis();
        let row = self.store.write(|tx| {
            let row = tx.grant_budget(analyst, dataset, add.units())?;
            audit::append(
                tx,
                now,
                actor,
                "analytics.budget_granted",
                None,
                &json!({"analyst": analyst, "dataset": dataset, "rho": add.value()}),
            )?;
            Ok::<_, consentric_store::StoreError>(row)
        })?;
        Ok(view(
            dataset,
            Rho::from_units(row.granted),
            Rho::from_units(row.spent),
        ))
    }

    /// `analyst`'s budgets.
    ///
    /// # Errors
    /// A database fault.
    pub fn analytics_budget(&self, analyst: &str) -> Result<Vec<BudgetView>, EngineError> {
        Ok(self
            .store
            .budgets(analyst)?
            .into_iter()
            .map(|(d, b)| view(&d, Rho::from_units(b.granted), Rho::from_units(b.spent)))
            .collect())
    }

    /// Answers a query with noise, charged to `analyst`'s budget before any noise is drawn.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming the field, [`EngineError::BudgetExceeded`] with what
    /// remains (nothing spent), or a database fault.
    pub fn analytics_query(
        &self,
        analyst: &str,
        request: &QueryRequest,
    ) -> Result<Release, EngineError> {
        let identifies = |t: &str| {
            self.policy
                .schema
                .category(CallType::Identify, None, &["traits", t])
                .is_none_or(|c| {
                    [
                        "user.unique_id",
                        "user.contact",
                        "user.name",
                        "user.device",
                        "user.location.precise",
                    ]
                    .iter()
                    .filter_map(|p| category(p))
                    .any(|p| c.is_within(&p))
                })
        };
        let parsed = query::parse(request, &identifies)?;
        // The request as echoed back and recorded with the charge, its data set made explicit.
        let mut echo = serde_json::to_value(request).unwrap_or_default();
        echo["dataset"] = json!(parsed.dataset);
        // Calibrate (and so know the cost) before reading anything.
        let half = |p: Privacy| match p {
            Privacy::Epsilon(e) => Privacy::Epsilon(e / 2.0),
            Privacy::Rho(r) => Privacy::Rho(r / 2.0),
        };
        let bad = |e: consentric_pets::PrivacyError| EngineError::Invalid {
            field: match parsed.privacy {
                Privacy::Epsilon(_) => "epsilon".into(),
                Privacy::Rho(_) => "rho".into(),
            },
            message: e.to_string(),
        };
        let (noise, cost, count_noise) = match &parsed.query {
            Query::Count | Query::Histogram(_) => {
                let (n, c) = calibrate(parsed.privacy, 1.0, 1.0).map_err(bad)?;
                (n, c, None)
            }
            Query::Sum(_, [lo, hi]) => {
                let s = lo.abs().max(hi.abs()) * RESOLUTION;
                let (n, c) = calibrate(parsed.privacy, s, s).map_err(bad)?;
                (n, c, None)
            }
            Query::Mean(_, [lo, hi]) => {
                let s = lo.abs().max(hi.abs()) * RESOLUTION;
                let (n, c1) = calibrate(half(parsed.privacy), s, s).map_err(bad)?;
                let (m, c2) = calibrate(half(parsed.privacy), 1.0, 1.0).map_err(bad)?;
                let total = c1
                    .plus(c2)
                    .ok_or_else(|| bad(consentric_pets::PrivacyError::Sensitivity))?;
                (n, total, Some(m))
            }
        };
        // Charge first: a refused query reads nothing further and draws no noise.
        let now = self.now();
        let dataset = parsed.dataset.clone();
        let budget = self.store.write(|tx| {
            let charged = tx.charge_budget(
                analyst,
                &dataset,
                cost.units(),
                &echo.to_string(),
                now.timestamp_millis(),
            )?;
            let row = tx.budget(analyst, &dataset)?.unwrap_or_default();
            if charged {
                audit::append(
                    tx,
                    now.timestamp_millis(),
                    &format!("key:{analyst}"),
                    "analytics.released",
                    None,
                    &json!({"dataset": dataset, "rho": cost.value(), "query": echo}),
                )?;
            }
            Ok::<_, consentric_store::StoreError>((charged, row))
        })?;
        let (charged, row) = budget;
        let (granted, spent) = (Rho::from_units(row.granted), Rho::from_units(row.spent));
        if !charged {
            return Err(EngineError::BudgetExceeded {
                requested: cost.value(),
                remaining: granted.minus(spent).value(),
            });
        }
        // The exact aggregate, over the customers the gate lets in.
        let purpose = self.lifecycle.settings.analytics_purpose.clone();
        let (grants, _) = self.population_where(&purpose, now, "lifecycle", |_| true)?;
        let needs = |m: Measure| match m {
            Measure::Orders => "user.behavior.purchase",
            Measure::Revenue => "user.financial.transaction",
            Measure::Events => "user.behavior",
        };
        let stages = match (&parsed.stage, &parsed.query) {
            (Some(_), _) | (_, Query::Histogram(GroupBy::Stage)) => {
                Some(self.store.stages_for(&grants)?)
            }
            _ => None,
        };
        let in_stage = |g: &Grant| match (&parsed.stage, &stages) {
            (Some(s), Some(st)) => consentric_model::ProfileId::parse(g.subject())
                .and_then(|id| st.get(&id))
                .is_some_and(|x| x == s.as_str()),
            _ => true,
        };
        let draw = |n: &Noise| n.sample().map_err(|e| EngineError::Config(e.to_string()));
        let (value, bins, interval) = match &parsed.query {
            Query::Count => {
                let exact = grants.iter().filter(|g| in_stage(g)).count() as i64;
                let v = (exact + draw(&noise)?).max(0);
                (Some(v as f64), None, Some(noise.half_width(0.95) as f64))
            }
            Query::Sum(m, b) | Query::Mean(m, b) => {
                let included: Vec<&Grant> = grants
                    .iter()
                    .filter(|g| permits(g, needs(*m)) && in_stage(g))
                    .collect();
                let owned: Vec<Grant> = included.iter().map(|g| (*g).clone()).collect();
                let counters = self.store.counters_for(&owned)?;
                let exact_sum: i64 = counters
                    .values()
                    .map(|c| {
                        let v = match m {
                            Measure::Orders => c.order_count as f64,
                            Measure::Revenue => c.revenue,
                            Measure::Events => c.event_count as f64,
                        };
                        (v.clamp(b[0], b[1]) * RESOLUTION).round() as i64
                    })
                    .sum();
                let noisy_sum = (exact_sum + draw(&noise)?) as f64 / RESOLUTION;
                match (&parsed.query, &count_noise) {
                    (Query::Mean(..), Some(cn)) => {
                        let n = (counters.len() as i64 + draw(cn)?).max(1) as f64;
                        (Some((noisy_sum / n).clamp(b[0], b[1])), None, None)
                    }
                    _ => (
                        Some(noisy_sum),
                        None,
                        Some(noise.half_width(0.95) as f64 / RESOLUTION),
                    ),
                }
            }
            Query::Histogram(by) => {
                let mut exact: BTreeMap<String, i64> = BTreeMap::new();
                let names: Vec<String> = match by {
                    GroupBy::Stage => Stage::ALL
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .chain(["unplaced".to_owned()])
                        .collect(),
                    GroupBy::Cohort(months) => months.clone(),
                    GroupBy::Trait(_, cats) => {
                        cats.iter().cloned().chain(["other".to_owned()]).collect()
                    }
                };
                for n in &names {
                    exact.insert(n.clone(), 0);
                }
                match by {
                    GroupBy::Stage => {
                        let st = stages.as_ref();
                        for g in &grants {
                            let s = consentric_model::ProfileId::parse(g.subject())
                                .and_then(|id| st.and_then(|st| st.get(&id)).cloned())
                                .unwrap_or_else(|| "unplaced".into());
                            if let Some(c) = exact.get_mut(&s) {
                                *c += 1;
                            }
                        }
                    }
                    GroupBy::Cohort(_) => {
                        let owned: Vec<Grant> = grants
                            .iter()
                            .filter(|g| permits(g, "user.behavior"))
                            .cloned()
                            .collect();
                        for c in self.store.counters_for(&owned)?.values() {
                            let month = chrono::DateTime::from_timestamp_millis(c.first_seen)
                                .map(|d| d.format("%Y-%m").to_string())
                                .unwrap_or_default();
                            if let Some(n) = exact.get_mut(&month) {
                                *n += 1;
                            }
                        }
                    }
                    GroupBy::Trait(t, _) => {
                        let cat = self
                            .policy
                            .schema
                            .category(CallType::Identify, None, &["traits", t.as_str()])
                            .cloned();
                        for g in grants
                            .iter()
                            .filter(|g| cat.as_ref().is_some_and(|c| g.permits(c)))
                        {
                            let value = self
                                .store
                                .traits(g)?
                                .into_iter()
                                .find(|r| r.name == *t)
                                .map(|r| match r.value {
                                    serde_json::Value::String(s) => s,
                                    v => v.to_string(),
                                });
                            let Some(value) = value else { continue };
                            let key = if exact.contains_key(&value) && value != "other" {
                                value
                            } else {
                                "other".to_owned()
                            };
                            if let Some(n) = exact.get_mut(&key) {
                                *n += 1;
                            }
                        }
                    }
                }
                let mut noisy = BTreeMap::new();
                for (k, v) in exact {
                    noisy.insert(k, (v + draw(&noise)?).max(0));
                }
                (None, Some(noisy), Some(noise.half_width(0.95) as f64))
            }
        };
        Ok(Release {
            query: echo,
            value,
            bins,
            noise,
            interval95: interval,
            spent_rho: cost.value(),
            epsilon: match parsed.privacy {
                Privacy::Epsilon(e) => Some(e),
                Privacy::Rho(_) => None,
            },
            budget: view(&parsed.dataset, granted, spent),
            unit_of_privacy: "customer".into(),
            rows_per_customer: 1,
        })
    }
}
