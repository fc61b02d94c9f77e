//! Withdrawal: when a customer's last purpose that may use a data category loses its legal
//! basis, their data in that category is deleted — traits removed, stored events rewritten
//! without those fields — in the same transaction as the consent change, and audited.

use chrono::{DateTime, Utc};
use consentric_model::{CallType, ProfileId};
use consentric_policy::{ConsentState, DataCategory};
use consentric_store::{ConsentRow, StoreError, WriteTx};
use serde_json::json;

use crate::audit;
use crate::ledger::to_records;
use consentric_policy::PolicySet;

/// Events rewritten per page while enforcing a withdrawal.
const PAGE: i64 = 500;

/// Whether some purpose had a basis under `before` and has none under `after`, at `at`.
pub(crate) fn lost_basis(
    policy: &PolicySet,
    before: &[ConsentRow],
    after: &[ConsentRow],
    at: DateTime<Utc>,
) -> bool {
    // A restriction suspends processing but keeps the data: it never causes a deletion.
    let (b, a) = (
        ConsentState::fold(to_records(before)).without_restriction(),
        ConsentState::fold(to_records(after)).without_restriction(),
    );
    policy
        .registry
        .all()
        .any(|p| b.has_basis(p, at) && !a.has_basis(p, at))
}

/// The purposes derived data is kept under: when one loses its basis for a customer, what was
/// derived under it goes too. Each comes from the settings of the service that owns the data.
pub(crate) struct Derived<'a> {
    /// Lifecycle stages and their history (`[lifecycle] stage_purpose`).
    pub stage_purpose: &'a str,
    /// Item interactions, segment memberships and the decision log (`[personalize] purpose`).
    pub interactions_purpose: &'a str,
}

/// Deletes what no purpose with a basis at `at` may use any more from `profile`'s traits and
/// stored events, and audits what it did.
pub(crate) fn enforce(
    tx: &mut WriteTx<'_>,
    policy: &PolicySet,
    derived: &Derived<'_>,
    profile: &ProfileId,
    ledger: &[ConsentRow],
    at: DateTime<Utc>,
    actor: &str,
) -> Result<(), StoreError> {
    let state = ConsentState::fold(to_records(ledger)).without_restriction();
    let with_basis = policy.purposes_with_basis(&state, at);
    let kept = policy.categories_with_basis(&state, at);
    let allowed = |c: &DataCategory| kept.contains(c);

    let mut traits_deleted = Vec::new();
    for t in tx.traits_of(profile)? {
        let category =
            policy
                .schema
                .category(CallType::Identify, None, &["traits", t.name.as_str()]);
        if !category.is_some_and(allowed) {
            tx.delete_trait(profile, &t.name)?;
            traits_deleted.push(t.name);
        }
    }

    let mut events_rewritten = 0u64;
    let mut fields_deleted = 0u64;
    let mut after = 0;
    loop {
        let page = tx.events_page(profile, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for mut e in page {
            let mut payload = std::mem::take(&mut e.payload);
            let removed = policy.minimise_payload(&mut payload, &allowed);
            if removed > 0 {
                fields_deleted += removed;
                events_rewritten += 1;
                tx.set_event_payload(&e, &payload.to_string())?;
            }
        }
    }
    // Derived data goes with its basis: the lifecycle stage and its history.
    let stage_kept = with_basis
        .iter()
        .any(|p| p.as_str() == derived.stage_purpose);
    let stage_rows = if stage_kept {
        0
    } else {
        tx.drop_stage(profile)?
    };
    let interactions_kept = with_basis
        .iter()
        .any(|p| p.as_str() == derived.interactions_purpose);
    let interaction_rows = if interactions_kept {
        0
    } else {
        tx.drop_interactions(profile)?
            + tx.drop_memberships(profile)?
            + tx.drop_decision_log(profile)?
    };
    if !traits_deleted.is_empty() || events_rewritten > 0 || stage_rows > 0 || interaction_rows > 0
    {
        audit::append(
            tx,
            at.timestamp_millis(),
            actor,
            "data.deleted",
            Some(profile.as_str()),
            &json!({"reason": "basis withdrawn", "traits": traits_deleted,
                    "events_rewritten": events_rewritten, "fields": fields_deleted,
                    "lifecycle_rows": stage_rows, "interaction_rows": interaction_rows}),
        )?;
    }
    Ok(())
}
