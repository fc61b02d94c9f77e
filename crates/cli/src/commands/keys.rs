use anyhow::Context;
use consentric_engine::{Engine, Scope, Settings};
use consentric_vault::MasterKeys;

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
        KeysCommand::Rotate => rotate_unreachable()?,
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

fn rotate_unreachable() -> anyhow::Result<()> {
    anyhow::bail!("`keys rotate` is dispatched before a store is opened")
}

/// `consentric keys rotate`: begin (or resume) the rotation in the key file, re-wrap every data
/// key, then drop the previous key.
pub fn rotate(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.storage.data_dir;
    let mut master = MasterKeys::load_or_create(dir).context("Cannot read the master keys")?;
    let resumed = master.rotating();
    master
        .begin_rotation()
        .context("Cannot begin the rotation")?;
    drop(master);
    let engine = super::open(settings)?;
    let count = engine.rewrap_data_keys()?;
    drop(engine);
    MasterKeys::load_or_create(dir)?
        .finish_rotation()
        .context("Cannot finish the rotation")?;
    println!(
        "{} the master key: {count} data keys re-wrapped",
        if resumed {
            "resumed and rotated"
        } else {
            "rotated"
        }
    );
    Ok(())
}
