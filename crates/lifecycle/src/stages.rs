//! The stage engine: ordered rules over a customer's facts; the first rule that holds places
//! the customer. Rules come from `[[lifecycle.rules]]` in `consentric.toml`, or the retail
//! defaults below. A rule's conditions all have to hold; a stage reached in several ways takes
//! several rules.

use std::collections::BTreeMap;

use consentric_model::Stage;
use serde::{Deserialize, Serialize};

use crate::error::LifecycleError;

/// Milliseconds in a day.
const DAY_MS: f64 = 86_400_000.0;

/// What the stage rules may look at for one customer, as of `now`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    /// The moment the stage is decided for (ms since the epoch).
    pub now: i64,
    /// First event (ms).
    pub first_seen: i64,
    /// Latest event (ms).
    pub last_seen: i64,
    /// Orders placed.
    pub orders: u64,
    /// Revenue from those orders.
    pub revenue: f64,
    /// First order (ms), if any.
    pub first_order: Option<i64>,
    /// Latest order (ms), if any.
    pub last_order: Option<i64>,
    /// Counts of the events the rules name (`Product Reviewed`, `Referral Sent`, …).
    pub events: BTreeMap<String, u64>,
    /// Probability the customer is still active, when a purchase model is fitted.
    pub p_alive: Option<f64>,
    /// Customer lifetime value, when the models are fitted.
    pub clv: Option<f64>,
    /// The stage the customer is in now and since when (ms).
    pub current: Option<(Stage, i64)>,
}

impl Facts {
    fn days_since(&self, t: i64) -> f64 {
        (self.now - t) as f64 / DAY_MS
    }
}

/// One rule: a stage and the conditions under which a customer is in it. Absent conditions
/// hold; a condition on a fact the customer lacks (no order yet, no fitted model) does not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRule {
    /// Name stored with each transition the rule causes.
    pub name: String,
    /// The stage it places a customer in.
    pub stage: Stage,
    /// Only from one of these current stages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<Stage>,
    /// At most this many days in the current stage.
    pub max_days_in_stage: Option<f64>,
    /// At least this many orders.
    pub min_orders: Option<u64>,
    /// At most this many orders.
    pub max_orders: Option<u64>,
    /// At least this much revenue.
    pub min_revenue: Option<f64>,
    /// At least this many days since the first event.
    pub min_days_since_first_seen: Option<f64>,
    /// At most this many days since the first event.
    pub max_days_since_first_seen: Option<f64>,
    /// At least this many days since the latest event.
    pub min_days_since_last_seen: Option<f64>,
    /// At most this many days since the latest event.
    pub max_days_since_last_seen: Option<f64>,
    /// At least this many days since the latest order.
    pub min_days_since_last_order: Option<f64>,
    /// At most this many days since the latest order.
    pub max_days_since_last_order: Option<f64>,
    /// At most this many days since the first order.
    pub max_days_since_first_order: Option<f64>,
    /// P(alive) at least this.
    pub min_p_alive: Option<f64>,
    /// P(alive) at most this.
    pub max_p_alive: Option<f64>,
    /// CLV at least this.
    pub min_clv: Option<f64>,
    /// At least this many of each named event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, u64>,
}

fn at_least(v: Option<f64>, min: Option<f64>) -> bool {
    match (min, v) {
        (None, _) => true,
        (Some(m), Some(v)) => v >= m,
        (Some(_), None) => false,
    }
}

fn at_most(v: Option<f64>, max: Option<f64>) -> bool {
    match (max, v) {
        (None, _) => true,
        (Some(m), Some(v)) => v <= m,
        (Some(_), None) => false,
    }
}

impl StageRule {
    /// Whether every condition holds for `f`.
    pub fn holds(&self, f: &Facts) -> bool {
        let current = f.current.map(|(s, _)| s);
        if !self.previous.is_empty() && !current.is_some_and(|c| self.previous.contains(&c)) {
            return false;
        }
        let in_stage = f.current.map(|(_, since)| f.days_since(since));
        let orders = Some(f.orders as f64);
        let first_seen = Some(f.days_since(f.first_seen));
        let last_seen = Some(f.days_since(f.last_seen));
        let last_order = f.last_order.map(|t| f.days_since(t));
        let first_order = f.first_order.map(|t| f.days_since(t));
        at_most(in_stage, self.max_days_in_stage)
            && at_least(orders, self.min_orders.map(|v| v as f64))
            && at_most(orders, self.max_orders.map(|v| v as f64))
            && at_least(Some(f.revenue), self.min_revenue)
            && at_least(first_seen, self.min_days_since_first_seen)
            && at_most(first_seen, self.max_days_since_first_seen)
            && at_least(last_seen, self.min_days_since_last_seen)
            && at_most(last_seen, self.max_days_since_last_seen)
            && at_least(last_order, self.min_days_since_last_order)
            && at_most(last_order, self.max_days_since_last_order)
            && at_most(first_order, self.max_days_since_first_order)
            && at_least(f.p_alive, self.min_p_alive)
            && at_most(f.p_alive, self.max_p_alive)
            && at_least(f.clv, self.min_clv)
            && self
                .events
                .iter()
                .all(|(name, min)| f.events.get(name).copied().unwrap_or(0) >= *min)
    }
}

/// Name of the implicit last rule: nothing else held, so the customer is known but has not
/// bought (acquisition).
pub const FALLBACK_RULE: &str = "known";

/// An ordered, checked set of rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageRules {
    rules: Vec<StageRule>,
}

/// Where the rules place a customer, and which rule did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The stage.
    pub stage: Stage,
    /// The rule's name.
    pub rule: String,
}

impl StageRules {
    /// Checks rules: names present and unique, bounds that can hold.
    ///
    /// # Errors
    /// The first rule that is wrong, and why.
    pub fn new(rules: Vec<StageRule>) -> Result<StageRules, LifecycleError> {
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            let bad = |message: &str| LifecycleError::Rule {
                rule: r.name.clone(),
                message: message.to_string(),
            };
            if r.name.trim().is_empty() {
                return Err(bad("a rule needs a name"));
            }
            if !seen.insert(r.name.as_str()) || r.name == FALLBACK_RULE {
                return Err(bad("names must be unique (and \"known\" is reserved)"));
            }
            let pairs = [
                (
                    r.min_orders.map(|v| v as f64),
                    r.max_orders.map(|v| v as f64),
                ),
                (r.min_days_since_first_seen, r.max_days_since_first_seen),
                (r.min_days_since_last_seen, r.max_days_since_last_seen),
                (r.min_days_since_last_order, r.max_days_since_last_order),
                (r.min_p_alive, r.max_p_alive),
            ];
            if pairs
                .iter()
                .any(|(lo, hi)| matches!((lo, hi), (Some(l), Some(h)) if l > h))
            {
                return Err(bad("a minimum is above its maximum"));
            }
            if [r.min_p_alive, r.max_p_alive]
                .iter()
                .flatten()
                .any(|p| !(0.0..=1.0).contains(p))
            {
                return Err(bad("P(alive) bounds must lie in [0, 1]"));
            }
        }
        Ok(StageRules { rules })
    }

    /// The retail defaults.
    pub fn retail() -> StageRules {
        StageRules {
            rules: default_rules(),
        }
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[StageRule] {
        &self.rules
    }

    /// Event names the rules count: only these need counting on ingest.
    pub fn counted_events(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .flat_map(|r| r.events.keys().map(String::as_str))
    }

    /// Whether any rule looks at when orders were placed, so purchase days must be read.
    pub fn uses_order_days(&self) -> bool {
        self.rules.iter().any(|r| {
            r.min_days_since_last_order.is_some()
                || r.max_days_since_last_order.is_some()
                || r.max_days_since_first_order.is_some()
        })
    }

    /// Whether any rule looks at CLV.
    pub fn needs_clv(&self) -> bool {
        self.rules.iter().any(|r| r.min_clv.is_some())
    }

    /// Whether any rule looks at P(alive) or CLV, so scoring is worth its cost.
    pub fn needs_scores(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.min_p_alive.is_some() || r.max_p_alive.is_some() || r.min_clv.is_some())
    }

    /// Where the first rule that holds places the customer.
    pub fn place(&self, f: &Facts) -> Placement {
        self.rules
            .iter()
            .find(|r| r.holds(f))
            .map(|r| Placement {
                stage: r.stage,
                rule: r.name.clone(),
            })
            .unwrap_or(Placement {
                stage: Stage::Acquisition,
                rule: FALLBACK_RULE.into(),
            })
    }
}

fn rule(name: &str, stage: Stage) -> StageRule {
    StageRule {
        name: name.into(),
        stage,
        ..StageRule::default()
    }
}

/// Retail defaults, tried in this order.
fn default_rules() -> Vec<StageRule> {
    vec![
        StageRule {
            previous: vec![Stage::Churned],
            max_days_since_last_seen: Some(30.0),
            ..rule("came-back", Stage::Reactivated)
        },
        StageRule {
            previous: vec![Stage::Reactivated],
            max_days_in_stage: Some(90.0),
            max_days_since_last_seen: Some(90.0),
            ..rule("settling-back", Stage::Reactivated)
        },
        StageRule {
            min_days_since_last_seen: Some(365.0),
            ..rule("lapsed", Stage::Churned)
        },
        StageRule {
            min_orders: Some(2),
            max_p_alive: Some(0.1),
            ..rule("faded", Stage::Churned)
        },
        StageRule {
            min_orders: Some(2),
            events: BTreeMap::from([("Product Reviewed".to_string(), 1)]),
            ..rule("reviewer", Stage::Advocacy)
        },
        StageRule {
            events: BTreeMap::from([("Referral Sent".to_string(), 1)]),
            ..rule("referrer", Stage::Advocacy)
        },
        StageRule {
            min_orders: Some(2),
            max_p_alive: Some(0.5),
            ..rule("slipping", Stage::Retention)
        },
        StageRule {
            min_orders: Some(1),
            min_days_since_last_seen: Some(120.0),
            ..rule("quiet", Stage::Retention)
        },
        StageRule {
            min_orders: Some(3),
            min_revenue: Some(150.0),
            ..rule("high-value", Stage::Expansion)
        },
        StageRule {
            min_orders: Some(2),
            ..rule("repeat-buyer", Stage::Engagement)
        },
        StageRule {
            min_orders: Some(1),
            ..rule("first-purchase", Stage::Onboarding)
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * 86_400_000;

    fn days_ago(d: f64) -> i64 {
        NOW - (d * DAY_MS) as i64
    }

    /// A customer first seen a year ago and last seen `last_seen` days ago.
    fn facts(orders: u64, revenue: f64, last_seen: f64) -> Facts {
        Facts {
            now: NOW,
            first_seen: days_ago(400.0),
            last_seen: days_ago(last_seen),
            orders,
            revenue,
            first_order: (orders > 0).then(|| days_ago(390.0)),
            last_order: (orders > 0).then(|| days_ago(last_seen)),
            ..Facts::default()
        }
    }

    #[test]
    fn every_default_transition() {
        let rules = StageRules::retail();
        let reviewed = BTreeMap::from([("Product Reviewed".to_string(), 2)]);
        let referred = BTreeMap::from([("Referral Sent".to_string(), 1)]);
        // (case, facts, expected stage, expected rule)
        let cases: Vec<(&str, Facts, Stage, &str)> = vec![
            ("no order", facts(0, 0.0, 3.0), Stage::Acquisition, "known"),
            (
                "first order",
                facts(1, 20.0, 3.0),
                Stage::Onboarding,
                "first-purchase",
            ),
            (
                "second order",
                facts(2, 40.0, 3.0),
                Stage::Engagement,
                "repeat-buyer",
            ),
            (
                "valuable",
                facts(3, 200.0, 3.0),
                Stage::Expansion,
                "high-value",
            ),
            (
                "frequent, cheap",
                facts(5, 60.0, 3.0),
                Stage::Engagement,
                "repeat-buyer",
            ),
            (
                "gone quiet",
                facts(1, 20.0, 200.0),
                Stage::Retention,
                "quiet",
            ),
            (
                "slipping by model",
                Facts {
                    p_alive: Some(0.3),
                    ..facts(4, 90.0, 10.0)
                },
                Stage::Retention,
                "slipping",
            ),
            (
                "faded by model",
                Facts {
                    p_alive: Some(0.05),
                    ..facts(4, 90.0, 10.0)
                },
                Stage::Churned,
                "faded",
            ),
            ("lapsed", facts(6, 900.0, 400.0), Stage::Churned, "lapsed"),
            (
                "reviewer",
                Facts {
                    events: reviewed.clone(),
                    ..facts(3, 300.0, 3.0)
                },
                Stage::Advocacy,
                "reviewer",
            ),
            (
                "review without repeat order",
                Facts {
                    events: reviewed,
                    ..facts(1, 30.0, 3.0)
                },
                Stage::Onboarding,
                "first-purchase",
            ),
            (
                "referrer",
                Facts {
                    events: referred,
                    ..facts(0, 0.0, 3.0)
                },
                Stage::Advocacy,
                "referrer",
            ),
            (
                "back from churn",
                Facts {
                    current: Some((Stage::Churned, days_ago(60.0))),
                    ..facts(7, 300.0, 1.0)
                },
                Stage::Reactivated,
                "came-back",
            ),
            (
                "still settling back",
                Facts {
                    current: Some((Stage::Reactivated, days_ago(40.0))),
                    ..facts(8, 320.0, 5.0)
                },
                Stage::Reactivated,
                "settling-back",
            ),
            (
                "settled back",
                Facts {
                    current: Some((Stage::Reactivated, days_ago(120.0))),
                    ..facts(8, 320.0, 5.0)
                },
                Stage::Expansion,
                "high-value",
            ),
            (
                "churned and still away",
                Facts {
                    current: Some((Stage::Churned, days_ago(10.0))),
                    ..facts(2, 40.0, 500.0)
                },
                Stage::Churned,
                "lapsed",
            ),
            (
                "without a model, P(alive) rules do not hold",
                facts(4, 90.0, 10.0),
                Stage::Engagement,
                "repeat-buyer",
            ),
        ];
        for (case, f, stage, rule) in cases {
            let got = rules.place(&f);
            assert_eq!((got.stage, got.rule.as_str()), (stage, rule), "{case}");
        }
    }

    #[test]
    fn rules_are_checked() {
        let dup = vec![rule("a", Stage::Churned), rule("a", Stage::Advocacy)];
        assert!(StageRules::new(dup).is_err());
        let inverted = StageRule {
            min_orders: Some(3),
            max_orders: Some(2),
            ..rule("x", Stage::Engagement)
        };
        assert!(StageRules::new(vec![inverted]).is_err());
        let p = StageRule {
            max_p_alive: Some(1.5),
            ..rule("x", Stage::Engagement)
        };
        assert!(StageRules::new(vec![p]).is_err());
        assert!(StageRules::new(vec![rule("known", Stage::Engagement)]).is_err());
        assert!(StageRules::new(default_rules()).is_ok());
    }

    #[test]
    fn rules_parse_from_toml_and_refuse_unknown_keys() {
        #[derive(Deserialize)]
        struct Doc {
            rules: Vec<StageRule>,
        }
        let doc: Doc = toml_like(
            r#"[[rules]]
name = "vip"
stage = "advocacy"
min_revenue = 1000.0
events = { "Referral Sent" = 2 }
"#,
        );
        assert_eq!(doc.rules[0].stage, Stage::Advocacy);
        assert_eq!(doc.rules[0].events["Referral Sent"], 2);
        let bad: Result<Doc, _> =
            serde_json::from_str(r#"{"rules":[{"name":"x","stage":"advocacy","min_revenu":1}]}"#);
        assert!(bad.is_err());
    }

    fn toml_like<T: serde::de::DeserializeOwned>(s: &str) -> T {
        toml::from_str(s).expect("parses")
    }
}
