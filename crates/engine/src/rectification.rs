//! Rectification (GDPR art. 16): a customer's trait is corrected to the value they give. The
//! correction wins over every event received so far (it is dated now, or at the corrected
//! value's own time if that is later), and every stored event
//! that carried the inaccurate value for that trait (`traits.NAME` of identify calls,
//! `context.traits.NAME` of the others) is rewritten with the correct one, re-sealed, in the
//! same transaction, so no copy of the inaccurate value remains; the audit record counts them.
//! Values the trait had before the inaccurate one are history, not inaccuracies, and stay.

use consentric_model::{CallType, MessageId};
use serde_json::{json, Value};

use consentric_model::ProfileId;
use consentric_store::WriteTx;

use crate::audit;
use crate::error::EngineError;
use crate::profiles::ProfileRef;

/// What this service works on, handed to it by the context.
pub(crate) struct RectificationService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) access: crate::access::AccessService<'a>,
}

impl RectificationService<'_> {
    /// Sets trait `name` of the customer `who` names to `value`, as `actor`. Only a trait the
    /// customer has can be corrected, and only to a value the policy would store.
    ///
    /// # Errors
    /// Not found; [`EngineError::Invalid`] for a trait the customer does not have or one no
    /// schema rule maps; a database fault.
    pub fn rectify(
        &self,
        who: &ProfileRef,
        name: &str,
        value: &Value,
        actor: &str,
    ) -> Result<crate::ProfileView, EngineError> {
        let id = crate::profiles::find_profile(self.store, who)?;
        if name.chars().any(char::is_control) {
            return Err(EngineError::Invalid {
                field: "name".into(),
                message: "a trait's name has no control characters".into(),
            });
        }
        if self
            .policy
            .schema
            .category(CallType::Identify, None, &["traits", name])
            .is_none()
        {
            return Err(EngineError::Invalid {
                field: format!("traits.{name}"),
                message: "no schema rule maps this trait, so it is not stored".into(),
            });
        }
        let now = self.clock.now().timestamp_millis();
        let mid = MessageId::parse(&format!("rectification-{}", uuid::Uuid::new_v4().simple()))
            .ok_or_else(|| EngineError::Config("generated message id refused".into()))?;
        let known = self.store.write(|tx| -> Result<bool, EngineError> {
            let Some((old, updated_at)) = tx
                .traits_of(&id)?
                .into_iter()
                .find(|t| t.name == name)
                .map(|t| (t.value, t.updated_at))
            else {
                return Ok(false);
            };
            // Dated no earlier than the value it corrects, so it always replaces it: a value
            // dated ahead of the clock (within the ingest tolerance) cannot outrank it.
            tx.set_trait(&id, name, &value.to_string(), now.max(updated_at), &mid)?;
            let rewritten = rewrite_events(tx, &id, name, &old, value)?;
            audit::append(
                tx,
                now,
                actor,
                "profile.rectified",
                Some(id.as_str()),
                &json!({"trait": name, "message_id": mid.as_str(), "events_rewritten": rewritten}),
            )?;
            Ok(true)
        })?;
        if !known {
            return Err(EngineError::Invalid {
                field: format!("traits.{name}"),
                message: "the customer has no such trait to correct".into(),
            });
        }
        self.access.profile(&ProfileRef::Profile(id), actor)
    }
}

/// Events read per page while rewriting.
const PAGE: i64 = 1000;

/// Replaces `old` with `new` wherever a stored event of `id` carries it as trait `name`;
/// returns how many events changed.
fn rewrite_events(
    tx: &mut WriteTx<'_>,
    id: &ProfileId,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<u64, EngineError> {
    let (mut after, mut rewritten) = (0, 0u64);
    loop {
        let page = tx.events_page(id, after, PAGE)?;
        let Some(last) = page.last() else {
            return Ok(rewritten);
        };
        after = last.seq;
        for mut e in page {
            let mut changed = false;
            for path in [&["traits", name][..], &["context", "traits", name][..]] {
                if e.call_type == "group" && path[0] == "traits" {
                    continue; // a group's traits describe the group, not the customer
                }
                let slot = path.iter().try_fold(&mut e.payload, |v, k| v.get_mut(*k));
                if let Some(slot) = slot {
                    if slot == old {
                        *slot = new.clone();
                        changed = true;
                    }
                }
            }
            if changed {
                tx.set_event_payload(&e, &e.payload.to_string())?;
                rewritten += 1;
            }
        }
    }
}
