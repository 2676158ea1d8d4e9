//! The records of the log that the store keeps: what the sequencer reads (statements not
//! yet logged, erasures not yet logged) and what it writes (entries, stored hashes, the
//! tree size), all prepared here and above; the store only persists and finds them.
use super::merkle::Hash;

/// The log as stored: how many leaves it has and the latest signed checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogState {
    pub size: u64,
    /// The latest checkpoint note (signed; cosigned when witnesses answered) and its size.
    pub checkpoint: Option<(u64, String)>,
}

/// A stored statement the log has not taken yet.
#[derive(Debug, Clone)]
pub struct UnloggedStatement {
    /// The statement's record key (`departments::record_key`).
    pub key: String,
    /// The store's own handle of the statement's row, handed back in its `LogEntry`
    /// (the embedded store's row number; unused elsewhere).
    pub row: i64,
    pub stored_us: i64,
    /// Salt and commitment; absent for statements stored before the log existed, which
    /// the sequencer seals when it logs them (then `json` is given).
    pub seal: Option<([u8; 32], [u8; 32])>,
    pub json: Option<String>,
}

/// An erasure carried out but not yet logged.
#[derive(Debug, Clone)]
pub struct PendingErasure {
    pub id: i64,
    pub receipt_hash: Hash,
    pub erased_us: i64,
    /// Leaf indexes of the erased statements.
    pub indexes: Vec<u64>,
}

/// One leaf to append.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The entry bytes (docs/AUDIT.md section 6).
    pub entry: Vec<u8>,
    /// For a statement leaf: the statement's record key and the store's handle of its
    /// row (`UnloggedStatement::row`).
    pub statement: Option<String>,
    pub row: i64,
    /// For an erasure leaf: the erasure's id (`PendingErasure::id`).
    pub erasure: Option<i64>,
}

/// One atomic extension of the log from `old_size` leaves to `old_size + entries.len()`.
#[derive(Debug, Clone)]
pub struct LogAppend {
    pub old_size: u64,
    pub entries: Vec<LogEntry>,
    /// The stored hashes from index `stored_hash_count(old_size)` on, in order.
    pub hashes: Vec<Hash>,
    /// Seals made by the sequencer for statements stored before the log existed.
    pub seals: Vec<(String, [u8; 32], [u8; 32])>,
    /// Erasures this append logs.
    pub erasures: Vec<i64>,
    /// The last statement logged, as (stored_us, key): where an embedded store's single
    /// sequencer resumes.
    pub through: Option<(i64, String)>,
    /// The sequencer's lease holder (a store shared by several processes checks it).
    pub holder: String,
    /// How long each renewal of the lease lasts (µs): a store shared by several
    /// processes renews it while a long append goes on, so that the append is not given
    /// up for a lease that ran out while the holder was working.
    pub lease_us: i64,
}

/// What the log knows of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLog {
    pub salt: Option<[u8; 32]>,
    /// Its leaf index, once sequenced.
    pub leaf: Option<u64>,
}

/// One erasure, prepared above the store: what to delete and the pending erasure record
/// the sequencer turns into erasure leaves. The store applies it atomically.
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The subtree erased: documents are looked for in it.
    pub department: crate::departments::Department,
    /// The person's identity key as documents are keyed by it (`xapi::agent::ifi_key`).
    pub agent_key: String,
    /// Record keys of the statements to delete.
    pub statements: Vec<String>,
    /// Their leaf indexes.
    pub leaves: Vec<u64>,
    pub receipt_hash: Hash,
    pub erased_us: i64,
}

/// What an erasure deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    pub statements: usize,
    pub documents: usize,
    pub attachments: usize,
}

/// One event of the change feed: a leaf of the log as a reader of one subtree sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// The leaf's index; the event's cursor is the position after it.
    pub leaf: u64,
    pub event: FeedEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A statement leaf whose statement is still stored.
    Statement {
        /// Its record key (`departments::record_key`).
        key: String,
        /// The statement exactly as stored.
        json: String,
        /// For a voiding statement, the record key of the statement it voids.
        voids: Option<String>,
    },
    /// An erasure leaf, naming the erased leaves that lay in the reader's subtree.
    Erasure {
        erased_us: u64,
        receipt: Hash,
        leaves: Vec<u64>,
    },
}

/// A page of the feed: the events of leaves `[from, next)` that the subtree sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    /// Where the next page starts: every leaf before it was looked at.
    pub next: u64,
}
