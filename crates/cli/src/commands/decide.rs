//! `consentric recommend train`, `decide` and `segments …`.

use anyhow::Context;
use consentric_engine::{Engine, ProfileRef, TrainReport};

use crate::cli::{DecideArgs, SegmentsCommand};

pub fn train(engine: &Engine) -> anyhow::Result<()> {
    print_train(&engine.train_recommenders("cli")?);
    Ok(())
}

pub(crate) fn print_train(r: &TrainReport) {
    println!(
        "trained on {} customers ({} left out without a basis for {} or without interactions): {} items, {} interactions, ALS {}",
        r.customers,
        r.left_out,
        r.purpose,
        r.items,
        r.interactions,
        match r.als_iteration_seconds {
            Some(s) if r.als => format!("{:.1} ms per iteration", s * 1000.0),
            _ if r.als => "trained".to_owned(),
            _ => "not trained (too little data)".to_owned(),
        }
    );
    if let (Some(from), Some(to)) = (&r.window_from, &r.window_to) {
        println!("data window: {from} .. {to}");
    }
}

pub fn decide(engine: &Engine, args: &DecideArgs) -> anyhow::Result<()> {
    let who = ProfileRef::parse(&args.customer)?;
    let d = if args.preview {
        engine.preview_decision(&who, &args.placement, args.limit, "cli")?
    } else {
        engine.decide(&who, &args.placement, args.limit, "cli")?
    };
    println!("{}", serde_json::to_string_pretty(&d)?);
    Ok(())
}

pub fn segments(engine: &Engine, cmd: SegmentsCommand) -> anyhow::Result<()> {
    let out = match cmd {
        SegmentsCommand::Define { name, condition } => {
            let json: serde_json::Value =
                serde_json::from_str(&condition).context("the condition must be JSON")?;
            serde_json::to_value(engine.define_segment(&name, &json, "cli")?)?
        }
        SegmentsCommand::List => serde_json::to_value(engine.segments()?)?,
        SegmentsCommand::Show { name, limit } => {
            serde_json::to_value(engine.preview_segment(&name, limit, "cli")?)?
        }
        SegmentsCommand::Members { name, limit } => {
            serde_json::to_value(engine.segment_members(&name, limit)?)?
        }
        SegmentsCommand::Refresh { all } => {
            serde_json::to_value(engine.refresh_segments(all, "cli")?)?
        }
        SegmentsCommand::Delete { name } => {
            engine.delete_segment(&name, "cli")?;
            serde_json::json!({"deleted": name})
        }
        SegmentsCommand::Propose { max_k } => {
            serde_json::to_value(engine.propose_segments(max_k, "cli")?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
