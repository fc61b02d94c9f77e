//! Maximum-likelihood fitting shared by the BTYD models: argmin's L-BFGS over the logarithms
//! of the (positive) parameters, then standard errors from the observed information matrix.

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use serde::Serialize;

use crate::error::LifecycleError;

/// A model fitted to data, with what a reader needs to trust it.
#[derive(Debug, Clone, Serialize)]
pub struct Fitted<M> {
    /// The model at its maximum-likelihood parameters.
    pub model: M,
    /// Parameter names, in the order of `params` and `std_errors`.
    pub names: &'static [&'static str],
    /// The parameter values.
    pub params: Vec<f64>,
    /// Asymptotic standard errors from the inverse Hessian of the negative log-likelihood;
    /// `NaN` where the Hessian could not be inverted.
    pub std_errors: Vec<f64>,
    /// The maximised log-likelihood, summed over customers.
    pub ln_likelihood: f64,
    /// Customers the model was fitted on.
    pub customers: usize,
    /// Optimiser iterations taken.
    pub iterations: u64,
}

/// A total log-likelihood as a function of positive parameters.
pub(crate) type LnLikelihood<'a> = dyn Fn(&[f64]) -> f64 + 'a;
/// The log-likelihood and its gradient in the natural parameters, computed together, where a
/// model has the gradient in closed form.
pub(crate) type LnLikelihoodGradient<'a> = dyn Fn(&[f64]) -> (f64, Vec<f64>) + 'a;

/// A point (log-parameters) with the log-likelihood and its gradient there.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The mean negative log-likelihood over log-parameters: unconstrained and of order one, which
/// keeps the optimiser's tolerances meaningful for any number of customers.
struct Problem<'a> {
    ll: &'a LnLikelihood<'a>,
    grad: Option<&'a LnLikelihoodGradient<'a>>,
    /// The last point evaluated with `grad` (log-parameters) and its value and gradient:
    /// the line search asks for the cost and then the gradient at the same point.
    memo: std::cell::RefCell<Option<Evaluated>>,
    /// Customers times a scale that makes the starting gradient's norm at most one, so the
    /// first step (which L-BFGS takes along the raw gradient) cannot leap out of the bounds.
    n: f64,
}

impl Problem<'_> {
    /// Value and gradient of `ll` at `log_params` (natural parameters' gradient), once.
    fn fused(&self, grad: &LnLikelihoodGradient<'_>, log_params: &[f64]) -> (f64, Vec<f64>) {
        if let Some((p, v, g)) = &*self.memo.borrow() {
            if p.as_slice() == log_params {
                return (*v, g.clone());
            }
        }
        let theta: Vec<f64> = log_params.iter().map(|v| v.exp()).collect();
        let (v, g) = grad(&theta);
        *self.memo.borrow_mut() = Some((log_params.to_vec(), v, g.clone()));
        (v, g)
    }

    fn value(&self, log_params: &[f64]) -> f64 {
        // Parameters beyond e^±20 mean the data do not identify the model; stop there rather
        // than chase an optimum at infinity.
        if log_params.iter().any(|v| v.abs() > BOUND) {
            return f64::MAX / 4.0;
        }
        let v = match self.grad {
            Some(grad) => -self.fused(grad, log_params).0 / self.n,
            None => {
                let params: Vec<f64> = log_params.iter().map(|v| v.exp()).collect();
                -(self.ll)(&params) / self.n
            }
        };
        if v.is_finite() {
            v
        } else {
            f64::MAX / 4.0
        }
    }
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self.value(p))
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    /// The closed form where the model has one (chain rule: `d/d ln θ = θ · d/dθ`), else
    /// central differences, for models whose analytic gradient (Pareto/NBD's hypergeometric
    /// term) is unwieldy.
    fn gradient(&self, p: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        // Outside the bounds the cost is flat (see `value`): so is its slope.
        if p.iter().any(|v| v.abs() > BOUND) {
            return Ok(vec![0.0; p.len()]);
        }
        if let Some(grad) = self.grad {
            let (_, g) = self.fused(grad, p);
            return Ok(g
                .iter()
                .zip(p)
                .map(|(d, u)| -d * u.exp() / self.n)
                .collect());
        }
        let h = 1e-6;
        let mut x = p.clone();
        let mut g = vec![0.0; p.len()];
        for i in 0..p.len() {
            x[i] = p[i] + h;
            let up = self.value(&x);
            x[i] = p[i] - h;
            let down = self.value(&x);
            x[i] = p[i];
            g[i] = (up - down) / (2.0 * h);
        }
        Ok(g)
    }
}

/// Gradient norm (mean objective, log-parameters) at which a fit has converged.
const TOLERANCE: f64 = 1e-7;
/// Largest |ln θ| the optimiser may visit.
const BOUND: f64 = 20.0;
/// Optimiser runs at most (see the restart in [`maximise`]).
const MAX_RESTARTS: usize = 3;
/// Iterations per run at most.
const MAX_ITERS: u64 = 300;

/// Maximises `ll` from `start` (positive parameters) over `n` customers.
pub(crate) fn maximise<M>(
    model: &'static str,
    names: &'static [&'static str],
    ll: &LnLikelihood<'_>,
    grad: Option<&LnLikelihoodGradient<'_>>,
    start: &[f64],
    n: usize,
    build: impl Fn(&[f64]) -> M,
) -> Result<Fitted<M>, LifecycleError> {
    let no = |reason: String| LifecycleError::NoConvergence { model, reason };
    let mut best: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let mut iterations = 0;
    // L-BFGS's memory can point uphill where the log-parameterised likelihood is not concave;
    // its line search then stops. Restarting from the best point so far with fresh memory
    // continues the climb (a few restarts at most; most fits need none).
    for _ in 0..MAX_RESTARTS {
        let problem = Problem {
            ll,
            grad,
            memo: Default::default(),
            n: n as f64,
        };
        let g0 = problem.gradient(&best).map_err(|e| no(e.to_string()))?;
        let scale = g0.iter().map(|g| g * g).sum::<f64>().sqrt().max(1.0);
        let problem = Problem {
            n: problem.n * scale,
            ..problem
        };
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7)
            // The gradient of the mean objective over log-parameters: the same criterion and
            // tolerance as `lifetimes` (scipy's BFGS with `tol=1e-7`), undoing the scale;
            // parameters then agree with it to three decimals and more.
            .with_tolerance_grad(TOLERANCE / scale)
            .and_then(|s| s.with_tolerance_cost(1e-14))
            .map_err(|e| no(e.to_string()))?;
        let result = Executor::new(problem, solver)
            .configure(|state| state.param(best.clone()).max_iters(MAX_ITERS))
            .timer(false)
            .run()
            .map_err(|e| no(e.to_string()))?;
        let state = result.state();
        iterations += state.get_iter();
        let found = state
            .get_best_param()
            .ok_or_else(|| no("no parameters".into()))?
            .clone();
        let stalled = matches!(
            state.get_termination_status(),
            TerminationStatus::Terminated(TerminationReason::SolverExit(_))
        );
        let moved = found.iter().zip(&best).any(|(a, b)| (a - b).abs() > 1e-10);
        best = found;
        if !stalled || !moved {
            break;
        }
    }
    let params: Vec<f64> = best.iter().map(|v| v.exp()).collect();
    let value = ll(&params);
    if !value.is_finite() || params.iter().any(|p| !p.is_finite()) {
        return Err(no(format!("non-finite optimum {params:?}")));
    }
    // Where the optimiser stopped must be an optimum: a flat gradient, away from the bounds.
    // Otherwise the data do not identify the model (too few customers, too little variety).
    let unscaled = Problem {
        ll,
        grad,
        memo: Default::default(),
        n: n as f64,
    };
    let g = unscaled.gradient(&best).map_err(|e| no(e.to_string()))?;
    let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 1000.0 * TOLERANCE || best.iter().any(|v| v.abs() > BOUND - 1.0) {
        return Err(no(format!(
            "the data do not identify it: stopped at {params:?} with gradient norm {norm:.1e}"
        )));
    }
    let std_errors = std_errors(ll, grad, &params);
    if std_errors.iter().all(|e| e.is_nan()) {
        return Err(no(format!(
            "the data do not identify it: the likelihood is flat at {params:?}"
        )));
    }
    Ok(Fitted {
        model: build(&params),
        names,
        std_errors,
        params,
        ln_likelihood: value,
        customers: n,
        iterations,
    })
}

/// Square roots of the diagonal of the inverse observed information: the Hessian of `-ll` at
/// the optimum, by central differences in the natural parameters — of the gradient where the
/// model has one (2k evaluations), else of `ll` itself.
fn std_errors(
    ll: &LnLikelihood<'_>,
    grad: Option<&LnLikelihoodGradient<'_>>,
    p: &[f64],
) -> Vec<f64> {
    let k = p.len();
    let h: Vec<f64> = p.iter().map(|v| 1e-4 * v.abs().max(1e-3)).collect();
    if let Some(grad) = grad {
        let mut hess = vec![vec![0.0; k]; k];
        for (i, row) in hess.iter_mut().enumerate() {
            let (mut up, mut down) = (p.to_vec(), p.to_vec());
            up[i] += h[i];
            down[i] -= h[i];
            let (gu, gd) = (grad(&up).1, grad(&down).1);
            for (cell, (u, d)) in row.iter_mut().zip(gu.iter().zip(&gd)) {
                *cell = -(u - d) / (2.0 * h[i]);
            }
        }
        let symmetric: Vec<Vec<f64>> = (0..k)
            .map(|i| (0..k).map(|j| (hess[i][j] + hess[j][i]) / 2.0).collect())
            .collect();
        return diagonal_of_inverse(symmetric);
    }
    let f = |d: &[(usize, f64)]| {
        let mut x = p.to_vec();
        for (i, s) in d {
            x[*i] += s;
        }
        -ll(&x)
    };
    let mut hess = vec![vec![0.0; k]; k];
    for i in 0..k {
        for j in i..k {
            let v = if i == j {
                (f(&[(i, h[i])]) - 2.0 * f(&[]) + f(&[(i, -h[i])])) / (h[i] * h[i])
            } else {
                (f(&[(i, h[i]), (j, h[j])])
                    - f(&[(i, h[i]), (j, -h[j])])
                    - f(&[(i, -h[i]), (j, h[j])])
                    + f(&[(i, -h[i]), (j, -h[j])]))
                    / (4.0 * h[i] * h[j])
            };
            hess[i][j] = v;
            hess[j][i] = v;
        }
    }
    diagonal_of_inverse(hess)
}

/// `sqrt(diag(H⁻¹))`, `NaN` where not positive or `H` is singular.
fn diagonal_of_inverse(hess: Vec<Vec<f64>>) -> Vec<f64> {
    let k = hess.len();
    match invert(hess) {
        Some(inv) => (0..k)
            .map(|i| {
                if inv[i][i] > 0.0 {
                    inv[i][i].sqrt()
                } else {
                    f64::NAN
                }
            })
            .collect(),
        None => vec![f64::NAN; k],
    }
}

/// Gauss–Jordan inversion with partial pivoting, for the few-by-few matrices here.
fn invert(mut m: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|a, b| m[*a][col].abs().total_cmp(&m[*b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let d = m[col][col];
        for j in 0..n {
            m[col][j] /= d;
            inv[col][j] /= d;
        }
        for row in 0..n {
            if row != col {
                let f = m[row][col];
                if f != 0.0 {
                    for j in 0..n {
                        m[row][j] -= f * m[col][j];
                        inv[row][j] -= f * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_known_maximum_and_its_curvature() {
        // ll = -(p0-2)^2/(2·0.5^2) - (p1-3)^2/(2·0.1^2): maximum at (2, 3), errors 0.5 and 0.1.
        let ll = |p: &[f64]| -(p[0] - 2.0).powi(2) / 0.5 - (p[1] - 3.0).powi(2) / 0.02;
        let grad = |p: &[f64]| {
            (
                ll(p),
                vec![-2.0 * (p[0] - 2.0) / 0.5, -2.0 * (p[1] - 3.0) / 0.02],
            )
        };
        let with = Some(&grad as &LnLikelihoodGradient<'_>);
        let fit = maximise("test", &["a", "b"], &ll, with, &[1.0, 1.0], 1, |p| {
            p.to_vec()
        })
        .expect("converges");
        assert!((fit.params[0] - 2.0).abs() < 1e-5, "{:?}", fit.params);
        assert!(
            (fit.std_errors[1] - 0.1).abs() < 1e-3,
            "{:?}",
            fit.std_errors
        );
        let fit = maximise("test", &["a", "b"], &ll, None, &[1.0, 1.0], 1, |p| {
            p.to_vec()
        })
        .expect("converges");
        assert!((fit.params[0] - 2.0).abs() < 1e-5, "{:?}", fit.params);
        assert!((fit.params[1] - 3.0).abs() < 1e-5, "{:?}", fit.params);
        assert!(
            (fit.std_errors[0] - 0.5).abs() < 1e-3,
            "{:?}",
            fit.std_errors
        );
        assert!(
            (fit.std_errors[1] - 0.1).abs() < 1e-3,
            "{:?}",
            fit.std_errors
        );
    }

    #[test]
    fn inverts_and_refuses_singular() {
        let inv = invert(vec![vec![4.0, 7.0], vec![2.0, 6.0]]).expect("regular");
        assert!((inv[0][0] - 0.6).abs() < 1e-12 && (inv[1][0] + 0.2).abs() < 1e-12);
        assert!(invert(vec![vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
    }
}
