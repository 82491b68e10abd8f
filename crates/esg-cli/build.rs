//! Links the `esg` binary as a position-dependent executable (`-no-pie`).
//!
//! Every `esg ingest` starts `esg` twice: the command itself and the
//! sandboxed extraction worker (`esg_ingest::Sandbox`), once per document.
//! As a position-independent executable, each start had the dynamic loader
//! apply 167,720 relative relocations, most of them pointers in
//! oxidize-pdf's CID-to-Unicode tables (2.7 MB of the 3.6 MB of
//! `.data.rel.ro`), copying every page of that section before `main`.
//! Measured side by side (best of 15, this 2-core machine): `esg --version`
//! 4.7–7.6 ms as PIE, 1.8–2.7 ms without; ingesting a 6-page PDF 42.8 →
//! 38.1 ms. Packing the relocations instead (`-z pack-relative-relocs`,
//! RELR) kept the copy and gained nothing (5.4–7.6 ms).
//!
//! The price: the executable's own code and data are not placed at a random
//! address (ASLR still randomises the stack, heap, shared libraries and
//! every mapping made at run time). The worker that parses untrusted files
//! keeps its other bounds: its own process, memory, CPU-time and wall-clock
//! limits, and death with its parent.

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
