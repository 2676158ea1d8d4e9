//! The embedded store's filter-key index, maintained off the acknowledgement path.
//!
//! Every statement answers to about a dozen filter keys (agent, verb, activity,
//! registration, …). Writing those entries into a B-tree inside each small group commit
//! dirtied one page per key per commit, and that page traffic, not xAPI work, bounded
//! ingest. So a commit stores only the statement row (whose `keys` column is the durable
//! record of its keys) and hands the keys to an in-memory *tail*. An indexer thread folds
//! the tail into `statement_keys` in large sorted batches, where one page write serves
//! many statements, in a separate file (`<store>.keys`). Queries read the index plus the
//! tail, so a statement is findable by every filter the moment it is acknowledged.
//!
//! The index is derived data: the file records `folded_through` (the highest statement
//! `seq` folded) and on open everything after it is folded again from the statements'
//! `keys` columns. A lost or stale index file is rebuilt, never trusted blindly; when that
//! is more than a start should wait for, the indexer thread does it while the store
//! serves, and filtered queries wait for it (`KeyIndex::catching_up`).
use rusqlite::{params, Connection};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Fold once this many statements wait in the tail…
const FOLD_MIN: usize = 4096;
/// …or once the oldest has waited this long.
const FOLD_AGE: Duration = Duration::from_millis(250);
/// Most statements folded in one transaction.
const FOLD_MAX: usize = 65_536;
/// Writers wait (back-pressure) while the tail holds this many statements, which bounds
/// both its memory (≈ 150 bytes a statement, 10 MB in all) and the cost of scanning it.
const TAIL_MAX: usize = 65_536;
/// Index rows per INSERT execution.
const FOLD_ROWS: usize = 128;
/// Statements read per transaction when folding at open.
const CATCH_UP_CHUNK: i64 = 50_000;
/// Statements read per step of a catch-up that runs while the store serves: small, so that
/// the writers, whose tail it folds between steps, never wait long.
pub(super) const CATCH_UP_STEP: i64 = 10_000;

pub(super) const SCHEMA: &str = "
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS statement_keys (
    key INTEGER NOT NULL,
    stored INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, stored, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    folded_through INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, folded_through) VALUES (1, 0);
";

/// The 64-bit index value of a filter key. Keys are IRIs and identifiers of any length;
/// the index holds a stable hash of each, and queries re-check the full key against the
/// statement's `keys` column, so a collision can never return a wrong statement.
pub(super) fn key_hash(key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_le_bytes(b)
}

/// One committed statement whose keys are not folded yet.
pub(super) struct TailEntry {
    pub seq: i64,
    pub stored: i64,
    pub keys: Box<[i64]>,
}

#[derive(Default)]
struct Tail {
    /// Every statement with a higher `seq` is in `entries` (ordered by `seq`).
    folded_through: i64,
    entries: VecDeque<TailEntry>,
    /// When the front entry arrived (drives the age-based fold).
    oldest_since: Option<Instant>,
    closing: bool,
    /// While the statements stored before the start are folded in the background: how far
    /// that has come and where it ends (`seq`). Filtered queries wait for it to end.
    catching_up: Option<(i64, i64)>,
}

/// One index row: (key hash, stored, seq).
type Entry = (i64, i64, i64);

impl Tail {
    /// Appends the index entries of the oldest unfolded statements (at most `FOLD_MAX`) to
    /// `out`; returns the last `seq` among them (`folded_through` when there are none).
    fn batch_into(&self, out: &mut Vec<Entry>) -> i64 {
        let mut through = self.folded_through;
        for e in self.entries.iter().take(FOLD_MAX) {
            out.extend(e.keys.iter().map(|k| (*k, e.stored, e.seq)));
            through = e.seq;
        }
        through
    }

    /// Drops the statements now folded, through `through`.
    fn folded(&mut self, through: i64) {
        while self.entries.front().is_some_and(|e| e.seq <= through) {
            self.entries.pop_front();
        }
        self.folded_through = through;
        self.oldest_since = (!self.entries.is_empty()).then(Instant::now);
    }
}

/// What a query asks of the tail, besides its keys.
pub(super) struct TailFilter<'a> {
    pub keys: &'a [i64],
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    /// Resume after (stored, seq); a `None` seq (unknown statement) admits only
    /// positions whose `stored` alone decides, as SQL row-value comparison does.
    pub after: Option<(i64, Option<i64>)>,
    pub ascending: bool,
}

impl TailFilter<'_> {
    fn admits(&self, e: &TailEntry) -> bool {
        if self.since_us.is_some_and(|s| e.stored <= s)
            || self.until_us.is_some_and(|u| e.stored > u)
        {
            return false;
        }
        if let Some((stored, seq)) = self.after {
            let ord = match e.stored.cmp(&stored) {
                std::cmp::Ordering::Equal => match seq {
                    Some(seq) => e.seq.cmp(&seq),
                    None => return false,
                },
                o => o,
            };
            let past = if self.ascending {
                ord.is_gt()
            } else {
                ord.is_lt()
            };
            if !past {
                return false;
            }
        }
        self.keys.iter().all(|k| e.keys.contains(k))
    }
}

#[derive(Default)]
pub(super) struct KeyIndex {
    tail: Mutex<Tail>,
    /// Signals new entries, a finished fold, and closing.
    changed: Condvar,
}

impl KeyIndex {
    fn lock(&self) -> MutexGuard<'_, Tail> {
        // A panic elsewhere must not stop queries: the tail stays consistent because
        // every mutation is a single push or drain.
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index of a store whose index is folded through `folded_through`, with a
    /// catch-up still to run in the background when `catch_up` says so.
    pub fn new(folded_through: i64, catch_up: Option<&CatchUp>) -> Self {
        let k = KeyIndex::default();
        let mut t = k.lock();
        t.folded_through = match catch_up {
            // The tail holds what is stored from now on, after `target`.
            Some(c) => {
                t.catching_up = Some((c.through, c.target));
                c.target
            }
            None => folded_through,
        };
        drop(t);
        k
    }

    /// `(folded through, of)` while the index is being caught up with the statements
    /// stored before the start; `None` once it answers for every statement.
    pub fn catching_up(&self) -> Option<(i64, i64)> {
        self.lock().catching_up
    }

    /// Adds the keys of statements just committed (in `seq` order).
    pub fn push(&self, entries: Vec<TailEntry>) {
        if entries.is_empty() {
            return;
        }
        let mut t = self.lock();
        if t.entries.is_empty() {
            t.oldest_since = Some(Instant::now());
        }
        t.entries.extend(entries);
        drop(t);
        self.changed.notify_all();
    }

    /// Blocks the writer while the tail is full (the indexer is behind).
    pub fn wait_for_room(&self) {
        let mut t = self.lock();
        while t.entries.len() >= TAIL_MAX && !t.closing {
            t = self.changed.wait(t).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The (stored, seq) of tail statements a query may match, sorted in the query's
    /// order, for a reader whose index snapshot is folded through `folded_through`.
    /// `None` when the tail has since dropped statements that snapshot lacks: the
    /// reader must take a fresh snapshot.
    pub fn candidates(&self, folded_through: i64, f: &TailFilter<'_>) -> Option<Vec<(i64, i64)>> {
        let t = self.lock();
        if t.folded_through > folded_through {
            return None;
        }
        let mut out: Vec<(i64, i64)> = t
            .entries
            .iter()
            .filter(|e| e.seq > folded_through && f.admits(e))
            .map(|e| (e.stored, e.seq))
            .collect();
        drop(t);
        out.sort_unstable();
        if !f.ascending {
            out.reverse();
        }
        Some(out)
    }

    /// Asks the indexer to fold what is left and stop.
    pub fn close(&self) {
        self.lock().closing = true;
        self.changed.notify_all();
    }

    /// The indexer thread: catches up with the statements stored before the start when
    /// `catch_up` says so, then folds the tail into `statement_keys` until closed.
    pub fn run_indexer(&self, mut conn: Connection, mut catch_up: Option<CatchUp>) {
        if let Some(c) = &catch_up {
            tracing::warn!(
                "folding the keys of {} statements into the key index while serving; \
                 filtered statement queries answer 503 until it is done",
                c.target - c.through
            );
        }
        let started = Instant::now();
        while let Some(c) = catch_up.as_mut() {
            if self.lock().closing {
                // Where it stopped is recorded: the next start goes on from there.
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                return;
            }
            match self.catch_up_step(&mut conn, c) {
                Ok(true) => {
                    tracing::info!(
                        "the key index answers for every statement again (caught up in {:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                    catch_up = None;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!("catching up the key index failed: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        loop {
            let (triples, through) = {
                let mut t = self.lock();
                loop {
                    let due = t.entries.len() >= FOLD_MIN
                        || t.oldest_since.is_some_and(|s| s.elapsed() >= FOLD_AGE);
                    if (due || t.closing) && !t.entries.is_empty() {
                        break;
                    }
                    if t.closing {
                        drop(t);
                        // Leave the index whole in its main file.
                        let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                        return;
                    }
                    t = self
                        .changed
                        .wait_timeout(t, FOLD_AGE / 4)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                let mut triples = Vec::with_capacity(t.entries.len().min(FOLD_MAX) * 12);
                let through = t.batch_into(&mut triples);
                (triples, through)
            };
            match fold(&mut conn, triples, through) {
                Ok(()) => {
                    self.lock().folded(through);
                    self.changed.notify_all();
                }
                Err(e) => {
                    // The entries stay in the tail (still served to queries); try again.
                    tracing::error!("folding statement keys failed: {e}");
                    if self.lock().closing {
                        // A stop must not wait for the disk (a full one never lets the
                        // fold through): the statements keep their keys, and the next
                        // start folds what the index lacks.
                        tracing::warn!("stopping with statements the key index lacks; the next start folds them");
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}

/// A catch-up left for the indexer thread: the statements after `through` up to
/// `target` (the last one stored before the start) are not in the index yet.
pub(super) struct CatchUp {
    /// A read-only connection to the statements.
    pub statements: Connection,
    pub through: i64,
    pub target: i64,
    /// Statements read per step (`CATCH_UP_STEP`).
    pub step: i64,
}

impl KeyIndex {
    /// Folds the next statements stored before the start, and everything the tail holds
    /// (stored since), in one transaction. The index file records how far the catch-up has
    /// come, not the tail's statements folded meanwhile: after a crash the next start
    /// folds those again (the entries are the same; inserting one twice changes nothing).
    /// Returns whether the catch-up is done, when the index answers for every statement.
    fn catch_up_step(&self, conn: &mut Connection, c: &mut CatchUp) -> rusqlite::Result<bool> {
        let (mut triples, upto) = statement_entries(&c.statements, c.through, c.target, c.step)?;
        let done = upto == c.through || upto >= c.target;
        let tail_through = self.lock().batch_into(&mut triples);
        fold(conn, triples, if done { tail_through } else { upto })?;
        c.through = upto;
        let mut t = self.lock();
        t.folded(tail_through);
        t.catching_up = (!done).then_some((upto, c.target));
        drop(t);
        self.changed.notify_all();
        Ok(done)
    }
}

/// The index entries of the statements after `after` through `upto` (at most `limit` of
/// them, in `seq` order), from their `keys` columns, and the last `seq` read (`after` when
/// none).
fn statement_entries(
    statements: &Connection,
    after: i64,
    upto: i64,
    limit: i64,
) -> rusqlite::Result<(Vec<Entry>, i64)> {
    let mut read = statements.prepare_cached(
        "SELECT seq, stored, keys FROM statements WHERE seq > ?1 AND seq <= ?2
         ORDER BY seq LIMIT ?3",
    )?;
    let mut rows = read.query(params![after, upto, limit])?;
    let mut triples = Vec::new();
    let mut last = after;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let stored: i64 = row.get(1)?;
        let keys: String = row.get(2)?;
        triples.extend(hashes_of(&keys).iter().map(|k| (*k, stored, seq)));
        last = seq;
    }
    Ok((triples, last))
}

/// Writes index entries and the new high-water mark in one transaction. Sorted input
/// makes consecutive inserts land on the same pages.
fn fold(
    conn: &mut Connection,
    mut triples: Vec<(i64, i64, i64)>,
    through: i64,
) -> rusqlite::Result<()> {
    triples.sort_unstable();
    triples.dedup();
    let tx = conn.transaction()?;
    {
        // Many rows per statement execution: the per-execution overhead, not the B-tree,
        // dominated one-row inserts.
        let rows = vec!["(?,?,?)"; FOLD_ROWS].join(",");
        let mut insert_many = tx.prepare_cached(&format!(
            "INSERT OR IGNORE INTO statement_keys (key, stored, seq) VALUES {rows}"
        ))?;
        let mut chunks = triples.chunks_exact(FOLD_ROWS);
        for chunk in &mut chunks {
            let values = chunk
                .iter()
                .flat_map(|(k, stored, seq)| [*k, *stored, *seq]);
            insert_many.execute(rusqlite::params_from_iter(values))?;
        }
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO statement_keys (key, stored, seq) VALUES (?1, ?2, ?3)",
        )?;
        for (k, stored, seq) in chunks.remainder() {
            insert.execute(params![k, stored, seq])?;
        }
        tx.execute(
            "UPDATE meta SET folded_through = ?1 WHERE id = 1",
            params![through],
        )?;
    }
    tx.commit()
}

/// The index entries of a statement with filter keys `keys`: each key's hash, and each
/// filter key's within each department whose subtree holds the statement
/// (`departments::keys_within`), which department readers' queries scan.
pub(super) fn index_hashes<K: AsRef<str>>(keys: &[K]) -> Box<[i64]> {
    keys.iter()
        .map(|k| key_hash(k.as_ref()))
        .chain(
            crate::departments::keys_within(keys)
                .iter()
                .map(|k| key_hash(k)),
        )
        .collect()
}

/// The index entries of a statement's `keys` column.
pub(super) fn hashes_of(keys: &str) -> Box<[i64]> {
    let keys: Vec<&str> = keys.split('\n').filter(|k| !k.is_empty()).collect();
    index_hashes(&keys)
}

/// The index file's layout (`PRAGMA user_version`). 1: entries for keys within
/// departments. A file of an older layout is rebuilt on open if the store holds any
/// department's statement (a root-only store's entries are the same in both).
const LAYOUT: i64 = 1;

/// Statements `open` left to the indexer thread: `(folded through, last stored)`.
pub(super) type Unfolded = Option<(i64, i64)>;

/// Opens the index file beside the statements and folds whatever the statements hold
/// beyond its high-water mark, when that is at most `fold_at_open` statements (what a
/// crash leaves is at most the tail's bound). Returns the connection, that mark, and the
/// statements left to fold (`(mark, last seq)`) when there are more: an index rebuilt
/// whole, or lost, is then caught up by the indexer thread while the store serves.
pub(super) fn open(
    path: &str,
    statements: &Connection,
    fold_at_open: i64,
) -> Result<(Connection, i64, Unfolded), String> {
    let e = |e: rusqlite::Error| e.to_string();
    let mut conn = Connection::open(path).map_err(e)?;
    // The index is rebuilt from the statements after a crash, so its commits need no
    // fsync; NORMAL keeps the file consistent (WAL) without one.
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=2048; PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864;",
    )
    .map_err(e)?;
    conn.execute_batch(SCHEMA).map_err(e)?;
    let mut through: i64 = conn
        .query_row("SELECT folded_through FROM meta WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map_err(e)?;
    let last: i64 = statements
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM statements", [], |r| {
            r.get(0)
        })
        .map_err(e)?;
    let layout: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(e)?;
    let stale = layout < LAYOUT
        && through > 0
        && statements
            // A department's record key is `id department`: the id index answers.
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM statements WHERE instr(id, ' ') > 0)",
                [],
                |r| r.get::<_, bool>(0),
            )
            .map_err(e)?;
    if through > last || stale {
        if stale {
            // Built before department readers had keys of their own.
            tracing::warn!("the key index lacks the keys within departments; rebuilding it");
        } else {
            // Not this store's index (or the statements were restored from an older copy).
            tracing::warn!("the key index is ahead of the statements; rebuilding it");
        }
        conn.execute_batch("DELETE FROM statement_keys; UPDATE meta SET folded_through = 0;")
            .map_err(e)?;
        through = 0;
    }
    if layout < LAYOUT {
        conn.execute_batch(&format!("PRAGMA user_version = {LAYOUT}"))
            .map_err(e)?;
    }
    // Left to the indexer thread (a catch-up while the store serves): more than
    // `fold_at_open` statements, or what a full disk refuses to take now (a full disk must
    // not keep the store from opening: reads need no space; the thread retries until
    // space is freed).
    let mut left = last - through > fold_at_open;
    if !left && through < last {
        tracing::info!(
            "folding the keys of {} statements into the index",
            last - through
        );
    }
    while !left && through < last {
        let (triples, upto) =
            statement_entries(statements, through, last, CATCH_UP_CHUNK).map_err(e)?;
        if upto == through {
            break;
        }
        match fold(&mut conn, triples, upto) {
            Ok(()) => through = upto,
            Err(f) if f.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                tracing::warn!(
                    "the disk is full: the keys of {} statements are folded into the index \
                     once space is freed; filtered statement queries answer 503 until then",
                    last - through
                );
                left = true;
            }
            Err(f) => return Err(e(f)),
        }
    }
    // From here on the checkpointer (`spawn_checkpointer`) empties this WAL once it passes
    // its limit. Checkpoints made here, every 8 MB of index, fsynced the index file at
    // moments of their own, and each one stalled the statements' commits behind it: W1's
    // p99 with a department's keys went from 18 to 37 ms (docs/PERFORMANCE.md).
    conn.execute_batch("PRAGMA wal_autocheckpoint=0;")
        .map_err(e)?;
    Ok((conn, through, left.then_some((through, last))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statements table as the key index reads it: `n` statements, each with the key
    /// `all` and one of `k:0` / `k:1`.
    fn statements(path: &std::path::Path, n: i64) -> Connection {
        let c = Connection::open(path).expect("open the statements");
        c.execute_batch(
            "CREATE TABLE statements (seq INTEGER PRIMARY KEY, stored INTEGER, keys TEXT);",
        )
        .expect("create");
        for seq in 1..=n {
            c.execute(
                "INSERT INTO statements (seq, stored, keys) VALUES (?1, ?2, ?3)",
                params![seq, 1_000 + seq, format!("all\nk:{}", seq % 2)],
            )
            .expect("insert");
        }
        c
    }

    fn entries(index: &Connection, key: &str) -> i64 {
        index
            .query_row(
                "SELECT count(*) FROM statement_keys WHERE key = ?1",
                params![key_hash(key)],
                |r| r.get(0),
            )
            .expect("count")
    }

    fn folded_through(index: &Connection) -> i64 {
        index
            .query_row("SELECT folded_through FROM meta", [], |r| r.get(0))
            .expect("folded_through")
    }

    /// An index far behind its statements (rebuilt whole, or lost) is caught up by the
    /// indexer while the store serves: in steps, folding the writes that arrive meanwhile
    /// along with them, recording only its own progress (a stop goes on from there), and
    /// answering for every statement only once done.
    #[test]
    fn a_catch_up_while_serving_goes_in_steps_and_records_its_own_progress() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("lrs.db");
        let keys = dir.path().join("lrs.db.keys");
        let keys = keys.to_str().expect("utf-8 path");
        let stored = statements(&db, 25);
        // More than `fold_at_open` statements to fold: left to the indexer.
        let (mut index, through, left) = open(keys, &stored, 0).expect("open");
        assert_eq!((through, left), (0, Some((0, 25))));
        let catch_up = |through| CatchUp {
            statements: Connection::open(&db).expect("a reader"),
            through,
            target: 25,
            step: 10,
        };
        let mut c = catch_up(0);
        let ki = KeyIndex::new(through, Some(&c));
        assert_eq!(ki.catching_up(), Some((0, 25)));
        // Two statements written meanwhile reach the tail.
        ki.push(
            [26, 27]
                .map(|seq| TailEntry {
                    seq,
                    stored: 1_000 + seq,
                    keys: hashes_of("all\nk:9"),
                })
                .into(),
        );
        assert!(!ki.catch_up_step(&mut index, &mut c).expect("step"));
        assert_eq!(ki.catching_up(), Some((10, 25)));
        assert_eq!(entries(&index, "all"), 12);
        assert_eq!(entries(&index, "k:9"), 2);
        // The file says how far the catch-up came, not how far the tail's statements go.
        assert_eq!(folded_through(&index), 10);
        assert!(ki.lock().entries.is_empty());

        // Stopped here, the next start goes on from the mark, in the background again.
        drop(index);
        let (mut index, through, left) = open(keys, &stored, 0).expect("reopen");
        assert_eq!((through, left), (10, Some((10, 25))));
        let mut c = catch_up(through);
        let ki = KeyIndex::new(through, Some(&c));
        assert!(!ki.catch_up_step(&mut index, &mut c).expect("step"));
        assert_eq!(ki.catching_up(), Some((20, 25)));
        assert_eq!(folded_through(&index), 20);
        assert!(ki.catch_up_step(&mut index, &mut c).expect("last step"));
        assert_eq!(ki.catching_up(), None);
        assert_eq!(folded_through(&index), 25);
        // Every statement once: 25 from the statements, 2 from the first run's tail.
        assert_eq!(entries(&index, "all"), 27);
        assert_eq!(entries(&index, "k:1"), 13);
        assert_eq!(entries(&index, "k:9"), 2);
    }
}
