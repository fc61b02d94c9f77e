//! The host's side: invite, blind our identifiers, intersect, add the partner's values.

use std::collections::{HashMap, HashSet};

use consentric_model::{CallType, ProfileId};
use consentric_pets::paillier::PublicKey;
use consentric_pets::psi::{self, Blinder};
use dashu::integer::UBig;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::secrets::{Secrets, Summing};
use super::{
    b64, points, state, unb64, GuestBlinded, GuestSum, HostBlinded, HostCount, Invitation, Output,
    SessionError, SessionView,
};
use crate::audit;
use crate::error::EngineError;

pub(super) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn session_error(e: SessionError) -> EngineError {
    EngineError::Session(e)
}

/// What this service works on, handed to it by the context.
pub(crate) struct HostService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) cleanroom: &'a crate::cleanroom::Cleanroom,
    pub(crate) populations: crate::population::Populations<'a>,
}

impl HostService<'_> {
    /// Invites a partner: a session that will reveal `output` (and the sum of the partner's
    /// values over the intersection if `sum`), with a fresh token. Audited.
    ///
    /// # Errors
    /// An empty partner name; a database fault.
    pub fn cleanroom_invite(
        &self,
        partner: &str,
        output: Output,
        sum: bool,
        actor: &str,
    ) -> Result<Invitation, EngineError> {
        if !super::is_partner_name(partner) {
            return Err(EngineError::Invalid {
                field: "partner".into(),
                message: "name the partner (1 to 200 bytes, no control characters)".into(),
            });
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| EngineError::Config(e.to_string()))?;
        let token = hex::encode(secret);
        let session = uuid::Uuid::new_v4().simple().to_string();
        let now = self.clock.now().timestamp_millis();
        let settings = &self.cleanroom.settings;
        let expires_at = now + i64::from(settings.session_minutes) * 60_000;
        let row = consentric_store::SessionRow {
            session_id: session.clone(),
            role: "host".into(),
            token_hash: token_hash(&token),
            host_url: None,
            token: None,
            output: output.as_str().into(),
            with_sum: sum,
            partner: partner.to_owned(),
            state: state::INVITED.into(),
            created_at: now,
            expires_at,
            result: None,
        };
        let created = self.store.write(|tx| -> Result<bool, EngineError> {
            if !tx.create_session(&row)? {
                return Ok(false);
            }
            audit::append(
                tx,
                now,
                actor,
                "cleanroom.invited",
                None,
                &json!({"session": session, "partner": partner, "purpose": settings.purpose,
                    "output": output.as_str(), "sum": sum}),
            )?;
            Ok(true)
        })?;
        if !created {
            // 128 random bits met an id already recorded: refuse rather than overwrite.
            return Err(EngineError::Conflict(
                "a session with the new id exists already; invite again".into(),
            ));
        }
        Ok(Invitation {
            session,
            token,
            expires_at,
            output,
            sum,
        })
    }

    /// Every session, newest first.
    ///
    /// # Errors
    /// A database fault.
    pub fn cleanroom_sessions(&self) -> Result<Vec<SessionView>, EngineError> {
        Ok(self
            .store
            .sessions()?
            .iter()
            .map(SessionView::from)
            .collect())
    }

    /// One session.
    ///
    /// # Errors
    /// Not found; a database fault.
    pub fn cleanroom_session(&self, id: &str) -> Result<SessionView, EngineError> {
        self.store
            .session(id)?
            .as_ref()
            .map(SessionView::from)
            .ok_or_else(|| EngineError::NotFound(format!("session `{id}`")))
    }

    /// The host's session `id` if `token` is its token and it has not expired.
    fn host_session(
        &self,
        id: &str,
        token: &str,
    ) -> Result<consentric_store::SessionRow, EngineError> {
        let row = self
            .store
            .session(id)?
            .filter(|r| r.role == "host")
            .ok_or_else(|| EngineError::NotFound(format!("session `{id}`")))?;
        if row.token_hash != token_hash(token) {
            return Err(session_error(SessionError::BadToken));
        }
        if self.clock.now().timestamp_millis() > row.expires_at {
            self.abort(&row, "expired")?;
            return Err(session_error(SessionError::Expired));
        }
        Ok(row)
    }

    /// Aborts a session (whatever its state, unless finished) and forgets its secrets.
    pub(super) fn abort(
        &self,
        row: &consentric_store::SessionRow,
        why: &str,
    ) -> Result<(), EngineError> {
        self.cleanroom.take(&row.session_id);
        let now = self.clock.now().timestamp_millis();
        // From whatever state it is in now (it may have moved since `row` was read).
        let Some(current) = self.store.session(&row.session_id)? else {
            return Ok(());
        };
        if current.state == state::DONE || current.state == state::ABORTED {
            return Ok(());
        }
        self.store.write(|tx| {
            if tx.advance_session(&row.session_id, &current.state, state::ABORTED, None)? {
                audit::append(
                    tx,
                    now,
                    &format!("partner:{}", row.partner),
                    "cleanroom.aborted",
                    None,
                    &json!({"session": row.session_id, "why": why}),
                )?;
            }
            Ok::<_, consentric_store::StoreError>(())
        })?;
        Ok(())
    }

    /// The normalised identifiers of every customer with a basis for the clean-room purpose
    /// whose grant opens the identifier, each with the customers who hold it.
    pub(super) fn participants(&self) -> Result<Vec<(String, Vec<ProfileId>)>, EngineError> {
        let settings = &self.cleanroom.settings;
        let name = settings.trait_name();
        let category = self
            .policy
            .schema
            .category(CallType::Identify, None, &["traits", name])
            .cloned();
        let population =
            self.populations
                .population_for(&settings.purpose, self.clock.now(), "cleanroom")?;
        let mut by_id: HashMap<String, Vec<ProfileId>> = HashMap::new();
        let mut order = Vec::new();
        for g in &population.grants {
            if !category.as_ref().is_some_and(|c| g.permits(c)) {
                continue;
            }
            let Some(profile) = ProfileId::parse(g.subject()) else {
                continue;
            };
            let value = self.store.traits(g)?.into_iter().find(|t| t.name == name);
            let Some(raw) = value.and_then(|t| t.value.as_str().map(str::to_owned)) else {
                continue;
            };
            let Some(id) = settings.identifier.normalise(&raw) else {
                continue;
            };
            let holders = by_id.entry(id.clone()).or_default();
            if holders.is_empty() {
                order.push(id);
            }
            holders.push(profile);
        }
        Ok(order
            .into_iter()
            .map(|id| {
                let holders = by_id.remove(&id).unwrap_or_default();
                (id, holders)
            })
            .collect())
    }

    /// The most bytes the partner's next message to session `id` may hold, if `token` is the
    /// session's and the session is waiting for a message: checked before any of the message
    /// is read, so that without the token nothing is read at all, and with it no more than the
    /// session can use. Round 2 carries one point for each of ours and at most `max_set` of
    /// theirs (with a Paillier ciphertext each when summing); round 3 one number.
    ///
    /// # Errors
    /// Unknown session, bad token, expired, or no message expected now.
    pub fn cleanroom_host_admit(&self, id: &str, token: &str) -> Result<usize, EngineError> {
        /// A base64 Ristretto point as a JSON string in an array: 44 characters, quotes, comma.
        const POINT: usize = 47;
        /// Room for keys, a modulus and white space.
        const SLACK: usize = 64 * 1024;
        let row = self.host_session(id, token)?;
        let settings = &self.cleanroom.settings;
        // A base64 Paillier ciphertext (below n², twice the key size) as a JSON string.
        let ciphertext = (settings.paillier_bits * 2 / 8).div_ceil(3) * 4 + 3;
        match row.state.as_str() {
            state::BLINDED => {
                let ours = self.cleanroom.ours(id).unwrap_or(0);
                let per_theirs = POINT + if row.with_sum { ciphertext } else { 0 };
                Ok(ours
                    .saturating_mul(POINT)
                    .saturating_add(settings.max_set.saturating_mul(per_theirs))
                    .saturating_add(SLACK))
            }
            state::SUMMING => Ok(SLACK),
            other => Err(session_error(SessionError::OutOfOrder(other.to_owned()))),
        }
    }

    /// Round 1: our blinded identifiers, sorted.
    ///
    /// # Errors
    /// Unknown session, bad token, expired, not the next step, too many customers.
    pub fn cleanroom_host_blinded(
        &self,
        id: &str,
        token: &str,
    ) -> Result<HostBlinded, EngineError> {
        let row = self.host_session(id, token)?;
        if row.state != state::INVITED {
            return Err(session_error(SessionError::OutOfOrder(row.state)));
        }
        let blinded = match self.blind_ours(&row) {
            Ok(b) => b,
            Err(e) => {
                self.abort(&row, &e.to_string())?;
                return Err(e);
            }
        };
        // The secrets are kept before the session moves on, so round 2 always finds them.
        let moved = self
            .store
            .write(|tx| tx.advance_session(id, state::INVITED, state::BLINDED, None))?;
        if !moved {
            self.cleanroom.take(id);
            return Err(session_error(SessionError::OutOfOrder(row.state)));
        }
        Ok(HostBlinded {
            output: Output::parse(&row.output).unwrap_or(Output::Cardinality),
            sum: row.with_sum,
            identifier: self.cleanroom.settings.identifier,
            blinded: blinded.iter().map(|b| b64(b)).collect(),
        })
    }

    /// Our consenting customers' identifiers, blinded with a fresh scalar and sorted; the
    /// scalar and who is behind each value kept in memory for round 2.
    fn blind_ours(
        &self,
        row: &consentric_store::SessionRow,
    ) -> Result<Vec<psi::Blinded>, EngineError> {
        let participants = self.participants()?;
        let max = self.cleanroom.settings.max_set;
        if participants.len() > max {
            return Err(session_error(SessionError::TooLarge(
                participants.len(),
                max,
            )));
        }
        let blinder = Blinder::random().map_err(|e| EngineError::Config(e.to_string()))?;
        let ids: Vec<String> = participants.iter().map(|(i, _)| i.clone()).collect();
        let blinded = blinder.blind(self.cleanroom.settings.identifier, &ids);
        // Sorted, with the customers carried along, so positions reveal nothing.
        let mut paired: Vec<(psi::Blinded, Vec<ProfileId>)> = blinded
            .into_iter()
            .zip(participants.into_iter().map(|(_, p)| p))
            .collect();
        paired.sort_unstable_by_key(|p| p.0);
        let (blinded, profiles): (Vec<_>, Vec<_>) = paired.into_iter().unzip();
        self.cleanroom.keep(
            &row.session_id,
            Secrets {
                blinder,
                profiles,
                ours: blinded.len(),
                summing: None,
                expires_at: row.expires_at,
            },
            self.clock.now().timestamp_millis(),
        );
        Ok(blinded)
    }

    /// Round 2: the cardinality, and for a sum `Enc(sum + mask)`.
    ///
    /// # Errors
    /// As round 1, and [`SessionError::Protocol`] (the session aborted) for a malformed
    /// message: bad points, ciphertexts outside the group, mismatched lengths.
    pub fn cleanroom_host_intersect(
        &self,
        id: &str,
        token: &str,
        msg: &GuestBlinded,
    ) -> Result<HostCount, EngineError> {
        let row = self.host_session(id, token)?;
        if row.state != state::BLINDED {
            return Err(session_error(SessionError::OutOfOrder(row.state)));
        }
        let Some(secrets) = self.cleanroom.take(id) else {
            self.abort(&row, "the host restarted mid-session")?;
            return Err(session_error(SessionError::OutOfOrder(
                "blinded, but this process no longer holds its secret".into(),
            )));
        };
        match self.intersect(&row, secrets, msg) {
            Ok(reply) => Ok(reply),
            Err(e) => {
                self.abort(&row, &e.to_string())?;
                Err(e)
            }
        }
    }

    fn intersect(
        &self,
        row: &consentric_store::SessionRow,
        mut secrets: Secrets,
        msg: &GuestBlinded,
    ) -> Result<HostCount, EngineError> {
        let protocol = |m: String| session_error(SessionError::Protocol(m));
        let min = self.cleanroom.settings.min_set;
        if msg.blinded.len() < min {
            return Err(session_error(SessionError::TooSmall(
                msg.blinded.len(),
                min,
            )));
        }
        let max = self.cleanroom.settings.max_set;
        if msg.blinded.len() > max {
            return Err(session_error(SessionError::TooLarge(
                msg.blinded.len(),
                max,
            )));
        }
        if msg.double_blinded.len() != secrets.ours {
            return Err(protocol(format!(
                "{} doubly blinded values for the {} sent",
                msg.double_blinded.len(),
                secrets.ours
            )));
        }
        let ab = points(&msg.double_blinded, "double_blinded")?;
        let theirs = points(&msg.blinded, "blinded")?;
        let ba = secrets
            .blinder
            .reblind(&theirs)
            .map_err(|e| protocol(e.to_string()))?;
        let output = Output::parse(&row.output).unwrap_or(Output::Cardinality);
        let (cardinality, matched) = match output {
            Output::Cardinality => (psi::cardinality(&ab, &ba), Vec::new()),
            Output::Matches => {
                let m = psi::matched(&ab, &ba);
                let ids: Vec<String> = m
                    .iter()
                    .flat_map(|&i| secrets.profiles[i].iter().map(|p| p.as_str().to_owned()))
                    .collect();
                (m.len(), ids)
            }
        };
        let now = self.clock.now().timestamp_millis();
        if !row.with_sum {
            if msg.values.is_some() || msg.paillier_modulus.is_some() {
                return Err(protocol("values sent to a session without a sum".into()));
            }
            let result = json!({"cardinality": cardinality, "ours": secrets.ours,
                "theirs": theirs.len(), "matched": (output == Output::Matches).then_some(&matched)});
            self.finish(row, state::BLINDED, &result, now)?;
            return Ok(HostCount {
                cardinality,
                masked_sum: None,
            });
        }
        let (Some(values), Some(modulus)) = (&msg.values, &msg.paillier_modulus) else {
            return Err(protocol(
                "a sum needs values and the Paillier modulus".into(),
            ));
        };
        if values.len() != theirs.len() {
            return Err(protocol(format!(
                "{} values for {} identifiers",
                values.len(),
                theirs.len()
            )));
        }
        let pk = PublicKey::from_bytes(&unb64(modulus, "paillier_modulus")?)
            .map_err(|e| protocol(e.to_string()))?;
        let ours: HashSet<&psi::Blinded> = ab.iter().collect();
        let mut picked = Vec::new();
        for (j, v) in values.iter().enumerate() {
            let c = pk
                .ciphertext(&unb64(v, "values")?)
                .map_err(|e| protocol(format!("values[{j}]: {e}")))?;
            if ours.contains(&ba[j]) {
                picked.push(c);
            }
        }
        let total = pk.sum(&picked);
        let mask = consentric_pets::paillier::random_below(pk.modulus())
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let masked = pk.add(
            &total,
            &pk.encrypt(&mask).map_err(|e| protocol(e.to_string()))?,
        );
        let masked = pk
            .rerandomize(&masked)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let moved = self.store.write(|tx| {
            tx.advance_session(&row.session_id, state::BLINDED, state::SUMMING, None)
        })?;
        if !moved {
            return Err(session_error(SessionError::OutOfOrder(row.state.clone())));
        }
        secrets.summing = Some(Summing {
            cardinality,
            theirs: theirs.len(),
            key: pk,
            mask,
            matched: (output == Output::Matches).then_some(matched),
        });
        self.cleanroom.keep(
            &row.session_id,
            secrets,
            self.clock.now().timestamp_millis(),
        );
        Ok(HostCount {
            cardinality,
            masked_sum: Some(b64(&masked.to_bytes())),
        })
    }

    /// Round 3: the sum, unmasked; the session is done.
    ///
    /// # Errors
    /// As round 1; a masked sum that is not a number below the modulus.
    pub fn cleanroom_host_sum(
        &self,
        id: &str,
        token: &str,
        msg: &GuestSum,
    ) -> Result<SessionView, EngineError> {
        let row = self.host_session(id, token)?;
        if row.state != state::SUMMING {
            return Err(session_error(SessionError::OutOfOrder(row.state)));
        }
        let Some(secrets) = self.cleanroom.take(id) else {
            self.abort(&row, "the host restarted mid-session")?;
            return Err(session_error(SessionError::OutOfOrder(
                "summing, but this process no longer holds its mask".into(),
            )));
        };
        let Some(Summing {
            cardinality,
            theirs,
            key: pk,
            mask,
            matched,
        }) = secrets.summing
        else {
            self.abort(&row, "no sum in flight")?;
            return Err(session_error(SessionError::OutOfOrder(row.state)));
        };
        let x: UBig = match msg.masked_sum.parse::<UBig>() {
            Ok(x) if &x < pk.modulus() => x,
            _ => {
                self.abort(&row, "a masked sum that is not a number below the modulus")?;
                return Err(session_error(SessionError::Protocol(
                    "masked_sum must be a decimal number below the modulus".into(),
                )));
            }
        };
        let n = pk.modulus();
        let sum = (x + n - &mask) % n;
        let result = json!({"cardinality": cardinality, "ours": secrets.ours, "theirs": theirs,
            "sum": sum.to_string(), "matched": matched});
        self.finish(
            &row,
            state::SUMMING,
            &result,
            self.clock.now().timestamp_millis(),
        )?;
        self.cleanroom_session(id)
    }

    fn finish(
        &self,
        row: &consentric_store::SessionRow,
        from: &str,
        result: &serde_json::Value,
        now: i64,
    ) -> Result<(), EngineError> {
        let settings = &self.cleanroom.settings;
        let revealed: Vec<&str> = ["cardinality"]
            .into_iter()
            .chain((row.output == "matches").then_some("matches"))
            .chain(row.with_sum.then_some("sum"))
            .collect();
        let mut result = result.clone();
        result["completed_at"] = json!(now);
        let moved = self.store.write(|tx| {
            let moved = tx.advance_session(
                &row.session_id,
                from,
                state::DONE,
                Some(&result.to_string()),
            )?;
            if moved {
                audit::append(
                    tx,
                    now,
                    &format!("partner:{}", row.partner),
                    "cleanroom.completed",
                    None,
                    &json!({"session": row.session_id, "partner": row.partner,
                        "purpose": settings.purpose, "ours": result["ours"],
                        "theirs": result["theirs"], "cardinality": result["cardinality"],
                        "revealed": revealed}),
                )?;
            }
            Ok::<_, consentric_store::StoreError>(moved)
        })?;
        if moved {
            Ok(())
        } else {
            Err(session_error(SessionError::OutOfOrder(row.state.clone())))
        }
    }
}
