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

use crate::error::{pointer_token, XapiError};
use crate::xapi::XapiVersion;

/// Base URI of the schema files (`.invalid` is reserved: it never resolves).
const SCHEMA_BASE: &str = "https://karmayogi-lrs.invalid/schemas/";

/// The schema files, by file name.
const SCHEMA_FILES: [(&str, &str); 12] = [
    ("common.json", include_str!("../../schemas/common.json")),
    ("agent.json", include_str!("../../schemas/agent.json")),
    ("verb.json", include_str!("../../schemas/verb.json")),
    ("activity.json", include_str!("../../schemas/activity.json")),
    (
        "statementref.json",
        include_str!("../../schemas/statementref.json"),
    ),
    ("result.json", include_str!("../../schemas/result.json")),
    ("context.json", include_str!("../../schemas/context.json")),
    (
        "attachment.json",
        include_str!("../../schemas/attachment.json"),
    ),
    (
        "substatement.json",
        include_str!("../../schemas/substatement.json"),
    ),
    (
        "statement.json",
        include_str!("../../schemas/statement.json"),
    ),
    (
        "statement-1.0.3.json",
        include_str!("../../schemas/statement-1.0.3.json"),
    ),
    (
        "statement-2.0.0.json",
        include_str!("../../schemas/statement-2.0.0.json"),
    ),
];

/// The reserved voiding verb (Data 2.3.2).
const VOIDED_VERB: &str = "http://adlnet.gov/expapi/verbs/voided";

/// Inverse functional identifiers of Agents and Groups (Data 2.4.2.3).
const IFI_KEYS: [&str; 4] = ["mbox", "mbox_sha1sum", "openid", "account"];

/// Interaction component lists (Data 2.4.4.1, Interaction Components).
const COMPONENT_LISTS: [&str; 5] = ["choices", "scale", "source", "target", "steps"];

/// What only an interaction Activity may define: its response pattern and component lists.
const INTERACTION_PROPERTIES: [&str; 6] = [
    "correctResponsesPattern",
    "choices",
    "scale",
    "source",
    "target",
    "steps",
];

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
        Some(statement) => check_statement(statement, Ptr::Root, true),
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
        return Err(
            XapiError::bad_request("an agent parameter must be a JSON object")
                .at("")
                .req(REQ_AGENT_PARAM),
        );
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
        check_group(object, Ptr::Root)
    } else {
        Ok(())
    }
}

/// An absolute IRI (RFC 3987), fragment allowed: a scheme is required.
pub fn is_valid_iri(s: &str) -> bool {
    is_plain_iri(s) || iri_string::types::IriStr::new(s).is_ok()
}

/// The shapes most IRIs in statements take, checked without the full parser: `http://` or
/// `https://`, a host name and a path of unreserved characters (RFC 3987 `ireg-name` and
/// `ipath-abempty`), or `mailto:` and a run of unreserved characters and `@`
/// (`ipath-rootless`). Every string matched is an IRI; anything else goes to the parser.
fn is_plain_iri(s: &str) -> bool {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    {
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        return host.bytes().all(unreserved) && path.bytes().all(|b| unreserved(b) || b == b'/');
    }
    match s.strip_prefix("mailto:") {
        Some(address) => !address.is_empty() && address.bytes().all(|b| unreserved(b) || b == b'@'),
        None => false,
    }
}

/// A well-formed BCP 47 / RFC 5646 language tag, without repeated variants or extension
/// singletons (RFC 5646 section 2.2.5 and 2.2.6).
pub fn is_valid_language_tag(s: &str) -> bool {
    is_language_and_region(s) || is_well_formed_language_tag(s)
}

fn is_well_formed_language_tag(s: &str) -> bool {
    let Ok(tag) = oxilangtag::LanguageTag::parse(s) else {
        return false;
    };
    let mut variants = HashSet::new();
    if !tag
        .variant_subtags()
        .all(|v| variants.insert(v.to_ascii_lowercase()))
    {
        return false;
    }
    let mut singletons = HashSet::new();
    let distinct_singletons = tag
        .extension_subtags()
        .all(|(singleton, _)| singletons.insert(singleton.to_ascii_lowercase()));
    distinct_singletons
}

/// The shape almost every language map key takes, checked without the full parser: a
/// 2–3 letter language, optionally with a 2-letter or 3-digit region (`en`, `en-US`,
/// `es-419`). Well-formed by RFC 5646, with no variants or extensions to repeat.
fn is_language_and_region(s: &str) -> bool {
    let (language, region) = match s.split_once('-') {
        Some((language, region)) => (language, Some(region)),
        None => (s, None),
    };
    matches!(language.len(), 2 | 3)
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && region.is_none_or(|r| {
            (r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()))
                || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()))
        })
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
    // Data 4.4: standard string form is the MUST; RFC 4122 variant 2 is only recommended.
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
    let mut c = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
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
    let has_seconds = if extended {
        c.eat(b':')
    } else {
        c.peek().is_some_and(|b| b.is_ascii_digit())
    };
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
            // Extended `±hh:mm` always; basic `±hhmm` and hours-only `±hh` under 1.0.x only.
            let minutes = if c.eat(b':') || (iso && c.peek().is_some()) {
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
    offset
        .from_local_datetime(&NaiveDateTime::new(date, time))
        .single()
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
        let position = order[next_allowed..]
            .iter()
            .position(|d| *d == designator)?;
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
        .extend(
            documents
                .iter()
                .map(|(name, document)| (format!("{SCHEMA_BASE}{name}"), document.clone())),
        )
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
            .with_format("date-time", move |s: &str| {
                parse_timestamp(s, version).is_some()
            })
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
fn first_schema_error<'i>(
    validator: &'i Validator,
    instance: &'i Value,
) -> Option<ValidationError<'i>> {
    if validator.is_valid(instance) {
        return None;
    }
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
        let mut found = Annotations {
            message: None,
            requirement: None,
            declared: Vec::new(),
        };
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
                found.message = node
                    .get("x-message")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
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
        let requirement_or = |fallback: &str| {
            notes
                .requirement
                .clone()
                .unwrap_or_else(|| fallback.to_owned())
        };

        if let ValidationErrorKind::Type { kind } = error.kind() {
            if instance.is_null() {
                return XapiError::bad_request(format!(
                    "{field} is null: null values are not allowed (except inside extensions)"
                ))
                .at(path)
                .req(REQ_NULL);
            }
            if let Some(message) = notes.message {
                return XapiError::bad_request(format!("{field}: {message}"))
                    .at(path)
                    .req(requirement_or(REQ_TYPE));
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
                let mut message =
                    format!("{field} is missing the required property \"{property}\"");
                if let Some(misspelt) = instance.as_object().and_then(|o| {
                    o.keys()
                        .find(|k| k.eq_ignore_ascii_case(property) && *k != property)
                }) {
                    message.push_str(&format!(
                        " (found \"{misspelt}\": property names are case-sensitive)"
                    ));
                }
                XapiError::bad_request(message)
                    .at(path)
                    .req(requirement_or(REQ_FORMAT))
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let key = unexpected.first().cloned().unwrap_or_default();
                let key_path = format!("{path}/{}", pointer_token(&key));
                if let Some(declared) = notes.declared.iter().find(|d| d.eq_ignore_ascii_case(&key))
                {
                    return XapiError::bad_request(format!(
                        "{field} has the property \"{key}\", which must be spelt \"{declared}\": \
                         property names are case-sensitive"
                    ))
                    .at(key_path)
                    .req(REQ_KEY_CASE);
                }
                let mut message =
                    format!("{field} has the property \"{key}\", which is not allowed there");
                if !notes.declared.is_empty() {
                    let mut declared = notes.declared.clone();
                    declared.sort();
                    message.push_str(&format!(" (allowed: {})", declared.join(", ")));
                }
                XapiError::bad_request(message)
                    .at(key_path)
                    .req(REQ_NOT_ALLOWED)
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<&Value> = options
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
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
                    .at(format!("{path}/{}", pointer_token(&key)))
                    .req(requirement_or(REQ_FORMAT))
            }
            ValidationErrorKind::Minimum { limit } => {
                XapiError::bad_request(format!("{field} must be at least {limit}, not {instance}"))
                    .at(path)
                    .req(requirement_or(REQ_FORMAT))
            }
            ValidationErrorKind::Maximum { limit } => {
                XapiError::bad_request(format!("{field} must be at most {limit}, not {instance}"))
                    .at(path)
                    .req(requirement_or(REQ_FORMAT))
            }
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
    let listed = options
        .iter()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join(", ");
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
    let expectation = if options.len() == 1 {
        listed
    } else {
        format!("one of {listed}")
    };
    XapiError::bad_request(format!(
        "{field} must be {expectation}, not {}",
        truncate_json(instance)
    ))
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
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| article(t.to_string()))
            .collect::<Vec<_>>()
            .join(" or "),
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
    segments
        .iter()
        .try_fold(document, |node, segment| match node {
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
            if let Some(byte) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
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

/// A rule failure at `path`.
fn bad(message: String, path: Ptr<'_>, requirement: &str) -> XapiError {
    XapiError::bad_request(message)
        .at(path.pointer())
        .req(requirement)
}

/// Where a rule is looking, written out as a JSON pointer only when a rule fails: the rules
/// run on every statement received, and almost all of them pass.
#[derive(Clone, Copy)]
enum Ptr<'a> {
    Root,
    Key(&'a Ptr<'a>, &'a str),
    Index(&'a Ptr<'a>, usize),
}

impl<'a> Ptr<'a> {
    fn key(&'a self, key: &'a str) -> Ptr<'a> {
        Ptr::Key(self, key)
    }

    fn index(&'a self, index: usize) -> Ptr<'a> {
        Ptr::Index(self, index)
    }

    /// The JSON pointer (`""` is the statement itself).
    fn pointer(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Ptr::Root => {}
            Ptr::Key(parent, key) => {
                parent.write(out);
                out.push('/');
                out.push_str(&pointer_token(key));
            }
            Ptr::Index(parent, index) => {
                parent.write(out);
                out.push('/');
                out.push_str(&index.to_string());
            }
        }
    }

    /// How messages name the value, e.g. `context.contextActivities.parent[0]`.
    fn field(&self) -> String {
        display_path(&self.pointer())
    }
}

/// How many inverse functional identifiers an Agent or Group has (a walk over its few
/// properties, cheaper than a hashed lookup per identifier).
fn ifi_count(object: &Map<String, Value>) -> usize {
    object
        .keys()
        .filter(|k| IFI_KEYS.contains(&k.as_str()))
        .count()
}

fn ifis_of(object: &Map<String, Value>) -> Vec<&'static str> {
    IFI_KEYS
        .iter()
        .copied()
        .filter(|k| object.contains_key(*k))
        .collect()
}

fn describe_ifis(found: &[&str]) -> String {
    if found.is_empty() {
        "none".to_owned()
    } else {
        format!("{} ({})", found.len(), found.join(", "))
    }
}

/// The values of `keys` in `object`, found in one walk over its properties: cheaper than a
/// hashed lookup per key for the small objects statements are made of.
fn fields<'a, const N: usize>(
    object: &'a Map<String, Value>,
    keys: [&str; N],
) -> [Option<&'a Value>; N] {
    let mut found = [None; N];
    for (k, v) in object {
        if let Some(i) = keys.iter().position(|key| key == k) {
            found[i] = Some(v);
        }
    }
    found
}

fn is_group(object: &Map<String, Value>) -> bool {
    object.get("objectType").and_then(Value::as_str) == Some("Group")
}

fn object_type(value: &Value) -> Option<&str> {
    value.get("objectType").and_then(Value::as_str)
}

/// A Statement, or (with `top_level` false) a SubStatement.
fn check_statement(
    statement: &Map<String, Value>,
    path: Ptr<'_>,
    top_level: bool,
) -> Result<(), XapiError> {
    let [actor, verb, object, result, context, authority] = fields(
        statement,
        ["actor", "verb", "object", "result", "context", "authority"],
    );
    if let Some(actor) = actor.and_then(Value::as_object) {
        check_actor(actor, path.key("actor"))?;
    }
    let verb_id = verb.and_then(|v| v.get("id")).and_then(Value::as_str);
    if verb_id == Some(VOIDED_VERB) && object.and_then(object_type) != Some("StatementRef") {
        let object_path = path.key("object");
        return Err(bad(
            format!(
                "{}: a voiding Statement (verb {VOIDED_VERB}) must have a StatementRef as its object",
                object_path.field()
            ),
            object_path,
            REQ_VOIDING,
        ));
    }
    if let Some(object) = object.and_then(Value::as_object) {
        check_object(object, path.key("object"))?;
    }
    if let Some(result) = result.and_then(Value::as_object) {
        check_result(result, path.key("result"))?;
    }
    if let Some(context) = context.and_then(Value::as_object) {
        check_context(context, path.key("context"), object)?;
    }
    if top_level {
        if let Some(authority) = authority.and_then(Value::as_object) {
            check_authority(authority, path.key("authority"))?;
        }
    }
    Ok(())
}

fn check_actor(actor: &Map<String, Value>, path: Ptr<'_>) -> Result<(), XapiError> {
    if is_group(actor) {
        check_group(actor, path)
    } else {
        check_agent(actor, path)
    }
}

/// An Agent has exactly one inverse functional identifier.
fn check_agent(agent: &Map<String, Value>, path: Ptr<'_>) -> Result<(), XapiError> {
    if ifi_count(agent) == 1 {
        return Ok(());
    }
    Err(bad(
        format!(
            "{}: an Agent must have exactly one inverse functional identifier (mbox, \
             mbox_sha1sum, openid or account); found {}",
            path.field(),
            describe_ifis(&ifis_of(agent))
        ),
        path,
        REQ_AGENT_IFI,
    ))
}

/// A Group has at most one inverse functional identifier; without one (anonymous) it lists
/// its members. Every member is an Agent with exactly one identifier.
fn check_group(group: &Map<String, Value>, path: Ptr<'_>) -> Result<(), XapiError> {
    let count = ifi_count(group);
    if count > 1 {
        return Err(bad(
            format!(
                "{}: an identified Group must have exactly one inverse functional identifier; found {}",
                path.field(),
                describe_ifis(&ifis_of(group))
            ),
            path,
            REQ_GROUP,
        ));
    }
    let members = group.get("member").and_then(Value::as_array);
    if count == 0 && members.is_none_or(|m| m.is_empty()) {
        return Err(bad(
            format!(
                "{}: an anonymous Group (one without an inverse functional identifier) must list \
                 at least one Agent in \"member\"",
                path.field()
            ),
            path,
            REQ_GROUP,
        ));
    }
    let members_path = path.key("member");
    for (i, member) in members.into_iter().flatten().enumerate() {
        if let Some(member) = member.as_object() {
            check_agent(member, members_path.index(i))?;
        }
    }
    Ok(())
}

fn check_object(object: &Map<String, Value>, path: Ptr<'_>) -> Result<(), XapiError> {
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
fn check_activity(activity: &Map<String, Value>, path: Ptr<'_>) -> Result<(), XapiError> {
    let Some(definition) = activity.get("definition").and_then(Value::as_object) else {
        return Ok(());
    };
    let definition_path = path.key("definition");
    let interaction_type = definition.get("interactionType").and_then(Value::as_str);
    if interaction_type.is_none() {
        // The first interaction property used, in INTERACTION_PROPERTIES order.
        let used = definition
            .keys()
            .filter_map(|k| INTERACTION_PROPERTIES.iter().position(|p| p == k))
            .min()
            .and_then(|i| INTERACTION_PROPERTIES.get(i));
        return match used {
            Some(key) => Err(bad(
                format!(
                    "{}: an Activity Definition using \"{key}\" must have an \"interactionType\"",
                    definition_path.field()
                ),
                definition_path.key(key),
                REQ_INTERACTION_TYPE,
            )),
            None => Ok(()),
        };
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
        let list_path = definition_path.key(key);
        if !allowed.contains(&key) {
            return Err(bad(
                format!(
                    "{}: the interaction component list \"{key}\" cannot be used with \
                     interactionType \"{}\"",
                    definition_path.field(),
                    interaction_type.unwrap_or_default()
                ),
                list_path,
                REQ_COMPONENTS,
            ));
        }
        let mut seen = HashSet::new();
        for (i, component) in list.as_array().into_iter().flatten().enumerate() {
            if let Some(id) = component.get("id").and_then(Value::as_str) {
                if !seen.insert(id) {
                    let component_path = list_path.index(i);
                    return Err(bad(
                        format!(
                            "{}: interaction component id \"{id}\" is used more than once; ids \
                             within a component list must be distinct",
                            list_path.field()
                        ),
                        component_path.key("id"),
                        REQ_COMPONENTS,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// min < max, and min <= raw <= max where given.
fn check_result(result: &Map<String, Value>, path: Ptr<'_>) -> Result<(), XapiError> {
    let Some(score) = result.get("score").and_then(Value::as_object) else {
        return Ok(());
    };
    let score_path = path.key("score");
    let number = |key: &str| score.get(key).and_then(Value::as_f64);
    let (raw, min, max) = (number("raw"), number("min"), number("max"));
    if let (Some(min), Some(max)) = (min, max) {
        if min >= max {
            return Err(bad(
                format!(
                    "{}: min ({min}) must be less than max ({max})",
                    score_path.field()
                ),
                score_path.key("min"),
                REQ_SCORE_MIN_MAX,
            ));
        }
    }
    if let Some(raw) = raw {
        if let Some(min) = min.filter(|min| raw < *min) {
            return Err(bad(
                format!(
                    "{}: raw ({raw}) must not be less than min ({min})",
                    score_path.field()
                ),
                score_path.key("raw"),
                REQ_SCORE_RAW,
            ));
        }
        if let Some(max) = max.filter(|max| raw > *max) {
            return Err(bad(
                format!(
                    "{}: raw ({raw}) must not be greater than max ({max})",
                    score_path.field()
                ),
                score_path.key("raw"),
                REQ_SCORE_RAW,
            ));
        }
    }
    Ok(())
}

fn check_context(
    context: &Map<String, Value>,
    path: Ptr<'_>,
    object: Option<&Value>,
) -> Result<(), XapiError> {
    let object_is_activity =
        object.is_none_or(|o| matches!(object_type(o), None | Some("Activity")));
    if !object_is_activity {
        for (key, requirement) in [("revision", REQ_REVISION), ("platform", REQ_PLATFORM)] {
            if context.contains_key(key) {
                return Err(bad(
                    format!(
                        "{}: \"{key}\" may only be used when the Statement's object is an Activity",
                        path.field()
                    ),
                    path.key(key),
                    requirement,
                ));
            }
        }
    }
    let [instructor, team, context_activities, context_agents, context_groups] = fields(
        context,
        [
            "instructor",
            "team",
            "contextActivities",
            "contextAgents",
            "contextGroups",
        ],
    );
    if let Some(instructor) = instructor.and_then(Value::as_object) {
        check_actor(instructor, path.key("instructor"))?;
    }
    if let Some(team) = team.and_then(Value::as_object) {
        check_group(team, path.key("team"))?;
    }
    if let Some(context_activities) = context_activities.and_then(Value::as_object) {
        let activities_path = path.key("contextActivities");
        for (key, value) in context_activities {
            let value_path = activities_path.key(key);
            match value {
                Value::Array(activities) => {
                    for (i, activity) in activities.iter().enumerate() {
                        if let Some(activity) = activity.as_object() {
                            check_activity(activity, value_path.index(i))?;
                        }
                    }
                }
                Value::Object(activity) => check_activity(activity, value_path)?,
                _ => {}
            }
        }
    }
    for (list, items, member, is_agent) in [
        ("contextAgents", context_agents, "agent", true),
        ("contextGroups", context_groups, "group", false),
    ] {
        let list_path = path.key(list);
        for (i, item) in items
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(actor) = item.get(member).and_then(Value::as_object) {
                let item_path = list_path.index(i);
                if is_agent {
                    check_agent(actor, item_path.key(member))?;
                } else {
                    check_group(actor, item_path.key(member))?;
                }
            }
        }
    }
    Ok(())
}

/// An Agent, or (3-legged OAuth) an anonymous Group of exactly two Agents.
fn check_authority(authority: &Map<String, Value>, path: Ptr<'_>) -> Result<(), XapiError> {
    if !is_group(authority) {
        return check_agent(authority, path);
    }
    if ifi_count(authority) > 0 {
        return Err(bad(
            format!(
                "{}: an authority that is a Group must be an anonymous Group of two Agents \
                 (OAuth consumer and user); this one has an inverse functional identifier ({})",
                path.field(),
                ifis_of(authority).join(", ")
            ),
            path,
            REQ_AUTHORITY,
        ));
    }
    let count = authority
        .get("member")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if count != 2 {
        return Err(bad(
            format!(
                "{}: an authority that is a Group must have exactly two Agents as members \
                 (OAuth consumer and user); found {count}",
                path.field()
            ),
            path,
            REQ_AUTHORITY,
        ));
    }
    check_group(authority, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;

    const V1: XapiVersion = XapiVersion::V1_0;
    const V2: XapiVersion = XapiVersion::V2_0;
    const BOTH: [XapiVersion; 2] = [V1, V2];

    fn base() -> Value {
        json!({
            "id": "f4a7b1c2-5d3e-4f60-8a9b-0c1d2e3f4a5b",
            "actor": { "objectType": "Agent", "name": "Learner", "mbox": "mailto:learner@example.com" },
            "verb": { "id": "http://adlnet.gov/expapi/verbs/completed", "display": { "en-US": "completed" } },
            "object": { "objectType": "Activity", "id": "http://example.com/activities/course-1" }
        })
    }

    /// `base()` with the value at `pointer` replaced (intermediate objects are created).
    fn with(mut statement: Value, pointer: &str, value: Value) -> Value {
        set(&mut statement, pointer, value);
        statement
    }

    fn set(target: &mut Value, pointer: &str, value: Value) {
        let mut node = target;
        let segments: Vec<&str> = pointer.split('/').skip(1).collect();
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            node = match node {
                Value::Array(items) => {
                    let index: usize = segment.parse().expect("index");
                    if last {
                        items[index] = value;
                        return;
                    }
                    &mut items[index]
                }
                other => {
                    if !other.is_object() {
                        *other = json!({});
                    }
                    let map = other.as_object_mut().expect("object");
                    if last {
                        map.insert((*segment).to_owned(), value);
                        return;
                    }
                    map.entry((*segment).to_owned())
                        .or_insert_with(|| json!({}))
                }
            };
        }
        *node = value;
    }

    fn without(mut statement: Value, pointer: &str) -> Value {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        let parent = if parent.is_empty() {
            &mut statement
        } else {
            statement.pointer_mut(parent).expect("parent")
        };
        parent.as_object_mut().expect("object").remove(key);
        statement
    }

    #[track_caller]
    fn accepts(statement: &Value, versions: &[XapiVersion]) {
        for version in versions {
            if let Err(e) = validate_statement(statement, *version) {
                panic!("expected {version} to accept {statement}\nbut got: {e}");
            }
        }
    }

    /// Asserts a 400 under every version, at `path`, citing something containing `requirement`.
    #[track_caller]
    fn rejects(
        statement: &Value,
        versions: &[XapiVersion],
        path: &str,
        requirement: &str,
    ) -> XapiError {
        let mut last = None;
        for version in versions {
            match validate_statement(statement, *version) {
                Ok(()) => panic!("expected {version} to reject {statement}"),
                Err(e) => {
                    assert_eq!(e.status, StatusCode::BAD_REQUEST, "{e}");
                    assert_eq!(e.path.as_deref(), Some(path), "{e}");
                    let cited = e.requirement.clone().unwrap_or_default();
                    assert!(
                        cited.contains(requirement),
                        "expected requirement {requirement:?} in {e}"
                    );
                    assert!(!e.message.is_empty());
                    last = Some(e);
                }
            }
        }
        last.expect("at least one version")
    }

    fn substatement(inner_object: Value) -> Value {
        json!({
            "objectType": "SubStatement",
            "actor": { "mbox": "mailto:planner@example.com" },
            "verb": { "id": "http://example.com/verbs/planned" },
            "object": inner_object
        })
    }

    fn activity_with_definition(definition: Value) -> Value {
        json!({ "objectType": "Activity", "id": "http://example.com/q1", "definition": definition })
    }

    // ---------------------------------------------------------------- schemas and valid input

    #[test]
    fn schemas_compile() {
        assert!(COMPILED.is_ok(), "{:?}", COMPILED.as_ref().err());
    }

    #[test]
    fn data_2_4_minimal_statement_is_valid_in_both_versions() {
        accepts(&base(), &BOTH);
        // The simplest form: no id, no objectTypes.
        accepts(
            &json!({
                "actor": { "mbox": "mailto:xapi@adlnet.gov" },
                "verb": { "id": "http://adlnet.gov/expapi/verbs/created" },
                "object": { "id": "http://example.adlnet.gov/xapi/example/activity" }
            }),
            &BOTH,
        );
    }

    #[test]
    fn data_2_4_statement_using_every_property_is_valid() {
        let statement = json!({
            "id": "0b8a9c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2d",
            "actor": {
                "objectType": "Group",
                "name": "Team A",
                "account": { "homePage": "https://lms.example.com", "name": "team-a" },
                "member": [
                    { "mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab976068e364975" },
                    { "objectType": "Agent", "openid": "http://openid.example.org/12345" }
                ]
            },
            "verb": { "id": "http://adlnet.gov/expapi/verbs/answered", "display": { "en-US": "answered", "hi-IN": "उत्तर दिया" } },
            "object": {
                "id": "http://example.com/quiz/q1",
                "definition": {
                    "name": { "en": "Question 1" },
                    "description": { "en": "Pick one" },
                    "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
                    "moreInfo": "https://example.com/quiz/q1.html",
                    "interactionType": "choice",
                    "correctResponsesPattern": ["golf[,]tetris"],
                    "choices": [
                        { "id": "golf", "description": { "en-US": "Golf Example" } },
                        { "id": "tetris", "description": { "en-US": "Tetris Example" } }
                    ],
                    "extensions": { "http://example.com/ext/difficulty": 3 }
                }
            },
            "result": {
                "score": { "scaled": 0.95, "raw": 95, "min": 0, "max": 100 },
                "success": true,
                "completion": true,
                "response": "golf[,]tetris",
                "duration": "PT4H35M59.14S",
                "extensions": { "http://example.com/ext/notes": { "any": ["json", 1, null] } }
            },
            "context": {
                "registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
                "instructor": { "name": "Teacher", "mbox": "mailto:teacher@example.com" },
                "team": { "objectType": "Group", "mbox": "mailto:team@example.com" },
                "contextActivities": {
                    "parent": [{ "id": "http://example.com/quiz" }],
                    "grouping": { "objectType": "Activity", "id": "http://example.com/course" },
                    "category": [{ "id": "http://example.com/profiles/quiz", "definition": { "type": "http://adlnet.gov/expapi/activities/profile" } }],
                    "other": []
                },
                "revision": "rev_10_3_2",
                "platform": "Example LMS",
                "language": "en-US",
                "statement": { "objectType": "StatementRef", "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee" },
                "extensions": { "http://example.com/ext/location": "Delhi" }
            },
            "timestamp": "2024-02-29T23:59:59.999+05:30",
            "stored": "2024-03-01T00:00:00.000Z",
            "authority": { "objectType": "Agent", "account": { "homePage": "https://lrs.example.com", "name": "client-1" } },
            "version": "1.0.3",
            "attachments": [{
                "usageType": "http://adlnet.gov/expapi/attachments/signature",
                "display": { "en-US": "Signature" },
                "description": { "en-US": "A signature" },
                "contentType": "application/octet-stream",
                "length": 4235,
                "sha2": "672fa5fa658017f1b72d65036f13379c6ab05d4ab3b6664908d8acf0b6a0c634",
                "fileUrl": "https://example.com/signature.jws"
            }]
        });
        accepts(&statement, &BOTH);
    }

    // ---------------------------------------------------------------- Data 2.2 formatting

    #[test]
    fn data_2_2_s2_b3_statement_requires_actor_verb_and_object() {
        for (key, id) in [
            ("actor", "XAPI-00003"),
            ("verb", "XAPI-00004"),
            ("object", "XAPI-00005"),
        ] {
            let e = rejects(&without(base(), &format!("/{key}")), &BOTH, "", id);
            assert!(e.message.contains(key), "{e}");
        }
    }

    #[test]
    fn data_2_2_s4_b1_b1_null_values_are_rejected_outside_extensions() {
        for pointer in [
            "/actor",
            "/verb",
            "/object",
            "/context",
            "/result",
            "/actor/name",
            "/verb/display/en-US",
            "/timestamp",
            "/id",
        ] {
            rejects(
                &with(base(), pointer, Value::Null),
                &BOTH,
                pointer,
                "XAPI-00001",
            );
        }
        rejects(&Value::Null, &BOTH, "", "XAPI-00001");
        rejects(
            &with(base(), "/object/definition/moreInfo", Value::Null),
            &BOTH,
            "/object/definition/moreInfo",
            "XAPI-00001",
        );
    }

    #[test]
    fn data_4_1_extension_values_may_be_any_json_value_including_null() {
        for value in [
            Value::Null,
            json!(""),
            json!({}),
            json!([]),
            json!(1.5),
            json!(true),
            json!({ "nested": { "deep": null } }),
        ] {
            let extensions = json!({ "http://example.com/ext": value });
            accepts(
                &with(base(), "/object/definition/extensions", extensions.clone()),
                &BOTH,
            );
            accepts(
                &with(base(), "/result/extensions", extensions.clone()),
                &BOTH,
            );
            accepts(&with(base(), "/context/extensions", extensions), &BOTH);
        }
        accepts(&with(base(), "/context/extensions", json!({})), &BOTH);
    }

    #[test]
    fn data_4_1_extension_keys_must_be_iris_and_extensions_an_object() {
        let e = rejects(
            &with(
                base(),
                "/result/extensions",
                json!({ "example.com/extension/wrong": 1 }),
            ),
            &BOTH,
            "/result/extensions/example.com~1extension~1wrong",
            "XAPI-00118",
        );
        assert!(e.message.contains("example.com/extension/wrong"), "{e}");
        rejects(
            &with(base(), "/context/extensions", json!("string")),
            &BOTH,
            "/context/extensions",
            "XAPI-00118",
        );
        rejects(
            &with(base(), "/object/definition/extensions", json!(12345)),
            &BOTH,
            "/object/definition/extensions",
            "Data 4.1",
        );
    }

    #[test]
    fn data_2_2_s4_b1_b2_wrong_data_types_are_rejected() {
        rejects(
            &with(base(), "/result/score/max", json!("100")),
            &BOTH,
            "/result/score/max",
            "XAPI-00080",
        );
        rejects(
            &with(base(), "/result/success", json!("true")),
            &BOTH,
            "/result/success",
            "XAPI-00074",
        );
        rejects(
            &with(base(), "/result/completion", json!(1)),
            &BOTH,
            "/result/completion",
            "XAPI-00075",
        );
        rejects(
            &with(base(), "/result/response", json!(42)),
            &BOTH,
            "/result/response",
            "XAPI-00076",
        );
        rejects(
            &with(base(), "/actor/name", json!({ "first": "A" })),
            &BOTH,
            "/actor/name",
            "XAPI-00033",
        );
        rejects(
            &with(
                base(),
                "/verb",
                json!("http://adlnet.gov/expapi/verbs/completed"),
            ),
            &BOTH,
            "/verb",
            "Data 2.4.3",
        );
        rejects(&json!([base()]), &BOTH, "", "Data 2.4");
    }

    #[test]
    fn data_2_2_s4_b1_b4_keys_with_the_wrong_case_are_rejected() {
        let statement = with(
            without(base(), "/id"),
            "/iD",
            json!("f4a7b1c2-5d3e-4f60-8a9b-0c1d2e3f4a5b"),
        );
        let e = rejects(&statement, &BOTH, "/iD", "XAPI-00008");
        assert!(e.message.contains("\"id\""), "{e}");
        rejects(
            &with(base(), "/verb/Display", json!({ "en": "x" })),
            &BOTH,
            "/verb/Display",
            "XAPI-00008",
        );
    }

    #[test]
    fn data_2_2_s4_b1_b5_enumerated_values_are_case_sensitive() {
        rejects(
            &with(base(), "/actor/objectType", json!("agent")),
            &BOTH,
            "/actor/objectType",
            "XAPI-00009",
        );
        rejects(
            &with(base(), "/object/objectType", json!("activity")),
            &BOTH,
            "/object/objectType",
            "XAPI-00009",
        );
        let definition = json!({ "interactionType": "Choice" });
        rejects(
            &with(base(), "/object/definition", definition),
            &BOTH,
            "/object/definition/interactionType",
            "XAPI-00009",
        );
    }

    #[test]
    fn data_2_2_s4_b1_b6_properties_not_in_the_standard_are_rejected() {
        for pointer in [
            "/dummy",
            "/verb/dummy",
            "/actor/dummy",
            "/object/dummy",
            "/object/definition/dummy",
            "/result/dummy",
            "/result/score/dummy",
            "/context/dummy",
            "/context/contextActivities/siblings",
        ] {
            rejects(
                &with(base(), pointer, json!("x")),
                &BOTH,
                pointer,
                "XAPI-00010",
            );
        }
        // objectType is not a Statement property.
        rejects(
            &with(base(), "/objectType", json!("Statement")),
            &BOTH,
            "/objectType",
            "XAPI-00010",
        );
    }

    #[test]
    fn data_2_2_s4_b1_b7_iris_without_a_scheme_are_rejected() {
        let cases = [
            ("/verb/id", "adlnet.gov/expapi/verbs/attended", "XAPI-00044"),
            ("/object/id", "www.example.com/meetings/34534", "XAPI-00047"),
            (
                "/object/definition/type",
                "adlnet.gov/expapi/activities/meeting",
                "XAPI-00060",
            ),
            (
                "/object/definition/moreInfo",
                "virtualmeeting.example.com/345256",
                "XAPI-00061",
            ),
            ("/actor/account", "", "XAPI-00042"),
        ];
        for (pointer, value, requirement) in cases {
            if pointer == "/actor/account" {
                let statement = with(
                    without(base(), "/actor/mbox"),
                    "/actor/account",
                    json!({ "homePage": "homePage.com/testUser", "name": "123456" }),
                );
                rejects(&statement, &BOTH, "/actor/account/homePage", requirement);
            } else {
                rejects(
                    &with(base(), pointer, json!(value)),
                    &BOTH,
                    pointer,
                    requirement,
                );
            }
        }
        let openid = with(
            without(base(), "/actor/mbox"),
            "/actor/openid",
            json!("open.id.com/testUser"),
        );
        rejects(&openid, &BOTH, "/actor/openid", "XAPI-00040");
        rejects(
            &with(base(), "/verb/id", json!("ab=c://should.fail.com")),
            &BOTH,
            "/verb/id",
            "XAPI-00044",
        );
        rejects(
            &with(base(), "/verb/id", json!("")),
            &BOTH,
            "/verb/id",
            "XAPI-00044",
        );
    }

    // ---------------------------------------------------------------- Data 2.4.1 id

    #[test]
    fn data_2_4_1_statement_id_must_be_a_uuid_string() {
        for bad_id in [
            json!("AA97B177-9383-4934-8543-0F91A7A028368"),
            json!("MA97B177-9383-4934-8543-0F91A7A02836"),
            json!("f4a7b1c25d3e4f608a9b0c1d2e3f4a5b"),
            json!(""),
        ] {
            rejects(&with(base(), "/id", bad_id), &BOTH, "/id", "XAPI-00027");
        }
        rejects(
            &with(base(), "/id", json!(12345)),
            &BOTH,
            "/id",
            "XAPI-00028",
        );
        rejects(
            &with(base(), "/id", json!({ "key": "x" })),
            &BOTH,
            "/id",
            "XAPI-00028",
        );
        accepts(
            &with(base(), "/id", json!("AA97B177-9383-4934-8543-0F91A7A02836")),
            &BOTH,
        );
    }

    // ---------------------------------------------------------------- Data 2.4.2 actor

    #[test]
    fn data_2_4_2_actor_object_type_is_agent_or_group() {
        rejects(
            &with(base(), "/actor/objectType", json!("Person")),
            &BOTH,
            "/actor/objectType",
            "XAPI-00031",
        );
        rejects(
            &with(base(), "/actor/objectType", json!(123)),
            &BOTH,
            "/actor/objectType",
            "XAPI-00031",
        );
        accepts(&without(base(), "/actor/objectType"), &BOTH);
    }

    #[test]
    fn data_2_4_2_1_agent_needs_exactly_one_ifi() {
        let none = without(base(), "/actor/mbox");
        let e = rejects(&none, &BOTH, "/actor", "XAPI-00034");
        assert!(e.message.contains("none"), "{e}");
        for (key, value) in [
            (
                "mbox_sha1sum",
                json!("cd9b00a5611f94eaa7b1661edab976068e364975"),
            ),
            ("openid", json!("http://openid.example.org/12345")),
            (
                "account",
                json!({ "homePage": "http://www.example.com", "name": "xAPI account name" }),
            ),
        ] {
            accepts(
                &with(none.clone(), &format!("/actor/{key}"), value.clone()),
                &BOTH,
            );
            rejects(
                &with(base(), &format!("/actor/{key}"), value),
                &BOTH,
                "/actor",
                "XAPI-00034",
            );
        }
        // Everywhere an Agent appears.
        let instructor = json!({ "name": "No identifier" });
        rejects(
            &with(base(), "/context/instructor", instructor),
            &BOTH,
            "/context/instructor",
            "XAPI-00034",
        );
        let object = json!({ "objectType": "Agent", "name": "Nobody" });
        rejects(
            &with(base(), "/object", object),
            &BOTH,
            "/object",
            "XAPI-00034",
        );
    }

    #[test]
    fn data_2_4_2_2_anonymous_group_needs_members() {
        let group = json!({ "objectType": "Group", "name": "Anonymous" });
        rejects(
            &with(base(), "/actor", group.clone()),
            &BOTH,
            "/actor",
            "XAPI-00037",
        );
        rejects(
            &with(base(), "/actor", with(group.clone(), "/member", json!([]))),
            &BOTH,
            "/actor",
            "XAPI-00037",
        );
        let members =
            json!([{ "mbox": "mailto:a@example.com" }, { "mbox": "mailto:b@example.com" }]);
        accepts(
            &with(base(), "/actor", with(group, "/member", members)),
            &BOTH,
        );
    }

    #[test]
    fn data_2_4_2_2_identified_group_has_at_most_one_ifi() {
        let group = json!({ "objectType": "Group", "mbox": "mailto:team@example.com" });
        accepts(&with(base(), "/actor", group.clone()), &BOTH);
        accepts(
            &with(base(), "/actor", with(group.clone(), "/member", json!([]))),
            &BOTH,
        );
        let two = with(group, "/openid", json!("http://openid.example.org/team"));
        let e = rejects(&with(base(), "/actor", two), &BOTH, "/actor", "XAPI-00037");
        assert!(e.message.contains("mbox, openid"), "{e}");
    }

    #[test]
    fn data_2_4_2_2_group_members_are_agents_with_one_ifi() {
        let nested = json!({ "objectType": "Group", "member": [{ "objectType": "Group", "mbox": "mailto:sub@example.com" }] });
        let e = rejects(
            &with(base(), "/actor", nested),
            &BOTH,
            "/actor/member/0/objectType",
            "XAPI-00036",
        );
        assert!(e.message.contains("members must be Agents"), "{e}");
        let bad_member = json!({ "objectType": "Group", "member": [{ "name": "no ifi" }] });
        rejects(
            &with(base(), "/actor", bad_member),
            &BOTH,
            "/actor/member/0",
            "XAPI-00034",
        );
        let not_array =
            json!({ "objectType": "Group", "member": { "mbox": "mailto:a@example.com" } });
        rejects(
            &with(base(), "/actor", not_array),
            &BOTH,
            "/actor/member",
            "XAPI-00036",
        );
    }

    #[test]
    fn data_2_4_2_2_member_is_only_allowed_in_groups() {
        let statement = with(
            base(),
            "/actor/member",
            json!([{ "mbox": "mailto:a@example.com" }]),
        );
        rejects(&statement, &BOTH, "/actor/member", "XAPI-00010");
    }

    #[test]
    fn data_2_4_2_3_mbox_is_a_mailto_iri() {
        for bad in [
            "http://should.fail.com",
            "mailto:should.fail.com",
            "learner@example.com",
            "mailto:",
            "mailto:@example.com",
            "MAILTO:learner@example.com",
        ] {
            rejects(
                &with(base(), "/actor/mbox", json!(bad)),
                &BOTH,
                "/actor/mbox",
                "XAPI-00038",
            );
        }
        accepts(
            &with(
                base(),
                "/actor/mbox",
                json!("mailto:first.last+tag@sub.example.co.in"),
            ),
            &BOTH,
        );
    }

    #[test]
    fn data_2_4_2_3_mbox_sha1sum_is_40_hex_digits() {
        let agent = |v: Value| with(without(base(), "/actor/mbox"), "/actor/mbox_sha1sum", v);
        accepts(
            &agent(json!("CD9B00A5611F94EAA7B1661EDAB976068E364975")),
            &BOTH,
        );
        for bad in [
            json!("cd9b00a5611f94eaa7b1661edab976068e36497"),
            json!("zd9b00a5611f94eaa7b1661edab976068e364975"),
            json!({ "key": "value" }),
        ] {
            rejects(&agent(bad), &BOTH, "/actor/mbox_sha1sum", "XAPI-00039");
        }
    }

    #[test]
    fn data_2_4_2_4_account_needs_homepage_iri_and_name_string() {
        let agent =
            |account: Value| with(without(base(), "/actor/mbox"), "/actor/account", account);
        rejects(
            &agent(json!({ "name": "x" })),
            &BOTH,
            "/actor/account",
            "XAPI-00041",
        );
        rejects(
            &agent(json!({ "homePage": "http://www.example.com" })),
            &BOTH,
            "/actor/account",
            "XAPI-00041",
        );
        rejects(
            &agent(json!({ "homePage": "http://www.example.com", "name": 7 })),
            &BOTH,
            "/actor/account/name",
            "XAPI-00043",
        );
        rejects(
            &agent(json!({ "homePage": "ab=c://should.fail.com", "name": "x" })),
            &BOTH,
            "/actor/account/homePage",
            "XAPI-00042",
        );
        rejects(
            &agent(json!({ "homePage": "http://a.example", "name": "x", "id": 1 })),
            &BOTH,
            "/actor/account/id",
            "XAPI-00010",
        );
    }

    // ---------------------------------------------------------------- Data 2.4.3 verb

    #[test]
    fn data_2_4_3_verb_needs_an_iri_id_and_a_language_map_display() {
        rejects(&without(base(), "/verb/id"), &BOTH, "/verb", "XAPI-00044");
        accepts(&without(base(), "/verb/display"), &BOTH);
        rejects(
            &with(base(), "/verb/display", json!("completed")),
            &BOTH,
            "/verb/display",
            "XAPI-00121",
        );
        rejects(
            &with(base(), "/verb/display", json!({ "en-US": 5 })),
            &BOTH,
            "/verb/display/en-US",
            "Data 4.2",
        );
    }

    // ---------------------------------------------------------------- Data 2.4.4 object

    #[test]
    fn data_2_4_4_object_type_is_one_of_the_five() {
        rejects(
            &with(base(), "/object/objectType", json!("Statement")),
            &BOTH,
            "/object/objectType",
            "XAPI-00046",
        );
        accepts(&without(base(), "/object/objectType"), &BOTH);
    }

    #[test]
    fn data_2_4_4_1_activity_needs_an_iri_id() {
        rejects(
            &without(base(), "/object/id"),
            &BOTH,
            "/object",
            "XAPI-00047",
        );
        rejects(
            &with(base(), "/object/definition", json!("def")),
            &BOTH,
            "/object/definition",
            "XAPI-00048",
        );
        accepts(&with(base(), "/object/definition", json!({})), &BOTH);
        // An IRI that is not a URL, and one with non-ASCII characters.
        accepts(
            &with(
                base(),
                "/object/id",
                json!("urn:uuid:ec531277-b57b-4c15-8d91-d292c5b2b8f7"),
            ),
            &BOTH,
        );
        accepts(
            &with(
                base(),
                "/object/id",
                json!("http://example.com/फ़ाइल/पाठ#भाग"),
            ),
            &BOTH,
        );
    }

    #[test]
    fn data_2_4_4_1_interaction_properties_need_an_interaction_type() {
        for key in [
            "correctResponsesPattern",
            "choices",
            "scale",
            "source",
            "target",
            "steps",
        ] {
            let value = if key == "correctResponsesPattern" {
                json!(["true"])
            } else {
                json!([{ "id": "a" }])
            };
            let statement = with(
                base(),
                "/object",
                activity_with_definition(json!({ key: value })),
            );
            rejects(
                &statement,
                &BOTH,
                &format!("/object/definition/{key}"),
                "XAPI-00064",
            );
        }
    }

    #[test]
    fn data_2_4_4_1_each_interaction_type_takes_only_its_component_lists() {
        let component = json!([{ "id": "a", "description": { "en-US": "A" } }, { "id": "b" }]);
        let valid = [
            ("true-false", vec![]),
            ("choice", vec!["choices"]),
            ("fill-in", vec![]),
            ("long-fill-in", vec![]),
            ("matching", vec!["source", "target"]),
            ("performance", vec!["steps"]),
            ("sequencing", vec!["choices"]),
            ("likert", vec!["scale"]),
            ("numeric", vec![]),
            ("other", vec![]),
        ];
        for (interaction_type, lists) in valid {
            let mut definition =
                json!({ "interactionType": interaction_type, "correctResponsesPattern": ["a"] });
            for list in &lists {
                definition[*list] = component.clone();
            }
            accepts(
                &with(
                    base(),
                    "/object",
                    activity_with_definition(definition.clone()),
                ),
                &BOTH,
            );
            for list in COMPONENT_LISTS.iter().filter(|l| !lists.contains(l)) {
                let mut wrong = definition.clone();
                wrong[*list] = component.clone();
                let statement = with(base(), "/object", activity_with_definition(wrong));
                rejects(
                    &statement,
                    &BOTH,
                    &format!("/object/definition/{list}"),
                    "Interaction Components",
                );
            }
        }
    }

    #[test]
    fn data_2_4_4_1_interaction_component_ids_are_distinct() {
        let definition = json!({ "interactionType": "choice", "choices": [{ "id": "a" }, { "id": "b" }, { "id": "a" }] });
        rejects(
            &with(base(), "/object", activity_with_definition(definition)),
            &BOTH,
            "/object/definition/choices/2/id",
            "Interaction Components",
        );
        let definition = json!({ "interactionType": "choice", "choices": [{ "description": { "en": "no id" } }] });
        rejects(
            &with(base(), "/object", activity_with_definition(definition)),
            &BOTH,
            "/object/definition/choices/0",
            "Interaction Components",
        );
    }

    #[test]
    fn data_2_4_4_1_interaction_type_must_be_a_known_value() {
        for bad in [json!("essay"), json!(12345), json!({ "test": "value" })] {
            let statement = with(
                base(),
                "/object",
                activity_with_definition(json!({ "interactionType": bad })),
            );
            rejects(
                &statement,
                &BOTH,
                "/object/definition/interactionType",
                "XAPI-00049",
            );
        }
    }

    #[test]
    fn data_2_4_4_2_agent_or_group_object_needs_object_type() {
        accepts(
            &with(
                base(),
                "/object",
                json!({ "objectType": "Agent", "mbox": "mailto:a@example.com" }),
            ),
            &BOTH,
        );
        accepts(
            &with(
                base(),
                "/object",
                json!({ "objectType": "Group", "mbox": "mailto:g@example.com" }),
            ),
            &BOTH,
        );
        // Without objectType the object is read as an Activity, which has no mbox.
        rejects(
            &with(base(), "/object", json!({ "mbox": "mailto:a@example.com" })),
            &BOTH,
            "/object/mbox",
            "XAPI-00010",
        );
        rejects(
            &with(base(), "/object", json!({ "objectType": "Agent" })),
            &BOTH,
            "/object",
            "XAPI-00034",
        );
    }

    #[test]
    fn data_2_4_4_3_statement_ref_needs_object_type_and_uuid_id() {
        let reference =
            json!({ "objectType": "StatementRef", "id": "8f87ccde-bb56-4c2e-ab83-44982ef22df0" });
        accepts(&with(base(), "/object", reference.clone()), &BOTH);
        rejects(
            &with(base(), "/object", without(reference.clone(), "/id")),
            &BOTH,
            "/object",
            "XAPI-00072",
        );
        rejects(
            &with(
                base(),
                "/object",
                with(reference.clone(), "/id", json!("8f87ccde")),
            ),
            &BOTH,
            "/object/id",
            "XAPI-00072",
        );
        rejects(
            &with(base(), "/object", with(reference, "/definition", json!({}))),
            &BOTH,
            "/object/definition",
            "XAPI-00010",
        );
        rejects(
            &with(
                base(),
                "/context/statement",
                json!({ "id": "8f87ccde-bb56-4c2e-ab83-44982ef22df0" }),
            ),
            &BOTH,
            "/context/statement",
            "XAPI-00073",
        );
    }

    #[test]
    fn data_2_4_4_3_substatement_may_have_any_object_but_a_substatement() {
        for inner in [
            json!({ "id": "http://example.com/website" }),
            json!({ "objectType": "Activity", "id": "http://example.com/website" }),
            json!({ "objectType": "Agent", "mbox": "mailto:a@example.com" }),
            json!({ "objectType": "Group", "member": [{ "mbox": "mailto:a@example.com" }] }),
            json!({ "objectType": "StatementRef", "id": "8f87ccde-bb56-4c2e-ab83-44982ef22df0" }),
        ] {
            accepts(&with(base(), "/object", substatement(inner)), &BOTH);
        }
        let nested = substatement(substatement(json!({ "id": "http://example.com/website" })));
        let e = rejects(
            &with(base(), "/object", nested),
            &BOTH,
            "/object/object",
            "XAPI-00071",
        );
        assert!(e.message.contains("must not contain a SubStatement"), "{e}");
    }

    #[test]
    fn data_2_4_4_3_substatement_has_no_id_stored_version_or_authority() {
        let sub = substatement(json!({ "id": "http://example.com/website" }));
        for (key, value, requirement) in [
            (
                "id",
                json!("8f87ccde-bb56-4c2e-ab83-44982ef22df0"),
                "XAPI-00070",
            ),
            ("stored", json!("2024-01-01T00:00:00Z"), "XAPI-00069"),
            ("version", json!("1.0.0"), "XAPI-00068"),
            (
                "authority",
                json!({ "mbox": "mailto:a@example.com" }),
                "XAPI-00067",
            ),
        ] {
            let statement = with(
                base(),
                "/object",
                with(sub.clone(), &format!("/{key}"), value),
            );
            rejects(&statement, &BOTH, &format!("/object/{key}"), requirement);
        }
    }

    #[test]
    fn data_2_4_4_3_substatement_is_validated_as_a_statement() {
        let sub = substatement(json!({ "id": "http://example.com/website" }));
        for key in ["actor", "verb", "object"] {
            rejects(
                &with(base(), "/object", without(sub.clone(), &format!("/{key}"))),
                &BOTH,
                "/object",
                "XAPI-00066",
            );
        }
        let bad_actor = with(sub.clone(), "/actor/mbox", json!("not-an-email"));
        rejects(
            &with(base(), "/object", bad_actor),
            &BOTH,
            "/object/actor/mbox",
            "XAPI-00038",
        );
        let two_ifis = with(
            sub.clone(),
            "/actor/openid",
            json!("http://openid.example.org/1"),
        );
        rejects(
            &with(base(), "/object", two_ifis),
            &BOTH,
            "/object/actor",
            "XAPI-00034",
        );
        let timestamp = with(sub.clone(), "/timestamp", json!("2999-01-01T00:00:00Z"));
        accepts(&with(base(), "/object", timestamp), &BOTH);
        // Without objectType it is an Activity, which has no actor, verb or object (the
        // first unknown property in document order is the one reported).
        rejects(
            &with(base(), "/object", without(sub, "/objectType")),
            &BOTH,
            "/object/object",
            "XAPI-00010",
        );
    }

    // ---------------------------------------------------------------- Data 2.4.5 result

    #[test]
    fn data_2_4_5_result_properties_have_their_types() {
        rejects(
            &with(base(), "/result", json!("passed")),
            &BOTH,
            "/result",
            "Data 2.4.5",
        );
        rejects(
            &with(base(), "/result/duration", json!("PA1H0M0S")),
            &BOTH,
            "/result/duration",
            "XAPI-00077",
        );
        rejects(
            &with(base(), "/result/duration", json!(3600)),
            &BOTH,
            "/result/duration",
            "XAPI-00077",
        );
        rejects(
            &with(base(), "/result/score", json!(95)),
            &BOTH,
            "/result/score",
            "XAPI-00079",
        );
        accepts(&with(base(), "/result", json!({})), &BOTH);
    }

    #[test]
    fn data_2_4_5_1_scaled_is_between_minus_one_and_one() {
        for ok in [json!(1), json!(1.0), json!(-1), json!(0), json!(0.12123434)] {
            accepts(&with(base(), "/result/score/scaled", ok), &BOTH);
        }
        rejects(
            &with(base(), "/result/score/scaled", json!(1.01)),
            &BOTH,
            "/result/score/scaled",
            "XAPI-00083",
        );
        rejects(
            &with(base(), "/result/score/scaled", json!(-1.00001)),
            &BOTH,
            "/result/score/scaled",
            "XAPI-00083",
        );
    }

    #[test]
    fn data_2_4_5_1_raw_lies_between_min_and_max() {
        let score = |raw: f64, min: f64, max: f64| {
            with(
                base(),
                "/result/score",
                json!({ "raw": raw, "min": min, "max": max }),
            )
        };
        accepts(&score(50.0, 0.0, 100.0), &BOTH);
        accepts(&score(0.0, 0.0, 100.0), &BOTH);
        accepts(&score(100.0, 0.0, 100.0), &BOTH);
        accepts(
            &with(base(), "/result/score", json!({ "raw": -5000 })),
            &BOTH,
        );
        rejects(
            &score(101.0, 0.0, 100.0),
            &BOTH,
            "/result/score/raw",
            "XAPI-00082",
        );
        rejects(
            &score(-1.0, 0.0, 100.0),
            &BOTH,
            "/result/score/raw",
            "XAPI-00082",
        );
        rejects(
            &with(base(), "/result/score", json!({ "raw": 5, "max": 4 })),
            &BOTH,
            "/result/score/raw",
            "XAPI-00082",
        );
        rejects(
            &with(base(), "/result/score", json!({ "raw": 3, "min": 4 })),
            &BOTH,
            "/result/score/raw",
            "XAPI-00082",
        );
    }

    #[test]
    fn data_2_4_5_1_min_is_less_than_max() {
        rejects(
            &with(base(), "/result/score", json!({ "min": 100, "max": 100 })),
            &BOTH,
            "/result/score/min",
            "XAPI-00081",
        );
        rejects(
            &with(
                base(),
                "/result/score",
                json!({ "min": 104.5, "max": 100.5 }),
            ),
            &BOTH,
            "/result/score/min",
            "XAPI-00080",
        );
        accepts(
            &with(base(), "/result/score", json!({ "min": -10, "max": -9.5 })),
            &BOTH,
        );
    }

    // ---------------------------------------------------------------- Data 2.4.6 context

    #[test]
    fn data_2_4_6_revision_and_platform_only_with_an_activity_object() {
        let context = json!({ "revision": "r1", "platform": "LMS" });
        accepts(&with(base(), "/context", context.clone()), &BOTH);
        accepts(
            &with(without(base(), "/object/objectType"), "/context", context),
            &BOTH,
        );
        let objects = [
            json!({ "objectType": "Agent", "mbox": "mailto:a@example.com" }),
            json!({ "objectType": "Group", "mbox": "mailto:g@example.com" }),
            json!({ "objectType": "StatementRef", "id": "8f87ccde-bb56-4c2e-ab83-44982ef22df0" }),
            substatement(json!({ "id": "http://example.com/website" })),
        ];
        for object in objects {
            let statement = with(
                with(base(), "/object", object.clone()),
                "/context/revision",
                json!("r1"),
            );
            rejects(&statement, &BOTH, "/context/revision", "XAPI-00084");
            let statement = with(
                with(base(), "/object", object),
                "/context/platform",
                json!("LMS"),
            );
            rejects(&statement, &BOTH, "/context/platform", "XAPI-00085");
        }
        // Inside a SubStatement, its own object decides.
        let sub = with(
            substatement(json!({ "objectType": "Agent", "mbox": "mailto:a@example.com" })),
            "/context/platform",
            json!("LMS"),
        );
        rejects(
            &with(base(), "/object", sub),
            &BOTH,
            "/object/context/platform",
            "XAPI-00085",
        );
        let sub = with(
            substatement(json!({ "id": "http://example.com/site" })),
            "/context/revision",
            json!("r1"),
        );
        accepts(&with(base(), "/object", sub), &BOTH);
    }

    #[test]
    fn data_2_4_6_context_properties_have_their_types() {
        rejects(
            &with(base(), "/context/registration", json!("not-a-uuid")),
            &BOTH,
            "/context/registration",
            "XAPI-00087",
        );
        rejects(
            &with(base(), "/context/instructor", json!("teacher")),
            &BOTH,
            "/context/instructor",
            "XAPI-00031",
        );
        accepts(
            &with(
                base(),
                "/context/instructor",
                json!({ "objectType": "Group", "mbox": "mailto:t@example.com" }),
            ),
            &BOTH,
        );
        rejects(
            &with(
                base(),
                "/context/team",
                json!({ "mbox": "mailto:t@example.com" }),
            ),
            &BOTH,
            "/context/team",
            "Data 2.4.2.2",
        );
        rejects(
            &with(base(), "/context/team", json!({ "objectType": "Group" })),
            &BOTH,
            "/context/team",
            "XAPI-00037",
        );
        rejects(
            &with(base(), "/context/revision", json!(10)),
            &BOTH,
            "/context/revision",
            "XAPI-00089",
        );
        rejects(
            &with(base(), "/context/platform", json!({})),
            &BOTH,
            "/context/platform",
            "XAPI-00090",
        );
        rejects(
            &with(base(), "/context/language", json!("english language")),
            &BOTH,
            "/context/language",
            "XAPI-00091",
        );
        accepts(&with(base(), "/context/language", json!("cmn")), &BOTH);
    }

    #[test]
    fn data_2_4_6_2_context_activities_take_an_activity_or_an_array_of_them() {
        for key in ["parent", "grouping", "category", "other"] {
            let pointer = format!("/context/contextActivities/{key}");
            accepts(
                &with(base(), &pointer, json!({ "id": "http://example.com/a" })),
                &BOTH,
            );
            accepts(
                &with(
                    base(),
                    &pointer,
                    json!([{ "id": "http://example.com/a" }, { "id": "http://example.com/b" }]),
                ),
                &BOTH,
            );
            rejects(
                &with(base(), &pointer, json!("http://example.com/a")),
                &BOTH,
                &pointer,
                "XAPI-00094",
            );
            rejects(
                &with(base(), &pointer, json!([{ "key": "x" }])),
                &BOTH,
                &format!("{pointer}/0/key"),
                "XAPI-00010",
            );
            rejects(
                &with(base(), &pointer, json!([{ "definition": {} }])),
                &BOTH,
                &format!("{pointer}/0"),
                "XAPI-00047",
            );
        }
        rejects(
            &with(base(), "/context/contextActivities", json!("x")),
            &BOTH,
            "/context/contextActivities",
            "XAPI-00086",
        );
        rejects(
            &with(
                base(),
                "/context/contextActivities/consequences",
                json!({ "id": "http://example.com/a" }),
            ),
            &BOTH,
            "/context/contextActivities/consequences",
            "XAPI-00010",
        );
        // Interaction rules apply to context Activities too.
        let activity = activity_with_definition(json!({ "scale": [{ "id": "1" }] }));
        rejects(
            &with(
                base(),
                "/context/contextActivities/other",
                json!([activity]),
            ),
            &BOTH,
            "/context/contextActivities/other/0/definition/scale",
            "XAPI-00064",
        );
    }

    #[test]
    fn xapi_2_0_context_agents_and_groups() {
        let context_agents = json!([{
            "objectType": "contextAgent",
            "agent": { "objectType": "Agent", "mbox": "mailto:player-1@example.com" },
            "relevantTypes": ["https://example.com/types/player"]
        }, {
            "objectType": "contextAgent",
            "agent": { "account": { "homePage": "https://example.com", "name": "p2" } }
        }]);
        let context_groups = json!([{
            "objectType": "contextGroup",
            "group": { "objectType": "Group", "mbox": "mailto:team-1@example.com" },
            "relevantTypes": ["https://example.com/types/team"]
        }, {
            "objectType": "contextGroup",
            "group": { "objectType": "Group", "member": [{ "mbox": "mailto:player-3@example.com" }] }
        }]);
        let statement = with(
            with(base(), "/context/contextAgents", context_agents.clone()),
            "/context/contextGroups",
            context_groups.clone(),
        );
        accepts(&statement, &[V2]);
        let sub = with(
            with(
                substatement(json!({ "id": "http://example.com/a" })),
                "/context/contextAgents",
                context_agents.clone(),
            ),
            "/context/contextGroups",
            context_groups.clone(),
        );
        accepts(&with(base(), "/object", sub.clone()), &[V2]);

        // Not part of xAPI 1.0.x.
        let e = rejects(
            &with(base(), "/context/contextAgents", context_agents.clone()),
            &[V1],
            "/context/contextAgents",
            "XAPI-00010",
        );
        assert!(e.message.contains("2.0"), "{e}");
        rejects(
            &with(base(), "/context/contextGroups", context_groups.clone()),
            &[V1],
            "/context/contextGroups",
            "XAPI-00010",
        );
        rejects(
            &with(base(), "/object", sub),
            &[V1],
            "/object/context/contextAgents",
            "XAPI-00010",
        );

        let agent_item = |pointer: &str, value: Value| {
            with(
                base(),
                "/context/contextAgents",
                json!([with(context_agents[0].clone(), pointer, value)]),
            )
        };
        rejects(
            &agent_item("/objectType", json!("Agent")),
            &[V2],
            "/context/contextAgents/0/objectType",
            "contextAgent",
        );
        rejects(
            &agent_item("/relevantTypes", json!([])),
            &[V2],
            "/context/contextAgents/0/relevantTypes",
            "non-empty",
        );
        rejects(
            &agent_item("/relevantTypes", json!(["abc"])),
            &[V2],
            "/context/contextAgents/0/relevantTypes/0",
            "IRI",
        );
        rejects(
            &agent_item("/agent", json!({ "key": "Should fail" })),
            &[V2],
            "/context/contextAgents/0/agent/key",
            "XAPI-00010",
        );
        rejects(
            &agent_item(
                "/agent",
                json!({ "objectType": "Group", "mbox": "mailto:g@example.com" }),
            ),
            &[V2],
            "/context/contextAgents/0/agent/objectType",
            "",
        );
        rejects(
            &agent_item("/agent", json!({ "name": "no ifi" })),
            &[V2],
            "/context/contextAgents/0/agent",
            "XAPI-00034",
        );
        rejects(
            &with(
                base(),
                "/context/contextAgents",
                json!([{ "objectType": "contextAgent" }]),
            ),
            &[V2],
            "/context/contextAgents/0",
            "Context Agents",
        );

        let group_item = |pointer: &str, value: Value| {
            with(
                base(),
                "/context/contextGroups",
                json!([with(context_groups[0].clone(), pointer, value)]),
            )
        };
        rejects(
            &group_item("/objectType", json!("Group")),
            &[V2],
            "/context/contextGroups/0/objectType",
            "contextGroup",
        );
        rejects(
            &group_item("/relevantTypes", json!([])),
            &[V2],
            "/context/contextGroups/0/relevantTypes",
            "non-empty",
        );
        rejects(
            &group_item("/group", json!({ "mbox": "mailto:g@example.com" })),
            &[V2],
            "/context/contextGroups/0/group",
            "",
        );
        rejects(
            &group_item("/group", json!({ "objectType": "Group" })),
            &[V2],
            "/context/contextGroups/0/group",
            "XAPI-00037",
        );
    }

    // ---------------------------------------------------------------- timestamps, stored

    #[test]
    fn data_2_4_7_timestamp_follows_the_version_rules() {
        for ok in [
            "2008-09-15T15:53:00.601Z",
            "2008-09-15T15:53:00Z",
            "2008-09-15T15:53:00.601+00:00",
            "2023-05-04T12:00:00-05:00",
            "2031-11-22T08:13:46.633Z",
        ] {
            accepts(&with(base(), "/timestamp", json!(ok)), &BOTH);
        }
        // ISO 8601, not RFC 3339: 1.0.x only.
        for iso_only in [
            "2008-09-15T15:53:00.601+0000",
            "20080915T155300Z",
            "2008-09-15T15:53:00",
            "2008-09-15T15:53Z",
            "2008-09-15T15:53:00,601+05",
        ] {
            accepts(&with(base(), "/timestamp", json!(iso_only)), &[V1]);
            rejects(
                &with(base(), "/timestamp", json!(iso_only)),
                &[V2],
                "/timestamp",
                "XAPI-00123",
            );
        }
        for bad in [
            "should fail",
            "01/011/2015",
            "2008-09-15T15:53:00.601-00",
            "2008-09-15T15:53:00.601-0000",
            "2008-09-15T15:53:00.601-00:00",
            "2008-02-30T00:00:00Z",
            "2008-09-15 15:53:00Z",
            "",
        ] {
            rejects(
                &with(base(), "/timestamp", json!(bad)),
                &BOTH,
                "/timestamp",
                "XAPI-00123",
            );
        }
        rejects(
            &with(base(), "/timestamp", json!(1_700_000_000)),
            &BOTH,
            "/timestamp",
            "XAPI-00022",
        );
    }

    #[test]
    fn data_2_4_8_stored_must_be_a_timestamp_when_sent() {
        accepts(
            &with(base(), "/stored", json!("2024-01-01T00:00:00.000Z")),
            &BOTH,
        );
        rejects(
            &with(base(), "/stored", json!("yesterday")),
            &BOTH,
            "/stored",
            "Data 4.5",
        );
    }

    // ---------------------------------------------------------------- authority, version

    #[test]
    fn data_2_4_9_authority_is_an_agent_or_an_anonymous_group_of_two_agents() {
        accepts(
            &with(
                base(),
                "/authority",
                json!({ "objectType": "Agent", "mbox": "mailto:admin@example.com" }),
            ),
            &BOTH,
        );
        let oauth = json!({
            "objectType": "Group",
            "member": [
                { "account": { "homePage": "http://example.com/xAPI/OAuth/Token", "name": "oauth_consumer_x75db" } },
                { "mbox": "mailto:bob@example.com" }
            ]
        });
        accepts(&with(base(), "/authority", oauth.clone()), &BOTH);
        rejects(
            &with(
                base(),
                "/authority",
                with(oauth.clone(), "/mbox", json!("mailto:bob@example.com")),
            ),
            &BOTH,
            "/authority",
            "XAPI-00098",
        );
        let one =
            json!({ "objectType": "Group", "member": [{ "mbox": "mailto:bob@example.com" }] });
        rejects(
            &with(base(), "/authority", one),
            &BOTH,
            "/authority",
            "XAPI-00098",
        );
        let mut three = oauth.clone();
        three["member"]
            .as_array_mut()
            .expect("array")
            .push(json!({ "mbox": "mailto:james@example.com" }));
        rejects(
            &with(base(), "/authority", three),
            &BOTH,
            "/authority",
            "XAPI-00098",
        );
        rejects(
            &with(
                base(),
                "/authority",
                json!({ "objectType": "Group", "name": "empty" }),
            ),
            &BOTH,
            "/authority",
            "XAPI-00098",
        );
        rejects(
            &with(base(), "/authority", json!({ "objectType": "Agent" })),
            &BOTH,
            "/authority",
            "XAPI-00034",
        );
        rejects(
            &with(
                base(),
                "/authority",
                json!({ "objectType": "agent", "mbox": "mailto:a@example.com" }),
            ),
            &BOTH,
            "/authority/objectType",
            "XAPI-00009",
        );
        let bad_member = with(oauth, "/member/1", json!({ "name": "no ifi" }));
        rejects(
            &with(base(), "/authority", bad_member),
            &BOTH,
            "/authority/member/1",
            "XAPI-00034",
        );
    }

    #[test]
    fn data_2_4_10_version_depends_on_the_request_version() {
        for ok in ["1.0", "1.0.0", "1.0.3", "1.0.9"] {
            accepts(&with(base(), "/version", json!(ok)), &BOTH);
        }
        for v2_only in ["2.0", "2.0.0", "2.0.1"] {
            accepts(&with(base(), "/version", json!(v2_only)), &[V2]);
            rejects(
                &with(base(), "/version", json!(v2_only)),
                &[V1],
                "/version",
                "XAPI-00101",
            );
        }
        for bad in [
            "should fail",
            "0.9.9",
            "1.1.0",
            "0.95",
            "1.0.",
            "2.1.0",
            "3.0.0",
            "",
        ] {
            rejects(
                &with(base(), "/version", json!(bad)),
                &BOTH,
                "/version",
                "XAPI-00101",
            );
        }
        rejects(
            &with(base(), "/version", json!(1.0)),
            &BOTH,
            "/version",
            "XAPI-00101",
        );
    }

    // ---------------------------------------------------------------- attachments

    fn attachment() -> Value {
        json!({
            "usageType": "http://example.com/attachment-usage/test",
            "display": { "en-US": "A test attachment" },
            "contentType": "text/plain; charset=ascii",
            "length": 27,
            "sha2": "495395e777cd98da653df9615d09c0fd6bb2f8d4788394cd53c56a3bfdcd848a"
        })
    }

    #[test]
    fn data_2_4_11_attachment_properties_are_required_and_typed() {
        accepts(&with(base(), "/attachments", json!([attachment()])), &BOTH);
        accepts(&with(base(), "/attachments", json!([])), &BOTH);
        for key in ["usageType", "display", "contentType", "length", "sha2"] {
            rejects(
                &with(
                    base(),
                    "/attachments",
                    json!([without(attachment(), &format!("/{key}"))]),
                ),
                &BOTH,
                "/attachments/0",
                "Data 2.4.11",
            );
        }
        let cases = [
            ("/usageType", json!("should fail"), "XAPI-00107"),
            ("/contentType", json!(12345), "XAPI-00105"),
            ("/contentType", json!("plain text"), "XAPI-00105"),
            ("/length", json!("27"), "XAPI-00102"),
            ("/length", json!(-1), "XAPI-00102"),
            ("/length", json!(2.5), "XAPI-00102"),
            ("/sha2", json!(12345), "XAPI-00103"),
            ("/sha2", json!("not-a-hash"), "XAPI-00103"),
            ("/fileUrl", json!("should fail"), "XAPI-00104"),
            ("/display", json!("A test attachment"), "Data 4.2"),
        ];
        for (pointer, value, requirement) in cases {
            let statement = with(
                base(),
                "/attachments",
                json!([with(attachment(), pointer, value)]),
            );
            rejects(
                &statement,
                &BOTH,
                &format!("/attachments/0{pointer}"),
                requirement,
            );
        }
        let statement = with(
            base(),
            "/attachments",
            json!([with(
                attachment(),
                "/description",
                json!({ "a12345678": "x" })
            )]),
        );
        rejects(
            &statement,
            &BOTH,
            "/attachments/0/description/a12345678",
            "Data 4.2",
        );
        rejects(
            &with(base(), "/attachments", attachment()),
            &BOTH,
            "/attachments",
            "XAPI-00025",
        );
        rejects(
            &with(base(), "/attachments", json!(["x"])),
            &BOTH,
            "/attachments/0",
            "Data 2.4.11",
        );
        let sub = with(
            substatement(json!({ "id": "http://example.com/a" })),
            "/attachments",
            json!([attachment()]),
        );
        accepts(&with(base(), "/object", sub), &BOTH);
    }

    // ---------------------------------------------------------------- voiding

    #[test]
    fn data_2_3_2_voiding_statement_targets_a_statement_ref() {
        let voiding = with(base(), "/verb/id", json!(VOIDED_VERB));
        let reference =
            json!({ "objectType": "StatementRef", "id": "e05aa883-acaf-40ad-bf54-02c8ce485fb0" });
        accepts(&with(voiding.clone(), "/object", reference), &BOTH);
        rejects(&voiding, &BOTH, "/object", "XAPI-00017");
        rejects(
            &with(
                voiding.clone(),
                "/object",
                substatement(json!({ "id": "http://example.com/a" })),
            ),
            &BOTH,
            "/object",
            "XAPI-00017",
        );
        // Only the reserved IRI voids.
        accepts(
            &with(base(), "/verb/id", json!("http://example.com/verbs/voided")),
            &BOTH,
        );
    }

    // ---------------------------------------------------------------- language maps

    #[test]
    fn data_4_2_language_map_keys_are_rfc_5646_tags() {
        for ok in [
            "en",
            "de-DE",
            "zh-Hant",
            "sr-Latn-RS",
            "cmn",
            "ase",
            "es-419",
            "en-GB-oxendict",
            "de-CH-1901",
            "en-a-bbb-x-a-ccc",
            "x-private",
            "i-klingon",
            "tlh",
            "EN-us",
        ] {
            assert!(is_valid_language_tag(ok), "{ok}");
            accepts(
                &with(base(), "/verb/display", json!({ ok: "completed" })),
                &BOTH,
            );
        }
        for bad in [
            "a12345678",
            "something",
            "s-something",
            "en-something-AU",
            "zh-z-aaa-z-bbb-c-ccc",
            "de-1901-1901",
            "",
            "en_US",
            "12345",
            "en-",
        ] {
            assert!(!is_valid_language_tag(bad), "{bad}");
            let e = rejects(
                &with(base(), "/object/definition/name", json!({ bad: "x" })),
                &BOTH,
                &format!("/object/definition/name/{bad}"),
                "XAPI-00121",
            );
            assert!(e.message.contains(bad), "{e}");
        }
        rejects(
            &with(base(), "/object/definition/description", json!("string")),
            &BOTH,
            "/object/definition/description",
            "Data 4.2",
        );
    }

    // ---------------------------------------------------------------- data type functions

    #[test]
    fn data_4_6_durations() {
        for ok in [
            "PT4H35M59.14S",
            "PT16559.14S",
            "P3Y1M29DT4H35M59.14S",
            "P3Y",
            "P4W",
            "PT1H0M0S",
            "PT0.1S",
            "P1DT12H36M0.12567S",
            "PT1,5S",
            "P0D",
            "PT36H",
            "P1M",
            "PT1M",
            "P0.5Y",
        ] {
            assert!(is_valid_duration(ok), "{ok}");
        }
        for bad in [
            "P4W1D",
            "PA1H0M0S",
            "P",
            "PT",
            "P1YT",
            "1Y",
            "P1H",
            "PT1D",
            "P1M1Y",
            "PT1S1M",
            "P1.5Y2M",
            "PT1.5H30M",
            "P0003-01-29T04:35:59",
            "-P1D",
            "P1Y ",
            "pt1h",
            "P.5Y",
            "P1.Y",
            "should fail",
            "",
        ] {
            assert!(!is_valid_duration(bad), "{bad}");
        }
    }

    #[test]
    fn data_4_4_uuids() {
        assert!(is_valid_uuid("ec531277-b57b-4c15-8d91-d292c5b2b8f7"));
        assert!(is_valid_uuid("EC531277-B57B-4C15-AD91-D292C5B2B8F7"));
        assert!(is_valid_uuid("00000000-0000-0000-8000-000000000000"));
        // The spec's own example id is not RFC 4122 variant 2, which is only recommended.
        assert!(is_valid_uuid("12345678-1234-5678-1234-567812345678"));
        for bad in [
            "ec531277b57b4c158d91d292c5b2b8f7",
            "{ec531277-b57b-4c15-8d91-d292c5b2b8f7}",
            "urn:uuid:ec531277-b57b-4c15-8d91-d292c5b2b8f7",
            "ec531277-b57b-4c15-8d91-d292c5b2b8f",
            "ec531277-b57b-4c15-8d91-d292c5b2b8f7a",
            "gc531277-b57b-4c15-8d91-d292c5b2b8f7",
            "ec531277_b57b_4c15_8d91_d292c5b2b8f7",
            "",
        ] {
            assert!(!is_valid_uuid(bad), "{bad}");
        }
    }

    /// Strings over `alphabet`, each behind one of `prefixes` (deterministic, so a failure
    /// reproduces).
    fn generated(prefixes: &[&str], alphabet: &[u8], count: usize) -> Vec<String> {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let mut s = prefixes[(next() % prefixes.len() as u64) as usize].to_owned();
                for _ in 0..next() % 12 {
                    s.push(char::from(
                        alphabet[(next() % alphabet.len() as u64) as usize],
                    ));
                }
                s
            })
            .collect()
    }

    #[test]
    fn plain_iri_shortcut_only_accepts_iris() {
        let prefixes = [
            "http://", "https://", "mailto:", "http:/", "HTTP://", "", "x:",
        ];
        let alphabet = b"aZ09-._~/@:%[]?# \\";
        let mut accepted = 0;
        for s in generated(&prefixes, alphabet, 50_000)
            .iter()
            .map(String::as_str)
            .chain([
                "http://",
                "https://1.2.3.999/",
                "http:///a",
                "http://a..b//",
                "mailto:@",
            ])
        {
            if is_plain_iri(s) {
                accepted += 1;
                assert!(iri_string::types::IriStr::new(s).is_ok(), "{s}");
            }
        }
        assert!(accepted > 1000);
    }

    #[test]
    fn language_and_region_shortcut_only_accepts_tags() {
        let prefixes = ["", "en", "x", "zh", "i", "sgn", "abcd"];
        let alphabet = b"aZ09-x";
        let mut accepted = 0;
        for s in generated(&prefixes, alphabet, 50_000)
            .iter()
            .map(String::as_str)
            .chain([
                "en",
                "en-US",
                "es-419",
                "hi-IN",
                "zh-min",
                "i-ami",
                "art-lojban",
            ])
        {
            if is_language_and_region(s) {
                accepted += 1;
                assert!(is_well_formed_language_tag(s), "{s}");
            }
        }
        assert!(accepted > 100);
    }

    #[test]
    fn data_4_3_iris() {
        for ok in [
            "http://example.com",
            "https://example.com/a/b?c=d#e",
            "urn:isbn:0451450523",
            "mailto:a@example.com",
            "http://example.com/path/../x",
            "tag:example.com,2024:x",
            "http://例え.テスト/パス",
        ] {
            assert!(is_valid_iri(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "/relative/path",
            "#fragment",
            "ab=c://should.fail.com",
            "http://exa mple.com",
            "",
            "not.a.valid.iri.com/verb",
        ] {
            assert!(!is_valid_iri(bad), "{bad}");
        }
    }

    #[test]
    fn data_4_5_parse_timestamp_per_version() {
        let utc = |s: &str, v| parse_timestamp(s, v).map(|t| t.naive_utc().to_string());
        assert_eq!(
            utc("2023-05-04T12:00:00-05:00", V2).as_deref(),
            Some("2023-05-04 17:00:00")
        );
        assert_eq!(
            utc("2023-05-04T12:00:00.123456789123Z", V2).as_deref(),
            Some("2023-05-04 12:00:00.123456789")
        );
        assert_eq!(
            utc("2023-05-04t12:00:00z", V2).as_deref(),
            Some("2023-05-04 12:00:00")
        );
        assert_eq!(
            utc("20230504T120000+0530", V1).as_deref(),
            Some("2023-05-04 06:30:00")
        );
        assert_eq!(
            utc("2023-05-04T12:00:00", V1).as_deref(),
            Some("2023-05-04 12:00:00")
        );
        assert_eq!(
            utc("2023-05-04T12:00+01", V1).as_deref(),
            Some("2023-05-04 11:00:00")
        );
        assert_eq!(
            parse_timestamp("2023-05-04T12:00:00+05:30", V2).map(|t| t.offset().local_minus_utc()),
            Some(19800)
        );
        for v in BOTH {
            for bad in [
                "2023-05-04T12:00:00-00:00",
                "2023-05-04T12:00:60Z",
                "2023-13-04T12:00:00Z",
                "2023-05-04T24:00:00Z",
                "2023-05-04T12:00:00+24:00",
                "2023-05-04",
                "2023-05-04T12:00:00.Z",
                "2023-05-04T12:00:00Zjunk",
                "2023-5-4T12:00:00Z",
                "2023-05-04T12:00:00+5:30",
            ] {
                assert!(parse_timestamp(bad, v).is_none(), "{bad} under {v}");
            }
        }
        assert!(parse_timestamp("2023-05-04T12:00:00+0530", V2).is_none());
        assert!(parse_timestamp("20230504T120000Z", V2).is_none());
        assert!(parse_timestamp("2023-05-04T12:00Z", V2).is_none());
        assert!(
            parse_timestamp("2023-05-04T1200Z", V1).is_none(),
            "mixed basic and extended"
        );
    }

    // ---------------------------------------------------------------- agent parameters

    #[test]
    fn data_2_2_s4_b4_agent_parameter_identifies_one_agent_or_group() {
        for ok in [
            json!({ "mbox": "mailto:a@example.com" }),
            json!({ "objectType": "Agent", "account": { "homePage": "http://www.example.com", "name": "x" } }),
            json!({ "objectType": "Group", "openid": "http://openid.example.org/g" }),
            json!({ "objectType": "Group", "mbox": "mailto:g@example.com", "member": [{ "mbox": "mailto:a@example.com" }] }),
        ] {
            for v in BOTH {
                assert!(validate_agent_param(&ok, v).is_ok(), "{ok}");
            }
        }
        let cases = [
            (json!({ "name": "nobody" }), "", "XAPI-00012"),
            (
                json!({ "mbox": "mailto:a@example.com", "openid": "http://openid.example.org/a" }),
                "",
                "XAPI-00012",
            ),
            (
                json!({ "objectType": "Group", "member": [{ "mbox": "mailto:a@example.com" }] }),
                "",
                "XAPI-00012",
            ),
            (json!({ "mbox": "a@example.com" }), "/mbox", "XAPI-00038"),
            (
                json!({ "objectType": "agent", "mbox": "mailto:a@example.com" }),
                "/objectType",
                "XAPI-00009",
            ),
            (
                json!({ "mbox": "mailto:a@example.com", "extra": 1 }),
                "/extra",
                "XAPI-00010",
            ),
            (json!("wrong"), "", "XAPI-00031"),
            (
                json!({ "objectType": "Group", "mbox": "mailto:g@example.com", "member": [{ "name": "x" }] }),
                "/member/0",
                "XAPI-00034",
            ),
        ];
        for (agent, path, requirement) in cases {
            for v in BOTH {
                let e = validate_agent_param(&agent, v).expect_err("should be rejected");
                assert_eq!(e.status, StatusCode::BAD_REQUEST);
                assert_eq!(e.path.as_deref(), Some(path), "{agent}: {e}");
                assert!(
                    e.requirement
                        .as_deref()
                        .unwrap_or_default()
                        .contains(requirement),
                    "{agent}: {e}"
                );
            }
        }
    }

    // ---------------------------------------------------------------- error reporting

    #[test]
    fn errors_name_the_value_the_place_and_the_requirement() {
        let e = validate_statement(&with(base(), "/actor/mbox", json!("xapi@adlnet.gov")), V1)
            .expect_err("invalid");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.path.as_deref(), Some("/actor/mbox"));
        assert_eq!(e.requirement.as_deref(), Some("Data 2.4.2.3 (XAPI-00038)"));
        assert!(
            e.message.contains("actor.mbox") && e.message.contains("xapi@adlnet.gov"),
            "{}",
            e.message
        );

        let parent = json!([{ "id": "no scheme" }]);
        let e = validate_statement(
            &with(base(), "/context/contextActivities/parent", parent),
            V2,
        )
        .expect_err("invalid");
        assert_eq!(
            e.path.as_deref(),
            Some("/context/contextActivities/parent/0/id")
        );
        assert!(
            e.message.contains("context.contextActivities.parent[0].id"),
            "{}",
            e.message
        );
    }

    #[test]
    fn validation_is_repeatable_and_thread_safe() {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let version = if i % 2 == 0 { V1 } else { V2 };
                    (0..50).all(|_| validate_statement(&base(), version).is_ok())
                })
            })
            .collect();
        for handle in handles {
            assert!(handle.join().expect("thread"));
        }
    }
}
