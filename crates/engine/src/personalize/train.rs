//! Training the recommenders on the customers the gate lets in.

use std::sync::Arc;

use consentric_personalize::{Als, Interaction, ItemKnn, Popularity, Sparse, Vocabulary};
use consentric_policy::{DataCategory, Grant};
use serde_json::json;

use super::models::{TrainReport, Trained, STORED_AS};
use crate::audit;
use crate::error::EngineError;
use crate::profiles::iso;

/// Whether a grant lets interactions (products browsed and bought) be read.
pub(crate) fn opens_interactions(grant: &Grant) -> bool {
    DataCategory::parse("user.behavior.purchase").is_ok_and(|c| grant.permits(&c))
}

/// What this service works on, handed to it by the context.
pub(crate) struct TrainingService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) personalize: &'a crate::personalize::Personalize,
    pub(crate) populations: crate::population::Populations<'a>,
}

impl TrainingService<'_> {
    /// Trains popularity, item-kNN and ALS on the interactions of every customer with a basis
    /// for the personalisation purpose, stores them with their training date and data window,
    /// and decides with them from now on. Audited, with how many customers were left out.
    ///
    /// # Errors
    /// Configuration (unknown purpose) or database faults.
    pub fn train_recommenders(&self, actor: &str) -> Result<TrainReport, EngineError> {
        let settings = &self.personalize.settings;
        let now = self.clock.now();
        let (grants, mut left_out) = self.populations.population_where(
            &settings.purpose,
            now,
            "personalize",
            opens_interactions,
        )?;
        let by_customer = self.store.interactions_for(&grants)?;
        // Customers in a fixed order, so the same data gives the same model.
        let mut customers: Vec<_> = by_customer.into_iter().collect();
        customers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        left_out += grants.len() - customers.len();
        let mut users = Vocabulary::default();
        let mut items = Vocabulary::default();
        let mut all = Vec::new();
        let mut window: Option<(i64, i64)> = None;
        for (profile, rows) in &customers {
            let user = users.intern(profile.as_str());
            for r in rows {
                all.push(Interaction {
                    user,
                    item: items.intern(&r.item),
                    weight: r.weight as f32,
                    at: r.last_at,
                });
                window = Some(window.map_or((r.last_at, r.last_at), |(a, b)| {
                    (a.min(r.last_at), b.max(r.last_at))
                }));
            }
        }
        let matrix = Sparse::of(&all, users.len(), items.len());
        let popularity = Popularity::train(&matrix);
        let knn = ItemKnn::train(&matrix, settings.knn);
        let mut times = Vec::new();
        let als = (users.len() >= 2 && items.len() >= 2)
            .then(|| Als::train(&matrix, settings.als, |_, d| times.push(d.as_secs_f64())));
        times.sort_by(f64::total_cmp);
        let trained = Trained {
            trained_at: now.timestamp_millis(),
            window,
            customers: users.len(),
            items: items.ids().to_vec(),
            vocabulary: items,
            popularity,
            knn,
            als,
        };
        let body = serde_json::to_string(&trained).map_err(|e| {
            EngineError::Store(consentric_store::StoreError::Corrupt(format!(
                "recommenders do not serialise: {e}"
            )))
        })?;
        let report = TrainReport {
            purpose: settings.purpose.clone(),
            customers: trained.customers,
            left_out,
            items: trained.items.len(),
            interactions: matrix.nnz(),
            als: trained.als.is_some(),
            als_iteration_seconds: times.get(times.len() / 2).copied(),
            window_from: window.map(|w| iso(w.0)),
            window_to: window.map(|w| iso(w.1)),
            trained_at: iso(trained.trained_at),
        };
        self.store.write(|tx| {
            tx.put_recommender(STORED_AS, &body, trained.trained_at)?;
            tx.announce(&consentric_store::Change::Recommenders)?;
            audit::append(
                tx,
                now.timestamp_millis(),
                actor,
                "recommenders.trained",
                None,
                &json!({"purpose": report.purpose, "customers": report.customers,
                        "left_out": report.left_out, "items": report.items,
                        "interactions": report.interactions}),
            )
        })?;
        self.personalize.set_models(Some(Arc::new(trained)));
        Ok(report)
    }

    /// Loads the last trained recommenders, so decisions survive a restart.
    pub(crate) fn load_recommenders(&self) -> Result<(), EngineError> {
        if let Some((body, _)) = self.store.recommender(STORED_AS)? {
            let trained: Trained = serde_json::from_str(&body).map_err(|e| {
                EngineError::Store(consentric_store::StoreError::Corrupt(format!(
                    "stored recommenders unreadable: {e}"
                )))
            })?;
            self.personalize.set_models(Some(Arc::new(trained.ready())));
        }
        let any = !self.store.segments()?.is_empty();
        self.personalize
            .has_segments
            .store(any, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}
