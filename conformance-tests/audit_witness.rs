//! `karmayogi-lrs audit witness` against c2sp.org/tlog-witness `add-checkpoint`: the
//! binary is started on 127.0.0.1:0 with temporary key and state directories, and fed
//! requests built with the library (a generated log key, trees built with `merkle`).
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use karmayogi_lrs::audit::merkle::{self, consistency_proof, leaf_hash, Hash};
use karmayogi_lrs::audit::note::{self, Checkpoint, Signer, Verifier, ALG_COSIGNATURE_V1};
use karmayogi_lrs::audit::witness;
use karmayogi_lrs::witness_client::{add_checkpoint, WitnessError};

const BIN: &str = env!("CARGO_BIN_EXE_karmayogi-lrs");
const ORIGIN: &str = "lrs.test/audit";
const NAME: &str = "witness.test/w1";
const TIMEOUT: Duration = Duration::from_secs(10);

/// The witness process; killed when dropped.
struct Witness {
    child: Child,
    url: String,
    vkey: Verifier,
}

impl Witness {
    fn start(key: &Path, state: &Path, logs: &[String]) -> Witness {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "audit",
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            NAME,
        ])
        .arg("--key")
        .arg(key)
        .arg("--state")
        .arg(state);
        for l in logs {
            cmd.args(["--log", l]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the witness");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let mut url = None;
        let mut vkey = None;
        while url.is_none() || vkey.is_none() {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => {
                    let _ = child.kill();
                    panic!("the witness exited before it was ready");
                }
            };
            if let Some(u) = line.strip_prefix("listening on ") {
                url = Some(u.to_string());
            } else if let Some(v) = line.strip_prefix("vkey ") {
                vkey = Some(Verifier::parse(v).expect("the printed vkey parses"));
            }
        }
        Witness {
            child,
            url: url.unwrap(),
            vkey: vkey.unwrap(),
        }
    }

    fn post(&self, body: &str) -> (u16, String, String) {
        let r = ureq::AgentBuilder::new()
            .timeout(TIMEOUT)
            .build()
            .post(&format!("{}/add-checkpoint", self.url))
            .send_string(body);
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("POST add-checkpoint: {e}"),
        };
        let status = resp.status();
        let ctype = resp.header("Content-Type").unwrap_or("").to_string();
        (status, ctype, resp.into_string().unwrap())
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log: its key and the stored hashes of `n` leaves.
struct Log {
    key: Signer,
    stored: Vec<Hash>,
    size: u64,
}

impl Log {
    fn new(seed: u8, tag: &str, n: u64) -> Log {
        let mut log = Log {
            key: Signer::from_seed(ORIGIN, &[seed; 32]).unwrap(),
            stored: Vec::new(),
            size: 0,
        };
        for i in 0..n {
            let h = leaf_hash(format!("{tag} {i}").as_bytes());
            let add = merkle::stored_hashes_for_append(i, &h, &log.stored[..]).unwrap();
            log.stored.extend(add);
            log.size += 1;
        }
        log
    }

    fn root(&self, n: u64) -> Hash {
        merkle::tree_hash(n, &self.stored[..]).unwrap()
    }

    fn checkpoint(&self, n: u64) -> String {
        Checkpoint::new(ORIGIN, n, self.root(n))
            .sign(&self.key)
            .unwrap()
    }

    fn proof(&self, m: u64, n: u64) -> Vec<Hash> {
        if m == 0 {
            return Vec::new();
        }
        consistency_proof(m, n, &self.stored[..]).unwrap()
    }
}

#[test]
fn audit_witness_add_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("witness.key");
    let state = dir.path().join("state");
    let log = Log::new(1, "leaf", 40);
    let log_vkey = log.key.verifier().to_string();
    // One log given as text, its key also as a file (the same key twice is harmless).
    let vkey_file = dir.path().join("log.vkey");
    std::fs::write(&vkey_file, format!("{log_vkey}\n")).unwrap();
    let w = Witness::start(
        &key,
        &state,
        &[log_vkey.clone(), vkey_file.to_string_lossy().into_owned()],
    );
    assert_eq!(w.vkey.alg(), ALG_COSIGNATURE_V1);
    assert_eq!(w.vkey.name(), NAME);

    // The key file exists, mode 0600, and its private key is not what was printed.
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(key_text.starts_with(&format!("PRIVATE+KEY+{NAME}+")));

    let both = [log.key.verifier(), w.vkey.clone()];
    // 1. The first checkpoint (old 0) is cosigned; the cosignature verifies.
    let cp5 = log.checkpoint(5);
    let lines = add_checkpoint(&w.url, 0, &[], &cp5, TIMEOUT).unwrap();
    assert_eq!(lines.len(), 1);
    let cosigned = format!("{cp5}{}", lines.concat());
    let opened = note::open(cosigned.as_bytes(), &both).unwrap();
    assert_eq!(opened.verified.len(), 2);
    let ts = opened.verified[1]
        .timestamp
        .expect("a cosignature timestamp");
    assert!(ts > 1_600_000_000);
    // The record file is private too.
    let rec = state.join(format!("{}.json", witness::origin_hash(ORIGIN)));
    let mode = std::fs::metadata(&rec).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // 2. A consistent extension, 5 → 12, then 12 → 12 (same root) and 12 → 40.
    for (m, n) in [(5, 12), (12, 12), (12, 40)] {
        let cp = log.checkpoint(n);
        let lines = add_checkpoint(&w.url, m, &log.proof(m, n), &cp, TIMEOUT)
            .unwrap_or_else(|e| panic!("{m} → {n}: {e}"));
        let cosigned = format!("{cp}{}", lines.concat());
        note::open(cosigned.as_bytes(), std::slice::from_ref(&w.vkey)).unwrap();
    }

    // 3. A wrong old size: 409, text/x.tlog.size, the known size.
    let cp40 = log.checkpoint(40);
    let (status, ctype, body) = w.post(&witness::format_request(12, &log.proof(12, 40), &cp40));
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "40\n")
    );
    assert_eq!(
        add_checkpoint(&w.url, 0, &[], &cp40, TIMEOUT),
        Err(WitnessError::Conflict { known_size: 40 })
    );

    // 4. An inconsistent proof (a fork of the log), and a fork at the same size: 422.
    let fork = Log::new(1, "fork", 50);
    let cp = fork.checkpoint(50);
    let (status, _, _) = w.post(&witness::format_request(40, &fork.proof(40, 50), &cp));
    assert_eq!(status, 422);
    let (status, _, _) = w.post(&witness::format_request(40, &[], &fork.checkpoint(40)));
    assert_eq!(status, 422);
    assert!(matches!(
        add_checkpoint(&w.url, 40, &fork.proof(40, 50), &cp, TIMEOUT),
        Err(WitnessError::Status { status: 422, .. })
    ));

    // 5. Unknown origin: 404 (tlog-witness); a known origin signed by another key: 403.
    let stranger = Signer::from_seed("other.test/log", &[2; 32]).unwrap();
    let cp = Checkpoint::new("other.test/log", 1, leaf_hash(b"x"))
        .sign(&stranger)
        .unwrap();
    let (status, _, _) = w.post(&witness::format_request(0, &[], &cp));
    assert_eq!(status, 404);
    let impostor = Log::new(3, "leaf", 41);
    let (status, _, _) = w.post(&witness::format_request(
        40,
        &impostor.proof(40, 41),
        &impostor.checkpoint(41),
    ));
    assert_eq!(status, 403);

    // 6. Malformed bodies: 400; old size above the checkpoint size: 400.
    let (status, _, _) = w.post("old 40\n");
    assert_eq!(status, 400);
    let (status, _, _) = w.post(&witness::format_request(41, &[], &cp40));
    assert_eq!(status, 400);

    // The monitoring API serves the cosigned checkpoint.
    let url = format!("{}/{}/checkpoint", w.url, witness::origin_hash(ORIGIN));
    let served = ureq::get(&url).call().unwrap().into_string().unwrap();
    let opened = note::open(served.as_bytes(), &both).unwrap();
    assert_eq!(opened.verified.len(), 2);
    assert!(opened.text.contains("\n40\n"));

    // 7. The record survives a restart: the witness still knows size 40.
    drop(w);
    let w = Witness::start(&key, &state, &[log_vkey]);
    assert_eq!(w.vkey, both[1], "the same key is reused");
    assert_eq!(
        add_checkpoint(&w.url, 5, &log.proof(5, 40), &cp40, TIMEOUT),
        Err(WitnessError::Conflict { known_size: 40 })
    );
    drop(w);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), key_text);
}

#[test]
fn audit_witness_refuses_a_key_file_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("witness.key");
    let signer = note::CosignatureSigner::generate(NAME).unwrap();
    std::fs::write(&key, signer.to_private_key_string()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = Signer::generate(ORIGIN).unwrap().verifier().to_string();
    let status = Command::new(BIN)
        .args([
            "audit",
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            NAME,
        ])
        .arg("--key")
        .arg(&key)
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["--log", &log])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2));
    let err = String::from_utf8_lossy(&status.stderr);
    assert!(err.contains("readable by others"), "{err}");
    assert!(!err.contains(&signer.to_private_key_string()));
}
