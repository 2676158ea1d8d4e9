//! karmayogi-lrs's own black-box conformance suite: HTTP tests named after the
//! requirement of the xAPI standard they check (1.0.3 anchors such as
//! `Communication 3.3.s3.b1` become `comm_3_3_s3_b1_…`), run against both 1.0.3 and
//! 2.0.0 where the requirement applies to both.
//!
//! Each test starts its own server (see `harness`). Run with
//! `cargo test --test conformance` or `cargo nextest run --test conformance`.
mod browser;
mod harness;

mod about;
mod admin;
mod attachments;
mod audit;
mod audit_erasure;
mod audit_tamper;
mod audit_verify;
mod audit_witness;
mod audit_witnessed;
mod auth;
mod bearer;
mod cmi5;
mod completions;
mod consistency;
mod console;
mod console_oidc;
mod cors;
mod credentials;
mod departments;
mod documents;
mod errors;
mod export_import;
mod faults;
mod feed;
mod forwarding;
mod front_door;
mod head;
mod limits;
mod metrics;
mod oidc;
mod openapi;
mod overload;
mod quotas;
mod scorm;
mod scorm_browser;
mod signed;
mod statement_queries;
mod statement_validation;
mod statements;
mod storage;
mod store_mongo;
mod store_sqlite;
mod versioning;
