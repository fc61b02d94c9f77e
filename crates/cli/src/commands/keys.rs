use anyhow::Context;
use consentric_engine::{Engine, KeyKind, Scope, Settings};
use consentric_vault::MasterKeys;

use crate::cli::KeysCommand;

pub fn run(engine: &Engine, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create { scope, kind, label } => {
            let scope = Scope::parse(&scope)?;
            let key = match kind {
                Some(kind) => {
                    engine.create_key_of_kind(scope, KeyKind::parse(&kind)?, label.as_deref())?
                }
                None => engine.create_key(scope, label.as_deref())?,
            };
            println!("{}", key.secret());
            eprintln!(
                "created {} key {}; the secret above is shown only once",
                key.scope.as_str(),
                key.key_id
            );
        }
        KeysCommand::Rotate => rotate_unreachable()?,
        KeysCommand::List => {
            println!("id\tscope\tkind\tcreated\tlast used\trevoked\tlabel");
            for k in engine.keys()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    k.key_id,
                    k.scope,
                    k.kind,
                    k.created_at,
                    k.last_used_at.as_deref().unwrap_or("-"),
                    k.revoked_at.as_deref().unwrap_or("-"),
                    k.label.unwrap_or_default()
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let k = engine.revoke_key(&id, "cli")?;
            eprintln!(
                "key {} revoked at {}",
                k.key_id,
                k.revoked_at.unwrap_or_default()
            );
        }
        KeysCommand::SetKind { id, kind } => {
            let k = engine.set_key_kind(&id, KeyKind::parse(&kind)?, "cli")?;
            eprintln!("key {} is now a {} key", k.key_id, k.kind);
        }
        KeysCommand::IdentitySecret => println!("{}", engine.identity_secret()?),
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
