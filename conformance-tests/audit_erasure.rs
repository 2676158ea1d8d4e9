//! Lawful erasure (issue 13; docs/AUDIT.md 6.5 and 9): `DELETE /admin/agents` and
//! `karmayogi-lrs erase` remove a person's statements, documents and the attachments
//! only they used, within the caller's subtree; the log stays consistent, other people's
//! certificates still verify, and a monitor reports "erased", not "tampered".
use crate::audit::{checkpoint_of, post, root, statement, vkey};
use crate::harness::Lrs;
use karmayogi_lrs::audit::leaf::Leaf;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const COURSE: &str = "https://igot.gov.in/course/ethics";

fn monitor(lrs: &Lrs, state: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_karmayogi-lrs"))
        .args(["audit", "monitor", &format!("{}/audit", root(lrs))])
        .args(["--vkey", &vkey(lrs).to_string()])
        .arg("--state")
        .arg(state)
        .args(["--once", "--key", lrs.key(), "--secret", lrs.secret()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run audit monitor");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn erase(lrs: &Lrs, key: &str, secret: &str, agent: &Value) -> crate::harness::Response {
    lrs.delete(&format!("{}/admin/agents", root(lrs)))
        .no_version()
        .auth(key, secret)
        .query("agent", &agent.to_string())
        .query("reference", "DPDP-2026-0042")
        .send()
}

fn certificate(lrs: &Lrs, agent: &Value) -> Vec<u8> {
    let r = lrs
        .get(&format!("{}/audit/certificate", root(lrs)))
        .no_version()
        .query("agent", &agent.to_string())
        .query("activity", COURSE)
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    r.body
}

fn verifies(lrs: &Lrs, cert: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("cert.json");
    std::fs::write(&file, cert).expect("write");
    std::process::Command::new(env!("CARGO_BIN_EXE_karmayogi-lrs"))
        .args(["audit", "verify"])
        .arg(&file)
        .args(["--vkey", &vkey(lrs).to_string()])
        .output()
        .expect("run audit verify")
        .status
        .success()
}

#[test]
fn erasure_removes_a_persons_records_and_the_log_says_erased_not_tampered() {
    let lrs = Lrs::start();
    let asha = json!({"objectType": "Agent", "mbox": "mailto:asha@example.gov.in"});
    let ravi = json!({"objectType": "Agent", "mbox": "mailto:ravi@example.gov.in"});
    let asha_ids = post(
        &lrs,
        &json!([
            statement("asha", "completed", COURSE),
            statement("asha", "attempted", "https://igot.gov.in/course/rti"),
        ]),
    );
    let ravi_ids = post(&lrs, &json!([statement("ravi", "completed", COURSE)]));
    // Asha's voided statement is erased too.
    let voiding = json!({
        "actor": {"mbox": "mailto:admin@example.gov.in"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": asha_ids[1]},
    });
    post(&lrs, &voiding);
    // Her state and agent profile documents.
    for (path, params) in [
        (
            "activities/state",
            vec![("activityId", COURSE), ("stateId", "bookmark")],
        ),
        ("agents/profile", vec![("profileId", "preferences")]),
    ] {
        let mut r = lrs.put(path).query("agent", &asha.to_string());
        for (k, v) in &params {
            r = r.query(k, v);
        }
        let r = r.json(&json!({"page": 7})).send();
        assert_eq!(r.status, 204, "{}", r.describe());
    }
    let (before, _) = checkpoint_of(&lrs, 4);
    let ravi_cert = certificate(&lrs, &ravi);
    assert!(verifies(&lrs, &ravi_cert));
    let state = tempfile::tempdir().expect("tmp");
    let (code, out) = monitor(&lrs, state.path());
    assert_eq!(code, 0, "{out}");

    // The erasure.
    let r = erase(
        &lrs,
        lrs.key(),
        lrs.secret(),
        &json!({"mbox": "mailto:asha@example.gov.in", "name": "Asha"}),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let answer = r.json();
    assert_eq!(answer["statements"], 2, "{answer}");
    assert_eq!(answer["documents"], 2, "{answer}");
    let receipt = answer["receipt"].as_str().expect("receipt");
    assert_eq!(
        hex::encode(Sha256::digest(receipt.as_bytes())),
        answer["receiptHash"].as_str().expect("hash")
    );
    let parsed: Value = serde_json::from_str(receipt).expect("receipt JSON");
    assert_eq!(
        parsed["agent"],
        json!({"objectType": "Agent", "mbox": "mailto:asha@example.gov.in"})
    );
    assert_eq!(parsed["reference"], "DPDP-2026-0042");
    assert_eq!(parsed["statements"].as_array().map(Vec::len), Some(2));

    // Her records are gone, through every interface.
    for id in &asha_ids {
        for param in ["statementId", "voidedStatementId"] {
            let r = lrs.get("statements").query(param, id).send();
            assert_eq!(r.status, 404, "{}", r.describe());
        }
        let r = lrs
            .get(&format!("{}/audit/proof", root(&lrs)))
            .no_version()
            .query("statementId", id)
            .send();
        assert_eq!(r.status, 404, "{}", r.describe());
    }
    // What is left matching her is the voiding statement, which names only a statement
    // id: someone else's statement, kept.
    let r = lrs
        .get("statements")
        .query("agent", &asha.to_string())
        .send();
    for s in r.json()["statements"].as_array().expect("statements") {
        assert_ne!(s["actor"]["mbox"], "mailto:asha@example.gov.in", "{s}");
    }
    let r = lrs
        .get("activities/state")
        .query("agent", &asha.to_string())
        .query("activityId", COURSE)
        .query("stateId", "bookmark")
        .send();
    assert_eq!(r.status, 404, "{}", r.describe());
    // Ravi's are not.
    let r = lrs
        .get("statements")
        .query("statementId", &ravi_ids[0])
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());

    // The log: grown by one erasure leaf naming her two leaves, with the receipt's hash.
    let (after, _) = checkpoint_of(&lrs, before.size + 1);
    let last = after.size - 1;
    let bundle = lrs
        .get(&format!(
            "{}/audit/tile/entries/{}.p/{}",
            root(&lrs),
            karmayogi_lrs::audit::tiles::encode_index(last / 256),
            after.size % 256
        ))
        .no_version()
        .send();
    assert_eq!(bundle.status, 200, "{}", bundle.describe());
    let mut at = 0;
    let mut leaves = Vec::new();
    while at < bundle.body.len() {
        let len = u16::from_be_bytes([bundle.body[at], bundle.body[at + 1]]) as usize;
        leaves.push(Leaf::parse(&bundle.body[at + 2..at + 2 + len]).expect("leaf"));
        at += 2 + len;
    }
    let Some(Leaf::Erasure(e)) = leaves.last() else {
        panic!("the last leaf is no erasure leaf: {leaves:?}");
    };
    assert_eq!(
        e.receipt.to_hex(),
        answer["receiptHash"].as_str().expect("hash")
    );
    let named: Vec<u64> = answer["erasedLeaves"]
        .as_array()
        .expect("leaves")
        .iter()
        .map(|v| v.as_u64().expect("index"))
        .collect();
    assert_eq!(e.indexes, named);

    // Other people's certificates still verify: the one issued before and a new one.
    assert!(verifies(&lrs, &ravi_cert));
    assert!(verifies(&lrs, &certificate(&lrs, &ravi)));
    // The monitor that saw the log before, and a new one: "erased", exit 0.
    for dir in [
        state.path().to_owned(),
        tempfile::tempdir().expect("tmp").keep(),
    ] {
        let (code, out) = monitor(&lrs, &dir);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("erased"), "{out}");
        assert!(!out.to_lowercase().contains("tampered"), "{out}");
    }
    // Erasing again finds nothing.
    let r = erase(&lrs, lrs.key(), lrs.secret(), &asha);
    assert_eq!(r.status, 404, "{}", r.describe());
}

#[test]
fn erasure_stays_within_the_callers_subtree() {
    let lrs = Lrs::start();
    lrs.cli(&["departments", "create", "moe"]);
    lrs.cli(&["departments", "create", "mha"]);
    let (moe_key, moe_secret) = lrs.department_credential("moe", &["all"]);
    let (moe_admin, moe_admin_secret) = lrs.department_credential("moe", &["admin"]);
    let (mha_admin, mha_admin_secret) = lrs.department_credential("mha", &["admin"]);
    let (writer, writer_secret) = lrs.department_credential("moe", &["statements/write"]);
    let r = lrs
        .post("statements")
        .auth(&moe_key, &moe_secret)
        .json(&statement("asha", "completed", COURSE))
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    post(
        &lrs,
        &statement("asha", "completed", "https://igot.gov.in/course/root-only"),
    );
    checkpoint_of(&lrs, 2);
    let asha = json!({"mbox": "mailto:asha@example.gov.in"});
    // Without the admin scope: 403.
    assert_eq!(erase(&lrs, &writer, &writer_secret, &asha).status, 403);
    // Another department: nothing of hers there, the same 404 as for nobody.
    let other = erase(&lrs, &mha_admin, &mha_admin_secret, &asha);
    let nobody = erase(
        &lrs,
        &mha_admin,
        &mha_admin_secret,
        &json!({"mbox": "mailto:nobody@example.gov.in"}),
    );
    assert_eq!(other.status, 404, "{}", other.describe());
    assert_eq!(other.body, nobody.body);
    // Outside the caller's subtree: 403.
    let r = lrs
        .delete(&format!("{}/admin/agents", root(&lrs)))
        .no_version()
        .auth(&moe_admin, &moe_admin_secret)
        .query("agent", &asha.to_string())
        .query("department", "mha")
        .send();
    assert_eq!(r.status, 403, "{}", r.describe());
    // Within moe: only moe's statement; the root's stays.
    let r = erase(&lrs, &moe_admin, &moe_admin_secret, &asha);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["statements"], 1);
    let left = lrs
        .get("statements")
        .query("agent", &asha.to_string())
        .send();
    assert_eq!(left.json()["statements"].as_array().map(Vec::len), Some(1));
    // The command line erases the rest and prints the receipt.
    let receipt = lrs.cli(&[
        "erase",
        "--agent",
        &asha.to_string(),
        "--reference",
        "case-7",
    ]);
    let parsed: Value = serde_json::from_str(receipt.trim()).expect("receipt on stdout");
    assert_eq!(parsed["statements"].as_array().map(Vec::len), Some(1));
    assert_eq!(parsed["reference"], "case-7");
    let left = lrs
        .get("statements")
        .query("agent", &asha.to_string())
        .send();
    assert_eq!(left.json()["statements"], json!([]));
}
