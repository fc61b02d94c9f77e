//! Which data category each field of an event is.
//!
//! A rule matches a call type (or any), an event name (or any) and a path pattern over the
//! event's JSON: segments separated by `.`, array elements written `[]`
//! (`properties.products[].price`), `*` for any one segment and `**` for any rest. The first rule
//! that matches a field decides its category, whole subtree included; a leaf no rule matches
//! is unmapped, and the minimiser does not store it. Configured rules come before the defaults,
//! so a business can refine or override them.

use std::collections::HashMap;

use consentric_model::CallType;
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::taxonomy::{CategorySet, DataCategory};

/// One mapping from fields to a category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// `identify`, `track`, … or absent for any call.
    #[serde(default)]
    pub call: Option<String>,
    /// An exact `track` event name, or absent for any.
    #[serde(default)]
    pub event: Option<String>,
    /// The path pattern.
    pub path: String,
    /// The category of what it matches.
    pub category: String,
    /// What is done to a kept value before storage. Without one, IP addresses are truncated
    /// and precise locations coarsened by their category; anything else is kept as sent.
    #[serde(default)]
    pub transform: Option<Transform>,
}

/// A transformation applied to a kept value before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Store as sent.
    Keep,
    /// An IP address keeps its network (/24 for IPv4, /48 for IPv6).
    TruncateIp,
    /// A coordinate is rounded to one decimal (about 11 km).
    Coarsen,
    /// The value is replaced by the SHA-256 (hex) of its JSON text: equal values stay equal,
    /// the value itself is not stored. A pseudonym, not anonymity: guessable values can be
    /// found by hashing guesses.
    Hash,
}

struct Compiled {
    call: Option<CallType>,
    event: Option<String>,
    pattern: Vec<String>,
    category: DataCategory,
    transform: Transform,
}

/// The compiled rules, configured ones first, indexed by their first two path segments so a
/// look-up scans only the rules that can match (ingest looks up every field of every event).
pub struct FieldSchema {
    rules: Vec<Compiled>,
    /// (first segment, second segment) → rule positions, in order; a `*`/`**` segment is
    /// indexed under "*".
    /// Nested (first → second), so a look-up borrows the path's segments instead of allocating.
    index: HashMap<String, HashMap<String, Vec<usize>>>,
    /// By length: the path prefixes under which some rule names a finer field (not `**`).
    parents: Vec<Vec<Vec<String>>>,
    /// Whether some rule names an event: only then does a field's category depend on it.
    names_events: bool,
    /// Every category some rule maps to: no event keeps any other.
    categories: CategorySet,
    /// Tells this schema's memoised decisions apart from another's (see `minimise`).
    id: u64,
}

impl std::fmt::Debug for FieldSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FieldSchema({} rules)", self.rules.len())
    }
}

fn compile(rule: &FieldRule) -> Result<Compiled, PolicyError> {
    let call = match &rule.call {
        None => None,
        Some(c) => Some(CallType::parse(c).ok_or_else(|| PolicyError::Invalid {
            field: "schema.call".into(),
            message: format!("`{c}` is not a Segment call"),
        })?),
    };
    if rule.path.trim().is_empty() {
        return Err(PolicyError::Invalid {
            field: "schema.path".into(),
            message: "must not be empty".into(),
        });
    }
    Ok(Compiled {
        call,
        event: rule.event.clone(),
        pattern: rule.path.split('.').map(str::to_owned).collect(),
        transform: rule.transform.unwrap_or(match rule.category.as_str() {
            "user.device.ip" => Transform::TruncateIp,
            "user.location.precise" => Transform::Coarsen,
            _ => Transform::Keep,
        }),
        category: DataCategory::parse(&rule.category)?,
    })
}

fn matches<S: AsRef<str>>(pattern: &[String], path: &[S]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(p), _) if p == "**" => true,
        (Some(p), Some(s)) => (p == "*" || p == s.as_ref()) && matches(&pattern[1..], &path[1..]),
        _ => false,
    }
}

impl FieldSchema {
    /// Compiles `configured` rules ahead of the built-in Segment and e-commerce rules.
    ///
    /// # Errors
    /// A rule with an unknown call or category, or an empty path.
    pub fn new(configured: &[FieldRule]) -> Result<Self, PolicyError> {
        let defaults = default_rules();
        let rules: Vec<Compiled> = configured
            .iter()
            .chain(defaults.iter())
            .map(compile)
            .collect::<Result<_, _>>()?;
        let mut index: HashMap<String, HashMap<String, Vec<usize>>> =
            std::collections::HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            let (a, b) = key_of(&r.pattern);
            index.entry(a).or_default().entry(b).or_default().push(i);
        }
        let mut parents: Vec<Vec<Vec<String>>> = Vec::new();
        for r in &rules {
            for n in 1..r.pattern.len() {
                if r.pattern[n] == "**" {
                    break;
                }
                if parents.len() <= n {
                    parents.resize(n + 1, Vec::new());
                }
                let prefix = r.pattern[..n].to_vec();
                if !parents[n].contains(&prefix) {
                    parents[n].push(prefix);
                }
            }
        }
        static SCHEMAS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(FieldSchema {
            names_events: rules.iter().any(|r| r.event.is_some()),
            categories: rules.iter().map(|r| r.category).collect(),
            rules,
            index,
            parents,
            id: SCHEMAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The category of the field at `path` (segments, arrays as `name[]`) of a `call` event
    /// named `event`, or `None` if no rule maps it.
    pub fn category<S: AsRef<str>>(
        &self,
        call: CallType,
        event: Option<&str>,
        path: &[S],
    ) -> Option<&DataCategory> {
        self.rule(call, event, path).map(|(c, _)| c)
    }

    /// Whether some rule names a field strictly below `path` (not through `**`): then an object
    /// at `path` is walked field by field instead of taking one category for its whole subtree,
    /// so `context.location.latitude` (precise) is not swallowed by `context.location.**`.
    pub fn has_rules_below<S: AsRef<str>>(&self, path: &[S]) -> bool {
        self.parents.get(path.len()).is_some_and(|prefixes| {
            prefixes.iter().any(|prefix| {
                prefix
                    .iter()
                    .zip(path)
                    .all(|(p, s)| p == "*" || p == s.as_ref())
            })
        })
    }

    /// Whether some rule names an event (otherwise the event name never changes a category).
    pub(crate) fn names_events(&self) -> bool {
        self.names_events
    }

    /// Every category some rule maps to: minimising with a superset of it drops nothing that
    /// has a category.
    pub fn categories(&self) -> CategorySet {
        self.categories
    }

    /// Unique to this schema in the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// [`FieldSchema::category`] with the transformation a kept value undergoes.
    pub fn rule<S: AsRef<str>>(
        &self,
        call: CallType,
        event: Option<&str>,
        path: &[S],
    ) -> Option<(&DataCategory, Transform)> {
        let first = path.first().map(AsRef::as_ref).unwrap_or_default();
        let second = path.get(1).map(AsRef::as_ref).unwrap_or_default();
        // Candidate buckets: exact first and second segments, or wildcards in either.
        let keys = [(first, second), (first, "*"), ("*", second), ("*", "*")];
        let mut best: Option<usize> = None;
        for (a, b) in keys {
            let Some(list) = self.index.get(a).and_then(|m| m.get(b)) else {
                continue;
            };
            // Rules keep their declared order: the first match overall wins.
            if let Some(&i) = list.iter().find(|&&i| {
                let r = &self.rules[i];
                r.call.is_none_or(|c| c == call)
                    && r.event.as_deref().is_none_or(|e| Some(e) == event)
                    && matches(&r.pattern, path)
            }) {
                best = Some(best.map_or(i, |b| b.min(i)));
            }
        }
        best.map(|i| (&self.rules[i].category, self.rules[i].transform))
    }
}

/// A rule's bucket: its first two segments, with wildcards (and a missing second) as "*".
fn key_of(pattern: &[String]) -> (String, String) {
    let seg = |i: usize| match pattern.get(i).map(String::as_str) {
        None | Some("*") | Some("**") => "*".to_owned(),
        Some(s) => s.to_owned(),
    };
    // `a.**` also matches `a` alone and anything below it: index it under (a, *).
    (
        seg(0),
        if pattern.first().map(String::as_str) == Some("**") {
            "*".into()
        } else {
            seg(1)
        },
    )
}

fn rule(call: Option<&str>, path: &str, category: &str) -> FieldRule {
    FieldRule {
        call: call.map(str::to_owned),
        event: None,
        path: path.to_owned(),
        category: category.to_owned(),
        transform: None,
    }
}

/// The built-in rules: the Segment Spec's reserved traits and context fields, the page and
/// screen properties, and the e-commerce spec's properties.
fn default_rules() -> Vec<FieldRule> {
    let mut rules = Vec::new();
    // Reserved traits (identify), also as context.traits on any call.
    let traits: &[(&str, &str)] = &[
        ("email", "user.contact.email"),
        ("phone", "user.contact.phone"),
        ("address", "user.contact.address"),
        ("name", "user.name"),
        ("firstName", "user.name"),
        ("lastName", "user.name"),
        ("username", "user.name"),
        ("age", "user.demographic.age"),
        ("birthday", "user.demographic.date_of_birth"),
        ("gender", "user.demographic.gender"),
        ("id", "user.unique_id"),
        ("createdAt", "user.account"),
        ("avatar", "user.account"),
        ("description", "user.account"),
        ("website", "user.account"),
        ("plan", "user.account"),
        ("logins", "user.behavior.activity"),
        ("company", "user.organization"),
        ("title", "user.organization"),
    ];
    for (name, category) in traits {
        rules.push(rule(Some("identify"), &format!("traits.{name}"), category));
        rules.push(rule(None, &format!("context.traits.{name}"), category));
    }
    // Group traits describe the organisation.
    rules.push(rule(Some("group"), "traits.**", "user.organization"));
    // Context.
    for (path, category) in [
        ("context.ip", "user.device.ip"),
        ("context.userAgent", "user.device.user_agent"),
        ("context.userAgentData.**", "user.device.user_agent"),
        ("context.locale", "user.preferences.language"),
        ("context.timezone", "user.location.coarse"),
        ("context.location.latitude", "user.location.precise"),
        ("context.location.longitude", "user.location.precise"),
        ("context.location.speed", "user.location.precise"),
        ("context.location.**", "user.location.coarse"),
        ("context.page.**", "user.behavior.browsing"),
        ("context.referrer.**", "user.marketing.campaign"),
        ("context.campaign.**", "user.marketing.campaign"),
        ("context.device.**", "user.device.id"),
        ("context.app.**", "user.device"),
        ("context.os.**", "user.device"),
        ("context.screen.**", "user.device"),
        ("context.network.**", "user.device"),
    ] {
        rules.push(rule(None, path, category));
    }
    // Page and screen properties.
    for call in ["page", "screen"] {
        for p in [
            "name",
            "path",
            "referrer",
            "search",
            "title",
            "url",
            "keywords",
            "category",
            "variation",
        ] {
            rules.push(rule(
                Some(call),
                &format!("properties.{p}"),
                "user.behavior.browsing",
            ));
        }
    }
    // E-commerce spec (v1 and v2): money is financial, the rest is purchase behaviour.
    for p in [
        "revenue", "total", "subtotal", "value", "shipping", "tax", "discount", "price",
    ] {
        rules.push(rule(
            Some("track"),
            &format!("properties.{p}"),
            "user.financial.transaction",
        ));
    }
    for p in [
        "order_id",
        "orderId",
        "checkout_id",
        "cart_id",
        "affiliation",
        "coupon",
        "coupon_id",
        "currency",
        "products",
        "product_id",
        "sku",
        "category",
        "name",
        "brand",
        "variant",
        "quantity",
        "position",
        "url",
        "image_url",
        "list_id",
        "query",
        "step",
        "shipping_method",
        "payment_method",
        "promotion_id",
        "creative",
        "review_id",
        "review_body",
        "rating",
        "wishlist_id",
        "share_via",
        "recipient",
    ] {
        rules.push(rule(
            Some("track"),
            &format!("properties.{p}"),
            "user.behavior.purchase",
        ));
    }
    for p in ["title", "path", "referrer", "search"] {
        rules.push(rule(
            Some("track"),
            &format!("properties.{p}"),
            "user.behavior.browsing",
        ));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(
        schema: &FieldSchema,
        call: CallType,
        event: Option<&str>,
        path: &str,
    ) -> Option<String> {
        let segments: Vec<&str> = path.split('.').collect();
        schema
            .category(call, event, &segments)
            .map(|c| c.to_string())
    }

    #[test]
    fn defaults_cover_the_spec_and_leave_custom_fields_unmapped() {
        let s = FieldSchema::new(&[]).expect("schema");
        assert_eq!(
            cat(&s, CallType::Identify, None, "traits.email").as_deref(),
            Some("user.contact.email")
        );
        assert_eq!(
            cat(&s, CallType::Identify, None, "traits.address").as_deref(),
            Some("user.contact.address")
        );
        assert_eq!(
            cat(&s, CallType::Track, None, "context.ip").as_deref(),
            Some("user.device.ip")
        );
        assert_eq!(
            cat(
                &s,
                CallType::Track,
                Some("Order Completed"),
                "properties.products"
            )
            .as_deref(),
            Some("user.behavior.purchase")
        );
        assert_eq!(
            cat(&s, CallType::Track, None, "properties.revenue").as_deref(),
            Some("user.financial.transaction")
        );
        assert_eq!(
            cat(&s, CallType::Page, None, "context.page.url").as_deref(),
            Some("user.behavior.browsing")
        );
        assert_eq!(
            cat(&s, CallType::Track, None, "context.location.latitude").as_deref(),
            Some("user.location.precise")
        );
        assert_eq!(
            cat(&s, CallType::Track, None, "context.location.city").as_deref(),
            Some("user.location.coarse")
        );
        assert_eq!(
            cat(&s, CallType::Track, None, "properties.favouriteColour"),
            None
        );
        assert_eq!(cat(&s, CallType::Identify, None, "traits.shoeSize"), None);
    }

    #[test]
    fn configured_rules_come_first_and_wildcards_match_segments() {
        let s = FieldSchema::new(&[
            FieldRule {
                call: Some("identify".into()),
                event: None,
                path: "traits.shoeSize".into(),
                category: "user.preferences".into(),
                transform: None,
            },
            FieldRule {
                call: Some("track".into()),
                event: Some("Signed Up".into()),
                path: "properties.*".into(),
                category: "user.account".into(),
                transform: None,
            },
        ])
        .expect("schema");
        assert_eq!(
            cat(&s, CallType::Identify, None, "traits.shoeSize").as_deref(),
            Some("user.preferences")
        );
        assert_eq!(
            cat(&s, CallType::Track, Some("Signed Up"), "properties.plan").as_deref(),
            Some("user.account")
        );
        assert_eq!(
            cat(&s, CallType::Track, Some("Other"), "properties.plan"),
            None
        );
        assert!(FieldSchema::new(&[FieldRule {
            call: Some("purchase".into()),
            event: None,
            path: "x".into(),
            category: "user".into(),
            transform: None,
        }])
        .is_err());
        assert!(FieldSchema::new(&[FieldRule {
            call: None,
            event: None,
            path: "x".into(),
            category: "user.secret".into(),
            transform: None,
        }])
        .is_err());
    }
}
