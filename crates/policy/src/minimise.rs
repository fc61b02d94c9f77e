//! Minimisation at ingest: keep a field only if some purpose that may use its category has a
//! basis for this customer now, transform what policy says to transform, drop the rest.

use std::net::IpAddr;

use consentric_model::CallType;
use serde_json::{Map, Value};

use crate::schema::FieldSchema;
use crate::taxonomy::DataCategory;

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
/// `allowed` says whether a category may be stored for this customer now.
pub fn minimise(
    schema: &FieldSchema,
    call: CallType,
    event: Option<&str>,
    root: &str,
    object: &mut Map<String, Value>,
    allowed: &dyn Fn(&DataCategory) -> bool,
    out: &mut Minimised,
) {
    let mut path = FieldPath::default();
    path.push(root);
    let mut walk = Walk {
        schema,
        call,
        event,
        allowed,
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
        if let Some(category) = self.schema.category(self.call, self.event, path.as_slice()) {
            if (self.allowed)(category) {
                transform(category, value);
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

/// Policy transformations before storage: an IP address keeps its network only (/24 for IPv4,
/// /48 for IPv6).
fn transform(category: &DataCategory, value: &mut Value) {
    if category.as_str() == "user.device.ip" {
        if let Some(ip) = value.as_str().and_then(truncate_ip) {
            *value = Value::String(ip);
        } else {
            // Not an address: nothing of it is kept.
            *value = Value::Null;
        }
    }
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
        let schema = FieldSchema::new(&[]).expect("schema");
        let Value::Object(mut map) = value else {
            panic!("object")
        };
        let mut out = Minimised::default();
        minimise(
            &schema,
            call,
            Some("Order Completed"),
            root,
            &mut map,
            allowed,
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
