//! API keys: a JSON file of salted SHA-256 digests (managed by `esg keys
//! add/list/revoke`) and the check of a presented `Authorization: Bearer`
//! token.
//!
//! A key is `esg_<id>_<secret>`: `id` is 12 lowercase hex digits (public,
//! shown by `esg keys list`), `secret` 64 lowercase hex digits (256 bits from
//! the operating system's random source). The file keeps, per key, the id, a
//! label, the creation time, a 16-byte random salt and
//! `sha256(salt || key)` in hex; never the key. A presented token is parsed
//! for its id, hashed with that record's salt, and the two digests are
//! compared in constant time ([`subtle`]).
//!
//! The file is written atomically (a temporary file in the same directory,
//! mode 0600, fsync, rename) under an advisory lock, so concurrent `esg keys`
//! commands do not lose each other's changes. The server re-reads it when its
//! size, modification time or inode change, so keys added or revoked while
//! it runs take effect at the next request.

use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq as _;

/// File name of the key file inside the data directory.
pub const DEFAULT_FILE_NAME: &str = "api-keys.json";
/// Prefix of every key.
pub const KEY_PREFIX: &str = "esg_";
/// Format version written in the file.
pub const FILE_FORMAT: u32 = 1;
/// Longest label accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;
const SALT_BYTES: usize = 16;

/// Why a key file could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file exists but cannot be read.
    #[error("cannot read the API key file {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid key file.
    #[error("the API key file {path} is not valid: {message}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The file (or its directory, temporary file or lock) cannot be written.
    #[error("cannot write the API key file {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// No key has this id.
    #[error("no API key has the id {0:?} (see `esg keys list`)")]
    UnknownId(String),
    /// The label is empty, too long or has control characters.
    #[error("the label must be 1 to {MAX_LABEL_CHARS} characters without control characters")]
    BadLabel,
    /// The keys are in the database, which failed.
    #[error("API keys in the database: {0}")]
    Database(String),
}

/// One key as stored: public facts and the salted digest, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public id (12 lowercase hex digits), also embedded in the key.
    pub id: String,
    /// What the key is for (free text).
    pub label: String,
    /// When the key was made (UTC, RFC 3339).
    pub created_at: String,
    /// 16 random bytes, hex.
    pub salt: String,
    /// `sha256(salt bytes || key bytes)`, hex.
    pub sha256: String,
    /// `true` once revoked: the key is refused (403).
    #[serde(default)]
    pub revoked: bool,
    /// When the key was revoked (UTC, RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A key in clear, as handed out once by [`KeyFile::add`]. Its `Debug`
/// does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key to give to the client (`esg_<id>_<secret>`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The outcome of checking a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A current key: its id.
    Valid(String),
    /// Not a key on file (or not a key at all).
    Invalid,
    /// A key on file that was revoked: its id.
    Revoked(String),
}

/// The key file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// [`FILE_FORMAT`].
    pub format: u32,
    /// Every key ever made here, revoked ones included.
    pub keys: Vec<ApiKeyRecord>,
}

impl Default for KeyFile {
    fn default() -> Self {
        KeyFile {
            format: FILE_FORMAT,
            keys: Vec::new(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !is_lower_hex(s) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(buf)
}

/// `sha256(salt || key)` in hex.
fn digest(salt: &[u8], key: &str) -> String {
    let mut input = Vec::with_capacity(salt.len() + key.len());
    input.extend_from_slice(salt);
    input.extend_from_slice(key.as_bytes());
    esg_core::sha256_hex(&input)
}

/// The id inside `esg_<12 hex>_<64 hex>`, or `None` when `token` does not
/// have that form.
pub fn parse_key_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let ok = id.len() == ID_BYTES * 2
        && secret.len() == SECRET_BYTES * 2
        && is_lower_hex(id)
        && is_lower_hex(secret);
    ok.then_some(id)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl KeyFile {
    /// Reads `path`; a missing file is an empty key file.
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid key file.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeyFile::default()),
            Err(source) => {
                return Err(AuthError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let invalid = |message: String| AuthError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        file.validate().map_err(invalid)?;
        Ok(file)
    }

    fn validate(&self) -> Result<(), String> {
        if self.format != FILE_FORMAT {
            return Err(format!(
                "format {} is not supported (expected {FILE_FORMAT})",
                self.format
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            let bad = |what: &str| format!("keys[{i}].{what}");
            if k.id.len() != ID_BYTES * 2 || !is_lower_hex(&k.id) {
                return Err(format!(
                    "{}: must be {} hex digits",
                    bad("id"),
                    ID_BYTES * 2
                ));
            }
            if !seen.insert(k.id.as_str()) {
                return Err(format!("{}: {} appears twice", bad("id"), k.id));
            }
            if unhex(&k.salt).is_none_or(|s| s.len() != SALT_BYTES) {
                return Err(format!(
                    "{}: must be {} hex digits",
                    bad("salt"),
                    SALT_BYTES * 2
                ));
            }
            if k.sha256.len() != 64 || !is_lower_hex(&k.sha256) {
                return Err(format!("{}: must be 64 hex digits", bad("sha256")));
            }
        }
        Ok(())
    }

    /// Writes the file atomically: a temporary file (mode 0600) in the same
    /// directory, fsync, rename over `path`, fsync of the directory. The
    /// directory is created (mode 0700) when missing.
    ///
    /// # Errors
    /// When any step fails; `path` is then unchanged.
    pub fn save(&self, path: &Path) -> Result<(), AuthError> {
        let werr = |source: std::io::Error| AuthError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = parent_dir(path);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(werr)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".api-keys.")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&dir)
            .map_err(werr)?;
        let mut text = serde_json::to_string_pretty(self).map_err(|e| werr(e.into()))?;
        text.push('\n');
        tmp.write_all(text.as_bytes()).map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(path).map_err(|e| werr(e.error))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Makes a new key labelled `label` and returns it with its record. The
    /// key exists only in the returned [`ApiKey`]: show it once.
    ///
    /// # Errors
    /// A bad label, or a failing random source.
    pub fn add(&mut self, label: &str) -> Result<(ApiKeyRecord, ApiKey), AuthError> {
        let label = label.trim();
        if label.is_empty()
            || label.chars().count() > MAX_LABEL_CHARS
            || label.chars().any(char::is_control)
        {
            return Err(AuthError::BadLabel);
        }
        let id = loop {
            let id = hex(&random::<ID_BYTES>()?);
            if !self.keys.iter().any(|k| k.id == id) {
                break id;
            }
        };
        let key = format!("{KEY_PREFIX}{id}_{}", hex(&random::<SECRET_BYTES>()?));
        let salt = random::<SALT_BYTES>()?;
        let record = ApiKeyRecord {
            id,
            label: label.to_string(),
            created_at: now_rfc3339(),
            salt: hex(&salt),
            sha256: digest(&salt, &key),
            revoked: false,
            revoked_at: None,
        };
        self.keys.push(record.clone());
        Ok((record, ApiKey(key)))
    }

    /// Revokes the key `id`; returns `false` when it already was.
    ///
    /// # Errors
    /// [`AuthError::UnknownId`].
    pub fn revoke(&mut self, id: &str) -> Result<bool, AuthError> {
        let id = id.trim();
        let k = self
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| AuthError::UnknownId(id.to_string()))?;
        if k.revoked {
            return Ok(false);
        }
        k.revoked = true;
        k.revoked_at = Some(now_rfc3339());
        Ok(true)
    }

    /// Keys not revoked.
    pub fn active(&self) -> usize {
        self.keys.iter().filter(|k| !k.revoked).count()
    }

    /// Checks a presented token: its id picks the record, and the salted
    /// digests are compared in constant time. A token that is not of the
    /// `esg_<id>_<secret>` form, or names no key on file, still costs one
    /// digest, so the answer takes about as long either way.
    pub fn verify(&self, token: &str) -> Verdict {
        let record = parse_key_id(token).and_then(|id| self.keys.iter().find(|k| k.id == id));
        let Some(record) = record else {
            let _ = digest(&[0u8; SALT_BYTES], token)
                .as_bytes()
                .ct_eq(&[b'0'; 64]);
            return Verdict::Invalid;
        };
        let salt = unhex(&record.salt).unwrap_or_default();
        let presented = digest(&salt, token);
        if !bool::from(presented.as_bytes().ct_eq(record.sha256.as_bytes())) {
            return Verdict::Invalid;
        }
        if record.revoked {
            Verdict::Revoked(record.id.clone())
        } else {
            Verdict::Valid(record.id.clone())
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Runs `change` on the key file at `path` under an exclusive advisory lock
/// (`<path>.lock`), then saves it atomically when `change` succeeds.
///
/// # Errors
/// As [`KeyFile::load`], `change` and [`KeyFile::save`].
pub fn update<T>(
    path: &Path,
    change: impl FnOnce(&mut KeyFile) -> Result<T, AuthError>,
) -> Result<T, AuthError> {
    let werr = |source: std::io::Error| AuthError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent_dir(path))
        .map_err(werr)?;
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(PathBuf::from(lock_path))
        .map_err(werr)?;
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock(2) on a descriptor we own; released when `lock` closes.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(werr(std::io::Error::last_os_error()));
    }
    let mut file = KeyFile::load(path)?;
    let out = change(&mut file)?;
    file.save(path)?;
    drop(lock);
    Ok(out)
}

/// Identity of the key file on disk, to notice changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ino: m.ino(),
    })
}

/// What the server knows of the keys: the keys, or why they cannot be
/// used.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// The keys (empty when the file does not exist).
    Keys(Arc<KeyFile>),
    /// The file exists but cannot be used; every protected request is refused.
    Unusable(String),
    /// The keys are in the database, which cannot be reached right now:
    /// protected requests answer 503 `store_unavailable`.
    Unreachable(String),
}

// ---------------------------------------------------------------- keys in PostgreSQL

impl From<&esg_store::StoredKey> for ApiKeyRecord {
    fn from(k: &esg_store::StoredKey) -> Self {
        ApiKeyRecord {
            id: k.id.clone(),
            label: k.label.clone(),
            created_at: k.created_at.clone(),
            salt: k.salt.clone(),
            sha256: k.sha256.clone(),
            revoked: k.revoked_at.is_some(),
            revoked_at: k.revoked_at.clone(),
        }
    }
}

impl From<&ApiKeyRecord> for esg_store::StoredKey {
    fn from(k: &ApiKeyRecord) -> Self {
        esg_store::StoredKey {
            id: k.id.clone(),
            label: k.label.clone(),
            created_at: k.created_at.clone(),
            salt: k.salt.clone(),
            sha256: k.sha256.clone(),
            revoked_at: k.revoked_at.clone(),
        }
    }
}

fn db_error(e: esg_store::StoreError) -> AuthError {
    AuthError::Database(e.to_string())
}

/// The keys in the database (a PostgreSQL store keeps them, so that every
/// replica sees the same keys), as a [`KeyFile`].
///
/// # Errors
/// [`AuthError::Database`].
pub fn db_load(table: &dyn esg_store::KeyTable) -> Result<KeyFile, AuthError> {
    let keys = table.list_keys().map_err(db_error)?;
    Ok(KeyFile {
        format: FILE_FORMAT,
        keys: keys.iter().map(ApiKeyRecord::from).collect(),
    })
}

/// Makes a key as [`KeyFile::add`] does and stores its record in the
/// database; every replica accepts it from its next request.
///
/// # Errors
/// A bad label, a failing random source, [`AuthError::Database`].
pub fn db_add(
    table: &dyn esg_store::KeyTable,
    label: &str,
) -> Result<(ApiKeyRecord, ApiKey), AuthError> {
    let mut file = db_load(table)?;
    let (record, key) = file.add(label)?;
    table
        .insert_key(&esg_store::StoredKey::from(&record))
        .map_err(db_error)?;
    Ok((record, key))
}

/// Revokes the key `id` in the database; `false` when it already was.
/// Every replica refuses it from its next request.
///
/// # Errors
/// [`AuthError::UnknownId`], [`AuthError::Database`].
pub fn db_revoke(table: &dyn esg_store::KeyTable, id: &str) -> Result<bool, AuthError> {
    let id = id.trim();
    if !db_load(table)?.keys.iter().any(|k| k.id == id) {
        return Err(AuthError::UnknownId(id.to_string()));
    }
    table.revoke_key(id, &now_rfc3339()).map_err(db_error)
}

/// Runs `f`, a call that may block on the network, from async code: on a
/// multi-thread runtime's worker inside `block_in_place` (other tasks move
/// to other workers meanwhile, and a PostgreSQL store may `block_on` its
/// own runtime), elsewhere directly.
fn blocking_here<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The server's view of the keys: the key file, re-read when it changes on
/// disk; or, when the store is PostgreSQL, the `api_keys` table, re-read
/// when its generation changes (one indexed query per protected request,
/// so a key added or revoked on any host counts from the next request).
pub struct KeyStore {
    path: PathBuf,
    cache: Mutex<(Option<Stamp>, Loaded)>,
    /// `true` when the keys are in the database (the store is PostgreSQL).
    in_database: bool,
    database: std::sync::OnceLock<Arc<dyn esg_store::Store>>,
    db_cache: Mutex<Option<(i64, Arc<KeyFile>)>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("keys", &self.describe())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// A store over `path`, read now.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let s = stamp(&path);
        let loaded = Self::read(&path);
        KeyStore {
            path,
            cache: Mutex::new((s, loaded)),
            in_database: false,
            database: std::sync::OnceLock::new(),
            db_cache: Mutex::new(None),
        }
    }

    /// Keys kept in the database of a store that is not open yet; until
    /// [`KeyStore::set_database`], protected requests answer 503.
    pub fn in_database() -> Self {
        KeyStore {
            path: PathBuf::new(),
            cache: Mutex::new((None, Loaded::Keys(Arc::new(KeyFile::default())))),
            in_database: true,
            database: std::sync::OnceLock::new(),
            db_cache: Mutex::new(None),
        }
    }

    /// The opened store whose [`esg_store::Store::key_table`] holds the keys.
    pub fn set_database(&self, store: Arc<dyn esg_store::Store>) {
        let _ = self.database.set(store);
    }

    /// `true` when the keys live in the database.
    pub fn is_in_database(&self) -> bool {
        self.in_database
    }

    /// Where the keys are, for logs: the key file's path or `database`.
    pub fn describe(&self) -> String {
        if self.in_database {
            "database (table api_keys)".to_string()
        } else {
            self.path.display().to_string()
        }
    }

    fn current_db(&self) -> Loaded {
        let Some(store) = self.database.get() else {
            return Loaded::Unreachable("the store is not open yet".into());
        };
        let Some(table) = store.key_table() else {
            return Loaded::Unusable("the store keeps no API keys".into());
        };
        let read = blocking_here(|| -> Result<Arc<KeyFile>, esg_store::StoreError> {
            let generation = table.keys_generation()?;
            let mut g = self.db_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((seen, keys)) = &*g
                && *seen == generation
            {
                return Ok(Arc::clone(keys));
            }
            let keys = table.list_keys()?;
            let file = Arc::new(KeyFile {
                format: FILE_FORMAT,
                keys: keys.iter().map(ApiKeyRecord::from).collect(),
            });
            tracing::info!(
                active_keys = file.active(),
                generation,
                "API keys (re)loaded from the database"
            );
            *g = Some((generation, Arc::clone(&file)));
            Ok(file)
        });
        match read {
            Ok(k) => Loaded::Keys(k),
            Err(esg_store::StoreError::Unavailable(why)) => Loaded::Unreachable(why),
            Err(e) => Loaded::Unusable(e.to_string()),
        }
    }

    fn read(path: &Path) -> Loaded {
        match KeyFile::load(path) {
            Ok(f) => Loaded::Keys(Arc::new(f)),
            Err(e) => Loaded::Unusable(e.to_string()),
        }
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current keys, re-read when the file (or the database's key
    /// generation) changed since the last call.
    pub fn current(&self) -> Loaded {
        if self.in_database {
            return self.current_db();
        }
        let now = stamp(&self.path);
        let mut g = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 != now {
            let loaded = Self::read(&self.path);
            if let Loaded::Unusable(e) = &loaded {
                tracing::error!(error_type = "auth_config", error = %e, "the API key file cannot be used; protected routes answer 500");
            } else if let Loaded::Keys(k) = &loaded {
                tracing::info!(active_keys = k.active(), "API key file (re)loaded");
            }
            *g = (now, loaded);
        }
        g.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_verifies_and_nothing_else_does() {
        let mut f = KeyFile::default();
        let (rec, key) = f.add("ci").unwrap();
        assert_eq!(parse_key_id(key.expose()), Some(rec.id.as_str()));
        assert_eq!(f.verify(key.expose()), Verdict::Valid(rec.id.clone()));
        // Same id, other secret.
        let forged = format!("{KEY_PREFIX}{}_{}", rec.id, "0".repeat(64));
        assert_eq!(f.verify(&forged), Verdict::Invalid);
        // One character changed.
        let mut k = key.expose().to_string();
        let last = k.pop().unwrap();
        k.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(f.verify(&k), Verdict::Invalid);
        assert_eq!(f.verify(""), Verdict::Invalid);
        assert_eq!(f.verify("esg_"), Verdict::Invalid);
        assert!(!format!("{key:?}").contains(key.expose()));
        assert!(!serde_json::to_string(&f).unwrap().contains(key.expose()));
        assert!(f.revoke(&rec.id).unwrap());
        assert!(!f.revoke(&rec.id).unwrap());
        assert_eq!(f.verify(key.expose()), Verdict::Revoked(rec.id.clone()));
        assert!(matches!(f.revoke("nope"), Err(AuthError::UnknownId(_))));
        assert!(matches!(f.add("  "), Err(AuthError::BadLabel)));
        assert!(matches!(f.add("a\nb"), Err(AuthError::BadLabel)));
    }

    #[test]
    fn two_keys_differ_in_id_secret_and_salt() {
        let mut f = KeyFile::default();
        let (a, ka) = f.add("a").unwrap();
        let (b, kb) = f.add("b").unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(a.salt, b.salt);
        assert_ne!(ka, kb);
        assert_eq!(f.verify(kb.expose()), Verdict::Valid(b.id));
    }

    #[test]
    fn save_is_0600_and_load_reads_it_back_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/api-keys.json");
        assert_eq!(KeyFile::load(&path).unwrap(), KeyFile::default());
        let key = update(&path, |f| f.add("ops")).unwrap().1;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let f = KeyFile::load(&path).unwrap();
        assert!(matches!(f.verify(key.expose()), Verdict::Valid(_)));
        // Only the key file and its lock are left in the directory.
        let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["api-keys.json", "api-keys.json.lock"]);
        std::fs::write(&path, "{\"format\":1,\"keys\":[{\"id\":\"x\"}]}").unwrap();
        assert!(matches!(
            KeyFile::load(&path),
            Err(AuthError::Invalid { .. })
        ));
        let store = KeyStore::new(&path);
        assert!(matches!(store.current(), Loaded::Unusable(_)));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(store.current(), Loaded::Keys(k) if k.keys.is_empty()));
    }
}
