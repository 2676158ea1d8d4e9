//! A SCORM session on the content origin: the model a SCO starts from, and each commit
//! turned into statements and documents by `scorm::mapping`. The browser sends the
//! `SetValue` calls it accepted, in call order; they are replayed here through the same
//! data-model rules, so what is stored never depends on the browser's word alone.
use super::{load, store_error, Session};
use crate::departments::Department;
use crate::error::{XapiError, XapiResult};
use crate::ingest::{Mode, Writer};
use crate::scorm::datamodel::{self, Model};
use crate::scorm::manifest::PackageManifest;
use crate::scorm::mapping::{
    self, Activity, CommitEvent, CommitInput, DocumentBody, DocumentTarget, STATE_ATTEMPT,
    STATE_RUNTIME, STATE_SUSPEND_DATA,
};
use crate::scorm::records::LaunchRecord;
use crate::scorm::restore::{self, LaunchDecision, LaunchValues, StoredAttempt};
use crate::scorm::ScormVersion;
use crate::store::clock::StoredClock;
use crate::store::{DocumentKey, DocumentScope, DynStore};
use crate::xapi::statement::Receipt;
use crate::xapi::{agent, document, XapiVersion};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

/// Most `SetValue` calls one commit may carry.
pub const MAX_SETS: usize = 10_000;

fn department(s: &Session) -> XapiResult<Department> {
    Department::parse(&s.department)
        .map_err(|e| XapiError::internal(format!("session department: {e}")))
}

fn version(s: &Session) -> XapiResult<ScormVersion> {
    s.scorm_version.ok_or_else(|| {
        XapiError::bad_request("this launch is not a SCORM session").code("not_scorm")
    })
}

fn agent_key(actor: &Value) -> XapiResult<String> {
    agent::ifi_key(actor)
        .ok_or_else(|| XapiError::internal("the session's actor has no identifier"))
}

fn state_key(
    s: &Session,
    activity: &str,
    registration: bool,
    state_id: &str,
) -> XapiResult<DocumentKey> {
    Ok(DocumentKey {
        department: department(s)?,
        scope: DocumentScope::State {
            activity_id: activity.to_owned(),
            agent: agent_key(&s.actor)?,
            registration: registration.then(|| s.registration.to_string()),
        },
        document_id: state_id.to_owned(),
    })
}

async fn read_json(store: &DynStore, key: &DocumentKey) -> XapiResult<Option<Value>> {
    let doc = store.get_document(key).await.map_err(store_error)?;
    Ok(doc.and_then(|d| serde_json::from_slice(&d.content).ok()))
}

async fn read_text(store: &DynStore, key: &DocumentKey) -> XapiResult<Option<String>> {
    let doc = store.get_document(key).await.map_err(store_error)?;
    Ok(doc.map(|d| String::from_utf8_lossy(&d.content).into_owned()))
}

/// The learner values the LMS owns, from the actor.
fn launch_values(s: &Session, manifest: &PackageManifest) -> LaunchValues {
    let a = &s.actor;
    let learner_id = a["account"]["name"]
        .as_str()
        .or_else(|| a["mbox"].as_str().map(|m| m.trim_start_matches("mailto:")))
        .or_else(|| a["openid"].as_str())
        .or_else(|| a["mbox_sha1sum"].as_str())
        .unwrap_or_default()
        .to_owned();
    let item = match manifest {
        PackageManifest::Scorm(m) => m
            .launchables
            .iter()
            .find(|l| l.item_identifier == s.item)
            .map(|l| l.values.clone())
            .unwrap_or_default(),
        PackageManifest::Cmi5(_) => Default::default(),
    };
    LaunchValues {
        learner_id,
        learner_name: a["name"].as_str().unwrap_or_default().to_owned(),
        no_credit: false,
        mode: None,
        item,
    }
}

/// What is stored of the session's SCO: the run-time state, and the profile's attempt
/// state and suspend data of the attempt it names.
struct Stored {
    runtime: Option<Value>,
    attempt_state: Option<Value>,
    suspend: Option<String>,
}

async fn stored_state(store: &DynStore, s: &Session) -> XapiResult<Stored> {
    let runtime = read_json(store, &state_key(s, &s.activity_id, true, STATE_RUNTIME)?).await?;
    let (mut attempt_state, mut suspend) = (None, None);
    if let Some(attempt) = runtime.as_ref().and_then(|r| r["attempt_iri"].as_str()) {
        attempt_state = read_json(store, &state_key(s, attempt, true, STATE_ATTEMPT)?).await?;
        suspend = read_text(store, &state_key(s, attempt, true, STATE_SUSPEND_DATA)?).await?;
    }
    Ok(Stored {
        runtime,
        attempt_state,
        suspend,
    })
}

/// The model the SCO starts from and what the runtime needs with it.
pub async fn start(store: &DynStore, s: &Session) -> XapiResult<(Model, u32, bool)> {
    let stored = stored_state(store, s).await?;
    restore_from(store, s, &stored).await
}

/// As [`start`], from state already read.
async fn restore_from(
    store: &DynStore,
    s: &Session,
    stored: &Stored,
) -> XapiResult<(Model, u32, bool)> {
    let v = version(s)?;
    let (_, manifest) = load(store, &Department::root(), &s.package_id).await?;
    let (model, decision) = restore::restore_model(
        v,
        &StoredAttempt {
            runtime_state: stored.runtime.as_ref(),
            attempt_state: stored.attempt_state.as_ref(),
            suspend_data: stored.suspend.as_deref(),
            attempt: 1,
        },
        &launch_values(s, &manifest),
    )
    .map_err(|e| super::package_error(&e))?;
    Ok(match decision {
        LaunchDecision::NewAttempt { attempt } => (model, attempt, false),
        LaunchDecision::Resume { attempt } => (model, attempt, true),
    })
}

/// What the player answers to `GET /session/{token}`.
pub async fn describe(store: &DynStore, s: &Session) -> XapiResult<Value> {
    let v = version(s)?;
    let (model, attempt, resumed) = start(store, s).await?;
    Ok(json!({
        "version": v.as_str(),
        "title": s.title,
        "course": s.course_title,
        "launchUrl": s.launch_url,
        "attempt": attempt,
        "resumed": resumed,
        "model": model,
        "datamodel": datamodel::to_json(v),
    }))
}

/// One commit from the browser.
pub struct Commit {
    pub event: CommitEvent,
    /// `SetValue` calls since the last commit, in call order.
    pub sets: Vec<(String, String)>,
}

/// Parses a commit body: `{"event": "initialize"|"commit"|"terminate", "sets": [[element,
/// value], …]}` (sent by `fetch` or by `sendBeacon`, so the content type is not trusted).
pub fn parse_commit(body: &[u8]) -> XapiResult<Commit> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| XapiError::bad_request(format!("the commit is not JSON: {e}")))?;
    let event = match v["event"].as_str() {
        Some("initialize") => CommitEvent::Initialize,
        Some("commit") => CommitEvent::Commit,
        Some("terminate") => CommitEvent::Terminate,
        _ => {
            return Err(XapiError::bad_request(
                "`event` must be \"initialize\", \"commit\" or \"terminate\"",
            )
            .at("/event"))
        }
    };
    let mut sets = Vec::new();
    if let Some(list) = v.get("sets") {
        let list = list
            .as_array()
            .ok_or_else(|| XapiError::bad_request("`sets` must be an array").at("/sets"))?;
        if list.len() > MAX_SETS {
            return Err(XapiError::payload_too_large(format!(
                "a commit carries at most {MAX_SETS} SetValue calls"
            ))
            .at("/sets"));
        }
        for (i, pair) in list.iter().enumerate() {
            match (
                pair.get(0).and_then(Value::as_str),
                pair.get(1).and_then(Value::as_str),
            ) {
                (Some(k), Some(val)) if pair.as_array().is_some_and(|a| a.len() == 2) => {
                    sets.push((k.to_owned(), val.to_owned()))
                }
                _ => {
                    return Err(XapiError::bad_request(
                        "each of `sets` must be [element, value] (two strings)",
                    )
                    .at(format!("/sets/{i}")))
                }
            }
        }
    }
    Ok(Commit { event, sets })
}

/// What a commit stored.
pub struct Committed {
    pub statements: usize,
    /// Calls refused by the data-model rules: (element, SCORM error code).
    pub refused: Vec<(String, u16)>,
}

/// Applies a commit: replays the calls on the model as last committed, maps the change,
/// stores the statements (re-sent ones are no-ops: their ids are derived) and documents.
pub async fn commit(
    store: &DynStore,
    clock: &StoredClock,
    record: &LaunchRecord,
    s: &Session,
    c: Commit,
    now_us: i64,
) -> XapiResult<Committed> {
    let v = version(s)?;
    // One read of the stored state serves both the restore and the previous model.
    let stored = stored_state(store, s).await?;
    let restored = restore_from(store, s, &stored).await?;
    let runtime = stored.runtime;
    // The model as last committed in this attempt (a fresh start: as restored).
    let (previous, attempt) = match (&c.event, &runtime) {
        (CommitEvent::Initialize, _) | (_, None) => (restored.0.clone(), restored.1),
        (_, Some(r)) => {
            let attempt = r["attempt"]
                .as_u64()
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(restored.1);
            let mut m = Model::new();
            if let Some(o) = r["model"].as_object() {
                for (k, val) in o {
                    if let Some(t) = val.as_str() {
                        m.insert(k.clone(), t.to_owned());
                    }
                }
            }
            // Suspend data lives in its own document; the model it was restored with has it.
            for (k, val) in &restored.0 {
                m.entry(k.clone()).or_insert_with(|| val.clone());
            }
            (m, attempt)
        }
    };
    let mut current = previous.clone();
    let mut refused = Vec::new();
    for (element, value) in &c.sets {
        if let Err(code) = datamodel::set_value(v, element, value, &mut current) {
            refused.push((element.clone(), code.0));
        }
    }
    // What the LMS decides itself (2004: success from the passing score, completion from
    // the threshold) is part of what the commit reports.
    crate::scorm::evaluation::evaluate(v, &mut current);
    let course = Activity {
        id: s.course_iri.clone(),
        name: s.course_title.clone(),
    };
    let sco = Activity {
        id: s.activity_id.clone(),
        name: s.title.clone(),
    };
    let session_start = Utc
        .timestamp_micros(record.created_us)
        .single()
        .unwrap_or_else(Utc::now);
    let now = Utc
        .timestamp_micros(now_us)
        .single()
        .unwrap_or_else(Utc::now);
    let out = mapping::map_commit(&CommitInput {
        version: v,
        course: &course,
        sco: &sco,
        actor: &s.actor,
        registration: s.registration,
        attempt,
        session_start,
        now,
        event: c.event,
        previous: &previous,
        current: &current,
        language: "en-US",
    });
    let dept = department(s)?;
    let stored = out.statements.len();
    if !out.statements.is_empty() {
        let writer = Writer {
            store,
            clock,
            department: &dept,
            receipt: Receipt {
                version: XapiVersion::V2_0,
                authority: &s.authority,
                may_define: true,
            },
        };
        // Lenient: a statement already stored by a re-sent commit comes back as a
        // conflict or a no-op, and must not stop the others.
        let result = writer
            .store(out.statements, true, Vec::new(), Mode::Lenient)
            .await?;
        for (i, e) in &result.rejected {
            if e.status != actix_web::http::StatusCode::CONFLICT {
                tracing::warn!("a SCORM statement ({i}) was refused: {e}");
            }
        }
    }
    for w in out.documents {
        write_document(store, &dept, w, now_us).await?;
    }
    Ok(Committed {
        statements: stored,
        refused,
    })
}

pub(super) async fn write_document(
    store: &DynStore,
    dept: &Department,
    w: mapping::DocumentWrite,
    now_us: i64,
) -> XapiResult<()> {
    let (scope, id) = match w.target {
        DocumentTarget::State {
            activity_id,
            agent,
            registration,
            state_id,
        } => (
            DocumentScope::State {
                activity_id,
                agent: agent_key(&agent)?,
                registration: registration.map(|r| r.to_string()),
            },
            state_id,
        ),
        DocumentTarget::ActivityProfile {
            activity_id,
            profile_id,
        } => (DocumentScope::ActivityProfile { activity_id }, profile_id),
        DocumentTarget::AgentProfile { agent, profile_id } => (
            DocumentScope::AgentProfile {
                agent: agent_key(&agent)?,
            },
            profile_id,
        ),
    };
    let key = DocumentKey {
        department: dept.clone(),
        scope,
        document_id: id,
    };
    let none = document::Preconditions::parse(None, None);
    let update = match w.body {
        DocumentBody::Merge(v) => document::post_update(
            none,
            "application/json".into(),
            bytes::Bytes::from(v.to_string()),
            now_us,
        )?,
        DocumentBody::Replace {
            content_type,
            content,
        } => Box::new(move |_: Option<&crate::store::Document>| {
            Ok(crate::store::DocumentChange::Put(document::new_document(
                content_type,
                bytes::Bytes::from(content.clone()),
                now_us,
            )))
        }),
        DocumentBody::AppendAttempt(attempt) => {
            Box::new(move |current: Option<&crate::store::Document>| {
                let existing: Option<Value> =
                    current.and_then(|d| serde_json::from_slice(&d.content).ok());
                let next = mapping::activity_state_with_attempt(existing.as_ref(), &attempt);
                Ok(crate::store::DocumentChange::Put(document::new_document(
                    "application/json",
                    bytes::Bytes::from(next.to_string()),
                    now_us,
                )))
            })
        }
    };
    store
        .update_document(&key, update)
        .await
        .map_err(store_error)?;
    Ok(())
}
