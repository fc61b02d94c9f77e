//! Minimisation at ingest: keep a field only if some purpose that may use its category has a
//! basis for this customer now, transform what policy says to transform, drop the rest.

use std::net::IpAddr;

use consentric_model::CallType;
use serde_json::{Map, Value};

use crate::schema::{FieldSchema, Transform};
use crate::taxonomy::DataCategory;
use sha2::{Digest, Sha256};

/// The outcome for one event's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minimised {
    /// Paths of fields dropped because no rule maps them.
    pub unmapped: Vec<String>,
    /// Paths of fields dropped because no purpose with a basis may use their category.
    pub unused: Vec<String>,
    /// Categories of the fields kept.
    pub kept: Vec<DataCategory>,
}

/// Minimises `object` (an event's `traits`, `properties` or `context`, found at `root`) in place.
/// `allowed` says whether a category may be stored for this customer now. `transform` applies
/// the schema's transformations to what is kept: once, on data as received — never again on
/// data already transformed (a hash of a hash is another value).
#[allow(clippy::too_many_arguments)] // one flat call, made from two places
pub fn minimise(
    schema: &FieldSchema,
    call: CallType,
    event: Option<&str>,
    root: &str,
    object: &mut Map<String, Value>,
    allowed: &dyn Fn(&DataCategory) -> bool,
    transform: bool,
    out: &mut Minimised,
) {
    let mut path = FieldPath::default();
    path.push(root);
    let mut walk = Walk {
        schema,
        call,
        event,
        allowed,
        transform,
        out,
    };
    walk.object(&mut path, object);
}

/// The path of the field being visited. Segment buffers are reused, so visiting a field
/// allocates nothing once the walk has been as deep before.
#[derive(Default)]
struct FieldPath {
    segments: Vec<String>,
    len: usize,
}

impl FieldPath {
    fn push(&mut self, segment: &str) {
        match self.segments.get_mut(self.len) {
            Some(buf) => {
                buf.clear();
                buf.push_str(segment);
            }
            None => self.segments.push(segment.to_owned()),
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
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
            } else if last.ends_with("[]") {
                last.truncate(last.len() - 2);
            }
        }
    }
}

/// One minimisation pass over an event's object.
struct Walk<'a> {
    schema: &'a FieldSchema,
    call: CallType,
    event: Option<&'a str>,
    allowed: &'a dyn Fn(&DataCategory) -> bool,
    transform: bool,
    out: &'a mut Minimised,
}

impl Walk<'_> {
    fn object(&mut self, path: &mut FieldPath, object: &mut Map<String, Value>) {
        object.retain(|key, value| {
            path.push(key);
            let keep = self.value(path, value);
            path.pop();
            keep
        });
    }

    /// Returns whether the value (possibly pruned) stays.
    fn value(&mut self, path: &mut FieldPath, value: &mut Value) -> bool {
        let finer = value.is_object() && self.schema.has_rules_below(path.as_slice());
        let rule = if finer {
            None
        } else {
            self.schema.rule(self.call, self.event, path.as_slice())
        };
        if let Some((category, how)) = rule {
            if (self.allowed)(category) {
                if self.transform {
                    apply(how, value);
                }
                if !self.out.kept.contains(category) {
                    self.out.kept.push(category.clone());
                }
                return true;
            }
            self.out.unused.push(path.joined());
            return false;
        }
        match value {
            Value::Object(map) => {
                self.object(path, map);
                !map.is_empty()
            }
            Value::Array(items) => {
                path.set_elements(true);
                items.retain_mut(|item| self.value(path, item));
                path.set_elements(false);
                !items.is_empty()
            }
            _ => {
                self.out.unmapped.push(path.joined());
                false
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
        minimise(
            schema,
            call,
            Some("Order Completed"),
            root,
            &mut map,
            allowed,
            transform,
            &mut out,
        );
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
        assert_eq!(out.unused, ["properties.revenue"]);
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
}
