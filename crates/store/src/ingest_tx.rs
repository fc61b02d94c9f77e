//! Ingest's writes for a whole group of events at once. On PostgreSQL each is one statement
//! over `unnest` of a column per parameter, so a group costs a handful of round trips instead
//! of several per event; SQLite, in the process, runs the same per-row statements as before.
//! Each takes rows already folded per key (one row per profile, per day, per item), so no
//! `ON CONFLICT DO UPDATE` meets its own row twice.

use std::collections::HashMap;

use consentric_model::{Identity, ProfileId};

use crate::backend::{BackendKind, Param};
use crate::error::StoreError;
use crate::lifecycle_tx::{facts_row, StageFacts};
use crate::records::ConsentRow;
use crate::records::ProfileCounters;
use crate::sealing::{event_field, trait_field};
use crate::tx::{consent_row, next, profile_id, take, NewEvent, WriteTx};

/// Inserted in the order given (`ORDINALITY`), so `seq` follows arrival as one by one would.
const INSERT_EVENTS: &str = "INSERT INTO events (message_id, profile_id, call_type, event_name, ts, received_at, payload) SELECT m, p, c, e, t, r, b FROM unnest(?1::text[], ?2::text[], ?3::text[], ?4::text[], ?5::int8[], ?6::int8[], ?7::text[]) WITH ORDINALITY AS u(m, p, c, e, t, r, b, o) ORDER BY o ON CONFLICT (message_id) DO NOTHING RETURNING message_id";
const BUMP_PROFILES: &str = "UPDATE profiles p SET first_seen = LEAST(p.first_seen, d.f), last_seen = GREATEST(p.last_seen, d.l), event_count = p.event_count + d.e, order_count = p.order_count + d.o, revenue = p.revenue + d.r FROM unnest(?1::text[], ?2::int8[], ?3::int8[], ?4::int8[], ?5::int8[], ?6::float8[]) AS d(id, f, l, e, o, r) WHERE p.profile_id = d.id";
const SET_TRAITS: &str = "INSERT INTO profile_traits (profile_id, name, value, updated_at, message_id) SELECT * FROM unnest(?1::text[], ?2::text[], ?3::text[], ?4::int8[], ?5::text[]) ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, message_id = excluded.message_id WHERE excluded.updated_at >= profile_traits.updated_at";
const ADD_PURCHASES: &str = "INSERT INTO lifecycle_purchases (profile_id, day, amount) SELECT * FROM unnest(?1::text[], ?2::int8[], ?3::float8[]) ON CONFLICT (profile_id, day) DO UPDATE SET amount = lifecycle_purchases.amount + excluded.amount";
const COUNT_EVENTS: &str = "INSERT INTO lifecycle_counts (profile_id, event, n) SELECT * FROM unnest(?1::text[], ?2::text[], ?3::int8[]) ON CONFLICT (profile_id, event) DO UPDATE SET n = lifecycle_counts.n + excluded.n";
const ADD_INTERACTIONS: &str = "INSERT INTO interactions (profile_id, item_id, weight, last_at) SELECT * FROM unnest(?1::text[], ?2::text[], ?3::float8[], ?4::int8[]) ON CONFLICT (profile_id, item_id) DO UPDATE SET weight = interactions.weight + excluded.weight, last_at = GREATEST(interactions.last_at, excluded.last_at)";
/// Each identity's profile, whether its ledger has rows and whether a withdrawal waits for its
/// grace period; a second query names the blind
/// values of erased customers among those not found.
/// `LATERAL`, so each identity is one probe of the primary key: a plain join of `unnest`
/// (estimated at 100 rows whatever it holds) let the planner hash the whole table.
const FIND_IDENTITIES: &str = "SELECT i.kind, i.value, i.profile_id, EXISTS (SELECT 1 FROM consent_ledger c WHERE c.profile_id = i.profile_id), EXISTS (SELECT 1 FROM pending_withdrawals w WHERE w.profile_id = i.profile_id) FROM unnest(?1::text[], ?2::text[]) AS q(kind, value) CROSS JOIN LATERAL (SELECT kind, value, profile_id FROM identities WHERE kind = q.kind AND value = q.value) AS i";
const TOMBSTONED_AMONG: &str =
    "SELECT t.blind FROM unnest(?1::text[]) AS q(blind) JOIN erasure_tombstones t ON t.blind = q.blind";

/// [`crate::lifecycle_tx`]'s facts of many profiles, each row led by its profile id.
const FACTS_OF: &str = "SELECT p.profile_id, p.first_seen, p.last_seen, p.order_count, p.revenue, t.to_stage, t.at, t.rule, t.n, EXISTS (SELECT 1 FROM lifecycle_counts c WHERE c.profile_id = p.profile_id) FROM unnest(?1::text[]) AS q(id) JOIN profiles p ON p.profile_id = q.id LEFT JOIN lifecycle_transitions t ON t.profile_id = p.profile_id AND t.n = (SELECT MAX(l.n) FROM lifecycle_transitions l WHERE l.profile_id = p.profile_id)";
const CONSENT_OF_MANY: &str = "SELECT profile_id, seq, purpose, decision, source, purpose_version, decided_at, evidence_hash, recorded_at, assurance FROM consent_ledger WHERE profile_id = ANY(?1::text[]) ORDER BY profile_id, seq";

/// What [`WriteTx::find_identities`] learnt about each identity asked for.
#[derive(Debug, Default)]
pub struct FoundIdentities {
    /// Known identities: their profile, and whether its consent ledger has any row.
    pub known: Vec<(Identity, ProfileId, bool)>,
    /// Unknown identities that belonged to an erased customer (tombstoned).
    pub erased: Vec<Identity>,
    /// Profiles of known identities with no withdrawal waiting for its grace period (left
    /// empty where asking costs a statement per profile: SQLite).
    pub no_withdrawal_waiting: Vec<ProfileId>,
}

/// An identify trait to set, for [`WriteTx::set_traits`]: profile, name, value (JSON), the
/// event's time (ms) and message id.
pub type TraitRow = (ProfileId, String, String, i64, consentric_model::MessageId);

/// A profile's counters to add, for [`WriteTx::bump_profiles`].
pub type CounterRow = (ProfileId, ProfileCounters);

impl WriteTx<'_> {
    /// Looks up many identities at once (PostgreSQL: two statements; SQLite: per identity).
    pub fn find_identities(&mut self, ids: &[Identity]) -> Result<FoundIdentities, StoreError> {
        let mut found = FoundIdentities::default();
        if ids.is_empty() {
            return Ok(found);
        }
        if self.conn.kind() == BackendKind::Sqlite {
            for id in ids {
                match self.find_identity_and_consent(id)? {
                    Some((p, has)) => found.known.push((id.clone(), p, has)),
                    None if self.is_erased(id)? => found.erased.push(id.clone()),
                    None => {}
                }
            }
            return Ok(found);
        }
        let mut by_blind: HashMap<(&'static str, String), &Identity> = HashMap::new();
        for id in ids {
            let b = self.sealer.blind(id);
            by_blind.insert((b.kind.as_str(), b.value), id);
        }
        let (kinds, values): (Vec<&str>, Vec<&str>) =
            by_blind.keys().map(|(k, v)| (*k, v.as_str())).unzip();
        let rows = self.conn.query(
            FIND_IDENTITIES,
            &[Param::Texts(&kinds), Param::Texts(&values)],
        )?;
        let mut unknown: HashMap<String, &Identity> = by_blind
            .iter()
            .map(|((_, v), id)| (v.clone(), *id))
            .collect();
        for row in rows {
            let mut it = take(row, 5)?;
            let kind = next(&mut it)?.text()?;
            let value = next(&mut it)?.text()?;
            let profile = profile_id(next(&mut it)?.text()?)?;
            let has_consent = next(&mut it)?.int()? != 0;
            if next(&mut it)?.int()? == 0 {
                found.no_withdrawal_waiting.push(profile.clone());
            }
            let Some(id) = by_blind.get(&(kind_str(&kind)?, value.clone())) else {
                return Err(StoreError::Corrupt("an identity nobody asked for".into()));
            };
            unknown.remove(&value);
            found.known.push(((*id).clone(), profile, has_consent));
        }
        if unknown.is_empty() || self.sealer.vault.is_none() {
            return Ok(found);
        }
        let blinds: Vec<&str> = unknown.keys().map(String::as_str).collect();
        for row in self
            .conn
            .query(TOMBSTONED_AMONG, &[Param::Texts(&blinds)])?
        {
            let blind = next(&mut take(row, 1)?)?.text()?;
            if let Some(id) = unknown.get(&blind) {
                found.erased.push((*id).clone());
            }
        }
        Ok(found)
    }

    /// The stage facts of each profile that exists among `profiles`.
    pub fn stage_facts_of(
        &mut self,
        profiles: &[ProfileId],
    ) -> Result<HashMap<ProfileId, StageFacts>, StoreError> {
        let mut out = HashMap::with_capacity(profiles.len());
        if self.conn.kind() == BackendKind::Sqlite || profiles.len() == 1 {
            for p in profiles {
                if let Some(f) = self.stage_facts(p)? {
                    out.insert(p.clone(), f);
                }
            }
            return Ok(out);
        }
        if profiles.is_empty() {
            return Ok(out);
        }
        let ids: Vec<&str> = profiles.iter().map(ProfileId::as_str).collect();
        for row in self.conn.query(FACTS_OF, &[Param::Texts(&ids)])? {
            let mut it = take(row, 10)?;
            let p = profile_id(next(&mut it)?.text()?)?;
            out.insert(p, facts_row(&mut it)?);
        }
        Ok(out)
    }

    /// The consent ledgers of `profiles`, each in the order recorded (empty where none).
    pub fn consent_of_many(
        &mut self,
        profiles: &[ProfileId],
    ) -> Result<HashMap<ProfileId, Vec<ConsentRow>>, StoreError> {
        let mut out: HashMap<ProfileId, Vec<ConsentRow>> = HashMap::with_capacity(profiles.len());
        if self.conn.kind() == BackendKind::Sqlite || profiles.len() == 1 {
            for p in profiles {
                let rows = self.consent_of(p)?;
                out.insert(p.clone(), rows);
            }
            return Ok(out);
        }
        if profiles.is_empty() {
            return Ok(out);
        }
        for p in profiles {
            out.insert(p.clone(), Vec::new());
        }
        let ids: Vec<&str> = profiles.iter().map(ProfileId::as_str).collect();
        for row in self.conn.query(CONSENT_OF_MANY, &[Param::Texts(&ids)])? {
            let mut it = take(row, 10)?;
            let p = profile_id(next(&mut it)?.text()?)?;
            next(&mut it)?; // seq: the rows come in its order
            let r = consent_row(&mut it)?;
            out.entry(p).or_default().push(r);
        }
        Ok(out)
    }

    /// Seals and inserts events, in order; `out[i]` says whether `events[i]` was new (a
    /// message id already stored, or earlier in `events`, is a duplicate and is not written).
    pub fn insert_events(&mut self, events: &[NewEvent<'_>]) -> Result<Vec<bool>, StoreError> {
        if self.conn.kind() == BackendKind::Sqlite || events.len() == 1 {
            return events.iter().map(|e| self.insert_event(e)).collect();
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let owners: Vec<&str> = events.iter().map(|e| e.profile_id.as_str()).collect();
        self.sealer.preload(self.conn, &owners)?;
        let mut payloads = Vec::with_capacity(events.len());
        for e in events {
            payloads.push(self.sealer.seal_compressed(
                self.conn,
                e.profile_id.as_str(),
                &event_field(e.message_id.as_str()),
                e.payload,
                e.received_at,
            )?);
        }
        let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
        let profiles: Vec<&str> = events.iter().map(|e| e.profile_id.as_str()).collect();
        let calls: Vec<&str> = events.iter().map(|e| e.call_type).collect();
        let names: Vec<Option<&str>> = events.iter().map(|e| e.event_name).collect();
        let ts: Vec<i64> = events.iter().map(|e| e.ts).collect();
        let received: Vec<i64> = events.iter().map(|e| e.received_at).collect();
        let sealed: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let rows = self.conn.query(
            INSERT_EVENTS,
            &[
                Param::Texts(&ids),
                Param::Texts(&profiles),
                Param::Texts(&calls),
                Param::OptTexts(&names),
                Param::Ints(&ts),
                Param::Ints(&received),
                Param::Texts(&sealed),
            ],
        )?;
        let mut inserted: std::collections::HashSet<String> = rows
            .into_iter()
            .map(|row| next(&mut take(row, 1)?)?.text())
            .collect::<Result<_, _>>()?;
        // The first of several rows with one message id is the one stored.
        Ok(ids.iter().map(|id| inserted.remove(*id)).collect())
    }

    /// Sets identify traits, one row per (profile, name), each unless a value from a later
    /// event is already stored.
    pub fn set_traits(&mut self, rows: &[TraitRow]) -> Result<(), StoreError> {
        if self.conn.kind() == BackendKind::Sqlite || rows.len() == 1 {
            return rows.iter().try_for_each(|(p, name, value, at, mid)| {
                self.set_trait(p, name, value, *at, mid)
            });
        }
        if rows.is_empty() {
            return Ok(());
        }
        let owners: Vec<&str> = rows.iter().map(|(p, ..)| p.as_str()).collect();
        self.sealer.preload(self.conn, &owners)?;
        let mut sealed = Vec::with_capacity(rows.len());
        for (p, name, value, at, _) in rows {
            sealed.push(
                self.sealer
                    .seal(self.conn, p.as_str(), &trait_field(name), value, *at)?,
            );
        }
        let ids: Vec<&str> = rows.iter().map(|(p, ..)| p.as_str()).collect();
        let names: Vec<&str> = rows.iter().map(|(_, n, ..)| n.as_str()).collect();
        let values: Vec<&str> = sealed.iter().map(String::as_str).collect();
        let at: Vec<i64> = rows.iter().map(|(.., at, _)| *at).collect();
        let mids: Vec<&str> = rows.iter().map(|(.., m)| m.as_str()).collect();
        self.conn
            .exec(
                SET_TRAITS,
                &[
                    Param::Texts(&ids),
                    Param::Texts(&names),
                    Param::Texts(&values),
                    Param::Ints(&at),
                    Param::Texts(&mids),
                ],
            )
            .map(drop)
    }

    /// Adds each profile's counters (first/last seen widen, counts add).
    pub fn bump_profiles(&mut self, rows: &[CounterRow]) -> Result<(), StoreError> {
        if self.conn.kind() == BackendKind::Sqlite || rows.len() == 1 {
            return rows.iter().try_for_each(|(p, d)| self.bump_profile(p, d));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = rows.iter().map(|(p, _)| p.as_str()).collect();
        let col = |f: fn(&ProfileCounters) -> i64| rows.iter().map(|(_, d)| f(d)).collect();
        let (first, last, events, orders): (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>) = (
            col(|d| d.first_seen),
            col(|d| d.last_seen),
            col(|d| d.event_count),
            col(|d| d.order_count),
        );
        let revenue: Vec<f64> = rows.iter().map(|(_, d)| d.revenue).collect();
        self.conn
            .exec(
                BUMP_PROFILES,
                &[
                    Param::Texts(&ids),
                    Param::Ints(&first),
                    Param::Ints(&last),
                    Param::Ints(&events),
                    Param::Ints(&orders),
                    Param::Reals(&revenue),
                ],
            )
            .map(drop)
    }

    /// Adds each (profile, day)'s order amount to the customer's purchases of that day.
    pub fn add_purchases(&mut self, rows: &[(ProfileId, i64, f64)]) -> Result<(), StoreError> {
        if self.conn.kind() == BackendKind::Sqlite || rows.len() == 1 {
            return rows
                .iter()
                .try_for_each(|(p, day, amount)| self.add_purchase(p, *day, *amount));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = rows.iter().map(|(p, ..)| p.as_str()).collect();
        let days: Vec<i64> = rows.iter().map(|(_, d, _)| *d).collect();
        let amounts: Vec<f64> = rows.iter().map(|(.., a)| *a).collect();
        self.conn
            .exec(
                ADD_PURCHASES,
                &[
                    Param::Texts(&ids),
                    Param::Ints(&days),
                    Param::Reals(&amounts),
                ],
            )
            .map(drop)
    }

    /// Adds each (profile, event name)'s count.
    pub fn count_events(&mut self, rows: &[(ProfileId, String, u64)]) -> Result<(), StoreError> {
        if self.conn.kind() == BackendKind::Sqlite || rows.len() == 1 {
            return rows
                .iter()
                .try_for_each(|(p, e, n)| self.count_event(p, e, *n));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = rows.iter().map(|(p, ..)| p.as_str()).collect();
        let names: Vec<&str> = rows.iter().map(|(_, e, _)| e.as_str()).collect();
        let counts: Vec<i64> = rows
            .iter()
            .map(|(.., n)| i64::try_from(*n).unwrap_or(i64::MAX))
            .collect();
        self.conn
            .exec(
                COUNT_EVENTS,
                &[
                    Param::Texts(&ids),
                    Param::Texts(&names),
                    Param::Ints(&counts),
                ],
            )
            .map(drop)
    }

    /// Adds each (profile, item)'s interaction weight, seen last at its time (ms).
    pub fn add_interactions(
        &mut self,
        rows: &[(ProfileId, String, f64, i64)],
    ) -> Result<(), StoreError> {
        if self.conn.kind() == BackendKind::Sqlite || rows.len() == 1 {
            return rows
                .iter()
                .try_for_each(|(p, item, w, at)| self.add_interaction(p, item, *w, *at));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = rows.iter().map(|(p, ..)| p.as_str()).collect();
        let items: Vec<&str> = rows.iter().map(|(_, i, ..)| i.as_str()).collect();
        let weights: Vec<f64> = rows.iter().map(|(_, _, w, _)| *w).collect();
        let at: Vec<i64> = rows.iter().map(|(.., a)| *a).collect();
        self.conn
            .exec(
                ADD_INTERACTIONS,
                &[
                    Param::Texts(&ids),
                    Param::Texts(&items),
                    Param::Reals(&weights),
                    Param::Ints(&at),
                ],
            )
            .map(drop)
    }
}

/// The static name of an identity kind read back from the database.
fn kind_str(kind: &str) -> Result<&'static str, StoreError> {
    consentric_model::IdentityKind::parse(kind)
        .map(|k| k.as_str())
        .ok_or_else(|| StoreError::Corrupt(format!("identity kind `{kind}`")))
}
