//! The source files: the original bytes of every ingested document, kept
//! on the data volume and addressed by their SHA-256 (the `doc_id`).
//!
//! Layout: `<root>/<first two hex digits>/<sha256>`, where the root is
//! `<data-dir>/files` ([`FileStore::in_data_dir`]). Two hex digits give 256
//! shard directories, so no directory grows past a few thousand entries.
//!
//! A write ([`FileStore::put`]) checks that the bytes hash to the id it is
//! given, then writes a temporary file (`.tmp-…`, created exclusively) in the
//! shard directory, `fsync`s it, renames it onto its final name (atomic on
//! POSIX file systems) and `fsync`s the directory, so after `put` returns
//! the file survives a crash or power loss, and before that no reader ever
//! sees a partial file under the final name. A file already present with
//! the right length is not rewritten. Callers write the file *before* they
//! commit the document's row, so a committed document always has its file;
//! a crash in between leaves at most a file without a document (harmless:
//! the next ingest of the same bytes reuses it) or a temporary file, which
//! [`FileStore::remove_stale_temps`] clears.
//!
//! Nothing here depends on the database: any backend (the embedded SQLite
//! store, or replicas of a shared database writing to one shared volume)
//! can use the same directory. Concurrent writers of the same bytes are
//! harmless: each renames identical content onto the same name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Name of the directory under the data directory that holds the files.
pub const FILES_DIR_NAME: &str = "files";

/// Name prefix of temporary files (never a valid SHA-256, so never mistaken
/// for a kept file).
pub const TMP_PREFIX: &str = ".tmp-";

/// Errors of the [`FileStore`], each with a stable snake_case
/// [`code`](FileStoreError::code).
#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    /// The id is not a SHA-256 in lowercase hex (64 characters `0-9a-f`).
    #[error("{0:?} is not a SHA-256 in lowercase hex")]
    InvalidId(String),
    /// The bytes offered do not hash to the id they were offered under;
    /// nothing was written.
    #[error("the bytes hash to {actual}, not to {expected}")]
    Sha256Mismatch {
        /// The id the bytes were offered under.
        expected: String,
        /// What they hash to.
        actual: String,
    },
    /// The file system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl FileStoreError {
    /// The stable snake_case code: `invalid_sha256`, `sha256_mismatch` or
    /// `file_io`.
    pub fn code(&self) -> &'static str {
        match self {
            FileStoreError::InvalidId(_) => "invalid_sha256",
            FileStoreError::Sha256Mismatch { .. } => "sha256_mismatch",
            FileStoreError::Io { .. } => "file_io",
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> FileStoreError + '_ {
    move |source| FileStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`FileStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The file was written (it was absent, or present with the wrong length).
    Written,
    /// The file was already present with the right length; nothing was written.
    AlreadyPresent,
}

/// A kept file opened for reading.
#[derive(Debug)]
pub struct SourceFile {
    /// The open file, positioned at its start.
    pub file: File,
    /// Its length in bytes.
    pub len: u64,
    /// Where it is.
    pub path: PathBuf,
}

/// `true` when `id` is 64 lowercase hex digits.
pub fn is_sha256_hex(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The content-addressed store of source files (see the module documentation).
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store rooted at `root` (created on the first write; nothing is
    /// touched here).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore { root: root.into() }
    }

    /// The store of a data directory: `<data_dir>/files`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join(FILES_DIR_NAME))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file of `sha256` is (or would be).
    ///
    /// # Errors
    /// [`FileStoreError::InvalidId`] unless `sha256` is 64 lowercase hex
    /// digits, so an id can never name a path outside the store.
    pub fn path_of(&self, sha256: &str) -> Result<PathBuf, FileStoreError> {
        if !is_sha256_hex(sha256) {
            return Err(FileStoreError::InvalidId(sha256.to_string()));
        }
        Ok(self.root.join(&sha256[..2]).join(sha256))
    }

    /// Keeps `bytes` as the file of `sha256`, durably (see the module
    /// documentation); a file already present with the same length is not
    /// rewritten.
    ///
    /// # Errors
    /// [`FileStoreError::InvalidId`], [`FileStoreError::Sha256Mismatch`]
    /// when the bytes hash to something else (nothing is written), and
    /// [`FileStoreError::Io`] when the file system refuses (no partial file
    /// is left under the final name).
    pub fn put(&self, sha256: &str, bytes: &[u8]) -> Result<PutOutcome, FileStoreError> {
        let path = self.path_of(sha256)?;
        let actual = esg_core::sha256_hex(bytes);
        if actual != sha256 {
            return Err(FileStoreError::Sha256Mismatch {
                expected: sha256.to_string(),
                actual,
            });
        }
        match fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == bytes.len() as u64 => {
                return Ok(PutOutcome::AlreadyPresent);
            }
            // Absent, or damaged (wrong length): written (again) below.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&path)(e)),
        }
        let shard = path.parent().expect("a shard directory").to_path_buf();
        self.create_shard(&shard)?;
        let tmp = write_temp(&shard, sha256, bytes)?;
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io_at(&path)(e));
        }
        sync_dir(&shard)?;
        Ok(PutOutcome::Written)
    }

    /// `true` when the file of `sha256` is present.
    ///
    /// # Errors
    /// [`FileStoreError::InvalidId`]; [`FileStoreError::Io`] when the file
    /// system cannot say.
    pub fn contains(&self, sha256: &str) -> Result<bool, FileStoreError> {
        let path = self.path_of(sha256)?;
        match fs::metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Opens the file of `sha256` for reading; `None` when it is absent.
    ///
    /// # Errors
    /// [`FileStoreError::InvalidId`]; [`FileStoreError::Io`] when it exists
    /// but cannot be opened.
    pub fn open(&self, sha256: &str) -> Result<Option<SourceFile>, FileStoreError> {
        let path = self.path_of(sha256)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let meta = file.metadata().map_err(io_at(&path))?;
        if !meta.is_file() {
            return Ok(None);
        }
        Ok(Some(SourceFile {
            file,
            len: meta.len(),
            path,
        }))
    }

    /// Removes temporary files older than `age` (left by a process killed
    /// while writing); returns how many. Younger ones may belong to a live
    /// writer and are kept.
    ///
    /// # Errors
    /// When the root exists but cannot be listed.
    pub fn remove_stale_temps(&self, age: Duration) -> Result<usize, FileStoreError> {
        let shards = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_at(&self.root)(e)),
        };
        let mut removed = 0;
        for shard in shards.flatten() {
            let Ok(entries) = fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    continue;
                }
                let old = entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|e| e >= age);
                if old && fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Creates the shard directory (and the root) when missing; a directory
    /// created here is made durable in its parent.
    fn create_shard(&self, shard: &Path) -> Result<(), FileStoreError> {
        if shard.is_dir() {
            return Ok(());
        }
        let root_existed = self.root.is_dir();
        fs::create_dir_all(shard).map_err(io_at(shard))?;
        if !root_existed && let Some(parent) = self.root.parent() {
            sync_dir(parent)?;
        }
        sync_dir(&self.root)
    }
}

/// A unique temporary file in `dir` holding `bytes`, flushed to disk.
fn write_temp(dir: &Path, sha256: &str, bytes: &[u8]) -> Result<PathBuf, FileStoreError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "{TMP_PREFIX}{}-{}-{}-{nanos}",
            &sha256[..16],
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = dir.join(name);
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut file = match opts.open(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_at(&tmp)(e)),
        };
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            drop(file);
            let _ = fs::remove_file(&tmp);
            return Err(io_at(&tmp)(e));
        }
        return Ok(tmp);
    }
}

/// `fsync` of a directory, so the entries made in it are durable.
fn sync_dir(dir: &Path) -> Result<(), FileStoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_lowercase_sha256_hex() {
        let fs = FileStore::new("/nonexistent");
        let ok = "a".repeat(64);
        assert!(fs.path_of(&ok).is_ok());
        for bad in [
            String::new(),
            "A".repeat(64),
            "a".repeat(63),
            "a".repeat(65),
            format!("../{}", "a".repeat(61)),
            format!("{}/", "a".repeat(63)),
        ] {
            let e = fs.path_of(&bad).unwrap_err();
            assert_eq!(e.code(), "invalid_sha256", "{bad:?}");
        }
        assert_eq!(
            fs.path_of(&ok).unwrap(),
            Path::new("/nonexistent").join("aa").join(&ok)
        );
    }
}
