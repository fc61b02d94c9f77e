//! `[personalize]` in `consentric.toml`.

use std::collections::BTreeMap;

use consentric_personalize::nba::{retail_actions, Action};
use consentric_personalize::{AlsParams, KnnParams};
use serde::Deserialize;

/// Which trained recommender personal decisions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommenderKind {
    /// Implicit-feedback ALS (folded in from the customer's current history).
    Als,
    /// Item-item kNN.
    Knn,
}

/// How recommendations, actions and segments are made.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonalizeSettings {
    /// The purpose every personal decision is made under; interactions are kept only for
    /// customers with a basis for it.
    pub purpose: String,
    /// Which recommender decides.
    pub recommender: RecommenderKind,
    /// Interaction strength of each event name carrying products (`properties.product_id`,
    /// `properties.sku` or `properties.products[].product_id`); other events are not
    /// interactions.
    pub events: BTreeMap<String, f64>,
    /// ALS training.
    pub als: AlsParams,
    /// Item-kNN training.
    pub knn: KnnParams,
    /// Minutes between retrainings inside `serve`; 0 turns them off
    /// (`CONSENTRIC_PERSONALIZE_TRAIN_MINUTES`).
    pub train_every_minutes: u64,
    /// Seconds between refreshes, inside `serve`, of the segments of customers written to since
    /// the last; 0 turns them off.
    pub segment_refresh_seconds: u64,
    /// Minutes between full refreshes of every customer's segments inside `serve` (time-window
    /// conditions change as days pass); 0 turns them off.
    pub segment_full_refresh_minutes: u64,
    /// `[[personalize.actions]]`: when present, these replace the retail catalogue.
    pub actions: Option<Vec<Action>>,
    /// Items per decision when the caller does not say.
    pub default_limit: usize,
    /// Most items a decision may return.
    pub max_limit: usize,
}

impl Default for PersonalizeSettings {
    fn default() -> Self {
        let events = [
            ("Product Viewed", 1.0),
            ("Product Clicked", 1.0),
            ("Product Added", 2.0),
            ("Product Added to Wishlist", 2.0),
            ("Product Reviewed", 3.0),
            ("Order Completed", 4.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        PersonalizeSettings {
            purpose: "personalization".into(),
            recommender: RecommenderKind::Als,
            events,
            als: AlsParams::default(),
            knn: KnnParams::default(),
            train_every_minutes: 1440,
            segment_refresh_seconds: 10,
            segment_full_refresh_minutes: 1440,
            actions: None,
            default_limit: 10,
            max_limit: 100,
        }
    }
}

impl PersonalizeSettings {
    /// What ingest needs to keep interactions: their purpose and each event's weight.
    pub(crate) fn rules(&self) -> super::InteractionRules {
        super::InteractionRules {
            purpose: self.purpose.clone(),
            weights: self.events.clone(),
        }
    }

    /// The action catalogue in force.
    pub fn catalogue(&self) -> Vec<Action> {
        self.actions.clone().unwrap_or_else(retail_actions)
    }
}
