//! Statement lifecycle: what the LRS sets on receipt (Data 2.4.1, 2.4.7–2.4.10), the
//! derived index keys behind every GET /statements filter, comparison of statements for
//! idempotent re-sends (Data 2.3.1), and the `ids` / `canonical` formats (Communication 2.1.3).
use super::agent::{ifi_key, members, push_ifi_key};
use super::records::StatementRecord;
use super::validate::{parse_timestamp, validate_statement};
use super::XapiVersion;
use crate::error::{XapiError, XapiResult};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;

pub const VOIDED_VERB: &str = "http://adlnet.gov/expapi/verbs/voided";

/// RFC 3339 in UTC with microseconds, the form `stored` (and filled `timestamp`) take.
pub fn format_us(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// HTTP-date (RFC 7231) for `Last-Modified`.
pub fn http_date(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// What the LRS needs from the request to prepare statements.
pub struct Receipt<'a> {
    pub version: XapiVersion,
    /// The authority the credential stands for (Data 2.4.9).
    pub authority: &'a Value,
    /// Whether this credential may update canonical activity definitions.
    pub may_define: bool,
}

pub struct Prepared {
    pub record: StatementRecord,
    pub statement: Value,
    pub definitions: Vec<(String, Value)>,
    /// Whether the statement arrived with a timestamp (else the LRS filled it).
    pub timestamp_given: bool,
}

impl Prepared {
    /// The statement for comparison with a stored one: a timestamp the LRS filled in is
    /// not part of what the client sent (Data 2.3.1).
    pub fn as_received(&self) -> Cow<'_, Value> {
        as_received(&self.statement, self.timestamp_given)
    }
}

/// A prepared statement as the client sent it, for comparison with a stored one: a
/// timestamp the LRS filled in is not part of it (Data 2.3.1).
pub fn as_received(statement: &Value, timestamp_given: bool) -> Cow<'_, Value> {
    if timestamp_given {
        Cow::Borrowed(statement)
    } else {
        let mut s = statement.clone();
        if let Some(o) = s.as_object_mut() {
            o.remove("timestamp");
        }
        Cow::Owned(s)
    }
}

fn obj_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Validates a received statement and sets what the LRS sets: id, stored, timestamp,
/// authority, version. Derives its index keys.
pub fn prepare(
    mut statement: Value,
    receipt: &Receipt<'_>,
    stored_us: i64,
) -> XapiResult<Prepared> {
    validate_statement(&statement, receipt.version)?;
    let obj = statement.as_object_mut().ok_or_else(|| {
        XapiError::bad_request("a statement must be a JSON object").req("Data 2.2.s1")
    })?;
    if !obj.get("id").is_some_and(Value::is_string) {
        // Time-ordered (RFC 9562 version 7, variant 2): ids the LRS assigns append to
        // the end of the id index instead of landing on a random page.
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
        obj.insert("id".into(), Value::from(&*id));
    }
    let stored = format_us(stored_us);
    let given = obj.get("timestamp");
    let timestamp_given = given.is_some();
    let timestamp = match given.and_then(Value::as_str) {
        // Data 2.4.7.s4.b1: set to stored when absent.
        None => Some(stored.clone()),
        // 2.0: non-UTC offsets are converted to UTC rather than rejected.
        Some(ts) if receipt.version.is_v2() => parse_timestamp(ts, receipt.version)
            .filter(|t| t.offset().local_minus_utc() != 0)
            .map(|t| {
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true)
            }),
        Some(_) => None,
    };
    obj.insert("stored".into(), Value::from(stored));
    if let Some(t) = timestamp {
        obj.insert("timestamp".into(), Value::from(t));
    }
    contextactivities_as_arrays(obj);
    if let Some(sub) = obj.get_mut("object").and_then(Value::as_object_mut) {
        if sub.get("objectType").and_then(Value::as_str) == Some("SubStatement") {
            contextactivities_as_arrays(sub);
        }
    }
    // Data 2.4.9.s3.b4: the LRS sets authority from the credentials used.
    obj.insert("authority".into(), receipt.authority.clone());
    if !obj.contains_key("version") {
        obj.insert(
            "version".into(),
            Value::from(receipt.version.default_statement_version()),
        );
    }
    let (record, definitions) = derive(&statement, stored_us, receipt.may_define);
    Ok(Prepared {
        record,
        statement,
        definitions,
        timestamp_given,
    })
}

/// What the store takes of a prepared statement: its record and, when the credential may
/// define activities, the activity definitions it carries. A function of the prepared
/// statement alone, so a batch retried after a conflict (the store consumed the first
/// attempt) gets the very records the first attempt had.
pub fn derive(
    statement: &Value,
    stored_us: i64,
    may_define: bool,
) -> (StatementRecord, Vec<(String, Value)>) {
    // The id is kept as sent; lookups use its lowercase form (UUIDs compare case-insensitively).
    let id = obj_str(statement, "id")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let object = statement.get("object");
    let object_id = || {
        object
            .and_then(|o| obj_str(o, "id"))
            .map(str::to_ascii_lowercase)
    };
    let voids = (statement.get("verb").and_then(|v| obj_str(v, "id")) == Some(VOIDED_VERB))
        .then(object_id)
        .flatten();
    let inherits_keys_of = (object.and_then(|o| obj_str(o, "objectType")) == Some("StatementRef"))
        .then(object_id)
        .flatten();
    let attachment_sha2 = statement
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| obj_str(a, "sha2").map(str::to_owned))
        .collect();
    let definitions = if may_define {
        activity_definitions(statement)
    } else {
        Vec::new()
    };
    let record = StatementRecord {
        id,
        json: to_json(statement),
        // A statement value holds only finite numbers: this cannot fail (and if it did,
        // the batch would canonicalise the stored text instead).
        canonical: crate::audit::leaf::canonicalize(statement).unwrap_or_default(),
        stored_us,
        voids,
        keys: index_keys(statement),
        inherits_keys_of,
        attachment_sha2,
        seal: None,
    };
    (record, definitions)
}

/// The statement's JSON text, as `Value::to_string` writes it, but straight into a byte
/// buffer rather than through `fmt::Write` for every token.
fn to_json(statement: &Value) -> String {
    serde_json::to_string(statement).unwrap_or_else(|_| statement.to_string())
}

/// Data 2.4.6.2.s4.b3: each contextActivities value is returned as an array, even when
/// a single Activity was sent.
fn contextactivities_as_arrays(statement: &mut Map<String, Value>) {
    let ca = statement
        .get_mut("context")
        .and_then(|c| c.get_mut("contextActivities"))
        .and_then(Value::as_object_mut);
    for v in ca.into_iter().flat_map(|m| m.values_mut()) {
        if !v.is_array() {
            *v = Value::Array(vec![v.take()]);
        }
    }
}

/// Index key prefixes, one per GET /statements filter.
pub mod key {
    /// `agent`: the actor or object (or a member of either, when a Group).
    pub const AGENT: &str = "a:";
    /// `agent` with `related_agents=true`.
    pub const RELATED_AGENT: &str = "r:";
    pub const VERB: &str = "v:";
    /// `activity`: the object's id.
    pub const ACTIVITY: &str = "o:";
    /// `activity` with `related_activities=true`.
    pub const RELATED_ACTIVITY: &str = "ra:";
    pub const REGISTRATION: &str = "g:";
    /// The authority: what `statements/read/mine` limits reads to.
    pub const AUTHORITY: &str = "au:";
}

fn is_agent_or_group(v: &Value) -> bool {
    matches!(obj_str(v, "objectType"), Some("Agent") | Some("Group"))
}

fn is_activity(v: &Value) -> bool {
    matches!(obj_str(v, "objectType"), None | Some("Activity"))
}

/// Every Activity in contextActivities (each value an Activity or an array of them).
fn context_activities(s: &Value) -> impl Iterator<Item = &Value> {
    activities_in(
        s.get("context")
            .and_then(|c| c.get("contextActivities"))
            .unwrap_or(&Value::Null),
    )
}

/// The Activities of a contextActivities object.
fn activities_in(context_activities: &Value) -> impl Iterator<Item = &Value> {
    context_activities
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|v| match v {
            Value::Array(a) => a.as_slice(),
            other => std::slice::from_ref(other),
        })
}

/// The derived keys every GET /statements filter is served by.
pub fn index_keys(s: &Value) -> Vec<String> {
    let mut keys = IndexKeys {
        keys: Vec::with_capacity(24),
        ifi: String::new(),
    };
    keys.statement(s, true);
    let mut keys = keys.keys;
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Index keys being collected, each written once as prefix + value.
struct IndexKeys {
    keys: Vec<String>,
    /// The identity key of the agent at hand, shared by the prefixes it is filed under.
    ifi: String,
}

/// `prefix` followed by `value`, in one allocation.
fn prefixed(prefix: &str, value: &str) -> String {
    let mut k = String::with_capacity(prefix.len() + value.len());
    k.push_str(prefix);
    k.push_str(value);
    k
}

impl IndexKeys {
    fn push(&mut self, prefix: &str, value: &str) {
        self.keys.push(prefixed(prefix, value));
    }

    /// One Agent or Group (not its members), under each prefix.
    fn identity(&mut self, prefixes: &[&str], agent: &Value) {
        self.ifi.clear();
        if push_ifi_key(&mut self.ifi, agent) {
            let ifi = &self.ifi;
            self.keys.extend(prefixes.iter().map(|p| prefixed(p, ifi)));
        }
    }

    /// An Agent or Group and each member of it, under each prefix.
    fn agent(&mut self, prefixes: &[&str], agent: &Value) {
        self.identity(prefixes, agent);
        for m in members(agent) {
            self.identity(prefixes, m);
        }
    }

    /// A statement's keys. Within a SubStatement (`top` false) its agents and activities
    /// only count as related ones (`related_agents`, `related_activities`).
    ///
    /// Each object is walked once, property by property: cheaper than a hashed lookup per
    /// property for objects this small, and the keys are sorted afterwards anyway.
    fn statement(&mut self, s: &Value, top: bool) {
        let Some(s) = s.as_object() else {
            return;
        };
        let (agents, activities): (&[&str], &[&str]) = if top {
            (
                &[key::AGENT, key::RELATED_AGENT],
                &[key::ACTIVITY, key::RELATED_ACTIVITY],
            )
        } else {
            (&[key::RELATED_AGENT], &[key::RELATED_ACTIVITY])
        };
        for (k, v) in s {
            match k.as_str() {
                "actor" => self.agent(agents, v),
                "object" => match obj_str(v, "objectType") {
                    Some("Agent") | Some("Group") => self.agent(agents, v),
                    None | Some("Activity") => {
                        if let Some(id) = obj_str(v, "id") {
                            for prefix in activities {
                                self.push(prefix, id);
                            }
                        }
                    }
                    Some("SubStatement") => self.statement(v, false),
                    Some(_) => {}
                },
                "verb" if top => {
                    if let Some(id) = obj_str(v, "id") {
                        self.push(key::VERB, id);
                    }
                }
                "authority" => {
                    // `statements/read/mine` goes by the authority itself, not its members.
                    let own: &[&str] = if top {
                        &[key::AUTHORITY, key::RELATED_AGENT]
                    } else {
                        &[key::RELATED_AGENT]
                    };
                    self.identity(own, v);
                    for m in members(v) {
                        self.identity(&[key::RELATED_AGENT], m);
                    }
                }
                "context" => self.context(v, top),
                _ => {}
            }
        }
    }

    fn context(&mut self, ctx: &Value, top: bool) {
        let Some(ctx) = ctx.as_object() else {
            return;
        };
        let related: &[&str] = &[key::RELATED_AGENT];
        for (k, v) in ctx {
            match k.as_str() {
                "registration" if top => {
                    if let Some(r) = v.as_str() {
                        // UUIDs compare case-insensitively.
                        let mut k = prefixed(key::REGISTRATION, r);
                        k[key::REGISTRATION.len()..].make_ascii_lowercase();
                        self.keys.push(k);
                    }
                }
                "instructor" | "team" => self.agent(related, v),
                "contextAgents" => self.context_agents(v, "agent"),
                "contextGroups" => self.context_agents(v, "group"),
                "contextActivities" => {
                    for a in activities_in(v) {
                        if let Some(id) = obj_str(a, "id") {
                            self.push(key::RELATED_ACTIVITY, id);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The `member` ("agent" or "group") of each contextAgents / contextGroups entry.
    fn context_agents(&mut self, list: &Value, member: &str) {
        for item in list.as_array().into_iter().flatten() {
            if let Some(a) = item.get(member) {
                self.agent(&[key::RELATED_AGENT], a);
            }
        }
    }
}

/// Activities carrying a definition anywhere in the statement, for the canonical store.
fn activity_definitions(s: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut visit = |a: &Value| {
        if let (Some(id), Some(def)) = (obj_str(a, "id"), a.get("definition")) {
            out.push((id.to_owned(), def.clone()));
        }
    };
    if let Some(o) = s.get("object") {
        if is_activity(o) {
            visit(o);
        } else if obj_str(o, "objectType") == Some("SubStatement") {
            if let Some(so) = o.get("object").filter(|x| is_activity(x)) {
                visit(so);
            }
            context_activities(o).for_each(&mut visit);
        }
    }
    context_activities(s).for_each(&mut visit);
    out
}

/// Truncates an ISO 8601 duration's seconds to hundredths (2.0 duration precision).
fn duration_to_hundredths(d: &str) -> String {
    match d.split_once('.') {
        Some((head, tail)) => {
            let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
            let rest = &tail[digits.len()..];
            let kept: String = digits.chars().take(2).collect();
            let kept = kept.trim_end_matches('0');
            if kept.is_empty() {
                format!("{head}{rest}")
            } else {
                format!("{head}.{kept}{rest}")
            }
        }
        None => d.to_owned(),
    }
}

/// Removes what Data 2.3.1 says is not part of the immutable statement, and normalises
/// what compares case-insensitively, so two forms of one statement become equal.
fn comparable(s: &Value, version: XapiVersion, top: bool) -> Value {
    let mut v = s.clone();
    if let Some(obj) = v.as_object_mut() {
        if top {
            for k in [
                "id",
                "authority",
                "stored",
                "version",
                "timestamp",
                "attachments",
            ] {
                obj.remove(k);
            }
        }
        if let Some(verb) = obj.get_mut("verb").and_then(Value::as_object_mut) {
            verb.remove("display");
        }
        strip_definitions_and_sort(obj);
        if let Some(ctx) = obj.get_mut("context").and_then(Value::as_object_mut) {
            if let Some(r) = ctx.get_mut("registration") {
                *r = Value::from(r.as_str().unwrap_or("").to_ascii_lowercase());
            }
            if let Some(ca) = ctx
                .get_mut("contextActivities")
                .and_then(Value::as_object_mut)
            {
                for v in ca.values_mut() {
                    // A single Activity and an array of one mean the same.
                    if !v.is_array() {
                        *v = Value::Array(vec![v.take()]);
                    }
                    for a in v.as_array_mut().into_iter().flatten() {
                        if let Some(a) = a.as_object_mut() {
                            a.remove("definition");
                            a.remove("objectType");
                        }
                    }
                }
            }
        }
        if version.is_v2() {
            if let Some(d) = obj.get_mut("result").and_then(|r| r.get_mut("duration")) {
                if let Some(s) = d.as_str() {
                    *d = Value::from(duration_to_hundredths(s));
                }
            }
        }
        if let Some(o) = obj.get_mut("object") {
            match obj_str(o, "objectType") {
                Some("SubStatement") => *o = comparable(o, version, false),
                Some("StatementRef") => {
                    if let Some(id) = o.get_mut("id") {
                        *id = Value::from(id.as_str().unwrap_or("").to_ascii_lowercase());
                    }
                }
                None | Some("Activity") => {
                    if let Some(a) = o.as_object_mut() {
                        a.remove("definition");
                        a.insert("objectType".into(), Value::from("Activity"));
                    }
                }
                _ => {}
            }
        }
    }
    v
}

fn normalise_agent(a: &mut Value) {
    if let Some(obj) = a.as_object_mut() {
        if !obj.contains_key("objectType") {
            obj.insert("objectType".into(), Value::from("Agent"));
        }
        if let Some(mbox) = obj.get_mut("mbox") {
            if let Some(k) = mbox
                .as_str()
                .and_then(|m| m.rsplit_once('@'))
                .map(|(l, d)| format!("{l}@{}", d.to_ascii_lowercase()))
            {
                *mbox = Value::from(k);
            }
        }
        if let Some(m) = obj.get_mut("member").and_then(Value::as_array_mut) {
            m.iter_mut().for_each(normalise_agent);
            // Group members are an unordered list (Data 2.3.1).
            m.sort_by_key(|x| x.to_string());
        }
    }
}

fn strip_definitions_and_sort(obj: &mut Map<String, Value>) {
    if let Some(a) = obj.get_mut("actor") {
        normalise_agent(a);
    }
    if let Some(o) = obj.get_mut("object") {
        if is_agent_or_group(o) {
            normalise_agent(o);
        }
    }
    if let Some(ctx) = obj.get_mut("context").and_then(Value::as_object_mut) {
        for k in ["instructor", "team"] {
            if let Some(a) = ctx.get_mut(k) {
                normalise_agent(a);
            }
        }
    }
}

/// Whether a re-sent statement is the one already stored under its id (Data 2.3.1,
/// Statement Comparison Requirements): LRS-assigned properties and serialization
/// differences the standard exempts are ignored; a given timestamp must denote the same
/// instant.
pub fn same_statement(incoming: &Value, stored: &Value, version: XapiVersion) -> bool {
    if let (Some(a), Some(b)) = (obj_str(incoming, "timestamp"), obj_str(stored, "timestamp")) {
        match (
            parse_timestamp(a, XapiVersion::V2_0),
            parse_timestamp(b, XapiVersion::V2_0),
        ) {
            (Some(x), Some(y)) if x == y => {}
            (Some(_), Some(_)) => return false,
            _ if a != b => return false,
            _ => {}
        }
    }
    comparable(incoming, version, true) == comparable(stored, version, true)
}

// ---------------------------------------------------------------------------------------
// Formats (Communication 2.1.3 `format` parameter)
// ---------------------------------------------------------------------------------------

/// Result formats of GET /statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Exact,
    Ids,
    Canonical,
}

fn agent_ids(a: &mut Value) {
    if let Some(obj) = a.as_object_mut() {
        let anonymous = ifi_key(&Value::Object(obj.clone())).is_none();
        let keep: &[&str] = if anonymous {
            &["objectType", "member"]
        } else {
            &["objectType", "mbox", "mbox_sha1sum", "openid", "account"]
        };
        obj.retain(|k, _| keep.contains(&k.as_str()));
        if let Some(m) = obj.get_mut("member").and_then(Value::as_array_mut) {
            m.iter_mut().for_each(agent_ids);
        }
    }
}

fn activity_ids(a: &mut Value) {
    if let Some(obj) = a.as_object_mut() {
        obj.retain(|k, _| k == "id");
    }
}

/// `format=ids`: only what identifies Agents, Groups, Activities and Verbs.
pub fn to_ids(s: &mut Value) {
    let Some(obj) = s.as_object_mut() else { return };
    if let Some(a) = obj.get_mut("actor") {
        agent_ids(a);
    }
    if let Some(a) = obj.get_mut("authority") {
        agent_ids(a);
    }
    if let Some(v) = obj.get_mut("verb").and_then(Value::as_object_mut) {
        v.retain(|k, _| k == "id");
    }
    if let Some(o) = obj.get_mut("object") {
        match obj_str(o, "objectType") {
            Some("Agent") | Some("Group") => agent_ids(o),
            Some("SubStatement") => to_ids(o),
            Some("StatementRef") => {}
            _ => activity_ids(o),
        }
    }
    if let Some(ctx) = obj.get_mut("context").and_then(Value::as_object_mut) {
        for k in ["instructor", "team"] {
            if let Some(a) = ctx.get_mut(k) {
                agent_ids(a);
            }
        }
        for list in ["contextAgents", "contextGroups"] {
            for item in ctx
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                for k in ["agent", "group"] {
                    if let Some(a) = item.get_mut(k) {
                        agent_ids(a);
                    }
                }
            }
        }
        if let Some(ca) = ctx
            .get_mut("contextActivities")
            .and_then(Value::as_object_mut)
        {
            for v in ca.values_mut() {
                match v {
                    Value::Array(list) => list.iter_mut().for_each(activity_ids),
                    other => activity_ids(other),
                }
            }
        }
    }
}

/// Every activity id whose canonical definition `canonical` format needs.
pub fn activity_ids_in(s: &Value, out: &mut Vec<String>) {
    if let Some(o) = s.get("object") {
        if is_activity(o) {
            if let Some(id) = obj_str(o, "id") {
                out.push(id.to_owned());
            }
        } else if obj_str(o, "objectType") == Some("SubStatement") {
            activity_ids_in(o, out);
        }
    }
    for a in context_activities(s) {
        if let Some(id) = obj_str(a, "id") {
            out.push(id.to_owned());
        }
    }
}

/// Picks the one entry of a language map the client prefers (Accept-Language, RFC 7231
/// §5.3.5 applied per map): exact tag, then primary subtag, then `und`, then the first.
pub fn pick_language(map: &Map<String, Value>, accept: &[String]) -> Option<(String, Value)> {
    for want in accept {
        if want == "*" {
            break;
        }
        if let Some((k, v)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(want)) {
            return Some((k.clone(), v.clone()));
        }
        let primary = want.split('-').next().unwrap_or(want);
        if let Some((k, v)) = map.iter().find(|(k, _)| {
            k.split('-')
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case(primary))
        }) {
            return Some((k.clone(), v.clone()));
        }
    }
    map.iter()
        .find(|(k, _)| k.as_str() == "und")
        .or_else(|| map.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
}

/// Language tags of an Accept-Language header, most preferred first.
pub fn parse_accept_language(header: Option<&str>) -> Vec<String> {
    let mut tags: Vec<(String, f32)> = header
        .unwrap_or("")
        .split(',')
        .filter_map(|part| {
            let mut it = part.trim().split(';');
            let tag = it.next()?.trim();
            if tag.is_empty() {
                return None;
            }
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            (q > 0.0).then(|| (tag.to_owned(), q))
        })
        .collect();
    tags.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    tags.into_iter().map(|(t, _)| t).collect()
}

fn filter_language_maps(def: &mut Value, accept: &[String]) {
    let Some(obj) = def.as_object_mut() else {
        return;
    };
    for k in ["name", "description"] {
        if let Some(m) = obj.get_mut(k) {
            filter_one_map(m, accept);
        }
    }
    for k in ["choices", "scale", "source", "target", "steps"] {
        for c in obj
            .get_mut(k)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(d) = c.get_mut("description") {
                filter_one_map(d, accept);
            }
        }
    }
}

fn filter_one_map(m: &mut Value, accept: &[String]) {
    if let Some(map) = m.as_object() {
        if let Some((k, v)) = pick_language(map, accept) {
            let mut one = Map::new();
            one.insert(k, v);
            *m = Value::Object(one);
        }
    }
}

fn canonical_activity(a: &mut Value, defs: &HashMap<String, Value>, accept: &[String]) {
    let Some(id) = obj_str(a, "id").map(str::to_owned) else {
        return;
    };
    if let Some(obj) = a.as_object_mut() {
        if let Some(def) = defs.get(&id) {
            obj.insert("definition".into(), def.clone());
        }
        if let Some(d) = obj.get_mut("definition") {
            filter_language_maps(d, accept);
        }
    }
}

/// `format=canonical`: Activities with the LRS's canonical definitions and every language
/// map reduced to the one language the client prefers; Agents and Groups as received.
pub fn to_canonical(s: &mut Value, defs: &HashMap<String, Value>, accept: &[String]) {
    let Some(obj) = s.as_object_mut() else { return };
    if let Some(d) = obj.get_mut("verb").and_then(|v| v.get_mut("display")) {
        filter_one_map(d, accept);
    }
    if let Some(o) = obj.get_mut("object") {
        match obj_str(o, "objectType") {
            None | Some("Activity") => canonical_activity(o, defs, accept),
            Some("SubStatement") => to_canonical(o, defs, accept),
            _ => {}
        }
    }
    if let Some(ca) = obj
        .get_mut("context")
        .and_then(|c| c.get_mut("contextActivities"))
        .and_then(Value::as_object_mut)
    {
        for v in ca.values_mut() {
            match v {
                Value::Array(list) => list
                    .iter_mut()
                    .for_each(|a| canonical_activity(a, defs, accept)),
                other => canonical_activity(other, defs, accept),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_2_3_1_lrs_set_properties_are_ignored_in_comparison() {
        let a = json!({"actor": {"mbox": "mailto:a@Example.com"}, "verb": {"id": "http://x/v", "display": {"en": "did"}},
            "object": {"id": "http://x/a", "definition": {"name": {"en": "A"}}}});
        let mut b = a.clone();
        b["id"] = json!("7b5ee2de-2a2b-4ffd-b0c2-2f1ef0b0c6b1");
        b["stored"] = json!("2026-01-01T00:00:00Z");
        b["authority"] = json!({"mbox": "mailto:lrs@x.org"});
        b["version"] = json!("1.0.0");
        b["verb"]["display"] = json!({"fr": "fit"});
        b["object"]["definition"] = json!({"name": {"en": "B"}});
        b["object"]["objectType"] = json!("Activity");
        b["actor"]["mbox"] = json!("mailto:a@example.com");
        assert!(same_statement(&a, &b, XapiVersion::V1_0));
        let mut c = a.clone();
        c["verb"]["id"] = json!("http://x/other");
        assert!(!same_statement(&a, &c, XapiVersion::V1_0));
    }

    #[test]
    fn v2_durations_compare_to_hundredths() {
        assert_eq!(duration_to_hundredths("PT1.2345S"), "PT1.23S");
        assert_eq!(duration_to_hundredths("PT1.001S"), "PT1S");
        assert_eq!(duration_to_hundredths("PT10S"), "PT10S");
    }

    #[test]
    fn comm_2_1_3_ids_format_keeps_only_identifiers() {
        let mut s = json!({"actor": {"name": "Ann", "mbox": "mailto:a@x.org"},
            "verb": {"id": "http://x/v", "display": {"en": "did"}},
            "object": {"id": "http://x/a", "definition": {"name": {"en": "A"}}}});
        to_ids(&mut s);
        assert_eq!(s["actor"], json!({"mbox": "mailto:a@x.org"}));
        assert_eq!(s["verb"], json!({"id": "http://x/v"}));
        assert_eq!(s["object"], json!({"id": "http://x/a"}));
    }

    #[test]
    fn comm_2_1_3_canonical_returns_one_language() {
        let mut s = json!({"verb": {"id": "http://x/v", "display": {"en-US": "did", "fr": "fit"}},
            "object": {"id": "http://x/a"}});
        let defs = HashMap::from([(
            "http://x/a".to_string(),
            json!({"name": {"en-US": "A", "fr": "Un"}}),
        )]);
        to_canonical(&mut s, &defs, &parse_accept_language(Some("fr;q=0.9, de")));
        assert_eq!(s["verb"]["display"], json!({"fr": "fit"}));
        assert_eq!(s["object"]["definition"]["name"], json!({"fr": "Un"}));
    }

    #[test]
    fn index_keys_cover_every_filter() {
        let s = json!({"actor": {"objectType": "Group", "mbox": "mailto:g@x.org", "member": [{"mbox": "mailto:m@x.org"}]},
            "verb": {"id": "http://x/v"},
            "object": {"objectType": "SubStatement", "actor": {"mbox": "mailto:s@x.org"}, "verb": {"id": "http://x/v2"},
                "object": {"id": "http://x/inner"}},
            "context": {"registration": "AB5EE2DE-2A2B-4FFD-B0C2-2F1EF0B0C6B1", "instructor": {"mbox": "mailto:i@x.org"},
                "contextActivities": {"parent": {"id": "http://x/p"}, "grouping": [{"id": "http://x/g"}]}},
            "authority": {"mbox": "mailto:auth@x.org"}});
        let k = index_keys(&s);
        for want in [
            "a:Group|mbox|mailto:g@x.org",
            "a:Agent|mbox|mailto:m@x.org",
            "r:Agent|mbox|mailto:s@x.org",
            "r:Agent|mbox|mailto:i@x.org",
            "r:Agent|mbox|mailto:auth@x.org",
            "v:http://x/v",
            "ra:http://x/inner",
            "ra:http://x/p",
            "ra:http://x/g",
            "g:ab5ee2de-2a2b-4ffd-b0c2-2f1ef0b0c6b1",
            "au:Agent|mbox|mailto:auth@x.org",
        ] {
            assert!(k.contains(&want.to_string()), "missing {want} in {k:?}");
        }
        assert!(
            !k.iter().any(|x| x.starts_with("o:")),
            "a SubStatement object is not an activity: {k:?}"
        );
    }

    #[test]
    fn index_keys_of_context_agents_groups_and_a_group_authority() {
        let s = json!({"actor": {"mbox": "mailto:a@x.org"}, "verb": {"id": "http://x/v"},
            "object": {"objectType": "SubStatement", "actor": {"openid": "http://x/o"}, "verb": {"id": "http://x/v2"},
                "object": {"objectType": "Agent", "mbox_sha1sum": "ABCDEF"},
                "context": {"registration": "AB5EE2DE-2A2B-4FFD-B0C2-2F1EF0B0C6B1",
                    "contextActivities": {"other": {"id": "http://x/so"}}}},
            "context": {"team": {"objectType": "Group", "account": {"homePage": "http://t", "name": "t"}},
                "contextAgents": [{"objectType": "contextAgent", "agent": {"mbox": "mailto:ca@X.ORG"}}],
                "contextGroups": [{"objectType": "contextGroup",
                    "group": {"objectType": "Group", "member": [{"mbox": "mailto:cg@x.org"}]}}]},
            "authority": {"objectType": "Group", "member": [{"mbox": "mailto:c@x.org"}, {"mbox": "mailto:u@x.org"}]}});
        let want = [
            "a:Agent|mbox|mailto:a@x.org",
            "r:Agent|mbox|mailto:a@x.org",
            "r:Agent|openid|http://x/o",
            "r:Agent|mbox_sha1sum|abcdef",
            "ra:http://x/so",
            "r:Group|account|http://t|t",
            "r:Agent|mbox|mailto:ca@x.org",
            "r:Agent|mbox|mailto:cg@x.org",
            "r:Agent|mbox|mailto:c@x.org",
            "r:Agent|mbox|mailto:u@x.org",
            "v:http://x/v",
        ];
        let mut want: Vec<String> = want.iter().map(|k| k.to_string()).collect();
        want.sort();
        // An anonymous Group authority has no key of its own; the SubStatement's verb and
        // registration are not the statement's.
        assert_eq!(index_keys(&s), want);
    }
}
