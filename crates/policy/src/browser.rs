//! What an event sent with a public browser key may claim. Such a key is in every page of the
//! site, so anyone has it: without proof from the site's backend (a valid user hash) an event
//! about a user id may neither change that customer's contact details — the address their
//! one-time codes go to — nor give consent in their name. A visitor speaking about their own
//! anonymous id speaks for themself, and counts.

use consentric_model::{Call, Event};
use serde_json::{Map, Value};

use crate::consent::{Assurance, Decision};
use crate::policy_set::{PolicySet, Signal};
use crate::taxonomy::DataCategory;

/// What [`PolicySet::limit_browser_event`] held back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrowserLimits {
    /// Contact fields removed before the event was stored.
    pub contact_fields_removed: u64,
    /// Grants kept as unverified evidence that gives no basis.
    pub unverified_grants: u64,
}

impl PolicySet {
    /// Applies the browser-key rules to `event` and its consent `signals`. `identity_verified`
    /// is whether the event carried a valid user hash for its user id.
    ///
    /// - About a user id without a valid user hash: contact fields (`user.contact.*`) of its
    ///   traits and `context.traits` are removed, and every grant is unverified.
    /// - About a user id: a grant of a purpose that needs verified consent is unverified.
    /// - Denials and withdrawals count from anyone (the engine defers the deletion they
    ///   cause), and everything about the visitor's own anonymous id counts.
    pub fn limit_browser_event(
        &self,
        event: &mut Event,
        signals: &mut [Signal],
        identity_verified: bool,
    ) -> BrowserLimits {
        let mut limits = BrowserLimits::default();
        if event.user_id().is_none() {
            return limits;
        }
        if !identity_verified {
            limits.contact_fields_removed = self.remove_contact_fields(event);
        }
        for s in signals.iter_mut() {
            if s.decision != Decision::Granted {
                continue;
            }
            let needs_proof = !identity_verified
                || self
                    .registry
                    .get(s.purpose.as_str())
                    .is_ok_and(|p| p.needs_verified_consent());
            if needs_proof {
                s.assurance = Assurance::Unverified;
                limits.unverified_grants += 1;
            }
        }
        limits
    }

    fn remove_contact_fields(&self, event: &mut Event) -> u64 {
        let Ok(contact) = DataCategory::parse("user.contact") else {
            return 0;
        };
        let call = event.call().call_type();
        let name = event.event_name().map(str::to_owned);
        let is_contact = |path: &[&str]| {
            self.schema
                .category(call, name.as_deref(), path)
                .is_some_and(|c| c.is_within(&contact))
        };
        let customer_traits = matches!(event.call(), Call::Identify { .. });
        let mut removed = 0;
        for (root, object) in event.data_mut() {
            let traits: Option<&mut Map<String, Value>> = match root {
                "traits" if customer_traits => Some(object),
                "context" => object.get_mut("traits").and_then(Value::as_object_mut),
                _ => None,
            };
            let Some(traits) = traits else { continue };
            let prefix: &[&str] = if root == "traits" {
                &["traits"]
            } else {
                &["context", "traits"]
            };
            let before = traits.len();
            traits.retain(|k, _| {
                let path: Vec<&str> = prefix.iter().copied().chain([k.as_str()]).collect();
                !is_contact(&path)
            });
            removed += (before - traits.len()) as u64;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use consentric_model::{parse_typed_event, Envelope};
    use serde_json::json;

    use super::*;
    use crate::consent::ConsentSource;
    use crate::purpose::PurposeId;

    fn event(v: Value) -> Event {
        let env = Envelope::new(chrono::DateTime::UNIX_EPOCH, "r");
        parse_typed_event(v.to_string().as_bytes(), &env)
            .expect("valid")
            .events
            .remove(0)
    }

    fn grant(purpose: &str) -> Signal {
        Signal {
            purpose: PurposeId::parse(purpose).expect("id"),
            decision: Decision::Granted,
            source: ConsentSource::Segment,
            assurance: Assurance::Browser,
            version: None,
        }
    }

    #[test]
    fn without_a_user_hash_contact_traits_go_and_grants_are_unverified() {
        let policy = PolicySet::retail_defaults();
        let mut e = event(json!({"type":"identify","userId":"victim",
            "traits":{"email":"attacker@example.com","phone":"+1","first_name":"A"},
            "context":{"traits":{"email":"x@example.com"}}}));
        let mut signals = vec![grant("analytics"), grant("marketing.ads_sharing")];
        let limits = policy.limit_browser_event(&mut e, &mut signals, false);
        assert_eq!(limits.contact_fields_removed, 3);
        let json = e.to_json();
        assert!(json["traits"].get("email").is_none() && json["traits"].get("phone").is_none());
        assert_eq!(json["traits"]["first_name"], "A");
        assert!(json["context"]["traits"].get("email").is_none());
        // An identify with its traits only in `context.traits` (RudderStack's SDKs): parsing
        // made them its traits, and the contact fields go from there.
        let mut r = event(json!({"type":"identify","userId":"victim",
            "context":{"traits":{"email":"x@example.com","phone":"+1","first_name":"A"}}}));
        let removed = policy.limit_browser_event(&mut r, &mut Vec::new(), false);
        assert_eq!(removed.contact_fields_removed, 2);
        assert_eq!(r.to_json()["traits"]["first_name"], "A");
        assert!(r.to_json()["context"].get("traits").is_none());
        // Another call's `context.traits` keep their place, and lose their contact fields too.
        let mut t = event(json!({"type":"track","userId":"victim","event":"E",
            "context":{"traits":{"email":"x@example.com","first_name":"A"}}}));
        let removed = policy.limit_browser_event(&mut t, &mut Vec::new(), false);
        assert_eq!(removed.contact_fields_removed, 1);
        assert!(t.to_json()["context"]["traits"].get("email").is_none());
        assert!(signals.iter().all(|s| s.assurance == Assurance::Unverified));
    }

    #[test]
    fn with_a_user_hash_only_grants_that_need_proof_are_unverified() {
        let policy = PolicySet::retail_defaults();
        let mut e =
            event(json!({"type":"identify","userId":"u","traits":{"email":"u@example.com"}}));
        let mut signals = vec![
            grant("analytics"),
            grant("marketing.ads_sharing"),
            grant("partner_matching"),
            Signal {
                decision: Decision::Denied,
                ..grant("personalization")
            },
        ];
        let limits = policy.limit_browser_event(&mut e, &mut signals, true);
        assert_eq!(limits.contact_fields_removed, 0);
        assert_eq!(e.to_json()["traits"]["email"], "u@example.com");
        let assurance: Vec<Assurance> = signals.iter().map(|s| s.assurance).collect();
        assert_eq!(
            assurance,
            [
                Assurance::Browser,
                Assurance::Unverified,
                Assurance::Unverified,
                Assurance::Browser
            ]
        );
    }

    #[test]
    fn a_visitor_speaking_for_their_own_anonymous_id_counts() {
        let policy = PolicySet::retail_defaults();
        let mut e =
            event(json!({"type":"identify","anonymousId":"a1","traits":{"email":"a@example.com"}}));
        let mut signals = vec![grant("marketing.ads_sharing")];
        let limits = policy.limit_browser_event(&mut e, &mut signals, false);
        assert_eq!(limits, BrowserLimits::default());
        assert_eq!(signals[0].assurance, Assurance::Browser);
    }
}
