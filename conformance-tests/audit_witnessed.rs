//! The LRS has its checkpoints cosigned by a witness (`--audit-witness URL=VKEY`,
//! docs/AUDIT.md 8.3): a real `karmayogi-lrs audit witness` process on 127.0.0.1 with
//! temporary key and state directories, and an LRS whose signing key is created here so
//! the witness can be told the log's vkey before the LRS starts.
use crate::audit::{post, root, statement, verify_proof};
use crate::harness::{Lrs, Stop};
use karmayogi_lrs::audit::note::{self, Checkpoint, Signer, Verifier};
use karmayogi_lrs::audit::witness;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_karmayogi-lrs");
const ORIGIN: &str = "karmayogi-lrs.local/audit";
const NAME: &str = "witness.test/w1";

/// The witness process; killed when dropped.
struct Witness {
    child: Child,
    url: String,
    vkey: Verifier,
}

impl Witness {
    /// Starts the witness on `listen` (`127.0.0.1:0`, or the port of an earlier run).
    fn start(listen: &str, key: &Path, state: &Path, log_vkey: &str) -> Option<Witness> {
        let mut child = Command::new(BIN)
            .args(["audit", "witness", "--listen", listen, "--name", NAME])
            .arg("--key")
            .arg(key)
            .arg("--state")
            .arg(state)
            .args(["--log", log_vkey])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the witness");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let (mut url, mut vkey) = (None, None);
        while url.is_none() || vkey.is_none() {
            let Some(Ok(line)) = lines.next() else {
                // Exited before it was ready (the port not free yet after a restart).
                let _ = child.kill();
                let _ = child.wait();
                return None;
            };
            if let Some(u) = line.strip_prefix("listening on ") {
                url = Some(u.to_owned());
            } else if let Some(v) = line.strip_prefix("vkey ") {
                vkey = Some(Verifier::parse(v).expect("the printed vkey parses"));
            }
        }
        Some(Witness {
            child,
            url: url.unwrap(),
            vkey: vkey.unwrap(),
        })
    }

    /// The port it listens on.
    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The cosigned checkpoint the witness keeps for the log (its monitoring API).
    fn record(&self) -> String {
        let url = format!("{}/{}/checkpoint", self.url, witness::origin_hash(ORIGIN));
        ureq::get(&url).call().unwrap().into_string().unwrap()
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The LRS's signing key, created as `load_or_create_key` would (mode 0600).
fn write_log_key(path: &Path) -> Signer {
    let signer = Signer::generate(ORIGIN).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    writeln!(f, "{}", signer.to_private_key_string()).unwrap();
    signer
}

/// The current checkpoint: (size, whether the witness's cosignature is on it and
/// verifies). The log's own signature must always verify.
fn current(lrs: &Lrs, log: &Verifier, w: &Verifier) -> Option<(u64, bool, String)> {
    let r = lrs
        .get(&format!("{}/audit/checkpoint", root(lrs)))
        .no_version()
        .send();
    if r.status != 200 {
        return None;
    }
    let opened = note::open(&r.body, &[log.clone(), w.clone()])
        .unwrap_or_else(|e| panic!("the checkpoint does not open: {e}\n{}", r.text()));
    assert_eq!(
        opened.verified[0].name, ORIGIN,
        "the log's line comes first"
    );
    let cp = Checkpoint::parse(&opened.text).unwrap();
    let cosigned = opened.verified.iter().any(|s| s.name == w.name());
    if cosigned {
        let ts = opened.verified[1]
            .timestamp
            .expect("a cosignature timestamp");
        assert!(ts > 1_600_000_000);
    }
    Some((cp.size, cosigned, r.text()))
}

/// Waits (15 s) for a checkpoint of at least `size` leaves that the witness cosigned.
fn cosigned_checkpoint(lrs: &Lrs, log: &Verifier, w: &Verifier, size: u64) -> (u64, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((n, true, text)) = current(lrs, log, w) {
            if n >= size {
                return (n, text);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no cosigned checkpoint of {size} leaves within 15 s; now {:?}\n{}",
            current(lrs, log, w),
            lrs.server_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn proof(lrs: &Lrs, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = lrs
            .get(&format!("{}/audit/proof", root(lrs)))
            .no_version()
            .query("statementId", id)
            .send();
        if r.status == 200 {
            return r.json();
        }
        assert_eq!(r.status, 503, "{}", r.describe());
        assert!(Instant::now() < deadline, "no proof within 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post_n(lrs: &Lrs, n: usize, tag: &str) -> Vec<String> {
    let batch: Vec<_> = (0..n)
        .map(|i| {
            statement(
                &format!("{tag}{i}"),
                "completed",
                "http://example.gov.in/c/w",
            )
        })
        .collect();
    post(lrs, &serde_json::Value::Array(batch))
}

fn witness_state(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("witness.key"), dir.join("witness-state"))
}

#[test]
fn audit_witnessed_checkpoints_are_cosigned_and_a_witness_outage_never_stops_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = dir.path().join("lrs-audit.key");
    let log_vkey = write_log_key(&log_key).verifier();
    let (wkey, wstate) = witness_state(dir.path());
    let w = Witness::start("127.0.0.1:0", &wkey, &wstate, &log_vkey.to_string())
        .expect("the witness starts");
    let (wurl, wvkey, port) = (w.url.clone(), w.vkey.clone(), w.port());
    let mut lrs = Lrs::builder()
        .arg("--audit-key")
        .arg(log_key.display().to_string())
        .arg("--audit-witness")
        .arg(format!("{wurl}={wvkey}"))
        .start();

    // 1. The first checkpoint is cosigned (the witness had nothing: old size 0).
    post_n(&lrs, 3, "a");
    let (n1, text) = cosigned_checkpoint(&lrs, &log_vkey, &wvkey, 3);
    assert!(text.contains(&format!("— {NAME} ")), "{text}");
    // The log's line, then exactly one cosignature.
    assert_eq!(note::parse(text.as_bytes()).unwrap().signatures.len(), 2);

    // 2. More statements: the next checkpoint is cosigned too; the witness advanced by a
    // consistency proof from n1 (it refuses anything else) and keeps that checkpoint.
    let ids = post_n(&lrs, 2, "b");
    let (n2, _) = cosigned_checkpoint(&lrs, &log_vkey, &wvkey, n1 + 2);
    assert!(n2 > n1);
    let kept = w.record();
    let opened = note::open(kept.as_bytes(), &[log_vkey.clone(), wvkey.clone()]).unwrap();
    assert_eq!(opened.verified.len(), 2);
    assert!(Checkpoint::parse(&opened.text).unwrap().size >= n2);
    // Proofs carry the cosigned checkpoint (it verifies with the log's key alone too).
    let p = proof(&lrs, &ids[1]);
    verify_proof(&p, &log_vkey);

    // 3. The witness goes down: the LRS still publishes checkpoints, without the
    // cosignature, and statements still get proofs, within the usual delay.
    drop(w);
    let ids = post_n(&lrs, 2, "c");
    let started = Instant::now();
    let size3 = loop {
        if let Some((n, cosigned, _)) = current(&lrs, &log_vkey, &wvkey) {
            if n >= n2 + 2 {
                assert!(!cosigned, "a cosignature from a stopped witness");
                break n;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no checkpoint within 5 s while the witness is down\n{}",
            lrs.server_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for id in &ids {
        let p = proof(&lrs, id);
        assert!(verify_proof(&p, &log_vkey) < size3);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (n, cosigned, _) = current(&lrs, &log_vkey, &wvkey).unwrap();
    assert_eq!((n, cosigned), (size3, false));

    // 4. The witness comes back on the same port with its state: cosigning resumes (its
    // record is still n2; the LRS remembers n2 and proves n2 → new size).
    let deadline = Instant::now() + Duration::from_secs(10);
    let w = loop {
        if let Some(w) = Witness::start(
            &format!("127.0.0.1:{port}"),
            &wkey,
            &wstate,
            &log_vkey.to_string(),
        ) {
            break w;
        }
        assert!(Instant::now() < deadline, "port {port} not free again");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(w.vkey, wvkey, "the same witness key");
    post_n(&lrs, 1, "d");
    let (n4, _) = cosigned_checkpoint(&lrs, &log_vkey, &wvkey, size3 + 1);

    // 5. A restarted LRS does not know what the witness cosigned (0): the witness
    // answers 409 with its size and the LRS retries from there.
    lrs.restart(Stop::Term);
    post_n(&lrs, 1, "e");
    let (n5, _) = cosigned_checkpoint(&lrs, &log_vkey, &wvkey, n4 + 1);
    let kept = w.record();
    let opened = note::open(kept.as_bytes(), &[log_vkey.clone(), wvkey.clone()]).unwrap();
    assert_eq!(Checkpoint::parse(&opened.text).unwrap().size, n5);
    drop(w);
    lrs.stop(Stop::Term);
}

#[test]
fn audit_witnessed_an_invalid_witness_option_stops_the_start() {
    let vkey = note::CosignatureSigner::generate(NAME)
        .unwrap()
        .verifier()
        .to_string();
    let log_vkey = Signer::generate(ORIGIN).unwrap().verifier().to_string();
    let dir = tempfile::tempdir().unwrap();
    for (value, want) in [
        ("http://127.0.0.1:9".to_owned(), "expected URL=VKEY"),
        (format!("http://127.0.0.1:9={log_vkey}"), "cosignature/v1"),
        (format!("ftp://127.0.0.1:9={vkey}"), "http:// or https://"),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--store")
            .arg(format!("sqlite:{}", dir.path().join("lrs.db").display()))
            .arg("--audit-key")
            .arg(dir.path().join("audit.key"))
            .args(["--audit-witness", &value])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{value}: started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--audit-witness") && err.contains(want),
            "{value}: {err}"
        );
    }
}

#[test]
fn audit_witnessed_a_witness_that_never_answers_does_not_delay_checkpoints() {
    // A "witness" that accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let wvkey = note::CosignatureSigner::generate(NAME).unwrap().verifier();
    let mut lrs = Lrs::builder()
        .arg("--audit-witness")
        .arg(format!("http://{}={wvkey}", silent.local_addr().unwrap()))
        .start();
    let log_vkey = crate::audit::vkey(&lrs);
    let mut last = 0;
    for round in 0..3 {
        let ids = post_n(&lrs, 1, &format!("s{round}"));
        let posted = Instant::now();
        let p = proof(&lrs, &ids[0]);
        verify_proof(&p, &log_vkey);
        // Within the published merge delay although every cosigning request hangs for
        // its whole timeout.
        assert!(
            posted.elapsed() < Duration::from_millis(2_500),
            "round {round}: the proof took {:?}",
            posted.elapsed()
        );
        let (n, cosigned, _) = current(&lrs, &log_vkey, &wvkey).unwrap();
        assert!(n > last && !cosigned);
        last = n;
    }
    // A request still hanging does not keep a graceful stop from ending cleanly.
    let stopping = Instant::now();
    assert!(lrs.stop(Stop::Term).success());
    assert!(stopping.elapsed() < Duration::from_secs(5));
    drop(silent);
}
