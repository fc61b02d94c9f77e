//! Minimisation at ingest: keep a field only if some purpose that may use its category has a
//! basis for this customer now, transform what policy says to transform, drop the rest.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;

use consentric_model::CallType;
use serde_json::{Map, Value};

use crate::schema::{FieldSchema, Transform};
use crate::taxonomy::{CategorySet, DataCategory};
use sha2::{Digest, Sha256};

/// The outcome for one event's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minimised {
    /// Paths of fields dropped because no rule maps them.
    pub unmapped: Vec<String>,
    /// How many fields were dropped because no purpose with a basis may use their category.
    pub unused: u64,
    /// Categories of the fields kept.
    pub kept: CategorySet,
}

/// A second, narrower shape made in the same pass as the full one: what the full shape keeps
/// of the categories in `allowed`. Ingest makes the shape that an empty (or a just-signalled)
/// consent ledger calls for this way, instead of copying the full shape and minimising the
/// copy again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Narrower {
    /// The categories this shape may keep (those outside [`Minimiser::allowed`] never
    /// reach it either).
    pub allowed: CategorySet,
    /// Categories of the fields it kept.
    pub kept: CategorySet,
    /// How many fields the full shape keeps and this one does not.
    pub unused: u64,
}

/// What one minimisation pass is told: the schema, the event's call and name, which
/// categories may be stored for this customer now (`allowed`), and whether the schema's
/// transformations run on what is kept (`transform`) — once, on data as received, never again
/// on data already transformed (a hash of a hash is another value).
#[derive(Clone, Copy)]
pub struct Minimiser<'a> {
    /// Field → category rules.
    pub schema: &'a FieldSchema,
    /// The event's call.
    pub call: CallType,
    /// A `track` event's name.
    pub event: Option<&'a str>,
    /// Whether a category may be stored.
    pub allowed: &'a dyn Fn(&DataCategory) -> bool,
    /// Whether transformations run.
    pub transform: bool,
}

impl Minimiser<'_> {
    /// Minimises `object` (an event's `traits`, `properties` or `context`, found at `root`)
    /// in place.
    pub fn minimise(&self, root: &str, object: &mut Map<String, Value>, out: &mut Minimised) {
        self.run(root, object, out, None);
    }

    /// [`Minimiser::minimise`], which also returns the object of the `narrower` shape: the
    /// same as minimising the result again with `narrower.allowed`, without a copy of the
    /// whole object or a second look-up of every field.
    pub fn minimise_narrowing(
        &self,
        root: &str,
        object: &mut Map<String, Value>,
        out: &mut Minimised,
        narrower: &mut Narrower,
    ) -> Map<String, Value> {
        self.run(root, object, out, Some(narrower))
    }

    /// One walk of `object`; with a `narrower` shape, returns its object (else an empty one).
    fn run(
        &self,
        root: &str,
        object: &mut Map<String, Value>,
        out: &mut Minimised,
        narrower: Option<&mut Narrower>,
    ) -> Map<String, Value> {
        let mut path = FieldPath::start(self.schema, self.call, self.event, root);
        let mut narrow = narrower.is_some().then(Map::new);
        let mut walk = Walk {
            m: *self,
            out,
            narrower,
        };
        walk.object(&mut path, object, narrow.as_mut());
        path.finish();
        narrow.unwrap_or_default()
    }
}

/// The path of the field being visited, as segments (for the schema) and as one byte string,
/// the key of the memo: the call, the event name where rules name events, then each segment
/// as a tag, its length and its bytes, so that no two paths share a key whatever their keys
/// contain (a field named `a.b` is not the field `b` inside `a`). Its buffers are kept per
/// thread between walks, so a walk allocates nothing once one has been as deep before.
#[derive(Default)]
struct FieldPath {
    segments: Vec<String>,
    len: usize,
    key: Vec<u8>,
    /// `key`'s length before each segment was pushed.
    marks: Vec<usize>,
}

/// Tags in the memo key.
const SEGMENT: u8 = 0;
const ELEMENTS: u8 = 1;

thread_local! {
    static SPARE_PATH: Cell<Option<FieldPath>> = const { Cell::new(None) };
}

impl FieldPath {
    /// The path of `root`, in this thread's buffers.
    fn start(schema: &FieldSchema, call: CallType, event: Option<&str>, root: &str) -> Self {
        let mut path = SPARE_PATH.with(Cell::take).unwrap_or_default();
        path.len = 0;
        path.key.clear();
        path.marks.clear();
        path.key.extend_from_slice(call.as_str().as_bytes());
        let event = if schema.names_events() {
            event.unwrap_or_default()
        } else {
            ""
        };
        path.push_key(event);
        path.push(root);
        path
    }

    /// Gives the buffers back to the thread.
    fn finish(self) {
        SPARE_PATH.with(|spare| spare.set(Some(self)));
    }

    /// Appends `text` to the key as a segment.
    fn push_key(&mut self, text: &str) {
        self.key.push(SEGMENT);
        self.key.extend_from_slice(&text.len().to_le_bytes());
        self.key.extend_from_slice(text.as_bytes());
    }

    fn push(&mut self, segment: &str) {
        match self.segments.get_mut(self.len) {
            Some(buf) => {
                buf.clear();
                buf.push_str(segment);
            }
            None => self.segments.push(segment.to_owned()),
        }
        self.len += 1;
        self.marks.push(self.key.len());
        self.push_key(segment);
    }

    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
        if let Some(mark) = self.marks.pop() {
            self.key.truncate(mark);
        }
    }

    fn as_slice(&self) -> &[String] {
        &self.segments[..self.len]
    }

    fn joined(&self) -> String {
        self.as_slice().join(".")
    }

    /// Marks the last segment as an array's elements (`products` → `products[]`) and back.
    fn set_elements(&mut self, on: bool) {
        if let Some(last) = self
            .len
            .checked_sub(1)
            .and_then(|i| self.segments.get_mut(i))
        {
            if on {
                last.push_str("[]");
                self.key.push(ELEMENTS);
            } else if last.ends_with("[]") {
                last.truncate(last.len() - 2);
                self.key.pop();
            }
        }
    }
}

/// What the schema says about one path: whether an object there is walked field by field, and
/// the rule that maps it otherwise. (Not a consent `Decision`.)
#[derive(Clone, Copy)]
struct Ruling {
    finer: bool,
    rule: Option<(DataCategory, Transform)>,
}

/// Most rulings a thread remembers; past it the memo starts again, so fields named by
/// senders (random keys included) cannot make it grow without bound.
const MEMO_LIMIT: usize = 4096;

/// Longest key remembered (bytes). Keys are paths senders choose: without this, one event
/// nesting long keys deep would store every prefix of its path. With it, a thread's memo
/// holds at most `MEMO_LIMIT` × 256 bytes of keys; longer paths, rare in real traffic, are
/// looked up every time.
const MEMO_KEY_LIMIT: usize = 256;

/// The schema's rulings by path, per thread: events of one kind repeat the same paths, and
/// one hash of the path costs less than finding the rules that match it. Per thread, so that
/// producers never wait on each other; tied to one schema by its id.
#[derive(Default)]
struct Memo {
    schema: Option<u64>,
    rulings: HashMap<Vec<u8>, Ruling>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// The schema's ruling on the field at `path`, from this thread's memo when it has it.
fn ruling(m: &Minimiser<'_>, path: &FieldPath) -> Ruling {
    let schema = m.schema;
    let compute = || Ruling {
        finer: schema.has_rules_below(path.as_slice()),
        rule: schema
            .rule(m.call, m.event, path.as_slice())
            .map(|(c, t)| (*c, t)),
    };
    MEMO.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return compute();
        };
        if path.key.len() > MEMO_KEY_LIMIT {
            return compute();
        }
        if memo.schema != Some(schema.id()) {
            memo.schema = Some(schema.id());
            memo.rulings.clear();
        }
        if let Some(d) = memo.rulings.get(&path.key) {
            return *d;
        }
        let d = compute();
        if memo.rulings.len() >= MEMO_LIMIT {
            memo.rulings.clear();
        }
        memo.rulings.insert(path.key.clone(), d);
        d
    })
}

/// How many rulings this thread remembers.
#[cfg(test)]
fn memo_len() -> usize {
    MEMO.with(|memo| memo.borrow().rulings.len())
}

/// One minimisation pass over an event's object.
struct Walk<'a> {
    m: Minimiser<'a>,
    out: &'a mut Minimised,
    narrower: Option<&'a mut Narrower>,
}

impl Walk<'_> {
    /// Prunes `object`; with `narrow`, fills it with the narrower shape of what stays.
    fn object(
        &mut self,
        path: &mut FieldPath,
        object: &mut Map<String, Value>,
        mut narrow: Option<&mut Map<String, Value>>,
    ) {
        object.retain(|key, value| {
            path.push(key);
            let (keep, narrowed) = self.value(path, value, narrow.is_some());
            path.pop();
            if let (Some(narrow), Some(v)) = (narrow.as_deref_mut(), narrowed) {
                narrow.insert(key.clone(), v);
            }
            keep
        });
    }

    /// Returns whether the value (possibly pruned) stays, and with `narrowing`, the narrower
    /// shape's copy of it if that shape keeps any of it.
    fn value(
        &mut self,
        path: &mut FieldPath,
        value: &mut Value,
        narrowing: bool,
    ) -> (bool, Option<Value>) {
        let ruling = ruling(&self.m, path);
        let rule = if value.is_object() && ruling.finer {
            None
        } else {
            ruling.rule
        };
        if let Some((category, how)) = rule {
            let category = &category;
            if !(self.m.allowed)(category) {
                self.out.unused += 1;
                return (false, None);
            }
            if self.m.transform {
                apply(how, value);
            }
            self.out.kept.insert(*category);
            let narrowed = match self.narrower.as_deref_mut() {
                Some(n) if narrowing && n.allowed.contains(category) => {
                    n.kept.insert(*category);
                    Some(value.clone())
                }
                Some(n) if narrowing => {
                    n.unused += 1;
                    None
                }
                _ => None,
            };
            return (true, narrowed);
        }
        match value {
            Value::Object(map) => {
                let mut narrow = narrowing.then(Map::new);
                self.object(path, map, narrow.as_mut());
                let narrowed = narrow.filter(|n| !n.is_empty()).map(Value::Object);
                (!map.is_empty(), narrowed)
            }
            Value::Array(items) => {
                path.set_elements(true);
                let mut narrow = Vec::new();
                items.retain_mut(|item| {
                    let (keep, narrowed) = self.value(path, item, narrowing);
                    narrow.extend(narrowed);
                    keep
                });
                path.set_elements(false);
                let narrowed = (!narrow.is_empty()).then_some(Value::Array(narrow));
                (!items.is_empty(), narrowed)
            }
            _ => {
                self.out.unmapped.push(path.joined());
                (false, None)
            }
        }
    }
}

/// Applies a transformation to a kept value. A value the transformation cannot read (an IP
/// field that is not an address, a coordinate that is not a number) is not kept at all.
fn apply(how: Transform, value: &mut Value) {
    match how {
        Transform::Keep => {}
        Transform::TruncateIp => {
            *value = match value.as_str().and_then(truncate_ip) {
                Some(ip) => Value::String(ip),
                None => Value::Null,
            }
        }
        Transform::Coarsen => {
            *value = match value.as_f64() {
                Some(x) => serde_json::Number::from_f64((x * 10.0).round() / 10.0)
                    .map_or(Value::Null, Value::Number),
                None => Value::Null,
            }
        }
        Transform::Hash => {
            let digest = Sha256::digest(value.to_string().as_bytes());
            *value = Value::String(format!("sha256:{}", hex_string(&digest)));
        }
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `203.0.113.77` → `203.0.113.0`; `2001:db8:1:2::7` → `2001:db8:1::`. `None` if not an IP.
pub fn truncate_ip(raw: &str) -> Option<String> {
    match raw.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(std::net::Ipv4Addr::new(o[0], o[1], o[2], 0).to_string())
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::CategorySet;
    use proptest::prelude::*;
    use serde_json::json;

    fn run(
        call: CallType,
        root: &str,
        value: Value,
        allowed: &dyn Fn(&DataCategory) -> bool,
    ) -> (Value, Minimised) {
        run_with(
            &FieldSchema::new(&[]).expect("schema"),
            call,
            root,
            value,
            allowed,
            true,
        )
    }

    fn run_with(
        schema: &FieldSchema,
        call: CallType,
        root: &str,
        value: Value,
        allowed: &dyn Fn(&DataCategory) -> bool,
        transform: bool,
    ) -> (Value, Minimised) {
        let Value::Object(mut map) = value else {
            panic!("object")
        };
        let mut out = Minimised::default();
        let m = Minimiser {
            schema,
            call,
            event: Some("Order Completed"),
            allowed,
            transform,
        };
        m.minimise(root, &mut map, &mut out);
        (Value::Object(map), out)
    }

    #[test]
    fn unmapped_fields_are_dropped_and_named() {
        let (kept, out) = run(
            CallType::Identify,
            "traits",
            json!({"email": "a@example.com", "shoeSize": 42, "address": {"city": "Lyon"}}),
            &|_| true,
        );
        assert_eq!(
            kept,
            json!({"email": "a@example.com", "address": {"city": "Lyon"}})
        );
        assert_eq!(out.unmapped, ["traits.shoeSize"]);
    }

    #[test]
    fn categories_without_a_purpose_are_dropped() {
        let only_purchase = |c: &DataCategory| c.as_str() == "user.behavior.purchase";
        let (kept, out) = run(
            CallType::Track,
            "properties",
            json!({"order_id": "o1", "revenue": 25, "products": [{"sku": "x"}]}),
            &only_purchase,
        );
        assert_eq!(kept, json!({"order_id": "o1", "products": [{"sku": "x"}]}));
        assert_eq!(out.unused, 1);
    }

    #[test]
    fn precise_locations_are_coarsened_and_configured_fields_hashed_once() {
        let hashed = crate::schema::FieldRule {
            call: None,
            event: None,
            path: "traits.loyalty_id".into(),
            category: "user.unique_id".into(),
            transform: Some(Transform::Hash),
        };
        let schema = FieldSchema::new(&[hashed]).expect("schema");
        let (kept, _) = run_with(
            &schema,
            CallType::Track,
            "context",
            json!({"location": {"latitude": 48.85837, "longitude": 2.294481, "city": "Paris"}}),
            &|_| true,
            true,
        );
        assert_eq!(
            kept["location"],
            json!({"latitude": 48.9, "longitude": 2.3, "city": "Paris"})
        );
        let (once, _) = run_with(
            &schema,
            CallType::Identify,
            "traits",
            json!({"loyalty_id": "LX-99812"}),
            &|_| true,
            true,
        );
        let digest = once["loyalty_id"].as_str().expect("hash").to_owned();
        assert!(digest.starts_with("sha256:") && !digest.contains("LX-99812"));
        // Minimising what was already transformed leaves it as it is.
        let (again, _) = run_with(
            &schema,
            CallType::Identify,
            "traits",
            once,
            &|_| true,
            false,
        );
        assert_eq!(again["loyalty_id"], json!(digest));
    }

    /// The memo of decisions by path tells a key holding a dot from nesting, and one
    /// schema's decisions from another's.
    #[test]
    fn remembered_decisions_belong_to_their_path_and_schema() {
        let nested = json!({"location": {"latitude": 48.85837}});
        let dotted = json!({"location.latitude": 48.85837});
        let schema = FieldSchema::new(&[]).expect("schema");
        let run = |value: &Value| {
            run_with(
                &schema,
                CallType::Track,
                "context",
                value.clone(),
                &|_| true,
                true,
            )
        };
        for _ in 0..2 {
            let (kept, _) = run(&nested);
            assert_eq!(kept, json!({"location": {"latitude": 48.9}}));
            let (kept, out) = run(&dotted);
            assert_eq!(kept, json!({}));
            assert_eq!(out.unmapped, ["context.location.latitude"]);
        }
        let shoe = |category: &str| {
            FieldSchema::new(&[crate::schema::FieldRule {
                call: None,
                event: None,
                path: "traits.shoeSize".into(),
                category: category.into(),
                transform: None,
            }])
            .expect("schema")
        };
        let (behaviour, demographic) = (shoe("user.behavior"), shoe("user.demographic"));
        let only_behaviour = |c: &DataCategory| c.as_str() == "user.behavior";
        for _ in 0..2 {
            for (schema, kept) in [
                (&behaviour, json!({"shoeSize": 42})),
                (&demographic, json!({})),
            ] {
                let (got, _) = run_with(
                    schema,
                    CallType::Identify,
                    "traits",
                    json!({"shoeSize": 42}),
                    &only_behaviour,
                    true,
                );
                assert_eq!(got, kept);
            }
        }
    }

    /// A path longer than the memo keeps is decided every time and not remembered, so a
    /// sender's deep or long keys cannot fill a thread's memory.
    #[test]
    fn long_paths_are_decided_without_being_remembered() {
        let schema = FieldSchema::new(&[]).expect("schema");
        let walk = |value: Value| {
            run_with(
                &schema,
                CallType::Identify,
                "traits",
                value,
                &|_| true,
                true,
            )
        };
        let (kept, _) = walk(json!({"email": "a@example.com"}));
        assert_eq!(kept, json!({"email": "a@example.com"}));
        assert_eq!(memo_len(), 1);
        let long = "k".repeat(300);
        let (kept, out) = walk(json!({ long.clone(): 1, "email": "b@example.com" }));
        assert_eq!(kept, json!({"email": "b@example.com"}));
        assert_eq!(out.unmapped, [format!("traits.{long}")]);
        assert_eq!(memo_len(), 1);
    }

    #[test]
    fn ips_are_truncated_before_storage() {
        let (kept, _) = run(
            CallType::Track,
            "context",
            json!({"ip": "203.0.113.77", "library": {"name": "x"}}),
            &|_| true,
        );
        assert_eq!(kept["ip"], "203.0.113.0");
        assert_eq!(
            truncate_ip("2001:db8:1:2:3:4:5:6").as_deref(),
            Some("2001:db8:1::")
        );
        assert_eq!(truncate_ip("not an ip"), None);
    }

    /// Keys the default schema maps at several depths (and some it does not), for objects
    /// nested as events nest them.
    const KEYS: &[&str] = &[
        "email",
        "address",
        "city",
        "ip",
        "userAgent",
        "location",
        "latitude",
        "plan",
        "products",
        "product_id",
        "price",
        "revenue",
        "page",
        "path",
        "library",
        "shoeSize",
    ];

    fn tree() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(json!("203.0.113.77")),
            Just(json!(48.85837)),
            Just(json!("x")),
            Just(Value::Null),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(
                    |fields| Value::Object(
                        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                    )
                ),
            ]
        })
    }

    proptest::proptest! {
        /// The narrower shape made in the same pass is what minimising the full shape again
        /// keeps, with the same counts; and the full shape is what `minimise` alone makes.
        #[test]
        fn narrowing_in_one_pass_equals_minimising_twice(
            call in prop::sample::select(vec![CallType::Identify, CallType::Track, CallType::Page]),
            root in prop::sample::select(vec!["traits", "properties", "context"]),
            fields in prop::collection::vec((prop::sample::select(KEYS), tree()), 0..6),
            allowed_mask in any::<u64>(),
            narrower_mask in any::<u64>(),
        ) {
            let schema = FieldSchema::new(&[]).expect("schema");
            let set = |mask: u64| -> CategorySet {
                DataCategory::all().enumerate().filter(|(i, _)| mask >> i & 1 == 1).map(|(_, c)| c).collect()
            };
            let (allowed_set, narrower_set) = (set(allowed_mask), set(narrower_mask));
            let allowed = |c: &DataCategory| allowed_set.contains(c);
            let object: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();

            let mut once = object.clone();
            let mut out = Minimised::default();
            let mut narrower = Narrower { allowed: narrower_set, ..Narrower::default() };
            let m = Minimiser { schema: &schema, call, event: None, allowed: &allowed, transform: true };
            let narrow = m.minimise_narrowing(root, &mut once, &mut out, &mut narrower);

            let mut full = object;
            let mut out_full = Minimised::default();
            m.minimise(root, &mut full, &mut out_full);
            let mut again = full.clone();
            let mut out_again = Minimised::default();
            let again_allowed = |c: &DataCategory| narrower_set.contains(c);
            let m = Minimiser { allowed: &again_allowed, transform: false, ..m };
            m.minimise(root, &mut again, &mut out_again);

            proptest::prop_assert_eq!(&once, &full);
            proptest::prop_assert_eq!(&out, &out_full);
            proptest::prop_assert_eq!(&narrow, &again);
            proptest::prop_assert_eq!(narrower.kept, out_again.kept);
            proptest::prop_assert_eq!(narrower.unused, out_again.unused);
            proptest::prop_assert!(out_again.unmapped.is_empty());
        }
    }
}
