//! The Statements resource (Communication 2.1): PUT, POST, GET, HEAD.
use super::{authenticate, body, version, AppState, Params};
use crate::auth::{Credential, Need};
use crate::departments::{self, Department};
use crate::error::{XapiError, XapiResult};
use crate::ingest;
use crate::store::StoredStatement;
use crate::xapi::multipart::{self, AttachmentContent};
use crate::xapi::query::{self, PageLimits, StatementsGet};
use crate::xapi::statement::{self, format_us, http_date, Format, Receipt};
use crate::xapi::{document, signature, XapiVersion};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::Value;
use std::collections::HashMap;

const CONSISTENT_THROUGH: &str = "x-experience-api-consistent-through";
/// Narrows a statement read to a department within the credential's subtree; names, in a
/// single-statement answer, the department the statement belongs to.
pub const DEPARTMENT_HEADER: &str = "x-department";

/// The department whose subtree a statement read covers: the credential's, or the one the
/// `X-Department` header names within it. Outside it, or malformed: 403, the same whether
/// or not such a department exists.
pub(super) fn reading_department(req: &HttpRequest, cred: &Credential) -> XapiResult<Department> {
    let requested = match req.headers().get(DEPARTMENT_HEADER) {
        None => None,
        // Not text: as malformed as a bad path.
        Some(v) => Some(v.to_str().unwrap_or("\u{0}")),
    };
    departments::narrowed(&cred.department, requested).ok_or_else(|| {
        XapiError::forbidden(format!(
            "`X-Department` must name a department within this credential's, `{}`",
            cred.department
        ))
        .at("X-Department")
    })
}

/// Every Statements response, errors included, says how far reads are consistent
/// (Communication 2.1.3.s2.b4): the store's answer, taken before the request's own reads.
pub(crate) fn respond(
    consistent_through_us: i64,
    result: XapiResult<HttpResponse>,
) -> HttpResponse {
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => e.error_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&format_us(consistent_through_us)) {
        resp.headers_mut()
            .insert(header::HeaderName::from_static(CONSISTENT_THROUGH), v);
    }
    resp
}

pub async fn put(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let through = state.clock.consistent_through_us();
    respond(through, put_inner(&req, payload, &state).await)
}

pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let through = state.clock.consistent_through_us();
    respond(through, post_inner(&req, payload, &state).await)
}

pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let through = state.clock.consistent_through_us();
    respond(through, get_inner(&req, &state).await)
}

fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The statements (and attachment contents) a PUT or POST carries.
fn read_statements(
    ct: &str,
    raw: &[u8],
    version: XapiVersion,
) -> XapiResult<(Value, Vec<AttachmentContent>)> {
    let (statements, attachments) = if let Some(boundary) = multipart::boundary(ct) {
        let parts = multipart::parse(raw, &boundary)?;
        multipart::statements_request(parts, version)?
    } else {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime.starts_with("multipart/") {
            return Err(XapiError::bad_request(
                "multipart requests must be multipart/mixed with a boundary",
            )
            .req("Communication 1.5.2"));
        }
        if !mime.is_empty() && mime != "application/json" {
            return Err(XapiError::bad_request(format!(
                "statements must be sent as application/json or multipart/mixed, not `{mime}`"
            ))
            .req("Communication 1.5"));
        }
        let v: Value = serde_json::from_slice(raw).map_err(|e| {
            XapiError::bad_request(format!("body is not valid JSON: {e}")).req("Data 2.2.s1")
        })?;
        multipart::check_attachments_without_parts(&v, version)?;
        (v, Vec::new())
    };
    signature::verify_signed_statements(&statements, &attachments, version)?;
    Ok((statements, attachments))
}

async fn put_inner(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> XapiResult<HttpResponse> {
    let cred = authenticate(req, state).await?;
    cred.require(Need::StatementsWrite)?;
    let v = version(req);
    let id = put_statement_id(req)?;
    let raw = body(req, payload, state).await?;
    let (statement, attachments) = put_statement(req, &raw, v, &id)?;
    crate::http::rate_limit(state, &cred, 1)?;
    store_statements(vec![statement], false, attachments, &cred, v, state).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The `statementId` of a PUT (its only parameter), checked before the body is read.
pub(crate) fn put_statement_id(req: &HttpRequest) -> XapiResult<String> {
    let params = Params::parse(req)?;
    params.only(&["statementId"], "Communication 2.1.1")?;
    let id = params
        .required("statementId", "Communication 2.1.1.s1")?
        .to_owned();
    if !crate::xapi::validate::is_valid_uuid(&id) {
        return Err(XapiError::bad_request("`statementId` must be a UUID")
            .at("statementId")
            .req("Communication 2.1.1"));
    }
    Ok(id)
}

/// The statement a PUT carries, with the `statementId` as its id, and its attachments.
pub(crate) fn put_statement(
    req: &HttpRequest,
    raw: &[u8],
    v: XapiVersion,
    id: &str,
) -> XapiResult<(Value, Vec<AttachmentContent>)> {
    let (mut statement, attachments) = read_statements(&content_type(req), raw, v)?;
    let obj = statement.as_object_mut().ok_or_else(|| {
        XapiError::bad_request("PUT takes exactly one statement object").req("Communication 2.1.1")
    })?;
    match obj.get("id") {
        None => {
            obj.insert("id".into(), Value::from(id));
        }
        Some(Value::String(given)) if given.eq_ignore_ascii_case(id) => {}
        Some(_) => {
            return Err(XapiError::bad_request(
                "the statement's id differs from the statementId parameter",
            )
            .at("/id")
            .req("Communication 2.1.1.s1"));
        }
    }
    Ok((statement, attachments))
}

async fn post_inner(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> XapiResult<HttpResponse> {
    let cred = authenticate(req, state).await?;
    cred.require(Need::StatementsWrite)?;
    let v = version(req);
    post_params(req)?;
    let raw = body(req, payload, state).await?;
    let (list, batch, attachments) = post_statements(req, &raw, v)?;
    // Counted before anything is stored: a batch over the allowance is refused whole.
    crate::http::rate_limit(state, &cred, list.len())?;
    let ids = store_statements(list, batch, attachments, &cred, v, state).await?;
    Ok(post_answer(&ids))
}

/// A POST takes no parameter.
pub(crate) fn post_params(req: &HttpRequest) -> XapiResult<()> {
    Params::parse(req)?.only(&[], "Communication 2.1.2")
}

/// The statements a POST carries: the list, whether the body was an array, attachments.
pub(crate) fn post_statements(
    req: &HttpRequest,
    raw: &[u8],
    v: XapiVersion,
) -> XapiResult<(Vec<Value>, bool, Vec<AttachmentContent>)> {
    let (statements, attachments) = read_statements(&content_type(req), raw, v)?;
    let (list, batch) = match statements {
        Value::Array(list) => (list, true),
        obj @ Value::Object(_) => (vec![obj], false),
        _ => {
            return Err(
                XapiError::bad_request("expected a statement or an array of statements")
                    .req("Communication 2.1.2"),
            )
        }
    };
    if list.is_empty() {
        return Err(
            XapiError::bad_request("an empty batch stores nothing").req("Communication 2.1.2")
        );
    }
    Ok((list, batch, attachments))
}

/// The answer to a POST: the ids, in order.
pub(crate) fn post_answer(ids: &[String]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(Value::from(ids).to_string())
}

/// Prepares and stores statements atomically (`ingest`).
async fn store_statements(
    list: Vec<Value>,
    batch: bool,
    attachments: Vec<AttachmentContent>,
    cred: &crate::auth::Credential,
    v: XapiVersion,
    state: &AppState,
) -> XapiResult<Vec<String>> {
    let writer = ingest::Writer {
        store: &state.store,
        clock: &state.clock,
        department: &cred.department,
        receipt: Receipt {
            version: v,
            authority: &cred.authority,
            may_define: cred.may_define(),
        },
    };
    let stored = writer
        .store(list, batch, attachments, ingest::Mode::Atomic)
        .await?;
    state
        .metrics
        .statements_stored((stored.ids.len() - stored.already) as u64);
    state.audit.wake();
    Ok(stored.ids)
}

async fn get_inner(req: &HttpRequest, state: &AppState) -> XapiResult<HttpResponse> {
    let cred = authenticate(req, state).await?;
    cred.require(Need::StatementsRead)?;
    let v = version(req);
    let given = Params::parse(req)?;
    let mut pairs: Vec<(String, String)> = given
        .names()
        .zip(given.values())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let reader = reading_department(req, &cred)?;
    let mut after = None;
    if let Some(token) = given.get("more") {
        if pairs.len() != 1 {
            return Err(XapiError::bad_request("`more` takes no other parameter").at("more"));
        }
        let (p, pos, department) = query::decode_cursor(token)?;
        // A cursor continues one reader's query: from another department it is no cursor.
        if department != reader.as_str() {
            return Err(XapiError::bad_request("invalid `more` cursor").at("more"));
        }
        pairs = p;
        after = Some(pos);
    }
    let pages = PageLimits {
        default: state.limits.page_size,
        max: state.limits.max_page_size,
    };
    let mine = cred.reads_only_mine().then_some(&cred.authority);
    let accept = statement::parse_accept_language(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|h| h.to_str().ok()),
    );
    match query::parse(&pairs, v, &pages, mine)? {
        StatementsGet::Single {
            id,
            voided,
            format,
            attachments,
        } => {
            let copies = state.store.get_statement_copies(&id).await?;
            let found = departments::nearest(
                &reader,
                copies
                    .into_iter()
                    .filter(|s| s.voided == voided)
                    .map(|s| (departments::split_record_key(&s.id).1, s)),
            );
            let (from, s) = match found {
                Some(found) => found,
                None => {
                    return Err(XapiError::not_found(if voided {
                        "no voided statement with that id"
                    } else {
                        "no statement with that id (or it has been voided)"
                    }))
                }
            };
            let mut value: Value =
                serde_json::from_str(&s.json).map_err(|e| XapiError::internal(e.to_string()))?;
            if let Some(m) = mine {
                if !crate::xapi::agent::is_authority_of(m, &value) {
                    return Err(XapiError::not_found("no statement with that id"));
                }
            }
            format_statements(
                std::slice::from_mut(&mut value),
                format,
                &accept,
                &reader,
                state,
            )
            .await?;
            let json = value.to_string();
            let last_modified = http_date(s.stored_us);
            let rows = [s];
            let mut resp = respond_with(
                json,
                if attachments { Some(&rows[..]) } else { None },
                &last_modified,
                state,
            )
            .await?;
            // Which department's statement this is, when several hold the id.
            if let Ok(v) = HeaderValue::from_str(&from.to_string()) {
                resp.headers_mut()
                    .insert(header::HeaderName::from_static(DEPARTMENT_HEADER), v);
            }
            Ok(resp)
        }
        StatementsGet::Query {
            mut query,
            format,
            attachments,
            params,
        } => {
            query.after = after;
            query.within(&reader);
            let limit = query.limit;
            query.limit = limit + 1;
            let mut rows = state.store.query_statements(&query).await?;
            let more = if rows.len() > limit {
                rows.truncate(limit);
                rows.last().map(|last| {
                    format!(
                        "{}?more={}",
                        req.path(),
                        query::encode_cursor(&params, (last.stored_us, &last.id), reader.as_str())
                    )
                })
            } else {
                None
            };
            let newest = rows.iter().map(|r| r.stored_us).max();
            let more = Value::from(more.unwrap_or_default()).to_string();
            // The page is written once, straight into the body (a 50-statement page is
            // some 65 KB; building it apart and then formatting it into the body copied
            // it twice more, 4 % of the CPU of a 1M-statement query run).
            let body = if format == Format::Exact {
                let mut out = String::with_capacity(
                    rows.iter().map(|r| r.json.len() + 1).sum::<usize>() + more.len() + 32,
                );
                out.push_str("{\"statements\":[");
                for (i, r) in rows.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&r.json);
                }
                out.push_str("],\"more\":");
                out.push_str(&more);
                out.push('}');
                out
            } else {
                let mut values: Vec<Value> = rows
                    .iter()
                    .map(|r| serde_json::from_str(&r.json))
                    .collect::<Result<_, _>>()
                    .map_err(|e| XapiError::internal(e.to_string()))?;
                format_statements(&mut values, format, &accept, &reader, state).await?;
                format!("{{\"statements\":{},\"more\":{more}}}", Value::from(values))
            };
            let last_modified =
                http_date(newest.unwrap_or_else(|| chrono::Utc::now().timestamp_micros()));
            respond_with(
                body,
                if attachments { Some(&rows[..]) } else { None },
                &last_modified,
                state,
            )
            .await
        }
    }
}

async fn format_statements(
    values: &mut [Value],
    format: Format,
    accept: &[String],
    reader: &Department,
    state: &AppState,
) -> XapiResult<()> {
    match format {
        Format::Exact => {}
        Format::Ids => values.iter_mut().for_each(statement::to_ids),
        Format::Canonical => {
            let mut ids = Vec::new();
            for s in values.iter() {
                statement::activity_ids_in(s, &mut ids);
            }
            ids.sort();
            ids.dedup();
            let mut defs = HashMap::with_capacity(ids.len());
            for id in ids {
                let copies = state.store.get_activity_definitions(&id).await?;
                if let Some(d) = document::visible_definition(reader, copies) {
                    defs.insert(id, d);
                }
            }
            values
                .iter_mut()
                .for_each(|s| statement::to_canonical(s, &defs, accept));
        }
    }
    Ok(())
}

/// JSON, or multipart/mixed with the attachments of `with_attachments` (each once).
async fn respond_with(
    json: String,
    with_attachments: Option<&[StoredStatement]>,
    last_modified: &str,
    state: &AppState,
) -> XapiResult<HttpResponse> {
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::LAST_MODIFIED, last_modified));
    match with_attachments {
        None => Ok(resp.content_type("application/json").body(json)),
        Some(rows) => {
            let mut wanted: Vec<String> = rows
                .iter()
                .flat_map(|r| r.attachment_sha2.iter().cloned())
                .collect();
            wanted.sort();
            wanted.dedup();
            let mut contents = state.store.get_attachments(&wanted).await?;
            for a in &mut contents {
                // Stored by record key; sent by the hash the statement names.
                a.sha2 = departments::split_record_key(&a.sha2).0.to_owned();
            }
            let (ct, body) = multipart::build(json.as_bytes(), &contents);
            Ok(resp.content_type(ct).body(body))
        }
    }
}
