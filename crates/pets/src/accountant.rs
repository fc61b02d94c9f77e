//! Zero-concentrated DP accounting: privacy loss ρ composes by addition (Bun and Steinke
//! 2016), kept in exact integer units so a budget's arithmetic never rounds in anyone's favour
//! but the customer's.

use std::fmt;

use serde::{Serialize, Serializer};

/// Units of ρ in one: a charge is rounded up to the next 10⁻¹², a grant down.
const UNITS: f64 = 1e12;

/// An amount of privacy loss ρ (zCDP), exact in units of 10⁻¹².
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rho(u64);

impl Rho {
    /// Zero loss.
    pub const ZERO: Rho = Rho(0);

    /// ρ rounded up (what a release costs is never understated). `None` unless finite and ≥ 0.
    pub fn ceil(rho: f64) -> Option<Rho> {
        (rho.is_finite() && rho >= 0.0 && rho * UNITS < u64::MAX as f64)
            .then(|| Rho((rho * UNITS).ceil() as u64))
    }

    /// ρ rounded down (what a grant allows is never overstated). `None` unless finite and ≥ 0.
    pub fn floor(rho: f64) -> Option<Rho> {
        (rho.is_finite() && rho >= 0.0 && rho * UNITS < u64::MAX as f64)
            .then(|| Rho((rho * UNITS).floor() as u64))
    }

    /// From stored units.
    pub const fn from_units(units: u64) -> Rho {
        Rho(units)
    }

    /// The stored units.
    pub fn units(self) -> u64 {
        self.0
    }

    /// As a number.
    pub fn value(self) -> f64 {
        self.0 as f64 / UNITS
    }

    /// Sequential composition; `None` on overflow.
    pub fn plus(self, other: Rho) -> Option<Rho> {
        self.0.checked_add(other.0).map(Rho)
    }

    /// What is left of `self` after `spent` (zero if overspent).
    pub fn minus(self, spent: Rho) -> Rho {
        Rho(self.0.saturating_sub(spent.0))
    }

    /// The (ε, δ)-DP guarantee ρ-zCDP implies: ε = ρ + 2√(ρ ln(1/δ)) (Bun and Steinke 2016,
    /// Proposition 1.3).
    pub fn epsilon_at(self, delta: f64) -> f64 {
        let rho = self.value();
        rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
    }
}

impl fmt::Display for Rho {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ρ = {}", self.value())
    }
}

impl Serialize for Rho {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.value())
    }
}

/// A budget: what was granted and what releases have spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Granted.
    pub granted: Rho,
    /// Spent so far.
    pub spent: Rho,
}

/// A charge the budget cannot cover; nothing was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the release costs {requested} but only {remaining} remains")]
pub struct Exceeded {
    /// What the release would cost.
    pub requested: Rho,
    /// What remains.
    pub remaining: Rho,
}

impl Budget {
    /// What is left.
    pub fn remaining(&self) -> Rho {
        self.granted.minus(self.spent)
    }

    /// Spends `cost` if it fits, else refuses and spends nothing.
    ///
    /// # Errors
    /// [`Exceeded`] with what remains.
    pub fn charge(&mut self, cost: Rho) -> Result<(), Exceeded> {
        match self.spent.plus(cost) {
            Some(total) if total <= self.granted => {
                self.spent = total;
                Ok(())
            }
            _ => Err(Exceeded {
                requested: cost,
                remaining: self.remaining(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_is_exact_and_a_budget_cannot_be_overspent() {
        let tenth = Rho::ceil(0.1).expect("rho");
        let mut b = Budget {
            granted: Rho::floor(1.0).expect("rho"),
            spent: Rho::ZERO,
        };
        for _ in 0..10 {
            b.charge(tenth).expect("fits");
        }
        // Ten tenths are exactly one: no floating-point drift either way.
        assert_eq!(b.spent, b.granted);
        assert_eq!(b.remaining(), Rho::ZERO);
        let refused = b.charge(Rho::from_units(1)).expect_err("full");
        assert_eq!(refused.remaining, Rho::ZERO);
        assert_eq!(b.spent, b.granted, "a refused charge spends nothing");
        assert!(
            Rho::ceil(-0.1).is_none()
                && Rho::ceil(f64::NAN).is_none()
                && Rho::ceil(f64::INFINITY).is_none()
        );
        // Charges round up, grants down.
        assert_eq!(Rho::ceil(1e-13).expect("rho").units(), 1);
        assert_eq!(Rho::floor(1e-13).expect("rho").units(), 0);
    }

    #[test]
    fn converts_to_epsilon_delta() {
        // ρ = ε²/2 for pure ε-DP: ε = 1 → ρ = 0.5; at δ = 1e-6 the bound is 0.5 + 2√(0.5 ln 1e6).
        let rho = Rho::ceil(0.5).expect("rho");
        let eps = rho.epsilon_at(1e-6);
        assert!((eps - (0.5 + 2.0 * (0.5 * 1e6f64.ln()).sqrt())).abs() < 1e-9);
    }
}
