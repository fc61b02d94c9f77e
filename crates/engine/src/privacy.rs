//! The configured privacy rules, and reading consent signals off events.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use consentric_model::{CallType, Event};
use consentric_policy::{
    minimise, tcf, ConsentSource, ConsentState, DataCategory, Decision, FieldRule, FieldSchema,
    LegalBasis, Minimised, Purpose, PurposeId, PurposeRegistry,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::EngineError;

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
    /// Unmapped field paths already logged (each is logged once).
    unmapped_seen: Mutex<HashSet<String>>,
}

/// Most distinct unmapped field names remembered for logging once.
const MAX_UNMAPPED_REMEMBERED: usize = 10_000;

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("purposes", &self.registry.all().count())
            .finish_non_exhaustive()
    }
}

/// One consent decision read off a signal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Signal {
    pub purpose: PurposeId,
    pub decision: Decision,
    pub source: ConsentSource,
}

fn invalid(field: &str, message: String) -> EngineError {
    EngineError::Config(format!("{field}: {message}"))
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
    ) -> Result<Self, EngineError> {
        let registry = match purposes {
            Some(p) => PurposeRegistry::new(p).map_err(|e| invalid("purposes", e.to_string()))?,
            None => PurposeRegistry::retail_defaults(),
        };
        let schema = FieldSchema::new(schema).map_err(|e| invalid("schema", e.to_string()))?;
        let known = |id: &str| -> Result<PurposeId, EngineError> {
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
        Ok(PolicySet {
            registry,
            schema,
            segment,
            tcf,
            unmapped_seen: Mutex::new(HashSet::new()),
        })
    }

    /// Whether any of `purposes` may use `category`.
    pub(crate) fn any_may_use(&self, purposes: &[&PurposeId], category: &DataCategory) -> bool {
        purposes.iter().any(|p| self.registry.permits(p, category))
    }

    /// The purposes with a legal basis under `consent` at `at`.
    pub(crate) fn purposes_with_basis(
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
    pub(crate) fn minimise_payload(
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
            self.minimise_objects(call, name.as_deref(), objects, allowed, &mut out);
        }
        (out.unused.len() + out.unmapped.len()) as u64
    }

    /// Minimises an event's data objects (`traits` or `properties`, and `context`) in place.
    /// `context.library` and `context.consent` describe the call, not the customer, and stay.
    pub(crate) fn minimise_objects<'a>(
        &self,
        call: CallType,
        event: Option<&str>,
        objects: impl IntoIterator<Item = (&'a str, &'a mut Map<String, Value>)>,
        allowed: &dyn Fn(&DataCategory) -> bool,
        out: &mut Minimised,
    ) {
        for (root, object) in objects {
            let structural: Vec<(String, Value)> = if root == "context" {
                ["library", "consent"]
                    .iter()
                    .filter_map(|k| object.remove(*k).map(|v| ((*k).to_owned(), v)))
                    .collect()
            } else {
                Vec::new()
            };
            minimise(&self.schema, call, event, root, object, allowed, out);
            object.extend(structural);
        }
    }

    /// Logs an unmapped field the first time it is seen.
    pub(crate) fn note_unmapped(&self, path: &str) {
        let mut seen = self.unmapped_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() < MAX_UNMAPPED_REMEMBERED && seen.insert(path.to_owned()) {
            tracing::warn!(
                field = path,
                "field maps to no data category; it is not stored (map it under [[schema]] in consentric.toml)"
            );
        }
    }

    /// The consent decisions an event (and its request's `Sec-GPC` header) carries.
    pub(crate) fn signals(&self, event: &Event, gpc: bool) -> Result<Vec<Signal>, EngineError> {
        let mut out = Vec::new();
        let consent = event.context().consent();
        if let Some(prefs) = consent
            .and_then(|c| c.get("categoryPreferences"))
            .and_then(Value::as_object)
        {
            for (key, value) in prefs {
                let (Some(ids), Some(granted)) = (self.segment.get(key), value.as_bool()) else {
                    continue; // unmapped categories and non-boolean values carry no decision
                };
                for id in ids {
                    out.push(Signal {
                        purpose: id.clone(),
                        decision: Decision::from_granted(granted),
                        source: ConsentSource::Segment,
                    });
                }
            }
        }
        let tc = consent
            .and_then(|c| c.get("tcfString").or_else(|| c.get("gdpr_consent")))
            .or_else(|| event.context().as_map().get("gdpr_consent"))
            .and_then(Value::as_str);
        if let Some(raw) = tc {
            let decoded = tcf::decode(raw).map_err(|e| EngineError::Invalid {
                field: "context.consent.tcfString".into(),
                message: e.to_string(),
            })?;
            for (id, needed) in &self.tcf {
                let Ok(p) = self.registry.get(id.as_str()) else {
                    continue;
                };
                let granted = match p.legal_basis {
                    LegalBasis::LegitimateInterest => needed.iter().all(|n| {
                        decoded.purpose_consents.contains(n)
                            || decoded.purpose_legitimate_interests.contains(n)
                    }),
                    _ => needed.iter().all(|n| decoded.purpose_consents.contains(n)),
                };
                out.push(Signal {
                    purpose: id.clone(),
                    decision: Decision::from_granted(granted),
                    source: ConsentSource::Tcf,
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
                });
            }
        }
        Ok(out)
    }
}
