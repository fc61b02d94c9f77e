use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use consentric_engine::Settings;

/// Consentric: a privacy-first customer lifecycle platform.
#[derive(Parser)]
#[command(name = "consentric", version, about)]
pub struct Cli {
    /// Configuration file [default: ./consentric.toml if present; env CONSENTRIC_CONFIG]
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Directory of the embedded SQLite database [default: ./consentric-data; env CONSENTRIC_DATA_DIR]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL at this URL instead of SQLite [env CONSENTRIC_DATABASE_URL]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Import the CDNOW data set that ships with Consentric, then serve it.
    Demo(DemoArgs),
    /// Import events from a file (NDJSON of Segment events, or CDNOW transactions).
    Import(ImportArgs),
    /// Read profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The console's operators: accounts with a role, passwords, two-factor log-in.
    #[command(subcommand)]
    Operators(OperatorsCommand),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Data retention.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Data-subject rights: erasure and its receipts.
    #[command(subcommand)]
    Dsr(DsrCommand),
    /// Lifecycle: stages, value models, cohorts.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Recommenders: training and offline evaluation.
    #[command(subcommand)]
    Recommend(RecommendCommand),
    /// Differentially private analytics: noisy aggregates within a privacy budget.
    #[command(subcommand)]
    Analytics(AnalyticsCommand),
    /// The clean room: private set intersection (and intersection-sum) with a partner.
    #[command(subcommand)]
    Cleanroom(CleanroomCommand),
    /// Decide for a customer: items, the next best action, and why (audited).
    Decide(DecideArgs),
    /// Segments: define, list, size and preview, delete; k-means proposals.
    #[command(subcommand)]
    Segments(SegmentsCommand),
}

#[derive(Subcommand)]
pub enum AnalyticsCommand {
    /// A noisy aggregate, charged to an analyst key's budget, e.g.
    /// '{"query":"histogram","by":"stage","epsilon":0.5}'.
    Query {
        /// The analyst's key id (`keys create --scope analyst` prints it).
        #[arg(long)]
        analyst: String,
        /// The query (JSON): count, sum, mean, quantile, histogram, top_k, funnel or retention;
        /// epsilon or rho (see docs/differential-privacy.md).
        query: String,
    },
    /// An analyst key's budgets.
    Budget {
        /// The analyst's key id.
        #[arg(long)]
        analyst: String,
    },
    /// Grant an analyst key more ρ on a data set (audited).
    Grant {
        /// The analyst's key id.
        #[arg(long)]
        analyst: String,
        /// ρ to add.
        #[arg(long)]
        rho: f64,
        /// The data set.
        #[arg(long, default_value = "customers")]
        dataset: String,
    },
}

#[derive(Subcommand)]
pub enum CleanroomCommand {
    /// Invite a partner: prints the session id and its token (shown once) for them to join.
    Invite {
        /// Who the partner is (recorded and audited).
        #[arg(long)]
        partner: String,
        /// Also reveal which of our customers are in common (default: only how many).
        #[arg(long)]
        matches: bool,
        /// Also learn the sum of the partner's values (their customers' revenue) over the
        /// intersection.
        #[arg(long)]
        sum: bool,
    },
    /// Record a partner's invitation to run later.
    Join {
        /// The host's base URL, e.g. https://partner.example.
        #[arg(long)]
        host: String,
        /// The session id they gave.
        #[arg(long)]
        session: String,
        /// The session token they gave.
        #[arg(long)]
        token: String,
        /// Who the host is.
        #[arg(long)]
        partner: String,
        /// The host said the session reveals which of its customers are in common.
        #[arg(long)]
        matches: bool,
        /// The host said it sums our customers' revenue over the intersection.
        #[arg(long)]
        sum: bool,
    },
    /// Run a joined session against its host.
    Run {
        /// The session id.
        session: String,
    },
    /// A session's state and what it revealed (every session without an id).
    Status {
        /// The session id.
        session: Option<String>,
    },
}

#[derive(Args)]
pub struct DecideArgs {
    /// The customer: user_id:…, anonymous_id:…, profile:… or a bare id.
    pub customer: String,
    /// Where the answer will be shown.
    #[arg(long, default_value = "default")]
    pub placement: String,
    /// Items wanted.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Show the decision without recording it (no cap or cooldown is spent; still audited).
    #[arg(long)]
    pub preview: bool,
}

#[derive(Subcommand)]
pub enum SegmentsCommand {
    /// Define (or redefine) a segment from a JSON condition, e.g.
    /// '{"all":[{"field":"stage","op":"eq","value":"retention"},{"field":"orders","op":"gte","value":3}]}'.
    Define {
        /// Its name.
        name: String,
        /// The condition (JSON).
        condition: String,
    },
    /// Every segment.
    List,
    /// A segment's members as kept up to date (size, longest members first).
    Members {
        /// Its name.
        name: String,
        /// Members to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Re-evaluate membership of customers written to since the last refresh (`--all`:
    /// everyone).
    Refresh {
        /// Every customer.
        #[arg(long)]
        all: bool,
    },
    /// A segment's size and first members, evaluated now (audited).
    Show {
        /// Its name.
        name: String,
        /// Members to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Delete a segment.
    Delete {
        /// Its name.
        name: String,
    },
    /// Clusters of customers by behaviour (k-means, k chosen by silhouette).
    Propose {
        /// Largest k tried.
        #[arg(long, default_value_t = 8)]
        max_k: usize,
    },
}

#[derive(Subcommand)]
pub enum RecommendCommand {
    /// Train popularity, item-kNN and ALS on the interactions of customers with a basis for
    /// personalisation, and decide with them from now on (audited).
    Train,
    /// Train popularity, item-kNN and ALS on a split of MovieLens (or any RecBole `.inter`
    /// file) and score their top-k lists: precision, recall, NDCG, catalogue coverage; with
    /// `--reference`, `implicit`'s ALS side by side at the same parameters.
    Evaluate(RecommendEvaluateArgs),
}

#[derive(Args)]
pub struct RecommendEvaluateArgs {
    /// The interactions (RecBole `.inter`); `scripts/movielens.sh` fetches MovieLens 100k.
    #[arg(long, default_value = "target/movielens/ml-100k.inter")]
    pub data: PathBuf,
    /// `last` (each user's latest interaction is the test) or `time` (the latest share of
    /// all interactions).
    #[arg(long, default_value = "last")]
    pub split: String,
    /// Share held out by the time split.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Cut-off of the lists.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Ratings below this are not interactions (0 keeps all).
    #[arg(long, default_value_t = 0.0)]
    pub min_rating: f32,
    /// ALS latent factors.
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    /// ALS regularisation λ.
    #[arg(long, default_value_t = 0.05)]
    pub regularization: f32,
    /// ALS confidence per unit of strength.
    #[arg(long, default_value_t = 10.0)]
    pub alpha: f32,
    /// ALS iterations.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// Conjugate-gradient steps per row.
    #[arg(long, default_value_t = 3)]
    pub cg_steps: usize,
    /// Seeds to train ALS with (seed, seed+1, …); metrics are averaged over them.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Item-kNN neighbours per item.
    #[arg(long, default_value_t = 100)]
    pub neighbours: usize,
    /// Item-kNN shrinkage.
    #[arg(long, default_value_t = 10.0)]
    pub shrinkage: f32,
    /// A Python interpreter with `implicit` (`scripts/implicit-venv.sh` makes one and prints
    /// its path), to train the same split side by side.
    #[arg(long, env = "CONSENTRIC_BENCH_IMPLICIT_PYTHON")]
    pub reference: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum LifecycleCommand {
    /// Fit BG/NBD, Pareto/NBD and Gamma-Gamma on the purchases of customers with a basis for
    /// the analytics purpose, and store them (audited).
    Fit,
    /// Place every customer afresh by the stage rules, as of now or `[lifecycle] as_of`.
    Recompute,
    /// The funnel, cohort retention and fitted models (analytics purpose).
    Report {
        /// Print the whole summary as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// One customer's stage, history and scores (stage purpose).
    Show {
        /// `user:<id>`, `anon:<id>`, `profile:<id>` or a bare id.
        who: String,
    },
}

#[derive(Subcommand)]
pub enum DsrCommand {
    /// Erase a customer (by user id, anonymous id or profile id) and print the signed receipt.
    Erase {
        /// `user:<id>`, `anon:<id>`, `profile:<id>` or a bare id.
        who: String,
    },
    /// Check a receipt (a file written by `dsr erase`, or `-` for standard input).
    VerifyReceipt {
        /// The receipt file.
        file: PathBuf,
        /// The deployment's receipt key (hex); by default this deployment's own.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the public key receipts are signed with.
    PublicKey,
    /// File a request for a customer; a one-time code goes to their contact address.
    Request {
        /// `access`, `erasure`, `restriction` or `objection`.
        #[arg(long)]
        kind: String,
        /// `gdpr` (30 days) or `ccpa` (45 days).
        #[arg(long, default_value = "gdpr")]
        regime: String,
        /// `user_id:<id>` or `anonymous_id:<id>`.
        #[arg(long)]
        identity: String,
        /// Where the code is sent.
        #[arg(long)]
        contact: String,
    },
    /// Verify a request with the customer's code.
    Verify {
        /// `dsr_…`.
        id: String,
        /// The code.
        code: String,
    },
    /// Carry out a verified request (an access request's export goes to --out or stdout).
    Process {
        /// `dsr_…`.
        id: String,
        /// Where an access export goes.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List requests, oldest deadline first.
    List {
        /// Only open requests past their deadline.
        #[arg(long)]
        overdue: bool,
    },
    /// Show one request.
    Show {
        /// `dsr_…`.
        id: String,
    },
    /// Extend a request's deadline (GDPR: up to 60 days; CCPA: up to 45).
    Extend {
        /// `dsr_…`.
        id: String,
        /// Days to add.
        #[arg(long)]
        days: i64,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Correct one of a customer's traits (GDPR art. 16).
    Rectify {
        /// `user_id:<id>`, `anonymous_id:<id>`, `profile:<id>` or a bare id.
        who: String,
        /// The trait.
        name: String,
        /// The corrected value, as JSON (`'"Ada"'`, `42`).
        value: String,
    },
    /// Restrict processing of a customer's data (GDPR art. 18), or lift the restriction.
    Restrict {
        /// `user_id:<id>`, `anonymous_id:<id>`, `profile:<id>` or a bare id.
        who: String,
        /// Lift the restriction instead.
        #[arg(long)]
        lift: bool,
    },
    /// Write everything held about a customer as one JSON document (art. 15 and 20).
    Export {
        /// `user_id:<id>`, `anonymous_id:<id>`, `profile:<id>` or a bare id.
        who: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// `json` (one document) or `zip` (CSV files).
        #[arg(long, default_value = "json")]
        format: String,
    },
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Delete what has outlived every purpose that may keep it (audited).
    Run,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the chain; exit 1 and name the first broken record if it was tampered with.
    Verify(AuditVerifyArgs),
}

#[derive(Args)]
pub struct AuditVerifyArgs {
    /// A head printed by an earlier `audit verify` (`SEQ:HASH`), kept outside the database;
    /// detects the log being cut off or recomputed since. May be repeated.
    #[arg(long = "anchor", value_name = "SEQ:HASH")]
    pub anchors: Vec<consentric_engine::AuditAnchor>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7878; env CONSENTRIC_LISTEN]
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Address to listen on [default: 127.0.0.1:7878; env CONSENTRIC_LISTEN]
    #[arg(long)]
    pub listen: Option<String>,
    /// Import and print, but do not serve.
    #[arg(long)]
    pub no_serve: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The file to read (`-` for standard input).
    pub file: PathBuf,
    /// `ndjson` (one Segment event per line) or `cdnow`.
    #[arg(long, default_value = "ndjson")]
    pub format: String,
    /// CDNOW only: record that each customer granted these purposes (comma-separated ids),
    /// for history whose consent was collected elsewhere.
    #[arg(long, value_delimiter = ',')]
    pub consent: Vec<String>,
    /// CDNOW and MovieLens only: move every date this many days later (history from the past
    /// made recent, as the demo does so that its data ends today).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub shift_days: i64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Print a profile as JSON: `user_id:…`, `anonymous_id:…`, `profile:…` or a bare id.
    Show {
        /// Who.
        id: String,
        /// Also print the latest events.
        #[arg(long, default_value_t = 0)]
        events: u32,
    },
    /// Print the identity graph around a profile: its identities and how they were linked.
    Graph {
        /// Who.
        id: String,
    },
}

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Add an operator. The password is read from standard input (one line), or from
    /// `CONSENTRIC_OPERATOR_PASSWORD`; at least 12 characters.
    Add {
        /// Log-in name: 1–32 of a-z, 0-9 and _.
        name: String,
        /// `admin`, `dpo`, `marketer` or `analyst`.
        #[arg(long)]
        role: String,
    },
    /// List operators: name, role, two-factor, disabled.
    List,
    /// Set an operator's password (read as for `add`); their sessions end.
    Passwd {
        /// The operator.
        name: String,
    },
    /// Disable an operator: they cannot log in, and their sessions end.
    Disable {
        /// The operator.
        name: String,
    },
    /// Enable a disabled operator.
    Enable {
        /// The operator.
        name: String,
    },
    /// Turn on two-factor log-in (TOTP, RFC 6238): prints the secret and an `otpauth://` URI
    /// for an authenticator app.
    Totp {
        /// The operator.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Rotate the master key-encryption key: a new one is made and every customer's data key
    /// re-wrapped under it (stop `serve` first). An interrupted rotation resumes when run again.
    Rotate,
    /// Create a key and print its secret (shown only this once).
    Create {
        /// `write` (ingest only), `admin` (everything) or `analyst` (DP aggregates only).
        #[arg(long)]
        scope: String,
        /// For a write key: `browser` (the default: public, embedded in web pages) or `server`
        /// (secret, for backend SDKs). Other scopes are server keys.
        #[arg(long)]
        kind: Option<String>,
        /// A label to recognise it by.
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys (never their secrets): id, scope, kind, created, last used, revoked, label.
    List,
    /// Revoke a key: every process on the store refuses it within a second.
    Revoke {
        /// The key's public id.
        id: String,
    },
    /// Make a write key a browser key (public) or a server key (secret).
    SetKind {
        /// The key's public id.
        id: String,
        /// `browser` or `server`.
        kind: String,
    },
    /// Print the identity secret a site's backend signs user ids with: the user hash is
    /// `hex(HMAC-SHA256(secret, userId))`, sent as `context.userHash`.
    IdentitySecret,
}

impl Cli {
    /// Defaults < file < environment < these flags.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut settings = Settings::from_env(self.config.as_deref())
            .context("Failed to load the configuration")?;
        if let Some(d) = &self.data_dir {
            settings.storage.data_dir = d.clone();
        }
        if let Some(u) = &self.database_url {
            settings.storage.database_url = Some(u.clone());
        }
        if let Command::Serve(ServeArgs { listen: Some(l) })
        | Command::Demo(DemoArgs {
            listen: Some(l), ..
        }) = &self.command
        {
            settings.server.listen = l.clone();
        }
        Ok(settings)
    }

    /// Commands whose output is the point log only warnings unless asked otherwise.
    pub fn quiet_logs(&self) -> bool {
        !matches!(self.command, Command::Serve(_) | Command::Demo(_))
    }
}
