//! Personalisation: what to recommend, who belongs where, and what to do next.
//!
//! Pure math over interactions and facts the engine has already let through the policy gate
//! for the personalisation purpose: recommenders (popularity, item-kNN with shrinkage, implicit
//! ALS with a conjugate-gradient solver), an offline evaluation harness, segment conditions,
//! k-means with silhouette, and next-best-action ranking with caps and cooldowns. No I/O; which
//! customers' data may enter is the engine's decision, never this crate's.

#![forbid(unsafe_code)]

pub mod als;
pub mod eval;
pub mod explain;
pub mod interactions;
mod kernels;
pub mod kmeans;
pub mod knn;
pub mod movielens;
pub mod nba;
pub mod popularity;
mod rng;
pub mod segments;
mod topk;

pub use als::{Als, AlsParams};
pub use eval::{evaluate, split, Metrics, Split};
pub use interactions::{Interaction, Sparse, Vocabulary};
pub use knn::{ItemKnn, KnnParams};
pub use popularity::Popularity;
pub use rng::SplitMix64;

/// A ranked suggestion: an item index and its score (higher is better).
pub type Scored = (u32, f32);

/// What every recommender answers: the best `k` items for someone who has interacted with
/// `seen` (item index, weight), leaving out what they have already seen.
pub trait Recommender {
    /// Up to `k` items, best first.
    fn recommend(&self, seen: &[(u32, f32)], k: usize) -> Vec<Scored>;
}
