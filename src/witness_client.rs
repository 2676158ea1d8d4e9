//! The client side of c2sp.org/tlog-witness `add-checkpoint`: what the LRS calls to have a
//! witness cosign its new checkpoint. Blocking (ureq): call it from a blocking thread.
//!
//! The caller keeps, per witness, the size the witness last cosigned; on
//! [`WitnessError::Conflict`] it learns the witness's size and retries with a consistency
//! proof from there. The cosignature lines returned are not verified here: the caller
//! appends them to the checkpoint note and opens it with the witness's key (`note::open`),
//! ignoring lines of keys it does not know, as the spec says.
use std::time::Duration;

use crate::audit::merkle::Hash;
use crate::audit::witness;

/// Why a witness did not cosign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// 409: the witness's latest cosigned size is not `old_size`; retry from `known_size`.
    #[error("the witness has cosigned size {known_size}, not the old size sent")]
    Conflict { known_size: u64 },
    /// Any other HTTP status (400 malformed, 403 signature, 404 unknown log, 422
    /// inconsistent, 5xx …), with the start of the body.
    #[error("the witness answered {status}: {body}")]
    Status { status: u16, body: String },
    /// The request did not complete (connection, timeout, TLS …).
    #[error("cannot reach the witness: {0}")]
    Transport(String),
    /// A 200 (or 409) whose body is not what the spec prescribes.
    #[error("malformed answer from the witness: {0}")]
    Malformed(String),
}

/// Longest error body kept in [`WitnessError::Status`].
const MAX_ERROR_BODY: usize = 512;

/// POSTs `add-checkpoint` to the witness whose submission prefix is `url` (the path
/// `/add-checkpoint` is appended unless `url` already ends with it), with `old_size` (the
/// size the witness is believed to have cosigned, 0 if none), the consistency proof from
/// `old_size` to the checkpoint, and the signed checkpoint note. Returns the cosignature
/// lines, each ending in a newline, to append to the note.
pub fn add_checkpoint(
    url: &str,
    old_size: u64,
    consistency_proof: &[Hash],
    checkpoint_note: &str,
    timeout: Duration,
) -> Result<Vec<String>, WitnessError> {
    let endpoint = if url.ends_with("/add-checkpoint") {
        url.to_string()
    } else {
        format!("{}/add-checkpoint", url.trim_end_matches('/'))
    };
    let body = witness::format_request(old_size, consistency_proof, checkpoint_note);
    let agent = ureq::AgentBuilder::new().timeout(timeout).build();
    match agent
        .post(&endpoint)
        .set("Content-Type", "text/plain; charset=utf-8")
        .send_string(&body)
    {
        Ok(resp) => {
            let text = resp
                .into_string()
                .map_err(|e| WitnessError::Transport(e.to_string()))?;
            witness::parse_response(&text).map_err(WitnessError::Malformed)
        }
        Err(ureq::Error::Status(409, resp)) => {
            let text = resp
                .into_string()
                .map_err(|e| WitnessError::Transport(e.to_string()))?;
            witness::parse_conflict(&text)
                .map(|known_size| WitnessError::Conflict { known_size })
                .ok_or_else(|| WitnessError::Malformed(format!("409 body {text:?}")))
                .and_then(Err)
        }
        Err(ureq::Error::Status(status, resp)) => {
            let mut text = resp.into_string().unwrap_or_default();
            if text.len() > MAX_ERROR_BODY {
                let mut cut = MAX_ERROR_BODY;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            Err(WitnessError::Status {
                status,
                body: text.trim_end().to_string(),
            })
        }
        Err(ureq::Error::Transport(t)) => Err(WitnessError::Transport(t.to_string())),
    }
}
