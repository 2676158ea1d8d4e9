//! The audit log over HTTP (`/audit`, not xAPI: no version header). Public and
//! cacheable: the checkpoint, the verifier key and the tiles (c2sp.org/tlog-tiles), which
//! hold only hashes and commitments. For readers who may see the statement: its proof
//! (c2sp.org/tlog-proof@v1 plus what recomputes the leaf), a leaf's statement (monitors),
//! consistency proofs. Formats: docs/AUDIT.md.
use super::statements::reading_department;
use super::{authenticate, AppState, Params};
use crate::audit::merkle::Hash;
use crate::audit::tiles::Tile;
use crate::auth::{Credential, Need};
use crate::departments::{self, Department};
use crate::error::{XapiError, XapiResult};
use crate::store::StoredStatement;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/audit")
            .route("/checkpoint", web::get().to(checkpoint))
            .route("/vkey", web::get().to(vkey))
            .route("/status", web::get().to(status))
            .route("/tile/{rest:.*}", web::get().to(tile))
            .route("/proof", web::get().to(proof))
            .route("/leaf", web::get().to(leaf))
            .route("/consistency", web::get().to(consistency))
            .route("/certificate", web::get().to(certificate))
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> XapiResult<HttpResponse> {
    Err(XapiError::not_found("no such audit resource"))
}

/// 503 with `Retry-After`: the statement is stored but not yet in a signed checkpoint.
fn not_yet(message: &str) -> HttpResponse {
    let mut r = XapiError::unavailable(message).error_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

async fn checkpoint(state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let Some((_, note)) = state.audit.checkpoint() else {
        return Ok(not_yet("the log has not signed its first checkpoint yet"));
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        // It changes as the log grows: always ask again.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(note))
}

async fn vkey(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!("{}\n", state.audit.vkey()))
}

async fn status(state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let log = state.store.log_state().await?;
    let (samples, p50, p99, max) = state.audit.merge_delays();
    Ok(HttpResponse::Ok().json(json!({
        "origin": state.audit.origin(),
        "treeSize": log.size,
        "checkpointSize": state.audit.checkpoint().map(|(s, _)| s),
        "maximumMergeDelayMs": crate::auditlog::MAX_MERGE_DELAY_MS,
        "mergeDelayMs": { "samples": samples, "p50": p50, "p99": p99, "max": max },
    })))
}

async fn tile(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let rest = req.match_info().get("rest").unwrap_or("");
    let tile = Tile::parse_path(&format!("tile/{rest}"))
        .map_err(|e| XapiError::not_found(e.to_string()))?;
    let Some(bytes) = state.audit.tile(&tile).await? else {
        return Err(XapiError::not_found(
            "the log's latest checkpoint does not cover this tile",
        ));
    };
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        // A tile's bytes never change (a partial tile of width W stays that tile).
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(bytes))
}

/// The statement `id` as `reader` may see it: (department, record) or 404.
async fn visible_statement(
    state: &AppState,
    cred: &Credential,
    reader: &Department,
    id: &str,
) -> XapiResult<(Department, StoredStatement)> {
    let copies = state.store.get_statement_copies(id).await?;
    let found = departments::nearest(
        reader,
        copies
            .into_iter()
            .map(|s| (departments::split_record_key(&s.id).1, s)),
    );
    let (dept, s) = found.ok_or_else(|| XapiError::not_found("no statement with that id"))?;
    if cred.reads_only_mine() && !authored_by(&s.json, cred) {
        return Err(XapiError::not_found("no statement with that id"));
    }
    Ok((dept, s))
}

/// Whether the statement's authority is the credential's (`statements/read/mine`).
fn authored_by(json: &str, cred: &Credential) -> bool {
    let value: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    crate::xapi::agent::is_authority_of(&cred.authority, &value)
}

fn statement_value(s: &StoredStatement) -> XapiResult<Value> {
    serde_json::from_str(&s.json).map_err(|e| XapiError::internal(e.to_string()))
}

async fn proof(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = authenticate(&req, &state).await?;
    cred.require(Need::StatementsRead)?;
    let params = Params::parse(&req)?;
    params.only(&["statementId"], "docs/AUDIT.md")?;
    let id = params
        .get("statementId")
        .ok_or_else(|| XapiError::bad_request("statementId is required").at("statementId"))?;
    let reader = reading_department(&req, &cred)?;
    let (department, s) = visible_statement(&state, &cred, &reader, id).await?;
    let log = state
        .store
        .statement_log(&s.id)
        .await?
        .ok_or_else(|| XapiError::not_found("no statement with that id"))?;
    let (Some(index), Some(salt)) = (log.leaf, log.salt) else {
        return Ok(not_yet("the statement is not in the log yet"));
    };
    let Some((size, note)) = state.audit.checkpoint().filter(|(size, _)| *size > index) else {
        return Ok(not_yet("the statement is not in a signed checkpoint yet"));
    };
    let hashes = state
        .audit
        .inclusion_proof(index, size)
        .await
        .map_err(XapiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "statementId": id,
            "department": department.as_str(),
            "leafIndex": index,
            "salt": hex::encode(salt),
            "statement": statement_value(&s)?,
            "proof": crate::audit::certificate::TlogProof {
                index,
                proof: hashes,
                checkpoint: note,
            }
            .to_text(),
        })))
}

async fn leaf(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = authenticate(&req, &state).await?;
    cred.require(Need::StatementsRead)?;
    let params = Params::parse(&req)?;
    params.only(&["index"], "docs/AUDIT.md")?;
    let index: u64 = params
        .get("index")
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| XapiError::bad_request("index must be a leaf index").at("index"))?;
    let reader = reading_department(&req, &cred)?;
    let gone =
        || XapiError::not_found("no statement at that leaf (or not one this credential may read)");
    let (key, s, salt) = state
        .store
        .statement_at_leaf(index)
        .await?
        .ok_or_else(gone)?;
    let (id, department) = departments::split_record_key(&key);
    if !department.is_within(&reader) || (cred.reads_only_mine() && !authored_by(&s.json, &cred)) {
        return Err(gone());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "leafIndex": index,
            "statementId": id,
            "department": department.as_str(),
            "salt": hex::encode(salt),
            "statement": statement_value(&s)?,
        })))
}

async fn consistency(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = authenticate(&req, &state).await?;
    cred.require(Need::StatementsRead)?;
    let params = Params::parse(&req)?;
    params.only(&["old", "new"], "docs/AUDIT.md")?;
    let size = |name: &str| -> XapiResult<u64> {
        params
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| XapiError::bad_request(format!("{name} must be a tree size")).at(name))
    };
    let (old, new) = (size("old")?, size("new")?);
    let published = state.audit.checkpoint().map_or(0, |(s, _)| s);
    if old == 0 || old > new || new > published {
        return Err(XapiError::bad_request(format!(
            "a consistency proof needs 0 < old ≤ new ≤ {published} (the latest checkpoint)"
        )));
    }
    let hashes = state
        .audit
        .consistency_proof(old, new)
        .await
        .map_err(XapiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ))
        .json(json!({
            "old": old,
            "new": new,
            "proof": hashes.iter().map(Hash::to_base64).collect::<Vec<_>>(),
        })))
}

/// Most completion statements one certificate carries (the earliest ones).
const MAX_CERTIFIED: usize = 20;
/// Statements of the person and activity read per page, and pages at most, while looking
/// for completions (the earliest first).
const PAGE: usize = 200;
const MAX_PAGES: usize = 50;

/// `GET /audit/certificate?agent=…&activity=…`: one file that proves, offline, that the
/// agent completed (or passed) the activity: the statements, their salts and inclusion
/// proofs, the checkpoint, the verifier key and an Open Badges 3.0 credential (VC-JWT).
/// Only statements the caller may read, and not voided (queries skip voided ones).
async fn certificate(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    use crate::audit::certificate::{self, CertifiedStatement};
    use crate::audit::leaf::Salt;
    use crate::xapi::query::{self, PageLimits, StatementsGet};
    let cred = authenticate(&req, &state).await?;
    cred.require(Need::StatementsRead)?;
    let params = Params::parse(&req)?;
    params.only(&["agent", "activity"], "docs/AUDIT.md section 7")?;
    let agent_text = params
        .get("agent")
        .ok_or_else(|| XapiError::bad_request("agent (Agent JSON) is required").at("agent"))?;
    let activity = params
        .get("activity")
        .ok_or_else(|| XapiError::bad_request("activity (an IRI) is required").at("activity"))?;
    let agent: Value = serde_json::from_str(agent_text)
        .map_err(|e| XapiError::bad_request(format!("agent is not JSON: {e}")).at("agent"))?;
    let reader = reading_department(&req, &cred)?;
    let mine = cred.reads_only_mine().then_some(&cred.authority);
    let pages = PageLimits {
        default: PAGE,
        max: PAGE,
    };
    let pairs: Vec<(String, String)> = [
        ("agent", agent_text),
        ("activity", activity),
        ("ascending", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // The same validation (and 400s) as GET /statements with these filters. One query for
    // the person and the activity, verbs checked here: one index scan instead of one per
    // verb.
    let StatementsGet::Query { mut query, .. } =
        query::parse(&pairs, crate::xapi::XapiVersion::V2_0, &pages, mine)?
    else {
        return Err(XapiError::internal("a filtered query became a single read"));
    };
    query.within(&reader);
    query.limit = PAGE;
    let mut completions = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = state.store.query_statements(&query).await?;
        let full = page.len() == PAGE;
        query.after = page.last().map(|s| (s.stored_us, s.id.clone()));
        for s in page {
            let value = statement_value(&s)?;
            if certificate::shows_completion(&value, &agent, activity) {
                completions.push((s, value));
            }
        }
        if !full || completions.len() >= MAX_CERTIFIED {
            break;
        }
    }
    if completions.is_empty() {
        return Err(XapiError::not_found(
            "no completion of that activity by that agent (completed or passed, not voided) that this credential may read",
        ));
    }
    completions.sort_by_key(|(s, _)| s.stored_us);
    completions.truncate(MAX_CERTIFIED);
    let Some((size, note)) = state.audit.checkpoint() else {
        return Ok(not_yet("the log has not signed its first checkpoint yet"));
    };
    let mut certified = Vec::new();
    for (s, value) in completions {
        let Some(log) = state.store.statement_log(&s.id).await? else {
            continue;
        };
        let (Some(index), Some(salt)) = (log.leaf, log.salt) else {
            continue;
        };
        if index >= size {
            continue;
        }
        let proof = state
            .audit
            .inclusion_proof(index, size)
            .await
            .map_err(XapiError::internal)?;
        certified.push(CertifiedStatement {
            statement: value,
            salt: Salt::from_bytes(salt),
            department: departments::split_record_key(&s.id).1,
            leaf_index: index,
            proof,
        });
    }
    if certified.is_empty() {
        return Ok(not_yet("the completion is not in a signed checkpoint yet"));
    }
    let info = req.connection_info();
    let issuer = format!("{}://{}", info.scheme(), info.host());
    let file = certificate::build(
        &agent,
        activity,
        &certified,
        &note,
        state.audit.signer(),
        &issuer,
        chrono::Utc::now().timestamp_micros(),
    )
    .map_err(|e| match e {
        certificate::CertificateError::Agent | certificate::CertificateError::Activity => {
            XapiError::bad_request(format!("no certificate can be made: {e}"))
        }
        // What the store holds does not check out against the log: never certified.
        other => {
            tracing::error!("audit: a certificate failed its own checks: {other}");
            XapiError::internal(format!("no certificate can be made: {other}"))
        }
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"completion-certificate.json\"",
        ))
        .body(file))
}
