//! Who has a basis for a purpose: every customer folded through the gate, remembered until it
//! could have changed. It changes only when a commit creates, merges or deletes a profile or
//! writes the consent ledger (the store's population epoch, kept in the database so other
//! processes' commits count too), or when the clock passes a recorded decision's time. Both are
//! checked on every use, so a withdrawal is honoured by the next read, never a stale one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentric_policy::{gate, ConsentState, Grant, Refusal};

use crate::context::Context;
use crate::error::EngineError;
use crate::population_cache::Population;

impl Context {
    /// Everyone with a basis for `purpose` at `at` (`section` names the configuration that chose
    /// the purpose, for the error when it is unknown).
    pub(crate) fn population_for(
        &self,
        purpose: &str,
        at: DateTime<Utc>,
        section: &str,
    ) -> Result<Arc<Population>, EngineError> {
        let at_ms = at.timestamp_millis();
        // Read before folding: a commit that lands meanwhile bumps the epoch past this one, so
        // what is cached below is recomputed on the next use rather than trusted.
        let epoch = self.store.population_epoch()?;
        if let Some(p) = self.population_cache.get(purpose) {
            if p.holds(epoch, at_ms) {
                return Ok(p);
            }
        }
        let ledgers = self.store.consent_about(purpose)?;
        let (mut from, mut until) = (i64::MIN, i64::MAX);
        for row in ledgers.values().flatten() {
            if row.decided_at <= at_ms {
                from = from.max(row.decided_at);
            } else {
                until = until.min(row.decided_at);
            }
        }
        let mut grants = Vec::new();
        let mut refused = 0;
        for id in self.store.profile_ids()? {
            let rows = ledgers.get(&id).map(Vec::as_slice).unwrap_or_default();
            let state = ConsentState::fold(crate::ledger::to_records(rows));
            match gate::open(&self.policy.registry, &state, purpose, id.as_str(), at) {
                Ok(g) => grants.push(g),
                Err(Refusal::NoBasis { .. }) => refused += 1,
                Err(Refusal::UnknownPurpose(p)) => {
                    return Err(EngineError::Config(format!(
                        "[{section}] names the unknown purpose `{p}`"
                    )))
                }
            }
        }
        let population = Arc::new(Population {
            grants,
            refused,
            epoch,
            from,
            until,
        });
        self.population_cache.put(purpose, population.clone());
        Ok(population)
    }

    /// Grants for `purpose` over every customer the gate lets in at `at` and whose grant
    /// `keep` accepts, and how many were left out.
    pub(crate) fn population_where(
        &self,
        purpose: &str,
        at: DateTime<Utc>,
        section: &str,
        keep: fn(&Grant) -> bool,
    ) -> Result<(Vec<Grant>, usize), EngineError> {
        let population = self.population_for(purpose, at, section)?;
        let grants: Vec<Grant> = population
            .grants
            .iter()
            .filter(|g| keep(g))
            .cloned()
            .collect();
        let left_out = population.refused + (population.grants.len() - grants.len());
        Ok((grants, left_out))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use consentric_model::{parse_batch, Envelope};
    use consentric_testkit::parity_test;
    use serde_json::{json, Value};

    use crate::{FixedClock, ProfileRef};

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, day, 0, 0, 0)
            .single()
            .expect("time")
    }

    fn send(engine: &Context, events: &[Value]) {
        let env = Envelope {
            received_at: Utc::now(),
            request_id: "r".into(),
        };
        let batch = parse_batch(json!({ "batch": events }).to_string().as_bytes(), &env)
            .expect("valid")
            .events;
        engine.ingest(batch).expect("ingest");
    }

    fn visit(user: &str, day: u32, analytics: Option<bool>) -> Value {
        let mut e = json!({"type": "track", "event": "Page Viewed", "userId": user,
            "messageId": format!("{user}-{day}-{analytics:?}"),
            "timestamp": at(day).to_rfc3339()});
        if let Some(a) = analytics {
            e["context"] = json!({"consent": {"categoryPreferences": {"analytics": a}}});
        }
        e
    }

    fn count(engine: &Context) -> usize {
        engine
            .population_for("analytics", engine.now(), "test")
            .expect("population")
            .grants
            .len()
    }

    parity_test!(the_population_follows_every_change_that_decides_it, |db| {
        let clock = Arc::new(FixedClock::new(at(10)));
        let engine = Context::new(db.store(), clock.clone());
        let events: Vec<Value> = (0..6)
            .map(|i| visit(&format!("c{i}"), 1, Some(i % 3 != 0)))
            .collect();
        send(&engine, &events);
        assert_eq!(count(&engine), 4);
        let first = engine
            .population_for("analytics", engine.now(), "t")
            .expect("p");
        let again = engine
            .population_for("analytics", engine.now(), "t")
            .expect("p");
        assert!(Arc::ptr_eq(&first, &again), "nothing changed: reused");

        // A withdrawal is honoured by the very next read.
        let c1 = ProfileRef::parse("c1").expect("ref");
        engine
            .set_consent(&c1, &[("analytics".into(), "withdrawn".into())], "t", b"{}")
            .expect("withdraw");
        assert_eq!(count(&engine), 3);

        // A new customer who grants counts at once; one who sends nothing about it does not.
        send(&engine, &[visit("c6", 2, Some(true)), visit("c7", 2, None)]);
        assert_eq!(count(&engine), 4);

        // Another process's commit (a second store over the same database) counts too.
        let other = Context::new(db.store(), clock.clone());
        send(&other, &[visit("c8", 3, Some(true))]);
        assert_eq!(count(&engine), 5);

        // A decision dated in the future takes effect when the clock reaches it, with no
        // commit in between.
        send(&engine, &[visit("c9", 20, Some(true))]);
        assert_eq!(count(&engine), 5);
        clock.set(at(19));
        assert_eq!(count(&engine), 5);
        clock.set(at(20));
        assert_eq!(count(&engine), 6);
        // And asking about an earlier moment gives that moment's answer.
        clock.set(at(1));
        assert_eq!(count(&engine), 4);
    });
}
