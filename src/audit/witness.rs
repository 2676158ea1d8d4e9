//! The witness of c2sp.org/tlog-witness, pure part: the `add-checkpoint` request body (the
//! log formats it, the witness parses it), the checks a witness makes before cosigning, the
//! status code and body of each refusal, and the `cosignature/v1` response.
//!
//! The witness keeps, per log origin, the size and root of the latest checkpoint it
//! cosigned ([`Cosigned`]). The caller (the HTTP server) reads that record, calls
//! [`check`], cosigns with [`respond`] and persists the new record before answering, with
//! the read-check-write serialised per origin (the spec's rollback race).
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::merkle::{self, Hash};
use super::note::{self, Checkpoint, CosignatureSigner, NoteError, Verifier};

/// Most consistency proof lines a request may carry (the spec's limit).
pub const MAX_PROOF_LINES: usize = 63;
/// Largest request body accepted: a note of at most [`note::MAX_NOTE_SIZE`] plus the
/// old size and proof lines.
pub const MAX_REQUEST_SIZE: usize = note::MAX_NOTE_SIZE + 4096;
/// Content type of a 409 response body (the witness's known size).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness cosigned last.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as sent.
    pub checkpoint: String,
}

/// What a witness remembers about one log: the latest checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosigned {
    pub origin: String,
    pub size: u64,
    /// Root hash, base64.
    pub root: String,
    /// The checkpoint note with the log's verified signatures and this witness's
    /// cosignature, served to monitors (`GET <origin hash>/checkpoint`).
    #[serde(default)]
    pub checkpoint: String,
}

/// Why a witness refuses to cosign, with the status the spec prescribes for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the body is not a request, or the old size is above the checkpoint's size.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 404: the checkpoint's origin is not a log this witness knows.
    #[error("unknown log origin `{0}`")]
    UnknownOrigin(String),
    /// 403: no signature by the log's key, or one that does not verify.
    #[error("checkpoint signature: {0}")]
    Forbidden(String),
    /// 409: the old size is not the size the witness cosigned last (`known_size`).
    #[error("old size {old_size} is not the latest cosigned size {known_size}")]
    Conflict { old_size: u64, known_size: u64 },
    /// 422: the proof does not verify, or the checkpoint contradicts what was cosigned.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
}

impl Refusal {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::UnknownOrigin(_) => 404,
            Refusal::Forbidden(_) => 403,
            Refusal::Conflict { .. } => 409,
            Refusal::Unprocessable(_) => 422,
        }
    }

    /// The response's content type.
    pub fn content_type(&self) -> &'static str {
        match self {
            Refusal::Conflict { .. } => SIZE_CONTENT_TYPE,
            _ => "text/plain; charset=utf-8",
        }
    }

    /// The response body: for 409 the known size and a newline, as the spec requires;
    /// otherwise a one-line explanation.
    pub fn body(&self) -> String {
        match self {
            Refusal::Conflict { known_size, .. } => format!("{known_size}\n"),
            other => format!("{other}\n"),
        }
    }
}

/// A decimal with no leading zeros (but `0`), as the old size line requires.
fn parse_decimal(s: &str) -> Option<u64> {
    let ok =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

/// The request body: `old <size>\n`, one base64 hash per line, a blank line, the note.
pub fn format_request(old_size: u64, proof: &[Hash], checkpoint_note: &str) -> String {
    let mut body = format!("old {old_size}\n");
    for h in proof {
        body.push_str(&h.to_base64());
        body.push('\n');
    }
    body.push('\n');
    body.push_str(checkpoint_note);
    body
}

/// Parses a request body strictly; every error is a 400.
pub fn parse_request(body: &[u8]) -> Result<AddCheckpoint, Refusal> {
    let bad = |m: &str| Refusal::BadRequest(m.to_string());
    if body.len() > MAX_REQUEST_SIZE {
        return Err(bad("request too large"));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))?;
    let (old_line, mut rest) = text
        .split_once('\n')
        .ok_or_else(|| bad("no old size line"))?;
    let old_size = old_line
        .strip_prefix("old ")
        .and_then(parse_decimal)
        .ok_or_else(|| bad("the first line must be `old <size>` in decimal"))?;
    let mut proof = Vec::new();
    loop {
        let (line, after) = rest
            .split_once('\n')
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(bad("more than 63 consistency proof lines"));
        }
        let h = Hash::from_base64(line)
            .ok_or_else(|| bad("a proof line is not the base64 of a 32-byte hash"))?;
        proof.push(h);
    }
    if rest.is_empty() {
        return Err(bad("no checkpoint"));
    }
    Ok(AddCheckpoint {
        old_size,
        proof,
        checkpoint: rest.to_string(),
    })
}

/// The checkpoint's origin, read before any signature is checked (to pick the log's
/// keys). A note or checkpoint that does not parse is a 400.
pub fn origin_of(req: &AddCheckpoint) -> Result<String, Refusal> {
    let parsed =
        note::parse(req.checkpoint.as_bytes()).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let cp = Checkpoint::parse(&parsed.text).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    Ok(cp.origin)
}

/// A checkpoint the witness agreed to cosign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub checkpoint: Checkpoint,
    /// The note text (what the cosignature signs).
    pub text: String,
    /// The log's signature lines that verified, to keep with the cosigned checkpoint.
    pub log_signatures: Vec<note::Signature>,
}

/// The checks of `add-checkpoint`, in the spec's order: the origin is known (`log_keys`
/// are the keys of the log named `origin_of(req)`, empty if unknown: 404); a signature by
/// one of them verifies and none fails (403); old size ≤ checkpoint size (400); old size
/// equals the size cosigned last, 0 if none (409 with the known size); a size-0
/// checkpoint has the empty root, old size 0 comes with an empty proof, old = new has the
/// same root, and otherwise the consistency proof from the recorded root verifies (422).
pub fn check(
    req: &AddCheckpoint,
    log_keys: &[Verifier],
    known: Option<&Cosigned>,
) -> Result<Accepted, Refusal> {
    let origin = origin_of(req)?;
    if log_keys.is_empty() {
        return Err(Refusal::UnknownOrigin(origin));
    }
    let (cp, opened) =
        Checkpoint::open(req.checkpoint.as_bytes(), &origin, log_keys).map_err(|e| match e {
            NoteError::Malformed(_) | NoteError::Checkpoint(_) => {
                Refusal::BadRequest(e.to_string())
            }
            other => Refusal::Forbidden(other.to_string()),
        })?;
    if req.old_size > cp.size {
        return Err(Refusal::BadRequest(format!(
            "old size {} is above the checkpoint size {}",
            req.old_size, cp.size
        )));
    }
    let (known_size, known_root) = match known {
        Some(k) => {
            let root = Hash::from_base64(&k.root).ok_or_else(|| {
                Refusal::Unprocessable("the witness's record of this log is corrupt".into())
            })?;
            (k.size, root)
        }
        None => (0, merkle::empty_root()),
    };
    if req.old_size != known_size {
        return Err(Refusal::Conflict {
            old_size: req.old_size,
            known_size,
        });
    }
    let unprocessable = |m: String| Err(Refusal::Unprocessable(m));
    if cp.size == 0 && cp.root != merkle::empty_root() {
        return unprocessable("a checkpoint of size 0 must have the empty tree's root".into());
    }
    if req.old_size == 0 {
        // The empty tree is a prefix of every tree: there is nothing to prove.
        if !req.proof.is_empty() {
            return unprocessable("the consistency proof from size 0 must be empty".into());
        }
    } else if req.old_size == cp.size {
        if cp.root != known_root || !req.proof.is_empty() {
            return unprocessable(format!(
                "size {} was cosigned with another root (or the proof is not empty)",
                cp.size
            ));
        }
    } else if let Err(e) =
        merkle::verify_consistency(req.old_size, cp.size, &req.proof, &known_root, &cp.root)
    {
        return unprocessable(format!(
            "consistency proof from {} to {}: {e}",
            req.old_size, cp.size
        ));
    }
    // Keep the log's lines that verified (every configured key's line did, or open failed).
    let log_signatures = note::parse(req.checkpoint.as_bytes())
        .map(|n| n.signatures)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| {
            opened
                .verified
                .iter()
                .any(|v| v.name == s.name && v.key_id == s.key_id)
        })
        .collect();
    Ok(Accepted {
        checkpoint: cp,
        text: opened.text,
        log_signatures,
    })
}

/// Cosigns an accepted checkpoint at `timestamp` (POSIX seconds, not 0): the response body
/// (the cosignature line) and the record to persist before answering.
pub fn respond(
    accepted: &Accepted,
    signer: &CosignatureSigner,
    timestamp: u64,
) -> Result<(String, Cosigned), NoteError> {
    if timestamp == 0 {
        return Err(NoteError::Malformed(
            "a cosignature timestamp must not be 0",
        ));
    }
    let cosig = signer.cosign(&accepted.text, timestamp)?;
    let mut sigs = accepted.log_signatures.clone();
    sigs.push(cosig.clone());
    let checkpoint = note::format(&accepted.text, &sigs)?;
    Ok((
        cosig.line(),
        Cosigned {
            origin: accepted.checkpoint.origin.clone(),
            size: accepted.checkpoint.size,
            root: accepted.checkpoint.root.to_base64(),
            checkpoint,
        },
    ))
}

/// Splits a 200 response body into its signature lines (each returned with its final
/// newline, ready to append to the checkpoint note). Every line must be a note signature
/// line; at least one is required.
pub fn parse_response(body: &str) -> Result<Vec<String>, String> {
    let Some(block) = body.strip_suffix('\n') else {
        return Err("the response does not end in a newline".into());
    };
    let mut lines = Vec::new();
    for line in block.split('\n') {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err("a response line is not a signature line".into());
        };
        let well_formed = rest.split_once(' ').is_some_and(|(name, sig)| {
            note::is_valid_key_name(name) && STANDARD.decode(sig).is_ok_and(|b| b.len() > 4)
        });
        if !well_formed {
            return Err("a response line is not a signature line".into());
        }
        lines.push(format!("{line}\n"));
    }
    if lines.len() > note::MAX_SIGNATURES {
        return Err("too many signature lines".into());
    }
    Ok(lines)
}

/// Parses a 409 body, the witness's known size in decimal and a newline.
pub fn parse_conflict(body: &str) -> Option<u64> {
    parse_decimal(body.strip_suffix('\n')?)
}

/// The origin hash of the monitoring API path `<origin hash>/checkpoint`: lowercase hex
/// SHA-256 of the origin. Also names the witness's record file for the origin.
pub fn origin_hash(origin: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(origin.as_bytes()))
}

#[cfg(test)]
#[path = "witness_tests.rs"]
mod tests;
