//! What the console's overview counts across all customers: events per hour over the last two
//! days, and each purpose's customers by their latest decision. Exact aggregates, for the
//! roles that may see them; computed in the background like the lifecycle summary.

use serde::Serialize;

use crate::error::EngineError;

/// Hours of events the overview shows.
pub const HOURS_SHOWN: i64 = 48;

/// The overview's counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsoleStats {
    /// Events received per hour: (the hour's start, ISO-8601; events), the last
    /// [`HOURS_SHOWN`] hours, empty hours included.
    pub events_per_hour: Vec<(String, u64)>,
    /// Per purpose on consent: customers whose latest decision grants it, and those whose
    /// latest denies or withdraws it.
    pub consent: Vec<PurposeRate>,
    /// Per month (`YYYY-MM`, the last [`MONTHS_SHOWN`] with a decision) and purpose: of the
    /// choices recorded that month, the share that granted (`None`: no choice that month).
    pub consent_by_month: Vec<MonthShares>,
}

/// One month (`YYYY-MM`) and, per purpose, the share of its choices that granted.
pub type MonthShares = (String, Vec<(String, Option<f64>)>);

/// Months of consent choices the overview shows.
pub const MONTHS_SHOWN: usize = 12;

/// One purpose's consent now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurposeRate {
    /// The purpose.
    pub purpose: String,
    /// Customers whose latest decision grants it.
    pub granted: u64,
    /// Customers whose latest decision denies or withdraws it.
    pub refused: u64,
}

/// Counts them now.
pub(crate) fn compute(
    store: &consentric_store::Store,
    clock: &dyn crate::clock::Clock,
) -> Result<ConsoleStats, EngineError> {
    let hour = 3_600_000;
    let now = clock.now().timestamp_millis();
    let first = (now / hour - (HOURS_SHOWN - 1)) * hour;
    let counted = store.events_per_hour(first)?;
    let events_per_hour = (0..HOURS_SHOWN)
        .map(|i| {
            let at = first + i * hour;
            let n = counted
                .iter()
                .find(|(h, _)| *h == at)
                .map_or(0, |(_, n)| *n);
            (crate::profiles::iso(at), n)
        })
        .collect();
    let mut consent: Vec<PurposeRate> = Vec::new();
    for (purpose, decision, n) in store.consent_now()? {
        let i = match consent.iter().position(|r| r.purpose == purpose) {
            Some(i) => i,
            None => {
                consent.push(PurposeRate {
                    purpose,
                    granted: 0,
                    refused: 0,
                });
                consent.len() - 1
            }
        };
        if decision == "granted" {
            consent[i].granted += n;
        } else {
            consent[i].refused += n;
        }
    }
    Ok(ConsoleStats {
        events_per_hour,
        consent,
        consent_by_month: by_month(store.consent_by_day()?),
    })
}

/// Choices per (purpose, day, decision) as each month's share of grants per purpose.
fn by_month(rows: Vec<(String, i64, String, u64)>) -> Vec<MonthShares> {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    let mut purposes: std::collections::BTreeSet<String> = Default::default();
    for (purpose, day, decision, n) in rows {
        let Some(date) = chrono::DateTime::from_timestamp(day * 86_400, 0) else {
            continue;
        };
        let month = date.format("%Y-%m").to_string();
        let entry = counts
            .entry(month)
            .or_default()
            .entry(purpose.clone())
            .or_default();
        if decision == "granted" {
            entry.0 += n;
        }
        entry.1 += n;
        purposes.insert(purpose);
    }
    let skip = counts.len().saturating_sub(MONTHS_SHOWN);
    counts
        .into_iter()
        .skip(skip)
        .map(|(month, per)| {
            let shares = purposes
                .iter()
                .map(|p| {
                    let share = per
                        .get(p)
                        .filter(|(_, all)| *all > 0)
                        .map(|(granted, all)| *granted as f64 / *all as f64);
                    (p.clone(), share)
                })
                .collect();
            (month, shares)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn choices_become_each_month_s_share_of_grants() {
        let day = |s: &str| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .expect("date")
                .and_hms_opt(0, 0, 0)
                .expect("time")
                .and_utc()
                .timestamp()
                / 86_400
        };
        let rows = vec![
            (
                "analytics".to_owned(),
                day("2024-01-03"),
                "granted".to_owned(),
                3,
            ),
            (
                "analytics".to_owned(),
                day("2024-01-20"),
                "denied".to_owned(),
                1,
            ),
            (
                "ads".to_owned(),
                day("2024-02-01"),
                "withdrawn".to_owned(),
                2,
            ),
        ];
        let months = super::by_month(rows);
        assert_eq!(months.len(), 2);
        assert_eq!(months[0].0, "2024-01");
        assert_eq!(
            months[0].1,
            vec![
                ("ads".to_owned(), None),
                ("analytics".to_owned(), Some(0.75))
            ]
        );
        assert_eq!(
            months[1].1,
            vec![
                ("ads".to_owned(), Some(0.0)),
                ("analytics".to_owned(), None)
            ]
        );
    }
}
