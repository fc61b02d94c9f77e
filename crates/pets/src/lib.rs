//! Privacy-enhancing technologies: the math that lets Consentric release what is true of many
//! customers without revealing any one of them.
//!
//! Differential privacy: exact discrete Laplace and discrete Gaussian noise (OpenDP's
//! samplers, after Canonne, Kamath and Steinke 2020 — integers drawn exactly, so none of the
//! floating-point attacks on textbook Laplace apply), calibration of a release to its
//! sensitivity, private selection (quantiles and top-k by the exponential mechanism), and
//! zero-concentrated DP accounting in exact integer units. The clean room: private set
//! intersection by commutative blinding over Ristretto255, and Paillier's additively
//! homomorphic encryption for sums over the intersection. No I/O: the engine keeps budgets and
//! sessions in the store, decides whose data enters, and the server carries the messages.

#![forbid(unsafe_code)]

pub mod accountant;
pub mod noise;
pub mod paillier;
pub mod psi;
pub mod release;
pub mod select;

pub use accountant::{Budget, Exceeded, Rho};
pub use noise::Noise;
pub use release::{calibrate, Privacy, PrivacyError};
pub use select::{QuantilePlan, TopKPlan};
