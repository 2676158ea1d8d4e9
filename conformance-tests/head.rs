//! Communication 1.1 HEAD Request Implementation: every resource that answers GET answers
//! HEAD the same way, without a message body.
use crate::harness::{statement, Lrs, VERSIONS};

/// Communication 1.1.s3.b1: HEAD /about — 200, no body, version header.
#[test]
fn comm_1_1_s3_b1_head_about_without_body() {
    let lrs = Lrs::start();
    lrs.head("/about")
        .no_auth()
        .no_version()
        .send()
        .assert_status(200)
        .assert_empty_body();
    for v in VERSIONS {
        lrs.head("/about")
            .version(v)
            .send()
            .assert_status(200)
            .assert_empty_body()
            .assert_version(v);
    }
}

/// Communication 1.1.s3.b1: HEAD /statements (query and single statement) answers as
/// GET does, without the body.
#[test]
fn comm_1_1_s3_b1_head_statements_without_body() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let get = lrs.get("/statements").query("limit", "1").version(v).send();
        get.assert_status(200);
        let head = lrs
            .head("/statements")
            .query("limit", "1")
            .version(v)
            .send();
        head.assert_status(200)
            .assert_empty_body()
            .assert_version(v);
        assert_eq!(
            head.header("Content-Type").map(str::to_ascii_lowercase),
            get.header("Content-Type").map(str::to_ascii_lowercase),
            "HEAD must answer with the headers of GET\nGET: {}\nHEAD: {}",
            get.describe(),
            head.describe()
        );

        let s = statement();
        let id = s["id"].as_str().unwrap().to_owned();
        lrs.put("/statements")
            .query("statementId", &id)
            .version(v)
            .json(&s)
            .send()
            .assert_status(204);
        lrs.head("/statements")
            .query("statementId", &id)
            .version(v)
            .send()
            .assert_status(200)
            .assert_empty_body();
        // A statement the LRS does not have: 404, as GET would answer, still no body.
        let missing = crate::harness::new_id();
        lrs.head("/statements")
            .query("statementId", &missing)
            .version(v)
            .send()
            .assert_status(404)
            .assert_empty_body();
    }
}

/// Communication 1.1.s3.b1: errors to HEAD requests are those of GET, without the body.
#[test]
fn comm_1_1_s3_b1_head_errors_without_body() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        lrs.head("/statements")
            .no_auth()
            .version(v)
            .send()
            .assert_status(401)
            .assert_empty_body()
            .assert_version(v);
        lrs.head("/statements")
            .query("notAParameter", "1")
            .version(v)
            .send()
            .assert_status(400)
            .assert_empty_body();
    }
    lrs.head("/statements")
        .no_version()
        .send()
        .assert_status(400)
        .assert_empty_body();
}
