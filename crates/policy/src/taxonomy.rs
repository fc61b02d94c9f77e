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

/// One node of the taxonomy: its position in [`DEFAULT_TAXONOMY`], so that comparing, hashing
/// and copying one costs nothing and a set of them is one machine word ([`CategorySet`]);
/// ingest asks which categories it holds for every field of every event.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataCategory(u8);

impl DataCategory {
    /// Accepts a category of [`DEFAULT_TAXONOMY`].
    ///
    /// # Errors
    /// [`PolicyError::UnknownCategory`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, PolicyError> {
        let raw = raw.trim();
        DEFAULT_TAXONOMY
            .iter()
            .position(|c| *c == raw)
            .and_then(|i| u8::try_from(i).ok())
            .map(DataCategory)
            .ok_or_else(|| PolicyError::UnknownCategory(raw.to_owned()))
    }

    /// The dotted path.
    pub fn as_str(&self) -> &'static str {
        DEFAULT_TAXONOMY[usize::from(self.0)]
    }

    /// Whether this category is `other` or lies beneath it (`user.contact.email` is within
    /// `user.contact`).
    pub fn is_within(&self, other: &DataCategory) -> bool {
        let (this, other) = (self.as_str(), other.as_str());
        this == other
            || (this.len() > other.len()
                && this.starts_with(other)
                && this.as_bytes()[other.len()] == b'.')
    }

    /// Sensitive categories: never inputs to recommendations or actions, and good
    /// candidates for stricter purposes.
    pub fn is_sensitive(&self) -> bool {
        self.as_str() == "user.demographic" || self.as_str().starts_with("user.demographic.")
    }

    /// Every category of the taxonomy, in its order.
    pub fn all() -> impl Iterator<Item = DataCategory> {
        (0..DEFAULT_TAXONOMY.len()).filter_map(|i| u8::try_from(i).ok().map(DataCategory))
    }
}

impl fmt::Debug for DataCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DataCategory").field(&self.as_str()).finish()
    }
}

impl fmt::Display for DataCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Categories order by their dotted paths, as they did when they were strings.
impl Ord for DataCategory {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for DataCategory {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A set of categories as a bit mask: what a purpose may use, what an event carries, what a
/// customer's ledger allows. Deciding whether an event's shape fits a ledger is then a mask
/// test instead of a look-up per category and purpose.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CategorySet(u64);

// Every category has its bit.
const _: () = assert!(DEFAULT_TAXONOMY.len() <= 64);

impl CategorySet {
    /// The empty set.
    pub const EMPTY: CategorySet = CategorySet(0);

    /// Adds `c`.
    pub fn insert(&mut self, c: DataCategory) {
        self.0 |= 1 << c.0;
    }

    /// Whether `c` is in the set.
    pub fn contains(&self, c: &DataCategory) -> bool {
        self.0 & (1 << c.0) != 0
    }

    /// Whether every category of `self` is in `other`.
    pub fn is_subset(&self, other: &CategorySet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The categories in both.
    pub fn intersection(&self, other: &CategorySet) -> CategorySet {
        CategorySet(self.0 & other.0)
    }

    /// The categories in either.
    pub fn union(&self, other: &CategorySet) -> CategorySet {
        CategorySet(self.0 | other.0)
    }

    /// How many categories.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The categories, in taxonomy order.
    pub fn iter(&self) -> impl Iterator<Item = DataCategory> + '_ {
        DataCategory::all().filter(|c| self.contains(c))
    }
}

impl FromIterator<DataCategory> for CategorySet {
    fn from_iter<I: IntoIterator<Item = DataCategory>>(iter: I) -> Self {
        let mut set = CategorySet::EMPTY;
        for c in iter {
            set.insert(c);
        }
        set
    }
}

impl fmt::Debug for CategorySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
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
    fn a_set_holds_what_was_put_in_it() {
        let set: CategorySet = [c("user.contact.email"), c("user.device.ip")]
            .into_iter()
            .collect();
        assert!(set.contains(&c("user.contact.email")) && !set.contains(&c("user.contact")));
        assert_eq!(set.len(), 2);
        let wider: CategorySet = set.iter().chain([c("user.name")]).collect();
        assert!(set.is_subset(&wider) && !wider.is_subset(&set));
        assert_eq!(wider.intersection(&set), set);
        assert_eq!(
            set.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            ["user.contact.email", "user.device.ip"]
        );
        // Categories still order by name.
        assert!(c("user.account") < c("user.behavior"));
        assert!(c("user.demographic.age").is_sensitive() && !c("user.device").is_sensitive());
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
