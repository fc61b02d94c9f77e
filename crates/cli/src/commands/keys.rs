use consentric_engine::{Engine, Scope};

use crate::cli::KeysCommand;

pub fn run(engine: &Engine, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create { scope, label } => {
            let key = engine.create_key(Scope::parse(&scope)?, label.as_deref())?;
            println!("{}", key.secret());
            eprintln!(
                "created {} key {}; the secret above is shown only once",
                key.scope.as_str(),
                key.key_id
            );
        }
        KeysCommand::List => {
            for k in engine.keys()? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.key_id,
                    k.scope,
                    k.created_at,
                    k.label.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
