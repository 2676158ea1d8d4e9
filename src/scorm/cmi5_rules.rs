//! cmi5, what the LMS checks of the statements an AU sends (6.3, 9.x) and the `abandoned`
//! statement it records for a session left open (9.3.6).
//!
//! cmi5 lets an LMS either reject a statement that breaks the statement rules or store and
//! then void it (6.3). This LMS rejects: what an AU sends through its session's endpoint
//! is checked here against the statements already stored for the registration, and a
//! statement that breaks a rule is refused with a stable code, before anything is stored.
//!
//! Pure: the session, the stored statements and the new ones come in as values.
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

use super::cmi5::{CATEGORY_CMI5, CATEGORY_MOVEON, EXT_SESSION_ID, VERB_LAUNCHED};

pub const VERB_INITIALIZED: &str = "http://adlnet.gov/expapi/verbs/initialized";
pub const VERB_COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
pub const VERB_PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
pub const VERB_FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";
pub const VERB_TERMINATED: &str = "http://adlnet.gov/expapi/verbs/terminated";
pub const VERB_ABANDONED: &str = "https://w3id.org/xapi/adl/verbs/abandoned";
pub const VERB_WAIVED: &str = "https://w3id.org/xapi/adl/verbs/waived";
pub const VERB_SATISFIED: &str = "https://w3id.org/xapi/adl/verbs/satisfied";
pub const VERB_VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";

/// The verbs only the LMS states (9.3.1, 9.3.6, 9.3.7, 9.3.9).
pub const LMS_VERBS: [&str; 4] = [VERB_LAUNCHED, VERB_ABANDONED, VERB_WAIVED, VERB_SATISFIED];
/// The cmi5 defined verbs of an AU (9.3.2–9.3.5, 9.3.8).
pub const AU_VERBS: [&str; 5] = [
    VERB_INITIALIZED,
    VERB_COMPLETED,
    VERB_PASSED,
    VERB_FAILED,
    VERB_TERMINATED,
];

/// The session an AU's statements must belong to: what the LMS launched it with.
#[derive(Debug, Clone)]
pub struct AuSession<'a> {
    pub session_id: &'a str,
    pub actor: &'a Value,
    pub registration: Uuid,
    /// The AU's launch activity id (the `activityId` launch parameter).
    pub activity_id: &'a str,
    /// The publisher's AU id, the grouping activity of the context template.
    pub publisher_id: &'a str,
    /// The `masteryScore` of the launch data.
    pub mastery_score: Option<f64>,
}

/// Why a statement is refused: which one, a stable code, a JSON pointer into the statement
/// and a message naming the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Its index in what was sent.
    pub index: usize,
    pub code: &'static str,
    pub pointer: &'static str,
    pub message: String,
}

fn verb(s: &Value) -> &str {
    s["verb"]["id"].as_str().unwrap_or_default()
}

/// The session id extension of a statement's context.
pub fn session_of(s: &Value) -> Option<&str> {
    s["context"]["extensions"][EXT_SESSION_ID].as_str()
}

/// The ids of a context activities list (an array, or the single object xAPI 1.0 allowed).
fn context_ids<'a>(s: &'a Value, list: &str) -> Vec<&'a str> {
    match &s["context"]["contextActivities"][list] {
        Value::Array(a) => a.iter().filter_map(|x| x["id"].as_str()).collect(),
        Value::Object(o) => o.get("id").and_then(Value::as_str).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A cmi5 defined statement: one with the cmi5 category activity (7.1.3).
pub fn is_defined(s: &Value) -> bool {
    context_ids(s, "category").contains(&CATEGORY_CMI5)
}

fn same_agent(a: &Value, b: &Value) -> bool {
    let key = crate::xapi::agent::ifi_key;
    a.get("objectType")
        .and_then(Value::as_str)
        .unwrap_or("Agent")
        == "Agent"
        && key(a).is_some()
        && key(a) == key(b)
}

/// What the stored statements say of the session and the registration.
#[derive(Debug, Default)]
struct Seen<'a> {
    initialized: bool,
    /// Terminated by the AU or abandoned by the LMS.
    ended: bool,
    /// The cmi5 defined AU verbs of this session.
    session_verbs: HashSet<&'a str>,
    /// A cmi5 defined `completed` / `passed` for this AU in the registration.
    completed: bool,
    passed: bool,
}

impl<'a> Seen<'a> {
    fn note(&mut self, s: &'a Value, session: &AuSession<'_>, same_session: bool) {
        if !is_defined(s) {
            return;
        }
        let v = verb(s);
        if same_session {
            match v {
                VERB_INITIALIZED => self.initialized = true,
                VERB_TERMINATED | VERB_ABANDONED => self.ended = true,
                _ => {}
            }
            if AU_VERBS.contains(&v) {
                self.session_verbs.insert(v);
            }
        }
        if s["object"]["id"].as_str() == Some(session.activity_id) {
            match v {
                VERB_COMPLETED => self.completed = true,
                VERB_PASSED => self.passed = true,
                _ => {}
            }
        }
    }
}

/// Checks the statements an AU sends, in order, against the statements stored for its
/// registration (`prior`, any order; those of other sessions count for the
/// per-registration rules only). The first statement that breaks a rule is refused.
///
/// Every statement: an `id` (9.1) and a `timestamp` (9.7); the session's actor (8.1.3,
/// 9.2) and registration (8.1.4, 9.6.1); none of the LMS's verbs, no voiding (6.3); not
/// after the session ended (9.3.6, 9.3.8); `initialized` first (9.3); the session id, when
/// given, this session's.
///
/// cmi5 defined statements also: an AU verb, the AU as object (9.4), the context
/// template's session id and publisher grouping (9.6.2), each verb once per session and
/// `passed`/`failed` not both (9.3), `completed` and `passed` once per registration and no
/// `failed` after `passed`, and the result rules: `success`, `completion`, `score` (with
/// the mastery score), `duration` (9.5) and the moveOn category (9.6.2.2).
pub fn check_statements(
    session: &AuSession<'_>,
    prior: &[Value],
    new: &[Value],
) -> Result<(), Refusal> {
    let mut seen = Seen::default();
    for s in prior {
        seen.note(s, session, session_of(s) == Some(session.session_id));
    }
    for (index, s) in new.iter().enumerate() {
        let refuse = |code: &'static str, pointer: &'static str, message: String| Refusal {
            index,
            code,
            pointer,
            message,
        };
        check_common(session, &seen, s).map_err(|(c, p, m)| refuse(c, p, m))?;
        if is_defined(s) {
            check_defined(session, &seen, s).map_err(|(c, p, m)| refuse(c, p, m))?;
        }
        // Statements sent through the session are the session's.
        seen.note(s, session, true);
    }
    Ok(())
}

type Broken = (&'static str, &'static str, String);

fn check_common(session: &AuSession<'_>, seen: &Seen<'_>, s: &Value) -> Result<(), Broken> {
    if !s.get("id").is_some_and(Value::is_string) {
        return Err((
            "cmi5_statement_id_required",
            "/id",
            "an AU assigns the id of every statement it sends (cmi5 9.1)".into(),
        ));
    }
    if !s.get("timestamp").is_some_and(Value::is_string) {
        return Err((
            "cmi5_timestamp_required",
            "/timestamp",
            "every cmi5 statement has a timestamp (cmi5 9.7)".into(),
        ));
    }
    if !same_agent(&s["actor"], session.actor) {
        return Err((
            "cmi5_actor_mismatch",
            "/actor",
            "the actor must be the Agent given in the launch URL's `actor` parameter (cmi5 8.1.3, 9.2)"
                .into(),
        ));
    }
    let registration = s["context"]["registration"]
        .as_str()
        .and_then(|r| Uuid::parse_str(r).ok());
    if registration != Some(session.registration) {
        return Err((
            "cmi5_registration_mismatch",
            "/context/registration",
            format!(
                "context.registration must be the launch URL's `registration`, {} (cmi5 8.1.4, 9.6.1)",
                session.registration
            ),
        ));
    }
    let v = verb(s);
    if v == VERB_VOIDED {
        return Err((
            "cmi5_voiding_refused",
            "/verb/id",
            "an AU may not void statements (cmi5 6.3)".into(),
        ));
    }
    if LMS_VERBS.contains(&v) {
        return Err((
            "cmi5_lms_verb",
            "/verb/id",
            format!("`{v}` is stated by the LMS, never by an AU (cmi5 9.3)"),
        ));
    }
    if seen.ended {
        return Err((
            "cmi5_session_ended",
            "",
            "this AU session has ended (terminated, or abandoned by a later launch): it takes no more statements (cmi5 9.3.6, 9.3.8)"
                .into(),
        ));
    }
    if let Some(other) = session_of(s) {
        if other != session.session_id {
            return Err((
                "cmi5_session_mismatch",
                "/context/extensions",
                "the sessionid extension must be this session's, as given in LMS.LaunchData's contextTemplate (cmi5 9.6.3.1)"
                    .into(),
            ));
        }
    }
    let starts = is_defined(s) && v == VERB_INITIALIZED;
    if !(seen.initialized || starts) {
        return Err((
            "cmi5_not_initialized",
            "/verb/id",
            "the first statement of an AU session is its cmi5 defined `initialized` statement (cmi5 9.3, 9.3.2)"
                .into(),
        ));
    }
    Ok(())
}

fn check_defined(session: &AuSession<'_>, seen: &Seen<'_>, s: &Value) -> Result<(), Broken> {
    let v = verb(s);
    if !AU_VERBS.contains(&v) {
        return Err((
            "cmi5_verb_not_defined",
            "/verb/id",
            format!(
                "`{v}` is not a cmi5 verb: a statement with it is cmi5 allowed, without the cmi5 category activity (cmi5 7.1.3)"
            ),
        ));
    }
    if s["object"]["id"].as_str() != Some(session.activity_id)
        || s["object"]
            .get("objectType")
            .is_some_and(|t| t != "Activity")
    {
        return Err((
            "cmi5_object_mismatch",
            "/object/id",
            format!(
                "the object of a cmi5 defined statement is the AU, `{}` (the launch URL's activityId, cmi5 9.4)",
                session.activity_id
            ),
        ));
    }
    if session_of(s) != Some(session.session_id) {
        return Err((
            "cmi5_context_template",
            "/context/extensions",
            "a cmi5 defined statement carries the sessionid extension of LMS.LaunchData's contextTemplate (cmi5 9.6.2, 9.6.3.1)"
                .into(),
        ));
    }
    if !context_ids(s, "grouping").contains(&session.publisher_id) {
        return Err((
            "cmi5_context_template",
            "/context/contextActivities/grouping",
            format!(
                "a cmi5 defined statement carries the contextTemplate's grouping activity `{}` (cmi5 9.6.2)",
                session.publisher_id
            ),
        ));
    }
    let duplicate = |what: &str| {
        Err((
            "cmi5_duplicate_verb",
            "/verb/id",
            format!("{what} (cmi5 9.3)"),
        ))
    };
    if seen.session_verbs.contains(v) {
        return duplicate(&format!("this session has its `{v}` statement already"));
    }
    if (v == VERB_PASSED || v == VERB_FAILED)
        && (seen.session_verbs.contains(VERB_PASSED) || seen.session_verbs.contains(VERB_FAILED))
    {
        return duplicate("a session has one `passed` or one `failed` statement, not both");
    }
    if v == VERB_COMPLETED && seen.completed {
        return duplicate("this AU is completed in this registration already");
    }
    if v == VERB_PASSED && seen.passed {
        return duplicate("this AU is passed in this registration already");
    }
    if v == VERB_FAILED && seen.passed {
        return Err((
            "cmi5_failed_after_passed",
            "/verb/id",
            "no `failed` statement follows a `passed` one in a registration (cmi5 9.3)".into(),
        ));
    }
    check_result(session, s, v)
}

fn check_result(session: &AuSession<'_>, s: &Value, v: &str) -> Result<(), Broken> {
    let bad = |pointer: &'static str, message: String| {
        Err((
            "cmi5_result_invalid",
            pointer,
            format!("{message} (cmi5 9.5)"),
        ))
    };
    let result = &s["result"];
    let success = result.get("success");
    let completion = result.get("completion");
    match (v, success.and_then(Value::as_bool)) {
        (VERB_PASSED, Some(true)) | (VERB_FAILED, Some(false)) => {}
        (VERB_PASSED, _) => {
            return bad("/result/success", "`passed` has result.success true".into())
        }
        (VERB_FAILED, _) => {
            return bad(
                "/result/success",
                "`failed` has result.success false".into(),
            )
        }
        _ if success.is_some() => {
            return bad(
                "/result/success",
                "only `passed` and `failed` carry result.success".into(),
            )
        }
        _ => {}
    }
    match (v, completion.and_then(Value::as_bool)) {
        (VERB_COMPLETED, Some(true)) => {}
        (VERB_COMPLETED, _) => {
            return bad(
                "/result/completion",
                "`completed` has result.completion true".into(),
            )
        }
        _ if completion.is_some() => {
            return bad(
                "/result/completion",
                "only `completed` carries result.completion".into(),
            )
        }
        _ => {}
    }
    if let Some(score) = result.get("score") {
        if v != VERB_PASSED && v != VERB_FAILED {
            return bad(
                "/result/score",
                "only `passed` and `failed` carry a score".into(),
            );
        }
        if let (Some(scaled), Some(mastery)) = (
            score.get("scaled").and_then(Value::as_f64),
            session.mastery_score,
        ) {
            if v == VERB_PASSED && scaled < mastery {
                return bad(
                    "/result/score/scaled",
                    format!("a `passed` score is at least the mastery score {mastery}"),
                );
            }
            if v == VERB_FAILED && scaled >= mastery {
                return bad(
                    "/result/score/scaled",
                    format!("a `failed` score is below the mastery score {mastery}"),
                );
            }
        }
    }
    if [VERB_COMPLETED, VERB_PASSED, VERB_FAILED, VERB_TERMINATED].contains(&v)
        && !result.get("duration").is_some_and(Value::is_string)
    {
        return bad("/result/duration", format!("`{v}` carries result.duration"));
    }
    let moveon = context_ids(s, "category").contains(&CATEGORY_MOVEON);
    let judged = success.is_some() || completion.is_some();
    if moveon != judged {
        return Err((
            "cmi5_context_template",
            "/context/contextActivities/category",
            format!(
                "the moveOn category activity `{CATEGORY_MOVEON}` is in exactly the cmi5 defined statements with result.success or result.completion (cmi5 9.6.2.2)"
            ),
        ));
    }
    Ok(())
}

/// A session the LMS launched that has neither ended (`terminated`) nor been abandoned.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSession {
    pub session_id: String,
    /// The LMS's `launched` statement of the session.
    pub launched: Value,
    pub started: DateTime<Utc>,
    /// The latest timestamp of the session's statements (the launch when the AU sent none).
    pub last: DateTime<Utc>,
}

fn timestamp(s: &Value) -> Option<DateTime<Utc>> {
    s["timestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The sessions of a registration left open, from its statements (any order), oldest
/// launch first.
pub fn open_sessions(statements: &[Value]) -> Vec<OpenSession> {
    let mut launched: BTreeMap<&str, (&Value, DateTime<Utc>)> = BTreeMap::new();
    let mut ended: HashSet<&str> = HashSet::new();
    let mut last: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for s in statements {
        let Some(id) = session_of(s) else { continue };
        let v = verb(s);
        if v == VERB_LAUNCHED && is_defined(s) {
            if let Some(t) = timestamp(s) {
                launched.entry(id).or_insert((s, t));
            }
        } else if v == VERB_TERMINATED || v == VERB_ABANDONED {
            ended.insert(id);
        }
        if let Some(t) = timestamp(s) {
            let e = last.entry(id).or_insert(t);
            *e = (*e).max(t);
        }
    }
    let mut open: Vec<OpenSession> = launched
        .into_iter()
        .filter(|(id, _)| !ended.contains(id))
        .map(|(id, (s, started))| OpenSession {
            session_id: id.to_owned(),
            launched: s.clone(),
            started,
            last: last.get(id).copied().unwrap_or(started).max(started),
        })
        .collect();
    open.sort_by_key(|o| o.started);
    open
}

/// The id of the `abandoned` statement of a session: derived, so two launches racing to
/// abandon the same session record it once.
pub fn abandoned_id(session_id: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("urn:karmayogi-lrs:cmi5:abandoned:{session_id}").as_bytes(),
    )
}

/// The `abandoned` statement the LMS records for an open session when the registration is
/// launched again (9.3.6): the session's actor, AU, registration, publisher grouping and
/// session id, with the session's duration from its launch to its last statement (9.5.4.2).
pub fn abandoned_statement(open: &OpenSession, now: DateTime<Utc>) -> Value {
    let l = &open.launched;
    let mut context = Map::new();
    if let Some(r) = l["context"].get("registration") {
        context.insert("registration".into(), r.clone());
    }
    let mut activities = Map::new();
    if let Some(g) = l["context"]["contextActivities"].get("grouping") {
        activities.insert("grouping".into(), g.clone());
    }
    activities.insert(
        "category".into(),
        json!([{ "objectType": "Activity", "id": CATEGORY_CMI5 }]),
    );
    context.insert("contextActivities".into(), Value::Object(activities));
    let mut ext = Map::new();
    ext.insert(EXT_SESSION_ID.into(), json!(open.session_id));
    context.insert("extensions".into(), Value::Object(ext));
    let centis = (open.last - open.started).num_milliseconds().max(0) / 10;
    json!({
        "id": abandoned_id(&open.session_id).to_string(),
        "actor": l["actor"],
        "verb": { "id": VERB_ABANDONED, "display": { "en-US": "abandoned" } },
        "object": { "objectType": "Activity", "id": l["object"]["id"] },
        "result": { "duration": super::mapping::centis_to_iso(u64::try_from(centis).unwrap_or(0)) },
        "context": context,
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

#[cfg(test)]
#[path = "cmi5_rules_tests.rs"]
mod tests;
