use std::io::Read;

use anyhow::{bail, Context};
use std::sync::Arc;

use consentric_engine::{DsrKind, Engine, ErasureReceipt, Outbox, ProfileRef, Regime, Settings};

use crate::cli::DsrCommand;

pub fn run(settings: &Settings, cmd: DsrCommand) -> anyhow::Result<()> {
    match cmd {
        DsrCommand::Erase { who } => {
            let engine = super::open(settings)?;
            let receipt = engine
                .erase(&ProfileRef::parse(&who)?, "cli")
                .with_context(|| format!("Could not erase {who}"))?;
            println!("{}", serde_json::to_string_pretty(&receipt)?);
        }
        DsrCommand::Export { who, out, format } => {
            let zip = match format.as_str() {
                "json" => false,
                "zip" => true,
                other => bail!("--format must be json or zip, not {other}"),
            };
            let engine = super::open(settings)?;
            let who_ref = ProfileRef::parse(&who)?;
            let write = |w: &mut dyn std::io::Write| {
                if zip {
                    engine.export_zip(&who_ref, "cli", w)
                } else {
                    engine.export(&who_ref, "cli", w)
                }
            };
            let events = match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("Cannot write {}", path.display()))?;
                    write(&mut std::io::BufWriter::new(file))?
                }
                None => write(&mut std::io::BufWriter::new(std::io::stdout().lock()))?,
            };
            eprintln!("exported {who}: {events} events");
        }
        DsrCommand::Rectify { who, name, value } => {
            let value: serde_json::Value = serde_json::from_str(&value)
                .with_context(|| format!("the value must be JSON (a string in quotes): {value}"))?;
            let view =
                super::open(settings)?.rectify(&ProfileRef::parse(&who)?, &name, &value, "cli")?;
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
        DsrCommand::Restrict { who, lift } => {
            let view = super::open(settings)?.restrict(&ProfileRef::parse(&who)?, !lift, "cli")?;
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
        DsrCommand::Request {
            kind,
            regime,
            identity,
            contact,
        } => {
            let kind: DsrKind = serde_json::from_value(serde_json::Value::String(kind.clone()))
                .with_context(|| {
                    format!("--kind must be access, erasure or restriction, not {kind}")
                })?;
            let regime: Regime = serde_json::from_value(serde_json::Value::String(regime.clone()))
                .with_context(|| format!("--regime must be gdpr or ccpa, not {regime}"))?;
            let ProfileRef::Identity(identity) = ProfileRef::parse(&identity)? else {
                bail!("--identity must be user_id:<id> or anonymous_id:<id>");
            };
            let outbox = Arc::new(Outbox::default());
            let engine = match &settings.notify.smtp {
                Some(_) => Engine::open(settings)?,
                None => Engine::open(settings)?.with_notifier(outbox.clone()),
            };
            let view = engine.dsr_request(kind, regime, &identity, &contact, "cli")?;
            println!("{}", serde_json::to_string_pretty(&view)?);
            // No mail system is configured: the operator passes the code on.
            for m in outbox.messages() {
                eprintln!(
                    "no notifier configured; deliver this to {}:\n{}",
                    m.to, m.body
                );
            }
        }
        DsrCommand::Verify { id, code } => {
            let view = super::open(settings)?.dsr_verify(&id, &code, "cli")?;
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
        DsrCommand::Process { id, out } => {
            let engine = super::open(settings)?;
            let view = match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("Cannot write {}", path.display()))?;
                    engine.dsr_process(&id, "cli", &mut std::io::BufWriter::new(file))?
                }
                None => engine.dsr_process(&id, "cli", &mut std::io::stdout().lock())?,
            };
            eprintln!("{}", serde_json::to_string_pretty(&view)?);
        }
        DsrCommand::List { overdue } => {
            for v in super::open(settings)?.dsr_list(overdue)? {
                println!(
                    "{}\t{}\t{}\t{}\tdue {}{}",
                    v.request_id,
                    v.kind,
                    v.regime,
                    v.status,
                    v.due_at,
                    if v.overdue { "\tOVERDUE" } else { "" }
                );
            }
        }
        DsrCommand::Show { id } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&super::open(settings)?.dsr_show(&id)?)?
            );
        }
        DsrCommand::Extend { id, days, reason } => {
            let view = super::open(settings)?.dsr_extend(&id, days, &reason, "cli")?;
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
        DsrCommand::PublicKey => {
            println!("{}", super::open(settings)?.receipt_public_key()?);
        }
        DsrCommand::VerifyReceipt { file, public_key } => {
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&file)
                    .with_context(|| format!("Cannot read {}", file.display()))?;
            }
            let receipt: ErasureReceipt =
                serde_json::from_str(&text).context("Not an erasure receipt")?;
            let key = match public_key {
                Some(k) => k,
                None => super::open(settings)?.receipt_public_key()?,
            };
            if key.trim() != receipt.public_key.trim() {
                bail!("receipt NOT valid: it names another signing key than this deployment's");
            }
            let body = receipt
                .verify(&key)
                .map_err(|e| anyhow::anyhow!("receipt NOT valid: {e}"))?;
            println!(
                "receipt valid: {} erased {} ({} events, {} traits, {} identities, {} data keys)",
                body.receipt_id,
                body.erased_at,
                body.erased.events,
                body.erased.traits,
                body.erased.identities,
                body.erased.data_keys
            );
        }
    }
    Ok(())
}
