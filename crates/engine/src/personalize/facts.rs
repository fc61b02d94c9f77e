//! The facts a segment condition reads about one customer, through the grant that opens them:
//! a field whose category the grant does not permit is unknown. Segments, their kept
//! membership and analytics by segment all read them this way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use consentric_model::CallType;
use consentric_personalize::segments::Field;
use consentric_policy::{DataCategory, Grant, PolicySet};
use consentric_store::Store;
use serde_json::{json, Value};

use crate::error::EngineError;
use crate::lifecycle::service::LifecycleScores;
use crate::lifecycle::{Lifecycle, DAY_MS};

/// Most events read per customer to count events in a window.
const MAX_EVENTS: u32 = 10_000;

/// A category by name, if the taxonomy has it.
pub(crate) fn category(name: &str) -> Option<DataCategory> {
    DataCategory::parse(name).ok()
}

/// What reading a customer's facts works on.
pub(crate) struct SegmentFacts<'a> {
    pub(crate) store: &'a Store,
    pub(crate) policy: &'a PolicySet,
    pub(crate) lifecycle: &'a Lifecycle,
    pub(crate) lifecycle_scores: LifecycleScores<'a>,
}

impl SegmentFacts<'_> {
    /// The values of `fields` for the customer `grant` opens; a field whose category the
    /// grant does not permit is unknown.
    pub(crate) fn segment_facts(
        &self,
        grant: &Grant,
        fields: &[&Field],
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<Field, Value>, EngineError> {
        let mut out = BTreeMap::new();
        let permits = |c: &str| category(c).is_some_and(|c| grant.permits(&c));
        let now_ms = now.timestamp_millis();
        let days = |ms: i64| (now_ms - ms) as f64 / DAY_MS as f64;
        let needs = |pred: fn(&Field) -> bool| fields.iter().any(|f| pred(f));
        if needs(|f| {
            matches!(
                f,
                Field::Orders
                    | Field::Revenue
                    | Field::Events
                    | Field::DaysSinceFirstSeen
                    | Field::DaysSinceLastSeen
            )
        }) {
            if let Some(p) = self.store.profile(grant)? {
                let c = p.counters;
                if permits("user.behavior") {
                    out.insert(Field::Events, json!(c.event_count));
                    out.insert(Field::DaysSinceFirstSeen, json!(days(c.first_seen)));
                    out.insert(Field::DaysSinceLastSeen, json!(days(c.last_seen)));
                }
                if permits("user.behavior.purchase") {
                    out.insert(Field::Orders, json!(c.order_count));
                }
                if permits("user.financial.transaction") {
                    out.insert(Field::Revenue, json!(c.revenue));
                }
            }
        }
        if needs(|f| matches!(f, Field::Stage))
            && self.lifecycle.settings.stage_purpose == grant.purpose().as_str()
        {
            if let Some(s) = self.store.stage(grant)? {
                out.insert(Field::Stage, json!(s.stage.as_str()));
            }
        }
        if needs(|f| matches!(f, Field::Clv)) {
            if let Some(clv) = self.lifecycle_scores.clv_of(grant, now)? {
                out.insert(Field::Clv, json!(clv));
            }
        }
        if needs(|f| matches!(f, Field::Trait(_))) {
            for t in self.store.traits(grant)? {
                let cat = self.policy.schema.category(
                    CallType::Identify,
                    None,
                    &["traits", t.name.as_str()],
                );
                if cat.is_some_and(|c| grant.permits(c) && !c.is_sensitive()) {
                    out.insert(Field::Trait(t.name), t.value);
                }
            }
        }
        if needs(|f| matches!(f, Field::EventCount { .. })) && permits("user.behavior") {
            let events = self.store.events(grant, MAX_EVENTS)?;
            for f in fields {
                if let Field::EventCount { name, within_days } = f {
                    let since = within_days.map_or(i64::MIN, |d| now_ms - i64::from(d) * DAY_MS);
                    let n = events
                        .iter()
                        .filter(|e| e.event_name.as_deref() == Some(name.as_str()) && e.ts >= since)
                        .count();
                    out.insert((*f).clone(), json!(n));
                }
            }
        }
        Ok(out)
    }
}
