//! Quotes placed on their PDF pages (issue 12), for `/score` and `/trace`:
//! each quote narrowed to the layout block of its match and given its box
//! ([`esg_core::PageLayout::place`], [`esg_score::Scorecard::place_quotes`]).
//!
//! Documents are content-addressed (a `doc_id` is the sha256 of the bytes
//! and its pages never change), so a placement once found is right for as
//! long as the document exists, on every replica; the cache needs no
//! invalidation, only a bound. Without it a warm `/score` would read and
//! parse one page layout per quote (about 40) on every request.

use esg_score::{Evidence, Placement, Scorecard};
use esg_store::Store;
use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept before the cache is emptied and refilled (~2 MiB at the
/// bound).
const MAX_ENTRIES: usize = 16_384;

/// The quote's evidence id: it names the document, chunk, criterion and
/// span, so the quote and its page (and the match kept in the quote, one
/// per id).
type Key = String;

/// Placements of quotes, kept across requests.
#[derive(Debug, Default)]
pub struct QuotePlaces {
    map: Mutex<HashMap<Key, Placement>>,
}

impl QuotePlaces {
    /// Places every quote of `card` on its page. A store error leaves the
    /// quotes it concerns as they are, without a box (and is not cached):
    /// placing helps a reader, it never fails a score.
    pub fn place(&self, store: &dyn Store, card: &mut Scorecard) {
        let mut layouts: HashMap<(String, u32), Result<Option<esg_core::PageLayout>, ()>> =
            HashMap::new();
        card.place_quotes(|e: &Evidence| {
            if let Some(p) = self.lock().get(&e.evidence_id) {
                return p.clone();
            }
            let page = layouts
                .entry((e.doc_id.clone(), e.page))
                .or_insert_with(|| {
                    crate::http::store_op("store.page_layout", || {
                        store.page_layout(&e.doc_id, e.page)
                    })
                    .map_err(|_| ())
                });
            let Ok(page) = page else {
                return Placement {
                    keep: None,
                    bbox: None,
                };
            };
            let p = place(page.as_ref(), e);
            let mut map = self.lock();
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(e.evidence_id.clone(), p.clone());
            p
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Placement>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The placement of one quote on its page's layout (none without one).
pub fn place(layout: Option<&esg_core::PageLayout>, e: &Evidence) -> Placement {
    let focus = e
        .quote
        .find(e.matched.as_str())
        .map_or(0..0, |i| i..i + e.matched.len());
    match layout.and_then(|l| l.place(&e.quote, focus)) {
        Some((keep, bbox)) => Placement {
            keep: Some(keep),
            bbox: Some(bbox),
        },
        None => Placement {
            keep: None,
            bbox: None,
        },
    }
}
