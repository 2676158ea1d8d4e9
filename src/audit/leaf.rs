//! The leaves of the audit log: what each entry `d` (whose RFC 6962 leaf hash goes in the
//! tree) holds, byte for byte, and how a verifier recomputes it.
//!
//! A stored statement becomes a *statement leaf*: a salted, domain-separated SHA-256
//! commitment to the RFC 8785 (JCS) canonical form of the statement exactly as stored and
//! to its department, plus the `stored` time. Without the salt the commitment reveals
//! nothing about the statement; with it, anyone can recompute the leaf. Erasing a person's
//! statements deletes their content and salts and appends *erasure leaves* naming the
//! statement leaves erased, so a monitor can tell "erased" from "tampered".
//!
//! Every entry starts with a type byte and a version byte and fits the 65,535-byte limit of
//! tile entry bundles. The layouts are specified in `docs/AUDIT.md` §6.
use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use super::merkle::{self, Hash, HASH_SIZE};
use crate::departments::Department;

/// Type byte of a statement leaf.
pub const TYPE_STATEMENT: u8 = 0x01;
/// Type byte of an erasure leaf.
pub const TYPE_ERASURE: u8 = 0x02;
/// The only version of either leaf type defined so far.
pub const VERSION_1: u8 = 0x01;

/// Domain-separation tag of the statement commitment (followed by one 0x00 byte).
pub const COMMITMENT_TAG: &[u8] = b"karmayogi-lrs/statement/v1";

/// Length of a salt in bytes: at least 16 are required for hiding; v1 fixes 32.
pub const SALT_LEN: usize = 32;

/// Largest entry a tile entry bundle can carry (`u16be` length prefix).
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;

/// Size of a statement leaf entry: type, version, commitment, `u64be(stored_us)`.
pub const STATEMENT_LEAF_SIZE: usize = 2 + HASH_SIZE + 8;

/// Fixed part of an erasure leaf: type, version, `u64be(erased_us)`, receipt hash,
/// `u16be(part)`, `u16be(parts)`, `u16be(count)`.
pub const ERASURE_HEADER_SIZE: usize = 2 + 8 + HASH_SIZE + 2 + 2 + 2;

/// Most leaf indexes one erasure leaf names, so that it stays within [`MAX_ENTRY_SIZE`].
pub const MAX_ERASED_PER_LEAF: usize = (MAX_ENTRY_SIZE - ERASURE_HEADER_SIZE) / 8;

/// Magnitude beyond which an integer is not exactly representable as an IEEE-754 double
/// (2^53); JCS, defined on doubles, rounds such integers.
pub const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// Why a statement could not be committed to, or an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    #[error("cannot canonicalise the statement: {0}")]
    Json(String),
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("invalid salt: {0}")]
    Salt(&'static str),
    #[error("unknown leaf type 0x{0:02x}")]
    UnknownType(u8),
    #[error("unknown version 0x{version:02x} of leaf type 0x{leaf_type:02x}")]
    UnknownVersion { leaf_type: u8, version: u8 },
    #[error("malformed leaf: {0}")]
    Malformed(&'static str),
    #[error("invalid erasure: {0}")]
    Erasure(&'static str),
    #[error("invalid stored time: {0}")]
    Stored(String),
}

// ---------------------------------------------------------------------------------------
// RFC 8785 canonicalisation

/// The RFC 8785 (JCS) canonical UTF-8 bytes of `value`: object members sorted by the
/// UTF-16 code units of their names, no white space, strings escaped as RFC 8785
/// §3.2.2.2, numbers as ECMAScript `Number.prototype.toString` of the IEEE-754 double.
///
/// Integers of magnitude above 2^53 are committed to as the double nearest to them, as
/// JCS says; [`imprecise_integers`] finds them.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, LeafError> {
    let mut out = Vec::with_capacity(1024);
    write_jcs(value, &mut out)?;
    Ok(out)
}

/// Writes `value` in JCS form. Written here rather than through a general serializer:
/// it runs on the acknowledgement path for every statement (≈ 1.5 µs a statement where
/// a serde-based canonicalizer took 15 µs); `jcs_tests` holds it to that canonicalizer.
fn write_jcs(value: &Value, out: &mut Vec<u8>) -> Result<(), LeafError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_jcs_number(n, out)?,
        Value::String(s) => write_jcs_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_jcs(v, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // RFC 8785 §3.2.3: by the UTF-16 code units of the names.
            members.sort_unstable_by(|a, b| utf16_order(a.0, b.0));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_jcs_string(k, out);
                out.push(b':');
                write_jcs(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Names compared as UTF-16 code unit sequences. UTF-8 byte order is code point order,
/// which differs from UTF-16 order only between U+E000–U+FFFF and the supplementary
/// planes: ASCII names (all of xAPI's) compare as bytes.
fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// RFC 8785 §3.2.2.3: the ECMAScript form of the IEEE-754 double. Integers up to 2^53
/// are exact doubles, written as their digits.
fn write_jcs_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Result<(), LeafError> {
    const EXACT: u64 = 1 << 53;
    if let Some(u) = n.as_u64().filter(|u| *u <= EXACT) {
        out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
        return Ok(());
    }
    if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
        out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        return Ok(());
    }
    let f = n
        .as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| LeafError::Json(format!("{n} is not a finite IEEE-754 double")))?;
    if f == 0.0 {
        // Both zeros are written `0`.
        out.push(b'0');
    } else {
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
    }
    Ok(())
}

/// RFC 8785 §3.2.2.2: `"` and `\` escaped, the five short escapes, other controls as
/// `\u00xx` (lowercase hex); everything else as itself.
fn write_jcs_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Nearly every string of a statement (IRIs, names, UUIDs) needs no escape: one pass
    // without an early exit, which the compiler turns into vector compares, finds that out.
    let plain = !bytes.iter().fold(false, |esc, &b| {
        esc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Parses JSON text strictly (duplicate member names, lone surrogates and non-finite
/// numbers refused, as I-JSON requires) and returns its JCS bytes.
pub fn canonicalize_text(text: &str) -> Result<Vec<u8>, LeafError> {
    canonicalize(&parse_strict(text)?)
}

/// Parses JSON text into a [`Value`], refusing duplicate member names (which a plain
/// `serde_json` parse would silently resolve, last one winning).
pub fn parse_strict(text: &str) -> Result<Value, LeafError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let StrictValue(v) =
        StrictValue::deserialize(&mut de).map_err(|e| LeafError::Json(e.to_string()))?;
    de.end().map_err(|e| LeafError::Json(e.to_string()))?;
    Ok(v)
}

/// JSON pointers (RFC 6901) of the integers in `value` whose magnitude exceeds 2^53: JCS
/// commits to them rounded to the nearest double, so two statements differing only in
/// such an integer's low digits have the same canonical form.
pub fn imprecise_integers(value: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &mut String, out: &mut Vec<String>) {
        match v {
            Value::Number(n) => {
                let imprecise = match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => u > MAX_EXACT_INTEGER,
                    (None, Some(i)) => i.unsigned_abs() > MAX_EXACT_INTEGER,
                    _ => false,
                };
                if imprecise {
                    out.push(path.clone());
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    walk(item, path, out);
                    path.truncate(len);
                }
            }
            Value::Object(members) => {
                for (k, item) in members {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&crate::error::pointer_token(k));
                    walk(item, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut out);
    out
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate member name `{key}`")));
            }
            let StrictValue(v) = map.next_value()?;
            members.insert(key, v);
        }
        Ok(Value::Object(members))
    }
}

// ---------------------------------------------------------------------------------------
// Salt and commitment

/// The secret random salt of one statement's commitment, kept beside the statement and
/// deleted with it on erasure.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt([u8; SALT_LEN]);

impl Salt {
    /// A fresh salt from the operating system's random number generator.
    pub fn generate() -> Salt {
        let mut bytes = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut bytes);
        Salt(bytes)
    }

    pub fn from_bytes(bytes: [u8; SALT_LEN]) -> Salt {
        Salt(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; SALT_LEN] {
        &self.0
    }

    /// Lowercase hex (64 digits), the stored form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Salt, LeafError> {
        if s.len() != 2 * SALT_LEN {
            return Err(LeafError::Salt("a salt is 64 hex digits"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(LeafError::Salt("a salt is lowercase hex"));
        }
        let bytes = hex::decode(s).map_err(|_| LeafError::Salt("a salt is lowercase hex"))?;
        Ok(Salt(bytes.try_into().expect("length checked")))
    }
}

impl fmt::Debug for Salt {
    /// Never prints the salt: it is what keeps the commitment hiding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}

/// The statement commitment of `docs/AUDIT.md` §6.2:
/// `SHA-256(tag ‖ 0x00 ‖ salt ‖ u16be(len(dept)) ‖ dept ‖ u32be(len(jcs)) ‖ jcs)`, with
/// `dept` the department path (`""` for the root) and `jcs` the RFC 8785 bytes.
pub fn commitment(salt: &Salt, department: &Department, jcs: &[u8]) -> Result<Hash, LeafError> {
    let dept = department.as_str().as_bytes();
    let dept_len = u16::try_from(dept.len()).map_err(|_| LeafError::TooLarge {
        what: "the department path",
        len: dept.len(),
        max: u16::MAX as usize,
    })?;
    let jcs_len = u32::try_from(jcs.len()).map_err(|_| LeafError::TooLarge {
        what: "the canonical statement",
        len: jcs.len(),
        max: u32::MAX as usize,
    })?;
    let mut h = Sha256::new();
    h.update(COMMITMENT_TAG);
    h.update([0x00]);
    h.update(salt.0);
    h.update(dept_len.to_be_bytes());
    h.update(dept);
    h.update(jcs_len.to_be_bytes());
    h.update(jcs);
    Ok(Hash(h.finalize().into()))
}

// ---------------------------------------------------------------------------------------
// Leaves

/// A statement leaf: the commitment to one stored statement and its `stored` time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLeaf {
    pub commitment: Hash,
    /// The statement's `stored`, in microseconds since the Unix epoch.
    pub stored_us: u64,
}

/// An erasure leaf: names statement leaves (by leaf index) whose content and salts were
/// deleted under one erasure receipt. An erasure of more than [`MAX_ERASED_PER_LEAF`]
/// statements is split into `parts` leaves numbered `part = 0 … parts − 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureLeaf {
    /// When the erasure was carried out, in microseconds since the Unix epoch.
    pub erased_us: u64,
    /// SHA-256 of the erasure receipt's bytes.
    pub receipt: Hash,
    pub part: u16,
    pub parts: u16,
    /// Indexes of the erased statement leaves, strictly increasing, 1 to
    /// [`MAX_ERASED_PER_LEAF`] of them.
    pub indexes: Vec<u64>,
}

/// Any leaf of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    Statement(StatementLeaf),
    Erasure(ErasureLeaf),
}

impl StatementLeaf {
    /// The entry bytes: `0x01 ‖ 0x01 ‖ commitment ‖ u64be(stored_us)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STATEMENT_LEAF_SIZE);
        out.extend_from_slice(&[TYPE_STATEMENT, VERSION_1]);
        out.extend_from_slice(&self.commitment.0);
        out.extend_from_slice(&self.stored_us.to_be_bytes());
        out
    }

    /// The RFC 6962 leaf hash of the entry.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.encode())
    }
}

impl ErasureLeaf {
    /// Splits an erasure of `indexes` (any order, no duplicates) into as few leaves as
    /// the entry size allows, each naming its share in increasing order.
    pub fn split(
        erased_us: u64,
        receipt: Hash,
        mut indexes: Vec<u64>,
    ) -> Result<Vec<ErasureLeaf>, LeafError> {
        if indexes.is_empty() {
            return Err(LeafError::Erasure("an erasure names at least one leaf"));
        }
        indexes.sort_unstable();
        if indexes.windows(2).any(|w| w[0] == w[1]) {
            return Err(LeafError::Erasure("a leaf is named twice"));
        }
        let chunks: Vec<&[u64]> = indexes.chunks(MAX_ERASED_PER_LEAF).collect();
        let parts = u16::try_from(chunks.len())
            .map_err(|_| LeafError::Erasure("too many leaves for one erasure receipt"))?;
        Ok(chunks
            .into_iter()
            .enumerate()
            .map(|(part, chunk)| ErasureLeaf {
                erased_us,
                receipt,
                part: part as u16,
                parts,
                indexes: chunk.to_vec(),
            })
            .collect())
    }

    fn check(&self) -> Result<(), LeafError> {
        if self.indexes.is_empty() {
            return Err(LeafError::Erasure(
                "an erasure leaf names at least one leaf",
            ));
        }
        if self.indexes.len() > MAX_ERASED_PER_LEAF {
            return Err(LeafError::TooLarge {
                what: "an erasure leaf",
                len: ERASURE_HEADER_SIZE + 8 * self.indexes.len(),
                max: MAX_ENTRY_SIZE,
            });
        }
        if self.parts == 0 || self.part >= self.parts {
            return Err(LeafError::Erasure("part must be below parts"));
        }
        if self.indexes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(LeafError::Erasure(
                "erased leaf indexes must be strictly increasing",
            ));
        }
        Ok(())
    }

    /// The entry bytes: `0x02 ‖ 0x01 ‖ u64be(erased_us) ‖ receipt ‖ u16be(part) ‖
    /// u16be(parts) ‖ u16be(count) ‖ u64be(index)…`. Refuses a leaf that would not parse.
    pub fn encode(&self) -> Result<Vec<u8>, LeafError> {
        self.check()?;
        let mut out = Vec::with_capacity(ERASURE_HEADER_SIZE + 8 * self.indexes.len());
        out.extend_from_slice(&[TYPE_ERASURE, VERSION_1]);
        out.extend_from_slice(&self.erased_us.to_be_bytes());
        out.extend_from_slice(&self.receipt.0);
        out.extend_from_slice(&self.part.to_be_bytes());
        out.extend_from_slice(&self.parts.to_be_bytes());
        out.extend_from_slice(&(self.indexes.len() as u16).to_be_bytes());
        for i in &self.indexes {
            out.extend_from_slice(&i.to_be_bytes());
        }
        Ok(out)
    }
}

impl Leaf {
    /// The entry bytes `d` of the leaf.
    pub fn encode(&self) -> Result<Vec<u8>, LeafError> {
        match self {
            Leaf::Statement(s) => Ok(s.encode()),
            Leaf::Erasure(e) => e.encode(),
        }
    }

    /// The RFC 6962 leaf hash `SHA-256(0x00 ‖ d)`.
    pub fn leaf_hash(&self) -> Result<Hash, LeafError> {
        Ok(merkle::leaf_hash(&self.encode()?))
    }

    /// Parses an entry, strictly: known type and version, exact length, every field
    /// valid. `Leaf::parse(d)?.encode()? == d` for every entry accepted.
    pub fn parse(entry: &[u8]) -> Result<Leaf, LeafError> {
        if entry.len() > MAX_ENTRY_SIZE {
            return Err(LeafError::TooLarge {
                what: "an entry",
                len: entry.len(),
                max: MAX_ENTRY_SIZE,
            });
        }
        let (&leaf_type, rest) = entry.split_first().ok_or(LeafError::Malformed("empty"))?;
        if leaf_type != TYPE_STATEMENT && leaf_type != TYPE_ERASURE {
            return Err(LeafError::UnknownType(leaf_type));
        }
        let (&version, body) = rest
            .split_first()
            .ok_or(LeafError::Malformed("no version byte"))?;
        if version != VERSION_1 {
            return Err(LeafError::UnknownVersion { leaf_type, version });
        }
        if leaf_type == TYPE_STATEMENT {
            if entry.len() != STATEMENT_LEAF_SIZE {
                return Err(LeafError::Malformed("a statement leaf is 42 bytes"));
            }
            return Ok(Leaf::Statement(StatementLeaf {
                commitment: Hash::from_slice(&body[..HASH_SIZE]).expect("length checked"),
                stored_us: u64::from_be_bytes(body[HASH_SIZE..].try_into().expect("8 bytes")),
            }));
        }
        if entry.len() < ERASURE_HEADER_SIZE {
            return Err(LeafError::Malformed("an erasure leaf is too short"));
        }
        let u16_at = |at: usize| u16::from_be_bytes([entry[at], entry[at + 1]]);
        let u64_at = |at: usize| u64::from_be_bytes(entry[at..at + 8].try_into().expect("8"));
        let count = u16_at(46) as usize;
        if entry.len() != ERASURE_HEADER_SIZE + 8 * count {
            return Err(LeafError::Malformed(
                "an erasure leaf's length does not match its count",
            ));
        }
        let leaf = ErasureLeaf {
            erased_us: u64_at(2),
            receipt: Hash::from_slice(&entry[10..42]).expect("length checked"),
            part: u16_at(42),
            parts: u16_at(44),
            indexes: (0..count)
                .map(|i| u64_at(ERASURE_HEADER_SIZE + 8 * i))
                .collect(),
        };
        leaf.check()?;
        Ok(Leaf::Erasure(leaf))
    }
}

// ---------------------------------------------------------------------------------------
// Building and recomputing statement leaves

/// The statement leaf of `statement` (exactly as stored), its salt, department and
/// `stored` time in microseconds.
pub fn statement_leaf(
    statement: &Value,
    salt: &Salt,
    department: &Department,
    stored_us: u64,
) -> Result<StatementLeaf, LeafError> {
    let jcs = canonicalize(statement)?;
    Ok(StatementLeaf {
        commitment: commitment(salt, department, &jcs)?,
        stored_us,
    })
}

/// Seals a statement on the acknowledgement path: a fresh salt and the commitment to the
/// statement's JSON text (exactly as stored) in its department (6.2, 6.3).
pub fn seal(statement_json: &str, department: &Department) -> Result<(Salt, Hash), LeafError> {
    seal_canonical(&canonicalize_text(statement_json)?, department)
}

/// [`seal`] of a statement already in canonical form (`jcs`).
pub fn seal_canonical(jcs: &[u8], department: &Department) -> Result<(Salt, Hash), LeafError> {
    let salt = Salt::generate();
    let c = commitment(&salt, department, jcs)?;
    Ok((salt, c))
}

/// What an offline verifier does: from the statement's JSON text (as
/// `GET ?statementId=…&format=exact` returns it, any white space or member order), its
/// salt, department and `stored_us`, the entry bytes and the leaf hash to look up in the
/// log (or to check an inclusion proof against).
pub fn recompute(
    statement_json: &str,
    salt: &Salt,
    department: &Department,
    stored_us: u64,
) -> Result<(Vec<u8>, Hash), LeafError> {
    let jcs = canonicalize_text(statement_json)?;
    let entry = StatementLeaf {
        commitment: commitment(salt, department, &jcs)?,
        stored_us,
    }
    .encode();
    let hash = merkle::leaf_hash(&entry);
    Ok((entry, hash))
}

/// The statement's own `stored` property, in microseconds since the Unix epoch: a
/// verifier checks that it equals the leaf's `stored_us`.
pub fn stored_us_of(statement: &Value) -> Result<u64, LeafError> {
    let text = statement
        .get("stored")
        .and_then(Value::as_str)
        .ok_or_else(|| LeafError::Stored("the statement has no `stored` string".into()))?;
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| LeafError::Stored(format!("`{text}`: {e}")))?;
    u64::try_from(t.timestamp_micros())
        .map_err(|_| LeafError::Stored(format!("`{text}` is before 1970")))
}

#[cfg(test)]
#[path = "leaf_tests.rs"]
mod tests;
