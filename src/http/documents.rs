//! State, activity profile and agent profile resources (Communication 2.2, 2.3, 2.6, 2.7,
//! concurrency 3.1); agents (2.4) and activities (2.5) resources.
//!
//! Every xAPI rule lives in `xapi::document`; this module reads the request, hands the
//! update closure to the store (which runs it atomically against the current document)
//! and writes the response.
use crate::auth::Need;
use crate::departments::Department;
use crate::error::{XapiError, XapiResult};
use crate::http::{authenticate, body, version, AppState, Params};
use crate::store::DynStore;
use crate::xapi::document::{self as doc, DocTarget, Op, Preconditions, Resource};
use crate::xapi::{agent, validate};
use actix_web::http::header::{self, HeaderMap, HeaderName, HttpDate};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::time::{Duration, UNIX_EPOCH};

/// Registers the resources (inside the `/xapi` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(document_resource("/activities/state", Resource::State))
        .service(document_resource(
            "/activities/profile",
            Resource::ActivityProfile,
        ))
        .service(document_resource("/agents/profile", Resource::AgentProfile))
        .service(
            web::resource("/agents")
                .route(web::get().to(get_agent))
                .route(web::head().to(get_agent)),
        )
        .service(
            web::resource("/activities")
                .route(web::get().to(get_activity))
                .route(web::head().to(get_activity)),
        );
}

fn document_resource(path: &str, resource: Resource) -> actix_web::Resource {
    web::resource(path)
        .app_data(web::Data::new(resource))
        .route(web::get().to(get_document))
        .route(web::head().to(get_document))
        .route(web::put().to(write_document))
        .route(web::post().to(write_document))
        .route(web::delete().to(delete_document))
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn http_date(us: i64) -> HttpDate {
    let t = u64::try_from(us)
        .map(|us| UNIX_EPOCH + Duration::from_micros(us))
        .unwrap_or(UNIX_EPOCH);
    HttpDate::from(t)
}

/// The validated parameters of a document request.
pub(crate) fn target(req: &HttpRequest, resource: Resource, op: Op) -> XapiResult<DocTarget> {
    let params = Params::parse(req)?;
    let pairs: Vec<(&str, &str)> = params
        .names()
        .map(|n| (n, params.get(n).unwrap_or_default()))
        .collect();
    doc::parse_target(resource, op, version(req), &pairs)
}

/// All values of a header joined with `,` (RFC 9110 list syntax); 400 when not text.
fn header_list(headers: &HeaderMap, name: HeaderName) -> XapiResult<Option<String>> {
    let mut out: Option<String> = None;
    for v in headers.get_all(&name) {
        let s = v.to_str().map_err(|_| {
            XapiError::bad_request(format!("the {name} header is not valid text"))
                .at(name.as_str().to_owned())
        })?;
        match &mut out {
            Some(o) => {
                o.push(',');
                o.push_str(s);
            }
            None => out = Some(s.to_owned()),
        }
    }
    Ok(out)
}

fn read_need(resource: Resource) -> Need {
    match resource {
        Resource::State => Need::StateRead,
        _ => Need::ProfileRead,
    }
}

fn write_need(resource: Resource) -> Need {
    match resource {
        Resource::State => Need::StateWrite,
        _ => Need::ProfileWrite,
    }
}

/// GET/HEAD: one document (with ETag and Last-Modified), or the ids of the documents in
/// scope (optionally only those updated after `since`).
async fn get_document(
    req: HttpRequest,
    resource: web::Data<Resource>,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let resource = **resource;
    let cred = authenticate(&req, &state).await?;
    cred.require(read_need(resource))?;
    let target = target(&req, resource, Op::Get)?;
    read(&req, &state.store, &cred.department, resource, &target).await
}

/// What a GET/HEAD of `target` in `department` answers (also the cmi5 AU endpoint's).
pub(crate) async fn read(
    req: &HttpRequest,
    store: &DynStore,
    department: &Department,
    resource: Resource,
    target: &DocTarget,
) -> XapiResult<HttpResponse> {
    match target.key(department) {
        Some(key) => {
            let pre = preconditions(req)?;
            let document = store.get_document(&key).await?.ok_or_else(|| {
                XapiError::not_found(format!(
                    "no such document (`{}` = `{}`)",
                    resource.id_param(),
                    key.document_id
                ))
                .at(resource.id_param())
                .req("Communication 3.2 (404 Not Found)")
            })?;
            let etag = doc::quoted(&document.etag);
            let last_modified = http_date(document.updated_us);
            // A cache revalidating its copy: If-None-Match listing the current ETag.
            if pre
                .if_none_match
                .as_ref()
                .is_some_and(|n| n.matches(Some(&document)))
            {
                return Ok(HttpResponse::NotModified()
                    .insert_header((header::ETAG, etag))
                    .insert_header((header::LAST_MODIFIED, last_modified))
                    .finish());
            }
            Ok(HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, document.content_type.as_str()))
                .insert_header((header::ETAG, etag))
                .insert_header((header::LAST_MODIFIED, last_modified))
                .body(document.content))
        }
        None => {
            let ids = store
                .list_documents(department, &target.scope, target.since_us)
                .await?;
            let body = Value::from(ids).to_string();
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .insert_header((header::ETAG, doc::quoted(&doc::etag(body.as_bytes()))))
                .body(body))
        }
    }
}

/// PUT or POST, from the request's method.
pub(crate) fn write_op(req: &HttpRequest) -> Op {
    if req.method() == Method::PUT {
        Op::Put
    } else {
        Op::Post
    }
}

/// PUT (store/replace) and POST (create or merge) of one document; 204 with the new ETag.
async fn write_document(
    req: HttpRequest,
    payload: web::Payload,
    resource: web::Data<Resource>,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let resource = **resource;
    let op = write_op(&req);
    let cred = authenticate(&req, &state).await?;
    cred.require(write_need(resource))?;
    let target = target(&req, resource, op)?;
    let pre = preconditions(&req)?;
    let content = body(&req, payload, &state).await?;
    write(
        &req,
        &state.store,
        &cred.department,
        resource,
        &target,
        pre,
        content,
    )
    .await
}

/// The preconditions (If-Match / If-None-Match) of a request.
pub(crate) fn preconditions(req: &HttpRequest) -> XapiResult<Preconditions> {
    let m = header_list(req.headers(), header::IF_MATCH)?;
    let n = header_list(req.headers(), header::IF_NONE_MATCH)?;
    Ok(Preconditions::parse(m.as_deref(), n.as_deref()))
}

/// Stores `content` as `target` in `department` (PUT or POST after the request's method;
/// also the cmi5 AU endpoint's).
pub(crate) async fn write(
    req: &HttpRequest,
    store: &DynStore,
    department: &Department,
    resource: Resource,
    target: &DocTarget,
    pre: Preconditions,
    content: bytes::Bytes,
) -> XapiResult<HttpResponse> {
    let op = write_op(req);
    let content_type = match req.headers().get(header::CONTENT_TYPE) {
        Some(v) => v
            .to_str()
            .map_err(|_| {
                XapiError::bad_request("the Content-Type header is not valid text")
                    .at("Content-Type")
            })?
            .trim()
            .to_owned(),
        None => doc::DEFAULT_CONTENT_TYPE.to_owned(),
    };
    let content_type = if content_type.is_empty() {
        doc::DEFAULT_CONTENT_TYPE.to_owned()
    } else {
        content_type
    };
    let key = target
        .key(department)
        .ok_or_else(|| XapiError::internal("document request without a document id"))?;
    let update = match op {
        Op::Put => doc::put_update(resource, version(req), pre, content_type, content, now_us()),
        _ => doc::post_update(pre, content_type, content, now_us())?,
    };
    let stored = store.update_document(&key, update).await?;
    let mut res = HttpResponse::NoContent();
    if let Some(d) = stored {
        res.insert_header((header::ETAG, doc::quoted(&d.etag)));
    }
    Ok(res.finish())
}

/// DELETE of one document (honouring If-Match / If-None-Match), or — State only, without
/// `stateId` — of every document in the context.
async fn delete_document(
    req: HttpRequest,
    resource: web::Data<Resource>,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let resource = **resource;
    let cred = authenticate(&req, &state).await?;
    cred.require(write_need(resource))?;
    let target = target(&req, resource, Op::Delete)?;
    delete(&req, &state.store, &cred.department, &target).await
}

/// What a DELETE of `target` in `department` does (also the cmi5 AU endpoint's).
pub(crate) async fn delete(
    req: &HttpRequest,
    store: &DynStore,
    department: &Department,
    target: &DocTarget,
) -> XapiResult<HttpResponse> {
    match target.key(department) {
        Some(key) => {
            let pre = preconditions(req)?;
            store.update_document(&key, doc::delete_update(pre)).await?;
        }
        None => store.delete_documents(department, &target.scope).await?,
    }
    Ok(HttpResponse::NoContent().finish())
}

fn json_response(v: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(v.to_string())
}

/// GET /agents?agent=…: the Person object of an Agent (Communication 2.4).
async fn get_agent(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = authenticate(&req, &state).await?;
    cred.require(Need::DefinitionsRead)?;
    let params = Params::parse(&req)?;
    params.only(
        &["agent"],
        "Communication 3.2 (unrecognised parameters are rejected)",
    )?;
    let raw = params.required("agent", "Communication 2.4.s2.table1.row1")?;
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        XapiError::bad_request(format!("`agent` is not valid JSON: {e}"))
            .at("agent")
            .req("Communication 2.4.s2.table1.row1")
    })?;
    if value.get("objectType").and_then(Value::as_str) == Some("Group") {
        return Err(
            XapiError::bad_request("`agent` must be an Agent, not a Group")
                .at("agent")
                .req("Communication 2.4 (the agent parameter is an Agent, not a Group)"),
        );
    }
    doc::agent_value_key(
        &value,
        version(&req),
        "agent",
        "Communication 2.4.s2.table1.row1",
    )?;
    Ok(json_response(&agent::person(&value)))
}

/// GET /activities?activityId=…: the Activity with its canonical definition (Communication
/// 2.5); an Activity object with only its id when the LRS knows no definition.
async fn get_activity(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = authenticate(&req, &state).await?;
    cred.require(Need::DefinitionsRead)?;
    let params = Params::parse(&req)?;
    params.only(
        &["activityId"],
        "Communication 3.2 (unrecognised parameters are rejected)",
    )?;
    let id = params.required("activityId", "Communication 2.5.s1.table1.row1")?;
    if !validate::is_valid_iri(id) {
        return Err(XapiError::bad_request("`activityId` must be an IRI")
            .at("activityId")
            .req("Communication 2.5.s1.table1.row1"));
    }
    let mut activity = json!({ "objectType": "Activity", "id": id });
    let copies = state.store.get_activity_definitions(id).await?;
    if let Some(def) = doc::visible_definition(&cred.department, copies) {
        if def.as_object().is_some_and(|d| !d.is_empty()) {
            activity["definition"] = def;
        }
    }
    Ok(json_response(&activity))
}
