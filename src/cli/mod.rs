//! Subcommands other than `serve`, one file each (wiring in `main.rs`).
pub mod audit_monitor;
pub mod audit_verify;
pub mod audit_witness;
pub mod export;
pub mod forwarding;
pub mod import;
mod progress;
