//! The gate: the only way to obtain a [`Grant`], and a grant is the only key to personal data.
//!
//! A grant names one purpose, one subject and one moment, and carries exactly the categories
//! that purpose may use — if, and only if, the purpose has a legal basis for that subject at
//! that moment. Its fields are private and it has no public constructor, so code outside this
//! crate can hold, inspect and pass a grant but never make or widen one; a grant for one purpose
//! cannot be used as another's.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::consent::ConsentState;
#[cfg(test)]
use crate::purpose::ACCESS;
use crate::purpose::{LegalBasis, PurposeId, PurposeRegistry};
use crate::taxonomy::DataCategory;

/// Permission to read a subject's data in some categories, for one purpose, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    purpose: PurposeId,
    subject: String,
    categories: Arc<[DataCategory]>,
    at: DateTime<Utc>,
}

/// Why the gate said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such purpose is declared.
    #[error("unknown purpose `{0}`")]
    UnknownPurpose(String),
    /// The purpose has no legal basis for this subject at this moment.
    #[error("no legal basis for `{purpose}` ({basis:?}) for this customer at this time")]
    NoBasis {
        /// The purpose asked for.
        purpose: String,
        /// Its legal basis.
        basis: LegalBasis,
    },
}

/// Opens a grant for `purpose` over `subject`'s data at `at`, given their consent state.
///
/// # Errors
/// A [`Refusal`] when the purpose is unknown or has no basis.
pub fn open(
    registry: &PurposeRegistry,
    state: &ConsentState,
    purpose: &str,
    subject: &str,
    at: DateTime<Utc>,
) -> Result<Grant, Refusal> {
    let p = registry
        .get(purpose)
        .map_err(|_| Refusal::UnknownPurpose(purpose.to_owned()))?;
    if !state.has_basis(p, at) {
        return Err(Refusal::NoBasis {
            purpose: p.id.to_string(),
            basis: p.legal_basis,
        });
    }
    let categories = registry.permitted(&p.id);
    Ok(Grant {
        purpose: p.id.clone(),
        subject: subject.to_owned(),
        categories,
        at,
    })
}

impl Grant {
    /// The purpose this grant serves, and no other.
    pub fn purpose(&self) -> &PurposeId {
        &self.purpose
    }

    /// Whose data it opens.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The moment it was opened for.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Every category it opens (each listed; descendants included).
    pub fn categories(&self) -> &[DataCategory] {
        &self.categories
    }

    /// Whether data in `category` may be read under this grant.
    pub fn permits(&self, category: &DataCategory) -> bool {
        self.categories.iter().any(|c| c == category)
    }

    /// Keeps the items whose category this grant permits: the one filter every view uses.
    pub fn filter<'a, T>(&self, items: &'a [(DataCategory, T)]) -> Vec<(&'a DataCategory, &'a T)> {
        items
            .iter()
            .filter(|(c, _)| self.permits(c))
            .map(|(c, v)| (c, v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentRecord, ConsentSource, Decision};
    use crate::taxonomy::DEFAULT_TAXONOMY;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn granted(purpose: &str, at: &str) -> ConsentRecord {
        ConsentRecord {
            purpose: PurposeId::parse(purpose).expect("id"),
            decision: Decision::Granted,
            source: ConsentSource::Api,
            purpose_version: 1,
            at: t(at),
            evidence_hash: String::new(),
            assurance: Default::default(),
        }
    }

    #[test]
    fn a_grant_holds_only_its_purposes_categories() {
        let r = PurposeRegistry::retail_defaults();
        let s = ConsentState::fold([granted("personalization", "2024-01-01T00:00:00Z")]);
        let g = open(&r, &s, "personalization", "u1", t("2024-02-01T00:00:00Z")).expect("grant");
        assert_eq!(g.purpose().as_str(), "personalization");
        assert!(g.permits(&DataCategory::parse("user.behavior.purchase").expect("c")));
        assert!(!g.permits(&DataCategory::parse("user.contact.email").expect("c")));
        assert!(!g.permits(&DataCategory::parse("user.demographic.gender").expect("c")));
    }

    #[test]
    fn no_declared_purpose_takes_the_access_id() {
        let r = PurposeRegistry::retail_defaults();
        assert!(
            r.get(ACCESS).is_err(),
            "no declared purpose is the access purpose"
        );
    }

    #[test]
    fn without_a_basis_the_gate_refuses_with_a_reason() {
        let r = PurposeRegistry::retail_defaults();
        let e = open(
            &r,
            &ConsentState::default(),
            "analytics",
            "u1",
            t("2024-02-01T00:00:00Z"),
        );
        assert_eq!(
            e,
            Err(Refusal::NoBasis {
                purpose: "analytics".into(),
                basis: LegalBasis::Consent
            })
        );
        let e = open(
            &r,
            &ConsentState::default(),
            "astrology",
            "u1",
            t("2024-02-01T00:00:00Z"),
        );
        assert_eq!(e, Err(Refusal::UnknownPurpose("astrology".into())));
    }

    fn category() -> impl Strategy<Value = DataCategory> {
        proptest::sample::select(DEFAULT_TAXONOMY.to_vec())
            .prop_map(|c| DataCategory::parse(c).expect("c"))
    }

    /// Some computation over what a view lets through (here: a digest of it).
    fn computation(
        grant: Option<&Grant>,
        data: &[(DataCategory, i64)],
    ) -> Option<Vec<(String, i64)>> {
        grant.map(|g| {
            g.filter(data)
                .into_iter()
                .map(|(c, v)| (c.to_string(), *v))
                .collect()
        })
    }

    proptest! {
        /// Non-interference: changing data in categories a purpose may not use, or of a
        /// customer without a basis for it, never changes what the purpose computes.
        #[test]
        fn data_outside_a_grant_never_changes_the_result(
            data in proptest::collection::vec((category(), any::<i64>()), 0..30),
            noise in proptest::collection::vec(any::<i64>(), 30),
            purpose in proptest::sample::select(vec!["analytics", "personalization", "marketing.email", "model_training", "fairness_audit"]),
            granted_purpose in proptest::sample::select(vec!["analytics", "personalization", "marketing.email", "none"]),
        ) {
            let r = PurposeRegistry::retail_defaults();
            let state = if granted_purpose == "none" {
                ConsentState::default()
            } else {
                ConsentState::fold([granted(granted_purpose, "2024-01-01T00:00:00Z")])
            };
            let grant = open(&r, &state, purpose, "u", t("2024-06-01T00:00:00Z")).ok();
            let before = computation(grant.as_ref(), &data);
            // Change every value the grant does not permit (all of them when there is no grant).
            let changed: Vec<(DataCategory, i64)> = data
                .iter()
                .zip(&noise)
                .map(|((c, v), n)| {
                    let visible = grant.as_ref().is_some_and(|g| g.permits(c));
                    (*c, if visible { *v } else { *n })
                })
                .collect();
            prop_assert_eq!(before, computation(grant.as_ref(), &changed));
        }
    }
}
