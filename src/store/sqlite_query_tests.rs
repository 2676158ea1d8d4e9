//! Statement queries of the embedded store against a key index that holds hashes.

use super::*;
use crate::xapi::statement::{self, key, Receipt};
use crate::xapi::{document, XapiVersion};
use serde_json::json;

fn agent_statement(agent: &str) -> serde_json::Value {
    json!({
        "actor": {"mbox": format!("mailto:{agent}@example.gov.in")},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
        "object": {"id": "https://example.gov.in/course/1"}
    })
}

async fn insert(store: &SqliteStore, agent: &str, n: usize) -> Vec<String> {
    let authority = json!({"objectType": "Agent", "account": {"homePage": "https://lrs.example", "name": "test"}});
    let receipt = Receipt {
        version: XapiVersion::V2_0,
        authority: &authority,
        may_define: false,
    };
    let mut ids = Vec::new();
    for _ in 0..n {
        let record = statement::prepare(
            agent_statement(agent),
            &receipt,
            chrono::Utc::now().timestamp_micros(),
        )
        .expect("a valid statement")
        .record;
        ids.push(record.id.clone());
        let batch = StatementBatch {
            records: vec![record],
            attachments: vec![],
            definitions: vec![],
            merge_definition: document::merge_definition,
        };
        store.insert_statements(batch).await.expect("insert");
    }
    ids
}

fn agent_key(agent: &str) -> String {
    format!("{}Agent|mbox|mailto:{agent}@example.gov.in", key::AGENT)
}

/// The key index holds 64-bit hashes of the filter keys. A hash collision (forged here:
/// the index lists b's statements under a's hash too) must never return a statement the
/// filter does not match, and `limit` must count only true matches: the index's newest
/// hits for a are then all b's, and the query still answers a's statements, all of them.
#[tokio::test]
async fn a_key_hash_collision_never_answers_a_statement_that_does_not_match() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lrs.db");
    let path = path.to_str().expect("utf-8 path");
    let store = SqliteStore::open(path).expect("open");
    let mut a = insert(&store, "a", 3).await;
    let b = insert(&store, "b", 5).await;
    // Wait for the index to fold every statement (the tail is checked apart).
    let index = Connection::open(format!("{path}.keys")).expect("open the index");
    index
        .busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let folded: i64 = index
            .query_row("SELECT folded_through FROM meta", [], |r| r.get(0))
            .expect("folded_through");
        if folded >= 8 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index did not fold"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let forged = index
        .execute(
            "INSERT INTO statement_keys (key, stored, seq)
             SELECT ?1, stored, seq FROM statement_keys WHERE key = ?2",
            params![key_hash(&agent_key("a")), key_hash(&agent_key("b"))],
        )
        .expect("forge the collision");
    assert_eq!(forged, b.len());
    drop(index);

    let query = StatementQuery {
        keys: vec![agent_key("a")],
        limit: 3,
        ..Default::default()
    };
    let got: Vec<String> = store
        .query_statements(&query)
        .await
        .expect("query")
        .into_iter()
        .map(|s| s.id)
        .collect();
    a.reverse();
    assert_eq!(got, a, "newest first, a's statements only");
    store.close().await;
}
