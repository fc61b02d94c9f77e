//! The guest's side: join an invitation, answer the host's blinded identifiers with ours (and
//! our values, encrypted under a key made for this session), decrypt the masked sum.

use consentric_model::ProfileId;
use consentric_pets::paillier::SecretKey;
use consentric_pets::psi::{self, Blinder};
use serde_json::json;

use super::host::token_hash;
use super::{
    b64, points, state, unb64, GuestBlinded, GuestSum, HostBlinded, HostCount, SessionError,
    SessionView,
};
use crate::audit;
use crate::engine::Engine;
use crate::error::EngineError;

/// Where and how to reach the host of a joined session.
#[derive(Debug, Clone)]
pub struct GuestRun {
    /// The session.
    pub session: String,
    /// The host's base URL.
    pub host_url: String,
    /// The token to present.
    pub token: String,
}

/// What the guest must remember between its rounds.
pub struct GuestSecrets {
    key: Option<SecretKey>,
    ours: usize,
}

impl std::fmt::Debug for GuestSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestSecrets")
            .field("ours", &self.ours)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Records an invitation from a host, to run later. Audited.
    ///
    /// # Errors
    /// A bad URL or empty token; a database fault.
    pub fn cleanroom_join(
        &self,
        host_url: &str,
        session: &str,
        token: &str,
        partner: &str,
        actor: &str,
    ) -> Result<SessionView, EngineError> {
        let invalid = |field: &str, m: &str| EngineError::Invalid {
            field: field.into(),
            message: m.into(),
        };
        if !(host_url.starts_with("http://") || host_url.starts_with("https://")) {
            return Err(invalid("host_url", "an http(s) URL"));
        }
        if session.is_empty()
            || session.len() > 64
            || !session.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(invalid("session", "the session id the host gave"));
        }
        if token.len() < 32 {
            return Err(invalid("token", "the session token the host gave"));
        }
        let now = self.now().timestamp_millis();
        let row = consentric_store::SessionRow {
            session_id: session.to_owned(),
            role: "guest".into(),
            token_hash: token_hash(token),
            host_url: Some(host_url.trim_end_matches('/').to_owned()),
            token: Some(token.to_owned()),
            output: "cardinality".into(),
            with_sum: false,
            partner: partner.to_owned(),
            state: state::INVITED.into(),
            created_at: now,
            expires_at: now + i64::from(self.cleanroom.settings.session_minutes) * 60_000,
            result: None,
        };
        self.store.write(|tx| {
            tx.create_session(&row)?;
            audit::append(
                tx,
                now,
                actor,
                "cleanroom.joined",
                None,
                &json!({"session": session, "host": row.host_url, "partner": partner,
                    "purpose": self.cleanroom.settings.purpose}),
            )
        })?;
        self.cleanroom_session(session)
    }

    /// How to reach the host of joined session `id`.
    ///
    /// # Errors
    /// Not a joined session, or no longer runnable.
    pub fn cleanroom_guest(&self, id: &str) -> Result<GuestRun, EngineError> {
        let row = self
            .store
            .session(id)?
            .filter(|r| r.role == "guest")
            .ok_or_else(|| EngineError::NotFound(format!("joined session `{id}`")))?;
        match (row.host_url, row.token) {
            (Some(host_url), Some(token)) if row.state == state::INVITED => Ok(GuestRun {
                session: row.session_id,
                host_url,
                token,
            }),
            _ => Err(EngineError::Session(SessionError::OutOfOrder(row.state))),
        }
    }

    /// Round 2, guest side: the host's identifiers blinded again, ours blinded, and for a
    /// sum our values (revenue, in cents) encrypted under a key made now.
    ///
    /// # Errors
    /// A malformed round 1; too many identifiers; a database fault.
    pub fn cleanroom_guest_answer(
        &self,
        id: &str,
        round1: &HostBlinded,
    ) -> Result<(GuestBlinded, GuestSecrets), EngineError> {
        let protocol = |m: String| EngineError::Session(SessionError::Protocol(m));
        // Only a session we joined, and have not run yet.
        self.cleanroom_guest(id)?;
        let settings = &self.cleanroom.settings;
        if round1.identifier != settings.identifier {
            return Err(protocol(format!(
                "the host matches {:?}, we match {:?}",
                round1.identifier, settings.identifier
            )));
        }
        let max = settings.max_set;
        if round1.blinded.len() > max {
            return Err(EngineError::Session(SessionError::TooLarge(
                round1.blinded.len(),
                max,
            )));
        }
        let theirs = points(&round1.blinded, "blinded")?;
        let blinder = Blinder::random().map_err(|e| EngineError::Config(e.to_string()))?;
        let mut double = blinder
            .reblind(&theirs)
            .map_err(|e| protocol(e.to_string()))?;
        if round1.output == super::Output::Cardinality {
            double = psi::shuffled(double);
        }
        let participants = self.participants()?;
        if participants.len() > max {
            return Err(EngineError::Session(SessionError::TooLarge(
                participants.len(),
                max,
            )));
        }
        let ids: Vec<String> = participants.iter().map(|(i, _)| i.clone()).collect();
        let mine = blinder.blind(settings.identifier, &ids);
        let mut paired: Vec<(psi::Blinded, &Vec<ProfileId>)> = mine
            .into_iter()
            .zip(participants.iter().map(|(_, p)| p))
            .collect();
        paired.sort_unstable_by_key(|p| p.0);
        let (key, values) = if round1.sum {
            let key = SecretKey::generate(settings.paillier_bits)
                .map_err(|e| EngineError::Config(e.to_string()))?;
            let cents = self.values_in_cents(paired.iter().map(|(_, p)| *p))?;
            let values = key
                .encrypt_many(&cents)
                .map_err(|e| EngineError::Config(e.to_string()))?
                .iter()
                .map(|c| b64(&c.to_bytes()))
                .collect();
            (Some(key), Some(values))
        } else {
            (None, None)
        };
        let ours = paired.len();
        let message = GuestBlinded {
            double_blinded: double.iter().map(|b| b64(b)).collect(),
            blinded: paired.iter().map(|(b, _)| b64(b)).collect(),
            paillier_modulus: key.as_ref().map(|k| b64(&k.public().to_bytes())),
            values,
        };
        Ok((message, GuestSecrets { key, ours }))
    }

    /// Each identifier's value: the revenue of the customers holding it, in cents (those
    /// whose grant opens transactions).
    fn values_in_cents<'a>(
        &self,
        holders: impl Iterator<Item = &'a Vec<ProfileId>>,
    ) -> Result<Vec<u64>, EngineError> {
        let population =
            self.population_for(&self.cleanroom.settings.purpose, self.now(), "cleanroom")?;
        let open = consentric_policy::DataCategory::parse("user.financial.transaction")
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let grants: Vec<_> = population
            .grants
            .iter()
            .filter(|g| g.permits(&open))
            .cloned()
            .collect();
        let counters = self.store.counters_for(&grants)?;
        let by_profile: std::collections::HashMap<&str, f64> = grants
            .iter()
            .zip(&counters)
            .filter_map(|(g, c)| c.as_ref().map(|c| (g.subject(), c.revenue)))
            .collect();
        Ok(holders
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| by_profile.get(p.as_str()))
                    .map(|r| (r.max(0.0) * 100.0).round() as u64)
                    .sum()
            })
            .collect())
    }

    /// Round 3, guest side: the masked sum decrypted (for a sum), and the session recorded
    /// as done with the cardinality the host reported.
    ///
    /// # Errors
    /// A malformed reply; a database fault.
    pub fn cleanroom_guest_finish(
        &self,
        id: &str,
        secrets: &GuestSecrets,
        reply: &HostCount,
        round1: &HostBlinded,
    ) -> Result<Option<GuestSum>, EngineError> {
        let protocol = |m: String| EngineError::Session(SessionError::Protocol(m));
        let sum = match (&secrets.key, &reply.masked_sum) {
            (Some(key), Some(c)) => {
                let c = key
                    .public()
                    .ciphertext(&unb64(c, "masked_sum")?)
                    .map_err(|e| protocol(e.to_string()))?;
                Some(GuestSum {
                    masked_sum: key.decrypt(&c).to_string(),
                })
            }
            (None, None) => None,
            _ => {
                return Err(protocol(
                    "the host's reply does not match the session".into(),
                ))
            }
        };
        let now = self.now().timestamp_millis();
        let result = json!({"cardinality": reply.cardinality, "ours": secrets.ours,
            "theirs": round1.blinded.len(), "output": round1.output, "sum": round1.sum});
        self.store.write(|tx| {
            if tx.advance_session(id, state::INVITED, state::DONE, Some(&result.to_string()))? {
                audit::append(
                    tx,
                    now,
                    "cleanroom",
                    "cleanroom.completed",
                    None,
                    &json!({"session": id, "role": "guest", "purpose": self.cleanroom.settings.purpose,
                        "ours": secrets.ours, "theirs": round1.blinded.len(),
                        "cardinality": reply.cardinality,
                        "revealed_to_host": {"output": round1.output, "sum": round1.sum}}),
                )?;
            }
            Ok::<_, consentric_store::StoreError>(())
        })?;
        Ok(sum)
    }

    /// Marks a joined session aborted (the host refused a step).
    ///
    /// # Errors
    /// A database fault.
    pub fn cleanroom_guest_abort(&self, id: &str, why: &str) -> Result<(), EngineError> {
        if let Some(row) = self.store.session(id)? {
            self.abort(&row, why)?;
        }
        Ok(())
    }
}
