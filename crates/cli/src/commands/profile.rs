use anyhow::Context;
use consentric_engine::{Engine, ProfileRef};
use serde_json::json;

use crate::cli::ProfileCommand;

pub fn run(engine: &Engine, cmd: ProfileCommand) -> anyhow::Result<()> {
    match cmd {
        ProfileCommand::Show { id, events } => {
            let who = ProfileRef::parse(&id)?;
            let profile = engine
                .profile(&who, "cli")
                .with_context(|| format!("No profile for {id}"))?;
            let mut out = json!({ "profile": profile });
            if events > 0 {
                out["events"] = json!(engine.events(&who, events, "cli")?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        ProfileCommand::Graph { id } => {
            let graph = engine
                .identity_graph(&ProfileRef::parse(&id)?, "cli")
                .with_context(|| format!("No profile for {id}"))?;
            println!("{}", serde_json::to_string_pretty(&graph)?);
        }
    }
    Ok(())
}
