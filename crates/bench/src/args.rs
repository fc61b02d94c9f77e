//! The benchmark commands' arguments.

use clap::{Args, Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum Command {
    /// Ingest throughput in-process and over HTTP, the raw SQLite insert limit, and the
    /// CDNOW import's time and peak memory.
    Ingest(IngestArgs),
    /// Export and erasure of one customer with many events, among others, on SQLite.
    Erase(EraseArgs),
    /// Value-model fitting on CDNOW (side by side with Python's `lifetimes` when given),
    /// scoring every master customer, and what stage updates cost ingest.
    Lifecycle(LifecycleArgs),
    /// The decision API over HTTP: customers with interactions over a catalogue, trained
    /// recommenders, then concurrent `POST /v1/decisions/…`: latency percentiles and throughput.
    Decide(DecideArgs),
    /// DP samplers' speed, end-to-end latency of releases over the CDNOW customers, and their
    /// error against the mechanism's expected error.
    Analytics(AnalyticsArgs),
    /// The clean room: cardinality PSI, Paillier rates and intersection-sum on synthetic
    /// e-mail sets, side by side with OpenMined's PSI and python-paillier.
    Cleanroom(CleanroomArgs),
    /// The server under a steady share of its measured HTTP ingest rate with decisions and
    /// DP queries mixed in (memory, latency per route, errors, loss), then under overload.
    Soak(SoakArgs),
    /// Several nodes on one PostgreSQL: HTTP ingest with one node and with more, and each
    /// event's cost to the database (WAL bytes, statements, transactions, bytes on disk).
    Cluster(ClusterArgs),
    /// The privacy centre's pages and downloads over HTTP, signed in as a customer with many
    /// events among others.
    PrivacyCentre(PrivacyArgs),
    /// The console's pages over HTTP as an admin, at CDNOW's customers or more.
    Console(ConsoleArgs),
}

#[derive(Args)]
pub struct ConsoleArgs {
    /// CDNOW's customers copied under new ids up to this many (default: CDNOW's 23,570).
    #[arg(long)]
    pub customers: Option<usize>,
    /// Requests per page.
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
}

#[derive(Args)]
pub struct PrivacyArgs {
    /// Events of the signed-in customer.
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Other customers.
    #[arg(long, default_value_t = 2_000)]
    pub others: usize,
    /// Events of each other customer.
    #[arg(long, default_value_t = 20)]
    pub others_events: usize,
    /// Decisions logged for the signed-in customer.
    #[arg(long, default_value_t = 50)]
    pub decisions: usize,
    /// Requests per page (downloads: at most 20).
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
}

#[derive(Args)]
pub struct ClusterArgs {
    /// A PostgreSQL server, without `dbname` (each run makes a database of its own; needs
    /// CREATEDB). Example: `host=127.0.0.1 port=5432 user=postgres`.
    #[arg(long, env = "CONSENTRIC_BENCH_PG_URL")]
    pub postgres_url: String,
    /// Events sent per run.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Concurrent HTTP connections, spread over the nodes.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Runs, by number of nodes (0: none, with `--sqlite` alone).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub nodes: Vec<usize>,
    /// Also one node on SQLite with the same traffic, for its rate and bytes per event.
    #[arg(long)]
    pub sqlite: bool,
}

#[derive(Args)]
pub struct SoakArgs {
    /// Seconds of the steady phase.
    #[arg(long, default_value_t = 600)]
    pub seconds: u64,
    /// Its share of the measured ingest rate.
    #[arg(long, default_value_t = 0.8)]
    pub share: f64,
    /// Seconds of the overload phase (0 skips it).
    #[arg(long, default_value_t = 60)]
    pub overload_seconds: u64,
    /// Its share of the measured ingest rate.
    #[arg(long, default_value_t = 2.0)]
    pub overload_share: f64,
    /// Decisions per second mixed in.
    #[arg(long, default_value_t = 20.0)]
    pub decisions_per_second: f64,
    /// DP queries per second mixed in.
    #[arg(long, default_value_t = 2.0)]
    pub queries_per_second: f64,
    /// `[server] max_in_flight` for the served process (its default when not given).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
}

#[derive(Args)]
pub struct CleanroomArgs {
    /// Identifiers on each side.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Identifiers in common.
    #[arg(long, default_value_t = 50_000)]
    pub overlap: usize,
    /// A Python interpreter with `openmined.psi` and `phe` (`scripts/cleanroom-venv.sh`
    /// makes one and prints its path).
    #[arg(long, env = "CONSENTRIC_BENCH_CLEANROOM_PYTHON")]
    pub reference: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct AnalyticsArgs {
    /// Draws timed per sampler.
    #[arg(long, default_value_t = 1_000_000)]
    pub draws: usize,
    /// Releases per accuracy measurement.
    #[arg(long, default_value_t = 1000)]
    pub releases: usize,
    /// A Python interpreter with `diffprivlib` (`scripts/dp-venv.sh` makes one and prints its
    /// path), to release the same values side by side.
    #[arg(long, env = "CONSENTRIC_BENCH_DP_PYTHON")]
    pub reference: Option<std::path::PathBuf>,
    /// Also time the releases over this many customers: CDNOW's customers copied under new
    /// ids (with their real orders) until there are this many, in a store of their own.
    #[arg(long)]
    pub customers: Option<usize>,
}

#[derive(Args)]
pub struct DecideArgs {
    /// Customers.
    #[arg(long, default_value_t = 100_000)]
    pub customers: usize,
    /// Items in the catalogue.
    #[arg(long, default_value_t = 10_000)]
    pub items: usize,
    /// Interactions per customer.
    #[arg(long, default_value_t = 5)]
    pub per_customer: usize,
    /// Decisions measured.
    #[arg(long, default_value_t = 50_000)]
    pub decisions: usize,
    /// Concurrent HTTP clients: one run per value (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub concurrency: Vec<usize>,
    /// Which recommender decides (`als` or `knn`).
    #[arg(long, default_value = "als")]
    pub recommender: String,
}

#[derive(Args)]
pub struct LifecycleArgs {
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// A Python interpreter with `lifetimes` installed (`scripts/lifetimes-venv.sh` makes one
    /// and prints its path), to fit the same data side by side.
    #[arg(long, env = "CONSENTRIC_BENCH_LIFETIMES_PYTHON")]
    pub reference: Option<std::path::PathBuf>,
    /// Events ingested with and without stage updates.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Percent of customers consenting to personalisation (stages are kept only for them).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub consent_share: u8,
}

#[derive(Args)]
pub struct EraseArgs {
    /// Events of the customer to erase.
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Other customers (100 events each), who must stay.
    #[arg(long, default_value_t = 100)]
    pub others: usize,
    /// Erasures measured (each of a fresh customer).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

#[derive(Args)]
pub struct IngestArgs {
    /// Events per measurement.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Also measure PostgreSQL; a database is created there and dropped afterwards
    /// (needs CREATEDB). Example: `host=127.0.0.1 port=5432 user=postgres`.
    #[arg(long, env = "CONSENTRIC_BENCH_PG_URL")]
    pub postgres_url: Option<String>,
    /// Concurrent HTTP connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Skip the CDNOW import measurement.
    #[arg(long)]
    pub skip_import: bool,
    /// SQLite durability for every SQLite measurement: `full` (fsync per commit, the
    /// default) or `normal` (survives process crashes, not power loss).
    #[arg(long, default_value = "full")]
    pub sqlite_synchronous: String,
    /// Percent of customers whose events carry a consent banner's choices (Segment's
    /// `context.consent.categoryPreferences`), recorded in their consent ledgers.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub consent_share: u8,
    /// Store personal columns in the clear, to measure what the vault costs (needs the
    /// `reference` feature).
    #[arg(long)]
    pub no_vault: bool,
    /// How the events' `messageId`s look: `random` (32 pseudo-random hex digits, scattered
    /// as RudderStack's UUIDs, analytics.js's hashes and the mobile SDKs' UUIDs are) or
    /// `sequential` (`bench-a-0`, `bench-a-1`, …, each landing next to
    /// recent ones in the message-id index, which flatters every SQLite figure).
    #[arg(long, value_enum, default_value_t = MessageIds::Random)]
    pub message_ids: MessageIds,
    /// Instead of the usual figures, measure what minimisation and consent signals cost on
    /// each path: the consenting customers' choices sent on every event, against the same
    /// choices recorded before the run (so both keep the same data), and against a reference
    /// engine that does not minimise, with the choices recorded before (so it derives the
    /// same data), side by side.
    #[arg(long)]
    pub consent_ab: bool,
}

/// The shape of the benchmark traffic's message ids (see `IngestArgs::message_ids`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MessageIds {
    /// 32 pseudo-random hex digits: each insert lands on a random page of the message-id
    /// index.
    Random,
    /// A counter: each insert lands next to recent ones in the index.
    Sequential,
}
