//! Typed operations over a [`Conn`], written once for both backends.

use consentric_model::{Identity, IdentityKind, MessageId, ProfileId};

use crate::backend::{Cell, ChangeToken, Conn, Param};
use crate::error::StoreError;
use crate::records::{
    ApiKeyRecord, AuditRow, ConsentRow, EventRecord, IdentityLinkRecord, IdentityRecord,
    ProfileCounters, ProfileRecord, TraitRecord,
};
use crate::sealing::{event_field, identity_field, trait_field, Sealer};
use crate::sql;

/// The write side of one transaction. Obtained from [`crate::Store::write`]; everything done
/// through it commits together or not at all.
pub struct WriteTx<'a> {
    pub(crate) conn: &'a mut dyn Conn,
    pub(crate) sealer: Sealer,
    /// Set by every write to the profiles or the consent ledger: the commit then bumps the
    /// population epoch, which caches of "who has a basis for a purpose" are keyed on.
    pub(crate) population_changed: bool,
    /// The audit chain's last position and hash once this transaction has read it (and, on
    /// PostgreSQL, locked the chain until it ends): later appends chain on without reading.
    pub(crate) audit_tail: Option<(i64, String)>,
}

/// An event row to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// Idempotency key.
    pub message_id: &'a MessageId,
    /// Owning profile.
    pub profile_id: &'a ProfileId,
    /// Segment call type.
    pub call_type: &'a str,
    /// `track` event name.
    pub event_name: Option<&'a str>,
    /// Corrected event time (ms).
    pub ts: i64,
    /// Arrival time (ms).
    pub received_at: i64,
    /// Segment JSON.
    pub payload: &'a str,
}

impl WriteTx<'_> {
    /// What this transaction saw of the database's history; see [`ChangeToken`].
    pub fn change_token(&mut self) -> Result<Option<ChangeToken>, StoreError> {
        self.conn.change_token()
    }

    /// The profile an identity belongs to, and whether that profile's consent ledger has rows.
    pub fn find_identity_and_consent(
        &mut self,
        identity: &Identity,
    ) -> Result<Option<(ProfileId, bool)>, StoreError> {
        let identity = &self.sealer.blind(identity);
        let rows = self.conn.query(
            sql::FIND_IDENTITY_AND_CONSENT,
            &[
                Param::Text(identity.kind.as_str()),
                Param::Text(&identity.value),
            ],
        )?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(row) => {
                let mut it = take(row, 2)?;
                let profile = profile_id(next(&mut it)?.text()?)?;
                Ok(Some((profile, next(&mut it)?.int()? != 0)))
            }
        }
    }

    /// Holds, until the transaction ends, a lock on each identity, so that the find-then-create
    /// of a profile for an identity happens in one transaction at a time across every process
    /// on the database: without it, two PostgreSQL nodes given the same new user id at once
    /// each make a profile, and the later attach re-points the id to an empty one. The locks
    /// are taken in one sorted order, so two transactions locking overlapping sets wait for
    /// each other instead of deadlocking. SQLite has a single writer, which is lock enough.
    pub fn lock_identities<'i>(
        &mut self,
        identities: impl IntoIterator<Item = &'i Identity>,
    ) -> Result<(), StoreError> {
        if self.conn.kind() == crate::BackendKind::Sqlite {
            return Ok(());
        }
        let mut keys: Vec<String> = identities
            .into_iter()
            .map(|i| {
                let b = self.sealer.blind(i);
                format!("{}:{}", b.kind.as_str(), b.value)
            })
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort_unstable();
        keys.dedup();
        self.conn
            .exec(sql::LOCK_IDENTITIES, &[Param::Text(&keys.join("\n"))])
            .map(drop)
    }

    /// Creates an empty profile whose first and last seen are `at`.
    pub fn create_profile(&mut self, id: &ProfileId, at: i64) -> Result<(), StoreError> {
        self.population_changed = true;
        self.conn.exec(
            sql::INSERT_PROFILE,
            &[Param::Text(id.as_str()), Param::Int(at), Param::Int(at)],
        )?;
        self.sealer.create_key(self.conn, id.as_str(), at)
    }

    /// Points an identity at a profile (creating the identity if new).
    pub fn attach_identity(
        &mut self,
        identity: &Identity,
        profile: &ProfileId,
        at: i64,
    ) -> Result<(), StoreError> {
        let sealed = match self.sealer.vault {
            Some(_) => Some(self.sealer.seal(
                self.conn,
                profile.as_str(),
                &identity_field(identity.kind.as_str()),
                &identity.value,
                at,
            )?),
            None => None,
        };
        let blind = self.sealer.blind(identity);
        self.conn
            .exec(
                sql::ATTACH_IDENTITY,
                &[
                    Param::Text(blind.kind.as_str()),
                    Param::Text(&blind.value),
                    Param::Text(profile.as_str()),
                    Param::Int(at),
                    Param::OptText(sealed.as_deref()),
                ],
            )
            .map(drop)
    }

    /// Records an identity-graph edge in both directions; an edge already known is kept as
    /// first seen.
    pub fn link(
        &mut self,
        a: &Identity,
        b: &Identity,
        via: &str,
        message_id: &MessageId,
        at: i64,
    ) -> Result<(), StoreError> {
        let (a, b) = (&self.sealer.blind(a), &self.sealer.blind(b));
        for (x, y) in [(a, b), (b, a)] {
            self.conn.exec(
                sql::INSERT_LINK,
                &[
                    Param::Text(x.kind.as_str()),
                    Param::Text(&x.value),
                    Param::Text(y.kind.as_str()),
                    Param::Text(&y.value),
                    Param::Text(via),
                    Param::Text(message_id.as_str()),
                    Param::Int(at),
                ],
            )?;
        }
        Ok(())
    }

    /// The identities attached to a profile.
    pub fn identities_of(
        &mut self,
        profile: &ProfileId,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        identities_of(self.conn, &mut self.sealer, profile)
    }

    /// Stores an event row unless one with its message id exists; returns whether it did.
    pub fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<bool, StoreError> {
        let payload = self.sealer.seal_compressed(
            self.conn,
            e.profile_id.as_str(),
            &event_field(e.message_id.as_str()),
            e.payload,
            e.received_at,
        )?;
        self.conn
            .exec(
                sql::INSERT_EVENT,
                &[
                    Param::Text(e.message_id.as_str()),
                    Param::Text(e.profile_id.as_str()),
                    Param::Text(e.call_type),
                    Param::OptText(e.event_name),
                    Param::Int(e.ts),
                    Param::Int(e.received_at),
                    Param::Text(&payload),
                ],
            )
            .map(|changed| changed == 1)
    }

    /// Adds a delta to a profile's counters (first/last seen widen, counts add).
    pub fn bump_profile(
        &mut self,
        profile: &ProfileId,
        d: &ProfileCounters,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::BUMP_PROFILE,
                &[
                    Param::Text(profile.as_str()),
                    Param::Int(d.first_seen),
                    Param::Int(d.last_seen),
                    Param::Int(d.event_count),
                    Param::Int(d.order_count),
                    Param::Real(d.revenue),
                ],
            )
            .map(drop)
    }

    /// Sets a trait unless a value from a later event is already stored (so out-of-order
    /// delivery cannot roll a trait back).
    pub fn set_trait(
        &mut self,
        profile: &ProfileId,
        name: &str,
        value_json: &str,
        at: i64,
        message_id: &MessageId,
    ) -> Result<(), StoreError> {
        let value = self.sealer.seal(
            self.conn,
            profile.as_str(),
            &trait_field(name),
            value_json,
            at,
        )?;
        self.conn
            .exec(
                sql::SET_TRAIT,
                &[
                    Param::Text(profile.as_str()),
                    Param::Text(name),
                    Param::Text(&value),
                    Param::Int(at),
                    Param::Text(message_id.as_str()),
                ],
            )
            .map(drop)
    }

    /// Merges profile `from` into `into`: identities, events and traits move (the later trait
    /// value wins), counters add up, `from` is deleted and redirects to `into` from now on.
    pub fn merge_profiles(
        &mut self,
        from: &ProfileId,
        into: &ProfileId,
        at: i64,
        message_id: &MessageId,
    ) -> Result<(), StoreError> {
        let (f, i) = (Param::Text(from.as_str()), Param::Text(into.as_str()));
        let counters = profile(self.conn, from)?
            .ok_or_else(|| StoreError::Corrupt(format!("merge of unknown profile {from}")))?
            .counters;
        self.conn.exec(sql::MOVE_IDENTITIES, &[f, i])?;
        self.conn.exec(sql::MOVE_KEYS, &[f, i])?;
        self.conn.exec(sql::MOVE_EVENTS, &[f, i])?;
        self.population_changed = true;
        self.conn.exec(sql::MOVE_CONSENT, &[f, i])?;
        self.conn.exec(sql::MOVE_TRAITS, &[f, i])?;
        self.conn.exec(sql::DELETE_TRAITS, &[f])?;
        self.conn.exec(sql::MOVE_PURCHASES, &[f, i])?;
        self.conn.exec(sql::DELETE_PURCHASES, &[f])?;
        self.conn.exec(sql::MOVE_COUNTS, &[f, i])?;
        self.conn.exec(sql::DELETE_COUNTS, &[f])?;
        self.conn.exec(sql::MOVE_TRANSITIONS, &[f, i])?;
        self.conn.exec(sql::DELETE_TRANSITIONS, &[f])?;
        for (moving, deleting) in [
            (sql::MOVE_INTERACTIONS, sql::DELETE_INTERACTIONS),
            (sql::MOVE_ACTIONS, sql::DELETE_ACTIONS),
            (sql::MOVE_DECISIONS, sql::DELETE_DECISIONS),
        ] {
            self.conn.exec(moving, &[f, i])?;
            self.conn.exec(deleting, &[f])?;
        }
        for moving in sql::MOVE_PRIVACY {
            self.conn.exec(moving, &[f, i])?;
        }
        self.conn.exec(sql::DELETE_MEMBERSHIPS, &[f])?;
        self.bump_profile(into, &counters)?;
        self.population_changed = true;
        self.conn.exec(sql::DELETE_PROFILE, &[f])?;
        self.conn.exec(sql::REPOINT_MERGES, &[f, i])?;
        self.conn.exec(
            sql::RECORD_MERGE,
            &[f, i, Param::Int(at), Param::Text(message_id.as_str())],
        )?;
        Ok(())
    }

    /// Appends a line to a profile's consent ledger.
    pub fn append_consent(
        &mut self,
        profile: &ProfileId,
        row: &ConsentRow,
    ) -> Result<(), StoreError> {
        self.population_changed = true;
        self.conn
            .exec(
                sql::APPEND_CONSENT,
                &[
                    Param::Text(profile.as_str()),
                    Param::Text(&row.purpose),
                    Param::Text(&row.decision),
                    Param::Text(&row.source),
                    Param::Int(row.purpose_version),
                    Param::Int(row.decided_at),
                    Param::Text(&row.evidence_hash),
                    Param::Int(row.recorded_at),
                    Param::Text(&row.assurance),
                ],
            )
            .map(drop)
    }

    /// Defers the deletion a withdrawal from a browser key causes until `due_at` (ms), unless
    /// one is already waiting for this customer (the earlier stands).
    pub fn defer_withdrawal(
        &mut self,
        profile: &ProfileId,
        due_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::DEFER_WITHDRAWAL,
                &[
                    Param::Text(profile.as_str()),
                    Param::Int(due_at),
                    Param::Int(now),
                ],
            )
            .map(drop)
    }

    /// Takes the customer's deferred withdrawal, if one waits: the caller carries it out.
    pub fn take_withdrawal(&mut self, profile: &ProfileId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .exec(sql::TAKE_WITHDRAWAL, &[Param::Text(profile.as_str())])?
            > 0)
    }

    /// Up to `limit` customers whose deferred withdrawal is due at `now`.
    pub fn due_withdrawals(&mut self, now: i64, limit: i64) -> Result<Vec<ProfileId>, StoreError> {
        self.conn
            .query(sql::DUE_WITHDRAWALS, &[Param::Int(now), Param::Int(limit)])?
            .into_iter()
            .map(|row| {
                let text = next(&mut take(row, 1)?)?.text()?;
                ProfileId::parse(&text)
                    .ok_or_else(|| StoreError::Corrupt(format!("profile id {text}")))
            })
            .collect()
    }

    /// A profile's consent ledger, in the order it was written.
    pub fn consent_of(&mut self, profile: &ProfileId) -> Result<Vec<ConsentRow>, StoreError> {
        consent_of(self.conn, profile)
    }

    /// A page of a profile's events in storage order, after position `after_seq`.
    pub fn events_page(
        &mut self,
        profile: &ProfileId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        events_page(self.conn, &mut self.sealer, profile, after_seq, limit)
    }

    /// Replaces a stored event's payload (used when data must be removed from it).
    pub fn set_event_payload(&mut self, e: &EventRecord, payload: &str) -> Result<(), StoreError> {
        let sealed = self.sealer.seal_compressed(
            self.conn,
            e.profile_id.as_str(),
            &event_field(&e.message_id),
            payload,
            e.received_at,
        )?;
        self.conn
            .exec(
                sql::SET_EVENT_PAYLOAD,
                &[Param::Int(e.seq), Param::Text(&sealed)],
            )
            .map(drop)
    }

    /// A profile's traits.
    pub fn traits_of(&mut self, profile: &ProfileId) -> Result<Vec<TraitRecord>, StoreError> {
        traits_of(self.conn, &mut self.sealer, profile)
    }

    /// Deletes one trait of a profile.
    pub fn delete_trait(&mut self, profile: &ProfileId, name: &str) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::DELETE_TRAIT,
                &[Param::Text(profile.as_str()), Param::Text(name)],
            )
            .map(drop)
    }

    /// A page of events (of any profile) whose time is before `before`, after position
    /// `after_seq`, in storage order: what a retention sweep walks.
    pub fn events_before(
        &mut self,
        before: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.conn
            .query(
                sql::EVENTS_BEFORE_PAGE,
                &[Param::Int(after_seq), Param::Int(before), Param::Int(limit)],
            )?
            .into_iter()
            .map(|row| event_record(self.conn, &mut self.sealer, row))
            .collect()
    }

    /// Deletes one stored event.
    pub fn delete_event(&mut self, seq: i64) -> Result<(), StoreError> {
        self.conn
            .exec(sql::DELETE_EVENT, &[Param::Int(seq)])
            .map(drop)
    }

    /// Up to `limit` traits (profile, name, updated at) last set before `before`, after the
    /// key (`after_profile`, `after_name`) in key order.
    pub fn traits_before(
        &mut self,
        before: i64,
        after_profile: &str,
        after_name: &str,
        limit: i64,
    ) -> Result<Vec<(ProfileId, String, i64)>, StoreError> {
        self.conn
            .query(
                sql::TRAITS_BEFORE,
                &[
                    Param::Int(before),
                    Param::Text(after_profile),
                    Param::Text(after_name),
                    Param::Int(limit),
                ],
            )?
            .into_iter()
            .map(|row| {
                let mut it = take(row, 3)?;
                Ok((
                    profile_id(next(&mut it)?.text()?)?,
                    next(&mut it)?.text()?,
                    next(&mut it)?.int()?,
                ))
            })
            .collect()
    }

    /// Stores a new API key.
    pub fn insert_api_key(&mut self, k: &ApiKeyRecord) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::INSERT_API_KEY,
                &[
                    Param::Text(&k.key_id),
                    Param::Text(&k.secret_hash),
                    Param::Text(&k.scope),
                    Param::OptText(k.label.as_deref()),
                    Param::Int(k.created_at),
                    Param::Text(&k.kind),
                ],
            )
            .map(drop)
    }

    /// Revokes key `key_id` at `at`; whether a live key was revoked.
    pub fn revoke_api_key(&mut self, key_id: &str, at: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .exec(sql::REVOKE_API_KEY, &[Param::Text(key_id), Param::Int(at)])?
            > 0)
    }

    /// Sets key `key_id`'s kind (`browser` or `server`); whether there is such a key.
    pub fn set_key_kind(&mut self, key_id: &str, kind: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .exec(sql::SET_KEY_KIND, &[Param::Text(key_id), Param::Text(kind)])?
            > 0)
    }

    /// Notes when key `key_id` was last used.
    pub fn key_used(&mut self, key_id: &str, at: i64) -> Result<(), StoreError> {
        self.conn
            .exec(sql::KEY_USED, &[Param::Text(key_id), Param::Int(at)])
            .map(drop)
    }

    /// Notes the first server SDK seen using key `key_id` as a browser key.
    pub fn key_server_library(&mut self, key_id: &str, library: &str) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::KEY_SERVER_LIBRARY,
                &[Param::Text(key_id), Param::Text(library)],
            )
            .map(drop)
    }
}

pub(crate) fn take(row: Vec<Cell>, width: usize) -> Result<std::vec::IntoIter<Cell>, StoreError> {
    if row.len() != width {
        return Err(StoreError::Corrupt(format!(
            "expected {width} columns, got {}",
            row.len()
        )));
    }
    Ok(row.into_iter())
}

pub(crate) fn next(it: &mut std::vec::IntoIter<Cell>) -> Result<Cell, StoreError> {
    it.next()
        .ok_or_else(|| StoreError::Corrupt("row too short".into()))
}

pub(crate) fn profile_id(text: String) -> Result<ProfileId, StoreError> {
    ProfileId::parse(&text).ok_or_else(|| StoreError::Corrupt(format!("bad profile id {text:?}")))
}

fn identity(kind: String, value: String) -> Result<Identity, StoreError> {
    let kind = IdentityKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("bad identity kind {kind:?}")))?;
    Ok(Identity { kind, value })
}

fn json(text: String) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

pub(crate) fn find_identity(
    conn: &mut dyn Conn,
    sealer: &Sealer,
    ident: &Identity,
) -> Result<Option<ProfileId>, StoreError> {
    let ident = &sealer.blind(ident);
    let rows = conn.query(
        sql::FIND_IDENTITY,
        &[Param::Text(ident.kind.as_str()), Param::Text(&ident.value)],
    )?;
    match rows.into_iter().next() {
        None => Ok(None),
        Some(row) => {
            let mut it = take(row, 1)?;
            profile_id(next(&mut it)?.text()?).map(Some)
        }
    }
}

pub(crate) fn profile(
    conn: &mut dyn Conn,
    id: &ProfileId,
) -> Result<Option<ProfileRecord>, StoreError> {
    let rows = conn.query(sql::PROFILE, &[Param::Text(id.as_str())])?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mut it = take(row, 7)?;
    Ok(Some(ProfileRecord {
        profile_id: profile_id(next(&mut it)?.text()?)?,
        created_at: next(&mut it)?.int()?,
        counters: ProfileCounters {
            first_seen: next(&mut it)?.int()?,
            last_seen: next(&mut it)?.int()?,
            event_count: next(&mut it)?.int()?,
            order_count: next(&mut it)?.int()?,
            revenue: next(&mut it)?.real()?,
        },
    }))
}

pub(crate) fn merged_into(
    conn: &mut dyn Conn,
    id: &ProfileId,
) -> Result<Option<ProfileId>, StoreError> {
    let rows = conn.query(sql::MERGED_INTO, &[Param::Text(id.as_str())])?;
    match rows.into_iter().next() {
        None => Ok(None),
        Some(row) => profile_id(next(&mut take(row, 1)?)?.text()?).map(Some),
    }
}

pub(crate) fn merged_from(
    conn: &mut dyn Conn,
    id: &ProfileId,
) -> Result<Vec<ProfileId>, StoreError> {
    conn.query(sql::MERGED_FROM, &[Param::Text(id.as_str())])?
        .into_iter()
        .map(|row| profile_id(next(&mut take(row, 1)?)?.text()?))
        .collect()
}

pub(crate) fn identities_of(
    conn: &mut dyn Conn,
    sealer: &mut Sealer,
    id: &ProfileId,
) -> Result<Vec<IdentityRecord>, StoreError> {
    conn.query(sql::IDENTITIES_OF, &[Param::Text(id.as_str())])?
        .into_iter()
        .map(|row| {
            let mut it = take(row, 4)?;
            let kind = next(&mut it)?.text()?;
            let stored = next(&mut it)?.text()?;
            let first_seen = next(&mut it)?.int()?;
            let value = original(conn, sealer, &kind, stored, next(&mut it)?.opt_text()?)?;
            Ok(IdentityRecord {
                identity: identity(kind, value)?,
                first_seen,
            })
        })
        .collect()
}

/// An identity's value as sent: opened from its sealed copy, or as stored when there is none
/// (no vault, or written before identities were sealed).
fn original(
    conn: &mut dyn Conn,
    sealer: &mut Sealer,
    kind: &str,
    stored: String,
    sealed: Option<String>,
) -> Result<String, StoreError> {
    match sealed {
        Some(s) => sealer.open(conn, s, &identity_field(kind)),
        None => Ok(stored),
    }
}

pub(crate) fn links_of(
    conn: &mut dyn Conn,
    sealer: &mut Sealer,
    id: &ProfileId,
) -> Result<Vec<IdentityLinkRecord>, StoreError> {
    conn.query(sql::LINKS_OF, &[Param::Text(id.as_str())])?
        .into_iter()
        .map(|row| {
            let mut it = take(row, 9)?;
            let (a_kind, a_value) = (next(&mut it)?.text()?, next(&mut it)?.text()?);
            let (b_kind, b_value) = (next(&mut it)?.text()?, next(&mut it)?.text()?);
            let (via, message_id) = (next(&mut it)?.text()?, next(&mut it)?.text()?);
            let linked_at = next(&mut it)?.int()?;
            let a_value = original(conn, sealer, &a_kind, a_value, next(&mut it)?.opt_text()?)?;
            let b_value = original(conn, sealer, &b_kind, b_value, next(&mut it)?.opt_text()?)?;
            Ok(IdentityLinkRecord {
                a: identity(a_kind, a_value)?,
                b: identity(b_kind, b_value)?,
                via,
                message_id,
                linked_at,
            })
        })
        .collect()
}

pub(crate) fn traits_of(
    conn: &mut dyn Conn,
    sealer: &mut Sealer,
    id: &ProfileId,
) -> Result<Vec<TraitRecord>, StoreError> {
    conn.query(sql::TRAITS_OF, &[Param::Text(id.as_str())])?
        .into_iter()
        .map(|row| {
            let mut it = take(row, 4)?;
            let name = next(&mut it)?.text()?;
            let stored = next(&mut it)?.text()?;
            Ok(TraitRecord {
                value: json(sealer.open(conn, stored, &trait_field(&name))?)?,
                name,
                updated_at: next(&mut it)?.int()?,
                message_id: next(&mut it)?.text()?,
            })
        })
        .collect()
}

pub(crate) fn events_page(
    conn: &mut dyn Conn,
    sealer: &mut Sealer,
    profile: &ProfileId,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    conn.query(
        sql::EVENTS_PAGE,
        &[
            Param::Text(profile.as_str()),
            Param::Int(after_seq),
            Param::Int(limit),
        ],
    )?
    .into_iter()
    .map(|row| event_record(conn, sealer, row))
    .collect()
}

pub(crate) fn events_of(
    conn: &mut dyn Conn,
    sealer: &mut Sealer,
    id: &ProfileId,
    limit: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    conn.query(
        sql::EVENTS_OF,
        &[Param::Text(id.as_str()), Param::Int(limit)],
    )?
    .into_iter()
    .map(|row| event_record(conn, sealer, row))
    .collect()
}

fn event_record(
    conn: &mut dyn Conn,
    sealer: &mut Sealer,
    row: Vec<Cell>,
) -> Result<EventRecord, StoreError> {
    let mut it = take(row, 8)?;
    let seq = next(&mut it)?.int()?;
    let message_id = next(&mut it)?.text()?;
    Ok(EventRecord {
        seq,
        profile_id: profile_id(next(&mut it)?.text()?)?,
        call_type: next(&mut it)?.text()?,
        event_name: next(&mut it)?.opt_text()?,
        ts: next(&mut it)?.int()?,
        received_at: next(&mut it)?.int()?,
        payload: json(sealer.open(conn, next(&mut it)?.text()?, &event_field(&message_id))?)?,
        message_id,
    })
}

pub(crate) fn api_key(row: Vec<Cell>) -> Result<ApiKeyRecord, StoreError> {
    let mut it = take(row, 9)?;
    Ok(ApiKeyRecord {
        key_id: next(&mut it)?.text()?,
        secret_hash: next(&mut it)?.text()?,
        scope: next(&mut it)?.text()?,
        label: next(&mut it)?.opt_text()?,
        created_at: next(&mut it)?.int()?,
        revoked_at: next(&mut it)?.opt_int()?,
        kind: next(&mut it)?.text()?,
        last_used_at: next(&mut it)?.opt_int()?,
        server_library: next(&mut it)?.opt_text()?,
    })
}

pub(crate) fn count(conn: &mut dyn Conn, sql: &'static str) -> Result<u64, StoreError> {
    let rows = conn.query(sql, &[])?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt("count returned no row".into()))?;
    Ok(next(&mut take(row, 1)?)?.int()?.max(0) as u64)
}

pub(crate) fn consent_of(
    conn: &mut dyn Conn,
    id: &ProfileId,
) -> Result<Vec<ConsentRow>, StoreError> {
    let mut rows: Vec<(i64, ConsentRow)> = conn
        .query(sql::CONSENT_OF, &[Param::Text(id.as_str())])?
        .into_iter()
        .map(|row| {
            let mut it = take(row, 9)?;
            Ok((next(&mut it)?.int()?, consent_row(&mut it)?))
        })
        .collect::<Result<_, StoreError>>()?;
    rows.sort_by_key(|(seq, _)| *seq);
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// A ledger row from the columns `purpose, decision, source, purpose_version, decided_at,
/// evidence_hash, recorded_at, assurance`, in that order.
pub(crate) fn consent_row(it: &mut std::vec::IntoIter<Cell>) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        purpose: next(it)?.text()?,
        decision: next(it)?.text()?,
        source: next(it)?.text()?,
        purpose_version: next(it)?.int()?,
        decided_at: next(it)?.int()?,
        evidence_hash: next(it)?.text()?,
        recorded_at: next(it)?.int()?,
        assurance: next(it)?.text()?,
    })
}

pub(crate) fn audit_page(
    conn: &mut dyn Conn,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    audit_rows(conn.query(sql::AUDIT_PAGE, &[Param::Int(after), Param::Int(limit)])?)
}

pub(crate) fn audit_latest(
    conn: &mut dyn Conn,
    before: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    audit_rows(conn.query(sql::AUDIT_LATEST, &[Param::Int(before), Param::Int(limit)])?)
}

pub(crate) fn audit_of(
    conn: &mut dyn Conn,
    subject: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    audit_rows(conn.query(
        sql::AUDIT_OF_SUBJECT,
        &[Param::Text(subject), Param::Int(after), Param::Int(limit)],
    )?)
}

fn audit_rows(rows: Vec<Vec<Cell>>) -> Result<Vec<AuditRow>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let mut it = take(row, 9)?;
            Ok(AuditRow {
                seq: next(&mut it)?.int()?,
                at: next(&mut it)?.int()?,
                actor: next(&mut it)?.text()?,
                action: next(&mut it)?.text()?,
                subject: next(&mut it)?.opt_text()?,
                detail: next(&mut it)?.text()?,
                prev_hash: next(&mut it)?.text()?,
                hash: next(&mut it)?.text()?,
                mac: next(&mut it)?.opt_text()?,
            })
        })
        .collect()
}
