//! Communication 3.2 Error Codes: every rejection is a JSON error body
//! `{"error": {"status", "message", "path"?, "requirement"?}}` (3.2.s3.b2: a message
//! explaining the cause), whatever produced it.
use crate::harness::{statement, Lrs, VERSIONS};

/// Communication 3.2.s3.b1 and s3.b2: the errors of the request pipeline (version header,
/// authentication, routing, parameters, body) are JSON with `error.status` equal to the
/// HTTP status and a non-empty `error.message`.
#[test]
fn comm_3_2_s3_b2_error_responses_have_json_body_with_status_and_message() {
    let lrs = Lrs::start();
    // Version header.
    lrs.get("/statements").no_version().send().assert_error(400);
    lrs.get("/statements")
        .version("0.95")
        .send()
        .assert_error(400);
    for v in VERSIONS {
        // Authentication.
        lrs.get("/statements")
            .no_auth()
            .version(v)
            .send()
            .assert_error(401);
        lrs.get("/statements")
            .auth(lrs.key(), "wrong")
            .version(v)
            .send()
            .assert_error(401);
        // Routing.
        lrs.get("/no-such-resource")
            .version(v)
            .send()
            .assert_error(404);
        lrs.get("/statements/extra/segments")
            .version(v)
            .send()
            .assert_error(404);
        // Parameters (Communication 3.2.s3.b7, s3.b8).
        lrs.get("/statements")
            .query("notAParameter", "1")
            .version(v)
            .send()
            .assert_error(400);
        lrs.get("/statements")
            .query("statementid", &crate::harness::new_id())
            .version(v)
            .send()
            .assert_error(400);
        lrs.get("/statements")
            .query("statementId", "not-a-uuid")
            .version(v)
            .send()
            .assert_error(400);
        // Bodies.
        lrs.post("/statements")
            .version(v)
            .body("application/json", "{not json")
            .send()
            .assert_error(400);
        lrs.post("/statements")
            .version(v)
            .json(&serde_json::json!({"actor": "nobody"}))
            .send()
            .assert_error(400);
        // Missing statement.
        lrs.get("/statements")
            .query("statementId", &crate::harness::new_id())
            .version(v)
            .send()
            .assert_error(404);
    }
}

/// Communication 3.2.s3.b1 and s3.b2: a method a resource does not support is refused
/// with a 4xx (405 is the HTTP answer) in the same JSON error shape.
#[test]
fn comm_3_2_s3_b2_unsupported_method_has_json_error_body() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for path in ["/statements", "/about"] {
            let r = lrs
                .request("PATCH", path)
                .version(v)
                .json(&statement())
                .send();
            assert!(
                (400..500).contains(&r.status),
                "PATCH {path} must be refused with a 4xx\n{}",
                r.describe()
            );
            r.assert_error_body();
            r.assert_version(v);
        }
        let r = lrs.delete("/about").version(v).send();
        assert!(
            (400..500).contains(&r.status),
            "DELETE /about must be refused with a 4xx\n{}",
            r.describe()
        );
        r.assert_error_body();
    }
}

/// Communication 3.2.s3.b2: a 403 explains itself in the same JSON shape.
#[test]
fn comm_3_2_s3_b2_forbidden_has_json_error_body() {
    let lrs = Lrs::start();
    let (key, secret) = lrs.credential(&["statements/write"]);
    for v in VERSIONS {
        lrs.get("/statements")
            .auth(&key, &secret)
            .version(v)
            .send()
            .assert_error(403);
    }
}
