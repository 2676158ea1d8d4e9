//! Relaunching a SCO: whether the learner resumes the stored attempt or starts a new one,
//! and the run-time data model the SCO starts from, rebuilt from the stored documents
//! (this LRS's run-time state, the profile's attempt state, the suspend data) and the
//! values the LMS owns.
use serde_json::{Map, Value};

use super::datamodel::{self, Model};
use super::manifest::ItemValues;
use super::mapping::{centis_to_iso, centis_to_timespan12, iso_duration_centis, names};
use super::{ScormError, ScormVersion};

/// How a launch continues the learner's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchDecision {
    /// A new attempt with this number (`entry` = `ab-initio`).
    NewAttempt { attempt: u32 },
    /// The stored attempt goes on (`entry` = `resume`, or `""` for a 1.2 attempt that
    /// ended without suspending but is not finished).
    Resume { attempt: u32 },
}

/// What the LMS gives the SCO at launch (the read-only part of the model).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaunchValues {
    pub learner_id: String,
    pub learner_name: String,
    /// `credit` unless the learner is not credited.
    pub no_credit: bool,
    /// `normal`, `browse` or `review`.
    pub mode: Option<String>,
    /// From the manifest item.
    pub item: ItemValues,
}

/// The parts of a stored run-time state document.
struct RuntimeParts<'a> {
    version: ScormVersion,
    attempt: u32,
    status: &'a str,
    model: &'a Map<String, Value>,
}

fn runtime_parts(stored: &Value) -> Result<RuntimeParts<'_>, ScormError> {
    let bad = |detail: &str| ScormError::InvalidState {
        document: "SCORM run-time state".to_string(),
        detail: detail.to_string(),
    };
    let version = stored
        .get("version")
        .and_then(Value::as_str)
        .and_then(ScormVersion::parse)
        .ok_or_else(|| bad("no version"))?;
    let attempt = stored
        .get("attempt")
        .and_then(Value::as_u64)
        .and_then(|a| u32::try_from(a).ok())
        .filter(|a| *a >= 1)
        .ok_or_else(|| bad("no attempt number"))?;
    let status = stored
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no status"))?;
    let model = stored
        .get("model")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no model"))?;
    Ok(RuntimeParts {
        version,
        attempt,
        status,
        model,
    })
}

/// Decides from the stored run-time state whether a launch resumes or starts an attempt.
///
/// Suspended, or left without `Terminate` (a closed window): resume. Terminated: a new
/// attempt, except a 1.2 attempt whose status is not final (incomplete, browsed, not
/// attempted), which 1.2 content expects to find again.
pub fn launch_decision(runtime_state: Option<&Value>) -> Result<LaunchDecision, ScormError> {
    let Some(stored) = runtime_state else {
        return Ok(LaunchDecision::NewAttempt { attempt: 1 });
    };
    let RuntimeParts {
        version,
        attempt,
        status,
        model,
    } = runtime_parts(stored)?;
    Ok(match status {
        "suspended" | "active" => LaunchDecision::Resume { attempt },
        _ => {
            let lesson_status = model.get("cmi.core.lesson_status").and_then(Value::as_str);
            let unfinished = version == ScormVersion::Scorm12
                && !matches!(lesson_status, Some("completed" | "passed" | "failed"));
            if unfinished {
                LaunchDecision::Resume { attempt }
            } else {
                LaunchDecision::NewAttempt {
                    attempt: attempt.saturating_add(1),
                }
            }
        }
    })
}

/// What is stored about the learner's last attempt on a SCO.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredAttempt<'a> {
    /// This LRS's run-time state ([`STATE_RUNTIME`](super::mapping::STATE_RUNTIME)), the authoritative record.
    pub runtime_state: Option<&'a Value>,
    /// The profile's attempt state ([`STATE_ATTEMPT`](super::mapping::STATE_ATTEMPT)) of that attempt: fills what the
    /// run-time state lacks (location, total time, preferences), or stands alone for an
    /// attempt recorded by another system.
    pub attempt_state: Option<&'a Value>,
    /// The suspend data document ([`STATE_SUSPEND_DATA`](super::mapping::STATE_SUSPEND_DATA)) of that attempt.
    pub suspend_data: Option<&'a str>,
    /// The attempt the profile documents belong to, when there is no run-time state.
    pub attempt: u32,
}

/// Fills a model from the profile's attempt state where the model has no value: location,
/// total time (converted to the version's format) and preferences (the reverse of the
/// mapping in [`attempt_state`](super::mapping::attempt_state)).
pub fn overlay_attempt_state(version: ScormVersion, state: &Value, m: &mut Model) {
    let n = names(version);
    let mut fill = |k: &str, v: String| {
        m.entry(k.to_string()).or_insert(v);
    };
    if let Some(l) = state.get("location").and_then(Value::as_str) {
        fill(n.location, l.to_string());
    }
    if let Some(cs) = state
        .get("total_time")
        .and_then(Value::as_str)
        .and_then(iso_duration_centis)
    {
        let total = match version {
            ScormVersion::Scorm12 => centis_to_timespan12(cs),
            ScormVersion::Scorm2004 => centis_to_iso(cs),
        };
        fill(n.total_time, total);
    }
    let Some(p) = state.get("preferences").and_then(Value::as_object) else {
        return;
    };
    let number = |k: &str| p.get(k).and_then(Value::as_f64).filter(|v| v.is_finite());
    let language = p.get("language").and_then(Value::as_str);
    match version {
        ScormVersion::Scorm2004 => {
            if let Some(v) = number("audio_level").filter(|v| *v >= 0.0) {
                fill("cmi.learner_preference.audio_level", trim_number(v));
            }
            if let Some(v) = number("delivery_speed").filter(|v| *v >= 0.0) {
                fill("cmi.learner_preference.delivery_speed", trim_number(v));
            }
            if let Some(v) = number("audio_captioning").filter(|v| [-1.0, 0.0, 1.0].contains(v)) {
                fill("cmi.learner_preference.audio_captioning", trim_number(v));
            }
            if let Some(l) = language {
                fill("cmi.learner_preference.language", l.to_string());
            }
        }
        ScormVersion::Scorm12 => {
            if let Some(v) = number("audio_level").filter(|v| *v >= 0.0) {
                let audio = if v == 0.0 {
                    -1.0
                } else if v == 1.0 {
                    0.0
                } else {
                    (v * 100.0).round().clamp(1.0, 100.0)
                };
                fill("cmi.student_preference.audio", trim_number(audio));
            }
            if let Some(v) = number("delivery_speed").filter(|v| *v >= 0.0) {
                let speed = ((v - 1.0) * 100.0).round().clamp(-100.0, 100.0);
                fill("cmi.student_preference.speed", trim_number(speed));
            }
            if let Some(v) = number("audio_captioning").filter(|v| [-1.0, 0.0, 1.0].contains(v)) {
                fill("cmi.student_preference.text", trim_number(v));
            }
            if let Some(l) = language {
                fill("cmi.student_preference.language", l.to_string());
            }
        }
    }
}

/// The model a SCO starts from: on resume, the stored model (statuses, scores, location,
/// objectives, interactions, total time) with `entry` = `resume` and the suspend data from
/// its state document when given; on a new attempt, a fresh model. The LMS-owned values
/// (learner, credit, mode, launch data, mastery score, limits) are set from `launch` in both.
pub fn restore_model(
    version: ScormVersion,
    stored: &StoredAttempt<'_>,
    launch: &LaunchValues,
) -> Result<(Model, LaunchDecision), ScormError> {
    let runtime_state = stored.runtime_state;
    let suspend_data = stored.suspend_data;
    let decision = match runtime_state {
        Some(_) => launch_decision(runtime_state)?,
        // Only the profile's documents: an attempt with suspend data or state is resumed.
        None if stored.attempt_state.is_some() || suspend_data.is_some() => {
            LaunchDecision::Resume {
                attempt: stored.attempt.max(1),
            }
        }
        None => LaunchDecision::NewAttempt { attempt: 1 },
    };
    let n = names(version);
    let mut m = Model::new();
    let mut status_was = "";
    if let (LaunchDecision::Resume { .. }, None) = (decision, runtime_state) {
        if let Some(d) = suspend_data {
            m.insert(n.suspend_data.to_string(), d.to_string());
        }
    }
    if let (LaunchDecision::Resume { .. }, Some(stored)) = (decision, runtime_state) {
        let RuntimeParts {
            version: stored_version,
            status,
            model,
            ..
        } = runtime_parts(stored)?;
        if stored_version != version {
            return Err(ScormError::InvalidState {
                document: "SCORM run-time state".to_string(),
                detail: format!(
                    "it holds a SCORM {stored_version} model, the package is SCORM {version}"
                ),
            });
        }
        status_was = status;
        for (k, v) in model {
            if let Some(s) = v.as_str() {
                m.insert(k.clone(), s.to_string());
            }
        }
        if let Some(d) = suspend_data {
            m.insert(n.suspend_data.to_string(), d.to_string());
        }
    }
    if let (LaunchDecision::Resume { .. }, Some(state)) = (decision, stored.attempt_state) {
        overlay_attempt_state(version, state, &mut m);
    }
    let entry = match decision {
        LaunchDecision::NewAttempt { .. } => "ab-initio",
        // A 1.2 attempt that ended without suspend is entered again with "".
        LaunchDecision::Resume { .. } if status_was == "terminated" => "",
        LaunchDecision::Resume { .. } => "resume",
    };
    m.insert(n.entry.to_string(), entry.to_string());
    m.insert(n.learner_id.to_string(), launch.learner_id.clone());
    m.insert(n.learner_name.to_string(), launch.learner_name.clone());
    m.insert(
        n.credit.to_string(),
        if launch.no_credit {
            "no-credit"
        } else {
            "credit"
        }
        .to_string(),
    );
    m.insert(
        n.mode.to_string(),
        launch.mode.clone().unwrap_or_else(|| "normal".to_string()),
    );
    if !m.contains_key(n.total_time) {
        let zero = match version {
            ScormVersion::Scorm12 => "0000:00:00.00",
            ScormVersion::Scorm2004 => "PT0S",
        };
        m.insert(n.total_time.to_string(), zero.to_string());
    }
    let item = &launch.item;
    if let Some(d) = &item.launch_data {
        m.insert("cmi.launch_data".into(), d.clone());
    }
    match version {
        ScormVersion::Scorm12 => {
            if let Some(s) = item.mastery_score {
                m.insert("cmi.student_data.mastery_score".into(), trim_number(s));
            }
            if let Some(t) = &item.max_time_allowed {
                m.insert("cmi.student_data.max_time_allowed".into(), t.clone());
            }
            if let Some(a) = &item.time_limit_action {
                m.insert("cmi.student_data.time_limit_action".into(), a.clone());
            }
            m.entry("cmi.core.lesson_status".into())
                .or_insert_with(|| "not attempted".into());
        }
        ScormVersion::Scorm2004 => {
            if let Some(s) = item.scaled_passing_score {
                m.insert("cmi.scaled_passing_score".into(), trim_number(s));
            }
            if let Some(t) = item.completion_threshold {
                m.insert("cmi.completion_threshold".into(), trim_number(t));
            }
            if let Some(t) = &item.max_time_allowed {
                m.insert("cmi.max_time_allowed".into(), t.clone());
            }
            if let Some(a) = &item.time_limit_action {
                m.insert("cmi.time_limit_action".into(), a.clone());
            }
            // The manifest's objectives are there from the start (RTE 4.2.17), so content
            // can find them by id; a resumed model keeps its own and gains missing ones.
            let count = datamodel::collection_count(&m, "cmi.objectives");
            let known: Vec<&String> = (0..count)
                .filter_map(|i| m.get(&format!("cmi.objectives.{i}.id")))
                .collect();
            let missing: Vec<String> = item
                .objective_ids
                .iter()
                .filter(|id| !known.contains(id))
                .cloned()
                .collect();
            for (i, id) in missing.into_iter().enumerate() {
                m.insert(format!("cmi.objectives.{}.id", count + i), id);
            }
            m.entry("cmi.completion_status".into())
                .or_insert_with(|| "unknown".into());
            m.entry("cmi.success_status".into())
                .or_insert_with(|| "unknown".into());
        }
    }
    Ok((m, decision))
}

/// `0.8` rather than `0.8000000000000001`-style noise for values written into the model.
fn trim_number(v: f64) -> String {
    let s = format!("{v:.7}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}
