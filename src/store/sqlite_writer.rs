//! The embedded store's writer thread: group commit of every write, each in its own
//! savepoint; statements, their filter keys for the key index, activity definitions,
//! documents, credentials, erasures.
use super::*;

/// Most writes folded into one commit.
const MAX_GROUP: usize = 512;

/// A statement's filter keys as the writer stores them, derived before the batch
/// reaches the (serial) writer thread.
pub(super) struct RowKeys {
    /// Sorted, distinct, newline-separated: the `keys` column.
    text: String,
    hashes: Box<[i64]>,
}

impl RowKeys {
    pub(super) fn of(mut keys: Vec<String>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        RowKeys {
            hashes: key_index::index_hashes(&keys),
            text: keys.join("\n"),
        }
    }
}

pub(super) enum WriteOp {
    Insert(
        StatementBatch,
        Vec<RowKeys>,
        oneshot::Sender<StoreResult<InsertOutcome>>,
    ),
    UpdateDocument(
        DocumentKey,
        DocumentUpdate,
        oneshot::Sender<StoreResult<Option<Document>>>,
    ),
    DeleteDocuments(Department, DocumentScope, oneshot::Sender<StoreResult<()>>),
    PutCredential(CredentialRecord, oneshot::Sender<StoreResult<()>>),
    RevokeCredential(String, oneshot::Sender<StoreResult<bool>>),
    Erase(Erasure, oneshot::Sender<StoreResult<Erased>>),
    /// A small administrative write (departments) with a yes/no answer.
    Admin(AdminWrite, oneshot::Sender<StoreResult<bool>>),
}

type AdminWrite = Box<dyn FnOnce(&Transaction<'_>) -> rusqlite::Result<bool> + Send>;

/// A failed begin or commit of the writer's transaction, kept typed for every reply.
#[derive(Debug, Clone)]
struct GroupFailure {
    kind: Failure,
    message: String,
}

impl GroupFailure {
    fn new(e: &rusqlite::Error) -> GroupFailure {
        let kind = Failure::of(e);
        if kind != Failure::Other {
            // The clients are told to retry; the operator must hear of the disk.
            tracing::error!("a group of writes failed on the disk ({kind:?}): {e}");
        }
        GroupFailure {
            kind,
            message: e.to_string(),
        }
    }

    fn error(&self, context: &str) -> StoreError {
        self.kind.error(format!("{context}: {}", self.message))
    }
}

/// Group commit: the writer takes every request queued while the previous commit was
/// being made durable, applies each in its own savepoint and commits them together with
/// one fsync (`synchronous=FULL`). A commit becomes visible to readers only once that
/// fsync is done, so no response ever reveals a write a power loss could take back.
pub(super) fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteOp>, keys: &KeyIndex) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut definitions = Definitions::default();
    while let Some(op) = rx.blocking_recv() {
        keys.wait_for_room();
        group.push(op);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, &mut group, keys, &mut definitions);
    }
    // Channel closed: checkpoint so the file is whole without its WAL.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

fn commit_group(
    conn: &mut Connection,
    group: &mut Vec<WriteOp>,
    keys: &KeyIndex,
    definitions: &mut Definitions,
) {
    let mut replies = Vec::with_capacity(group.len());
    let mut tail = Vec::new();
    // IMMEDIATE: take the write lock at BEGIN, so another process writing the file (a
    // command) makes this wait (busy_timeout) instead of failing on a read-to-write upgrade.
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let failed = GroupFailure::new(&e);
            for op in group.drain(..) {
                fail_op(op, &failed);
            }
            return;
        }
    };
    for op in group.drain(..) {
        // Each op in its own savepoint: one failing op leaves the others whole.
        replies.push(apply_in_savepoint(&tx, op, &mut tail, definitions));
    }
    let commit_error = tx.commit().err().map(|e| GroupFailure::new(&e));
    if commit_error.is_some() {
        definitions.forget();
    } else {
        // Before any reply: an acknowledged statement is findable by every filter.
        keys.push(tail);
    }
    for r in replies {
        r.send(commit_error.as_ref());
    }
}

/// A reply waiting for the group's commit.
enum Reply {
    Insert(
        oneshot::Sender<StoreResult<InsertOutcome>>,
        StoreResult<InsertOutcome>,
    ),
    Document(
        oneshot::Sender<StoreResult<Option<Document>>>,
        StoreResult<Option<Document>>,
    ),
    Unit(oneshot::Sender<StoreResult<()>>, StoreResult<()>),
    Bool(oneshot::Sender<StoreResult<bool>>, StoreResult<bool>),
    Erased(oneshot::Sender<StoreResult<Erased>>, StoreResult<Erased>),
}

impl Reply {
    fn send(self, commit_error: Option<&GroupFailure>) {
        let fail = |f: &GroupFailure| f.error("commit failed");
        match self {
            Reply::Insert(tx, r) => {
                let _ = tx.send(commit_error.map_or(r, |m| Err(fail(m))));
            }
            Reply::Document(tx, r) => {
                let _ = tx.send(commit_error.map_or(r, |m| Err(fail(m))));
            }
            Reply::Unit(tx, r) => {
                let _ = tx.send(commit_error.map_or(r, |m| Err(fail(m))));
            }
            Reply::Bool(tx, r) => {
                let _ = tx.send(commit_error.map_or(r, |m| Err(fail(m))));
            }
            Reply::Erased(tx, r) => {
                let _ = tx.send(commit_error.map_or(r, |m| Err(fail(m))));
            }
        }
    }
}

fn fail_op(op: WriteOp, failed: &GroupFailure) {
    let e = || failed.error("cannot begin transaction");
    match op {
        WriteOp::Insert(_, _, tx) => drop(tx.send(Err(e()))),
        WriteOp::UpdateDocument(_, _, tx) => drop(tx.send(Err(e()))),
        WriteOp::DeleteDocuments(_, _, tx) => drop(tx.send(Err(e()))),
        WriteOp::Admin(_, tx) => drop(tx.send(Err(e()))),
        WriteOp::PutCredential(_, tx) => drop(tx.send(Err(e()))),
        WriteOp::RevokeCredential(_, tx) => drop(tx.send(Err(e()))),
        WriteOp::Erase(_, tx) => drop(tx.send(Err(e()))),
    }
}

fn apply_in_savepoint(
    tx: &Transaction<'_>,
    op: WriteOp,
    tail: &mut Vec<TailEntry>,
    definitions: &mut Definitions,
) -> Reply {
    if let Err(e) = run_cached(tx, "SAVEPOINT op") {
        return match op {
            WriteOp::Insert(_, _, s) => Reply::Insert(s, Err(internal(e))),
            WriteOp::UpdateDocument(_, _, s) => Reply::Document(s, Err(internal(e))),
            WriteOp::DeleteDocuments(_, _, s) => Reply::Unit(s, Err(internal(e))),
            WriteOp::Admin(_, s) => Reply::Bool(s, Err(internal(e))),
            WriteOp::PutCredential(_, s) => Reply::Unit(s, Err(internal(e))),
            WriteOp::RevokeCredential(_, s) => Reply::Bool(s, Err(internal(e))),
            WriteOp::Erase(_, s) => Reply::Erased(s, Err(internal(e))),
        };
    }
    let (reply, keep) = match op {
        WriteOp::Insert(batch, keys, s) => {
            let mut mine = Vec::new();
            let r = insert_batch(tx, batch, keys, &mut mine, definitions);
            let keep = matches!(r, Ok(InsertOutcome::Inserted));
            if keep {
                tail.append(&mut mine);
            }
            (Reply::Insert(s, r), keep)
        }
        WriteOp::UpdateDocument(key, update, s) => {
            let r = update_document(tx, &key, update);
            let keep = r.is_ok();
            (Reply::Document(s, r), keep)
        }
        WriteOp::Admin(write, s) => {
            let r = write(tx).map_err(internal);
            let keep = r.is_ok();
            (Reply::Bool(s, r), keep)
        }
        WriteOp::Erase(erasure, s) => {
            let r = log::erase(tx, &erasure).map_err(internal);
            let keep = r.is_ok();
            (Reply::Erased(s, r), keep)
        }
        WriteOp::DeleteDocuments(department, scope, s) => {
            let (lo, hi) = scope.key_range_in(&department);
            let r = tx
                .execute(
                    "DELETE FROM documents WHERE scope >= ?1 AND scope < ?2",
                    params![lo, hi],
                )
                .map(|_| ())
                .map_err(internal);
            let keep = r.is_ok();
            (Reply::Unit(s, r), keep)
        }
        WriteOp::PutCredential(c, s) => {
            let r = tx
                .execute(
                    "INSERT INTO credentials (key, secret_hash, name, scopes, created, revoked, department)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(key) DO UPDATE SET secret_hash=excluded.secret_hash, name=excluded.name,
                       scopes=excluded.scopes, revoked=excluded.revoked, department=excluded.department",
                    params![c.key, c.secret_hash, c.name, c.scopes.join(" "), c.created_us, c.revoked, c.department.as_str()],
                )
                .map(|_| ())
                .map_err(internal);
            let keep = r.is_ok();
            (Reply::Unit(s, r), keep)
        }
        WriteOp::RevokeCredential(key, s) => {
            let r = tx
                .execute(
                    "UPDATE credentials SET revoked = 1 WHERE key = ?1",
                    params![key],
                )
                .map(|n| n > 0)
                .map_err(internal);
            let keep = r.is_ok();
            (Reply::Bool(s, r), keep)
        }
    };
    let end = if keep {
        run_cached(tx, "RELEASE op")
    } else {
        definitions.forget();
        run_cached(tx, "ROLLBACK TO op").and_then(|()| run_cached(tx, "RELEASE op"))
    };
    if let Err(e) = end {
        tracing::error!("savepoint end failed: {e}");
    }
    reply
}

/// Runs a statement without parameters through the statement cache: every write op
/// opens and ends a savepoint, and parsing those anew each time was measurable.
fn run_cached(tx: &Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn existing_of(
    tx: &Transaction<'_>,
    records: &[StatementRecord],
) -> StoreResult<Vec<(String, String)>> {
    let mut find = tx
        .prepare_cached("SELECT json FROM statements WHERE id = ?1")
        .map_err(internal)?;
    let mut existing = Vec::new();
    for r in records {
        if let Some(json) = find
            .query_row(params![r.id], |row| row.get::<_, String>(0))
            .optional()
            .map_err(internal)?
        {
            existing.push((r.id.clone(), json));
        }
    }
    Ok(existing)
}

/// Inserts the batch's statements; their filter keys go to `tail` for the key index.
fn insert_batch(
    tx: &Transaction<'_>,
    batch: StatementBatch,
    row_keys: Vec<RowKeys>,
    tail: &mut Vec<TailEntry>,
    definitions: &mut Definitions,
) -> StoreResult<InsertOutcome> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO statements (id, stored, voided, voids, keys, attachments, json, salt, commitment)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(internal)?;
    let mut target_keys = tx
        .prepare_cached("SELECT keys FROM statements WHERE id = ?1")
        .map_err(internal)?;
    let mut voided_by = tx
        .prepare_cached("SELECT 1 FROM statements WHERE voids = ?1 LIMIT 1")
        .map_err(internal)?;
    let mut void = tx
        .prepare_cached("UPDATE statements SET voided = 1 WHERE id = ?1 AND voids IS NULL")
        .map_err(internal)?;
    for (i, (r, mut keys)) in batch.records.iter().zip(row_keys).enumerate() {
        if let Some(target) = &r.inherits_keys_of {
            if let Some(k) = target_keys
                .query_row(params![target], |row| row.get::<_, String>(0))
                .optional()
                .map_err(internal)?
            {
                let mut all = split_list(&keys.text);
                all.extend(split_list(&k));
                keys = RowKeys::of(all);
            }
        }
        // A statement whose voiding statement arrived first is voided on arrival.
        let voided = r.voids.is_none() && voided_by.exists(params![r.id]).map_err(internal)?;
        // The unique index on id detects re-sent ids; the caller's savepoint undoes
        // whatever this batch wrote before the conflict.
        match insert.execute(params![
            r.id,
            r.stored_us,
            voided,
            r.voids,
            keys.text,
            r.attachment_sha2.join("\n"),
            r.json,
            r.seal.as_ref().map(|s| &s.salt[..]),
            r.seal.as_ref().map(|s| &s.commitment[..]),
        ]) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                // Only from this record on: the ones before it were inserted by this very
                // batch (undone with its savepoint), not stored before it.
                return Ok(InsertOutcome::Existing(existing_of(
                    tx,
                    &batch.records[i..],
                )?));
            }
            Err(e) => return Err(internal(e)),
        }
        tail.push(TailEntry {
            seq: tx.last_insert_rowid(),
            stored: r.stored_us,
            keys: keys.hashes,
        });
        if let Some(target) = &r.voids {
            void.execute(params![target]).map_err(internal)?;
        }
    }
    let mut put_attachment = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO attachments (sha2, content_type, content) VALUES (?1, ?2, ?3)",
        )
        .map_err(internal)?;
    for a in &batch.attachments {
        put_attachment
            .execute(params![a.sha2, a.content_type, a.content.as_ref()])
            .map_err(internal)?;
    }
    merge_definitions(tx, &batch, definitions)?;
    Ok(InsertOutcome::Inserted)
}

/// Most canonical activity definitions the writer keeps in memory (a few hundred bytes
/// each); past it the cache starts again empty.
const DEFINITIONS_CACHED: usize = 10_000;

/// The canonical activity definitions as the writer last read or wrote them, so a batch
/// that re-sends known definitions (content sends the same one with every statement)
/// costs no read and no parse. Exact because the writer thread is the only writer of
/// `activities` (`store::exclusive` keeps other processes' statement writes out); a
/// rolled-back savepoint or commit empties it, as it may hold what was undone.
#[derive(Default)]
struct Definitions(std::collections::HashMap<String, Known>);

/// A canonical definition and the received definition last merged into it. Merging is
/// idempotent (the received values win, lists follow the received one), so receiving that
/// same definition again changes nothing and costs neither a copy nor a merge.
struct Known {
    canonical: Value,
    last_merged: Value,
}

impl Definitions {
    fn forget(&mut self) {
        self.0.clear();
    }

    fn remember(&mut self, id: &str, known: Known) {
        if self.0.len() >= DEFINITIONS_CACHED && !self.0.contains_key(id) {
            self.0.clear();
        }
        self.0.insert(id.to_owned(), known);
    }
}

/// One activity's definition while a batch is merged into it.
struct Merging<'a> {
    /// The row as stored, when the merges may have changed it (`None` inside: no row).
    stored: Option<Option<Value>>,
    canonical: Value,
    /// The received definition last merged: kept from the cache, or one of the batch's.
    last_kept: Option<Value>,
    last: &'a Value,
}

/// Folds the batch's activity definitions into the canonical ones: at most one read and
/// one write per activity, none when nothing changed (the common re-send of the same
/// definition dirties no page) and no read when the writer knows the definition.
fn merge_definitions(
    tx: &Transaction<'_>,
    batch: &StatementBatch,
    cache: &mut Definitions,
) -> StoreResult<()> {
    if batch.definitions.is_empty() {
        return Ok(());
    }
    let merge = batch.merge_definition;
    let mut get_def = tx
        .prepare_cached("SELECT definition FROM activities WHERE id = ?1")
        .map_err(internal)?;
    let mut put_def = tx
        .prepare_cached("INSERT OR REPLACE INTO activities (id, definition) VALUES (?1, ?2)")
        .map_err(internal)?;
    let mut order: Vec<&str> = Vec::new();
    let mut merging: std::collections::HashMap<&str, Merging<'_>> =
        std::collections::HashMap::new();
    for (id, def) in &batch.definitions {
        if let Some(m) = merging.get_mut(id.as_str()) {
            if m.last != def {
                if m.stored.is_none() {
                    m.stored = Some(Some(m.canonical.clone()));
                }
                m.canonical = merge(Some(std::mem::take(&mut m.canonical)), def);
                m.last = def;
                m.last_kept = None;
            }
            continue;
        }
        order.push(id);
        // Taken out: `remember` puts back what this op leaves (a failure empties the
        // cache anyway).
        let m = match cache.0.remove(id.as_str()) {
            Some(known) if known.last_merged == *def => Merging {
                stored: None,
                canonical: known.canonical,
                last_kept: Some(known.last_merged),
                last: def,
            },
            known => {
                let stored: Option<Value> = match known {
                    Some(known) => Some(known.canonical),
                    None => get_def
                        .query_row(params![id], |row| row.get::<_, String>(0))
                        .optional()
                        .map_err(internal)?
                        .and_then(|s| serde_json::from_str(&s).ok()),
                };
                Merging {
                    canonical: merge(stored.clone(), def),
                    stored: Some(stored),
                    last_kept: None,
                    last: def,
                }
            }
        };
        merging.insert(id, m);
    }
    for id in order {
        if let Some(m) = merging.remove(id) {
            if m.stored
                .is_some_and(|stored| stored.as_ref() != Some(&m.canonical))
            {
                put_def
                    .execute(params![id, m.canonical.to_string()])
                    .map_err(internal)?;
            }
            let last_merged = m.last_kept.unwrap_or_else(|| m.last.clone());
            cache.remember(
                id,
                Known {
                    canonical: m.canonical,
                    last_merged,
                },
            );
        }
    }
    Ok(())
}

pub(super) fn read_document(
    tx: &Connection,
    scope: &str,
    id: &str,
) -> rusqlite::Result<Option<Document>> {
    tx.prepare_cached("SELECT content_type, content, etag, updated FROM documents WHERE scope = ?1 AND doc_id = ?2")?
        .query_row(params![scope, id], |row| {
            Ok(Document {
                content_type: row.get(0)?,
                content: bytes::Bytes::from(row.get::<_, Vec<u8>>(1)?),
                etag: row.get(2)?,
                updated_us: row.get(3)?,
            })
        })
        .optional()
}

fn update_document(
    tx: &Transaction<'_>,
    key: &DocumentKey,
    update: DocumentUpdate,
) -> StoreResult<Option<Document>> {
    let scope = key.scope_key();
    let current = read_document(tx, &scope, &key.document_id).map_err(internal)?;
    match update(current.as_ref()).map_err(StoreError::Rejected)? {
        DocumentChange::Put(doc) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO documents (scope, doc_id, content_type, content, etag, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![scope, key.document_id, doc.content_type, doc.content.as_ref(), doc.etag, doc.updated_us])
            })
            .map_err(internal)?;
            Ok(Some(doc))
        }
        DocumentChange::Delete => {
            tx.execute(
                "DELETE FROM documents WHERE scope = ?1 AND doc_id = ?2",
                params![scope, key.document_id],
            )
            .map_err(internal)?;
            Ok(None)
        }
        DocumentChange::Keep => Ok(current),
    }
}
