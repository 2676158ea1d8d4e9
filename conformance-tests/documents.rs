//! Document resources (Communication 2.2 State/Activity Profile/Agent Profile, 2.3, 2.6,
//! 2.7), their concurrency control (Communication 3.1; 2.0: "Concurrency"), and the
//! Agents (2.4) and Activities (2.5) resources.
use crate::harness::{new_id, statement, Lrs, Req, Response, VERSIONS};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use std::collections::HashSet;

const STATE: &str = "/activities/state";
const ACTIVITY_PROFILE: &str = "/activities/profile";
const AGENT_PROFILE: &str = "/agents/profile";

fn agent() -> Value {
    json!({ "objectType": "Agent", "mbox": format!("mailto:{}@example.com", new_id()) })
}

fn activity() -> String {
    format!("http://example.com/activities/{}", new_id())
}

/// The query parameters addressing one document (or, with `id: None`, the documents in
/// scope) of a resource, for a fresh activity and agent.
#[derive(Clone)]
struct Doc {
    path: &'static str,
    activity: String,
    agent: Value,
    registration: Option<String>,
    id: Option<String>,
}

impl Doc {
    fn new(path: &'static str) -> Doc {
        Doc {
            path,
            activity: activity(),
            agent: agent(),
            registration: None,
            id: Some(new_id()),
        }
    }

    fn id_param(&self) -> &'static str {
        if self.path == STATE {
            "stateId"
        } else {
            "profileId"
        }
    }

    fn with_id(&self, id: Option<&str>) -> Doc {
        Doc {
            id: id.map(str::to_owned),
            ..self.clone()
        }
    }

    fn params<'a>(&self, mut r: Req<'a>) -> Req<'a> {
        if self.path != AGENT_PROFILE {
            r = r.query("activityId", &self.activity);
        }
        if self.path != ACTIVITY_PROFILE {
            r = r.query("agent", &self.agent.to_string());
        }
        if let Some(reg) = &self.registration {
            r = r.query("registration", reg);
        }
        if let Some(id) = &self.id {
            r = r.query(self.id_param(), id);
        }
        r
    }

    fn get<'a>(&self, lrs: &'a Lrs, v: &str) -> Req<'a> {
        self.params(lrs.get(self.path)).version(v)
    }
    fn put<'a>(&self, lrs: &'a Lrs, v: &str) -> Req<'a> {
        self.params(lrs.put(self.path)).version(v)
    }
    fn post<'a>(&self, lrs: &'a Lrs, v: &str) -> Req<'a> {
        self.params(lrs.post(self.path)).version(v)
    }
    fn delete<'a>(&self, lrs: &'a Lrs, v: &str) -> Req<'a> {
        self.params(lrs.delete(self.path)).version(v)
    }
}

/// The quoted SHA-1 of `content`, the ETag Communication 3.1 (1.0.3) prescribes.
fn sha1_etag(content: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha1::digest(content)))
}

fn etag_of(r: &Response) -> String {
    r.assert_header("ETag").to_owned()
}

/// Creates a JSON document with a conditional PUT (If-None-Match: *), valid in every
/// version and resource; returns its ETag.
fn create(lrs: &Lrs, d: &Doc, v: &str, content: &Value) -> String {
    let r = d
        .put(lrs, v)
        .header("If-None-Match", "*")
        .json(content)
        .send();
    r.assert_status(204);
    etag_of(&r)
}

fn all_resources() -> [&'static str; 3] {
    [STATE, ACTIVITY_PROFILE, AGENT_PROFILE]
}

/// Communication 2.2 / 2.3 / 2.6 / 2.7 single document PUT, GET, DELETE: 204 on writes,
/// the stored bytes and content type on GET with a quoted SHA-1 ETag (Communication 3.1)
/// and Last-Modified (Communication 2.2 "Last Modified"; 2.0), 404 once deleted.
#[test]
fn comm_2_2_documents_put_get_delete_round_trip() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            let content = json!({"x": "foo", "nested": {"y": [1, 2, 3]}});
            let put_etag = create(&lrs, &d, v, &content);
            let got = d.get(&lrs, v).send();
            got.assert_status(200).assert_version(v);
            assert_eq!(got.json(), content, "{path} {v}");
            assert!(
                got.assert_header("Content-Type")
                    .starts_with("application/json"),
                "{}",
                got.describe()
            );
            let etag = etag_of(&got);
            assert_eq!(
                etag,
                sha1_etag(&got.body),
                "ETag must be the quoted SHA-1 of the document\n{}",
                got.describe()
            );
            assert_eq!(etag, put_etag, "the PUT's ETag is the stored document's");
            let lm = got.assert_header("Last-Modified");
            assert!(
                lm.ends_with("GMT"),
                "Last-Modified must be an HTTP date\n{}",
                got.describe()
            );

            d.delete(&lrs, v).send().assert_status(204);
            d.get(&lrs, v).send().assert_error(404);
            // Deleting what is not there is not an error.
            d.delete(&lrs, v).send().assert_status(204);
        }
    }
}

/// Communication 2.2 (Description): documents are arbitrary binary data, stored and
/// returned byte for byte with their content type.
#[test]
fn comm_2_2_documents_of_any_content_type_are_stored_byte_exact() {
    let lrs = Lrs::start();
    let bytes: Vec<u8> = (0u8..=255).chain([0, 0xff, 0xfe]).collect();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            d.put(&lrs, v)
                .header("If-None-Match", "*")
                .body("image/x-test", bytes.clone())
                .send()
                .assert_status(204);
            let got = d.get(&lrs, v).send();
            got.assert_status(200);
            assert_eq!(got.body, bytes, "{path} {v}");
            assert_eq!(
                got.header("Content-Type"),
                Some("image/x-test"),
                "{}",
                got.describe()
            );
            assert_eq!(etag_of(&got), sha1_etag(&bytes));

            // Text with a charset keeps its exact spelling.
            let d = Doc::new(path);
            let text = "grüße, 世界\r\n  ";
            d.put(&lrs, v)
                .header("If-None-Match", "*")
                .body("text/plain; charset=utf-8", text)
                .send()
                .assert_status(204);
            let got = d.get(&lrs, v).send();
            assert_eq!(got.text(), text);
            assert_eq!(
                got.header("Content-Type"),
                Some("text/plain; charset=utf-8")
            );
        }
    }
}

/// Communication 1.1: HEAD answers as GET without a body (ETag included).
#[test]
fn comm_1_1_head_document_answers_as_get_without_body() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            let etag = create(&lrs, &d, v, &json!({"a": 1}));
            let head = d.params(lrs.head(path)).version(v).send();
            head.assert_status(200)
                .assert_empty_body()
                .assert_version(v);
            assert_eq!(head.header("ETag"), Some(etag.as_str()));
            d.with_id(Some(&new_id()))
                .params(lrs.head(path))
                .version(v)
                .send()
                .assert_status(404)
                .assert_empty_body();
        }
    }
}

/// Communication 2.2.s7 (XAPI-00183, XAPI-00184, XAPI-00234): POST of a JSON object to a
/// JSON document merges one level deep; the new document has a new ETag.
#[test]
fn comm_2_2_s7_b1_post_merges_json_objects_one_level_deep() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            let first = json!({"x": "foo", "y": "bar", "car": {"make": "Ford", "model": "Escape"}});
            d.post(&lrs, v).json(&first).send().assert_status(204);
            let before = etag_of(&d.get(&lrs, v).send());
            let second = json!({"x": "bash", "z": "faz", "car": {"make": "Dodge"}});
            let r = d.post(&lrs, v).json(&second).send();
            r.assert_status(204);
            let got = d.get(&lrs, v).send();
            assert_eq!(
                got.json(),
                json!({"x": "bash", "y": "bar", "z": "faz", "car": {"make": "Dodge"}}),
                "{path} {v}"
            );
            assert_ne!(
                etag_of(&got),
                before,
                "the ETag must change with the document"
            );
            assert_eq!(
                r.header("ETag"),
                Some(etag_of(&got).as_str()),
                "POST answers with the new ETag"
            );
        }
    }
}

/// Communication 2.2.s7 (XAPI-00233): POST to a document that does not exist stores it
/// as PUT would, whatever its content type.
#[test]
fn comm_2_2_s7_post_to_missing_document_creates_it() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            d.post(&lrs, v)
                .json(&json!({"a": 1}))
                .send()
                .assert_status(204);
            assert_eq!(d.get(&lrs, v).send().json(), json!({"a": 1}));
            let d = Doc::new(path);
            d.post(&lrs, v)
                .body("text/plain", "plain")
                .send()
                .assert_status(204);
            let got = d.get(&lrs, v).send();
            assert_eq!(
                (got.text().as_str(), got.header("Content-Type")),
                ("plain", Some("text/plain"))
            );
        }
    }
}

/// Communication 2.2.s8.b1 (XAPI-00229, XAPI-00232, XAPI-00235): a POST where either
/// document is not a JSON object is rejected with 400 and changes nothing.
#[test]
fn comm_2_2_s8_b1_post_merge_of_non_json_is_400_and_changes_nothing() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            // Existing JSON, posted non-JSON / invalid JSON / JSON that is not an object.
            let d = Doc::new(path);
            let original = json!({"keep": true});
            d.post(&lrs, v).json(&original).send().assert_status(204);
            d.post(&lrs, v)
                .body("application/octet-stream", "abcdefg")
                .send()
                .assert_error(400);
            d.post(&lrs, v)
                .body("application/json", "{\"a\": 1}{")
                .send()
                .assert_error(400);
            d.post(&lrs, v)
                .body("application/json", "[1, 2]")
                .send()
                .assert_error(400);
            assert_eq!(d.get(&lrs, v).send().json(), original, "{path} {v}");

            // Existing non-JSON, posted JSON.
            let d = Doc::new(path);
            d.put(&lrs, v)
                .header("If-None-Match", "*")
                .body("application/octet-stream", "/ asdf / undefined")
                .send();
            d.post(&lrs, v)
                .json(&json!({"a": 1}))
                .send()
                .assert_error(400);
            assert_eq!(d.get(&lrs, v).send().text(), "/ asdf / undefined");

            // Invalid JSON to a missing document is not stored either.
            let d = Doc::new(path);
            d.post(&lrs, v)
                .body("application/json", "{\"a\": [")
                .send()
                .assert_error(400);
            d.get(&lrs, v).send().assert_error(404);
        }
    }
}

/// Communication 2.3.s4, 2.6.s4, 2.7.s4: GET without the document id lists the ids in
/// scope; `since` keeps those stored after it (exclusive).
#[test]
fn comm_2_3_s4_multiple_get_lists_ids_and_honours_since() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            let a = d.with_id(Some("doc-a"));
            let b = d.with_id(Some("doc-b"));
            a.post(&lrs, v)
                .json(&json!({"n": 1}))
                .send()
                .assert_status(204);
            let all = d.with_id(None);
            let list = all.get(&lrs, v).send();
            list.assert_status(200);
            assert!(
                list.header("ETag").is_some(),
                "GET must carry an ETag\n{}",
                list.describe()
            );
            assert_eq!(list.json(), json!(["doc-a"]), "{path} {v}");

            std::thread::sleep(std::time::Duration::from_millis(20));
            let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            std::thread::sleep(std::time::Duration::from_millis(20));
            b.post(&lrs, v)
                .json(&json!({"n": 2}))
                .send()
                .assert_status(204);

            let ids: HashSet<String> =
                serde_json::from_value(all.get(&lrs, v).send().json()).unwrap();
            assert_eq!(ids, HashSet::from(["doc-a".to_owned(), "doc-b".to_owned()]));
            let since = all
                .params(lrs.get(path))
                .query("since", &between)
                .version(v)
                .send();
            since.assert_status(200);
            assert_eq!(since.json(), json!(["doc-b"]), "{}", since.describe());
            let early = all
                .params(lrs.get(path))
                .query("since", "2000-01-01T00:00:00Z")
                .version(v)
                .send();
            assert_eq!(early.json().as_array().map(Vec::len), Some(2));

            // Another agent or activity sees none of them.
            let other = Doc::new(path).with_id(None);
            assert_eq!(other.get(&lrs, v).send().json(), json!([]));
        }
    }
}

/// Communication 2.3.s5 (XAPI-00194): DELETE on the State resource without `stateId`
/// deletes every document of the context and nothing else.
#[test]
fn comm_2_3_s5_delete_without_state_id_deletes_the_context() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let d = Doc::new(STATE);
        for id in ["s1", "s2", "s3"] {
            d.with_id(Some(id))
                .post(&lrs, v)
                .json(&json!({"id": id}))
                .send()
                .assert_status(204);
        }
        let neighbour = Doc {
            id: Some("s1".into()),
            activity: activity(),
            ..d.clone()
        };
        neighbour
            .post(&lrs, v)
            .json(&json!({"id": "n"}))
            .send()
            .assert_status(204);

        d.with_id(None).delete(&lrs, v).send().assert_status(204);
        assert_eq!(d.with_id(None).get(&lrs, v).send().json(), json!([]));
        neighbour.get(&lrs, v).send().assert_status(200);
    }
}

/// Communication 2.3.s3.table1.row3: the registration is part of a state's context.
#[test]
fn comm_2_3_s3_table1_row3_registration_separates_state_documents() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let plain = Doc::new(STATE);
        let registered = Doc {
            registration: Some(new_id()),
            ..plain.clone()
        };
        plain
            .post(&lrs, v)
            .json(&json!({"r": "none"}))
            .send()
            .assert_status(204);
        registered
            .post(&lrs, v)
            .json(&json!({"r": "some"}))
            .send()
            .assert_status(204);
        assert_eq!(plain.get(&lrs, v).send().json(), json!({"r": "none"}));
        assert_eq!(registered.get(&lrs, v).send().json(), json!({"r": "some"}));
        // UUIDs are case-insensitive.
        let upper = Doc {
            registration: registered.registration.as_ref().map(|r| r.to_uppercase()),
            ..plain.clone()
        };
        assert_eq!(upper.get(&lrs, v).send().json(), json!({"r": "some"}));
        let list = registered.with_id(None).get(&lrs, v).send();
        assert_eq!(list.json(), json!([registered.id.clone().unwrap()]));
    }
}

/// Communication 2.3 (multiple-document GET and DELETE): "all state data for this
/// context (Activity + Agent [+ registration if specified])" — without a registration
/// they reach the documents of every registration, with one only that registration's.
#[test]
fn comm_2_3_multiple_get_and_delete_without_registration_cover_every_registration() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let plain = Doc::new(STATE).with_id(Some("bookmark"));
        let first = Doc {
            registration: Some(new_id()),
            id: Some("progress".into()),
            ..plain.clone()
        };
        let second = Doc {
            registration: Some(new_id()),
            id: Some("bookmark".into()),
            ..plain.clone()
        };
        for d in [&plain, &first, &second] {
            d.post(&lrs, v)
                .json(&json!({"x": 1}))
                .send()
                .assert_status(204);
        }
        let all = plain.with_id(None).get(&lrs, v).send();
        all.assert_status(200);
        assert_eq!(
            all.json(),
            json!(["bookmark", "progress"]),
            "{}",
            all.describe()
        );
        assert_eq!(
            first.with_id(None).get(&lrs, v).send().json(),
            json!(["progress"])
        );

        // Deleting one registration's documents leaves the others.
        first
            .with_id(None)
            .delete(&lrs, v)
            .send()
            .assert_status(204);
        first.get(&lrs, v).send().assert_status(404);
        second.get(&lrs, v).send().assert_status(200);
        plain.get(&lrs, v).send().assert_status(200);

        // Without a registration: every registration's documents go.
        plain
            .with_id(None)
            .delete(&lrs, v)
            .send()
            .assert_status(204);
        second.get(&lrs, v).send().assert_status(404);
        plain.get(&lrs, v).send().assert_status(404);
        assert_eq!(plain.with_id(None).get(&lrs, v).send().json(), json!([]));
    }
}

/// Data 2.4.2.3: documents are keyed by the Agent's identifier, not its spelling (name,
/// objectType, mbox domain case).
#[test]
fn data_2_4_2_3_documents_are_keyed_by_agent_identity() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in [STATE, AGENT_PROFILE] {
            let local = new_id();
            let d = Doc {
                agent: json!({"mbox": format!("mailto:{local}@example.com")}),
                ..Doc::new(path)
            };
            d.post(&lrs, v)
                .json(&json!({"a": 1}))
                .send()
                .assert_status(204);
            let same = Doc {
                agent: json!({"objectType": "Agent", "name": "Ann", "mbox": format!("mailto:{local}@EXAMPLE.com")}),
                ..d.clone()
            };
            assert_eq!(
                same.get(&lrs, v).send().json(),
                json!({"a": 1}),
                "{path} {v}"
            );
        }
    }
}

/// Communication 3.1 (XAPI-00322) and 2.0 Concurrency: If-Match with the current ETag
/// succeeds on PUT, POST and DELETE; any other ETag answers 412 and changes nothing.
#[test]
fn comm_3_1_if_match_is_honoured_on_put_post_and_delete() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            let original = json!({"name": "original"});
            let etag = create(&lrs, &d, v, &original);
            let stale = "\"1111111111111111111111111111111111111111\"";

            d.put(&lrs, v)
                .header("If-Match", stale)
                .json(&json!({"name": "x"}))
                .send()
                .assert_error(412);
            d.post(&lrs, v)
                .header("If-Match", stale)
                .json(&json!({"name": "x"}))
                .send()
                .assert_error(412);
            d.delete(&lrs, v)
                .header("If-Match", stale)
                .send()
                .assert_error(412);
            assert_eq!(
                d.get(&lrs, v).send().json(),
                original,
                "{path} {v}: a failed precondition changed the document"
            );

            let r = d
                .put(&lrs, v)
                .header("If-Match", &etag)
                .json(&json!({"name": "put"}))
                .send();
            r.assert_status(204);
            let etag = etag_of(&r);
            // The first ETag is stale now.
            d.post(&lrs, v)
                .header("If-Match", &sha1_etag(original.to_string().as_bytes()))
                .json(&json!({"b": 1}))
                .send()
                .assert_error(412);
            let r = d
                .post(&lrs, v)
                .header("If-Match", &etag)
                .json(&json!({"name": "post"}))
                .send();
            r.assert_status(204);
            assert_eq!(d.get(&lrs, v).send().json(), json!({"name": "post"}));
            let etag = etag_of(&r);
            // `*` matches any existing document; an unquoted tag is accepted too.
            d.put(&lrs, v)
                .header("If-Match", "*")
                .json(&json!({"name": "star"}))
                .send()
                .assert_status(204);
            let etag2 = etag_of(&d.get(&lrs, v).send());
            assert_ne!(etag, etag2);
            d.delete(&lrs, v)
                .header("If-Match", etag2.trim_matches('"'))
                .send()
                .assert_status(204);
            d.get(&lrs, v).send().assert_error(404);
            // If-Match on a document that does not exist fails.
            d.put(&lrs, v)
                .header("If-Match", &etag2)
                .json(&json!({}))
                .send()
                .assert_error(412);
            d.get(&lrs, v).send().assert_error(404);
        }
    }
}

/// Communication 3.1: If-None-Match: * creates only when no document exists (PUT, POST).
#[test]
fn comm_3_1_if_none_match_star_only_creates() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            create(&lrs, &d, v, &json!({"first": 1}));
            d.put(&lrs, v)
                .header("If-None-Match", "*")
                .json(&json!({"second": 2}))
                .send()
                .assert_error(412);
            d.post(&lrs, v)
                .header("If-None-Match", "*")
                .json(&json!({"second": 2}))
                .send()
                .assert_error(412);
            assert_eq!(d.get(&lrs, v).send().json(), json!({"first": 1}));
        }
    }
}

/// Communication 3.1.s5 (1.0.3) and 2.0 Concurrency: a PUT without If-Match or
/// If-None-Match to an existing profile document answers 409 with an explanation and
/// changes nothing. Under 1.0.3 the profile resources require one of the headers (a PUT
/// creating a document without them is a bad request: 400).
#[test]
fn comm_3_1_s5_unconditional_put_to_existing_profile_is_409() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in [ACTIVITY_PROFILE, AGENT_PROFILE] {
            let d = Doc::new(path);
            let fresh = d.put(&lrs, v).json(&json!({"a": 1})).send();
            if v == "1.0.3" {
                fresh.assert_error(400);
                create(&lrs, &d, v, &json!({"a": 1}));
            } else {
                fresh.assert_status(204);
            }
            let e = d
                .put(&lrs, v)
                .json(&json!({"b": 2}))
                .send()
                .assert_error(409);
            assert!(
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("If-Match")),
                "409 must say what to do: {e}"
            );
            assert_eq!(d.get(&lrs, v).send().json(), json!({"a": 1}), "{path} {v}");
        }
    }
}

/// Communication 3.1 (1.0.3: "the State Resource will permit PUT … without concurrency
/// headers") and 2.0 Concurrency (409 applies to State too).
#[test]
fn comm_3_1_unconditional_state_put_overwrites_in_1_0_3_and_conflicts_in_2_0() {
    let lrs = Lrs::start();
    let d = Doc::new(STATE);
    d.put(&lrs, "1.0.3")
        .json(&json!({"a": 1}))
        .send()
        .assert_status(204);
    d.put(&lrs, "1.0.3")
        .json(&json!({"b": 2}))
        .send()
        .assert_status(204);
    assert_eq!(d.get(&lrs, "1.0.3").send().json(), json!({"b": 2}));

    let d = Doc::new(STATE);
    d.put(&lrs, "2.0.0")
        .json(&json!({"a": 1}))
        .send()
        .assert_status(204);
    d.put(&lrs, "2.0.0")
        .json(&json!({"b": 2}))
        .send()
        .assert_error(409);
    assert_eq!(d.get(&lrs, "2.0.0").send().json(), json!({"a": 1}));
}

/// 2.0 Last-Modified on every single-document GET, updated with the document.
#[test]
fn comm_2_2_last_modified_follows_updates() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let d = Doc::new(AGENT_PROFILE);
        d.post(&lrs, v)
            .json(&json!({"a": 1}))
            .send()
            .assert_status(204);
        let first = d
            .get(&lrs, v)
            .send()
            .assert_header("Last-Modified")
            .to_owned();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        d.post(&lrs, v)
            .json(&json!({"b": 1}))
            .send()
            .assert_status(204);
        let second = d
            .get(&lrs, v)
            .send()
            .assert_header("Last-Modified")
            .to_owned();
        let parse = |s: &str| {
            chrono::DateTime::parse_from_rfc2822(s).unwrap_or_else(|e| panic!("{s}: {e}"))
        };
        assert!(parse(&second) > parse(&first), "{first} then {second}");
    }
}

/// Communication 2.3.s3.table1, 2.6.s3.table1, 2.7.s3.table1 and 3.2: missing or invalid
/// parameters, and parameters the resource does not know, are rejected with 400.
#[test]
fn comm_2_3_s3_table1_parameter_validation() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in all_resources() {
            let d = Doc::new(path);
            let body = json!({"a": 1});
            let id_param = d.id_param();
            // Missing document id on PUT and POST.
            d.with_id(None)
                .put(&lrs, v)
                .header("If-None-Match", "*")
                .json(&body)
                .send()
                .assert_error(400);
            d.with_id(None)
                .post(&lrs, v)
                .json(&body)
                .send()
                .assert_error(400);
            if path != STATE {
                d.with_id(None).delete(&lrs, v).send().assert_error(400);
            }
            // Missing scope parameters.
            let id = d.id.clone().unwrap();
            let bare = lrs
                .post(path)
                .query(id_param, &id)
                .version(v)
                .json(&body)
                .send();
            bare.assert_error(400);
            // Unknown and mis-cased parameters.
            d.post(&lrs, v)
                .query("foo", "bar")
                .json(&body)
                .send()
                .assert_error(400);
            let e = d
                .get(&lrs, v)
                .query("StateID", "x")
                .send()
                .assert_error(400);
            assert_eq!(e["path"], json!("StateID"));
            // Duplicated parameter.
            d.get(&lrs, v)
                .query(id_param, "again")
                .send()
                .assert_error(400);
            // `since` is not a timestamp.
            d.with_id(None)
                .get(&lrs, v)
                .query("since", "not a timestamp")
                .send()
                .assert_error(400);
            d.with_id(None)
                .get(&lrs, v)
                .query("since", "true")
                .send()
                .assert_error(400);
        }
        // Bad agents.
        for bad in [
            "not JSON",
            "true",
            "{\"objectType\":\"Agent\",\"name\":\"no ifi\"}",
            "{\"mbox\":\"mailto:a@example.com\",\"openid\":\"http://example.com/a\"}",
        ] {
            for path in [STATE, AGENT_PROFILE] {
                let mut req = lrs.get(path).query("agent", bad).version(v);
                if path == STATE {
                    req = req.query("activityId", &activity());
                }
                let r = req.send();
                let e = r.assert_error(400);
                assert!(
                    e["path"].as_str().is_some_and(|p| p.starts_with("agent")),
                    "{}",
                    r.describe()
                );
            }
        }
        // Bad activity ids and registrations.
        for path in [STATE, ACTIVITY_PROFILE] {
            let r = lrs
                .get(path)
                .query("activityId", "not an iri")
                .query("agent", &agent().to_string())
                .version(v)
                .send();
            r.assert_error(400);
        }
        let d = Doc {
            registration: Some("not-a-uuid".into()),
            ..Doc::new(STATE)
        };
        d.post(&lrs, v).json(&json!({})).send().assert_error(400);
        d.get(&lrs, v).send().assert_error(400);
        d.delete(&lrs, v).send().assert_error(400);
    }
}

/// Communication 4.2 scopes: reading documents needs `state`/`profile` (or a read-all
/// scope), writing needs `state`/`profile`.
#[test]
fn comm_4_2_document_scopes() {
    let lrs = Lrs::start();
    let (sk, ss) = lrs.credential(&["state"]);
    let (pk, ps) = lrs.credential(&["profile"]);
    let (rk, rs) = lrs.credential(&["all/read"]);
    let (wk, ws) = lrs.credential(&["statements/write"]);
    for v in VERSIONS {
        let st = Doc::new(STATE);
        let pr = Doc::new(ACTIVITY_PROFILE);
        let body = json!({"a": 1});
        st.post(&lrs, v)
            .auth(&sk, &ss)
            .json(&body)
            .send()
            .assert_status(204);
        pr.post(&lrs, v)
            .auth(&sk, &ss)
            .json(&body)
            .send()
            .assert_error(403);
        pr.post(&lrs, v)
            .auth(&pk, &ps)
            .json(&body)
            .send()
            .assert_status(204);
        st.post(&lrs, v)
            .auth(&pk, &ps)
            .json(&body)
            .send()
            .assert_error(403);
        st.get(&lrs, v).auth(&rk, &rs).send().assert_status(200);
        pr.get(&lrs, v).auth(&rk, &rs).send().assert_status(200);
        st.post(&lrs, v)
            .auth(&rk, &rs)
            .json(&body)
            .send()
            .assert_error(403);
        st.get(&lrs, v).auth(&wk, &ws).send().assert_error(403);
        st.delete(&lrs, v).auth(&wk, &ws).send().assert_error(403);
        st.get(&lrs, v).no_auth().send().assert_error(401);
    }
}

/// Runs `threads` clients that each make `rounds` read-modify-write attempts on one
/// document with If-Match, using `write` (PUT or POST). Every attempt answers 204 or 412,
/// and the final counter equals the number of 204s: no update was silently lost.
fn race_if_match(path: &'static str, v: &str, method: &str, threads: usize, rounds: usize) {
    let lrs = Lrs::start();
    let d = Doc::new(path);
    create(&lrs, &d, v, &json!({"n": 0, "seed": true}));
    let successes: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (lrs, d) = (&lrs, &d);
                s.spawn(move || -> usize {
                    let mut ok = 0;
                    for _ in 0..rounds {
                        let got = d.get(lrs, v).send();
                        got.assert_status(200);
                        let etag = etag_of(&got);
                        let n = got.json()["n"].as_u64().expect("n");
                        let next = json!({"n": n + 1, "seed": true, format!("t{t}"): n + 1});
                        let req = if method == "PUT" {
                            d.put(lrs, v)
                        } else {
                            d.post(lrs, v)
                        };
                        let r = req.header("If-Match", &etag).json(&next).send();
                        match r.status {
                            204 => ok += 1,
                            412 => {}
                            _ => {
                                panic!("a racing {method} must answer 204 or 412\n{}", r.describe())
                            }
                        }
                    }
                    ok
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .sum()
    });
    let last = d.get(&lrs, v).send().json();
    assert_eq!(
        last["n"].as_u64(),
        Some(successes as u64),
        "{method} {path} {v}: {successes} writes succeeded but the document counts {}: a lost update",
        last["n"]
    );
    assert!(successes >= 1, "at least one racing write must win");
}

/// Communication 3.1 concurrency: N clients racing PUT with If-Match on one document never
/// lose an update silently.
#[test]
fn comm_3_1_racing_put_with_if_match_never_loses_an_update() {
    for v in VERSIONS {
        race_if_match(AGENT_PROFILE, v, "PUT", 8, 12);
        race_if_match(STATE, v, "PUT", 8, 12);
    }
}

/// Communication 3.1 concurrency: N clients racing POST (merge) with If-Match on one
/// document never lose an update silently.
#[test]
fn comm_3_1_racing_post_with_if_match_never_loses_an_update() {
    for v in VERSIONS {
        race_if_match(ACTIVITY_PROFILE, v, "POST", 8, 12);
    }
}

/// Communication 2.2 JSON procedure: concurrent merges without preconditions are each
/// applied whole (the read-merge-write is atomic): every posted property survives.
#[test]
fn comm_2_2_s7_concurrent_merges_are_atomic() {
    let lrs = Lrs::start();
    let d = Doc::new(STATE);
    let (threads, rounds) = (8, 10);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (lrs, d) = (&lrs, &d);
            s.spawn(move || {
                for i in 0..rounds {
                    d.post(lrs, "2.0.0")
                        .json(&json!({ format!("k{t}_{i}"): i }))
                        .send()
                        .assert_status(204);
                }
            });
        }
    });
    let doc = d.get(&lrs, "2.0.0").send().json();
    assert_eq!(
        doc.as_object().map(|o| o.len()),
        Some(threads * rounds),
        "lost merges: {doc}"
    );
}

/// Communication 2.4 (XAPI-00236, XAPI-00237..00242, XAPI-00249): GET /agents returns a
/// Person object (every property an array) for any valid Agent; 400 for a missing or
/// invalid agent.
#[test]
fn comm_2_4_agents_resource_returns_a_person() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let r = lrs
            .get("/agents")
            .query(
                "agent",
                r#"{"objectType":"Agent","name":"Ann","mbox":"mailto:ann@example.com"}"#,
            )
            .version(v)
            .send();
        r.assert_status(200).assert_version(v);
        assert_eq!(
            r.json(),
            json!({"objectType": "Person", "name": ["Ann"], "mbox": ["mailto:ann@example.com"]})
        );
        let acct = json!({"account": {"homePage": "http://example.com", "name": "ann"}});
        let p = lrs
            .get("/agents")
            .query("agent", &acct.to_string())
            .version(v)
            .send()
            .json();
        assert_eq!(
            p["account"],
            json!([{"homePage": "http://example.com", "name": "ann"}])
        );
        lrs.head("/agents")
            .query("agent", &acct.to_string())
            .version(v)
            .send()
            .assert_status(200)
            .assert_empty_body();

        lrs.get("/agents").version(v).send().assert_error(400);
        lrs.get("/agents")
            .query("agent", "not json")
            .version(v)
            .send()
            .assert_error(400);
        lrs.get("/agents")
            .query("agent", r#"{"name":"no ifi"}"#)
            .version(v)
            .send()
            .assert_error(400);
        lrs.get("/agents")
            .query("agent", &acct.to_string())
            .query("extra", "1")
            .version(v)
            .send()
            .assert_error(400);
    }
}

/// Communication 2.5 (XAPI-00250..00254; 2.0: always an Activity object): GET /activities
/// returns the canonical definition, merged across statements (all languages), or an
/// Activity object with just its id when the LRS knows no definition.
#[test]
fn comm_2_5_activities_resource_returns_the_canonical_activity() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let unknown = activity();
        let r = lrs
            .get("/activities")
            .query("activityId", &unknown)
            .version(v)
            .send();
        r.assert_status(200).assert_version(v);
        assert_eq!(r.json(), json!({"objectType": "Activity", "id": unknown}));

        let id = activity();
        let mut s1 = statement();
        s1["object"] = json!({"objectType": "Activity", "id": id, "definition": {
            "type": "http://adlnet.gov/expapi/activities/meeting",
            "name": {"en-US": "example meeting", "en-GB": "example meeting"}}});
        let mut s2 = statement();
        s2["object"] = json!({"objectType": "Activity", "id": id, "definition": {
            "name": {"fr-FR": "réunion"}, "description": {"fr-FR": "une réunion"}}});
        lrs.post("/statements")
            .version(v)
            .json(&json!([s1, s2]))
            .send()
            .assert_status(200);
        let got = lrs
            .get("/activities")
            .query("activityId", &id)
            .version(v)
            .send();
        got.assert_status(200);
        let a = got.json();
        assert_eq!(
            (&a["objectType"], &a["id"]),
            (&json!("Activity"), &json!(id))
        );
        assert_eq!(
            a["definition"]["name"],
            json!({"en-US": "example meeting", "en-GB": "example meeting", "fr-FR": "réunion"})
        );
        assert_eq!(
            a["definition"]["description"],
            json!({"fr-FR": "une réunion"})
        );
        assert_eq!(
            a["definition"]["type"],
            json!("http://adlnet.gov/expapi/activities/meeting")
        );

        lrs.get("/activities").version(v).send().assert_error(400);
        lrs.get("/activities")
            .query("activityId", "true")
            .version(v)
            .send()
            .assert_error(400);
        lrs.get("/activities")
            .query("activityId", &id)
            .query("agent", "{}")
            .version(v)
            .send()
            .assert_error(400);
    }
}

/// Communication 2.5 with Data 2.4.4.1: the canonical definition follows the definitions
/// received, in order, when the same ones come again and again (as content re-sends its
/// activities' definitions with every statement), within one batch and across batches.
#[test]
fn comm_2_5_canonical_definition_follows_repeated_definitions_in_order() {
    let lrs = Lrs::start();
    let id = activity();
    // Names of the definitions sent; every statement is new (its own id).
    let one = json!({"en-US": "one"});
    let two = json!({"en-US": "two", "fr-FR": "deux"});
    let name = || {
        let r = lrs.get("/activities").query("activityId", &id).send();
        r.assert_status(200);
        r.json()["definition"]["name"].clone()
    };
    let post = |names: Vec<&Value>| {
        let batch: Vec<Value> = names
            .into_iter()
            .map(|name| {
                let mut s = statement();
                s["object"] =
                    json!({"objectType": "Activity", "id": id, "definition": {"name": name}});
                s
            })
            .collect();
        lrs.post("/statements")
            .json(&json!(batch))
            .send()
            .assert_status(200);
    };
    post(vec![&one, &two, &one]);
    assert_eq!(name(), json!({"en-US": "one", "fr-FR": "deux"}));
    post(vec![&one]);
    assert_eq!(name(), json!({"en-US": "one", "fr-FR": "deux"}));
    post(vec![&two]);
    assert_eq!(name(), json!({"en-US": "two", "fr-FR": "deux"}));
    post(vec![&two, &two]);
    assert_eq!(name(), json!({"en-US": "two", "fr-FR": "deux"}));
    post(vec![&one, &one, &two, &two]);
    assert_eq!(name(), json!({"en-US": "two", "fr-FR": "deux"}));
    post(vec![&two, &one, &one]);
    assert_eq!(name(), json!({"en-US": "one", "fr-FR": "deux"}));
    let three = json!({"hi-IN": "तीन"});
    post(vec![&three, &one]);
    assert_eq!(
        name(),
        json!({"en-US": "one", "fr-FR": "deux", "hi-IN": "तीन"})
    );
}
