//! Kept segment membership: evaluated for everyone when a segment is defined, then for the
//! customers ingest and consent changes touch (refreshed by `serve` every few seconds, in full
//! daily); a customer without a basis for the personalisation purpose is in no segment.

use consentric_personalize::segments::{Condition, Field};
use serde::Serialize;
use serde_json::{json, Value};

use crate::audit;
use crate::error::EngineError;

/// A segment's members as kept up to date (on ingest and consent changes, by `serve`'s
/// refresher or `segments refresh`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentMembers {
    /// The segment.
    pub name: String,
    /// Customers in it.
    pub size: u64,
    /// Up to the requested number, longest members first (profile ids).
    pub members: Vec<String>,
    /// Customers whose membership is waiting for the next refresh.
    pub pending: usize,
}

/// What a refresh of memberships did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRefresh {
    /// Customers evaluated.
    pub customers: usize,
    /// Memberships begun.
    pub joined: u64,
    /// Memberships ended.
    pub left: u64,
}

/// What this service works on, handed to it by the context.
pub(crate) struct MembershipService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) personalize: &'a crate::personalize::Personalize,
    pub(crate) segment_facts: crate::personalize::facts::SegmentFacts<'a>,
}

/// Customers a refresh takes from the noted set at a time.
const TOUCHED_PER_REFRESH: i64 = 10_000;

impl MembershipService<'_> {
    /// A segment's members as kept: its size and up to `limit` members.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn segment_members(&self, name: &str, limit: usize) -> Result<SegmentMembers, EngineError> {
        if !self.store.segments()?.iter().any(|s| s.name == name) {
            return Err(EngineError::NotFound(format!("segment `{name}`")));
        }
        let (size, members) = self.store.segment_members(name, limit)?;
        let pending = usize::try_from(self.store.touched_count()?).unwrap_or(usize::MAX);
        Ok(SegmentMembers {
            name: name.to_owned(),
            size,
            members: members.into_iter().map(|p| p.to_string()).collect(),
            pending,
        })
    }

    /// Re-evaluates the segments of the customers written to (or whose consent changed) since
    /// the last refresh — or of everyone (`everyone`: time-window conditions change as days
    /// pass) — and stores who joined and who left. Audited when anything is evaluated.
    ///
    /// # Errors
    /// A database fault (the customers taken stay noted for the next refresh).
    pub fn refresh_segments(
        &self,
        everyone: bool,
        actor: &str,
    ) -> Result<SegmentRefresh, EngineError> {
        if everyone {
            // Everyone is evaluated: what was noted before now is covered.
            while !self.store.take_touched(TOUCHED_PER_REFRESH)?.is_empty() {}
            return self.evaluate_memberships(None, None, actor);
        }
        let mut total = SegmentRefresh {
            customers: 0,
            joined: 0,
            left: 0,
        };
        // Those waiting when it began: customers noted while it runs wait for the next refresh,
        // so a refresh ends even while writes keep coming.
        let mut waiting = self.store.touched_count()?;
        while waiting > 0 {
            let ids = self.store.take_touched(TOUCHED_PER_REFRESH)?;
            if ids.is_empty() {
                break;
            }
            waiting = waiting.saturating_sub(ids.len() as u64);
            let done = self
                .evaluate_memberships(Some(ids.clone()), None, actor)
                .inspect_err(|_| {
                    // Noted again for the next refresh.
                    let _ = self.store.write(|tx| tx.note_touched(&ids));
                })?;
            total.customers += done.customers;
            total.joined += done.joined;
            total.left += done.left;
        }
        Ok(total)
    }

    /// Evaluates `only` one segment (or all) for `customers` (or everyone) and writes the
    /// differences in one transaction. A customer without a basis leaves every segment.
    pub(super) fn evaluate_memberships(
        &self,
        customers: Option<Vec<consentric_model::ProfileId>>,
        only: Option<&str>,
        actor: &str,
    ) -> Result<SegmentRefresh, EngineError> {
        let segments: Vec<(String, Condition)> = self
            .store
            .segments()?
            .into_iter()
            .filter(|s| only.is_none_or(|o| o == s.name))
            .filter_map(|s| {
                let v: Value = serde_json::from_str(&s.definition).ok()?;
                Some((s.name, Condition::parse(&v).ok()?))
            })
            .collect();
        if segments.is_empty() {
            return Ok(SegmentRefresh {
                customers: 0,
                joined: 0,
                left: 0,
            });
        }
        let purpose = &self.personalize.settings.purpose;
        let now = self.clock.now();
        // Everyone: the records deciding the purpose's basis, read in one scan.
        let (ids, ledgers) = match customers {
            Some(ids) => (ids, None),
            None => (
                self.store.profile_ids()?,
                Some(self.store.consent_about(purpose)?),
            ),
        };
        let fields: Vec<Field> = {
            let mut all: Vec<Field> = segments
                .iter()
                .flat_map(|(_, c)| c.fields().into_iter().cloned())
                .collect();
            all.sort();
            all.dedup();
            all
        };
        // Decide outside the write: who should be in what.
        let mut wanted: Vec<(consentric_model::ProfileId, Vec<&str>)> =
            Vec::with_capacity(ids.len());
        for id in ids {
            let fetched;
            let rows = match &ledgers {
                Some(all) => all.get(&id).map(Vec::as_slice).unwrap_or_default(),
                None => {
                    fetched = self.store.consent(&id)?;
                    fetched.as_slice()
                }
            };
            let consent = consentric_policy::ConsentState::fold(crate::ledger::to_records(rows));
            let grant = consentric_policy::gate::open(
                &self.policy.registry,
                &consent,
                purpose,
                id.as_str(),
                now,
            );
            let inside: Vec<&str> = match grant {
                Ok(g) => {
                    let facts = self.segment_facts.segment_facts(
                        &g,
                        &fields.iter().collect::<Vec<_>>(),
                        now,
                    )?;
                    segments
                        .iter()
                        .filter(|(_, c)| c.holds(&|f| facts.get(f).cloned()))
                        .map(|(n, _)| n.as_str())
                        .collect()
                }
                Err(_) => Vec::new(),
            };
            wanted.push((id, inside));
        }
        let at = now.timestamp_millis();
        let customers = wanted.len();
        let (joined, left) = self.store.write(|tx| {
            let (mut joined, mut left) = (0u64, 0u64);
            for (id, inside) in &wanted {
                let current = tx.memberships(id)?;
                for (name, _) in &segments {
                    let is_in = current.iter().any(|c| c == name);
                    let should = inside.contains(&name.as_str());
                    if should && !is_in {
                        tx.join_segment(name, id, at)?;
                        joined += 1;
                    } else if !should && is_in {
                        tx.leave_segment(name, id)?;
                        left += 1;
                    }
                }
            }
            audit::append(
                tx,
                at,
                actor,
                "segments.refreshed",
                None,
                &json!({"purpose": purpose, "customers": customers, "joined": joined, "left": left}),
            )?;
            Ok::<_, consentric_store::StoreError>((joined, left))
        })?;
        Ok(SegmentRefresh {
            customers,
            joined,
            left,
        })
    }
}
