//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"): each repeat purchase's
//! value is gamma(p, ν) around the customer's mean, and ν is gamma(q, γ) across customers.
//! Fitted on repeat buyers only, with `x` repeat purchases of mean value `m`.

use serde::{Deserialize, Serialize};

use crate::error::LifecycleError;
use crate::optimise::{maximise, Fitted};
use crate::special::{digamma, ln_gamma};
use crate::summary::CustomerSummary;

/// Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    /// Shape of a purchase's value around the customer's mean.
    pub p: f64,
    /// Shape of the across-customer gamma.
    pub q: f64,
    /// Scale of the across-customer gamma.
    pub gamma: f64,
}

/// Names of [`GammaGamma`]'s parameters in fitting order.
pub const GAMMA_GAMMA_PARAMS: &[&str] = &["p", "q", "gamma"];

/// The customers a spend model can learn from — repeat buyers with a positive mean spend —
/// with what depends on them alone computed once: `ln m`, and the distinct values of `x`.
struct Buyers {
    xs: Vec<f64>,
    /// (index into `xs`, x, m, ln m)
    rows: Vec<(usize, f64, f64, f64)>,
}

fn repeat_buyers(customers: &[CustomerSummary]) -> Buyers {
    let mut xs: Vec<f64> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let rows = customers
        .iter()
        .filter(|c| c.x > 0.0 && c.monetary > 0.0)
        .map(|c| {
            let xi = *index.entry(c.x.to_bits()).or_insert_with(|| {
                xs.push(c.x);
                xs.len() - 1
            });
            (xi, c.x, c.monetary, c.monetary.ln())
        })
        .collect();
    Buyers { xs, rows }
}

impl GammaGamma {
    /// Parameters in [`GAMMA_GAMMA_PARAMS`] order.
    pub fn from_params(p: &[f64]) -> GammaGamma {
        GammaGamma {
            p: p[0],
            q: p[1],
            gamma: p[2],
        }
    }

    /// The log-likelihood of the repeat buyers among `customers`.
    pub fn ln_likelihood(&self, customers: &[CustomerSummary]) -> f64 {
        ln_likelihood(&repeat_buyers(customers), &[self.p, self.q, self.gamma])
    }

    /// Fits on the repeat buyers among `customers`.
    ///
    /// # Errors
    /// Fewer than three repeat buyers, or no optimum found.
    pub fn fit(customers: &[CustomerSummary]) -> Result<Fitted<GammaGamma>, LifecycleError> {
        let buyers = repeat_buyers(customers);
        if buyers.rows.len() < 3 {
            return Err(LifecycleError::TooFewCustomers {
                model: "Gamma-Gamma",
                needed: 3,
                got: buyers.rows.len(),
            });
        }
        let ll = |p: &[f64]| ln_likelihood(&buyers, p);
        let grad = |p: &[f64]| value_and_gradient(&buyers, p);
        maximise(
            "Gamma-Gamma",
            GAMMA_GAMMA_PARAMS,
            &ll,
            Some(&grad),
            &[1.0, 1.0, 1.0],
            buyers.rows.len(),
            GammaGamma::from_params,
        )
    }

    /// Expected value of a future purchase by this customer: a weighted mean of the population
    /// mean `pγ/(q-1)` and the customer's own observed mean.
    /// `NaN` where it does not exist (`p·x + q <= 1`: no finite mean).
    pub fn expected_spend(&self, c: &CustomerSummary) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let denominator = p * c.x + q - 1.0;
        if denominator <= 0.0 {
            return f64::NAN;
        }
        // = w · pγ/(q-1) + (1-w) · m with w = (q-1)/(px+q-1), written without dividing by q-1.
        (p * gamma + p * c.x * c.monetary) / denominator
    }
}

/// [`ln_likelihood`] and its gradient ∂/∂(p, q, γ), in one pass: per buyer one logarithm.
fn value_and_gradient(buyers: &Buyers, params: &[f64]) -> (f64, Vec<f64>) {
    let (p, q, v) = (params[0], params[1], params[2]);
    let fixed = -ln_gamma(q) + q * v.ln();
    let fixed_q = -digamma(q) + v.ln();
    // Per distinct x: the log-gammas with p·x·ln x; ψ(px+q); ψ(px+q) - ψ(px) + ln x.
    let by_x: Vec<[f64; 3]> = buyers
        .xs
        .iter()
        .map(|&x| {
            let psi = digamma(p * x + q);
            [
                ln_gamma(p * x + q) - ln_gamma(p * x) + p * x * x.ln(),
                psi,
                psi - digamma(p * x) + x.ln(),
            ]
        })
        .collect();
    let mut total = 0.0;
    let mut g = [0.0; 3];
    for &(xi, x, m, ln_m) in &buyers.rows {
        let [gammas, psi_pxq, dp] = by_x[xi];
        let px = p * x;
        let vmx = v + m * x;
        let ln_vmx = vmx.ln();
        total += fixed + gammas + (px - 1.0) * ln_m - (px + q) * ln_vmx;
        g[0] += x * (dp + ln_m - ln_vmx);
        g[1] += fixed_q + psi_pxq - ln_vmx;
        g[2] += q / v - (px + q) / vmx;
    }
    (total, g.to_vec())
}

fn ln_likelihood(buyers: &Buyers, params: &[f64]) -> f64 {
    let (p, q, v) = (params[0], params[1], params[2]);
    let fixed = -ln_gamma(q) + q * v.ln();
    let by_x: Vec<f64> = buyers
        .xs
        .iter()
        .map(|&x| ln_gamma(p * x + q) - ln_gamma(p * x) + p * x * x.ln())
        .collect();
    buyers
        .rows
        .iter()
        .map(|&(xi, x, m, ln_m)| {
            let px = p * x;
            fixed + by_x[xi] + (px - 1.0) * ln_m - (px + q) * (v + m * x).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gradient_is_the_likelihood_s_slope() {
        let customers: Vec<CustomerSummary> = (1..40)
            .map(|i| CustomerSummary {
                x: f64::from(i % 6 + 1),
                t_x: 10.0,
                t: 30.0,
                monetary: 8.0 + f64::from(i) * 1.7,
            })
            .collect();
        let buyers = repeat_buyers(&customers);
        let p = [4.0, 3.5, 14.0];
        let (value, g) = value_and_gradient(&buyers, &p);
        assert!((value - ln_likelihood(&buyers, &p)).abs() < 1e-9 * value.abs());
        for i in 0..3 {
            let h = 1e-6 * p[i];
            let (mut up, mut down) = (p, p);
            up[i] += h;
            down[i] -= h;
            let numeric = (ln_likelihood(&buyers, &up) - ln_likelihood(&buyers, &down)) / (2.0 * h);
            let tol = 1e-5 * numeric.abs().max(1.0);
            assert!((g[i] - numeric).abs() < tol, "{i}: {} vs {numeric}", g[i]);
        }
    }
}
