//! Exact integer noise: discrete Laplace and discrete Gaussian.

use dashu::rational::RBig;
use serde::Serialize;

/// A noise distribution over the integers, centred on zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "distribution", rename_all = "snake_case")]
pub enum Noise {
    /// P(x) ∝ exp(−|x| / scale): pure ε-DP for sensitivity Δ₁ at ε = Δ₁ / scale.
    DiscreteLaplace {
        /// Its scale t.
        scale: f64,
    },
    /// P(x) ∝ exp(−x² / 2σ²): ρ-zCDP for sensitivity Δ₂ at ρ = Δ₂² / 2σ².
    DiscreteGaussian {
        /// Its σ.
        sigma: f64,
    },
}

/// Beyond this σ the discrete Gaussian's pmf, moments and interval are taken from the
/// continuous one (they agree to far better than a part in a million), instead of summing.
const CONTINUOUS_ABOVE: f64 = 1e4;

/// The sampler could not draw (no system entropy, or a scale that is not a finite rational).
#[derive(Debug, thiserror::Error)]
#[error("noise could not be drawn: {0}")]
pub struct SampleError(String);

impl SampleError {
    pub(crate) fn from_opendp(e: &opendp::error::Error) -> Self {
        SampleError(e.to_string())
    }
}

impl Noise {
    fn scale(&self) -> f64 {
        match *self {
            Noise::DiscreteLaplace { scale } => scale,
            Noise::DiscreteGaussian { sigma } => sigma,
        }
    }

    /// One draw, from OpenDP's exact sampler seeded by the operating system.
    ///
    /// # Errors
    /// A [`SampleError`] when the scale is not finite and non-negative or entropy failed.
    pub fn sample(&self) -> Result<i64, SampleError> {
        let scale = RBig::try_from(self.scale())
            .map_err(|_| SampleError(format!("scale {} is not a finite number", self.scale())))?;
        let z = match self {
            Noise::DiscreteLaplace { .. } => {
                opendp::traits::samplers::sample_discrete_laplace(scale)
            }
            Noise::DiscreteGaussian { .. } => {
                opendp::traits::samplers::sample_discrete_gaussian(scale)
            }
        }
        .map_err(|e| SampleError(e.to_string()))?;
        i64::try_from(z).map_err(|_| SampleError("a draw beyond 64 bits".into()))
    }

    /// P(X = x).
    pub fn pmf(&self, x: i64) -> f64 {
        match *self {
            Noise::DiscreteLaplace { scale } => {
                if scale == 0.0 {
                    return f64::from(u8::from(x == 0));
                }
                (0.5 / scale).tanh() * (-(x.unsigned_abs() as f64) / scale).exp()
            }
            Noise::DiscreteGaussian { sigma } if sigma > CONTINUOUS_ABOVE => {
                let z = x as f64 / sigma;
                (-z * z / 2.0).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt())
            }
            Noise::DiscreteGaussian { sigma } => {
                if sigma == 0.0 {
                    return f64::from(u8::from(x == 0));
                }
                let w = |k: i64| (-((k * k) as f64) / (2.0 * sigma * sigma)).exp();
                let reach = (sigma * 40.0).ceil() as i64 + 1;
                let norm: f64 = w(0) + 2.0 * (1..=reach).map(w).sum::<f64>();
                w(x) / norm
            }
        }
    }

    /// The variance of a draw.
    pub fn variance(&self) -> f64 {
        match *self {
            Noise::DiscreteLaplace { scale } => {
                let q = (-1.0 / scale).exp();
                2.0 * q / (1.0 - q).powi(2)
            }
            Noise::DiscreteGaussian { sigma } if sigma > CONTINUOUS_ABOVE => sigma * sigma,
            Noise::DiscreteGaussian { sigma } => {
                let reach = (sigma * 40.0).ceil() as i64 + 1;
                2.0 * (1..=reach)
                    .map(|k| (k * k) as f64 * self.pmf(k))
                    .sum::<f64>()
            }
        }
    }

    /// E|X|: the expected absolute error this noise adds to a release.
    pub fn expected_abs(&self) -> f64 {
        match *self {
            Noise::DiscreteLaplace { scale } => {
                let q = (-1.0 / scale).exp();
                2.0 * q / (1.0 - q * q)
            }
            Noise::DiscreteGaussian { sigma } if sigma > CONTINUOUS_ABOVE => {
                sigma * (2.0 / std::f64::consts::PI).sqrt()
            }
            Noise::DiscreteGaussian { sigma } => {
                let reach = (sigma * 40.0).ceil() as i64 + 1;
                2.0 * (1..=reach).map(|k| k as f64 * self.pmf(k)).sum::<f64>()
            }
        }
    }

    /// The smallest k with P(|X| ≤ k) ≥ `level`: a release is within ±k of the truth with
    /// that probability (before clamping and rounding).
    pub fn half_width(&self, level: f64) -> i64 {
        match *self {
            // P(|X| ≤ k) = 1 − 2q^{k+1}/(1 + q), q = e^{−1/t}: solved for k.
            Noise::DiscreteLaplace { scale } if scale > 0.0 => {
                let q = (-1.0 / scale).exp();
                // ln q = −1/t exactly (q itself loses the digits that matter for large t).
                let k = -scale * ((1.0 - level) * (1.0 + q) / 2.0).ln() - 1.0;
                return k.ceil().max(0.0) as i64;
            }
            // The normal quantile, for the levels the API reports (95%, else 99%).
            Noise::DiscreteGaussian { sigma } if sigma > CONTINUOUS_ABOVE => {
                let z = if level <= 0.95 {
                    1.959_963_985
                } else {
                    2.575_829_304
                };
                return (sigma * z).ceil() as i64;
            }
            _ => {}
        }
        let mut mass = self.pmf(0);
        let mut k = 0i64;
        while mass < level && k < i64::MAX / 2 {
            k += 1;
            mass += 2.0 * self.pmf(k);
            if self.pmf(k) == 0.0 {
                break;
            }
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pearson's χ² of `n` draws against the pmf, over the bins |x| ≤ `reach` (two tails
    /// pooled), and its degrees of freedom.
    fn chi_square(noise: Noise, n: usize, reach: i64) -> (f64, usize) {
        let mut counts = vec![0u64; (2 * reach + 3) as usize];
        for _ in 0..n {
            let x = noise.sample().expect("draw");
            let bin = if x < -reach {
                0
            } else if x > reach {
                counts.len() - 1
            } else {
                (x + reach + 1) as usize
            };
            counts[bin] += 1;
        }
        let inner: f64 = (-reach..=reach).map(|x| noise.pmf(x)).sum();
        let tail = (1.0 - inner) / 2.0;
        let mut chi = 0.0;
        let mut df = 0usize;
        for (bin, &c) in counts.iter().enumerate() {
            let p = if bin == 0 || bin == counts.len() - 1 {
                tail
            } else {
                noise.pmf(bin as i64 - reach - 1)
            };
            let expected = p * n as f64;
            if expected < 5.0 {
                continue; // too rare to test by χ²; they are within the tails' bound below
            }
            chi += (c as f64 - expected).powi(2) / expected;
            df += 1;
        }
        (chi, df.saturating_sub(1))
    }

    /// The χ² quantile at 1 − 10⁻⁶ (Wilson–Hilferty): a correct sampler fails one run in a
    /// million, a wrong one fails every run at these sample sizes.
    fn critical(df: usize) -> f64 {
        let k = df as f64;
        let z = 4.753_424_3; // standard normal quantile at 1 − 10⁻⁶
        k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
    }

    #[test]
    fn discrete_laplace_draws_follow_its_distribution() {
        for scale in [0.7, 3.0, 20.0] {
            let noise = Noise::DiscreteLaplace { scale };
            let (chi, df) = chi_square(noise, 100_000, (scale * 6.0).ceil() as i64);
            assert!(chi < critical(df), "scale {scale}: χ² {chi:.1} on {df} df");
        }
    }

    #[test]
    fn discrete_gaussian_draws_follow_its_distribution() {
        for sigma in [0.8, 4.0, 25.0] {
            let noise = Noise::DiscreteGaussian { sigma };
            let (chi, df) = chi_square(noise, 100_000, (sigma * 4.0).ceil() as i64);
            assert!(chi < critical(df), "σ {sigma}: χ² {chi:.1} on {df} df");
        }
    }

    #[test]
    fn mean_and_variance_lie_within_their_confidence_bounds() {
        let n = 100_000usize;
        for noise in [
            Noise::DiscreteLaplace { scale: 5.0 },
            Noise::DiscreteGaussian { sigma: 5.0 },
        ] {
            let draws: Vec<f64> = (0..n)
                .map(|_| noise.sample().expect("draw") as f64)
                .collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let v = noise.variance();
            // 5 standard errors: the mean's is √(v/n); the variance's about v·√(2/n) times a
            // kurtosis factor (6 for Laplace-like tails).
            assert!(
                mean.abs() < 5.0 * (v / n as f64).sqrt(),
                "{noise:?}: mean {mean}"
            );
            assert!(
                (var - v).abs() < 5.0 * v * (6.0 / n as f64).sqrt(),
                "{noise:?}: var {var} vs {v}"
            );
            let abs = draws.iter().map(|x| x.abs()).sum::<f64>() / n as f64;
            assert!(
                (abs - noise.expected_abs()).abs() < 0.02 * noise.expected_abs() + 0.05,
                "{noise:?}: E|X| {abs}"
            );
        }
    }

    #[test]
    fn pmf_sums_to_one_and_the_interval_holds_its_mass() {
        for noise in [
            Noise::DiscreteLaplace { scale: 2.5 },
            Noise::DiscreteGaussian { sigma: 3.0 },
        ] {
            let total: f64 = (-400..=400).map(|x| noise.pmf(x)).sum();
            assert!((total - 1.0).abs() < 1e-9, "{noise:?}: {total}");
            let k = noise.half_width(0.95);
            let inside: f64 = (-k..=k).map(|x| noise.pmf(x)).sum();
            let narrower: f64 = (-(k - 1)..=(k - 1)).map(|x| noise.pmf(x)).sum();
            assert!(inside >= 0.95 && narrower < 0.95, "{noise:?}: k {k}");
        }
        // Huge scales answer at once, from closed forms.
        let wide = Noise::DiscreteLaplace { scale: 1e14 };
        let k = wide.half_width(0.95) as f64;
        assert!((k / (1e14 * 20f64.ln()) - 1.0).abs() < 1e-6, "{k}");
        let g = Noise::DiscreteGaussian { sigma: 1e12 };
        assert_eq!(g.half_width(0.95), (1e12 * 1.959_963_985f64).ceil() as i64);
        assert!((g.expected_abs() / 1e12 - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-12);
        // Laplace closed forms: t = 1 gives q = e^{-1}.
        let q = (-1.0f64).exp();
        let l = Noise::DiscreteLaplace { scale: 1.0 };
        assert!((l.variance() - 2.0 * q / (1.0 - q).powi(2)).abs() < 1e-12);
        assert_eq!(
            Noise::DiscreteLaplace { scale: 0.0 }
                .sample()
                .expect("draw"),
            0
        );
        assert!(Noise::DiscreteLaplace { scale: f64::NAN }.sample().is_err());
    }
}
