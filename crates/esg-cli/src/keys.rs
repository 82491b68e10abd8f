//! `esg keys add|list|revoke`: the API key file the server checks uploads
//! against (see `esg_server::auth`). A new key is printed once, on stdout;
//! only its salted SHA-256 is stored. Listing never shows keys or hashes.

use crate::cli::{KeysArgs, KeysCommand};
use anyhow::Context;
use esg_server::auth::{self, KeyFile};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The key file: `--api-keys-file`, else `<data-dir>/api-keys.json`.
pub fn key_file_path(data_dir: &Path, args: &KeysArgs) -> PathBuf {
    args.api_keys_file
        .clone()
        .unwrap_or_else(|| data_dir.join(auth::DEFAULT_FILE_NAME))
}

/// Runs one `esg keys` subcommand on the database's keys when the store is
/// PostgreSQL (every replica sees them), else on the key file.
pub fn run(
    data_dir: &Path,
    store: Option<&dyn esg_store::Store>,
    args: &KeysArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(table) = store.and_then(|s| s.key_table()) {
        return run_in_database(table, args);
    }
    let path = key_file_path(data_dir, args);
    match &args.command {
        KeysCommand::Add { label, json } => {
            let (record, key) = auth::update(&path, |f| f.add(label))
                .with_context(|| format!("cannot add a key to {}", path.display()))?;
            if *json {
                println!(
                    "{}",
                    json!({
                        "id": record.id,
                        "label": record.label,
                        "created_at": record.created_at,
                        "key": key.expose(),
                    })
                );
            } else {
                println!("{}", key.expose());
            }
            eprintln!(
                "Made key {} ({:?}) in {}. It is shown only this once: store it now. \
                 Clients send it as `Authorization: Bearer <key>`.",
                record.id,
                record.label,
                path.display()
            );
        }
        KeysCommand::List { json } => {
            let file = KeyFile::load(&path)?;
            print_list(&file, *json, &path.display().to_string())?;
        }
        KeysCommand::Revoke { id } => {
            let changed = auth::update(&path, |f| f.revoke(id))
                .with_context(|| format!("cannot revoke a key in {}", path.display()))?;
            if changed {
                println!("Revoked key {}.", id.trim());
            } else {
                println!("Key {} was already revoked.", id.trim());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `esg keys` on the `api_keys` table of a PostgreSQL store.
fn run_in_database(table: &dyn esg_store::KeyTable, args: &KeysArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        KeysCommand::Add { label, json } => {
            let (record, key) =
                auth::db_add(table, label).context("cannot add a key to the database")?;
            if *json {
                println!(
                    "{}",
                    json!({
                        "id": record.id,
                        "label": record.label,
                        "created_at": record.created_at,
                        "key": key.expose(),
                    })
                );
            } else {
                println!("{}", key.expose());
            }
            eprintln!(
                "Made key {} ({:?}) in the database; every replica accepts it from its next request. \
                 It is shown only this once: store it now. Clients send it as `Authorization: Bearer <key>`.",
                record.id, record.label,
            );
        }
        KeysCommand::List { json } => {
            let file = auth::db_load(table).context("cannot read the keys in the database")?;
            print_list(&file, *json, "the database")?;
        }
        KeysCommand::Revoke { id } => {
            if auth::db_revoke(table, id).context("cannot revoke a key in the database")? {
                println!(
                    "Revoked key {}; every replica refuses it from its next request.",
                    id.trim()
                );
            } else {
                println!("Key {} was already revoked.", id.trim());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(file: &KeyFile, json: bool, place: &str) -> anyhow::Result<()> {
    if json {
        let rows: Vec<_> = file
            .keys
            .iter()
            .map(|k| {
                json!({
                    "id": k.id,
                    "label": k.label,
                    "created_at": k.created_at,
                    "revoked": k.revoked,
                    "revoked_at": k.revoked_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if file.keys.is_empty() {
        println!("No API keys in {place}. Make one with `esg keys add --label NAME`.");
    } else {
        println!("{:<12}  {:<30}  {:<20}  REVOKED", "ID", "LABEL", "CREATED");
        for k in &file.keys {
            println!(
                "{:<12}  {:<30}  {:<20}  {}",
                k.id,
                k.label,
                k.created_at,
                k.revoked_at
                    .as_deref()
                    .unwrap_or(if k.revoked { "yes" } else { "no" })
            );
        }
    }
    Ok(())
}
