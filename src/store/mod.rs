//! Persistence behind one narrow trait. Backends only persist and find records that
//! `xapi` has already prepared (ids, stored time, index keys); every xAPI rule lives above.
pub mod clock;
mod key_index;
pub mod mongo;
pub mod sqlite;

use crate::error::XapiError;
use crate::xapi::multipart::AttachmentContent;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// Errors a backend can give. `Rejected` carries an xAPI rule failure decided by a closure
/// the caller passed in (documents), so it reaches the client unchanged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Internal(String),
    #[error("{0}")]
    Rejected(XapiError),
}

impl From<StoreError> for XapiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => {
                XapiError::unavailable(format!("the store is unavailable: {m}"))
            }
            StoreError::Internal(m) => {
                tracing::error!("store failure: {m}");
                XapiError::internal("internal store failure")
            }
            StoreError::Rejected(x) => x,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

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

/// Merges a newly seen activity definition into the canonical one (an xAPI rule, passed in).
pub type DefinitionMerge = fn(Option<Value>, &Value) -> Value;

/// One atomic write of statements: stored whole or not at all.
pub struct StatementBatch {
    pub records: Vec<StatementRecord>,
    pub attachments: Vec<AttachmentContent>,
    /// Activity definitions to merge into the canonical definitions (define scope).
    pub definitions: Vec<(String, Value)>,
    pub merge_definition: DefinitionMerge,
}

/// Result of inserting a batch.
#[derive(Debug)]
pub enum InsertOutcome {
    Inserted,
    /// Some ids already exist: nothing was written. Holds (id, stored json) of each.
    Existing(Vec<(String, String)>),
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
}

/// What identifies one document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentKey {
    pub scope: DocumentScope,
    pub document_id: String,
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
    /// whatever the IRIs and agent keys inside contain.
    pub fn key(&self) -> String {
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
    pub fn key_range(&self) -> (String, String) {
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

/// A credential as stored (secret only as a hash).
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub key: String,
    pub secret_hash: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_us: i64,
    pub revoked: bool,
    /// The department it belongs to (the root for credentials made before departments).
    pub department: crate::departments::Department,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a batch atomically and durably, or reports the ids that already exist.
    async fn insert_statements(&self, batch: StatementBatch) -> StoreResult<InsertOutcome>;
    async fn get_statement(&self, id: &str) -> StoreResult<Option<StoredStatement>>;
    /// Non-voided statements matching the query, in order, at most `limit`.
    async fn query_statements(&self, query: &StatementQuery) -> StoreResult<Vec<StoredStatement>>;
    async fn get_attachments(&self, sha2: &[String]) -> StoreResult<Vec<AttachmentContent>>;
    async fn get_activity_definition(&self, activity_id: &str) -> StoreResult<Option<Value>>;

    async fn get_document(&self, key: &DocumentKey) -> StoreResult<Option<Document>>;
    /// Ids of the documents in scope updated after `since_us`.
    async fn list_documents(
        &self,
        scope: &DocumentScope,
        since_us: Option<i64>,
    ) -> StoreResult<Vec<String>>;
    /// Atomically reads the document, lets `update` decide, and applies the decision.
    async fn update_document(
        &self,
        key: &DocumentKey,
        update: DocumentUpdate,
    ) -> StoreResult<Option<Document>>;
    async fn delete_documents(&self, scope: &DocumentScope) -> StoreResult<()>;

    async fn put_credential(&self, credential: &CredentialRecord) -> StoreResult<()>;
    async fn get_credential(&self, key: &str) -> StoreResult<Option<CredentialRecord>>;
    async fn list_credentials(&self) -> StoreResult<Vec<CredentialRecord>>;
    /// Marks a credential revoked; false when no such key.
    async fn revoke_credential(&self, key: &str) -> StoreResult<bool>;

    /// Flushes and closes cleanly (graceful shutdown).
    async fn close(&self);
}

pub type DynStore = Arc<dyn Store>;

/// Opens the store named by `--store`.
pub async fn open(spec: &str) -> Result<DynStore, String> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let s = sqlite::SqliteStore::open(path).map_err(|e| format!("cannot open {spec}: {e}"))?;
        Ok(Arc::new(s))
    } else if spec.starts_with("mongodb://") || spec.starts_with("mongodb+srv://") {
        let s = mongo::MongoStore::open(spec).await?;
        Ok(Arc::new(s))
    } else {
        Err(format!(
            "unknown store `{spec}`: use sqlite:PATH or mongodb://…"
        ))
    }
}
