//! The content origin (`--content-listen`): the SCORM player, the package files, the
//! session endpoints and the cmi5 AU endpoints, and nothing else. Package content is
//! untrusted HTML and script: it runs here, on an origin that holds no credential, no
//! cookie of the LRS, no admin API and none of the LRS's xAPI resources, so it cannot read
//! or call any of them. What it may do is what its launch token allows: read its own
//! package's files and commit its own learner's SCORM data model, which the server maps to
//! statements (`launcher::session`); or, for a cmi5 AU, fetch its auth token once and
//! send its own learner's statements and documents for its own registration to
//! `/cmi5/{token}/xapi/` (`launcher::cmi5`), through the LRS's own xAPI rules.
use super::middleware::{LastVersions, XapiHeaders};
use super::{documents, statements, version};
use crate::error::{XapiError, XapiResult};
use crate::launcher::{self, cmi5, session};
use crate::store::clock::StoredClock;
use crate::store::DynStore;
use crate::xapi::document::{Op, Resource};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use std::sync::Arc;

const PLAYER_HTML: &str = include_str!("player/player.html");
const RUNTIME_JS: &str = include_str!("player/runtime.js");
const PLAYER_CSS: &str = include_str!("player/player.css");

/// Largest commit body (a SetValue list).
const MAX_COMMIT_BYTES: usize = 4 * 1024 * 1024;

/// What the content origin's handlers share.
pub struct ContentState {
    pub store: DynStore,
    pub clock: Arc<StoredClock>,
    /// The audit log, woken when an AU's statements are stored.
    pub audit: Arc<crate::auditlog::AuditLog>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The largest request body of the AU endpoint (the LRS's `--max-body-bytes`).
    pub max_body_bytes: usize,
    /// The version each AU client last spoke (the xAPI version header rules).
    pub last_versions: Arc<LastVersions>,
}

/// The content origin's routes; `state` gives the AU endpoint its xAPI header rules.
pub fn configure(cfg: &mut web::ServiceConfig, state: &ContentState) {
    cfg.route("/player/{token}/", web::get().to(player))
        .route("/player-assets/runtime.js", web::get().to(runtime))
        .route("/player-assets/player.css", web::get().to(stylesheet))
        .route("/session/{token}", web::get().to(describe))
        .route("/session/{token}/commit", web::post().to(commit))
        .route("/content/{token}/{path:.*}", web::get().to(file))
        .service(
            web::resource("/cmi5/{token}/fetch")
                .route(web::post().to(cmi5_fetch))
                .default_service(web::to(post_only)),
        )
        .service(
            web::scope("/cmi5/{token}/xapi")
                .wrap(XapiHeaders {
                    max_body_bytes: state.max_body_bytes,
                    last_versions: state.last_versions.clone(),
                })
                .route("/about", web::get().to(super::about))
                .route("/about", web::head().to(super::about))
                .service(
                    web::resource("/statements")
                        .route(web::get().to(au_statement_get))
                        .route(web::head().to(au_statement_get))
                        .route(web::put().to(au_statement_put))
                        .route(web::post().to(au_statement_post)),
                )
                .service(au_documents("/activities/state", Resource::State))
                .service(au_documents("/agents/profile", Resource::AgentProfile))
                .service(au_documents(
                    "/activities/profile",
                    Resource::ActivityProfile,
                ))
                .default_service(web::to(super::middleware::not_found)),
        )
        .default_service(web::to(not_found));
}

fn au_documents(path: &str, resource: Resource) -> actix_web::Resource {
    web::resource(path)
        .app_data(web::Data::new(resource))
        .route(web::get().to(au_document_get))
        .route(web::head().to(au_document_get))
        .route(web::put().to(au_document_write))
        .route(web::post().to(au_document_write))
        .route(web::delete().to(au_document_delete))
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

async fn post_only() -> HttpResponse {
    let mut e = XapiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "the fetch URL takes POST only (cmi5 8.2.1)",
    );
    e.code = Some("method_not_allowed");
    let mut r = error(e);
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    r
}

/// POST /cmi5/{token}/fetch: the AU's auth token, once (cmi5 8.2); every answer is HTTP
/// 200 with a JSON body, errors included.
async fn cmi5_fetch(req: HttpRequest, state: web::Data<ContentState>) -> HttpResponse {
    let token = req.match_info().query("token");
    json(
        HttpResponse::Ok(),
        &cmi5::fetch(&state.store, token, now_us()).await,
    )
}

/// The session a request to the AU endpoint is for, from its token and auth token.
async fn au_session(req: &HttpRequest, state: &ContentState) -> XapiResult<launcher::Session> {
    let token = req.match_info().query("token");
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (_, s) = cmi5::authorize(&state.store, token, authorization, now_us()).await?;
    Ok(s)
}

fn session_department(s: &launcher::Session) -> XapiResult<crate::departments::Department> {
    crate::departments::Department::parse(&s.department)
        .map_err(|e| XapiError::internal(format!("session department: {e}")))
}

/// Stores what the AU sent (checked by `launcher::cmi5`); the ids it got.
async fn au_store(
    state: &ContentState,
    s: &launcher::Session,
    list: Vec<serde_json::Value>,
    batch: bool,
    attachments: Vec<crate::xapi::multipart::AttachmentContent>,
    v: crate::xapi::XapiVersion,
) -> XapiResult<Vec<String>> {
    cmi5::check_statements(&state.store, s, &list, batch, v).await?;
    let stored =
        cmi5::store_statements(&state.store, &state.clock, s, list, batch, attachments, v).await?;
    state
        .metrics
        .statements_stored((stored.ids.len() - stored.already) as u64);
    state.audit.wake();
    Ok(stored.ids)
}

/// PUT statements?statementId=…: one statement of the session.
async fn au_statement_put(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ContentState>,
) -> HttpResponse {
    let through = state.clock.consistent_through_us();
    let result = async {
        let s = au_session(&req, &state).await?;
        let v = version(&req);
        let id = statements::put_statement_id(&req)?;
        let raw =
            crate::http::read_payload(payload.into_inner(), req.headers(), state.max_body_bytes)
                .await?;
        let (statement, attachments) = statements::put_statement(&req, &raw, v, &id)?;
        au_store(&state, &s, vec![statement], false, attachments, v).await?;
        Ok(HttpResponse::NoContent().finish())
    }
    .await;
    statements::respond(through, result)
}

/// POST statements: one statement or a batch of the session.
async fn au_statement_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ContentState>,
) -> HttpResponse {
    let through = state.clock.consistent_through_us();
    let result = async {
        let s = au_session(&req, &state).await?;
        let v = version(&req);
        statements::post_params(&req)?;
        let raw =
            crate::http::read_payload(payload.into_inner(), req.headers(), state.max_body_bytes)
                .await?;
        let (list, batch, attachments) = statements::post_statements(&req, &raw, v)?;
        let ids = au_store(&state, &s, list, batch, attachments, v).await?;
        Ok(statements::post_answer(&ids))
    }
    .await;
    statements::respond(through, result)
}

/// GET statements?statementId=…: one of the session's own statements (no queries: the AU
/// reads what it wrote, nothing else of the LRS).
async fn au_statement_get(req: HttpRequest, state: web::Data<ContentState>) -> HttpResponse {
    let through = state.clock.consistent_through_us();
    let result = async {
        let s = au_session(&req, &state).await?;
        let params = super::Params::parse(&req)?;
        if let Some(other) = params.names().find(|n| *n != "statementId") {
            return Err(XapiError::forbidden(format!(
                "an AU reads its own statements by `statementId` only (got `{other}`)"
            ))
            .at(other.to_owned())
            .code("cmi5_read_only"));
        }
        let id = params.required("statementId", "Communication 2.1.3")?;
        if !crate::xapi::validate::is_valid_uuid(id) {
            return Err(XapiError::bad_request("`statementId` must be a UUID").at("statementId"));
        }
        let v = cmi5::own_statement(&state.store, &s, id).await?;
        Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(v.to_string()))
    }
    .await;
    statements::respond(through, result)
}

/// GET/HEAD of the session's documents.
async fn au_document_get(
    req: HttpRequest,
    resource: web::Data<Resource>,
    state: web::Data<ContentState>,
) -> XapiResult<HttpResponse> {
    let resource = **resource;
    let s = au_session(&req, &state).await?;
    let target = documents::target(&req, resource, Op::Get)?;
    cmi5::check_document(&s, resource, Op::Get, &target)?;
    documents::read(
        &req,
        &state.store,
        &session_department(&s)?,
        resource,
        &target,
    )
    .await
}

/// PUT/POST of one of the session's documents.
async fn au_document_write(
    req: HttpRequest,
    payload: web::Payload,
    resource: web::Data<Resource>,
    state: web::Data<ContentState>,
) -> XapiResult<HttpResponse> {
    let resource = **resource;
    let op = documents::write_op(&req);
    let s = au_session(&req, &state).await?;
    let target = documents::target(&req, resource, op)?;
    cmi5::check_document(&s, resource, op, &target)?;
    let pre = documents::preconditions(&req)?;
    let content =
        crate::http::read_payload(payload.into_inner(), req.headers(), state.max_body_bytes)
            .await?;
    let department = session_department(&s)?;
    documents::write(
        &req,
        &state.store,
        &department,
        resource,
        &target,
        pre,
        content,
    )
    .await
}

/// DELETE of one of the session's documents.
async fn au_document_delete(
    req: HttpRequest,
    resource: web::Data<Resource>,
    state: web::Data<ContentState>,
) -> XapiResult<HttpResponse> {
    let resource = **resource;
    let s = au_session(&req, &state).await?;
    let target = documents::target(&req, resource, Op::Delete)?;
    cmi5::check_document(&s, resource, Op::Delete, &target)?;
    documents::delete(&req, &state.store, &session_department(&s)?, &target).await
}
