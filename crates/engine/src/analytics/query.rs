//! What an analyst may ask, parsed at the edge into a typed query: every field named on
//! refusal, and nothing spent for a query that does not parse.

use consentric_pets::Privacy;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// `POST /v1/analytics/query`, as sent.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// `count`, `sum`, `mean` or `histogram`.
    pub query: String,
    /// For `sum` and `mean`: `orders`, `revenue` or `events` (per customer).
    pub measure: Option<String>,
    /// For `sum` and `mean`: each customer's value is clamped into `[low, high]`.
    pub bounds: Option<[f64; 2]>,
    /// For `histogram`: `stage`, `cohort` (month of first event) or `trait.NAME`.
    pub by: Option<String>,
    /// For `histogram` by `cohort` or a trait: the categories, declared in advance (the bins
    /// must not depend on the data).
    pub categories: Option<Vec<String>>,
    /// Count, sum or mean only customers in this lifecycle stage.
    pub stage: Option<String>,
    /// Pure ε-DP (discrete Laplace noise).
    pub epsilon: Option<f64>,
    /// ρ-zCDP (discrete Gaussian noise).
    pub rho: Option<f64>,
    /// The data set (default `customers`).
    pub dataset: Option<String>,
}

/// A per-customer measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Orders placed.
    Orders,
    /// Revenue, in cents internally.
    Revenue,
    /// Events sent.
    Events,
}

/// What a histogram groups by.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupBy {
    /// Lifecycle stage (every stage, plus `unplaced`).
    Stage,
    /// Month of first event, over the declared months.
    Cohort(Vec<String>),
    /// A trait's value, over the declared categories (plus `other`).
    Trait(String, Vec<String>),
}

/// A query, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Customers.
    Count,
    /// Σ clamp(measure).
    Sum(Measure, [f64; 2]),
    /// Σ clamp(measure) / customers, each at half the privacy.
    Mean(Measure, [f64; 2]),
    /// Customers per category.
    Histogram(GroupBy),
}

/// The data sets a budget can be granted on.
pub const DATASETS: [&str; 1] = ["customers"];

/// Most declared categories a histogram may have.
const MAX_CATEGORIES: usize = 1000;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub query: Query,
    pub privacy: Privacy,
    pub stage: Option<consentric_model::Stage>,
    pub dataset: String,
}

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Parses a request; `identifies(trait)` says whether a trait names or reaches a person
/// (a histogram over it would release identifiers).
///
/// # Errors
/// [`EngineError::Invalid`] naming the field.
pub fn parse(r: &QueryRequest, identifies: &dyn Fn(&str) -> bool) -> Result<Parsed, EngineError> {
    let privacy = match (r.epsilon, r.rho) {
        (Some(e), None) => Privacy::Epsilon(e),
        (None, Some(p)) => Privacy::Rho(p),
        _ => {
            return Err(invalid(
                "epsilon",
                "give exactly one of `epsilon` (pure DP) or `rho` (zCDP)",
            ))
        }
    };
    let check = |v: f64, name: &str| {
        if v.is_finite() && v > 0.0 && v <= consentric_pets::release::MAX_PRIVACY {
            Ok(())
        } else {
            Err(invalid(
                name,
                format!(
                    "must be a positive finite number at most {}",
                    consentric_pets::release::MAX_PRIVACY
                ),
            ))
        }
    };
    match privacy {
        Privacy::Epsilon(e) => check(e, "epsilon")?,
        Privacy::Rho(p) => check(p, "rho")?,
    }
    let dataset = r.dataset.clone().unwrap_or_else(|| "customers".into());
    if !DATASETS.contains(&dataset.as_str()) {
        return Err(invalid(
            "dataset",
            format!("unknown data set; known: {}", DATASETS.join(", ")),
        ));
    }
    let stage = r
        .stage
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|_| invalid("stage", format!("`{s}` is not a lifecycle stage")))
        })
        .transpose()?;
    let measure = || -> Result<(Measure, [f64; 2]), EngineError> {
        let m = match r.measure.as_deref() {
            Some("orders") => Measure::Orders,
            Some("revenue") => Measure::Revenue,
            Some("events") => Measure::Events,
            Some(other) => {
                return Err(invalid(
                    "measure",
                    format!("`{other}`: use orders, revenue or events"),
                ))
            }
            None => return Err(invalid("measure", "a sum or mean needs a measure")),
        };
        let [lo, hi] = r
            .bounds
            .ok_or_else(|| invalid("bounds", "a sum or mean needs clamping bounds [low, high]"))?;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) || lo.abs() > 1e12 || hi.abs() > 1e12 {
            return Err(invalid(
                "bounds",
                "must be finite, low <= high, within ±10¹²",
            ));
        }
        if lo == hi && lo == 0.0 {
            return Err(invalid("bounds", "[0, 0] releases nothing"));
        }
        Ok((m, [lo, hi]))
    };
    let categories = |field: &str| -> Result<Vec<String>, EngineError> {
        let c = r.categories.clone().ok_or_else(|| {
            invalid(
                "categories",
                format!("a histogram by {field} needs its categories declared"),
            )
        })?;
        if c.is_empty() || c.len() > MAX_CATEGORIES {
            return Err(invalid(
                "categories",
                format!("1 to {MAX_CATEGORIES} categories"),
            ));
        }
        let mut sorted = c.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != c.len() {
            return Err(invalid("categories", "categories must be distinct"));
        }
        Ok(c)
    };
    let query = match r.query.as_str() {
        "count" => Query::Count,
        "sum" => {
            let (m, b) = measure()?;
            Query::Sum(m, b)
        }
        "mean" => {
            let (m, b) = measure()?;
            Query::Mean(m, b)
        }
        "histogram" => {
            if stage.is_some() {
                return Err(invalid("stage", "a histogram takes no stage filter"));
            }
            match r.by.as_deref() {
                Some("stage") => Query::Histogram(GroupBy::Stage),
                Some("cohort") => {
                    let months = categories("cohort")?;
                    for m in &months {
                        if chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").is_err() {
                            return Err(invalid("categories", format!("`{m}` is not a month (YYYY-MM)")));
                        }
                    }
                    Query::Histogram(GroupBy::Cohort(months))
                }
                Some(by) => match by.strip_prefix("trait.").filter(|t| !t.is_empty()) {
                    Some(t) if identifies(t) => {
                        return Err(invalid("by", format!("`{by}` identifies people; a histogram over it would release identifiers")))
                    }
                    Some(t) => Query::Histogram(GroupBy::Trait(t.to_owned(), categories(by)?)),
                    None => return Err(invalid("by", format!("`{by}`: use stage, cohort or trait.NAME"))),
                },
                None => return Err(invalid("by", "a histogram needs `by`")),
            }
        }
        other => {
            return Err(invalid(
                "query",
                format!("`{other}`: use count, sum, mean or histogram"),
            ))
        }
    };
    Ok(Parsed {
        query,
        privacy,
        stage,
        dataset,
    })
}
