//! The store contract: every test body here runs against both backends,
//! SQLite (`sqlite::*`) and PostgreSQL (`pg::*`, on a throw-away cluster or
//! `ESG_TEST_DATABASE_URL`; skipped without PostgreSQL unless `CI=true`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{Fx, counts, db_error, make_doc, two_block_layout, vector, zero};
use esg_store::{
    Chunk, ChunkVector, IngestOutcome, MediaType, NewDocument, PgOptions, StoreCounts, StoreError,
    StoreLocation, VectorCounts,
};

/// One `#[test]` per backend for each body: `sqlite::name` and `pg::name`.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(&super::Fx::sqlite());
            })*
        }
        mod pg {
            $(#[test]
            fn $name() {
                let Some(fx) = super::Fx::pg() else { return };
                super::$name(&fx);
            })*
        }
    };
}

contract_tests!(
    empty_store_answers_with_nothing,
    document_round_trips_exactly,
    virtual_pages_and_empty_warnings_round_trip,
    re_put_is_a_no_op_that_says_so,
    company_lookup_ignores_case_and_punctuation,
    lists_are_sorted_by_stable_keys,
    invalid_documents_are_rejected_before_writing,
    failure_midway_leaves_nothing_behind,
    chunk_id_clash_with_another_document_rolls_back_everything,
    reopening_keeps_data,
    concurrent_puts_from_threads_with_their_own_stores,
    one_store_shared_between_threads,
    concurrent_puts_from_processes,
    rule_matches_round_trip_per_rubric_company_and_year,
    vectors_are_stored_once_per_model_and_chunk_and_backfill_resumes,
    bad_vectors_are_refused_and_write_nothing,
    a_company_takes_the_sector_of_its_latest_document_that_names_one,
    a_sector_that_is_not_normalised_is_refused_before_writing,
    ping_and_backend_name,
    page_layouts_round_trip_exactly,
    a_stored_layout_that_does_not_parse_is_corrupt,
    layouts_are_filled_only_where_none_is_stored,
);

fn ping_and_backend_name(fx: &Fx) {
    let store = fx.open();
    store.ping().unwrap();
    let expected = if fx.is_pg() { "postgresql" } else { "sqlite" };
    assert_eq!(store.backend(), expected);
    assert_eq!(store.key_table().is_some(), fx.is_pg());
}

fn empty_store_answers_with_nothing(fx: &Fx) {
    let store = fx.open();
    assert!(store.companies().unwrap().is_empty());
    assert!(store.company("Headlam").unwrap().is_none());
    assert!(store.company("...").unwrap().is_none());
    assert!(store.documents(None).unwrap().is_empty());
    assert!(store.documents(Some("Headlam")).unwrap().is_empty());
    assert!(store.chunks("Headlam", None).unwrap().is_empty());
    assert!(store.document("abc").unwrap().is_none());
    assert!(store.page_text("abc", 1).unwrap().is_none());
    assert!(store.page_layout("abc", 1).unwrap().is_none());
}

fn page_layouts_round_trip_exactly(fx: &Fx) {
    let store = fx.open();
    let mut doc = make_doc("laid-out", "Layout plc", 2024, 2);
    let layout = two_block_layout();
    doc.pages[0].layout = Some(layout.clone());
    assert!(store.put_document(&doc).unwrap().is_new());

    // Another handle (connection) reads what was committed.
    let store = fx.open();
    let back = store.page_layout(&doc.doc_id, 1).unwrap();
    assert_eq!(back.as_ref(), Some(&layout));
    let back = back.unwrap();
    assert_eq!(back.blocks.len(), 2);
    assert_eq!(back.blocks[0].lines[0].bbox.x0, 72.5);
    assert_eq!(back.blocks[0].lines[0].bbox.y0, 700.2);
    assert_eq!(back.blocks[0].lines[1].text, layout.blocks[0].lines[1].text);
    assert_eq!(
        store.page_layout(&doc.doc_id, 2).unwrap(),
        None,
        "page without layout"
    );
    assert_eq!(
        store.page_layout(&doc.doc_id, 3).unwrap(),
        None,
        "missing page"
    );
    assert_eq!(
        store.page_layout(&doc.doc_id, 0).unwrap(),
        None,
        "page zero"
    );
    assert_eq!(
        store.page_layout(&"0".repeat(64), 1).unwrap(),
        None,
        "missing document"
    );
    // The page text is untouched by its layout.
    assert_eq!(
        store.page_text(&doc.doc_id, 1).unwrap().as_deref(),
        Some(doc.pages[0].text.as_str())
    );

    // Storing the same bytes again with another layout changes nothing.
    let mut again = doc.clone();
    again.pages[0].layout = None;
    again.pages[1].layout = Some(layout.clone());
    assert!(!store.put_document(&again).unwrap().is_new());
    assert_eq!(store.page_layout(&doc.doc_id, 1).unwrap(), Some(layout));
    assert_eq!(store.page_layout(&doc.doc_id, 2).unwrap(), None);
    fx.assert_sound();
}

fn layouts_are_filled_only_where_none_is_stored(fx: &Fx) {
    let store = fx.open();
    // Stored before layouts were kept: a PDF with none, a text file with
    // none (never a candidate), and a PDF with one page laid out.
    let bare = make_doc("bare", "Bare plc", 2024, 2);
    let mut text = make_doc("plain", "Plain plc", 2024, 2);
    text.media_type = MediaType::Text;
    let mut half = make_doc("half", "Half plc", 2024, 2);
    half.pages[0].layout = Some(two_block_layout());
    for d in [&bare, &text, &half] {
        store.put_document(d).unwrap();
    }
    let before = counts(&*store);
    assert_eq!(
        store.documents_without_layouts().unwrap(),
        vec![bare.doc_id.clone()]
    );

    let layout = two_block_layout();
    let mut other = two_block_layout();
    other.blocks.truncate(1);
    // Page 3 is not stored: ignored.
    let filled = store
        .fill_page_layouts(
            &bare.doc_id,
            &[
                (1, layout.clone()),
                (2, layout.clone()),
                (3, layout.clone()),
            ],
        )
        .unwrap();
    assert_eq!(filled, 2);
    let store = fx.open();
    assert_eq!(
        store.page_layout(&bare.doc_id, 2).unwrap().as_ref(),
        Some(&layout)
    );
    assert!(store.documents_without_layouts().unwrap().is_empty());
    // Filling again changes nothing: a stored layout is never replaced.
    assert_eq!(
        store
            .fill_page_layouts(&bare.doc_id, &[(1, other.clone())])
            .unwrap(),
        0
    );
    assert_eq!(
        store.page_layout(&bare.doc_id, 1).unwrap(),
        Some(layout.clone())
    );
    // Only the page without one gets one.
    assert_eq!(
        store
            .fill_page_layouts(&half.doc_id, &[(1, other.clone()), (2, other.clone())])
            .unwrap(),
        1
    );
    assert_eq!(
        store.page_layout(&half.doc_id, 1).unwrap(),
        Some(layout.clone())
    );
    assert_eq!(
        store.page_layout(&half.doc_id, 2).unwrap(),
        Some(other.clone())
    );

    // An unknown document, or a box that could not be read back, is
    // refused and writes nothing.
    match store.fill_page_layouts(&"0".repeat(64), &[(1, layout.clone())]) {
        Err(StoreError::Invalid(m)) => assert!(m.contains("no document"), "{m}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let mut nan = two_block_layout();
    nan.blocks[0].lines[0].bbox.x0 = f32::NAN;
    match store.fill_page_layouts(&text.doc_id, &[(2, layout.clone()), (1, nan)]) {
        Err(StoreError::Invalid(m)) => assert!(m.contains("not finite"), "{m}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(store.page_layout(&text.doc_id, 2).unwrap(), None);

    // Text, chunks and ids are as they were.
    assert_eq!(counts(&*store), before);
    assert_eq!(
        store.page_text(&bare.doc_id, 1).unwrap().as_deref(),
        Some(bare.pages[0].text.as_str())
    );
    fx.assert_sound();
}

fn a_stored_layout_that_does_not_parse_is_corrupt(fx: &Fx) {
    let store = fx.open();
    let mut doc = make_doc("garbled", "Garble Ltd", 2024, 2);
    doc.pages[0].layout = Some(two_block_layout());
    doc.pages[1].layout = Some(two_block_layout());
    store.put_document(&doc).unwrap();
    let bad = "UPDATE pages SET layout = '{\"blocks\": [{\"bbox\": [1, 2]}]}' WHERE page = 1; \
               UPDATE pages SET layout = 'not json' WHERE page = 2;";
    fx.exec(bad, bad);
    for page in [1, 2] {
        match store.page_layout(&doc.doc_id, page) {
            Err(StoreError::Corrupt(m)) => {
                assert!(m.contains(&doc.doc_id) && m.contains("layout"), "{m}")
            }
            other => panic!("page {page}: expected Corrupt, got {other:?}"),
        }
    }
    // Everything else about the document still reads.
    assert!(store.page_text(&doc.doc_id, 1).unwrap().is_some());
    assert!(store.document(&doc.doc_id).unwrap().is_some());
    assert_eq!(store.page_layout(&doc.doc_id, 3).unwrap(), None);
}

fn document_round_trips_exactly(fx: &Fx) {
    let store = fx.open();
    let doc = make_doc("report-a", "  Headlam Group PLC ", 2024, 3);
    let before = chrono::Utc::now().timestamp();
    let outcome = store.put_document(&doc).unwrap();
    let after = chrono::Utc::now().timestamp();
    assert!(outcome.is_new());
    let IngestOutcome::Ingested(summary) = outcome else {
        panic!("expected Ingested");
    };

    assert_eq!(summary.doc_id, doc.doc_id);
    assert_eq!(summary.sha256, doc.doc_id);
    assert_eq!(summary.company, "Headlam Group PLC");
    assert_eq!(summary.company_key, "headlam group plc");
    assert_eq!(summary.year, 2024);
    assert_eq!(summary.filename, "report-a.pdf");
    assert_eq!(summary.media_type, MediaType::Pdf);
    assert_eq!(summary.pages, 3);
    assert_eq!(summary.chunks, 6);
    assert_eq!(summary.bytes, 1003);
    assert!(!summary.virtual_pages);
    assert_eq!(summary.warnings, doc.warnings);
    let t = &summary.ingested_at;
    assert!(t.ends_with('Z') && t.len() == 20, "{t}");
    let ts = chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp();
    assert!((before..=after).contains(&ts), "{t}");

    assert_eq!(store.document(&doc.doc_id).unwrap(), Some(summary.clone()));
    for p in &doc.pages {
        assert_eq!(
            store.page_text(&doc.doc_id, p.number).unwrap().as_deref(),
            Some(p.text.as_str())
        );
    }
    assert_eq!(store.page_text(&doc.doc_id, 4).unwrap(), None);
    assert_eq!(store.page_text(&doc.doc_id, 0).unwrap(), None);

    let stored = store.chunks("headlam group plc", None).unwrap();
    assert_eq!(stored.len(), doc.chunks.len());
    for (s, c) in stored.iter().zip(&doc.chunks) {
        assert_eq!(s.doc_id, doc.doc_id);
        assert_eq!(s.year, 2024);
        assert_eq!(&s.chunk, c);
    }
    assert_eq!(
        store.chunks("headlam group plc", Some(2023)).unwrap(),
        vec![]
    );

    assert_eq!(
        counts(store.as_ref()),
        StoreCounts {
            companies: 1,
            documents: 1,
            pages: 3,
            chunks: 6
        }
    );
    let company = store.company("Headlam Group PLC").unwrap().unwrap();
    assert_eq!(company.key, "headlam group plc");
    assert_eq!(company.name, "Headlam Group PLC");
    assert_eq!(company.years, vec![2024]);
    assert_eq!(
        (company.documents, company.pages, company.chunks),
        (1, 3, 6)
    );
    // The scoring paths' one call gives the same as the two listings.
    let docs = store.documents(Some("headlam group plc")).unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(
        store.company_documents("HEADLAM Group plc").unwrap(),
        Some((company, docs))
    );
    assert_eq!(store.company_documents("Somebody Else").unwrap(), None);
}

fn virtual_pages_and_empty_warnings_round_trip(fx: &Fx) {
    let store = fx.open();
    let mut doc = make_doc("plain", "Acme", 2022, 2);
    doc.media_type = MediaType::Text;
    doc.warnings.clear();
    for p in &mut doc.pages {
        p.is_virtual = true;
    }
    let summary = store.put_document(&doc).unwrap().into_summary();
    assert!(summary.virtual_pages);
    assert!(summary.warnings.is_empty());
    assert_eq!(summary.media_type, MediaType::Text);
    assert_eq!(store.document(&doc.doc_id).unwrap(), Some(summary));
}

fn re_put_is_a_no_op_that_says_so(fx: &Fx) {
    let store = fx.open();
    let doc = make_doc("report-a", "Headlam Group PLC", 2024, 2);
    let first = store.put_document(&doc).unwrap();
    let IngestOutcome::Ingested(first) = first else {
        panic!("expected Ingested");
    };
    let before = counts(store.as_ref());

    let again = store.put_document(&doc).unwrap();
    assert_eq!(again, IngestOutcome::AlreadyIngested(first.clone()));
    assert!(!again.is_new());

    // Same bytes offered under another company, year and name: still the
    // stored document, and nothing new on file.
    let mut other = doc.clone();
    other.company = "Somebody Else Ltd".into();
    other.year = 2020;
    other.filename = "renamed.pdf".into();
    let again = store.put_document(&other).unwrap();
    assert_eq!(again, IngestOutcome::AlreadyIngested(first));
    assert_eq!(counts(store.as_ref()), before);
    assert!(store.company("Somebody Else Ltd").unwrap().is_none());
}

fn company_lookup_ignores_case_and_punctuation(fx: &Fx) {
    let store = fx.open();
    let a = make_doc("headlam-2024", "Headlam Group PLC", 2024, 2);
    let b = make_doc("headlam-2023", "headlam group plc.", 2023, 1);
    store.put_document(&a).unwrap();
    store.put_document(&b).unwrap();

    let companies = store.companies().unwrap();
    assert_eq!(companies.len(), 1, "{companies:?}");
    let c = &companies[0];
    assert_eq!(c.key, "headlam group plc");
    assert_eq!(c.name, "Headlam Group PLC", "first display name wins");
    assert_eq!(c.years, vec![2023, 2024]);
    assert_eq!((c.documents, c.pages, c.chunks), (2, 3, 6));

    for spelling in [
        "headlam group plc.",
        "HEADLAM  GROUP, PLC",
        "Headlam-Group Plc",
    ] {
        assert_eq!(store.company(spelling).unwrap().as_ref(), Some(c));
        assert_eq!(store.documents(Some(spelling)).unwrap().len(), 2);
    }
    let docs_2023 = store.chunks("Headlam Group, plc", Some(2023)).unwrap();
    assert_eq!(docs_2023.len(), 2);
    assert!(
        docs_2023
            .iter()
            .all(|s| s.doc_id == b.doc_id && s.year == 2023)
    );
    assert_eq!(store.chunks("headlam group plc.", None).unwrap().len(), 6);
    assert!(store.company("Headlam").unwrap().is_none());
}

fn lists_are_sorted_by_stable_keys(fx: &Fx) {
    let store = fx.open();
    let docs = [
        make_doc("z1", "Zeta Corp", 2021, 1),
        make_doc("a2", "Alpha plc", 2023, 1),
        make_doc("a1", "Alpha plc", 2023, 1),
        make_doc("a0", "Alpha plc", 2020, 1),
        make_doc("m1", "Mu & Partners", 2022, 1),
    ];
    for d in &docs {
        store.put_document(d).unwrap();
    }
    let keys: Vec<_> = store
        .companies()
        .unwrap()
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(keys, ["alpha plc", "mu and partners", "zeta corp"]);

    let listed: Vec<_> = store
        .documents(None)
        .unwrap()
        .into_iter()
        .map(|d| (d.company_key, d.year, d.filename))
        .collect();
    let expected = [
        ("alpha plc", 2020, "a0.pdf"),
        ("alpha plc", 2023, "a1.pdf"),
        ("alpha plc", 2023, "a2.pdf"),
        ("mu and partners", 2022, "m1.pdf"),
        ("zeta corp", 2021, "z1.pdf"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(k, y, f)| (k.to_string(), *y, f.to_string()))
        .collect();
    assert_eq!(listed, expected);

    let chunks = store.chunks("alpha plc", None).unwrap();
    let order: Vec<_> = chunks
        .iter()
        .map(|c| (c.doc_id.clone(), c.chunk.seq))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(chunks.len(), 6);
}

fn invalid_documents_are_rejected_before_writing(fx: &Fx) {
    let store = fx.open();
    let base = make_doc("bad", "Acme", 2024, 2);
    let mut cases: Vec<(&str, NewDocument)> = Vec::new();

    let mut d = base.clone();
    d.year = 1899;
    cases.push(("year too early", d));
    let mut d = base.clone();
    d.year = 2201;
    cases.push(("year too late", d));
    let mut d = base.clone();
    d.company = " .,- ".into();
    cases.push(("empty company key", d));
    let mut d = base.clone();
    d.doc_id = String::new();
    cases.push(("empty doc_id", d));
    let mut d = base.clone();
    d.chunks[1].page = 7;
    cases.push(("chunk on missing page", d));
    let mut d = base.clone();
    d.pages[1].number = 1;
    for c in &mut d.chunks {
        c.page = 1;
    }
    cases.push(("duplicate page number", d));
    let mut d = base.clone();
    d.pages[0].number = 0;
    cases.push(("page zero", d));
    let mut d = base.clone();
    d.chunks[2].chunk_id = d.chunks[0].chunk_id.clone();
    cases.push(("duplicate chunk_id", d));
    let mut d = base.clone();
    d.chunks[2].seq = 0;
    cases.push(("duplicate seq", d));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut d = base.clone();
        let mut layout = common::two_block_layout();
        layout.blocks[1].lines[0].bbox.y1 = bad;
        d.pages[1].layout = Some(layout);
        cases.push(("non-finite line box in a layout", d));
        let mut d = base.clone();
        let mut layout = common::two_block_layout();
        layout.blocks[0].bbox.x0 = bad;
        d.pages[0].layout = Some(layout);
        cases.push(("non-finite block box in a layout", d));
    }

    for (what, doc) in cases {
        match store.put_document(&doc) {
            Err(StoreError::Invalid(msg)) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
        assert_eq!(counts(store.as_ref()), zero(), "{what}");
    }
    // The edges of the year range are fine.
    for year in [1900, 2200] {
        let d = make_doc(&format!("edge-{year}"), "Acme", year, 1);
        assert!(store.put_document(&d).unwrap().is_new());
    }
}

fn failure_midway_leaves_nothing_behind(fx: &Fx) {
    let store = fx.open();
    // Another connection installs a trigger that aborts the 3rd chunk insert.
    fx.exec(
        "CREATE TRIGGER fail_third_chunk BEFORE INSERT ON chunks
         WHEN (SELECT COUNT(*) FROM chunks WHERE document = NEW.document) = 2
         BEGIN SELECT RAISE(ABORT, 'injected failure on 3rd chunk'); END;",
        // Row by row: the chunks of one document come in one statement.
        "CREATE FUNCTION fail_third_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF (SELECT COUNT(*) FROM chunks WHERE document = NEW.document) = 2 THEN
             RAISE EXCEPTION 'injected failure on 3rd chunk';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER fail_third_chunk BEFORE INSERT ON chunks
         FOR EACH ROW EXECUTE FUNCTION fail_third_chunk();",
    );

    let doc = make_doc("doomed", "Brand New Company Ltd", 2024, 3);
    match store.put_document(&doc) {
        Err(e) if db_error(&e).is_some() => {
            assert!(e.to_string().contains("injected failure"), "{e}")
        }
        other => panic!("expected a database error, got {other:?}"),
    }
    assert_eq!(counts(store.as_ref()), zero());
    assert!(store.company("Brand New Company Ltd").unwrap().is_none());
    assert!(store.companies().unwrap().is_empty());
    assert!(store.document(&doc.doc_id).unwrap().is_none());
    assert!(store.page_text(&doc.doc_id, 1).unwrap().is_none());
    fx.assert_sound();

    // The store keeps working, and the document can be stored once the
    // fault is gone.
    fx.exec(
        "DROP TRIGGER fail_third_chunk",
        "DROP TRIGGER fail_third_chunk ON chunks",
    );
    assert!(store.put_document(&doc).unwrap().is_new());
    assert_eq!(
        counts(store.as_ref()),
        StoreCounts {
            companies: 1,
            documents: 1,
            pages: 3,
            chunks: 6
        }
    );
}

fn chunk_id_clash_with_another_document_rolls_back_everything(fx: &Fx) {
    let store = fx.open();
    let first = make_doc("first", "Old Co", 2024, 2);
    store.put_document(&first).unwrap();
    let before = counts(store.as_ref());

    // A new company's document whose 3rd chunk reuses an id already on file:
    // only the database can notice, midway through the transaction.
    let mut clash = make_doc("clash", "New Co", 2024, 2);
    clash.chunks[2].chunk_id = first.chunks[0].chunk_id.clone();
    match store.put_document(&clash) {
        Err(e) if db_error(&e).is_some() => {}
        other => panic!("expected a database error, got {other:?}"),
    }
    assert_eq!(counts(store.as_ref()), before);
    assert!(store.company("New Co").unwrap().is_none());
    assert!(store.document(&clash.doc_id).unwrap().is_none());
    assert_eq!(store.chunks("Old Co", None).unwrap().len(), 4);
}

fn reopening_keeps_data(fx: &Fx) {
    let doc = make_doc("persist", "Headlam Group PLC", 2024, 2);
    let summary = {
        let store = fx.open();
        store.put_document(&doc).unwrap().into_summary()
    };

    let store = fx.open();
    assert_eq!(store.document(&doc.doc_id).unwrap(), Some(summary.clone()));
    assert_eq!(
        store.put_document(&doc).unwrap(),
        IngestOutcome::AlreadyIngested(summary)
    );
    assert_eq!(
        store.page_text(&doc.doc_id, 2).unwrap(),
        Some(doc.pages[1].text.clone())
    );
    assert_eq!(
        store.chunks("Headlam Group PLC", Some(2024)).unwrap().len(),
        4
    );
    fx.assert_sound();
}

fn concurrent_puts_from_threads_with_their_own_stores(fx: &Fx) {
    const WORKERS: usize = 8;
    let barrier = Arc::new(Barrier::new(WORKERS));
    let handles: Vec<_> = thread::scope(|scope| {
        (0..WORKERS)
            .map(|w| {
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    let docs = racing_docs(w);
                    // Open concurrently too: several connections race to create
                    // the schema of a fresh database.
                    barrier.wait();
                    let store = fx.open();
                    barrier.wait();
                    docs.iter()
                        .map(|d| {
                            let outcome = store.put_document(d).expect("put");
                            assert_eq!(outcome.summary().doc_id, d.doc_id);
                            (d.doc_id.clone(), outcome.is_new())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    check_race_results(fx, WORKERS, &handles);
}

fn one_store_shared_between_threads(fx: &Fx) {
    let store = fx.open();
    let doc = Arc::new(make_doc("same", "Shared plc", 2024, 2));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let doc = Arc::clone(&doc);
            thread::spawn(move || store.put_document(&doc).unwrap().is_new())
        })
        .collect();
    let new = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&n| n)
        .count();
    assert_eq!(new, 1);
    assert_eq!(counts(store.as_ref()).documents, 1);
}

fn concurrent_puts_from_processes(fx: &Fx) {
    const WORKERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let go: PathBuf = dir.path().join("go");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "child_process_worker",
                    "--exact",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_DB, fx.url())
                .env(CHILD_WORKER, w.to_string())
                .env(CHILD_GO, &go)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    std::fs::write(&go, b"go").unwrap();
    let mut outcomes = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in stdout.lines() {
            // libtest prints "test child_process_worker ... " without a
            // newline before the body runs, so look inside the line.
            if let Some(rest) = line.find("OUTCOME ").map(|i| &line[i + 8..]) {
                let mut words = rest.split_whitespace();
                let doc_id = words.next().unwrap().to_string();
                outcomes.push((doc_id, words.next() == Some("new")));
            }
        }
    }
    check_race_results(fx, WORKERS, &outcomes);
}

/// Criterion matches kept for later scoring runs: stored once per rubric,
/// chunk and theme, read back per company-year, refused (with nothing
/// written) for a chunk that is not stored, and kept in a migrated database
/// across reopening.
fn rule_matches_round_trip_per_rubric_company_and_year(fx: &Fx) {
    use esg_store::RuleMatches;
    let store = fx.open();
    let a = make_doc("a", "Acme plc", 2022, 2);
    let b = make_doc("b", "Acme plc", 2023, 1);
    let other = make_doc("c", "Other SA", 2022, 1);
    for d in [&a, &b, &other] {
        store.put_document(d).unwrap();
    }
    let rm = |chunk: &Chunk, theme: &str, byte: u8| RuleMatches {
        chunk_id: chunk.chunk_id.clone(),
        theme: theme.to_string(),
        data: vec![byte, 0, 0xff],
    };
    let batch = vec![
        rm(&a.chunks[1], "GHG", 1),
        rm(&a.chunks[0], "TSP", 2),
        rm(&a.chunks[0], "GHG", 3),
        rm(&b.chunks[0], "GHG", 4),
        rm(&other.chunks[0], "GHG", 5),
    ];
    assert_eq!(store.put_rule_matches("r1", &batch).unwrap(), 5);
    // Stored once: a second write of the same keys (even with other data) adds nothing.
    let mut again = batch.clone();
    again[0].data = vec![9];
    assert_eq!(store.put_rule_matches("r1", &again).unwrap(), 0);
    let got = store.rule_matches("r1", "ACME PLC", 2022).unwrap();
    let mut want = vec![batch[0].clone(), batch[1].clone(), batch[2].clone()];
    want.sort_by(|x, y| (&x.chunk_id, &x.theme).cmp(&(&y.chunk_id, &y.theme)));
    assert_eq!(got, want);
    assert_eq!(
        store.rule_matches("r1", "Acme plc", 2023).unwrap(),
        vec![batch[3].clone()]
    );
    assert!(
        store
            .rule_matches("r2", "Acme plc", 2022)
            .unwrap()
            .is_empty()
    );
    assert!(store.rule_matches("r1", "Nobody", 2022).unwrap().is_empty());
    // A chunk that is not stored: refused, and the batch is not half-written.
    let bad = vec![
        rm(&a.chunks[0], "RD", 6),
        RuleMatches {
            chunk_id: "no-such-chunk".into(),
            theme: "RD".into(),
            data: vec![],
        },
    ];
    assert!(matches!(
        store.put_rule_matches("r1", &bad),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.rule_matches("r1", "Acme plc", 2022).unwrap().len(), 3);
    assert!(matches!(
        store.put_rule_matches("", &batch),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.put_rule_matches("r1", &[]).unwrap(), 0);
    drop(store);
    let reopened = fx.open();
    assert_eq!(reopened.rule_matches("r1", "acme plc", 2022).unwrap(), want);
}

fn vectors_are_stored_once_per_model_and_chunk_and_backfill_resumes(fx: &Fx) {
    let store = fx.open();
    let a = make_doc("vec-a", "Acme plc", 2022, 3); // 6 chunks
    let b = make_doc("vec-b", "Beta AG", 2022, 2); // 4 chunks
    store.put_document(&a).unwrap();
    store.put_document(&b).unwrap();
    let m = "test/model";
    assert_eq!(store.vector_dim(m).unwrap(), None);
    assert_eq!(
        store.vector_counts(m, None).unwrap(),
        VectorCounts {
            chunks: 10,
            embedded: 0
        }
    );

    // Pending chunks come in document-then-seq order, per document or all.
    let pending_a = store
        .chunks_without_vectors(m, Some(&a.doc_id), 100)
        .unwrap();
    let ids_a: Vec<&str> = a.chunks.iter().map(|c| c.chunk_id.as_str()).collect();
    assert_eq!(
        pending_a
            .iter()
            .map(|p| p.chunk_id.as_str())
            .collect::<Vec<_>>(),
        ids_a
    );
    assert!(pending_a.iter().all(|p| p.doc_id == a.doc_id));
    assert_eq!(pending_a[0].text, a.chunks[0].text);
    assert_eq!(store.chunks_without_vectors(m, None, 4).unwrap().len(), 4);

    // A first batch, as a backfill killed after one commit leaves it.
    let first: Vec<ChunkVector> = pending_a[..4]
        .iter()
        .enumerate()
        .map(|(i, p)| ChunkVector {
            chunk_id: p.chunk_id.clone(),
            vector: vector(i, 8),
        })
        .collect();
    assert_eq!(store.put_vectors(m, 8, &first).unwrap(), 4);
    assert_eq!(store.put_vectors(m, 8, &first).unwrap(), 0, "idempotent");
    assert_eq!(store.vector_dim(m).unwrap(), Some(8));
    let rest = store.chunks_without_vectors(m, None, 100).unwrap();
    assert_eq!(rest.len(), 6, "resumes with what is missing");
    assert_eq!(rest[0].chunk_id, a.chunks[4].chunk_id);
    // Another model sees every chunk as missing.
    assert_eq!(
        store
            .chunks_without_vectors("other", None, 100)
            .unwrap()
            .len(),
        10
    );

    // Read back per company-year, sorted by chunk id, bytes exact.
    let got = store.vectors(m, "ACME PLC", 2022).unwrap();
    let mut want = first.clone();
    want.sort_by(|x, y| x.chunk_id.cmp(&y.chunk_id));
    assert_eq!(got, want);
    assert!(store.vectors(m, "Beta AG", 2022).unwrap().is_empty());
    assert!(store.vectors(m, "Acme", 2021).unwrap().is_empty());
    assert_eq!(
        store.vector_counts(m, Some(("acme plc", 2022))).unwrap(),
        VectorCounts {
            chunks: 6,
            embedded: 4
        }
    );

    // Survives reopening.
    drop(store);
    let store = fx.open();
    assert_eq!(store.vectors(m, "Acme plc", 2022).unwrap(), want);
    fx.assert_sound();
}

fn bad_vectors_are_refused_and_write_nothing(fx: &Fx) {
    let store = fx.open();
    let a = make_doc("vec-bad", "Acme plc", 2022, 2);
    store.put_document(&a).unwrap();
    let m = "test/model";
    let ok = |i: usize| ChunkVector {
        chunk_id: a.chunks[i].chunk_id.clone(),
        vector: vector(i, 4),
    };
    let invalid = |r: Result<usize, StoreError>, needle: &str| match r {
        Err(StoreError::Invalid(msg)) => assert!(msg.contains(needle), "{msg}"),
        other => panic!("expected Invalid({needle}), got {other:?}"),
    };
    // Wrong byte length.
    let short = ChunkVector {
        chunk_id: a.chunks[0].chunk_id.clone(),
        vector: vec![0; 15],
    };
    invalid(store.put_vectors(m, 4, &[ok(1), short]), "15 bytes");
    // Unknown chunk: the whole batch is rolled back.
    let ghost = ChunkVector {
        chunk_id: "no-such-chunk".into(),
        vector: vector(9, 4),
    };
    invalid(store.put_vectors(m, 4, &[ok(0), ghost]), "not stored");
    invalid(store.put_vectors("", 4, &[ok(0)]), "model id");
    invalid(store.put_vectors(m, 0, &[]), "dimension");
    assert_eq!(store.vector_counts(m, None).unwrap().embedded, 0);
    // One dimension per model.
    assert_eq!(store.put_vectors(m, 4, &[ok(0)]).unwrap(), 1);
    let wide = ChunkVector {
        chunk_id: a.chunks[1].chunk_id.clone(),
        vector: vector(1, 6),
    };
    invalid(
        store.put_vectors(m, 6, std::slice::from_ref(&wide)),
        "4-dimensional",
    );
    // ... but another model may have another dimension.
    assert_eq!(store.put_vectors("wide/model", 6, &[wide]).unwrap(), 1);
    assert_eq!(store.vector_counts(m, None).unwrap().embedded, 1);
}

fn a_company_takes_the_sector_of_its_latest_document_that_names_one(fx: &Fx) {
    let store = fx.open();
    let mut d2022 = make_doc("s22", "Acme", 2022, 1);
    d2022.sector = Some("Utilities".into());
    let mut d2023 = make_doc("s23", "Acme", 2023, 1);
    d2023.sector = None;
    store.put_document(&d2022).unwrap();
    store.put_document(&d2023).unwrap();
    let acme = store.company("acme").unwrap().unwrap();
    assert_eq!(acme.sector.as_deref(), Some("Utilities"), "2023 names none");
    let docs = store.documents(Some("Acme")).unwrap();
    assert_eq!(docs[0].sector.as_deref(), Some("Utilities"));
    assert_eq!(docs[1].sector, None);

    let mut d2024 = make_doc("s24", "ACME", 2024, 1);
    d2024.sector = Some("Energy".into());
    store.put_document(&d2024).unwrap();
    assert_eq!(
        store.companies().unwrap()[0].sector.as_deref(),
        Some("Energy")
    );

    let mut other = make_doc("o", "Other", 2024, 1);
    other.sector = None;
    store.put_document(&other).unwrap();
    assert_eq!(store.company("Other").unwrap().unwrap().sector, None);
}

fn a_sector_that_is_not_normalised_is_refused_before_writing(fx: &Fx) {
    let store = fx.open();
    for bad in ["  Utilities", "Oil  and gas", "", "a\u{7}b"] {
        let mut d = make_doc("bad", "Acme", 2022, 1);
        d.sector = Some(bad.into());
        let e = store.put_document(&d).unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)), "{bad:?}: {e}");
    }
    assert_eq!(counts(store.as_ref()), zero());
    assert_eq!(
        esg_store::normalize_sector("  Oil  and   gas ")
            .unwrap()
            .as_deref(),
        Some("Oil and gas")
    );
    assert_eq!(esg_store::normalize_sector("   ").unwrap(), None);
    assert!(esg_store::normalize_sector(&"x".repeat(101)).is_err());
    assert!(esg_store::normalize_sector("a\nb").is_err());
}

/// Documents every worker of a concurrency test stores.
const SHARED_DOCS: usize = 12;

/// The documents the concurrency tests race on, in the order worker `worker`
/// stores them: the shared ones (all workers, same order, to make them
/// collide), one of two half-shared ones, and its own.
fn racing_docs(worker: usize) -> Vec<NewDocument> {
    // Company spellings vary between workers; all share one key.
    let spelling = ["Race Co", "race co.", "RACE CO", "Race-Co"][worker % 4];
    let mut docs: Vec<_> = (0..SHARED_DOCS)
        .map(|i| make_doc(&format!("shared-{i}"), spelling, 2024, 1 + i as u32 % 3))
        .collect();
    docs.push(make_doc(
        &format!("half-{}", worker % 2),
        "Half & Half plc",
        2023,
        2,
    ));
    docs.push(make_doc(
        &format!("own-{worker}"),
        &format!("Own {worker} Ltd"),
        2022,
        1,
    ));
    docs
}

/// Every document offered was stored exactly once, and the totals are those
/// of the distinct documents.
fn check_race_results(fx: &Fx, workers: usize, outcomes: &[(String, bool)]) {
    let mut expected_docs: HashMap<String, NewDocument> = HashMap::new();
    let mut offered = 0;
    for w in 0..workers {
        for d in racing_docs(w) {
            offered += 1;
            expected_docs.entry(d.doc_id.clone()).or_insert(d);
        }
    }
    assert_eq!(outcomes.len(), offered, "every put answered");
    let mut ingested: HashMap<&str, usize> = HashMap::new();
    for (doc_id, new) in outcomes {
        *ingested.entry(doc_id).or_default() += usize::from(*new);
    }
    assert_eq!(ingested.len(), expected_docs.len());
    for (doc_id, n) in &ingested {
        assert_eq!(*n, 1, "{doc_id} reported Ingested {n} times");
    }

    let keys: std::collections::HashSet<_> = expected_docs
        .values()
        .map(|d| esg_core::company_key(&d.company))
        .collect();
    let store = fx.open();
    assert_eq!(
        counts(store.as_ref()),
        StoreCounts {
            companies: keys.len() as u64,
            documents: expected_docs.len() as u64,
            pages: expected_docs.values().map(|d| d.pages.len() as u64).sum(),
            chunks: expected_docs.values().map(|d| d.chunks.len() as u64).sum(),
        }
    );
    let race = store.company("race co").unwrap().unwrap();
    assert_eq!(race.documents, SHARED_DOCS as u32);
    for d in expected_docs.values() {
        let stored = store.chunks(&d.company, Some(d.year)).unwrap();
        let mine: Vec<_> = stored
            .into_iter()
            .filter(|c| c.doc_id == d.doc_id)
            .map(|c| c.chunk)
            .collect();
        assert_eq!(mine, d.chunks);
    }
    fx.assert_sound();
}

const CHILD_DB: &str = "ESG_STORE_TEST_CHILD_DB";
const CHILD_WORKER: &str = "ESG_STORE_TEST_CHILD_WORKER";
const CHILD_GO: &str = "ESG_STORE_TEST_CHILD_GO";

/// Body of a child process in `concurrent_puts_from_processes`; a no-op in
/// an ordinary test run.
#[test]
fn child_process_worker() {
    let (Ok(db), Ok(worker), Ok(go)) = (
        std::env::var(CHILD_DB),
        std::env::var(CHILD_WORKER),
        std::env::var(CHILD_GO),
    ) else {
        return;
    };
    let worker: usize = worker.parse().unwrap();
    let docs = racing_docs(worker);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(&go).exists() {
        assert!(Instant::now() < deadline, "never told to go");
        thread::sleep(Duration::from_millis(1));
    }
    let loc = StoreLocation::from_url_or_dir(Some(&db), Path::new("unused")).unwrap();
    let store = esg_store::open(&loc, &PgOptions::default()).expect("open");
    for d in &docs {
        let outcome = store.put_document(d).expect("put");
        let word = if outcome.is_new() { "new" } else { "already" };
        println!("OUTCOME {} {word}", d.doc_id);
    }
}
