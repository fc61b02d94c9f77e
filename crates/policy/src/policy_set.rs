//! The configured privacy rules as one value: the purposes, the field schema and how outside
//! consent signals (Segment's consent object, IAB TCF strings, Global Privacy Control) map to
//! purposes; reading signals off an event; and the minimised shapes an event is stored in.
//! Pure: the engine hands it events and consent states and stores what it returns.

use std::collections::BTreeMap;

use crate::consent::{ConsentRecord, ConsentSource, ConsentState, Decision};
use crate::error::PolicyError;
use crate::minimise::{Minimised, Minimiser, Narrower};
use crate::purpose::{LegalBasis, Purpose, PurposeId, PurposeRegistry};
use crate::schema::{FieldRule, FieldSchema};
use crate::taxonomy::{CategorySet, DataCategory};
use crate::tcf;
use chrono::{DateTime, Utc};
use consentric_model::{CallType, Event};
use serde::Deserialize;
use serde_json::{Map, Value};

/// `[consent]` in `consentric.toml`: how outside consent signals map to our purposes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsentSettings {
    /// Segment `categoryPreferences` keys → purposes (added to the defaults).
    pub segment: BTreeMap<String, Vec<String>>,
    /// TCF purpose numbers ("1".."11") → purposes (replaces the defaults when non-empty).
    pub tcf: BTreeMap<String, Vec<String>>,
}

/// Purposes, field schema and signal mappings, validated once at start-up.
pub struct PolicySet {
    /// The purposes in force.
    pub registry: PurposeRegistry,
    /// Field → category rules.
    pub schema: FieldSchema,
    segment: BTreeMap<String, Vec<PurposeId>>,
    /// Our purpose → the TCF purposes it needs.
    tcf: BTreeMap<PurposeId, Vec<u8>>,
    /// Set only by [`PolicySet::reference_without_minimisation`].
    unenforced: bool,
    /// The purposes with a basis for a customer whose consent ledger is empty (contract, legal
    /// obligation, legitimate interest): the same at every moment.
    baseline_purposes: Vec<PurposeId>,
    /// What those purposes may use together.
    baseline_categories: CategorySet,
}

/// An event made ready for the single writer on the caller's thread, so the writer mostly only
/// picks: `full` is the event with unmapped fields dropped and transformations applied (what all
/// purposes together may keep; the original is not kept), `baseline` what a customer with an
/// empty consent ledger keeps. The writer stores whichever the customer's ledger at the event's
/// time calls for, and minimises `full` itself when neither fits — which equals minimising the
/// original, because transformations are idempotent.
pub struct Prepared {
    /// Unmapped fields dropped, transformations applied; `kept` lists the categories carried.
    /// Also what a consent signal's evidence hash is taken of (the engine hashes it).
    pub full: Minimal,
    /// Kept under an empty ledger.
    pub baseline: Baseline,
    /// Kept under a ledger holding just the consent signals the event carries (a banner sends
    /// its choices with every event, so they are usually the customer's ledger); `None`
    /// without signals, or when that is `full`.
    pub signalled: Option<Minimal>,
}

/// What a customer with an empty consent ledger keeps of an event.
// As large as an `Option<Minimal>`; a box would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
pub enum Baseline {
    /// The full shape itself.
    Full,
    /// A smaller shape of its own.
    Own(Minimal),
    /// Not made: the event carries consent signals, and recording them leaves the ledger
    /// non-empty before the event is minimised, so the writer never asks for it.
    NotMade,
}

impl Baseline {
    /// The shape, given the event's full shape; `None` when it was not made.
    pub fn shape<'a>(&'a self, full: &'a Minimal) -> Option<&'a Minimal> {
        match self {
            Self::Full => Some(full),
            Self::Own(own) => Some(own),
            Self::NotMade => None,
        }
    }
}

/// Minimises an event's data objects (`traits` or `properties`, and `context`) in place.
/// `context.library` and `context.consent` describe the call, not the customer, and stay.
/// With a `narrower` shape, returns its objects, in the same order (see
/// [`Minimiser::minimise_narrowing`]); without one, nothing.
pub fn minimise_objects<'a>(
    m: &Minimiser<'_>,
    objects: impl IntoIterator<Item = (&'a str, &'a mut Map<String, Value>)>,
    out: &mut Minimised,
    mut narrower: Option<&mut Narrower>,
) -> Vec<Map<String, Value>> {
    let mut narrow_objects = Vec::new();
    for (root, object) in objects {
        let structural: Vec<(String, Value)> = if root == "context" {
            ["library", "consent"]
                .iter()
                .filter_map(|k| object.remove(*k).map(|v| ((*k).to_owned(), v)))
                .collect()
        } else {
            Vec::new()
        };
        match narrower.as_deref_mut() {
            Some(n) => {
                let mut narrow = m.minimise_narrowing(root, object, out, n);
                narrow.extend(structural.iter().cloned());
                narrow_objects.push(narrow);
            }
            None => m.minimise(root, object, out),
        }
        object.extend(structural);
    }
    narrow_objects
}

fn serialise(event: &Event) -> Result<String, PolicyError> {
    serde_json::to_string(event).map_err(|e| PolicyError::Invalid {
        field: "event".into(),
        message: format!("does not serialise: {e}"),
    })
}

/// One minimised shape of an event.
pub struct Minimal {
    /// The event as it would be stored.
    pub event: Event,
    /// Its stored JSON, when made ahead on the caller's thread (the baseline's or the
    /// signalled shape's; the full shape is serialised by the writer, only for the customers
    /// it fits).
    pub payload: Option<String>,
    /// The categories of the fields kept.
    pub kept: CategorySet,
    /// Fields dropped because no rule maps them.
    pub unmapped: u64,
    /// Their paths (`properties.shoe_size`), on the full shape only, for the operator to map.
    pub unmapped_fields: Vec<String>,
    /// Fields dropped because no purpose with a basis may use their category.
    pub unused: u64,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("purposes", &self.registry.all().count())
            .finish_non_exhaustive()
    }
}

/// One consent decision read off a signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub purpose: PurposeId,
    pub decision: Decision,
    pub source: ConsentSource,
    /// How sure we are the customer sent it; [`PolicySet::signals`] says `browser`, and the
    /// engine, which knows the key and the user hash, says otherwise where it must.
    pub assurance: crate::consent::Assurance,
    /// The version of the purpose the customer was shown, when the signal says (the banner
    /// does); otherwise the declared one counts.
    pub version: Option<u32>,
}

fn invalid(field: &str, message: String) -> PolicyError {
    PolicyError::Invalid {
        field: field.to_owned(),
        message,
    }
}

impl PolicySet {
    /// The built-in retail policy.
    pub fn retail_defaults() -> Self {
        // The defaults are consistent by construction; a failure is a bug in them.
        Self::new(None, &[], &ConsentSettings::default())
            .unwrap_or_else(|e| panic!("built-in policy: {e}"))
    }

    /// Builds and validates the policy: `purposes` replace the defaults when given.
    ///
    /// # Errors
    /// An invalid purpose, rule or mapping (unknown purpose or category, bad TCF number).
    pub fn new(
        purposes: Option<Vec<Purpose>>,
        schema: &[FieldRule],
        consent: &ConsentSettings,
    ) -> Result<Self, PolicyError> {
        let registry = match purposes {
            Some(p) => PurposeRegistry::new(p).map_err(|e| invalid("purposes", e.to_string()))?,
            None => PurposeRegistry::retail_defaults(),
        };
        let schema = FieldSchema::new(schema).map_err(|e| invalid("schema", e.to_string()))?;
        let known = |id: &str| -> Result<PurposeId, PolicyError> {
            registry
                .get(id)
                .map(|p| p.id.clone())
                .map_err(|e| invalid("consent", e.to_string()))
        };
        let mut segment: BTreeMap<String, Vec<PurposeId>> = BTreeMap::new();
        for p in registry.all() {
            segment.insert(p.id.to_string(), vec![p.id.clone()]);
        }
        for (key, ids) in [
            ("Advertising", &["marketing.ads_sharing"][..]),
            ("DataSharing", &["marketing.ads_sharing"]),
            ("Analytics", &["analytics"]),
            ("Functional", &["personalization"]),
            ("Personalization", &["personalization"]),
            ("Marketing", &["marketing.email"]),
        ] {
            let ids: Vec<PurposeId> = ids
                .iter()
                .filter_map(|id| registry.get(id).ok())
                .map(|p| p.id.clone())
                .collect();
            if !ids.is_empty() {
                segment.insert(key.to_owned(), ids);
            }
        }
        for (key, ids) in &consent.segment {
            segment.insert(
                key.clone(),
                ids.iter().map(|i| known(i)).collect::<Result<_, _>>()?,
            );
        }
        let tcf_source: Vec<(u8, Vec<String>)> = if consent.tcf.is_empty() {
            // TCF purposes: 2 basic ads, 3–4 ad profiles, 5–6 content profiles, 7–10 measurement
            // and development.
            vec![
                (2, vec!["marketing.ads_sharing".into()]),
                (3, vec!["marketing.ads_sharing".into()]),
                (4, vec!["marketing.ads_sharing".into()]),
                (5, vec!["personalization".into()]),
                (6, vec!["personalization".into()]),
                (7, vec!["analytics".into()]),
                (8, vec!["analytics".into()]),
                (9, vec!["analytics".into()]),
                (10, vec!["model_training".into()]),
            ]
        } else {
            consent
                .tcf
                .iter()
                .map(|(k, v)| {
                    k.parse::<u8>()
                        .ok()
                        .filter(|n| (1..=24).contains(n))
                        .map(|n| (n, v.clone()))
                        .ok_or_else(|| {
                            invalid(
                                "consent.tcf",
                                format!("`{k}` is not a TCF purpose number (1-24)"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let mut tcf: BTreeMap<PurposeId, Vec<u8>> = BTreeMap::new();
        for (n, ids) in tcf_source {
            for id in ids {
                if let Ok(p) = registry.get(&id) {
                    tcf.entry(p.id.clone()).or_default().push(n);
                } else if !consent.tcf.is_empty() {
                    return Err(invalid("consent.tcf", format!("unknown purpose `{id}`")));
                }
            }
        }
        let empty = ConsentState::default();
        let baseline_purposes: Vec<PurposeId> = registry
            .all()
            .filter(|p| empty.has_basis(p, DateTime::<Utc>::UNIX_EPOCH))
            .map(|p| p.id.clone())
            .collect();
        let baseline_categories = baseline_purposes.iter().fold(CategorySet::EMPTY, |set, p| {
            set.union(&registry.permitted_set(p))
        });
        Ok(PolicySet {
            registry,
            schema,
            segment,
            tcf,
            unenforced: false,
            baseline_purposes,
            baseline_categories,
        })
    }

    /// The retail policy with ingest's minimisation switched off: events are stored as
    /// received (no field dropped, nothing transformed; withdrawal, retention and views still
    /// prune what they read, and a signal's evidence is a hash of the raw event, which is why
    /// nothing but the benchmark may build it). Consent signals are still read and recorded, so
    /// a customer's consent, and the data it lets ingest derive (lifecycle stages, item
    /// interactions), are what they are under the retail policy. It exists for one thing, the
    /// reference that `consentric-bench ingest --consent-ab` measures minimisation and signals against;
    /// nothing that serves customers builds it.
    #[cfg(any(test, feature = "bench-reference"))]
    pub fn reference_without_minimisation() -> Self {
        PolicySet {
            unenforced: true,
            ..Self::retail_defaults()
        }
    }

    /// Whether `purpose` has a basis for a customer whose consent ledger is empty.
    pub fn baseline_has(&self, purpose: &PurposeId) -> bool {
        self.baseline_purposes.contains(purpose)
    }

    /// The version of its purpose a consent signal is recorded under: the one the customer was
    /// shown if the signal says and it is not newer than the declared one, else the declared
    /// one (1 for a purpose not declared). A banner that showed an older text gives consent to
    /// that text, which lapses where the purpose says so. The writer and the prepared shapes
    /// must agree on it.
    pub fn signal_version(&self, signal: &Signal) -> u32 {
        let declared = self
            .registry
            .get(signal.purpose.as_str())
            .map_or(1, |p| p.version);
        signal
            .version
            .filter(|v| (1..=declared).contains(v))
            .unwrap_or(declared)
    }

    /// The categories some purpose with a legal basis under `consent` at `at` may use: what
    /// minimising for that customer at that moment keeps.
    pub fn categories_with_basis(&self, consent: &ConsentState, at: DateTime<Utc>) -> CategorySet {
        self.registry
            .all()
            .filter(|p| consent.has_basis(p, at))
            .fold(CategorySet::EMPTY, |set, p| {
                set.union(&self.registry.permitted_set(&p.id))
            })
    }

    /// The purposes with a legal basis under `consent` at `at`.
    pub fn purposes_with_basis(
        &self,
        consent: &ConsentState,
        at: DateTime<Utc>,
    ) -> Vec<&PurposeId> {
        self.registry
            .all()
            .filter(|p| consent.has_basis(p, at))
            .map(|p| &p.id)
            .collect()
    }

    /// Minimises a stored event (Segment JSON) in place; returns how many fields it removed.
    /// Withdrawal, retention and purpose-scoped views all prune stored events this way.
    pub fn minimise_payload(
        &self,
        payload: &mut Value,
        allowed: &dyn Fn(&DataCategory) -> bool,
    ) -> u64 {
        let Some(call) = payload
            .get("type")
            .and_then(Value::as_str)
            .and_then(CallType::parse)
        else {
            return 0;
        };
        let name = payload
            .get("event")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut out = Minimised::default();
        if let Some(obj) = payload.as_object_mut() {
            let objects = obj.iter_mut().filter_map(|(k, v)| match (k.as_str(), v) {
                (root @ ("traits" | "properties" | "context"), Value::Object(m)) => Some((root, m)),
                _ => None,
            });
            // Stored data was transformed on the way in.
            let m = self.minimiser(call, name.as_deref(), allowed, false);
            minimise_objects(&m, objects, &mut out, None);
        }
        out.unused + out.unmapped.len() as u64
    }

    /// Minimises an event already in its full shape (transformed, unmapped fields dropped) for a
    /// customer whose consent is `consent`, at the event's time: keeps only the fields some
    /// purpose with a basis may use. The one decision every path that stores an event makes,
    /// on the caller's thread ([`PolicySet::prepare`]) or in the writer when no prepared shape
    /// fits. Returns the fields dropped as unmapped and as without a basis.
    pub fn minimise_full_shape(&self, event: &mut Event, consent: &ConsentState) -> (u64, u64) {
        let kept = self.categories_with_basis(consent, event.timestamp());
        let allowed = |c: &DataCategory| kept.contains(c);
        let call = event.call().call_type();
        let name = event.event_name().map(str::to_owned);
        let mut out = Minimised::default();
        let m = self.minimiser(call, name.as_deref(), &allowed, false);
        minimise_objects(&m, event.data_mut(), &mut out, None);
        (out.unmapped.len() as u64, out.unused)
    }

    /// A minimisation pass over `call` events named `event` under this policy's schema.
    pub fn minimiser<'a>(
        &'a self,
        call: CallType,
        event: Option<&'a str>,
        allowed: &'a dyn Fn(&DataCategory) -> bool,
        transform: bool,
    ) -> Minimiser<'a> {
        Minimiser {
            schema: &self.schema,
            call,
            event,
            allowed,
            transform,
        }
    }

    /// Makes `event` ready for the writer (see [`Prepared`]): the full shape, and the one its
    /// customer's ledger most likely calls for — the baseline when it carries no consent
    /// signals, the signalled shape when it does.
    pub fn prepare(&self, event: Event, signals: &[Signal]) -> Result<Prepared, PolicyError> {
        if self.unenforced {
            let full = Minimal {
                event,
                payload: None,
                kept: CategorySet::EMPTY,
                unmapped: 0,
                unmapped_fields: Vec::new(),
                unused: 0,
            };
            return Ok(Prepared {
                full,
                baseline: Baseline::Full,
                signalled: None,
            });
        }
        // The one narrower shape the writer most likely needs, made in the same pass as the
        // full one: without signals, an empty ledger's; with them, the ledger they leave.
        let narrower = if signals.is_empty() {
            self.baseline_categories
        } else {
            self.categories_with_basis(
                &self.ledger_of(signals, event.timestamp()),
                event.timestamp(),
            )
        };
        // When it may keep every category the schema knows, it is the full shape.
        let narrower = (!self.schema.categories().is_subset(&narrower)).then_some(narrower);
        let (full, narrow) = self.minimal_pair(event, narrower)?;
        Ok(if signals.is_empty() {
            Prepared {
                full,
                baseline: narrow.map_or(Baseline::Full, Baseline::Own),
                signalled: None,
            }
        } else {
            Prepared {
                full,
                baseline: Baseline::NotMade,
                signalled: narrow,
            }
        })
    }

    /// The ledger as the writer holds it after recording `signals` alone at `at`, folded the
    /// same way.
    fn ledger_of(&self, signals: &[Signal], at: DateTime<Utc>) -> ConsentState {
        ConsentState::fold(signals.iter().map(|s| ConsentRecord {
            purpose: s.purpose.clone(),
            decision: s.decision,
            source: s.source,
            purpose_version: self.signal_version(s),
            at,
            evidence_hash: String::new(),
            assurance: s.assurance,
        }))
    }

    /// The prepared shape that minimising the event under `consent` at `at` produces, if one
    /// does (minimisation depends only on which carried categories have a basis): the full
    /// shape when all do, the baseline or the signalled shape when exactly its categories do.
    pub fn shape_for<'p>(
        &self,
        prepared: &'p Prepared,
        consent: &ConsentState,
        at: DateTime<Utc>,
    ) -> Option<&'p Minimal> {
        let carried = prepared.full.kept;
        let kept = carried.intersection(&self.categories_with_basis(consent, at));
        if kept == carried {
            return Some(&prepared.full);
        }
        let own = match &prepared.baseline {
            Baseline::Own(own) => Some(own),
            Baseline::Full | Baseline::NotMade => None,
        };
        [own, prepared.signalled.as_ref()]
            .into_iter()
            .flatten()
            .find(|shape| shape.kept == kept)
    }

    /// The full shape of `event` (unmapped fields dropped, transformations applied) and, in
    /// the same pass, what of it the categories `narrower` keep — `None` when that is all of
    /// it, or no `narrower` is asked for. The narrower shape is serialised here, on the
    /// caller's thread.
    fn minimal_pair(
        &self,
        mut event: Event,
        narrower: Option<CategorySet>,
    ) -> Result<(Minimal, Option<Minimal>), PolicyError> {
        let call = event.call().call_type();
        let name = event.event_name().map(str::to_owned);
        let mut narrow = narrower.map(|allowed| Narrower {
            allowed,
            ..Narrower::default()
        });
        // The narrower event starts as the event without its data objects; the pass fills them.
        let narrow_event = narrow.is_some().then(|| {
            let taken: Vec<Map<String, Value>> = event
                .data_mut()
                .into_iter()
                .map(|(_, object)| std::mem::take(object))
                .collect();
            let skeleton = event.clone();
            for ((_, object), data) in event.data_mut().into_iter().zip(taken) {
                *object = data;
            }
            skeleton
        });
        let mut out = Minimised::default();
        let m = self.minimiser(call, name.as_deref(), &|_: &DataCategory| true, true);
        let objects = minimise_objects(&m, event.data_mut(), &mut out, narrow.as_mut());
        let unmapped = out.unmapped.len() as u64;
        let full = Minimal {
            event,
            payload: None,
            kept: out.kept,
            unmapped,
            unmapped_fields: std::mem::take(&mut out.unmapped),
            unused: out.unused,
        };
        let (Some(narrow), Some(mut narrow_event)) = (narrow, narrow_event) else {
            return Ok((full, None));
        };
        if narrow.kept == full.kept {
            return Ok((full, None));
        }
        for ((_, object), data) in narrow_event.data_mut().into_iter().zip(objects) {
            *object = data;
        }
        let shape = Minimal {
            payload: Some(serialise(&narrow_event)?),
            event: narrow_event,
            kept: narrow.kept,
            unmapped,
            unmapped_fields: Vec::new(),
            unused: narrow.unused,
        };
        Ok((full, Some(shape)))
    }

    /// The consent decisions an event (and its request's `Sec-GPC` header) carries.
    pub fn signals(&self, event: &Event, gpc: bool) -> Result<Vec<Signal>, PolicyError> {
        let mut out = Vec::new();
        let consent = event.context().consent();
        // Consentric's banner says so, and which version of each purpose it showed.
        let banner = consent
            .and_then(|c| c.get("source"))
            .and_then(Value::as_str)
            == Some("banner");
        let shown = consent
            .and_then(|c| c.get("purposeVersions"))
            .and_then(Value::as_object);
        if let Some(prefs) = consent
            .and_then(|c| c.get("categoryPreferences"))
            .and_then(Value::as_object)
        {
            for (key, value) in prefs {
                let (Some(ids), Some(granted)) = (self.segment.get(key), value.as_bool()) else {
                    continue; // unmapped categories and non-boolean values carry no decision
                };
                for id in ids {
                    let version = shown
                        .and_then(|v| v.get(id.as_str()))
                        .and_then(Value::as_u64)
                        .and_then(|v| u32::try_from(v).ok());
                    out.push(Signal {
                        purpose: id.clone(),
                        decision: Decision::from_granted(granted),
                        source: if banner {
                            ConsentSource::Banner
                        } else {
                            ConsentSource::Segment
                        },
                        assurance: crate::consent::Assurance::Browser,
                        version,
                    });
                }
            }
        }
        let tc = consent
            .and_then(|c| c.get("tcfString").or_else(|| c.get("gdpr_consent")))
            .or_else(|| event.context().as_map().get("gdpr_consent"))
            .and_then(Value::as_str);
        if let Some(raw) = tc {
            let decoded = tcf::decode(raw).map_err(|e| PolicyError::Invalid {
                field: "context.consent.tcfString".into(),
                message: e.to_string(),
            })?;
            // This platform is the publisher's own processing: where the string carries the
            // publisher's purposes (the Publisher TC segment), they decide; the core segment's
            // are what the visitor allowed the vendors, and decide only without them.
            let (consents, interests) = match &decoded.publisher {
                Some(p) => (&p.purpose_consents, &p.purpose_legitimate_interests),
                None => (
                    &decoded.purpose_consents,
                    &decoded.purpose_legitimate_interests,
                ),
            };
            for (id, needed) in &self.tcf {
                let Ok(p) = self.registry.get(id.as_str()) else {
                    continue;
                };
                let granted = match p.legal_basis {
                    LegalBasis::LegitimateInterest => needed
                        .iter()
                        .all(|n| consents.contains(n) || interests.contains(n)),
                    _ => needed.iter().all(|n| consents.contains(n)),
                };
                out.push(Signal {
                    purpose: id.clone(),
                    decision: Decision::from_granted(granted),
                    source: ConsentSource::Tcf,
                    assurance: crate::consent::Assurance::Browser,
                    version: None,
                });
            }
        }
        if gpc {
            for p in self.registry.all().filter(|p| p.sale_or_share) {
                out.retain(|s| s.purpose != p.id); // GPC overrides anything else on the request
                out.push(Signal {
                    purpose: p.id.clone(),
                    decision: Decision::Denied,
                    source: ConsentSource::Gpc,
                    assurance: crate::consent::Assurance::Browser,
                    version: None,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consentric_model::{parse_typed_event, Envelope};
    use proptest::prelude::*;
    use serde_json::json;

    /// Field names the default schema maps (to categories with and without a baseline basis)
    /// and names it does not.
    const NAMES: &[&str] = &[
        "email",
        "phone",
        "name",
        "plan",
        "logins",
        "gender",
        "age",
        "ip",
        "userAgent",
        "locale",
        "path",
        "url",
        "revenue",
        "product_id",
        "price",
        "favourite_colour",
        "shoe_size",
    ];

    fn object(keys: &[usize]) -> Value {
        let mut m = Map::new();
        for (i, k) in keys.iter().enumerate() {
            let name = NAMES[k % NAMES.len()];
            let value = match (name, k % 3) {
                ("ip", 0) => json!("203.0.113.77"),
                ("ip", 1) => json!("2001:db8:1:2::7"),
                _ => json!(format!("v{i}")),
            };
            m.insert(name.to_owned(), value);
        }
        Value::Object(m)
    }

    /// Consentric's banner says it is the source and which version of each purpose it showed:
    /// the records say `banner`, and a version the visitor saw counts only if it is not newer
    /// than the declared one. Another client's consent object stays `segment`, at the declared
    /// version.
    #[test]
    fn the_banner_s_choices_carry_their_source_and_the_versions_shown() {
        let env = Envelope::new(DateTime::<Utc>::UNIX_EPOCH, "r");
        let event = |consent: Value| {
            let raw = json!({"type": "track", "event": "Consent Preferences Updated",
                "messageId": "m", "anonymousId": "a", "timestamp": "2026-01-02T03:04:05Z",
                "context": {"consent": consent}});
            parse_typed_event(raw.to_string().as_bytes(), &env)
                .expect("valid")
                .events
                .remove(0)
        };
        let mut purposes: Vec<crate::Purpose> =
            PurposeRegistry::retail_defaults().all().cloned().collect();
        for p in &mut purposes {
            if p.id.as_str() == "analytics" {
                p.version = 3;
            }
        }
        let policy =
            PolicySet::new(Some(purposes), &[], &ConsentSettings::default()).expect("policy");
        let signals = policy
            .signals(
                &event(json!({"source": "banner",
                "categoryPreferences": {"analytics": true, "personalization": false},
                "purposeVersions": {"analytics": 2, "personalization": 9}})),
                false,
            )
            .expect("signals");
        let of = |id: &str| {
            signals
                .iter()
                .find(|s| s.purpose.as_str() == id)
                .expect("signal")
        };
        assert_eq!(of("analytics").source, ConsentSource::Banner);
        assert_eq!(
            policy.signal_version(of("analytics")),
            2,
            "the version shown"
        );
        assert_eq!(
            policy.signal_version(of("personalization")),
            1,
            "never newer than declared"
        );
        let plain = policy
            .signals(
                &event(json!({"categoryPreferences": {"analytics": true}})),
                false,
            )
            .expect("signals");
        assert_eq!(plain[0].source, ConsentSource::Segment);
        assert_eq!(policy.signal_version(&plain[0]), 3);
        // Consent to version 2 of a purpose now at version 3 gives no basis.
        let ledger = policy.ledger_of(&signals, DateTime::<Utc>::UNIX_EPOCH);
        let analytics = policy.registry.get("analytics").expect("declared");
        assert!(!ledger.has_basis(analytics, DateTime::<Utc>::UNIX_EPOCH));
    }

    /// The reference `consentric-bench ingest --consent-ab` measures against really skips minimisation:
    /// an event keeps its unmapped field and its full IP address; its signals are read as the
    /// retail policy reads them.
    #[test]
    fn the_reference_policy_stores_events_as_received() {
        let env = Envelope::new(DateTime::<Utc>::UNIX_EPOCH, "r");
        let raw = json!({"type": "track", "event": "E", "messageId": "m", "userId": "u",
            "timestamp": "2026-01-02T03:04:05Z", "properties": {"favourite_colour": "teal"},
            "context": {"ip": "203.0.113.77", "consent": {"categoryPreferences": {"analytics": true}}}});
        let event = parse_typed_event(raw.to_string().as_bytes(), &env)
            .expect("valid")
            .events
            .remove(0);
        let reference = PolicySet::reference_without_minimisation();
        let retail = PolicySet::retail_defaults();
        let signals = reference.signals(&event, true).expect("signals");
        assert!(!signals.is_empty());
        assert_eq!(signals, retail.signals(&event, true).expect("signals"));
        let prepared = reference.prepare(event.clone(), &[]).expect("prepared");
        assert_eq!(prepared.full.event, event);
        // The retail policy, for contrast, drops the one and truncates the other.
        let json = serde_json::to_string(&retail.prepare(event, &[]).expect("p").full.event)
            .expect("json");
        assert!(
            !json.contains("teal") && !json.contains("203.0.113.77"),
            "{json}"
        );
    }

    proptest! {
        /// The shapes made off the writer equal what the writer would keep itself: the baseline
        /// for an empty ledger at any event time, and whichever shape is picked under any other.
        #[test]
        fn prepared_shapes_are_what_the_writer_would_keep(
            call in prop::sample::select(vec!["identify", "track", "page"]),
            data in prop::collection::vec(0usize..64, 0..8),
            context in prop::collection::vec(0usize..64, 0..6),
            days in 0i64..4000,
            grants in prop::collection::vec((prop::sample::select(vec!["analytics", "personalization", "marketing.email", "model_training", "marketing.ads_sharing"]), any::<bool>()), 0..5),
            carried in prop::collection::vec((prop::sample::select(vec!["analytics", "personalization", "marketing.email", "model_training", "marketing.ads_sharing", "fairness_audit"]), any::<bool>()), 0..5),
        ) {
            // A hashed field: a transformation that must run exactly once.
            let hashed = crate::FieldRule {
                call: None,
                event: None,
                path: "traits.shoe_size".into(),
                category: "user.behavior".into(),
                transform: Some(crate::Transform::Hash),
            };
            let policy = PolicySet::new(None, &[hashed], &ConsentSettings::default()).expect("policy");
            let ts = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(days);
            let mut raw = json!({"type": call, "messageId": "m", "userId": "u",
                "timestamp": ts.to_rfc3339(), "context": object(&context)});
            let key = if call == "identify" { "traits" } else { "properties" };
            raw[key] = object(&data);
            if call == "track" {
                raw["event"] = json!("Order Completed");
            }
            let env = Envelope::new(ts, "r");
            let event = parse_typed_event(raw.to_string().as_bytes(), &env)
                .expect("valid")
                .events
                .remove(0);

            // The consent signals the event carries, as a banner would send them.
            let signals: Vec<Signal> = carried
                .iter()
                .map(|(p, granted)| Signal {
                    purpose: PurposeId::parse(p).expect("id"),
                    decision: Decision::from_granted(*granted),
                    source: ConsentSource::Segment,
                    assurance: crate::consent::Assurance::Browser,
                    version: None,
                })
                .collect();
            let prepared = policy.prepare(event.clone(), &signals).expect("prepared");
            // Only an event with signals goes without a baseline: recording them leaves its
            // customer's ledger non-empty before it is minimised.
            prop_assert_eq!(matches!(prepared.baseline, Baseline::NotMade), !signals.is_empty());

            let mut kept = event.clone();
            let with_basis = policy.purposes_with_basis(&ConsentState::default(), event.timestamp());
            let allowed = |c: &DataCategory| with_basis.iter().any(|p| policy.registry.permits(p, c));
            let name = kept.event_name().map(str::to_owned);
            let mut out = Minimised::default();
            minimise_objects(&policy.minimiser(kept.call().call_type(), name.as_deref(), &allowed, true), kept.data_mut(), &mut out, None);
            if let Some(baseline) = prepared.baseline.shape(&prepared.full) {
                prop_assert_eq!(&baseline.event, &kept);
                prop_assert_eq!(baseline.unmapped, out.unmapped.len() as u64);
                prop_assert_eq!(baseline.unused, out.unused);
            }

            // Under any ledger, a prepared shape the writer picks is what it would make itself.
            let records: Vec<crate::ConsentRecord> = grants
                .iter()
                .map(|(p, granted)| crate::ConsentRecord {
                    purpose: PurposeId::parse(p).expect("id"),
                    decision: if *granted { Decision::Granted } else { Decision::Denied },
                    source: ConsentSource::Api,
                    purpose_version: 1,
                    at: DateTime::<Utc>::UNIX_EPOCH,
                    evidence_hash: String::new(),
                    assurance: Default::default(),
                })
                .collect();
            let consent = ConsentState::fold(records);
            let mut kept = event.clone();
            let with_basis = policy.purposes_with_basis(&consent, event.timestamp());
            let allowed = |c: &DataCategory| with_basis.iter().any(|p| policy.registry.permits(p, c));
            let mut out = Minimised::default();
            minimise_objects(&policy.minimiser(kept.call().call_type(), name.as_deref(), &allowed, true), kept.data_mut(), &mut out, None);
            // The writer minimises the full shape when no prepared shape fits: the same as
            // minimising the original, as transformations are idempotent.
            let mut again = prepared.full.event.clone();
            minimise_objects(&policy.minimiser(again.call().call_type(), name.as_deref(), &allowed, false), again.data_mut(), &mut Minimised::default(), None);
            prop_assert_eq!(serde_json::to_string(&again).expect("json"), serde_json::to_string(&kept).expect("json"));
            if let Some(shape) = policy.shape_for(&prepared, &consent, event.timestamp()) {
                prop_assert_eq!(&shape.event, &kept);
                if let Some(payload) = &shape.payload {
                    prop_assert_eq!(payload, &serde_json::to_string(&kept).expect("json"));
                }
                prop_assert_eq!(shape.unused, out.unused);
            }

            // A customer whose ledger holds just what this event signals (recorded before it
            // is minimised) always gets a prepared shape, and it is what the writer would keep.
            let signalled = ConsentState::fold(
                signals
                    .iter()
                    .map(|s| crate::ConsentRecord {
                        purpose: s.purpose.clone(),
                        decision: s.decision,
                        source: s.source,
                        purpose_version: 1,
                        at: event.timestamp(),
                        evidence_hash: String::new(),
                        assurance: Default::default(),
                    })
                    .collect::<Vec<_>>(),
            );
            let mut kept = event.clone();
            let with_basis = policy.purposes_with_basis(&signalled, event.timestamp());
            let allowed = |c: &DataCategory| with_basis.iter().any(|p| policy.registry.permits(p, c));
            let mut out = Minimised::default();
            minimise_objects(&policy.minimiser(kept.call().call_type(), name.as_deref(), &allowed, true), kept.data_mut(), &mut out, None);
            let shape = policy.shape_for(&prepared, &signalled, event.timestamp());
            prop_assert!(shape.is_some(), "no prepared shape for the event's own signals");
            let shape = shape.expect("checked");
            prop_assert_eq!(&shape.event, &kept);
            if let Some(payload) = &shape.payload {
                prop_assert_eq!(payload, &serde_json::to_string(&kept).expect("json"));
            }
            prop_assert_eq!(shape.unused, out.unused);
            prop_assert_eq!(shape.unmapped, out.unmapped.len() as u64);
        }
    }
}
