use std::fmt;

use crate::error::PolicyError;

/// The categories Consentric knows, in the style of fideslang: dotted paths from general to
/// specific. A purpose allowed `user.contact` may use `user.contact.email`; not the reverse.
pub const DEFAULT_TAXONOMY: &[&str] = &[
    "user",
    "user.unique_id",
    "user.name",
    "user.contact",
    "user.contact.email",
    "user.contact.phone",
    "user.contact.address",
    "user.contact.address.city",
    "user.contact.address.country",
    "user.contact.address.postal_code",
    "user.contact.address.state",
    "user.contact.address.street",
    "user.device",
    "user.device.ip",
    "user.device.user_agent",
    "user.device.id",
    "user.location",
    "user.location.precise",
    "user.location.coarse",
    "user.behavior",
    "user.behavior.browsing",
    "user.behavior.purchase",
    "user.behavior.activity",
    "user.financial",
    "user.financial.transaction",
    "user.demographic",
    "user.demographic.age",
    "user.demographic.gender",
    "user.demographic.date_of_birth",
    "user.account",
    "user.account.settings",
    "user.preferences",
    "user.preferences.language",
    "user.marketing",
    "user.marketing.campaign",
    "user.content",
    "user.content.review",
    "user.organization",
];

/// One node of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataCategory(String);

impl DataCategory {
    /// Accepts a category of [`DEFAULT_TAXONOMY`].
    ///
    /// # Errors
    /// [`PolicyError::UnknownCategory`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, PolicyError> {
        let raw = raw.trim();
        if DEFAULT_TAXONOMY.contains(&raw) {
            Ok(DataCategory(raw.to_owned()))
        } else {
            Err(PolicyError::UnknownCategory(raw.to_owned()))
        }
    }

    /// The dotted path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this category is `other` or lies beneath it (`user.contact.email` is within
    /// `user.contact`).
    pub fn is_within(&self, other: &DataCategory) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(&other.0)
                && self.0.as_bytes()[other.0.len()] == b'.')
    }

    /// Sensitive categories: never inputs to recommendations or actions (issue 6), and good
    /// candidates for stricter purposes.
    pub fn is_sensitive(&self) -> bool {
        self.is_within(&DataCategory("user.demographic".into()))
    }
}

impl fmt::Display for DataCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> DataCategory {
        DataCategory::parse(s).expect(s)
    }

    #[test]
    fn a_category_lies_within_its_ancestors_only() {
        assert!(c("user.contact.email").is_within(&c("user.contact")));
        assert!(c("user.contact.email").is_within(&c("user")));
        assert!(c("user.contact").is_within(&c("user.contact")));
        assert!(!c("user.contact").is_within(&c("user.contact.email")));
        assert!(!c("user.contact.address.city").is_within(&c("user.contact.email")));
    }

    #[test]
    fn unknown_categories_are_refused() {
        assert!(DataCategory::parse("user.contact.fax").is_err());
        assert!(DataCategory::parse("").is_err());
    }

    #[test]
    fn every_taxonomy_entry_has_its_parent() {
        for entry in DEFAULT_TAXONOMY {
            if let Some((parent, _)) = entry.rsplit_once('.') {
                assert!(DEFAULT_TAXONOMY.contains(&parent), "{entry} lacks {parent}");
            }
        }
    }
}
