use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::purpose::{LegalBasis, Purpose, PurposeId, RESTRICTION};

/// What a customer said about a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Yes.
    Granted,
    /// No (also: an objection, for a legitimate-interest purpose).
    Denied,
    /// Yes no longer.
    Withdrawn,
}

impl Decision {
    /// A yes/no answer as a decision.
    pub fn from_granted(granted: bool) -> Self {
        if granted {
            Decision::Granted
        } else {
            Decision::Denied
        }
    }

    /// Spelling in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Granted => "granted",
            Decision::Denied => "denied",
            Decision::Withdrawn => "withdrawn",
        }
    }

    /// Inverse of [`Decision::as_str`].
    ///
    /// # Errors
    /// Any other word.
    pub fn parse(raw: &str) -> Result<Self, PolicyError> {
        match raw {
            "granted" => Ok(Decision::Granted),
            "denied" => Ok(Decision::Denied),
            "withdrawn" => Ok(Decision::Withdrawn),
            other => Err(PolicyError::Invalid {
                field: "decision".into(),
                message: format!("`{other}` is not granted, denied or withdrawn"),
            }),
        }
    }
}

/// Where a consent record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// `PUT /v1/consent/{customer}` (a consent banner, the privacy centre, support staff).
    Api,
    /// Segment's consent object, `context.consent.categoryPreferences`, on an event.
    Segment,
    /// The `Sec-GPC: 1` header (Global Privacy Control).
    Gpc,
    /// An IAB TCF v2.2 TC string on an event.
    Tcf,
    /// Consentric's consent banner (`context.consent.source = "banner"` on an event).
    Banner,
    /// The customer, signed in to the privacy centre.
    PrivacyCentre,
}

impl ConsentSource {
    /// Spelling in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Api => "api",
            ConsentSource::Segment => "segment",
            ConsentSource::Gpc => "gpc",
            ConsentSource::Tcf => "tcf",
            ConsentSource::Banner => "banner",
            ConsentSource::PrivacyCentre => "privacy_centre",
        }
    }

    /// Inverse of [`ConsentSource::as_str`].
    ///
    /// # Errors
    /// Any other word.
    pub fn parse(raw: &str) -> Result<Self, PolicyError> {
        match raw {
            "api" => Ok(ConsentSource::Api),
            "segment" => Ok(ConsentSource::Segment),
            "gpc" => Ok(ConsentSource::Gpc),
            "tcf" => Ok(ConsentSource::Tcf),
            "banner" => Ok(ConsentSource::Banner),
            "privacy_centre" => Ok(ConsentSource::PrivacyCentre),
            other => Err(PolicyError::Invalid {
                field: "source".into(),
                message: format!("`{other}` is not a consent source"),
            }),
        }
    }
}

/// How sure we are that the customer themself said what a record says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assurance {
    /// From a secret key, the admin API or the CLI: the business vouches for it.
    Server,
    /// From a public browser key, by the visitor about their own anonymous id or about a user
    /// id whose user hash the site's backend signed.
    #[default]
    Browser,
    /// From a public browser key about a user id without a valid user hash, or a grant of a
    /// purpose that needs verified consent: kept as evidence, but gives no basis.
    Unverified,
}

impl Assurance {
    /// Spelling in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Assurance::Server => "server",
            Assurance::Browser => "browser",
            Assurance::Unverified => "unverified",
        }
    }

    /// Inverse of [`Assurance::as_str`].
    ///
    /// # Errors
    /// Any other word.
    pub fn parse(raw: &str) -> Result<Self, PolicyError> {
        match raw {
            "server" => Ok(Assurance::Server),
            "browser" => Ok(Assurance::Browser),
            "unverified" => Ok(Assurance::Unverified),
            other => Err(PolicyError::Invalid {
                field: "assurance".into(),
                message: format!("`{other}` is not server, browser or unverified"),
            }),
        }
    }
}

/// The purpose a restriction leaves in force (with those under a legal obligation).
pub const ESSENTIAL: &str = "essential";

/// One line of the append-only consent ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The purpose.
    pub purpose: PurposeId,
    /// What was decided.
    pub decision: Decision,
    /// Where it came from.
    pub source: ConsentSource,
    /// The version of the purpose's text the customer saw.
    pub purpose_version: u32,
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// SHA-256 (hex) of the evidence: the request or event that carried the decision.
    pub evidence_hash: String,
    /// How sure we are the customer said it; an unverified record counts for nothing.
    #[serde(default)]
    pub assurance: Assurance,
}

/// A customer's consent history folded for questions about a moment. The history is kept
/// whole: asking about an earlier time gives the answer that held then.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsentState {
    by_purpose: BTreeMap<PurposeId, Vec<ConsentRecord>>,
}

impl ConsentState {
    /// Folds a ledger (in the order it was written; equal times keep that order).
    /// Unverified records are evidence only: they are left out, so they neither give nor take
    /// a basis.
    pub fn fold(records: impl IntoIterator<Item = ConsentRecord>) -> Self {
        let mut by_purpose: BTreeMap<PurposeId, Vec<ConsentRecord>> = BTreeMap::new();
        for r in records
            .into_iter()
            .filter(|r| r.assurance != Assurance::Unverified)
        {
            by_purpose.entry(r.purpose.clone()).or_default().push(r);
        }
        for list in by_purpose.values_mut() {
            list.sort_by_key(|r| r.at); // stable: equal times keep ledger order
        }
        ConsentState { by_purpose }
    }

    /// The decision in force for `purpose` at `at`, if any was recorded by then.
    pub fn latest(&self, purpose: &PurposeId, at: DateTime<Utc>) -> Option<&ConsentRecord> {
        self.by_purpose
            .get(purpose)?
            .iter()
            .take_while(|r| r.at <= at)
            .last()
    }

    /// Whether the customer had processing of their data restricted (GDPR art. 18) at `at`:
    /// the latest record for the reserved purpose [`RESTRICTION`] grants it.
    pub fn restricted(&self, at: DateTime<Utc>) -> bool {
        self.by_purpose
            .iter()
            .find(|(id, _)| id.as_str() == RESTRICTION)
            .and_then(|(_, list)| list.iter().take_while(|r| r.at <= at).last())
            .is_some_and(|r| r.decision == Decision::Granted)
    }

    /// This state without any restriction: what withdrawal reasons about, since a restriction
    /// suspends processing but keeps the data stored.
    pub fn without_restriction(&self) -> Self {
        let mut by_purpose = self.by_purpose.clone();
        by_purpose.retain(|id, _| id.as_str() != RESTRICTION);
        ConsentState { by_purpose }
    }

    /// Whether processing for `purpose` has a legal basis at `at`:
    /// consent — granted, for the current version unless old versions do not lapse;
    /// legitimate interest — not objected to; contract and legal obligation — always.
    /// Under a restriction only `essential` and purposes under a legal obligation keep theirs.
    pub fn has_basis(&self, purpose: &Purpose, at: DateTime<Utc>) -> bool {
        if self.restricted(at)
            && purpose.id.as_str() != ESSENTIAL
            && purpose.legal_basis != LegalBasis::LegalObligation
        {
            return false;
        }
        let latest = self.latest(&purpose.id, at);
        match purpose.legal_basis {
            LegalBasis::Contract | LegalBasis::LegalObligation => true,
            LegalBasis::LegitimateInterest => {
                latest.is_none_or(|r| r.decision == Decision::Granted)
            }
            LegalBasis::Consent => latest.is_some_and(|r| {
                r.decision == Decision::Granted
                    && (r.purpose_version >= purpose.version || !purpose.lapse_on_new_version)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::purpose::PurposeRegistry;

    #[test]
    fn a_restriction_leaves_only_essential_and_legal_obligations_until_lifted() {
        let r = PurposeRegistry::retail_defaults();
        let s = ConsentState::fold([
            rec(
                "personalization",
                Decision::Granted,
                1,
                "2024-01-01T00:00:00Z",
            ),
            rec(RESTRICTION, Decision::Granted, 1, "2024-02-01T00:00:00Z"),
            rec(RESTRICTION, Decision::Withdrawn, 1, "2024-03-01T00:00:00Z"),
        ]);
        let p = |id: &str| r.get(id).expect("purpose");
        let (before, during, after) = (
            t("2024-01-15T00:00:00Z"),
            t("2024-02-15T00:00:00Z"),
            t("2024-03-15T00:00:00Z"),
        );
        assert!(s.has_basis(p("personalization"), before));
        assert!(s.restricted(during));
        assert!(!s.has_basis(p("personalization"), during));
        assert!(s.has_basis(p("essential"), during));
        assert!(
            s.has_basis(p("fairness_audit"), during),
            "a legal obligation stays"
        );
        assert!(s
            .without_restriction()
            .has_basis(p("personalization"), during));
        assert!(!s.restricted(after) && s.has_basis(p("personalization"), after));
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn rec(purpose: &str, decision: Decision, version: u32, at: &str) -> ConsentRecord {
        ConsentRecord {
            purpose: PurposeId::parse(purpose).expect("id"),
            decision,
            source: ConsentSource::Api,
            purpose_version: version,
            at: t(at),
            evidence_hash: String::new(),
            assurance: Default::default(),
        }
    }

    #[test]
    fn consent_holds_between_grant_and_withdrawal_and_history_answers_the_past() {
        let r = PurposeRegistry::retail_defaults();
        let p = r.get("personalization").expect("p");
        let s = ConsentState::fold([
            rec(
                "personalization",
                Decision::Withdrawn,
                1,
                "2024-03-01T00:00:00Z",
            ),
            rec(
                "personalization",
                Decision::Granted,
                1,
                "2024-01-01T00:00:00Z",
            ),
        ]);
        assert!(
            !s.has_basis(p, t("2023-12-31T00:00:00Z")),
            "nothing before the grant"
        );
        assert!(s.has_basis(p, t("2024-02-01T00:00:00Z")));
        assert!(!s.has_basis(p, t("2024-03-01T00:00:00Z")));
    }

    #[test]
    fn a_new_purpose_version_lapses_older_consent_when_configured() {
        let r = PurposeRegistry::retail_defaults();
        let mut p = r.get("marketing.email").expect("p").clone();
        let s = ConsentState::fold([rec(
            "marketing.email",
            Decision::Granted,
            1,
            "2024-01-01T00:00:00Z",
        )]);
        let now = t("2024-06-01T00:00:00Z");
        assert!(s.has_basis(&p, now));
        p.version = 2;
        assert!(
            !s.has_basis(&p, now),
            "consent to version 1 lapses at version 2"
        );
        p.lapse_on_new_version = false;
        assert!(s.has_basis(&p, now));
    }

    #[test]
    fn legitimate_interest_holds_until_an_objection_and_contract_always() {
        let r = PurposeRegistry::retail_defaults();
        let now = t("2024-06-01T00:00:00Z");
        let empty = ConsentState::default();
        assert!(empty.has_basis(r.get("model_training").expect("p"), now));
        assert!(!empty.has_basis(r.get("analytics").expect("p"), now));
        let objected = ConsentState::fold([rec(
            "model_training",
            Decision::Denied,
            1,
            "2024-05-01T00:00:00Z",
        )]);
        assert!(!objected.has_basis(r.get("model_training").expect("p"), now));
        let denied_all = ConsentState::fold([rec(
            "essential",
            Decision::Denied,
            1,
            "2024-05-01T00:00:00Z",
        )]);
        assert!(denied_all.has_basis(r.get("essential").expect("p"), now));
    }
}
