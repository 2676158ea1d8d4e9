//! cmi5 at run time: the launch (abandon what the registration left open, write
//! `LMS.LaunchData`, record `launched`, build the AU's launch URL), the one-time fetch of
//! the auth token, and what the AU may do with it on its endpoint of the content origin.
//! The cmi5 rules are `scorm::cmi5` and `scorm::cmi5_rules`; the xAPI rules are the
//! LRS's own (`xapi::*`, `ingest`): this module only decides which session a request
//! belongs to and what that session may touch.
//!
//! # The auth token
//!
//! The launch URL carries the launch token (in the content, fetch and endpoint URLs), so
//! anyone who sees that URL holds it. The auth token must not follow from it alone: cmi5
//! makes the fetch URL the one way to get it, once (8.2). It is the Basic credential
//! `<session id>:<secret>` (base64), where the secret is HMAC-SHA256 keyed by the launch
//! token over a random salt drawn at launch and kept in the session. The store keeps only
//! the token's hash and the salt, so a copy of the store cannot compute the secret; the
//! launch URL alone cannot either; the fetch URL computes it from both, once. Nothing new
//! is stored at fetch time beyond the `fetched` mark the store already keeps.
use super::{open, store_error, token_hash, Cmi5Session, ContentSettings, Session};
use crate::departments::Department;
use crate::error::{XapiError, XapiResult};
use crate::ingest::{self, Mode, Writer};
use crate::scorm::cmi5::{self as rules, FetchError, LaunchDataInput, LaunchParams, LaunchedInput};
use crate::scorm::cmi5_rules::{self, AuSession};
use crate::scorm::manifest::Au;
use crate::scorm::mapping::{DocumentBody, DocumentTarget, DocumentWrite};
use crate::scorm::records::LaunchRecord;
use crate::store::clock::StoredClock;
use crate::store::{DocumentScope, DynStore};
use crate::xapi::document::{DocTarget, Op, Resource};
use crate::xapi::multipart::AttachmentContent;
use crate::xapi::query::{self, PageLimits, StatementsGet};
use crate::xapi::statement::Receipt;
use crate::xapi::{agent, XapiVersion};
use base64::Engine;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Most statements of a registration and AU read to check what an AU sends (a session
/// sends a handful of cmi5 defined statements; allowed ones about the AU itself add up).
pub const MAX_PRIOR_STATEMENTS: usize = 10_000;

/// The path segment that stands for the launch token in the `launchurl` extension: the
/// token is a capability and never goes into a statement.
const TOKEN_PLACEHOLDER: &str = "redacted";

/// The cmi5 part of a session drawn at launch.
pub fn new_session_part(au: &Au) -> Cmi5Session {
    use rand::RngCore;
    let mut salt = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut salt);
    Cmi5Session {
        auth_salt: hex::encode(salt),
        mastery_score: au.mastery_score,
    }
}

fn part(s: &Session) -> XapiResult<&Cmi5Session> {
    s.cmi5
        .as_ref()
        .ok_or_else(|| XapiError::bad_request("this launch is not a cmi5 session").code("not_cmi5"))
}

fn department(s: &Session) -> XapiResult<Department> {
    Department::parse(&s.department)
        .map_err(|e| XapiError::internal(format!("session department: {e}")))
}

fn invalid_launch(e: crate::scorm::ScormError) -> XapiError {
    super::package_error(&e)
}

/// The statement id of a session's `launched` statement: derived from the session.
fn launched_id(session_id: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("urn:karmayogi-lrs:cmi5:launched:{session_id}").as_bytes(),
    )
}

fn writer<'a>(
    store: &'a DynStore,
    clock: &'a StoredClock,
    department: &'a Department,
    s: &'a Session,
    version: XapiVersion,
    may_define: bool,
) -> Writer<'a> {
    Writer {
        store,
        clock,
        department,
        receipt: Receipt {
            version,
            authority: &s.authority,
            may_define,
        },
    }
}

/// The statements stored in `department`'s subtree for a registration (and an activity),
/// oldest first.
async fn stored_statements(
    store: &DynStore,
    department: &Department,
    registration: uuid::Uuid,
    activity: Option<&str>,
) -> XapiResult<Vec<Value>> {
    let mut pairs = vec![
        ("registration".to_owned(), registration.to_string()),
        ("ascending".to_owned(), "true".to_owned()),
        ("limit".to_owned(), MAX_PRIOR_STATEMENTS.to_string()),
    ];
    if let Some(a) = activity {
        pairs.push(("activity".to_owned(), a.to_owned()));
    }
    let pages = PageLimits {
        default: MAX_PRIOR_STATEMENTS,
        max: MAX_PRIOR_STATEMENTS,
    };
    let StatementsGet::Query { mut query, .. } =
        query::parse(&pairs, XapiVersion::V2_0, &pages, None)?
    else {
        return Err(XapiError::internal(
            "a registration query became a single read",
        ));
    };
    query.within(department);
    let rows = store.query_statements(&query).await?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.json).ok())
        .collect())
}

/// Launches an AU: abandons the registration's open sessions (9.3.6), writes
/// `LMS.LaunchData` (10), records `launched` (9.3.1), and answers the AU's launch URL
/// (8.1): a relative AU URL is a file of the package on the content origin, an absolute
/// one is used as it is.
pub async fn start(
    store: &DynStore,
    clock: &StoredClock,
    s: &Session,
    au: &Au,
    token: &str,
    settings: &ContentSettings,
    now_us: i64,
) -> XapiResult<String> {
    let dept = department(s)?;
    let now = Utc
        .timestamp_micros(now_us)
        .single()
        .unwrap_or_else(Utc::now);
    abandon_open_sessions(store, clock, s, &dept, now).await?;

    let data = rules::launch_data(&LaunchDataInput::new(au, &s.id));
    super::session::write_document(
        store,
        &dept,
        DocumentWrite {
            target: DocumentTarget::State {
                activity_id: s.activity_id.clone(),
                agent: s.actor.clone(),
                registration: Some(s.registration),
                state_id: rules::LAUNCH_DATA_STATE_ID.to_owned(),
            },
            body: DocumentBody::Replace {
                content_type: "application/json",
                content: data.to_string().into_bytes(),
            },
        },
        now_us,
    )
    .await?;

    let origin = settings.origin.trim_end_matches('/');
    let location = rules::au_location(&format!("{origin}/content/{token}/"), &au.url)
        .map_err(invalid_launch)?;
    let endpoint = format!("{origin}/cmi5/{token}/xapi/");
    let fetch = format!("{origin}/cmi5/{token}/fetch");
    let url = rules::launch_url(&LaunchParams {
        au_url: &location,
        endpoint: &endpoint,
        fetch: &fetch,
        actor: &s.actor,
        registration: s.registration,
        activity_id: &s.activity_id,
    })
    .map_err(invalid_launch)?;
    let shown = rules::au_location(&format!("{origin}/content/{TOKEN_PLACEHOLDER}/"), &au.url)
        .map_err(invalid_launch)?;
    let launched = rules::launched_statement(&LaunchedInput {
        id: launched_id(&s.id),
        actor: &s.actor,
        registration: s.registration,
        activity_id: &s.activity_id,
        au,
        launch_data: &data,
        launch_url: &shown,
        timestamp: now,
    })
    .map_err(invalid_launch)?;
    // The LMS's own statement: its activity definition (the course structure's name and
    // description) may define the AU.
    writer(store, clock, &dept, s, XapiVersion::V2_0, true)
        .store(vec![launched], false, Vec::new(), Mode::Atomic)
        .await?;
    Ok(url)
}

/// Records `abandoned` for every session of the registration that was launched and
/// neither terminated nor abandoned: a registration has one live session at a time.
async fn abandon_open_sessions(
    store: &DynStore,
    clock: &StoredClock,
    s: &Session,
    dept: &Department,
    now: chrono::DateTime<Utc>,
) -> XapiResult<()> {
    let stored = stored_statements(store, dept, s.registration, None).await?;
    let list: Vec<Value> = cmi5_rules::open_sessions(&stored)
        .iter()
        .map(|o| cmi5_rules::abandoned_statement(o, now))
        .collect();
    if list.is_empty() {
        return Ok(());
    }
    // Lenient: a launch racing this one records the same ids; its copy stands.
    let done = writer(store, clock, dept, s, XapiVersion::V2_0, false)
        .store(list, true, Vec::new(), Mode::Lenient)
        .await?;
    for (i, e) in &done.rejected {
        if e.status != actix_web::http::StatusCode::CONFLICT {
            tracing::warn!("an abandoned statement ({i}) was refused: {e}");
        }
    }
    Ok(())
}

/// HMAC-SHA256 keyed by the launch token over the session's salt, hex.
fn secret(token: &str, salt: &str) -> XapiResult<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes())
        .map_err(|e| XapiError::internal(format!("cannot key the auth token: {e}")))?;
    mac.update(b"cmi5 auth-token\0");
    mac.update(salt.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// The auth token of a session: `base64(<session id>:<secret>)`, sent by the AU as
/// `Authorization: Basic <auth-token>`.
fn auth_token(token: &str, s: &Session) -> XapiResult<String> {
    let c = part(s)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        s.id,
        secret(token, &c.auth_salt)?
    )))
}

/// `POST /cmi5/{token}/fetch` (8.2): the auth token the first time, then error 1. Always
/// a JSON body for HTTP 200, as 8.2.1 requires.
pub async fn fetch(store: &DynStore, token: &str, now_us: i64) -> Value {
    match fetch_token(store, token, now_us).await {
        Ok(t) => rules::fetch_token_body(&t),
        Err((code, text)) => rules::fetch_error_body(code, text),
    }
}

async fn fetch_token(
    store: &DynStore,
    token: &str,
    now_us: i64,
) -> Result<String, (FetchError, &'static str)> {
    let unknown = (
        FetchError::GeneralSecurity,
        "This fetch URL is unknown: launch the course again.",
    );
    let failed = (
        FetchError::GeneralApplication,
        "The authorization token cannot be issued now: try again.",
    );
    if token.is_empty() || token.len() > 128 {
        return Err(unknown);
    }
    let hash = token_hash(token);
    let record = store
        .get_launch(&hash)
        .await
        .map_err(|_| failed)?
        .ok_or(unknown)?;
    if record.expires_us < now_us {
        return Err((
            FetchError::AlreadyInUseOrExpired,
            "This session has expired: launch the course again.",
        ));
    }
    let s: Session = serde_json::from_str(&record.session).map_err(|_| failed)?;
    if s.cmi5.is_none() {
        return Err(unknown);
    }
    let t = auth_token(token, &s).map_err(|_| failed)?;
    if !store.mark_launch_fetched(&hash).await.map_err(|_| failed)? {
        return Err((
            FetchError::AlreadyInUseOrExpired,
            "The authorization token has already been returned.",
        ));
    }
    Ok(t)
}

fn denied(message: &str) -> XapiError {
    XapiError::unauthorized(message).code("cmi5_unauthorized")
}

/// The session of a request to `/cmi5/{token}/xapi/…`: the launch must be a live cmi5
/// launch whose auth token was fetched, and the request must carry that auth token as its
/// Basic credential. Anything else is 401, the same whatever failed.
pub async fn authorize(
    store: &DynStore,
    token: &str,
    authorization: Option<&str>,
    now_us: i64,
) -> XapiResult<(LaunchRecord, Session)> {
    let refused = || {
        denied("send the auth token of this session's fetch URL as `Authorization: Basic <auth-token>`")
    };
    let (record, s) = open(store, token, now_us).await.map_err(|e| {
        if e.status == actix_web::http::StatusCode::NOT_FOUND {
            refused()
        } else {
            e
        }
    })?;
    let c = s.cmi5.as_ref().ok_or_else(refused)?;
    if !record.fetched {
        return Err(refused());
    }
    let given = authorization
        .and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(refused)?;
    let (user, password) = given.split_once(':').ok_or_else(refused)?;
    let expected = secret(token, &c.auth_salt)?;
    let ok =
        user.as_bytes().ct_eq(s.id.as_bytes()) & password.as_bytes().ct_eq(expected.as_bytes());
    if !bool::from(ok) {
        return Err(refused());
    }
    Ok((record, s))
}

fn forbidden(message: impl Into<String>, code: &'static str) -> XapiError {
    XapiError::forbidden(message).code(code)
}

/// Checks what an AU sends: first the xAPI rules (400), then the cmi5 rules against the
/// statements stored for its registration and AU (403).
pub async fn check_statements(
    store: &DynStore,
    s: &Session,
    list: &[Value],
    batch: bool,
    version: XapiVersion,
) -> XapiResult<()> {
    let c = part(s)?;
    for (i, st) in list.iter().enumerate() {
        crate::xapi::validate::validate_statement(st, version).map_err(|e| {
            if batch {
                ingest::prefix_path(e, i)
            } else {
                e
            }
        })?;
    }
    let dept = department(s)?;
    let prior = stored_statements(store, &dept, s.registration, Some(&s.activity_id)).await?;
    let au = AuSession {
        session_id: &s.id,
        actor: &s.actor,
        registration: s.registration,
        activity_id: &s.activity_id,
        publisher_id: &s.item,
        mastery_score: c.mastery_score,
    };
    cmi5_rules::check_statements(&au, &prior, list).map_err(|r| {
        let e = forbidden(r.message, r.code);
        match (batch, r.pointer.is_empty()) {
            (true, _) => e.at(format!("/{}{}", r.index, r.pointer)),
            (false, false) => e.at(r.pointer),
            (false, true) => e,
        }
    })
}

/// Stores an AU's statements (already checked) in the session's department, vouched for
/// by the launching credential; an AU never defines activities.
pub async fn store_statements(
    store: &DynStore,
    clock: &StoredClock,
    s: &Session,
    list: Vec<Value>,
    batch: bool,
    attachments: Vec<AttachmentContent>,
    version: XapiVersion,
) -> XapiResult<ingest::Stored> {
    let dept = department(s)?;
    writer(store, clock, &dept, s, version, false)
        .store(list, batch, attachments, Mode::Atomic)
        .await
}

/// One of the session's own statements (`GET statements?statementId=`): stored in the
/// session's department, about its actor and registration, not voided; else 404.
pub async fn own_statement(store: &DynStore, s: &Session, id: &str) -> XapiResult<Value> {
    let gone = || XapiError::not_found("no statement of this session with that id");
    let dept = department(s)?;
    let copies = store
        .get_statement_copies(&id.to_ascii_lowercase())
        .await
        .map_err(store_error)?;
    let row = copies
        .into_iter()
        .find(|c| !c.voided && crate::departments::split_record_key(&c.id).1 == dept)
        .ok_or_else(gone)?;
    let v: Value = serde_json::from_str(&row.json)
        .map_err(|e| XapiError::internal(format!("unreadable statement: {e}")))?;
    let same_actor = agent::ifi_key(&v["actor"]).is_some()
        && agent::ifi_key(&v["actor"]) == agent::ifi_key(&s.actor);
    let same_registration = v["context"]["registration"]
        .as_str()
        .and_then(|r| uuid::Uuid::parse_str(r).ok())
        == Some(s.registration);
    if !(same_actor && same_registration) {
        return Err(gone());
    }
    Ok(v)
}

/// Which documents the AU may touch (403 otherwise): the state of its own agent and
/// registration, never a write to the LMS's `LMS.LaunchData` (nor a delete of every
/// document beside it); its own agent's profiles, read only (cmi5 11.0 lets the LMS refuse
/// preference changes with 403); activity profiles, read only.
pub fn check_document(
    s: &Session,
    resource: Resource,
    op: Op,
    target: &DocTarget,
) -> XapiResult<()> {
    let actor = agent::ifi_key(&s.actor)
        .ok_or_else(|| XapiError::internal("the session's actor has no identifier"))?;
    match &target.scope {
        DocumentScope::State {
            activity_id,
            agent,
            registration,
        } => {
            if *agent != actor {
                return Err(forbidden(
                    "the `agent` must be the session's actor (the launch URL's `actor`)",
                    "cmi5_document_forbidden",
                )
                .at("agent"));
            }
            if registration.as_deref() != Some(s.registration.to_string().as_str()) {
                return Err(forbidden(
                    format!(
                        "the `registration` must be the session's, {}",
                        s.registration
                    ),
                    "cmi5_document_forbidden",
                )
                .at("registration"));
            }
            if op != Op::Get && *activity_id == s.activity_id {
                match target.document_id.as_deref() {
                    Some(rules::LAUNCH_DATA_STATE_ID) => {
                        return Err(forbidden(
                            "LMS.LaunchData is written by the LMS; the AU reads it",
                            "cmi5_read_only",
                        )
                        .at("stateId"))
                    }
                    None => {
                        return Err(forbidden(
                            "deleting every state document of the AU would delete LMS.LaunchData: delete them one by one",
                            "cmi5_read_only",
                        )
                        .at("stateId"))
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        }
        DocumentScope::AgentProfile { agent } => {
            if *agent != actor {
                return Err(forbidden(
                    "the `agent` must be the session's actor (the launch URL's `actor`)",
                    "cmi5_document_forbidden",
                )
                .at("agent"));
            }
            read_only(resource, op)
        }
        DocumentScope::ActivityProfile { .. } => read_only(resource, op),
    }
}

fn read_only(resource: Resource, op: Op) -> XapiResult<()> {
    if op == Op::Get {
        return Ok(());
    }
    Err(forbidden(
        match resource {
            Resource::AgentProfile => {
                "learner preferences (cmi5LearnerPreferences) are kept by the LMS; an AU reads them"
            }
            _ => "an AU reads activity profiles; it does not write them",
        },
        "cmi5_read_only",
    ))
}
