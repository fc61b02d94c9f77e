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
use crate::error::EngineError;

/// An invitation received from a host, with the terms it was sent with.
#[derive(Debug, Clone)]
pub struct Joining {
    /// The host's base URL (https, or http to this machine).
    pub host_url: String,
    /// The session id.
    pub session: String,
    /// The session token.
    pub token: String,
    /// Who the host is.
    pub partner: String,
    /// What the host said the session reveals; round 1 must agree.
    pub output: super::Output,
    /// Whether the host said it sums our values; round 1 must agree.
    pub sum: bool,
}

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

/// What this service works on, handed to it by the context.
pub(crate) struct GuestService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) cleanroom: &'a crate::cleanroom::Cleanroom,
    pub(crate) populations: crate::population::Populations<'a>,
    pub(crate) cleanroom_host: crate::cleanroom::host::HostService<'a>,
}

impl GuestService<'_> {
    /// Records an invitation from a host, to run later. Audited.
    ///
    /// # Errors
    /// A bad URL or empty token; a database fault.
    pub fn cleanroom_join(
        &self,
        invitation: &Joining,
        actor: &str,
    ) -> Result<SessionView, EngineError> {
        let Joining {
            host_url,
            session,
            token,
            partner,
            output,
            sum,
        } = invitation;
        let invalid = |field: &str, m: &str| EngineError::Invalid {
            field: field.into(),
            message: m.into(),
        };
        // The token and the messages travel in the clear over http: only to this machine.
        // A host and nothing else before the path: no credentials (`user:pw@`, which would be
        // kept in the audit log), no whitespace, and then a path or nothing (the rounds' paths
        // are appended, so a query or fragment would swallow them).
        let has_host = host_url.split_once("://").is_some_and(|(_, rest)| {
            let (authority, after) =
                rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
            !authority.is_empty()
                && !authority.starts_with(':')
                && !authority.contains(|c: char| c == '@' || c.is_whitespace())
                && !after.contains(['?', '#'])
        });
        if !has_host
            || host_url.chars().any(char::is_control)
            || !(host_url.starts_with("https://") || is_loopback_http(host_url))
        {
            return Err(invalid(
                "host_url",
                "an https URL (http only to this machine)",
            ));
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
        if !super::is_partner_name(partner) {
            return Err(invalid(
                "partner",
                "name the host (1 to 200 bytes, no control characters)",
            ));
        }
        let now = self.clock.now().timestamp_millis();
        let row = consentric_store::SessionRow {
            session_id: session.to_owned(),
            role: "guest".into(),
            token_hash: token_hash(token),
            host_url: Some(host_url.trim_end_matches('/').to_owned()),
            token: Some(token.to_owned()),
            output: output.as_str().into(),
            with_sum: *sum,
            partner: partner.to_owned(),
            state: state::INVITED.into(),
            created_at: now,
            expires_at: now + i64::from(self.cleanroom.settings.session_minutes) * 60_000,
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
                "cleanroom.joined",
                None,
                &json!({"session": session, "host": row.host_url, "partner": partner,
                    "purpose": self.cleanroom.settings.purpose, "output": output.as_str(),
                    "sum": sum}),
            )?;
            Ok(true)
        })?;
        if !created {
            return Err(EngineError::Conflict(format!(
                "a session with id `{session}` is recorded here already"
            )));
        }
        self.cleanroom_host.cleanroom_session(session)
    }

    /// Starts running joined session `id`: it moves to `running` (so two runs cannot both
    /// go ahead) and says how to reach its host.
    ///
    /// # Errors
    /// Not a joined session, expired, or already run.
    pub fn cleanroom_guest(&self, id: &str) -> Result<GuestRun, EngineError> {
        let row = self.guest_row(id)?;
        if self.clock.now().timestamp_millis() > row.expires_at {
            self.cleanroom_host.abort(&row, "expired")?;
            return Err(EngineError::Session(SessionError::Expired));
        }
        let started = self
            .store
            .write(|tx| tx.advance_session(id, state::INVITED, state::RUNNING, None))?;
        match (row.host_url, row.token) {
            (Some(host_url), Some(token)) if started => Ok(GuestRun {
                session: row.session_id,
                host_url,
                token,
            }),
            _ => Err(EngineError::Session(SessionError::OutOfOrder(row.state))),
        }
    }

    fn guest_row(&self, id: &str) -> Result<consentric_store::SessionRow, EngineError> {
        self.store
            .session(id)?
            .filter(|r| r.role == "guest")
            .ok_or_else(|| EngineError::NotFound(format!("joined session `{id}`")))
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
        // Only a session we are running, on the terms we joined.
        let row = self.guest_row(id)?;
        if row.state != state::RUNNING {
            return Err(EngineError::Session(SessionError::OutOfOrder(row.state)));
        }
        if round1.output.as_str() != row.output || round1.sum != row.with_sum {
            return Err(protocol(format!(
                "the host asks for {} with sum {}; we joined for {} with sum {}",
                round1.output.as_str(),
                round1.sum,
                row.output,
                row.with_sum
            )));
        }
        let settings = &self.cleanroom.settings;
        if round1.identifier != settings.identifier {
            return Err(protocol(format!(
                "the host matches {:?}, we match {:?}",
                round1.identifier, settings.identifier
            )));
        }
        if round1.blinded.len() < settings.min_set {
            return Err(EngineError::Session(SessionError::TooSmall(
                round1.blinded.len(),
                settings.min_set,
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
        let participants = self.cleanroom_host.participants()?;
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
        let population = self.populations.population_for(
            &self.cleanroom.settings.purpose,
            self.clock.now(),
            "cleanroom",
        )?;
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

    /// Round 3, guest side: the masked sum decrypted — only for a sum, and only when the
    /// intersection is at least `[cleanroom] min_sum_cardinality` (a sum over one or a few
    /// customers would be their values).
    ///
    /// # Errors
    /// A malformed reply, or too small an intersection.
    pub fn cleanroom_guest_reveal(
        &self,
        secrets: &GuestSecrets,
        reply: &HostCount,
    ) -> Result<Option<GuestSum>, EngineError> {
        let protocol = |m: String| EngineError::Session(SessionError::Protocol(m));
        match (&secrets.key, &reply.masked_sum) {
            (Some(key), Some(c)) => {
                let min = self.cleanroom.settings.min_sum_cardinality;
                if reply.cardinality < min {
                    return Err(protocol(format!(
                        "a sum over {} customers (fewer than {min}) would reveal their values",
                        reply.cardinality
                    )));
                }
                let c = key
                    .public()
                    .ciphertext(&unb64(c, "masked_sum")?)
                    .map_err(|e| protocol(e.to_string()))?;
                Ok(Some(GuestSum {
                    masked_sum: key.decrypt(&c).to_string(),
                }))
            }
            (None, None) => Ok(None),
            _ => Err(protocol(
                "the host's reply does not match the session".into(),
            )),
        }
    }

    /// The session done, as the guest saw it: recorded and audited once every round was
    /// accepted.
    ///
    /// # Errors
    /// Not running any more; a database fault.
    pub fn cleanroom_guest_complete(
        &self,
        id: &str,
        secrets: &GuestSecrets,
        reply: &HostCount,
        round1: &HostBlinded,
    ) -> Result<SessionView, EngineError> {
        let row = self.guest_row(id)?;
        let now = self.clock.now().timestamp_millis();
        let result = json!({"cardinality": reply.cardinality, "ours": secrets.ours,
            "theirs": round1.blinded.len(), "output": round1.output, "sum": round1.sum,
            "completed_at": now});
        let done = self.store.write(|tx| {
            let done =
                tx.advance_session(id, state::RUNNING, state::DONE, Some(&result.to_string()))?;
            if done {
                audit::append(
                    tx,
                    now,
                    &format!("partner:{}", row.partner),
                    "cleanroom.completed",
                    None,
                    &json!({"session": id, "role": "guest", "partner": row.partner,
                        "purpose": self.cleanroom.settings.purpose,
                        "ours": secrets.ours, "theirs": round1.blinded.len(),
                        "cardinality": reply.cardinality,
                        "revealed_to_host": {"output": round1.output, "sum": round1.sum}}),
                )?;
            }
            Ok::<_, consentric_store::StoreError>(done)
        })?;
        if !done {
            return Err(EngineError::Session(SessionError::OutOfOrder(row.state)));
        }
        self.cleanroom_host.cleanroom_session(id)
    }

    /// Marks a joined session aborted (the host refused a step).
    ///
    /// # Errors
    /// A database fault.
    pub fn cleanroom_guest_abort(&self, id: &str, why: &str) -> Result<(), EngineError> {
        match self.store.session(id)? {
            Some(row) if row.role == "guest" => self.cleanroom_host.abort(&row, why),
            _ => Ok(()),
        }
    }
}

/// Whether `url` is plain http to this machine: its authority is exactly `localhost`,
/// `127.0.0.1` or `[::1]`, with at most a port. A prefix test would also pass
/// `http://localhost.example.com` or `http://127.0.0.1:80@example.com`, which send the token
/// in the clear to another machine.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    ["localhost", "127.0.0.1", "[::1]"].iter().any(|host| {
        authority.strip_prefix(host).is_some_and(|port| {
            port.is_empty()
                || port
                    .strip_prefix(':')
                    .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::is_loopback_http;

    #[test]
    fn plain_http_goes_only_to_this_machine() {
        for ok in [
            "http://127.0.0.1",
            "http://localhost:8080",
            "http://[::1]:9/",
            "http://127.0.0.1:7878/base",
        ] {
            assert!(is_loopback_http(ok), "{ok}");
        }
        for refused in [
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io:80",
            "http://127.0.0.1@example.com",
            "http://127.0.0.1:80@example.com/",
            "http://localhost:",
            "http://localhost:80x",
            "https://localhost",
            "http://example.com/http://localhost",
        ] {
            assert!(!is_loopback_http(refused), "{refused}");
        }
    }
}
