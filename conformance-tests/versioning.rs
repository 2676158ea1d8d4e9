//! Communication 3.3 Versioning (and its 2.0 counterpart): the
//! `X-Experience-API-Version` header on requests and responses.
use crate::harness::{answered_version, statement, Lrs, DEFAULT_VERSION, VERSIONS};

/// Versions a request may carry, and must be served (3.3.s3.b3, 3.3.s3.b6; 2.0.x).
const ACCEPTED: [&str; 9] = [
    "1.0", "1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.9", "2.0", "2.0.0", "2.0.1",
];

/// Versions that must be rejected with 400 (3.3.s3.b4: before 1.0.0; 3.3.s3.b7: 1.1.0 or
/// greater within 1.x; 3.0.0 is no version this LRS serves; anything not a version).
const REJECTED: [&str; 8] = ["0.9", "0.95", "1.1.0", "1.1", "1.2.0", "3.0.0", "abc", ""];

/// Communication 3.3.s3.b1: every response carries the header — 2xx responses.
#[test]
fn comm_3_3_s3_b1_version_header_on_success_responses() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        lrs.get("/about")
            .version(v)
            .send()
            .assert_status(200)
            .assert_version(v);
        lrs.get("/statements")
            .query("limit", "1")
            .version(v)
            .send()
            .assert_status(200)
            .assert_version(v);
        lrs.post("/statements")
            .version(v)
            .json(&statement())
            .send()
            .assert_status(200)
            .assert_version(v);
        let s = statement();
        let id = s["id"].as_str().unwrap().to_owned();
        lrs.put("/statements")
            .query("statementId", &id)
            .version(v)
            .json(&s)
            .send()
            .assert_status(204)
            .assert_version(v);
        lrs.get("/statements")
            .query("statementId", &id)
            .version(v)
            .send()
            .assert_status(200)
            .assert_version(v);
    }
}

/// Communication 3.3.s3.b1: every response carries the header — 4xx responses, with the
/// version that governed the request.
#[test]
fn comm_3_3_s3_b1_version_header_on_error_responses() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        // 400: a parameter the Statement Resource does not define (Communication 3.2.s3.b7).
        let r = lrs
            .get("/statements")
            .query("notAParameter", "1")
            .version(v)
            .send();
        r.assert_error(400);
        r.assert_version(v);
        // 400: malformed JSON body.
        let r = lrs
            .post("/statements")
            .version(v)
            .body("application/json", "{not json")
            .send();
        r.assert_error(400);
        r.assert_version(v);
        // 401: no credentials.
        let r = lrs.get("/statements").no_auth().version(v).send();
        r.assert_error(401);
        r.assert_version(v);
        // 404: no such resource under the endpoint.
        let r = lrs.get("/no-such-resource").version(v).send();
        r.assert_error(404);
        r.assert_version(v);
        // 404: a statement id the LRS does not have.
        let r = lrs
            .get("/statements")
            .query("statementId", &crate::harness::new_id())
            .version(v)
            .send();
        r.assert_error(404);
        r.assert_version(v);
    }
}

/// Communication 3.3.s3.b1: even a request without a usable version header gets one back
/// (the LRS answers with its newest version, 2.0.0).
#[test]
fn comm_3_3_s3_b1_version_header_when_request_has_none_or_bad_one() {
    let lrs = Lrs::start();
    lrs.get("/about")
        .no_version()
        .send()
        .assert_status(200)
        .assert_version(DEFAULT_VERSION);
    lrs.get("/statements")
        .no_version()
        .send()
        .assert_status(400)
        .assert_version(DEFAULT_VERSION);
    lrs.get("/statements")
        .version("abc")
        .send()
        .assert_status(400)
        .assert_version(DEFAULT_VERSION);
    lrs.get("/statements")
        .version("1.1.0")
        .send()
        .assert_status(400)
        .assert_version(DEFAULT_VERSION);
    lrs.get("/statements")
        .no_version()
        .no_auth()
        .send()
        .assert_version(DEFAULT_VERSION);
}

/// Communication 3.3.s3.b2, s3.b3, s3.b6 (and 2.0.x): `1.0`, any `1.0.x`, `2.0` and any
/// `2.0.x` are accepted and answered with the latest patch version of that line.
#[test]
fn comm_3_3_s3_b2_b3_b6_accepted_versions_answered_with_latest_patch() {
    let lrs = Lrs::start();
    for v in ACCEPTED {
        let expected = answered_version(v);
        lrs.get("/statements")
            .query("limit", "1")
            .version(v)
            .send()
            .assert_status(200)
            .assert_version(expected);
        lrs.get("/about")
            .version(v)
            .send()
            .assert_status(200)
            .assert_version(expected);
    }
}

/// Communication 3.3.s3.b5 and s3.b8: a request without the header is rejected with 400
/// (every resource except GET /about), with an error message.
#[test]
fn comm_3_3_s3_b5_missing_version_header_rejected_400() {
    let lrs = Lrs::start();
    lrs.get("/statements").no_version().send().assert_error(400);
    lrs.get("/statements")
        .query("limit", "1")
        .no_version()
        .send()
        .assert_error(400);
    lrs.post("/statements")
        .no_version()
        .json(&statement())
        .send()
        .assert_error(400);
    let s = statement();
    let id = s["id"].as_str().unwrap().to_owned();
    lrs.put("/statements")
        .query("statementId", &id)
        .no_version()
        .json(&s)
        .send()
        .assert_error(400);
    // Nothing was stored by the rejected PUT.
    lrs.get("/statements")
        .query("statementId", &id)
        .send()
        .assert_error(404);
    lrs.get("/activities/state")
        .query(
            "activityId",
            "http://example.com/activities/conformance-test",
        )
        .query(
            "agent",
            r#"{"mbox":"mailto:conformance-tester@example.com"}"#,
        )
        .query("stateId", "s")
        .no_version()
        .send()
        .assert_error(400);
}

/// Communication 3.3.s3.b4, s3.b7, s3.b8: versions before 1.0.0, 1.1.0 or greater within
/// 1.x, unknown majors and non-versions are rejected with 400.
#[test]
fn comm_3_3_s3_b4_b7_unsupported_version_rejected_400() {
    let lrs = Lrs::start();
    for v in REJECTED {
        let r = lrs.get("/statements").version(v).send();
        assert_eq!(
            r.status,
            400,
            "version header `{v}` must be rejected\n{}",
            r.describe()
        );
        r.assert_error_body();
        let s = statement();
        let r = lrs.post("/statements").version(v).json(&s).send();
        assert_eq!(
            r.status,
            400,
            "version header `{v}` must be rejected\n{}",
            r.describe()
        );
        r.assert_error_body();
        // Nothing was stored.
        lrs.get("/statements")
            .query("statementId", s["id"].as_str().unwrap())
            .send()
            .assert_error(404);
    }
}

/// Communication 2.8.s5.b4: the About resource does not reject requests for their version
/// header (missing, old, future or garbage).
#[test]
fn comm_2_8_s5_b4_about_ignores_version_header() {
    let lrs = Lrs::start();
    lrs.get("/about").no_version().send().assert_status(200);
    for v in REJECTED {
        let r = lrs.get("/about").version(v).send();
        assert_eq!(
            r.status,
            200,
            "GET /about with version header `{v}`\n{}",
            r.describe()
        );
    }
}
