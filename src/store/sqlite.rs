//! The embedded store: one SQLite file (WAL), no server.
//!
//! All writes go through one writer thread that groups concurrent requests into a
//! single transaction (group commit): one fsync acknowledges many writes, and nothing is
//! acknowledged before its transaction is committed with `synchronous=FULL`.
//! Reads run on a few threads, each with its own read-only connection.
use super::key_index::{self, key_hash, KeyIndex, TailEntry, TailFilter};
use super::*;
use crate::xapi::records::subtree_scope_ranges;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

#[path = "sqlite_completions.rs"]
mod completions;
#[cfg(test)]
#[path = "sqlite_failure_tests.rs"]
mod failure_tests;
#[path = "sqlite_forwarding.rs"]
mod forwarding;
#[path = "sqlite_log.rs"]
mod log;
#[cfg(test)]
#[path = "sqlite_query_tests.rs"]
mod query_tests;
#[path = "sqlite_readers.rs"]
mod readers;
#[path = "sqlite_scorm.rs"]
mod scorm;
#[path = "sqlite_writer.rs"]
mod writer;

use writer::{read_document, writer_loop, RowKeys, WriteOp};

pub struct SqliteStore {
    keys: Arc<KeyIndex>,
    writer: Mutex<Option<mpsc::Sender<WriteOp>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    indexer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Dropping it stops the checkpointer.
    checkpointer: Mutex<Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    /// At most `StoreOptions::readers` reads at once, each on its thread's own
    /// connection (opening one and attaching the index costs more than most queries).
    readers: readers::Readers,
}

/// Layout version of the file, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 10;

/// Refuses a file laid out by another version rather than misreading it.
/// Answers the version the file had.
fn check_schema_version(conn: &Connection) -> Result<i64, String> {
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let has_tables: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'statements')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if v == SCHEMA_VERSION || (v == 0 && !has_tables) {
        return Ok(v);
    }
    if !(3..SCHEMA_VERSION).contains(&v) {
        return Err(format!(
            "this database has layout version {v}; this build reads version {SCHEMA_VERSION}"
        ));
    }
    if v == 3 {
        // Version 3 kept the filter keys inside this file; they now live in the index
        // file, which is rebuilt from the statements' `keys` columns on open.
        conn.execute_batch("DROP TABLE IF EXISTS statement_keys;")
            .map_err(|e| e.to_string())?;
    }
    if v <= 4 {
        // Version 5 added departments: everything already stored is the root's (its
        // record keys are the bare ids), so only credentials need a department column.
        conn.execute_batch(
            "ALTER TABLE credentials ADD COLUMN department TEXT NOT NULL DEFAULT '';",
        )
        .map_err(|e| e.to_string())?;
    }
    if v <= 5 {
        // Version 6 added the audit log: statements stored before it have no salt or
        // commitment; the sequencer seals them when it logs them (its cursor starts at 0).
        conn.execute_batch(
            "ALTER TABLE statements ADD COLUMN salt BLOB; ALTER TABLE statements ADD COLUMN commitment BLOB;",
        )
        .map_err(|e| e.to_string())?;
    }
    if v == 6 {
        // Version 7 added the change feed: each leaf's department, and the subtrees that
        // see it (filled in for the leaves already there by `sqlite_log::backfill_feed`).
        conn.execute_batch("ALTER TABLE audit_leaves ADD COLUMN department TEXT;")
            .map_err(|e| e.to_string())?;
    }
    // Version 8 added forwarding rules and the completion figures: new tables only
    // (`forwarding::SCHEMA`, `completions::SCHEMA`); the projection starts at position 0
    // and catches up from the feed.
    // Version 9 added content packages and launches: new tables only (`scorm::SCHEMA`).
    // Version 10 added departments' rate limits: a new table only (`department_limits`).
    Ok(v)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS statements (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    stored INTEGER NOT NULL,
    voided INTEGER NOT NULL DEFAULT 0,
    voids TEXT,
    keys TEXT NOT NULL,
    attachments TEXT NOT NULL,
    json TEXT NOT NULL,
    salt BLOB,
    commitment BLOB
);
CREATE INDEX IF NOT EXISTS statements_stored ON statements(stored);
CREATE INDEX IF NOT EXISTS statements_voids ON statements(voids) WHERE voids IS NOT NULL;
CREATE TABLE IF NOT EXISTS attachments (
    sha2 TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    content BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS activities (
    id TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    scope TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content BLOB NOT NULL,
    etag TEXT NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (scope, doc_id)
);
CREATE TABLE IF NOT EXISTS credentials (
    key TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    department TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS departments (
    path TEXT PRIMARY KEY,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS department_limits (
    path TEXT PRIMARY KEY,
    limits TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_leaves (
    leaf INTEGER PRIMARY KEY,
    entry BLOB NOT NULL,
    seq INTEGER,
    department TEXT
);
CREATE TABLE IF NOT EXISTS audit_leaf_departments (
    department TEXT NOT NULL,
    leaf INTEGER NOT NULL,
    PRIMARY KEY (department, leaf)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_statement_leaf (
    seq INTEGER PRIMARY KEY,
    leaf INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_hashes (
    idx INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    cursor_stored INTEGER NOT NULL,
    cursor_id TEXT NOT NULL,
    checkpoint_size INTEGER,
    checkpoint TEXT
);
INSERT OR IGNORE INTO audit_state (id, size, cursor_stored, cursor_id) VALUES (1, 0, -1, '');
CREATE TABLE IF NOT EXISTS audit_erasures (
    id INTEGER PRIMARY KEY,
    receipt_hash BLOB NOT NULL,
    erased INTEGER NOT NULL,
    leaves TEXT NOT NULL,
    logged INTEGER NOT NULL DEFAULT 0
);
";

/// Prepared statements each connection keeps: the writer alone uses some 60 distinct
/// ones (statements, savepoints, the log, the projection), past rusqlite's default 16,
/// which made it parse again what it had just evicted.
const STATEMENT_CACHE: usize = 128;

/// A failed call as a store error (`Failure`).
fn internal(e: impl Cause) -> StoreError {
    e.failure().error(e.to_string())
}

/// What a failed call's error says of its cause: SQLite's own errors by their result
/// code; anything that reached us as text by SQLite's fixed messages.
trait Cause: std::fmt::Display {
    fn failure(&self) -> Failure {
        Failure::of_text(&self.to_string())
    }
}

impl Cause for rusqlite::Error {
    fn failure(&self) -> Failure {
        Failure::of(self)
    }
}

impl Cause for String {}
impl Cause for &str {}
impl<T> Cause for std::sync::PoisonError<T> {}

/// What a failed SQLite call means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// SQLITE_FULL: no space left; the write is refused whole, the client retries later.
    Full,
    /// SQLITE_IOERR (a failed fsync, a write the disk refused): the write could not be made
    /// durable, so it is not acknowledged; the store is unavailable until the disk recovers.
    Io,
    Other,
}

impl Failure {
    fn of(e: &rusqlite::Error) -> Failure {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Failure::Full,
            Some(rusqlite::ErrorCode::SystemIoFailure) => Failure::Io,
            _ => Failure::Other,
        }
    }

    /// For an error that reached us as text only: SQLite's fixed messages for its codes.
    fn of_text(m: &str) -> Failure {
        if m.contains("database or disk is full") {
            Failure::Full
        } else if m.contains("disk I/O error") {
            Failure::Io
        } else {
            Failure::Other
        }
    }

    fn error(self, m: String) -> StoreError {
        match self {
            Failure::Full => StoreError::Full(m),
            Failure::Io => StoreError::Unavailable(format!(
                "the disk failed to make the write durable, nothing of this request was \
                 acknowledged ({m})"
            )),
            Failure::Other => StoreError::Internal(m),
        }
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

impl SqliteStore {
    pub fn open(path: &str) -> Result<Self, String> {
        Self::open_with(path, &super::StoreOptions::default())
    }

    pub fn open_with(path: &str, options: &super::StoreOptions) -> Result<Self, String> {
        if let Some(dir) = Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
        }
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; PRAGMA busy_timeout=5000; PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=0; PRAGMA temp_store=MEMORY;",
        )
        .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "journal_size_limit", options.wal_limit_bytes as i64)
            .map_err(|e| e.to_string())?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let before = check_schema_version(&conn)?;
        conn.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
        conn.execute_batch(forwarding::SCHEMA)
            .map_err(|e| e.to_string())?;
        conn.execute_batch(completions::SCHEMA)
            .map_err(|e| e.to_string())?;
        conn.execute_batch(scorm::SCHEMA)
            .map_err(|e| e.to_string())?;
        if before == 6 {
            log::backfill_feed(&conn).map_err(|e| e.to_string())?;
        }
        // Only when it changes: a write needs space, and a store on a full disk must open
        // (for reads; writes answer 507 until space is freed).
        if before != SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(|e| e.to_string())?;
        }
        let keys_path = format!("{path}.keys");
        let (index_conn, folded_through, left) =
            key_index::open(&keys_path, &conn, options.index_fold_at_open)?;
        let catch_up = match left {
            Some((through, target)) => Some(key_index::CatchUp {
                statements: Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| e.to_string())?,
                through,
                target,
                step: key_index::CATCH_UP_STEP,
            }),
            None => None,
        };
        let keys = Arc::new(KeyIndex::new(folded_through, catch_up.as_ref()));
        let indexer = {
            let keys = keys.clone();
            std::thread::Builder::new()
                .name("sqlite-indexer".into())
                .spawn(move || keys.run_indexer(index_conn, catch_up))
                .map_err(|e| e.to_string())?
        };
        let checkpointer = spawn_checkpointer(path, &keys_path, options.wal_limit_bytes)?;
        let (tx, rx) = mpsc::channel::<WriteOp>(4096);
        let handle = {
            let keys = keys.clone();
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || writer_loop(conn, rx, &keys))
                .map_err(|e| e.to_string())?
        };
        Ok(SqliteStore {
            keys,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            indexer_thread: Mutex::new(Some(indexer)),
            checkpointer: Mutex::new(Some(checkpointer)),
            readers: readers::Readers::start(path, &keys_path, options.readers)?,
        })
    }

    async fn write<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteOp,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let sender = self
            .writer
            .lock()
            .map_err(internal)?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        sender
            .send(op(tx))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Internal("the writer dropped a request".into()))?
    }

    /// Runs `f` on one of the reader threads' connections, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.readers.run(f).await
    }
}

/// How often the checkpointer copies committed WAL frames into the database file. A
/// checkpoint writes the database file and fsyncs it, and a commit's fsync of the WAL
/// (its cache flush) waits for every write then in flight to the disk: at 50 ms, W1 saw
/// commits of 20–50 ms several times a second; once a second, far fewer
/// (docs/PERFORMANCE.md). The WAL meanwhile holds about a second of writes more.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the checkpointer looks at the WALs' sizes (a truncation is due past the
/// limit): often, so that a burst of writes overshoots the limit by little.
const WAL_SIZE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// A statements WAL grown by this much since its last copy is copied into the database
/// file at once, not at the next second. What a checkpoint has not copied yet is what it
/// needs room for in the database file: with the disk full, space freed beyond it lets
/// the checkpoint finish and the WAL start again from its beginning. On a fast disk a
/// second of writes filled a 28 MB disk with the WAL alone (the database file empty), and
/// freeing 20 MB then let no write through. The key index's connection copies at the
/// same size (its auto-checkpoint of 2,048 pages).
const CHECKPOINT_GROWTH: u64 = 8 << 20;

/// How long a truncating checkpoint may wait for readers and the writer: it holds new
/// commits back meanwhile, so it gives up soon and tries again on a later tick.
const TRUNCATE_WAIT_MS: i64 = 250;

/// Checkpoints on their own thread and connection: a checkpoint copies megabytes and
/// fsyncs the database file, and inside the writer (SQLite's auto-checkpoint) that
/// stalled every commit queued behind it. PASSIVE never blocks the writer or readers.
///
/// PASSIVE alone lets the WAL grow without end under sustained load: the log restarts
/// from its beginning only when a commit finds no reader using it, and with steady
/// queries there always is one (1.7 GB beside a 2.0 GB database was seen during a 1M
/// preload). So once a WAL file (statements or key index) passes `wal_limit` bytes, a
/// TRUNCATE checkpoint waits briefly for the readers to move to the database file and
/// empties the log.
fn spawn_checkpointer(
    path: &str,
    keys_path: &str,
    wal_limit: u64,
) -> Result<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>), String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous=FULL; PRAGMA busy_timeout={TRUNCATE_WAIT_MS};"
    ))
    .map_err(|e| e.to_string())?;
    conn.execute("ATTACH DATABASE ?1 AS ix", params![keys_path])
        .map_err(|e| e.to_string())?;
    let wals = [
        ("main", format!("{path}-wal")),
        ("ix", format!("{keys_path}-wal")),
    ];
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let wal_size = |wal: &str| std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
            let mut checkpointed = std::time::Instant::now();
            // The statements WAL's size at its last copy: it grows only by frames written
            // after that copy.
            let mut copied_at = wal_size(&wals[0].1);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(WAL_SIZE_EVERY)
            {
                let size = wal_size(&wals[0].1);
                // A truncated WAL grows again from nothing.
                copied_at = copied_at.min(size);
                if checkpointed.elapsed() >= CHECKPOINT_EVERY
                    || size >= copied_at.saturating_add(CHECKPOINT_GROWTH)
                {
                    checkpointed = std::time::Instant::now();
                    copied_at = size;
                    if let Err(e) = conn.execute_batch("PRAGMA main.wal_checkpoint(PASSIVE);") {
                        tracing::warn!("checkpoint failed: {e}");
                    }
                }
                for (schema, wal) in &wals {
                    let size = wal_size(wal);
                    if size > wal_limit {
                        // TRUNCATE holds the write lock while it copies what is left in
                        // the WAL (370–620 ms of W2's commits when that was everything
                        // since the last PASSIVE): copy it first without the lock, so that
                        // only the frames written in between remain.
                        if let Err(e) =
                            conn.execute_batch(&format!("PRAGMA {schema}.wal_checkpoint(PASSIVE);"))
                        {
                            tracing::warn!("checkpoint failed: {e}");
                        }
                        // Busy is expected under load: the next tick tries again.
                        let r = conn.query_row(
                            &format!("PRAGMA {schema}.wal_checkpoint(TRUNCATE)"),
                            [],
                            |r| r.get::<_, i64>(0),
                        );
                        tracing::debug!("truncating checkpoint of {wal} ({size} bytes): {r:?}");
                    }
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok((stop, handle))
}

fn row_to_stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredStatement> {
    Ok(StoredStatement {
        id: row.get(0)?,
        json: row.get(1)?,
        stored_us: row.get(2)?,
        voided: row.get(3)?,
        attachment_sha2: split_list(&row.get::<_, String>(4)?),
    })
}

fn credential_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRecord> {
    Ok(CredentialRecord {
        key: row.get(0)?,
        secret_hash: row.get(1)?,
        name: row.get(2)?,
        scopes: row
            .get::<_, String>(3)?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_us: row.get(4)?,
        revoked: row.get(5)?,
        department: Department::parse(&row.get::<_, String>(6)?).unwrap_or_default(),
    })
}

/// Builds the SQL for a statement query: the first of its index keys
/// (`StatementQuery::index_keys`) drives a range scan of the key index in (stored, seq)
/// order; the others are probed by primary key. The index holds hashes: with `checked`,
/// SQL re-checks every key against the row's full keys; without, the rows carry their
/// keys (column 6) for the caller to check the hash hits (a department's key among them:
/// the scan key holds it). The index holds only folded statements; `run_query` adds the
/// tail.
fn query_sql(q: &StatementQuery, checked: bool) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let mut args: Vec<V> = Vec::new();
    let keys = q.index_keys();
    let (stored_col, seq_col, from) = match keys.split_first() {
        None => ("s.stored", "s.seq", "statements s".to_string()),
        Some((_, probed)) => {
            let mut from = String::from("ix.statement_keys k0");
            for i in 1..=probed.len() {
                from.push_str(&format!(
                    " CROSS JOIN ix.statement_keys k{i} ON k{i}.key = ? AND k{i}.stored = k0.stored AND k{i}.seq = k0.seq"
                ));
            }
            from.push_str(" CROSS JOIN statements s ON s.seq = k0.seq");
            for k in probed {
                args.push(V::Integer(key_hash(k)));
            }
            ("k0.stored", "k0.seq", from)
        }
    };
    let mut wh = Vec::new();
    if !q.include_voided {
        wh.push("s.voided = 0".to_string());
    }
    if let Some(k) = keys.first() {
        wh.push("k0.key = ?".into());
        args.push(V::Integer(key_hash(k)));
    }
    if checked {
        for k in &q.keys {
            wh.push("instr(char(10) || s.keys || char(10), ?) > 0".into());
            args.push(V::Text(format!("\n{k}\n")));
        }
    }
    if let Some(since) = q.since_us {
        wh.push(format!("{stored_col} > ?"));
        args.push(V::Integer(since));
    }
    if let Some(until) = q.until_us {
        wh.push(format!("{stored_col} <= ?"));
        args.push(V::Integer(until));
    }
    let dir = if q.ascending { "ASC" } else { "DESC" };
    if let Some((stored, id)) = &q.after {
        let cmp = if q.ascending { ">" } else { "<" };
        wh.push(format!(
            "({stored_col}, {seq_col}) {cmp} (?, (SELECT seq FROM statements WHERE id = ?))"
        ));
        args.push(V::Integer(*stored));
        args.push(V::Text(id.clone()));
    }
    args.push(V::Integer(q.limit as i64));
    let keys_col = if keys.is_empty() { "" } else { ", s.keys" };
    let where_ = if wh.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", wh.join(" AND "))
    };
    let sql = format!(
        "SELECT s.id, s.json, s.stored, s.voided, s.attachments, s.seq{keys_col} FROM {from} {where_} ORDER BY {stored_col} {dir}, {seq_col} {dir} LIMIT ?"
    );
    (sql, args)
}

/// The folded statements that match, from the key index: the hash hits are checked
/// against their full keys here, and only when one of them is a hash collision (in
/// practice never) is the query run again with SQL checking every candidate, so that
/// `LIMIT` counts true matches only. Checking in SQL cost every row a copy of its keys
/// and a substring search (3–4 % of a 1M W3 profile).
fn folded_matches(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    args: &[rusqlite::types::Value],
    q: &StatementQuery,
) -> rusqlite::Result<Vec<(i64, i64, StoredStatement)>> {
    let mut collided = false;
    let found: Vec<(i64, i64, StoredStatement)> = {
        let mut stmt = tx.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |row| {
            let keys = row.get_ref(6)?.as_str()?;
            collided |= !q.keys.iter().all(|k| has_key(keys, k));
            ranked_row(row)
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if !collided {
        return Ok(found);
    }
    let (sql, args) = query_sql(q, true);
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), ranked_row)?;
    rows.collect()
}

/// A row of `query_sql` with its place in the answer's order: (stored, seq, statement).
fn ranked_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, StoredStatement)> {
    Ok((row.get(2)?, row.get(5)?, row_to_stored(row)?))
}

fn has_key(keys: &str, key: &str) -> bool {
    keys.split('\n').any(|k| k == key)
}

/// Answers a statement query from one snapshot: the key index (folded statements) plus
/// the in-memory tail (committed, not yet folded), merged in (stored, seq) order.
fn run_query(
    c: &Connection,
    index: &KeyIndex,
    q: &StatementQuery,
) -> rusqlite::Result<Vec<StoredStatement>> {
    let (sql, args) = query_sql(q, false);
    if q.keys.is_empty() {
        // Served by the `stored` index of the statements themselves: no tail involved.
        let mut stmt = c.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_stored)?;
        return rows.collect();
    }
    let hashes: Vec<i64> = q.keys.iter().map(|k| key_hash(k)).collect();
    // A retry happens only when a fold lands between reading the index's high-water
    // mark and reading the tail; a few attempts always suffice in practice.
    for _ in 0..16 {
        let tx = c.unchecked_transaction()?;
        let folded: i64 =
            tx.query_row("SELECT folded_through FROM ix.meta WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        let after = match &q.after {
            Some((stored, id)) => Some((
                *stored,
                tx.query_row(
                    "SELECT seq FROM statements WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?,
            )),
            None => None,
        };
        let filter = TailFilter {
            keys: &hashes,
            since_us: q.since_us,
            until_us: q.until_us,
            after,
            ascending: q.ascending,
        };
        let Some(candidates) = index.candidates(folded, &filter) else {
            continue;
        };
        let mut found = folded_matches(&tx, &sql, &args, q)?;
        if !candidates.is_empty() {
            let mut get = tx.prepare_cached(
                "SELECT id, json, stored, voided, attachments, keys FROM statements WHERE seq = ?1",
            )?;
            let mut taken = 0;
            for (stored, seq) in candidates {
                if taken >= q.limit {
                    break;
                }
                let row = get
                    .query_row(params![seq], |row| {
                        Ok((row_to_stored(row)?, row.get::<_, String>(5)?))
                    })
                    .optional()?;
                // Absent: committed after this snapshot began.
                let Some((s, keys)) = row else { continue };
                if (s.voided && !q.include_voided) || !q.keys.iter().all(|k| has_key(&keys, k)) {
                    continue;
                }
                found.push((stored, seq, s));
                taken += 1;
            }
        }
        found.sort_unstable_by_key(|(stored, seq, _)| (*stored, *seq));
        if !q.ascending {
            found.reverse();
        }
        found.truncate(q.limit);
        return Ok(found.into_iter().map(|(_, _, s)| s).collect());
    }
    Err(rusqlite::Error::ToSqlConversionFailure(
        "the key index kept moving under the query; try again".into(),
    ))
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_statements(&self, mut batch: StatementBatch) -> StoreResult<InsertOutcome> {
        let keys = batch
            .records
            .iter_mut()
            .map(|r| RowKeys::of(std::mem::take(&mut r.keys)))
            .collect();
        self.write(|tx| WriteOp::Insert(batch, keys, tx)).await
    }

    async fn get_statement_copies(&self, id: &str) -> StoreResult<Vec<StoredStatement>> {
        let (lo, hi) = departments::copies_range(id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, json, stored, voided, attachments FROM statements
                 WHERE id >= ?1 AND id < ?2",
            )?;
            let rows = stmt.query_map(params![lo, hi], row_to_stored)?;
            rows.collect()
        })
        .await
    }

    async fn query_statements(&self, query: &StatementQuery) -> StoreResult<Vec<StoredStatement>> {
        if let (false, Some((through, of))) = (query.keys.is_empty(), self.keys.catching_up()) {
            // Once caught up it stays so: a query that passes here sees every statement.
            return Err(StoreError::Unavailable(format!(
                "the key index is being rebuilt ({through} of {of} statements); filtered \
                 statement queries are answered once it is done"
            )));
        }
        let query = query.clone();
        let keys = self.keys.clone();
        self.read(move |c| run_query(c, &keys, &query)).await
    }

    async fn get_attachments(&self, sha2: &[String]) -> StoreResult<Vec<AttachmentContent>> {
        let wanted = sha2.to_vec();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT content_type, content FROM attachments WHERE sha2 = ?1")?;
            let mut out = Vec::with_capacity(wanted.len());
            for h in wanted {
                if let Some((content_type, content)) = stmt
                    .query_row(params![h], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                    })
                    .optional()?
                {
                    out.push(AttachmentContent {
                        sha2: h,
                        content_type,
                        content: content.into(),
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn get_activity_definitions(
        &self,
        activity_id: &str,
    ) -> StoreResult<Vec<(String, Value)>> {
        let (lo, hi) = departments::copies_range(activity_id);
        let rows: Vec<(String, String)> = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, definition FROM activities WHERE id >= ?1 AND id < ?2",
                )?;
                let rows = stmt.query_map(params![lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, d)| serde_json::from_str(&d).ok().map(|d| (k, d)))
            .collect())
    }

    async fn get_document(&self, key: &DocumentKey) -> StoreResult<Option<Document>> {
        let scope = key.scope_key();
        let id = key.document_id.clone();
        self.read(move |c| read_document(c, &scope, &id)).await
    }

    async fn list_documents(
        &self,
        department: &Department,
        scope: &DocumentScope,
        since_us: Option<i64>,
    ) -> StoreResult<Vec<String>> {
        let (lo, hi) = scope.key_range_in(department);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT DISTINCT doc_id FROM documents
                 WHERE scope >= ?1 AND scope < ?2 AND updated > ?3 ORDER BY doc_id",
            )?;
            let rows =
                stmt.query_map(params![lo, hi, since_us.unwrap_or(i64::MIN)], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn update_document(
        &self,
        key: &DocumentKey,
        update: DocumentUpdate,
    ) -> StoreResult<Option<Document>> {
        let key = key.clone();
        self.write(|tx| WriteOp::UpdateDocument(key, update, tx))
            .await
    }

    async fn delete_documents(
        &self,
        department: &Department,
        scope: &DocumentScope,
    ) -> StoreResult<()> {
        let (department, scope) = (department.clone(), scope.clone());
        self.write(|tx| WriteOp::DeleteDocuments(department, scope, tx))
            .await
    }

    async fn has_documents_in(&self, department: &Department) -> StoreResult<bool> {
        let ranges = subtree_scope_ranges(department);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM documents WHERE scope >= ?1 AND scope < ?2)",
            )?;
            for (lo, hi) in ranges {
                if stmt.query_row(params![lo, hi], |r| r.get::<_, bool>(0))? {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn put_department(&self, department: &DepartmentRecord) -> StoreResult<bool> {
        let d = department.clone();
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    t.execute(
                        "INSERT OR IGNORE INTO departments (path, created) VALUES (?1, ?2)",
                        params![d.path.as_str(), d.created_us],
                    )
                    .map(|n| n > 0)
                }),
                tx,
            )
        })
        .await
    }

    async fn get_department(&self, path: &Department) -> StoreResult<Option<DepartmentRecord>> {
        let path = path.clone();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT d.created, l.limits FROM departments d \
                 LEFT JOIN department_limits l ON l.path = d.path WHERE d.path = ?1",
            )?
            .query_row(params![path.as_str()], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .optional()
            .map(|found| {
                found.map(|(created_us, limits)| DepartmentRecord {
                    path: path.clone(),
                    created_us,
                    limits: crate::quota::DepartmentLimits::from_stored(limits.as_deref()),
                })
            })
        })
        .await
    }

    async fn set_department_limits(
        &self,
        path: &Department,
        limits: &crate::quota::DepartmentLimits,
    ) -> StoreResult<bool> {
        let path = path.as_str().to_owned();
        let text = limits.to_json().to_string();
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    t.execute(
                        "INSERT INTO department_limits (path, limits) \
                         SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM departments WHERE path = ?1) \
                         ON CONFLICT(path) DO UPDATE SET limits = excluded.limits",
                        params![path, text],
                    )
                    .map(|n| n > 0)
                }),
                tx,
            )
        })
        .await
    }

    async fn list_departments(&self) -> StoreResult<Vec<DepartmentRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.path, d.created, l.limits FROM departments d \
                 LEFT JOIN department_limits l ON l.path = d.path ORDER BY d.path",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (path, created_us, limits) = row?;
                if let Ok(path) = Department::parse(&path) {
                    out.push(DepartmentRecord {
                        path,
                        created_us,
                        limits: crate::quota::DepartmentLimits::from_stored(limits.as_deref()),
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn remove_department(&self, path: &Department) -> StoreResult<bool> {
        let path = path.as_str().to_owned();
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    t.execute(
                        "DELETE FROM department_limits WHERE path = ?1",
                        params![path],
                    )?;
                    t.execute("DELETE FROM departments WHERE path = ?1", params![path])
                        .map(|n| n > 0)
                }),
                tx,
            )
        })
        .await
    }

    async fn put_credential(&self, credential: &CredentialRecord) -> StoreResult<()> {
        let c = credential.clone();
        self.write(|tx| WriteOp::PutCredential(c, tx)).await
    }

    async fn get_credential(&self, key: &str) -> StoreResult<Option<CredentialRecord>> {
        let key = key.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT key, secret_hash, name, scopes, created, revoked, department FROM credentials WHERE key = ?1")?
                .query_row(params![key], credential_row)
                .optional()
        })
        .await
    }

    async fn list_credentials(&self) -> StoreResult<Vec<CredentialRecord>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT key, secret_hash, name, scopes, created, revoked, department FROM credentials ORDER BY created")?;
            let rows = stmt.query_map([], credential_row)?;
            rows.collect()
        })
        .await
    }

    async fn revoke_credential(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_owned();
        self.write(|tx| WriteOp::RevokeCredential(key, tx)).await
    }

    async fn log_state(&self) -> StoreResult<LogState> {
        self.read(log::log_state).await
    }

    async fn unlogged_statements(
        &self,
        horizon_us: i64,
        limit: usize,
    ) -> StoreResult<Vec<UnloggedStatement>> {
        self.read(move |c| log::unlogged(c, horizon_us, limit))
            .await
    }

    async fn pending_erasures(&self) -> StoreResult<Vec<PendingErasure>> {
        self.read(log::pending_erasures).await
    }

    async fn append_log(&self, append: LogAppend) -> StoreResult<bool> {
        self.write(|tx| WriteOp::Admin(Box::new(move |t| log::append(t, &append)), tx))
            .await
    }

    async fn log_hashes(&self, indexes: Vec<u64>) -> StoreResult<Vec<Hash>> {
        self.read(move |c| log::hashes(c, &indexes)).await
    }

    async fn log_entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>> {
        self.read(move |c| log::entries(c, start, end)).await
    }

    async fn put_checkpoint(&self, size: u64, note: String) -> StoreResult<()> {
        self.write(|tx| WriteOp::Admin(Box::new(move |t| log::put_checkpoint(t, size, &note)), tx))
            .await
            .map(|_| ())
    }

    async fn statement_log(&self, key: &str) -> StoreResult<Option<StatementLog>> {
        let key = key.to_owned();
        self.read(move |c| log::statement_log(c, &key)).await
    }

    async fn statement_at_leaf(
        &self,
        index: u64,
    ) -> StoreResult<Option<(String, StoredStatement, [u8; 32])>> {
        self.read(move |c| log::statement_at_leaf(c, index)).await
    }

    async fn sequencer_lease(&self, _: &str, _: i64, _: i64) -> StoreResult<bool> {
        // One process owns the file: its sequencer is the only one.
        Ok(true)
    }

    async fn feed(
        &self,
        subtree: &Department,
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<FeedPage> {
        let subtree = subtree.clone();
        self.read(move |c| log::feed(c, &subtree, from, to, limit))
            .await
    }

    async fn lease(&self, name: &str, holder: &str, now_us: i64, ttl_us: i64) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    let n = t.execute(
                        "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO UPDATE SET holder = ?2, until = ?3
                         WHERE leases.holder = ?2 OR leases.until < ?4",
                        params![name, holder, now_us.saturating_add(ttl_us), now_us],
                    )?;
                    Ok(n > 0)
                }),
                tx,
            )
        })
        .await
    }

    async fn erase(&self, erasure: Erasure) -> StoreResult<Erased> {
        self.write(|tx| WriteOp::Erase(erasure, tx)).await
    }

    fn shares_the_machine(&self) -> bool {
        true
    }

    fn queue_depth(&self) -> usize {
        // Taken slots of the bounded writer channel.
        self.writer
            .lock()
            .ok()
            .and_then(|w| w.as_ref().map(|tx| tx.max_capacity() - tx.capacity()))
            .unwrap_or(0)
    }

    async fn completions_position(&self) -> StoreResult<u64> {
        self.read(completions::position).await
    }

    async fn learner_rows(&self, keys: Vec<RowKey>) -> StoreResult<Vec<(RowKey, String)>> {
        self.read(move |c| completions::rows(c, &keys)).await
    }

    async fn voided_among(&self, keys: Vec<String>) -> StoreResult<Vec<String>> {
        self.read(move |c| completions::voided_among(c, &keys))
            .await
    }

    async fn project_completions(&self, write: ProjectionWrite) -> StoreResult<bool> {
        self.write(|tx| WriteOp::Admin(Box::new(move |t| completions::project(t, &write)), tx))
            .await
    }

    async fn completion_figures(&self, query: FiguresQuery) -> StoreResult<Vec<FigureRow>> {
        self.read(move |c| completions::figures(c, &query)).await
    }

    async fn close(&self) {
        // The writer's final checkpoint runs alone.
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, h)) = checkpointer {
            drop(stop);
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        // Dropping the sender ends the writer loop after it drains what is queued.
        let sender = self.writer.lock().ok().and_then(|mut w| w.take());
        drop(sender);
        let handle = self.writer_thread.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        // Then the indexer folds the rest of the tail, so a clean stop leaves nothing to
        // fold on the next open.
        self.keys.close();
        let handle = self.indexer_thread.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        self.readers.close().await;
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
