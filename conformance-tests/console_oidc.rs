//! The console's "Sign in with OpenID Connect" (docs/CONSOLE.md): authorization code +
//! PKCE S256 + state + nonce, followed redirect by redirect over HTTP.
//!
//! Each test runs its own identity provider on 127.0.0.1: discovery, a key set, an
//! authorization endpoint that approves at once (302 back to `redirect_uri` with a code)
//! and a token endpoint that checks the code (once), the redirect URI and the PKCE
//! verifier, and answers tokens signed with a key minted here.
use crate::audit::root;
use crate::harness::{Lrs, Req, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const CLIENT: &str = "lrs-console";

struct Code {
    challenge: String,
    redirect_uri: String,
    nonce: String,
}

struct Shared {
    key: EncodingKey,
    jwk: Value,
    issuer: String,
    codes: Mutex<HashMap<String, Code>>,
    /// Claims of the access token besides iss/iat/exp.
    access: Mutex<Value>,
    /// An ID token nonce other than the one asked for.
    nonce_override: Mutex<Option<String>>,
    /// A confidential client: the token endpoint wants this secret by HTTP Basic.
    secret: Mutex<Option<String>>,
    stop: AtomicBool,
}

struct Idp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Idp {
    fn start(access: Value) -> Idp {
        use p256::pkcs8::EncodePrivateKey;
        let private = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let der = private.to_pkcs8_der().expect("PKCS#8 DER");
        let point = private.verifying_key().to_encoded_point(false);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test provider");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            key: EncodingKey::from_ec_der(der.as_bytes()),
            jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "k1",
                        "x": B64.encode(point.x().expect("x")), "y": B64.encode(point.y().expect("y"))}),
            issuer: format!("http://{addr}"),
            codes: Mutex::new(HashMap::new()),
            access: Mutex::new(access),
            nonce_override: Mutex::new(None),
            secret: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve_one(stream, &s);
                }
            }
        });
        Idp {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn mint(s: &Shared, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, claims, &s.key).expect("token encodes")
}

fn query(target: &str) -> HashMap<String, String> {
    let q = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn serve_one(mut stream: TcpStream, s: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&request[end..]).into_owned();
    let target = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_owned();
    let path = target.split('?').next().unwrap_or("").to_owned();
    let iss = s.issuer.clone();
    let mut location = None;
    let (status, answer) = match path.as_str() {
        "/.well-known/openid-configuration" => (
            "200 OK",
            json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks"),
                   "authorization_endpoint": format!("{iss}/authorize"),
                   "token_endpoint": format!("{iss}/token")}),
        ),
        "/jwks" => ("200 OK", json!({"keys": [s.jwk.clone()]})),
        "/authorize" => {
            let q = query(&target);
            let ok = q.get("response_type").map(String::as_str) == Some("code")
                && q.get("client_id").map(String::as_str) == Some(CLIENT)
                && q.get("code_challenge_method").map(String::as_str) == Some("S256")
                && q.get("scope")
                    .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
            match (ok, q.get("redirect_uri"), q.get("state")) {
                (true, Some(back), Some(state)) => {
                    let code = format!("code-{}", rand::random::<u64>());
                    lock(&s.codes).insert(
                        code.clone(),
                        Code {
                            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
                            redirect_uri: back.clone(),
                            nonce: q.get("nonce").cloned().unwrap_or_default(),
                        },
                    );
                    let q: String = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("code", &code)
                        .append_pair("state", state)
                        .finish();
                    location = Some(format!("{back}?{q}"));
                    ("302 Found", json!({}))
                }
                _ => ("400 Bad Request", json!({"error": "invalid_request"})),
            }
        }
        "/token" => {
            let f: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            let code = f.get("code").and_then(|c| lock(&s.codes).remove(c));
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let basic = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.trim().to_owned());
            let client_ok = match lock(&s.secret).clone() {
                None => f.get("client_id").map(String::as_str) == Some(CLIENT),
                Some(secret) => {
                    basic
                        == Some(format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD
                                .encode(format!("{CLIENT}:{secret}"))
                        ))
                }
            };
            match code {
                Some(c)
                    if f.get("grant_type").map(String::as_str) == Some("authorization_code")
                        && client_ok
                        && f.get("redirect_uri") == Some(&c.redirect_uri)
                        && B64.encode(Sha256::digest(verifier.as_bytes())) == c.challenge =>
                {
                    let mut access = lock(&s.access).clone();
                    let t = now();
                    if let Some(o) = access.as_object_mut() {
                        o.insert("iss".into(), json!(iss));
                        o.insert("iat".into(), json!(t));
                        o.insert("exp".into(), json!(t + 600));
                    }
                    let nonce = lock(&s.nonce_override).clone().unwrap_or(c.nonce);
                    let id = json!({"iss": iss, "sub": access["sub"], "aud": CLIENT,
                                    "nonce": nonce, "iat": t, "exp": t + 600});
                    (
                        "200 OK",
                        json!({"access_token": mint(s, &access), "id_token": mint(s, &id),
                               "token_type": "Bearer", "expires_in": 600}),
                    )
                }
                _ => ("400 Bad Request", json!({"error": "invalid_grant"})),
            }
        }
        _ => ("404 Not Found", json!({"error": "not found"})),
    };
    let answer = answer.to_string();
    let location = location
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{location}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.flush();
}

// ---------------------------------------------------------------------------------------
// Following the flow by hand.

fn plain<'a>(lrs: &'a Lrs, method: &str, path: &str) -> Req<'a> {
    lrs.request(method, &format!("{}{path}", root(lrs)))
        .no_version()
        .no_auth()
}

/// The `name=value` of cookie `name` among the response's `Set-Cookie` headers.
fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers_named("Set-Cookie")
        .into_iter()
        .map(|c| c.split(';').next().unwrap_or("").trim().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
}

fn idp_get(url: &str) -> (u16, Option<String>) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    match agent.get(url).call() {
        Ok(r) => (r.status(), r.header("Location").map(str::to_owned)),
        Err(ureq::Error::Status(code, r)) => (code, r.header("Location").map(str::to_owned)),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// A started sign-in: the pre-login cookie and the callback path the provider sent back.
struct Started {
    cookie: String,
    callback: String,
}

fn start_sign_in(lrs: &Lrs) -> Started {
    let r = plain(lrs, "GET", "/console/oidc/login").send();
    r.assert_status(302);
    let to = r.assert_header("Location").to_owned();
    let q = query(&to);
    assert_eq!(
        q.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    assert!(q.get("nonce").is_some_and(|n| n.len() >= 32), "{to}");
    assert!(q.get("state").is_some_and(|n| n.len() >= 32), "{to}");
    let cookie = set_cookie(&r, "lrs_console_oidc").expect("the pre-login cookie");
    let (status, back) = idp_get(&to);
    assert_eq!(status, 302, "the provider approves at once");
    let back = back.expect("a Location from the provider");
    let callback = back
        .strip_prefix(&root(lrs))
        .unwrap_or_else(|| panic!("the redirect URI {back} is on the LRS"))
        .to_owned();
    assert!(
        callback.starts_with("/console/oidc/callback?"),
        "{callback}"
    );
    Started { cookie, callback }
}

fn callback(lrs: &Lrs, path: &str, cookie: &str) -> Response {
    plain(lrs, "GET", path).header("Cookie", cookie).send()
}

/// The sign-in failed: back to the sign-in page with `reason`, and no session cookie.
fn assert_refused(r: &Response, reason: &str) {
    r.assert_status(302);
    assert_eq!(
        r.assert_header("Location"),
        format!("/console?oidc_error={reason}"),
        "{}",
        r.describe()
    );
    assert!(set_cookie(r, "lrs_console").is_none(), "{}", r.describe());
}

fn lrs_with(idp: &Idp) -> Lrs {
    let lrs = Lrs::builder()
        .arg("--oidc-issuer")
        .arg(idp.issuer())
        .arg("--oidc-client-id")
        .arg(CLIENT)
        .arg("--oidc-scopes")
        .arg("profile")
        .start();
    lrs.require_spawned("the server must be started with an OpenID Connect client");
    lrs
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn console_oidc_sign_in_opens_a_session_with_the_tokens_department_and_scopes() {
    let idp = Idp::start(json!({"sub": "manager-1", "name": "A Manager",
                               "scope": "admin statements/read", "department": "moe"}));
    let lrs = lrs_with(&idp);
    lrs.cli(&["departments", "create", "moe"]);
    let page = plain(&lrs, "GET", "/console").send();
    page.assert_status(200);
    assert!(
        page.text().contains(&format!("Sign in with {}", idp.addr)),
        "the sign-in page offers the issuer"
    );
    let s = start_sign_in(&lrs);
    let r = callback(&lrs, &s.callback, &s.cookie);
    r.assert_status(302);
    assert_eq!(r.assert_header("Location"), "/console");
    let session = set_cookie(&r, "lrs_console").expect("the session cookie");
    let who = plain(&lrs, "GET", "/console/session")
        .header("Cookie", &session)
        .send();
    who.assert_status(200);
    let who = who.json();
    assert_eq!(who["key"], "jwt:manager-1");
    assert_eq!(who["name"], "A Manager");
    assert_eq!(who["department"], "moe");
    let mut scopes: Vec<String> = who["scopes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["admin", "statements/read"]);
    let csrf = who["csrf"].as_str().expect("csrf").to_owned();
    let r = plain(&lrs, "GET", "/admin/departments")
        .header("Cookie", &session)
        .header("X-Console-CSRF", &csrf)
        .send();
    r.assert_status(200);
    let names: Vec<String> = r.json()["departments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| d["path"].as_str().or(d.as_str()).unwrap_or("").to_owned())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("moe")), "{names:?}");
    // Without the CSRF header the cookie is no credential.
    plain(&lrs, "GET", "/admin/departments")
        .header("Cookie", &session)
        .send()
        .assert_status(401);
    // Nothing secret in the server's log.
    let log = lrs.server_log();
    assert!(!log.contains("code-"), "the code is not logged");
}

#[test]
fn console_oidc_refuses_a_bad_state_a_replayed_code_and_a_wrong_nonce() {
    let idp =
        Idp::start(json!({"sub": "auditor-1", "scope": "statements/read", "department": "/"}));
    let lrs = lrs_with(&idp);

    // A state that is not the sign-in's.
    let s = start_sign_in(&lrs);
    let q = query(&s.callback);
    let code = q.get("code").cloned().expect("code");
    let forged: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", "forged-state")
        .finish();
    assert_refused(
        &callback(&lrs, &format!("/console/oidc/callback?{forged}"), &s.cookie),
        "state",
    );
    // The pending sign-in was used up by that attempt: the right state no longer works.
    assert_refused(&callback(&lrs, &s.callback, &s.cookie), "expired");
    // No pre-login cookie at all.
    let s = start_sign_in(&lrs);
    assert_refused(&callback(&lrs, &s.callback, "other=1"), "expired");

    // A code used once does not sign in again, even inside a fresh sign-in.
    let s = start_sign_in(&lrs);
    let r = callback(&lrs, &s.callback, &s.cookie);
    r.assert_status(302);
    assert_eq!(r.assert_header("Location"), "/console");
    assert!(set_cookie(&r, "lrs_console").is_some());
    assert_refused(&callback(&lrs, &s.callback, &s.cookie), "expired");
    let used = query(&s.callback).get("code").cloned().expect("code");
    let fresh = start_sign_in(&lrs);
    let state = query(&fresh.callback).get("state").cloned().expect("state");
    let replay: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &used)
        .append_pair("state", &state)
        .finish();
    assert_refused(
        &callback(
            &lrs,
            &format!("/console/oidc/callback?{replay}"),
            &fresh.cookie,
        ),
        "token",
    );

    // An ID token with another nonce.
    *lock(&idp.shared.nonce_override) = Some("someone-elses-nonce".into());
    let s = start_sign_in(&lrs);
    assert_refused(&callback(&lrs, &s.callback, &s.cookie), "refused");
    *lock(&idp.shared.nonce_override) = None;

    // A token the API would refuse (a department that does not exist) is refused here too.
    *lock(&idp.shared.access) = json!({"sub": "x", "scope": "admin", "department": "nowhere"});
    let s = start_sign_in(&lrs);
    assert_refused(&callback(&lrs, &s.callback, &s.cookie), "refused");
}

#[test]
fn console_oidc_is_absent_without_a_client_id() {
    let idp = Idp::start(json!({"sub": "a", "department": "/"}));
    let lrs = Lrs::builder()
        .arg("--oidc-issuer")
        .arg(idp.issuer())
        .start();
    lrs.require_spawned("the server must be started with an OpenID Connect issuer");
    let page = plain(&lrs, "GET", "/console").send();
    page.assert_status(200);
    assert!(!page.text().contains("Sign in with"));
    plain(&lrs, "GET", "/console/oidc/login")
        .send()
        .assert_status(404);
}

#[test]
fn console_oidc_confidential_client_sends_its_secret_from_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let idp = Idp::start(json!({"sub": "m", "scope": "admin", "department": "/"}));
    *lock(&idp.shared.secret) = Some("s3cret-value".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("client-secret");
    std::fs::write(&file, "s3cret-value\n").expect("write the secret");
    // Readable by others: refused at start.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_karmayogi-lrs"))
        .args(["--listen", "127.0.0.1:0", "--oidc-issuer", &idp.issuer()])
        .args(["--oidc-client-id", CLIENT, "--oidc-client-secret-file"])
        .arg(&file)
        .arg("--store")
        .arg(format!("sqlite:{}", dir.path().join("lrs.db").display()))
        .output()
        .expect("run the server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains("s3cret-value"), "the secret is not shown");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let lrs = Lrs::builder()
        .arg("--oidc-issuer")
        .arg(idp.issuer())
        .arg("--oidc-client-id")
        .arg(CLIENT)
        .arg("--oidc-client-secret-file")
        .arg(file.display().to_string())
        .start();
    lrs.require_spawned("the server must be started with a confidential OpenID Connect client");
    let s = start_sign_in(&lrs);
    let r = callback(&lrs, &s.callback, &s.cookie);
    r.assert_status(302);
    assert_eq!(r.assert_header("Location"), "/console", "{}", r.describe());
    assert!(set_cookie(&r, "lrs_console").is_some());
    // The wrong secret at the provider: the exchange fails.
    *lock(&idp.shared.secret) = Some("another".into());
    let s = start_sign_in(&lrs);
    assert_refused(&callback(&lrs, &s.callback, &s.cookie), "token");
}
