//! Content packages on the LRS's own origin (docs/SCORM.md): `/scorm/packages` upload,
//! list, read, delete, and launch. Scope `content` or `admin`; the packages of the
//! caller's subtree only. The package files themselves are never served here: the player
//! and the content live on the content origin (`http::player`).
use super::admin::{json_response, object, params, pointer, string};
use super::{authenticate, read_payload, AppState};
use crate::auth::{Credential, Need};
use crate::departments;
use crate::error::{XapiError, XapiResult};
use crate::launcher::{self, ContentSettings, LaunchRequest};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/scorm/packages")
            .route(web::get().to(list))
            .route(web::post().to(upload)),
    )
    .service(
        web::resource("/scorm/packages/{id}")
            .route(web::get().to(get))
            .route(web::delete().to(remove)),
    )
    .service(web::resource("/scorm/packages/{id}/launch").route(web::post().to(launch)));
}

async fn content_manager(req: &HttpRequest, state: &AppState) -> XapiResult<Credential> {
    let cred = authenticate(req, state).await?;
    cred.require(Need::Content)?;
    Ok(cred)
}

fn settings(req: &HttpRequest) -> XapiResult<web::Data<ContentSettings>> {
    req.app_data::<web::Data<ContentSettings>>()
        .cloned()
        .ok_or_else(|| XapiError::unavailable("content packages are not served by this process"))
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// POST /scorm/packages[?department=P]: the zip as the body → 201 with the package.
async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let cred = content_manager(&req, &state).await?;
    let settings = settings(&req)?;
    let p = params(&req, &["department"])?;
    let department =
        departments::narrowed(&cred.department, p.get("department")).ok_or_else(|| {
            XapiError::forbidden("`department` is not this credential's department or one below it")
                .at("department")
        })?;
    if !state
        .store
        .department_exists(&department)
        .await
        .map_err(XapiError::from)?
    {
        return Err(XapiError::forbidden(
            "`department` is not this credential's department or one below it",
        )
        .at("department"));
    }
    let limit = settings.max_upload_bytes;
    let zip = read_payload(payload.into_inner(), req.headers(), limit).await?;
    let (record, package) =
        launcher::upload(&state.store, &department, &zip, &settings, now_us()).await?;
    let mut body = launcher::describe(&record, &package.manifest, &settings.activity_base);
    body["missingLaunchFiles"] = json!(package.missing_launch_files);
    Ok(json_response(
        HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/scorm/packages/{}", record.id))),
        &body,
    ))
}

/// GET /scorm/packages: the packages of the caller's subtree.
async fn list(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = content_manager(&req, &state).await?;
    params(&req, &[])?;
    let records = launcher::list(&state.store, &cred.department).await?;
    let packages: Vec<Value> = records
        .iter()
        .map(|r| {
            let kind = serde_json::from_str::<Value>(&r.manifest)
                .ok()
                .and_then(|m| m["kind"].as_str().map(str::to_owned))
                .unwrap_or_default();
            json!({
                "id": r.id,
                "title": r.title,
                "kind": kind,
                "department": if r.department.is_root() { "/" } else { r.department.as_str() },
                "files": r.file_count,
                "size": r.size,
                "created": crate::xapi::statement::format_us(r.created_us),
            })
        })
        .collect();
    Ok(json_response(
        HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")),
        &json!({ "packages": packages }),
    ))
}

/// GET /scorm/packages/{id}.
async fn get(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = content_manager(&req, &state).await?;
    let settings = settings(&req)?;
    params(&req, &[])?;
    let id = req.match_info().query("id");
    let (record, manifest) = launcher::load(&state.store, &cred.department, id).await?;
    Ok(json_response(
        HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")),
        &launcher::describe(&record, &manifest, &settings.activity_base),
    ))
}

/// DELETE /scorm/packages/{id} → 204 (its launches stop working).
async fn remove(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = content_manager(&req, &state).await?;
    params(&req, &[])?;
    let id = req.match_info().query("id");
    launcher::remove(&state.store, &cred.department, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /scorm/packages/{id}/launch {actor, registration?, sco?} → 201 with the URL to
/// open (the player page for SCORM, the AU's launch URL for cmi5), whose token is shown
/// only here.
async fn launch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> XapiResult<HttpResponse> {
    let cred = content_manager(&req, &state).await?;
    let settings = settings(&req)?;
    params(&req, &[])?;
    let map = object(
        &super::body(&req, payload, &state).await?,
        &["actor", "registration", "sco"],
    )?;
    let actor = map.get("actor").cloned().ok_or_else(|| {
        XapiError::bad_request("missing required field `actor`").at(pointer("actor"))
    })?;
    let registration = match string(&map, "registration")? {
        None => None,
        Some(r) => Some(uuid::Uuid::parse_str(&r).map_err(|_| {
            XapiError::bad_request("`registration` must be a UUID").at(pointer("registration"))
        })?),
    };
    let request = LaunchRequest {
        actor,
        registration,
        item: string(&map, "sco")?,
    };
    let id = req.match_info().query("id").to_owned();
    let launched = launcher::launch(
        &state.store,
        &state.clock,
        &cred.department,
        &cred.authority,
        &id,
        request,
        &settings,
        now_us(),
    )
    .await?;
    // A cmi5 launch stored statements (`launched`, `abandoned`).
    state.audit.wake();
    let s = &launched.session;
    let mut body = json!({
        "session": s.id,
        "kind": s.kind,
        "registration": s.registration,
        "sco": s.item,
        "activityId": s.activity_id,
        "courseActivityId": s.course_iri,
        "playerUrl": launched.player_url,
        "expires": crate::xapi::statement::format_us(launched.expires_us),
    });
    if let Some(m) = launched.launch_method {
        body["launchMethod"] = json!(m);
    }
    Ok(json_response(
        HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")),
        &body,
    ))
}
