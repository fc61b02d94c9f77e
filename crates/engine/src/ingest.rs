//! Ingestion: parsed events in, one transaction out.
//!
//! For each event, in order: skip it if its message id is stored (exactly-once), resolve its
//! identities to a profile (creating, attaching or merging), store it, set identify traits
//! unless a later value is stored, and add it to the profile's counters. The whole batch
//! commits together, so a batch is stored whole or not at all, and nothing is acknowledged
//! before the commit returns.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use consentric_model::{Call, Event, Identity, IdentityKind, MessageId, ProfileId};
use consentric_store::{
    ConsentRow, CounterRow, NewEvent, ProfileCounters, StoreError, TraitRow, WriteTx,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use consentric_policy::ConsentState;

use crate::audit;
use crate::ingest_cache::{IngestCache, Learnt};
use crate::ledger::to_records;
use crate::lifecycle::{self, CustomerFacts, Lifecycle, Scorer};
use crate::personalize::InteractionRules;
use crate::withdrawal;
use consentric_policy::{Minimal, PolicySet, Prepared, Signal};

/// The e-commerce Spec's purchase event; it drives the order and revenue counters.
pub(crate) use consentric_model::import_lines::ORDER_COMPLETED;

/// Events per transaction during import, and the size from which a group commit gets the large
/// page cache. Larger transactions write each B-tree page they touch once per commit rather
/// than once per thousand events (identities are stored by blind index, so their keys are
/// random); much larger ones take the import's peak memory past its 200 MB budget
/// (docs/benchmarks.md).
pub const IMPORT_BATCH: usize = 2500;

/// Who sent an ingest request and what its transport said about consent.
#[derive(Debug, Clone, Default)]
pub struct IngestContext {
    /// The request carried `Sec-GPC: 1` (Global Privacy Control).
    pub gpc: bool,
    /// Who sent it, for the audit log (an API key id, `import`, …).
    pub actor: String,
    /// Whether it came with a public browser key or from a trusted server.
    pub origin: Origin,
}

/// Where a request came from, which decides what its events may claim (see
/// `PolicySet::limit_browser_event`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// A secret server key, the admin API, an import: the business vouches for what it sends.
    #[default]
    Server,
    /// A public browser key: contact details and grants about a user id need a valid user
    /// hash, a withdrawal's deletion waits for its grace period, and merging two customers
    /// who both have a user id is refused.
    Browser,
}

/// What an ingest call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Events stored for the first time.
    pub accepted: u64,
    /// Events whose message id was already stored (acknowledged, not stored again).
    pub duplicates: u64,
    /// Fields not stored because no rule maps them to a data category.
    pub fields_unmapped: u64,
    /// Fields not stored because no purpose that may use their category had a legal basis.
    pub fields_without_basis: u64,
    /// Events dropped because an identity they carry belongs to an erased customer.
    pub erased: u64,
}

/// Per-transaction state: identity look-ups already made, ledgers read and counter deltas
/// not yet written, so a batch of one customer's events touches their profile row once. It
/// reads through to what earlier transactions learnt (`cache`), except about profiles merged
/// in this one.
pub(crate) struct BatchState<'c> {
    cache: &'c IngestCache,
    /// Stage rules and the models they may consult, fixed for the transaction.
    life: &'c Lifecycle,
    /// Which events are item interactions, and the purpose they are kept for.
    rules: &'c InteractionRules,
    scorer: Option<std::sync::Arc<Scorer>>,
    /// Order amounts per profile and day, not yet written.
    purchases: HashMap<(ProfileId, i64), f64>,
    /// Counts of rule-named events per profile, not yet written.
    counted: HashMap<(ProfileId, String), u64>,
    /// Item interactions (summed weight, latest time) per profile and item, not yet written.
    interactions: HashMap<(ProfileId, String), (f64, i64)>,
    /// Profiles written to since the last placement: their stage may have changed.
    to_place: HashSet<ProfileId>,
    /// Every profile written to in the transaction: their segments may have changed.
    touched: HashSet<ProfileId>,
    /// What placement knows of customers, kept in step with this transaction's writes.
    facts: HashMap<ProfileId, CustomerFacts>,
    /// Customers whose cached facts may not be used (a withdrawal here may have deleted their
    /// stage).
    facts_dirty: HashSet<ProfileId>,
    identities: HashMap<Identity, ProfileId>,
    pending: HashMap<ProfileId, ProfileCounters>,
    consent: HashMap<ProfileId, Vec<ConsentRow>>,
    /// `consent` folded, per profile; dropped whenever its rows change.
    folded: HashMap<ProfileId, ConsentState>,
    merged_from: HashSet<ProfileId>,
    merged_into: HashSet<ProfileId>,
    /// Identities looked up for this transaction and found nowhere (neither known nor erased):
    /// no other writer can add them while it holds their locks.
    absent: HashSet<Identity>,
    /// Identities looked up for this transaction that belonged to an erased customer.
    erased: HashSet<Identity>,
    /// Events resolved and shaped, inserted together at the next flush.
    events: Vec<Pending<'c>>,
    /// Identify traits not yet written: per profile and name, the value of the latest event
    /// (the later of two at one time), its time and message id.
    traits: HashMap<(ProfileId, String), (String, i64, MessageId)>,
    /// Profiles known to have no withdrawal waiting for its grace period: a server's signals
    /// for them need not try to confirm one.
    no_withdrawal_waiting: HashSet<ProfileId>,
    /// Events of the current request stored, and found already stored, so far.
    accepted: u64,
    duplicates: u64,
}

/// An event resolved to its profile and shaped, waiting to be inserted with the others of its
/// request: one statement for all of them where the database is a server.
struct Pending<'c> {
    profile: ProfileId,
    event: Cow<'c, Event>,
    payload: Cow<'c, str>,
}

impl<'c> BatchState<'c> {
    /// Fresh state over `cache` (empty if the cache may not be used).
    pub(crate) fn new(
        cache: &'c IngestCache,
        life: &'c Lifecycle,
        rules: &'c InteractionRules,
    ) -> Self {
        BatchState {
            cache,
            life,
            rules,
            scorer: life.scorer(),
            purchases: HashMap::new(),
            counted: HashMap::new(),
            interactions: HashMap::new(),
            to_place: HashSet::new(),
            touched: HashSet::new(),
            facts: HashMap::new(),
            facts_dirty: HashSet::new(),
            identities: HashMap::new(),
            pending: HashMap::new(),
            consent: HashMap::new(),
            folded: HashMap::new(),
            merged_from: HashSet::new(),
            merged_into: HashSet::new(),
            absent: HashSet::new(),
            erased: HashSet::new(),
            events: Vec::new(),
            traits: HashMap::new(),
            no_withdrawal_waiting: HashSet::new(),
            accepted: 0,
            duplicates: 0,
        }
    }

    /// Looks up, in one go, the identities the transaction will resolve that neither it nor
    /// the cache knows, so that resolving them later reads nothing.
    pub(crate) fn prefetch(
        &mut self,
        tx: &mut WriteTx<'_>,
        named: &[Identity],
    ) -> Result<(), StoreError> {
        let mut ask: Vec<Identity> = named
            .iter()
            .filter(|id| {
                !self.identities.contains_key(*id) && !self.cache.identities.contains_key(*id)
            })
            .cloned()
            .collect();
        ask.sort_unstable();
        ask.dedup();
        let found = tx.find_identities(&ask)?;
        for (id, p, has_consent) in found.known {
            if !has_consent {
                self.consent.entry(p.clone()).or_default();
            }
            self.identities.insert(id, p);
        }
        self.erased.extend(found.erased);
        self.no_withdrawal_waiting
            .extend(found.no_withdrawal_waiting);
        for id in ask {
            if !self.identities.contains_key(&id) && !self.erased.contains(&id) {
                self.absent.insert(id);
            }
        }
        Ok(())
    }

    /// The profiles this transaction wrote to (taken, so it is asked once).
    pub(crate) fn take_touched(&mut self) -> HashSet<ProfileId> {
        std::mem::take(&mut self.touched)
    }

    /// What this transaction learnt, for the cache once it has committed.
    pub(crate) fn learnt(self) -> Learnt {
        Learnt {
            identities: self.identities,
            consent: self.consent,
            folded: self.folded,
            merged_from: self.merged_from,
            merged_into: self.merged_into,
            facts: self.facts,
            facts_dirty: self.facts_dirty,
        }
    }

    /// `profile`'s facts if known without reading: this transaction's copy, else the cache's
    /// (copied here) unless a merge or consent change in this transaction touched it.
    fn known_facts(&mut self, profile: &ProfileId) -> Option<&mut CustomerFacts> {
        if !self.facts.contains_key(profile) {
            if self.touched_by_merge(profile) || self.facts_dirty.contains(profile) {
                return None;
            }
            let cached = self.cache.facts.get(profile)?.clone();
            self.facts.insert(profile.clone(), cached);
        }
        self.facts.get_mut(profile)
    }

    fn touched_by_merge(&self, p: &ProfileId) -> bool {
        self.merged_from.contains(p) || self.merged_into.contains(p)
    }

    fn add(&mut self, profile: &ProfileId, d: ProfileCounters) {
        match self.pending.get_mut(profile) {
            Some(p) => {
                p.first_seen = p.first_seen.min(d.first_seen);
                p.last_seen = p.last_seen.max(d.last_seen);
                p.event_count += d.event_count;
                p.order_count += d.order_count;
                p.revenue += d.revenue;
            }
            None => {
                self.pending.insert(profile.clone(), d);
            }
        }
    }

    /// Inserts the events waiting, then writes the counters, purchases and counts gathered so
    /// far. Rows are sorted by profile, so two writers updating overlapping profiles take their
    /// row locks in one order.
    fn flush(&mut self, tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
        self.insert_events(tx)?;
        let mut traits: Vec<TraitRow> = self
            .traits
            .drain()
            .map(|((p, name), (value, at, mid))| (p, name, value, at, mid))
            .collect();
        traits.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        tx.set_traits(&traits)?;
        // The address the privacy centre sends one-time codes to: only what was stored, so
        // only what the business's backend (or a browser event with a valid user hash) said.
        let emails: Vec<(ProfileId, consentric_model::Email, i64)> = traits
            .iter()
            .filter(|(_, name, ..)| name == "email")
            .filter_map(|(p, _, value, at, _)| {
                let raw: String = serde_json::from_str(value).ok()?;
                Some((p.clone(), consentric_model::Email::parse(&raw)?, *at))
            })
            .collect();
        tx.index_emails(&emails)?;
        let mut pending: Vec<CounterRow> = self.pending.drain().collect();
        pending.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        tx.bump_profiles(&pending)?;
        for (profile, d) in pending {
            if let Some(f) = self.known_facts(&profile) {
                f.add_counters(&d);
            }
            self.touched.insert(profile.clone());
            self.to_place.insert(profile);
        }
        let mut purchases: Vec<(ProfileId, i64, f64)> = self
            .purchases
            .drain()
            .map(|((p, day), amount)| (p, day, amount))
            .collect();
        purchases.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        tx.add_purchases(&purchases)?;
        for (profile, day, amount) in purchases {
            if let Some(f) = self.known_facts(&profile) {
                f.add_purchase(day, amount);
            }
        }
        let mut counted: Vec<(ProfileId, String, u64)> = self
            .counted
            .drain()
            .map(|((p, event), n)| (p, event, n))
            .collect();
        counted.sort_unstable();
        tx.count_events(&counted)?;
        for (profile, event, n) in counted {
            if let Some(f) = self.known_facts(&profile) {
                f.add_count(&event, n);
            }
        }
        Ok(())
    }

    /// Inserts the events waiting, and for each one new (not a duplicate) sets its identify
    /// traits and adds it to what the profile's counters will get.
    fn insert_events(&mut self, tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
        if self.events.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.events);
        let rows: Vec<NewEvent<'_>> = events
            .iter()
            .map(|p| NewEvent {
                message_id: p.event.message_id(),
                profile_id: &p.profile,
                call_type: p.event.call().call_type().as_str(),
                event_name: p.event.event_name(),
                ts: p.event.timestamp().timestamp_millis(),
                received_at: p.event.received_at().timestamp_millis(),
                payload: &p.payload,
            })
            .collect();
        let inserted = tx.insert_events(&rows)?;
        for (p, new) in events.iter().zip(inserted) {
            if new {
                self.stored(&p.profile, &p.event);
                self.accepted += 1;
            } else {
                self.duplicates += 1;
            }
        }
        Ok(())
    }

    /// What follows from storing `event` for `profile`: its identify traits, and its share of
    /// the counters, purchases, interactions and counted events.
    fn stored(&mut self, profile: &ProfileId, event: &Event) {
        let at = event.timestamp().timestamp_millis();
        if let Call::Identify { traits } = event.call() {
            for (name, value) in traits {
                let key = (profile.clone(), name.clone());
                if self.traits.get(&key).is_none_or(|(_, held, _)| at >= *held) {
                    let mid = event.message_id().clone();
                    self.traits.insert(key, (value.to_string(), at, mid));
                }
            }
        }
        let order = event.event_name() == Some(ORDER_COMPLETED);
        self.add(
            profile,
            ProfileCounters {
                first_seen: at,
                last_seen: at,
                event_count: 1,
                order_count: i64::from(order),
                revenue: if order { revenue(event) } else { 0.0 },
            },
        );
        if order {
            let day = at.div_euclid(lifecycle::DAY_MS);
            *self.purchases.entry((profile.clone(), day)).or_default() += revenue(event);
        }
        if let Some((weight, items)) = self.rules.of(event) {
            for item in items {
                let e = self
                    .interactions
                    .entry((profile.clone(), item))
                    .or_insert((0.0, at));
                e.0 += weight;
                e.1 = e.1.max(at);
            }
        }
        if let Some(name) = event.event_name() {
            if self.life.counted.contains(name) {
                *self
                    .counted
                    .entry((profile.clone(), name.to_owned()))
                    .or_default() += 1;
            }
        }
    }

    /// Writes the interactions gathered so far of customers with a basis for the purpose they
    /// serve now (`now`, ms); the rest are not kept.
    fn flush_interactions(
        &mut self,
        tx: &mut WriteTx<'_>,
        policy: &PolicySet,
        now: i64,
    ) -> Result<(), StoreError> {
        if self.interactions.is_empty() {
            return Ok(());
        }
        let Ok(purpose) = policy.registry.get(&self.rules.purpose) else {
            self.interactions.clear();
            return Ok(());
        };
        let at = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
        let mut pending: Vec<((ProfileId, String), (f64, i64))> =
            self.interactions.drain().collect();
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        let mut decided: Option<(ProfileId, bool)> = None;
        let mut kept = Vec::new();
        for ((profile, item), (weight, last)) in pending {
            let keep = match &decided {
                Some((p, keep)) if *p == profile => *keep,
                _ => {
                    let keep = if self.ledger_is_empty(tx, &profile)? {
                        policy.baseline_has(&purpose.id)
                    } else {
                        self.folded(tx, &profile)?.has_basis(purpose, at)
                    };
                    decided = Some((profile.clone(), keep));
                    keep
                }
            };
            if keep {
                kept.push((profile, item, weight, last));
            }
        }
        tx.add_interactions(&kept)
    }

    /// Flushes, then re-places each customer written to who has a basis for the stage purpose
    /// now (`now`, ms). A restricted customer keeps their stage unchanged.
    fn flush_and_place(
        &mut self,
        tx: &mut WriteTx<'_>,
        policy: &PolicySet,
        now: i64,
    ) -> Result<(), StoreError> {
        self.flush(tx)?;
        self.flush_interactions(tx, policy, now)?;
        let touched: Vec<ProfileId> = self.to_place.drain().collect();
        if !self.life.settings.on_ingest {
            return Ok(());
        }
        let Ok(purpose) = policy.registry.get(&self.life.settings.stage_purpose) else {
            return Ok(());
        };
        let at = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
        let scorer = self.scorer.clone();
        // What placement needs and nobody knows is read for all of them at once: ledgers, then
        // the stage facts of those with a basis.
        let unread: Vec<ProfileId> = touched
            .iter()
            .filter(|p| !self.rows_known(p))
            .cloned()
            .collect();
        self.consent.extend(tx.consent_of_many(&unread)?);
        let mut placed = Vec::with_capacity(touched.len());
        for profile in touched {
            if self.ledger_is_empty(tx, &profile)? && !policy.baseline_has(&purpose.id) {
                continue; // the common case, decided without folding
            }
            if !self.folded(tx, &profile)?.has_basis(purpose, at) {
                continue;
            }
            placed.push(profile);
        }
        let unknown: Vec<ProfileId> = placed
            .iter()
            .filter(|p| self.known_facts(p).is_none())
            .cloned()
            .collect();
        let life = self.life;
        for (profile, f) in tx.stage_facts_of(&unknown)? {
            let facts = CustomerFacts::from_stored(tx, life, &profile, f)?;
            self.facts.insert(profile, facts);
        }
        for profile in placed {
            let Some(facts) = self.known_facts(&profile) else {
                continue; // no such profile
            };
            facts.place(tx, life, scorer.as_deref(), &profile, None)?;
        }
        Ok(())
    }

    fn find(
        &mut self,
        tx: &mut WriteTx<'_>,
        id: &Identity,
    ) -> Result<Option<ProfileId>, StoreError> {
        if let Some(p) = self.identities.get(id) {
            return Ok(Some(p.clone()));
        }
        if let Some(p) = self.cache.identities.get(id) {
            if !self.merged_from.contains(p) {
                self.identities.insert(id.clone(), p.clone());
                return Ok(Some(p.clone()));
            }
        }
        if self.absent.contains(id) || self.erased.contains(id) {
            return Ok(None);
        }
        let Some((p, has_consent)) = tx.find_identity_and_consent(id)? else {
            return Ok(None);
        };
        if !has_consent {
            // An empty ledger, learnt for free: minimisation need not read it.
            self.consent.entry(p.clone()).or_default();
        }
        self.identities.insert(id.clone(), p.clone());
        Ok(Some(p))
    }

    /// Whether `profile`'s ledger rows are known without reading them.
    fn rows_known(&self, profile: &ProfileId) -> bool {
        self.consent.contains_key(profile)
            || (!self.touched_by_merge(profile) && self.cache.consent.contains_key(profile))
    }

    /// `profile`'s ledger rows: this transaction's copy, else the cache's (not copied), else
    /// read from the store (and kept here).
    fn rows(
        &mut self,
        tx: &mut WriteTx<'_>,
        profile: &ProfileId,
    ) -> Result<&[ConsentRow], StoreError> {
        if !self.consent.contains_key(profile) {
            if !self.touched_by_merge(profile) {
                if let Some(rows) = self.cache.consent.get(profile) {
                    return Ok(rows);
                }
            }
            let rows = tx.consent_of(profile)?;
            self.consent.insert(profile.clone(), rows);
        }
        Ok(self
            .consent
            .get(profile)
            .map(Vec::as_slice)
            .unwrap_or_default())
    }

    /// Appends a row to this transaction's copy of `profile`'s ledger (copying it first).
    fn push_row(
        &mut self,
        tx: &mut WriteTx<'_>,
        profile: &ProfileId,
        row: ConsentRow,
    ) -> Result<(), StoreError> {
        if !self.consent.contains_key(profile) {
            let rows = self.rows(tx, profile)?.to_vec();
            self.consent.insert(profile.clone(), rows);
        }
        self.consent.entry(profile.clone()).or_default().push(row);
        self.folded.remove(profile);
        Ok(())
    }

    /// Whether `profile`'s consent ledger has no records at all.
    fn ledger_is_empty(
        &mut self,
        tx: &mut WriteTx<'_>,
        profile: &ProfileId,
    ) -> Result<bool, StoreError> {
        Ok(self.rows(tx, profile)?.is_empty())
    }

    /// `profile`'s folded ledger, folded at most once per transaction and reused across
    /// transactions while the ledger is unchanged.
    fn folded(
        &mut self,
        tx: &mut WriteTx<'_>,
        profile: &ProfileId,
    ) -> Result<&ConsentState, StoreError> {
        let local = self.folded.contains_key(profile) || self.consent.contains_key(profile);
        if !local && !self.touched_by_merge(profile) && self.cache.folded.contains_key(profile) {
            return Ok(&self.cache.folded[profile]);
        }
        if !self.folded.contains_key(profile) {
            let state = ConsentState::fold(to_records(self.rows(tx, profile)?));
            self.folded.insert(profile.clone(), state);
        }
        Ok(&self.folded[profile])
    }

    fn attach(
        &mut self,
        tx: &mut WriteTx<'_>,
        id: &Identity,
        p: &ProfileId,
        at: i64,
    ) -> Result<(), StoreError> {
        tx.attach_identity(id, p, at)?;
        self.identities.insert(id.clone(), p.clone());
        Ok(())
    }

    fn merge(
        &mut self,
        tx: &mut WriteTx<'_>,
        from: &ProfileId,
        into: &ProfileId,
        at: i64,
        mid: &MessageId,
    ) -> Result<(), StoreError> {
        self.flush(tx)?;
        tx.merge_profiles(from, into, at, mid)?;
        self.facts.remove(from);
        self.facts.remove(into);
        self.consent.remove(from);
        self.consent.remove(into);
        self.folded.remove(from);
        self.folded.remove(into);
        self.no_withdrawal_waiting.remove(from);
        self.no_withdrawal_waiting.remove(into);
        self.merged_from.insert(from.clone());
        self.merged_into.insert(into.clone());
        for p in self.identities.values_mut() {
            if p == from {
                *p = into.clone();
            }
        }
        tracing::debug!(%from, %into, message_id = %mid, "profiles merged");
        Ok(())
    }
}

/// One ingest request: events, the consent signals each carries (read before the
/// transaction, so a malformed signal refuses the request without touching the ledger), and
/// who sent it.
pub(crate) struct IngestRequest {
    /// Each event made ready on the caller's thread (see [`Prepared`]).
    pub prepared: Vec<Prepared>,
    pub signals: Vec<Vec<Signal>>,
    pub actor: String,
    pub origin: Origin,
    /// How long a withdrawal from a browser key waits before its deletion (ms).
    pub withdrawal_grace_ms: i64,
}

/// Locks every identity the requests' events name (see [`WriteTx::lock_identities`]): taken
/// once, before any of them is resolved, so the locks come in one order.
pub(crate) fn lock_identities<'r>(
    tx: &mut WriteTx<'_>,
    requests: impl IntoIterator<Item = &'r IngestRequest>,
) -> Result<Vec<Identity>, StoreError> {
    let mut named = Vec::new();
    for req in requests {
        for prepared in &req.prepared {
            let event = &prepared.full.event;
            named.extend(event.user_id().map(Identity::user));
            named.extend(event.anonymous_id().map(Identity::anonymous));
            if let Call::Alias { previous_id } = event.call() {
                for kind in [IdentityKind::UserId, IdentityKind::AnonymousId] {
                    named.push(Identity {
                        kind,
                        value: previous_id.clone(),
                    });
                }
            }
        }
    }
    tx.lock_identities(&named)?;
    Ok(named)
}

/// Stores a request's events in the open transaction.
pub(crate) fn ingest<'c>(
    tx: &mut WriteTx<'_>,
    state: &mut BatchState<'c>,
    req: &'c IngestRequest,
    policy: &PolicySet,
    now: i64,
) -> Result<IngestReport, StoreError> {
    let mut report = IngestReport::default();
    for (prepared, signals) in req.prepared.iter().zip(&req.signals) {
        let event = &prepared.full.event;
        let at = event.timestamp().timestamp_millis();
        if carries_erased_identity(tx, state, event)? {
            report.erased += 1;
            continue;
        }
        // Resolving first is safe for a duplicate: its identities are already where it put
        // them, so resolution only reads. The insert is the idempotency check.
        let profile = resolve(tx, state, event, at, req.origin)?;
        // Signals first, so that a banner's choice carried by this very event governs what of
        // it is kept. For a duplicate they were recorded the first time, and change nothing.
        if !signals.is_empty() {
            record_signals(
                tx,
                state,
                policy,
                &profile,
                &prepared.full,
                signals,
                req,
                now,
            )?;
        }
        // Most customers get a shape made before the transaction; anyone else's event is
        // minimised here, against their ledger at the event's time.
        let (event, payload): (Cow<'c, Event>, Cow<'c, str>) =
            match choose_shape(tx, state, policy, &profile, prepared)? {
                Some(shape) => {
                    report.fields_unmapped += shape.unmapped;
                    report.fields_without_basis += shape.unused;
                    (Cow::Borrowed(&shape.event), json_of(shape)?)
                }
                None => {
                    let mut kept = event.clone();
                    report.fields_unmapped += prepared.full.unmapped;
                    minimise_event(tx, state, policy, &profile, &mut kept, &mut report)?;
                    let payload = to_json(&kept)?;
                    (Cow::Owned(kept), Cow::Owned(payload))
                }
            };
        state.events.push(Pending {
            profile,
            event,
            payload,
        });
    }
    state.flush_and_place(tx, policy, now)?;
    report.accepted = std::mem::take(&mut state.accepted);
    report.duplicates = std::mem::take(&mut state.duplicates);
    Ok(report)
}

fn to_json(event: &Event) -> Result<String, StoreError> {
    serde_json::to_string(event)
        .map_err(|e| StoreError::Corrupt(format!("event serialisation: {e}")))
}

/// A shape's stored JSON: the one made ahead, or made now.
fn json_of(shape: &Minimal) -> Result<Cow<'_, str>, StoreError> {
    Ok(match &shape.payload {
        Some(p) => Cow::Borrowed(p.as_str()),
        None => Cow::Owned(to_json(&shape.event)?),
    })
}

/// The evidence hash recorded with a consent signal: SHA-256 (hex) of the event as accepted —
/// unmapped fields dropped, transformations applied — not as received, since a hash of what a
/// transformation removed (an IP address's last octet) would give it back to anyone who tries
/// every value against the stored event. Made by the writer only when a signal changes the
/// ledger, not for every event that repeats a banner's choices.
pub(crate) fn evidence_of(full: &Minimal) -> Result<String, StoreError> {
    Ok(hex::encode(Sha256::digest(json_of(full)?.as_bytes())))
}

/// The prepared shape that minimising `event` for `profile` would produce, if one does: the
/// baseline for an empty ledger, the full shape when every category carried has a basis, the
/// baseline again when exactly its categories do. `None` when the writer must minimise.
fn choose_shape<'p>(
    tx: &mut WriteTx<'_>,
    state: &mut BatchState<'_>,
    policy: &PolicySet,
    profile: &ProfileId,
    prepared: &'p Prepared,
) -> Result<Option<&'p Minimal>, StoreError> {
    if state.ledger_is_empty(tx, profile)? {
        return Ok(prepared.baseline.shape(&prepared.full));
    }
    let consent = state.folded(tx, profile)?;
    Ok(policy.shape_for(prepared, consent, prepared.full.event.timestamp()))
}

/// Keeps of an event's traits, properties and context only the fields some purpose with a
/// legal basis (for this customer, at the event's time) may use, after policy transformations.
fn minimise_event(
    tx: &mut WriteTx<'_>,
    state: &mut BatchState<'_>,
    policy: &PolicySet,
    profile: &ProfileId,
    event: &mut Event,
    report: &mut IngestReport,
) -> Result<(), StoreError> {
    let consent = state.folded(tx, profile)?;
    let (unmapped, unused) = policy.minimise_full_shape(event, consent);
    report.fields_unmapped += unmapped;
    report.fields_without_basis += unused;
    Ok(())
}

/// Appends the signals that change what the ledger says (decision or purpose version) and
/// audits each, with the evidence hash of the event's full shape (see [`evidence_of`]). A
/// banner that resends the same choices on every event adds nothing, and costs no hash.
#[allow(clippy::too_many_arguments)]
fn record_signals(
    tx: &mut WriteTx<'_>,
    state: &mut BatchState<'_>,
    policy: &PolicySet,
    profile: &ProfileId,
    full: &Minimal,
    signals: &[Signal],
    req: &IngestRequest,
    now: i64,
) -> Result<(), StoreError> {
    let actor = req.actor.as_str();
    let event = &full.event;
    // Rows are only appended, so the ledger before is a prefix of the ledger after.
    let before = state.rows(tx, profile)?.len();
    let decided_at = event.timestamp().timestamp_millis();
    let mut evidence: Option<String> = None;
    for s in signals {
        let version = i64::from(policy.signal_version(s));
        let current = state
            .rows(tx, profile)?
            .iter()
            .filter(|r| r.purpose == s.purpose.as_str() && r.decided_at <= decided_at)
            .max_by_key(|r| r.decided_at);
        if current.is_some_and(|r| {
            r.decision == s.decision.as_str()
                && r.purpose_version == version
                && r.assurance == s.assurance.as_str()
        }) {
            continue;
        }
        let evidence_hash = match &evidence {
            Some(hash) => hash.clone(),
            None => evidence.insert(evidence_of(full)?).clone(),
        };
        let row = ConsentRow {
            purpose: s.purpose.to_string(),
            decision: s.decision.as_str().to_owned(),
            source: s.source.as_str().to_owned(),
            purpose_version: version,
            decided_at,
            evidence_hash,
            recorded_at: now,
            assurance: s.assurance.as_str().to_owned(),
        };
        tx.append_consent(profile, &row)?;
        audit::append(
            tx,
            now,
            actor,
            "consent.recorded",
            Some(profile.as_str()),
            &json!({"purpose": row.purpose, "decision": row.decision, "source": row.source,
                    "assurance": row.assurance, "purpose_version": version,
                    "message_id": event.message_id().as_str()}),
        )?;
        state.push_row(tx, profile, row)?;
    }
    let (life, rules) = (state.life, state.rules);
    let may_wait = !state.no_withdrawal_waiting.contains(profile);
    let after = state.rows(tx, profile)?;
    let at = chrono::DateTime::from_timestamp_millis(now).unwrap_or_else(chrono::Utc::now);
    let lost = after.len() > before && withdrawal::lost_basis(policy, &after[..before], after, at);
    if lost && req.origin == Origin::Browser {
        // Processing stops now (the ledger says so); the deletion waits, so that a withdrawal
        // forged with the public key cannot erase anyone's data.
        let due = now.saturating_add(req.withdrawal_grace_ms);
        tx.defer_withdrawal(profile, due, now)?;
        state.no_withdrawal_waiting.remove(profile);
        audit::append(
            tx,
            now,
            actor,
            "withdrawal.deferred",
            Some(profile.as_str()),
            &json!({"due_at": crate::profiles::iso(due)}),
        )?;
        return Ok(());
    }
    // A server's signals confirm a withdrawal still waiting for its grace period.
    let confirms = req.origin == Origin::Server && may_wait && tx.take_withdrawal(profile)?;
    if lost || confirms {
        // What withdrawal deletes includes this customer's events of the request so far.
        let after = after.to_vec();
        state.flush(tx)?;
        let derived = withdrawal::Derived {
            stage_purpose: &life.settings.stage_purpose,
            interactions_purpose: &rules.purpose,
        };
        withdrawal::enforce(tx, policy, &derived, profile, &after, at, actor)?;
        // Withdrawal may have deleted the stage: forget what placement knew of the customer.
        state.facts.remove(profile);
        state.facts_dirty.insert(profile.clone());
    }
    Ok(())
}

/// Whether the event names an identity of an erased customer (a tombstone). Known identities
/// are not tombstoned, so only unknown ones are checked.
fn carries_erased_identity(
    tx: &mut WriteTx<'_>,
    state: &mut BatchState<'_>,
    event: &Event,
) -> Result<bool, StoreError> {
    let ids = [
        event.user_id().map(Identity::user),
        event.anonymous_id().map(Identity::anonymous),
    ];
    for id in ids.iter().flatten() {
        if state.find(tx, id)?.is_some() || state.absent.contains(id) {
            continue;
        }
        if state.erased.contains(id) || tx.is_erased(id)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Finds or makes the profile an event belongs to, growing and merging the identity graph.
///
/// Rules: a call carrying both `userId` and `anonymousId` ties them, and the anonymous
/// profile merges into the user's — unless the anonymous profile already belongs to another
/// user (a shared device), in which case the two customers stay apart. `alias` merges the
/// `previousId`'s profile into the `userId`'s unconditionally: it is an explicit statement.
fn resolve(
    tx: &mut WriteTx<'_>,
    state: &mut BatchState<'_>,
    event: &Event,
    at: i64,
    origin: Origin,
) -> Result<ProfileId, StoreError> {
    let mid = event.message_id();
    let via = event.call().call_type().as_str();
    let user = event.user_id().map(Identity::user);
    let anon = event.anonymous_id().map(Identity::anonymous);

    // The user's own profile (found or created) anchors everything else.
    let anchor = match &user {
        Some(u) => state.find(tx, u)?,
        None => None,
    };

    // Whether this call attached a new user to an existing anonymous profile.
    let mut adopted = false;
    let mut profile = match (&user, anchor) {
        (Some(_), Some(p)) => p,
        (Some(u), None) => {
            // A new user: adopt the anonymous profile if it has no other user.
            let adopt = match &anon {
                Some(a) => match state.find(tx, a)? {
                    Some(p) if !has_other_user(tx, &p, u)? => Some(p),
                    _ => None,
                },
                None => None,
            };
            let p = match adopt {
                Some(p) => {
                    adopted = true;
                    p
                }
                None => new_profile(tx, state, at)?,
            };
            state.attach(tx, u, &p, at)?;
            p
        }
        (None, _) => {
            // Anonymous only (parsing guarantees one id is present).
            let a = anon
                .as_ref()
                .ok_or_else(|| StoreError::Corrupt("event without identity".into()))?;
            match state.find(tx, a)? {
                Some(p) => p,
                None => {
                    let p = new_profile(tx, state, at)?;
                    state.attach(tx, a, &p, at)?;
                    p
                }
            }
        }
    };

    if let (Some(u), Some(a)) = (&user, &anon) {
        // An edge is recorded when the call shows something new: an unseen anonymous id, an
        // adoption of the anonymous profile, a merge, or a refused merge. A pair already on
        // one profile adds nothing, and is the common case (every call of a known visitor).
        let new_edge = match state.find(tx, a)? {
            None => {
                state.attach(tx, a, &profile, at)?;
                true
            }
            Some(p) if p == profile => adopted,
            Some(p) => {
                if has_other_user(tx, &p, u)? {
                    tracing::info!(message_id = %mid, "anonymous id already belongs to another user; not merging");
                } else {
                    state.merge(tx, &p, &profile, at, mid)?;
                }
                true
            }
        };
        if new_edge {
            tx.link(a, u, via, mid, at)?;
        }
    }

    if let Call::Alias { previous_id } = event.call() {
        if let Some(u) = &user {
            let as_user = Identity {
                kind: IdentityKind::UserId,
                value: previous_id.clone(),
            };
            let as_anon = Identity {
                kind: IdentityKind::AnonymousId,
                value: previous_id.clone(),
            };
            let (previous, found) = match state.find(tx, &as_user)? {
                Some(p) => (as_user, Some(p)),
                None => match state.find(tx, &as_anon)? {
                    Some(p) => (as_anon, Some(p)),
                    None => (as_user, None),
                },
            };
            if previous == *u {
                return Ok(profile);
            }
            match found {
                None => state.attach(tx, &previous, &profile, at)?,
                Some(p) if p == profile => {}
                Some(p) => {
                    // From a public key, two customers who each have a user id stay apart:
                    // anyone could otherwise merge a stranger into their own profile.
                    let both_users =
                        previous.kind == IdentityKind::UserId || has_other_user(tx, &p, u)?;
                    if origin == Origin::Browser && both_users {
                        return Err(StoreError::Refused(format!(
                            "alias `{}`: merging two customers who both have a user id needs a server key",
                            mid.as_str()
                        )));
                    }
                    state.merge(tx, &p, &profile, at, mid)?
                }
            }
            tx.link(&previous, u, via, mid, at)?;
            // The profile may have been the merged-away one if the alias came first.
            profile = state.find(tx, u)?.unwrap_or(profile);
        }
    }
    Ok(profile)
}

fn new_profile(
    tx: &mut WriteTx<'_>,
    state: &mut BatchState<'_>,
    at: i64,
) -> Result<ProfileId, StoreError> {
    // Time-ordered (UUIDv7): rows keyed by a new customer's profile id land at the end of
    // their B-trees instead of on a random page, which the disk feels (see benchmarks.md).
    let id = ProfileId::parse(&format!("prof_{}", uuid::Uuid::now_v7().simple()))
        .ok_or_else(|| StoreError::Corrupt("generated profile id refused".into()))?;
    tx.create_profile(&id, at)?;
    state.consent.insert(id.clone(), Vec::new()); // a new profile has no consent yet
    state.no_withdrawal_waiting.insert(id.clone());
    // Nor a stage, purchases or counted events: placement need not read what it knows.
    state
        .facts
        .insert(id.clone(), CustomerFacts::new_profile(at));
    Ok(id)
}

fn has_other_user(
    tx: &mut WriteTx<'_>,
    profile: &ProfileId,
    user: &Identity,
) -> Result<bool, StoreError> {
    Ok(tx
        .identities_of(profile)?
        .iter()
        .any(|r| r.identity.kind == IdentityKind::UserId && r.identity != *user))
}

/// An order's revenue per the e-commerce Spec: `revenue`, else `total`, else the sum of
/// `products[].price × quantity`. Numbers sent as strings count; anything else is 0.
pub(crate) fn revenue(event: &Event) -> f64 {
    let Call::Track { properties, .. } = event.call() else {
        return 0.0;
    };
    fn number(v: Option<&Value>) -> Option<f64> {
        match v? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|f: &f64| f.is_finite())
    }
    if let Some(r) = number(properties.get("revenue")).or_else(|| number(properties.get("total"))) {
        return r;
    }
    properties
        .get("products")
        .and_then(Value::as_array)
        .map(|products| {
            products
                .iter()
                .map(|p| {
                    number(p.get("price")).unwrap_or(0.0) * number(p.get("quantity")).unwrap_or(1.0)
                })
                .sum()
        })
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use consentric_model::{parse_typed_event, Envelope};
    use consentric_policy::Signal;
    use consentric_policy::{ConsentSource, Decision, PurposeId};

    /// A consent signal's evidence is a hash of the event as accepted: two events that differ
    /// only in what the IP transformation removes have the same evidence, so trying every last
    /// octet against a stored event and its evidence gives nothing back.
    #[test]
    fn evidence_does_not_keep_what_a_transformation_removed() {
        let policy = PolicySet::retail_defaults();
        let env = Envelope::new(DateTime::<Utc>::UNIX_EPOCH, "r");
        let signals = [Signal {
            purpose: PurposeId::parse("analytics").expect("id"),
            decision: Decision::Granted,
            source: ConsentSource::Segment,
            assurance: Default::default(),
            version: None,
        }];
        let evidence = |ip: &str| {
            let raw = json!({"type": "page", "messageId": "m", "userId": "u",
                "timestamp": "2026-01-02T03:04:05Z", "context": {"ip": ip,
                "consent": {"categoryPreferences": {"analytics": true}}}});
            let event = parse_typed_event(raw.to_string().as_bytes(), &env)
                .expect("valid")
                .events
                .remove(0);
            let prepared = policy.prepare(event, &signals).expect("prepared");
            let json = serde_json::to_string(&prepared.full.event).expect("json");
            assert!(json.contains("203.0.113.0") && !json.contains(ip), "{json}");
            evidence_of(&prepared.full).expect("evidence")
        };
        assert_eq!(evidence("203.0.113.77"), evidence("203.0.113.78"));
        assert_eq!(evidence("203.0.113.77").len(), 64);
    }
}
