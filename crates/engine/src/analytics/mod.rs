//! Differentially private analytics: aggregates over the customers the gate lets in for the
//! analytics purpose, released only with calibrated noise and charged against the asking
//! analyst's budget first — in one transaction, so concurrent queries cannot overspend and a
//! refused query spends nothing and draws no noise.
//!
//! The unit of privacy is a customer: neighbouring data sets differ by one customer added or
//! removed, with everything they contributed — one value, or at most `rows_per_customer` bins
//! where bins overlap (segments, events, funnel steps, retention months), and the noise is
//! calibrated to that bound.

pub(crate) mod exact;
#[cfg(test)]
mod exact_tests;
mod query;

use std::collections::BTreeMap;

use consentric_model::CallType;
use consentric_pets::{calibrate, Noise, Privacy, QuantilePlan, Rho, TopKPlan};
use consentric_policy::DataCategory;
use serde::Serialize;
use serde_json::json;

use exact::Exact;
use query::{Measure, Query, RESOLUTION};
pub use query::{QueryRequest, DATASETS};

use crate::audit;
use crate::error::EngineError;

/// The δ at which a budget's ε is reported.
const DELTA: f64 = 1e-6;

/// A budget as shown to its analyst.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// One step of a funnel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStep {
    /// The stage.
    pub stage: String,
    /// Customers who ever entered it (noisy).
    pub customers: i64,
}

/// A noisy release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    /// The query as asked.
    pub query: serde_json::Value,
    /// The released number (count, sum, mean, quantile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The released counts per category (histograms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bins: Option<BTreeMap<String, i64>>,
    /// The selected categories, largest first (top-k; counts are not released).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<Vec<String>>,
    /// Customers who entered each stage, in the funnel's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funnel: Option<Vec<FunnelStep>>,
    /// Per cohort month, customers who purchased 0, 1, … months after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<BTreeMap<String, Vec<i64>>>,
    /// The mechanism: `discrete_laplace`, `discrete_gaussian` (additive noise),
    /// `permute_and_flip` or `exponential` (selections).
    pub mechanism: String,
    /// The additive noise (per number released); absent for selections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<Noise>,
    /// Half-width of the 95% interval of the noise, in the result's units (each number is
    /// within ± this of the exact value with probability 95%); absent for means and
    /// selections.
    pub interval95: Option<f64>,
    /// ρ this release cost.
    pub spent_rho: f64,
    /// Its pure ε, when asked as ε.
    pub epsilon: Option<f64>,
    /// The analyst's budget after it.
    pub budget: BudgetView,
    /// Whose privacy is protected: one customer (all of their rows).
    pub unit_of_privacy: String,
    /// Bins each customer contributes to at most; the guarantee is for all of them together.
    pub rows_per_customer: u32,
}

/// How a release is randomised, decided (and priced) before any data is read.
enum Mechanism {
    /// Additive noise on one number or on each bin.
    Additive(Noise),
    /// A sum and a count, each with half the privacy.
    Mean(Noise, Noise),
    Quantile(QuantilePlan),
    TopK(TopKPlan),
}

/// What this service works on, handed to it by the context.
pub(crate) struct AnalyticsService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) lifecycle: &'a crate::lifecycle::Lifecycle,
    pub(crate) populations: crate::population::Populations<'a>,
    pub(crate) exact_aggregates: crate::analytics::exact::ExactAggregates<'a>,
}

/// The most ρ one analyst may hold on one data set, granted in all: far beyond any budget that
/// protects anyone, and far within what the ledger's 64-bit units hold.
const MAX_TOTAL: Rho = Rho::from_units(100_000 * 1_000_000_000_000);

impl AnalyticsService<'_> {
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
                message: "must be a number from 1e-12 (the budget's unit) to 1000".into(),
            })?;
        let now = self.clock.now().timestamp_millis();
        let row = self
            .store
            .write(|tx| {
                let Some(row) =
                    tx.grant_budget(analyst, dataset, add.units(), MAX_TOTAL.units())?
                else {
                    return Ok(None);
                };
                audit::append(
                    tx,
                    now,
                    actor,
                    "analytics.budget_granted",
                    None,
                    &json!({"analyst": analyst, "dataset": dataset, "rho": add.value()}),
                )?;
                Ok::<_, consentric_store::StoreError>(Some(row))
            })?
            .ok_or_else(|| EngineError::Invalid {
                field: "rho".into(),
                message: format!(
                    "the grant would take the analyst's total budget on `{dataset}` past {} ρ",
                    MAX_TOTAL.value()
                ),
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
                    .filter_map(|p| DataCategory::parse(p).ok())
                    .any(|p| c.is_within(&p))
                })
        };
        let parsed = query::parse(request, &identifies)?;
        let segments = match &parsed.query {
            Query::Histogram(query::GroupBy::Segment(names))
            | Query::TopK(query::GroupBy::Segment(names), _) => {
                self.exact_aggregates.declared_segments(names)?
            }
            _ => Vec::new(),
        };
        // The request as echoed back and recorded with the charge, its data set made explicit.
        let mut echo = serde_json::to_value(request).unwrap_or_default();
        echo["dataset"] = json!(parsed.dataset);
        // Plan (and so know the cost) before reading anything.
        let (mechanism, cost) = plan(&parsed)?;
        // Charge first: a refused query reads nothing further and draws no noise.
        let now = self.clock.now();
        let dataset = parsed.dataset.clone();
        let (charged, row) = self.store.write(|tx| {
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
        let (granted, spent) = (Rho::from_units(row.granted), Rho::from_units(row.spent));
        if !charged {
            return Err(EngineError::BudgetExceeded {
                requested: cost.value(),
                remaining: granted.minus(spent).value(),
            });
        }
        // The exact aggregate, over the customers the gate lets in.
        let purpose = self.lifecycle.settings.analytics_purpose.clone();
        let population = self
            .populations
            .population_for(&purpose, now, "lifecycle")?;
        let exact = self
            .exact_aggregates
            .exact(&parsed, &population.grants, &segments, now)?;
        let mut release = Release {
            query: echo,
            value: None,
            bins: None,
            selected: None,
            funnel: None,
            retention: None,
            mechanism: String::new(),
            noise: None,
            interval95: None,
            spent_rho: cost.value(),
            epsilon: match parsed.privacy {
                Privacy::Epsilon(e) => Some(e),
                Privacy::Rho(_) => None,
            },
            budget: view(&parsed.dataset, granted, spent),
            unit_of_privacy: "customer".into(),
            rows_per_customer: parsed.rows_per_customer,
        };
        noisy(&parsed, mechanism, exact, &mut release)?;
        Ok(release)
    }
}

fn sample_error(e: consentric_pets::noise::SampleError) -> EngineError {
    EngineError::Config(e.to_string())
}

/// The mechanism for `parsed` and its cost.
fn plan(parsed: &query::Parsed) -> Result<(Mechanism, Rho), EngineError> {
    let field = match parsed.privacy {
        Privacy::Epsilon(_) => "epsilon",
        Privacy::Rho(_) => "rho",
    };
    let bad = |e: consentric_pets::PrivacyError| EngineError::Invalid {
        field: field.into(),
        message: e.to_string(),
    };
    let half = |p: Privacy| match p {
        Privacy::Epsilon(e) => Privacy::Epsilon(e / 2.0),
        Privacy::Rho(r) => Privacy::Rho(r / 2.0),
    };
    let additive = |l1: f64, l2: f64| {
        calibrate(parsed.privacy, l1, l2)
            .map(|(n, c)| (Mechanism::Additive(n), c))
            .map_err(bad)
    };
    let bound = |[lo, hi]: [f64; 2]| lo.abs().max(hi.abs()) * RESOLUTION;
    match &parsed.query {
        Query::Count => additive(1.0, 1.0),
        Query::Sum(_, b) => additive(bound(*b), bound(*b)),
        Query::Mean(_, b) => {
            let (n, c1) = calibrate(half(parsed.privacy), bound(*b), bound(*b)).map_err(bad)?;
            let (m, c2) = calibrate(half(parsed.privacy), 1.0, 1.0).map_err(bad)?;
            let total = c1
                .plus(c2)
                .ok_or_else(|| bad(consentric_pets::PrivacyError::Sensitivity))?;
            Ok((Mechanism::Mean(n, m), total))
        }
        Query::Quantile(_, alpha, candidates) => {
            QuantilePlan::new(candidates.clone(), *alpha, parsed.privacy)
                .map(|(p, c)| (Mechanism::Quantile(p), c))
                .map_err(bad)
        }
        Query::TopK(by, k) => TopKPlan::new(by.bins().len(), *k, parsed.privacy)
            .map(|(p, c)| (Mechanism::TopK(p), c))
            .map_err(bad),
        // Bins: one customer changes up to L of them by one each.
        Query::Histogram(_) | Query::Funnel(_) | Query::Retention(..) => {
            let l = f64::from(parsed.rows_per_customer);
            additive(l, l.sqrt())
        }
    }
}

fn noise_name(n: &Noise) -> &'static str {
    match n {
        Noise::DiscreteLaplace { .. } => "discrete_laplace",
        Noise::DiscreteGaussian { .. } => "discrete_gaussian",
    }
}

/// Randomises `exact` with `mechanism` into `out`.
fn noisy(
    parsed: &query::Parsed,
    mechanism: Mechanism,
    exact: Exact,
    out: &mut Release,
) -> Result<(), EngineError> {
    let selection = match parsed.privacy {
        Privacy::Epsilon(_) => "permute_and_flip",
        Privacy::Rho(_) => "exponential",
    };
    match (mechanism, exact) {
        (Mechanism::Additive(noise), Exact::Scalar(v)) => {
            let draw = v + noise.sample().map_err(sample_error)?;
            let (value, unit) = match parsed.query {
                Query::Sum(..) => (draw as f64 / RESOLUTION, RESOLUTION),
                _ => (draw.max(0) as f64, 1.0),
            };
            out.value = Some(value);
            out.interval95 = Some(noise.half_width(0.95) as f64 / unit);
            out.mechanism = noise_name(&noise).into();
            out.noise = Some(noise);
        }
        (Mechanism::Mean(sum_noise, count_noise), Exact::Mean(sum, n)) => {
            let b = match parsed.query {
                Query::Mean(_, b) => b,
                _ => [f64::MIN, f64::MAX],
            };
            let s = (sum + sum_noise.sample().map_err(sample_error)?) as f64 / RESOLUTION;
            let n = (n + count_noise.sample().map_err(sample_error)?).max(1) as f64;
            out.value = Some((s / n).clamp(b[0], b[1]));
            out.mechanism = noise_name(&sum_noise).into();
            out.noise = Some(sum_noise);
        }
        (Mechanism::Quantile(plan), Exact::Values(values)) => {
            let unit = match parsed.query {
                Query::Quantile(Measure::Revenue, ..) => RESOLUTION,
                _ => 1.0,
            };
            out.value = Some(plan.release(values).map_err(sample_error)? as f64 / unit);
            out.mechanism = selection.into();
        }
        (Mechanism::TopK(plan), Exact::Bins(counts)) => {
            let names = match &parsed.query {
                Query::TopK(by, _) => by.bins(),
                _ => Vec::new(),
            };
            let chosen = plan.release(counts).map_err(sample_error)?;
            out.selected = Some(
                chosen
                    .into_iter()
                    .filter_map(|i| names.get(i).cloned())
                    .collect(),
            );
            out.mechanism = selection.into();
        }
        (Mechanism::Additive(noise), Exact::Bins(counts)) => {
            let mut released = Vec::with_capacity(counts.len());
            for c in counts {
                released.push((c + noise.sample().map_err(sample_error)?).max(0));
            }
            match &parsed.query {
                Query::Funnel(stages) => {
                    out.funnel = Some(
                        stages
                            .iter()
                            .zip(released)
                            .map(|(s, customers)| FunnelStep {
                                stage: s.as_str().to_owned(),
                                customers,
                            })
                            .collect(),
                    );
                }
                Query::Retention(months, periods) => {
                    let width = *periods as usize + 1;
                    out.retention = Some(
                        months
                            .iter()
                            .zip(released.chunks(width))
                            .map(|(m, row)| (m.clone(), row.to_vec()))
                            .collect(),
                    );
                }
                Query::Histogram(by) => {
                    out.bins = Some(by.bins().into_iter().zip(released).collect());
                }
                _ => {}
            }
            out.interval95 = Some(noise.half_width(0.95) as f64);
            out.mechanism = noise_name(&noise).into();
            out.noise = Some(noise);
        }
        _ => {
            return Err(EngineError::Config(
                "a query's mechanism and its exact value disagree".into(),
            ))
        }
    }
    Ok(())
}
