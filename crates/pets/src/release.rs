//! Calibrating noise to a query's sensitivity and the privacy asked for, and what it costs.

use serde::{Deserialize, Serialize};

use crate::accountant::Rho;
use crate::noise::Noise;

/// Largest ε or ρ one release may ask for: beyond it the noise protects nobody.
pub const MAX_PRIVACY: f64 = 10.0;

/// The privacy a release is made at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privacy {
    /// Pure ε-DP with discrete Laplace noise (costs ρ = ε²/2).
    Epsilon(f64),
    /// ρ-zCDP with discrete Gaussian noise.
    Rho(f64),
}

/// Why a release cannot be calibrated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrivacyError {
    /// ε or ρ is not a positive finite number at most [`MAX_PRIVACY`].
    #[error("{0} must be a positive finite number at most {MAX_PRIVACY}")]
    Parameter(&'static str),
    /// The sensitivity is zero or not finite.
    #[error("the sensitivity must be positive and finite")]
    Sensitivity,
    /// The noise would be too large to draw as a 64-bit integer.
    #[error("the noise scale {0:e} is beyond {MAX_SCALE:e}: narrow the bounds or ask for more privacy loss")]
    TooMuchNoise(f64),
    /// A selection needs between one and this many candidates.
    #[error("between 1 and {0} candidates")]
    Candidates(usize),
    /// A quantile's level is outside [0, 1].
    #[error("a quantile's level must be within [0, 1]")]
    Alpha,
    /// k is not between 1 and the number of candidates (at most this many).
    #[error("k must be between 1 and the number of candidates (at most {0})")]
    TopK(usize),
    /// OpenDP refused to build the mechanism.
    #[error("the mechanism cannot be built: {0}")]
    Mechanism(String),
}

/// Largest noise scale drawn: draws stay far inside 64 bits.
pub const MAX_SCALE: f64 = 1e15;

/// The noise for a release of sensitivity `l1` (for ε) / `l2` (for ρ) at `privacy`, and its
/// cost in ρ, computed from the noise actually used (so float rounding can only make the
/// charge larger).
///
/// # Errors
/// [`PrivacyError`] for a bad parameter or sensitivity.
pub fn calibrate(privacy: Privacy, l1: f64, l2: f64) -> Result<(Noise, Rho), PrivacyError> {
    match privacy {
        Privacy::Epsilon(eps) => {
            if !(eps.is_finite() && eps > 0.0 && eps <= MAX_PRIVACY) {
                return Err(PrivacyError::Parameter("epsilon"));
            }
            if !(l1.is_finite() && l1 > 0.0) {
                return Err(PrivacyError::Sensitivity);
            }
            let scale = l1 / eps;
            if scale > MAX_SCALE {
                return Err(PrivacyError::TooMuchNoise(scale));
            }
            let actual = l1 / scale;
            let cost =
                Rho::ceil(actual * actual / 2.0).ok_or(PrivacyError::Parameter("epsilon"))?;
            Ok((Noise::DiscreteLaplace { scale }, cost))
        }
        Privacy::Rho(rho) => {
            if !(rho.is_finite() && rho > 0.0 && rho <= MAX_PRIVACY) {
                return Err(PrivacyError::Parameter("rho"));
            }
            if !(l2.is_finite() && l2 > 0.0) {
                return Err(PrivacyError::Sensitivity);
            }
            let sigma = l2 / (2.0 * rho).sqrt();
            if sigma > MAX_SCALE {
                return Err(PrivacyError::TooMuchNoise(sigma));
            }
            let cost =
                Rho::ceil(l2 * l2 / (2.0 * sigma * sigma)).ok_or(PrivacyError::Parameter("rho"))?;
            Ok((Noise::DiscreteGaussian { sigma }, cost))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrates_and_charges_at_least_what_was_asked() {
        let (noise, cost) = calibrate(Privacy::Epsilon(0.5), 2.0, 2.0).expect("ok");
        assert_eq!(noise, Noise::DiscreteLaplace { scale: 4.0 });
        assert!(cost.value() >= 0.125 && cost.value() < 0.125 + 1e-9);
        let (noise, cost) = calibrate(Privacy::Rho(0.02), 1.0, 1.0).expect("ok");
        assert_eq!(noise, Noise::DiscreteGaussian { sigma: 5.0 });
        assert!(cost.value() >= 0.02);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 11.0] {
            assert_eq!(
                calibrate(Privacy::Epsilon(bad), 1.0, 1.0),
                Err(PrivacyError::Parameter("epsilon"))
            );
            assert_eq!(
                calibrate(Privacy::Rho(bad), 1.0, 1.0),
                Err(PrivacyError::Parameter("rho"))
            );
        }
        assert_eq!(
            calibrate(Privacy::Epsilon(1.0), 0.0, 1.0),
            Err(PrivacyError::Sensitivity)
        );
        // Noise too wide for 64-bit draws is refused before anything is charged.
        assert!(matches!(
            calibrate(Privacy::Epsilon(1e-6), 1e14, 1e14),
            Err(PrivacyError::TooMuchNoise(_))
        ));
        assert!(matches!(
            calibrate(Privacy::Rho(1e-9), 1e12, 1e12),
            Err(PrivacyError::TooMuchNoise(_))
        ));
    }
}
