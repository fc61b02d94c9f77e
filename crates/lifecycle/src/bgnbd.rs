//! BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): purchases follow
//! a Poisson process with gamma-distributed rates (r, α) while a customer is alive, and after
//! each purchase the customer drops out with a beta-distributed probability (a, b).

use serde::{Deserialize, Serialize};

use crate::error::LifecycleError;
use crate::optimise::{maximise, Fitted};
use crate::sample::Sample;
use crate::special::{digamma, ln_gamma, ln_hyp2f1};
use crate::summary::CustomerSummary;
use crate::PurchaseModel;

/// BG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Scale of the purchase-rate gamma.
    pub alpha: f64,
    /// Dropout beta, first shape.
    pub a: f64,
    /// Dropout beta, second shape.
    pub b: f64,
}

/// Names of [`BgNbd`]'s parameters in fitting order.
pub const BGNBD_PARAMS: &[&str] = &["r", "alpha", "a", "b"];

impl BgNbd {
    /// Parameters in [`BGNBD_PARAMS`] order.
    pub fn from_params(p: &[f64]) -> BgNbd {
        BgNbd {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        }
    }

    /// The log-likelihood of the customers under these parameters.
    pub fn ln_likelihood(&self, customers: &[CustomerSummary]) -> f64 {
        ln_likelihood(
            &Sample::new(customers),
            &[self.r, self.alpha, self.a, self.b],
        )
    }

    /// Fits by maximum likelihood.
    ///
    /// # Errors
    /// Fewer than four customers, or no optimum found.
    pub fn fit(customers: &[CustomerSummary]) -> Result<Fitted<BgNbd>, LifecycleError> {
        if customers.len() < 4 {
            return Err(LifecycleError::TooFewCustomers {
                model: "BG/NBD",
                needed: 4,
                got: customers.len(),
            });
        }
        let sample = Sample::new(customers);
        let ll = |p: &[f64]| ln_likelihood(&sample, p);
        let grad = |p: &[f64]| {
            let (v, g) = value_and_gradient(&sample, p, true);
            (v, g.to_vec())
        };
        maximise(
            "BG/NBD",
            BGNBD_PARAMS,
            &ll,
            Some(&grad),
            &[1.0, 1.0, 1.0, 1.0],
            customers.len(),
            BgNbd::from_params,
        )
    }
}

/// Σ weight · ln L(r, α, a, b | x, t_x, T), per Fader, Hardie & Lee (2005), eq. 6.
fn ln_likelihood(sample: &Sample, p: &[f64]) -> f64 {
    value_and_gradient(sample, p, false).0
}

/// [`ln_likelihood`] and, when asked, its gradient ∂/∂(r, α, a, b), in one pass. Terms that
/// depend on `x`, `t_x` or `T` alone are computed once per distinct value; per customer there
/// remain one exponential and one logarithm (the two ways a history can end, mixed).
fn value_and_gradient(sample: &Sample, p: &[f64], with_gradient: bool) -> (f64, [f64; 4]) {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let base = -ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) - ln_gamma(b);
    // Per distinct x: the log-gammas, ln a - ln(b+x-1), and for the gradient ψ(r+x),
    // ψ(b+x) - ψ(a+b+x), -ψ(a+b+x), 1/(b+x-1).
    let by_x: Vec<[f64; 6]> = sample
        .xs
        .iter()
        .map(|&x| {
            let gammas = ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x);
            let (dropout, inv) = if x > 0.0 {
                (a.ln() - (b + x - 1.0).ln(), 1.0 / (b + x - 1.0))
            } else {
                (0.0, 0.0)
            };
            if !with_gradient {
                return [gammas, dropout, 0.0, 0.0, 0.0, inv];
            }
            let psi_abx = digamma(a + b + x);
            [
                gammas,
                dropout,
                digamma(r + x),
                digamma(b + x) - psi_abx,
                -psi_abx,
                inv,
            ]
        })
        .collect();
    let ln_t = sample.per_t(|t| (alpha + t).ln());
    let ln_tx = sample.per_tx(|t| (alpha + t).ln());
    let (inv_t, inv_tx) = if with_gradient {
        (
            sample.per_t(|t| 1.0 / (alpha + t)),
            sample.per_tx(|t| 1.0 / (alpha + t)),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let d_base = if with_gradient {
        let psi_ab = digamma(a + b);
        [
            -digamma(r) + alpha.ln(),
            r / alpha,
            psi_ab,
            psi_ab - digamma(b),
        ]
    } else {
        [0.0; 4]
    };
    let mut total = 0.0;
    let mut g = [0.0; 4];
    for row in &sample.rows {
        let x = row.x;
        let [gammas, dropout, psi_rx, db, da, inv_b] = by_x[row.xi];
        let a3 = -(r + x) * ln_t[row.ti];
        // The customer is alive at T (A3), or dropped out after the last purchase (A4):
        // ln(e^A3 + e^A4), and each term's share of it.
        let (tail, w3, w4) = if x > 0.0 {
            let a4 = dropout - (r + x) * ln_tx[row.txi];
            let u = a4 - a3;
            let e = (-u.abs()).exp();
            let big = 1.0 / (1.0 + e);
            if u > 0.0 {
                (a4 + e.ln_1p(), e * big, big)
            } else {
                (a3 + e.ln_1p(), big, e * big)
            }
        } else {
            (a3, 1.0, 0.0)
        };
        let w = row.weight;
        total += w * (base + gammas + tail);
        if with_gradient {
            let d_r = -w3 * ln_t[row.ti] - if x > 0.0 { w4 * ln_tx[row.txi] } else { 0.0 };
            let d_alpha =
                -(r + x) * (w3 * inv_t[row.ti] + if x > 0.0 { w4 * inv_tx[row.txi] } else { 0.0 });
            g[0] += w * (d_base[0] + psi_rx + d_r);
            g[1] += w * (d_base[1] + d_alpha);
            g[2] += w * (d_base[2] + da + w4 / a);
            g[3] += w * (d_base[3] + db - w4 * inv_b);
        }
    }
    (total, g)
}

impl PurchaseModel for BgNbd {
    fn p_alive(&self, c: &CustomerSummary) -> f64 {
        if c.x == 0.0 {
            return 1.0;
        }
        let ln_odds = self.a.ln() - (self.b + c.x - 1.0).ln()
            + (self.r + c.x) * ((self.alpha + c.t).ln() - (self.alpha + c.t_x).ln());
        1.0 / (1.0 + ln_odds.exp())
    }

    fn expected_purchases(&self, t: f64, c: &CustomerSummary) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = c.x;
        if t <= 0.0 {
            return 0.0;
        }
        let z = t / (alpha + c.t + t);
        let Some(ln_h) = ln_hyp2f1(r + x, b + x, a + b + x - 1.0, z) else {
            return f64::NAN;
        };
        let ln_ratio = (r + x) * ((alpha + c.t).ln() - (alpha + c.t + t).ln());
        // (1 - e^u)/(a - 1): both factors change sign together when a < 1.
        let numerator = (a + b + x - 1.0) * -(ln_h + ln_ratio).exp_m1() / (a - 1.0);
        let odds = if x > 0.0 {
            (a / (b + x - 1.0)) * ((r + x) * ((alpha + c.t).ln() - (alpha + c.t_x).ln())).exp()
        } else {
            0.0
        };
        numerator / (1.0 + odds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gradient_is_the_likelihood_s_slope() {
        let customers: Vec<CustomerSummary> = (0..60)
            .map(|i| {
                let x = f64::from(i % 7);
                CustomerSummary {
                    x,
                    t_x: if x > 0.0 {
                        f64::from(i % 30) + 1.0
                    } else {
                        0.0
                    },
                    t: 38.0 + f64::from(i % 5),
                    monetary: 0.0,
                }
            })
            .collect();
        let sample = Sample::new(&customers);
        let p = [0.3, 4.0, 0.8, 2.5];
        let (value, g) = value_and_gradient(&sample, &p, true);
        assert_eq!(value, ln_likelihood(&sample, &p));
        for i in 0..4 {
            let h = 1e-6 * p[i];
            let (mut up, mut down) = (p, p);
            up[i] += h;
            down[i] -= h;
            let numeric = (ln_likelihood(&sample, &up) - ln_likelihood(&sample, &down)) / (2.0 * h);
            let tol = 1e-5 * numeric.abs().max(1.0);
            assert!((g[i] - numeric).abs() < tol, "{i}: {} vs {numeric}", g[i]);
        }
    }
}
