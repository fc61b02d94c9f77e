//! One file per command.

mod decide;
mod demo;
mod dsr;
mod import;
mod keys;
mod lifecycle;
mod operators;
mod profile;
mod recommend;
mod serve;

use std::sync::Arc;

use anyhow::Context;
use consentric_engine::{AuditAnchor, Engine, Settings};

use crate::cli::{AuditCommand, Command, KeysCommand, RecommendCommand, RetentionCommand};

pub fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => serve::run(open(&settings)?, &settings),
        Command::Demo(args) => {
            // The demo's data ends today; a lifecycle computed as of another day would place
            // its customers in another time.
            let mut settings = settings;
            if let Some(day) = settings.lifecycle.as_of.take() {
                eprintln!(
                    "note: the demo ignores [lifecycle] as_of = {day} (CONSENTRIC_LIFECYCLE_AS_OF): its data ends today"
                );
            }
            demo::run(open(&settings)?, &settings, &args)
        }
        Command::Import(args) => import::run(&*open(&settings)?, &args),
        Command::Profile(cmd) => profile::run(&*open(&settings)?, cmd),
        Command::Keys(KeysCommand::Rotate) => keys::rotate(&settings),
        Command::Keys(cmd) => keys::run(&*open(&settings)?, cmd),
        Command::Operators(cmd) => operators::run(&*open(&settings)?, cmd),
        Command::Audit(AuditCommand::Verify(args)) => {
            audit_verify(&*open(&settings)?, &args.anchors)
        }
        Command::Dsr(cmd) => dsr::run(&settings, cmd),
        Command::Lifecycle(cmd) => lifecycle::run(&*open(&settings)?, cmd),
        Command::Recommend(RecommendCommand::Evaluate(args)) => recommend::evaluate(&args),
        Command::Recommend(RecommendCommand::Train) => decide::train(&*open(&settings)?),
        Command::Decide(args) => decide::decide(&*open(&settings)?, &args),
        Command::Analytics(cmd) => analytics(&*open(&settings)?, cmd),
        Command::Cleanroom(cmd) => cleanroom(open(&settings)?, cmd),
        Command::Segments(cmd) => decide::segments(&*open(&settings)?, cmd),
        Command::Retention(RetentionCommand::Run) => {
            let report = open(&settings)?.sweep_retention("cli")?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}

fn analytics(engine: &Engine, cmd: crate::cli::AnalyticsCommand) -> anyhow::Result<()> {
    use crate::cli::AnalyticsCommand as A;
    let out = match cmd {
        A::Query { analyst, query } => {
            let request = serde_json::from_str(&query).context("the query must be JSON")?;
            serde_json::to_value(engine.analytics_query(&analyst, &request)?)?
        }
        A::Budget { analyst } => serde_json::to_value(engine.analytics_budget(&analyst)?)?,
        A::Grant {
            analyst,
            rho,
            dataset,
        } => serde_json::to_value(engine.grant_budget(&analyst, &dataset, rho, "cli")?)?,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn cleanroom(engine: Arc<Engine>, cmd: crate::cli::CleanroomCommand) -> anyhow::Result<()> {
    use crate::cli::CleanroomCommand as C;
    use consentric_engine::cleanroom::Output;
    let out = match cmd {
        C::Invite {
            partner,
            matches,
            sum,
        } => {
            let output = if matches {
                Output::Matches
            } else {
                Output::Cardinality
            };
            serde_json::to_value(engine.cleanroom_invite(&partner, output, sum, "cli")?)?
        }
        C::Join {
            host,
            session,
            token,
            partner,
            matches,
            sum,
        } => {
            let joining = consentric_engine::cleanroom::Joining {
                host_url: host,
                session,
                token,
                partner,
                output: if matches {
                    Output::Matches
                } else {
                    Output::Cardinality
                },
                sum,
            };
            serde_json::to_value(engine.cleanroom_join(&joining, "cli")?)?
        }
        C::Run { session } => {
            serve::runtime()?
                .block_on(consentric_server::partner::run(engine.clone(), &session))
                .with_context(|| format!("clean-room session {session}"))?;
            serde_json::to_value(engine.cleanroom_session(&session)?)?
        }
        C::Status { session: Some(s) } => serde_json::to_value(engine.cleanroom_session(&s)?)?,
        C::Status { session: None } => serde_json::to_value(engine.cleanroom_sessions()?)?,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub(crate) fn open(settings: &Settings) -> anyhow::Result<Arc<Engine>> {
    let engine = Engine::open(settings).with_context(|| match &settings.storage.database_url {
        Some(_) => "Failed to open the PostgreSQL store".to_owned(),
        None => format!(
            "Failed to open the SQLite store in {}",
            settings.storage.data_dir.display()
        ),
    })?;
    Ok(Arc::new(engine))
}

fn audit_verify(engine: &Engine, anchors: &[AuditAnchor]) -> anyhow::Result<()> {
    let v = engine.verify_audit_against(anchors)?;
    match v.first_break {
        None => {
            println!("audit chain intact: {} records", v.records);
            if v.unkeyed > 0 {
                println!(
                    "{} records at its start carry no MAC (written without the master keys): only those could have been recomputed by someone without the keys",
                    v.unkeyed
                );
            }
            if let Some(head) = v.head {
                println!(
                    "head: {}:{} (keep it outside the database; `audit verify --anchor {}:{}` later detects truncation)",
                    head.seq, head.hash, head.seq, head.hash
                );
            }
            Ok(())
        }
        Some(b) => {
            println!("audit chain BROKEN after {} good records: {b}", v.records);
            std::process::exit(1);
        }
    }
}

/// Peak resident memory of this process so far, in bytes (Linux; `None` elsewhere).
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
