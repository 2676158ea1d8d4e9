//! Signing keys fetched from an identity provider: a JWKS URL (RFC 7517 §5), or an OpenID
//! Connect issuer whose discovery document (OpenID Connect Discovery 1.0 §4) names it.
//!
//! The keys are kept in memory. They are fetched again
//! - when a token names a key id (`kid`) the cached set lacks: key rotation at the
//!   provider, at most once per `min_refresh` so that tokens with made-up key ids cannot
//!   make the LRS hammer the provider;
//! - in the background once the set is older than `ttl`, so removed keys stop working.
//!
//! A fetch that fails keeps the keys already loaded (a provider outage does not lock
//! everybody out); before any key was ever loaded, bearer tokens get 503.
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The algorithms accepted with keys from a JWKS (RFC 7518 names).
pub const JWKS_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Largest discovery document or key set read (bytes).
const MAX_DOCUMENT: u64 = 1024 * 1024;

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum JwksOrigin {
    /// `{issuer}/.well-known/openid-configuration` → `jwks_uri`.
    Discovery { issuer: String },
    /// A JWKS URL given directly.
    Url(String),
}

#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// Least time between two fetches (start-up and unknown-`kid` fetches included).
    pub min_refresh: Duration,
    /// Age after which the set is fetched again in the background.
    pub ttl: Duration,
    /// Time limit of one HTTP request to the provider.
    pub timeout: Duration,
}

/// One verification key of the set.
pub struct VerifyKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

#[derive(Default)]
struct State {
    keys: Arc<Vec<VerifyKey>>,
    /// When the current `keys` were fetched; `None` before the first success.
    loaded_at: Option<Instant>,
    /// When the last fetch started (successful or not).
    last_attempt: Option<Instant>,
    /// The `jwks_uri` found by discovery (kept until a fetch fails).
    jwks_uri: Option<String>,
}

/// The cached key set of one provider.
pub struct Jwks {
    origin: JwksOrigin,
    settings: JwksSettings,
    state: Mutex<State>,
    /// One fetch at a time; whoever waits re-checks the rate limit afterwards.
    fetching: tokio::sync::Mutex<()>,
}

/// The outcome of looking up the key(s) for a token.
pub enum Lookup {
    /// Candidate keys: indexes into the set (same `kid` if the token has one, and the
    /// token's algorithm).
    Keys(Arc<Vec<VerifyKey>>, Vec<usize>),
    /// A key with this `kid` exists but is for another algorithm.
    AlgorithmMismatch,
    /// No key matches, even after a refetch (or the refetch was rate-limited).
    Unknown,
    /// No key set was ever loaded.
    Unavailable,
}

impl Jwks {
    pub fn new(origin: JwksOrigin, settings: JwksSettings) -> Arc<Jwks> {
        Arc::new(Jwks {
            origin,
            settings,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub fn origin(&self) -> &JwksOrigin {
        &self.origin
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-written (every
        // update is a plain assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self) -> (Arc<Vec<VerifyKey>>, bool, bool) {
        let s = self.lock();
        let loaded = s.loaded_at.is_some();
        // Old enough to refresh, and a refresh would not be rate-limited.
        let stale = s
            .loaded_at
            .is_some_and(|t| t.elapsed() >= self.settings.ttl)
            && s.last_attempt
                .is_none_or(|t| t.elapsed() >= self.settings.min_refresh);
        (s.keys.clone(), loaded, stale)
    }

    /// The keys that may have signed a token with header `alg` and `kid`, fetching the
    /// set again (rate-limited) when none matches.
    pub async fn lookup(self: &Arc<Self>, alg: Algorithm, kid: Option<&str>) -> Lookup {
        let (keys, loaded, stale) = self.snapshot();
        if stale {
            let me = self.clone();
            tokio::spawn(async move {
                me.refresh().await;
            });
        }
        if loaded {
            match select(&keys, alg, kid) {
                Selected::Found(idx) => return Lookup::Keys(keys, idx),
                Selected::AlgorithmMismatch => return Lookup::AlgorithmMismatch,
                Selected::None => {}
            }
        }
        // Unknown key id (rotation?) or nothing loaded yet: fetch again if allowed.
        self.refresh().await;
        let (keys, loaded, _) = self.snapshot();
        if !loaded {
            return Lookup::Unavailable;
        }
        match select(&keys, alg, kid) {
            Selected::Found(idx) => Lookup::Keys(keys, idx),
            Selected::AlgorithmMismatch => Lookup::AlgorithmMismatch,
            Selected::None => Lookup::Unknown,
        }
    }

    /// Fetches the key set unless the last fetch started less than `min_refresh` ago.
    /// Returns whether a fetch ran. Failures are logged and keep the previous keys.
    pub async fn refresh(&self) -> bool {
        let _one = self.fetching.lock().await;
        {
            let mut s = self.lock();
            if s.last_attempt
                .is_some_and(|t| t.elapsed() < self.settings.min_refresh)
            {
                return false;
            }
            s.last_attempt = Some(Instant::now());
        }
        let known_uri = self.lock().jwks_uri.clone();
        match self.fetch(known_uri).await {
            Ok((uri, keys)) => {
                tracing::info!(
                    "bearer tokens: {} signing key(s) loaded from {uri}",
                    keys.len()
                );
                let mut s = self.lock();
                s.keys = Arc::new(keys);
                s.loaded_at = Some(Instant::now());
                s.jwks_uri = Some(uri);
            }
            Err(e) => {
                let mut s = self.lock();
                s.jwks_uri = None;
                if s.loaded_at.is_some() {
                    tracing::warn!("bearer tokens: cannot refresh the signing keys ({e}); keeping the {} loaded before", s.keys.len());
                } else {
                    tracing::warn!("bearer tokens: cannot load the signing keys ({e}); bearer tokens get 503 until they load");
                }
            }
        }
        true
    }

    /// Discovery (when needed) then the key set: `(jwks_uri, usable keys)`.
    async fn fetch(&self, known_uri: Option<String>) -> Result<(String, Vec<VerifyKey>), String> {
        let uri = match (&self.origin, known_uri) {
            (_, Some(uri)) => uri,
            (JwksOrigin::Url(url), None) => url.clone(),
            (JwksOrigin::Discovery { issuer }, None) => {
                let url = discovery_url(issuer);
                let doc = get_json(url.clone(), self.settings.timeout).await?;
                jwks_uri_of(&doc, issuer).map_err(|e| format!("{url}: {e}"))?
            }
        };
        let set = get_json(uri.clone(), self.settings.timeout).await?;
        let keys = parse_key_set(&set).map_err(|e| format!("{uri}: {e}"))?;
        Ok((uri, keys))
    }
}

enum Selected {
    Found(Vec<usize>),
    AlgorithmMismatch,
    None,
}

fn select(keys: &[VerifyKey], alg: Algorithm, kid: Option<&str>) -> Selected {
    let same_kid: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| kid.is_none() || k.kid.as_deref() == kid)
        .map(|(i, _)| i)
        .collect();
    let usable: Vec<usize> = same_kid
        .iter()
        .copied()
        .filter(|&i| keys[i].algorithm == alg)
        .collect();
    if !usable.is_empty() {
        Selected::Found(usable)
    } else if kid.is_some() && !same_kid.is_empty() {
        Selected::AlgorithmMismatch
    } else {
        Selected::None
    }
}

/// OpenID Connect Discovery 1.0 §4: a terminating `/` of the issuer is removed before
/// appending the well-known path.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// `jwks_uri` of a discovery document, after checking that its `issuer` is exactly the
/// configured one (§4.3).
pub fn jwks_uri_of(doc: &Value, issuer: &str) -> Result<String, String> {
    match doc.get("issuer").and_then(Value::as_str) {
        Some(i) if i == issuer => {}
        Some(i) => {
            return Err(format!(
                "the discovery document's issuer `{i}` is not the configured `{issuer}`"
            ))
        }
        None => return Err("the discovery document has no `issuer`".into()),
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("the discovery document has no `jwks_uri`")?;
    check_url(uri)?;
    Ok(uri.to_owned())
}

/// Keys are fetched over HTTPS; plain HTTP only from this machine (tests, a local proxy).
pub fn check_url(url: &str) -> Result<(), String> {
    if let Some(rest) = url.strip_prefix("https://") {
        if rest.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = match authority.rsplit_once('@') {
            Some((_, h)) => h,
            None => authority,
        };
        let host = if host.starts_with('[') {
            host.split(']').next().map(|h| &h[1..]).unwrap_or("")
        } else {
            host.split(':').next().unwrap_or("")
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
        return Err(format!(
            "`{url}` is plain HTTP: signing keys must come over https:// (http:// is accepted only for localhost)"
        ));
    }
    Err(format!("`{url}` is not an https:// URL"))
}

/// The keys of a JWK set this LRS can verify with; others (encryption keys, HMAC secrets,
/// other curves, other algorithms) are skipped.
pub fn parse_key_set(set: &Value) -> Result<Vec<VerifyKey>, String> {
    let list = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWK set (no `keys` array)")?;
    let mut keys = Vec::new();
    for entry in list {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            tracing::debug!("bearer tokens: skipping a JWK that does not parse");
            continue;
        };
        let Some(algorithm) = algorithm_of(&jwk) else {
            tracing::debug!(
                "bearer tokens: skipping JWK {:?} (not an RS256, ES256 or EdDSA signing key)",
                jwk.common.key_id
            );
            continue;
        };
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => keys.push(VerifyKey {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            }),
            Err(e) => tracing::debug!("bearer tokens: skipping JWK {:?}: {e}", jwk.common.key_id),
        }
    }
    Ok(keys)
}

/// The one algorithm a JWK may verify: from its key type and curve, and its `alg` when it
/// has one (which must then agree). The token header never chooses it.
pub fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return None,
    }
    let (alg, declared) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(alg),
        Some(a) if a == declared => Some(alg),
        Some(_) => None,
    }
}

/// GET `url` as JSON, on the blocking pool, with a time limit and a size limit.
pub async fn get_json(url: String, timeout: Duration) -> Result<Value, String> {
    check_url(&url)?;
    let shown = url.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout)
            .timeout(timeout)
            .redirects(0)
            .build();
        let resp = agent
            .get(&url)
            .set("Accept", "application/json")
            .call()
            .map_err(|e| match e {
                ureq::Error::Status(code, _) => format!("HTTP {code}"),
                ureq::Error::Transport(t) => t.to_string(),
            })?;
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_DOCUMENT + 1)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        if body.len() as u64 > MAX_DOCUMENT {
            return Err(format!("larger than {MAX_DOCUMENT} bytes"));
        }
        Ok(body)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| format!("GET {shown}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("GET {shown}: not JSON ({e})"))
}

/// POST `form` (application/x-www-form-urlencoded) to `url` and read a JSON answer, on
/// the blocking pool, with the same limits as `get_json`; `basic` is HTTP Basic client
/// authentication. Error messages name the URL and the HTTP status only, never the form.
pub async fn post_form(
    url: String,
    form: Vec<(String, String)>,
    basic: Option<String>,
    timeout: Duration,
) -> Result<Value, String> {
    check_url(&url)?;
    let shown = url.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout)
            .timeout(timeout)
            .redirects(0)
            .build();
        let mut req = agent.post(&url).set("Accept", "application/json");
        if let Some(b) = &basic {
            req = req.set("Authorization", b);
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let resp = req.send_form(&pairs).map_err(|e| match e {
            ureq::Error::Status(code, _) => format!("HTTP {code}"),
            ureq::Error::Transport(t) => t.kind().to_string(),
        })?;
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_DOCUMENT + 1)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        if body.len() as u64 > MAX_DOCUMENT {
            return Err(format!("larger than {MAX_DOCUMENT} bytes"));
        }
        Ok(body)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| format!("POST {shown}: {e}"))?;
    serde_json::from_slice(&body).map_err(|_| format!("POST {shown}: the answer is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn discovery_url_drops_a_trailing_slash() {
        assert_eq!(
            discovery_url("https://idp.example/realms/x/"),
            "https://idp.example/realms/x/.well-known/openid-configuration"
        );
    }

    #[test]
    fn discovery_issuer_must_match() {
        let doc = json!({"issuer": "https://a.example", "jwks_uri": "https://a.example/jwks"});
        assert_eq!(
            jwks_uri_of(&doc, "https://a.example").as_deref(),
            Ok("https://a.example/jwks")
        );
        assert!(jwks_uri_of(&doc, "https://b.example").is_err());
        assert!(jwks_uri_of(&json!({"issuer": "https://a.example"}), "https://a.example").is_err());
    }

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(check_url("https://idp.example/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://[::1]:9/jwks").is_ok());
        assert!(check_url("http://idp.example/jwks").is_err());
        assert!(check_url("http://127.0.0.1.evil.example/jwks").is_err());
        assert!(check_url("http://localhost@evil.example/jwks").is_err());
        assert!(check_url("ftp://idp.example/jwks").is_err());
    }

    #[test]
    fn key_set_keeps_only_signing_keys_it_can_use() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let ec = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let point = ec.verifying_key().to_encoded_point(false);
        let (x, y) = (b64(point.x().expect("x")), b64(point.y().expect("y")));
        let ed = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let ed_x = b64(ed.verifying_key().as_bytes());
        let set = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig", "x": x, "y": y},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": x, "y": y},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "x": ed_x},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-wrong-alg", "alg": "ES256", "x": ed_x},
            {"kty": "whatever"}
        ]});
        let keys = parse_key_set(&set).expect("a key set");
        let got: Vec<(Option<&str>, Algorithm)> = keys
            .iter()
            .map(|k| (k.kid.as_deref(), k.algorithm))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("ec"), Algorithm::ES256),
                (Some("ed"), Algorithm::EdDSA)
            ]
        );
        assert!(matches!(
            select(&keys, Algorithm::ES256, Some("ec")),
            Selected::Found(_)
        ));
        assert!(matches!(
            select(&keys, Algorithm::RS256, Some("ec")),
            Selected::AlgorithmMismatch
        ));
        assert!(matches!(
            select(&keys, Algorithm::ES256, Some("nope")),
            Selected::None
        ));
        assert!(parse_key_set(&json!({"nokeys": []})).is_err());
    }
}
