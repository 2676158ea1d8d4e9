//! Bearer tokens verified with an identity provider's keys (issue 12): OpenID Connect
//! discovery or a JWKS URL, RS256 / ES256 / EdDSA keys, key rotation, the rate limit on
//! refetching the key set, RFC 7519 time rules and the department claim.
//!
//! Each test runs its own provider: a tiny HTTP server on 127.0.0.1 serving the
//! discovery document and a key set the test can change, counting what it serves.
use crate::harness::{statement, Lrs, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The local identity provider.

#[derive(Default)]
struct IdpShared {
    jwks: Mutex<Value>,
    /// `issuer` of the discovery document (the provider's own URL unless a test changes it).
    issuer: Mutex<String>,
    /// Answer 503 to everything.
    down: AtomicBool,
    stop: AtomicBool,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
}

struct Idp {
    addr: SocketAddr,
    shared: Arc<IdpShared>,
    thread: Option<JoinHandle<()>>,
}

impl Idp {
    fn start(keys: &[&TestKey]) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test provider");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(IdpShared::default());
        *lock(&shared.issuer) = format!("http://{addr}");
        *lock(&shared.jwks) = jwks(keys);
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve_one(stream, &s, addr);
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
        format!("http://{}", self.addr)
    }

    fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn set_keys(&self, keys: &[&TestKey]) {
        *lock(&self.shared.jwks) = jwks(keys);
    }

    fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    fn discovery_hits(&self) -> usize {
        self.shared.discovery_hits.load(Ordering::SeqCst)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn serve_one(mut stream: TcpStream, s: &IdpShared, addr: SocketAddr) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut chunk = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_owned();
    let (status, body) = if s.down.load(Ordering::SeqCst) {
        ("503 Service Unavailable", json!({"error": "down"}))
    } else if path == "/.well-known/openid-configuration" {
        s.discovery_hits.fetch_add(1, Ordering::SeqCst);
        (
            "200 OK",
            json!({
                "issuer": lock(&s.issuer).clone(),
                "jwks_uri": format!("http://{addr}/jwks"),
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            }),
        )
    } else if path == "/jwks" {
        s.jwks_hits.fetch_add(1, Ordering::SeqCst);
        ("200 OK", lock(&s.jwks).clone())
    } else {
        ("404 Not Found", json!({"error": "not found"}))
    };
    let body = body.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

// ---------------------------------------------------------------------------------------
// Keys and tokens.

struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn rsa_key(kid: &str) -> TestKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let private =
        rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("generate an RSA key");
    let der = private.to_pkcs1_der().expect("PKCS#1 DER");
    let public = private.to_public_key();
    TestKey {
        kid: kid.to_owned(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                    "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())}),
    }
}

fn es256_key(kid: &str) -> TestKey {
    use p256::pkcs8::EncodePrivateKey;
    let private = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let der = private.to_pkcs8_der().expect("PKCS#8 DER");
    let point = private.verifying_key().to_encoded_point(false);
    TestKey {
        kid: kid.to_owned(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                    "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y"))}),
    }
}

fn ed25519_key(kid: &str) -> TestKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let private = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = private.to_pkcs8_der().expect("PKCS#8 DER");
    TestKey {
        kid: kid.to_owned(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        // No `alg`: the LRS takes the algorithm from the key type and curve.
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": kid,
                    "x": b64(private.verifying_key().as_bytes())}),
    }
}

/// RSA key generation is slow in debug builds: tests share a few.
fn rsa_keys() -> &'static [TestKey; 2] {
    static KEYS: OnceLock<[TestKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| [rsa_key("rsa-1"), rsa_key("rsa-2")])
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a valid token from `iss` for the root department.
fn claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "learner-7", "scope": "all", "department": "/",
           "iat": now(), "exp": now() + 600})
}

fn with(mut claims: Value, changes: Value) -> Value {
    if let (Some(c), Some(ch)) = (claims.as_object_mut(), changes.as_object()) {
        for (k, v) in ch {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    claims
}

fn mint(key: &TestKey, claims: &Value) -> String {
    mint_with_kid(key, Some(&key.kid), claims)
}

fn mint_with_kid(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("token encodes")
}

fn get(lrs: &Lrs, token: &str) -> Response {
    lrs.get("/statements")
        .no_auth()
        .authorization(&format!("Bearer {token}"))
        .send()
}

/// 401 with the error body, whose message contains `needle`; returns the message.
fn refused(lrs: &Lrs, token: &str, needle: &str) -> String {
    let r = get(lrs, token);
    let e = r.assert_error(401);
    let message = e["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains(needle),
        "expected a message containing `{needle}`\n{}",
        r.describe()
    );
    message
}

fn oidc_lrs(idp: &Idp, extra: &[&str]) -> Lrs {
    Lrs::builder()
        .arg("--oidc-issuer")
        .arg(idp.issuer())
        .args(extra.iter().copied())
        .start()
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn oidc_discovery_accepts_rs256_es256_and_eddsa_tokens() {
    let es = es256_key("ec-1");
    let ed = ed25519_key("ed-1");
    let rsa = &rsa_keys()[0];
    let idp = Idp::start(&[rsa, &es, &ed]);
    let lrs = oidc_lrs(&idp, &[]);
    lrs.require_spawned("the server must be started with an OpenID Connect issuer");
    assert_eq!(idp.discovery_hits(), 1, "discovery once at start");
    assert_eq!(idp.jwks_hits(), 1, "key set once at start");
    for key in [rsa, &es, &ed] {
        get(&lrs, &mint(key, &claims(&idp.issuer()))).assert_status(200);
        // Without `kid`, the keys of the token's algorithm are tried.
        get(&lrs, &mint_with_kid(key, None, &claims(&idp.issuer()))).assert_status(200);
    }
    // The authority of a statement written with a provider's token.
    let s = statement();
    let id = s["id"].as_str().expect("id").to_owned();
    lrs.post("/statements")
        .no_auth()
        .authorization(&format!("Bearer {}", mint(&ed, &claims(&idp.issuer()))))
        .json(&s)
        .send()
        .assert_status(200);
    let got = lrs.get("/statements").query("statementId", &id).send();
    got.assert_status(200);
    assert_eq!(
        got.json()["authority"]["account"],
        json!({"homePage": idp.issuer(), "name": "learner-7"}),
        "{}",
        got.describe()
    );
    assert_eq!(idp.jwks_hits(), 1, "known keys need no refetch");
}

#[test]
fn oidc_key_rotation_refetches_on_unknown_kid() {
    let [old, new] = rsa_keys();
    let idp = Idp::start(&[old]);
    let lrs = oidc_lrs(&idp, &["--jwt-jwks-min-refresh-secs", "1"]);
    lrs.require_spawned("the server must be started with an OpenID Connect issuer");
    let iss = idp.issuer();
    get(&lrs, &mint(old, &claims(&iss))).assert_status(200);
    // The provider rotates: only the new key is published now.
    idp.set_keys(&[new]);
    std::thread::sleep(Duration::from_millis(1200));
    let before = idp.jwks_hits();
    get(&lrs, &mint(new, &claims(&iss))).assert_status(200);
    assert_eq!(idp.jwks_hits(), before + 1, "one refetch for the new kid");
    // The old key is gone from the refetched set.
    refused(&lrs, &mint(old, &claims(&iss)), "key");
    // A token naming a published kid but signed by another key does not verify.
    let forged = mint_with_kid(old, Some(&new.kid), &claims(&iss));
    refused(&lrs, &forged, "signature does not verify");
}

#[test]
fn jwks_removed_key_stops_working_after_the_ttl_refresh() {
    let [old, new] = rsa_keys();
    let idp = Idp::start(&[old, new]);
    let lrs = Lrs::builder()
        .arg("--jwt-jwks-url")
        .arg(idp.jwks_url())
        .args([
            "--jwt-jwks-ttl-secs",
            "1",
            "--jwt-jwks-min-refresh-secs",
            "1",
        ])
        .start();
    lrs.require_spawned("the server must be started with a JWKS URL");
    let iss = "https://igot.example.gov.in";
    let old_token = mint(old, &claims(iss));
    get(&lrs, &old_token).assert_status(200);
    // The provider withdraws the old key; no token names an unknown kid.
    idp.set_keys(&[new]);
    std::thread::sleep(Duration::from_millis(1200));
    // A request past the TTL starts a background refresh (it may still be served from
    // the cache itself); once the refresh is in, the old key is refused.
    let before = idp.jwks_hits();
    let deadline = Instant::now() + Duration::from_secs(20);
    while idp.jwks_hits() == before {
        assert!(Instant::now() < deadline, "no background refresh");
        let _ = get(&lrs, &mint(new, &claims(iss)));
        std::thread::sleep(Duration::from_millis(100));
    }
    // The fetched set is in place a moment after the provider served it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&lrs, &old_token).status == 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    refused(&lrs, &old_token, "key");
    get(&lrs, &mint(new, &claims(iss))).assert_status(200);
}

#[test]
fn jwks_url_unknown_kid_burst_refetches_at_most_once_per_interval() {
    let key = es256_key("ec-main");
    let idp = Idp::start(&[&key]);
    let min_refresh = 3u64;
    let lrs = Lrs::builder()
        .arg("--jwt-jwks-url")
        .arg(idp.jwks_url())
        .arg("--jwt-jwks-min-refresh-secs")
        .arg(min_refresh.to_string())
        .start();
    lrs.require_spawned("the server must be started with a JWKS URL");
    assert_eq!(idp.discovery_hits(), 0, "a JWKS URL needs no discovery");
    let iss = "https://igot.example.gov.in";
    get(&lrs, &mint(&key, &claims(iss))).assert_status(200);
    assert_eq!(idp.jwks_hits(), 1);
    // Past the interval, so that the first unknown kid may refetch once.
    std::thread::sleep(Duration::from_millis(min_refresh * 1000 + 200));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..5 {
            let (lrs, key) = (&lrs, &key);
            scope.spawn(move || {
                for i in 0..10 {
                    let kid = format!("made-up-{t}-{i}-{}", uuid::Uuid::new_v4().simple());
                    let token = mint_with_kid(key, Some(&kid), &claims(iss));
                    refused(lrs, &token, "key");
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs();
    let refetches = idp.jwks_hits() - 1;
    assert!(refetches >= 1, "an unknown kid refetches the key set");
    let allowed = 1 + elapsed / min_refresh;
    assert!(
        refetches as u64 <= allowed,
        "50 tokens with unknown kids in {elapsed} s made {refetches} refetches (at most {allowed} allowed)"
    );
    // The real key still works.
    get(&lrs, &mint(&key, &claims(iss))).assert_status(200);
}

#[test]
fn rfc7519_time_claims_with_a_provider() {
    let key = ed25519_key("ed-t");
    let idp = Idp::start(&[&key]);
    let lrs = oidc_lrs(
        &idp,
        &["--jwt-leeway-secs", "30", "--jwt-max-lifetime-secs", "3600"],
    );
    lrs.require_spawned("the server must be started with an OpenID Connect issuer");
    let iss = idp.issuer();
    let base = claims(&iss);
    let t = |changes: Value| mint(&key, &with(base.clone(), changes));
    // RFC 7519 §4.1.5: not before.
    refused(
        &lrs,
        &t(json!({"nbf": now() + 3600, "exp": now() + 3700})),
        "not valid before",
    );
    get(&lrs, &t(json!({"nbf": now() + 10}))).assert_status(200);
    // RFC 7519 §4.1.4: expiry, with the configured leeway (30 s) only.
    refused(&lrs, &t(json!({"exp": now() - 60})), "expired");
    get(&lrs, &t(json!({"exp": now() - 10}))).assert_status(200);
    refused(&lrs, &t(json!({"exp": null})), "no `exp`");
    refused(&lrs, &t(json!({"exp": "tomorrow"})), "NumericDate");
    // Lifetime above the maximum (3600 s), counted from nbf, else iat, else now.
    refused(
        &lrs,
        &t(json!({"exp": now() + 7200})),
        "exceeds the maximum of 3600 s",
    );
    refused(
        &lrs,
        &t(json!({"iat": now() - 7000, "exp": now() + 60})),
        "exceeds the maximum",
    );
    refused(
        &lrs,
        &t(json!({"iat": null, "exp": now() + 365 * 86_400})),
        "exceeds the maximum",
    );
    get(&lrs, &t(json!({"iat": null, "exp": now() + 1800}))).assert_status(200);
}

#[test]
fn oidc_refuses_alg_none_hmac_and_other_issuers() {
    let key = es256_key("ec-a");
    let idp = Idp::start(&[&key]);
    let lrs = oidc_lrs(&idp, &[]);
    lrs.require_spawned("the server must be started with an OpenID Connect issuer");
    let iss = idp.issuer();
    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"}).to_string().as_bytes()),
        b64(claims(&iss).to_string().as_bytes())
    );
    refused(&lrs, &none, "bearer token");
    // HS256 signed with the public key's text, or any secret: no HMAC with a key set.
    for secret in [key.jwk["x"].as_str().unwrap_or("x"), "a-shared-secret"] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let hs = jsonwebtoken::encode(
            &header,
            &claims(&iss),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("token encodes");
        refused(&lrs, &hs, "HS256");
    }
    // A token naming the key but claiming another algorithm of the accepted ones.
    let ed = ed25519_key(&key.kid);
    refused(&lrs, &mint(&ed, &claims(&iss)), "does not match");
    // Another issuer, and no issuer.
    refused(
        &lrs,
        &mint(
            &key,
            &with(claims(&iss), json!({"iss": "https://elsewhere.example"})),
        ),
        "`iss`",
    );
    refused(
        &lrs,
        &mint(&key, &with(claims(&iss), json!({"iss": null}))),
        "no `iss`",
    );
    // Garbage.
    refused(&lrs, "not.a.token", "invalid bearer token");
    get(&lrs, &mint(&key, &claims(&iss))).assert_status(200);
}

#[test]
fn oidc_department_claim_is_required_and_well_formed() {
    let key = es256_key("ec-d");
    let idp = Idp::start(&[&key]);
    let lrs = oidc_lrs(&idp, &[]);
    lrs.require_spawned("the server must be started with an OpenID Connect issuer");
    let iss = idp.issuer();
    let t = |changes: Value| mint(&key, &with(claims(&iss), changes));
    refused(
        &lrs,
        &t(json!({"department": null})),
        "no `department` claim",
    );
    for bad in [
        json!("../x"),
        json!("MOE"),
        json!("moe/"),
        json!(42),
        json!(["moe"]),
    ] {
        let message = refused(
            &lrs,
            &t(json!({"department": bad})),
            "malformed `department` claim",
        );
        assert!(
            !message.contains("../x") && !message.contains("MOE"),
            "the message must not echo the claim: {message}"
        );
    }
    get(&lrs, &t(json!({"department": "/"}))).assert_status(200);

    // Another claim name.
    let lrs = oidc_lrs(
        &idp,
        &["--jwt-department-claim", "https://igot.example/mdo"],
    );
    refused(&lrs, &t(json!({})), "no `https://igot.example/mdo` claim");
    get(&lrs, &t(json!({"https://igot.example/mdo": "/"}))).assert_status(200);
}

#[test]
fn oidc_token_for_a_department_that_does_not_exist_is_401() {
    let key = es256_key("ec-x");
    let idp = Idp::start(&[&key]);
    let lrs = oidc_lrs(&idp, &[]);
    let iss = idp.issuer();
    for dept in ["no-such-ministry", "moe/no-such-department"] {
        let token = mint(&key, &with(claims(&iss), json!({"department": dept})));
        let message = refused(&lrs, &token, "the token's department does not exist");
        assert!(!message.contains(dept), "{message}");
    }
}

#[test]
fn oidc_provider_down_at_start_gives_503_until_keys_load() {
    let key = &rsa_keys()[1];
    let idp = Idp::start(&[key]);
    idp.set_down(true);
    let lrs = oidc_lrs(&idp, &["--jwt-jwks-min-refresh-secs", "1"]);
    lrs.require_spawned("the server must be started with an OpenID Connect issuer");
    let token = mint(key, &claims(&idp.issuer()));
    let r = get(&lrs, &token);
    r.assert_error(503);
    // Basic credentials are unaffected.
    lrs.get("/statements").send().assert_status(200);
    idp.set_down(false);
    std::thread::sleep(Duration::from_millis(1200));
    get(&lrs, &token).assert_status(200);
}

#[test]
fn oidc_discovery_document_for_another_issuer_is_not_trusted() {
    let key = es256_key("ec-i");
    let idp = Idp::start(&[&key]);
    *lock(&idp.shared.issuer) = "https://impostor.example".to_owned();
    let lrs = oidc_lrs(&idp, &[]);
    lrs.require_spawned("the server must be started with an OpenID Connect issuer");
    assert_eq!(
        idp.jwks_hits(),
        0,
        "keys of a mismatching document are not fetched"
    );
    get(&lrs, &mint(&key, &claims(&idp.issuer()))).assert_error(503);
}

#[test]
fn oidc_issuer_over_plain_http_elsewhere_than_localhost_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_karmayogi-lrs"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--oidc-issuer",
            "http://idp.example",
        ])
        .arg("--store")
        .arg(format!("sqlite:{}", dir.path().join("lrs.db").display()))
        .output()
        .expect("run the server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https://"), "{err}");
}
