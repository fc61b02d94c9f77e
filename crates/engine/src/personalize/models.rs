//! The trained recommenders, as stored and as held in memory.

use consentric_personalize::{Als, ItemKnn, Popularity, Vocabulary};
use serde::{Deserialize, Serialize};

/// The name the current training is stored under.
pub(crate) const STORED_AS: &str = "current";

/// One training: the item vocabulary, the three recommenders, and what they were trained on.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Trained {
    /// When (ms).
    pub trained_at: i64,
    /// Earliest and latest interaction trained on (ms).
    pub window: Option<(i64, i64)>,
    /// Customers whose interactions entered.
    pub customers: usize,
    /// Item ids, by index.
    pub items: Vec<String>,
    #[serde(skip)]
    pub vocabulary: Vocabulary,
    pub popularity: Popularity,
    pub knn: ItemKnn,
    /// Absent when there was too little to factorise.
    pub als: Option<Als>,
}

impl Trained {
    /// Rebuilds the vocabulary after reading.
    pub fn ready(mut self) -> Self {
        self.vocabulary = Vocabulary::from_ids(self.items.clone());
        self
    }
}

/// What `recommend train` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    /// The purpose training ran under.
    pub purpose: String,
    /// Customers whose interactions entered.
    pub customers: usize,
    /// Customers the gate left out (no basis) or who had no interactions.
    pub left_out: usize,
    /// Distinct items.
    pub items: usize,
    /// Interactions (customer × item pairs).
    pub interactions: usize,
    /// Whether ALS was trained (it needs at least two customers and two items).
    pub als: bool,
    /// Seconds per ALS iteration (median).
    pub als_iteration_seconds: Option<f64>,
    /// Earliest interaction trained on (RFC 3339).
    pub window_from: Option<String>,
    /// Latest interaction trained on (RFC 3339).
    pub window_to: Option<String>,
    /// When (RFC 3339).
    pub trained_at: String,
}
