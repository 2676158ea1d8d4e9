//! The MongoDB store (production: replica set, Atlas, sharded cluster).
//!
//! Shape of the data (database from the URI path, default `karmayogi_lrs`):
//! - `statements`: `_id` (lowercase id), `json` (the statement exactly as stored, as text:
//!   extension keys with dots or `$`, big numbers and deep nesting come back unchanged),
//!   `stored` (µs), `voided`, `voids` (id voided by a voiding statement), `atts` (sha2 of
//!   the attachments), and the query fields: `q` (the filter keys as strings and, for a
//!   department's statement, its keys within departments as 64-bit hashes; multikey) and `pos`
//!   (`stored` and `_id` in one sortable string: the order and the `more` cursor). A
//!   voided statement gives up `q` and `pos` (its keys move to `vq`, kept for
//!   StatementRefs that inherit them), so no query ever sees it and none needs a
//!   `voided` condition. Indexes: `{q: 1, pos: -1}` (every filter of GET /statements and
//!   its order) and `{pos: -1}` (sparse: the unfiltered order).
//!   A voiding statement whose target has not arrived leaves a placeholder `{_id: target,
//!   ph: true, voided: true}`: the target then arrives voided, and two writers racing on
//!   the same id meet on that one document (a write conflict, retried) instead of both
//!   deciding from a stale read.
//! - `attachments` (`_id` sha2) and `documents` keep contents up to 8 MiB inline, larger
//!   ones in `chunks` of 8 MiB (MongoDB's 16 MB document limit never limits them).
//! - `activities` (`_id` activity id, `def` JSON text), `credentials` (`_id` key).
//!
//! Every write of several documents runs in a transaction (a statement batch with its
//! attachments and definitions; a document's read-decide-write), retried whole on
//! transient errors and write conflicts. Values reach queries only as BSON strings: no
//! user JSON ever becomes a query document, so `{"$where": …}` in a parameter is data.
use super::key_index::key_hash;
use super::*;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document as BsonDoc};
use mongodb::error::{
    Error as MongoError, ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR,
    UNKNOWN_TRANSACTION_COMMIT_RESULT,
};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Database used when the URI names none.
pub const DEFAULT_DATABASE: &str = "karmayogi_lrs";
/// Contents up to this size stay inside their document; larger ones go to `chunks`.
const CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Defaults when the URI sets none (the driver's own are 30 s and 10 s: too long to hold a
/// request before answering 503).
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// MongoDB error codes the store decides on (SecantusDB leaves `codeName` empty).
mod code {
    pub const DUPLICATE_KEY: i32 = 11000;
    pub const WRITE_CONFLICT: i32 = 112;
    pub const NO_SUCH_TRANSACTION: i32 = 251;
    pub const LOCK_TIMEOUT: i32 = 24;
    /// The server is not (or no longer) able to serve: stepping down, shutting down,
    /// not primary, unreachable host, network timeout.
    pub const NOT_SERVING: [i32; 12] = [
        6, 7, 89, 91, 189, 9001, 10058, 10107, 11600, 11602, 13435, 13436,
    ];
}

pub struct MongoStore {
    client: Client,
    db: Database,
    statements: Collection<BsonDoc>,
    attachments: Collection<BsonDoc>,
    chunks: Collection<BsonDoc>,
    activities: Collection<BsonDoc>,
    documents: Collection<BsonDoc>,
    credentials: Collection<BsonDoc>,
    departments: Collection<BsonDoc>,
    /// The audit log (`mongo_log.rs`).
    log_leaves: Collection<BsonDoc>,
    log_hashes: Collection<BsonDoc>,
    log_state: Collection<BsonDoc>,
    log_erasures: Collection<BsonDoc>,
    write_concern: WriteConcern,
    /// How long a transaction that keeps meeting write conflicts is tried again.
    retry_for: Duration,
}

#[path = "mongo_completions.rs"]
mod completions;
#[path = "mongo_documents.rs"]
mod documents;
#[path = "mongo_forwarding.rs"]
mod forwarding;
#[path = "mongo_log.rs"]
mod log;
#[path = "mongo_query.rs"]
mod query;
#[path = "mongo_scorm.rs"]
mod scorm;

pub use query::{plan_stages, position, query_filter};
#[cfg(test)]
use query::{position_floor, POSITION_END, POSITION_MIN};
use query::{query_hint, query_keys, KEYS_INDEX, POS_INDEX, VOIDED_KEYS_INDEX};

// ---------------------------------------------------------------------------------------
// Errors

/// Every code an error carries (command, write, write concern, insert-many write errors),
/// following the `source` chain.
fn error_codes(e: &MongoError) -> Vec<i32> {
    let mut out = Vec::new();
    match e.kind.as_ref() {
        ErrorKind::Command(c) => out.push(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => out.push(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => out.push(w.code),
        ErrorKind::InsertMany(im) => {
            if let Some(errors) = &im.write_errors {
                out.extend(errors.iter().map(|w| w.code));
            }
            if let Some(w) = &im.write_concern_error {
                out.push(w.code);
            }
        }
        _ => {}
    }
    if let Some(src) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<MongoError>()) {
        out.extend(error_codes(src));
    }
    out
}

/// Why the server cannot be used right now, when that is what the error says.
fn unavailable_reason(e: &MongoError) -> Option<String> {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. } => {
            Some("no MongoDB server could be reached within the server selection timeout".into())
        }
        ErrorKind::Io(io) => Some(format!("the connection to MongoDB failed: {io}")),
        ErrorKind::ConnectionPoolCleared { .. } => {
            Some("the connections to MongoDB were reset".into())
        }
        ErrorKind::DnsResolve { message, .. } => Some(format!(
            "the MongoDB host name cannot be resolved: {message}"
        )),
        ErrorKind::Shutdown => Some("the MongoDB client is shut down".into()),
        _ => {
            let codes = error_codes(e);
            codes
                .iter()
                .find(|c| code::NOT_SERVING.contains(c))
                .map(|c| format!("MongoDB is not accepting requests (error code {c})"))
        }
    }
}

fn db_err(e: MongoError) -> StoreError {
    match unavailable_reason(&e) {
        Some(reason) => StoreError::Unavailable(reason),
        None => StoreError::Internal(format!("MongoDB: {e}")),
    }
}

/// Whether the whole transaction may be run again with a fair chance of success.
fn retry_transaction(e: &MongoError) -> bool {
    e.contains_label(TRANSIENT_TRANSACTION_ERROR)
        || error_codes(e).iter().any(|c| {
            matches!(
                *c,
                code::DUPLICATE_KEY
                    | code::WRITE_CONFLICT
                    | code::NO_SUCH_TRANSACTION
                    | code::LOCK_TIMEOUT
            )
        })
}

/// Failure of one attempt of a transaction body.
enum Fail {
    Db(MongoError),
    /// An xAPI rule decided by the caller's closure: ends the transaction, reaches the client.
    Rejected(XapiError),
    /// Stored data that this store did not write the way it reads it.
    Corrupt(String),
}

impl From<MongoError> for Fail {
    fn from(e: MongoError) -> Self {
        Fail::Db(e)
    }
}

type Attempt<T> = Result<T, Fail>;

// ---------------------------------------------------------------------------------------
// Field helpers

fn bin(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

fn get_str<'a>(d: &'a BsonDoc, k: &str) -> Option<&'a str> {
    match d.get(k) {
        Some(Bson::String(s)) => Some(s),
        _ => None,
    }
}

fn get_int(d: &BsonDoc, k: &str) -> Option<i64> {
    match d.get(k) {
        Some(Bson::Int64(n)) => Some(*n),
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Double(f)) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

fn get_bool(d: &BsonDoc, k: &str) -> bool {
    matches!(d.get(k), Some(Bson::Boolean(true)))
}

fn get_strings(d: &BsonDoc, k: &str) -> Vec<String> {
    match d.get(k) {
        Some(Bson::Array(a)) => a
            .iter()
            .filter_map(|b| match b {
                Bson::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn get_bytes<'a>(d: &'a BsonDoc, k: &str) -> Option<&'a [u8]> {
    match d.get(k) {
        Some(Bson::Binary(b)) => Some(&b.bytes),
        _ => None,
    }
}

fn strings(list: &[String]) -> Bson {
    Bson::Array(list.iter().map(|s| Bson::String(s.clone())).collect())
}

/// Name of the index that serves every document read and write. Range reads (a multiple-
/// document GET or DELETE) name it: SecantusDB's planner scans the collection for a range
/// after an equality, MongoDB serves it either way.
const DOCUMENTS_INDEX: &str = "dept_scope_doc";

/// Records of `department`'s subtree: its own, or any below it (two ranges of `dept`).
fn subtree_filter(department: &Department) -> BsonDoc {
    if department.is_root() {
        return doc! {};
    }
    let d = department.as_str();
    doc! { "$or": [
        { "dept": d },
        { "dept": { "$gte": format!("{d}/"), "$lt": format!("{d}0") } },
    ] }
}

/// Filter on the scope keys a multiple-document GET or DELETE addresses.
fn scope_range(department: &Department, scope: &DocumentScope) -> BsonDoc {
    let (lo, hi) = scope.key_range_in(department);
    doc! { "$gte": lo, "$lt": hi }
}

/// The `dept` field of a record: absent (null) in the root, so a database from before
/// departments needs no migration; the department's path elsewhere. It leads the index
/// that is the collections' shard key (`{dept: 1, _id: 1}`; documents `{dept, scope, doc}`).
fn dept_value(department: &Department) -> Bson {
    if department.is_root() {
        Bson::Null
    } else {
        Bson::String(department.as_str().to_owned())
    }
}

/// Adds `dept` to a record of the department that the record key `key` names.
fn set_dept(d: &mut BsonDoc, key: &str) {
    let (_, department) = departments::split_record_key(key);
    if !department.is_root() {
        d.insert("dept", department.as_str());
    }
}

/// Filter on the `_id`s of every department's record of one id.
fn copies_filter(id: &str) -> BsonDoc {
    let (lo, hi) = departments::copies_range(id);
    doc! { "_id": { "$gte": lo, "$lt": hi } }
}

fn chunk_ids(blob: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{blob}/{i:06}")).collect()
}

/// A content as stored: inline, or the chunk list fields.
struct Content {
    fields: BsonDoc,
    chunks: Vec<BsonDoc>,
}

fn content_fields(blob: &str, content: &[u8]) -> Content {
    let mut fields = doc! { "len": content.len() as i64 };
    if content.len() <= CHUNK_BYTES {
        fields.insert("data", bin(content));
        return Content {
            fields,
            chunks: Vec::new(),
        };
    }
    let parts: Vec<&[u8]> = content.chunks(CHUNK_BYTES).collect();
    let ids = chunk_ids(blob, parts.len());
    fields.insert("blob", blob);
    fields.insert("chunks", parts.len() as i64);
    let chunks = ids
        .into_iter()
        .zip(parts)
        .map(|(id, part)| doc! { "_id": id, "data": bin(part) })
        .collect();
    Content { fields, chunks }
}

fn stored_statement(d: &BsonDoc) -> Option<StoredStatement> {
    Some(StoredStatement {
        id: get_str(d, "_id")?.to_owned(),
        json: get_str(d, "json")?.to_owned(),
        stored_us: get_int(d, "stored")?,
        voided: get_bool(d, "voided"),
        attachment_sha2: get_strings(d, "atts"),
    })
}

fn credential(d: &BsonDoc) -> Option<CredentialRecord> {
    Some(CredentialRecord {
        key: get_str(d, "_id")?.to_owned(),
        secret_hash: get_str(d, "secret_hash")?.to_owned(),
        name: get_str(d, "name").unwrap_or("").to_owned(),
        scopes: get_strings(d, "scopes"),
        created_us: get_int(d, "created").unwrap_or(0),
        revoked: get_bool(d, "revoked"),
        department: get_str(d, "dept")
            .and_then(|p| Department::parse(p).ok())
            .unwrap_or_default(),
    })
}

/// The URI without its credentials, for messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &uri[..s], &uri[at + 1..]),
        _ => uri.to_owned(),
    }
}

/// Reads every document of a find inside a session.
async fn find_all(
    coll: &Collection<BsonDoc>,
    filter: BsonDoc,
    projection: Option<BsonDoc>,
    session: &mut ClientSession,
) -> Result<Vec<BsonDoc>, MongoError> {
    let mut cursor = coll
        .find(filter)
        .with_options(
            mongodb::options::FindOptions::builder()
                .projection(projection)
                .build(),
        )
        .session(&mut *session)
        .await?;
    let mut out = Vec::new();
    while let Some(d) = cursor.next(&mut *session).await {
        out.push(d?);
    }
    Ok(out)
}

/// One statement of a batch while the batch is being prepared.
struct Pending<'a> {
    record: &'a StatementRecord,
    keys: Vec<String>,
    voided: bool,
}

/// A statement already stored that a batch voids or inherits keys from.
struct Target {
    placeholder: bool,
    voided: bool,
    voiding: bool,
    keys: Vec<String>,
}

impl MongoStore {
    /// Connects, checks that the server answers and runs transactions (a replica set or a
    /// sharded cluster), and creates the indexes (idempotent).
    pub async fn open(uri: &str) -> Result<MongoStore, String> {
        Self::open_with(uri, &super::StoreOptions::default()).await
    }

    /// Opens with `options` (`conflict_retry` is what applies here).
    pub async fn open_with(
        uri: &str,
        store_options: &super::StoreOptions,
    ) -> Result<MongoStore, String> {
        let shown = redact(uri);
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| format!("invalid MongoDB URI {shown}: {e}"))?;
        if options.app_name.is_none() {
            options.app_name = Some("karmayogi-lrs".into());
        }
        if options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(SERVER_SELECTION_TIMEOUT);
        }
        if options.connect_timeout.is_none() {
            options.connect_timeout = Some(CONNECT_TIMEOUT);
        }
        // Durable before acknowledged: majority + journal unless the URI says otherwise.
        let mut wc = options.write_concern.clone().unwrap_or_default();
        if wc.w.is_none() {
            wc.w = Some(Acknowledgment::Majority);
        }
        if wc.journal.is_none() {
            wc.journal = Some(true);
        }
        options.write_concern = Some(wc.clone());
        let database = options
            .default_database
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let hosts: Vec<String> = options.hosts.iter().map(|h| h.to_string()).collect();
        let selection = options
            .server_selection_timeout
            .unwrap_or(SERVER_SELECTION_TIMEOUT);
        let client = Client::with_options(options)
            .map_err(|e| format!("cannot set up the MongoDB client for {shown}: {e}"))?;
        let db = client.database(&database);
        let hello = db.run_command(doc! { "hello": 1 }).await.map_err(|e| {
            if let ErrorKind::Authentication { message, .. } = e.kind.as_ref() {
                return format!(
                    "MongoDB at {} refused the credentials of the URI: {message}",
                    hosts.join(",")
                );
            }
            format!(
                "cannot reach MongoDB at {} (database `{database}`) within {selection:?}. \
                 Check the URI, that the server runs, and the network. The driver said: {}",
                hosts.join(","),
                e.kind
            )
        })?;
        let replica_set = hello.get_str("setName").is_ok();
        let router = hello.get_str("msg").is_ok_and(|m| m == "isdbgrid");
        if !replica_set && !router {
            return Err(format!(
                "MongoDB at {} is a standalone server: the LRS needs transactions, so a replica \
                 set (a single-node one will do: mongod --replSet rs0, then rs.initiate()) or a \
                 sharded cluster",
                hosts.join(",")
            ));
        }
        let store = MongoStore {
            statements: db.collection("statements"),
            attachments: db.collection("attachments"),
            chunks: db.collection("chunks"),
            activities: db.collection("activities"),
            documents: db.collection("documents"),
            credentials: db.collection("credentials"),
            departments: db.collection("departments"),
            log_leaves: db.collection("audit_leaves"),
            log_hashes: db.collection("audit_hashes"),
            log_state: db.collection("audit_state"),
            log_erasures: db.collection("audit_erasures"),
            client,
            db,
            write_concern: wc,
            retry_for: store_options.conflict_retry,
        };
        store
            .create_indexes()
            .await
            .map_err(|e| format!("cannot create the indexes in `{database}`: {e}"))?;
        store
            .backfill_feed()
            .await
            .map_err(|e| format!("cannot prepare the change feed in `{database}`: {e}"))?;
        store
            .backfill_keys_within()
            .await
            .map_err(|e| format!("cannot add the keys within departments in `{database}`: {e}"))?;
        tracing::info!(
            "MongoDB store: {} database `{database}`, write concern {}",
            hosts.join(","),
            describe_write_concern(&store.write_concern)
        );
        Ok(store)
    }

    async fn create_indexes(&self) -> Result<(), MongoError> {
        let index = |keys: BsonDoc, name: &str, sparse: bool, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .sparse(sparse.then_some(true))
                        .unique(unique.then_some(true))
                        .build(),
                )
                .build()
        };
        // `dept_id` is the shard key of a cluster sharded by department (README).
        let dept_id = || index(doc! { "dept": 1, "_id": 1 }, "dept_id", false, false);
        self.statements
            .create_indexes([
                index(doc! { "q": 1, "pos": -1 }, KEYS_INDEX, false, false),
                index(doc! { "pos": -1 }, POS_INDEX, true, false),
                index(doc! { "vq": 1 }, VOIDED_KEYS_INDEX, true, false),
                dept_id(),
            ])
            .await?;
        self.attachments.create_indexes([dept_id()]).await?;
        self.activities.create_indexes([dept_id()]).await?;
        // Every document read and write names its department first. (Before departments
        // the unique index was `scope_doc`; a unique index of a collection sharded by
        // department must lead with `dept`, so it is replaced.)
        self.documents
            .create_indexes([index(
                doc! { "dept": 1, "scope": 1, "doc": 1 },
                DOCUMENTS_INDEX,
                false,
                true,
            )])
            .await?;
        if let Err(e) = self.documents.drop_index("scope_doc").await {
            // Absent in databases made since: nothing to drop.
            tracing::debug!("no index scope_doc to drop: {e}");
        }
        // Statements the log has not taken yet carry `lq` (sparse: logged ones drop out).
        self.statements
            .create_indexes([index(
                doc! { "lq": 1, "stored": 1, "_id": 1 },
                log::UNLOGGED_INDEX,
                true,
                false,
            )])
            .await?;
        self.log_leaves
            .create_indexes([
                index(doc! { "s": 1 }, log::LEAF_STATEMENT_INDEX, true, false),
                index(doc! { "x": 1 }, log::LEAF_ERASURE_INDEX, true, false),
                index(doc! { "k": 1, "_id": 1 }, log::LEAF_FEED_INDEX, true, false),
            ])
            .await?;
        self.start_log().await?;
        self.start_completions().await?;
        self.start_scorm().await?;
        Ok(())
    }

    /// Runs `op` in a transaction until it commits, is rejected, or fails for good.
    async fn transaction(&self, op: Op<'_>) -> StoreResult<Done> {
        self.transaction_for(op, self.retry_for).await
    }

    /// As `transaction`, retrying write conflicts for `retry_for` only.
    async fn transaction_for(&self, op: Op<'_>, retry_for: Duration) -> StoreResult<Done> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            // A fresh session per attempt: a failed one is dropped, and the driver aborts
            // its transaction in the background (no wait on a server that is gone).
            let mut session = self.client.start_session().await.map_err(db_err)?;
            session
                .start_transaction()
                .write_concern(self.write_concern.clone())
                .await
                .map_err(db_err)?;
            let result = match &op {
                Op::Insert(batch) => self.insert_body(&mut session, batch).await,
                Op::Update(key, update) => self.update_body(&mut session, key, update).await,
                Op::DeleteScope(department, scope) => {
                    self.delete_scope_body(&mut session, department, scope)
                        .await
                }
                Op::Erase(erasure) => self.erase_body(&mut session, erasure).await,
                Op::Project(write, prepared) => {
                    self.project_body(&mut session, write, prepared).await
                }
                Op::MarkLogged(keys, erasures) => {
                    self.mark_logged_body(&mut session, keys, erasures).await
                }
            };
            let error = match result {
                Ok((done, false)) => {
                    let _ = session.abort_transaction().await;
                    return Ok(done);
                }
                Ok((done, true)) => match commit(&mut session).await {
                    Ok(()) => return Ok(done),
                    Err(e) => e,
                },
                Err(Fail::Db(e)) => e,
                Err(Fail::Rejected(x)) => {
                    let _ = session.abort_transaction().await;
                    return Err(StoreError::Rejected(x));
                }
                Err(Fail::Corrupt(m)) => {
                    let _ = session.abort_transaction().await;
                    return Err(StoreError::Internal(m));
                }
            };
            drop(session);
            let unavailable = unavailable_reason(&error).is_some();
            let no_server = matches!(error.kind.as_ref(), ErrorKind::ServerSelection { .. });
            // A lost connection is retried once (a failover, a restarted server), but not
            // when no server could be selected at all (that already waited for one); write
            // conflicts and duplicate keys are retried until `retry_for` has passed.
            let again = retry_transaction(&error)
                && started.elapsed() < retry_for
                && !no_server
                && (!unavailable || attempt < 2);
            if !again {
                if retry_transaction(&error) && !unavailable {
                    return Err(StoreError::Busy(format!(
                        "still conflicting after {attempt} attempts in {:.1} s: {error}",
                        started.elapsed().as_secs_f64()
                    )));
                }
                return Err(db_err(error));
            }
            tracing::debug!("MongoDB transaction attempt {attempt} will be retried: {error}");
            let pause = {
                use rand::Rng;
                let cap = 2u64.saturating_pow(attempt.min(7)).min(100);
                rand::thread_rng().gen_range(1..=cap)
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    async fn insert_body(
        &self,
        s: &mut ClientSession,
        batch: &StatementBatch,
    ) -> Attempt<(Done, bool)> {
        let records = &batch.records;
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let in_batch: HashSet<&str> = ids.iter().copied().collect();

        // 1. Ids already stored: nothing is written, the caller compares.
        let found = find_all(
            &self.statements,
            doc! { "_id": { "$in": &ids } },
            Some(doc! { "json": 1, "ph": 1 }),
            s,
        )
        .await?;
        let mut placeholders = HashSet::new();
        let mut existing = HashMap::new();
        for d in &found {
            let Some(id) = get_str(d, "_id") else {
                continue;
            };
            if get_bool(d, "ph") {
                placeholders.insert(id.to_owned());
            } else {
                let json = get_str(d, "json")
                    .ok_or_else(|| Fail::Corrupt(format!("statement {id} has no json")))?;
                existing.insert(id.to_owned(), json.to_owned());
            }
        }
        if !existing.is_empty() {
            let list = records
                .iter()
                .filter_map(|r| existing.get(&r.id).map(|j| (r.id.clone(), j.clone())))
                .collect();
            return Ok((Done::Existing(list), false));
        }

        // 2. Stored statements this batch voids or inherits keys from.
        let mut wanted: Vec<&str> = records
            .iter()
            .flat_map(|r| [r.voids.as_deref(), r.inherits_keys_of.as_deref()])
            .flatten()
            .filter(|t| !in_batch.contains(t))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut targets: HashMap<String, Target> = HashMap::new();
        if !wanted.is_empty() {
            for d in find_all(
                &self.statements,
                doc! { "_id": { "$in": &wanted } },
                Some(doc! { "q": 1, "vq": 1, "voids": 1, "voided": 1, "ph": 1 }),
                s,
            )
            .await?
            {
                let Some(id) = get_str(&d, "_id") else {
                    continue;
                };
                let mut keys = get_strings(&d, "q");
                keys.extend(get_strings(&d, "vq"));
                targets.insert(
                    id.to_owned(),
                    Target {
                        placeholder: get_bool(&d, "ph"),
                        voided: get_bool(&d, "voided"),
                        voiding: d.contains_key("voids"),
                        keys,
                    },
                );
            }
        }

        // 3. The batch in order, as the embedded store applies it.
        let mut pending: Vec<Pending<'_>> = Vec::with_capacity(records.len());
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(records.len());
        let mut voided_in_batch: HashSet<&str> = HashSet::new();
        let mut void_stored: Vec<&str> = Vec::new();
        let mut new_placeholders: Vec<&str> = Vec::new();
        for r in records {
            let mut keys = r.keys.clone();
            if let Some(t) = r.inherits_keys_of.as_deref() {
                if let Some(&j) = index.get(t) {
                    keys.extend(pending[j].keys.iter().cloned());
                } else if let Some(target) = targets.get(t) {
                    keys.extend(target.keys.iter().cloned());
                }
            }
            keys.retain(|k| !departments::is_key_within(k));
            keys.sort();
            keys.dedup();
            let voided = r.voids.is_none()
                && (placeholders.contains(&r.id) || voided_in_batch.contains(r.id.as_str()));
            index.insert(&r.id, pending.len());
            pending.push(Pending {
                record: r,
                keys,
                voided,
            });
            if let Some(t) = r.voids.as_deref() {
                voided_in_batch.insert(t);
                if let Some(&j) = index.get(t) {
                    if pending[j].record.voids.is_none() {
                        pending[j].voided = true;
                    }
                } else if !in_batch.contains(t) {
                    match targets.get(t) {
                        Some(target) => {
                            if !target.placeholder
                                && !target.voided
                                && !target.voiding
                                && !void_stored.contains(&t)
                            {
                                void_stored.push(t);
                            }
                        }
                        None => {
                            if !new_placeholders.contains(&t) {
                                new_placeholders.push(t);
                            }
                        }
                    }
                }
            }
        }

        // 4. Writes.
        if !placeholders.is_empty() {
            let ph: Vec<&String> = placeholders.iter().collect();
            self.statements
                .delete_many(doc! { "_id": { "$in": ph }, "ph": true })
                .session(&mut *s)
                .await?;
        }
        let docs: Vec<BsonDoc> = pending
            .iter()
            .map(|p| {
                let r = p.record;
                let mut d = doc! {
                    "_id": &r.id,
                    "json": &r.json,
                    "stored": r.stored_us,
                    "voided": p.voided,
                    "atts": strings(&r.attachment_sha2),
                    // Not yet in the audit log (the sequencer removes it).
                    "lq": true,
                };
                if let Some(seal) = &r.seal {
                    d.insert("salt", bin(&seal.salt));
                    d.insert("cm", bin(&seal.commitment));
                }
                set_dept(&mut d, &r.id);
                if let Some(v) = &r.voids {
                    d.insert("voids", v.clone());
                }
                if p.voided {
                    d.insert("vq", strings(&p.keys));
                } else {
                    d.insert("q", query_keys(&p.keys));
                    d.insert("pos", position(r.stored_us, &r.id));
                }
                d
            })
            .collect();
        self.statements.insert_many(docs).session(&mut *s).await?;
        for t in void_stored {
            let mut keys = targets.get(t).map(|x| x.keys.clone()).unwrap_or_default();
            // `vq` is searched by plain keys only (`query_statements`).
            keys.retain(|k| !departments::is_key_within(k));
            self.statements
                .update_one(
                    doc! { "_id": t, "voids": { "$exists": false } },
                    doc! {
                        "$set": { "voided": true, "vq": strings(&keys) },
                        "$unset": { "q": "", "pos": "" },
                    },
                )
                .session(&mut *s)
                .await?;
        }
        if !new_placeholders.is_empty() {
            let docs: Vec<BsonDoc> = new_placeholders
                .iter()
                .map(|t| {
                    let mut d = doc! { "_id": *t, "ph": true, "voided": true };
                    set_dept(&mut d, t);
                    d
                })
                .collect();
            self.statements.insert_many(docs).session(&mut *s).await?;
        }

        // 5. Attachment contents, once per sha2.
        let mut seen = HashSet::new();
        let atts: Vec<&AttachmentContent> = batch
            .attachments
            .iter()
            .filter(|a| seen.insert(a.sha2.as_str()))
            .collect();
        if !atts.is_empty() {
            let hashes: Vec<&str> = atts.iter().map(|a| a.sha2.as_str()).collect();
            let have: HashSet<String> = find_all(
                &self.attachments,
                doc! { "_id": { "$in": &hashes } },
                Some(doc! { "_id": 1 }),
                s,
            )
            .await?
            .iter()
            .filter_map(|d| get_str(d, "_id").map(str::to_owned))
            .collect();
            let mut metas = Vec::new();
            let mut chunks = Vec::new();
            for a in atts.into_iter().filter(|a| !have.contains(&a.sha2)) {
                let c = content_fields(&format!("a/{}", a.sha2), &a.content);
                let mut meta = doc! { "_id": &a.sha2, "ct": &a.content_type };
                set_dept(&mut meta, &a.sha2);
                meta.extend(c.fields);
                metas.push(meta);
                chunks.extend(c.chunks);
            }
            for chunk in chunks {
                // One at a time: each is up to 8 MiB.
                self.chunks.insert_one(chunk).session(&mut *s).await?;
            }
            for meta in metas {
                self.attachments.insert_one(meta).session(&mut *s).await?;
            }
        }

        // 6. Activity definitions, merged in batch order; written when they changed.
        if !batch.definitions.is_empty() {
            let mut ids: Vec<&str> = batch.definitions.iter().map(|(i, _)| i.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut current: HashMap<String, Option<Value>> = HashMap::new();
            for d in find_all(&self.activities, doc! { "_id": { "$in": &ids } }, None, s).await? {
                if let Some(id) = get_str(&d, "_id") {
                    let def = get_str(&d, "def").and_then(|j| serde_json::from_str(j).ok());
                    current.insert(id.to_owned(), def);
                }
            }
            let before = current.clone();
            for (id, def) in &batch.definitions {
                let old = current.get(id).cloned().flatten();
                let merged = (batch.merge_definition)(old, def);
                current.insert(id.clone(), Some(merged));
            }
            for id in ids {
                let now = current.get(id).cloned().flatten();
                let was = before.get(id).cloned().flatten();
                if let Some(def) = now.filter(|n| Some(n) != was.as_ref()) {
                    let mut record = doc! { "_id": id, "def": def.to_string() };
                    set_dept(&mut record, id);
                    self.activities
                        .replace_one(doc! { "_id": id }, record)
                        .upsert(true)
                        .session(&mut *s)
                        .await?;
                }
            }
        }
        Ok((Done::Inserted, true))
    }
}

/// Commits, retrying while the outcome is unknown (the commit is idempotent).
async fn commit(session: &mut ClientSession) -> Result<(), MongoError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match session.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) && tries < 4 => {
                tokio::time::sleep(Duration::from_millis(20 * tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn describe_write_concern(wc: &WriteConcern) -> String {
    let w = match &wc.w {
        Some(Acknowledgment::Majority) => "majority".to_owned(),
        Some(Acknowledgment::Nodes(n)) => n.to_string(),
        Some(Acknowledgment::Custom(t)) => t.clone(),
        Some(other) => format!("{other:?}"),
        None => "server default".to_owned(),
    };
    let mut s = format!("w={w}, journal={}", wc.journal.unwrap_or(false));
    if let Some(t) = wc.w_timeout {
        s.push_str(&format!(", wtimeout={}ms", t.as_millis()));
    }
    s
}

/// A write that runs as one transaction.
enum Op<'a> {
    Insert(&'a StatementBatch),
    Update(&'a DocumentKey, &'a DocumentUpdate),
    DeleteScope(&'a Department, &'a DocumentScope),
    Erase(&'a Erasure),
    /// A projection step and what was read for it outside the transaction.
    Project(&'a ProjectionWrite, &'a completions::PreparedProjection),
    /// Statement keys and erasures now in the audit log: their marks cleared.
    MarkLogged(&'a [String], &'a [i64]),
}

/// What a transaction gives back.
enum Done {
    Inserted,
    Existing(Vec<(String, String)>),
    Document(Option<Document>),
    Unit,
    Erased(Erased),
    Bool(bool),
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Internal(format!("unexpected transaction result for {what}"))
}

fn fail(f: Fail) -> StoreError {
    match f {
        Fail::Db(e) => db_err(e),
        Fail::Rejected(x) => StoreError::Rejected(x),
        Fail::Corrupt(m) => StoreError::Internal(m),
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn insert_statements(&self, batch: StatementBatch) -> StoreResult<InsertOutcome> {
        match self.transaction(Op::Insert(&batch)).await? {
            Done::Inserted => Ok(InsertOutcome::Inserted),
            Done::Existing(list) => Ok(InsertOutcome::Existing(list)),
            _ => Err(unexpected("insert")),
        }
    }

    async fn get_statement_copies(&self, id: &str) -> StoreResult<Vec<StoredStatement>> {
        let mut cursor = self
            .statements
            .find(copies_filter(id))
            .projection(doc! { "json": 1, "stored": 1, "voided": 1, "atts": 1, "ph": 1 })
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            if get_bool(&d, "ph") {
                continue;
            }
            out.push(stored_statement(&d).ok_or_else(|| {
                StoreError::Internal(format!("a statement with id {id} is malformed"))
            })?);
        }
        Ok(out)
    }

    async fn query_statements(&self, query: &StatementQuery) -> StoreResult<Vec<StoredStatement>> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let (filter, sort) = query_filter(query);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let mut cursor = self
            .statements
            .find(filter)
            .sort(sort)
            .limit(limit)
            .batch_size(u32::try_from(query.limit).unwrap_or(u32::MAX))
            .projection(doc! { "json": 1, "stored": 1, "voided": 1, "atts": 1 })
            .hint(mongodb::options::Hint::Name(query_hint(query).to_owned()))
            .await
            .map_err(db_err)?;
        let mut out = Vec::with_capacity(query.limit.min(1024));
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            out.push(
                stored_statement(&d).ok_or_else(|| {
                    StoreError::Internal("a stored statement is malformed".into())
                })?,
            );
        }
        if query.include_voided && !query.keys.is_empty() {
            // Voided statements keep their keys in `vq` (and have no `pos`): found through
            // their own sparse index, in no particular order (erasure takes them all).
            let mut voided = self
                .statements
                .find(doc! { "vq": { "$all": strings(&query.keys) } })
                .limit(limit)
                .projection(doc! { "json": 1, "stored": 1, "voided": 1, "atts": 1 })
                .hint(mongodb::options::Hint::Name(VOIDED_KEYS_INDEX.to_owned()))
                .await
                .map_err(db_err)?;
            while voided.advance().await.map_err(db_err)? {
                let d: BsonDoc = voided.deserialize_current().map_err(db_err)?;
                out.push(stored_statement(&d).ok_or_else(|| {
                    StoreError::Internal("a stored statement is malformed".into())
                })?);
            }
        }
        Ok(out)
    }

    async fn get_attachments(&self, sha2: &[String]) -> StoreResult<Vec<AttachmentContent>> {
        if sha2.is_empty() {
            return Ok(Vec::new());
        }
        let mut cursor = self
            .attachments
            .find(doc! { "_id": { "$in": sha2 } })
            .await
            .map_err(db_err)?;
        let mut metas: HashMap<String, BsonDoc> = HashMap::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            if let Some(id) = get_str(&d, "_id") {
                metas.insert(id.to_owned(), d);
            }
        }
        let mut out = Vec::with_capacity(metas.len());
        for h in sha2 {
            if let Some(d) = metas.get(h) {
                out.push(AttachmentContent {
                    sha2: h.clone(),
                    content_type: get_str(d, "ct").unwrap_or("").to_owned(),
                    content: self.content(d, None).await.map_err(fail)?,
                });
            }
        }
        Ok(out)
    }

    async fn get_activity_definitions(
        &self,
        activity_id: &str,
    ) -> StoreResult<Vec<(String, Value)>> {
        let mut cursor = self
            .activities
            .find(copies_filter(activity_id))
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            if let (Some(k), Some(def)) = (
                get_str(&d, "_id"),
                get_str(&d, "def").and_then(|j| serde_json::from_str(j).ok()),
            ) {
                out.push((k.to_owned(), def));
            }
        }
        Ok(out)
    }

    async fn get_document(&self, key: &DocumentKey) -> StoreResult<Option<Document>> {
        let filter = doc! {
            "dept": dept_value(&key.department),
            "scope": key.scope_key(),
            "doc": &key.document_id,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let found = self
                .documents
                .find_one(filter.clone())
                .await
                .map_err(db_err)?;
            let Some(d) = found else {
                return Ok(None);
            };
            match self.stored_document(&d, None).await {
                Ok(doc) => return Ok(Some(doc)),
                // A chunked document replaced between reading its record and its chunks:
                // read the new one.
                Err(Fail::Corrupt(_)) if attempt < 3 => continue,
                Err(f) => return Err(fail(f)),
            }
        }
    }

    async fn list_documents(
        &self,
        department: &Department,
        scope: &DocumentScope,
        since_us: Option<i64>,
    ) -> StoreResult<Vec<String>> {
        let mut filter =
            doc! { "dept": dept_value(department), "scope": scope_range(department, scope) };
        if let Some(since) = since_us {
            filter.insert("updated", doc! { "$gt": since });
        }
        let mut cursor = self
            .documents
            .find(filter)
            .hint(mongodb::options::Hint::Name(DOCUMENTS_INDEX.to_owned()))
            .sort(doc! { "doc": 1 })
            .projection(doc! { "doc": 1 })
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            if let Some(id) = get_str(&d, "doc") {
                out.push(id.to_owned());
            }
        }
        // One id may exist under several registrations of the same Activity and Agent.
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn update_document(
        &self,
        key: &DocumentKey,
        update: DocumentUpdate,
    ) -> StoreResult<Option<Document>> {
        match self.transaction(Op::Update(key, &update)).await? {
            Done::Document(d) => Ok(d),
            _ => Err(unexpected("document update")),
        }
    }

    async fn delete_documents(
        &self,
        department: &Department,
        scope: &DocumentScope,
    ) -> StoreResult<()> {
        match self.transaction(Op::DeleteScope(department, scope)).await? {
            Done::Unit => Ok(()),
            _ => Err(unexpected("document delete")),
        }
    }

    async fn has_documents_in(&self, department: &Department) -> StoreResult<bool> {
        let found = self
            .documents
            .find_one(subtree_filter(department))
            .projection(doc! { "_id": 1 })
            .await
            .map_err(db_err)?;
        Ok(found.is_some())
    }

    async fn put_department(&self, d: &DepartmentRecord) -> StoreResult<bool> {
        match self
            .departments
            .insert_one(doc! { "_id": d.path.as_str(), "created": d.created_us })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if error_codes(&e).contains(&code::DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn get_department(&self, path: &Department) -> StoreResult<Option<DepartmentRecord>> {
        let found = self
            .departments
            .find_one(doc! { "_id": path.as_str() })
            .await
            .map_err(db_err)?;
        Ok(found.map(|d| DepartmentRecord {
            path: path.clone(),
            created_us: get_int(&d, "created").unwrap_or(0),
            limits: crate::quota::DepartmentLimits::from_stored(get_str(&d, "limits")),
        }))
    }

    async fn set_department_limits(
        &self,
        path: &Department,
        limits: &crate::quota::DepartmentLimits,
    ) -> StoreResult<bool> {
        let r = self
            .departments
            .update_one(
                doc! { "_id": path.as_str() },
                doc! { "$set": { "limits": limits.to_json().to_string() } },
            )
            .await
            .map_err(db_err)?;
        Ok(r.matched_count > 0)
    }

    async fn list_departments(&self) -> StoreResult<Vec<DepartmentRecord>> {
        let mut cursor = self
            .departments
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            if let Some(path) = get_str(&d, "_id").and_then(|p| Department::parse(p).ok()) {
                out.push(DepartmentRecord {
                    path,
                    created_us: get_int(&d, "created").unwrap_or(0),
                    limits: crate::quota::DepartmentLimits::from_stored(get_str(&d, "limits")),
                });
            }
        }
        Ok(out)
    }

    async fn remove_department(&self, path: &Department) -> StoreResult<bool> {
        let r = self
            .departments
            .delete_one(doc! { "_id": path.as_str() })
            .await
            .map_err(db_err)?;
        Ok(r.deleted_count > 0)
    }

    async fn put_credential(&self, c: &CredentialRecord) -> StoreResult<()> {
        self.credentials
            .update_one(
                doc! { "_id": &c.key },
                doc! {
                    "$set": {
                        "secret_hash": &c.secret_hash,
                        "name": &c.name,
                        "scopes": strings(&c.scopes),
                        "revoked": c.revoked,
                        "dept": c.department.as_str(),
                    },
                    "$setOnInsert": { "created": c.created_us },
                },
            )
            .upsert(true)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_credential(&self, key: &str) -> StoreResult<Option<CredentialRecord>> {
        let found = self
            .credentials
            .find_one(doc! { "_id": key })
            .await
            .map_err(db_err)?;
        Ok(found.as_ref().and_then(credential))
    }

    async fn list_credentials(&self) -> StoreResult<Vec<CredentialRecord>> {
        let mut cursor = self
            .credentials
            .find(doc! {})
            .sort(doc! { "created": 1, "_id": 1 })
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            if let Some(c) = credential(&d) {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn revoke_credential(&self, key: &str) -> StoreResult<bool> {
        let r = self
            .credentials
            .update_one(doc! { "_id": key }, doc! { "$set": { "revoked": true } })
            .await
            .map_err(db_err)?;
        Ok(r.matched_count > 0)
    }

    async fn log_state(&self) -> StoreResult<LogState> {
        self.read_log_state().await
    }

    async fn unlogged_statements(
        &self,
        horizon_us: i64,
        limit: usize,
    ) -> StoreResult<Vec<UnloggedStatement>> {
        self.read_unlogged(horizon_us, limit).await
    }

    async fn pending_erasures(&self) -> StoreResult<Vec<PendingErasure>> {
        self.read_pending_erasures().await
    }

    async fn append_log(&self, append: LogAppend) -> StoreResult<bool> {
        self.append_log_unshared(&append).await
    }

    async fn log_hashes(&self, indexes: Vec<u64>) -> StoreResult<Vec<Hash>> {
        self.read_log_hashes(indexes).await
    }

    async fn log_entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>> {
        self.read_log_entries(start, end).await
    }

    async fn put_checkpoint(&self, size: u64, note: String) -> StoreResult<()> {
        self.write_checkpoint(size, note).await
    }

    async fn statement_log(&self, key: &str) -> StoreResult<Option<StatementLog>> {
        self.read_statement_log(key).await
    }

    async fn statement_at_leaf(
        &self,
        index: u64,
    ) -> StoreResult<Option<(String, StoredStatement, [u8; 32])>> {
        self.read_statement_at_leaf(index).await
    }

    async fn sequencer_lease(&self, holder: &str, now_us: i64, ttl_us: i64) -> StoreResult<bool> {
        self.take_lease(holder, now_us, ttl_us).await
    }

    async fn feed(
        &self,
        subtree: &Department,
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<FeedPage> {
        self.read_feed(subtree, from, to, limit).await
    }

    async fn lease(&self, name: &str, holder: &str, now_us: i64, ttl_us: i64) -> StoreResult<bool> {
        self.take_named_lease(name, holder, now_us, ttl_us).await
    }

    async fn erase(&self, erasure: Erasure) -> StoreResult<Erased> {
        match self.transaction(Op::Erase(&erasure)).await? {
            Done::Erased(e) => Ok(e),
            _ => Err(unexpected("erasure")),
        }
    }

    async fn completions_position(&self) -> StoreResult<u64> {
        self.read_completions_position().await
    }

    async fn learner_rows(&self, keys: Vec<RowKey>) -> StoreResult<Vec<(RowKey, String)>> {
        self.read_learner_rows(keys).await
    }

    async fn voided_among(&self, keys: Vec<String>) -> StoreResult<Vec<String>> {
        self.read_voided_among(keys).await
    }

    async fn project_completions(&self, write: ProjectionWrite) -> StoreResult<bool> {
        let Some(prepared) = self.prepare_projection(&write).await? else {
            return Ok(false);
        };
        match self.transaction(Op::Project(&write, &prepared)).await? {
            Done::Bool(b) => Ok(b),
            _ => Err(unexpected("projection")),
        }
    }

    async fn completion_figures(&self, query: FiguresQuery) -> StoreResult<Vec<FigureRow>> {
        self.read_figures(query).await
    }

    async fn close(&self) {
        self.client.clone().shutdown().immediate(true).await;
    }

    async fn put_forwarding_rule(&self, rule: &ForwardingRule) -> StoreResult<bool> {
        self.forwarding_put(rule).await
    }
    async fn get_forwarding_rule(&self, id: &str) -> StoreResult<Option<ForwardingRecord>> {
        self.forwarding_get(id).await
    }
    async fn list_forwarding_rules(&self) -> StoreResult<Vec<ForwardingRecord>> {
        self.forwarding_list().await
    }
    async fn delete_forwarding_rule(&self, id: &str) -> StoreResult<bool> {
        self.forwarding_delete(id).await
    }
    async fn save_forwarding_state(&self, id: &str, state: &DeliveryState) -> StoreResult<bool> {
        self.forwarding_save(id, state).await
    }

    async fn put_package(
        &self,
        package: &PackageRecord,
        files: Vec<StoredFile>,
    ) -> StoreResult<bool> {
        self.scorm_put_package(package, files).await
    }
    async fn get_package(
        &self,
        id: &str,
        within: &Department,
    ) -> StoreResult<Option<PackageRecord>> {
        self.scorm_get_package(id, within).await
    }
    async fn list_packages(&self, within: &Department) -> StoreResult<Vec<PackageRecord>> {
        self.scorm_list_packages(within).await
    }
    async fn delete_package(&self, id: &str, within: &Department) -> StoreResult<bool> {
        self.scorm_delete_package(id, within).await
    }
    async fn package_file(&self, package_id: &str, path: &str) -> StoreResult<Option<StoredFile>> {
        self.scorm_package_file(package_id, path).await
    }
    async fn put_launch(&self, launch: &LaunchRecord) -> StoreResult<bool> {
        self.scorm_put_launch(launch).await
    }
    async fn get_launch(&self, token_hash: &str) -> StoreResult<Option<LaunchRecord>> {
        self.scorm_get_launch(token_hash).await
    }
    async fn mark_launch_fetched(&self, token_hash: &str) -> StoreResult<bool> {
        self.scorm_mark_fetched(token_hash).await
    }
}

#[cfg(test)]
#[path = "mongo_tests.rs"]
mod tests;
