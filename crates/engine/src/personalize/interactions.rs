//! Which items an event is an interaction with: the e-commerce Spec's product ids.

use std::collections::BTreeMap;

use consentric_model::{Call, Event};
use serde_json::Value;

/// Longest item id kept; longer ones are not product ids.
const MAX_ITEM_ID: usize = 200;

/// What ingest needs to derive interactions: the purpose they serve and each event's weight.
#[derive(Debug, Clone)]
pub(crate) struct InteractionRules {
    /// Interactions are kept only for customers with a basis for this purpose, and go when
    /// it does.
    pub purpose: String,
    /// Strength per event name.
    pub weights: BTreeMap<String, f64>,
}

impl InteractionRules {
    /// The items `event` (as stored, after minimisation) interacted with, and the strength of
    /// each; nothing when its name carries no weight or minimisation dropped the products.
    pub(crate) fn of(&self, event: &Event) -> Option<(f64, Vec<String>)> {
        let weight = *self.weights.get(event.event_name()?)?;
        let Call::Track { properties, .. } = event.call() else {
            return None;
        };
        let mut items: Vec<String> = Vec::new();
        let mut add = |v: &serde_json::Map<String, Value>| {
            let id = v.get("product_id").or_else(|| v.get("sku"));
            let id = match id {
                Some(Value::String(s)) => s.trim().to_owned(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return,
            };
            if !id.is_empty() && id.len() <= MAX_ITEM_ID && !items.contains(&id) {
                items.push(id);
            }
        };
        add(properties);
        if let Some(products) = properties.get("products").and_then(Value::as_array) {
            products
                .iter()
                .filter_map(Value::as_object)
                .for_each(&mut add);
        }
        (!items.is_empty()).then_some((weight, items))
    }
}
