//! The console (`/console`, docs/CONSOLE.md): a page for training managers and auditors,
//! written in plain HTML, CSS and JavaScript that ship inside the binary. The page talks to
//! the same APIs as every other client; this module only serves its files and the session
//! resource that turns a credential into a cookie:
//!
//! - `POST /console/session` `{key, secret}`: checks the credential through the
//!   Authenticator (as a Basic header would be), opens a session and sets the
//!   `lrs_console` cookie (HttpOnly, SameSite=Strict, Path=/, Secure over https); answers
//!   the CSRF token and who signed in.
//! - `GET /console/session`: who is signed in (with the CSRF token), 401 when nobody.
//! - `DELETE /console/session`: signs out (the session ends, the cookie is cleared).
//!
//! Afterwards `http::authenticate` accepts the cookie in place of `Authorization` when the
//! request carries the session's token in `X-Console-CSRF`.
use super::admin::{json_response, object, string};
use super::front::{cached, etag};
use super::{body, AppState};
use crate::auth::{scope_names, Credential};
use crate::error::{XapiError, XapiResult};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::json;
use std::sync::{LazyLock, OnceLock};

pub mod oidc;

/// The session cookie's name.
pub const COOKIE: &str = "lrs_console";
/// The header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "x-console-csrf";

/// The console's Content-Security-Policy: its own files only, nothing inline.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console's files: (name under `/console/assets/`, content type, text).
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("console.js"),
    ),
    (
        "verify.js",
        "text/javascript; charset=utf-8",
        include_str!("verify.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("charts.js"),
    ),
];
const PAGE: &str = include_str!("console.html");

static PAGE_ETAG: LazyLock<String> = LazyLock::new(|| etag(PAGE));
static ASSET_ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|(_, _, text)| etag(text)).collect());

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/console")
            .route(web::get().to(page))
            .route(web::head().to(page)),
    )
    .service(
        web::resource("/console/session")
            .route(web::get().to(who))
            .route(web::post().to(sign_in))
            .route(web::delete().to(sign_out)),
    )
    .service(web::resource("/console/oidc/login").route(web::get().to(oidc::login)))
    .service(web::resource("/console/oidc/callback").route(web::get().to(oidc::callback)))
    .service(
        web::resource("/console/assets/{name}")
            .route(web::get().to(asset))
            .route(web::head().to(asset)),
    );
}

/// The page with the "Sign in with <issuer>" link when OpenID Connect sign-in is
/// configured (the same for the whole process, so built once).
static OIDC_PAGE: OnceLock<(String, String)> = OnceLock::new();

/// Where the page marks the place of the OpenID Connect link.
const OIDC_MARK: &str = "<!--oidc-sign-in-->";

async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.console_oidc.as_deref() {
        None => cached(&req, CSP, "text/html; charset=utf-8", PAGE, &PAGE_ETAG),
        Some(o) => {
            let (text, tag) = OIDC_PAGE.get_or_init(|| {
                let host = o
                    .issuer_host()
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;");
                let link = format!(
                    "<p><a class=\"button\" id=\"signin-oidc\" href=\"/console/oidc/login\">Sign in with {host}</a></p>"
                );
                let text = PAGE.replace(OIDC_MARK, &link);
                let tag = etag(&text);
                (text, tag)
            });
            cached(&req, CSP, "text/html; charset=utf-8", text, tag)
        }
    }
}

async fn asset(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().position(|(n, _, _)| *n == name.as_str()) {
        Some(i) => cached(&req, CSP, ASSETS[i].1, ASSETS[i].2, &ASSET_ETAGS[i]),
        None => super::front::not_found(&req),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn csrf_header(req: &HttpRequest) -> Option<&str> {
    req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok())
}

/// The session id and CSRF token a request presents, when it has both.
pub fn session_of(req: &HttpRequest) -> Option<(String, String)> {
    let id = cookie(req, COOKIE).filter(|v| !v.is_empty())?;
    let csrf = csrf_header(req)?;
    Some((id.to_owned(), csrf.to_owned()))
}

/// `Set-Cookie` for `value`; `Max-Age=0` clears it. Secure when the request came over
/// https (directly or, per `Forwarded`/`X-Forwarded-Proto`, through a proxy).
pub(super) fn set_cookie(req: &HttpRequest, value: &str, max_age: Option<u64>) -> String {
    let mut c = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if req.connection_info().scheme().eq_ignore_ascii_case("https") {
        c.push_str("; Secure");
    }
    c
}

fn who_json(cred: &Credential, csrf: &str) -> serde_json::Value {
    json!({
        "csrf": csrf,
        "key": cred.key,
        "name": cred.name,
        "department": cred.department.to_string(),
        "scopes": scope_names(&cred.scopes),
    })
}

fn no_store(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

/// POST /console/session `{key, secret}` → 201, the cookie and who signed in.
async fn sign_in(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    // Only JSON: a form on another site cannot send it without asking first (CORS), so no
    // page elsewhere can sign a visitor in under someone else's credential.
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(XapiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "sign in with a JSON body {\"key\": …, \"secret\": …} (Content-Type: application/json)",
        ));
    }
    let map = object(&body(&req, payload, &state).await?, &["key", "secret"])?;
    let missing = |name: &str| {
        XapiError::bad_request(format!("missing required field `{name}`")).at(format!("/{name}"))
    };
    let key = string(&map, "key")?.ok_or_else(|| missing("key"))?;
    let secret = string(&map, "secret")?.ok_or_else(|| missing("secret"))?;
    // The key ends at the first `:` of a Basic credential: such a key can never sign in.
    if key.contains(':') {
        return Err(XapiError::unauthorized("invalid credentials"));
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    );
    let cred = state.auth.authenticate(Some(basic.as_str())).await?;
    let opened = state.auth.sessions().open(cred.clone());
    let max_age = crate::auth::session::LIFETIME.as_secs();
    Ok(json_response(
        no_store(HttpResponse::Created()).insert_header((
            header::SET_COOKIE,
            set_cookie(&req, &opened.id, Some(max_age)),
        )),
        &who_json(&cred, &opened.csrf),
    ))
}

/// GET /console/session: who is signed in, with the CSRF token the page needs after a
/// reload. Needs the cookie only: the answer goes to this origin's pages alone (no CORS),
/// and it changes nothing.
async fn who(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let none = || XapiError::unauthorized("nobody is signed in to the console");
    let id = cookie(&req, COOKIE).ok_or_else(none)?;
    let found = state.auth.sessions().find(id).ok_or_else(none)?;
    // The same checks as every request (revocation included).
    let cred = state.auth.console_session(id, &found.csrf).await?;
    Ok(json_response(
        &mut no_store(HttpResponse::Ok()),
        &who_json(&cred, &found.csrf),
    ))
}

/// DELETE /console/session → 204: the session ends (when the CSRF token matches) and the
/// cookie is cleared either way.
async fn sign_out(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some((id, csrf)) = session_of(&req) {
        if state.auth.sessions().verify(&id, &csrf).is_some() {
            state.auth.sessions().close(&id);
        }
    }
    no_store(HttpResponse::NoContent())
        .insert_header((header::SET_COOKIE, set_cookie(&req, "", Some(0))))
        .finish()
}

/// Whether the request comes from the console page (its session calls, or an API call
/// carrying the CSRF header).
fn from_console(path: &str, headers: &header::HeaderMap) -> bool {
    path.starts_with("/console") || headers.contains_key(CSRF_HEADER)
}

/// Middleware step (see main.rs): a 401 to the console carries no `WWW-Authenticate:
/// Basic` challenge, which would make the browser pop up its own password dialog over
/// the page's sign-in form.
pub fn quiet_challenge<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    S::Future: 'static,
{
    let console = from_console(req.path(), req.headers());
    let call = srv.call(req);
    async move {
        let mut res = call.await?;
        if console {
            res.headers_mut().remove(header::WWW_AUTHENTICATE);
        }
        Ok(res)
    }
}
