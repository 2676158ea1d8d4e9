//! Statements resource writes (Communication 2.1.1 PUT, 2.1.2 POST), the properties the LRS
//! sets (Data 2.4.1 id, 2.4.7 timestamp, 2.4.8 stored, 2.4.9 authority, 2.4.10 version),
//! Statement immutability and comparison (Data 2.3.1), content types (Communication 1.5)
//! and the alternate request syntax (Communication 1.3, 1.0.x only).
//!
//! The helpers at the top are shared with the other statement test modules.
use crate::harness::{new_id, statement, Lrs, Response, VERSIONS};
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Value};

// ----- shared helpers ------------------------------------------------------------------

/// An Agent with a fresh mailbox.
pub(crate) fn agent() -> Value {
    json!({ "objectType": "Agent", "mbox": format!("mailto:{}@example.com", new_id()) })
}

/// A fresh Activity id.
pub(crate) fn activity_iri() -> String {
    format!("http://example.com/activities/{}", new_id())
}

/// A valid statement about a fresh Activity, with a fresh id.
pub(crate) fn statement_about(activity: &str) -> Value {
    let mut s = statement();
    s["object"] = json!({ "objectType": "Activity", "id": activity });
    s
}

/// The `id` of a statement.
pub(crate) fn id_of(s: &Value) -> String {
    s["id"]
        .as_str()
        .unwrap_or_else(|| panic!("statement without id: {s}"))
        .to_owned()
}

/// POSTs one statement or a batch; asserts 200 and returns the ids answered.
pub(crate) fn post_ok(lrs: &Lrs, v: &str, body: &Value) -> Vec<String> {
    let r = lrs.post("/statements").version(v).json(body).send();
    r.assert_status(200).assert_version(v);
    ids_of(&r)
}

/// The JSON array of ids a successful POST answers with.
pub(crate) fn ids_of(r: &Response) -> Vec<String> {
    let body = r.json();
    let list = body
        .as_array()
        .unwrap_or_else(|| panic!("POST must answer with an array of ids\n{}", r.describe()));
    list.iter()
        .map(|i| {
            i.as_str()
                .unwrap_or_else(|| panic!("ids must be strings\n{}", r.describe()))
                .to_owned()
        })
        .collect()
}

/// GET ?statementId=…
pub(crate) fn get_statement(lrs: &Lrs, v: &str, id: &str) -> Response {
    lrs.get("/statements")
        .query("statementId", id)
        .version(v)
        .send()
}

/// GET ?statementId=… must answer 200 with that statement; returns it.
pub(crate) fn fetch(lrs: &Lrs, v: &str, id: &str) -> Value {
    let r = get_statement(lrs, v, id);
    r.assert_status(200);
    let s = r.json();
    assert!(
        s["id"]
            .as_str()
            .is_some_and(|got| got.eq_ignore_ascii_case(id)),
        "GET ?statementId={id} answered another statement\n{}",
        r.describe()
    );
    s
}

/// The statement with this id is not retrievable (404 on GET ?statementId=…).
pub(crate) fn assert_not_stored(lrs: &Lrs, id: &str) {
    let r = get_statement(lrs, "2.0.0", id);
    assert_eq!(
        r.status,
        404,
        "statement {id} must not have been stored\n{}",
        r.describe()
    );
}

/// An RFC 3339 date-time (a `Z` or numeric offset is required).
pub(crate) fn rfc3339(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("`{s}` is not an RFC 3339 timestamp: {e}"))
}

/// The `error.path` of a JSON error body.
pub(crate) fn error_path(err: &Value) -> Option<&str> {
    err.get("path").and_then(Value::as_str)
}

/// Asserts a 400 JSON error whose `path` is one of `paths`.
pub(crate) fn assert_400_at(r: &Response, paths: &[&str]) {
    let err = r.assert_error(400);
    let path = error_path(&err);
    assert!(
        path.is_some_and(|p| paths.contains(&p)),
        "error.path must point at {paths:?}, got {path:?}\n{}",
        r.describe()
    );
}

// ----- PUT -----------------------------------------------------------------------------

/// Communication 2.1.1.s1 (XAPI-00143): PUT ?statementId stores the statement and answers
/// 204 No Content with no body; the statement is then retrievable under that id, with the
/// id also filled in when the body had none.
#[test]
fn comm_2_1_1_s1_put_stores_statement_with_204() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        let id = id_of(&s);
        let r = lrs
            .put("/statements")
            .query("statementId", &id)
            .version(v)
            .json(&s)
            .send();
        r.assert_status(204).assert_empty_body().assert_version(v);
        let got = fetch(&lrs, v, &id);
        assert_eq!(got["actor"], s["actor"], "{v}");
        assert_eq!(got["verb"], s["verb"], "{v}");
        assert_eq!(got["object"], s["object"], "{v}");

        // No id in the body: the parameter is the id.
        let mut s = statement();
        s.as_object_mut().unwrap().remove("id");
        let id = new_id();
        lrs.put("/statements")
            .query("statementId", &id)
            .version(v)
            .json(&s)
            .send()
            .assert_status(204);
        fetch(&lrs, v, &id);
    }
}

/// Communication 2.1.1 (LRP requirements: the id must match statementId): a PUT whose
/// statement id differs from the parameter is rejected with 400 and stores nothing.
#[test]
fn comm_2_1_1_put_statement_id_mismatch_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        let other = new_id();
        let r = lrs
            .put("/statements")
            .query("statementId", &other)
            .version(v)
            .json(&s)
            .send();
        assert_400_at(&r, &["/id", "statementId"]);
        r.assert_version(v);
        assert_not_stored(&lrs, &id_of(&s));
        assert_not_stored(&lrs, &other);
    }
}

/// Communication 2.1.1 (statementId is Required): PUT without statementId, or with one
/// that is not a UUID, is rejected with 400 and stores nothing.
#[test]
fn comm_2_1_1_put_without_statement_id_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        let r = lrs.put("/statements").version(v).json(&s).send();
        assert_400_at(&r, &["statementId"]);
        let r = lrs
            .put("/statements")
            .query("statementId", "not-a-uuid")
            .version(v)
            .json(&json!({"actor": s["actor"], "verb": s["verb"], "object": s["object"]}))
            .send();
        assert_400_at(&r, &["statementId"]);
        assert_not_stored(&lrs, &id_of(&s));
        // A PUT takes one statement, not a batch.
        let r = lrs
            .put("/statements")
            .query("statementId", &id_of(&s))
            .version(v)
            .json(&json!([s]))
            .send();
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));
    }
}

// ----- POST ----------------------------------------------------------------------------

/// Communication 2.1.2.s1 (XAPI-00146, XAPI-00147): POST of a single statement or a batch
/// answers 200 with the array of ids in the order of the statements; each is stored.
#[test]
fn comm_2_1_2_s1_post_single_and_batch_return_ids_in_order() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        assert_eq!(post_ok(&lrs, v, &s), vec![id_of(&s)], "{v}");
        fetch(&lrs, v, &id_of(&s));

        let batch: Vec<Value> = (0..5).map(|_| statement()).collect();
        let want: Vec<String> = batch.iter().map(id_of).collect();
        assert_eq!(post_ok(&lrs, v, &Value::from(batch)), want, "{v}");
        for id in &want {
            fetch(&lrs, v, id);
        }
    }
}

/// Data 2.4.1 (the LRS assigns an id when the statement has none): the id answered is a
/// UUID and retrieves the statement; in a batch mixing statements with and without ids,
/// the answer keeps the batch order.
#[test]
fn data_2_4_1_lrs_assigns_id_when_missing() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let mut s = statement();
        s.as_object_mut().unwrap().remove("id");
        let ids = post_ok(&lrs, v, &s);
        assert_eq!(ids.len(), 1);
        assert!(
            uuid::Uuid::parse_str(&ids[0]).is_ok(),
            "assigned id `{}` is not a UUID",
            ids[0]
        );
        let got = fetch(&lrs, v, &ids[0]);
        assert_eq!(got["actor"], s["actor"]);

        let with_id = statement();
        let mut without_a = statement();
        without_a.as_object_mut().unwrap().remove("id");
        let without_b = without_a.clone();
        let ids = post_ok(&lrs, v, &json!([without_a, with_id, without_b]));
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert_eq!(ids[1], id_of(&with_id));
        assert_ne!(ids[0], ids[2], "each statement gets its own id");
        for id in &ids {
            fetch(&lrs, v, id);
        }
    }
}

/// Communication 2.1.2 (LRS requirements: a batch with two statements of the same id is
/// rejected with 400; 2.0 makes it a MUST): nothing of the batch is stored.
#[test]
fn comm_2_1_2_batch_repeating_an_id_rejected_and_nothing_stored() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let first = statement();
        let other = statement();
        let mut again = statement();
        again["id"] = first["id"].clone();
        again["verb"]["id"] = json!("http://example.com/verbs/other");
        let r = lrs
            .post("/statements")
            .version(v)
            .json(&json!([first, other, again]))
            .send();
        r.assert_error(400);
        r.assert_version(v);
        assert_not_stored(&lrs, &id_of(&first));
        assert_not_stored(&lrs, &id_of(&other));

        // The very same statement twice is a repeated id as well.
        let r = lrs
            .post("/statements")
            .version(v)
            .json(&json!([other, other]))
            .send();
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&other));
    }
}

/// Communication 2.1.2 (a batch is stored as a whole): when one statement of a batch is
/// invalid, or conflicts with a stored one, the request fails and none of the other
/// statements is stored — by id, nor in a query.
#[test]
fn comm_2_1_2_batch_is_atomic() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let a = statement_about(&activity);
        let b = statement_about(&activity);
        let mut bad = statement_about(&activity);
        bad["actor"]["mbox"] = json!("not-a-mailto-iri");
        let r = lrs
            .post("/statements")
            .version(v)
            .json(&json!([a, b, bad]))
            .send();
        assert_400_at(&r, &["/2/actor/mbox"]);
        for s in [&a, &b, &bad] {
            assert_not_stored(&lrs, &id_of(s));
        }
        let found = lrs
            .get("/statements")
            .query("activity", &activity)
            .version(v)
            .send();
        found.assert_status(200);
        assert_eq!(
            found.json()["statements"],
            json!([]),
            "nothing of a rejected batch may be stored\n{}",
            found.describe()
        );

        // A conflict (409) inside a batch also stores nothing of it.
        let stored = statement_about(&activity);
        post_ok(&lrs, v, &stored);
        let mut conflicting = stored.clone();
        conflicting["verb"]["id"] = json!("http://example.com/verbs/changed");
        let fresh = statement_about(&activity);
        let r = lrs
            .post("/statements")
            .version(v)
            .json(&json!([fresh, conflicting]))
            .send();
        r.assert_error(409);
        assert_not_stored(&lrs, &id_of(&fresh));
        assert_eq!(fetch(&lrs, v, &id_of(&stored))["verb"], stored["verb"]);
    }
}

// ----- immutability and comparison -----------------------------------------------------

/// Communication 2.1.1 / 2.1.2 (an id the LRS already has changes nothing; SHOULD
/// verify and answer 409 only when they differ) and Data 2.3.1: re-sending the very same
/// statement — which has no timestamp, so the LRS filled one in — is a successful no-op,
/// on POST and PUT, and so is re-sending it as the LRS returned it.
#[test]
fn data_2_3_1_resending_identical_statement_is_a_noop() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement_about(&activity_iri());
        let id = id_of(&s);
        post_ok(&lrs, v, &s);
        let original = fetch(&lrs, v, &id);

        let r = lrs.post("/statements").version(v).json(&s).send();
        r.assert_status(200);
        assert_eq!(ids_of(&r), vec![id.clone()]);
        lrs.put("/statements")
            .query("statementId", &id)
            .version(v)
            .json(&s)
            .send()
            .assert_status(204);
        // As the LRS returned it (stored, authority, version, timestamp filled in).
        assert_eq!(post_ok(&lrs, v, &original), vec![id.clone()]);
        assert_eq!(
            fetch(&lrs, v, &id),
            original,
            "{v}: a no-op must change nothing"
        );
    }
}

/// Data 2.3.1 with Communication 2.1.2: a batch of new statements followed by a re-sent
/// one stores the new ones (the re-sent one is a no-op), whatever their order.
#[test]
fn data_2_3_1_batch_with_a_resent_statement_stores_the_new_ones() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let old = statement_about(&activity_iri());
        post_ok(&lrs, v, &old);
        let (a, b) = (
            statement_about(&activity_iri()),
            statement_about(&activity_iri()),
        );
        let r = lrs
            .post("/statements")
            .version(v)
            .json(&json!([a, b, old]))
            .send();
        r.assert_status(200);
        assert_eq!(ids_of(&r), vec![id_of(&a), id_of(&b), id_of(&old)]);
        for s in [&a, &b] {
            let id = id_of(s);
            let r = lrs
                .get("/statements")
                .version(v)
                .query("statementId", &id)
                .send();
            assert_eq!(
                r.status,
                200,
                "{v}: {id} acknowledged, so stored: {}",
                r.describe()
            );
        }
    }
}

/// Data 2.3.1 (Statement Comparison Requirements: differences the exceptions to
/// immutability could cause are ignored): a re-sent statement with another authority,
/// stored or version-as-assigned, another verb display or Activity definition, the same
/// timestamp in another time zone, or case-insensitive parts (UUID, mailbox domain) in
/// another case is the same statement — a successful no-op that changes nothing.
#[test]
fn data_2_3_1_differences_from_immutability_exceptions_are_ignored() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let mut s = statement_about(&activity_iri());
        s["object"]["definition"] = json!({"name": {"en-US": "original name"}});
        s["actor"]["mbox"] = json!(format!("mailto:{}@example.com", new_id()));
        s["timestamp"] = json!("2021-03-04T05:06:07.890Z");
        let id = id_of(&s);
        post_ok(&lrs, v, &s);
        let original = fetch(&lrs, v, &id);

        // Other authority, stored, and the version the LRS assigned.
        let mut other = s.clone();
        other["authority"] =
            json!({"objectType": "Agent", "mbox": "mailto:someone-else@example.com"});
        other["stored"] = json!("2001-02-03T04:05:06.789Z");
        other["version"] = original["version"].clone();
        assert_eq!(post_ok(&lrs, v, &other), vec![id.clone()], "{v}");

        // Verb display and Activity definition are not part of the statement.
        let mut other = s.clone();
        other["verb"]["display"] = json!({"en-GB": "another display"});
        other["object"]["definition"] = json!({"name": {"en-US": "another name"}});
        assert_eq!(post_ok(&lrs, v, &other), vec![id.clone()], "{v}");

        // The same instant in another time zone.
        let mut other = s.clone();
        other["timestamp"] = json!("2021-03-04T07:06:07.890+02:00");
        assert_eq!(post_ok(&lrs, v, &other), vec![id.clone()], "{v}");

        // Case-insensitive data.
        let mut other = s.clone();
        other["id"] = json!(id.to_ascii_uppercase());
        let mbox = s["actor"]["mbox"].as_str().unwrap().to_owned();
        other["actor"]["mbox"] = json!(mbox.replace("@example.com", "@EXAMPLE.com"));
        lrs.put("/statements")
            .query("statementId", &id.to_ascii_uppercase())
            .version(v)
            .json(&other)
            .send()
            .assert_status(204);

        assert_eq!(
            fetch(&lrs, v, &id),
            original,
            "{v}: a no-op re-send must not change the statement"
        );
    }
}

/// Communication 2.1.1.s2.b2 / 2.1.2 (XAPI-00144): a different statement under an
/// existing id is answered 409 Conflict — on PUT and POST — and the stored statement is
/// unchanged.
#[test]
fn comm_2_1_1_s2_b2_different_statement_same_id_conflicts() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        let id = id_of(&s);
        post_ok(&lrs, v, &s);
        let original = fetch(&lrs, v, &id);

        let mut changes = Vec::new();
        let mut c = s.clone();
        c["verb"]["id"] = json!("http://example.com/verbs/changed");
        changes.push(c);
        let mut c = s.clone();
        c["result"] = json!({"success": true});
        changes.push(c);
        let mut c = s.clone();
        c["actor"]["mbox"] = json!("mailto:somebody-else@example.com");
        changes.push(c);
        let mut c = s.clone();
        c["object"]["id"] = json!("http://example.com/activities/another");
        changes.push(c);

        for c in &changes {
            let r = lrs.post("/statements").version(v).json(c).send();
            r.assert_error(409);
            r.assert_version(v);
            let r = lrs
                .put("/statements")
                .query("statementId", &id)
                .version(v)
                .json(c)
                .send();
            r.assert_error(409);
        }
        assert_eq!(fetch(&lrs, v, &id), original, "{v}");
    }
}

// ----- properties the LRS sets ---------------------------------------------------------

/// Data 2.4.8 (XAPI-00023) and Data 2.4.7: the LRS sets `stored` (an RFC 3339 timestamp,
/// now), overwriting any supplied value, and fills a missing `timestamp` from `stored`;
/// a supplied timestamp is kept (same instant).
#[test]
fn data_2_4_8_stored_set_and_timestamp_filled_from_stored() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let before = Utc::now() - chrono::Duration::seconds(60);
        let s = statement();
        post_ok(&lrs, v, &s);
        let got = fetch(&lrs, v, &id_of(&s));
        let stored = rfc3339(got["stored"].as_str().expect("stored is a string"));
        let after = Utc::now() + chrono::Duration::seconds(60);
        assert!(
            stored > before && stored < after,
            "stored {stored} must be the time the LRS received the statement"
        );
        let timestamp = rfc3339(got["timestamp"].as_str().expect("timestamp filled in"));
        assert_eq!(timestamp, stored, "a missing timestamp is set to stored");

        // A supplied stored is overwritten; a supplied timestamp is kept.
        let mut s = statement();
        s["stored"] = json!("2001-02-03T04:05:06.789Z");
        s["timestamp"] = json!("2010-05-06T07:08:09.123Z");
        post_ok(&lrs, v, &s);
        let got = fetch(&lrs, v, &id_of(&s));
        let stored = rfc3339(got["stored"].as_str().unwrap());
        assert!(
            stored > before,
            "a stored value supplied by the client must be overwritten: {}",
            got["stored"]
        );
        assert_eq!(
            rfc3339(got["timestamp"].as_str().unwrap()),
            rfc3339("2010-05-06T07:08:09.123Z")
        );
    }
}

/// Data 4.5 (XAPI-00122: timestamps keep millisecond precision) and the 2.0 change (a
/// timestamp with a non-UTC offset is converted to UTC on store): under 2.0 the stored
/// timestamp is the same instant in `Z` form.
#[test]
fn data_2_4_7_timestamp_with_offset_converted_to_utc_under_2_0() {
    let lrs = Lrs::start();
    let mut s = statement();
    s["timestamp"] = json!("2020-01-01T12:00:00.123+05:00");
    post_ok(&lrs, "2.0.0", &s);
    let got = fetch(&lrs, "2.0.0", &id_of(&s));
    let ts = got["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with('Z'),
        "2.0: the timestamp must be stored in UTC, got {ts}"
    );
    assert_eq!(rfc3339(ts), rfc3339("2020-01-01T07:00:00.123Z"));
}

/// 2.0 (the LRS must not reject a timestamp slightly in the future): a timestamp a few
/// minutes ahead is accepted and kept.
#[test]
fn xapi_2_0_timestamp_slightly_in_the_future_accepted() {
    let lrs = Lrs::start();
    let ahead = (Utc::now() + chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut s = statement();
    s["timestamp"] = json!(ahead);
    post_ok(&lrs, "2.0.0", &s);
    let got = fetch(&lrs, "2.0.0", &id_of(&s));
    assert_eq!(rfc3339(got["timestamp"].as_str().unwrap()), rfc3339(&ahead));
}

/// Data 2.4.6.2 (contextActivities): a single Activity is accepted and returned as an
/// array of length one holding it.
#[test]
fn data_2_4_6_2_single_context_activity_returned_as_array() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let parent = json!({"objectType": "Activity", "id": activity_iri()});
        let other = json!({"id": activity_iri()});
        let mut s = statement();
        s["context"] = json!({"contextActivities": {"parent": parent, "other": [other]}});
        post_ok(&lrs, v, &s);
        let got = fetch(&lrs, v, &id_of(&s));
        let ca = &got["context"]["contextActivities"];
        assert_eq!(ca["parent"].as_array().map(Vec::len), Some(1), "{v}: {ca}");
        assert_eq!(ca["parent"][0]["id"], parent["id"]);
        assert_eq!(ca["other"].as_array().map(Vec::len), Some(1), "{v}: {ca}");
    }
}

/// Data 2.3.1 (Result Duration is compared as a string under 1.0.3) and the 2.0 change
/// (durations may be truncated to 0.01 s; comparisons ignore finer precision): re-sending
/// a statement whose duration differs below a hundredth of a second conflicts under
/// 1.0.3 and is a no-op under 2.0.
#[test]
fn data_2_3_1_duration_comparison_per_version() {
    let lrs = Lrs::start();
    for (v, same) in [("1.0.3", false), ("2.0.0", true)] {
        let mut s = statement();
        s["timestamp"] = json!("2022-02-02T02:02:02.020Z");
        s["result"] = json!({"duration": "PT1.234S"});
        post_ok(&lrs, v, &s);
        let before = fetch(&lrs, v, &id_of(&s));
        let mut again = s.clone();
        again["result"]["duration"] = json!("PT1.23S");
        let r = lrs.post("/statements").version(v).json(&again).send();
        r.assert_status(if same { 200 } else { 409 });
        // A difference of a hundredth or more is a different statement in both.
        let mut different = s.clone();
        different["result"]["duration"] = json!("PT1.25S");
        lrs.post("/statements")
            .version(v)
            .json(&different)
            .send()
            .assert_error(409);
        assert_eq!(fetch(&lrs, v, &id_of(&s)), before, "{v}");
    }
}

/// Data 4.5 (XAPI-00122) under 1.0.3: a timestamp with an offset is kept as the same
/// instant, to the millisecond.
#[test]
fn data_4_5_s1_b3_timestamp_with_offset_kept_under_1_0_3() {
    let lrs = Lrs::start();
    let mut s = statement();
    s["timestamp"] = json!("2020-01-01T12:00:00.123+05:00");
    post_ok(&lrs, "1.0.3", &s);
    let got = fetch(&lrs, "1.0.3", &id_of(&s));
    assert_eq!(
        rfc3339(got["timestamp"].as_str().unwrap()),
        rfc3339("2020-01-01T07:00:00.123Z")
    );
}

/// Data 2.4.9 (authority set by the LRS from the credential): a supplied authority is
/// replaced by the credential's; the same credential gives the same authority, another
/// credential another one.
#[test]
fn data_2_4_9_authority_set_from_credential() {
    let lrs = Lrs::start();
    let (key, secret) = lrs.credential(&["statements/write", "statements/read"]);
    for v in VERSIONS {
        let supplied =
            json!({"objectType": "Agent", "mbox": "mailto:forged-authority@example.com"});
        let mut a = statement();
        a["authority"] = supplied.clone();
        post_ok(&lrs, v, &a);
        let b = statement();
        post_ok(&lrs, v, &b);
        let c = statement();
        lrs.post("/statements")
            .version(v)
            .auth(&key, &secret)
            .json(&c)
            .send()
            .assert_status(200);

        let auth_a = fetch(&lrs, v, &id_of(&a))["authority"].clone();
        let auth_b = fetch(&lrs, v, &id_of(&b))["authority"].clone();
        let auth_c = fetch(&lrs, v, &id_of(&c))["authority"].clone();
        assert!(auth_a.is_object(), "authority must be set: {auth_a}");
        assert_ne!(auth_a, supplied, "a supplied authority must be replaced");
        assert_eq!(auth_a, auth_b, "one credential, one authority");
        assert!(auth_c.is_object(), "authority must be set: {auth_c}");
        assert_ne!(auth_a, auth_c, "another credential, another authority");
    }
}

/// Data 2.4.10 (statement version, and the 2.0 change "a stored statement keeps its
/// version"): a given version is kept; a missing one is set to the
/// version of the request ("1.0.0" for 1.0.x, "2.0.0" for 2.0).
#[test]
fn data_2_4_10_version_kept_or_set_per_request_version() {
    let lrs = Lrs::start();
    for (v, assigned) in [("1.0.3", "1.0.0"), ("2.0.0", "2.0.0")] {
        let s = statement();
        post_ok(&lrs, v, &s);
        assert_eq!(
            fetch(&lrs, v, &id_of(&s))["version"],
            json!(assigned),
            "{v}: a missing version is set to {assigned}"
        );
    }
    for (v, given) in [
        ("1.0.3", "1.0.3"),
        ("1.0.3", "1.0.0"),
        ("2.0.0", "2.0.0"),
        ("2.0.0", "1.0.3"),
    ] {
        let mut s = statement();
        s["version"] = json!(given);
        post_ok(&lrs, v, &s);
        assert_eq!(
            fetch(&lrs, v, &id_of(&s))["version"],
            json!(given),
            "{v}: a given version {given} is kept"
        );
    }
}

/// Data 2.4.10 (LRS requirements): a statement version that is not 1.0.x is rejected
/// under 1.0.3; versions this LRS knows nothing of are rejected under both.
#[test]
fn data_2_4_10_unsupported_statement_version_rejected() {
    let lrs = Lrs::start();
    let cases = [
        ("1.0.3", "2.0.0"),
        ("1.0.3", "0.95"),
        ("1.0.3", "1.1.0"),
        ("2.0.0", "0.95"),
        ("2.0.0", "3.0.0"),
        ("2.0.0", "not a version"),
    ];
    for (v, given) in cases {
        let mut s = statement();
        s["version"] = json!(given);
        let r = lrs.post("/statements").version(v).json(&json!([s])).send();
        assert_400_at(&r, &["/0/version"]);
        assert_not_stored(&lrs, &id_of(&s));
    }
}

// ----- content types -------------------------------------------------------------------

/// Communication 1.5 / 1.5.1: statements are `application/json` (or `multipart/mixed`);
/// another content type, malformed JSON, or JSON that is neither a statement nor an array
/// of statements is rejected with 400.
#[test]
fn comm_1_5_statements_content_type_and_malformed_json_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        let text = s.to_string();
        let r = lrs
            .post("/statements")
            .version(v)
            .body("text/plain", text.clone())
            .send();
        r.assert_error(400);
        r.assert_version(v);
        let r = lrs
            .put("/statements")
            .query("statementId", &id_of(&s))
            .version(v)
            .body("text/plain", text.clone())
            .send();
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));

        for body in [
            "{\"actor\": ",
            "not json",
            "",
            "42",
            "\"a string\"",
            "[1, 2]",
        ] {
            let r = lrs
                .post("/statements")
                .version(v)
                .body("application/json", body)
                .send();
            r.assert_error(400);
        }
        // A content type with parameters is still JSON.
        let s = statement();
        lrs.post("/statements")
            .version(v)
            .body("application/json; charset=utf-8", s.to_string())
            .send()
            .assert_status(200);
        fetch(&lrs, v, &id_of(&s));
    }
}

/// Communication 1.4.s1.b1 (XAPI-00015): strings are UTF-8, stored and returned intact.
#[test]
fn comm_1_4_s1_b1_utf8_strings_round_trip() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let mut s = statement();
        s["actor"]["name"] = json!("Zoë Ñandú 学习者 🎓");
        s["verb"]["display"] = json!({"ja-JP": "経験した", "de-DE": "erlebt – größer"});
        post_ok(&lrs, v, &s);
        let got = fetch(&lrs, v, &id_of(&s));
        assert_eq!(got["actor"]["name"], s["actor"]["name"]);
        assert_eq!(got["verb"]["display"], s["verb"]["display"]);
    }
}

// ----- alternate request syntax --------------------------------------------------------

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("form encoding")
}

/// Communication 1.3 (XAPI-00336, 1.3.s3.b4, s3.b15): under 1.0.x, `POST ?method=PUT`
/// with a form body carrying the statement as `content`, the headers
/// (Authorization, X-Experience-API-Version, Content-Type) and the parameters
/// (statementId) stores the statement; `?method=GET` retrieves it.
#[test]
fn comm_1_3_alternate_request_syntax_accepted_under_1_0_3() {
    let lrs = Lrs::start();
    let s = statement();
    let id = id_of(&s);
    let auth = crate::harness::basic(lrs.key(), lrs.secret());
    let content = s.to_string();
    let body = form(&[
        ("statementId", &id),
        ("content", &content),
        ("X-Experience-API-Version", "1.0.3"),
        ("Content-Type", "application/json"),
        ("Authorization", &auth),
    ]);
    let r = lrs
        .post("/statements")
        .query("method", "PUT")
        .no_auth()
        .no_version()
        .body("application/x-www-form-urlencoded", body)
        .send();
    r.assert_status(204);
    r.assert_version("1.0.3");
    let got = fetch(&lrs, "1.0.3", &id);
    assert_eq!(got["verb"], s["verb"]);

    // GET through the alternate syntax, parameters in the form.
    let body = form(&[
        ("statementId", &id),
        ("X-Experience-API-Version", "1.0.3"),
        ("Authorization", &auth),
    ]);
    let r = lrs
        .post("/statements")
        .query("method", "GET")
        .no_auth()
        .no_version()
        .body("application/x-www-form-urlencoded", body)
        .send();
    r.assert_status(200);
    assert_eq!(r.json()["id"], json!(id));

    // Headers may also stay HTTP headers.
    let s2 = statement();
    let content = s2.to_string();
    let body = form(&[
        ("statementId", &id_of(&s2)),
        ("content", &content),
        ("Content-Type", "application/json"),
    ]);
    lrs.post("/statements")
        .query("method", "PUT")
        .version("1.0.3")
        .body("application/x-www-form-urlencoded", body)
        .send()
        .assert_status(204);
    fetch(&lrs, "1.0.3", &id_of(&s2));

    // Any query parameter besides `method` is refused (1.3: the LRP MUST NOT include any).
    let s3 = statement();
    let content = s3.to_string();
    let body = form(&[("content", &content), ("Content-Type", "application/json")]);
    let r = lrs
        .post("/statements")
        .query("method", "PUT")
        .query("statementId", &id_of(&s3))
        .version("1.0.3")
        .body("application/x-www-form-urlencoded", body)
        .send();
    r.assert_error(400);
    assert_not_stored(&lrs, &id_of(&s3));
}

/// xAPI 2.0 removed the alternate request syntax: the same request under 2.0 is rejected
/// with 400 and stores nothing.
#[test]
fn xapi_2_0_alternate_request_syntax_rejected() {
    let lrs = Lrs::start();
    let s = statement();
    let id = id_of(&s);
    let auth = crate::harness::basic(lrs.key(), lrs.secret());
    let content = s.to_string();
    let body = form(&[
        ("statementId", &id),
        ("content", &content),
        ("X-Experience-API-Version", "2.0.0"),
        ("Content-Type", "application/json"),
        ("Authorization", &auth),
    ]);
    let r = lrs
        .post("/statements")
        .query("method", "PUT")
        .no_auth()
        .no_version()
        .body("application/x-www-form-urlencoded", body)
        .send();
    r.assert_error(400);
    r.assert_version("2.0.0");

    let content = s.to_string();
    let body = form(&[
        ("statementId", &id),
        ("content", &content),
        ("Content-Type", "application/json"),
    ]);
    let r = lrs
        .post("/statements")
        .query("method", "PUT")
        .version("2.0.0")
        .body("application/x-www-form-urlencoded", body)
        .send();
    r.assert_error(400);
    assert_not_stored(&lrs, &id);
}
