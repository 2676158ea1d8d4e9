//! JWT bearer tokens (issue 2; xAPI 2.0 leaves the LRS free to choose its schemes): a
//! token signed with the configured key authenticates, its `scope` claim limits what it
//! may do as the xAPI scopes do (Communication 4.2), and its `iss`/`sub` become the
//! statement `authority`.
use crate::harness::{statement, Lrs, VERSIONS};
use serde_json::{json, Value};

const SECRET: &str = "test-hs256-secret-of-reasonable-length";

fn token(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token encodes")
}

fn in_an_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

fn start() -> Lrs {
    Lrs::builder()
        .arg("--jwt-hs256-secret")
        .arg(SECRET)
        .arg("--jwt-issuer")
        .arg("https://igot.example.gov.in")
        .start()
}

#[test]
fn bearer_token_with_scope_all_writes_and_sets_authority() {
    let lrs = start();
    lrs.require_spawned("the server must be started with a JWT key");
    let t = token(
        SECRET,
        json!({"sub": "content-42", "iss": "https://igot.example.gov.in", "scope": "all", "exp": in_an_hour()}),
    );
    for v in VERSIONS {
        let s = statement();
        let id = s["id"].as_str().expect("id").to_owned();
        lrs.post("/statements")
            .no_auth()
            .authorization(&format!("Bearer {t}"))
            .version(v)
            .json(&s)
            .send()
            .assert_status(200);
        let got = lrs
            .get("/statements")
            .query("statementId", &id)
            .version(v)
            .send();
        got.assert_status(200);
        assert_eq!(
            got.json()["authority"]["account"],
            json!({"homePage": "https://igot.example.gov.in", "name": "content-42"}),
            "{}",
            got.describe()
        );
    }
}

#[test]
fn comm_4_2_bearer_token_scopes_are_enforced() {
    let lrs = start();
    lrs.require_spawned("the server must be started with a JWT key");
    let read_only = token(
        SECRET,
        json!({"sub": "analytics", "iss": "https://igot.example.gov.in", "scope": "statements/read", "exp": in_an_hour()}),
    );
    for v in VERSIONS {
        let bearer = format!("Bearer {read_only}");
        lrs.get("/statements")
            .no_auth()
            .authorization(&bearer)
            .version(v)
            .send()
            .assert_status(200);
        lrs.post("/statements")
            .no_auth()
            .authorization(&bearer)
            .version(v)
            .json(&statement())
            .send()
            .assert_error(403);
    }
}

#[test]
fn comm_4_0_invalid_bearer_tokens_401() {
    let lrs = start();
    lrs.require_spawned("the server must be started with a JWT key");
    let iss = "https://igot.example.gov.in";
    let bad = [
        // signed with another key
        token(
            "another-secret-entirely-not-ours",
            json!({"sub": "x", "iss": iss, "scope": "all", "exp": in_an_hour()}),
        ),
        // expired
        token(
            SECRET,
            json!({"sub": "x", "iss": iss, "scope": "all", "exp": chrono::Utc::now().timestamp() - 3600}),
        ),
        // wrong issuer
        token(
            SECRET,
            json!({"sub": "x", "iss": "https://elsewhere.example", "scope": "all", "exp": in_an_hour()}),
        ),
        // unknown scope
        token(
            SECRET,
            json!({"sub": "x", "iss": iss, "scope": "everything", "exp": in_an_hour()}),
        ),
        // not a JWT at all
        "not.a.token".to_owned(),
    ];
    for v in VERSIONS {
        for t in &bad {
            let r = lrs
                .get("/statements")
                .no_auth()
                .authorization(&format!("Bearer {t}"))
                .version(v)
                .send();
            r.assert_error(401);
            assert!(r.header("WWW-Authenticate").is_some(), "{}", r.describe());
        }
    }
}

#[test]
fn bearer_tokens_refused_when_no_key_is_configured() {
    let lrs = Lrs::start();
    let t = token(
        SECRET,
        json!({"sub": "x", "scope": "all", "exp": in_an_hour()}),
    );
    lrs.get("/statements")
        .no_auth()
        .authorization(&format!("Bearer {t}"))
        .send()
        .assert_error(401);
}

/// RFC 7519 §4.1.4 / §4.1.5 with a static key: `nbf` is enforced, `exp` is required and
/// has only the configured leeway (default 5 s), and a lifetime above the maximum
/// (default 24 h) is refused; each refusal says why.
#[test]
fn rfc7519_time_claims_with_a_static_key() {
    let lrs = start();
    lrs.require_spawned("the server must be started with a JWT key");
    let iss = "https://igot.example.gov.in";
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (
            json!({"nbf": now + 3600, "exp": now + 7200}),
            "not valid before",
        ),
        (json!({"exp": now - 120}), "expired"),
        (json!({}), "no `exp`"),
        (
            json!({"exp": now + 2 * 86_400}),
            "exceeds the maximum of 86400 s",
        ),
        (
            json!({"iat": now - 90_000, "exp": now + 60}),
            "exceeds the maximum",
        ),
    ];
    for (times, needle) in cases {
        let mut claims = json!({"sub": "x", "iss": iss, "scope": "all"});
        for (k, v) in times.as_object().expect("object") {
            claims[k] = v.clone();
        }
        let r = lrs
            .get("/statements")
            .no_auth()
            .authorization(&format!("Bearer {}", token(SECRET, claims)))
            .send();
        let e = r.assert_error(401);
        assert!(
            e["message"].as_str().unwrap_or_default().contains(needle),
            "expected `{needle}`\n{}",
            r.describe()
        );
    }
    // nbf already reached, exp a little in the past but within the 5 s leeway.
    let ok = token(
        SECRET,
        json!({"sub": "x", "iss": iss, "scope": "all", "nbf": now - 10, "exp": now - 1}),
    );
    lrs.get("/statements")
        .no_auth()
        .authorization(&format!("Bearer {ok}"))
        .send()
        .assert_status(200);
}

/// A static-key token without a department claim acts for the root; with one, the claim
/// must be a well-formed department path.
#[test]
fn static_key_token_department_claim() {
    let lrs = start();
    lrs.require_spawned("the server must be started with a JWT key");
    let iss = "https://igot.example.gov.in";
    for bad in ["../x", "MOE"] {
        let t = token(
            SECRET,
            json!({"sub": "x", "iss": iss, "scope": "all", "exp": in_an_hour(), "department": bad}),
        );
        let r = lrs
            .get("/statements")
            .no_auth()
            .authorization(&format!("Bearer {t}"))
            .send();
        let e = r.assert_error(401);
        let m = e["message"].as_str().unwrap_or_default();
        assert!(
            m.contains("malformed `department` claim"),
            "{}",
            r.describe()
        );
        assert!(!m.contains(bad), "{}", r.describe());
    }
    let root = token(
        SECRET,
        json!({"sub": "x", "iss": iss, "scope": "all", "exp": in_an_hour(), "department": "/"}),
    );
    lrs.get("/statements")
        .no_auth()
        .authorization(&format!("Bearer {root}"))
        .send()
        .assert_status(200);
}
