//! Domain model of the ESG Scoring API.
//!
//! This crate holds the pure parts of the product: document and chunk types,
//! text clean-up, sentence-aware chunking, company-name keys, hashing and
//! language detection.
//! It performs no I/O, so every rule here is testable on plain strings.

pub mod chunk;
pub mod clean;
pub mod company;
pub mod hash;
pub mod lang;
pub mod layout;
pub mod model;

pub use chunk::{ChunkParams, chunk_pages};
pub use clean::{CleanedPage, clean_pages};
pub use company::company_key;
pub use hash::sha256_hex;
pub use lang::detect_language;
pub use layout::{BBox, PageLayout};
pub use model::{Chunk, MediaType, RawPage};
