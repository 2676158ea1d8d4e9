//! SCORM run-time data → xAPI, following the ADL xAPI SCORM Profile.
//!
//! [`map_commit`] turns one `Initialize`, `Commit` or `Terminate` into statements and
//! document writes by comparing the previously committed model with the new one. Statement
//! ids are UUIDv5 of the registration, attempt, SCO, session and event (and, for events
//! that can repeat, their content), so a commit sent twice yields the same statements and
//! the LRS stores them once. [`restore_model`] goes the other way for a relaunch.
//!
//! Choices where the profile is silent or inconsistent are listed in `docs/SCORM.md`.
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::datamodel::{self, Model};
use super::ScormVersion;

pub const VERB_INITIALIZED: &str = "http://adlnet.gov/expapi/verbs/initialized";
pub const VERB_RESUMED: &str = "http://adlnet.gov/expapi/verbs/resumed";
pub const VERB_SUSPENDED: &str = "http://adlnet.gov/expapi/verbs/suspended";
pub const VERB_TERMINATED: &str = "http://adlnet.gov/expapi/verbs/terminated";
pub const VERB_COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
pub const VERB_PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
pub const VERB_FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";
pub const VERB_SCORED: &str = "http://adlnet.gov/expapi/verbs/scored";
pub const VERB_RESPONDED: &str = "http://adlnet.gov/expapi/verbs/responded";
pub const VERB_PROGRESSED: &str = "http://adlnet.gov/expapi/verbs/progressed";
pub const VERB_COMMENTED: &str = "http://adlnet.gov/expapi/verbs/commented";

/// The profile's category activity, on every statement.
pub const PROFILE_ID: &str = "https://w3id.org/xapi/scorm";
pub const TYPE_PROFILE: &str = "http://adlnet.gov/expapi/activities/profile";
pub const TYPE_COURSE: &str = "http://adlnet.gov/expapi/activities/course";
pub const TYPE_LESSON: &str = "http://adlnet.gov/expapi/activities/lesson";
pub const TYPE_ATTEMPT: &str = "http://adlnet.gov/expapi/activities/attempt";
pub const TYPE_OBJECTIVE: &str = "http://adlnet.gov/expapi/activities/objective";
/// The xAPI specification's type for interaction activities (the profile's table says
/// `…/interaction`; xAPI Data 2.4.4.1 says `cmi.interaction`, which tools recognise).
pub const TYPE_INTERACTION: &str = "http://adlnet.gov/expapi/activities/cmi.interaction";

pub const STATE_ACTIVITY: &str = "https://w3id.org/xapi/scorm/activity-state";
pub const STATE_ATTEMPT: &str = "https://w3id.org/xapi/scorm/attempt-state";
pub const STATE_SUSPEND_DATA: &str = "https://w3id.org/xapi/scorm/types/adl-suspend-data";
pub const PROFILE_ACTIVITY: &str = "https://w3id.org/xapi/scorm/activity-profile";
pub const PROFILE_AGENT: &str = "https://w3id.org/xapi/scorm/agent-profile";
/// This LRS's own state document (on the SCO, per registration): the whole committed
/// model, the attempt and how the last session ended. The profile's attempt state has no
/// room for statuses, scores, objectives or interactions, which a relaunch must restore.
pub const STATE_RUNTIME: &str = "https://karmayogi-lrs.local/xapi/scorm/runtime-state";

/// An activity: its IRI and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: String,
    pub name: String,
}

/// Which API call the commit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitEvent {
    Initialize,
    Commit,
    Terminate,
}

/// One call to map: who, what, when, and the model before and after.
#[derive(Debug, Clone)]
pub struct CommitInput<'a> {
    pub version: ScormVersion,
    pub course: &'a Activity,
    pub sco: &'a Activity,
    /// The learner (an xAPI Agent).
    pub actor: &'a Value,
    pub registration: Uuid,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When `Initialize` was called in this session (identifies the session).
    pub session_start: DateTime<Utc>,
    /// When this call happened (statement timestamps).
    pub now: DateTime<Utc>,
    pub event: CommitEvent,
    /// The model as last committed (at `Initialize`: as restored).
    pub previous: &'a Model,
    /// The model now.
    pub current: &'a Model,
    /// The language tag of names and descriptions, e.g. `en-US`.
    pub language: &'a str,
}

/// Where a document goes.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentTarget {
    State {
        activity_id: String,
        agent: Value,
        registration: Option<Uuid>,
        state_id: String,
    },
    ActivityProfile {
        activity_id: String,
        profile_id: String,
    },
    AgentProfile {
        agent: Value,
        profile_id: String,
    },
}

/// What to write.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentBody {
    /// Merge into the JSON document (xAPI POST semantics).
    Merge(Value),
    /// Replace the document (PUT).
    Replace {
        content_type: &'static str,
        content: Vec<u8>,
    },
    /// Add this attempt IRI to the activity state's `attempts` (read, then
    /// [`activity_state_with_attempt`], then write).
    AppendAttempt(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentWrite {
    pub target: DocumentTarget,
    pub body: DocumentBody,
}

/// Statements and documents to store for one commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitOutput {
    pub statements: Vec<Value>,
    pub documents: Vec<DocumentWrite>,
}

/// Percent-encodes an id for use as one IRI path segment.
fn segment(id: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(id, SET).to_string()
}

/// The SCO IRI: `<course IRI>/sco/<item identifier>`.
pub fn sco_iri(course_iri: &str, item_identifier: &str) -> String {
    format!(
        "{}/sco/{}",
        course_iri.trim_end_matches('/'),
        segment(item_identifier)
    )
}

/// The attempt IRI: `<SCO IRI>/attempt/<UUIDv5(registration, attempt)>` (the profile's
/// query examples' shape; a UUID keeps attempts of different registrations apart without
/// putting the registration in an IRI).
pub fn attempt_iri(sco_iri: &str, registration: Uuid, attempt: u32) -> String {
    let id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{sco_iri}#registration={registration}&attempt={attempt}").as_bytes(),
    );
    format!("{sco_iri}/attempt/{id}")
}

/// An interaction's IRI: `<SCO IRI>/interactions/<id>`.
pub fn interaction_iri(sco_iri: &str, id: &str) -> String {
    format!("{sco_iri}/interactions/{}", segment(id))
}

/// An objective's IRI: `<SCO IRI>/objectives/<id>` (objectives are taken as local to the
/// SCO: the run-time data cannot tell a global objective).
pub fn objective_iri(sco_iri: &str, id: &str) -> String {
    format!("{sco_iri}/objectives/{}", segment(id))
}

/// A statement id: UUIDv5 of the attempt and the event key.
fn statement_id(input: &CommitInput<'_>, key: &str) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!(
            "{}#registration={}&attempt={}&event={key}",
            input.sco.id, input.registration, input.attempt
        )
        .as_bytes(),
    )
    .to_string()
}

fn session_key(input: &CommitInput<'_>) -> String {
    input
        .session_start
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A canonical string of a JSON value (object keys are sorted by serde_json's map).
fn canonical(v: &Value) -> String {
    v.to_string()
}

/// Element names of the two versions for the same concept.
pub(super) struct Names {
    pub(super) entry: &'static str,
    pub(super) exit: &'static str,
    pub(super) location: &'static str,
    pub(super) credit: &'static str,
    pub(super) mode: &'static str,
    pub(super) total_time: &'static str,
    pub(super) session_time: &'static str,
    pub(super) suspend_data: &'static str,
    pub(super) learner_id: &'static str,
    pub(super) learner_name: &'static str,
    pub(super) response: &'static str,
}

pub(super) fn names(version: ScormVersion) -> Names {
    match version {
        ScormVersion::Scorm12 => Names {
            entry: "cmi.core.entry",
            exit: "cmi.core.exit",
            location: "cmi.core.lesson_location",
            credit: "cmi.core.credit",
            mode: "cmi.core.lesson_mode",
            total_time: "cmi.core.total_time",
            session_time: "cmi.core.session_time",
            suspend_data: "cmi.suspend_data",
            learner_id: "cmi.core.student_id",
            learner_name: "cmi.core.student_name",
            response: "student_response",
        },
        ScormVersion::Scorm2004 => Names {
            entry: "cmi.entry",
            exit: "cmi.exit",
            location: "cmi.location",
            credit: "cmi.credit",
            mode: "cmi.mode",
            total_time: "cmi.total_time",
            session_time: "cmi.session_time",
            suspend_data: "cmi.suspend_data",
            learner_id: "cmi.learner_id",
            learner_name: "cmi.learner_name",
            response: "learner_response",
        },
    }
}

fn get<'m>(m: &'m Model, k: &str) -> Option<&'m str> {
    m.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

fn num(m: &Model, k: &str) -> Option<f64> {
    get(m, k)
        .filter(|v| datamodel::is_real(v))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// Centiseconds of a 1.2 `CMITimespan` (`HHHH:MM:SS.SS`).
pub fn timespan12_centis(s: &str) -> Option<u64> {
    let mut parts = s.trim().split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || h.is_empty() || !h.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u64 = h.parse().ok()?;
    let m: u64 = m.parse().ok().filter(|m| *m < 60)?;
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let whole: u64 = whole.parse().ok().filter(|s| *s < 60)?;
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cs: u64 = format!("{frac:0<2}").parse().ok()?;
    Some(((h * 60 + m) * 60 + whole) * 100 + cs)
}

/// Centiseconds of an ISO 8601 duration (`PnYnMnDTnHnMnS`; a year is 365 days and a month
/// 30, as ISO 8601 leaves them open and SCORM sessions never reach them).
pub fn iso_duration_centis(s: &str) -> Option<u64> {
    if !datamodel::is_duration(s) {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut number = String::new();
    let mut in_time = false;
    for c in s.chars().skip(1) {
        match c {
            'T' => in_time = true,
            '0'..='9' | '.' => number.push(c),
            unit => {
                let v: f64 = number.parse().ok()?;
                number.clear();
                let seconds = match (unit, in_time) {
                    ('Y', false) => 365.0 * 86_400.0,
                    ('M', false) => 30.0 * 86_400.0,
                    ('D', false) => 86_400.0,
                    ('H', true) => 3_600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return None,
                };
                total += v * seconds;
            }
        }
    }
    let cs = (total * 100.0).round();
    (cs.is_finite() && (0.0..1.0e17).contains(&cs)).then_some(cs as u64)
}

/// An ISO 8601 duration from centiseconds: `PT1H2M3.45S`, `PT0S`.
pub fn centis_to_iso(cs: u64) -> String {
    let h = cs / 360_000;
    let m = (cs / 6_000) % 60;
    let s = (cs / 100) % 60;
    let frac = cs % 100;
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || frac > 0 || (h == 0 && m == 0) {
        if frac > 0 {
            let f = format!("{frac:02}");
            out.push_str(&format!("{s}.{}S", f.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

/// A 1.2 `CMITimespan` from centiseconds (hours capped at 9999).
pub fn centis_to_timespan12(cs: u64) -> String {
    let h = (cs / 360_000).min(9_999);
    let m = (cs / 6_000) % 60;
    let s = (cs / 100) % 60;
    format!("{h:04}:{m:02}:{s:02}.{:02}", cs % 100)
}

/// A model time value (1.2 timespan or 2004 duration) in centiseconds.
fn time_centis(version: ScormVersion, s: &str) -> Option<u64> {
    match version {
        ScormVersion::Scorm12 => timespan12_centis(s),
        ScormVersion::Scorm2004 => iso_duration_centis(s),
    }
}

fn lang_map(language: &str, text: &str) -> Value {
    let mut m = Map::new();
    m.insert(language.to_string(), Value::String(text.to_string()));
    Value::Object(m)
}

fn activity(id: &str, kind: &str, name: &str, language: &str) -> Value {
    let mut definition = json!({ "type": kind });
    if !name.trim().is_empty() {
        definition["name"] = lang_map(language, name);
    }
    json!({ "objectType": "Activity", "id": id, "definition": definition })
}

/// The result score of a model's score elements: raw/min/max as given (min and max are
/// dropped when raw is outside them, which xAPI forbids), scaled as given (2004) or, for
/// 1.2, derived from raw within min..max, else raw/100 as the profile suggests.
fn score(version: ScormVersion, m: &Model, prefix: &str) -> Option<Value> {
    let raw = num(m, &format!("{prefix}.raw"));
    let mut min = num(m, &format!("{prefix}.min"));
    let mut max = num(m, &format!("{prefix}.max"));
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            min = None;
            max = None;
        }
    }
    if let Some(r) = raw {
        if min.is_some_and(|lo| r < lo) || max.is_some_and(|hi| r > hi) {
            min = None;
            max = None;
        }
    }
    let scaled = match version {
        ScormVersion::Scorm2004 => num(m, &format!("{prefix}.scaled")),
        ScormVersion::Scorm12 => match (raw, min, max) {
            (Some(r), Some(lo), Some(hi)) if hi > lo => Some((r - lo) / (hi - lo)),
            (Some(r), None, None) if (0.0..=100.0).contains(&r) => Some(r / 100.0),
            _ => None,
        },
    }
    .filter(|s| (-1.0..=1.0).contains(s));
    let mut out = Map::new();
    if let Some(s) = scaled {
        out.insert("scaled".into(), json!(s));
    }
    if let Some(r) = raw {
        out.insert("raw".into(), json!(r));
    }
    if let Some(v) = min {
        out.insert("min".into(), json!(v));
    }
    if let Some(v) = max {
        out.insert("max".into(), json!(v));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn score_prefix(version: ScormVersion) -> &'static str {
    match version {
        ScormVersion::Scorm12 => "cmi.core.score",
        ScormVersion::Scorm2004 => "cmi.score",
    }
}

/// `(completion, success)` of the SCO, as far as the model tells.
fn statuses(version: ScormVersion, m: &Model) -> (Option<bool>, Option<bool>) {
    match version {
        ScormVersion::Scorm12 => match get(m, "cmi.core.lesson_status") {
            // 1.2 has one status: passed and failed both close the lesson.
            Some("completed") => (Some(true), None),
            Some("passed") => (Some(true), Some(true)),
            Some("failed") => (Some(true), Some(false)),
            Some("incomplete") | Some("browsed") => (Some(false), None),
            _ => (None, None),
        },
        ScormVersion::Scorm2004 => {
            let completion = match get(m, "cmi.completion_status") {
                Some("completed") => Some(true),
                Some("incomplete") => Some(false),
                _ => None,
            };
            let success = match get(m, "cmi.success_status") {
                Some("passed") => Some(true),
                Some("failed") => Some(false),
                _ => None,
            };
            (completion, success)
        }
    }
}

/// The 1.2 `,`/`.` delimiters of a response become xAPI's `[,]` / `[.]`; a `{…}` set
/// wrapper is dropped; true-false `t`/`f`/`1`/`0` become `true`/`false`.
pub fn convert_response_12(kind: &str, value: &str) -> String {
    let v = value.trim();
    match kind {
        "true-false" => match v.to_ascii_lowercase().as_str() {
            "t" | "1" | "true" => "true".into(),
            "f" | "0" | "false" => "false".into(),
            _ => v.to_string(),
        },
        "choice" | "sequencing" => {
            let inner = v
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .unwrap_or(v);
            inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("[,]")
        }
        "matching" => {
            let inner = v
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .unwrap_or(v);
            inner
                .split(',')
                .map(|pair| pair.trim().replacen('.', "[.]", 1))
                .collect::<Vec<_>>()
                .join("[,]")
        }
        _ => v.to_string(),
    }
}

/// A response in xAPI form (2004 already uses xAPI's delimiters).
fn xapi_response(version: ScormVersion, kind: &str, value: &str) -> String {
    match version {
        ScormVersion::Scorm12 => convert_response_12(kind, value),
        ScormVersion::Scorm2004 => value.to_string(),
    }
}

/// Builds statements for one commit.
struct Builder<'a, 'i> {
    input: &'a CommitInput<'i>,
    attempt_iri: String,
    out: Vec<Value>,
}

impl Builder<'_, '_> {
    fn context(&self, parent: bool) -> Value {
        let i = self.input;
        let mut activities = json!({
            "grouping": [
                activity(&i.course.id, TYPE_COURSE, &i.course.name, i.language),
                activity(&self.attempt_iri, TYPE_ATTEMPT,
                    &format!("Attempt {} of {}", i.attempt, i.sco.name), i.language),
            ],
            "category": [ { "objectType": "Activity", "id": PROFILE_ID,
                "definition": { "type": TYPE_PROFILE } } ],
        });
        if parent {
            activities["parent"] =
                json!([activity(&i.sco.id, TYPE_LESSON, &i.sco.name, i.language)]);
        }
        json!({ "registration": i.registration.to_string(), "contextActivities": activities })
    }

    fn sco(&self) -> Value {
        activity(
            &self.input.sco.id,
            TYPE_LESSON,
            &self.input.sco.name,
            self.input.language,
        )
    }

    /// Adds a statement; `key` identifies the event within the attempt.
    fn push(
        &mut self,
        key: &str,
        verb: &str,
        object: Value,
        result: Option<Value>,
        at: DateTime<Utc>,
    ) {
        let parent = object["id"] != self.input.sco.id.as_str();
        let display = verb.rsplit('/').next().unwrap_or(verb);
        let mut s = json!({
            "id": statement_id(self.input, key),
            "actor": self.input.actor,
            "verb": { "id": verb, "display": { "en-US": display } },
            "object": object,
            "context": self.context(parent),
            "timestamp": timestamp(at),
        });
        if let Some(r) = result.filter(|r| r.as_object().is_some_and(|o| !o.is_empty())) {
            s["result"] = r;
        }
        self.out.push(s);
    }
}

/// The result of a status statement: success/completion/score as the model has them.
fn status_result(version: ScormVersion, m: &Model, with_score: bool) -> Value {
    let (completion, success) = statuses(version, m);
    let mut r = Map::new();
    if let Some(s) = success {
        r.insert("success".into(), json!(s));
    }
    if let Some(c) = completion {
        r.insert("completion".into(), json!(c));
    }
    if with_score {
        if let Some(s) = score(version, m, score_prefix(version)) {
            r.insert("score".into(), s);
        }
    }
    Value::Object(r)
}

/// Maps one commit to statements and document writes.
pub fn map_commit(input: &CommitInput<'_>) -> CommitOutput {
    let version = input.version;
    let n = names(version);
    let (prev, cur) = (input.previous, input.current);
    let mut b = Builder {
        input,
        attempt_iri: attempt_iri(&input.sco.id, input.registration, input.attempt),
        out: Vec::new(),
    };
    let session = session_key(input);
    // 1.2 enters an unfinished attempt again with entry "": a resumption too.
    let entry = cur.get(n.entry).map(String::as_str);
    let resumed = input.event == CommitEvent::Initialize
        && (entry == Some("resume") || (version == ScormVersion::Scorm12 && entry == Some("")));

    if input.event == CommitEvent::Initialize {
        if resumed {
            b.push(
                &format!("resumed/{session}"),
                VERB_RESUMED,
                b.sco(),
                None,
                input.session_start,
            );
        } else {
            b.push(
                "initialized",
                VERB_INITIALIZED,
                b.sco(),
                None,
                input.session_start,
            );
        }
    }

    map_status_changes(&mut b, prev, cur);
    map_score_change(&mut b, prev, cur);
    map_progress(&mut b, prev, cur);
    map_interactions(&mut b, prev, cur);
    map_objectives(&mut b, prev, cur);
    map_comments(&mut b, prev, cur);

    // The model as stored after this call: total time grows by the session time at the end.
    let mut stored = cur.clone();
    let mut status = "active";
    if input.event == CommitEvent::Terminate {
        let session_cs = get(cur, n.session_time)
            .and_then(|s| time_centis(version, s))
            .unwrap_or_else(|| {
                let ms = (input.now - input.session_start).num_milliseconds().max(0);
                u64::try_from(ms / 10).unwrap_or(0)
            });
        let total_cs = get(cur, n.total_time)
            .and_then(|s| time_centis(version, s))
            .unwrap_or(0)
            .saturating_add(session_cs);
        let total = match version {
            ScormVersion::Scorm12 => centis_to_timespan12(total_cs),
            ScormVersion::Scorm2004 => centis_to_iso(total_cs),
        };
        stored.insert(n.total_time.to_string(), total);
        let suspend = get(cur, n.exit) == Some("suspend");
        let mut result = status_result(version, cur, true);
        result["duration"] = json!(centis_to_iso(session_cs));
        if suspend {
            status = "suspended";
            b.push(
                &format!("suspended/{session}"),
                VERB_SUSPENDED,
                b.sco(),
                Some(result),
                input.now,
            );
        } else {
            status = "terminated";
            b.push(
                &format!("terminated/{session}"),
                VERB_TERMINATED,
                b.sco(),
                Some(result),
                input.now,
            );
        }
    }
    // Write-only values of a session do not carry over.
    stored.remove(n.exit);
    stored.remove(n.session_time);
    stored.remove("adl.nav.request");

    let documents = documents(input, &b.attempt_iri, prev, &stored, status, resumed);
    CommitOutput {
        statements: b.out,
        documents,
    }
}

fn changed(prev: &Model, cur: &Model, k: &str) -> bool {
    prev.get(k) != cur.get(k)
}

fn map_status_changes(b: &mut Builder<'_, '_>, prev: &Model, cur: &Model) {
    let version = b.input.version;
    let now = b.input.now;
    let session = session_key(b.input);
    let emit = |b: &mut Builder<'_, '_>, verb: &str, name: &str, with_score: bool| {
        let result = status_result(version, cur, with_score);
        let key = format!("{name}/{session}/{}", canonical(&result));
        b.push(&key, verb, b.sco(), Some(result), now);
    };
    match version {
        ScormVersion::Scorm12 => {
            let k = "cmi.core.lesson_status";
            if changed(prev, cur, k) {
                match get(cur, k) {
                    Some("completed") => emit(b, VERB_COMPLETED, "completed", false),
                    Some("passed") => emit(b, VERB_PASSED, "passed", true),
                    Some("failed") => emit(b, VERB_FAILED, "failed", true),
                    _ => {}
                }
            }
        }
        ScormVersion::Scorm2004 => {
            if changed(prev, cur, "cmi.completion_status")
                && get(cur, "cmi.completion_status") == Some("completed")
            {
                emit(b, VERB_COMPLETED, "completed", false);
            }
            if changed(prev, cur, "cmi.success_status") {
                match get(cur, "cmi.success_status") {
                    Some("passed") => emit(b, VERB_PASSED, "passed", true),
                    Some("failed") => emit(b, VERB_FAILED, "failed", true),
                    _ => {}
                }
            }
        }
    }
}

fn map_score_change(b: &mut Builder<'_, '_>, prev: &Model, cur: &Model) {
    let version = b.input.version;
    let prefix = score_prefix(version);
    let (before, after) = (score(version, prev, prefix), score(version, cur, prefix));
    if after.is_some() && before != after {
        let result = json!({ "score": after });
        let key = format!("scored/{}/{}", session_key(b.input), canonical(&result));
        b.push(&key, VERB_SCORED, b.sco(), Some(result), b.input.now);
    }
}

fn map_progress(b: &mut Builder<'_, '_>, prev: &Model, cur: &Model) {
    if b.input.version != ScormVersion::Scorm2004 {
        return;
    }
    let k = "cmi.progress_measure";
    if let Some(p) = num(cur, k).filter(|p| (0.0..=1.0).contains(p)) {
        if changed(prev, cur, k) {
            // The profile records progress as the scaled score of a `progressed` statement.
            let result = json!({ "score": { "scaled": p } });
            let key = format!("progressed/{}/{}", session_key(b.input), canonical(&result));
            b.push(&key, VERB_PROGRESSED, b.sco(), Some(result), b.input.now);
        }
    }
}

/// The fields of one collection entry (`cmi.interactions.3.*`), in a sorted map.
fn entry(m: &Model, prefix: &str, i: usize) -> std::collections::BTreeMap<String, String> {
    let start = format!("{prefix}.{i}.");
    m.range(start.clone()..)
        .take_while(|(k, _)| k.starts_with(&start))
        .map(|(k, v)| (k[start.len()..].to_string(), v.clone()))
        .collect()
}

fn map_interactions(b: &mut Builder<'_, '_>, prev: &Model, cur: &Model) {
    let version = b.input.version;
    let response_field = names(version).response;
    let count = datamodel::collection_count(cur, "cmi.interactions");
    for i in 0..count {
        let now = entry(cur, "cmi.interactions", i);
        if now == entry(prev, "cmi.interactions", i) {
            continue;
        }
        let response = now.get(response_field).cloned();
        let outcome = now.get("result").cloned();
        // Nothing answered yet: the learner has not responded.
        if response.is_none() && outcome.is_none() {
            continue;
        }
        let id = now
            .get("id")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("interaction-{i}"));
        let kind = now.get("type").cloned().unwrap_or_default();
        let mut definition = json!({ "type": TYPE_INTERACTION });
        if !kind.is_empty() {
            definition["interactionType"] = json!(kind);
            let patterns: Vec<String> = (0..)
                .map_while(|j| now.get(&format!("correct_responses.{j}.pattern")))
                .map(|p| xapi_response(version, &kind, p))
                .collect();
            if !patterns.is_empty() {
                definition["correctResponsesPattern"] = json!(patterns);
            }
        }
        let description = now
            .get("description")
            .map(|d| datamodel::strip_lang(d).to_string())
            .filter(|d| !d.trim().is_empty());
        definition["name"] = lang_map(b.input.language, description.as_deref().unwrap_or(&id));
        if let Some(d) = &description {
            definition["description"] = lang_map(b.input.language, d);
        }
        let object = json!({
            "objectType": "Activity",
            "id": interaction_iri(&b.input.sco.id, &id),
            "definition": definition,
        });
        let mut result = Map::new();
        if let Some(r) = &response {
            result.insert("response".into(), json!(xapi_response(version, &kind, r)));
        }
        match outcome.as_deref() {
            Some("correct") => {
                result.insert("success".into(), json!(true));
            }
            Some("incorrect") | Some("wrong") => {
                result.insert("success".into(), json!(false));
            }
            Some(v) if datamodel::is_real(v) => {
                if let Ok(x) = v.parse::<f64>() {
                    result.insert("score".into(), json!({ "raw": x }));
                }
            }
            _ => {}
        }
        if let Some(cs) = now.get("latency").and_then(|l| time_centis(version, l)) {
            result.insert("duration".into(), json!(centis_to_iso(cs)));
        }
        let result = Value::Object(result);
        let key = format!(
            "responded/{i}/{}/{}",
            canonical(&object),
            canonical(&result)
        );
        b.push(&key, VERB_RESPONDED, object, Some(result), b.input.now);
    }
}

fn map_objectives(b: &mut Builder<'_, '_>, prev: &Model, cur: &Model) {
    let version = b.input.version;
    let count = datamodel::collection_count(cur, "cmi.objectives");
    for i in 0..count {
        let (before, now) = (
            entry(prev, "cmi.objectives", i),
            entry(cur, "cmi.objectives", i),
        );
        if before == now {
            continue;
        }
        let Some(id) = now.get("id").filter(|s| !s.is_empty()).cloned() else {
            continue;
        };
        let name = now
            .get("description")
            .map(|d| datamodel::strip_lang(d).to_string())
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| id.clone());
        let object = activity(
            &objective_iri(&b.input.sco.id, &id),
            TYPE_OBJECTIVE,
            &name,
            b.input.language,
        );
        let prefix = format!("cmi.objectives.{i}.score");
        let objective_score = score(version, cur, &prefix);
        let field_changed = |f: &str| before.get(f) != now.get(f);
        let mut emits: Vec<(&str, Value)> = Vec::new();
        match version {
            ScormVersion::Scorm12 => {
                if field_changed("status") {
                    let mut with_score = json!({});
                    if let Some(s) = &objective_score {
                        with_score["score"] = s.clone();
                    }
                    match now.get("status").map(String::as_str) {
                        Some("passed") => {
                            with_score["success"] = json!(true);
                            with_score["completion"] = json!(true);
                            emits.push((VERB_PASSED, with_score));
                        }
                        Some("failed") => {
                            with_score["success"] = json!(false);
                            with_score["completion"] = json!(true);
                            emits.push((VERB_FAILED, with_score));
                        }
                        Some("completed") => {
                            emits.push((VERB_COMPLETED, json!({ "completion": true })))
                        }
                        _ => {}
                    }
                }
            }
            ScormVersion::Scorm2004 => {
                if field_changed("completion_status")
                    && now.get("completion_status").map(String::as_str) == Some("completed")
                {
                    emits.push((VERB_COMPLETED, json!({ "completion": true })));
                }
                if field_changed("success_status") {
                    let mut r = json!({});
                    if let Some(s) = &objective_score {
                        r["score"] = s.clone();
                    }
                    match now.get("success_status").map(String::as_str) {
                        Some("passed") => {
                            r["success"] = json!(true);
                            emits.push((VERB_PASSED, r));
                        }
                        Some("failed") => {
                            r["success"] = json!(false);
                            emits.push((VERB_FAILED, r));
                        }
                        _ => {}
                    }
                }
            }
        }
        if objective_score.is_some() && score(version, prev, &prefix) != objective_score {
            emits.push((VERB_SCORED, json!({ "score": objective_score })));
        }
        for (verb, result) in emits {
            let key = format!(
                "objective/{i}/{}/{}/{}",
                verb.rsplit('/').next().unwrap_or(verb),
                session_key(b.input),
                canonical(&result)
            );
            b.push(&key, verb, object.clone(), Some(result), b.input.now);
        }
    }
}

fn map_comments(b: &mut Builder<'_, '_>, prev: &Model, cur: &Model) {
    let sco = b.sco();
    match b.input.version {
        ScormVersion::Scorm12 => {
            let k = "cmi.comments";
            if !changed(prev, cur, k) {
                return;
            }
            let (before, now) = (get(prev, k).unwrap_or(""), get(cur, k).unwrap_or(""));
            // 1.2 comments are appended to: the new part is the comment.
            let added = now.strip_prefix(before).unwrap_or(now).trim();
            if !added.is_empty() {
                let result = json!({ "response": added });
                let key = format!("commented/{}/{}", session_key(b.input), canonical(&result));
                b.push(&key, VERB_COMMENTED, sco, Some(result), b.input.now);
            }
        }
        ScormVersion::Scorm2004 => {
            let count = datamodel::collection_count(cur, "cmi.comments_from_learner");
            for i in 0..count {
                let now = entry(cur, "cmi.comments_from_learner", i);
                if now == entry(prev, "cmi.comments_from_learner", i) {
                    continue;
                }
                let Some(comment) = now
                    .get("comment")
                    .map(|c| datamodel::strip_lang(c).trim().to_string())
                    .filter(|c| !c.is_empty())
                else {
                    continue;
                };
                let result = json!({ "response": comment });
                let key = format!("commented/{i}/{}", canonical(&result));
                b.push(&key, VERB_COMMENTED, sco.clone(), Some(result), b.input.now);
            }
        }
    }
}

/// `Number` for a model value that is a real.
fn json_num(m: &Model, k: &str) -> Option<Value> {
    num(m, k).map(|v| json!(v))
}

/// Captioning as the profile's integer -1, 0 or 1.
fn captioning(m: &Model, k: &str) -> Option<Value> {
    match get(m, k) {
        Some("-1") => Some(json!(-1)),
        Some("0") => Some(json!(0)),
        Some("1") => Some(json!(1)),
        _ => None,
    }
}

/// The profile's preferences object from the model (1.2 values rescaled, see docs).
fn preferences(version: ScormVersion, m: &Model) -> Map<String, Value> {
    let mut p = Map::new();
    match version {
        ScormVersion::Scorm2004 => {
            for (k, field) in [
                ("cmi.learner_preference.audio_level", "audio_level"),
                ("cmi.learner_preference.delivery_speed", "delivery_speed"),
            ] {
                if let Some(v) = json_num(m, k) {
                    p.insert(field.into(), v);
                }
            }
            if let Some(c) = captioning(m, "cmi.learner_preference.audio_captioning") {
                p.insert("audio_captioning".into(), c);
            }
            if let Some(l) = get(m, "cmi.learner_preference.language") {
                p.insert("language".into(), json!(l));
            }
        }
        ScormVersion::Scorm12 => {
            // audio: -1 off, 0 "no change" (the default level 1), 1..100 → 0.01..1.
            if let Some(a) = num(m, "cmi.student_preference.audio") {
                let level = if a < 0.0 {
                    0.0
                } else if a == 0.0 {
                    1.0
                } else {
                    a / 100.0
                };
                p.insert("audio_level".into(), json!(level));
            }
            // speed: -100..100 around 0 → 0..2 around the default 1.
            if let Some(s) = num(m, "cmi.student_preference.speed") {
                p.insert("delivery_speed".into(), json!(1.0 + s / 100.0));
            }
            if let Some(c) = captioning(m, "cmi.student_preference.text") {
                p.insert("audio_captioning".into(), c);
            }
            if let Some(l) = get(m, "cmi.student_preference.language") {
                p.insert("language".into(), json!(l));
            }
        }
    }
    p
}

/// The profile's attempt state from the model.
pub fn attempt_state(version: ScormVersion, m: &Model) -> Value {
    let n = names(version);
    let mut s = Map::new();
    if let Some(l) = get(m, n.location) {
        s.insert("location".into(), json!(l));
    }
    if let Some(c) = get(m, n.credit) {
        s.insert("credit".into(), json!(c));
    }
    if let Some(mode) = get(m, n.mode) {
        s.insert("mode".into(), json!(mode));
    }
    if let Some(cs) = get(m, n.total_time).and_then(|t| time_centis(version, t)) {
        s.insert("total_time".into(), json!(centis_to_iso(cs)));
    }
    let p = preferences(version, m);
    if !p.is_empty() {
        s.insert("preferences".into(), Value::Object(p));
    }
    let comments: Vec<Value> = match version {
        ScormVersion::Scorm12 => get(m, "cmi.comments_from_lms")
            .map(|c| vec![json!({ "comment": c })])
            .unwrap_or_default(),
        ScormVersion::Scorm2004 => (0..datamodel::collection_count(m, "cmi.comments_from_lms"))
            .map(|i| {
                let e = entry(m, "cmi.comments_from_lms", i);
                let mut c = Map::new();
                if let Some(v) = e.get("comment") {
                    c.insert("comment".into(), json!(datamodel::strip_lang(v)));
                }
                if let Some(v) = e.get("location") {
                    c.insert("location".into(), json!(v));
                }
                if let Some(v) = e.get("timestamp") {
                    c.insert("timestamp".into(), json!(v));
                }
                Value::Object(c)
            })
            .collect(),
    };
    if !comments.is_empty() {
        s.insert("comments_from_lms".into(), json!(comments));
    }
    Value::Object(s)
}

/// The profile's activity profile (values the same for every learner).
pub fn activity_profile(version: ScormVersion, m: &Model) -> Value {
    let mut p = Map::new();
    if let Some(d) = get(m, "cmi.launch_data") {
        p.insert("launch_data".into(), json!(d));
    }
    let (passing, max_time, action) = match version {
        ScormVersion::Scorm12 => (
            num(m, "cmi.student_data.mastery_score").map(|v| v / 100.0),
            get(m, "cmi.student_data.max_time_allowed").and_then(timespan12_centis),
            get(m, "cmi.student_data.time_limit_action"),
        ),
        ScormVersion::Scorm2004 => (
            num(m, "cmi.scaled_passing_score"),
            get(m, "cmi.max_time_allowed").and_then(iso_duration_centis),
            get(m, "cmi.time_limit_action"),
        ),
    };
    if let Some(v) = passing.filter(|v| (-1.0..=1.0).contains(v)) {
        p.insert("scaled_passing_score".into(), json!(v));
    }
    if let Some(v) = num(m, "cmi.completion_threshold") {
        p.insert("completion_threshold".into(), json!(v));
    }
    // The profile's schema makes max_time_allowed a number: seconds.
    if let Some(cs) = max_time {
        p.insert("max_time_allowed".into(), json!(cs as f64 / 100.0));
    }
    if let Some(a) = action {
        p.insert("time_limit_action".into(), json!(a));
    }
    Value::Object(p)
}

/// The profile's agent profile (who the learner is to the LMS).
pub fn agent_profile(version: ScormVersion, m: &Model) -> Value {
    let n = names(version);
    let mut p = Map::new();
    if let Some(id) = get(m, n.learner_id) {
        p.insert("learner_id".into(), json!(id));
    }
    if let Some(name) = get(m, n.learner_name) {
        p.insert("learner_name".into(), json!(datamodel::strip_lang(name)));
    }
    Value::Object(p)
}

/// The activity state with `attempt` added to `attempts` (once).
pub fn activity_state_with_attempt(existing: Option<&Value>, attempt: &str) -> Value {
    let mut attempts: Vec<Value> = existing
        .and_then(|e| e.get("attempts"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !attempts.iter().any(|a| a == attempt) {
        attempts.push(json!(attempt));
    }
    json!({ "attempts": attempts })
}

fn documents(
    input: &CommitInput<'_>,
    attempt_iri: &str,
    prev: &Model,
    stored: &Model,
    status: &str,
    resumed: bool,
) -> Vec<DocumentWrite> {
    let version = input.version;
    let n = names(version);
    let agent = input.actor.clone();
    let state = |activity_id: &str, state_id: &str| DocumentTarget::State {
        activity_id: activity_id.to_string(),
        agent: agent.clone(),
        registration: Some(input.registration),
        state_id: state_id.to_string(),
    };
    let mut docs = Vec::new();
    let initialize = input.event == CommitEvent::Initialize;
    if initialize && !resumed {
        docs.push(DocumentWrite {
            target: DocumentTarget::State {
                activity_id: input.sco.id.clone(),
                agent: agent.clone(),
                registration: None,
                state_id: STATE_ACTIVITY.to_string(),
            },
            body: DocumentBody::AppendAttempt(attempt_iri.to_string()),
        });
    }
    if initialize {
        let profile = activity_profile(version, stored);
        if profile.as_object().is_some_and(|o| !o.is_empty()) {
            docs.push(DocumentWrite {
                target: DocumentTarget::ActivityProfile {
                    activity_id: input.sco.id.clone(),
                    profile_id: PROFILE_ACTIVITY.to_string(),
                },
                body: DocumentBody::Merge(profile),
            });
        }
        let who = agent_profile(version, stored);
        if who.as_object().is_some_and(|o| !o.is_empty()) {
            docs.push(DocumentWrite {
                target: DocumentTarget::AgentProfile {
                    agent: agent.clone(),
                    profile_id: PROFILE_AGENT.to_string(),
                },
                body: DocumentBody::Merge(who),
            });
        }
    }
    let attempt_doc = attempt_state(version, stored);
    if initialize || attempt_doc != attempt_state(version, prev) {
        docs.push(DocumentWrite {
            target: state(attempt_iri, STATE_ATTEMPT),
            body: DocumentBody::Merge(attempt_doc),
        });
    }
    if stored.get(n.suspend_data) != prev.get(n.suspend_data) {
        docs.push(DocumentWrite {
            target: state(attempt_iri, STATE_SUSPEND_DATA),
            body: DocumentBody::Replace {
                content_type: "text/plain; charset=utf-8",
                content: stored
                    .get(n.suspend_data)
                    .cloned()
                    .unwrap_or_default()
                    .into_bytes(),
            },
        });
    }
    let runtime = json!({
        "version": version.as_str(),
        "attempt": input.attempt,
        "attempt_iri": attempt_iri,
        "status": status,
        "model": stored,
    });
    docs.push(DocumentWrite {
        target: state(&input.sco.id, STATE_RUNTIME),
        body: DocumentBody::Replace {
            content_type: "application/json",
            content: runtime.to_string().into_bytes(),
        },
    });
    docs
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
