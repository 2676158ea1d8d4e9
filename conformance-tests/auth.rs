//! Communication 4.0 Authentication (401) and Communication 3.2.s3.b10 / 4.2 scopes (403).
use crate::harness::{basic, statement, Lrs, Response, VERSIONS};
use base64::Engine;

/// A 401 as RFC 7235 §3.1 and Communication 3.2 define it: a challenge, a JSON error, the
/// version header of the request.
fn assert_401(r: &Response, version: &str) {
    r.assert_error(401);
    r.assert_version(version);
    let challenge = r.assert_header("WWW-Authenticate");
    assert!(
        !challenge.trim().is_empty(),
        "empty WWW-Authenticate challenge\n{}",
        r.describe()
    );
}

/// Communication 4.0 (XAPI-00334): no credentials → 401 with `WWW-Authenticate`.
#[test]
fn comm_4_0_missing_credentials_401() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        assert_401(&lrs.get("/statements").no_auth().version(v).send(), v);
        assert_401(
            &lrs.post("/statements")
                .no_auth()
                .version(v)
                .json(&statement())
                .send(),
            v,
        );
        let s = statement();
        let id = s["id"].as_str().unwrap().to_owned();
        assert_401(
            &lrs.put("/statements")
                .query("statementId", &id)
                .no_auth()
                .version(v)
                .json(&s)
                .send(),
            v,
        );
        // Nothing was stored by the refused PUT.
        lrs.get("/statements")
            .query("statementId", &id)
            .version(v)
            .send()
            .assert_error(404);
    }
}

/// Communication 4.0: a known key with the wrong secret → 401.
#[test]
fn comm_4_0_wrong_secret_401() {
    let lrs = Lrs::start();
    let key = lrs.key().to_owned();
    for v in VERSIONS {
        assert_401(
            &lrs.get("/statements")
                .auth(&key, "not-the-secret")
                .version(v)
                .send(),
            v,
        );
        assert_401(&lrs.get("/statements").auth(&key, "").version(v).send(), v);
        assert_401(
            &lrs.post("/statements")
                .auth(&key, "not-the-secret")
                .version(v)
                .json(&statement())
                .send(),
            v,
        );
    }
}

/// Communication 4.0 (XAPI-00334, "random name pass pair"): an unknown key → 401.
#[test]
fn comm_4_0_unknown_key_401() {
    let lrs = Lrs::start();
    let secret = lrs.secret().to_owned();
    for v in VERSIONS {
        let unknown = format!("unknown-{}", crate::harness::new_id());
        assert_401(
            &lrs.get("/statements")
                .auth(&unknown, "whatever")
                .version(v)
                .send(),
            v,
        );
        // The bootstrap secret under another key is no credential either.
        assert_401(
            &lrs.get("/statements")
                .auth(&unknown, &secret)
                .version(v)
                .send(),
            v,
        );
    }
}

/// Communication 4.0 (XAPI-00334, "malformed header"): unusable `Authorization` headers → 401.
#[test]
fn comm_4_0_malformed_authorization_header_401() {
    let lrs = Lrs::start();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let good = basic(lrs.key(), lrs.secret());
    let malformed = [
        "Basic".to_owned(),
        "Basic ".to_owned(),
        "Basic !!!not-base64!!!".to_owned(),
        format!("Basic {}", b64("no-colon-here")),
        format!(
            "Basic {}",
            b64(&format!("{}:{}", lrs.key(), lrs.secret()))[1..].to_owned()
        ),
        "Bearer".to_owned(),
        "NoSuchScheme abc".to_owned(),
        // The right credentials without a scheme.
        good.trim_start_matches("Basic ").to_owned(),
    ];
    for v in VERSIONS {
        for value in &malformed {
            let r = lrs
                .get("/statements")
                .authorization(value)
                .version(v)
                .send();
            assert_eq!(
                r.status,
                401,
                "Authorization `{value}` must be refused\n{}",
                r.describe()
            );
            assert_401(&r, v);
        }
    }
}

/// Communication 4.0 (XAPI-00335): HTTP Basic is supported (sanity check of the
/// credentials the rest of the suite uses).
#[test]
fn comm_4_0_basic_auth_accepted() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        lrs.get("/statements")
            .query("limit", "1")
            .version(v)
            .send()
            .assert_status(200);
        lrs.post("/statements")
            .version(v)
            .json(&statement())
            .send()
            .assert_status(200);
    }
}

/// Communication 3.2.s3.b10 and 4.2: a `statements/read` credential may not write
/// statements → 403 (not 401: the credentials themselves are valid), nothing stored.
#[test]
fn comm_3_2_s3_b10_read_only_credential_cannot_write_statements_403() {
    let lrs = Lrs::start();
    let (key, secret) = lrs.credential(&["statements/read"]);
    for v in VERSIONS {
        // The credential works for what it allows.
        lrs.get("/statements")
            .query("limit", "1")
            .auth(&key, &secret)
            .version(v)
            .send()
            .assert_status(200);

        let s = statement();
        let id = s["id"].as_str().unwrap().to_owned();
        let r = lrs
            .post("/statements")
            .auth(&key, &secret)
            .version(v)
            .json(&s)
            .send();
        r.assert_error(403);
        r.assert_version(v);
        let r = lrs
            .put("/statements")
            .query("statementId", &id)
            .auth(&key, &secret)
            .version(v)
            .json(&s)
            .send();
        r.assert_error(403);
        r.assert_version(v);
        lrs.get("/statements")
            .query("statementId", &id)
            .version(v)
            .send()
            .assert_error(404);
    }
}

/// Communication 3.2.s3.b10 and 4.2: a `statements/write` credential may not read
/// statements → 403.
#[test]
fn comm_3_2_s3_b10_write_only_credential_cannot_read_statements_403() {
    let lrs = Lrs::start();
    let (key, secret) = lrs.credential(&["statements/write"]);
    for v in VERSIONS {
        // The credential works for what it allows.
        let s = statement();
        let id = s["id"].as_str().unwrap().to_owned();
        lrs.post("/statements")
            .auth(&key, &secret)
            .version(v)
            .json(&s)
            .send()
            .assert_status(200);

        let r = lrs.get("/statements").auth(&key, &secret).version(v).send();
        r.assert_error(403);
        r.assert_version(v);
        let r = lrs
            .get("/statements")
            .query("statementId", &id)
            .auth(&key, &secret)
            .version(v)
            .send();
        r.assert_error(403);
        r.assert_version(v);
    }
}
