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
