//! `consentric lifecycle fit`: BG/NBD, Pareto/NBD and Gamma-Gamma fitted on the purchases of
//! the customers with a basis for the analytics purpose, stored with their fit date.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use consentric_lifecycle::summary::summarise;
use consentric_lifecycle::{
    BgNbd, CustomerSummary, Fitted, GammaGamma, ParetoNbd, Purchase, RfmBoundaries, RfmInput,
};
use consentric_store::{ModelRow, PurchaseDay};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::scoring::{date_of, Scorer};
use super::Lifecycle;
use crate::audit;
use crate::error::EngineError;

/// Stored names of the fitted models.
pub(crate) const BG_NBD: &str = "bg_nbd";
pub(crate) const PARETO_NBD: &str = "pareto_nbd";
pub(crate) const GAMMA_GAMMA: &str = "gamma_gamma";
pub(crate) const RFM: &str = "rfm";

/// Fewest customers Pareto/NBD is fitted on. Below this its four parameters are rarely
/// identified: they run off towards the bounds, where each hypergeometric term needs tens of
/// thousands of series terms and a fit of ten customers took half a minute (debug build).
/// BG/NBD, whose likelihood is closed-form, is fitted on any four.
const MIN_PARETO_CUSTOMERS: usize = 100;

/// One fitted model, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFit {
    /// `bg_nbd`, `pareto_nbd` or `gamma_gamma`.
    pub model: String,
    /// Parameter values by name.
    pub params: BTreeMap<String, f64>,
    /// Standard errors by name (absent where the Hessian could not be inverted).
    pub std_errors: BTreeMap<String, Option<f64>>,
    /// Maximised log-likelihood.
    pub ln_likelihood: f64,
    /// Customers fitted on.
    pub customers: usize,
    /// Optimiser iterations.
    pub iterations: u64,
    /// Last day of the calibration window.
    pub calibration_end: NaiveDate,
    /// When it was fitted (RFC 3339).
    pub fitted_at: String,
    /// Seconds the fit took.
    pub seconds: f64,
    /// BG/NBD's tracking plot over calibration and holdout (absent for the other models, and
    /// from fits stored before it was computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<super::fit_figures::Tracking>,
    /// P(alive) and CLV across the customers fitted on (BG/NBD's row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributions: Option<super::fit_figures::Distributions>,
}

/// What `lifecycle fit` did.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    /// Last day of the calibration window.
    pub calibration_end: NaiveDate,
    /// Customers with a basis for the analytics purpose and a purchase in the window.
    pub customers: usize,
    /// Customers left out for want of a basis.
    pub left_out: usize,
    /// The models fitted.
    pub models: Vec<ModelFit>,
}

fn model_fit<M>(
    name: &str,
    f: &Fitted<M>,
    calibration_end: NaiveDate,
    fitted_at: &str,
    seconds: f64,
) -> ModelFit {
    ModelFit {
        model: name.into(),
        params: f
            .names
            .iter()
            .zip(&f.params)
            .map(|(n, v)| ((*n).to_owned(), *v))
            .collect(),
        std_errors: f
            .names
            .iter()
            .zip(&f.std_errors)
            .map(|(n, v)| ((*n).to_owned(), v.is_finite().then_some(*v)))
            .collect(),
        ln_likelihood: f.ln_likelihood,
        customers: f.customers,
        iterations: f.iterations,
        calibration_end,
        fitted_at: fitted_at.into(),
        seconds,
        tracking: None,
        distributions: None,
    }
}

/// Purchase days as dated purchases.
pub(crate) fn dated(days: &[PurchaseDay]) -> Vec<Purchase> {
    days.iter()
        .filter_map(|d| {
            Some(Purchase {
                day: date_of(d.day)?,
                amount: d.amount,
            })
        })
        .collect()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed().as_secs_f64())
}

/// What this service works on, handed to it by the context.
pub(crate) struct FitService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) lifecycle: &'a crate::lifecycle::Lifecycle,
    pub(crate) lifecycle_scores: crate::lifecycle::service::LifecycleScores<'a>,
}

impl FitService<'_> {
    /// Fits the value models on the customers with a basis for the analytics purpose and
    /// stores them; later scores use them.
    ///
    /// # Errors
    /// No purchases to fit on, a model that does not converge, or a database fault.
    pub fn lifecycle_fit(&self, actor: &str) -> Result<FitReport, EngineError> {
        let life = &self.lifecycle;
        let now = self.clock.now();
        let (grants, left_out) = self
            .lifecycle_scores
            .population(&life.settings.analytics_purpose, now)?;
        let purchases = self.store.purchases_for(&grants)?;
        let last_day = purchases.values().flatten().map(|d| d.day).max();
        let calibration_end = match (life.settings.calibration_end, last_day.and_then(date_of)) {
            (Some(day), _) => day,
            (None, Some(day)) => day,
            (None, None) => {
                return Err(EngineError::Conflict(
                    "no purchases by customers with a basis for analytics to fit on".into(),
                ))
            }
        };
        let mut summaries: Vec<CustomerSummary> = Vec::with_capacity(purchases.len());
        let mut rfm_inputs = Vec::with_capacity(purchases.len());
        for days in purchases.values() {
            let p = dated(days);
            if let Some(s) = summarise(&p, calibration_end) {
                summaries.push(s);
                let within: Vec<&Purchase> =
                    p.iter().filter(|x| x.day <= calibration_end).collect();
                rfm_inputs.push(RfmInput {
                    recency_days: within
                        .iter()
                        .map(|x| (calibration_end - x.day).num_days() as f64)
                        .fold(f64::INFINITY, f64::min),
                    frequency: within.len() as f64,
                    monetary: within.iter().map(|x| x.amount).sum(),
                });
            }
        }
        // In the order of their content, not of profile ids (random) or of a hash map: the same
        // purchases always give the same fit, to the last bit.
        summaries.sort_by(|a, b| {
            (a.x, a.t_x, a.t, a.monetary)
                .partial_cmp(&(b.x, b.t_x, b.t, b.monetary))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let no = |e: consentric_lifecycle::LifecycleError| EngineError::Conflict(e.to_string());
        let fitted_at = crate::profiles::iso(now.timestamp_millis());
        let (bg, s) = timed(|| BgNbd::fit(&summaries));
        let bg = bg.map_err(no)?;
        let mut models = vec![model_fit(BG_NBD, &bg, calibration_end, &fitted_at, s)];
        let (pareto, s) = timed(|| {
            if summaries.len() < MIN_PARETO_CUSTOMERS {
                Err(consentric_lifecycle::LifecycleError::TooFewCustomers {
                    model: "Pareto/NBD",
                    needed: MIN_PARETO_CUSTOMERS,
                    got: summaries.len(),
                })
            } else {
                ParetoNbd::fit(&summaries)
            }
        });
        let pareto = match pareto {
            Ok(p) => {
                models.push(model_fit(PARETO_NBD, &p, calibration_end, &fitted_at, s));
                Some(p.model)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Pareto/NBD not fitted");
                None
            }
        };
        let (spend, s) = timed(|| GammaGamma::fit(&summaries));
        let spend = match spend {
            Ok(g) => {
                models.push(model_fit(GAMMA_GAMMA, &g, calibration_end, &fitted_at, s));
                Some(g.model)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Gamma-Gamma not fitted");
                None
            }
        };
        let rfm = RfmBoundaries::of(&rfm_inputs);
        let scorer = Scorer {
            bg: bg.model,
            pareto,
            spend,
            rfm: Some(rfm.clone()),
            clv: life.settings.clv,
            churn: life.settings.churn,
        };
        // What the fit is judged by, once, here: the console draws it from the stored row.
        let histories: Vec<Vec<Purchase>> = purchases.values().map(|d| dated(d)).collect();
        if let Some(row) = models.iter_mut().find(|m| m.model == BG_NBD) {
            row.tracking = super::fit_figures::tracking(&bg.model, &histories, calibration_end);
            row.distributions = Some(super::fit_figures::distributions(&scorer, &summaries));
        }
        let at = now.timestamp_millis();
        let rows: Vec<(String, String)> = models
            .iter()
            .map(|m| Ok((m.model.clone(), serde_json::to_string(m)?)))
            .chain(std::iter::once(
                serde_json::to_string(&rfm).map(|r| (RFM.to_owned(), r)),
            ))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|e| {
                EngineError::Store(consentric_store::StoreError::Corrupt(format!(
                    "model serialisation: {e}"
                )))
            })?;
        self.store.write(|tx| {
            // A model that did not fit this time must not linger beside the new ones.
            for name in [BG_NBD, PARETO_NBD, GAMMA_GAMMA, RFM] {
                if !rows.iter().any(|(n, _)| n == name) {
                    tx.delete_model(name)?;
                }
            }
            for (name, params) in &rows {
                tx.put_model(name, params, at)?;
            }
            tx.announce(&consentric_store::Change::Scorer)?;
            audit::append(
                tx,
                at,
                actor,
                "lifecycle.fitted",
                None,
                &json!({"purpose": life.settings.analytics_purpose, "customers": summaries.len(),
                        "left_out": left_out, "calibration_end": calibration_end,
                        "models": models.iter().map(|m| &m.model).collect::<Vec<_>>()}),
            )
        })?;
        life.set_scorer(Some(Arc::new(scorer)));
        Ok(FitReport {
            calibration_end,
            customers: summaries.len(),
            left_out,
            models,
        })
    }
}

/// The stored models as served.
pub(crate) fn stored_fits(rows: &[ModelRow]) -> Vec<ModelFit> {
    rows.iter()
        .filter(|r| r.name != RFM)
        .filter_map(|r| serde_json::from_str(&r.params).ok())
        .collect()
}

/// A scorer from stored models, if BG/NBD has been fitted.
pub(crate) fn scorer_from(rows: &[ModelRow], life: &Lifecycle) -> Option<Scorer> {
    let fits = stored_fits(rows);
    let find = |name: &str| fits.iter().find(|f| f.model == name);
    let params = |f: &ModelFit, names: &[&str]| -> Option<Vec<f64>> {
        names.iter().map(|n| f.params.get(*n).copied()).collect()
    };
    let bg = BgNbd::from_params(&params(
        find(BG_NBD)?,
        consentric_lifecycle::bgnbd::BGNBD_PARAMS,
    )?);
    let pareto = find(PARETO_NBD)
        .and_then(|f| params(f, consentric_lifecycle::pareto::PARETO_PARAMS))
        .map(|p| ParetoNbd::from_params(&p));
    let spend = find(GAMMA_GAMMA)
        .and_then(|f| params(f, consentric_lifecycle::gamma_gamma::GAMMA_GAMMA_PARAMS))
        .map(|p| GammaGamma::from_params(&p));
    let rfm = rows
        .iter()
        .find(|r| r.name == RFM)
        .and_then(|r| serde_json::from_str(&r.params).ok());
    Some(Scorer {
        bg,
        pareto,
        spend,
        rfm,
        clv: life.settings.clv,
        churn: life.settings.churn,
    })
}
