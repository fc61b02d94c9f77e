use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::taxonomy::{CategorySet, DataCategory};

/// The id that access (reads of everything about a customer, audited by the store) is
/// recorded under. Reserved: no declared purpose may take it.
pub const ACCESS: &str = "access";

/// The reserved purpose under which restriction of processing (GDPR art. 18) is recorded in
/// the ledger: `granted` restricts, `withdrawn` lifts. No declared purpose may take the id.
pub const RESTRICTION: &str = "restriction";

/// A purpose's name: lower-case letters, digits, `_` and `.` (`marketing.email`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PurposeId(String);

impl PurposeId {
    /// Accepts a well-formed id (it need not be registered).
    ///
    /// # Errors
    /// An empty id, one over 64 bytes, or one with other characters.
    pub fn parse(raw: &str) -> Result<Self, PolicyError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if ok {
            Ok(PurposeId(raw.to_owned()))
        } else {
            Err(PolicyError::Invalid {
                field: "purpose".into(),
                message: format!("`{raw}` is not a purpose id (a-z, 0-9, `_`, `.`; at most 64)"),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PurposeId {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<Self, PolicyError> {
        PurposeId::parse(&s)
    }
}

impl From<PurposeId> for String {
    fn from(p: PurposeId) -> String {
        p.0
    }
}

impl fmt::Display for PurposeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why processing for a purpose is lawful (GDPR art. 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// Only with the customer's consent, for the current version of the purpose's text.
    Consent,
    /// Needed to perform a contract with the customer; holds regardless of consent records.
    Contract,
    /// The business's legitimate interest; holds until the customer objects.
    LegitimateInterest,
    /// Required by law; holds regardless.
    LegalObligation,
}

impl LegalBasis {
    /// Spelling in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::Contract => "contract",
            LegalBasis::LegitimateInterest => "legitimate_interest",
            LegalBasis::LegalObligation => "legal_obligation",
        }
    }
}

/// One declared use of data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    /// Its id.
    pub id: PurposeId,
    /// What customers are told, in a consent banner or the privacy centre.
    pub text: String,
    /// Why it is lawful.
    pub legal_basis: LegalBasis,
    /// The categories it may use (each with everything beneath it).
    pub categories: Vec<String>,
    /// Longest time data may be kept for it, in days.
    pub retention_days: u32,
    /// Version of `text`; bump it when the text changes.
    pub version: u32,
    /// A sale or share of data (CCPA); Global Privacy Control denies it, and a grant of it from
    /// a public browser key about a user id is unverified until confirmed.
    #[serde(default)]
    pub sale_or_share: bool,
    /// Whether a grant of it from a public browser key about a user id is unverified until
    /// confirmed, as for sale/share purposes (which always need it).
    #[serde(default)]
    pub verified_consent: bool,
    /// Whether consent given to an older version lapses when the version changes.
    #[serde(default)]
    pub lapse_on_new_version: bool,
    /// The recipients, or categories of recipient, its data is disclosed to (GDPR art.
    /// 15(1)(c)): shown to customers in their access export.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// `text` in other languages, by language tag (`fr`, `pt-br`): banners and the privacy
    /// centre show the visitor's. A translation says the same as `text`, so it shares its
    /// version.
    #[serde(default)]
    pub translations: BTreeMap<String, String>,
}

impl Purpose {
    /// The text in the first of `languages` (tags, most preferred first) it is translated
    /// into — an exact tag, else its primary language (`fr-CA` finds `fr`) — with that tag;
    /// else the declared text, with no tag.
    pub fn text_in<'a>(&'a self, languages: &[String]) -> (&'a str, Option<&'a str>) {
        for wanted in languages {
            let wanted = wanted.to_ascii_lowercase();
            let primary = wanted.split('-').next().unwrap_or_default();
            for candidate in [wanted.as_str(), primary] {
                if let Some((tag, text)) = self.translations.get_key_value(candidate) {
                    return (text, Some(tag));
                }
            }
        }
        (&self.text, None)
    }

    /// Whether a grant from a browser key about a user id needs confirming before it counts.
    pub fn needs_verified_consent(&self) -> bool {
        self.sale_or_share || self.verified_consent
    }

    /// Whether this purpose may use `category` (it, or an ancestor of it, is listed).
    pub fn may_use(&self, category: &DataCategory) -> bool {
        self.categories
            .iter()
            .filter_map(|c| DataCategory::parse(c).ok())
            .any(|allowed| category.is_within(&allowed))
    }
}

/// The purposes in force, by id. Built from configuration, validated once; each purpose's
/// permitted categories (descendants included) are computed then, so opening a grant is a
/// look-up, not a walk of the taxonomy.
#[derive(Debug, Clone, PartialEq)]
pub struct PurposeRegistry {
    purposes: BTreeMap<PurposeId, Purpose>,
    permitted: BTreeMap<PurposeId, (Arc<[DataCategory]>, CategorySet)>,
}

impl PurposeRegistry {
    /// Validates and indexes `purposes`.
    ///
    /// # Errors
    /// A duplicate id, the reserved id `access`, an unknown category, or a zero version or
    /// retention.
    pub fn new(purposes: Vec<Purpose>) -> Result<Self, PolicyError> {
        let mut map = BTreeMap::new();
        for p in purposes {
            if [ACCESS, RESTRICTION].contains(&p.id.as_str()) {
                return Err(PolicyError::Invalid {
                    field: format!("purposes.{}", p.id),
                    message: format!(
                        "`{}` is reserved (access requests; restriction of processing)",
                        p.id
                    ),
                });
            }
            for c in &p.categories {
                DataCategory::parse(c)?;
            }
            for (tag, text) in &p.translations {
                let valid = !tag.is_empty()
                    && tag.len() <= 35
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !valid || text.trim().is_empty() {
                    return Err(PolicyError::Invalid {
                        field: format!("purposes.{}.translations", p.id),
                        message: format!(
                            "`{tag}`: a language tag in lower case (`fr`, `pt-br`) with a text that is not empty"
                        ),
                    });
                }
            }
            if p.version == 0 || p.retention_days == 0 {
                return Err(PolicyError::Invalid {
                    field: format!("purposes.{}", p.id),
                    message: "version and retention_days must be at least 1".into(),
                });
            }
            if map.insert(p.id.clone(), p.clone()).is_some() {
                return Err(PolicyError::Invalid {
                    field: format!("purposes.{}", p.id),
                    message: "declared twice".into(),
                });
            }
        }
        let permitted = map
            .values()
            .map(|p| {
                let cats: Arc<[DataCategory]> =
                    DataCategory::all().filter(|c| p.may_use(c)).collect();
                let set = cats.iter().copied().collect();
                (p.id.clone(), (cats, set))
            })
            .collect();
        Ok(PurposeRegistry {
            purposes: map,
            permitted,
        })
    }

    /// Every taxonomy category `purpose` may use, descendants included.
    pub fn permitted(&self, purpose: &PurposeId) -> Arc<[DataCategory]> {
        self.permitted
            .get(purpose)
            .map(|(cats, _)| cats.clone())
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// [`PurposeRegistry::permitted`] as a set (empty for an unknown purpose).
    pub fn permitted_set(&self, purpose: &PurposeId) -> CategorySet {
        self.permitted
            .get(purpose)
            .map_or(CategorySet::EMPTY, |(_, set)| *set)
    }

    /// Whether `purpose` may use `category` (a look-up in the precomputed set).
    pub fn permits(&self, purpose: &PurposeId, category: &DataCategory) -> bool {
        self.permitted_set(purpose).contains(category)
    }

    /// The built-in purposes of a retail business.
    pub fn retail_defaults() -> Self {
        fn p(
            id: &str,
            text: &str,
            legal_basis: LegalBasis,
            categories: &[&str],
            retention_days: u32,
            sale_or_share: bool,
        ) -> Purpose {
            Purpose {
                id: PurposeId(id.to_owned()),
                text: text.to_owned(),
                legal_basis,
                categories: categories.iter().map(|c| (*c).to_owned()).collect(),
                retention_days,
                version: 1,
                sale_or_share,
                verified_consent: false,
                lapse_on_new_version: true,
                recipients: Vec::new(),
                translations: BTreeMap::new(),
            }
        }
        use LegalBasis::*;
        let mut purposes = vec![
            p("essential", "Run the service you asked for: your account, your orders, security and fraud prevention.", Contract,
              &["user.unique_id", "user.name", "user.contact", "user.behavior.purchase", "user.financial.transaction", "user.account"], 3650, false),
            p("analytics", "Understand, in aggregate, how our shop is used so we can improve it.", Consent,
              &["user.unique_id", "user.behavior", "user.device.user_agent", "user.location.coarse", "user.financial.transaction", "user.marketing.campaign"], 730, false),
            p("personalization", "Recommend products and tailor the shop to you from what you browse and buy.", Consent,
              &["user.unique_id", "user.behavior", "user.preferences", "user.financial.transaction", "user.content.review"], 365, false),
            p("marketing.email", "Send you offers and news by e-mail.", Consent,
              &["user.unique_id", "user.name", "user.contact.email", "user.behavior.purchase", "user.preferences.language"], 730, false),
            p("marketing.ads_sharing", "Share your identifiers and activity with advertising partners to show you ads elsewhere.", Consent,
              &["user.unique_id", "user.contact.email", "user.device", "user.behavior"], 365, true),
            p("partner_matching", "Find out, without either side seeing the other's list, how many of our customers also shop with a partner and what they spend there.", Consent,
              &["user.unique_id", "user.contact.email", "user.contact.phone", "user.financial.transaction"], 365, true),
            p("model_training", "Train the models that predict value and churn, without using your data for anything else.", LegitimateInterest,
              &["user.unique_id", "user.behavior", "user.financial.transaction"], 365, false),
            p("fairness_audit", "Check that our automated decisions treat groups of customers fairly.", LegalObligation,
              &["user.unique_id", "user.demographic", "user.behavior.purchase"], 365, false),
        ];
        // Who receives data for the purposes that disclose it; operators name their own in
        // `[[purposes]]`.
        for p in &mut purposes {
            p.recipients = match p.id.as_str() {
                "marketing.email" => vec!["the e-mail delivery service that sends our messages".into()],
                "marketing.ads_sharing" => vec!["advertising partners".into()],
                "partner_matching" => vec![
                    "partners in clean-room sessions (they receive your identifier only blinded, and learn at most how many customers we share)".into(),
                ],
                _ => Vec::new(),
            };
        }
        // The defaults are well formed by construction; a failure here is a bug in this list.
        PurposeRegistry::new(purposes).unwrap_or_else(|e| panic!("built-in purposes: {e}"))
    }

    /// The purpose with this id.
    ///
    /// # Errors
    /// [`PolicyError::UnknownPurpose`].
    pub fn get(&self, id: &str) -> Result<&Purpose, PolicyError> {
        PurposeId::parse(id)
            .ok()
            .and_then(|id| self.purposes.get(&id))
            .ok_or_else(|| PolicyError::UnknownPurpose(id.to_owned()))
    }

    /// Every purpose, by id.
    pub fn all(&self) -> impl Iterator<Item = &Purpose> {
        self.purposes.values()
    }

    /// The purposes that may use `category`.
    pub fn using<'a>(
        &'a self,
        category: &'a DataCategory,
    ) -> impl Iterator<Item = &'a Purpose> + 'a {
        self.purposes.values().filter(move |p| p.may_use(category))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retail_defaults_hold_the_eight_purposes() {
        let r = PurposeRegistry::retail_defaults();
        let ids: Vec<&str> = r.all().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "analytics",
                "essential",
                "fairness_audit",
                "marketing.ads_sharing",
                "marketing.email",
                "model_training",
                "partner_matching",
                "personalization"
            ]
        );
        assert!(r.get("marketing.ads_sharing").expect("p").sale_or_share);
        assert!(r.get("nope").is_err());
    }

    #[test]
    fn a_purpose_may_use_what_lies_beneath_its_categories() {
        let r = PurposeRegistry::retail_defaults();
        let email = DataCategory::parse("user.contact.email").expect("c");
        let gender = DataCategory::parse("user.demographic.gender").expect("c");
        assert!(r.get("marketing.email").expect("p").may_use(&email));
        assert!(!r.get("personalization").expect("p").may_use(&gender));
        assert_eq!(
            r.using(&gender).map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["fairness_audit"]
        );
    }

    #[test]
    fn bad_declarations_are_refused() {
        let mut p = PurposeRegistry::retail_defaults()
            .get("analytics")
            .expect("p")
            .clone();
        p.categories.push("user.secret".into());
        assert_eq!(
            PurposeRegistry::new(vec![p]),
            Err(PolicyError::UnknownCategory("user.secret".into()))
        );
        let p = PurposeRegistry::retail_defaults()
            .get("analytics")
            .expect("p")
            .clone();
        assert!(PurposeRegistry::new(vec![p.clone(), p.clone()]).is_err());
        assert!(PurposeId::parse("Marketing Email").is_err());
        for (tag, text) in [("FR", "Mesurer"), ("fr_CA", "Mesurer"), ("fr", " ")] {
            let mut t = p.clone();
            t.translations.insert(tag.into(), text.into());
            assert!(PurposeRegistry::new(vec![t]).is_err(), "{tag:?} {text:?}");
        }
    }

    #[test]
    fn texts_come_in_the_first_language_translated() {
        let mut p = PurposeRegistry::retail_defaults()
            .get("analytics")
            .expect("p")
            .clone();
        p.translations.insert("fr".into(), "Mesurer".into());
        p.translations.insert("pt-br".into(), "Medir".into());
        let langs = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(p.text_in(&langs(&["de", "FR-ca"])), ("Mesurer", Some("fr")));
        assert_eq!(
            p.text_in(&langs(&["pt-BR", "fr"])),
            ("Medir", Some("pt-br"))
        );
        assert_eq!(
            p.text_in(&langs(&["pt"])).1,
            None,
            "a primary language does not find a region's"
        );
        assert_eq!(p.text_in(&langs(&["de"])), (p.text.as_str(), None));
    }
}
