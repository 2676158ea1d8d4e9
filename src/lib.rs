//! karmayogi-lrs: a Learning Record Store for xAPI 1.0.3 and 2.0.
//!
//! Layers, data flowing one way: `http` (actix-web) → `xapi` (the standard, pure) →
//! `store` (persistence behind one trait).
pub mod admin;
pub mod analytics;
pub mod audit;
pub mod auditlog;
pub mod auth;
pub mod cli;
pub mod completions;
pub mod config;
pub mod departments;
pub mod error;
pub mod feed;
pub mod forwarder;
pub mod forwarding;
pub mod http;
pub mod ingest;
pub mod launcher;
pub mod metrics;
pub mod quota;
pub mod scorm;
pub mod store;
pub mod witness_client;
pub mod xapi;
