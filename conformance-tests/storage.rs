//! What any store must keep exactly, on every backend (run against the embedded store and,
//! with `LRS_TEST_STORE=mongodb://…`, against MongoDB): JSON that a document database
//! could bend (extension keys with dots or `$`, numbers beyond i64, deep nesting, keys
//! that look like extended JSON), parameters that look like query operators (data, never
//! operators), two clients racing on one statement id, and contents larger than MongoDB's
//! 16 MB document limit.
use crate::harness::{new_id, statement, Lrs, Response, VERSIONS};
use serde_json::{json, Value};
use sha2::Digest;

/// An object nested `depth` levels deep (objects and arrays alternating), ending in `leaf`.
fn nested(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |inner, i| {
        if i % 2 == 0 {
            json!({ format!("level.{i}"): inner })
        } else {
            json!([inner])
        }
    })
}

/// Extension values a BSON round trip would damage or refuse, each under a key that is an
/// IRI with dots or `$`.
fn hostile_extensions() -> Value {
    json!({
        "http://example.com/ext/with.dots.in.it": { "a.b": { "c.d": "dotted keys inside" } },
        "http://example.com/ext/$dollar": {
            "$where": "function() { return true; }",
            "$gt": "",
            "$ne": null,
            "$oid": "507f1f77bcf86cd799439011",
            "$date": { "$numberLong": "0" },
            "_id": { "$in": [1, 2] },
            "$numberDecimal": "1e6000",
            "": "empty key",
            "nul\u{0}inside": "a NUL in a key"
        },
        "http://example.com/ext/numbers": {
            "above_i64": 18446744073709551615u64,
            "i64_min": i64::MIN,
            "i64_max": i64::MAX,
            "negative_beyond_i64": -1.8446744073709552e19,
            "big_float": 1.7976931348623157e308,
            "tiny": 5e-324,
            "fraction": 0.1,
            "negative_zero": -0.0,
            "int_as_float": 1.0
        },
        "http://example.com/ext/deep": nested(90, json!("bottom")),
        "http://example.com/ext/unicode": "Karmayogi — कर्मयोगी — 😀 — \u{2028}",
        "http://example.com/ext/array": [null, true, false, 0, "", [], {}, [[[]]]]
    })
}

fn get_by_id(lrs: &Lrs, v: &str, id: &str) -> Response {
    lrs.get("/statements")
        .version(v)
        .query("statementId", id)
        .send()
}

/// Data 4.1 (extensions: any JSON value, keys are IRIs) and Communication 2.1.3 (`exact`
/// returns the statement as stored): every value comes back with the same meaning, on
/// every backend. MongoDB would refuse `$`-keys and 100-deep nesting, cap integers at
/// i64 and rewrite `{"$oid": …}`, were statements stored as BSON.
#[test]
fn data_4_1_extension_keys_and_any_json_value_round_trip() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let mut s = statement();
        let id = s["id"].as_str().unwrap_or_default().to_owned();
        let ext = hostile_extensions();
        s["context"] = json!({ "extensions": ext.clone() });
        s["result"] = json!({ "extensions": ext.clone() });
        s["object"]["definition"] = json!({ "extensions": ext.clone() });
        let r = lrs.post("/statements").version(v).json(&s).send();
        r.assert_status(200);

        let r = get_by_id(&lrs, v, &id);
        r.assert_status(200);
        let got = r.json();
        for (path, value) in [
            ("/context/extensions", &got["context"]["extensions"]),
            ("/result/extensions", &got["result"]["extensions"]),
            (
                "/object/definition/extensions",
                &got["object"]["definition"]["extensions"],
            ),
        ] {
            assert_eq!(
                value,
                &ext,
                "{v}: {path} changed in the round trip\n{}",
                r.describe()
            );
        }
        // Integers beyond i64 are kept as written, not turned into floats.
        let text = r.text();
        assert!(
            text.contains("18446744073709551615"),
            "{v}: u64::MAX lost its digits\n{}",
            r.describe()
        );
        // Queries return the same bytes as the single GET.
        let q = lrs
            .get("/statements")
            .version(v)
            .query("activity", "http://example.com/activities/conformance-test")
            .query("limit", "1")
            .send();
        q.assert_status(200);
        assert_eq!(
            q.json()["statements"][0],
            got,
            "{v}: query result differs from the single GET\n{}",
            q.describe()
        );
    }
}

/// Data 2.2.s1 (statements are JSON): a number JSON allows but no double can hold
/// (`1e400`) is refused as a whole (400), and nothing of the request is stored.
#[test]
fn data_2_2_number_beyond_double_range_rejected_and_nothing_stored() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let id = new_id();
        let body = format!(
            r#"{{"id":"{id}","actor":{{"mbox":"mailto:a@example.com"}},"verb":{{"id":"http://example.com/v"}},"object":{{"id":"http://example.com/a"}},"result":{{"extensions":{{"http://example.com/x":1e400}}}}}}"#
        );
        let r = lrs
            .post("/statements")
            .version(v)
            .body("application/json", body)
            .send();
        r.assert_status(400);
        get_by_id(&lrs, v, &id).assert_status(404);
    }
}

/// Integers beyond 64 bits (beyond i64 and u64) are accepted like any JSON number and
/// come back with the value the request's JSON parser gave them: the store adds no
/// rounding or clamping of its own (MongoDB's BSON has no such integers).
#[test]
fn data_4_1_integers_beyond_64_bits_keep_their_parsed_value() {
    let lrs = Lrs::start();
    let literal = "123456789012345678901234567890";
    let negative = "-98765432109876543210987654321";
    for v in VERSIONS {
        let id = new_id();
        let body = format!(
            r#"{{"id":"{id}","actor":{{"mbox":"mailto:a@example.com"}},"verb":{{"id":"http://example.com/v"}},"object":{{"id":"http://example.com/a"}},"result":{{"extensions":{{"http://example.com/big":{literal},"http://example.com/small":{negative}}}}}}}"#
        );
        lrs.post("/statements")
            .version(v)
            .body("application/json", body)
            .send()
            .assert_status(200);
        let r = get_by_id(&lrs, v, &id);
        r.assert_status(200);
        let ext = &r.json()["result"]["extensions"];
        let parsed = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
        assert_eq!(ext["http://example.com/big"], parsed(literal), "{v}");
        assert_eq!(ext["http://example.com/small"], parsed(negative), "{v}");
    }
}

/// Communication 2.1.3 (filter parameters are an Agent JSON, IRIs and a UUID): values
/// shaped like MongoDB query operators are data. Malformed ones are 400; well-formed ones
/// that contain `$` match only the statements that carry exactly that value.
#[test]
fn comm_2_1_3_parameters_shaped_like_query_operators_are_data() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let odd_mbox = format!("mailto:$where.{}@example.com", &new_id()[..8]);
        let odd_activity = format!("http://example.com/activities/$gt/{}", new_id());
        let mut odd = statement();
        odd["actor"] = json!({ "objectType": "Agent", "mbox": odd_mbox });
        odd["object"]["id"] = json!(odd_activity);
        let mut plain = statement();
        plain["actor"] = json!({ "objectType": "Agent", "mbox": "mailto:plain@example.com" });
        let r = lrs
            .post("/statements")
            .version(v)
            .json(&json!([odd, plain]))
            .send();
        r.assert_status(200);

        for bad in [
            json!({ "$where": "function() { return true; }" }),
            json!({ "mbox": { "$gt": "" } }),
            json!({ "mbox": { "$ne": null } }),
            json!({ "objectType": "Agent", "account": { "homePage": { "$gt": "" }, "name": "x" } }),
            json!({ "mbox_sha1sum": { "$regex": ".*" } }),
            json!({ "openid": { "$exists": true } }),
        ] {
            let r = lrs
                .get("/statements")
                .version(v)
                .query("agent", &bad.to_string())
                .send();
            r.assert_status(400);
        }
        for (name, value) in [
            ("registration", r#"{"$gt":""}"#),
            ("verb", r#"{"$ne":null}"#),
            ("activity", r#"{"$exists":true}"#),
            ("since", r#"{"$gt":""}"#),
        ] {
            let r = lrs.get("/statements").version(v).query(name, value).send();
            r.assert_status(400);
        }

        // Well-formed values with `$` in them: exact matches only.
        let ids = |params: &[(&str, String)]| -> Vec<String> {
            let mut req = lrs.get("/statements").version(v);
            for (k, val) in params {
                req = req.query(k, val);
            }
            let r = req.send();
            r.assert_status(200);
            r.json()["statements"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let odd_id = odd["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            ids(&[(
                "agent",
                json!({ "objectType": "Agent", "mbox": odd_mbox }).to_string()
            )]),
            vec![odd_id.clone()]
        );
        assert_eq!(
            ids(&[("activity", odd_activity.clone())]),
            vec![odd_id.clone()]
        );
        assert!(ids(&[("activity", "http://example.com/activities/$ne".into())]).is_empty());
        assert!(ids(&[(
            "agent",
            json!({ "objectType": "Agent", "mbox": "mailto:$gt@example.com" }).to_string()
        )])
        .is_empty());
    }
}

/// Communication 3 (document resources): ids and agents shaped like query operators are
/// data: stored and listed under exactly that id, never matching anything else.
#[test]
fn comm_3_document_ids_shaped_like_query_operators_are_data() {
    let lrs = Lrs::start();
    let activity = "http://example.com/activities/$where";
    let agent = json!({ "objectType": "Agent", "mbox": "mailto:$gt@example.com" }).to_string();
    let weird_ids = [r#"{"$gt":""}"#, "$where", "a.b.c", "$", "\u{1f}x\u{1f}"];
    for v in VERSIONS {
        for (i, state_id) in weird_ids.iter().enumerate() {
            let r = lrs
                .put("/activities/state")
                .version(v)
                .query("activityId", activity)
                .query("agent", &agent)
                .query("stateId", state_id)
                .body("application/json", format!(r#"{{"n":{i}}}"#))
                .send();
            r.assert_status(204);
        }
        for (i, state_id) in weird_ids.iter().enumerate() {
            let r = lrs
                .get("/activities/state")
                .version(v)
                .query("activityId", activity)
                .query("agent", &agent)
                .query("stateId", state_id)
                .send();
            r.assert_status(200);
            assert_eq!(r.json(), json!({ "n": i }), "{v}: stateId {state_id:?}");
        }
        let r = lrs
            .get("/activities/state")
            .version(v)
            .query("activityId", activity)
            .query("agent", &agent)
            .send();
        r.assert_status(200);
        let mut listed: Vec<String> = serde_json::from_value(r.json()).unwrap_or_default();
        listed.sort();
        let mut expected: Vec<String> = weird_ids.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(listed, expected, "{v}: the state ids listed");

        // An agent parameter that is an operator is a 400, not a match-everything.
        let r = lrs
            .get("/activities/state")
            .version(v)
            .query("activityId", activity)
            .query("agent", r#"{"mbox":{"$gt":""}}"#)
            .send();
        r.assert_status(400);
        let r = lrs
            .delete("/activities/state")
            .version(v)
            .query("activityId", activity)
            .query("agent", &agent)
            .send();
        r.assert_status(204);
    }
}

/// Communication 2.1.1.s2.b2 (a statement id is stored once; a different statement under
/// it is a 409): eight clients PUT the same id at once. Identical statements: every PUT
/// succeeds and one statement is stored. Different statements: exactly one wins, the
/// others get 409, and the winner is what is stored.
#[test]
fn comm_2_1_1_concurrent_puts_of_one_id_resolved_per_the_standard() {
    let lrs = Lrs::start();
    let v = "2.0.0";
    const CLIENTS: usize = 8;

    let same = statement();
    let id = same["id"].as_str().unwrap_or_default().to_owned();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    lrs.put("/statements")
                        .version(v)
                        .query("statementId", &id)
                        .json(&same)
                        .send()
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert!(
        statuses.iter().all(|s| *s == 204),
        "identical PUTs: {statuses:?}"
    );
    get_by_id(&lrs, v, &id).assert_status(200);

    let id = new_id();
    let (statuses, bodies): (Vec<u16>, Vec<Value>) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let id = id.clone();
                let lrs = &lrs;
                scope.spawn(move || {
                    let mut s = statement();
                    s["id"] = json!(id);
                    s["verb"]["id"] = json!(format!("http://example.com/verbs/v{i}"));
                    let r = lrs
                        .put("/statements")
                        .version(v)
                        .query("statementId", &id)
                        .json(&s)
                        .send();
                    (r.status, s)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, Value::Null)))
            .unzip()
    });
    let winners: Vec<&Value> = statuses
        .iter()
        .zip(&bodies)
        .filter(|(s, _)| **s == 204)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "different PUTs: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 409),
        "different PUTs: {statuses:?}"
    );
    let r = get_by_id(&lrs, v, &id);
    r.assert_status(200);
    assert_eq!(r.json()["verb"]["id"], winners[0]["verb"]["id"]);
}

/// Bytes that are not all alike (so a chunk out of place shows).
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The parts of a multipart/mixed body: (headers, content).
fn parts<'a>(content_type: &str, body: &'a [u8]) -> Vec<(String, &'a [u8])> {
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
        .next()
        .unwrap_or_default();
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + d.len() <= body.len() {
        if &body[i..i + d.len()] == d {
            starts.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for w in starts.windows(2) {
        let part = &body[w[0] + d.len()..w[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = part.windows(4).position(|x| x == b"\r\n\r\n") {
            out.push((
                String::from_utf8_lossy(&part[..split]).to_ascii_lowercase(),
                &part[split + 4..],
            ));
        }
    }
    out
}

/// Communication 1.5.2 (attachments) on every backend: an attachment of 20 MiB, larger
/// than MongoDB's 16 MB document limit, is stored and returned byte for byte.
#[test]
fn comm_1_5_2_attachment_larger_than_16_mb_round_trips() {
    let lrs = Lrs::start();
    let v = "2.0.0";
    let bytes = content(20 * 1024 * 1024 + 123, 7);
    let sha = sha256_hex(&bytes);
    let mut s = statement();
    let id = s["id"].as_str().unwrap_or_default().to_owned();
    s["attachments"] = json!([{
        "usageType": "http://example.com/attachment-usage/big",
        "display": { "en-US": "big" },
        "contentType": "application/octet-stream",
        "length": bytes.len(),
        "sha2": sha,
    }]);
    let boundary = format!("storage-test-{}", new_id());
    let mut body = format!(
        "--{boundary}\r\nContent-Type: application/json\r\n\r\n{s}\r\n--{boundary}\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\
         X-Experience-API-Hash: {sha}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = lrs
        .post("/statements")
        .version(v)
        .body(&format!("multipart/mixed; boundary={boundary}"), body)
        .send();
    r.assert_status(200);

    let r = lrs
        .get("/statements")
        .version(v)
        .query("statementId", &id)
        .query("attachments", "true")
        .send();
    r.assert_status(200);
    let ct = r.header("content-type").unwrap_or_default().to_owned();
    let found = parts(&ct, &r.body)
        .into_iter()
        .find(|(h, _)| h.contains(&sha))
        .map(|(_, c)| c.to_vec());
    let found = found.unwrap_or_else(|| panic!("no part with hash {sha}\n{}", r.summary()));
    assert_eq!(found.len(), bytes.len(), "attachment length");
    assert!(found == bytes, "attachment bytes differ");
}

/// Communication 2.2 (document resources) on every backend: a 20 MiB state document is
/// stored and returned byte for byte, replaced by a small one, and deleted.
#[test]
fn comm_2_2_document_larger_than_16_mb_round_trips() {
    let lrs = Lrs::start();
    let v = "2.0.0";
    let agent = json!({ "objectType": "Agent", "mbox": "mailto:big@example.com" }).to_string();
    let activity = "http://example.com/activities/big-state";
    let bytes = content(20 * 1024 * 1024 + 5, 11);
    let state = |method: &str| {
        lrs.request(method, "/activities/state")
            .version(v)
            .query("activityId", activity)
            .query("agent", &agent)
            .query("stateId", "big")
    };
    state("PUT")
        .body("application/octet-stream", bytes.clone())
        .send()
        .assert_status(204);
    let r = state("GET").send();
    r.assert_status(200);
    assert_eq!(r.body.len(), bytes.len(), "document length");
    assert!(r.body == bytes, "document bytes differ");
    let etag = r
        .header("etag")
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned();
    assert_eq!(etag, hex::encode(sha1::Sha1::digest(&bytes)));

    state("PUT")
        .header("If-Match", &format!("\"{etag}\""))
        .body("application/octet-stream", b"small".to_vec())
        .send()
        .assert_status(204);
    let r = state("GET").send();
    r.assert_status(200);
    assert_eq!(r.body, b"small");
    state("DELETE").send().assert_status(204);
    state("GET").send().assert_status(404);
}

/// Communication 2.2 (POST merges JSON documents) under concurrency: eight clients each
/// POST one property to the same state document at once; every property is in the result
/// (a lost update would drop some).
#[test]
fn comm_2_2_concurrent_posts_to_one_document_lose_no_property() {
    let lrs = Lrs::start();
    let v = "2.0.0";
    let agent = json!({ "objectType": "Agent", "mbox": "mailto:merge@example.com" }).to_string();
    let activity = format!("http://example.com/activities/merge/{}", new_id());
    const CLIENTS: usize = 8;
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (agent, activity, lrs) = (&agent, &activity, &lrs);
                scope.spawn(move || {
                    lrs.post("/activities/state")
                        .version(v)
                        .query("activityId", activity)
                        .query("agent", agent)
                        .query("stateId", "merged")
                        .json(&json!({ format!("k{i}"): i }))
                        .send()
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert!(statuses.iter().all(|s| *s == 204), "POSTs: {statuses:?}");
    let r = lrs
        .get("/activities/state")
        .version(v)
        .query("activityId", &activity)
        .query("agent", &agent)
        .query("stateId", "merged")
        .send();
    r.assert_status(200);
    let expected: serde_json::Map<String, Value> =
        (0..CLIENTS).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_eq!(r.json(), Value::Object(expected), "{}", r.describe());
}

/// Data 2.3.2 (voiding) under concurrency: a statement and the statement voiding it sent
/// at the same moment by two clients. Whichever is stored first, the target ends voided:
/// not returned by statementId, returned by voidedStatementId.
#[test]
fn data_2_3_2_statement_and_its_voiding_statement_racing_end_voided() {
    let lrs = Lrs::start();
    let v = "2.0.0";
    for _ in 0..6 {
        let target = statement();
        let target_id = target["id"].as_str().unwrap_or_default().to_owned();
        let voiding = json!({
            "actor": { "objectType": "Agent", "mbox": "mailto:voider@example.com" },
            "verb": { "id": "http://adlnet.gov/expapi/verbs/voided", "display": { "en-US": "voided" } },
            "object": { "objectType": "StatementRef", "id": target_id }
        });
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let a = scope.spawn(|| {
                lrs.post("/statements")
                    .version(v)
                    .json(&target)
                    .send()
                    .status
            });
            let b = scope.spawn(|| {
                lrs.post("/statements")
                    .version(v)
                    .json(&voiding)
                    .send()
                    .status
            });
            vec![a.join().unwrap_or(0), b.join().unwrap_or(0)]
        });
        assert_eq!(statuses, vec![200, 200]);
        get_by_id(&lrs, v, &target_id).assert_status(404);
        lrs.get("/statements")
            .version(v)
            .query("voidedStatementId", &target_id)
            .send()
            .assert_status(200);
    }
}
