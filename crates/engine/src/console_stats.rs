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
}

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
    })
}
