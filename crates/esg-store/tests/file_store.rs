//! The source-file store on a real directory: content addressing, atomic
//! and idempotent writes, refused mismatches, missing and damaged files,
//! leftovers of a killed writer, and concurrent writers of the same bytes.

use esg_store::files::{FILES_DIR_NAME, PutOutcome, TMP_PREFIX};
use esg_store::{FileStore, FileStoreError};
use std::path::Path;
use std::time::Duration;

fn sha(b: &[u8]) -> String {
    esg_core::sha256_hex(b)
}

/// Every entry under `root`, as paths relative to it.
fn entries(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(root).unwrap().flatten() {
        for e in std::fs::read_dir(shard.path()).unwrap().flatten() {
            out.push(format!(
                "{}/{}",
                shard.file_name().to_string_lossy(),
                e.file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn bytes_are_kept_under_their_sha256_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FileStore::in_data_dir(dir.path());
    assert_eq!(fs.root(), dir.path().join(FILES_DIR_NAME));
    let bytes = b"%PDF-1.4 a report".to_vec();
    let id = sha(&bytes);
    assert!(!fs.contains(&id).unwrap());
    assert!(fs.open(&id).unwrap().is_none(), "absent before the write");

    assert_eq!(fs.put(&id, &bytes).unwrap(), PutOutcome::Written);
    let path = dir.path().join("files").join(&id[..2]).join(&id);
    assert_eq!(fs.path_of(&id).unwrap(), path);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(fs.contains(&id).unwrap());
    let opened = fs.open(&id).unwrap().expect("present");
    assert_eq!(opened.len, bytes.len() as u64);
    assert_eq!(opened.path, path);
    // Nothing but the file: no temporary file left behind.
    assert_eq!(entries(fs.root()), [format!("{}/{id}", &id[..2])]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "not readable by others: {mode:o}");
    }
}

#[test]
fn the_same_bytes_again_store_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FileStore::in_data_dir(dir.path());
    let bytes = b"plain text report".to_vec();
    let id = sha(&bytes);
    assert_eq!(fs.put(&id, &bytes).unwrap(), PutOutcome::Written);
    let path = fs.path_of(&id).unwrap();
    let before = std::fs::metadata(&path).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(fs.put(&id, &bytes).unwrap(), PutOutcome::AlreadyPresent);
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(
        before.modified().unwrap(),
        after.modified().unwrap(),
        "not rewritten"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(before.ino(), after.ino(), "not replaced");
    }
    assert_eq!(entries(fs.root()).len(), 1);
}

#[test]
fn bytes_that_do_not_hash_to_the_id_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FileStore::in_data_dir(dir.path());
    let id = sha(b"the real bytes");
    let e = fs.put(&id, b"other bytes").unwrap_err();
    assert_eq!(e.code(), "sha256_mismatch");
    match &e {
        FileStoreError::Sha256Mismatch { expected, actual } => {
            assert_eq!(expected, &id);
            assert_eq!(actual, &sha(b"other bytes"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!fs.contains(&id).unwrap());
    assert!(!fs.root().exists(), "nothing created");
    // An id that is not a SHA-256 never becomes a path.
    let e = fs.put("../../etc/passwd", b"x").unwrap_err();
    assert_eq!(e.code(), "invalid_sha256");
    assert!(fs.open("../x").is_err());
}

#[test]
fn a_missing_file_is_none_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FileStore::in_data_dir(dir.path());
    let bytes = b"kept then lost".to_vec();
    let id = sha(&bytes);
    fs.put(&id, &bytes).unwrap();
    std::fs::remove_file(fs.path_of(&id).unwrap()).unwrap();
    assert!(fs.open(&id).unwrap().is_none());
    assert!(!fs.contains(&id).unwrap());
    // Putting it again restores it.
    assert_eq!(fs.put(&id, &bytes).unwrap(), PutOutcome::Written);
    assert_eq!(std::fs::read(fs.path_of(&id).unwrap()).unwrap(), bytes);
}

#[test]
fn a_damaged_file_of_the_wrong_length_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FileStore::in_data_dir(dir.path());
    let bytes = b"0123456789 a full report".to_vec();
    let id = sha(&bytes);
    fs.put(&id, &bytes).unwrap();
    let path = fs.path_of(&id).unwrap();
    std::fs::write(&path, &bytes[..5]).unwrap();
    assert_eq!(fs.put(&id, &bytes).unwrap(), PutOutcome::Written);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn temporary_files_of_a_killed_writer_are_removed_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FileStore::in_data_dir(dir.path());
    let bytes = b"report".to_vec();
    let id = sha(&bytes);
    fs.put(&id, &bytes).unwrap();
    let shard = fs.path_of(&id).unwrap().parent().unwrap().to_path_buf();
    let leftover = shard.join(format!("{TMP_PREFIX}dead-writer"));
    std::fs::write(&leftover, b"half a fi").unwrap();
    assert_eq!(
        fs.remove_stale_temps(Duration::from_secs(3600)).unwrap(),
        0,
        "a young temporary file may belong to a live writer"
    );
    assert!(leftover.exists());
    assert_eq!(fs.remove_stale_temps(Duration::ZERO).unwrap(), 1);
    assert!(!leftover.exists());
    assert!(fs.contains(&id).unwrap(), "kept files are never touched");
    let empty = FileStore::new(dir.path().join("nowhere"));
    assert_eq!(empty.remove_stale_temps(Duration::ZERO).unwrap(), 0);
}

#[test]
fn concurrent_writers_of_the_same_bytes_leave_one_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FileStore::in_data_dir(dir.path());
    let bytes: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = sha(&bytes);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| fs.put(&id, &bytes).unwrap());
        }
    });
    assert_eq!(std::fs::read(fs.path_of(&id).unwrap()).unwrap(), bytes);
    assert_eq!(entries(fs.root()), [format!("{}/{id}", &id[..2])]);
}

#[test]
fn a_write_the_file_system_refuses_is_an_io_error_with_no_file() {
    let dir = tempfile::tempdir().unwrap();
    // The root is a regular file: no shard directory can be made under it.
    let root = dir.path().join("files");
    std::fs::write(&root, b"not a directory").unwrap();
    let fs = FileStore::new(&root);
    let bytes = b"report".to_vec();
    let id = sha(&bytes);
    let e = fs.put(&id, &bytes).unwrap_err();
    assert_eq!(e.code(), "file_io", "{e}");
    assert!(fs.open(&id).is_err() || fs.open(&id).unwrap().is_none());
}
