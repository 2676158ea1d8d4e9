//! Persistence behind one narrow trait. Backends only persist and find records that
//! `xapi` has already prepared (ids, stored time, index keys); every xAPI rule lives above.
pub mod clock;
mod key_index;
pub mod mongo;
pub mod sqlite;

use crate::departments::{self, Department};
use crate::error::XapiError;
use crate::xapi::multipart::AttachmentContent;
pub use crate::xapi::records::{
    Document, DocumentChange, DocumentKey, DocumentScope, DocumentUpdate, StatementQuery,
    StatementRecord, StoredStatement,
};
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

/// Merges a newly seen activity definition into the canonical one (an xAPI rule, passed in).
pub type DefinitionMerge = fn(Option<Value>, &Value) -> Value;

/// One atomic write of statements into one department: stored whole or not at all.
/// Built only by `StatementBatch::new`, which keys every record by its department.
pub struct StatementBatch {
    /// Record keys (`departments::record_key`) in `id`, `voids`, `inherits_keys_of` and
    /// `attachment_sha2`; the department's filter keys among `keys`.
    pub records: Vec<StatementRecord>,
    /// Keyed by record key too (`sha2` is `record_key(sha2, department)`).
    pub attachments: Vec<AttachmentContent>,
    /// Activity definitions (by record key) to merge into the canonical definitions.
    pub definitions: Vec<(String, Value)>,
    pub merge_definition: DefinitionMerge,
}

impl StatementBatch {
    /// Places prepared records in `department`: ids, voiding and StatementRef targets,
    /// attachments and activity definitions are all that department's (voiding and
    /// StatementRef resolution never reach another department), and each statement gets
    /// the filter keys of every department whose subtree holds it.
    pub fn new(
        department: &Department,
        mut records: Vec<StatementRecord>,
        mut attachments: Vec<AttachmentContent>,
        mut definitions: Vec<(String, Value)>,
        merge_definition: DefinitionMerge,
    ) -> StatementBatch {
        if !department.is_root() {
            let placement = departments::placement_keys(department);
            let key = |id: &str| departments::record_key(id, department);
            for r in &mut records {
                r.id = key(&r.id);
                r.voids = r.voids.as_deref().map(key);
                r.inherits_keys_of = r.inherits_keys_of.as_deref().map(key);
                r.attachment_sha2 = r.attachment_sha2.iter().map(|h| key(h)).collect();
                r.keys.extend(placement.iter().cloned());
            }
            for a in &mut attachments {
                a.sha2 = key(&a.sha2);
            }
            for (id, _) in &mut definitions {
                *id = key(id);
            }
        }
        StatementBatch {
            records,
            attachments,
            definitions,
            merge_definition,
        }
    }
}

/// A department of the tree (the root is implicit and never stored).
#[derive(Debug, Clone)]
pub struct DepartmentRecord {
    pub path: Department,
    pub created_us: i64,
}

/// Result of inserting a batch.
#[derive(Debug)]
pub enum InsertOutcome {
    Inserted,
    /// Some ids already exist: nothing was written. Holds (id, stored json) of each.
    Existing(Vec<(String, String)>),
}

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
    /// Every department's statement with this id (record keys in `copies_range(id)`);
    /// the caller keeps those its reader may see.
    async fn get_statement_copies(&self, id: &str) -> StoreResult<Vec<StoredStatement>>;
    /// Non-voided statements matching the query, in order, at most `limit`.
    async fn query_statements(&self, query: &StatementQuery) -> StoreResult<Vec<StoredStatement>>;
    async fn get_attachments(&self, sha2: &[String]) -> StoreResult<Vec<AttachmentContent>>;
    /// Every department's canonical definition of this activity, by record key.
    async fn get_activity_definitions(
        &self,
        activity_id: &str,
    ) -> StoreResult<Vec<(String, Value)>>;

    async fn get_document(&self, key: &DocumentKey) -> StoreResult<Option<Document>>;
    /// Ids of the documents in scope updated after `since_us`.
    async fn list_documents(
        &self,
        department: &Department,
        scope: &DocumentScope,
        since_us: Option<i64>,
    ) -> StoreResult<Vec<String>>;
    /// Atomically reads the document, lets `update` decide, and applies the decision.
    async fn update_document(
        &self,
        key: &DocumentKey,
        update: DocumentUpdate,
    ) -> StoreResult<Option<Document>>;
    async fn delete_documents(
        &self,
        department: &Department,
        scope: &DocumentScope,
    ) -> StoreResult<()>;
    /// Whether any document lies in `department`'s subtree.
    async fn has_documents_in(&self, department: &Department) -> StoreResult<bool>;

    /// Adds a department; false when it already exists.
    async fn put_department(&self, department: &DepartmentRecord) -> StoreResult<bool>;
    async fn get_department(&self, path: &Department) -> StoreResult<Option<DepartmentRecord>>;
    /// Every department (not the root), in path order.
    async fn list_departments(&self) -> StoreResult<Vec<DepartmentRecord>>;
    /// Removes a department record; false when there was none.
    async fn remove_department(&self, path: &Department) -> StoreResult<bool>;
    /// The root always exists.
    async fn department_exists(&self, path: &Department) -> StoreResult<bool> {
        Ok(path.is_root() || self.get_department(path).await?.is_some())
    }

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
