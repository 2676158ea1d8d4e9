//! The forwarding rules under `/admin/forwarding` (docs/FORWARDING.md): create, list,
//! read, remove. Admin scope; the rules of the caller's subtree only. The rules live in
//! `crate::forwarding` and `crate::forwarder`; this module reads the request and writes
//! the response.
use super::admin::{admin_call, admin_json, json_response, pointer, string};
use super::AppState;
use crate::error::{XapiError, XapiResult};
use crate::forwarder;
use crate::forwarding::NewRule;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

/// Fields of `POST /admin/forwarding`.
const FIELDS: [&str; 7] = [
    "department",
    "verbs",
    "activities",
    "target",
    "authorization",
    "xapiVersion",
    "batchSize",
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/forwarding")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/admin/forwarding/{id}")
            .route(web::get().to(get))
            .route(web::delete().to(remove)),
    );
}

/// Member `name` as a list of strings (absent or null: empty).
fn strings(map: &Map<String, Value>, name: &str) -> XapiResult<Vec<String>> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    XapiError::bad_request(format!("each of `{name}` must be a string"))
                        .at(format!("{}/{i}", pointer(name)))
                })
            })
            .collect(),
        Some(_) => Err(
            XapiError::bad_request(format!("`{name}` must be an array of IRIs")).at(pointer(name)),
        ),
    }
}

/// POST /admin/forwarding → 201 with the rule and its HMAC `secret` (shown only here).
async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let (cred, map) = admin_json(&req, payload, &state, &FIELDS).await?;
    let batch_size = match map.get("batchSize") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            XapiError::bad_request("`batchSize` must be an integer").at("/batchSize")
        })?),
    };
    let request = NewRule {
        department: string(&map, "department")?,
        verbs: strings(&map, "verbs")?,
        activities: strings(&map, "activities")?,
        target: string(&map, "target")?,
        authorization: string(&map, "authorization")?,
        xapi_version: string(&map, "xapiVersion")?,
        batch_size,
    };
    let created = forwarder::create(&state.store, &cred.department, request).await?;
    Ok(json_response(
        HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")),
        &created.to_json(),
    ))
}

/// GET /admin/forwarding: the rules of the caller's subtree, with their delivery state.
async fn list(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = admin_call(&req, &state).await?;
    let rules = forwarder::list(&state.store, &cred.department).await?;
    let size = forwarder::log_size(&state.store).await?;
    let rules: Vec<Value> = rules.iter().map(|r| forwarder::to_json(r, size)).collect();
    Ok(json_response(
        HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")),
        &json!({ "rules": rules, "logSize": size }),
    ))
}

/// GET /admin/forwarding/{id}.
async fn get(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = admin_call(&req, &state).await?;
    let id = req.match_info().query("id");
    let rule = forwarder::get(&state.store, &cred.department, id).await?;
    let size = forwarder::log_size(&state.store).await?;
    Ok(json_response(
        HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")),
        &forwarder::to_json(&rule, size),
    ))
}

/// DELETE /admin/forwarding/{id} → 204.
async fn remove(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = admin_call(&req, &state).await?;
    let id = req.match_info().query("id");
    forwarder::remove(&state.store, &cred.department, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
