//! The document resources (state, activity profile, agent profile; Communication 2.2,
//! 2.3, 2.6, 2.7) and their concurrency rules (Communication 3.1), pure: parameter
//! validation, the one-level JSON merge of POST, ETags, `If-Match` / `If-None-Match`
//! preconditions, and the [`DocumentUpdate`] closures the store runs atomically.
//!
//! Also the canonical activity definition merge ([`merge_definition`], Data 2.4.4.1),
//! which the statements resource hands to the store as its `DefinitionMerge`.
use super::records::{Document, DocumentChange, DocumentKey, DocumentScope, DocumentUpdate};
use crate::departments::{self, Department};
use crate::error::XapiError;
use crate::xapi::{agent, validate, XapiVersion};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

/// The content type stored for a document sent without one.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// One of the three document resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `activities/state` (Communication 2.3).
    State,
    /// `activities/profile` (Communication 2.7).
    ActivityProfile,
    /// `agents/profile` (Communication 2.6).
    AgentProfile,
}

/// The HTTP method of a document request (HEAD is a GET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    Post,
    Delete,
}

impl Resource {
    /// The parameter naming one document.
    pub fn id_param(self) -> &'static str {
        match self {
            Resource::State => "stateId",
            _ => "profileId",
        }
    }

    /// The section of Communication (1.0.3 numbering) describing this resource.
    pub fn section(self) -> &'static str {
        match self {
            Resource::State => "2.3",
            Resource::AgentProfile => "2.6",
            Resource::ActivityProfile => "2.7",
        }
    }

    fn needs_activity(self) -> bool {
        matches!(self, Resource::State | Resource::ActivityProfile)
    }

    fn needs_agent(self) -> bool {
        matches!(self, Resource::State | Resource::AgentProfile)
    }

    /// The parameters this resource recognises for `op` (Communication 3.2: anything else
    /// is rejected).
    pub fn allowed_params(self, op: Op) -> &'static [&'static str] {
        match (self, op) {
            (Resource::State, Op::Get) => {
                &["activityId", "agent", "registration", "stateId", "since"]
            }
            (Resource::State, _) => &["activityId", "agent", "registration", "stateId"],
            (Resource::ActivityProfile, Op::Get) => &["activityId", "profileId", "since"],
            (Resource::ActivityProfile, _) => &["activityId", "profileId"],
            (Resource::AgentProfile, Op::Get) => &["agent", "profileId", "since"],
            (Resource::AgentProfile, _) => &["agent", "profileId"],
        }
    }

    /// The requirement (1.0.3 anchor) of one parameter of this resource.
    fn param_requirement(self, param: &str) -> String {
        let s = self.section();
        let row = match (self, param) {
            (Resource::State, "activityId") => "s3.table1.row1",
            (Resource::State, "agent") => "s3.table1.row2",
            (Resource::State, "registration") => "s3.table1.row3",
            (Resource::State, "stateId") => "s3.table1.row4",
            (Resource::State, "since") => "s4.table1.row4",
            (Resource::AgentProfile, "agent") => "s3.table1.row1",
            (Resource::AgentProfile, "profileId") => "s3.table1.row2",
            (Resource::AgentProfile, "since") => "s4.table1.row2",
            (Resource::ActivityProfile, "activityId") => "s3.table1.row1",
            (Resource::ActivityProfile, "profileId") => "s3.table1.row2",
            (Resource::ActivityProfile, "since") => "s4.table1.row2",
            _ => return format!("Communication {s}"),
        };
        format!("Communication {s}.{row}")
    }

    /// What a PUT carrying neither `If-Match` nor `If-None-Match` may do (Communication 3.1).
    ///
    /// - 1.0.3, State: allowed ("the State Resource will permit PUT … without concurrency
    ///   headers").
    /// - 1.0.3, profiles: the client MUST send one of the headers, so a PUT without them is
    ///   a bad request (400), or a conflict (409) when the document already exists.
    /// - 2.0: every document resource answers 409 when the document exists; creating a
    ///   new document needs no header.
    pub fn unconditional_put(self, version: XapiVersion) -> UnconditionalPut {
        match (version, self) {
            (XapiVersion::V1_0, Resource::State) => UnconditionalPut::Allowed,
            (XapiVersion::V1_0, _) => UnconditionalPut::Refused,
            (XapiVersion::V2_0, _) => UnconditionalPut::ConflictIfExists,
        }
    }
}

/// See [`Resource::unconditional_put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnconditionalPut {
    /// Create or overwrite.
    Allowed,
    /// Create; 409 when the document exists.
    ConflictIfExists,
    /// 400 when the document is missing, 409 when it exists.
    Refused,
}

/// A validated document request: which document (or set of documents) it addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocTarget {
    pub scope: DocumentScope,
    /// The `stateId` / `profileId`; `None` addresses every document in the scope.
    pub document_id: Option<String>,
    /// `since` as microseconds since the Unix epoch (multiple-document GET).
    pub since_us: Option<i64>,
}

impl DocTarget {
    /// The key of the one document addressed in `department`, if any.
    pub fn key(&self, department: &Department) -> Option<DocumentKey> {
        self.document_id.as_ref().map(|id| DocumentKey {
            department: department.clone(),
            scope: self.scope.clone(),
            document_id: id.clone(),
        })
    }
}

fn bad(resource: Resource, param: &str, message: impl Into<String>) -> XapiError {
    XapiError::bad_request(message)
        .at(param.to_owned())
        .req(resource.param_requirement(param))
}

/// Validates an `agent` query parameter (JSON Agent, or identified Group where the version
/// allows it) and returns its identity key.
pub fn agent_param_key(
    raw: &str,
    version: XapiVersion,
    param: &str,
    requirement: &str,
) -> Result<String, XapiError> {
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        XapiError::bad_request(format!("`{param}` is not valid JSON: {e}"))
            .at(param.to_owned())
            .req(requirement.to_owned())
    })?;
    agent_value_key(&value, version, param, requirement)
}

/// As [`agent_param_key`], for an already parsed value.
pub fn agent_value_key(
    value: &Value,
    version: XapiVersion,
    param: &str,
    requirement: &str,
) -> Result<String, XapiError> {
    if !value.is_object() {
        return Err(
            XapiError::bad_request(format!("`{param}` must be a JSON Agent object"))
                .at(param.to_owned())
                .req(requirement.to_owned()),
        );
    }
    validate::validate_agent_param(value, version).map_err(|mut e| {
        // Its paths are JSON pointers into the value: prefix them with the parameter name.
        e.path = Some(format!("{param}{}", e.path.as_deref().unwrap_or("")));
        if e.requirement.is_none() {
            e.requirement = Some(requirement.to_owned());
        }
        e
    })?;
    agent::ifi_key(value).ok_or_else(|| {
        XapiError::bad_request(format!(
            "`{param}` must identify an Agent by exactly one of mbox, mbox_sha1sum, openid or account"
        ))
        .at(param.to_owned())
        .req("Data 2.4.2.3 (Inverse Functional Identifier)")
    })
}

/// Validates the query parameters of a document request.
///
/// `params` holds each parameter once (duplicates are refused before this). Checks, in
/// order: unrecognised names, required parameters, then each value's format.
pub fn parse_target(
    resource: Resource,
    op: Op,
    version: XapiVersion,
    params: &[(&str, &str)],
) -> Result<DocTarget, XapiError> {
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let allowed = resource.allowed_params(op);
    if let Some((name, _)) = params.iter().find(|(k, _)| !allowed.contains(k)) {
        let hint = if allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            " (parameter names are case-sensitive)"
        } else {
            ""
        };
        return Err(XapiError::bad_request(format!(
            "unknown parameter `{name}` for {op:?} on this resource{hint}; recognised: {}",
            allowed.join(", ")
        ))
        .at((*name).to_owned())
        .req("Communication 3.2 (unrecognised parameters are rejected)"));
    }
    let require = |name: &str| {
        get(name).ok_or_else(|| {
            bad(
                resource,
                name,
                format!("missing required parameter `{name}`"),
            )
        })
    };

    let activity_id = if resource.needs_activity() {
        let a = require("activityId")?;
        if !validate::is_valid_iri(a) {
            return Err(bad(resource, "activityId", "`activityId` must be an IRI"));
        }
        Some(a.to_owned())
    } else {
        None
    };
    let agent_key = if resource.needs_agent() {
        let raw = require("agent")?;
        Some(agent_param_key(
            raw,
            version,
            "agent",
            &resource.param_requirement("agent"),
        )?)
    } else {
        None
    };
    let id_name = resource.id_param();
    let document_id = match get(id_name) {
        Some("") => {
            return Err(bad(
                resource,
                id_name,
                format!("`{id_name}` must not be empty"),
            ))
        }
        Some(id) => Some(id.to_owned()),
        None => {
            // Only GET (all three) and DELETE (State) address several documents.
            let multiple = op == Op::Get || (op == Op::Delete && resource == Resource::State);
            if !multiple {
                return Err(bad(
                    resource,
                    id_name,
                    format!("missing required parameter `{id_name}`"),
                ));
            }
            None
        }
    };
    let registration = match get("registration") {
        Some(r) if validate::is_valid_uuid(r) => Some(r.to_ascii_lowercase()),
        Some(_) => {
            return Err(bad(
                resource,
                "registration",
                "`registration` must be a UUID",
            ))
        }
        None => None,
    };
    let since_us = match get("since") {
        Some(s) => match validate::parse_timestamp(s, version) {
            Some(t) => Some(t.timestamp_micros()),
            None => {
                return Err(bad(
                    resource,
                    "since",
                    "`since` must be a timestamp (ISO 8601 / RFC 3339)",
                ))
            }
        },
        None => None,
    };

    let scope = match resource {
        Resource::State => DocumentScope::State {
            activity_id: activity_id.unwrap_or_default(),
            agent: agent_key.unwrap_or_default(),
            registration,
        },
        Resource::ActivityProfile => DocumentScope::ActivityProfile {
            activity_id: activity_id.unwrap_or_default(),
        },
        Resource::AgentProfile => DocumentScope::AgentProfile {
            agent: agent_key.unwrap_or_default(),
        },
    };
    Ok(DocTarget {
        scope,
        document_id,
        since_us,
    })
}

/// The ETag of some content: the lowercase hex SHA-1 of its bytes (Communication 3.1),
/// unquoted (see [`quoted`]).
pub fn etag(content: &[u8]) -> String {
    hex::encode(Sha1::digest(content))
}

/// An ETag as sent in a header: enclosed in quotes (Communication 3.1, RFC 7232).
pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Whether a media type is JSON (`application/json`, parameters and case ignored).
pub fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The entity tags of one `If-Match` / `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagList {
    /// `*`: any current document.
    Any,
    /// Opaque tags, quotes and any weak prefix removed.
    Tags(Vec<String>),
}

impl TagList {
    /// Parses a header value: `*`, or a comma-separated list of tags, quoted (`"abc"`),
    /// weak (`W/"abc"`) or, leniently, unquoted (`abc`). `None` for an empty value.
    pub fn parse(value: &str) -> Option<TagList> {
        let v = value.trim();
        if v.is_empty() {
            return None;
        }
        if v == "*" {
            return Some(TagList::Any);
        }
        let mut tags = Vec::new();
        let mut rest = v;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let body = rest.strip_prefix("W/").unwrap_or(rest);
            if let Some(q) = body.strip_prefix('"') {
                match q.find('"') {
                    Some(end) => {
                        tags.push(q[..end].to_owned());
                        rest = &q[end + 1..];
                    }
                    None => {
                        tags.push(q.to_owned());
                        rest = "";
                    }
                }
            } else {
                let end = body.find(',').unwrap_or(body.len());
                let t = body[..end].trim();
                if t == "*" {
                    return Some(TagList::Any);
                }
                if !t.is_empty() {
                    tags.push(t.to_owned());
                }
                rest = &body[end..];
            }
        }
        if tags.is_empty() {
            None
        } else {
            Some(TagList::Tags(tags))
        }
    }

    /// Whether the tag list matches the current document (if any).
    pub fn matches(&self, current: Option<&Document>) -> bool {
        match (self, current) {
            (_, None) => false,
            (TagList::Any, Some(_)) => true,
            (TagList::Tags(tags), Some(doc)) => tags.contains(&doc.etag),
        }
    }
}

/// The concurrency headers of a request (Communication 3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub if_match: Option<TagList>,
    pub if_none_match: Option<TagList>,
}

impl Preconditions {
    /// From the header values (several headers of one name joined with `,`).
    pub fn parse(if_match: Option<&str>, if_none_match: Option<&str>) -> Preconditions {
        Preconditions {
            if_match: if_match.and_then(TagList::parse),
            if_none_match: if_none_match.and_then(TagList::parse),
        }
    }

    /// Neither header was sent.
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }

    /// 412 when a precondition fails for the current document (RFC 7232 §3.1, §3.2):
    /// `If-Match` needs a current document whose ETag is listed (or `*`); `If-None-Match`
    /// needs no current document (`*`) or one whose ETag is not listed.
    pub fn check(&self, current: Option<&Document>) -> Result<(), XapiError> {
        if let Some(m) = &self.if_match {
            if !m.matches(current) {
                let why = match current {
                    None => "If-Match was given but the document does not exist".to_owned(),
                    Some(d) => format!(
                        "If-Match does not match the document's current ETag {}: it changed since it was read",
                        quoted(&d.etag)
                    ),
                };
                return Err(XapiError::precondition_failed(why).at("If-Match").req(
                    "Communication 3.1 (If-Match precondition failed: 412, nothing changed)",
                ));
            }
        }
        if let Some(n) = &self.if_none_match {
            if n.matches(current) {
                let why = match n {
                    TagList::Any => {
                        "If-None-Match: * was given but the document already exists".to_owned()
                    }
                    TagList::Tags(_) => {
                        "If-None-Match lists the document's current ETag".to_owned()
                    }
                };
                return Err(XapiError::precondition_failed(why).at("If-None-Match").req(
                    "Communication 3.1 (If-None-Match precondition failed: 412, nothing changed)",
                ));
            }
        }
        Ok(())
    }
}

/// A new document version of `content`, updated at `now_us`.
pub fn new_document(content_type: &str, content: bytes::Bytes, now_us: i64) -> Document {
    Document {
        content_type: content_type.to_owned(),
        etag: etag(&content),
        content,
        updated_us: now_us,
    }
}

fn conflict() -> XapiError {
    XapiError::conflict(
        "the document already exists and the request carried neither If-Match nor If-None-Match: \
         GET the document to check its current state, then PUT again with If-Match set to its current ETag",
    )
    .req("Communication 3.1 (PUT without If-Match/If-None-Match on an existing document: 409)")
}

/// The store update of a PUT: preconditions, the unconditional-PUT rule, then replace.
pub fn put_update(
    resource: Resource,
    version: XapiVersion,
    pre: Preconditions,
    content_type: String,
    content: bytes::Bytes,
    now_us: i64,
) -> DocumentUpdate {
    let policy = resource.unconditional_put(version);
    Box::new(move |current: Option<&Document>| {
        pre.check(current)?;
        if pre.is_empty() {
            match (policy, current) {
                (UnconditionalPut::Allowed, _) | (UnconditionalPut::ConflictIfExists, None) => {}
                (_, Some(_)) => return Err(conflict()),
                (UnconditionalPut::Refused, None) => {
                    return Err(XapiError::bad_request(
                        "a PUT to this resource must carry If-Match (the ETag of the document it replaces) \
                         or If-None-Match: * (to create it)",
                    )
                    .req("Communication 3.1 (PUT to a profile resource MUST include If-Match or If-None-Match)"))
                }
            }
        }
        Ok(DocumentChange::Put(new_document(
            &content_type,
            content.clone(),
            now_us,
        )))
    })
}

fn merge_rejected(message: impl Into<String>) -> XapiError {
    XapiError::bad_request(message)
        .req("Communication 2.2.s8.b1 (POST merges only JSON objects; else 400, nothing changed)")
}

/// Parses a JSON document that must be an object.
fn json_object(content: &[u8], what: &str) -> Result<Map<String, Value>, XapiError> {
    match serde_json::from_slice::<Value>(content) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(merge_rejected(format!(
            "{what} is JSON but not a JSON object"
        ))),
        Err(e) => Err(merge_rejected(format!("{what} is not valid JSON: {e}"))),
    }
}

/// Merges `posted` into `existing` one level deep (Communication 2.2 JSON procedure):
/// every top-level property of `posted` replaces the one of `existing`, whole.
pub fn merge_json(
    mut existing: Map<String, Value>,
    posted: Map<String, Value>,
) -> Map<String, Value> {
    for (k, v) in posted {
        existing.insert(k, v);
    }
    existing
}

/// The store update of a POST. A JSON body must be a JSON object (checked here, before the
/// store is touched); the closure then checks the preconditions and either creates the
/// document, merges into an existing JSON object document, or refuses (400) when either
/// document is not a JSON object.
pub fn post_update(
    pre: Preconditions,
    content_type: String,
    content: bytes::Bytes,
    now_us: i64,
) -> Result<DocumentUpdate, XapiError> {
    let posted = if is_json(&content_type) {
        Some(json_object(&content, "the posted document")?)
    } else {
        None
    };
    Ok(Box::new(move |current: Option<&Document>| {
        pre.check(current)?;
        let Some(existing) = current else {
            return Ok(DocumentChange::Put(new_document(
                &content_type,
                content.clone(),
                now_us,
            )));
        };
        let Some(posted) = posted.clone() else {
            return Err(merge_rejected(format!(
                "the document exists and the posted content type `{content_type}` is not application/json: \
                 only JSON objects are merged (use PUT to replace the document)"
            )));
        };
        if !is_json(&existing.content_type) {
            return Err(merge_rejected(format!(
                "the existing document has content type `{}`, not application/json: it cannot be merged \
                 (use PUT to replace it)",
                existing.content_type
            )));
        }
        let base = json_object(&existing.content, "the existing document")?;
        let merged = Value::Object(merge_json(base, posted)).to_string();
        Ok(DocumentChange::Put(new_document(
            &existing.content_type,
            bytes::Bytes::from(merged),
            now_us,
        )))
    }))
}

/// The store update of a single-document DELETE: preconditions, then delete (a missing
/// document is already deleted).
pub fn delete_update(pre: Preconditions) -> DocumentUpdate {
    Box::new(move |current: Option<&Document>| {
        pre.check(current)?;
        Ok(if current.is_some() {
            DocumentChange::Delete
        } else {
            DocumentChange::Keep
        })
    })
}

fn merge_language_map(current: Option<Value>, new: &Value) -> Value {
    match (current, new) {
        (Some(Value::Object(mut cur)), Value::Object(n)) => {
            for (k, v) in n {
                cur.insert(k.clone(), v.clone());
            }
            Value::Object(cur)
        }
        _ => new.clone(),
    }
}

/// Interaction components (choices, scale, source, target, steps): the list of the newest
/// definition, each component keeping the descriptions in other languages it had before.
fn merge_components(current: Option<Value>, new: &Value) -> Value {
    let (Some(Value::Array(old)), Value::Array(list)) = (current, new) else {
        return new.clone();
    };
    let merged = list
        .iter()
        .map(|c| {
            let id = c.get("id");
            let before = old.iter().find(|o| id.is_some() && o.get("id") == id);
            match (before, c) {
                (Some(Value::Object(b)), Value::Object(n)) => {
                    let mut m = n.clone();
                    if let Some(d) = n.get("description") {
                        m.insert(
                            "description".into(),
                            merge_language_map(b.get("description").cloned(), d),
                        );
                    } else if let Some(d) = b.get("description") {
                        m.insert("description".into(), d.clone());
                    }
                    Value::Object(m)
                }
                _ => c.clone(),
            }
        })
        .collect();
    Value::Array(merged)
}

/// Merges a newly received activity definition into the canonical one (Data 2.4.4.1,
/// Communication 2.5): language maps (`name`, `description`) and `extensions` merge
/// key by key with the new values winning; interaction component lists follow the newest
/// definition while keeping known translations; every other property takes the newest
/// value. Properties the new definition does not mention are kept.
pub fn merge_definition(current: Option<Value>, new: &Value) -> Value {
    let (Some(Value::Object(mut cur)), Value::Object(n)) = (current, new) else {
        return new.clone();
    };
    for (k, v) in n {
        let old = cur.remove(k);
        let merged = match k.as_str() {
            "name" | "description" | "extensions" => merge_language_map(old, v),
            "choices" | "scale" | "source" | "target" | "steps" => merge_components(old, v),
            _ => v.clone(),
        };
        cur.insert(k.clone(), merged);
    }
    Value::Object(cur)
}

/// The canonical definition of an activity as a reader in `reader` sees it: the
/// definitions of the departments of its subtree (by record key), merged from the farthest
/// to the nearest, so the reader's own department has the last word.
pub fn visible_definition(reader: &Department, copies: Vec<(String, Value)>) -> Option<Value> {
    let mut visible: Vec<(Department, Value)> = copies
        .into_iter()
        .map(|(key, def)| (departments::split_record_key(&key).1, def))
        .filter(|(d, _)| d.is_within(reader))
        .collect();
    visible.sort_by(|(a, _), (b, _)| b.depth().cmp(&a.depth()).then_with(|| a.cmp(b)));
    visible
        .into_iter()
        .fold(None, |acc, (_, def)| Some(merge_definition(acc, &def)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const V1: XapiVersion = XapiVersion::V1_0;
    const V2: XapiVersion = XapiVersion::V2_0;

    fn doc(content: &str, ct: &str) -> Document {
        new_document(ct, bytes::Bytes::from(content.to_owned()), 1)
    }

    fn apply(
        update: DocumentUpdate,
        current: Option<&Document>,
    ) -> Result<DocumentChange, XapiError> {
        update(current)
    }

    fn put_content(change: DocumentChange) -> Document {
        match change {
            DocumentChange::Put(d) => d,
            DocumentChange::Delete => panic!("expected Put, got Delete"),
            DocumentChange::Keep => panic!("expected Put, got Keep"),
        }
    }

    const AGENT: &str = r#"{"objectType":"Agent","mbox":"mailto:ann@example.com"}"#;
    const ACT: &str = "http://example.com/activities/1";

    fn p<'a>(pairs: &'a [(&'a str, &'a str)]) -> &'a [(&'a str, &'a str)] {
        pairs
    }

    // ---- ETags ----

    #[test]
    fn comm_3_1_etag_is_lowercase_sha1_hex_of_the_content() {
        // SHA-1("abc")
        assert_eq!(etag(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(quoted("x"), "\"x\"");
        assert_ne!(etag(b"{\"a\":1}"), etag(b"{\"a\":2}"));
    }

    #[test]
    fn is_json_ignores_parameters_and_case() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("application/octet-stream"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }

    // ---- preconditions ----

    #[test]
    fn tag_list_parses_quoted_weak_unquoted_lists_and_star() {
        assert_eq!(TagList::parse("*"), Some(TagList::Any));
        assert_eq!(
            TagList::parse(" \"abc\" "),
            Some(TagList::Tags(vec!["abc".into()]))
        );
        assert_eq!(
            TagList::parse("abc"),
            Some(TagList::Tags(vec!["abc".into()]))
        );
        assert_eq!(
            TagList::parse("W/\"abc\", \"def\",ghi"),
            Some(TagList::Tags(vec![
                "abc".into(),
                "def".into(),
                "ghi".into()
            ]))
        );
        assert_eq!(TagList::parse(""), None);
        assert_eq!(TagList::parse(" , "), None);
    }

    #[test]
    fn comm_3_1_if_match_with_current_etag_passes_and_stale_etag_is_412() {
        let d = doc("{}", "application/json");
        let good = Preconditions::parse(Some(&quoted(&d.etag)), None);
        assert!(good.check(Some(&d)).is_ok());
        let unquoted = Preconditions::parse(Some(&d.etag), None);
        assert!(unquoted.check(Some(&d)).is_ok());
        let bad = Preconditions::parse(Some("\"1111111111111111111111111111111111111111\""), None);
        assert_eq!(bad.check(Some(&d)).unwrap_err().status.as_u16(), 412);
    }

    #[test]
    fn comm_3_1_if_match_on_missing_document_is_412() {
        let pre = Preconditions::parse(Some("\"abc\""), None);
        assert_eq!(pre.check(None).unwrap_err().status.as_u16(), 412);
        let star = Preconditions::parse(Some("*"), None);
        assert_eq!(star.check(None).unwrap_err().status.as_u16(), 412);
        assert!(star.check(Some(&doc("x", "text/plain"))).is_ok());
    }

    #[test]
    fn comm_3_1_if_none_match_star_passes_only_when_no_document_exists() {
        let pre = Preconditions::parse(None, Some("*"));
        assert!(pre.check(None).is_ok());
        assert_eq!(
            pre.check(Some(&doc("x", "text/plain")))
                .unwrap_err()
                .status
                .as_u16(),
            412
        );
    }

    #[test]
    fn if_none_match_with_tags_fails_only_on_the_listed_etag() {
        let d = doc("x", "text/plain");
        assert!(Preconditions::parse(None, Some("\"other\""))
            .check(Some(&d))
            .is_ok());
        let same = Preconditions::parse(None, Some(&quoted(&d.etag)));
        assert_eq!(same.check(Some(&d)).unwrap_err().status.as_u16(), 412);
    }

    // ---- PUT ----

    #[test]
    fn comm_3_1_put_without_headers_on_existing_profile_is_409_in_both_versions() {
        let d = doc("{}", "application/json");
        for v in [V1, V2] {
            for r in [Resource::ActivityProfile, Resource::AgentProfile] {
                let u = put_update(
                    r,
                    v,
                    Preconditions::default(),
                    "application/json".into(),
                    "{}".into(),
                    2,
                );
                assert_eq!(
                    apply(u, Some(&d)).err().map(|e| e.status.as_u16()),
                    Some(409),
                    "{r:?} {v}"
                );
            }
        }
    }

    #[test]
    fn comm_3_1_put_without_headers_on_new_profile_is_400_under_1_0_3_and_allowed_under_2_0() {
        let u = put_update(
            Resource::AgentProfile,
            V1,
            Preconditions::default(),
            "text/plain".into(),
            "x".into(),
            2,
        );
        assert_eq!(apply(u, None).err().map(|e| e.status.as_u16()), Some(400));
        let u = put_update(
            Resource::AgentProfile,
            V2,
            Preconditions::default(),
            "text/plain".into(),
            "x".into(),
            2,
        );
        assert!(apply(u, None).is_ok());
    }

    #[test]
    fn comm_3_1_state_put_without_headers_overwrites_under_1_0_3_and_conflicts_under_2_0() {
        let d = doc("old", "text/plain");
        let u = put_update(
            Resource::State,
            V1,
            Preconditions::default(),
            "text/plain".into(),
            "new".into(),
            2,
        );
        let new = put_content(apply(u, Some(&d)).unwrap());
        assert_eq!(&new.content[..], b"new");
        assert_eq!(new.etag, etag(b"new"));
        assert_eq!(new.updated_us, 2);
        let u = put_update(
            Resource::State,
            V2,
            Preconditions::default(),
            "text/plain".into(),
            "new".into(),
            2,
        );
        assert_eq!(
            apply(u, Some(&d)).err().map(|e| e.status.as_u16()),
            Some(409)
        );
        let u = put_update(
            Resource::State,
            V2,
            Preconditions::default(),
            "text/plain".into(),
            "new".into(),
            2,
        );
        assert!(apply(u, None).is_ok());
    }

    #[test]
    fn comm_3_1_put_with_if_match_replaces_and_keeps_content_type_byte_exact() {
        let d = doc("{\"a\":1}", "application/json");
        let pre = Preconditions::parse(Some(&quoted(&d.etag)), None);
        let body = bytes::Bytes::from_static(&[0u8, 159, 146, 150]);
        let u = put_update(
            Resource::ActivityProfile,
            V1,
            pre,
            "application/octet-stream".into(),
            body.clone(),
            3,
        );
        let new = put_content(apply(u, Some(&d)).unwrap());
        assert_eq!(new.content, body);
        assert_eq!(new.content_type, "application/octet-stream");
    }

    #[test]
    fn comm_3_1_put_precondition_failure_wins_over_conflict() {
        let d = doc("x", "text/plain");
        let pre = Preconditions::parse(None, Some("*"));
        let u = put_update(
            Resource::AgentProfile,
            V1,
            pre,
            "text/plain".into(),
            "y".into(),
            2,
        );
        assert_eq!(
            apply(u, Some(&d)).err().map(|e| e.status.as_u16()),
            Some(412)
        );
    }

    // ---- POST / merge ----

    #[test]
    fn comm_2_2_s7_merge_is_one_level_deep_and_replaces_whole_properties() {
        let existing = json!({"x": "foo", "y": "bar", "car": {"make": "Ford", "model": "Escape"}});
        let posted = json!({"x": "bash", "z": "faz", "car": {"make": "Dodge"}});
        let merged = merge_json(
            existing.as_object().unwrap().clone(),
            posted.as_object().unwrap().clone(),
        );
        assert_eq!(
            Value::Object(merged),
            json!({"x": "bash", "y": "bar", "z": "faz", "car": {"make": "Dodge"}})
        );
    }

    #[test]
    fn comm_2_2_s7_post_merges_into_existing_json_document() {
        let d = doc(r#"{"car":"Honda"}"#, "application/json");
        let u = post_update(
            Preconditions::default(),
            "application/json".into(),
            r#"{"type":"Civic"}"#.into(),
            5,
        )
        .unwrap();
        let new = put_content(apply(u, Some(&d)).unwrap());
        assert_eq!(
            serde_json::from_slice::<Value>(&new.content).unwrap(),
            json!({"car": "Honda", "type": "Civic"})
        );
        assert_eq!(new.etag, etag(&new.content));
        assert_eq!(new.updated_us, 5);
    }

    #[test]
    fn comm_2_2_s7_post_to_missing_document_creates_it_whatever_its_type() {
        let u = post_update(
            Preconditions::default(),
            "application/json".into(),
            r#"{"a":1}"#.into(),
            5,
        )
        .unwrap();
        assert_eq!(
            &put_content(apply(u, None).unwrap()).content[..],
            br#"{"a":1}"#
        );
        let u = post_update(
            Preconditions::default(),
            "text/plain".into(),
            "hello".into(),
            5,
        )
        .unwrap();
        let d = put_content(apply(u, None).unwrap());
        assert_eq!(
            (&d.content[..], d.content_type.as_str()),
            (&b"hello"[..], "text/plain")
        );
    }

    #[test]
    fn comm_2_2_s8_b1_post_of_non_json_to_json_document_is_400() {
        let d = doc(r#"{"a":1}"#, "application/json");
        let u = post_update(
            Preconditions::default(),
            "application/x-www-form-urlencoded".into(),
            "abc".into(),
            5,
        )
        .unwrap();
        assert_eq!(
            apply(u, Some(&d)).err().map(|e| e.status.as_u16()),
            Some(400)
        );
    }

    #[test]
    fn comm_2_2_s8_b1_post_of_json_to_non_json_document_is_400() {
        let d = doc("/ asdf / undefined", "application/octet-stream");
        let u = post_update(
            Preconditions::default(),
            "application/json".into(),
            r#"{"a":1}"#.into(),
            5,
        )
        .unwrap();
        assert_eq!(
            apply(u, Some(&d)).err().map(|e| e.status.as_u16()),
            Some(400)
        );
        // A JSON content type on something that is not an object cannot be merged either.
        let d = doc("[1,2]", "application/json");
        let u = post_update(
            Preconditions::default(),
            "application/json".into(),
            r#"{"a":1}"#.into(),
            5,
        )
        .unwrap();
        assert_eq!(
            apply(u, Some(&d)).err().map(|e| e.status.as_u16()),
            Some(400)
        );
    }

    #[test]
    fn comm_2_2_s8_b1_post_of_invalid_json_or_non_object_is_400_before_the_store() {
        for body in [r#"{"a":1}{"#, "[1]", "\"s\"", ""] {
            let r = post_update(
                Preconditions::default(),
                "application/json".into(),
                body.to_owned().into(),
                5,
            );
            assert_eq!(r.err().map(|e| e.status.as_u16()), Some(400), "{body}");
        }
    }

    #[test]
    fn comm_3_1_post_honours_if_match() {
        let d = doc(r#"{"a":1}"#, "application/json");
        let stale = Preconditions::parse(Some("\"1234\""), None);
        let u = post_update(stale, "application/json".into(), r#"{"b":2}"#.into(), 5).unwrap();
        assert_eq!(
            apply(u, Some(&d)).err().map(|e| e.status.as_u16()),
            Some(412)
        );
        let fresh = Preconditions::parse(Some(&quoted(&d.etag)), None);
        let u = post_update(fresh, "application/json".into(), r#"{"b":2}"#.into(), 5).unwrap();
        assert!(apply(u, Some(&d)).is_ok());
    }

    // ---- DELETE ----

    #[test]
    fn comm_3_1_delete_honours_if_match() {
        let d = doc("x", "text/plain");
        let u = delete_update(Preconditions::parse(Some("\"1234\""), None));
        assert_eq!(
            apply(u, Some(&d)).err().map(|e| e.status.as_u16()),
            Some(412)
        );
        let u = delete_update(Preconditions::parse(Some(&quoted(&d.etag)), None));
        assert!(matches!(apply(u, Some(&d)), Ok(DocumentChange::Delete)));
        let u = delete_update(Preconditions::default());
        assert!(matches!(apply(u, None), Ok(DocumentChange::Keep)));
    }

    // ---- parameters ----

    #[test]
    fn comm_2_3_s3_state_parameters_build_the_scope() {
        let reg = "6F3E4F1A-2B1C-4D5E-8F9A-0B1C2D3E4F5A";
        let t = parse_target(
            Resource::State,
            Op::Put,
            V1,
            p(&[
                ("activityId", ACT),
                ("agent", AGENT),
                ("stateId", "s1"),
                ("registration", reg),
            ]),
        )
        .unwrap();
        assert_eq!(t.document_id.as_deref(), Some("s1"));
        match &t.scope {
            DocumentScope::State {
                activity_id,
                agent,
                registration,
            } => {
                assert_eq!(activity_id, ACT);
                assert_eq!(
                    Some(agent.clone()),
                    agent::ifi_key(&serde_json::from_str(AGENT).unwrap())
                );
                assert_eq!(
                    registration.as_deref(),
                    Some(reg.to_ascii_lowercase().as_str())
                );
            }
            other => panic!("wrong scope {other:?}"),
        }
    }

    #[test]
    fn comm_2_3_s3_table1_missing_required_parameters_are_400() {
        for (missing, params) in [
            ("activityId", vec![("agent", AGENT), ("stateId", "s")]),
            ("agent", vec![("activityId", ACT), ("stateId", "s")]),
            ("stateId", vec![("activityId", ACT), ("agent", AGENT)]),
        ] {
            for op in [Op::Put, Op::Post] {
                let e = parse_target(Resource::State, op, V2, &params).unwrap_err();
                assert_eq!(
                    (e.status.as_u16(), e.path.as_deref()),
                    (400, Some(missing)),
                    "{op:?}"
                );
            }
        }
        // GET and DELETE without stateId address every document of the context.
        for op in [Op::Get, Op::Delete] {
            let t = parse_target(
                Resource::State,
                op,
                V2,
                p(&[("activityId", ACT), ("agent", AGENT)]),
            )
            .unwrap();
            assert_eq!(t.document_id, None);
        }
    }

    #[test]
    fn comm_2_3_s3_table1_invalid_values_are_400() {
        let cases: [(&str, &str); 5] = [
            ("agent", "not JSON"),
            ("agent", "true"),
            ("registration", "true"),
            ("activityId", "true"),
            ("agent", r#"{"objectType":"Agent","name":"no ifi"}"#),
        ];
        for (name, value) in cases {
            let mut params = vec![("activityId", ACT), ("agent", AGENT), ("stateId", "s")];
            params.retain(|(k, _)| *k != name);
            params.push((name, value));
            let e = parse_target(Resource::State, Op::Get, V1, &params).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{name}={value}");
        }
    }

    #[test]
    fn comm_2_3_s4_since_must_be_a_timestamp() {
        let base = [("activityId", ACT), ("agent", AGENT)];
        let mut bad = base.to_vec();
        bad.push(("since", "not a timestamp"));
        assert_eq!(
            parse_target(Resource::State, Op::Get, V1, &bad)
                .unwrap_err()
                .path
                .as_deref(),
            Some("since")
        );
        let mut good = base.to_vec();
        good.push(("since", "2024-01-02T03:04:05.678Z"));
        let t = parse_target(Resource::State, Op::Get, V2, &good).unwrap();
        assert_eq!(t.since_us, Some(1_704_164_645_678_000));
    }

    #[test]
    fn comm_3_2_unknown_or_miscased_parameters_are_400() {
        let e = parse_target(
            Resource::ActivityProfile,
            Op::Get,
            V1,
            p(&[("activityId", ACT), ("foo", "1")]),
        )
        .unwrap_err();
        assert_eq!((e.status.as_u16(), e.path.as_deref()), (400, Some("foo")));
        let e = parse_target(
            Resource::ActivityProfile,
            Op::Get,
            V1,
            p(&[("activityid", ACT)]),
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("activityid"));
        // `since` belongs to GET only.
        let e = parse_target(
            Resource::AgentProfile,
            Op::Delete,
            V2,
            p(&[
                ("agent", AGENT),
                ("profileId", "p"),
                ("since", "2024-01-01T00:00:00Z"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("since"));
    }

    #[test]
    fn comm_2_6_2_7_profile_delete_needs_profile_id() {
        let e = parse_target(
            Resource::AgentProfile,
            Op::Delete,
            V2,
            p(&[("agent", AGENT)]),
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("profileId"));
        let e = parse_target(
            Resource::ActivityProfile,
            Op::Delete,
            V2,
            p(&[("activityId", ACT)]),
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("profileId"));
        let t = parse_target(
            Resource::ActivityProfile,
            Op::Get,
            V2,
            p(&[("activityId", ACT)]),
        )
        .unwrap();
        assert_eq!(
            t.scope,
            DocumentScope::ActivityProfile {
                activity_id: ACT.into()
            }
        );
    }

    #[test]
    fn data_2_4_2_3_agent_parameter_keys_by_ifi() {
        let a = agent_param_key(
            r#"{"mbox":"mailto:Ann@EXAMPLE.com","name":"Ann"}"#,
            V2,
            "agent",
            "r",
        )
        .unwrap();
        let b = agent_param_key(
            r#"{"objectType":"Agent","mbox":"mailto:Ann@example.com"}"#,
            V2,
            "agent",
            "r",
        )
        .unwrap();
        assert_eq!(a, b);
    }

    // ---- activity definitions ----

    #[test]
    fn data_2_4_4_1_definition_merge_keeps_all_languages() {
        let first = json!({"type": "http://a/t", "name": {"en-US": "example meeting", "en-GB": "example meeting"},
                           "description": {"en-US": "d"}});
        let second =
            json!({"type": "http://a/t", "name": {"en-GB": "example meeting", "fr-FR": "réunion"}});
        let merged = merge_definition(Some(first), &second);
        assert_eq!(
            merged["name"],
            json!({"en-US": "example meeting", "en-GB": "example meeting", "fr-FR": "réunion"})
        );
        assert_eq!(merged["description"], json!({"en-US": "d"}));
    }

    #[test]
    fn data_2_4_4_1_definition_merge_takes_the_newest_values() {
        let first = json!({"type": "http://a/old", "moreInfo": "http://a/m", "name": {"en-US": "old"},
                           "extensions": {"http://e/1": 1, "http://e/2": 2}});
        let second = json!({"type": "http://a/new", "name": {"en-US": "new"}, "extensions": {"http://e/2": 3}});
        let merged = merge_definition(Some(first), &second);
        assert_eq!(
            merged,
            json!({"type": "http://a/new", "moreInfo": "http://a/m", "name": {"en-US": "new"},
                   "extensions": {"http://e/1": 1, "http://e/2": 3}})
        );
        assert_eq!(merge_definition(None, &second), second);
    }

    #[test]
    fn data_2_4_4_1_definition_merge_of_interaction_components_keeps_translations() {
        let first = json!({"interactionType": "choice",
            "choices": [{"id": "a", "description": {"en-US": "A"}}, {"id": "b", "description": {"en-US": "B"}}]});
        let second = json!({"interactionType": "choice",
            "choices": [{"id": "a", "description": {"de-DE": "A-de"}}, {"id": "c", "description": {"de-DE": "C"}}]});
        let merged = merge_definition(Some(first), &second);
        assert_eq!(
            merged["choices"],
            json!([{"id": "a", "description": {"en-US": "A", "de-DE": "A-de"}}, {"id": "c", "description": {"de-DE": "C"}}])
        );
    }

    /// The embedded store's writer skips a definition equal to the one it last merged into
    /// the canonical one: merging the same definition again must change nothing.
    #[test]
    fn data_2_4_4_1_merging_the_same_definition_again_changes_nothing() {
        let first = json!({"type": "http://a/old", "name": {"en-US": "old", "hi-IN": "पुराना"},
            "extensions": {"http://e/1": 1},
            "interactionType": "choice",
            "choices": [{"id": "a", "description": {"en-US": "A"}}, {"id": "b", "description": {"en-US": "B"}}],
            "scale": [{"id": "s", "description": {"en-US": "S"}}]});
        let second = json!({"type": "http://a/new", "name": {"en-US": "new"},
            "extensions": {"http://e/2": 2},
            "choices": [{"id": "b", "description": {"de-DE": "B-de"}}, {"id": "c"}],
            "scale": [{"id": "s"}]});
        for current in [None, Some(first)] {
            let once = merge_definition(current, &second);
            let twice = merge_definition(Some(once.clone()), &second);
            assert_eq!(twice, once);
        }
    }
}
