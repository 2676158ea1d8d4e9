//! Forwarding (docs/FORWARDING.md): rules that send the statements of a department's
//! subtree, filtered by verb and activity, to another LRS or any HTTP collector. Pure:
//! the rule record and its validation, which statements a rule matches, the request a
//! delivery makes (body, signature, delivery id) and the retry policy. The runtime that
//! reads the feed and sends is `crate::forwarder`; the store persists rules and their
//! delivery state.
use crate::departments::Department;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

/// Statements per request unless the rule says otherwise.
pub const DEFAULT_BATCH: usize = 100;
/// Most statements one request carries.
pub const MAX_BATCH: usize = 500;
/// Most verbs, and most activities, one rule filters on.
pub const MAX_FILTERS: usize = 100;
/// Longest target URL or authorization value.
pub const MAX_URL: usize = 2_048;
/// Versions a rule may announce in `X-Experience-API-Version`.
pub const XAPI_VERSIONS: [&str; 2] = ["1.0.3", "2.0.0"];
/// The signature header: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Karmayogi-Signature";
/// The delivery id header: `<rule id>/<first leaf>-<last leaf>`.
pub const DELIVERY_HEADER: &str = "X-Karmayogi-Delivery";
/// First wait after a failed delivery, and the longest.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The verb of a voiding statement.
const VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";

/// A forwarding rule as stored (with its secrets; `view` shows it without them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    /// The subtree forwarded.
    pub department: Department,
    /// Verb IRIs; empty: every verb.
    pub verbs: Vec<String>,
    /// Activity IRIs matched against the object and the context activities; empty: all.
    pub activities: Vec<String>,
    pub target: String,
    /// The `Authorization` header sent to the target (a secret: never shown again).
    pub authorization: Option<String>,
    /// The HMAC-SHA256 key of the signature header, hex (shown once, at creation).
    pub secret: String,
    pub xapi_version: String,
    pub batch_size: usize,
    pub created_us: i64,
}

/// The rule's definition as the store keeps it (JSON text; the department and the
/// delivery state are kept beside it, in fields of their own).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    id: String,
    department: String,
    verbs: Vec<String>,
    activities: Vec<String>,
    target: String,
    authorization: Option<String>,
    secret: String,
    xapi_version: String,
    batch_size: usize,
    created_us: i64,
}

impl Rule {
    /// The JSON text the store keeps.
    pub fn to_stored(&self) -> String {
        let s = Stored {
            id: self.id.clone(),
            department: self.department.as_str().to_owned(),
            verbs: self.verbs.clone(),
            activities: self.activities.clone(),
            target: self.target.clone(),
            authorization: self.authorization.clone(),
            secret: self.secret.clone(),
            xapi_version: self.xapi_version.clone(),
            batch_size: self.batch_size,
            created_us: self.created_us,
        };
        // A struct of strings and numbers always serializes.
        serde_json::to_string(&s).unwrap_or_default()
    }

    /// Reads what `to_stored` wrote.
    pub fn from_stored(text: &str) -> Result<Rule, String> {
        let s: Stored = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(Rule {
            department: Department::parse(&s.department)?,
            id: s.id,
            verbs: s.verbs,
            activities: s.activities,
            target: s.target,
            authorization: s.authorization,
            secret: s.secret,
            xapi_version: s.xapi_version,
            batch_size: s.batch_size.clamp(1, MAX_BATCH),
            created_us: s.created_us,
        })
    }
}

/// How far a rule's delivery got. `cursor` is a position of the audit log (the index of
/// the next leaf to look at): every matching statement before it was acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryState {
    pub cursor: u64,
    /// Statements acknowledged (a statement sent twice counts twice).
    pub delivered: u64,
    /// Failed requests since the rule was created.
    pub failures: u64,
    /// The last failure (cleared by the next success).
    pub last_error: Option<String>,
    pub last_attempt_us: Option<i64>,
}

/// A rule and its delivery state, as the store returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    pub rule: Rule,
    pub state: DeliveryState,
}

/// A rule as asked for (the admin API's body, the command's options).
#[derive(Debug, Clone, Default)]
pub struct NewRule {
    pub department: Option<String>,
    pub verbs: Vec<String>,
    pub activities: Vec<String>,
    pub target: Option<String>,
    pub authorization: Option<String>,
    pub xapi_version: Option<String>,
    pub batch_size: Option<i64>,
}

/// Why a rule was refused: a message and the JSON pointer of the member at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub at: String,
}

fn invalid(message: impl Into<String>, at: &str) -> Invalid {
    Invalid {
        message: message.into(),
        at: at.to_owned(),
    }
}

fn is_iri(s: &str) -> bool {
    iri_string::types::IriStr::new(s).is_ok()
}

/// Checks a target URL: absolute http or https with a host, no user name or password
/// (credentials go in `authorization`, which is never shown), no fragment.
pub fn check_target(s: &str) -> Result<(), String> {
    if s.len() > MAX_URL {
        return Err(format!(
            "the target URL is longer than {MAX_URL} characters"
        ));
    }
    let u = url::Url::parse(s).map_err(|e| format!("the target is not a valid URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!(
            "the target must be an http or https URL, not `{}:`",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("the target URL has no host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "the target URL must not carry a user name or password: put the credentials in `authorization`"
                .into(),
        );
    }
    if u.fragment().is_some() {
        return Err("the target URL must not have a fragment (`#…`)".into());
    }
    Ok(())
}

fn iris(list: &[String], at: &str) -> Result<Vec<String>, Invalid> {
    if list.len() > MAX_FILTERS {
        return Err(invalid(format!("at most {MAX_FILTERS} IRIs"), at));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        if !is_iri(s) {
            return Err(invalid(
                format!("`{s}` is not an absolute IRI"),
                &format!("{at}/{i}"),
            ));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

/// Builds a rule from a request made by an administrator of `caller`: the department
/// (default the caller's) must be within the caller's subtree (the caller checks that,
/// and that it exists); `id`, `secret` and `created_us` come from the runtime.
pub fn build(
    request: NewRule,
    caller: &Department,
    id: String,
    secret: [u8; 32],
    created_us: i64,
) -> Result<Rule, Invalid> {
    let department = match &request.department {
        None => caller.clone(),
        Some(d) => Department::parse(d)
            .map_err(|m| invalid(format!("malformed department path: {m}"), "/department"))?,
    };
    let target = request
        .target
        .ok_or_else(|| invalid("missing required field `target`", "/target"))?;
    check_target(&target).map_err(|m| invalid(m, "/target"))?;
    if let Some(a) = &request.authorization {
        // A header value: visible ASCII and spaces, no line breaks (header injection).
        if a.is_empty() || a.len() > MAX_URL || !a.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(invalid(
                format!("`authorization` must be 1–{MAX_URL} printable ASCII characters (an HTTP header value)"),
                "/authorization",
            ));
        }
    }
    let xapi_version = request.xapi_version.unwrap_or_else(|| "1.0.3".into());
    if !XAPI_VERSIONS.contains(&xapi_version.as_str()) {
        return Err(invalid(
            format!("`xapiVersion` must be one of {}", XAPI_VERSIONS.join(", ")),
            "/xapiVersion",
        ));
    }
    let batch_size = match request.batch_size {
        None => DEFAULT_BATCH,
        Some(n) if (1..=MAX_BATCH as i64).contains(&n) => n as usize,
        Some(_) => {
            return Err(invalid(
                format!("`batchSize` must be an integer from 1 to {MAX_BATCH}"),
                "/batchSize",
            ))
        }
    };
    Ok(Rule {
        id,
        department,
        verbs: iris(&request.verbs, "/verbs")?,
        activities: iris(&request.activities, "/activities")?,
        target,
        authorization: request.authorization,
        secret: hex::encode(secret),
        xapi_version,
        batch_size,
        created_us,
    })
}

/// The activity ids a statement is about: its object (when an activity) and its
/// context activities (parent, grouping, category, other).
fn activity_ids(statement: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let object = &statement["object"];
    let kind = object["objectType"].as_str().unwrap_or("Activity");
    if kind == "Activity" {
        if let Some(id) = object["id"].as_str() {
            out.push(id);
        }
    }
    if let Value::Object(ca) = &statement["context"]["contextActivities"] {
        for group in ["parent", "grouping", "category", "other"] {
            match ca.get(group) {
                Some(Value::Array(items)) => {
                    out.extend(items.iter().filter_map(|a| a["id"].as_str()))
                }
                // 1.0.3 allows a single activity object.
                Some(a @ Value::Object(_)) => out.extend(a["id"].as_str()),
                _ => {}
            }
        }
    }
    out
}

/// Whether a statement passes the rule's verb and activity filters (the subtree is
/// the feed's business).
pub fn matches(rule: &Rule, statement: &Value) -> bool {
    let verb_ok = rule.verbs.is_empty()
        || statement["verb"]["id"]
            .as_str()
            .is_some_and(|v| rule.verbs.iter().any(|r| r == v));
    let activity_ok = rule.activities.is_empty()
        || activity_ids(statement)
            .into_iter()
            .any(|a| rule.activities.iter().any(|r| r == a));
    verb_ok && activity_ok
}

/// Whether a voiding statement is forwarded: a rule without filters forwards it; a rule
/// with filters forwards it when it lists the voided verb, or when the statement it
/// voids (`target`, if still stored) matches, so a receiver that got a statement also
/// learns that it was voided.
pub fn matches_voiding(rule: &Rule, voiding: &Value, target: Option<&Value>) -> bool {
    if rule.verbs.is_empty() && rule.activities.is_empty() {
        return true;
    }
    if rule.verbs.iter().any(|v| v == VOIDED) && matches(rule, voiding) {
        return true;
    }
    target.is_some_and(|t| matches(rule, t))
}

/// Whether a voiding statement's filter needs the voided statement (else the runtime
/// need not read it).
pub fn needs_voided_target(rule: &Rule) -> bool {
    !(rule.verbs.is_empty() && rule.activities.is_empty())
}

/// The request body: a JSON array of the statements exactly as stored.
pub fn body<'a>(statements: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4_096);
    out.push(b'[');
    for (i, s) in statements.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(s.trim().as_bytes());
    }
    out.push(b']');
    out
}

fn mac(secret_hex: &str) -> Option<Hmac<Sha256>> {
    let key = hex::decode(secret_hex).ok()?;
    Hmac::<Sha256>::new_from_slice(&key).ok()
}

/// The signature header's value: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret_hex: &str, body: &[u8]) -> String {
    match mac(secret_hex) {
        Some(mut m) => {
            m.update(body);
            format!("sha256={}", hex::encode(m.finalize().into_bytes()))
        }
        // A stored secret is always hex (made by `build`); an unreadable one signs
        // nothing a receiver would accept.
        None => "sha256=".into(),
    }
}

/// Checks a signature header in constant time (what a receiver does; used by tests
/// and offered to Rust receivers).
pub fn verify(secret_hex: &str, body: &[u8], header: &str) -> bool {
    let (Some(mut m), Some(hex_sig)) = (mac(secret_hex), header.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

/// The delivery id: the rule and the leaves of the first and last statement sent. A
/// retry of the same batch carries the same id, so receivers can drop repeats.
pub fn delivery_id(rule_id: &str, first_leaf: u64, last_leaf: u64) -> String {
    format!("{rule_id}/{first_leaf}-{last_leaf}")
}

/// Whether the target is an LRS's statements resource (its path ends in `/statements`):
/// then a `409 Conflict` means the ids are already there.
pub fn is_xapi_target(target: &str) -> bool {
    url::Url::parse(target).is_ok_and(|u| u.path().trim_end_matches('/').ends_with("/statements"))
}

/// What an answer means for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged: the cursor moves past the batch.
    Delivered,
    /// An xAPI target refused the batch with 409: some of its ids are there already, and
    /// an LRS stores a batch whole or not at all, so the rest may not be. Send the
    /// statements one at a time (a single statement's 409 means it is there).
    OneByOne,
    /// Not delivered: retried after the backoff.
    Retry,
}

/// Classifies an HTTP status: 2xx is delivered; 409 from an xAPI target is delivered for
/// one statement and split for more; anything else (3xx, 4xx, 5xx) is retried, so a
/// target that refuses keeps the statements until it is fixed or the rule removed.
pub fn outcome(status: u16, xapi_target: bool, batch_len: usize) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        409 if xapi_target && batch_len <= 1 => Outcome::Delivered,
        409 if xapi_target => Outcome::OneByOne,
        _ => Outcome::Retry,
    }
}

/// The wait before retry `attempt` (1 for the first retry): `min`·2^(attempt−1), at most
/// `max`, less a jitter of up to half (`jitter` is a random number), so rules failing
/// together do not retry in step.
pub fn backoff(attempt: u32, min: Duration, max: Duration, jitter: u64) -> Duration {
    let min_ms = min.as_millis().max(1) as u64;
    let max_ms = (max.as_millis() as u64).max(min_ms);
    let exp = attempt.saturating_sub(1).min(40);
    let full = min_ms.saturating_mul(1u64 << exp).min(max_ms);
    let half = full / 2;
    let spread = if half == 0 { 0 } else { jitter % (half + 1) };
    Duration::from_millis(full - spread)
}

/// A rule as the admin API shows it: no authorization value, no secret.
pub fn view(record: &RuleRecord, log_size: u64, format_us: fn(i64) -> String) -> Value {
    let r = &record.rule;
    let s = &record.state;
    json!({
        "id": r.id,
        "department": r.department.to_string(),
        "verbs": r.verbs,
        "activities": r.activities,
        "target": r.target,
        "hasAuthorization": r.authorization.is_some(),
        "xapiVersion": r.xapi_version,
        "batchSize": r.batch_size,
        "created": format_us(r.created_us),
        "delivery": {
            "cursor": s.cursor,
            "lag": log_size.saturating_sub(s.cursor),
            "delivered": s.delivered,
            "failures": s.failures,
            "lastError": s.last_error,
            "lastAttempt": s.last_attempt_us.map(format_us),
        },
    })
}

/// Shortens an error message for `last_error` (bounded storage, one line).
pub fn error_note(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    one_line
}

#[cfg(test)]
mod tests;
