//! Ingestion that keeps the source file: [`ingest_keeping_source`] is
//! [`crate::ingest_bytes`] plus the document's original bytes written to an
//! [`esg_store::FileStore`] before its row is committed, so a committed
//! document always has its file (DESIGN §3, §9). `esg ingest` and the
//! server's `POST /documents` both go through it.

use crate::error::{ErrorCode, IngestError};
use crate::prepare::{Provenance, ingest_hashed};
use crate::sandbox::Extracted;
use esg_core::{ChunkParams, sha256_hex};
use esg_store::files::PutOutcome;
use esg_store::{FileStore, IngestOutcome, Store};

fn file_error(e: esg_store::FileStoreError) -> IngestError {
    IngestError::new(
        ErrorCode::StorageError,
        format!("the source file could not be kept: {e}"),
    )
}

/// Ingests `bytes` like [`crate::ingest_bytes`] and keeps them in `files`
/// under their SHA-256.
///
/// * A document already stored is reported as such without extraction, and
///   its file is written when missing (documents stored before files were
///   kept get theirs back by ingesting the same bytes again).
/// * A new document's file is written while it is extracted (on a thread of
///   its own, so hashing and `fsync` overlap the extraction) and is on disk
///   before the document is cleaned, chunked and committed; a crash in
///   between leaves only a file without a document, which the next ingest
///   of the same bytes reuses.
/// * When the document turns out to have no text or cannot be read at all
///   for a reason that lies in its bytes (empty, damaged, encrypted, an
///   unsupported format, an HTML error page), the file
///   written by this call is removed again: no concurrent ingest of the same
///   bytes can have committed a document relying on it. After a failure
///   that may not repeat (a timeout, the memory bound, a crashed worker, a
///   store error) the file stays, like after a crash, for the next ingest
///   of the same bytes.
///
/// # Errors
/// Those of [`crate::ingest_bytes`]; `storage_error` when the file cannot
/// be written (then nothing is committed).
pub fn ingest_keeping_source(
    store: &dyn Store,
    files: &FileStore,
    bytes: &[u8],
    who: Provenance<'_>,
    extract: impl FnOnce(&[u8]) -> Result<Extracted, IngestError>,
    params: ChunkParams,
) -> Result<IngestOutcome, IngestError> {
    let doc_id = sha256_hex(bytes);
    let mut written = false;
    let outcome = ingest_hashed(
        store,
        bytes,
        doc_id.clone(),
        who,
        |b| {
            let (extracted, put) = std::thread::scope(|s| {
                let put = s.spawn(|| files.put(&doc_id, b));
                let extracted = extract(b);
                // A panic while writing goes on as it would have without
                // the thread (the callers catch it per document).
                let put = put.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                (extracted, put)
            });
            let put = put.map_err(file_error);
            written = matches!(put, Ok(PutOutcome::Written));
            let extracted = extracted?;
            put?;
            Ok(extracted)
        },
        params,
    );
    match outcome {
        Ok(o @ IngestOutcome::AlreadyIngested(_)) => {
            files.put(&doc_id, bytes).map_err(file_error)?;
            Ok(o)
        }
        Ok(o) => Ok(o),
        Err(e) => {
            if written
                && depends_only_on_bytes(e.code)
                && let Ok(path) = files.path_of(&doc_id)
            {
                let _ = std::fs::remove_file(path);
            }
            Err(e)
        }
    }
}

/// Whether an ingest that failed with `code` fails the same way for every
/// ingest of the same bytes, so that no other ingest can have committed a
/// document (and relied on its file).
fn depends_only_on_bytes(code: ErrorCode) -> bool {
    match code {
        ErrorCode::EmptyFile
        | ErrorCode::UnsupportedFormat
        | ErrorCode::PdfDamaged
        | ErrorCode::PdfPasswordRequired
        | ErrorCode::PdfUnsupportedEncryption
        | ErrorCode::PdfNoTextLayer
        | ErrorCode::HtmlErrorPage
        | ErrorCode::NoText => true,
        ErrorCode::UnreadablePath
        | ErrorCode::FileTooLarge
        | ErrorCode::ExtractionTimeout
        | ErrorCode::ExtractionMemoryLimit
        | ErrorCode::ExtractionFailed
        | ErrorCode::StorageError
        | ErrorCode::StoreUnavailable => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract_in_process;
    use esg_core::{MediaType, RawPage};
    use esg_store::SqliteStore;

    const REPORT: &str = "Our board oversees climate risk. Scope 1 emissions fell by 4 percent in 2023 against the 2019 baseline.";

    fn who() -> Provenance<'static> {
        Provenance {
            company: "Acme",
            year: 2023,
            filename: "r.txt",
            sector: None,
        }
    }

    fn setup() -> (tempfile::TempDir, SqliteStore, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in_dir(dir.path()).unwrap();
        let files = FileStore::in_data_dir(dir.path());
        (dir, store, files)
    }

    #[test]
    fn the_file_is_on_disk_before_the_document_is_committed() {
        let (_dir, store, files) = setup();
        let id = sha256_hex(REPORT.as_bytes());
        let mut seen_before_commit = None;
        let out = ingest_keeping_source(
            &store,
            &files,
            REPORT.as_bytes(),
            who(),
            extract_in_process,
            ChunkParams::default(),
        )
        .unwrap();
        assert!(out.is_new());
        assert_eq!(
            std::fs::read(files.path_of(&id).unwrap()).unwrap(),
            REPORT.as_bytes()
        );
        // The ordering itself: a commit that fails (a store refusing the
        // document) still leaves the file, never a document without one.
        let other = format!("{REPORT} And water use fell.");
        let other_id = sha256_hex(other.as_bytes());
        let bad = Provenance {
            company: "!!!",
            ..who()
        };
        let e = ingest_keeping_source(
            &store,
            &files,
            other.as_bytes(),
            bad,
            |b| {
                let x = extract_in_process(b);
                seen_before_commit = Some(());
                x
            },
            ChunkParams::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::StorageError, "{e:?}");
        assert!(seen_before_commit.is_some());
        assert!(files.contains(&other_id).unwrap());
        assert!(store.document(&other_id).unwrap().is_none());
    }

    #[test]
    fn an_already_stored_document_gets_its_missing_file_back() {
        let (_dir, store, files) = setup();
        let id = sha256_hex(REPORT.as_bytes());
        // Stored the old way: no file.
        crate::ingest_bytes(
            &store,
            REPORT.as_bytes(),
            who(),
            extract_in_process,
            ChunkParams::default(),
        )
        .unwrap();
        assert!(!files.contains(&id).unwrap());
        let out = ingest_keeping_source(
            &store,
            &files,
            REPORT.as_bytes(),
            who(),
            |_| panic!("an already stored document is not extracted again"),
            ChunkParams::default(),
        )
        .unwrap();
        assert!(!out.is_new());
        assert!(files.contains(&id).unwrap());
    }

    #[test]
    fn a_document_without_text_keeps_no_file() {
        let (_dir, store, files) = setup();
        let bytes = b"   \n   text that the extractor below loses   ";
        let id = sha256_hex(bytes);
        let e = ingest_keeping_source(
            &store,
            &files,
            bytes,
            who(),
            |_| {
                Ok(Extracted {
                    media_type: MediaType::Text,
                    pages: vec![RawPage {
                        number: 1,
                        text: "   ".into(),
                        is_virtual: false,
                        layout: None,
                    }],
                    warnings: Vec::new(),
                })
            },
            ChunkParams::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::NoText);
        assert!(!files.contains(&id).unwrap(), "written, then removed");
        // Nor does a file whose format is unsupported: that failure lies in
        // its bytes (the file, written while it was read, is removed).
        let e = ingest_keeping_source(
            &store,
            &files,
            b"\x89PNG\r\n\x1a\n",
            who(),
            extract_in_process,
            ChunkParams::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedFormat);
        let left: Vec<_> = std::fs::read_dir(files.root())
            .unwrap()
            .flatten()
            .flat_map(|shard| std::fs::read_dir(shard.path()).unwrap().flatten())
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_failure_that_may_not_repeat_keeps_the_file_for_the_next_ingest() {
        let (_dir, store, files) = setup();
        let fail = |code| {
            move |_: &[u8]| -> Result<Extracted, IngestError> {
                Err(IngestError::new(code, "as the worker reported it"))
            }
        };
        // Damaged: every ingest of these bytes fails the same way.
        let damaged = b"%PDF-1.7 damaged".as_slice();
        let e = ingest_keeping_source(
            &store,
            &files,
            damaged,
            who(),
            fail(ErrorCode::PdfDamaged),
            ChunkParams::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::PdfDamaged);
        assert!(!files.contains(&sha256_hex(damaged)).unwrap());
        // A timeout may not repeat: a concurrent ingest of the same bytes
        // may have found the file and committed, so it stays.
        let slow = REPORT.as_bytes();
        let e = ingest_keeping_source(
            &store,
            &files,
            slow,
            who(),
            fail(ErrorCode::ExtractionTimeout),
            ChunkParams::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::ExtractionTimeout);
        assert!(files.contains(&sha256_hex(slow)).unwrap());
        assert!(store.documents(None).unwrap().is_empty());
        // The next ingest of the same bytes reuses it and commits.
        let o = ingest_keeping_source(
            &store,
            &files,
            slow,
            who(),
            extract_in_process,
            ChunkParams::default(),
        )
        .unwrap();
        assert!(o.is_new());
        assert!(files.contains(&sha256_hex(slow)).unwrap());
    }

    #[test]
    fn a_file_that_cannot_be_written_stops_the_ingest() {
        let (dir, store, _) = setup();
        let root = dir.path().join("not-a-dir");
        std::fs::write(&root, b"x").unwrap();
        let files = FileStore::new(&root);
        let e = ingest_keeping_source(
            &store,
            &files,
            REPORT.as_bytes(),
            who(),
            extract_in_process,
            ChunkParams::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::StorageError);
        assert!(e.message.contains("source file"), "{}", e.message);
        assert!(
            store.documents(None).unwrap().is_empty(),
            "no document without its file"
        );
    }
}
