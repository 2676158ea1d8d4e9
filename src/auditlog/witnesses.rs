//! Witness cosigning (docs/AUDIT.md 8.3): after the sequencer publishes a checkpoint signed
//! by the log alone, a background task asks every configured witness to cosign it
//! (c2sp.org/tlog-witness `add-checkpoint`), checks each cosignature with that witness's
//! `cosignature/v1` key, and publishes the same checkpoint again with the valid
//! cosignatures appended. Sequencing never waits for a witness: a witness that is down,
//! slow or refuses only leaves its cosignature out.
use super::AuditLog;
use crate::audit::merkle::Hash;
use crate::audit::note::{self, Signature, Verifier, ALG_COSIGNATURE_V1};
use crate::witness_client::{self, WitnessError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long one `add-checkpoint` request may take (the client's whole request timeout).
pub const WITNESS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the latest checkpoint is offered again to witnesses that have not cosigned
/// it (down or refusing), while the log does not grow.
pub const RETRY_EVERY: Duration = Duration::from_secs(10);

/// One configured witness: `--audit-witness URL=VKEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSpec {
    /// The submission prefix (`/add-checkpoint` is appended).
    pub url: String,
    /// The witness's `cosignature/v1` verifier key (type `0x04`).
    pub verifier: Verifier,
}

impl std::str::FromStr for WitnessSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<WitnessSpec, String> {
        parse_spec(s)
    }
}

/// Parses `URL=VKEY`: an `http://` or `https://` submission prefix with a host and no
/// credentials, `=`, and the witness's vkey `<name>+<hex id>+<base64(0x04 ‖ key)>`. The
/// split is at the first `=` after which a valid vkey follows (the vkey's key id is a
/// checksum of its name and key, so no other split parses).
pub fn parse_spec(s: &str) -> Result<WitnessSpec, String> {
    let s = s.trim();
    let mut last_error = None;
    for (i, _) in s.match_indices('=') {
        let (url, vkey) = (&s[..i], &s[i + 1..]);
        match Verifier::parse(vkey) {
            Ok(verifier) => {
                check_url(url)?;
                if verifier.alg() != ALG_COSIGNATURE_V1 {
                    return Err(format!(
                        "the witness key `{vkey}` is not a cosignature/v1 key (type 0x04): give the vkey the witness prints"
                    ));
                }
                return Ok(WitnessSpec {
                    url: url.to_owned(),
                    verifier,
                });
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) if s.contains("://") => {
            format!("expected URL=VKEY (e.g. https://witness.example/=witness.example/w1+1a2b3c4d+BASE64), but no valid vkey follows an `=`: {e}")
        }
        _ => "expected URL=VKEY, e.g. https://witness.example/=witness.example/w1+1a2b3c4d+BASE64"
            .to_owned(),
    })
}

/// The values of `--audit-witness` (each may be a comma-separated list, as from
/// `LRS_AUDIT_WITNESS`); blank items are ignored, the first invalid one is the error.
pub fn parse_list(values: &[String]) -> Result<Vec<WitnessSpec>, String> {
    let mut out: Vec<WitnessSpec> = Vec::new();
    for item in values.iter().flat_map(|v| v.split(',')) {
        if item.trim().is_empty() {
            continue;
        }
        let spec =
            parse_spec(item).map_err(|e| format!("--audit-witness `{}`: {e}", item.trim()))?;
        if out.iter().any(|w| w.verifier == spec.verifier) {
            return Err(format!(
                "--audit-witness: the witness key `{}` is given twice",
                spec.verifier
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// An `http://` or `https://` URL with a host, without user name or password.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("the witness URL `{url}` must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("a witness URL must not carry credentials (user@host)".to_owned());
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(format!("the witness URL `{url}` has no host"));
    }
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the witness URL `{url}` must be a plain prefix (no query, fragment or spaces)"
        ));
    }
    Ok(())
}

/// The sequencer's handle on the cosigning task: `offer` each checkpoint it publishes.
/// Without witnesses it does nothing. Dropping it (or `stop`) ends the task.
pub struct Cosigner {
    offers: Option<watch::Sender<Option<(u64, String)>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Cosigner {
    /// Starts the cosigning task for `witnesses` (none: an idle handle).
    pub fn start(log: Arc<AuditLog>, witnesses: Vec<WitnessSpec>) -> Cosigner {
        if witnesses.is_empty() {
            return Cosigner {
                offers: None,
                task: None,
            };
        }
        let names: Vec<&str> = witnesses.iter().map(|w| w.verifier.name()).collect();
        tracing::info!(
            "audit log: checkpoints are offered to {} witness(es) to cosign: {}",
            names.len(),
            names.join(", ")
        );
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(run(log, witnesses, rx, WITNESS_TIMEOUT));
        Cosigner {
            offers: Some(tx),
            task: Some(task),
        }
    }

    /// A checkpoint the log has just signed and published (call it after publishing: the
    /// cosigned note replaces it). Only the newest offer counts: offers made while
    /// witnesses are being asked replace one another.
    pub fn offer(&self, size: u64, note: String) {
        if let Some(tx) = &self.offers {
            tx.send_replace(Some((size, note)));
        }
    }

    /// Ends the task now (a request under way is abandoned: its answer is dropped).
    pub async fn stop(mut self) {
        self.offers = None;
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Cosigner {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// What the task knows of one witness.
struct WitnessState {
    spec: WitnessSpec,
    /// The size it last cosigned, as far as this process knows (0: none).
    size: u64,
    /// Whether its last attempt failed (a warning is logged once per outage).
    failing: bool,
}

/// The checkpoint being cosigned: its text, the log's own signature lines, and the
/// cosignature gathered from each witness so far.
struct Current {
    size: u64,
    text: String,
    own: Vec<Signature>,
    cosignatures: Vec<Option<Signature>>,
}

impl Current {
    fn missing(&self) -> bool {
        self.cosignatures.iter().any(Option::is_none)
    }

    /// The note as the log signed it (its own signature lines only).
    fn bare(&self) -> Result<String, note::NoteError> {
        note::format(&self.text, &self.own)
    }

    /// The note with the log's lines first, then the cosignatures in witness order.
    fn cosigned(&self) -> Result<String, note::NoteError> {
        let mut sigs = self.own.clone();
        for s in self.cosignatures.iter().flatten() {
            if !sigs.contains(s) {
                sigs.push(s.clone());
            }
        }
        note::format(&self.text, &sigs)
    }
}

async fn run(
    log: Arc<AuditLog>,
    specs: Vec<WitnessSpec>,
    mut offers: watch::Receiver<Option<(u64, String)>>,
    timeout: Duration,
) {
    let mut witnesses: Vec<WitnessState> = specs
        .into_iter()
        .map(|spec| WitnessState {
            spec,
            size: 0,
            failing: false,
        })
        .collect();
    let mut current: Option<Current> = None;
    loop {
        let retry = current.as_ref().is_some_and(Current::missing);
        tokio::select! {
            changed = offers.changed() => {
                if changed.is_err() {
                    return;
                }
                let offer = offers.borrow_and_update().clone();
                let Some((size, signed)) = offer else { continue };
                match note::parse(signed.as_bytes()) {
                    Ok(n) => {
                        current = Some(Current {
                            size,
                            text: n.text,
                            own: n.signatures,
                            cosignatures: vec![None; witnesses.len()],
                        });
                    }
                    Err(e) => {
                        tracing::warn!("audit witnesses: the checkpoint of size {size} does not parse: {e}");
                        continue;
                    }
                }
            }
            _ = tokio::time::sleep(RETRY_EVERY), if retry => {}
        }
        if let Some(c) = current.as_mut() {
            round(&log, &mut witnesses, c, timeout).await;
        }
    }
}

/// Asks every witness that has not cosigned `c` yet, in parallel, and publishes `c` again
/// if a new valid cosignature came back.
async fn round(log: &AuditLog, witnesses: &mut [WitnessState], c: &mut Current, timeout: Duration) {
    let bare = match c.bare() {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("audit witnesses: cannot rebuild checkpoint {}: {e}", c.size);
            return;
        }
    };
    let size = c.size;
    let asks = witnesses
        .iter()
        .zip(&c.cosignatures)
        .map(|(w, got)| {
            let bare = bare.clone();
            let ask = got.is_none();
            async move {
                if ask {
                    Some(ask_witness(log, &w.spec, w.size, size, bare, timeout).await)
                } else {
                    None
                }
            }
        })
        .collect::<Vec<_>>();
    let answers = futures_util::future::join_all(asks).await;
    let mut gained = false;
    for ((w, slot), answer) in witnesses
        .iter_mut()
        .zip(c.cosignatures.iter_mut())
        .zip(answers)
    {
        let Some(Outcome { known, result }) = answer else {
            continue;
        };
        let name = w.spec.verifier.name().to_owned();
        if let Some(k) = known {
            w.size = k;
        }
        match result.and_then(|lines| accept(&bare, &w.spec.verifier, &lines)) {
            Ok(sig) => {
                w.size = c.size;
                if w.failing {
                    tracing::info!("audit witness {name}: cosigning again (size {})", c.size);
                }
                w.failing = false;
                *slot = Some(sig);
                gained = true;
            }
            Err(e) => {
                if w.failing {
                    tracing::debug!(
                        "audit witness {name}: no cosignature of size {}: {e}",
                        c.size
                    );
                } else {
                    tracing::warn!(
                        "audit witness {name}: no cosignature of size {}, the checkpoint is published without it: {e}",
                        c.size
                    );
                }
                w.failing = true;
            }
        }
    }
    if !gained {
        return;
    }
    let cosigned = match c.cosigned() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(
                "audit witnesses: cannot write the cosigned checkpoint {}: {e}",
                c.size
            );
            return;
        }
    };
    // The store and the process keep it only while no larger checkpoint was published.
    if let Err(e) = log.store.put_checkpoint(c.size, cosigned.clone()).await {
        tracing::warn!(
            "audit witnesses: cannot store the cosigned checkpoint {}: {e}",
            c.size
        );
        return;
    }
    log.set_checkpoint(c.size, cosigned);
}

/// The answer of one witness: the size it turned out to know (from a 409), and its
/// cosignature lines or why none.
struct Outcome {
    known: Option<u64>,
    result: Result<Vec<String>, String>,
}

/// `add-checkpoint` with a proof from `old`; on 409, once more from the size the witness
/// knows (when it does not exceed the checkpoint's).
async fn ask_witness(
    log: &AuditLog,
    spec: &WitnessSpec,
    old: u64,
    size: u64,
    bare: String,
    timeout: Duration,
) -> Outcome {
    let old = if old > size { 0 } else { old };
    match post(log, spec, old, size, bare.clone(), timeout).await {
        Err(Failure::Witness(WitnessError::Conflict { known_size })) => {
            if known_size > size {
                return Outcome {
                    known: None,
                    result: Err(format!(
                        "the witness has cosigned size {known_size}, above this checkpoint's {size}: it has seen another tree of this log"
                    )),
                };
            }
            let result = post(log, spec, known_size, size, bare, timeout)
                .await
                .map_err(|e| e.to_string());
            Outcome {
                known: Some(known_size),
                result,
            }
        }
        other => Outcome {
            known: None,
            result: other.map_err(|e| e.to_string()),
        },
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Witness(WitnessError),
    #[error("{0}")]
    Local(String),
}

async fn post(
    log: &AuditLog,
    spec: &WitnessSpec,
    old: u64,
    size: u64,
    bare: String,
    timeout: Duration,
) -> Result<Vec<String>, Failure> {
    let proof: Vec<Hash> = if old == 0 || old == size {
        Vec::new()
    } else {
        log.consistency_proof(old, size)
            .await
            .map_err(|e| Failure::Local(format!("no consistency proof {old} → {size}: {e}")))?
    };
    let url = spec.url.clone();
    let call = tokio::task::spawn_blocking(move || {
        witness_client::add_checkpoint(&url, old, &proof, &bare, timeout)
    });
    // The client's own timeout bounds the request; this bounds a blocking pool that is
    // slow to start it.
    match tokio::time::timeout(timeout + Duration::from_secs(1), call).await {
        Ok(Ok(r)) => r.map_err(Failure::Witness),
        Ok(Err(e)) => Err(Failure::Local(format!("the request task failed: {e}"))),
        Err(_) => Err(Failure::Witness(WitnessError::Transport(
            "timed out".to_owned(),
        ))),
    }
}

/// The first of `lines` that is a valid cosignature of `bare` by `witness`; an error
/// when none is (lines by other keys and lines that do not verify are dropped).
fn accept(bare: &str, witness: &Verifier, lines: &[String]) -> Result<Signature, String> {
    let mut why = "the witness returned no cosignature line".to_owned();
    for line in lines {
        let candidate = format!("{bare}{line}");
        match note::open(candidate.as_bytes(), std::slice::from_ref(witness)) {
            Ok(_) => {
                let parsed = note::parse(candidate.as_bytes()).map_err(|e| e.to_string())?;
                if let Some(sig) = parsed.signatures.last() {
                    return Ok(sig.clone());
                }
            }
            Err(e) => {
                tracing::warn!(
                    "audit witness {}: dropped a returned line that is not its valid cosignature: {e}",
                    witness.name()
                );
                why = format!("no valid cosignature among the lines returned ({e})");
            }
        }
    }
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::leaf_hash;
    use crate::audit::note::{Checkpoint, CosignatureSigner, Signer};

    fn witness_vkey() -> String {
        CosignatureSigner::from_seed("witness.example/w1", &[7; 32])
            .unwrap()
            .verifier()
            .to_string()
    }

    #[test]
    fn parses_url_equals_vkey() {
        let vkey = witness_vkey();
        for url in [
            "https://witness.example/",
            "https://witness.example/sub/path",
            "http://127.0.0.1:7380",
            "http://[::1]:7380/w",
        ] {
            let spec = parse_spec(&format!("{url}={vkey}")).unwrap();
            assert_eq!(spec.url, url);
            assert_eq!(spec.verifier.to_string(), vkey);
            assert_eq!(spec.verifier.name(), "witness.example/w1");
        }
        // Surrounding white space (a comma-separated environment variable) is dropped.
        let spec: WitnessSpec = format!(" https://w.example/={vkey} ").parse().unwrap();
        assert_eq!(spec.url, "https://w.example/");
    }

    #[test]
    fn parses_a_list_skipping_blank_items() {
        let vkey = witness_vkey();
        let other = CosignatureSigner::from_seed("witness.example/w2", &[9; 32])
            .unwrap()
            .verifier()
            .to_string();
        let list = parse_list(&[
            format!("https://a.example/={vkey}, ,http://127.0.0.1:1/={other},"),
            String::new(),
        ])
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].url, "https://a.example/");
        assert_eq!(list[1].verifier.name(), "witness.example/w2");
        assert!(parse_list(&["".into(), " ".into()]).unwrap().is_empty());
        let twice = parse_list(&[
            format!("https://a.example/={vkey}"),
            format!("https://b.example/={vkey}"),
        ])
        .unwrap_err();
        assert!(twice.contains("given twice"), "{twice}");
        let bad =
            parse_list(&[format!("https://a.example/={vkey}"), "nonsense".into()]).unwrap_err();
        assert!(
            bad.starts_with("--audit-witness `nonsense`: expected URL=VKEY"),
            "{bad}"
        );
    }

    #[test]
    fn refuses_what_is_not_url_equals_cosignature_vkey() {
        let vkey = witness_vkey();
        let log_vkey = Signer::from_seed("log.example/audit", &[1; 32])
            .unwrap()
            .verifier()
            .to_string();
        let cases = [
            (String::new(), "expected URL=VKEY"),
            ("https://w.example/".to_owned(), "expected URL=VKEY"),
            (format!("https://w.example/+{vkey}"), "expected URL=VKEY"),
            (
                format!("https://w.example/={}", &vkey[..vkey.len() - 4]),
                "no valid vkey",
            ),
            (format!("ftp://w.example/={vkey}"), "http:// or https://"),
            (format!("https://={vkey}"), "no host"),
            (format!("https://u:p@w.example/={vkey}"), "credentials"),
            (format!("https://w.example/?a=b={vkey}"), "plain prefix"),
            (format!("https://w.example/={log_vkey}"), "cosignature/v1"),
        ];
        for (input, want) in cases {
            let err = parse_spec(&input).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err}");
        }
    }

    #[test]
    fn accepts_only_valid_cosignatures_by_the_witness() {
        let log = Signer::from_seed("log.example/audit", &[1; 32]).unwrap();
        let cp = Checkpoint::new("log.example/audit", 3, leaf_hash(b"x"));
        let text = cp.to_text().unwrap();
        let bare = cp.sign(&log).unwrap();
        let w = CosignatureSigner::from_seed("witness.example/w1", &[7; 32]).unwrap();
        let other = CosignatureSigner::from_seed("witness.example/w2", &[8; 32]).unwrap();
        let good = w.cosign(&text, 1_700_000_000).unwrap().line();
        let stranger = other.cosign(&text, 1_700_000_000).unwrap().line();
        let wrong_text = w
            .cosign("log.example/audit\n4\nAAAA\n", 1_700_000_000)
            .unwrap()
            .line();
        let v = w.verifier();
        let sig = accept(
            &bare,
            &v,
            &[stranger.clone(), wrong_text.clone(), good.clone()],
        )
        .unwrap();
        assert_eq!(sig.line(), good);
        assert!(accept(&bare, &v, &[stranger, wrong_text]).is_err());
        assert!(accept(&bare, &v, &[]).is_err());

        // The cosigned note: the log's line first, then the cosignature; both verify.
        let n = note::parse(bare.as_bytes()).unwrap();
        let c = Current {
            size: 3,
            text: n.text,
            own: n.signatures,
            cosignatures: vec![Some(sig), None],
        };
        assert!(c.missing());
        assert_eq!(c.bare().unwrap(), bare);
        let cosigned = c.cosigned().unwrap();
        assert_eq!(cosigned, format!("{bare}{good}"));
        let opened = note::open(cosigned.as_bytes(), &[log.verifier(), v]).unwrap();
        assert_eq!(opened.verified.len(), 2);
    }
}
