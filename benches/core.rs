//! Criterion benches of the ingest and query paths (issue 6): parse + validate, prepare,
//! ids/canonical formatting, and the embedded store's insert and indexed query.
//! `cargo bench --bench core` (add `-- --quick` for a short run).
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use karmayogi_lrs::store::sqlite::SqliteStore;
use karmayogi_lrs::store::{StatementBatch, StatementQuery, Store};
use karmayogi_lrs::xapi::statement::{self, key, Receipt};
use karmayogi_lrs::xapi::{document, validate, XapiVersion};
use serde_json::{json, Value};
use std::collections::HashMap;

fn sample(i: u64) -> Value {
    json!({
        "actor": {"objectType": "Agent", "name": format!("Officer {}", i % 1000), "mbox": format!("mailto:officer{}@karmayogi.example.gov.in", i % 1000)},
        "verb": {"id": format!("http://adlnet.gov/expapi/verbs/v{}", i % 10), "display": {"en-US": "completed", "hi-IN": "पूर्ण"}},
        "object": {"objectType": "Activity", "id": format!("https://igot.example.gov.in/course/{}", i % 200),
            "definition": {"name": {"en-US": "Course: Public administration module", "hi-IN": "पाठ्यक्रम"},
                "description": {"en-US": "A module of the capacity-building programme for civil servants."},
                "type": "http://adlnet.gov/expapi/activities/course"}},
        "result": {"score": {"scaled": 0.8, "raw": 80, "min": 0, "max": 100}, "success": true, "completion": true, "duration": "PT42M7S"},
        "context": {"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
            "contextActivities": {"parent": [{"id": "https://igot.example.gov.in/programme/3"}],
                "grouping": [{"id": "https://igot.example.gov.in/karmayogi"}],
                "category": [{"id": "https://w3id.org/xapi/cmi5/context/categories/cmi5"}]},
            "platform": "iGOT Karmayogi", "language": "en-IN",
            "extensions": {"https://igot.example.gov.in/ext/ministry": "Ministry of Personnel"}},
        "timestamp": "2026-11-22T10:00:00.000Z"
    })
}

fn authority() -> Value {
    json!({"objectType": "Agent", "name": "bench", "account": {"homePage": "https://lrs.example", "name": "bench"}})
}

fn ingest(c: &mut Criterion) {
    let text = sample(1).to_string();
    let auth = authority();
    let receipt = Receipt {
        version: XapiVersion::V2_0,
        authority: &auth,
        may_define: true,
    };
    c.bench_function("parse ~1.2KB statement", |b| {
        b.iter(|| serde_json::from_str::<Value>(black_box(&text)))
    });
    let v: Value = serde_json::from_str(&text).expect("sample parses");
    c.bench_function("validate (schema + rules)", |b| {
        b.iter(|| validate::validate_statement(black_box(&v), XapiVersion::V2_0))
    });
    // prepare on its own: the parsed statement is cloned, and the result dropped, untimed.
    c.bench_function("prepare (validate, set, index keys, serialize)", |b| {
        b.iter_batched(
            || v.clone(),
            |v| statement::prepare(v, &receipt, chrono::Utc::now().timestamp_micros()),
            BatchSize::SmallInput,
        )
    });
    c.bench_function(
        "parse + prepare (validate, set, index keys, serialize)",
        |b| {
            b.iter(|| {
                let v: Value = serde_json::from_str(black_box(&text)).expect("parses");
                statement::prepare(v, &receipt, chrono::Utc::now().timestamp_micros())
            })
        },
    );
    // What the audit log adds to the acknowledgement path (issue 13): a salt, the RFC 8785
    // form of the stored JSON and the commitment.
    let prepared = statement::prepare(v.clone(), &receipt, chrono::Utc::now().timestamp_micros())
        .expect("the sample prepares");
    let v = prepared.statement;
    let department = karmayogi_lrs::departments::Department::parse("moe/dhe").expect("a path");
    c.bench_function("seal (RFC 8785 of the value, salt, commitment)", |b| {
        b.iter(|| {
            let jcs = karmayogi_lrs::audit::leaf::canonicalize(black_box(&v)).expect("jcs");
            karmayogi_lrs::audit::leaf::seal_canonical(&jcs, &department)
        })
    });
}

fn formats(c: &mut Criterion) {
    let auth = authority();
    let receipt = Receipt {
        version: XapiVersion::V2_0,
        authority: &auth,
        may_define: true,
    };
    let stored: Vec<Value> = (0..50)
        .map(|i| {
            statement::prepare(sample(i), &receipt, chrono::Utc::now().timestamp_micros())
                .expect("valid")
                .statement
        })
        .collect();
    c.bench_function("format=ids, page of 50", |b| {
        b.iter_batched(
            || stored.clone(),
            |mut page| page.iter_mut().for_each(statement::to_ids),
            BatchSize::SmallInput,
        )
    });
    let defs: HashMap<String, Value> = (0..200)
        .map(|i| {
            (
                format!("https://igot.example.gov.in/course/{i}"),
                json!({"name": {"en-US": "A", "hi-IN": "B"}}),
            )
        })
        .collect();
    let accept = statement::parse_accept_language(Some("hi-IN, en;q=0.5"));
    c.bench_function("format=canonical, page of 50", |b| {
        b.iter_batched(
            || stored.clone(),
            |mut page| {
                page.iter_mut()
                    .for_each(|s| statement::to_canonical(s, &defs, &accept))
            },
            BatchSize::SmallInput,
        )
    });
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path")).expect("store opens");
    let auth = authority();
    let receipt = Receipt {
        version: XapiVersion::V2_0,
        authority: &auth,
        may_define: false,
    };
    let mut n = 0u64;
    let mut batch = |size: u64| {
        let records = (0..size)
            .map(|_| {
                n += 1;
                statement::prepare(sample(n), &receipt, chrono::Utc::now().timestamp_micros())
                    .expect("valid")
                    .record
            })
            .collect();
        StatementBatch {
            records,
            attachments: vec![],
            definitions: vec![],
            merge_definition: document::merge_definition,
        }
    };
    // A store of 20k statements for the queries.
    for _ in 0..20 {
        let b = batch(1000);
        rt.block_on(store.insert_statements(b)).expect("insert");
    }
    c.bench_function("store insert batch of 100 (durable commit)", |b| {
        b.iter_batched(
            || batch(100),
            |bt| rt.block_on(store.insert_statements(bt)).expect("insert"),
            BatchSize::SmallInput,
        )
    });
    let by_verb = StatementQuery {
        keys: vec![format!("{}http://adlnet.gov/expapi/verbs/v3", key::VERB)],
        limit: 51,
        include_voided: false,
        ..Default::default()
    };
    c.bench_function("store query by verb, limit 50", |b| {
        b.iter(|| {
            rt.block_on(store.query_statements(&by_verb))
                .expect("query")
        })
    });
    let by_agent = StatementQuery {
        keys: vec![format!(
            "{}Agent|mbox|mailto:officer7@karmayogi.example.gov.in",
            key::AGENT
        )],
        limit: 51,
        include_voided: false,
        ..Default::default()
    };
    c.bench_function("store query by agent, limit 50", |b| {
        b.iter(|| {
            rt.block_on(store.query_statements(&by_agent))
                .expect("query")
        })
    });
    rt.block_on(store.close());
}

criterion_group!(benches, ingest, formats, store);
criterion_main!(benches);
