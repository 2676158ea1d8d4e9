//! Communication 3.2.s3.b11: requests larger than the LRS's limit are rejected with 413,
//! and the limit is configurable (3.2 "configurable to accept … any reasonable size").
use crate::harness::{statement, Lrs, Response, VERSIONS};
use serde_json::{json, Value};

const LIMIT: usize = 1024;

fn small_limit_lrs() -> Lrs {
    let lrs = Lrs::builder()
        .arg("--max-body-bytes")
        .arg(LIMIT.to_string())
        .start();
    lrs.require_spawned("it starts the server with --max-body-bytes");
    lrs
}

/// A valid statement whose JSON is about `size` bytes (padding in a result extension).
fn statement_of_size(size: usize) -> Value {
    let mut s = statement();
    let base = serde_json::to_vec(&s).unwrap().len() + 80;
    let pad = "x".repeat(size.saturating_sub(base));
    s["result"] = json!({ "extensions": { "http://example.com/extensions/padding": pad } });
    s
}

fn assert_413(r: &Response, version: &str) {
    r.assert_error(413);
    r.assert_version(version);
}

/// Communication 3.2.s3.b11: a 4 KB statement against a 1 KB limit → 413 with a JSON
/// error; nothing stored; the server keeps serving.
#[test]
fn comm_3_2_s3_b11_oversized_statement_rejected_413() {
    let lrs = small_limit_lrs();
    for v in VERSIONS {
        let s = statement_of_size(4096);
        let id = s["id"].as_str().unwrap().to_owned();
        assert!(serde_json::to_vec(&s).unwrap().len() >= 4000);
        assert_413(&lrs.post("/statements").version(v).json(&s).send(), v);
        assert_413(
            &lrs.put("/statements")
                .query("statementId", &id)
                .version(v)
                .json(&s)
                .send(),
            v,
        );
        // A batch over the limit made of statements each under it.
        let batch = json!([statement_of_size(600), statement_of_size(600)]);
        assert_413(&lrs.post("/statements").version(v).json(&batch).send(), v);

        // Still serving, nothing stored.
        lrs.get("/about").version(v).send().assert_status(200);
        lrs.get("/statements")
            .query("statementId", &id)
            .version(v)
            .send()
            .assert_error(404);
        // A statement under the limit is accepted.
        let small = statement_of_size(600);
        assert!(serde_json::to_vec(&small).unwrap().len() < LIMIT);
        lrs.post("/statements")
            .version(v)
            .json(&small)
            .send()
            .assert_status(200);
    }
}

/// Communication 3.2.s3.b11: the limit holds for a chunked body (no Content-Length the
/// server could check up front).
#[test]
fn comm_3_2_s3_b11_oversized_chunked_body_rejected_413() {
    let lrs = small_limit_lrs();
    for v in VERSIONS {
        let s = statement_of_size(4096);
        let id = s["id"].as_str().unwrap().to_owned();
        let body = serde_json::to_vec(&s).unwrap();
        assert_413(
            &lrs.post("/statements")
                .version(v)
                .body("application/json", body)
                .chunked()
                .send(),
            v,
        );
        lrs.get("/about").version(v).send().assert_status(200);
        lrs.get("/statements")
            .query("statementId", &id)
            .version(v)
            .send()
            .assert_error(404);
    }
}

/// Communication 3.2.s3.b11: documents over the limit → 413 (State resource), nothing
/// stored.
#[test]
fn comm_3_2_s3_b11_oversized_document_rejected_413() {
    let lrs = small_limit_lrs();
    let agent = r#"{"objectType":"Agent","mbox":"mailto:conformance-tester@example.com"}"#;
    let activity = "http://example.com/activities/conformance-test";
    for v in VERSIONS {
        let state_id = format!("big-{v}");
        let r = lrs
            .put("/activities/state")
            .query("activityId", activity)
            .query("agent", agent)
            .query("stateId", &state_id)
            .version(v)
            .body("application/octet-stream", vec![b'x'; 4096])
            .send();
        assert_413(&r, v);
        lrs.get("/activities/state")
            .query("activityId", activity)
            .query("agent", agent)
            .query("stateId", &state_id)
            .version(v)
            .send()
            .assert_error(404);
    }
}
