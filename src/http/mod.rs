//! actix-web: routing, headers, auth, content negotiation, errors. One module per resource.
pub mod admin;
pub mod analytics;
pub mod audit;
pub mod console;
pub mod documents;
pub mod feed;
pub mod forwarding;
pub mod front;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod player;
pub mod scorm;
pub mod statements;

use crate::auth::{Authenticator, Credential};
use crate::error::{XapiError, XapiResult};
use crate::store::clock::StoredClock;
use crate::store::DynStore;
use crate::xapi::{XapiVersion, SUPPORTED_VERSIONS};
use actix_web::http::header::HeaderMap;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

pub struct Limits {
    pub max_body_bytes: usize,
    pub page_size: usize,
    pub max_page_size: usize,
}

pub struct AppState {
    pub store: DynStore,
    /// Hands out `stored` times and answers Consistent-Through.
    pub clock: std::sync::Arc<StoredClock>,
    /// The audit transparency log.
    pub audit: std::sync::Arc<crate::auditlog::AuditLog>,
    pub auth: Authenticator,
    pub limits: Limits,
    /// Prometheus metrics of this process.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Per-credential rate limits (in memory, per process).
    pub quotas: std::sync::Arc<crate::quota::Quotas>,
    /// The console's "Sign in with OpenID Connect" (when an issuer and a client id are set).
    pub console_oidc: Option<std::sync::Arc<console::oidc::ConsoleOidc>>,
}

/// The xAPI version governing this request (set by the middleware).
pub fn version(req: &HttpRequest) -> XapiVersion {
    req.extensions()
        .get::<XapiVersion>()
        .copied()
        .unwrap_or(XapiVersion::V2_0)
}

/// Authenticates the request: its `Authorization` header or, when it has none, a console
/// session (the `lrs_console` cookie together with its `X-Console-CSRF` token; a cookie
/// without the token counts as no credential at all). The one place a request becomes a
/// credential.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> XapiResult<Credential> {
    let cred = authenticate_only(req, state).await?;
    rate_limit(state, &cred, 0)?;
    Ok(cred)
}

/// Applies the credential's rate limits (its department's, else the server's) to one
/// request (`statements == 0`) or to a batch of statements, counted whole.
pub fn rate_limit(state: &AppState, cred: &Credential, statements: usize) -> XapiResult<()> {
    state
        .quotas
        .check(&cred.key, &cred.department, statements)
        .map_err(|r| {
            state.metrics.rate_limited(statements > 0);
            let what = r.kind.label();
            let mut e = XapiError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                format!(
                "rate limit exceeded: {what} limited to {} per second (burst {}); retry after {} s",
                r.limit.per_second, r.limit.burst, r.retry_after_secs
            ),
            );
            e.code = Some("rate_limited");
            e.retry_after = Some(r.retry_after_secs);
            e
        })
}

async fn authenticate_only(req: &HttpRequest, state: &AppState) -> XapiResult<Credential> {
    let header = req.headers().get(actix_web::http::header::AUTHORIZATION);
    if header.is_none() {
        if let Some((id, csrf)) = console::session_of(req) {
            return state.auth.console_session(&id, &csrf).await;
        }
    }
    state
        .auth
        .authenticate(header.and_then(|v| v.to_str().ok()))
        .await
}

fn too_large(limit: usize) -> XapiError {
    XapiError::payload_too_large(format!("request body exceeds the limit of {limit} bytes"))
        .req("Communication 3.2 (413 Request Entity Too Large)")
}

/// A body must keep arriving: a request whose body stops for `idle`, or arrives slower
/// than `min_rate` bytes/s on average once `grace` has passed, is answered 408 and its
/// connection closed, so slow senders cannot hold the in-flight slots (the headers have
/// their own deadline, `--client-request-timeout-ms`). The default rate is that of a poor
/// mobile link (32 kbit/s): a 1 MB batch on it takes about 4 minutes, which passes.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadlines {
    pub idle: std::time::Duration,
    pub grace: std::time::Duration,
    /// Bytes a second; 0 = no floor (only `idle` applies).
    pub min_rate: u64,
}

impl Default for BodyDeadlines {
    fn default() -> Self {
        use crate::config::{BODY_GRACE_SECS, BODY_IDLE_SECS, BODY_MIN_RATE_BYTES};
        BodyDeadlines {
            idle: std::time::Duration::from_secs(BODY_IDLE_SECS),
            grace: std::time::Duration::from_secs(BODY_GRACE_SECS),
            min_rate: BODY_MIN_RATE_BYTES,
        }
    }
}

/// Every body of this process is read under the same deadlines (`serve` sets them once at
/// start from its options; every reader of a body, whatever its own size limit, obeys them).
static BODY_DEADLINES: std::sync::OnceLock<BodyDeadlines> = std::sync::OnceLock::new();

/// Sets this process's body deadlines; the first call wins (a server is started once).
pub fn set_body_deadlines(d: BodyDeadlines) {
    let _ = BODY_DEADLINES.set(d);
}

fn body_deadlines() -> BodyDeadlines {
    BODY_DEADLINES.get().copied().unwrap_or_default()
}

fn too_slow(received: usize, d: &BodyDeadlines) -> XapiError {
    let rate = if d.min_rate == 0 {
        String::new()
    } else {
        format!(
            " and must average at least {} bytes/s after the first {} s",
            d.min_rate,
            d.grace.as_secs()
        )
    };
    XapiError::new(
        actix_web::http::StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body stopped or arrived too slowly ({received} bytes received; a body \
             must not pause for {} s{rate})",
            d.idle.as_secs(),
        ),
    )
    .code("body_too_slow")
}

/// Reads a whole body, refusing (413) anything over `limit` without buffering it.
pub async fn read_payload(
    mut payload: actix_web::dev::Payload,
    headers: &HeaderMap,
    limit: usize,
) -> XapiResult<bytes::Bytes> {
    let declared = headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = bytes::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let deadlines = body_deadlines();
    let started = std::time::Instant::now();
    while let Some(chunk) = tokio::time::timeout(deadlines.idle, payload.next())
        .await
        .map_err(|_| too_slow(body.len(), &deadlines))?
    {
        let chunk =
            chunk.map_err(|e| XapiError::bad_request(format!("cannot read request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
        let late = started.elapsed().saturating_sub(deadlines.grace);
        if (body.len() as f64) < late.as_secs_f64() * deadlines.min_rate as f64 {
            return Err(too_slow(body.len(), &deadlines));
        }
    }
    Ok(body.freeze())
}

pub async fn body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> XapiResult<bytes::Bytes> {
    read_payload(
        payload.into_inner(),
        req.headers(),
        state.limits.max_body_bytes,
    )
    .await
}

/// Query parameters, each at most once.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(req: &HttpRequest) -> XapiResult<Params> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|e| XapiError::bad_request(format!("malformed query string: {e}")))?;
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(XapiError::bad_request(format!(
                    "parameter `{k}` given more than once"
                ))
                .at(k.clone()));
            }
        }
        Ok(Params(pairs))
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, v)| v.as_str())
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
    /// 400 if any parameter is not in `allowed`.
    pub fn only(&self, allowed: &[&str], requirement: &str) -> XapiResult<()> {
        match self.names().find(|n| !allowed.contains(n)) {
            Some(n) => Err(XapiError::bad_request(format!("unknown parameter `{n}`"))
                .at(n.to_owned())
                .req(requirement)),
            None => Ok(()),
        }
    }
    pub fn required(&self, name: &str, requirement: &str) -> XapiResult<&str> {
        self.get(name).ok_or_else(|| {
            XapiError::bad_request(format!("missing required parameter `{name}`"))
                .at(name.to_owned())
                .req(requirement)
        })
    }
}

pub(crate) async fn about(req: HttpRequest) -> HttpResponse {
    let _ = version(&req);
    HttpResponse::Ok().content_type("application/json").body(
        json!({
            "version": SUPPORTED_VERSIONS,
            "extensions": {
                "https://karmayogi.gov.in/xapi/lrs": { "name": "karmayogi-lrs", "version": env!("CARGO_PKG_VERSION") }
            }
        })
        .to_string(),
    )
}

/// All xAPI resources under `/xapi`; the admin API under `/admin`; the front page at `/`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/xapi")
            .route("/about", web::get().to(about))
            .route("/about", web::head().to(about))
            .service(
                web::resource("/statements")
                    .route(web::get().to(statements::get))
                    .route(web::head().to(statements::get))
                    .route(web::put().to(statements::put))
                    .route(web::post().to(statements::post)),
            )
            .configure(documents::configure),
    )
    // Before the `/admin` scope, whose default service would answer 404.
    .configure(forwarding::configure)
    .configure(admin::configure)
    .configure(audit::configure)
    .configure(feed::configure)
    .configure(metrics::configure)
    .configure(openapi::configure)
    .configure(analytics::configure)
    .configure(scorm::configure)
    .configure(console::configure)
    .configure(front::configure)
    .default_service(web::to(middleware::not_found));
}
