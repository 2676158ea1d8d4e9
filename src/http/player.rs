//! The content origin (`--content-listen`): the SCORM player, the package files and the
//! session endpoints, and nothing else. Package content is untrusted HTML and script: it
//! runs here, on an origin that holds no credential, no cookie of the LRS, no admin API
//! and no xAPI resource, so it cannot read or call any of them. What it may do is what
//! its launch token allows: read its own package's files and commit its own learner's
//! SCORM data model, which the server maps to statements (`launcher::session`).
use crate::error::{XapiError, XapiResult};
use crate::launcher::{self, session};
use crate::store::clock::StoredClock;
use crate::store::DynStore;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

const PLAYER_HTML: &str = include_str!("player/player.html");
const RUNTIME_JS: &str = include_str!("player/runtime.js");
const PLAYER_CSS: &str = include_str!("player/player.css");

/// Largest commit body (a SetValue list).
const MAX_COMMIT_BYTES: usize = 4 * 1024 * 1024;

/// What the content origin's handlers share.
pub struct ContentState {
    pub store: DynStore,
    pub clock: std::sync::Arc<StoredClock>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/player/{token}/", web::get().to(player))
        .route("/player-assets/runtime.js", web::get().to(runtime))
        .route("/player-assets/player.css", web::get().to(stylesheet))
        .route("/session/{token}", web::get().to(describe))
        .route("/session/{token}/commit", web::post().to(commit))
        .route("/content/{token}/{path:.*}", web::get().to(file))
        .default_service(web::to(not_found));
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Headers every answer of this origin carries: the token is in its URLs, so no
/// referrer leaves; nothing is sniffed.
fn guarded(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    b
}

fn json(status: actix_web::HttpResponseBuilder, v: &serde_json::Value) -> HttpResponse {
    guarded(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(v.to_string())
}

fn error(e: XapiError) -> HttpResponse {
    json(HttpResponse::build(e.status), &e.body())
}

async fn not_found() -> HttpResponse {
    error(XapiError::not_found(
        "nothing here: this origin serves launched course content only",
    ))
}

/// GET /player/{token}/: the page that hosts the runtime and the SCO. Its own policy
/// allows scripts and frames from this origin only.
async fn player(req: HttpRequest, state: web::Data<ContentState>) -> HttpResponse {
    let token = req.match_info().query("token");
    if let Err(e) = launcher::open(&state.store, token, now_us()).await {
        return error(e);
    }
    guarded(HttpResponse::Ok())
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(PLAYER_HTML)
}

async fn runtime() -> HttpResponse {
    guarded(HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("text/javascript; charset=utf-8")
        .body(RUNTIME_JS)
}

async fn stylesheet() -> HttpResponse {
    guarded(HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("text/css; charset=utf-8")
        .body(PLAYER_CSS)
}

/// GET /session/{token}: the model the SCO starts from, the data-model tables and the
/// launch URL.
async fn describe(req: HttpRequest, state: web::Data<ContentState>) -> HttpResponse {
    let token = req.match_info().query("token");
    let result: XapiResult<serde_json::Value> = async {
        let (_, s) = launcher::open(&state.store, token, now_us()).await?;
        session::describe(&state.store, &s).await
    }
    .await;
    match result {
        Ok(v) => json(HttpResponse::Ok(), &v),
        Err(e) => error(e),
    }
}

/// POST /session/{token}/commit: the SetValue calls since the last commit.
async fn commit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ContentState>,
) -> HttpResponse {
    let token = req.match_info().query("token").to_owned();
    let result: XapiResult<serde_json::Value> = async {
        let (record, s) = launcher::open(&state.store, &token, now_us()).await?;
        let body =
            crate::http::read_payload(payload.into_inner(), req.headers(), MAX_COMMIT_BYTES)
                .await?;
        let c = session::parse_commit(&body)?;
        let done = session::commit(&state.store, &state.clock, &record, &s, c, now_us()).await?;
        Ok(json!({
            "statements": done.statements,
            "refused": done.refused.iter().map(|(e, c)| json!({ "element": e, "error": c })).collect::<Vec<_>>(),
        }))
    }
    .await;
    match result {
        Ok(v) => json(HttpResponse::Ok(), &v),
        Err(e) => error(e),
    }
}

/// GET /content/{token}/{path}: a file of the launched package.
async fn file(req: HttpRequest, state: web::Data<ContentState>) -> HttpResponse {
    let token = req.match_info().query("token");
    let path = req.match_info().query("path");
    let result = async {
        let (record, _) = launcher::open(&state.store, token, now_us()).await?;
        launcher::file(&state.store, &record, path).await
    }
    .await;
    match result {
        Ok(f) => guarded(HttpResponse::Ok())
            .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
            .content_type(f.content_type)
            .body(f.content),
        Err(e) => error(e),
    }
}
