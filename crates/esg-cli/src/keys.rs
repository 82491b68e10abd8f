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

/// Runs one `esg keys` subcommand.
pub fn run(data_dir: &Path, args: &KeysArgs) -> anyhow::Result<ExitCode> {
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
            if *json {
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
                println!(
                    "No API keys in {}. Make one with `esg keys add --label NAME`.",
                    path.display()
                );
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
