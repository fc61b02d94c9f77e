//! The engine's state and the hands that give it out: the store, the clock, the policy in
//! force, and what services keep between calls (caches, group commits, fitted and trained
//! models). Each service is a struct of borrowed parts in its own file (`ConsentService` takes
//! the store, clock, policy, lifecycle and personalisation state; `ApiKeys` the store, clock and
//! key cache), and one method here hands it exactly those parts, with the services it calls
//! built the same way. No service sees the whole context or imports this file; the façade
//! [`crate::Engine`] owns the context and asks it for the service each call needs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use consentric_store::{BackendKind, Store};

use crate::api_keys::ApiKeys;
use crate::cleanroom::Cleanroom;
use crate::clock::Clock;
use crate::dsr_settings::DsrSettings;
use crate::error::EngineError;
use crate::group_commit::GroupCommit;
use crate::ingest::IngestRequest;
use crate::ingest_cache::IngestCache;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::personalize::{DecisionOutcome, DecisionRequest, Personalize};
use crate::population::Populations;
use crate::population_cache::PopulationCache;
use crate::retention::Retention;
use consentric_policy::PolicySet;

/// The engine's ground and state (see the module's comment).
pub(crate) struct Context {
    /// Field paths that map to no data category, logged once each.
    pub(crate) unmapped_seen: Mutex<HashSet<String>>,
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    /// Keys verified within the last `api_keys::CACHE_LIFE`.
    pub(crate) key_cache: crate::api_keys::KeyCache,
    pub(crate) group_commit: GroupCommit<IngestRequest>,
    /// What ingest learnt in earlier transactions (identities, ledgers); see `ingest_cache`.
    pub(crate) ingest_cache: Mutex<IngestCache>,
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
    pub(crate) population_cache: PopulationCache,
    /// Clean-room settings and the secrets of sessions in flight.
    pub(crate) cleanroom: Cleanroom,
    /// What events from clients may claim (`[ingest]`).
    pub(crate) ingest_settings: crate::config::IngestSettings,
    /// This node among others on the same database.
    pub(crate) cluster: crate::cluster_state::ClusterState,
    /// The lifecycle summary computed last, for the console.
    pub(crate) summary_cache: crate::recent::Recent<crate::lifecycle::LifecycleSummary>,
    /// The console overview's counts, computed last.
    pub(crate) stats_cache: crate::recent::Recent<crate::console_stats::ConsoleStats>,
}

impl Context {
    /// The parts of the context `IngestService` works on.
    pub(crate) fn ingestion(&self) -> crate::ingest_commit::IngestService<'_> {
        crate::ingest_commit::IngestService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            lifecycle: &self.lifecycle,
            personalize: &self.personalize,
            group_commit: &self.group_commit,
            ingest_cache: &self.ingest_cache,
            metrics: &self.metrics,
            unmapped_seen: &self.unmapped_seen,
            ingest_settings: &self.ingest_settings,
        }
    }

    /// The parts of the context `GuestService` works on.
    pub(crate) fn cleanroom_guest_service(&self) -> crate::cleanroom::guest::GuestService<'_> {
        crate::cleanroom::guest::GuestService {
            store: &self.store,
            clock: &*self.clock,
            cleanroom: &self.cleanroom,
            populations: self.populations(),
            cleanroom_host: self.cleanroom_host(),
        }
    }

    /// The parts of the context `HostService` works on.
    pub(crate) fn cleanroom_host(&self) -> crate::cleanroom::host::HostService<'_> {
        crate::cleanroom::host::HostService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            cleanroom: &self.cleanroom,
            populations: self.populations(),
        }
    }

    /// The parts of the context `AnalyticsService` works on.
    pub(crate) fn analytics(&self) -> crate::analytics::AnalyticsService<'_> {
        crate::analytics::AnalyticsService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            lifecycle: &self.lifecycle,
            populations: self.populations(),
            exact_aggregates: self.exact_aggregates(),
        }
    }

    /// The parts of the context `ExactAggregates` works on.
    pub(crate) fn exact_aggregates(&self) -> crate::analytics::exact::ExactAggregates<'_> {
        crate::analytics::exact::ExactAggregates {
            store: &self.store,
            policy: &self.policy,
            segment_facts: self.segment_facts(),
        }
    }

    /// The parts of the context `DecisionService` works on.
    pub(crate) fn decisions_service(&self) -> crate::personalize::decide::DecisionService<'_> {
        crate::personalize::decide::DecisionService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            lifecycle: &self.lifecycle,
            personalize: &self.personalize,
            lifecycle_scores: self.lifecycle_scores(),
            decisions: &self.decisions,
        }
    }

    /// The parts of the context `TrainingService` works on.
    pub(crate) fn training(&self) -> crate::personalize::train::TrainingService<'_> {
        crate::personalize::train::TrainingService {
            store: &self.store,
            clock: &*self.clock,
            personalize: &self.personalize,
            populations: self.populations(),
        }
    }

    /// The parts of the context `SegmentService` works on.
    pub(crate) fn segment_service(&self) -> crate::personalize::segments::SegmentService<'_> {
        crate::personalize::segments::SegmentService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            personalize: &self.personalize,
            segment_facts: self.segment_facts(),
            memberships: self.memberships(),
            populations: self.populations(),
        }
    }

    /// The parts of the context `MembershipService` works on.
    pub(crate) fn memberships(&self) -> crate::personalize::membership::MembershipService<'_> {
        crate::personalize::membership::MembershipService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            personalize: &self.personalize,
            segment_facts: self.segment_facts(),
        }
    }

    /// Reading a customer's segment facts, given what it needs.
    pub(crate) fn segment_facts(&self) -> crate::personalize::facts::SegmentFacts<'_> {
        crate::personalize::facts::SegmentFacts {
            store: &self.store,
            policy: &self.policy,
            lifecycle: &self.lifecycle,
            lifecycle_scores: self.lifecycle_scores(),
        }
    }

    /// The parts of the context `DsrService` works on.
    pub(crate) fn requests(&self) -> crate::dsr::DsrService<'_> {
        crate::dsr::DsrService {
            store: &self.store,
            clock: &*self.clock,
            dsr_settings: &self.dsr_settings,
            notifier: &*self.notifier,
            consent_service: self.consent_service(),
            erasure: self.erasure(),
            exports: self.exports(),
        }
    }

    /// The parts of the context the console's operators work on.
    pub(crate) fn operators(&self) -> crate::operators::Operators<'_> {
        crate::operators::Operators {
            store: &self.store,
            clock: &*self.clock,
        }
    }

    /// The parts of the context the privacy centre works on.
    pub(crate) fn privacy_centre(&self) -> crate::privacy_centre::PrivacyCentre<'_> {
        crate::privacy_centre::PrivacyCentre {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            notifier: &self.notifier,
            consent_service: self.consent_service(),
            erasure: self.erasure(),
            exports: self.exports(),
            zip: self.zip_export(),
            access: self.access(),
            requests: self.requests(),
        }
    }

    /// The parts of the context `ZipExport` works on.
    pub(crate) fn zip_export(&self) -> crate::export_zip::ZipExport<'_> {
        crate::export_zip::ZipExport {
            exports: self.exports(),
        }
    }

    /// The parts of the context `ExportService` works on.
    pub(crate) fn exports(&self) -> crate::export::ExportService<'_> {
        crate::export::ExportService {
            store: &self.store,
            access: self.access(),
            consent_service: self.consent_service(),
            recipients: self.recipients(),
        }
    }

    /// The parts of the context `LifecycleViews` works on.
    pub(crate) fn lifecycle_views(&self) -> crate::lifecycle::view::LifecycleViews<'_> {
        crate::lifecycle::view::LifecycleViews {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            lifecycle: &self.lifecycle,
            lifecycle_scores: self.lifecycle_scores(),
            summary_cache: &self.summary_cache,
        }
    }

    /// The parts of the context `RecomputeService` works on.
    pub(crate) fn placement(&self) -> crate::lifecycle::recompute::RecomputeService<'_> {
        crate::lifecycle::recompute::RecomputeService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            lifecycle: &self.lifecycle,
        }
    }

    /// Fitting the value models, given what it needs.
    pub(crate) fn fitting(&self) -> crate::lifecycle::fit::FitService<'_> {
        crate::lifecycle::fit::FitService {
            store: &self.store,
            clock: &*self.clock,
            lifecycle: &self.lifecycle,
            lifecycle_scores: self.lifecycle_scores(),
        }
    }

    /// The parts of the context `LifecycleScores` works on.
    pub(crate) fn lifecycle_scores(&self) -> crate::lifecycle::service::LifecycleScores<'_> {
        crate::lifecycle::service::LifecycleScores {
            store: &self.store,
            lifecycle: &self.lifecycle,
            populations: self.populations(),
        }
    }

    /// The parts of the context `ConsentService` works on.
    pub(crate) fn consent_service(&self) -> crate::consent::ConsentService<'_> {
        crate::consent::ConsentService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            lifecycle: &self.lifecycle,
            personalize: &self.personalize,
        }
    }

    /// The parts of the context `RectificationService` works on.
    pub(crate) fn rectification(&self) -> crate::rectification::RectificationService<'_> {
        crate::rectification::RectificationService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            access: self.access(),
        }
    }

    /// The parts of the context `RotationService` works on.
    pub(crate) fn rotation(&self) -> crate::rotation::RotationService<'_> {
        crate::rotation::RotationService {
            store: &self.store,
            erasure: self.erasure(),
        }
    }

    /// The parts of the context `ErasureService` works on.
    pub(crate) fn erasure(&self) -> crate::erasure::ErasureService<'_> {
        crate::erasure::ErasureService {
            store: &self.store,
            clock: &*self.clock,
            notifier: &*self.notifier,
        }
    }

    /// The parts of the context `AccessService` works on.
    pub(crate) fn access(&self) -> crate::access::AccessService<'_> {
        crate::access::AccessService {
            store: &self.store,
            clock: &*self.clock,
        }
    }

    /// The parts of the context `ViewService` works on.
    pub(crate) fn views(&self) -> crate::views::ViewService<'_> {
        crate::views::ViewService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
        }
    }

    /// The parts of the context `RecipientService` works on.
    pub(crate) fn recipients(&self) -> crate::recipients::RecipientService<'_> {
        crate::recipients::RecipientService {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            cleanroom: &self.cleanroom,
        }
    }

    /// Who has a basis for each purpose, given what finding out needs.
    pub(crate) fn populations(&self) -> Populations<'_> {
        Populations {
            store: &self.store,
            policy: &self.policy,
            population_cache: &self.population_cache,
        }
    }

    /// The retention sweep, given what it needs.
    /// The parts of the context `WithdrawalGrace` works on.
    pub(crate) fn withdrawal_grace(&self) -> crate::withdrawal_grace::WithdrawalGrace<'_> {
        crate::withdrawal_grace::WithdrawalGrace {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            derived: crate::withdrawal::Derived {
                stage_purpose: &self.lifecycle.settings.stage_purpose,
                interactions_purpose: &self.personalize.interactions.purpose,
            },
        }
    }

    pub(crate) fn retention(&self) -> Retention<'_> {
        Retention {
            store: &self.store,
            clock: &*self.clock,
            policy: &self.policy,
            decisions_purpose: &self.personalize.settings.purpose,
        }
    }

    /// The key service, given what it needs.
    pub(crate) fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys {
            store: &self.store,
            clock: &*self.clock,
            key_cache: &self.key_cache,
        }
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
