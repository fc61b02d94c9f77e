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
    let mut path = vec![root.to_owned()];
    walk_object(schema, call, event, &mut path, object, allowed, out);
}

fn walk_object(
    schema: &FieldSchema,
    call: CallType,
    event: Option<&str>,
    path: &mut Vec<String>,
    object: &mut Map<String, Value>,
    allowed: &dyn Fn(&DataCategory) -> bool,
    out: &mut Minimised,
) {
    object.retain(|key, value| {
        path.push(key.clone());
        let keep = walk_value(schema, call, event, path, value, allowed, out);
        path.pop();
        keep
    });
}

/// Returns whether the value (possibly pruned) stays.
fn walk_value(
    schema: &FieldSchema,
    call: CallType,
    event: Option<&str>,
    path: &mut Vec<String>,
    value: &mut Value,
    allowed: &dyn Fn(&DataCategory) -> bool,
    out: &mut Minimised,
) -> bool {
    if let Some(category) = schema.category(call, event, path) {
        if allowed(category) {
            transform(category, value);
            if !out.kept.contains(category) {
                out.kept.push(category.clone());
            }
            return true;
        }
        out.unused.push(path.join("."));
        return false;
    }
    match value {
        Value::Object(map) => {
            walk_object(schema, call, event, path, map, allowed, out);
            !map.is_empty()
        }
        Value::Array(items) => {
            let last = path.pop().unwrap_or_default();
            path.push(format!("{last}[]"));
            let mut kept = Vec::with_capacity(items.len());
            for mut item in items.drain(..) {
                if walk_value(schema, call, event, path, &mut item, allowed, out) {
                    kept.push(item);
                }
            }
            path.pop();
            path.push(last);
            *items = kept;
            !items.is_empty()
        }
        _ => {
            out.unmapped.push(path.join("."));
            false
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
