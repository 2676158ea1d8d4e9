//! The records the xAPI rules produce and the store keeps: statements prepared for storage
//! and as stored, statement queries reduced to index keys, documents and their keys. The
//! store persists and finds them; it never decides what they contain.
use crate::departments::Department;
use crate::error::XapiError;

/// A statement prepared for storage.
#[derive(Debug, Clone)]
pub struct StatementRecord {
    pub id: String,
    /// The statement as it will be returned (exact format), serialized once.
    pub json: String,
    /// `stored`, as microseconds since the Unix epoch; unique and increasing per process.
    pub stored_us: i64,
    /// Set when this is a voiding statement: the id of the statement it voids.
    pub voids: Option<String>,
    /// Derived filter keys (see `xapi::statement::index_keys`), served by an index.
    pub keys: Vec<String>,
    /// When the object is a StatementRef: the target whose filter keys this statement also
    /// answers to (StatementRef filter semantics).
    pub inherits_keys_of: Option<String>,
    /// sha2 of every attachment the statement uses (contents passed beside the batch).
    pub attachment_sha2: Vec<String>,
    /// The statement's RFC 8785 canonical form (what the audit log commits to), made
    /// from the statement value `json` was written from; not stored.
    pub canonical: Vec<u8>,
    /// The audit log's commitment to the statement and its salt; set once the record's
    /// department is known (`StatementBatch::new`).
    pub seal: Option<Seal>,
}

/// A statement's salt and its salted commitment (docs/AUDIT.md 6.2, 6.3), stored beside
/// the statement on the acknowledgement path; the sequencer logs the commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    pub salt: [u8; 32],
    pub commitment: [u8; 32],
}

/// A statement as stored.
#[derive(Debug, Clone)]
pub struct StoredStatement {
    pub id: String,
    pub json: String,
    pub stored_us: i64,
    pub voided: bool,
    pub attachment_sha2: Vec<String>,
}

/// A query of the statements resource, already validated and reduced to index keys.
#[derive(Debug, Clone, Default)]
pub struct StatementQuery {
    /// Every key must match (AND); empty means all statements.
    pub keys: Vec<String>,
    /// stored > since
    pub since_us: Option<i64>,
    /// stored <= until
    pub until_us: Option<i64>,
    pub ascending: bool,
    /// Resume after this (stored_us, id) position (cursor paging).
    pub after: Option<(i64, String)>,
    pub limit: usize,
    /// Voided statements too (erasure finds every statement of a person).
    pub include_voided: bool,
}

impl StatementQuery {
    /// Narrows the query to `department`'s subtree: one more filter key (none for the
    /// root), which `index_keys` pairs with the first filter.
    pub fn within(&mut self, department: &Department) {
        if !department.is_root() {
            self.keys.push(crate::departments::filter_key(department));
        }
    }

    /// The index keys that answer the query: the first is scanned in `stored` order, the
    /// others are checked on each entry found. The first is the most selective filter
    /// key, within the reader's department when it has one (`departments::key_within`),
    /// so that a department's query scans only its subtree's entries; the department's
    /// key alone when there is no filter. None for an unfiltered root query.
    pub fn index_keys(&self) -> Vec<String> {
        use crate::departments::{is_placement_key, key_within};
        let placement = self.keys.iter().find(|k| is_placement_key(k));
        let mut filters = self.keys.iter().filter(|k| !is_placement_key(k));
        let mut out: Vec<String> = match (filters.next(), placement) {
            (Some(k), Some(p)) => vec![key_within(p, k)],
            (Some(k), None) | (None, Some(k)) => vec![k.clone()],
            (None, None) => Vec::new(),
        };
        out.extend(filters.cloned());
        out
    }
}

/// What identifies one document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentKey {
    /// Documents belong to one department (no subtree merge).
    pub department: Department,
    pub scope: DocumentScope,
    pub document_id: String,
}

impl DocumentKey {
    /// The stored scope key of this document.
    pub fn scope_key(&self) -> String {
        self.scope.key_in(&self.department)
    }
}

/// The set of documents a multiple-document GET or DELETE addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DocumentScope {
    State {
        activity_id: String,
        agent: String,
        registration: Option<String>,
    },
    ActivityProfile {
        activity_id: String,
    },
    AgentProfile {
        agent: String,
    },
}

impl DocumentScope {
    /// The scope as one string, the same in every backend: a JSON array, unambiguous
    /// whatever the IRIs and agent keys inside contain, after the department (the root's
    /// keys are the bare array, as before departments existed).
    pub fn key_in(&self, department: &Department) -> String {
        in_department(department, &self.key())
    }

    /// `key_range` of this scope inside `department`.
    pub fn key_range_in(&self, department: &Department) -> (String, String) {
        let (lo, hi) = self.key_range();
        (
            in_department(department, &lo),
            in_department(department, &hi),
        )
    }

    fn key(&self) -> String {
        let parts: Vec<&str> = match self {
            DocumentScope::State {
                activity_id,
                agent,
                registration,
            } => {
                vec![
                    "state",
                    activity_id,
                    agent,
                    registration.as_deref().unwrap_or(""),
                ]
            }
            DocumentScope::ActivityProfile { activity_id } => vec!["activity", activity_id],
            DocumentScope::AgentProfile { agent } => vec!["agent", agent],
        };
        serde_json::to_string(&parts).unwrap_or_default()
    }

    /// The half-open range `[lo, hi)` of scope keys a multiple-document GET or DELETE
    /// addresses: exactly this scope, except that a State scope without a registration
    /// covers every registration of that Activity and Agent (Communication 2.3: "Activity
    /// + Agent [+ registration if specified]").
    fn key_range(&self) -> (String, String) {
        match self {
            DocumentScope::State {
                activity_id,
                agent,
                registration: None,
            } => {
                let head = serde_json::to_string(&["state", activity_id.as_str(), agent.as_str()])
                    .unwrap_or_default();
                // `["state","a","b"]` → every key starting `["state","a","b",`.
                let open = format!("{},", head.trim_end_matches(']'));
                let end = format!("{}-", head.trim_end_matches(']'));
                (open, end)
            }
            _ => {
                let k = self.key();
                let end = format!("{k}\u{0}");
                (k, end)
            }
        }
    }
}

/// A scope key inside a department: `moe/dhe ["state",…]`. JSON arrays start with `[`
/// and department paths with a letter or digit, so the root's bare keys never collide.
fn in_department(department: &Department, key: &str) -> String {
    if department.is_root() {
        key.to_owned()
    } else {
        format!("{department} {key}")
    }
}

/// The range of scope keys of every document of the departments strictly below
/// `department`, and the one of `department`'s own: together, its subtree.
pub fn subtree_scope_ranges(department: &Department) -> Vec<(String, String)> {
    if department.is_root() {
        // Everything: bare keys and every department's.
        return vec![(String::new(), "\u{10FFFF}".to_owned())];
    }
    vec![
        (format!("{department} ["), format!("{department} \\")),
        (format!("{department}/"), format!("{department}0")),
    ]
}

#[derive(Debug, Clone)]
pub struct Document {
    pub content_type: String,
    pub content: bytes::Bytes,
    pub etag: String,
    pub updated_us: i64,
}

/// What a document update decides, given the current document (if any).
pub enum DocumentChange {
    Put(Document),
    Delete,
    Keep,
}

/// `Fn`, not `FnOnce`: a backend whose transaction lost a write conflict (MongoDB) reads the
/// document again and asks again.
pub type DocumentUpdate =
    Box<dyn Fn(Option<&Document>) -> Result<DocumentChange, XapiError> + Send + Sync + 'static>;

/// Whether a stored document scope key (`DocumentScope::key_in`) is a state or agent
/// profile document of the agent whose identity key is `agent_key` (erasure).
pub fn scope_names_agent(scope_key: &str, agent_key: &str) -> bool {
    let Some(at) = scope_key.find('[') else {
        return false;
    };
    let Ok(parts) = serde_json::from_str::<Vec<String>>(&scope_key[at..]) else {
        return false;
    };
    match parts.first().map(String::as_str) {
        Some("state") => parts.get(2).map(String::as_str) == Some(agent_key),
        Some("agent") => parts.get(1).map(String::as_str) == Some(agent_key),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(keys: &[&str]) -> StatementQuery {
        StatementQuery {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..StatementQuery::default()
        }
    }

    #[test]
    fn a_department_reader_scans_its_first_filter_key_within_its_department() {
        let moe = Department::parse("moe").expect("a path");
        let mut q = query(&["a:mbox|mailto:a@x", "v:http://x/v"]);
        assert_eq!(q.index_keys(), ["a:mbox|mailto:a@x", "v:http://x/v"]);
        q.within(&moe);
        assert_eq!(q.index_keys(), ["in:moe a:mbox|mailto:a@x", "v:http://x/v"]);
        let mut all = query(&[]);
        assert!(all.index_keys().is_empty());
        all.within(&moe);
        assert_eq!(all.index_keys(), ["d:moe"]);
        all.within(&Department::root());
        assert_eq!(all.keys, ["d:moe"]);
    }
}
