//! The admin API under `/admin` (not xAPI: no version header needed): the departments
//! below the caller's and the credentials within its subtree. Every route needs a
//! credential with the `admin` scope. The rules live in `crate::admin`; this module reads
//! the request and writes the response.
use super::{authenticate, body, AppState, Params};
use crate::admin::{self, NewCredential};
use crate::auth::Credential;
use crate::error::{pointer_token, XapiError, XapiResult};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

/// Registers the admin resources.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .service(
                web::resource("/departments")
                    .route(web::get().to(list_departments))
                    .route(web::post().to(create_department)),
            )
            .service(
                web::resource("/departments/{path:.*}")
                    .route(web::patch().to(change_department))
                    .route(web::delete().to(remove_department)),
            )
            .service(
                web::resource("/credentials")
                    .route(web::get().to(list_credentials))
                    .route(web::post().to(create_credential)),
            )
            .service(web::resource("/credentials/{key}").route(web::delete().to(revoke_credential)))
            .service(web::resource("/agents").route(web::delete().to(erase_agent)))
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> XapiResult<HttpResponse> {
    Err(XapiError::not_found("no such admin resource"))
}

/// The authenticated caller, which must have the `admin` scope.
pub(super) async fn administrator(req: &HttpRequest, state: &AppState) -> XapiResult<Credential> {
    let cred = authenticate(req, state).await?;
    admin::require_admin(&cred)?;
    Ok(cred)
}

/// The prologue of an admin call without query parameters: an administrator, and 400
/// for any parameter.
pub(super) async fn admin_call(req: &HttpRequest, state: &AppState) -> XapiResult<Credential> {
    let cred = administrator(req, state).await?;
    params(req, &[])?;
    Ok(cred)
}

/// As `admin_call`, with a JSON object body whose members are from `fields` only.
pub(super) async fn admin_json(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    fields: &[&str],
) -> XapiResult<(Credential, Map<String, Value>)> {
    let cred = admin_call(req, state).await?;
    let map = object(&body(req, payload, state).await?, fields)?;
    Ok((cred, map))
}

pub(super) fn json_response(b: &mut actix_web::HttpResponseBuilder, v: &Value) -> HttpResponse {
    b.content_type("application/json").body(v.to_string())
}

/// 400 for any query parameter not in `allowed`.
pub(super) fn params(req: &HttpRequest, allowed: &[&str]) -> XapiResult<Params> {
    let params = Params::parse(req)?;
    if let Some(n) = params.names().find(|n| !allowed.contains(n)) {
        return Err(XapiError::bad_request(format!("unknown parameter `{n}`")).at(n.to_owned()));
    }
    Ok(params)
}

/// A JSON pointer to member `name` of the body (RFC 6901 escaping).
pub(super) fn pointer(name: &str) -> String {
    format!("/{}", pointer_token(name))
}

/// The request body: a JSON object with members from `allowed` only.
pub(super) fn object(bytes: &[u8], allowed: &[&str]) -> XapiResult<Map<String, Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(XapiError::bad_request(
            "the body must be a JSON object (Content-Type: application/json)",
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| XapiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(XapiError::bad_request("the body must be a JSON object").at(""));
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(XapiError::bad_request(format!(
            "unknown field `{k}` (allowed: {})",
            allowed.join(", ")
        ))
        .at(pointer(k)));
    }
    Ok(map)
}

/// Member `name` as a string; `None` when absent or null.
pub(super) fn string(map: &Map<String, Value>, name: &str) -> XapiResult<Option<String>> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => {
            Err(XapiError::bad_request(format!("`{name}` must be a string")).at(pointer(name)))
        }
    }
}

fn required(map: &Map<String, Value>, name: &str) -> XapiResult<String> {
    string(map, name)?.ok_or_else(|| {
        XapiError::bad_request(format!("missing required field `{name}`")).at(pointer(name))
    })
}

/// `scopes`: an array of scope names or one string `"a,b"`.
fn scopes(map: &Map<String, Value>) -> XapiResult<Vec<String>> {
    match map.get("scopes") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(crate::auth::scope_list(s)),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    XapiError::bad_request("each scope must be a string").at(format!("/scopes/{i}"))
                })
            })
            .collect(),
        Some(_) => Err(XapiError::bad_request(
            "`scopes` must be an array of scope names or a comma-separated string",
        )
        .at("/scopes")),
    }
}

/// GET /admin/departments: the caller's department, then those below it.
async fn list_departments(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let cred = admin_call(&req, &state).await?;
    let list = admin::list_departments(&state.store, &cred.department).await?;
    let list: Vec<Value> = list.iter().map(|d| d.to_json()).collect();
    Ok(json_response(
        &mut HttpResponse::Ok(),
        &json!({ "departments": list }),
    ))
}

/// POST /admin/departments `{"path": "moe/dhe"}` → 201 and the department.
async fn create_department(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let (cred, map) = admin_json(&req, payload, &state, &["path"]).await?;
    let path = required(&map, "path")?;
    let created = admin::create_department(&state.store, &cred.department, &path).await?;
    Ok(json_response(
        &mut HttpResponse::Created(),
        &created.to_json(),
    ))
}

/// PATCH /admin/departments/{path} `{"limits": {"requests": {"perSecond": 50, "burst":
/// 100}, "statements": null}}` → 200 and the department. The limits apply in this process
/// at once and in others sharing the store within `quota::REFRESH`.
async fn change_department(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let (cred, map) = admin_json(&req, payload, &state, &["limits"]).await?;
    let Some(limits) = map.get("limits") else {
        return Err(XapiError::bad_request("`limits` is required").at("/limits"));
    };
    let path = req.match_info().query("path");
    let changed =
        admin::set_department_limits(&state.store, &cred.department, path, limits).await?;
    state
        .quotas
        .set_department_limits(admin::department_limits(&state.store).await?);
    Ok(json_response(&mut HttpResponse::Ok(), &changed.to_json()))
}

/// DELETE /admin/departments/{path}[?force=true] → 204.
async fn remove_department(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let cred = administrator(&req, &state).await?;
    let params = params(&req, &["force"])?;
    let force = match params.get("force") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(XapiError::bad_request("`force` must be `true` or `false`").at("force"))
        }
    };
    let path = req.match_info().query("path");
    admin::remove_department(&state.store, &cred.department, path, force).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// GET /admin/credentials: the credentials of the caller's subtree (no secrets).
async fn list_credentials(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let cred = admin_call(&req, &state).await?;
    let list = admin::list_credentials(&state.store, &cred.department).await?;
    let list: Vec<Value> = list.iter().map(|c| c.to_json()).collect();
    Ok(json_response(
        &mut HttpResponse::Ok(),
        &json!({ "credentials": list }),
    ))
}

/// POST /admin/credentials `{"name", "scopes", "department"?}` → 201 with key and secret.
async fn create_credential(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let (cred, map) = admin_json(&req, payload, &state, &["name", "scopes", "department"]).await?;
    let request = NewCredential {
        name: required(&map, "name")?,
        scopes: scopes(&map)?,
        department: string(&map, "department")?,
    };
    let issued = admin::create_credential(&state.store, &cred.department, request).await?;
    // The only answer carrying the secret: never cached.
    Ok(json_response(
        HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")),
        &issued.to_json(),
    ))
}

/// DELETE /admin/credentials/{key} → 204.
async fn revoke_credential(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let cred = admin_call(&req, &state).await?;
    let key = req.match_info().query("key");
    admin::revoke_credential(&state.store, &cred.department, key).await?;
    // Its console sessions end now, not at their next check.
    state.auth.sessions().close_all_of(key);
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /admin/agents?agent=…[&department=…][&reference=…]`: erases a person's
/// records within the caller's subtree and answers with the erasure receipt.
async fn erase_agent(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = administrator(&req, &state).await?;
    let p = params(&req, &["agent", "department", "reference"])?;
    let agent = p
        .get("agent")
        .ok_or_else(|| XapiError::bad_request("agent (Agent JSON) is required").at("agent"))?;
    let outcome = admin::erase_agent(
        &state.store,
        &cred.department,
        cred.authority.clone(),
        admin::EraseRequest {
            agent: agent.to_owned(),
            department: p.get("department").map(str::to_owned),
            reference: p.get("reference").map(str::to_owned),
        },
    )
    .await?;
    state.audit.wake();
    Ok(json_response(&mut HttpResponse::Ok(), &outcome.to_json()))
}
