//! "Sign in with OpenID Connect" for the console (docs/CONSOLE.md): the authorization
//! code flow (OAuth 2.0, RFC 6749 §4.1) with PKCE S256 (RFC 7636), `state` and `nonce`.
//!
//! - `GET /console/oidc/login`: remembers a fresh state, nonce and PKCE verifier in this
//!   process's memory under a random pre-login cookie (`lrs_console_oidc`, HttpOnly,
//!   SameSite=Lax, Path=/console/oidc, 10 minutes) and sends the browser to the issuer's
//!   `authorization_endpoint` (from discovery).
//! - `GET /console/oidc/callback?code&state`: the pending sign-in of the cookie is taken
//!   (used once), the state compared in constant time, the code exchanged at the
//!   `token_endpoint` with the verifier; the access token becomes the session's credential
//!   through the same checks as `Authorization: Bearer` on the API, and the ID token must
//!   verify with the same keys and issuer, name the client id, carry the nonce and the
//!   same `sub`. Then the console session opens as with a key and secret (ending at the
//!   token's `exp` at the latest) and the browser goes to `/console`.
//!
//! Any failure sends the browser to `/console?oidc_error=<word>`; the page shows it in
//! plain words. No code, token or secret is put in a URL or the log.
use super::{cookie, set_cookie};
use crate::auth::{discovery_url, get_json, post_form, random_token};
use crate::http::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The pre-login cookie.
const PENDING_COOKIE: &str = "lrs_console_oidc";
/// How long a started sign-in may take at the identity provider.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Most sign-ins pending at once; beyond it the oldest is dropped.
const MAX_PENDING: usize = 10_000;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The console's OpenID Connect client settings.
pub struct ConsoleOidc {
    pub issuer: String,
    pub client_id: String,
    /// `Authorization: Basic …` for the token endpoint (confidential clients).
    client_basic: Option<String>,
    /// `openid` and the configured scopes, space-separated.
    scope: String,
    public_url: Option<String>,
    pending: Mutex<HashMap<[u8; 32], Pending>>,
}

struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    redirect_uri: String,
    created: Instant,
}

impl ConsoleOidc {
    /// From the command line: `None` unless both an issuer and a client id are set.
    pub fn from_args(args: &crate::config::JwtArgs) -> Result<Option<ConsoleOidc>, String> {
        let (Some(issuer), Some(client_id)) = (&args.oidc_issuer, &args.oidc_client_id) else {
            return Ok(None);
        };
        let client_basic = match &args.oidc_client_secret_file {
            None => None,
            Some(path) => {
                let secret = read_secret_file(path)?;
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        enc(client_id),
                        enc(&secret)
                    ))
                ))
            }
        };
        let mut scopes = vec!["openid".to_owned()];
        for s in args.oidc_scopes.split([' ', ',']).filter(|s| !s.is_empty()) {
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_owned());
            }
        }
        let public_url = match &args.console_public_url {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                Some(u.trim_end_matches('/').to_owned())
            }
            Some(u) => {
                return Err(format!(
                    "LRS_CONSOLE_PUBLIC_URL `{u}` is not an http(s) URL"
                ))
            }
            None => None,
        };
        Ok(Some(ConsoleOidc {
            issuer: issuer.clone(),
            client_id: client_id.clone(),
            client_basic,
            scope: scopes.join(" "),
            public_url,
            pending: Mutex::new(HashMap::new()),
        }))
    }

    /// The issuer's host, for the sign-in button.
    pub fn issuer_host(&self) -> &str {
        let rest = self
            .issuer
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.issuer);
        rest.split(['/', '?', '#']).next().unwrap_or(rest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A secret kept in a file that only its owner may read (like the audit key).
fn read_secret_file(path: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the client secret file {path}: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "the client secret file {path} is readable by others (mode {:o}): chmod 600 it",
            meta.permissions().mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the client secret file {path}: {e}"))?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        return Err(format!("the client secret file {path} is empty"));
    }
    Ok(secret)
}

fn fingerprint(v: &str) -> [u8; 32] {
    Sha256::digest(v.as_bytes()).into()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn not_configured() -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::error::XapiError::not_found(
        "sign-in with OpenID Connect is not configured on this LRS (--oidc-issuer and --oidc-client-id)",
    ))
}

/// To the sign-in page with a reason the page puts in words.
fn fail(req: &HttpRequest, reason: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, format!("/console?oidc_error={reason}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::SET_COOKIE, pending_cookie(req, "", Some(0))))
        .finish()
}

fn pending_cookie(req: &HttpRequest, value: &str, max_age: Option<u64>) -> String {
    // Lax, not Strict: the identity provider's redirect back is a cross-site navigation.
    let mut c = format!("{PENDING_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/console/oidc");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if req.connection_info().scheme().eq_ignore_ascii_case("https") {
        c.push_str("; Secure");
    }
    c
}

fn redirect_uri(req: &HttpRequest, oidc: &ConsoleOidc) -> String {
    let base = match &oidc.public_url {
        Some(u) => u.clone(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    format!("{base}/console/oidc/callback")
}

/// The issuer's discovery document, checked to name the configured issuer.
async fn discovery(issuer: &str) -> Result<Value, String> {
    let doc = get_json(discovery_url(issuer), TIMEOUT).await?;
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err("the discovery document names another issuer".into());
    }
    Ok(doc)
}

fn endpoint(doc: &Value, name: &str) -> Result<String, String> {
    let url = doc
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the discovery document has no `{name}`"))?;
    crate::auth::check_url(url)?;
    Ok(url.to_owned())
}

/// GET /console/oidc/login → 302 to the identity provider.
pub async fn login(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(oidc) = state.console_oidc.as_deref() else {
        return not_configured();
    };
    let doc = match discovery(&oidc.issuer).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("console sign-in with OpenID Connect: {e}");
            return fail(&req, "provider");
        }
    };
    let authorize = match endpoint(&doc, "authorization_endpoint") {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("console sign-in with OpenID Connect: {e}");
            return fail(&req, "provider");
        }
    };
    let handle = random_token(32);
    let pending = Pending {
        state: random_token(32),
        nonce: random_token(32),
        verifier: random_token(32),
        redirect_uri: redirect_uri(&req, oidc),
        created: Instant::now(),
    };
    let challenge = b64url(&Sha256::digest(pending.verifier.as_bytes()));
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.client_id)
        .append_pair("redirect_uri", &pending.redirect_uri)
        .append_pair("scope", &oidc.scope)
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let sep = if authorize.contains('?') { '&' } else { '?' };
    {
        let mut map = oidc.lock();
        map.retain(|_, p| p.created.elapsed() < PENDING_FOR);
        if map.len() >= MAX_PENDING {
            if let Some(oldest) = map.iter().min_by_key(|(_, p)| p.created).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(fingerprint(&handle), pending);
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, format!("{authorize}{sep}{query}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::SET_COOKIE,
            pending_cookie(&req, &handle, Some(PENDING_FOR.as_secs())),
        ))
        .finish()
}

/// GET /console/oidc/callback?code&state → the console session and 302 to `/console`.
pub async fn callback(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(oidc) = state.console_oidc.as_deref() else {
        return not_configured();
    };
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    // The pending sign-in is used once, whatever happens next.
    let pending = cookie(&req, PENDING_COOKIE)
        .filter(|v| !v.is_empty())
        .and_then(|h| oidc.lock().remove(&fingerprint(h)))
        .filter(|p| p.created.elapsed() < PENDING_FOR);
    let Some(pending) = pending else {
        return fail(&req, "expired");
    };
    let given_state = params.get("state").map(String::as_str).unwrap_or("");
    if !bool::from(given_state.as_bytes().ct_eq(pending.state.as_bytes())) {
        return fail(&req, "state");
    }
    if params.contains_key("error") {
        return fail(&req, "denied");
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        return fail(&req, "denied");
    };
    let tokens = match exchange(oidc, code, &pending).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("console sign-in with OpenID Connect: {e}");
            return fail(&req, "token");
        }
    };
    let text = |name: &str| tokens.get(name).and_then(Value::as_str).unwrap_or("");
    let (access, id_token) = (text("access_token"), text("id_token"));
    if access.is_empty() || id_token.is_empty() {
        tracing::warn!("console sign-in with OpenID Connect: the token endpoint answered no access token or no ID token");
        return fail(&req, "token");
    }
    let (cred, exp) = match state
        .auth
        .oidc_sign_in(access, id_token, &oidc.client_id, &pending.nonce)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::info!("console sign-in with OpenID Connect refused: {}", e.message);
            return fail(&req, "refused");
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let left = Duration::from_secs_f64((exp - now).clamp(0.0, 86_400.0 * 365.0));
    let opened = state
        .auth
        .sessions()
        .open_until(cred, Instant::now() + left);
    let max_age = crate::auth::session::LIFETIME.min(left).as_secs();
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/console"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .append_header((
            header::SET_COOKIE,
            set_cookie(&req, &opened.id, Some(max_age)),
        ))
        .append_header((header::SET_COOKIE, pending_cookie(&req, "", Some(0))))
        .finish()
}

/// The code → tokens at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5).
async fn exchange(oidc: &ConsoleOidc, code: &str, pending: &Pending) -> Result<Value, String> {
    let doc = discovery(&oidc.issuer).await?;
    let token_endpoint = endpoint(&doc, "token_endpoint")?;
    let mut form = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), pending.redirect_uri.clone()),
        ("code_verifier".to_owned(), pending.verifier.clone()),
    ];
    if oidc.client_basic.is_none() {
        form.push(("client_id".to_owned(), oidc.client_id.clone()));
    }
    post_form(token_endpoint, form, oidc.client_basic.clone(), TIMEOUT).await
}
