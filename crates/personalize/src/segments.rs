//! Segment conditions: a small JSON language over what is known of a customer. Parsed once
//! into typed fields and operators, so a definition that names an unknown field or compares
//! nonsense is refused when it is defined, not when it is evaluated.
//!
//! ```json
//! {"all": [{"field": "stage", "op": "in", "value": ["retention", "expansion"]},
//!          {"field": "orders", "op": "gte", "value": 3},
//!          {"field": "event.Product Viewed.30d", "op": "gte", "value": 2}]}
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a condition can look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Lifecycle stage (`"retention"`).
    Stage,
    /// Orders placed.
    Orders,
    /// Revenue.
    Revenue,
    /// Events sent.
    Events,
    /// Days since the first event.
    DaysSinceFirstSeen,
    /// Days since the latest event.
    DaysSinceLastSeen,
    /// Customer lifetime value.
    Clv,
    /// Probability of being active.
    PAlive,
    /// Churn risk (0–1).
    ChurnRisk,
    /// RFM quintile score (1–5) of recency, frequency or monetary value.
    Rfm(char),
    /// A profile trait.
    Trait(String),
    /// Events with this name, in the last `within_days` days (all time when `None`).
    EventCount {
        /// The event name.
        name: String,
        /// The window.
        within_days: Option<u32>,
    },
}

impl Field {
    /// Parses `stage`, `orders`, `rfm.r`, `trait.plan`, `event.Order Completed.30d`, ….
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(s: &str) -> Result<Field, String> {
        Ok(match s {
            "stage" => Field::Stage,
            "orders" => Field::Orders,
            "revenue" => Field::Revenue,
            "events" => Field::Events,
            "days_since_first_seen" => Field::DaysSinceFirstSeen,
            "days_since_last_seen" => Field::DaysSinceLastSeen,
            "clv" => Field::Clv,
            "p_alive" => Field::PAlive,
            "churn_risk" => Field::ChurnRisk,
            "rfm.r" | "rfm.recency" => Field::Rfm('r'),
            "rfm.f" | "rfm.frequency" => Field::Rfm('f'),
            "rfm.m" | "rfm.monetary" => Field::Rfm('m'),
            _ => {
                if let Some(t) = s.strip_prefix("trait.").filter(|t| !t.is_empty()) {
                    Field::Trait(t.to_owned())
                } else if let Some(e) = s.strip_prefix("event.").filter(|e| !e.is_empty()) {
                    match e.rsplit_once('.') {
                        Some((name, w)) if w.ends_with('d') && !name.is_empty() => {
                            let days: u32 = w[..w.len() - 1]
                                .parse()
                                .map_err(|_| format!("`{s}`: the window must be like `30d`"))?;
                            Field::EventCount {
                                name: name.to_owned(),
                                within_days: Some(days),
                            }
                        }
                        _ => Field::EventCount {
                            name: e.to_owned(),
                            within_days: None,
                        },
                    }
                } else {
                    return Err(format!(
                        "unknown field `{s}` (stage, orders, revenue, events, days_since_first_seen, days_since_last_seen, clv, p_alive, churn_risk, rfm.r|f|m, trait.NAME, event.NAME[.Nd])"
                    ));
                }
            }
        })
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Stage => f.write_str("stage"),
            Field::Orders => f.write_str("orders"),
            Field::Revenue => f.write_str("revenue"),
            Field::Events => f.write_str("events"),
            Field::DaysSinceFirstSeen => f.write_str("days_since_first_seen"),
            Field::DaysSinceLastSeen => f.write_str("days_since_last_seen"),
            Field::Clv => f.write_str("clv"),
            Field::PAlive => f.write_str("p_alive"),
            Field::ChurnRisk => f.write_str("churn_risk"),
            Field::Rfm(c) => write!(f, "rfm.{c}"),
            Field::Trait(t) => write!(f, "trait.{t}"),
            Field::EventCount {
                name,
                within_days: Some(d),
            } => write!(f, "event.{name}.{d}d"),
            Field::EventCount { name, .. } => write!(f, "event.{name}"),
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal (numbers numerically, otherwise as text).
    Eq,
    /// Not equal (a missing value is not "not equal": it is unknown).
    Ne,
    /// Greater than.
    Gt,
    /// At least.
    Gte,
    /// Less than.
    Lt,
    /// At most.
    Lte,
    /// One of a list.
    In,
    /// Known at all.
    Exists,
}

/// A segment condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every one holds.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// It does not hold.
    Not(Box<Condition>),
    /// A field compared with a value.
    Compare {
        /// What is looked at.
        field: Field,
        /// How.
        op: Op,
        /// With what.
        value: Value,
    },
}

#[derive(Deserialize, Serialize)]
#[serde(untagged, deny_unknown_fields)]
enum Raw {
    All {
        all: Vec<Raw>,
    },
    Any {
        any: Vec<Raw>,
    },
    Not {
        not: Box<Raw>,
    },
    Compare {
        field: String,
        op: Op,
        #[serde(default)]
        value: Value,
    },
}

/// Deepest nesting accepted: definitions come over HTTP.
const MAX_DEPTH: usize = 16;

impl Condition {
    /// Parses a JSON definition.
    ///
    /// # Errors
    /// A message naming the first problem (unknown field, a list where `in` needs one, a
    /// number where an ordering needs one, too deep).
    pub fn parse(json: &Value) -> Result<Condition, String> {
        let raw: Raw = serde_json::from_value(json.clone()).map_err(|_| {
            "a condition is {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}} or {\"field\", \"op\", \"value\"}".to_owned()
        })?;
        from_raw(raw, 0)
    }

    /// The definition as JSON (what [`Condition::parse`] reads).
    pub fn to_json(&self) -> Value {
        match self {
            Condition::All(c) => {
                serde_json::json!({"all": c.iter().map(Condition::to_json).collect::<Vec<_>>()})
            }
            Condition::Any(c) => {
                serde_json::json!({"any": c.iter().map(Condition::to_json).collect::<Vec<_>>()})
            }
            Condition::Not(c) => serde_json::json!({"not": c.to_json()}),
            Condition::Compare { field, op, value } => {
                serde_json::json!({"field": field.to_string(), "op": op, "value": value})
            }
        }
    }

    /// Every field it looks at (so the caller reads only those).
    pub fn fields(&self) -> Vec<&Field> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Field>) {
        match self {
            Condition::All(c) | Condition::Any(c) => c.iter().for_each(|c| c.collect(out)),
            Condition::Not(c) => c.collect(out),
            Condition::Compare { field, .. } => out.push(field),
        }
    }

    /// Whether it holds for a customer whose fields `get` gives (`None`: unknown).
    pub fn holds(&self, get: &dyn Fn(&Field) -> Option<Value>) -> bool {
        match self {
            Condition::All(c) => c.iter().all(|c| c.holds(get)),
            Condition::Any(c) => c.iter().any(|c| c.holds(get)),
            Condition::Not(c) => !c.holds(get),
            Condition::Compare { field, op, value } => match get(field) {
                None => false,
                Some(actual) => compare(&actual, *op, value),
            },
        }
    }
}

fn from_raw(raw: Raw, depth: usize) -> Result<Condition, String> {
    if depth > MAX_DEPTH {
        return Err(format!("conditions nest at most {MAX_DEPTH} deep"));
    }
    let many = |v: Vec<Raw>| -> Result<Vec<Condition>, String> {
        v.into_iter().map(|r| from_raw(r, depth + 1)).collect()
    };
    Ok(match raw {
        Raw::All { all } => Condition::All(many(all)?),
        Raw::Any { any } => Condition::Any(many(any)?),
        Raw::Not { not } => Condition::Not(Box::new(from_raw(*not, depth + 1)?)),
        Raw::Compare { field, op, value } => {
            let field = Field::parse(&field)?;
            match op {
                Op::In if !value.is_array() => {
                    return Err(format!("`{field}` in: the value must be a list"))
                }
                Op::Gt | Op::Gte | Op::Lt | Op::Lte if !value.is_number() => {
                    return Err(format!("`{field}`: ordering needs a number"))
                }
                Op::Eq | Op::Ne if value.is_null() => {
                    return Err(format!("`{field}`: a value to compare with is needed"))
                }
                _ => {}
            }
            if field == Field::Stage {
                let names: Vec<&Value> = match &value {
                    Value::Array(a) => a.iter().collect(),
                    Value::Null => Vec::new(),
                    v => vec![v],
                };
                for n in names {
                    let ok = n
                        .as_str()
                        .is_some_and(|s| s.parse::<consentric_model::Stage>().is_ok());
                    if !ok {
                        return Err(format!("`stage`: {n} is not a lifecycle stage"));
                    }
                }
            }
            Condition::Compare { field, op, value }
        }
    })
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) if !a.is_string() || !b.is_string() => x == y,
        _ => match (a, b) {
            (Value::String(x), Value::String(y)) => x == y,
            _ => a == b,
        },
    }
}

fn compare(actual: &Value, op: Op, value: &Value) -> bool {
    let ord = || {
        number(actual)
            .zip(number(value))
            .map(|(a, b)| a.total_cmp(&b))
    };
    use std::cmp::Ordering::*;
    match op {
        Op::Exists => !actual.is_null(),
        Op::Eq => equal(actual, value),
        Op::Ne => !equal(actual, value),
        Op::Gt => ord() == Some(Greater),
        Op::Gte => matches!(ord(), Some(Greater | Equal)),
        Op::Lt => ord() == Some(Less),
        Op::Lte => matches!(ord(), Some(Less | Equal)),
        Op::In => value
            .as_array()
            .is_some_and(|l| l.iter().any(|v| equal(actual, v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_evaluates_and_round_trips() {
        let def = json!({"all": [
            {"field": "stage", "op": "in", "value": ["retention", "expansion"]},
            {"field": "orders", "op": "gte", "value": 3},
            {"not": {"field": "trait.plan", "op": "eq", "value": "free"}},
            {"any": [{"field": "event.Product Viewed.30d", "op": "gt", "value": 1},
                     {"field": "clv", "op": "gt", "value": 100}]}
        ]});
        let c = Condition::parse(&def).expect("parses");
        assert_eq!(Condition::parse(&c.to_json()), Ok(c.clone()));
        assert!(c.fields().contains(&&Field::EventCount {
            name: "Product Viewed".into(),
            within_days: Some(30)
        }));
        let who = |orders: u64, plan: &'static str, views: u64| {
            move |f: &Field| -> Option<Value> {
                Some(match f {
                    Field::Stage => json!("retention"),
                    Field::Orders => json!(orders),
                    Field::Trait(_) => json!(plan),
                    Field::EventCount { .. } => json!(views),
                    _ => return None, // clv unknown
                })
            }
        };
        assert!(c.holds(&who(3, "pro", 2)));
        assert!(!c.holds(&who(2, "pro", 2)));
        assert!(!c.holds(&who(3, "free", 2)));
        assert!(
            !c.holds(&who(3, "pro", 1)),
            "unknown clv does not satisfy clv > 100"
        );
    }

    #[test]
    fn refuses_what_cannot_mean_anything() {
        for (def, needle) in [
            (
                json!({"field": "shoe_size", "op": "eq", "value": 1}),
                "unknown field",
            ),
            (
                json!({"field": "orders", "op": "gt", "value": "many"}),
                "needs a number",
            ),
            (
                json!({"field": "stage", "op": "eq", "value": "asleep"}),
                "not a lifecycle stage",
            ),
            (
                json!({"field": "orders", "op": "in", "value": 3}),
                "must be a list",
            ),
            (
                json!({"field": "event.X.thirtyd", "op": "gt", "value": 1}),
                "window",
            ),
            (json!({"every": []}), "a condition is"),
        ] {
            let err = Condition::parse(&def).expect_err("refused");
            assert!(err.contains(needle), "{def}: {err}");
        }
        let mut deep = json!({"field": "orders", "op": "gt", "value": 1});
        for _ in 0..20 {
            deep = json!({"not": deep});
        }
        assert!(Condition::parse(&deep).expect_err("deep").contains("nest"));
    }
}
