//! C2SP signed notes (c2sp.org/signed-note) with Ed25519, the checkpoints they carry
//! (c2sp.org/tlog-checkpoint) and the verification of Ed25519 witness cosignatures
//! (c2sp.org/tlog-cosignature, `cosignature/v1`).
//!
//! A note is `text ‖ "\n" ‖ signature lines`; the text ends in a newline and every signature
//! line is `— <key name> base64(key id ‖ signature)\n`. Opening a note checks every
//! signature made by a configured key, ignores the others (witnesses add their cosignature
//! lines to the log's note), and fails unless at least one configured key signed it.
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// Signature type byte of Ed25519 note signatures.
pub const ALG_ED25519: u8 = 0x01;
/// Signature type byte of timestamped Ed25519 checkpoint cosignatures (`cosignature/v1`).
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Most signature lines accepted in one note (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;
/// Largest note accepted, in bytes.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

const SIG_PREFIX: &str = "\u{2014} ";
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// Why a key, note or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    #[error("more than one configured key is named {name}+{id:08x}")]
    AmbiguousKey { name: String, id: u32 },
    #[error("invalid signature for key {name}+{id:08x}")]
    InvalidSignature { name: String, id: u32 },
    #[error("the note has no signature by a configured key")]
    NoVerifiedSignature,
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
    #[error("checkpoint origin is `{got}`, expected `{want}`")]
    WrongOrigin { got: String, want: String },
}

/// Key names are non-empty and contain no Unicode space, no `+` and no control character.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The key id: the first four bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ type ‖ key).
pub fn key_id(name: &str, alg: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The message a `cosignature/v1` cosigner signs: `cosignature/v1\ntime <t>\n` ‖ note text.
pub fn cosignature_v1_message(text: &str, timestamp: u64) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(text.as_bytes());
    m
}

/// Splits `name+hex(id)+base64(type ‖ key)`, checking the name and the id's form. The
/// name holds no `+` and the id is hex, so the key is all after the second `+` (base64 may
/// itself contain `+`).
fn split_key(s: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let Some((name, rest)) = s.split_once('+') else {
        return Err(NoteError::InvalidKey("expected name+id+key"));
    };
    let Some((id, key)) = rest.split_once('+') else {
        return Err(NoteError::InvalidKey("expected name+id+key"));
    };
    if !is_valid_key_name(name) {
        return Err(NoteError::InvalidKey("invalid key name"));
    }
    if id.len() != 8 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(NoteError::InvalidKey(
            "key id is not 8 lowercase hex digits",
        ));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::InvalidKey("bad key id"))?;
    let key = STANDARD
        .decode(key)
        .map_err(|_| NoteError::InvalidKey("key is not standard base64"))?;
    Ok((name, id, key))
}

/// An Ed25519 private key with its key name and id for one signature type: what a log's
/// key and a witness's key share (they differ in the type byte, hence in key id and vkey).
struct KeyPair {
    name: String,
    id: u32,
    alg: u8,
    key: SigningKey,
}

impl KeyPair {
    fn from_seed(name: &str, alg: u8, seed: &[u8; 32]) -> Result<KeyPair, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKey("invalid key name"));
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, alg, key.verifying_key().as_bytes());
        Ok(KeyPair {
            name: name.to_string(),
            id,
            alg,
            key,
        })
    }

    /// A new random key, from the operating system's generator.
    fn generate(name: &str, alg: u8) -> Result<KeyPair, NoteError> {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let pair = KeyPair::from_seed(name, alg, &seed);
        seed.fill(0);
        pair
    }

    /// Parses `PRIVATE+KEY+<name>+hex(id)+base64(alg ‖ seed)`; `wrong_type` is the
    /// error for a key of another type.
    fn parse(skey: &str, alg: u8, wrong_type: &'static str) -> Result<KeyPair, NoteError> {
        let rest = skey
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(NoteError::InvalidKey("missing PRIVATE+KEY+ prefix"))?;
        let (name, id, material) = split_key(rest)?;
        let (&got, seed) = material
            .split_first()
            .ok_or(NoteError::InvalidKey("empty key"))?;
        if got != alg {
            return Err(NoteError::InvalidKey(wrong_type));
        }
        let seed: &[u8; 32] = seed
            .try_into()
            .map_err(|_| NoteError::InvalidKey("an Ed25519 private key is 32 bytes"))?;
        let pair = KeyPair::from_seed(name, alg, seed)?;
        if pair.id != id {
            return Err(NoteError::InvalidKey("key id does not match the key"));
        }
        Ok(pair)
    }

    /// `PRIVATE+KEY+<name>+hex(id)+base64(alg ‖ seed)`. A secret.
    fn to_private_key_string(&self) -> String {
        let mut material = vec![self.alg];
        material.extend_from_slice(self.key.as_bytes());
        format!(
            "{PRIVATE_PREFIX}{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(&material)
        )
    }

    fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            id: self.id,
            alg: self.alg,
            key: self.key.verifying_key(),
        }
    }

    fn signature(&self, bytes: Vec<u8>) -> Signature {
        Signature {
            name: self.name.clone(),
            key_id: self.id,
            bytes,
        }
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:08x}, private key hidden", self.name, self.id)
    }
}

/// A key that signs notes with Ed25519 (type 0x01).
pub struct Signer(KeyPair);

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({:?})", self.0)
    }
}

impl Signer {
    /// The signer named `name` whose Ed25519 private key is `seed` (RFC 8032 §5.1.5).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Signer, NoteError> {
        KeyPair::from_seed(name, ALG_ED25519, seed).map(Signer)
    }

    /// A new random key, from the operating system's generator.
    pub fn generate(name: &str) -> Result<Signer, NoteError> {
        KeyPair::generate(name, ALG_ED25519).map(Signer)
    }

    /// Parses the private key form `PRIVATE+KEY+<name>+hex(id)+base64(0x01 ‖ seed)`.
    pub fn parse(skey: &str) -> Result<Signer, NoteError> {
        KeyPair::parse(skey, ALG_ED25519, "signer keys must be Ed25519 (0x01)").map(Signer)
    }

    /// The private key form, `PRIVATE+KEY+<name>+hex(id)+base64(0x01 ‖ seed)`. A secret.
    pub fn to_private_key_string(&self) -> String {
        self.0.to_private_key_string()
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn key_id(&self) -> u32 {
        self.0.id
    }

    /// The verifier of this signer's signatures.
    pub fn verifier(&self) -> Verifier {
        self.0.verifier()
    }

    /// The raw Ed25519 signature (RFC 8032) of `message` with this key, for the one other
    /// format the log signs with its note key: the VC-JWT of completion certificates
    /// (`certificate.rs`). A JWS signing input is base64url and `.` only, so it never
    /// ends in a newline, and a note text always does: a signature over one can never be
    /// taken for a signature over the other.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.0.key.sign(message).to_bytes()
    }

    /// The signature line of `text` by this key.
    fn sign_text(&self, text: &str) -> Signature {
        self.0
            .signature(self.0.key.sign(text.as_bytes()).to_bytes().to_vec())
    }
}

/// A witness key that makes Ed25519 `cosignature/v1` cosignatures (signature type 0x04,
/// c2sp.org/tlog-cosignature). Kept apart from [`Signer`] so that a log key and a witness
/// key cannot be confused: their key ids and signed messages differ.
pub struct CosignatureSigner(KeyPair);

impl fmt::Debug for CosignatureSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignatureSigner({:?})", self.0)
    }
}

impl CosignatureSigner {
    /// The cosigner named `name` whose Ed25519 private key is `seed`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<CosignatureSigner, NoteError> {
        KeyPair::from_seed(name, ALG_COSIGNATURE_V1, seed).map(CosignatureSigner)
    }

    /// A new random key, from the operating system's generator.
    pub fn generate(name: &str) -> Result<CosignatureSigner, NoteError> {
        KeyPair::generate(name, ALG_COSIGNATURE_V1).map(CosignatureSigner)
    }

    /// Parses `PRIVATE+KEY+<name>+hex(id)+base64(0x04 ‖ seed)`, the private key form of
    /// [`Signer::parse`] with the cosignature type byte (and the key id computed with it).
    pub fn parse(skey: &str) -> Result<CosignatureSigner, NoteError> {
        KeyPair::parse(
            skey,
            ALG_COSIGNATURE_V1,
            "cosigner keys must be cosignature/v1 (0x04)",
        )
        .map(CosignatureSigner)
    }

    /// The private key form, `PRIVATE+KEY+<name>+hex(id)+base64(0x04 ‖ seed)`. A secret.
    pub fn to_private_key_string(&self) -> String {
        self.0.to_private_key_string()
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn key_id(&self) -> u32 {
        self.0.id
    }

    /// The verifier of this key's cosignatures (its vkey has type 0x04).
    pub fn verifier(&self) -> Verifier {
        self.0.verifier()
    }

    /// The cosignature of the note text `text` made at `timestamp` (POSIX seconds):
    /// `u64be(timestamp) ‖ Ed25519(cosignature_v1_message(text, timestamp))`. Refuses a
    /// text that is not a note text and a timestamp above 2^63 − 1.
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<Signature, NoteError> {
        check_text(text)?;
        if timestamp > i64::MAX as u64 {
            return Err(NoteError::Malformed("cosignature timestamp above 2^63 - 1"));
        }
        let mut bytes = timestamp.to_be_bytes().to_vec();
        let sig = self.0.key.sign(&cosignature_v1_message(text, timestamp));
        bytes.extend_from_slice(&sig.to_bytes());
        Ok(self.0.signature(bytes))
    }
}

/// A public key that verifies note signatures: Ed25519 (type 0x01), or a witness's
/// Ed25519 `cosignature/v1` key (type 0x04).
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: u32,
    alg: u8,
    key: VerifyingKey,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifier({self})")
    }
}

/// The verifier key (vkey) form, `<name>+hex(id)+base64(type ‖ key)`.
impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = vec![self.alg];
        material.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(&material)
        )
    }
}

impl Verifier {
    /// The verifier named `name` for an Ed25519 public key used with signature type `alg`
    /// ([`ALG_ED25519`] or [`ALG_COSIGNATURE_V1`]).
    pub fn new(name: &str, alg: u8, public_key: &[u8; 32]) -> Result<Verifier, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKey("invalid key name"));
        }
        if alg != ALG_ED25519 && alg != ALG_COSIGNATURE_V1 {
            return Err(NoteError::InvalidKey("unsupported signature type"));
        }
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| NoteError::InvalidKey("not an Ed25519 public key"))?;
        Ok(Verifier {
            name: name.to_string(),
            id: key_id(name, alg, public_key),
            alg,
            key,
        })
    }

    /// Parses a vkey, `<name>+hex(id)+base64(type ‖ key)`; the id must match the key.
    pub fn parse(vkey: &str) -> Result<Verifier, NoteError> {
        let (name, id, material) = split_key(vkey)?;
        let (&alg, key) = material
            .split_first()
            .ok_or(NoteError::InvalidKey("empty key"))?;
        let key: &[u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::InvalidKey("an Ed25519 public key is 32 bytes"))?;
        let v = Verifier::new(name, alg, key)?;
        if v.id != id {
            return Err(NoteError::InvalidKey("key id does not match the key"));
        }
        Ok(v)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    pub fn alg(&self) -> u8 {
        self.alg
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` is a valid raw Ed25519 signature of `message` by this key (strict
    /// RFC 8032 verification, as for notes), for the counterpart of [`Signer::sign_bytes`].
    /// Always false for a `cosignature/v1` key: those sign only timestamped checkpoints.
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> bool {
        if self.alg != ALG_ED25519 {
            return false;
        }
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &sig).is_ok()
    }

    /// Checks `sig` (without its key id) over `text`; for cosignatures returns the signed
    /// timestamp.
    fn check(&self, text: &str, sig: &[u8]) -> Option<Option<u64>> {
        match self.alg {
            ALG_ED25519 => {
                let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
                self.key.verify_strict(text.as_bytes(), &sig).ok()?;
                Some(None)
            }
            ALG_COSIGNATURE_V1 => {
                if sig.len() != 8 + 64 {
                    return None;
                }
                let timestamp = u64::from_be_bytes(sig[..8].try_into().ok()?);
                if timestamp > i64::MAX as u64 {
                    return None;
                }
                let sig = ed25519_dalek::Signature::from_slice(&sig[8..]).ok()?;
                let message = cosignature_v1_message(text, timestamp);
                self.key.verify_strict(&message, &sig).ok()?;
                Some(Some(timestamp))
            }
            _ => None,
        }
    }
}

/// One signature line: key name, key id, and the signature bytes after the id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    pub name: String,
    pub key_id: u32,
    pub bytes: Vec<u8>,
}

impl Signature {
    /// `— <name> base64(id ‖ bytes)` followed by a newline.
    pub fn line(&self) -> String {
        let mut b = self.key_id.to_be_bytes().to_vec();
        b.extend_from_slice(&self.bytes);
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(&b))
    }

    fn parse_line(line: &str) -> Result<Signature, NoteError> {
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
            "a signature line must start with an em dash",
        ))?;
        let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
            "a signature line needs a name and a signature",
        ))?;
        if !is_valid_key_name(name) {
            return Err(NoteError::Malformed("invalid key name in a signature line"));
        }
        let b = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not standard base64"))?;
        if b.len() < 5 {
            return Err(NoteError::Malformed("signature too short"));
        }
        Ok(Signature {
            name: name.to_string(),
            key_id: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            bytes: b[4..].to_vec(),
        })
    }
}

/// A note split into text and signatures, nothing verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<Signature>,
}

/// A signature checked against a configured key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub name: String,
    pub key_id: u32,
    pub alg: u8,
    /// The cosigner's timestamp, for `cosignature/v1` signatures.
    pub timestamp: Option<u64>,
}

/// A note whose signatures by configured keys all verified (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    pub text: String,
    pub verified: Vec<VerifiedSignature>,
    /// Signature lines of keys not configured, kept as they were (duplicates dropped).
    pub unverified: Vec<Signature>,
}

/// Checks the text rules: ends in a newline, no control character other than newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text must end in a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character in the text"));
    }
    Ok(())
}

/// Splits a note into its text and signature lines, checking its form (UTF-8, no control
/// characters but newline, text ending in newline, a blank line, then one or more
/// well-formed signature lines, at most [`MAX_SIGNATURES`]). Verifies nothing.
pub fn parse(msg: &[u8]) -> Result<Note, NoteError> {
    if msg.len() > MAX_NOTE_SIZE {
        return Err(NoteError::Malformed("note too large"));
    }
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed("not UTF-8"))?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character in the note"));
    }
    // The text ends at the last blank line: signature lines are never empty.
    let split = msg
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, block) = (&msg[..split + 1], &msg[split + 2..]);
    let Some(block) = block.strip_suffix('\n') else {
        return Err(NoteError::Malformed(
            "signature lines missing or not ending in a newline",
        ));
    };
    let mut signatures = Vec::new();
    for line in block.split('\n') {
        if signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::Malformed("too many signatures"));
        }
        signatures.push(Signature::parse_line(line)?);
    }
    Ok(Note {
        text: text.to_string(),
        signatures,
    })
}

/// Opens a note with the configured `verifiers`: signatures whose (name, id) match one
/// verifier must verify, or the note is rejected; others are ignored (returned as
/// unverified); at least one must verify. Two verifiers with the same name and id make
/// their signatures ambiguous: an error when such a signature is present.
pub fn open(msg: &[u8], verifiers: &[Verifier]) -> Result<OpenedNote, NoteError> {
    let note = parse(msg)?;
    let mut verified: Vec<VerifiedSignature> = Vec::new();
    let mut unverified: Vec<Signature> = Vec::new();
    for sig in note.signatures {
        let mut matching = verifiers
            .iter()
            .filter(|v| v.name == sig.name && v.id == sig.key_id);
        let Some(v) = matching.next() else {
            if !unverified.contains(&sig) {
                unverified.push(sig);
            }
            continue;
        };
        if matching.next().is_some() {
            return Err(NoteError::AmbiguousKey {
                name: sig.name,
                id: sig.key_id,
            });
        }
        let Some(timestamp) = v.check(&note.text, &sig.bytes) else {
            return Err(NoteError::InvalidSignature {
                name: sig.name,
                id: sig.key_id,
            });
        };
        if !verified
            .iter()
            .any(|s| s.name == sig.name && s.key_id == sig.key_id)
        {
            verified.push(VerifiedSignature {
                name: sig.name,
                key_id: sig.key_id,
                alg: v.alg,
                timestamp,
            });
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoVerifiedSignature);
    }
    Ok(OpenedNote {
        text: note.text,
        verified,
        unverified,
    })
}

/// Writes a note: `text`, a blank line, then the given signature lines in order.
pub fn format(text: &str, signatures: &[Signature]) -> Result<String, NoteError> {
    check_text(text)?;
    if signatures.is_empty() {
        return Err(NoteError::Malformed("a note needs at least one signature"));
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(NoteError::Malformed("too many signatures"));
    }
    let mut out = String::with_capacity(text.len() + 1 + 100 * signatures.len());
    out.push_str(text);
    out.push('\n');
    for s in signatures {
        if !is_valid_key_name(&s.name) {
            return Err(NoteError::Malformed("invalid key name in a signature"));
        }
        out.push_str(&s.line());
    }
    Ok(out)
}

/// Signs `text` with each signer, in order, and writes the note.
pub fn sign(text: &str, signers: &[&Signer]) -> Result<String, NoteError> {
    check_text(text)?;
    let sigs: Vec<Signature> = signers.iter().map(|s| s.sign_text(text)).collect();
    format(text, &sigs)
}

/// A checkpoint (c2sp.org/tlog-checkpoint): the note text `origin\nsize\nbase64(root)\n`
/// followed by optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn new(origin: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text. Fails when the origin or an extension line is empty or holds a
    /// newline or another control character.
    pub fn to_text(&self) -> Result<String, NoteError> {
        let line_ok = |l: &str| !l.is_empty() && !l.chars().any(|c| c < ' ');
        if !line_ok(&self.origin) {
            return Err(NoteError::Checkpoint("empty or multi-line origin"));
        }
        if !self.extensions.iter().all(|l| line_ok(l)) {
            return Err(NoteError::Checkpoint("empty or multi-line extension line"));
        }
        let mut t = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            t.push_str(e);
            t.push('\n');
        }
        Ok(t)
    }

    /// Parses a checkpoint note text (as returned by [`open`]).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::Checkpoint("the text must end in a newline"))?;
        if body.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::Checkpoint("control character"));
        }
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Checkpoint("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(NoteError::Checkpoint("empty origin"));
        }
        let size_ok = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| size_ok)
            .ok_or(NoteError::Checkpoint(
                "tree size is not a decimal number without leading zeros",
            ))?;
        let root = Hash::from_base64(root).ok_or(NoteError::Checkpoint(
            "root hash is not the base64 of 32 bytes",
        ))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::Checkpoint("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// Signs this checkpoint with `signer` (whose name should be the origin).
    pub fn sign(&self, signer: &Signer) -> Result<String, NoteError> {
        sign(&self.to_text()?, &[signer])
    }

    /// Opens a checkpoint note with `verifiers` and checks that its origin is `origin`.
    pub fn open(
        msg: &[u8],
        origin: &str,
        verifiers: &[Verifier],
    ) -> Result<(Checkpoint, OpenedNote), NoteError> {
        let note = open(msg, verifiers)?;
        let cp = Checkpoint::parse(&note.text)?;
        if cp.origin != origin {
            return Err(NoteError::WrongOrigin {
                got: cp.origin,
                want: origin.to_string(),
            });
        }
        Ok((cp, note))
    }
}

#[cfg(test)]
#[path = "note_tests.rs"]
mod tests;
