//! `karmayogi-lrs audit verify` (issue 13), black box: a completion certificate built by
//! the library from a small log verifies offline with the log's vkey (exit 0, summary on
//! standard output); one changed byte, or another key, is refused (exit 1); an unreadable
//! certificate is a usage error (exit 2). No server, no network.
use std::path::Path;
use std::process::{Command, Output, Stdio};

use karmayogi_lrs::audit::certificate::{self, CertifiedStatement};
use karmayogi_lrs::audit::leaf::{self, Salt};
use karmayogi_lrs::audit::merkle::{self, Hash};
use karmayogi_lrs::audit::note::{self, Checkpoint, Signer};
use karmayogi_lrs::departments::Department;
use serde_json::{json, Value};

const ORIGIN: &str = "lrs.example.gov.in/audit";
const ACTIVITY: &str = "https://example.gov.in/course/ethics-101";
const LEARNER: &str = "mailto:learner@example.gov.in";

fn statement(i: u64, verb: &str) -> Value {
    json!({
        "id": format!("6a1f7c0e-2b3d-4e5f-8a9b-0c1d2e3f4a{i:02x}"),
        "actor": {"objectType": "Agent", "mbox": LEARNER},
        "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}")},
        "object": {"objectType": "Activity", "id": ACTIVITY,
                   "definition": {"name": {"en-US": "Ethics 101"}}},
        "result": {"completion": true},
        "stored": format!("2026-12-01T04:30:0{i}.123456Z"),
        "timestamp": format!("2026-12-01T04:29:0{i}.000Z"),
        "authority": {"objectType": "Agent", "mbox": "mailto:lrs@example.gov.in"},
        "version": "1.0.3",
    })
}

/// A five-leaf log whose leaf 3 is the learner's completion; its certificate and signer.
fn certificate() -> (Vec<u8>, Signer) {
    let signer = Signer::generate(ORIGIN).unwrap();
    let verbs = [
        "attempted",
        "experienced",
        "attempted",
        "completed",
        "experienced",
    ];
    let mut stored: Vec<Hash> = Vec::new();
    let mut entries = Vec::new();
    for (i, verb) in verbs.iter().enumerate() {
        let s = statement(i as u64, verb);
        let salt = Salt::generate();
        let dept = Department::parse("moe/dhe").unwrap();
        let leaf = leaf::statement_leaf(&s, &salt, &dept, leaf::stored_us_of(&s).unwrap())
            .unwrap()
            .leaf_hash();
        let add = merkle::stored_hashes_for_append(i as u64, &leaf, stored.as_slice()).unwrap();
        stored.extend(add);
        entries.push((s, salt, dept));
    }
    let size = entries.len() as u64;
    let root = merkle::tree_hash(size, stored.as_slice()).unwrap();
    let checkpoint = note::sign(
        &Checkpoint::new(ORIGIN, size, root).to_text().unwrap(),
        &[&signer],
    )
    .unwrap();
    let (statement, salt, department) = entries.swap_remove(3);
    let certified = CertifiedStatement {
        statement,
        salt,
        department,
        leaf_index: 3,
        proof: merkle::inclusion_proof(3, size, stored.as_slice()).unwrap(),
    };
    let file = certificate::build(
        &json!({"mbox": LEARNER}),
        ACTIVITY,
        &[certified],
        &checkpoint,
        &signer,
        "https://lrs.example.gov.in",
        1_796_103_000_000_000,
    )
    .unwrap();
    (file, signer)
}

fn audit_verify(cert: &Path, vkey: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_karmayogi-lrs"))
        .args(["audit", "verify"])
        .arg(cert)
        .args(["--vkey", vkey])
        .env("LRS_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn audit_verify_accepts_a_certificate_and_refuses_any_changed_byte() {
    let (file, signer) = certificate();
    let vkey = signer.verifier().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("certificate.json");
    std::fs::write(&cert, &file).unwrap();

    let out = audit_verify(&cert, &vkey);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("VERIFIED: "), "{text}");
    for part in [
        LEARNER,
        "completed \"Ethics 101\"",
        ACTIVITY,
        "at leaf 3",
        ORIGIN,
        "tree size 5",
    ] {
        assert!(text.contains(part), "`{part}` missing from {text}");
    }

    // The key may also be given as a file.
    let key_file = dir.path().join("log.vkey");
    std::fs::write(&key_file, format!("{vkey}\n")).unwrap();
    assert_eq!(
        audit_verify(&cert, key_file.to_str().unwrap())
            .status
            .code(),
        Some(0)
    );

    // One changed byte, in the statement, the checkpoint and the credential.
    let text = String::from_utf8(file.clone()).unwrap();
    for (needle, offset) in [
        ("verbs/completed", 7),
        ("\\n5\\n", 2),
        ("\"credential\":\"eyJ", 15),
    ] {
        let at = text.find(needle).unwrap() + offset;
        let mut changed = file.clone();
        changed[at] ^= 0x01;
        let tampered = dir.path().join("tampered.json");
        std::fs::write(&tampered, &changed).unwrap();
        let out = audit_verify(&tampered, &vkey);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "byte {at}: {text}");
        assert!(text.starts_with("NOT VERIFIED: "), "{text}");
    }

    // Another log's key.
    let other = Signer::generate(ORIGIN).unwrap().verifier().to_string();
    assert_eq!(audit_verify(&cert, &other).status.code(), Some(1));
}

#[test]
fn audit_verify_usage_errors_exit_2() {
    let (_, signer) = certificate();
    let vkey = signer.verifier().to_string();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    assert_eq!(audit_verify(&missing, &vkey).status.code(), Some(2));
    let cert = dir.path().join("certificate.json");
    std::fs::write(&cert, b"{}\n").unwrap();
    assert_eq!(audit_verify(&cert, "not-a-key").status.code(), Some(2));
}
