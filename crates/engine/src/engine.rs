use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use consentric_model::{Event, IdentityKind, ProfileId};
use consentric_store::{ApiKeyRecord, BackendKind, SqliteOptions, Store, StoreError, Unflushed};
use consentric_vault::{MasterKeys, Vault};

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::dsr::DsrSettings;
use crate::error::EngineError;
use crate::group_commit::GroupCommit;
use crate::ingest::{self, BatchState, IngestReport, IngestRequest};
use crate::ingest_cache::IngestCache;
use crate::keys::{hash_secret, KeyInfo, NewKey, Principal, Scope};
use crate::lifecycle::{Lifecycle, LifecycleSettings};
use crate::metrics::Metrics;
use crate::notify::{Notifier, Outbox};
use crate::personalize::{DecisionOutcome, DecisionRequest, Personalize, PersonalizeSettings};
use crate::privacy::PolicySet;
use crate::profiles::{iso, ProfileRef};

/// Most events one read returns.
pub const MAX_EVENTS_PER_READ: u32 = 1000;

/// The application: every use case is a method here. Cheap to share behind an `Arc`.
pub struct Engine {
    pub(crate) store: Store,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    /// Verified key hashes; keys cannot be revoked yet, so a verified key stays valid.
    key_cache: RwLock<HashMap<String, Principal>>,
    group_commit: GroupCommit<IngestRequest>,
    /// What ingest learnt in earlier transactions (identities, ledgers); see `ingest_cache`.
    ingest_cache: Mutex<IngestCache>,
    /// Reaches customers who file requests (one-time codes).
    pub(crate) notifier: Arc<dyn Notifier>,
    /// Deadlines and verification of data-subject requests.
    pub(crate) dsr_settings: DsrSettings,
    pub(crate) policy: PolicySet,
    /// Stage rules and fitted value models.
    pub(crate) lifecycle: Lifecycle,
    /// Recommenders, the action catalogue, segments.
    pub(crate) personalize: Personalize,
    /// Concurrent decisions share a commit, as ingest batches do.
    pub(crate) decisions: GroupCommit<DecisionRequest, DecisionOutcome>,
    /// Who has a basis for each purpose, until a commit or the clock could change it.
    pub(crate) population_cache: crate::population::PopulationCache,
    /// Clean-room settings and the secrets of sessions in flight.
    pub(crate) cleanroom: crate::cleanroom::Cleanroom,
}

/// Who sent an ingest request and what its transport said about consent.
#[derive(Debug, Clone, Default)]
pub struct IngestContext {
    /// The request carried `Sec-GPC: 1` (Global Privacy Control).
    pub gpc: bool,
    /// Who sent it, for the audit log (an API key id, `import`, …).
    pub actor: String,
}

impl Engine {
    /// An engine over `store` with `clock` and the built-in retail policy.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Engine::with_policy(store, clock, PolicySet::retail_defaults())
    }

    /// An engine with a configured policy.
    pub fn with_policy(store: Store, clock: Arc<dyn Clock>, policy: PolicySet) -> Self {
        Engine {
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
        self.policy.stage_purpose = settings.stage_purpose.clone();
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
        self.policy.interactions = self.personalize.rules();
        Ok(self)
    }

    /// Loads the last fitted models, so scores survive a restart.
    fn with_stored_models(self) -> Self {
        match self.store.models() {
            Ok(rows) => {
                let scorer = crate::lifecycle::scorer_from(&rows, &self.lifecycle);
                self.lifecycle.set_scorer(scorer.map(Arc::new));
            }
            Err(e) => tracing::warn!(error = %e, "stored lifecycle models not read"),
        }
        if let Err(e) = self.load_recommenders() {
            tracing::warn!(error = %e, "stored recommenders not read");
        }
        self
    }

    /// Opens the configured store (PostgreSQL if a URL is set, else SQLite in the data
    /// directory) with the system clock.
    ///
    /// # Errors
    /// If the store cannot be opened or migrated.
    pub fn open(settings: &Settings) -> Result<Self, EngineError> {
        let store = match &settings.storage.database_url {
            Some(url) => Store::connect_postgres(url)?,
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
        let store = store.with_vault(Arc::new(Vault::new(master)));
        let policy = PolicySet::new(
            settings.purposes.clone(),
            &settings.schema,
            &settings.consent,
        )?;
        let engine = Engine::with_policy(store, Arc::new(SystemClock), policy)
            .with_dsr_settings(settings.dsr.clone())
            .with_lifecycle(settings.lifecycle.clone())?
            .with_personalize(settings.personalize.clone())?
            .with_cleanroom(settings.cleanroom.clone())?;
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

    /// This engine with other request deadlines.
    pub fn with_dsr_settings(mut self, settings: DsrSettings) -> Self {
        self.dsr_settings = settings;
        self
    }

    /// The engine's current time (the injected clock's).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Empties SQLite's write-ahead log into the database file (see `Store::checkpoint`).
    ///
    /// # Errors
    /// A database fault.
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        Ok(self.store.checkpoint()?)
    }

    /// Which database is behind the engine.
    pub fn backend(&self) -> BackendKind {
        self.store.kind()
    }

    /// Operational metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stores parsed events; duplicates (known message ids) are acknowledged and skipped.
    /// Concurrent calls are committed together (group commit); when this returns `Ok`, the
    /// events are committed, and a batch is stored whole or not at all.
    ///
    /// # Errors
    /// A database fault; then nothing of the batch is stored.
    pub fn ingest(&self, events: Vec<Event>) -> Result<IngestReport, EngineError> {
        self.ingest_with(
            events,
            &IngestContext {
                gpc: false,
                actor: "ingest".into(),
            },
        )
    }

    /// [`Engine::ingest`] with the request's consent signals (`Sec-GPC`) and sender. Consent
    /// carried by the events (Segment's consent object, TCF strings) is read first: a malformed
    /// signal refuses the whole request before anything is written.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming the event and field of a malformed signal; a database
    /// fault (nothing of the batch is stored).
    pub fn ingest_with(
        &self,
        events: Vec<Event>,
        ctx: &IngestContext,
    ) -> Result<IngestReport, EngineError> {
        let started = Instant::now();
        let signals = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                self.policy.signals(e, ctx.gpc).map_err(|err| match err {
                    EngineError::Invalid { field, message } if events.len() > 1 => {
                        EngineError::Invalid {
                            field: format!("batch[{i}].{field}"),
                            message,
                        }
                    }
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let prepared = events
            .into_iter()
            .zip(&signals)
            .map(|(e, s)| self.policy.prepare(e, s))
            .collect::<Result<Vec<_>, _>>()?;
        let request = IngestRequest {
            prepared,
            signals,
            actor: ctx.actor.clone(),
        };
        let outcome =
            self.group_commit
                .submit(request, |group| self.commit_group(group), |p| self.flush(p));
        if let Ok(report) = &outcome {
            self.metrics
                .record_ingest(report.accepted, report.duplicates, started.elapsed());
            self.metrics
                .record_dropped(report.fields_unmapped, report.fields_without_basis);
        }
        outcome
    }

    /// Makes a group commit's transaction durable, if it committed one.
    pub(crate) fn flush(&self, pending: Unflushed) -> Result<(), EngineError> {
        Ok(self.store.flush(pending)?)
    }

    /// Commits a group of ingest requests in one transaction; what it returns is committed
    /// but must be flushed (the `Unflushed`) before anyone is answered. A failed group is
    /// retried request by request, each flushed before it returns.
    fn commit_group(
        &self,
        group: &[IngestRequest],
    ) -> (Vec<Result<IngestReport, EngineError>>, Unflushed) {
        let now = self.now().timestamp_millis();
        // Only the group-commit leader gets here, so the lock is never contended. A leader
        // that panicked may have left it half-updated: then it starts again, empty.
        let mut cache = match self.ingest_cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => {
                let mut cache = poisoned.into_inner();
                cache.clear();
                self.ingest_cache.clear_poison();
                cache
            }
        };
        // An import's commit (2,500 events) rewrites thousands of pages: it gets the large page
        // cache. API requests (Segment's 500 KB batches) committed together are usually far
        // smaller and keep the writer's small one, which makes their commits cheaper.
        let events: usize = group.iter().map(|r| r.prepared.len()).sum();
        let work = |tx: &mut consentric_store::WriteTx<'_>| {
            let token = tx.change_token()?;
            cache.validate(token);
            let mut state = BatchState::new(&cache, &self.lifecycle);
            let reports = group
                .iter()
                .map(|req| ingest::ingest(tx, &mut state, req, &self.policy, now))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let touched = state.take_touched();
            Ok::<_, StoreError>((reports, token, touched, state.learnt()))
        };
        let together = self
            .store
            .write_unflushed(events >= crate::import::IMPORT_BATCH, work);
        match together {
            Ok(((reports, token, touched, learnt), pending)) => {
                cache.absorb(token, learnt);
                self.personalize.touched(touched);
                (reports.into_iter().map(Ok).collect(), pending)
            }
            Err(e) if group.len() == 1 => {
                cache.clear();
                (vec![Err(e.into())], Unflushed::nothing())
            }
            Err(e) => {
                cache.clear();
                tracing::warn!(error = %e, requests = group.len(), "group commit failed; retrying each request alone");
                let empty = IngestCache::default();
                let each = group
                    .iter()
                    .map(|req| {
                        self.store
                            .write(|tx| {
                                let mut state = BatchState::new(&empty, &self.lifecycle);
                                let report =
                                    ingest::ingest(tx, &mut state, req, &self.policy, now)?;
                                Ok::<_, StoreError>((report, state.take_touched()))
                            })
                            .map(|(report, touched)| {
                                self.personalize.touched(touched);
                                report
                            })
                            .map_err(EngineError::from)
                    })
                    .collect();
                (each, Unflushed::nothing())
            }
        }
    }

    /// The profile a reference names now (following merges).
    ///
    /// # Errors
    /// [`EngineError::NotFound`] if nothing matches.
    pub fn find_profile(&self, r: &ProfileRef) -> Result<ProfileId, EngineError> {
        self.store
            .snapshot(|s| find_profile_in(s, r))?
            .ok_or_else(|| EngineError::NotFound("profile".into()))
    }

    /// Creates an API key; its secret is in the returned value and nowhere else.
    ///
    /// # Errors
    /// A database fault or a failing random source.
    pub fn create_key(&self, scope: Scope, label: Option<&str>) -> Result<NewKey, EngineError> {
        let key = NewKey::generate(scope)?;
        let record = ApiKeyRecord {
            key_id: key.key_id.clone(),
            secret_hash: hash_secret(key.secret()),
            scope: scope.as_str().to_owned(),
            label: label.map(str::to_owned),
            created_at: self.now().timestamp_millis(),
            revoked_at: None,
        };
        self.store.write(|tx| tx.insert_api_key(&record))?;
        Ok(key)
    }

    /// The principal of `secret` if this engine verified it before (keys cannot be revoked
    /// yet, so it is still valid), without touching the database: a server answers the common
    /// case without handing the request to a blocking thread. `None` means "ask
    /// [`Engine::authenticate`]", not "unknown".
    pub fn authenticate_cached(&self, secret: &str) -> Option<Principal> {
        self.verified(&hash_secret(secret))
    }

    fn verified(&self, hash: &str) -> Option<Principal> {
        self.key_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }

    /// The key with this secret, or `None` if there is no such (live) key.
    ///
    /// # Errors
    /// A database fault.
    pub fn authenticate(&self, secret: &str) -> Result<Option<Principal>, EngineError> {
        let hash = hash_secret(secret);
        if let Some(p) = self.verified(&hash) {
            return Ok(Some(p));
        }
        let Some(record) = self.store.api_key_by_hash(&hash)? else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        let principal = Principal {
            key_id: record.key_id,
            scope: Scope::parse(&record.scope)?,
        };
        self.key_cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, principal.clone());
        Ok(Some(principal))
    }

    /// Every key (without secrets): id, scope, label, creation time.
    ///
    /// # Errors
    /// A database fault.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, EngineError> {
        Ok(self
            .store
            .api_keys()?
            .into_iter()
            .map(|k| KeyInfo {
                key_id: k.key_id,
                scope: k.scope,
                label: k.label,
                created_at: iso(k.created_at),
            })
            .collect())
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// The database's fault.
    pub fn ready(&self) -> Result<(), EngineError> {
        Ok(self.store.ping()?)
    }

    /// Stored events and live profiles.
    ///
    /// # Errors
    /// A database fault.
    pub fn totals(&self) -> Result<(u64, u64), EngineError> {
        Ok((self.store.event_count()?, self.store.profile_count()?))
    }
}

/// The profile `r` names, read on snapshot `s` (see [`Engine::find_profile`]).
pub(crate) fn find_profile_in(
    s: &mut consentric_store::Snapshot<'_>,
    r: &ProfileRef,
) -> Result<Option<ProfileId>, consentric_store::StoreError> {
    match r {
        ProfileRef::Identity(id) => s.find_identity(id),
        ProfileRef::Profile(p) => s.resolve_profile(p),
        ProfileRef::Any(raw) => {
            for kind in [IdentityKind::UserId, IdentityKind::AnonymousId] {
                let id = consentric_model::Identity {
                    kind,
                    value: raw.clone(),
                };
                if let Some(p) = s.find_identity(&id)? {
                    return Ok(Some(p));
                }
            }
            match ProfileId::parse(raw) {
                Some(p) => s.resolve_profile(&p),
                None => Ok(None),
            }
        }
    }
}
