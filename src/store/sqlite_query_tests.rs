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
    insert_in(store, &Department::root(), agent, n).await
}

async fn insert_in(
    store: &SqliteStore,
    department: &Department,
    agent: &str,
    n: usize,
) -> Vec<String> {
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
        let batch = StatementBatch::new(
            department,
            vec![record],
            vec![],
            vec![],
            document::merge_definition,
        )
        .expect("a batch");
        ids.push(batch.records[0].id.clone());
        store.insert_statements(batch).await.expect("insert");
    }
    ids
}

/// The store's key index file, once it has folded the first `n` statements.
fn folded_index(path: &str, n: i64) -> Connection {
    let index = Connection::open(format!("{path}.keys")).expect("open the index");
    index
        .busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let folded: i64 = index
            .query_row("SELECT folded_through FROM meta", [], |r| r.get(0))
            .expect("folded_through");
        if folded >= n {
            return index;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index did not fold"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
    let index = folded_index(path, 8);
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

/// Index entries the query's scan key has: what its scan walks through at most.
fn scanned(index: &Connection, q: &StatementQuery) -> i64 {
    let first = q.index_keys().first().cloned().expect("a filtered query");
    index
        .query_row(
            "SELECT count(*) FROM statement_keys WHERE key = ?1",
            params![key_hash(&first)],
            |r| r.get(0),
        )
        .expect("count")
}

/// Each query scans that many index entries and answers those statements, in order.
async fn check(
    store: &SqliteStore,
    index: &Connection,
    cases: &[(StatementQuery, i64, Vec<String>)],
    when: &str,
) {
    for (q, entries, want) in cases {
        assert_eq!(
            scanned(index, q),
            *entries,
            "{when}, entries scanned for {:?}",
            q.keys
        );
        let got: Vec<String> = store
            .query_statements(q)
            .await
            .expect("query")
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(&got, want, "{when}: {:?}", q.keys);
    }
}

/// A department reader's filtered query scans the entries of its own subtree only: a
/// small department's read of a filter that other departments (and the root) use a lot
/// costs what the small department holds, not what the store holds. Answers are exact
/// for the department, its parent and the root; and an index file made before these
/// entries existed is rebuilt on open, with the same answers.
#[tokio::test]
async fn a_department_query_scans_only_its_subtree_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lrs.db");
    let path = path.to_str().expect("utf-8 path");
    let dept = |p: &str| Department::parse(p).expect("a path");
    let store = SqliteStore::open(path).expect("open");
    // Everyone's statements have the same verb; the agent `shared` is in all three places.
    let root = insert_in(&store, &Department::root(), "shared", 40).await;
    let big = insert_in(&store, &dept("moe/big"), "shared", 60).await;
    let small = insert_in(&store, &dept("moe/small"), "shared", 3).await;
    let index = folded_index(path, 103);

    let verb = format!("{}http://adlnet.gov/expapi/verbs/attempted", key::VERB);
    let query = |keys: Vec<String>, d: &str| {
        let mut q = StatementQuery {
            keys,
            limit: 500,
            ..Default::default()
        };
        q.within(&dept(d));
        q
    };
    let newest_first = |ids: &[&Vec<String>]| {
        let mut all: Vec<String> = ids.iter().flat_map(|v| v.iter().cloned()).collect();
        all.reverse();
        all
    };
    let cases = [
        (
            query(vec![verb.clone()], "moe/small"),
            3,
            newest_first(&[&small]),
        ),
        (
            query(vec![agent_key("shared"), verb.clone()], "moe/small"),
            3,
            newest_first(&[&small]),
        ),
        (
            query(vec![verb.clone()], "moe"),
            63,
            newest_first(&[&big, &small]),
        ),
        (
            query(vec![verb.clone()], "/"),
            103,
            newest_first(&[&root, &big, &small]),
        ),
    ];
    check(&store, &index, &cases, "at first").await;
    store.close().await;

    // An index of the layout before (no keys within departments, user_version 0).
    for (q, _, _) in &cases[..3] {
        let first = q.index_keys().first().cloned().expect("a filtered query");
        index
            .execute(
                "DELETE FROM statement_keys WHERE key = ?1",
                params![key_hash(&first)],
            )
            .expect("forget the keys within departments");
    }
    index
        .execute_batch("PRAGMA user_version = 0")
        .expect("old layout");
    drop(index);
    let store = SqliteStore::open(path).expect("reopen");
    let index = folded_index(path, 103);
    check(&store, &index, &cases, "after the rebuild").await;
    store.close().await;
}

/// While the key index catches up in the background (`--sqlite-index-fold-at-start`), a
/// filtered query answers Unavailable (503, with Retry-After) rather than a part of the
/// statements; an unfiltered one, served by the statements themselves, answers as usual.
#[tokio::test]
async fn filtered_queries_wait_for_a_key_index_that_is_catching_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lrs.db");
    let path = path.to_str().expect("utf-8 path");
    let mut store = SqliteStore::open(path).expect("open");
    let ids = insert(&store, "a", 3).await;
    let by_agent = StatementQuery {
        keys: vec![agent_key("a")],
        limit: 10,
        ..Default::default()
    };
    let unfiltered = StatementQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store
            .query_statements(&by_agent)
            .await
            .map(|r| r.len())
            .ok(),
        Some(3)
    );
    // The state of a store opened with more left to fold than it folds before serving.
    let catch_up = key_index::CatchUp {
        statements: Connection::open(path).expect("a reader"),
        through: 1,
        target: 3,
        step: key_index::CATCH_UP_STEP,
    };
    // (The indexer thread keeps the store's own; it is put back before closing.)
    let own = std::mem::replace(&mut store.keys, Arc::new(KeyIndex::new(1, Some(&catch_up))));
    match store.query_statements(&by_agent).await {
        Err(e @ StoreError::Unavailable(_)) => {
            let x = XapiError::from(e);
            assert_eq!(x.status.as_u16(), 503);
            assert!(x.retry_after.is_some());
            assert!(
                x.message.contains("key index is being rebuilt (1 of 3"),
                "{}",
                x.message
            );
        }
        other => panic!("a filtered query during the catch-up: {other:?}"),
    }
    let all = store
        .query_statements(&unfiltered)
        .await
        .expect("unfiltered");
    assert_eq!(all.len(), ids.len());
    store.keys = own;
    store.close().await;
}
