//! Merkle tree hashing and proofs of RFC 6962 §2.1 (as restated in RFC 9162 §2.1), with
//! SHA-256: the empty tree hashes to SHA-256 of nothing, a leaf to SHA-256(0x00 ‖ entry),
//! an inner node to SHA-256(0x01 ‖ left ‖ right), and a tree of n > 1 leaves splits at the
//! largest power of two below n.
//!
//! The prover never needs the whole tree. A log stores, for every complete subtree (a
//! *node*: `2^level` leaves starting at a multiple of `2^level`), its hash once, in the order
//! in which appending leaves completes them: the *stored hash index* (the indexing of the Go
//! checksum database, which C2SP tlog-tiles are cut from). Every proof element is the hash
//! of a node or a right fold of at most 64 of them, so proofs and roots cost O(log n) stored
//! hashes, fetched in one batch through [`HashReader`].
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Size of a hash in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 tree hash (leaf, node or root).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// Standard base64 (RFC 4648 §4, padded), the form of checkpoints and of the test vectors.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses standard padded base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Option<Hash> {
        let bytes = STANDARD.decode(s).ok()?;
        Hash::from_slice(&bytes)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let bytes = hex::decode(s).ok()?;
        Hash::from_slice(&bytes)
    }

    /// The hash held in `bytes`, if it is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        Some(Hash(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest(b"").into())
}

/// The hash of a leaf holding `entry`: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    Hash(h.finalize().into())
}

/// The hash of an inner node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The Merkle Tree Hash (MTH) of the tree whose leaf hashes are `leaves`, in O(n) time and
/// O(log n) space.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    // Stack of the complete subtrees of the leaves seen so far, largest first: appending
    // leaf i merges as many subtrees as i has trailing one bits.
    let mut stack: Vec<Hash> = Vec::with_capacity(64);
    for (i, leaf) in leaves.iter().enumerate() {
        let mut h = *leaf;
        let mut i = i as u64;
        while i & 1 == 1 {
            let left = stack.pop().expect("one stacked subtree per one bit");
            h = node_hash(&left, &h);
            i >>= 1;
        }
        stack.push(h);
    }
    fold_right(&stack)
}

/// `node_hash(h0, node_hash(h1, … node_hash(h[k-2], h[k-1])))`: the hash of a range made of
/// decreasing complete subtrees, as MTH splits it.
fn fold_right(hashes: &[Hash]) -> Hash {
    let (last, rest) = hashes.split_last().expect("at least one hash to fold");
    rest.iter()
        .rev()
        .fold(*last, |acc, left| node_hash(left, &acc))
}

/// A complete subtree: the `2^level` leaves `[index·2^level, (index+1)·2^level)`. Level 0
/// nodes are the leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub level: u8,
    pub index: u64,
}

impl Node {
    /// Position of this node's hash in the append-ordered list of stored hashes.
    pub fn stored_index(&self) -> u64 {
        stored_hash_index(self.level, self.index)
    }

    /// First leaf covered.
    pub fn first_leaf(&self) -> u64 {
        self.index << self.level
    }

    /// One past the last leaf covered.
    pub fn end_leaf(&self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// Number of hashes stored for a tree of `n` leaves: every leaf and every complete inner
/// node, 2n − popcount(n).
pub fn stored_hash_count(n: u64) -> u64 {
    2 * n - u64::from(n.count_ones())
}

/// Stored hash index of the node at `level`, `index`. Appending leaf i stores its leaf hash
/// at [`stored_hash_count`]`(i)`, followed by the hashes of the nodes it completes, one per
/// trailing one bit of i, lowest level first. The node (level, index) is completed by leaf
/// `((index+1)·2^level) − 1`, as the `level`-th hash of that batch.
pub fn stored_hash_index(level: u8, index: u64) -> u64 {
    let completing_leaf = ((index + 1) << level) - 1;
    stored_hash_count(completing_leaf) + u64::from(level)
}

/// The node whose hash is stored at `stored_index` (inverse of [`stored_hash_index`]).
pub fn split_stored_hash_index(stored_index: u64) -> Node {
    // Find the leaf n whose batch holds stored_index: the largest n with count(n) ≤ index.
    // count(n) ∈ [2n − 64, 2n], so n is at most 32 above index/2.
    let mut n = stored_index / 2;
    while stored_hash_count(n + 1) <= stored_index {
        n += 1;
    }
    let level = (stored_index - stored_hash_count(n)) as u8;
    Node {
        level,
        index: ((n + 1) >> level) - 1,
    }
}

/// The nodes whose hashes appending leaf `n` (0-based) completes, in stored order: the leaf
/// itself, then one node per trailing one bit of `n`.
pub fn nodes_completed_by(n: u64) -> Vec<Node> {
    (0..=n.trailing_ones() as u8)
        .map(|level| Node {
            level,
            index: n >> level,
        })
        .collect()
}

/// The maximal complete subtrees making up the leaf range `[start, end)`, left to right.
/// When `start` is a multiple of a power of two ≥ `end − start` (every range a proof or a
/// root needs), they shrink from left to right and the range's MTH is their right fold.
pub fn range_nodes(start: u64, end: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut lo = start;
    while lo < end {
        let mut level = if lo == 0 { 63 } else { lo.trailing_zeros() };
        while level > 0 && (1u64 << level) > end - lo {
            level -= 1;
        }
        nodes.push(Node {
            level: level as u8,
            index: lo >> level,
        });
        lo += 1u64 << level;
    }
    nodes
}

/// Read access to a log's stored hashes.
pub trait HashReader {
    type Error;

    /// The stored hashes at `indexes` ([`stored_hash_index`]), in the order asked.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error>;
}

/// A stored hash index beyond the end of an in-memory list of stored hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingHash(pub u64);

impl fmt::Display for MissingHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored hash {} is missing", self.0)
    }
}

impl std::error::Error for MissingHash {}

/// Stored hashes held in memory, index i at position i.
impl HashReader for [Hash] {
    type Error = MissingHash;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MissingHash> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|u| self.get(u))
                    .copied()
                    .ok_or(MissingHash(i))
            })
            .collect()
    }
}

/// Why a proof or root could not be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProveError<E> {
    /// The arguments name no proof (index ≥ size, m = 0, m > n …).
    Range(String),
    /// The reader failed.
    Read(E),
    /// The reader returned a different number of hashes than asked.
    ShortRead { asked: usize, got: usize },
}

impl<E: fmt::Display> fmt::Display for ProveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProveError::Range(m) => f.write_str(m),
            ProveError::Read(e) => write!(f, "reading stored hashes: {e}"),
            ProveError::ShortRead { asked, got } => {
                write!(f, "asked for {asked} stored hashes, got {got}")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ProveError<E> {}

/// What a proof is made of: each element is the right fold of the hashes of its nodes.
pub type ProofPlan = Vec<Vec<Node>>;

/// The nodes of the inclusion proof of leaf `index` in the tree of `size` leaves
/// (RFC 6962 §2.1.1 PATH), deepest element first.
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, String> {
    if index >= size {
        return Err(format!("leaf index {index} is not below tree size {size}"));
    }
    let mut plan = Vec::new();
    path(index, 0, size, &mut plan);
    Ok(plan)
}

/// PATH(m, D[lo:hi]): recurses first and pushes on the way back, so the deepest element
/// comes first (depth ≤ 64).
fn path(m: u64, lo: u64, hi: u64, out: &mut ProofPlan) {
    let n = hi - lo;
    if n == 1 {
        return;
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(m, lo, lo + k, out);
        out.push(range_nodes(lo + k, hi));
    } else {
        path(m - k, lo + k, hi, out);
        out.push(range_nodes(lo, lo + k));
    }
}

/// The nodes of the consistency proof between the trees of `m` and `n` leaves
/// (RFC 6962 §2.1.2 PROOF = SUBPROOF(m, D[0:n], true)). Defined for 0 < m ≤ n; m = n gives
/// the empty proof.
pub fn consistency_plan(m: u64, n: u64) -> Result<ProofPlan, String> {
    if m == 0 || m > n {
        return Err(format!(
            "no consistency proof from tree size {m} to {n} (needs 0 < m ≤ n)"
        ));
    }
    let mut plan = Vec::new();
    subproof(m, 0, n, true, &mut plan);
    Ok(plan)
}

fn subproof(m: u64, lo: u64, hi: u64, whole: bool, out: &mut ProofPlan) {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(range_nodes(lo, hi));
        }
        return;
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(m, lo, lo + k, whole, out);
        out.push(range_nodes(lo + k, hi));
    } else {
        subproof(m - k, lo + k, hi, false, out);
        out.push(range_nodes(lo, lo + k));
    }
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The stored hash indexes a plan needs, in plan order (one batch read).
pub fn plan_indexes(plan: &[Vec<Node>]) -> Vec<u64> {
    plan.iter().flatten().map(Node::stored_index).collect()
}

/// Folds the hashes read for [`plan_indexes`] (same order) into the proof elements. For
/// stores that read asynchronously: plan, read, then fold. `None` if the count differs.
pub fn fold_plan(plan: &[Vec<Node>], hashes: &[Hash]) -> Option<Vec<Hash>> {
    if plan.iter().any(Vec::is_empty) || hashes.len() != plan.iter().map(Vec::len).sum::<usize>() {
        return None;
    }
    let mut at = 0;
    Some(
        plan.iter()
            .map(|element| {
                let h = fold_right(&hashes[at..at + element.len()]);
                at += element.len();
                h
            })
            .collect(),
    )
}

/// Reads every node of `plan` in one batch and folds each element.
pub fn resolve_plan<R: HashReader + ?Sized>(
    plan: &[Vec<Node>],
    reader: &R,
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    let indexes = plan_indexes(plan);
    let hashes = reader.read_hashes(&indexes).map_err(ProveError::Read)?;
    fold_plan(plan, &hashes).ok_or(ProveError::ShortRead {
        asked: indexes.len(),
        got: hashes.len(),
    })
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    index: u64,
    size: u64,
    reader: &R,
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    let plan = inclusion_plan(index, size).map_err(ProveError::Range)?;
    resolve_plan(&plan, reader)
}

/// The consistency proof from the tree of `m` leaves to the tree of `n` leaves.
pub fn consistency_proof<R: HashReader + ?Sized>(
    m: u64,
    n: u64,
    reader: &R,
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    let plan = consistency_plan(m, n).map_err(ProveError::Range)?;
    resolve_plan(&plan, reader)
}

/// The root of the tree of `size` leaves, from its stored hashes.
pub fn tree_hash<R: HashReader + ?Sized>(
    size: u64,
    reader: &R,
) -> Result<Hash, ProveError<R::Error>> {
    if size == 0 {
        return Ok(empty_root());
    }
    let plan = vec![range_nodes(0, size)];
    Ok(resolve_plan(&plan, reader)?[0])
}

/// The stored hash indexes of the left siblings that appending leaf `n` combines with:
/// the nodes `(l, (n >> l) − 1)` for each trailing one bit `l` of `n`, lowest first.
pub fn append_sibling_indexes(n: u64) -> Vec<u64> {
    (0..n.trailing_ones() as u8)
        .map(|level| stored_hash_index(level, (n >> level) - 1))
        .collect()
}

/// The hashes to store when appending the leaf with hash `leaf` at index `n`, given the
/// sibling hashes read at [`append_sibling_indexes`]`(n)`: the leaf hash, then each node it
/// completes, in stored order from [`stored_hash_count`]`(n)`. `None` if the sibling count
/// is wrong.
pub fn hashes_for_append(n: u64, leaf: &Hash, siblings: &[Hash]) -> Option<Vec<Hash>> {
    if siblings.len() != n.trailing_ones() as usize {
        return None;
    }
    let mut out = Vec::with_capacity(1 + siblings.len());
    out.push(*leaf);
    let mut h = *leaf;
    for l in siblings {
        h = node_hash(l, &h);
        out.push(h);
    }
    Some(out)
}

/// [`hashes_for_append`] with the siblings read from `reader` (the tree grows from n to
/// n + 1 leaves).
pub fn stored_hashes_for_append<R: HashReader + ?Sized>(
    n: u64,
    leaf: &Hash,
    reader: &R,
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    let indexes = append_sibling_indexes(n);
    let siblings = reader.read_hashes(&indexes).map_err(ProveError::Read)?;
    hashes_for_append(n, leaf, &siblings).ok_or(ProveError::ShortRead {
        asked: indexes.len(),
        got: siblings.len(),
    })
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {m} is larger than tree size {n}")]
    SizesOutOfOrder { m: u64, n: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyTree,
    #[error("the proof has the wrong number of hashes")]
    WrongProofLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// Verifies that `leaf` is the leaf hash at `index` in the tree of `size` leaves whose root
/// is `root`, by the algorithm of RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(VerifyError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::WrongProofLength);
    }
    if r != *root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `m` leaves with root `root_m` is a prefix of the tree of `n`
/// leaves with root `root_n`, by the algorithm of RFC 9162 §2.1.4.2 (defined for
/// 0 < m < n). For m = n the proof must be empty and the roots equal; m = 0 is rejected
/// (every tree extends the empty one: there is nothing to prove).
pub fn verify_consistency(
    m: u64,
    n: u64,
    proof: &[Hash],
    root_m: &Hash,
    root_n: &Hash,
) -> Result<(), VerifyError> {
    if m > n {
        return Err(VerifyError::SizesOutOfOrder { m, n });
    }
    if m == 0 {
        return Err(VerifyError::EmptyTree);
    }
    if m == n {
        if !proof.is_empty() {
            return Err(VerifyError::WrongProofLength);
        }
        if root_m != root_n {
            return Err(VerifyError::RootMismatch);
        }
        return Ok(());
    }
    // Step 1: an empty path fails.
    if proof.is_empty() {
        return Err(VerifyError::WrongProofLength);
    }
    // Step 2: if m is a power of two, the path implicitly starts with root_m.
    let (first, rest) = if m.is_power_of_two() {
        (root_m, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    // Steps 3–4.
    let (mut fn_, mut sn) = (m - 1, n - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (*first, *first);
    // Step 6.
    for c in rest {
        if sn == 0 {
            return Err(VerifyError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(VerifyError::WrongProofLength);
    }
    if fr != *root_m || sr != *root_n {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
