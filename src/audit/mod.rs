//! The audit transparency log, pure part: RFC 6962 Merkle hashing and proofs (`merkle`),
//! C2SP signed notes and checkpoints (`note`), C2SP tlog-tiles arithmetic (`tiles`), and
//! the leaves: salted statement commitments over RFC 8785 canonical JSON, erasures (`leaf`).
//! No I/O: the store supplies stored hashes through `merkle::HashReader`, and the
//! sequencer and HTTP endpoints are built on top. The formats are specified in
//! `docs/AUDIT.md`.
pub mod certificate;
pub mod erasure;
pub mod leaf;
pub mod merkle;
pub mod monitor;
pub mod note;
pub mod records;
pub mod tiles;
pub mod witness;
