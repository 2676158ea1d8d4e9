//! The monitor, pure part: what it remembers between runs ([`MonitorState`]) and the rules
//! it applies to each new checkpoint, each new entry and each statement's content
//! (`docs/AUDIT.md` §6.5 and §8). The command `karmayogi-lrs audit monitor` fetches; this
//! module decides.
//!
//! One pass: [`Monitor::check_checkpoint`] checks the signed checkpoint against the last
//! verified one; [`Monitor::begin`] opens a [`Batch`] to which the entries of the new
//! leaves are pushed in order (each parsed and classified, its leaf hash appended to the
//! right edge of the tree); the content of each new statement leaf is recorded with
//! [`Batch::record_content`]; [`Batch::finish`] checks that the new leaves lead to the
//! checkpoint's root and returns the report and, unless something was tampered with, the
//! new state to persist. [`Monitor::conclude`] turns statements still missing and
//! erasures still incomplete after a grace period into findings.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::leaf::{self, ErasureLeaf, Leaf, Salt, MAX_ERASED_PER_LEAF};
use super::merkle::{self, Hash};
use super::note::{Checkpoint, Verifier};
use crate::departments::Department;

/// Serde of hashes as base64 strings (the form of checkpoints).
mod b64 {
    use super::Hash;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_base64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_base64(&s).ok_or_else(|| D::Error::custom("not the base64 of a hash"))
    }

    pub mod vec {
        use super::Hash;
        use serde::{de::Error, ser::SerializeSeq, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &[Hash], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for h in v {
                seq.serialize_element(&h.to_base64())?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
            Vec::<String>::deserialize(d)?
                .iter()
                .map(|s| {
                    Hash::from_base64(s).ok_or_else(|| D::Error::custom("not the base64 of a hash"))
                })
                .collect()
        }
    }
}

/// The right edge of a tree: the roots of its maximal perfect subtrees, largest (leftmost)
/// first, one per set bit of the size. Enough to append leaves and compute the new root
/// without the old leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier {
    pub size: u64,
    #[serde(with = "b64::vec")]
    pub hashes: Vec<Hash>,
}

impl Frontier {
    /// Appends the leaf hash `h` (leaf `size`), merging the subtrees it completes.
    pub fn push(&mut self, h: Hash) {
        let mut node = h;
        let mut n = self.size;
        // Each trailing one bit of the old size is a perfect subtree `node` now completes.
        while n & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            node = merkle::node_hash(&left, &node);
            n >>= 1;
        }
        self.hashes.push(node);
        self.size += 1;
    }

    /// The Merkle Tree Hash of the tree (the empty root for size 0).
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return merkle::empty_root();
        };
        it.fold(*last, |right, left| merkle::node_hash(left, &right))
    }

    /// Whether the hash count matches the size (a state file edited by hand may not).
    pub fn is_well_formed(&self) -> bool {
        self.hashes.len() == self.size.count_ones() as usize
    }
}

/// An erasure of which some parts have been seen: all its leaves carry the same receipt
/// hash, time and part count (§6.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingErasure {
    pub erased_us: u64,
    pub parts: u16,
    /// Part number → (leaf index of that part, first and last index it names).
    pub seen: BTreeMap<u16, (u64, u64, u64)>,
    /// When (caller's clock, seconds) the first part was seen.
    pub noticed_at: u64,
}

/// What the monitor remembers between passes (persisted as JSON by the command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// The log's origin (the name of its key).
    pub origin: String,
    /// The last verified checkpoint note, as served (empty before the first).
    pub checkpoint: String,
    pub size: u64,
    #[serde(with = "b64")]
    pub root: Hash,
    pub frontier: Frontier,
    /// Leaves that are not statement leaves (erasure leaves, and malformed entries). Every
    /// other index below `size` is a statement leaf: statement leaves are the vast
    /// majority, so the complement stays small.
    pub non_statements: BTreeSet<u64>,
    /// Erased statement leaf → the erasure leaf that named it.
    pub erased: BTreeMap<u64, u64>,
    /// Statement leaves whose content the log did not serve and no erasure explains yet →
    /// when (caller's clock, seconds) that was first seen.
    pub missing: BTreeMap<u64, u64>,
    /// Erasures awaiting other parts, by receipt hash (hex).
    pub pending_erasures: BTreeMap<String, PendingErasure>,
    /// Receipt hashes (hex) of erasures all of whose parts were seen.
    pub complete_erasures: BTreeSet<String>,
    /// Statement leaves whose content was checked and matched, over all passes.
    pub contents_checked: u64,
}

impl MonitorState {
    /// The state of a monitor that has seen nothing of the log `origin`.
    pub fn new(origin: &str) -> MonitorState {
        MonitorState {
            origin: origin.to_string(),
            checkpoint: String::new(),
            size: 0,
            root: merkle::empty_root(),
            frontier: Frontier::default(),
            non_statements: BTreeSet::new(),
            erased: BTreeMap::new(),
            missing: BTreeMap::new(),
            pending_erasures: BTreeMap::new(),
            complete_erasures: BTreeSet::new(),
            contents_checked: 0,
        }
    }

    fn is_statement(&self, index: u64) -> bool {
        index < self.size && !self.non_statements.contains(&index)
    }
}

/// A finding of the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Statement leaf `index` was erased by the erasure leaf `by` (receipt hash, time).
    Erased {
        index: u64,
        by: u64,
        receipt: Hash,
        erased_us: u64,
    },
    /// The log broke one of its rules; `index` is the leaf concerned, if one is.
    Tampered { reason: String, index: Option<u64> },
}

impl Finding {
    fn tampered(index: Option<u64>, reason: impl Into<String>) -> Finding {
        Finding::Tampered {
            reason: reason.into(),
            index,
        }
    }

    pub fn is_tampered(&self) -> bool {
        matches!(self, Finding::Tampered { .. })
    }
}

/// One line per finding: `erased: leaf N (…)` or `tampered: …`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Erased {
                index,
                by,
                receipt,
                erased_us,
            } => {
                let at = i64::try_from(*erased_us)
                    .ok()
                    .and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                    .unwrap_or_else(|| format!("{erased_us} µs"));
                write!(
                    f,
                    "erased: leaf {index} (by erasure leaf {by} at {at}, receipt {})",
                    receipt.to_hex()
                )
            }
            Finding::Tampered {
                reason,
                index: Some(i),
            } => write!(f, "tampered: leaf {i}: {reason}"),
            Finding::Tampered {
                reason,
                index: None,
            } => write!(f, "tampered: {reason}"),
        }
    }
}

/// The findings of one pass and its counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Size of the tree verified (or the last verified one, if this pass failed).
    pub tree_size: u64,
    /// Entries parsed and hashed in this pass.
    pub leaves_checked: u64,
    /// Statement contents recomputed and found equal in this pass.
    pub contents_checked: u64,
}

impl Report {
    pub fn erased(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| matches!(f, Finding::Erased { .. }))
            .count()
    }

    pub fn tampered(&self) -> usize {
        self.findings.iter().filter(|f| f.is_tampered()).count()
    }

    /// The summary line: `ok: tree size N, M leaves checked, E erased` or
    /// `TAMPERED: T findings (…)`.
    pub fn summary(&self) -> String {
        match self.tampered() {
            0 => format!(
                "ok: tree size {}, {} leaves checked, {} erased",
                self.tree_size,
                self.leaves_checked,
                self.erased()
            ),
            t => format!(
                "TAMPERED: {t} finding{} (tree size {}, {} leaves checked, {} erased)",
                if t == 1 { "" } else { "s" },
                self.tree_size,
                self.leaves_checked,
                self.erased()
            ),
        }
    }
}

/// The outcome of a checkpoint check that found nothing wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointStep {
    /// Same size and root as the last verified checkpoint.
    Unchanged,
    /// A larger tree to read from the last verified size.
    Grow(NewCheckpoint),
}

/// A signed checkpoint larger than the last verified one, not yet shown to extend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

/// What the log served for a statement leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The statement, its salt and its department recompute to the logged leaf.
    Matches,
    /// They do not (or the response is not a valid opening): why.
    Differs(String),
    /// The log says the statement is not there.
    Absent,
}

/// The monitor of one log: its key and its state.
#[derive(Debug, Clone)]
pub struct Monitor {
    verifier: Verifier,
    state: MonitorState,
}

impl Monitor {
    /// A monitor for the log whose key is `verifier` (its name is the origin). Fails if
    /// `state` belongs to another origin or is inconsistent.
    pub fn new(verifier: Verifier, state: MonitorState) -> Result<Monitor, String> {
        if state.origin != verifier.name() {
            return Err(format!(
                "the state is for the log `{}`, the key for `{}`",
                state.origin,
                verifier.name()
            ));
        }
        if state.frontier.size != state.size
            || !state.frontier.is_well_formed()
            || state.frontier.root() != state.root
        {
            return Err("the state's tree edge does not match its size and root".into());
        }
        Ok(Monitor { verifier, state })
    }

    pub fn state(&self) -> &MonitorState {
        &self.state
    }

    /// Checks a checkpoint note served by the log: signed by the log's key for its origin;
    /// not smaller than the last verified one (rollback); at the same size, the same root
    /// (fork).
    pub fn check_checkpoint(&self, note: &[u8]) -> Result<CheckpointStep, Finding> {
        let (cp, _) = Checkpoint::open(
            note,
            &self.state.origin,
            std::slice::from_ref(&self.verifier),
        )
        .map_err(|e| Finding::tampered(None, format!("checkpoint refused: {e}")))?;
        let old = self.state.size;
        if cp.size < old {
            return Err(Finding::tampered(
                None,
                format!(
                    "rollback: checkpoint size {} is below the verified size {old}",
                    cp.size
                ),
            ));
        }
        if cp.size == old {
            if cp.root != self.state.root {
                return Err(Finding::tampered(
                    None,
                    format!(
                        "fork: checkpoint of size {old} has root {}, the verified one {}",
                        cp.root.to_base64(),
                        self.state.root.to_base64()
                    ),
                ));
            }
            return Ok(CheckpointStep::Unchanged);
        }
        Ok(CheckpointStep::Grow(NewCheckpoint {
            checkpoint: cp,
            note: String::from_utf8_lossy(note).into_owned(),
        }))
    }

    /// Starts reading the leaves `[state size, new size)` of `new`.
    pub fn begin(&self, new: NewCheckpoint, now: u64) -> Batch {
        Batch {
            state: self.state.clone(),
            new,
            now,
            findings: Vec::new(),
            statements: BTreeMap::new(),
            leaves_checked: 0,
            contents_checked: 0,
        }
    }

    /// Installs the state returned by a successful [`Batch::finish`].
    pub fn commit(&mut self, state: MonitorState) {
        self.state = state;
    }

    /// Findings for what is still unexplained `grace` seconds after it was noticed
    /// (`now` on the caller's clock): statement leaves missing with no erasure naming
    /// them, erasures missing parts. With `grace = 0`, everything still open.
    pub fn conclude(&self, now: u64, grace: u64) -> Vec<Finding> {
        let due = |at: u64| at.saturating_add(grace) <= now;
        let mut out: Vec<Finding> = self
            .state
            .missing
            .iter()
            .filter(|(_, &at)| due(at))
            .map(|(&i, _)| {
                Finding::tampered(
                    Some(i),
                    "the statement is missing and no erasure leaf names it",
                )
            })
            .collect();
        for (receipt, p) in &self.state.pending_erasures {
            if due(p.noticed_at) {
                let first = p.seen.values().map(|s| s.0).min();
                out.push(Finding::tampered(
                    first,
                    format!(
                        "erasure {receipt} has {} of its {} parts",
                        p.seen.len(),
                        p.parts
                    ),
                ));
            }
        }
        out
    }
}

/// The leaves of one new checkpoint, being read.
#[derive(Debug, Clone)]
pub struct Batch {
    state: MonitorState,
    new: NewCheckpoint,
    now: u64,
    findings: Vec<Finding>,
    /// New statement leaves → their leaf hash, awaiting a content check.
    statements: BTreeMap<u64, Hash>,
    leaves_checked: u64,
    contents_checked: u64,
}

impl Batch {
    /// The index of the next entry to push.
    pub fn next_index(&self) -> u64 {
        self.state.frontier.size
    }

    /// The size of the checkpoint being read.
    pub fn target_size(&self) -> u64 {
        self.new.checkpoint.size
    }

    /// The new statement leaves pushed so far and their leaf hashes: the leaves whose
    /// content to check.
    pub fn statement_leaves(&self) -> impl Iterator<Item = (u64, Hash)> + '_ {
        self.statements.iter().map(|(&i, &h)| (i, h))
    }

    /// Appends the entry of leaf [`Batch::next_index`]: hashes it onto the tree's edge,
    /// parses and classifies it.
    pub fn push_entry(&mut self, entry: &[u8]) {
        let index = self.state.frontier.size;
        self.state.frontier.push(merkle::leaf_hash(entry));
        // The leaf exists from now on: erasures later in this batch may name it.
        self.state.size = index + 1;
        self.leaves_checked += 1;
        match Leaf::parse(entry) {
            Ok(Leaf::Statement(s)) => {
                self.statements.insert(index, s.leaf_hash());
            }
            Ok(Leaf::Erasure(e)) => {
                self.state.non_statements.insert(index);
                self.erasure(index, &e);
            }
            Err(e) => {
                self.state.non_statements.insert(index);
                self.findings.push(Finding::tampered(
                    Some(index),
                    format!("malformed entry: {e}"),
                ));
            }
        }
    }

    /// The rules of §6.5 for the erasure leaf at `at`.
    fn erasure(&mut self, at: u64, e: &ErasureLeaf) {
        let receipt = e.receipt.to_hex();
        let bad = |findings: &mut Vec<Finding>, why: String| {
            findings.push(Finding::tampered(Some(at), why));
        };
        // Parts: same time and count as the other parts, each part once, the indexes of
        // part k all above those of the parts before it, every part but the last full.
        let first = e.indexes.first().copied().unwrap_or(0);
        let last = e.indexes.last().copied().unwrap_or(0);
        if self.state.complete_erasures.contains(&receipt) {
            bad(
                &mut self.findings,
                format!("erasure {receipt} is complete, yet has another part"),
            );
        } else {
            let pending = self
                .state
                .pending_erasures
                .entry(receipt.clone())
                .or_insert_with(|| PendingErasure {
                    erased_us: e.erased_us,
                    parts: e.parts,
                    seen: BTreeMap::new(),
                    noticed_at: self.now,
                });
            if pending.erased_us != e.erased_us || pending.parts != e.parts {
                bad(
                    &mut self.findings,
                    format!("the parts of erasure {receipt} disagree on their time or count"),
                );
            } else if pending.seen.contains_key(&e.part) {
                bad(
                    &mut self.findings,
                    format!("part {} of erasure {receipt} appears twice", e.part),
                );
            } else {
                let out_of_order = pending.seen.iter().any(|(&p, &(_, lo, hi))| {
                    (p < e.part && hi >= first) || (p > e.part && lo <= last)
                });
                let short = e.part + 1 < e.parts && e.indexes.len() != MAX_ERASED_PER_LEAF;
                if out_of_order || short {
                    bad(
                        &mut self.findings,
                        format!(
                            "part {} of erasure {receipt} does not hold the indexes of its rank",
                            e.part
                        ),
                    );
                }
                pending.seen.insert(e.part, (at, first, last));
                if pending.seen.len() == usize::from(pending.parts) {
                    self.state.pending_erasures.remove(&receipt);
                    self.state.complete_erasures.insert(receipt.clone());
                }
            }
        }
        for &i in &e.indexes {
            if i >= at {
                bad(
                    &mut self.findings,
                    format!("names leaf {i}, which is not before it"),
                );
            } else if !self.state.is_statement(i) {
                bad(
                    &mut self.findings,
                    format!("names leaf {i}, which is not a statement leaf"),
                );
            } else if let Some(by) = self.state.erased.get(&i) {
                bad(
                    &mut self.findings,
                    format!("names leaf {i}, already erased by leaf {by}"),
                );
            } else {
                self.state.erased.insert(i, at);
                self.state.missing.remove(&i);
                self.findings.push(Finding::Erased {
                    index: i,
                    by: at,
                    receipt: e.receipt,
                    erased_us: e.erased_us,
                });
            }
        }
    }

    /// Records what the log served for the new statement leaf `index`: equal → checked;
    /// different → tampered; absent → erased if an erasure leaf named it, else missing
    /// until one does (or [`Monitor::conclude`] says tampered).
    pub fn record_content(&mut self, index: u64, content: Content) {
        if self.statements.remove(&index).is_none() {
            self.findings.push(Finding::tampered(
                Some(index),
                "content recorded for a leaf that is not a new statement leaf",
            ));
            return;
        }
        match content {
            Content::Matches => self.contents_checked += 1,
            Content::Differs(why) => self.findings.push(Finding::tampered(
                Some(index),
                format!("the statement served does not match its leaf: {why}"),
            )),
            Content::Absent => {
                if !self.state.erased.contains_key(&index) {
                    self.state.missing.insert(index, self.now);
                }
            }
        }
    }

    /// Ends the pass: all leaves up to the checkpoint's size must have been pushed and
    /// lead to its root (else the new tree does not extend the verified one). Returns the
    /// report, and the state to commit when nothing was tampered with.
    pub fn finish(mut self) -> (Report, Option<MonitorState>) {
        let size = self.new.checkpoint.size;
        if self.state.frontier.size != size {
            self.findings.push(Finding::tampered(
                None,
                format!(
                    "read {} leaves, the checkpoint has {size}",
                    self.state.frontier.size
                ),
            ));
        } else if self.state.frontier.root() != self.new.checkpoint.root {
            self.findings.push(Finding::tampered(
                None,
                format!(
                    "the leaves of the tree of size {size} do not hash to the checkpoint's root: the new tree does not extend the verified one, or the entries served are not its leaves"
                ),
            ));
        }
        let tampered = self.findings.iter().any(Finding::is_tampered);
        let report = Report {
            findings: self.findings,
            tree_size: size,
            leaves_checked: self.leaves_checked,
            contents_checked: self.contents_checked,
        };
        if tampered {
            return (report, None);
        }
        let mut state = self.state;
        state.checkpoint = self.new.note;
        state.root = self.new.checkpoint.root;
        state.contents_checked += self.contents_checked;
        (report, Some(state))
    }
}

/// The answer of `GET {LOG}/leaf?index=N`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeafOpening {
    leaf_index: u64,
    department: String,
    salt: String,
    statement: Value,
}

/// Recomputes the leaf of the statement in a `/leaf` answer (`body`, JSON) and compares it
/// with `logged`, the hash of leaf `index` in the tree.
pub fn check_opening(index: u64, logged: &Hash, body: &str) -> Content {
    let value = match leaf::parse_strict(body) {
        Ok(v) => v,
        Err(e) => return Content::Differs(format!("the answer is not JSON: {e}")),
    };
    let opening: LeafOpening = match serde_json::from_value(value) {
        Ok(o) => o,
        Err(e) => return Content::Differs(format!("the answer is malformed: {e}")),
    };
    if opening.leaf_index != index {
        return Content::Differs(format!("the answer is for leaf {}", opening.leaf_index));
    }
    let department = match Department::parse(&opening.department) {
        Ok(d) => d,
        Err(e) => return Content::Differs(format!("bad department: {e}")),
    };
    let salt = match Salt::from_hex(&opening.salt) {
        Ok(s) => s,
        Err(e) => return Content::Differs(e.to_string()),
    };
    let stored_us = match leaf::stored_us_of(&opening.statement) {
        Ok(t) => t,
        Err(e) => return Content::Differs(e.to_string()),
    };
    match leaf::statement_leaf(&opening.statement, &salt, &department, stored_us) {
        Ok(l) if l.leaf_hash() == *logged => Content::Matches,
        Ok(_) => Content::Differs(
            "its statement, salt, department and stored time recompute to another leaf".into(),
        ),
        Err(e) => Content::Differs(e.to_string()),
    }
}

/// Splits a tlog-tiles entry bundle (`u16be(len) ‖ entry`, repeated) into its entries.
pub fn parse_entry_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err("the entry bundle ends inside a length prefix".into());
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let Some(entry) = rest.get(2..2 + len) else {
            return Err("the entry bundle ends inside an entry".into());
        };
        out.push(entry);
        rest = &rest[2 + len..];
    }
    Ok(out)
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
