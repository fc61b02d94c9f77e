//! What an analyst may ask, parsed at the edge into a typed query: every field named on
//! refusal, and nothing spent for a query that does not parse.

use consentric_model::Stage;
use consentric_pets::Privacy;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// `POST /v1/analytics/query`, as sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// `count`, `sum`, `mean`, `quantile`, `histogram`, `top_k`, `funnel` or `retention`.
    pub query: String,
    /// For `sum`, `mean` and `quantile`: `orders`, `revenue` or `events` (per customer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// For `sum`, `mean` and `quantile`: each customer's value is clamped into `[low, high]`
    /// (a quantile is chosen among evenly spaced candidates across it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<[f64; 2]>,
    /// For `quantile`: which (0.5, the default, is the median).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// For `quantile`: how many equal steps divide the bounds (default 100; candidates are the
    /// step boundaries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    /// For `histogram` and `top_k`: `stage`, `cohort` (month of first event), `segment`,
    /// `event` (customers who sent each event) or `trait.NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The categories, declared in advance (the bins must not depend on the data): months
    /// (`YYYY-MM`) for `cohort` and `retention`, segment names, event names, trait values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// For `top_k`: how many categories to select.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    /// For `funnel`: the stages in order (default acquisition → advocacy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<String>>,
    /// For `retention`: months after the cohort month to report (default 6, at most 24).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods: Option<u32>,
    /// Where a customer can fall in several bins (`segment`, `event`, `funnel`,
    /// `retention`): the most each contributes to; the rest are dropped. The noise grows with
    /// it. Default: every bin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
    /// Count, sum, mean or quantile only customers in this lifecycle stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Pure ε-DP (discrete Laplace noise, or permute-and-flip for selections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// ρ-zCDP (discrete Gaussian noise, or the Gumbel exponential mechanism).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// The data set (default `customers`).
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// What a histogram or top-k groups by.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupBy {
    /// Lifecycle stage (every stage, plus `unplaced`).
    Stage,
    /// Month of first event, over the declared months.
    Cohort(Vec<String>),
    /// A trait's value, over the declared categories (plus `other`).
    Trait(String, Vec<String>),
    /// Membership of the declared segments, evaluated now for the analytics purpose.
    Segment(Vec<String>),
    /// Customers who sent each of the declared events.
    Event(Vec<String>),
}

impl GroupBy {
    /// The bins, in order.
    pub fn bins(&self) -> Vec<String> {
        match self {
            GroupBy::Stage => Stage::ALL
                .iter()
                .map(|s| s.as_str().to_owned())
                .chain(["unplaced".to_owned()])
                .collect(),
            GroupBy::Cohort(c) | GroupBy::Segment(c) | GroupBy::Event(c) => c.clone(),
            GroupBy::Trait(_, c) => c.iter().cloned().chain(["other".to_owned()]).collect(),
        }
    }

    /// Whether one customer can fall in more than one bin.
    pub fn overlaps(&self) -> bool {
        matches!(self, GroupBy::Segment(_) | GroupBy::Event(_))
    }
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
    /// The alpha-quantile of clamp(measure), among `candidates` (in cents for revenue).
    Quantile(Measure, f64, Vec<i64>),
    /// Customers per category.
    Histogram(GroupBy),
    /// The k categories with most customers.
    TopK(GroupBy, usize),
    /// Customers who ever entered each stage, in order.
    Funnel(Vec<Stage>),
    /// Customers of each cohort month who purchased 0..=periods months later.
    Retention(Vec<String>, u32),
}

/// The data sets a budget can be granted on.
pub const DATASETS: [&str; 1] = ["customers"];

/// Most declared categories a histogram may have.
const MAX_CATEGORIES: usize = 1000;
/// Most months a retention row may have after its cohort month.
const MAX_PERIODS: u32 = 24;
/// Most steps between a quantile's bounds.
const MAX_STEPS: u32 = 10_000;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub query: Query,
    pub privacy: Privacy,
    pub stage: Option<Stage>,
    pub dataset: String,
    /// The most bins one customer contributes to (1 unless bins overlap).
    pub rows_per_customer: u32,
}

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Sums and bounds are computed in hundredths (cents), so a fractional measure is exact.
pub const RESOLUTION: f64 = 100.0;

fn month(m: &str) -> Result<(), EngineError> {
    chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| invalid("categories", format!("`{m}` is not a month (YYYY-MM)")))
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
            None => return Err(invalid("measure", format!("a {} needs a measure", r.query))),
        };
        let [lo, hi] = r.bounds.ok_or_else(|| {
            invalid(
                "bounds",
                format!("a {} needs clamping bounds [low, high]", r.query),
            )
        })?;
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
    let declared = |field: &str| -> Result<Vec<String>, EngineError> {
        let c = r.categories.clone().ok_or_else(|| {
            invalid(
                "categories",
                format!("a {} by {field} needs its categories declared", r.query),
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
    let group_by = || -> Result<GroupBy, EngineError> {
        if stage.is_some() {
            return Err(invalid(
                "stage",
                format!("a {} takes no stage filter", r.query),
            ));
        }
        Ok(match r.by.as_deref() {
            Some("stage") => GroupBy::Stage,
            Some("cohort") => {
                let months = declared("cohort")?;
                months.iter().try_for_each(|m| month(m))?;
                GroupBy::Cohort(months)
            }
            Some("segment") => GroupBy::Segment(declared("segment")?),
            Some("event") => GroupBy::Event(declared("event")?),
            Some(by) => match by.strip_prefix("trait.").filter(|t| !t.is_empty()) {
                Some(t) if identifies(t) => {
                    return Err(invalid(
                        "by",
                        format!(
                            "`{by}` identifies people; grouping by it would release identifiers"
                        ),
                    ))
                }
                Some(t) => GroupBy::Trait(t.to_owned(), declared(by)?),
                None => {
                    return Err(invalid(
                        "by",
                        format!("`{by}`: use stage, cohort, segment, event or trait.NAME"),
                    ))
                }
            },
            None => return Err(invalid("by", format!("a {} needs `by`", r.query))),
        })
    };
    let no_stage = |what: &str| match stage {
        Some(_) => Err(invalid("stage", format!("a {what} takes no stage filter"))),
        None => Ok(()),
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
        "quantile" => {
            let (m, [lo, hi]) = measure()?;
            let alpha = r.alpha.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&alpha) {
                return Err(invalid("alpha", "a quantile's level must be within [0, 1]"));
            }
            let steps = r.steps.unwrap_or(100);
            if steps == 0 || steps > MAX_STEPS {
                return Err(invalid("steps", format!("1 to {MAX_STEPS} steps")));
            }
            let scale = if m == Measure::Revenue {
                RESOLUTION
            } else {
                1.0
            };
            let (lo, hi) = ((lo * scale).round(), (hi * scale).round());
            let mut candidates: Vec<i64> = (0..=steps)
                .map(|i| (lo + (hi - lo) * f64::from(i) / f64::from(steps)).round() as i64)
                .collect();
            candidates.dedup();
            Query::Quantile(m, alpha, candidates)
        }
        "histogram" => Query::Histogram(group_by()?),
        "top_k" => {
            let by = group_by()?;
            let bins = by.bins().len();
            let k = r.k.ok_or_else(|| invalid("k", "a top_k needs k"))? as usize;
            if k == 0 || k > bins {
                return Err(invalid(
                    "k",
                    format!("k must be between 1 and the number of categories ({bins})"),
                ));
            }
            Query::TopK(by, k)
        }
        "funnel" => {
            no_stage("funnel")?;
            let stages = match &r.stages {
                // The forward path, acquisition → advocacy (churned and reactivated are not
                // funnel steps).
                None => Stage::ALL
                    .into_iter()
                    .take_while(|s| *s != Stage::Churned)
                    .collect(),
                Some(list) => {
                    let parsed = list
                        .iter()
                        .map(|s| {
                            s.parse::<Stage>().map_err(|_| {
                                invalid("stages", format!("`{s}` is not a lifecycle stage"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let mut seen = parsed.clone();
                    seen.sort_by_key(|s| s.as_str());
                    seen.dedup();
                    if parsed.is_empty() || seen.len() != parsed.len() {
                        return Err(invalid("stages", "one or more distinct stages"));
                    }
                    parsed
                }
            };
            Query::Funnel(stages)
        }
        "retention" => {
            no_stage("retention")?;
            let months = declared("retention")?;
            months.iter().try_for_each(|m| month(m))?;
            let periods = r.periods.unwrap_or(6);
            if periods > MAX_PERIODS {
                return Err(invalid("periods", format!("at most {MAX_PERIODS}")));
            }
            Query::Retention(months, periods)
        }
        other => {
            return Err(invalid(
                "query",
                format!(
                "`{other}`: use count, sum, mean, quantile, histogram, top_k, funnel or retention"
            ),
            ))
        }
    };
    // How many bins one customer can fall in, and the bound asked for.
    let most = match &query {
        Query::Histogram(by) if by.overlaps() => by.bins().len(),
        Query::Funnel(stages) => stages.len(),
        Query::Retention(_, periods) => *periods as usize + 1,
        _ => 1,
    } as u32;
    let rows_per_customer = match r.max_rows {
        None => most,
        Some(0) => return Err(invalid("max_rows", "at least 1")),
        Some(n) if most == 1 && n != 1 => {
            return Err(invalid(
                "max_rows",
                "this query takes one row per customer; max_rows applies to segment, event, funnel and retention",
            ))
        }
        Some(n) => n.min(most),
    };
    Ok(Parsed {
        query,
        privacy,
        stage,
        dataset,
        rows_per_customer,
    })
}
