//! `consentric operators`: the console's accounts.

use anyhow::{bail, Context};
use consentric_engine::{Engine, Role};

use crate::cli::OperatorsCommand;

/// Who the audit log says acted.
const ACTOR: &str = "cli";

/// The password: `CONSENTRIC_OPERATOR_PASSWORD`, else one line of standard input.
fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("CONSENTRIC_OPERATOR_PASSWORD") {
        return Ok(p);
    }
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("Failed to read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub fn run(engine: &Engine, cmd: OperatorsCommand) -> anyhow::Result<()> {
    match cmd {
        OperatorsCommand::Add { name, role } => {
            let Some(role) = Role::parse(&role) else {
                bail!("--role must be admin, dpo, marketer or analyst, not {role}");
            };
            engine.add_operator(&name, role, &password()?, ACTOR)?;
            eprintln!("added {} operator {name}", role.as_str());
        }
        OperatorsCommand::List => {
            println!("name\trole\ttotp\tdisabled");
            for o in engine.operators()? {
                println!("{}\t{}\t{}\t{}", o.name, o.role, o.totp, o.disabled);
            }
        }
        OperatorsCommand::Passwd { name } => {
            engine.set_operator_password(&name, &password()?, ACTOR)?;
            eprintln!("password set for {name}; their sessions ended");
        }
        OperatorsCommand::Disable { name } => {
            engine.set_operator_disabled(&name, true, ACTOR)?;
            eprintln!("{name} disabled; their sessions ended");
        }
        OperatorsCommand::Enable { name } => {
            engine.set_operator_disabled(&name, false, ACTOR)?;
            eprintln!("{name} enabled");
        }
        OperatorsCommand::Totp { name } => {
            let (secret, uri) = engine.enable_operator_totp(&name, ACTOR)?;
            println!("{secret}");
            println!("{uri}");
            eprintln!("two-factor log-in is on for {name}: add the secret to an authenticator app");
        }
    }
    Ok(())
}
