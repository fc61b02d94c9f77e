//! Private selection: which candidate is the quantile, which k categories are largest — the
//! exponential mechanism, as OpenDP builds it (permute-and-flip for pure ε, McSherry–Talwar
//! with Gumbel noise for zCDP; McKenna and Sheldon 2020), with its exact integer samplers.
//!
//! Every plan is made and priced before any data is seen, so the engine can charge first and
//! refuse without reading.

use opendp::core::{Domain, Measure, Measurement, Metric};
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_noisy_top_k, make_private_quantile};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{LInfDistance, SymmetricDistance};

use crate::accountant::Rho;
use crate::noise::SampleError;
use crate::release::{Privacy, PrivacyError, MAX_PRIVACY, MAX_SCALE};

type Values = VectorDomain<AtomDomain<i64>>;
type Quantile<M> = Measurement<Values, SymmetricDistance, M, i64>;
type TopK<M> = Measurement<Values, LInfDistance<i64>, M, Vec<usize>>;

/// Most candidates a quantile may choose among.
pub const MAX_CANDIDATES: usize = 10_000;

/// A measurement for either kind of privacy.
enum Either<A, B> {
    Pure(A),
    Concentrated(B),
}

/// A priced quantile release: one of the candidates, chosen by how many values fall below it.
pub struct QuantilePlan {
    measurement: Either<Quantile<MaxDivergence>, Quantile<ZeroConcentratedDivergence>>,
}

/// A priced top-k release: the indices of the k largest scores, largest first.
pub struct TopKPlan {
    measurement: Either<TopK<MaxDivergence>, TopK<ZeroConcentratedDivergence>>,
    k: usize,
}

fn check(privacy: Privacy) -> Result<f64, PrivacyError> {
    let (value, name) = match privacy {
        Privacy::Epsilon(e) => (e, "epsilon"),
        Privacy::Rho(r) => (r, "rho"),
    };
    if value.is_finite() && value > 0.0 && value <= MAX_PRIVACY {
        Ok(value)
    } else {
        Err(PrivacyError::Parameter(name))
    }
}

/// The cost in ρ of a loss measured in the privacy's own unit.
fn cost(privacy: Privacy, loss: f64) -> Result<Rho, PrivacyError> {
    match privacy {
        Privacy::Epsilon(_) => {
            Rho::ceil(loss * loss / 2.0).ok_or(PrivacyError::Parameter("epsilon"))
        }
        Privacy::Rho(_) => Rho::ceil(loss).ok_or(PrivacyError::Parameter("rho")),
    }
}

/// Finds the smallest scale whose loss (`loss(scale)`, decreasing in scale) is at most
/// `target`: the loss is ε ∝ 1/scale or ρ ∝ 1/scale², so one probe at scale 1 gives the
/// answer, then a nudge upward absorbs float rounding.
fn scale_for(
    target: f64,
    privacy: Privacy,
    loss: impl Fn(f64) -> Result<f64, PrivacyError>,
) -> Result<(f64, f64), PrivacyError> {
    let at_one = loss(1.0)?;
    let mut scale = match privacy {
        Privacy::Epsilon(_) => at_one / target,
        Privacy::Rho(_) => (at_one / target).sqrt(),
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(PrivacyError::Sensitivity);
    }
    for _ in 0..64 {
        if scale > MAX_SCALE {
            return Err(PrivacyError::TooMuchNoise(scale));
        }
        let actual = loss(scale)?;
        if actual <= target {
            return Ok((scale, actual));
        }
        scale *= 1.0 + 1e-12;
    }
    Err(PrivacyError::Sensitivity)
}

/// A mechanism and the privacy loss it was built for.
type Priced<M> = (M, f64);

/// The measurement `make` builds at the smallest scale whose privacy loss for `d_in` is at
/// most what was asked, and that loss.
fn build<DI: Domain, MI: Metric, MO: Measure<Distance = f64>, TO>(
    privacy: Privacy,
    d_in: MI::Distance,
    make: impl Fn(f64) -> opendp::error::Fallible<Measurement<DI, MI, MO, TO>>,
) -> Result<Priced<Measurement<DI, MI, MO, TO>>, PrivacyError> {
    let target = check(privacy)?;
    let (scale, loss) = scale_for(target, privacy, |s| {
        make(s).and_then(|m| m.map(&d_in)).map_err(opendp_error)
    })?;
    Ok((make(scale).map_err(opendp_error)?, loss))
}

fn opendp_error(e: opendp::error::Error) -> PrivacyError {
    PrivacyError::Mechanism(e.message.unwrap_or_else(|| format!("{:?}", e.variant)))
}

impl QuantilePlan {
    /// Plans the `alpha`-quantile (0.5 is the median) of values each customer contributes one
    /// of, chosen among `candidates`, at `privacy`; returns the plan and its cost.
    ///
    /// # Errors
    /// A bad parameter, no candidates (or more than [`MAX_CANDIDATES`]), alpha outside [0, 1].
    pub fn new(
        candidates: Vec<i64>,
        alpha: f64,
        privacy: Privacy,
    ) -> Result<(QuantilePlan, Rho), PrivacyError> {
        check(privacy)?;
        if candidates.is_empty() || candidates.len() > MAX_CANDIDATES {
            return Err(PrivacyError::Candidates(MAX_CANDIDATES));
        }
        if !(0.0..=1.0).contains(&alpha) {
            return Err(PrivacyError::Alpha);
        }
        let domain = || VectorDomain::new(AtomDomain::<i64>::default());
        let (measurement, loss) = match privacy {
            Privacy::Epsilon(_) => {
                let (m, loss) = build(privacy, 1, |s| {
                    make_private_quantile(
                        domain(),
                        SymmetricDistance,
                        MaxDivergence,
                        candidates.clone(),
                        alpha,
                        s,
                    )
                })?;
                (Either::Pure(m), loss)
            }
            Privacy::Rho(_) => {
                let (m, loss) = build(privacy, 1, |s| {
                    make_private_quantile(
                        domain(),
                        SymmetricDistance,
                        ZeroConcentratedDivergence,
                        candidates.clone(),
                        alpha,
                        s,
                    )
                })?;
                (Either::Concentrated(m), loss)
            }
        };
        Ok((QuantilePlan { measurement }, cost(privacy, loss)?))
    }

    /// Releases the quantile of `values` (one per customer).
    ///
    /// # Errors
    /// If the sampler fails.
    pub fn release(&self, values: Vec<i64>) -> Result<i64, SampleError> {
        match &self.measurement {
            Either::Pure(m) => m.invoke(&values),
            Either::Concentrated(m) => m.invoke(&values),
        }
        .map_err(|e| SampleError::from_opendp(&e))
    }
}

impl TopKPlan {
    /// Plans choosing the `k` largest of `candidates` scores, where one customer changes each
    /// score by at most one and only upward (counts of distinct customers); returns the plan
    /// and its cost, k selections' worth.
    ///
    /// # Errors
    /// A bad parameter, or k not within 1..=candidates.
    pub fn new(
        candidates: usize,
        k: usize,
        privacy: Privacy,
    ) -> Result<(TopKPlan, Rho), PrivacyError> {
        check(privacy)?;
        if k == 0 || k > candidates || candidates > MAX_CANDIDATES {
            return Err(PrivacyError::TopK(candidates.min(MAX_CANDIDATES)));
        }
        let domain = || VectorDomain::new(AtomDomain::<i64>::default()).with_size(candidates);
        // One customer moves every count by at most one, and only upward.
        let metric = || LInfDistance::new(true);
        let (measurement, loss) = match privacy {
            Privacy::Epsilon(_) => {
                let (m, loss) = build(privacy, 1, |s| {
                    make_noisy_top_k(domain(), metric(), MaxDivergence, k, s, false)
                })?;
                (Either::Pure(m), loss)
            }
            Privacy::Rho(_) => {
                let (m, loss) = build(privacy, 1, |s| {
                    make_noisy_top_k(domain(), metric(), ZeroConcentratedDivergence, k, s, false)
                })?;
                (Either::Concentrated(m), loss)
            }
        };
        Ok((TopKPlan { measurement, k }, cost(privacy, loss)?))
    }

    /// How many it selects.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The indices of the k largest `scores` (as many as planned), largest first.
    ///
    /// # Errors
    /// If the sampler fails or `scores` is not as long as planned.
    pub fn release(&self, scores: Vec<i64>) -> Result<Vec<usize>, SampleError> {
        match &self.measurement {
            Either::Pure(m) => m.invoke(&scores),
            Either::Concentrated(m) => m.invoke(&scores),
        }
        .map_err(|e| SampleError::from_opendp(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_costs_what_was_asked_and_lands_near_the_truth() {
        let candidates: Vec<i64> = (0..=100).collect();
        let (plan, cost) =
            QuantilePlan::new(candidates.clone(), 0.5, Privacy::Epsilon(1.0)).expect("plan");
        // ε = 1 is charged as ρ = ε²/2, never less.
        assert!(
            cost.value() >= 0.5 && cost.value() < 0.5 + 1e-6,
            "{}",
            cost.value()
        );
        let values: Vec<i64> = (0..10_000).map(|i| i % 101).collect();
        let mut near = 0;
        for _ in 0..50 {
            let m = plan.release(values.clone()).expect("release");
            assert!(candidates.contains(&m));
            if (45..=55).contains(&m) {
                near += 1;
            }
        }
        // With 10,000 values the median's score gap to a candidate 6 away is ~600 ≫ 1/ε.
        assert_eq!(near, 50);
        let (_, rho) = QuantilePlan::new(candidates, 0.9, Privacy::Rho(0.1)).expect("plan");
        assert!(rho.value() >= 0.1 && rho.value() < 0.1 + 1e-6);
    }

    #[test]
    fn top_k_finds_clear_winners_and_charges_k_selections() {
        let (plan, cost) = TopKPlan::new(5, 2, Privacy::Epsilon(1.0)).expect("plan");
        assert!(cost.value() >= 0.5 && cost.value() < 0.5 + 1e-6);
        assert_eq!(plan.k(), 2);
        for _ in 0..20 {
            assert_eq!(
                plan.release(vec![10, 5000, 20, 4000, 30]).expect("release"),
                vec![1, 3]
            );
        }
        assert!(TopKPlan::new(5, 6, Privacy::Epsilon(1.0)).is_err());
        assert!(TopKPlan::new(5, 0, Privacy::Rho(1.0)).is_err());
        assert!(QuantilePlan::new(vec![], 0.5, Privacy::Epsilon(1.0)).is_err());
        assert!(QuantilePlan::new(vec![1], 1.5, Privacy::Epsilon(1.0)).is_err());
        assert!(QuantilePlan::new(vec![1], 0.5, Privacy::Epsilon(f64::NAN)).is_err());
    }

    /// The selection follows the exponential mechanism's law: with Gumbel noise (zCDP) the
    /// chance of choosing i is ∝ exp(score_i / scale); a χ² test at significance 10⁻⁶.
    #[test]
    fn selection_frequencies_match_the_exponential_mechanism() {
        let rho = 0.125; // ρ = ε²/8 for a range-bounded ε = 1 selection: scale 1 with d_in = 1
        let (plan, _) = TopKPlan::new(4, 1, Privacy::Rho(rho)).expect("plan");
        let scores = vec![0, 1, 2, 3];
        let trials = 20_000;
        let mut seen = [0f64; 4];
        for _ in 0..trials {
            seen[plan.release(scores.clone()).expect("release")[0]] += 1.0;
        }
        let z: f64 = scores.iter().map(|&s| (s as f64).exp()).sum();
        let chi2: f64 = scores
            .iter()
            .zip(seen)
            .map(|(&s, o)| {
                let e = (s as f64).exp() / z * trials as f64;
                (o - e) * (o - e) / e
            })
            .sum();
        // χ²(3 df) exceeds 30.66 with probability 10⁻⁶.
        assert!(chi2 < 30.66, "χ² = {chi2}, counts {seen:?}");
    }
}
