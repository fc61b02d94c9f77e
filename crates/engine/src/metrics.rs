//! Operational counters, rendered in the Prometheus text format at `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

/// Counters of what ingestion did; shared by every caller of the engine.
pub struct Metrics {
    registry: Registry,
    accepted: Counter,
    deduplicated: Counter,
    rejected: Family<ReasonLabel, Counter>,
    fields_dropped: Family<ReasonLabel, Counter>,
    latency: Histogram,
    timer_runs: Family<JobLabel, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self::of_node(None)
    }

    /// Every metric labelled `node="<node>"` when given, so that a scraper can tell the
    /// nodes of a cluster apart.
    pub(crate) fn of_node(node: Option<&str>) -> Self {
        let labels = node.map(|n| {
            (
                std::borrow::Cow::Borrowed("node"),
                std::borrow::Cow::Owned(n.to_owned()),
            )
        });
        let mut registry = Registry::with_prefix_and_labels("consentric", labels.into_iter());
        let accepted = Counter::default();
        let deduplicated = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let fields_dropped = Family::<ReasonLabel, Counter>::default();
        // 50 µs .. ~3 s, doubling.
        let latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.00005, 2.0, 17,
        ));
        registry.register(
            "events_accepted",
            "Events stored for the first time",
            accepted.clone(),
        );
        registry.register(
            "events_deduplicated",
            "Events acknowledged again without storing (retries with a known messageId)",
            deduplicated.clone(),
        );
        registry.register(
            "events_rejected",
            "Events refused, by reason",
            rejected.clone(),
        );
        registry.register(
            "fields_dropped",
            "Event fields not stored: `unmapped` (no data category), `no_basis` (no purpose with a legal basis may use it) or `unverified_contact` (contact details about a user id from a browser key without a valid user hash)",
            fields_dropped.clone(),
        );
        registry.register(
            "ingest_latency_seconds",
            "Time to validate, resolve and durably store one ingest call (a batch counts once)",
            latency.clone(),
        );
        let timer_runs = Family::<JobLabel, Counter>::default();
        registry.register(
            "timer_runs",
            "Periodic jobs this node ran as the cluster's leader, by job (each runs once per period across the cluster)",
            timer_runs.clone(),
        );
        Metrics {
            registry,
            accepted,
            deduplicated,
            rejected,
            fields_dropped,
            latency,
            timer_runs,
        }
    }

    pub(crate) fn record_timer_run(&self, job: &str) {
        self.timer_runs
            .get_or_create(&JobLabel {
                job: job.to_owned(),
            })
            .inc();
    }

    pub(crate) fn record_ingest(&self, accepted: u64, duplicates: u64, took: Duration) {
        self.accepted.inc_by(accepted);
        self.deduplicated.inc_by(duplicates);
        self.latency.observe(took.as_secs_f64());
    }

    /// Contact fields the browser-key rules removed (counted as dropped fields,
    /// `unverified_contact`); unverified grants are in the consent ledger.
    pub(crate) fn record_contact_removed(&self, contact_removed: u64) {
        if contact_removed > 0 {
            self.fields_dropped
                .get_or_create(&ReasonLabel {
                    reason: "unverified_contact".to_owned(),
                })
                .inc_by(contact_removed);
        }
    }

    pub(crate) fn record_dropped(&self, unmapped: u64, no_basis: u64) {
        for (reason, n) in [("unmapped", unmapped), ("no_basis", no_basis)] {
            if n > 0 {
                self.fields_dropped
                    .get_or_create(&ReasonLabel {
                        reason: reason.to_owned(),
                    })
                    .inc_by(n);
            }
        }
    }

    /// Counts `events` refused for `reason` (a stable error code such as `missing_field`).
    pub fn record_rejected(&self, reason: &str, events: u64) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc_by(events);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
