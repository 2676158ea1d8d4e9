//! The console (issue 16, docs/CONSOLE.md): `/console` signs a person in with a credential
//! and then calls the ordinary APIs with a session cookie plus a CSRF header. These tests
//! check the session resource over HTTP (sign in, cookie flags, CSRF, sign out, the
//! department boundary) and, through browser-tests/console.mjs, every page in Chromium.
use crate::audit::root;
use crate::browser::BrowserRun;
use crate::harness::{Lrs, Req, Response};
use serde_json::{json, Value};
use std::time::Duration;

fn plain<'a>(lrs: &'a Lrs, method: &str, path: &str) -> Req<'a> {
    lrs.request(method, &format!("{}{path}", root(lrs)))
        .no_version()
        .no_auth()
}

fn sign_in(lrs: &Lrs, key: &str, secret: &str) -> Response {
    plain(lrs, "POST", "/console/session")
        .json(&json!({ "key": key, "secret": secret }))
        .send()
}

/// A signed-in session: (cookie header value, CSRF token, the sign-in answer).
fn session(lrs: &Lrs, key: &str, secret: &str) -> (String, String, Value) {
    let r = sign_in(lrs, key, secret);
    r.assert_status(201);
    let set = r.assert_header("Set-Cookie").to_owned();
    let cookie = set.split(';').next().expect("a cookie").trim().to_owned();
    let body = r.json();
    let csrf = body["csrf"].as_str().expect("csrf").to_owned();
    (cookie, csrf, body)
}

/// A request with the session cookie and (optionally) its CSRF header.
fn with_session<'a>(
    lrs: &'a Lrs,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> Req<'a> {
    let r = plain(lrs, method, path).header("Cookie", cookie);
    match csrf {
        Some(t) => r.header("X-Console-CSRF", t),
        None => r,
    }
}

#[test]
fn console_sign_in_sets_a_strict_http_only_cookie_and_answers_who() {
    let lrs = Lrs::start();
    lrs.cli(&["departments", "create", "moe"]);
    let (key, secret) = lrs.department_credential("moe", &["admin", "all"]);
    let r = sign_in(&lrs, &key, &secret);
    r.assert_status(201);
    let set = r.assert_header("Set-Cookie");
    assert!(set.starts_with("lrs_console="), "{set}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "cookie lacks {flag}: {set}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure flag: {set}");
    let id = set
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v)
        .unwrap_or_default();
    assert!(id.len() >= 43, "a 256-bit id: {set}");
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    let who = r.json();
    assert_eq!(who["key"], json!(key));
    assert_eq!(who["department"], json!("moe"));
    assert_eq!(who["scopes"], json!(["admin", "all"]));
    assert!(who["csrf"].as_str().is_some_and(|t| t.len() >= 43), "{who}");
    assert!(
        !r.text().contains(&secret),
        "the secret is never echoed back"
    );

    // Behind a TLS-terminating proxy the cookie is Secure.
    let r = plain(&lrs, "POST", "/console/session")
        .header("X-Forwarded-Proto", "https")
        .json(&json!({ "key": key, "secret": secret }))
        .send();
    r.assert_status(201);
    assert!(
        r.assert_header("Set-Cookie").contains("; Secure"),
        "{}",
        r.describe()
    );

    // GET /console/session: the same person, with the token (after a reload).
    let (cookie, csrf, _) = session(&lrs, &key, &secret);
    let r = with_session(&lrs, "GET", "/console/session", &cookie, None).send();
    r.assert_status(200);
    assert_eq!(r.json()["csrf"], json!(csrf));
    assert_eq!(r.json()["key"], json!(key));
}

#[test]
fn console_bad_credentials_are_a_json_401_without_a_browser_challenge() {
    let lrs = Lrs::start();
    let r = sign_in(&lrs, lrs.key(), "not-the-secret");
    r.assert_status(401);
    assert!(r.header("Set-Cookie").is_none(), "{}", r.describe());
    assert!(r.json()["error"]["message"].is_string(), "{}", r.describe());
    assert!(
        r.header("WWW-Authenticate").is_none(),
        "the browser must not pop up its own dialog over the console\n{}",
        r.describe()
    );
    sign_in(&lrs, "no-such-key", "x").assert_status(401);
    sign_in(&lrs, "a:b", "x").assert_status(401);
    // Not JSON: refused before anything is checked (no sign-in from another site's form).
    plain(&lrs, "POST", "/console/session")
        .body(
            "application/x-www-form-urlencoded",
            format!("key={}&secret={}", lrs.key(), lrs.secret()),
        )
        .send()
        .assert_status(415);
    plain(&lrs, "POST", "/console/session")
        .json(&json!({ "key": lrs.key() }))
        .send()
        .assert_status(400);
    plain(&lrs, "GET", "/console/session")
        .send()
        .assert_status(401);
}

#[test]
fn console_cookie_needs_the_csrf_header_on_every_call() {
    let lrs = Lrs::start();
    let (cookie, csrf, _) = session(&lrs, lrs.key(), lrs.secret());
    // The cookie alone is no credential at all.
    let r = with_session(&lrs, "GET", "/admin/departments", &cookie, None).send();
    r.assert_status(401);
    let r = with_session(&lrs, "GET", "/admin/departments", &cookie, Some("wrong")).send();
    r.assert_status(401);
    assert!(r.header("WWW-Authenticate").is_none(), "{}", r.describe());
    let r = with_session(&lrs, "GET", "/admin/departments", &cookie, Some(&csrf)).send();
    r.assert_status(200);
    assert!(r.json()["departments"].is_array());
    // The token of one session does not open another.
    let (other, _, _) = session(&lrs, lrs.key(), lrs.secret());
    with_session(&lrs, "GET", "/admin/departments", &other, Some(&csrf))
        .send()
        .assert_status(401);
    // xAPI too, with the version header; writes are the signed-in credential's.
    let r = lrs
        .post("/statements")
        .no_auth()
        .header("Cookie", &cookie)
        .header("X-Console-CSRF", &csrf)
        .json(&json!({
            "actor": {"mbox": "mailto:console@example.gov.in"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
            "object": {"id": "https://example.gov.in/console"}
        }))
        .send();
    r.assert_status(200);
    // An xAPI client with Basic credentials is unaffected by a stray cookie.
    lrs.get("/statements")
        .header("Cookie", "lrs_console=garbage")
        .send()
        .assert_status(200);
}

#[test]
fn console_sign_out_ends_the_session() {
    let lrs = Lrs::start();
    let (cookie, csrf, _) = session(&lrs, lrs.key(), lrs.secret());
    with_session(&lrs, "GET", "/admin/departments", &cookie, Some(&csrf))
        .send()
        .assert_status(200);
    let r = with_session(&lrs, "DELETE", "/console/session", &cookie, Some(&csrf)).send();
    r.assert_status(204);
    let set = r.assert_header("Set-Cookie");
    assert!(
        set.starts_with("lrs_console=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    with_session(&lrs, "GET", "/admin/departments", &cookie, Some(&csrf))
        .send()
        .assert_status(401);
    with_session(&lrs, "GET", "/console/session", &cookie, None)
        .send()
        .assert_status(401);
}

#[test]
fn console_session_ends_when_its_credential_is_revoked() {
    let lrs = Lrs::start();
    lrs.cli(&["departments", "create", "moe"]);
    let (key, secret) = lrs.department_credential("moe", &["all"]);
    let (cookie, csrf, _) = session(&lrs, &key, &secret);
    lrs.get("/statements")
        .no_auth()
        .header("Cookie", &cookie)
        .header("X-Console-CSRF", &csrf)
        .send()
        .assert_status(200);
    lrs.request(
        "DELETE",
        &lrs.root_url(&format!("/admin/credentials/{key}")),
    )
    .no_version()
    .send()
    .assert_status(204);
    lrs.get("/statements")
        .no_auth()
        .header("Cookie", &cookie)
        .header("X-Console-CSRF", &csrf)
        .send()
        .assert_status(401);
}

#[test]
fn console_session_of_a_department_sees_its_subtree_only() {
    let lrs = Lrs::start();
    for d in ["moe", "moe/dhe", "mohfw"] {
        lrs.cli(&["departments", "create", d]);
    }
    let (moe_key, moe_secret) = lrs.department_credential("moe", &["admin", "all"]);
    let (h_key, h_secret) = lrs.department_credential("mohfw", &["all"]);
    let post = |key: &str, secret: &str, email: &str| {
        lrs.post("/statements")
            .auth(key, secret)
            .json(&json!({
                "actor": {"mbox": format!("mailto:{email}")},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
                "object": {"id": "https://example.gov.in/course/ethics"}
            }))
            .send()
            .assert_status(200);
    };
    post(&moe_key, &moe_secret, "moe-learner@example.gov.in");
    post(&h_key, &h_secret, "health-learner@example.gov.in");

    let (cookie, csrf, who) = session(&lrs, &moe_key, &moe_secret);
    assert_eq!(who["department"], json!("moe"));
    let r = with_session(&lrs, "GET", "/admin/departments", &cookie, Some(&csrf)).send();
    r.assert_status(200);
    let paths: Vec<String> = r.json()["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .filter_map(|d| d["path"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(paths, ["moe", "moe/dhe"], "{}", r.describe());
    let r = lrs
        .get("/statements")
        .no_auth()
        .header("Cookie", &cookie)
        .header("X-Console-CSRF", &csrf)
        .send();
    r.assert_status(200);
    let text = r.text();
    assert!(text.contains("moe-learner@"), "{text}");
    assert!(!text.contains("health-learner@"), "{text}");
    // Narrowing to a department outside the subtree is refused, as with Basic.
    lrs.get("/statements")
        .no_auth()
        .header("Cookie", &cookie)
        .header("X-Console-CSRF", &csrf)
        .header("X-Department", "mohfw")
        .send()
        .assert_status(403);
    // A session of a credential without `admin` cannot administer.
    let (cookie, csrf, _) = session(&lrs, &h_key, &h_secret);
    with_session(&lrs, "GET", "/admin/departments", &cookie, Some(&csrf))
        .send()
        .assert_status(403);
}

#[test]
fn console_page_and_assets_are_served_with_a_strict_policy() {
    let lrs = Lrs::start();
    let r = plain(&lrs, "GET", "/console").send();
    r.assert_status(200);
    assert!(r
        .header("Content-Type")
        .unwrap_or_default()
        .starts_with("text/html"));
    let csp = r.assert_header("Content-Security-Policy");
    for d in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(d), "CSP lacks {d}: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(r.header("X-Frame-Options"), Some("DENY"));
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    let html = r.text();
    assert!(!html.contains(" style="), "no inline style");
    assert!(
        !html.contains("<script>"),
        "no inline script: only <script src>"
    );
    for asset in ["console.css", "console.js", "verify.js", "charts.js"] {
        assert!(
            html.contains(&format!("/console/assets/{asset}")),
            "{asset}"
        );
        let r = plain(&lrs, "GET", &format!("/console/assets/{asset}")).send();
        r.assert_status(200);
        assert!(r.header("ETag").is_some());
    }
    plain(&lrs, "GET", "/console/assets/nothing.js")
        .send()
        .assert_status(404);
}

/// Every page of the console in Chromium (browser-tests/console.mjs), on a phone and a
/// desktop: sign in, departments and credentials, statements, completions (figures equal
/// to the API's), certificates verified in the page (a good one and a tampered one), CSV,
/// packages, sign out; and a sibling department's session never sees the other's records.
#[test]
fn console_in_a_real_browser() {
    let lrs = Lrs::start();
    lrs.cli(&["departments", "create", "moe"]);
    lrs.cli(&["departments", "create", "mohfw"]);
    let (key, secret) = lrs.department_credential("moe", &["admin", "all", "content"]);
    let (s_key, s_secret) = lrs.department_credential("mohfw", &["admin", "all"]);
    let out = BrowserRun::new(&lrs, "console.mjs")
        .env("CONSOLE_KEY", key)
        .env("CONSOLE_SECRET", secret)
        .env("SIBLING_KEY", s_key)
        .env("SIBLING_SECRET", s_secret)
        .timeout(Duration::from_secs(240))
        .run();
    assert!(out.stdout.contains("ok: console pages"), "{}", out.stdout);
    for shot in [
        "console-signin-phone",
        "console-departments-desktop",
        "console-statements-phone",
        "console-completions-desktop",
        "console-verify-good-phone",
        "console-verify-tampered-desktop",
        "console-packages-phone",
    ] {
        out.screenshot(shot);
    }
}
