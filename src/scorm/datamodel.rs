//! The SCORM run-time data models: the SCORM 1.2 CMI data model (`cmi.core.*` …) and the
//! SCORM 2004 data model (IEEE 1484.11.1 as profiled by the SCORM 2004 RTE, `cmi.*`,
//! `adl.nav.*`, `adl.data.*`), with the error codes each API returns.
//!
//! A model is a flat map from element name (indices written out: `cmi.interactions.0.id`)
//! to its string value, as the run-time API sees it. [`validate_set`] and [`get_value`]
//! apply the rules of the standards: access (read-only, write-only), keywords
//! (`_version`, `_children`, `_count`), collections written in order, the 2004 dependencies
//! (an interaction's `id` before anything else, its `type` before responses), unique
//! objective ids, data types, vocabularies and ranges. The same tables are exported for the
//! browser runtime by [`to_json`]; the syntax patterns there are the ones used here, so both
//! sides accept the same values.
//!
//! Where authoring tools routinely exceed a limit the leniency is deliberate and listed in
//! `docs/SCORM.md` (1.2 `cmi.suspend_data` up to 64,000 characters; identifiers without
//! URI syntax checks; 1.2 scores without the 0–100 range).
use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{json, Value};

use super::ScormVersion;

/// A run-time data model: element → value.
pub type Model = BTreeMap<String, String>;

/// An error code of the run-time API (`GetLastError`), numbered per version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ErrorCode(pub u16);

/// SCORM 1.2 error codes (RTE, CMI001 3.4).
pub mod v12 {
    use super::ErrorCode;
    pub const NO_ERROR: ErrorCode = ErrorCode(0);
    pub const GENERAL_EXCEPTION: ErrorCode = ErrorCode(101);
    pub const INVALID_ARGUMENT: ErrorCode = ErrorCode(201);
    pub const CANNOT_HAVE_CHILDREN: ErrorCode = ErrorCode(202);
    pub const CANNOT_HAVE_COUNT: ErrorCode = ErrorCode(203);
    pub const NOT_INITIALIZED: ErrorCode = ErrorCode(301);
    pub const NOT_IMPLEMENTED: ErrorCode = ErrorCode(401);
    pub const KEYWORD: ErrorCode = ErrorCode(402);
    pub const READ_ONLY: ErrorCode = ErrorCode(403);
    pub const WRITE_ONLY: ErrorCode = ErrorCode(404);
    pub const INCORRECT_DATA_TYPE: ErrorCode = ErrorCode(405);
}

/// SCORM 2004 error codes (RTE 3.1.7).
pub mod v2004 {
    use super::ErrorCode;
    pub const NO_ERROR: ErrorCode = ErrorCode(0);
    pub const GENERAL_EXCEPTION: ErrorCode = ErrorCode(101);
    pub const GENERAL_INITIALIZATION_FAILURE: ErrorCode = ErrorCode(102);
    pub const ALREADY_INITIALIZED: ErrorCode = ErrorCode(103);
    pub const CONTENT_INSTANCE_TERMINATED: ErrorCode = ErrorCode(104);
    pub const GENERAL_TERMINATION_FAILURE: ErrorCode = ErrorCode(111);
    pub const TERMINATION_BEFORE_INITIALIZATION: ErrorCode = ErrorCode(112);
    pub const TERMINATION_AFTER_TERMINATION: ErrorCode = ErrorCode(113);
    pub const RETRIEVE_BEFORE_INITIALIZATION: ErrorCode = ErrorCode(122);
    pub const RETRIEVE_AFTER_TERMINATION: ErrorCode = ErrorCode(123);
    pub const STORE_BEFORE_INITIALIZATION: ErrorCode = ErrorCode(132);
    pub const STORE_AFTER_TERMINATION: ErrorCode = ErrorCode(133);
    pub const COMMIT_BEFORE_INITIALIZATION: ErrorCode = ErrorCode(142);
    pub const COMMIT_AFTER_TERMINATION: ErrorCode = ErrorCode(143);
    pub const GENERAL_ARGUMENT_ERROR: ErrorCode = ErrorCode(201);
    pub const GENERAL_GET_FAILURE: ErrorCode = ErrorCode(301);
    pub const GENERAL_SET_FAILURE: ErrorCode = ErrorCode(351);
    pub const GENERAL_COMMIT_FAILURE: ErrorCode = ErrorCode(391);
    pub const UNDEFINED_ELEMENT: ErrorCode = ErrorCode(401);
    pub const UNIMPLEMENTED_ELEMENT: ErrorCode = ErrorCode(402);
    pub const VALUE_NOT_INITIALIZED: ErrorCode = ErrorCode(403);
    pub const READ_ONLY: ErrorCode = ErrorCode(404);
    pub const WRITE_ONLY: ErrorCode = ErrorCode(405);
    pub const TYPE_MISMATCH: ErrorCode = ErrorCode(406);
    pub const OUT_OF_RANGE: ErrorCode = ErrorCode(407);
    pub const DEPENDENCY_NOT_ESTABLISHED: ErrorCode = ErrorCode(408);
}

const ERRORS_12: &[(u16, &str)] = &[
    (0, "No error"),
    (101, "General exception"),
    (201, "Invalid argument error"),
    (202, "Element cannot have children"),
    (203, "Element not an array - cannot have count"),
    (301, "Not initialized"),
    (401, "Not implemented error"),
    (402, "Invalid set value, element is a keyword"),
    (403, "Element is read only"),
    (404, "Element is write only"),
    (405, "Incorrect data type"),
];

const ERRORS_2004: &[(u16, &str)] = &[
    (0, "No Error"),
    (101, "General Exception"),
    (102, "General Initialization Failure"),
    (103, "Already Initialized"),
    (104, "Content Instance Terminated"),
    (111, "General Termination Failure"),
    (112, "Termination Before Initialization"),
    (113, "Termination After Termination"),
    (122, "Retrieve Data Before Initialization"),
    (123, "Retrieve Data After Termination"),
    (132, "Store Data Before Initialization"),
    (133, "Store Data After Termination"),
    (142, "Commit Before Initialization"),
    (143, "Commit After Termination"),
    (201, "General Argument Error"),
    (301, "General Get Failure"),
    (351, "General Set Failure"),
    (391, "General Commit Failure"),
    (401, "Undefined Data Model Element"),
    (402, "Unimplemented Data Model Element"),
    (403, "Data Model Element Value Not Initialized"),
    (404, "Data Model Element Is Read Only"),
    (405, "Data Model Element Is Write Only"),
    (406, "Data Model Element Type Mismatch"),
    (407, "Data Model Element Value Out Of Range"),
    (408, "Data Model Dependency Not Established"),
];

/// Every error code of a version with its `GetErrorString` text.
pub fn error_codes(version: ScormVersion) -> &'static [(u16, &'static str)] {
    match version {
        ScormVersion::Scorm12 => ERRORS_12,
        ScormVersion::Scorm2004 => ERRORS_2004,
    }
}

/// The `GetErrorString` text of a code, `None` when the version has no such code.
pub fn error_string(version: ScormVersion, code: ErrorCode) -> Option<&'static str> {
    error_codes(version)
        .iter()
        .find(|(c, _)| *c == code.0)
        .map(|(_, s)| *s)
}

/// Who may read and write an element through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
    WriteOnly,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::ReadOnly => "ro",
            Access::ReadWrite => "rw",
            Access::WriteOnly => "wo",
        }
    }
    fn readable(self) -> bool {
        self != Access::WriteOnly
    }
    fn writable(self) -> bool {
        self != Access::ReadOnly
    }
}

/// The data type of an element, with its limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DataType {
    /// `_version`, `_children`: a constant; `_count`: computed.
    Keyword,
    /// Character string (1.2 `CMIString255`/`CMIString4096`, 2004 `characterstring`).
    Text {
        max: usize,
    },
    /// 2004 `localized_string_type`: an optional `{lang=…}` prefix, then text.
    LocalizedText {
        max: usize,
    },
    /// 1.2 `CMIIdentifier`, 2004 `long_identifier_type`.
    Identifier {
        max: usize,
    },
    Vocabulary(&'static [&'static str]),
    /// 1.2 `CMISInteger` within a range.
    Integer {
        min: i64,
        max: i64,
    },
    /// 1.2 `CMIDecimal`, 2004 `real(10,7)`, with an optional range.
    Real {
        min: Option<f64>,
        max: Option<f64>,
    },
    /// 1.2 `CMITime` (`HH:MM:SS.SS`).
    Time12,
    /// 1.2 `CMITimespan` (`HHHH:MM:SS.SS`).
    Timespan12,
    /// 2004 `time(second,10,0)`: an ISO 8601 timestamp.
    Timestamp,
    /// 2004 `timeinterval(second,10,2)`: an ISO 8601 duration.
    Duration,
    /// 2004 `language_type` (or empty).
    Language,
    /// An interaction result: a vocabulary word or a number.
    Result(&'static [&'static str]),
    /// A correct response pattern or a learner response, checked by interaction type.
    Response {
        pattern: bool,
    },
    /// `adl.nav.request`.
    NavRequest,
}

/// One element of a data model table (`n` stands for an index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Element {
    pub name: &'static str,
    pub access: Access,
    pub data_type: DataType,
    /// The `_children` value, for a `._children` keyword.
    pub constant: Option<&'static str>,
}

const fn el(name: &'static str, access: Access, data_type: DataType) -> Element {
    Element {
        name,
        access,
        data_type,
        constant: None,
    }
}

const fn kw(name: &'static str, value: &'static str) -> Element {
    Element {
        name,
        access: Access::ReadOnly,
        data_type: DataType::Keyword,
        constant: Some(value),
    }
}

const fn count(name: &'static str) -> Element {
    Element {
        name,
        access: Access::ReadOnly,
        data_type: DataType::Keyword,
        constant: None,
    }
}

use Access::{ReadOnly as RO, ReadWrite as RW, WriteOnly as WO};

const STATUS_12: &[&str] = &["passed", "completed", "failed", "incomplete", "browsed"];
const STATUS_12_ALL: &[&str] = &[
    "passed",
    "completed",
    "failed",
    "incomplete",
    "browsed",
    "not attempted",
];
const TIME_LIMIT_ACTIONS: &[&str] = &[
    "exit,message",
    "exit,no message",
    "continue,message",
    "continue,no message",
];
const INTERACTION_TYPES_12: &[&str] = &[
    "true-false",
    "choice",
    "fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
];
const INTERACTION_TYPES_2004: &[&str] = &[
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
];
const REAL: DataType = DataType::Real {
    min: None,
    max: None,
};
const SCALED: DataType = DataType::Real {
    min: Some(-1.0),
    max: Some(1.0),
};
const UNIT: DataType = DataType::Real {
    min: Some(0.0),
    max: Some(1.0),
};
const NON_NEGATIVE: DataType = DataType::Real {
    min: Some(0.0),
    max: None,
};

/// 1.2 `cmi.suspend_data` is `CMIString4096`; authoring tools overflow it, and refusing
/// loses the learner's place, so up to the 2004 size is accepted.
const SUSPEND_DATA_12_MAX: usize = 64_000;

static SCORM12: &[Element] = &[
    kw("cmi._version", "3.4"),
    kw(
        "cmi._children",
        "core,suspend_data,launch_data,comments,objectives,student_data,student_preference,interactions",
    ),
    kw(
        "cmi.core._children",
        "student_id,student_name,lesson_location,credit,lesson_status,entry,score,total_time,lesson_mode,exit,session_time",
    ),
    el("cmi.core.student_id", RO, DataType::Identifier { max: 255 }),
    el("cmi.core.student_name", RO, DataType::Text { max: 255 }),
    el("cmi.core.lesson_location", RW, DataType::Text { max: 255 }),
    el("cmi.core.credit", RO, DataType::Vocabulary(&["credit", "no-credit"])),
    el("cmi.core.lesson_status", RW, DataType::Vocabulary(STATUS_12)),
    el("cmi.core.entry", RO, DataType::Vocabulary(&["ab-initio", "resume", ""])),
    kw("cmi.core.score._children", "raw,min,max"),
    el("cmi.core.score.raw", RW, REAL),
    el("cmi.core.score.max", RW, REAL),
    el("cmi.core.score.min", RW, REAL),
    el("cmi.core.total_time", RO, DataType::Timespan12),
    el("cmi.core.lesson_mode", RO, DataType::Vocabulary(&["browse", "normal", "review"])),
    el("cmi.core.exit", WO, DataType::Vocabulary(&["time-out", "suspend", "logout", ""])),
    el("cmi.core.session_time", WO, DataType::Timespan12),
    el("cmi.suspend_data", RW, DataType::Text { max: SUSPEND_DATA_12_MAX }),
    el("cmi.launch_data", RO, DataType::Text { max: 4096 }),
    el("cmi.comments", RW, DataType::Text { max: 4096 }),
    el("cmi.comments_from_lms", RO, DataType::Text { max: 4096 }),
    kw("cmi.objectives._children", "id,score,status"),
    count("cmi.objectives._count"),
    el("cmi.objectives.n.id", RW, DataType::Identifier { max: 255 }),
    kw("cmi.objectives.n.score._children", "raw,min,max"),
    el("cmi.objectives.n.score.raw", RW, REAL),
    el("cmi.objectives.n.score.max", RW, REAL),
    el("cmi.objectives.n.score.min", RW, REAL),
    el("cmi.objectives.n.status", RW, DataType::Vocabulary(STATUS_12_ALL)),
    kw("cmi.student_data._children", "mastery_score,max_time_allowed,time_limit_action"),
    el("cmi.student_data.mastery_score", RO, REAL),
    el("cmi.student_data.max_time_allowed", RO, DataType::Timespan12),
    el("cmi.student_data.time_limit_action", RO, DataType::Vocabulary(TIME_LIMIT_ACTIONS)),
    kw("cmi.student_preference._children", "audio,language,speed,text"),
    el("cmi.student_preference.audio", RW, DataType::Integer { min: -1, max: 100 }),
    el("cmi.student_preference.language", RW, DataType::Text { max: 255 }),
    el("cmi.student_preference.speed", RW, DataType::Integer { min: -100, max: 100 }),
    el("cmi.student_preference.text", RW, DataType::Integer { min: -1, max: 1 }),
    kw(
        "cmi.interactions._children",
        "id,objectives,time,type,correct_responses,weighting,student_response,result,latency",
    ),
    count("cmi.interactions._count"),
    el("cmi.interactions.n.id", WO, DataType::Identifier { max: 255 }),
    count("cmi.interactions.n.objectives._count"),
    el("cmi.interactions.n.objectives.n.id", WO, DataType::Identifier { max: 255 }),
    el("cmi.interactions.n.time", WO, DataType::Time12),
    el("cmi.interactions.n.type", WO, DataType::Vocabulary(INTERACTION_TYPES_12)),
    count("cmi.interactions.n.correct_responses._count"),
    el("cmi.interactions.n.correct_responses.n.pattern", WO, DataType::Response { pattern: true }),
    el("cmi.interactions.n.weighting", WO, REAL),
    el("cmi.interactions.n.student_response", WO, DataType::Response { pattern: false }),
    el(
        "cmi.interactions.n.result",
        WO,
        DataType::Result(&["correct", "wrong", "unanticipated", "neutral"]),
    ),
    el("cmi.interactions.n.latency", WO, DataType::Timespan12),
];

const COMPLETION_2004: &[&str] = &["completed", "incomplete", "not attempted", "unknown"];
const SUCCESS_2004: &[&str] = &["passed", "failed", "unknown"];

static SCORM2004: &[Element] = &[
    kw("cmi._version", "1.0"),
    kw("cmi.comments_from_learner._children", "comment,location,timestamp"),
    count("cmi.comments_from_learner._count"),
    el("cmi.comments_from_learner.n.comment", RW, DataType::LocalizedText { max: 4000 }),
    el("cmi.comments_from_learner.n.location", RW, DataType::Text { max: 250 }),
    el("cmi.comments_from_learner.n.timestamp", RW, DataType::Timestamp),
    kw("cmi.comments_from_lms._children", "comment,location,timestamp"),
    count("cmi.comments_from_lms._count"),
    el("cmi.comments_from_lms.n.comment", RO, DataType::LocalizedText { max: 4000 }),
    el("cmi.comments_from_lms.n.location", RO, DataType::Text { max: 250 }),
    el("cmi.comments_from_lms.n.timestamp", RO, DataType::Timestamp),
    el("cmi.completion_status", RW, DataType::Vocabulary(COMPLETION_2004)),
    el("cmi.completion_threshold", RO, UNIT),
    el("cmi.credit", RO, DataType::Vocabulary(&["credit", "no-credit"])),
    el("cmi.entry", RO, DataType::Vocabulary(&["ab-initio", "resume", ""])),
    el(
        "cmi.exit",
        WO,
        DataType::Vocabulary(&["time-out", "suspend", "logout", "normal", ""]),
    ),
    kw(
        "cmi.interactions._children",
        "id,type,objectives,timestamp,correct_responses,weighting,learner_response,result,latency,description",
    ),
    count("cmi.interactions._count"),
    el("cmi.interactions.n.id", RW, DataType::Identifier { max: 4000 }),
    el("cmi.interactions.n.type", RW, DataType::Vocabulary(INTERACTION_TYPES_2004)),
    count("cmi.interactions.n.objectives._count"),
    el("cmi.interactions.n.objectives.n.id", RW, DataType::Identifier { max: 4000 }),
    el("cmi.interactions.n.timestamp", RW, DataType::Timestamp),
    count("cmi.interactions.n.correct_responses._count"),
    el("cmi.interactions.n.correct_responses.n.pattern", RW, DataType::Response { pattern: true }),
    el("cmi.interactions.n.weighting", RW, REAL),
    el("cmi.interactions.n.learner_response", RW, DataType::Response { pattern: false }),
    el(
        "cmi.interactions.n.result",
        RW,
        DataType::Result(&["correct", "incorrect", "unanticipated", "neutral"]),
    ),
    el("cmi.interactions.n.latency", RW, DataType::Duration),
    el("cmi.interactions.n.description", RW, DataType::LocalizedText { max: 250 }),
    el("cmi.launch_data", RO, DataType::Text { max: 4000 }),
    el("cmi.learner_id", RO, DataType::Identifier { max: 4000 }),
    el("cmi.learner_name", RO, DataType::LocalizedText { max: 250 }),
    kw(
        "cmi.learner_preference._children",
        "audio_level,language,delivery_speed,audio_captioning",
    ),
    el("cmi.learner_preference.audio_level", RW, NON_NEGATIVE),
    el("cmi.learner_preference.language", RW, DataType::Language),
    el("cmi.learner_preference.delivery_speed", RW, NON_NEGATIVE),
    el("cmi.learner_preference.audio_captioning", RW, DataType::Vocabulary(&["-1", "0", "1"])),
    el("cmi.location", RW, DataType::Text { max: 1000 }),
    el("cmi.max_time_allowed", RO, DataType::Duration),
    el("cmi.mode", RO, DataType::Vocabulary(&["browse", "normal", "review"])),
    kw(
        "cmi.objectives._children",
        "id,score,success_status,completion_status,progress_measure,description",
    ),
    count("cmi.objectives._count"),
    el("cmi.objectives.n.id", RW, DataType::Identifier { max: 4000 }),
    kw("cmi.objectives.n.score._children", "scaled,raw,min,max"),
    el("cmi.objectives.n.score.scaled", RW, SCALED),
    el("cmi.objectives.n.score.raw", RW, REAL),
    el("cmi.objectives.n.score.min", RW, REAL),
    el("cmi.objectives.n.score.max", RW, REAL),
    el("cmi.objectives.n.success_status", RW, DataType::Vocabulary(SUCCESS_2004)),
    el("cmi.objectives.n.completion_status", RW, DataType::Vocabulary(COMPLETION_2004)),
    el("cmi.objectives.n.progress_measure", RW, UNIT),
    el("cmi.objectives.n.description", RW, DataType::LocalizedText { max: 250 }),
    el("cmi.progress_measure", RW, UNIT),
    el("cmi.scaled_passing_score", RO, SCALED),
    kw("cmi.score._children", "scaled,raw,min,max"),
    el("cmi.score.scaled", RW, SCALED),
    el("cmi.score.raw", RW, REAL),
    el("cmi.score.min", RW, REAL),
    el("cmi.score.max", RW, REAL),
    el("cmi.session_time", WO, DataType::Duration),
    el("cmi.success_status", RW, DataType::Vocabulary(SUCCESS_2004)),
    el("cmi.suspend_data", RW, DataType::Text { max: 64_000 }),
    el("cmi.time_limit_action", RO, DataType::Vocabulary(TIME_LIMIT_ACTIONS)),
    el("cmi.total_time", RO, DataType::Duration),
    el("adl.nav.request", RW, DataType::NavRequest),
    el(
        "adl.nav.request_valid.continue",
        RO,
        DataType::Vocabulary(&["true", "false", "unknown"]),
    ),
    el(
        "adl.nav.request_valid.previous",
        RO,
        DataType::Vocabulary(&["true", "false", "unknown"]),
    ),
    el(
        "adl.nav.request_valid.choice",
        RO,
        DataType::Vocabulary(&["true", "false", "unknown"]),
    ),
    el(
        "adl.nav.request_valid.jump",
        RO,
        DataType::Vocabulary(&["true", "false", "unknown"]),
    ),
    kw("adl.data._children", "id,store"),
    count("adl.data._count"),
    el("adl.data.n.id", RO, DataType::Identifier { max: 4000 }),
    el("adl.data.n.store", RW, DataType::Text { max: 64_000 }),
];

/// The element table of a version.
pub fn elements(version: ScormVersion) -> &'static [Element] {
    match version {
        ScormVersion::Scorm12 => SCORM12,
        ScormVersion::Scorm2004 => SCORM2004,
    }
}

/// Values an element has before anything sets it (what `GetValue` returns).
pub fn default_value(version: ScormVersion, pattern: &str) -> Option<&'static str> {
    match (version, pattern) {
        (ScormVersion::Scorm12, "cmi.core.lesson_status") => Some("not attempted"),
        (ScormVersion::Scorm12, "cmi.core.credit") => Some("credit"),
        (ScormVersion::Scorm12, "cmi.core.lesson_mode") => Some("normal"),
        (ScormVersion::Scorm12, "cmi.core.total_time") => Some("0000:00:00.00"),
        (ScormVersion::Scorm12, "cmi.student_preference.audio") => Some("0"),
        (ScormVersion::Scorm12, "cmi.student_preference.speed") => Some("0"),
        (ScormVersion::Scorm12, "cmi.student_preference.text") => Some("0"),
        (ScormVersion::Scorm12, "cmi.objectives.n.status") => Some("not attempted"),
        (ScormVersion::Scorm2004, "cmi.completion_status") => Some("unknown"),
        (ScormVersion::Scorm2004, "cmi.success_status") => Some("unknown"),
        (ScormVersion::Scorm2004, "cmi.credit") => Some("credit"),
        (ScormVersion::Scorm2004, "cmi.mode") => Some("normal"),
        (ScormVersion::Scorm2004, "cmi.entry") => Some("ab-initio"),
        (ScormVersion::Scorm2004, "cmi.total_time") => Some("PT0S"),
        (ScormVersion::Scorm2004, "cmi.learner_preference.audio_level") => Some("1"),
        (ScormVersion::Scorm2004, "cmi.learner_preference.language") => Some(""),
        (ScormVersion::Scorm2004, "cmi.learner_preference.delivery_speed") => Some("1"),
        (ScormVersion::Scorm2004, "cmi.learner_preference.audio_captioning") => Some("0"),
        (ScormVersion::Scorm2004, "cmi.objectives.n.success_status") => Some("unknown"),
        (ScormVersion::Scorm2004, "cmi.objectives.n.completion_status") => Some("unknown"),
        (ScormVersion::Scorm2004, "adl.nav.request") => Some("_none_"),
        (ScormVersion::Scorm2004, "adl.nav.request_valid.continue") => Some("unknown"),
        (ScormVersion::Scorm2004, "adl.nav.request_valid.previous") => Some("unknown"),
        (ScormVersion::Scorm2004, "adl.nav.request_valid.choice") => Some("unknown"),
        (ScormVersion::Scorm2004, "adl.nav.request_valid.jump") => Some("unknown"),
        _ => None,
    }
}

/// An element name resolved against the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub element: &'static Element,
    /// The indices written in place of each `n`, outermost first.
    pub indices: Vec<usize>,
}

/// Resolves an element name (`cmi.interactions.3.id`) to its table row.
///
/// `adl.nav.request_valid.choice.{target=ID}` and `….jump.{target=ID}` resolve to the
/// `choice` / `jump` rows.
pub fn resolve(version: ScormVersion, name: &str) -> Option<Resolved> {
    if version == ScormVersion::Scorm2004 {
        for verb in ["choice", "jump"] {
            let prefix = format!("adl.nav.request_valid.{verb}.");
            if let Some(target) = name.strip_prefix(&prefix) {
                if target_of(target).is_some() {
                    let element = SCORM2004
                        .iter()
                        .find(|e| e.name == &prefix[..prefix.len() - 1])?;
                    return Some(Resolved {
                        element,
                        indices: Vec::new(),
                    });
                }
                return None;
            }
        }
    }
    let mut indices = Vec::new();
    let mut pattern = String::with_capacity(name.len());
    for (i, part) in name.split('.').enumerate() {
        if i > 0 {
            pattern.push('.');
        }
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            // Canonical indices only: "01" is not element 1.
            if part.len() > 1 && part.starts_with('0') {
                return None;
            }
            indices.push(part.parse::<usize>().ok()?);
            pattern.push('n');
        } else {
            pattern.push_str(part);
        }
    }
    elements(version)
        .iter()
        .find(|e| e.name == pattern)
        .map(|element| Resolved { element, indices })
}

/// `{target=ID}` → `ID`.
fn target_of(s: &str) -> Option<&str> {
    s.strip_prefix("{target=")
        .and_then(|r| r.strip_suffix('}'))
        .filter(|t| !t.is_empty())
}

/// Fills each `n` of a pattern with the indices given.
fn instantiate(pattern: &str, indices: &[usize]) -> String {
    let mut it = indices.iter();
    pattern
        .split('.')
        .map(|p| {
            if p == "n" {
                it.next()
                    .map(usize::to_string)
                    .unwrap_or_else(|| "n".into())
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The number of entries of a collection (`prefix` like `cmi.interactions` or
/// `cmi.interactions.0.objectives`): one more than the highest index present.
pub fn collection_count(model: &Model, prefix: &str) -> usize {
    let start = format!("{prefix}.");
    model
        .range(start.clone()..)
        .take_while(|(k, _)| k.starts_with(&start))
        .filter_map(|(k, _)| k[start.len()..].split('.').next()?.parse::<usize>().ok())
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// The collections an element sits in: for `cmi.interactions.n.objectives.n.id` with
/// indices [2, 0], `[("cmi.interactions", 2), ("cmi.interactions.2.objectives", 0)]`.
fn collections(pattern: &str, indices: &[usize]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut prefix = String::new();
    let mut it = indices.iter();
    for part in pattern.split('.') {
        if part == "n" {
            let Some(&i) = it.next() else { break };
            out.push((prefix.clone(), i));
            prefix.push('.');
            prefix.push_str(&i.to_string());
        } else {
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(part);
        }
    }
    out
}

fn codes(version: ScormVersion) -> Codes {
    match version {
        ScormVersion::Scorm12 => Codes {
            undefined: v12::INVALID_ARGUMENT,
            read_only: v12::READ_ONLY,
            write_only: v12::WRITE_ONLY,
            keyword_set: v12::KEYWORD,
            set_out_of_order: v12::INVALID_ARGUMENT,
            get_missing_index: v12::INVALID_ARGUMENT,
            type_mismatch: v12::INCORRECT_DATA_TYPE,
            out_of_range: v12::INCORRECT_DATA_TYPE,
        },
        ScormVersion::Scorm2004 => Codes {
            undefined: v2004::UNDEFINED_ELEMENT,
            read_only: v2004::READ_ONLY,
            write_only: v2004::WRITE_ONLY,
            keyword_set: v2004::READ_ONLY,
            set_out_of_order: v2004::GENERAL_SET_FAILURE,
            get_missing_index: v2004::GENERAL_GET_FAILURE,
            type_mismatch: v2004::TYPE_MISMATCH,
            out_of_range: v2004::OUT_OF_RANGE,
        },
    }
}

struct Codes {
    undefined: ErrorCode,
    read_only: ErrorCode,
    write_only: ErrorCode,
    keyword_set: ErrorCode,
    set_out_of_order: ErrorCode,
    get_missing_index: ErrorCode,
    type_mismatch: ErrorCode,
    out_of_range: ErrorCode,
}

/// The error for `X._children` / `X._count` where X has none (checked when the name does
/// not resolve).
fn keyword_misuse(version: ScormVersion, name: &str) -> Option<ErrorCode> {
    let (base, keyword) = name.rsplit_once('.')?;
    if keyword != "_children" && keyword != "_count" {
        return None;
    }
    let base_known = resolve(version, base).is_some()
        || elements(version).iter().any(|e| {
            let p = resolve_pattern(base);
            e.name.starts_with(&format!("{p}."))
        });
    if !base_known {
        return None;
    }
    Some(match (version, keyword) {
        (ScormVersion::Scorm12, "_children") => v12::CANNOT_HAVE_CHILDREN,
        (ScormVersion::Scorm12, _) => v12::CANNOT_HAVE_COUNT,
        (ScormVersion::Scorm2004, _) => v2004::GENERAL_GET_FAILURE,
    })
}

fn resolve_pattern(name: &str) -> String {
    name.split('.')
        .map(|p| {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                "n"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// What `GetValue(element)` returns, or its error code.
pub fn get_value(version: ScormVersion, element: &str, model: &Model) -> Result<String, ErrorCode> {
    let c = codes(version);
    if element.is_empty() {
        return Err(match version {
            ScormVersion::Scorm12 => v12::INVALID_ARGUMENT,
            ScormVersion::Scorm2004 => v2004::GENERAL_GET_FAILURE,
        });
    }
    let Some(resolved) = resolve(version, element) else {
        return Err(keyword_misuse(version, element).unwrap_or(c.undefined));
    };
    let def = resolved.element;
    if !def.access.readable() {
        return Err(c.write_only);
    }
    // Every enclosing collection entry must exist.
    let chain = collections(def.name, &resolved.indices);
    for (prefix, index) in &chain {
        if *index >= collection_count(model, prefix) {
            return Err(c.get_missing_index);
        }
    }
    if def.data_type == DataType::Keyword {
        if let Some(value) = def.constant {
            return Ok(value.to_string());
        }
        // `_count`: the collection is the element name without the keyword.
        let prefix = element.trim_end_matches("._count");
        return Ok(collection_count(model, prefix).to_string());
    }
    if let Some(v) = model.get(element) {
        return Ok(v.clone());
    }
    if let Some(d) = default_value(version, def.name) {
        return Ok(d.to_string());
    }
    match version {
        ScormVersion::Scorm12 => Ok(String::new()),
        // 2004: reading an element nothing has set is 403 (the API returns "").
        ScormVersion::Scorm2004 => Err(v2004::VALUE_NOT_INITIALIZED),
    }
}

/// Checks a `GetValue` without returning the value.
pub fn validate_get(version: ScormVersion, element: &str, model: &Model) -> Result<(), ErrorCode> {
    get_value(version, element, model).map(|_| ())
}

/// Checks `SetValue(element, value)` against `model` (the values set so far), without
/// changing it.
pub fn validate_set(
    version: ScormVersion,
    element: &str,
    value: &str,
    model: &Model,
) -> Result<(), ErrorCode> {
    let c = codes(version);
    if element.is_empty() {
        return Err(match version {
            ScormVersion::Scorm12 => v12::INVALID_ARGUMENT,
            ScormVersion::Scorm2004 => v2004::GENERAL_SET_FAILURE,
        });
    }
    let Some(resolved) = resolve(version, element) else {
        // 1.2: setting `X._children` / `X._count` where X has none is still a keyword.
        if version == ScormVersion::Scorm12 && keyword_misuse(version, element).is_some() {
            return Err(c.keyword_set);
        }
        return Err(c.undefined);
    };
    let def = resolved.element;
    if def.data_type == DataType::Keyword {
        return Err(c.keyword_set);
    }
    if !def.access.writable() {
        return Err(c.read_only);
    }
    // Collections grow one entry at a time: index ≤ count at every level (a new entry of
    // an enclosing collection is created too; 2004 then asks for its id, error 408).
    for (prefix, index) in collections(def.name, &resolved.indices) {
        if index > collection_count(model, &prefix) {
            return Err(c.set_out_of_order);
        }
    }
    check_type(version, def, value, &c)?;
    if version == ScormVersion::Scorm2004 {
        check_2004_rules(def, &resolved.indices, value, model)?;
    }
    Ok(())
}

/// Validates and applies `SetValue`. 1.2 `cmi.comments` is appended to, as the 1.2 RTE
/// says; everything else replaces.
pub fn set_value(
    version: ScormVersion,
    element: &str,
    value: &str,
    model: &mut Model,
) -> Result<(), ErrorCode> {
    validate_set(version, element, value, model)?;
    if version == ScormVersion::Scorm12 && element == "cmi.comments" {
        let entry = model.entry(element.to_string()).or_default();
        if entry.chars().count() + value.chars().count() > 4096 {
            return Err(v12::INCORRECT_DATA_TYPE);
        }
        entry.push_str(value);
    } else {
        model.insert(element.to_string(), value.to_string());
    }
    Ok(())
}

/// The 2004 rules that depend on other elements (RTE 4.1.7, 4.2.9, 4.2.17).
fn check_2004_rules(
    def: &Element,
    indices: &[usize],
    value: &str,
    model: &Model,
) -> Result<(), ErrorCode> {
    let name = def.name;
    let first = indices.first().copied().unwrap_or(0);
    if let Some(field) = name.strip_prefix("cmi.objectives.n.") {
        let id_key = format!("cmi.objectives.{first}.id");
        if field == "id" {
            // Unique within the collection, and never changed once set.
            if model.get(&id_key).is_some_and(|v| v != value) {
                return Err(v2004::GENERAL_SET_FAILURE);
            }
            let n = collection_count(model, "cmi.objectives");
            for i in (0..n).filter(|&i| i != first) {
                if model
                    .get(&format!("cmi.objectives.{i}.id"))
                    .map(String::as_str)
                    == Some(value)
                {
                    return Err(v2004::GENERAL_SET_FAILURE);
                }
            }
        } else if !model.contains_key(&id_key) {
            return Err(v2004::DEPENDENCY_NOT_ESTABLISHED);
        }
    }
    if let Some(field) = name.strip_prefix("cmi.interactions.n.") {
        let base = format!("cmi.interactions.{first}");
        if field != "id" && !model.contains_key(&format!("{base}.id")) {
            return Err(v2004::DEPENDENCY_NOT_ESTABLISHED);
        }
        if field == "objectives.n.id" {
            let m = indices.get(1).copied().unwrap_or(0);
            let prefix = format!("{base}.objectives");
            let n = collection_count(model, &prefix);
            for i in (0..n).filter(|&i| i != m) {
                if model.get(&format!("{prefix}.{i}.id")).map(String::as_str) == Some(value) {
                    return Err(v2004::GENERAL_SET_FAILURE);
                }
            }
        }
        if field == "correct_responses.n.pattern" || field == "learner_response" {
            let Some(kind) = model.get(&format!("{base}.type")) else {
                return Err(v2004::DEPENDENCY_NOT_ESTABLISHED);
            };
            if !response_ok(
                ScormVersion::Scorm2004,
                kind,
                value,
                field != "learner_response",
            ) {
                return Err(v2004::TYPE_MISMATCH);
            }
            // Types with a single correct response.
            if field == "correct_responses.n.pattern"
                && matches!(kind.as_str(), "true-false" | "likert" | "numeric" | "other")
                && indices.get(1).copied().unwrap_or(0) > 0
            {
                return Err(v2004::GENERAL_SET_FAILURE);
            }
        }
    }
    Ok(())
}

// Syntax patterns, shared with the browser runtime through `to_json` (JavaScript and the
// `regex` crate read them the same: ASCII classes only, no look-around).
const RE_REAL: &str = r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)$";
const RE_INTEGER: &str = r"^[-+]?[0-9]+$";
const RE_TIME12: &str = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,2})?$";
const RE_TIMESPAN12: &str = r"^[0-9]{2,4}:[0-5][0-9]:[0-5][0-9](\.[0-9]{1,2})?$";
const RE_TIMESTAMP: &str = r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3])(:[0-5][0-9](:[0-5][0-9](\.[0-9]{1,7})?)?)?(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?)?)?)?$";
const RE_DURATION: &str = r"^P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:\.[0-9]{1,2})?)S)?)?$";
const RE_LANGUAGE: &str = r"^$|^([a-zA-Z]{2,3}|[iIxX])(-[a-zA-Z0-9]{1,8})*$";
const RE_IDENTIFIER12: &str = r"^[^\s]+$";
const RE_LANG_PREFIX: &str = r"^\{lang=([a-zA-Z]{2,3}|[iIxX])(-[a-zA-Z0-9]{1,8})*\}";

static REGEX: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        RE_REAL,
        RE_INTEGER,
        RE_TIME12,
        RE_TIMESPAN12,
        RE_TIMESTAMP,
        RE_DURATION,
        RE_LANGUAGE,
        RE_IDENTIFIER12,
        RE_LANG_PREFIX,
    ]
    .into_iter()
    .filter_map(|p| Regex::new(p).ok().map(|r| (p, r)))
    .collect()
});

fn matches(pattern: &str, value: &str) -> bool {
    REGEX
        .iter()
        .find(|(p, _)| *p == pattern)
        .is_some_and(|(_, r)| r.is_match(value))
}

/// A 2004 `timeinterval`: the pattern, plus at least one component and no bare `T`.
pub fn is_duration(s: &str) -> bool {
    matches(RE_DURATION, s) && s != "P" && !s.ends_with('T')
}

pub fn is_real(s: &str) -> bool {
    matches(RE_REAL, s)
}

/// The text of a 2004 localized string, without its `{lang=…}` prefix.
pub fn strip_lang(s: &str) -> &str {
    REGEX
        .iter()
        .find(|(p, _)| *p == RE_LANG_PREFIX)
        .and_then(|(_, r)| r.find(s))
        .map_or(s, |m| &s[m.end()..])
}

fn check_type(
    version: ScormVersion,
    def: &Element,
    value: &str,
    c: &Codes,
) -> Result<(), ErrorCode> {
    let len = value.chars().count();
    let ok = |b: bool| if b { Ok(()) } else { Err(c.type_mismatch) };
    match def.data_type {
        DataType::Keyword => Err(c.keyword_set),
        DataType::Text { max } => ok(len <= max),
        DataType::LocalizedText { max } => ok(strip_lang(value).chars().count() <= max
            && (!value.starts_with("{lang=") || strip_lang(value) != value)),
        DataType::Identifier { max } => match version {
            ScormVersion::Scorm12 => ok(len <= max && matches(RE_IDENTIFIER12, value)),
            // Non-empty is all that is required: URI syntax is not enforced (see docs).
            ScormVersion::Scorm2004 => ok(len <= max && !value.trim().is_empty()),
        },
        DataType::Vocabulary(words) => ok(words.contains(&value)),
        DataType::Integer { min, max } => {
            ok(matches(RE_INTEGER, value))?;
            let n = value.parse::<i64>().map_err(|_| c.out_of_range)?;
            if n < min || n > max {
                return Err(c.out_of_range);
            }
            Ok(())
        }
        DataType::Real { min, max } => {
            // 1.2 `CMIBlank`: scores may be cleared with "".
            if version == ScormVersion::Scorm12 && value.is_empty() && def.name.contains("score") {
                return Ok(());
            }
            ok(is_real(value))?;
            let n = value.parse::<f64>().map_err(|_| c.type_mismatch)?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(c.out_of_range);
            }
            Ok(())
        }
        DataType::Time12 => ok(matches(RE_TIME12, value)),
        DataType::Timespan12 => ok(matches(RE_TIMESPAN12, value)),
        DataType::Timestamp => ok(matches(RE_TIMESTAMP, value)),
        DataType::Duration => ok(is_duration(value)),
        DataType::Language => ok(matches(RE_LANGUAGE, value)),
        DataType::Result(words) => ok(words.contains(&value) || is_real(value)),
        DataType::Response { .. } => match version {
            // 1.2 `CMIFeedback`: the type is known only once set; 255 characters.
            ScormVersion::Scorm12 => ok(len <= 255),
            // 2004 responses are checked against the type in `check_2004_rules`.
            ScormVersion::Scorm2004 => ok(len <= 64_000),
        },
        DataType::NavRequest => {
            const WORDS: &[&str] = &[
                "continue",
                "previous",
                "exit",
                "exitAll",
                "abandon",
                "abandonAll",
                "suspendAll",
                "_none_",
            ];
            let targeted = value
                .strip_suffix("choice")
                .or_else(|| value.strip_suffix("jump"))
                .and_then(target_of)
                .is_some();
            ok(WORDS.contains(&value) || targeted)
        }
    }
}

/// Splits on a 2004 delimiter (`[,]`, `[.]`, `[:]`).
fn split_delim<'a>(s: &'a str, delim: &'a str) -> impl Iterator<Item = &'a str> {
    s.split(delim)
}

/// Drops leading `{case_matters=…}` / `{order_matters=…}` / `{lang=…}` delimiters.
fn strip_flags(mut s: &str) -> Option<&str> {
    loop {
        let Some(rest) = s.strip_prefix('{') else {
            return Some(s);
        };
        let end = rest.find('}')?;
        let (key, value) = rest[..end].split_once('=')?;
        match key {
            "case_matters" | "order_matters" => {
                if value != "true" && value != "false" {
                    return None;
                }
            }
            "lang" => {}
            _ => return Some(s),
        }
        s = &rest[end + 1..];
    }
}

fn short_id_ok(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= 250
}

/// Checks a 2004 correct response pattern (`pattern`) or learner response against the
/// interaction type (RTE 4.2.9.1, 4.2.9.2). 1.2 responses are only length-checked.
pub fn response_ok(version: ScormVersion, kind: &str, value: &str, pattern: bool) -> bool {
    if version == ScormVersion::Scorm12 {
        return value.chars().count() <= 255;
    }
    match kind {
        "true-false" => value == "true" || value == "false",
        "choice" | "sequencing" => {
            if value.is_empty() {
                return kind == "choice";
            }
            let items: Vec<&str> = split_delim(value, "[,]").collect();
            let mut seen = std::collections::HashSet::new();
            items.iter().all(|i| short_id_ok(i))
                && (kind == "sequencing" || items.iter().all(|i| seen.insert(*i)))
        }
        "fill-in" => {
            let body = if pattern {
                strip_flags(value)
            } else {
                Some(value)
            };
            body.is_some_and(|b| {
                split_delim(b, "[,]").count() <= 10
                    && split_delim(b, "[,]").all(|s| strip_lang(s).chars().count() <= 250)
            })
        }
        "long-fill-in" => {
            let body = if pattern {
                strip_flags(value)
            } else {
                Some(value)
            };
            body.is_some_and(|b| strip_lang(b).chars().count() <= 4000)
        }
        "likert" => short_id_ok(value),
        "matching" => {
            !value.is_empty()
                && split_delim(value, "[,]").all(|pair| {
                    let mut parts = split_delim(pair, "[.]");
                    matches!((parts.next(), parts.next(), parts.next()),
                        (Some(a), Some(b), None) if short_id_ok(a) && short_id_ok(b))
                })
        }
        "performance" => {
            let body = if pattern {
                strip_flags(value)
            } else {
                Some(value)
            };
            body.is_some_and(|b| {
                !b.is_empty()
                    && split_delim(b, "[,]").all(|step| {
                        let mut parts = split_delim(step, "[.]");
                        matches!((parts.next(), parts.next(), parts.next()),
                            (Some(name), Some(answer), None)
                                if name.chars().count() <= 250
                                    && answer.chars().count() <= 250
                                    && !(name.is_empty() && answer.is_empty()))
                    })
            })
        }
        "numeric" => {
            if pattern {
                match value.split_once("[:]") {
                    Some((lo, hi)) => {
                        let lo_ok = lo.is_empty() || is_real(lo);
                        let hi_ok = hi.is_empty() || is_real(hi);
                        let ordered = match (lo.parse::<f64>(), hi.parse::<f64>()) {
                            (Ok(a), Ok(b)) => a <= b,
                            _ => true,
                        };
                        lo_ok && hi_ok && ordered
                    }
                    None => is_real(value),
                }
            } else {
                is_real(value)
            }
        }
        "other" => value.chars().count() <= 4000,
        _ => false,
    }
}

/// The data model of a version as JSON, for the browser runtime: every element with its
/// access, type, vocabulary, range, length limit, syntax pattern and default; the error
/// codes; and the cross-element rules.
pub fn to_json(version: ScormVersion) -> Value {
    let rows: Vec<Value> = elements(version)
        .iter()
        .map(|e| {
            let mut row = json!({ "name": e.name, "access": e.access.as_str() });
            let mut put = |k: &str, v: Value| {
                if let Some(o) = row.as_object_mut() {
                    o.insert(k.to_string(), v);
                }
            };
            let (kind, pattern): (&str, Option<&str>) = match e.data_type {
                DataType::Keyword => {
                    if let Some(c) = e.constant {
                        put("value", json!(c));
                    }
                    ("keyword", None)
                }
                DataType::Text { max } => {
                    put("max_length", json!(max));
                    ("string", None)
                }
                DataType::LocalizedText { max } => {
                    put("max_length", json!(max));
                    ("localized_string", None)
                }
                DataType::Identifier { max } => {
                    put("max_length", json!(max));
                    match version {
                        ScormVersion::Scorm12 => ("identifier", Some(RE_IDENTIFIER12)),
                        ScormVersion::Scorm2004 => ("identifier", None),
                    }
                }
                DataType::Vocabulary(words) => {
                    put("vocabulary", json!(words));
                    ("vocabulary", None)
                }
                DataType::Integer { min, max } => {
                    put("min", json!(min));
                    put("max", json!(max));
                    ("integer", Some(RE_INTEGER))
                }
                DataType::Real { min, max } => {
                    if let Some(m) = min {
                        put("min", json!(m));
                    }
                    if let Some(m) = max {
                        put("max", json!(m));
                    }
                    ("real", Some(RE_REAL))
                }
                DataType::Time12 => ("time", Some(RE_TIME12)),
                DataType::Timespan12 => ("timespan", Some(RE_TIMESPAN12)),
                DataType::Timestamp => ("timestamp", Some(RE_TIMESTAMP)),
                DataType::Duration => ("duration", Some(RE_DURATION)),
                DataType::Language => ("language", Some(RE_LANGUAGE)),
                DataType::Result(words) => {
                    put("vocabulary", json!(words));
                    ("result", Some(RE_REAL))
                }
                DataType::Response { pattern } => {
                    put("depends_on", json!("type"));
                    (
                        if pattern {
                            "correct_response"
                        } else {
                            "response"
                        },
                        None,
                    )
                }
                DataType::NavRequest => ("nav_request", None),
            };
            put("type", json!(kind));
            if let Some(p) = pattern {
                put("pattern", json!(p));
            }
            if let Some(d) = default_value(version, e.name) {
                put("default", json!(d));
            }
            row
        })
        .collect();
    let errors: Vec<Value> = error_codes(version)
        .iter()
        .map(|(code, message)| json!({ "code": code, "message": message }))
        .collect();
    let c = codes(version);
    let mut rules = json!({
        "collections_in_order": { "error": c.set_out_of_order.0,
            "rule": "an index may be at most the collection's _count when set" },
        "keyword_set": { "error": c.keyword_set.0 },
        "read_only": { "error": c.read_only.0 },
        "write_only": { "error": c.write_only.0 },
        "undefined": { "error": c.undefined.0 },
        "type_mismatch": { "error": c.type_mismatch.0 },
        "out_of_range": { "error": c.out_of_range.0 },
        "lang_prefix": RE_LANG_PREFIX,
    });
    if version == ScormVersion::Scorm2004 {
        if let Some(o) = rules.as_object_mut() {
            o.insert(
                "dependencies".into(),
                json!([
                    { "element": "cmi.objectives.n.*", "requires": "cmi.objectives.n.id", "error": 408 },
                    { "element": "cmi.interactions.n.*", "requires": "cmi.interactions.n.id", "error": 408 },
                    { "element": "cmi.interactions.n.correct_responses.n.pattern", "requires": "cmi.interactions.n.type", "error": 408 },
                    { "element": "cmi.interactions.n.learner_response", "requires": "cmi.interactions.n.type", "error": 408 },
                ]),
            );
            o.insert(
                "unique".into(),
                json!([
                    { "element": "cmi.objectives.n.id", "error": 351, "rule": "unique, and never changed once set" },
                    { "element": "cmi.interactions.n.objectives.n.id", "error": 351, "rule": "unique within the interaction" },
                ]),
            );
            o.insert(
                "single_correct_response".into(),
                json!({ "types": ["true-false", "likert", "numeric", "other"], "error": 351 }),
            );
        }
    }
    json!({
        "version": version.as_str(),
        "elements": rows,
        "errors": errors,
        "rules": rules,
    })
}

/// The name of an element of a collection entry (`("cmi.interactions", 2, "id")` →
/// `cmi.interactions.2.id`).
pub fn entry_key(prefix: &str, index: usize, field: &str) -> String {
    format!("{prefix}.{index}.{field}")
}

/// Instantiates a table name (`cmi.objectives.n.id`) with indices.
pub fn element_name(pattern: &str, indices: &[usize]) -> String {
    instantiate(pattern, indices)
}

#[cfg(test)]
#[path = "datamodel_tests.rs"]
mod tests;
