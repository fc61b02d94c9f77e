//! How a [`Context`] is put together: from a store and a clock, or from the configuration, each
//! service given its own settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use consentric_store::{SqliteOptions, Store};
use consentric_vault::{MasterKeys, Vault};

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::context::Context;
use crate::dsr_settings::DsrSettings;
use crate::error::EngineError;
use crate::group_commit::GroupCommit;
use crate::ingest_cache::IngestCache;
use crate::lifecycle::{Lifecycle, LifecycleSettings};
use crate::metrics::Metrics;
use crate::notify::{Notifier, Outbox};
use crate::personalize::{Personalize, PersonalizeSettings};
use consentric_policy::PolicySet;

impl Context {
    /// An engine over `store` with `clock` and the built-in retail policy.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Context::with_policy(store, clock, PolicySet::retail_defaults())
    }

    /// An engine with a configured policy.
    pub fn with_policy(store: Store, clock: Arc<dyn Clock>, policy: PolicySet) -> Self {
        let cluster = crate::cluster_state::ClusterState::new(
            crate::config::ClusterSettings::default().node_name(),
            store.kind(),
        );
        Context {
            unmapped_seen: Mutex::new(std::collections::HashSet::new()),
            store,
            clock,
            metrics: Metrics::new(),
            key_cache: RwLock::new(HashMap::new()),
            group_commit: GroupCommit::default(),
            ingest_cache: Mutex::new(IngestCache::default()),
            notifier: Arc::new(Outbox::default()),
            dsr_settings: DsrSettings::default(),
            lifecycle: Lifecycle::new(LifecycleSettings::default())
                .unwrap_or_else(|e| unreachable!("the retail rules are valid: {e}")),
            personalize: Personalize::new(PersonalizeSettings::default())
                .unwrap_or_else(|e| unreachable!("the retail catalogue is valid: {e}")),
            decisions: GroupCommit::default(),
            population_cache: Default::default(),
            cleanroom: crate::cleanroom::Cleanroom::new(Default::default()),
            ingest_settings: Default::default(),
            cluster,
            summary_cache: crate::recent::Recent::default(),
            stats_cache: crate::recent::Recent::default(),
            policy,
        }
        .with_stored_models()
    }

    /// This engine with other lifecycle settings (rules, purposes, horizons).
    ///
    /// # Errors
    /// [`EngineError::Config`] for rules that cannot hold or an unknown purpose.
    pub fn with_lifecycle(mut self, settings: LifecycleSettings) -> Result<Self, EngineError> {
        for purpose in [&settings.stage_purpose, &settings.analytics_purpose] {
            if self.policy.registry.get(purpose).is_err() {
                return Err(EngineError::Config(format!(
                    "[lifecycle] names the unknown purpose `{purpose}`"
                )));
            }
        }
        // The models were read when the engine was made; only the horizons they score with
        // come from the settings.
        let scorer = self.lifecycle.scorer().map(|s| {
            Arc::new(crate::lifecycle::Scorer {
                clv: settings.clv,
                churn: settings.churn,
                ..(*s).clone()
            })
        });
        self.lifecycle = Lifecycle::new(settings)?;
        self.lifecycle.set_scorer(scorer);
        Ok(self)
    }

    /// Clean-room sessions run with `settings` (`[cleanroom]`).
    ///
    /// # Errors
    /// [`EngineError::Config`] for an unknown purpose or a weak Paillier size.
    pub fn with_cleanroom(
        mut self,
        settings: crate::cleanroom::CleanroomSettings,
    ) -> Result<Self, EngineError> {
        if self.policy.registry.get(&settings.purpose).is_err() {
            return Err(EngineError::Config(format!(
                "[cleanroom] names the unknown purpose `{}`",
                settings.purpose
            )));
        }
        if !consentric_pets::paillier::SIZES.contains(&settings.paillier_bits) {
            return Err(EngineError::Config(format!(
                "[cleanroom] paillier_bits must be one of {:?}",
                consentric_pets::paillier::SIZES
            )));
        }
        self.cleanroom = crate::cleanroom::Cleanroom::new(settings);
        Ok(self)
    }

    /// This engine with other personalisation settings (purpose, events, recommenders,
    /// actions).
    ///
    /// # Errors
    /// [`EngineError::Config`] for an unknown purpose or an unusable catalogue.
    pub fn with_personalize(mut self, settings: PersonalizeSettings) -> Result<Self, EngineError> {
        let mut purposes = vec![settings.purpose.as_str()];
        let catalogue = settings.catalogue();
        purposes.extend(catalogue.iter().filter_map(|a| a.purpose.as_deref()));
        for purpose in purposes {
            if self.policy.registry.get(purpose).is_err() {
                return Err(EngineError::Config(format!(
                    "[personalize] names the unknown purpose `{purpose}`"
                )));
            }
        }
        let models = self.personalize.models();
        let has_segments = self
            .personalize
            .has_segments
            .load(std::sync::atomic::Ordering::Relaxed);
        self.personalize = Personalize::new(settings)?;
        self.personalize.set_models(models);
        self.personalize
            .has_segments
            .store(has_segments, std::sync::atomic::Ordering::Relaxed);
        Ok(self)
    }

    /// Loads the last fitted models, so scores survive a restart.
    fn with_stored_models(self) -> Self {
        self.load_scorer();
        if let Err(e) = self.training().load_recommenders() {
            tracing::warn!(error = %e, "stored recommenders not read");
        }
        self
    }

    /// Loads the last fitted lifecycle models (at start, or when another node fitted them).
    pub(crate) fn load_scorer(&self) {
        match self.store.models() {
            Ok(rows) => {
                let scorer = crate::lifecycle::scorer_from(&rows, &self.lifecycle);
                self.lifecycle.set_scorer(scorer.map(Arc::new));
            }
            Err(e) => tracing::warn!(error = %e, "stored lifecycle models not read"),
        }
    }

    /// Opens the configured store (PostgreSQL if a URL is set, else SQLite in the data
    /// directory) with the system clock.
    ///
    /// # Errors
    /// If the store cannot be opened or migrated.
    pub fn open(settings: &Settings) -> Result<Self, EngineError> {
        let store = match &settings.storage.database_url {
            Some(url) => Store::connect_postgres(url, settings.storage.pool_size)?,
            None => Store::open_sqlite(
                &settings.storage.data_dir,
                SqliteOptions {
                    synchronous_full: settings.storage.sqlite_synchronous == "full",
                },
            )?,
        };
        // The master keys live beside the data directory's database (or in the environment);
        // with PostgreSQL the data directory holds only them.
        let master = MasterKeys::load_or_create(&settings.storage.data_dir)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let vault = Arc::new(Vault::new(master));
        // Every process on a database must hold the same master keys: with others, it would
        // find no customer (blind indexes differ) and make a second profile for each.
        let check = vault.keyed_hash("master-key-check", &[b"consentric"]);
        let store = store.with_vault(vault);
        if !store.master_key_matches(&check)? {
            return Err(EngineError::Config(
                "the master keys differ from those this database was written with: every node \
                 on one database needs the same master.key (or CONSENTRIC_MASTER_KEY)"
                    .into(),
            ));
        }
        let policy = PolicySet::new(
            settings.purposes.clone(),
            &settings.schema,
            &settings.consent,
        )
        .map_err(|e| EngineError::Config(e.to_string()))?;
        let mut engine = Context::with_policy(store, Arc::new(SystemClock), policy);
        engine.cluster = crate::cluster_state::ClusterState::new(
            settings.cluster.node_name(),
            engine.store.kind(),
        );
        if engine.store.kind() == consentric_store::BackendKind::Postgres {
            engine.metrics = Metrics::of_node(Some(&engine.cluster.node));
        }
        let engine = engine
            .with_dsr_settings(settings.dsr.clone())
            .with_lifecycle(settings.lifecycle.clone())?
            .with_personalize(settings.personalize.clone())?
            .with_cleanroom(settings.cleanroom.clone())?
            .with_ingest_settings(settings.ingest.clone());
        let notifier = crate::notify::SmtpNotifier::from_settings(&settings.notify)
            .map_err(EngineError::Config)?;
        Ok(match notifier {
            Some(smtp) => engine.with_notifier(Arc::new(smtp)),
            None => engine,
        })
    }

    /// This engine, reaching customers through `notifier` (one-time codes of requests). The
    /// default keeps messages in an [`Outbox`] that nobody reads.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// This engine with other limits on what clients' events may claim.
    pub fn with_ingest_settings(mut self, settings: crate::config::IngestSettings) -> Self {
        self.ingest_settings = settings;
        self
    }

    /// This engine with other request deadlines.
    pub fn with_dsr_settings(mut self, settings: DsrSettings) -> Self {
        self.dsr_settings = settings;
        self
    }
}
