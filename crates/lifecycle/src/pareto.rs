//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987; likelihood as in Fader & Hardie's 2005
//! note): Poisson purchases with gamma rates (r, α) and an exponential lifetime with
//! gamma-distributed dropout rates (s, β). Its likelihood carries a Gauss hypergeometric term,
//! evaluated here in log space with Euler's transformation (see [`crate::special`]).

use serde::{Deserialize, Serialize};

use crate::error::LifecycleError;
use crate::optimise::{maximise, Fitted};
use crate::sample::Sample;
use crate::special::{ln_gamma, ln_hyp2f1, log_add_exp, log_sub_exp};
use crate::summary::CustomerSummary;
use crate::PurchaseModel;

/// Pareto/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbd {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Scale of the purchase-rate gamma.
    pub alpha: f64,
    /// Shape of the dropout-rate gamma.
    pub s: f64,
    /// Scale of the dropout-rate gamma.
    pub beta: f64,
}

/// Names of [`ParetoNbd`]'s parameters in fitting order.
pub const PARETO_PARAMS: &[&str] = &["r", "alpha", "s", "beta"];

impl ParetoNbd {
    /// Parameters in [`PARETO_PARAMS`] order.
    pub fn from_params(p: &[f64]) -> ParetoNbd {
        ParetoNbd {
            r: p[0],
            alpha: p[1],
            s: p[2],
            beta: p[3],
        }
    }

    /// The log-likelihood of the customers under these parameters.
    pub fn ln_likelihood(&self, customers: &[CustomerSummary]) -> f64 {
        let p = [self.r, self.alpha, self.s, self.beta];
        ln_likelihood(&Sample::new(customers), &p)
    }

    /// Fits by maximum likelihood.
    ///
    /// # Errors
    /// Fewer than four customers, or no optimum found.
    pub fn fit(customers: &[CustomerSummary]) -> Result<Fitted<ParetoNbd>, LifecycleError> {
        if customers.len() < 4 {
            return Err(LifecycleError::TooFewCustomers {
                model: "Pareto/NBD",
                needed: 4,
                got: customers.len(),
            });
        }
        let sample = Sample::new(customers);
        let ll = |p: &[f64]| ln_likelihood(&sample, p);
        maximise(
            "Pareto/NBD",
            PARETO_PARAMS,
            &ll,
            None,
            &[1.0, 1.0, 1.0, 1.0],
            customers.len(),
            ParetoNbd::from_params,
        )
    }

    /// `ln A₀`, the integral over the unobserved dropout time between `t_x` and `T`.
    fn ln_a0(&self, x: f64, t_x: f64, t: f64) -> Option<f64> {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let rho = r + s + x;
        let (big, b2) = if alpha >= beta {
            (alpha, s + 1.0)
        } else {
            (beta, r + x)
        };
        let diff = (alpha - beta).abs();
        let ln_f = |u: f64| -> Option<f64> {
            Some(ln_hyp2f1(rho, b2, rho + 1.0, diff / (big + u))? - rho * (big + u).ln())
        };
        Some(log_sub_exp(ln_f(t_x)?, ln_f(t)?))
    }

    /// `ln` of the odds that the customer has dropped out, given their history.
    fn ln_dead_odds(&self, c: &CustomerSummary) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let Some(ln_a0) = self.ln_a0(c.x, c.t_x, c.t) else {
            return f64::NAN;
        };
        (s / (r + s + c.x)).ln() + (r + c.x) * (alpha + c.t).ln() + s * (beta + c.t).ln() + ln_a0
    }
}

/// Σ weight · ln L(r, α, s, β | x, t_x, T).
fn ln_likelihood(sample: &Sample, p: &[f64]) -> f64 {
    let m = ParetoNbd::from_params(p);
    let ParetoNbd { r, alpha, s, beta } = m;
    let base = -ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    let by_x: Vec<f64> = sample.xs.iter().map(|&x| ln_gamma(r + x)).collect();
    let mut total = 0.0;
    for row in &sample.rows {
        let x = row.x;
        let t = sample.ts[row.ti];
        let alive = -(r + x) * (alpha + t).ln() - s * (beta + t).ln();
        let Some(ln_a0) = m.ln_a0(x, sample.txs[row.txi], sample.ts[row.ti]) else {
            return f64::NAN;
        };
        let ln_b = log_add_exp(alive, (s / (r + s + x)).ln() + ln_a0);
        total += row.weight * (base + by_x[row.xi] + ln_b);
    }
    total
}

impl PurchaseModel for ParetoNbd {
    fn p_alive(&self, c: &CustomerSummary) -> f64 {
        1.0 / (1.0 + self.ln_dead_odds(c).exp())
    }

    fn expected_purchases(&self, t: f64, c: &CustomerSummary) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        if t <= 0.0 {
            return 0.0;
        }
        let rate = (r + c.x) / (alpha + c.t);
        // E[purchases in (T, T+t] | alive] = rate · (β+T)/(s-1) · (1 - ((β+T)/(β+T+t))^(s-1)),
        // whose limit at s = 1 is rate · (β+T) · ln((β+T+t)/(β+T)).
        let ln_ratio = (beta + c.t).ln() - (beta + c.t + t).ln();
        let alive_span = if (s - 1.0).abs() < 1e-9 {
            (beta + c.t) * -ln_ratio
        } else {
            (beta + c.t) * -((s - 1.0) * ln_ratio).exp_m1() / (s - 1.0)
        };
        rate * alive_span * self.p_alive(c)
    }
}
