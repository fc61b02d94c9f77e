//! Special functions the BTYD likelihoods need, computed in log space so that customers with
//! many purchases or long histories neither overflow nor lose every digit.

/// `ln Γ(x)` for `x > 0`.
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// The digamma function `ψ(x) = d/dx ln Γ(x)` for `x > 0`: the recurrence
/// `ψ(x) = ψ(x+1) - 1/x` up to `x >= 10`, then the asymptotic series (error below 1e-13).
pub fn digamma(x: f64) -> f64 {
    let (mut x, mut acc) = (x, 0.0);
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let series = f
        * (1.0 / 12.0
            - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f * (1.0 / 132.0)))));
    acc + x.ln() - 0.5 / x - series
}

/// `ln(e^a + e^b)` without overflow.
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// `ln(e^a - e^b)` for `a >= b`; `-inf` when they are equal.
pub fn log_sub_exp(a: f64, b: f64) -> f64 {
    if b == f64::NEG_INFINITY {
        return a;
    }
    let d = b - a;
    if d >= 0.0 {
        return f64::NEG_INFINITY;
    }
    // ln(1 - e^d), accurate both near 0 and far below it.
    let l = if d > -std::f64::consts::LN_2 {
        (-d.exp_m1()).ln()
    } else {
        (-d.exp()).ln_1p()
    };
    a + l
}

/// Terms summed at most; the series is only used where it converges well before this.
const MAX_TERMS: usize = 100_000;

/// `ln ₂F₁(a, b; c; z)` for `a, b, c > 0` and `0 <= z < 1`, where every term is positive.
///
/// When `c - a - b < 0` the plain series decays like `k^(a+b-c-1) z^k`, slowly as `z → 1`;
/// Euler's transformation `₂F₁(a,b;c;z) = (1-z)^(c-a-b) ₂F₁(c-a, c-b; c; z)` turns that into
/// `k^(c-a-b-1) z^k`, and is used whenever it decays faster and keeps the terms positive.
/// Returns `None` if the arguments are outside that domain or the series did not converge.
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(a > 0.0 && b > 0.0 && c > 0.0 && (0.0..1.0).contains(&z)) {
        return None;
    }
    let (ea, eb) = (c - a, c - b);
    if c - a - b < 0.0 && ea > 0.0 && eb > 0.0 {
        let series = ln_series(ea, eb, c, z)?;
        return Some((c - a - b) * (-z).ln_1p() + series);
    }
    ln_series(a, b, c, z)
}

/// `ln Σ (a)_k (b)_k / ((c)_k k!) z^k` for positive arguments, summed with the running term
/// rescaled so that large `a`, `b` cannot overflow.
fn ln_series(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if z == 0.0 {
        return Some(0.0);
    }
    let mut scale = 0.0_f64; // log of the factor that `sum` and `term` are divided by
    let mut sum = 1.0_f64;
    let mut term = 1.0_f64;
    for k in 0..MAX_TERMS {
        let k = k as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if sum > 1e250 {
            scale += sum.ln();
            term /= sum;
            sum = 1.0;
        }
        if term <= sum * 1e-16 {
            return Some(scale + sum.ln());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = -ln(1-z)/z
        for z in [0.01_f64, 0.3, 0.7, 0.95, 0.999] {
            let want = (-(-z).ln_1p() / z).ln();
            let got = ln_hyp2f1(1.0, 1.0, 2.0, z).expect("converges");
            assert!(close(got, want, 1e-12), "z={z}: {got} vs {want}");
        }
        // ₂F₁(a, b; b; z) = (1-z)^-a, a case where Euler's transformation is taken
        for (a, b, z) in [(2.5_f64, 3.0, 0.4_f64), (7.0, 0.5, 0.9), (40.0, 1.5, 0.2)] {
            let want = -a * (-z).ln_1p();
            let got = ln_hyp2f1(a, b, b, z).expect("converges");
            assert!(close(got, want, 1e-10), "{a},{b},{z}: {got} vs {want}");
        }
    }

    #[test]
    fn digamma_matches_known_values_and_the_derivative_of_ln_gamma() {
        let euler = 0.577_215_664_901_532_9;
        assert!(close(digamma(1.0), -euler, 1e-12));
        assert!(close(digamma(0.5), -euler - 2.0 * 2f64.ln(), 1e-12));
        for x in [0.05_f64, 0.7, 3.3, 12.0, 250.0] {
            let h = 1e-5 * x;
            let numeric = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(close(digamma(x), numeric, 1e-7), "x={x}");
        }
    }

    #[test]
    fn hyp2f1_refuses_outside_its_domain() {
        assert_eq!(ln_hyp2f1(1.0, 1.0, 2.0, 1.0), None);
        assert_eq!(ln_hyp2f1(-1.0, 1.0, 2.0, 0.5), None);
        assert_eq!(ln_hyp2f1(1.0, 1.0, 2.0, f64::NAN), None);
    }

    #[test]
    fn log_sums_are_exact_where_plain_arithmetic_is() {
        assert!(close(log_add_exp(2f64.ln(), 3f64.ln()), 5f64.ln(), 1e-15));
        assert!(close(log_sub_exp(5f64.ln(), 3f64.ln()), 2f64.ln(), 1e-15));
        assert_eq!(log_sub_exp(1.0, 1.0), f64::NEG_INFINITY);
        assert!(close(
            log_add_exp(1000.0, 1000.0),
            1000.0 + 2f64.ln(),
            1e-15
        ));
    }
}
