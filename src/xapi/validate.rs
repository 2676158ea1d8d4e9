//! Statement validation.
//!
//! Two layers, run in this order:
//! 1. The JSON Schemas in `schemas/` (draft 7, embedded with `include_str!`, compiled once):
//!    structure, types, required and forbidden properties, enumerations, and the string
//!    formats (`iri`, `uuid`, `date-time`, `duration`, `language-tag`, `mailto-iri`), whose
//!    checks are the functions of this module.
//! 2. Code, for what a schema cannot say: inverse functional identifiers, anonymous groups,
//!    score bounds, `context.revision`/`context.platform` against the object, voiding,
//!    the authority's shape, and interaction components.
//!
//! Every rejection is a 400 carrying a message, the JSON pointer of the offending value and
//! the requirement it breaks (section of the 1.0.3 Data part and, where the ADL conformance
//! requirements give one, the `XAPI-nnnnn` id).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{json, Map, Value};

use crate::error::XapiError;
use crate::xapi::XapiVersion;

/// Base URI of the schema files (`.invalid` is reserved: it never resolves).
const SCHEMA_BASE: &str = "https://karmayogi-lrs.invalid/schemas/";

/// The schema files, by file name.
const SCHEMA_FILES: [(&str, &str); 12] = [
    ("common.json", include_str!("../../schemas/common.json")),
    ("agent.json", include_str!("../../schemas/agent.json")),
    ("verb.json", include_str!("../../schemas/verb.json")),
    ("activity.json", include_str!("../../schemas/activity.json")),
    ("statementref.json", include_str!("../../schemas/statementref.json")),
    ("result.json", include_str!("../../schemas/result.json")),
    ("context.json", include_str!("../../schemas/context.json")),
    ("attachment.json", include_str!("../../schemas/attachment.json")),
    ("substatement.json", include_str!("../../schemas/substatement.json")),
    ("statement.json", include_str!("../../schemas/statement.json")),
    ("statement-1.0.3.json", include_str!("../../schemas/statement-1.0.3.json")),
    ("statement-2.0.0.json", include_str!("../../schemas/statement-2.0.0.json")),
];

/// The reserved voiding verb (Data 2.3.2).
const VOIDED_VERB: &str = "http://adlnet.gov/expapi/verbs/voided";

/// Inverse functional identifiers of Agents and Groups (Data 2.4.2.3).
const IFI_KEYS: [&str; 4] = ["mbox", "mbox_sha1sum", "openid", "account"];

/// Interaction component lists (Data 2.4.4.1, Interaction Components).
const COMPONENT_LISTS: [&str; 5] = ["choices", "scale", "source", "target", "steps"];

const REQ_NULL: &str = "Data 2.2.s4.b1.b1 (XAPI-00001)";
const REQ_TYPE: &str = "Data 2.2.s4.b1.b2 (XAPI-00006)";
const REQ_FORMAT: &str = "Data 2.2.s4.b1.b3 (XAPI-00007)";
const REQ_KEY_CASE: &str = "Data 2.2.s4.b1.b4 (XAPI-00008)";
const REQ_VALUE_CASE: &str = "Data 2.2.s4.b1.b5 (XAPI-00009)";
const REQ_NOT_ALLOWED: &str = "Data 2.2.s4.b1.b6 (XAPI-00010)";
const REQ_AGENT_IFI: &str = "Data 2.4.2.1 (XAPI-00034)";
const REQ_GROUP: &str = "Data 2.4.2.2 (XAPI-00037)";
const REQ_INTERACTION_TYPE: &str = "Data 2.4.4.1 (XAPI-00064)";
const REQ_COMPONENTS: &str = "Data 2.4.4.1 Interaction Components";
const REQ_REVISION: &str = "Data 2.4.6 (XAPI-00084)";
const REQ_PLATFORM: &str = "Data 2.4.6 (XAPI-00085)";
const REQ_SCORE_MIN_MAX: &str = "Data 2.4.5.1 (XAPI-00080, XAPI-00081)";
const REQ_SCORE_RAW: &str = "Data 2.4.5.1 (XAPI-00082)";
const REQ_VOIDING: &str = "Data 2.3.2 (XAPI-00017)";
const REQ_AUTHORITY: &str = "Data 2.4.9 (XAPI-00024, XAPI-00098)";
const REQ_AGENT_PARAM: &str = "Data 2.2.s4.b4 (XAPI-00012)";

/// Validates one statement as received (POST/PUT body element) under `version`.
///
/// Compiled schemas are built once from the files in `schemas/` embedded with `include_str!`.
/// Error paths are JSON pointers into `statement` (`""` is the statement itself).
pub fn validate_statement(statement: &Value, version: XapiVersion) -> Result<(), XapiError> {
    let compiled = compiled()?;
    let validator = match version {
        XapiVersion::V1_0 => &compiled.statement_v1,
        XapiVersion::V2_0 => &compiled.statement_v2,
    };
    if let Some(error) = first_schema_error(validator, statement) {
        return Err(compiled.describe(&error, version));
    }
    match statement.as_object() {
        Some(statement) => check_statement(statement, "", true),
        None => Err(XapiError::bad_request("a Statement must be a JSON object")
            .at("")
            .req(REQ_TYPE)),
    }
}

/// Validates an Agent or Group given as a query/document parameter (e.g. `agent=` on
/// GET /statements or the state resource): it must be a valid Agent, or an identified Group,
/// with exactly one inverse functional identifier.
///
/// Error paths are JSON pointers into the parameter value (`""` is the value itself). The rules
/// are the same under both versions.
pub fn validate_agent_param(agent: &Value, version: XapiVersion) -> Result<(), XapiError> {
    let compiled = compiled()?;
    if let Some(error) = first_schema_error(&compiled.actor, agent) {
        return Err(compiled.describe(&error, version));
    }
    let Some(object) = agent.as_object() else {
        return Err(XapiError::bad_request("an agent parameter must be a JSON object")
            .at("")
            .req(REQ_AGENT_PARAM));
    };
    let found = ifis_of(object);
    if found.len() != 1 {
        let kind = if is_group(object) { "Group" } else { "Agent" };
        return Err(XapiError::bad_request(format!(
            "the agent parameter must identify one {kind} by exactly one inverse functional \
             identifier (mbox, mbox_sha1sum, openid or account); found {}",
            describe_ifis(&found)
        ))
        .at("")
        .req(REQ_AGENT_PARAM));
    }
    if is_group(object) {
        check_group(object, "")
    } else {
        Ok(())
    }
}

/// An absolute IRI (RFC 3987), fragment allowed: a scheme is required.
pub fn is_valid_iri(s: &str) -> bool {
    iri_string::types::IriStr::new(s).is_ok()
}

/// A well-formed BCP 47 / RFC 5646 language tag, without repeated variants or extension
/// singletons (RFC 5646 section 2.2.5 and 2.2.6).
pub fn is_valid_language_tag(s: &str) -> bool {
    let Ok(tag) = oxilangtag::LanguageTag::parse(s) else {
        return false;
    };
    let mut variants = HashSet::new();
    if !tag.variant_subtags().all(|v| variants.insert(v.to_ascii_lowercase())) {
        return false;
    }
    let mut singletons = HashSet::new();
    let distinct_singletons =
        tag.extension_subtags().all(|(singleton, _)| singletons.insert(singleton.to_ascii_lowercase()));
    distinct_singletons
}

/// An ISO 8601:2004 duration in the format of section 4.4.3.2 (`PnYnMnDTnHnMnS` or `PnW`),
/// as xAPI uses it: at least one component, designators in order, a decimal fraction (`.` or
/// `,`) only on the smallest component given, and weeks never combined with anything else.
/// The alternative format of section 4.4.3.3 (`P0003-01-29T…`) is rejected (Data 4.6).
pub fn is_valid_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else {
        return false;
    };
    if let Some(weeks) = rest.strip_suffix('W') {
        return is_duration_number(weeks);
    }
    let (date_part, time_part) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let Some(mut components) = duration_components(date_part, b"YMD") else {
        return false;
    };
    if let Some(time) = time_part {
        match duration_components(time, b"HMS") {
            Some(time_components) if !time_components.is_empty() => {
                components.extend(time_components)
            }
            _ => return false,
        }
    }
    match components.split_last() {
        None => false,
        // Only the smallest component given may carry a decimal fraction.
        Some((_, larger)) => larger.iter().all(|has_fraction| !has_fraction),
    }
}

/// An xAPI UUID: the standard string form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits in
/// either case) of an RFC 4122 UUID, i.e. of the variant whose top bits are `10` (Data 2.4.1,
/// Data 4.4).
pub fn is_valid_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && matches!(b[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// Parses an xAPI timestamp under the version's rules. Returns `None` when invalid.
///
/// * 1.0.x (Data 4.5, "ISO 8601"): the extended (`2015-06-01T12:30:45.123+02:00`) or basic
///   (`20150601T123045.123+0200`) format; seconds may be omitted; the fraction may use `.`
///   or `,`; the offset is `Z`, `±hh:mm`, `±hhmm` or `±hh`, or absent (then read as UTC).
/// * 2.0: RFC 3339 `date-time` (`2015-06-01T12:30:45.123+02:00`), any offset.
///
/// Both reject a negative zero offset (`-00`, `-0000`, `-00:00`: "unknown local offset").
pub fn parse_timestamp(s: &str, version: XapiVersion) -> Option<DateTime<FixedOffset>> {
    let iso = version == XapiVersion::V1_0;
    let mut c = Cursor { bytes: s.as_bytes(), pos: 0 };
    let year = c.digits(4)?;
    let extended = c.eat(b'-');
    if !extended && !iso {
        return None;
    }
    let month = c.digits(2)?;
    if extended && !c.eat(b'-') {
        return None;
    }
    let day = c.digits(2)?;
    if !(c.eat(b'T') || c.eat(b't')) {
        return None;
    }
    let hour = c.digits(2)?;
    if extended && !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    let has_seconds = if extended { c.eat(b':') } else { c.peek().is_some_and(|b| b.is_ascii_digit()) };
    let (mut second, mut nanos) = (0, 0);
    if has_seconds {
        second = c.digits(2)?;
        if c.eat(b'.') || (iso && c.eat(b',')) {
            nanos = c.fraction()?;
        }
    } else if !iso {
        return None;
    }
    let offset_seconds = match c.next() {
        None if iso => 0,
        None => return None,
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = c.digits(2)?;
            let minutes = if c.eat(b':') {
                c.digits(2)?
            } else if iso && c.peek().is_some() {
                c.digits(2)?
            } else if iso {
                0
            } else {
                return None;
            };
            if hours > 23 || minutes > 59 || (sign == b'-' && hours == 0 && minutes == 0) {
                return None;
            }
            let magnitude = i32::try_from(hours * 3600 + minutes * 60).ok()?;
            if sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        Some(_) => return None,
    };
    if c.peek().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if second > 59 {
        return None;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let offset = FixedOffset::east_opt(offset_seconds)?;
    offset.from_local_datetime(&NaiveDateTime::new(date, time)).single()
}

// ---------------------------------------------------------------------------------------------
// String formats
// ---------------------------------------------------------------------------------------------

/// `mailto:` followed by an email address (local part, `@`, domain), as a valid IRI
/// (Data 2.4.2.3).
fn is_valid_mailto(s: &str) -> bool {
    let Some(address) = s.strip_prefix("mailto:") else {
        return false;
    };
    let address = address.split_once('?').map_or(address, |(addr, _)| addr);
    match address.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && is_valid_iri(s),
        None => false,
    }
}

/// Digits, optionally followed by a decimal sign and more digits.
fn is_duration_number(s: &str) -> bool {
    let (whole, fraction) = match s.find(['.', ',']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && fraction.is_none_or(all_digits)
}

/// Splits `3Y1M29D` into components whose designators appear in `order`, each at most once.
/// Returns, per component, whether it has a decimal fraction.
fn duration_components(s: &str, order: &[u8]) -> Option<Vec<bool>> {
    let mut result = Vec::new();
    let mut next_allowed = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
        let (number, tail) = rest.split_at(end);
        let designator = *tail.as_bytes().first()?;
        let position = order[next_allowed..].iter().position(|d| *d == designator)?;
        next_allowed += position + 1;
        if !is_duration_number(number) {
            return None;
        }
        result.push(number.contains(['.', ',']));
        rest = &tail[1..];
    }
    Some(result)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, expected: u8) -> bool {
        if self.peek() == Some(expected) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let chunk = self.bytes.get(self.pos..self.pos + n)?;
        let mut value = 0u32;
        for b in chunk {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos += n;
        Some(value)
    }

    /// One or more digits of a decimal fraction, as nanoseconds (digits past the ninth are
    /// truncated).
    fn fraction(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        if digits.is_empty() {
            return None;
        }
        let mut nanos = 0u32;
        for i in 0..9 {
            nanos = nanos * 10 + digits.get(i).map_or(0, |b| u32::from(b - b'0'));
        }
        Some(nanos)
    }
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

struct Compiled {
    /// The schema documents, by file name, to read annotations (`x-requirement`, `x-message`)
    /// at the location of an error.
    documents: HashMap<&'static str, Value>,
    statement_v1: Validator,
    statement_v2: Validator,
    actor: Validator,
}

static COMPILED: LazyLock<Result<Compiled, String>> = LazyLock::new(compile);

fn compiled() -> Result<&'static Compiled, XapiError> {
    COMPILED
        .as_ref()
        .map_err(|e| XapiError::internal(format!("statement schemas could not be loaded: {e}")))
}

fn compile() -> Result<Compiled, String> {
    let mut documents = HashMap::new();
    for (name, text) in SCHEMA_FILES {
        let document: Value =
            serde_json::from_str(text).map_err(|e| format!("schemas/{name}: {e}"))?;
        documents.insert(name, document);
    }
    let registry = jsonschema::Registry::new()
        .draft(Draft::Draft7)
        .extend(documents.iter().map(|(name, document)| (format!("{SCHEMA_BASE}{name}"), document.clone())))
        .map_err(|e| e.to_string())?
        .prepare()
        .map_err(|e| e.to_string())?;
    let build = |entry: &str, version: XapiVersion| -> Result<Validator, String> {
        jsonschema::options()
            .with_draft(Draft::Draft7)
            .with_registry(&registry)
            .offline()
            .should_validate_formats(true)
            .should_ignore_unknown_formats(false)
            .with_format("iri", is_valid_iri)
            .with_format("uuid", is_valid_uuid)
            .with_format("duration", is_valid_duration)
            .with_format("language-tag", is_valid_language_tag)
            .with_format("mailto-iri", is_valid_mailto)
            .with_format("date-time", move |s: &str| parse_timestamp(s, version).is_some())
            .build(&json!({ "$ref": format!("{SCHEMA_BASE}{entry}") }))
            .map_err(|e| format!("{entry}: {e}"))
    };
    Ok(Compiled {
        statement_v1: build("statement-1.0.3.json", XapiVersion::V1_0)?,
        statement_v2: build("statement-2.0.0.json", XapiVersion::V2_0)?,
        actor: build("agent.json#/definitions/actor", XapiVersion::V2_0)?,
        documents,
    })
}

/// The most telling schema error, if any: the first one whose schema location carries its
/// own message, else the first one.
fn first_schema_error<'i>(validator: &'i Validator, instance: &'i Value) -> Option<ValidationError<'i>> {
    let mut errors = validator.iter_errors(instance);
    let first = errors.next()?;
    if has_own_message(&first) {
        return Some(first);
    }
    Some(errors.find(has_own_message).unwrap_or(first))
}

fn has_own_message(error: &ValidationError<'_>) -> bool {
    COMPILED
        .as_ref()
        .ok()
        .and_then(|compiled| compiled.annotations(error).message)
        .is_some()
}

/// Annotations found in the schema around an error's keyword.
struct Annotations {
    /// `x-message` of the schema holding the failing keyword.
    message: Option<String>,
    /// The nearest `x-requirement` (a string, or an object keyed by keyword with a `*` default).
    requirement: Option<String>,
    /// The property names that schema declares (to spot wrongly-cased keys).
    declared: Vec<String>,
}

impl Compiled {
    fn annotations(&self, error: &ValidationError<'_>) -> Annotations {
        let mut found = Annotations { message: None, requirement: None, declared: Vec::new() };
        let Some(location) = error.absolute_keyword_location() else {
            return found;
        };
        let location = location.as_str();
        let Some((document_uri, fragment)) = location.split_once('#') else {
            return found;
        };
        let name = document_uri.rsplit('/').next().unwrap_or_default();
        let Some(document) = self.documents.get(name) else {
            return found;
        };
        let keyword = error.kind().keyword();
        let segments: Vec<String> = fragment
            .split('/')
            .skip(1)
            .map(|s| percent_decode(s).replace("~1", "/").replace("~0", "~"))
            .collect();
        // segments = [..., <keyword>]: the schema holding the keyword is one level up.
        for depth in (0..segments.len()).rev() {
            let Some(node) = pointer_get(document, &segments[..depth]) else {
                continue;
            };
            let Some(node) = node.as_object() else {
                continue;
            };
            if depth + 1 == segments.len() {
                found.message = node.get("x-message").and_then(Value::as_str).map(str::to_owned);
                if let Some(properties) = node.get("properties").and_then(Value::as_object) {
                    found.declared = properties.keys().cloned().collect();
                }
            }
            if found.requirement.is_none() {
                found.requirement = match node.get("x-requirement") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(by_keyword)) => by_keyword
                        .get(keyword)
                        .or_else(|| by_keyword.get("*"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    _ => None,
                };
            }
            if found.requirement.is_some() {
                break;
            }
        }
        found
    }

    /// Turns a schema error into a 400 naming the value, its location and the requirement.
    fn describe(&self, error: &ValidationError<'_>, version: XapiVersion) -> XapiError {
        let path = error.instance_path().as_str().to_owned();
        let field = display_path(&path);
        let notes = self.annotations(error);
        let instance: &Value = error.instance();
        let requirement_or = |fallback: &str| notes.requirement.clone().unwrap_or_else(|| fallback.to_owned());

        if let ValidationErrorKind::Type { kind } = error.kind() {
            if instance.is_null() {
                return XapiError::bad_request(format!(
                    "{field} is null: null values are not allowed (except inside extensions)"
                ))
                .at(path)
                .req(REQ_NULL);
            }
            if let Some(message) = notes.message {
                return XapiError::bad_request(format!("{field}: {message}")).at(path).req(requirement_or(REQ_TYPE));
            }
            return XapiError::bad_request(format!(
                "{field} must be {}, not {}",
                expected_types(kind),
                json_type_name(instance)
            ))
            .at(path)
            .req(requirement_or(REQ_TYPE));
        }
        if let Some(message) = notes.message {
            return XapiError::bad_request(format!("{field}: {message}"))
                .at(path)
                .req(requirement_or(REQ_FORMAT));
        }
        match error.kind() {
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default();
                let mut message = format!("{field} is missing the required property \"{property}\"");
                if let Some(misspelt) = instance
                    .as_object()
                    .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case(property) && *k != property))
                {
                    message.push_str(&format!(
                        " (found \"{misspelt}\": property names are case-sensitive)"
                    ));
                }
                XapiError::bad_request(message).at(path).req(requirement_or(REQ_FORMAT))
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let key = unexpected.first().cloned().unwrap_or_default();
                let key_path = format!("{path}/{}", escape_pointer(&key));
                if let Some(declared) = notes.declared.iter().find(|d| d.eq_ignore_ascii_case(&key)) {
                    return XapiError::bad_request(format!(
                        "{field} has the property \"{key}\", which must be spelt \"{declared}\": \
                         property names are case-sensitive"
                    ))
                    .at(key_path)
                    .req(REQ_KEY_CASE);
                }
                let mut message = format!("{field} has the property \"{key}\", which is not allowed there");
                if !notes.declared.is_empty() {
                    let mut declared = notes.declared.clone();
                    declared.sort();
                    message.push_str(&format!(" (allowed: {})", declared.join(", ")));
                }
                XapiError::bad_request(message).at(key_path).req(REQ_NOT_ALLOWED)
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<&Value> = options.as_array().map(|a| a.iter().collect()).unwrap_or_default();
                enumeration_error(&field, &path, instance, &options, notes.requirement)
            }
            ValidationErrorKind::Constant { expected_value } => {
                let expected: &Value = expected_value;
                enumeration_error(&field, &path, instance, &[expected], notes.requirement)
            }
            ValidationErrorKind::Format { format } => XapiError::bad_request(format!(
                "{field} must be {}, not {}",
                format_expectation(format, version),
                truncate_json(instance)
            ))
            .at(path)
            .req(requirement_or(REQ_FORMAT)),
            ValidationErrorKind::PropertyNames { error: inner } => {
                let key = inner.instance().as_str().unwrap_or_default().to_owned();
                let problem = match inner.kind() {
                    ValidationErrorKind::Format { format } => {
                        format!("is not {}", format_expectation(format, version))
                    }
                    _ => "is not allowed".to_owned(),
                };
                XapiError::bad_request(format!("{field} has the key \"{key}\", which {problem}"))
                    .at(format!("{path}/{}", escape_pointer(&key)))
                    .req(requirement_or(REQ_FORMAT))
            }
            ValidationErrorKind::Minimum { limit } => XapiError::bad_request(format!(
                "{field} must be at least {limit}, not {instance}"
            ))
            .at(path)
            .req(requirement_or(REQ_FORMAT)),
            ValidationErrorKind::Maximum { limit } => XapiError::bad_request(format!(
                "{field} must be at most {limit}, not {instance}"
            ))
            .at(path)
            .req(requirement_or(REQ_FORMAT)),
            ValidationErrorKind::MinItems { limit } => XapiError::bad_request(format!(
                "{field} must have at least {limit} item{}",
                if *limit == 1 { "" } else { "s" }
            ))
            .at(path)
            .req(requirement_or(REQ_FORMAT)),
            ValidationErrorKind::Pattern { .. } => XapiError::bad_request(format!(
                "{field} has an invalid value {}",
                truncate_json(instance)
            ))
            .at(path)
            .req(requirement_or(REQ_FORMAT)),
            ValidationErrorKind::Not { .. } | ValidationErrorKind::FalseSchema => {
                XapiError::bad_request(format!("{field} is not allowed here"))
                    .at(path)
                    .req(requirement_or(REQ_NOT_ALLOWED))
            }
            _ => XapiError::bad_request(format!("{field}: {error}"))
                .at(path)
                .req(requirement_or(REQ_FORMAT)),
        }
    }
}

fn enumeration_error(
    field: &str,
    path: &str,
    instance: &Value,
    options: &[&Value],
    requirement: Option<String>,
) -> XapiError {
    let listed = options.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ");
    let wrong_case = instance.as_str().and_then(|s| {
        options
            .iter()
            .filter_map(|o| o.as_str())
            .find(|o| o.eq_ignore_ascii_case(s))
    });
    if let Some(expected) = wrong_case {
        return XapiError::bad_request(format!(
            "{field} is {}, which must be written \"{expected}\": enumerated values are case-sensitive",
            truncate_json(instance)
        ))
        .at(path)
        .req(REQ_VALUE_CASE);
    }
    let expectation = if options.len() == 1 { listed } else { format!("one of {listed}") };
    XapiError::bad_request(format!("{field} must be {expectation}, not {}", truncate_json(instance)))
        .at(path)
        .req(requirement.unwrap_or_else(|| REQ_NOT_ALLOWED.to_owned()))
}

/// What a string of the given format looks like.
fn format_expectation(format: &str, version: XapiVersion) -> &'static str {
    match format {
        "iri" => "an absolute IRI with a scheme (RFC 3987)",
        "uuid" => "a UUID in standard string form (RFC 4122)",
        "duration" => "an ISO 8601 duration such as \"PT1H30M\" or \"P4W\"",
        "language-tag" => "an RFC 5646 language tag such as \"en-US\"",
        "mailto-iri" => "a mailto IRI: \"mailto:\" followed by an email address",
        "date-time" if version == XapiVersion::V1_0 => {
            "an ISO 8601 timestamp such as \"2015-06-01T12:30:45.123Z\" (a negative zero offset is not allowed)"
        }
        "date-time" => {
            "an RFC 3339 timestamp such as \"2015-06-01T12:30:45.123Z\" (a negative zero offset is not allowed)"
        }
        _ => "well-formed",
    }
}

fn expected_types(kind: &TypeKind) -> String {
    let article = |t: String| match t.as_str() {
        "object" | "array" | "integer" => format!("an {t}"),
        _ => format!("a {t}"),
    };
    match kind {
        TypeKind::Single(t) => article(t.to_string()),
        TypeKind::Multiple(set) => set.iter().map(|t| article(t.to_string())).collect::<Vec<_>>().join(" or "),
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate_json(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let short: String = text.chars().take(77).collect();
        format!("{short}...")
    } else {
        text
    }
}

fn pointer_get<'a>(document: &'a Value, segments: &[String]) -> Option<&'a Value> {
    segments.iter().try_fold(document, |node, segment| match node {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// `/context/contextActivities/parent/0/id` → `context.contextActivities.parent[0].id`.
fn display_path(pointer: &str) -> String {
    if pointer.is_empty() {
        return "the statement".to_owned();
    }
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else if segment.contains(['.', '/', ':']) {
            out.push_str(&format!("[\"{segment}\"]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rules beyond the schemas. They run on schema-valid input, but never assume it.
// ---------------------------------------------------------------------------------------------

fn bad(message: String, path: &str, requirement: &str) -> XapiError {
    XapiError::bad_request(message).at(path).req(requirement)
}

fn ifis_of(object: &Map<String, Value>) -> Vec<&'static str> {
    IFI_KEYS.iter().copied().filter(|k| object.contains_key(*k)).collect()
}

fn describe_ifis(found: &[&str]) -> String {
    if found.is_empty() {
        "none".to_owned()
    } else {
        format!("{} ({})", found.len(), found.join(", "))
    }
}

fn is_group(object: &Map<String, Value>) -> bool {
    object.get("objectType").and_then(Value::as_str) == Some("Group")
}

fn object_type(value: &Value) -> Option<&str> {
    value.get("objectType").and_then(Value::as_str)
}

/// A Statement, or (with `top_level` false) a SubStatement.
fn check_statement(statement: &Map<String, Value>, path: &str, top_level: bool) -> Result<(), XapiError> {
    if let Some(actor) = statement.get("actor").and_then(Value::as_object) {
        check_actor(actor, &format!("{path}/actor"))?;
    }
    let object = statement.get("object");
    let verb_id = statement.get("verb").and_then(|v| v.get("id")).and_then(Value::as_str);
    if verb_id == Some(VOIDED_VERB) && object.and_then(object_type) != Some("StatementRef") {
        return Err(bad(
            format!(
                "{}: a voiding Statement (verb {VOIDED_VERB}) must have a StatementRef as its object",
                display_path(&format!("{path}/object"))
            ),
            &format!("{path}/object"),
            REQ_VOIDING,
        ));
    }
    if let Some(object) = object.and_then(Value::as_object) {
        check_object(object, &format!("{path}/object"))?;
    }
    if let Some(result) = statement.get("result").and_then(Value::as_object) {
        check_result(result, &format!("{path}/result"))?;
    }
    if let Some(context) = statement.get("context").and_then(Value::as_object) {
        check_context(context, &format!("{path}/context"), object)?;
    }
    if top_level {
        if let Some(authority) = statement.get("authority").and_then(Value::as_object) {
            check_authority(authority, &format!("{path}/authority"))?;
        }
    }
    Ok(())
}

fn check_actor(actor: &Map<String, Value>, path: &str) -> Result<(), XapiError> {
    if is_group(actor) {
        check_group(actor, path)
    } else {
        check_agent(actor, path)
    }
}

/// An Agent has exactly one inverse functional identifier.
fn check_agent(agent: &Map<String, Value>, path: &str) -> Result<(), XapiError> {
    let found = ifis_of(agent);
    if found.len() == 1 {
        return Ok(());
    }
    Err(bad(
        format!(
            "{}: an Agent must have exactly one inverse functional identifier (mbox, \
             mbox_sha1sum, openid or account); found {}",
            display_path(path),
            describe_ifis(&found)
        ),
        path,
        REQ_AGENT_IFI,
    ))
}

/// A Group has at most one inverse functional identifier; without one (anonymous) it lists
/// its members. Every member is an Agent with exactly one identifier.
fn check_group(group: &Map<String, Value>, path: &str) -> Result<(), XapiError> {
    let found = ifis_of(group);
    if found.len() > 1 {
        return Err(bad(
            format!(
                "{}: an identified Group must have exactly one inverse functional identifier; found {}",
                display_path(path),
                describe_ifis(&found)
            ),
            path,
            REQ_GROUP,
        ));
    }
    let members = group.get("member").and_then(Value::as_array);
    if found.is_empty() && members.is_none_or(|m| m.is_empty()) {
        return Err(bad(
            format!(
                "{}: an anonymous Group (one without an inverse functional identifier) must list \
                 at least one Agent in \"member\"",
                display_path(path)
            ),
            path,
            REQ_GROUP,
        ));
    }
    for (i, member) in members.into_iter().flatten().enumerate() {
        if let Some(member) = member.as_object() {
            check_agent(member, &format!("{path}/member/{i}"))?;
        }
    }
    Ok(())
}

fn check_object(object: &Map<String, Value>, path: &str) -> Result<(), XapiError> {
    match object.get("objectType").and_then(Value::as_str) {
        Some("Agent") => check_agent(object, path),
        Some("Group") => check_group(object, path),
        Some("SubStatement") => check_statement(object, path, false),
        Some("StatementRef") => Ok(()),
        _ => check_activity(object, path),
    }
}

/// Interaction properties need an interactionType; component lists must match it; component
/// ids are distinct within a list.
fn check_activity(activity: &Map<String, Value>, path: &str) -> Result<(), XapiError> {
    let Some(definition) = activity.get("definition").and_then(Value::as_object) else {
        return Ok(());
    };
    let definition_path = format!("{path}/definition");
    let interaction_type = definition.get("interactionType").and_then(Value::as_str);
    if interaction_type.is_none() {
        let interaction_keys = std::iter::once("correctResponsesPattern").chain(COMPONENT_LISTS);
        for key in interaction_keys {
            if definition.contains_key(key) {
                return Err(bad(
                    format!(
                        "{}: an Activity Definition using \"{key}\" must have an \"interactionType\"",
                        display_path(&definition_path)
                    ),
                    &format!("{definition_path}/{key}"),
                    REQ_INTERACTION_TYPE,
                ));
            }
        }
        return Ok(());
    }
    let allowed: &[&str] = match interaction_type {
        Some("choice" | "sequencing") => &["choices"],
        Some("likert") => &["scale"],
        Some("matching") => &["source", "target"],
        Some("performance") => &["steps"],
        _ => &[],
    };
    for key in COMPONENT_LISTS {
        let Some(list) = definition.get(key) else {
            continue;
        };
        let list_path = format!("{definition_path}/{key}");
        if !allowed.contains(&key) {
            return Err(bad(
                format!(
                    "{}: the interaction component list \"{key}\" cannot be used with \
                     interactionType \"{}\"",
                    display_path(&definition_path),
                    interaction_type.unwrap_or_default()
                ),
                &list_path,
                REQ_COMPONENTS,
            ));
        }
        let mut seen = HashSet::new();
        for (i, component) in list.as_array().into_iter().flatten().enumerate() {
            if let Some(id) = component.get("id").and_then(Value::as_str) {
                if !seen.insert(id) {
                    return Err(bad(
                        format!(
                            "{}: interaction component id \"{id}\" is used more than once; ids \
                             within a component list must be distinct",
                            display_path(&list_path)
                        ),
                        &format!("{list_path}/{i}/id"),
                        REQ_COMPONENTS,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// min < max, and min <= raw <= max where given.
fn check_result(result: &Map<String, Value>, path: &str) -> Result<(), XapiError> {
    let Some(score) = result.get("score").and_then(Value::as_object) else {
        return Ok(());
    };
    let score_path = format!("{path}/score");
    let number = |key: &str| score.get(key).and_then(Value::as_f64);
    let (raw, min, max) = (number("raw"), number("min"), number("max"));
    if let (Some(min), Some(max)) = (min, max) {
        if min >= max {
            return Err(bad(
                format!("{}: min ({min}) must be less than max ({max})", display_path(&score_path)),
                &format!("{score_path}/min"),
                REQ_SCORE_MIN_MAX,
            ));
        }
    }
    if let Some(raw) = raw {
        if let Some(min) = min.filter(|min| raw < *min) {
            return Err(bad(
                format!("{}: raw ({raw}) must not be less than min ({min})", display_path(&score_path)),
                &format!("{score_path}/raw"),
                REQ_SCORE_RAW,
            ));
        }
        if let Some(max) = max.filter(|max| raw > *max) {
            return Err(bad(
                format!("{}: raw ({raw}) must not be greater than max ({max})", display_path(&score_path)),
                &format!("{score_path}/raw"),
                REQ_SCORE_RAW,
            ));
        }
    }
    Ok(())
}

fn check_context(context: &Map<String, Value>, path: &str, object: Option<&Value>) -> Result<(), XapiError> {
    let object_is_activity = object.is_none_or(|o| matches!(object_type(o), None | Some("Activity")));
    if !object_is_activity {
        for (key, requirement) in [("revision", REQ_REVISION), ("platform", REQ_PLATFORM)] {
            if context.contains_key(key) {
                return Err(bad(
                    format!(
                        "{}: \"{key}\" may only be used when the Statement's object is an Activity",
                        display_path(path)
                    ),
                    &format!("{path}/{key}"),
                    requirement,
                ));
            }
        }
    }
    if let Some(instructor) = context.get("instructor").and_then(Value::as_object) {
        check_actor(instructor, &format!("{path}/instructor"))?;
    }
    if let Some(team) = context.get("team").and_then(Value::as_object) {
        check_group(team, &format!("{path}/team"))?;
    }
    if let Some(context_activities) = context.get("contextActivities").and_then(Value::as_object) {
        for (key, value) in context_activities {
            let value_path = format!("{path}/contextActivities/{}", escape_pointer(key));
            match value {
                Value::Array(activities) => {
                    for (i, activity) in activities.iter().enumerate() {
                        if let Some(activity) = activity.as_object() {
                            check_activity(activity, &format!("{value_path}/{i}"))?;
                        }
                    }
                }
                Value::Object(activity) => check_activity(activity, &value_path)?,
                _ => {}
            }
        }
    }
    for (list, member, is_agent) in [("contextAgents", "agent", true), ("contextGroups", "group", false)] {
        for (i, item) in context.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            if let Some(actor) = item.get(member).and_then(Value::as_object) {
                let actor_path = format!("{path}/{list}/{i}/{member}");
                if is_agent {
                    check_agent(actor, &actor_path)?;
                } else {
                    check_group(actor, &actor_path)?;
                }
            }
        }
    }
    Ok(())
}

/// An Agent, or (3-legged OAuth) an anonymous Group of exactly two Agents.
fn check_authority(authority: &Map<String, Value>, path: &str) -> Result<(), XapiError> {
    if !is_group(authority) {
        return check_agent(authority, path);
    }
    let found = ifis_of(authority);
    if !found.is_empty() {
        return Err(bad(
            format!(
                "{}: an authority that is a Group must be an anonymous Group of two Agents \
                 (OAuth consumer and user); this one has an inverse functional identifier ({})",
                display_path(path),
                found.join(", ")
            ),
            path,
            REQ_AUTHORITY,
        ));
    }
    let count = authority.get("member").and_then(Value::as_array).map_or(0, Vec::len);
    if count != 2 {
        return Err(bad(
            format!(
                "{}: an authority that is a Group must have exactly two Agents as members \
                 (OAuth consumer and user); found {count}",
                display_path(path)
            ),
            path,
            REQ_AUTHORITY,
        ));
    }
    check_group(authority, path)
}

#[cfg(test)]
mod adl_harness_tmp {
    use super::*;

    fn run(file: &str, version: XapiVersion) -> usize {
        let Ok(text) = std::fs::read_to_string(file) else { return 0 };
        let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
        let mut bad = 0;
        for case in &cases {
            let expect = case["expect"].clone();
            let expect_ok = match &expect {
                Value::Array(a) => a.first().and_then(Value::as_u64).map(|c| c < 300),
                Value::Number(n) => n.as_u64().map(|c| c < 300),
                _ => None,
            };
            let Some(expect_ok) = expect_ok else { continue };
            if case.get("kind").is_some_and(|k| k != "json") { continue; }
            let data = if case.get("data").is_some() { &case["data"] } else { &case["body"] };
            let items: Vec<&Value> = match data { Value::Array(a) => a.iter().collect(), v => vec![v] };
            let result: Result<(), XapiError> = items.iter().try_for_each(|s| validate_statement(s, version));
            if file.contains("raw_") && !expect_ok { println!("info-raw400 {} => {:?}", case["test"], result.as_ref().err().map(|e| e.to_string())); continue; }
            if result.is_ok() != expect_ok {
                bad += 1;
                println!("MISMATCH [{}] {} :: {} expect_ok={} got={:?}", file, case.get("file").or(case.get("test")).unwrap(), case.get("name").unwrap_or(&Value::Null), expect_ok, result.err().map(|e| e.to_string()));
            } else if std::env::var("SHOW_ALL").is_ok() {
                println!("ok [{}] {} => {:?}", case.get("name").or(case.get("test")).unwrap(), expect_ok, result.err().map(|e| e.to_string()));
            }
        }
        println!("{file}: {} cases, {bad} mismatches", cases.len());
        bad
    }

    #[test]
    fn adl_fixtures() {
        let mut bad = 0;
        bad += run("/tmp/adlgen/v1.json", XapiVersion::V1_0);
        bad += run("/tmp/adlgen/v2.json", XapiVersion::V2_0);
        bad += run("/tmp/adlgen/cap_v1_0_3.json", XapiVersion::V1_0);
        bad += run("/tmp/adlgen/cap_v2_0.json", XapiVersion::V2_0);
        bad += run("/tmp/adlgen/raw_v1_0_3.json", XapiVersion::V1_0);
        bad += run("/tmp/adlgen/raw_v2_0.json", XapiVersion::V2_0);
        bad += run("/tmp/adlgen/rawlist_v1_0_3.json", XapiVersion::V1_0);
        bad += run("/tmp/adlgen/rawlist_v2_0.json", XapiVersion::V2_0);
        assert_eq!(bad, 0);
    }
}
