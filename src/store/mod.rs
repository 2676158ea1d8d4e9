//! Persistence behind one narrow trait. Backends only persist and find records that
//! `xapi` has already prepared (ids, stored time, index keys); every xAPI rule lives above.
pub mod clock;
mod key_index;
pub mod mongo;
pub mod sqlite;

pub use crate::analytics::query::{
    FigureRow, FiguresQuery, GroupBy, GroupKey, ProjectionWrite, RowKey, RowWrite,
};
use crate::audit;
use crate::audit::merkle::Hash;
pub use crate::audit::records::{
    Erased, Erasure, FeedEvent, FeedItem, FeedPage, LogAppend, LogEntry, LogState, PendingErasure,
    StatementLog, UnloggedStatement,
};
use crate::departments::{self, Department};
use crate::error::XapiError;
pub use crate::forwarding::{
    DeliveryState, Rule as ForwardingRule, RuleRecord as ForwardingRecord,
};
pub use crate::scorm::records::{LaunchRecord, PackageRecord, StoredFile};
use crate::xapi::multipart::AttachmentContent;
pub use crate::xapi::records::{
    Document, DocumentChange, DocumentKey, DocumentScope, DocumentUpdate, Seal, StatementQuery,
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
    /// No space left for the write (disk or filesystem full): nothing of it was stored.
    #[error("the store is full: {0}")]
    Full(String),
    /// The write kept meeting another one holding the same records (on MongoDB, a
    /// transaction of a process that died, until the server expires it) for as long as
    /// the store retries it: nothing of it was stored, and a later try will go through.
    #[error("the store is busy: {0}")]
    Busy(String),
    #[error("{0}")]
    Rejected(XapiError),
}

impl From<StoreError> for XapiError {
    fn from(e: StoreError) -> Self {
        match e {
            // The database is down or unreachable: the client retries shortly, the
            // LRS reconnects by itself.
            StoreError::Unavailable(m) => {
                let mut e = XapiError::unavailable(format!("the store is unavailable: {m}"))
                    .code("store_unavailable");
                e.retry_after = Some(5);
                e
            }
            StoreError::Internal(m) => {
                tracing::error!("store failure: {m}");
                XapiError::internal("internal store failure")
            }
            StoreError::Full(m) => {
                tracing::error!("store full: {m}");
                XapiError::new(
                    actix_web::http::StatusCode::INSUFFICIENT_STORAGE,
                    "the store has no space left; nothing of this request was stored, retry later",
                )
                .code("store_full")
            }
            StoreError::Busy(m) => {
                tracing::warn!("store busy: {m}");
                let mut e = XapiError::unavailable(
                    "the records this request writes are held by another write; nothing of \
                     this request was stored, retry later",
                )
                .code("store_busy");
                e.retry_after = Some(5);
                e
            }
            StoreError::Rejected(x) => x,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Merges a newly seen activity definition into the canonical one (an xAPI rule, passed in).
/// Idempotent: merging the definition last merged again changes nothing, so a store may
/// skip it.
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
    ) -> Result<StatementBatch, XapiError> {
        // The commitment covers the department, so it is sealed here, where the record
        // is placed; the log's sequencer only reads it.
        for r in &mut records {
            let canonical = std::mem::take(&mut r.canonical);
            let sealed = if canonical.is_empty() {
                audit::leaf::seal(&r.json, department)
            } else {
                audit::leaf::seal_canonical(&canonical, department)
            };
            let (salt, commitment) = sealed.map_err(|e| {
                XapiError::bad_request(format!(
                    "statement {} cannot be put in canonical form (RFC 8785): {e}",
                    r.id
                ))
            })?;
            r.seal = Some(Seal {
                salt: *salt.as_bytes(),
                commitment: commitment.0,
            });
        }
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
        Ok(StatementBatch {
            records,
            attachments,
            definitions,
            merge_definition,
        })
    }
}

/// A department of the tree (the root is implicit and never stored).
#[derive(Debug, Clone)]
pub struct DepartmentRecord {
    pub path: Department,
    pub created_us: i64,
    /// Rate limits set for this department (empty: inherited from above).
    pub limits: crate::quota::DepartmentLimits,
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
    /// Sets a department's rate limits (replacing what it had); false when there is no
    /// such department.
    async fn set_department_limits(
        &self,
        path: &Department,
        limits: &crate::quota::DepartmentLimits,
    ) -> StoreResult<bool>;
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

    // The audit log (docs/AUDIT.md). One sequencer appends at a time; everyone reads.

    /// The log's size and latest checkpoint.
    async fn log_state(&self) -> StoreResult<LogState>;
    /// Statements not yet in the log whose `stored` ≤ `horizon_us`, in (stored, key)
    /// order, at most `limit`.
    async fn unlogged_statements(
        &self,
        horizon_us: i64,
        limit: usize,
    ) -> StoreResult<Vec<UnloggedStatement>>;
    /// Erasures carried out and not yet logged, oldest first.
    async fn pending_erasures(&self) -> StoreResult<Vec<PendingErasure>>;
    /// Appends atomically; false (nothing written) when the log no longer has
    /// `old_size` leaves (another sequencer got there first).
    async fn append_log(&self, append: LogAppend) -> StoreResult<bool>;
    /// Stored hashes by index (docs/AUDIT.md section 3), in the order asked; an error
    /// when one is missing.
    async fn log_hashes(&self, indexes: Vec<u64>) -> StoreResult<Vec<Hash>>;
    /// The entries of leaves `[start, end)`; an error when one is missing.
    async fn log_entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>>;
    /// Records a newer checkpoint (an older or equal size is ignored).
    async fn put_checkpoint(&self, size: u64, note: String) -> StoreResult<()>;
    /// The statement's salt and leaf index, by record key; None if no such statement.
    async fn statement_log(&self, key: &str) -> StoreResult<Option<StatementLog>>;
    /// The statement logged at leaf `index` (record key, statement, salt), if it is
    /// still there.
    async fn statement_at_leaf(
        &self,
        index: u64,
    ) -> StoreResult<Option<(String, StoredStatement, [u8; 32])>>;
    /// Takes or renews the sequencer's lease until `now_us + ttl_us`; false while
    /// another holder's lease runs.
    async fn sequencer_lease(&self, holder: &str, now_us: i64, ttl_us: i64) -> StoreResult<bool>;

    /// The change feed (docs/FEED.md): the leaves in `[from, to)` that `subtree` sees, in
    /// leaf order, at most `limit` events. A statement leaf is seen by the subtrees that
    /// hold its statement, and skipped once the statement is erased; an erasure leaf by
    /// the subtrees that held an erased statement, naming only those leaves.
    async fn feed(
        &self,
        subtree: &Department,
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<FeedPage>;
    /// Takes or renews the lease `name` (one worker among the processes sharing the
    /// store: a forwarding rule, a projection) until `now_us + ttl_us`; false while
    /// another holder's lease runs.
    async fn lease(&self, name: &str, holder: &str, now_us: i64, ttl_us: i64) -> StoreResult<bool>;

    /// Applies an erasure atomically: deletes the statements (content and salts), the
    /// person's state and agent profile documents in the subtree, attachments no other
    /// statement uses, unlinks their leaves, and records the erasure for the sequencer.
    /// Also deletes the person's learner rows (`agent_key`) in the subtree and takes their
    /// contributions back from the completion counters.
    async fn erase(&self, erasure: Erasure) -> StoreResult<Erased>;

    /// Flushes and closes cleanly (graceful shutdown).
    async fn close(&self);

    /// Writes waiting for the backend's writer (a metrics gauge); 0 where writes queue
    /// nowhere in this process.
    fn queue_depth(&self) -> usize {
        0
    }
    /// Whether the store does its work in this process, on the cores that serve requests
    /// (the embedded store): background projections then yield to ingestion.
    fn shares_the_machine(&self) -> bool {
        false
    }
    // Forwarding rules (docs/FORWARDING.md), prepared by `crate::forwarding`.

    /// Adds a rule with a fresh delivery state (cursor 0); false when its id exists.
    async fn put_forwarding_rule(&self, rule: &ForwardingRule) -> StoreResult<bool>;
    /// A rule and its delivery state.
    async fn get_forwarding_rule(&self, id: &str) -> StoreResult<Option<ForwardingRecord>>;
    /// Every rule, in id order (the caller keeps those its reader may see).
    async fn list_forwarding_rules(&self) -> StoreResult<Vec<ForwardingRecord>>;
    /// Removes a rule and its state; false when there was none.
    async fn delete_forwarding_rule(&self, id: &str) -> StoreResult<bool>;
    /// Records a rule's delivery state unless the stored cursor is already ahead of
    /// `state.cursor` (the cursor only moves forward); false when not written (no such
    /// rule, or a cursor behind the stored one).
    async fn save_forwarding_state(&self, id: &str, state: &DeliveryState) -> StoreResult<bool>;

    // Completion figures (docs/ANALYTICS.md): learner rows and per-day counters that the
    // projector (`crate::completions`) keeps up with the root feed.

    /// The feed position the figures include (leaves before it are projected).
    async fn completions_position(&self) -> StoreResult<u64>;
    /// The stored learner rows among `keys` (`LearnerRow::to_text`), by key.
    async fn learner_rows(&self, keys: Vec<RowKey>) -> StoreResult<Vec<(RowKey, String)>>;
    /// Which of these statements (record keys) are stored and voided.
    async fn voided_among(&self, keys: Vec<String>) -> StoreResult<Vec<String>>;
    /// Writes the rows and moves the position from `from` to `to` atomically: for each
    /// row, takes back the stored row's contributions and adds the new ones (a row whose
    /// `requires` are not all stored is skipped). False, with nothing written, when the
    /// position is no longer `from`.
    async fn project_completions(&self, write: ProjectionWrite) -> StoreResult<bool>;
    /// The counters of `query.subtree` (the department and every path below it) in the
    /// day range, summed per group, in group order. Served by an index on the counters:
    /// the cost follows the counters read, never the number of statements.
    async fn completion_figures(&self, query: FiguresQuery) -> StoreResult<Vec<FigureRow>>;

    // Content packages and launches (docs/SCORM.md), prepared by `crate::launcher`.

    /// Stores a package with all its files, visible only once whole; false when its id
    /// exists.
    async fn put_package(
        &self,
        package: &PackageRecord,
        files: Vec<StoredFile>,
    ) -> StoreResult<bool>;
    /// The package, if it belongs to `within` or a department below it.
    async fn get_package(
        &self,
        id: &str,
        within: &Department,
    ) -> StoreResult<Option<PackageRecord>>;
    /// The packages of `within`'s subtree, oldest first.
    async fn list_packages(&self, within: &Department) -> StoreResult<Vec<PackageRecord>>;
    /// Removes a package of `within`'s subtree, its files and its launches; false when
    /// there was none.
    async fn delete_package(&self, id: &str, within: &Department) -> StoreResult<bool>;
    /// One file of a package by its path in the package.
    async fn package_file(&self, package_id: &str, path: &str) -> StoreResult<Option<StoredFile>>;
    /// Records a launch; false when its token hash exists. Expired launches may go.
    async fn put_launch(&self, launch: &LaunchRecord) -> StoreResult<bool>;
    /// The launch of a token hash (expired ones included: the caller checks).
    async fn get_launch(&self, token_hash: &str) -> StoreResult<Option<LaunchRecord>>;
    /// Marks a cmi5 launch's auth token as handed out; true only the first time.
    async fn mark_launch_fetched(&self, token_hash: &str) -> StoreResult<bool>;
}

pub type DynStore = Arc<dyn Store>;

/// For the embedded store, the lock that makes one process its only writer of
/// statements: `serve` holds it while it runs, and `import` takes it too (`stored` values
/// come from one process's clock, and the log's sequencer relies on it). None for MongoDB,
/// which several processes share by design.
pub fn exclusive(spec: &str) -> Result<Option<std::fs::File>, String> {
    let Some(path) = spec.strip_prefix("sqlite:") else {
        return Ok(None);
    };
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    let lock_path = format!("{path}.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {lock_path}: {e}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "the embedded store {path} is in use by another process (a running server?): stop it first"
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {lock_path}: {e}")),
    }
}

/// Opens the store named by `--store`.
/// Statements the embedded store folds into its key index before it opens: a few seconds'
/// work, and more than a crash ever leaves unfolded (the tail holds at most 65,536).
pub const DEFAULT_INDEX_FOLD_AT_OPEN: i64 = 200_000;

/// Settings that tune a backend without changing what it stores.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Embedded store: the write-ahead log is checkpointed and truncated past this size.
    pub wal_limit_bytes: u64,
    /// Embedded store: threads that answer reads, each with its own connection.
    pub readers: usize,
    /// Embedded store: most statements whose keys are folded into the key index before
    /// the store opens; a longer catch-up (an index rebuilt whole, or lost) runs while it
    /// serves, and filtered statement queries answer 503 until it is done.
    pub index_fold_at_open: i64,
    /// MongoDB: how long a transaction that keeps meeting write conflicts is tried
    /// again. A request should not wait long; an import run again right after one was
    /// killed meets the killed one's transaction until the server expires it (60 s by
    /// default), and waits past that.
    pub conflict_retry: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            wal_limit_bytes: 64 << 20,
            readers: default_readers(),
            index_fold_at_open: DEFAULT_INDEX_FOLD_AT_OPEN,
            conflict_retry: std::time::Duration::from_secs(30),
        }
    }
}

/// One reader a core, at least two. Reads are CPU work once the pages they touch are in
/// memory: more readers than cores only took turns on them, and every extra runnable
/// thread stretched the slowest queries (1M statements, W3 on two cores: p99 14–16 ms
/// with eight readers, 9–10 ms with two; docs/PERFORMANCE.md).
pub fn default_readers() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .max(2)
}

pub async fn open(spec: &str) -> Result<DynStore, String> {
    open_with(spec, &StoreOptions::default()).await
}

pub async fn open_with(spec: &str, options: &StoreOptions) -> Result<DynStore, String> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let s = sqlite::SqliteStore::open_with(path, options)
            .map_err(|e| format!("cannot open {spec}: {e}"))?;
        Ok(Arc::new(s))
    } else if spec.starts_with("mongodb://") || spec.starts_with("mongodb+srv://") {
        let s = mongo::MongoStore::open_with(spec, options).await?;
        Ok(Arc::new(s))
    } else {
        Err(format!(
            "unknown store `{spec}`: use sqlite:PATH or mongodb://…"
        ))
    }
}
