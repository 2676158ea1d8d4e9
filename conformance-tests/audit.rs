//! The audit transparency log (docs/AUDIT.md), through the real HTTP interface and a real
//! store: every acknowledged statement is logged within the merge delay, its proof
//! verifies against a signed checkpoint with the published key alone, the tiles rebuild
//! the checkpoint's root, checkpoints stay consistent across restarts and crashes, and
//! proofs follow the department tree.
use crate::harness::{Lrs, Stop};
use karmayogi_lrs::audit::leaf::{self, Leaf, Salt};
use karmayogi_lrs::audit::merkle::{self, Hash};
use karmayogi_lrs::audit::note::{Checkpoint, Verifier};
use karmayogi_lrs::departments::Department;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The LRS's root URL (the xAPI endpoint is `{root}/xapi`).
pub fn root(lrs: &Lrs) -> String {
    lrs.endpoint().trim_end_matches("/xapi").to_owned()
}

pub fn vkey(lrs: &Lrs) -> Verifier {
    let r = lrs
        .get(&format!("{}/audit/vkey", root(lrs)))
        .no_version()
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    Verifier::parse(r.text().trim()).expect("a vkey")
}

/// Waits (up to 10 s, five times the published merge delay) for a signed checkpoint of
/// at least `size` leaves, and opens it with the published key.
pub fn checkpoint_of(lrs: &Lrs, size: u64) -> (Checkpoint, String) {
    checkpoint_within(lrs, size, Duration::from_secs(10))
}

/// As `checkpoint_of`, after a crash: on MongoDB the killed process's sequencer lease
/// must run out first (docs/AUDIT.md 9.2: another process takes over within 5 s), so the
/// wait is that lease plus the usual 10 s.
pub fn checkpoint_after_crash(lrs: &Lrs, size: u64) -> (Checkpoint, String) {
    let t = Instant::now();
    let got = checkpoint_within(lrs, size, Duration::from_secs(15));
    eprintln!(
        "a checkpoint of {size} leaves {:?} after the restart",
        t.elapsed()
    );
    got
}

fn checkpoint_within(lrs: &Lrs, size: u64, wait: Duration) -> (Checkpoint, String) {
    let v = vkey(lrs);
    let deadline = Instant::now() + wait;
    loop {
        let r = lrs
            .get(&format!("{}/audit/checkpoint", root(lrs)))
            .no_version()
            .send();
        if r.status == 200 {
            let (cp, _) = Checkpoint::open(&r.body, v.name(), std::slice::from_ref(&v))
                .unwrap_or_else(|e| panic!("the checkpoint does not open: {e}\n{}", r.text()));
            if cp.size >= size {
                return (cp, r.text());
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {size} leaves within {wait:?}: {}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn statement(actor: &str, verb: &str, activity: &str) -> Value {
    json!({
        "actor": {"objectType": "Agent", "mbox": format!("mailto:{actor}@example.gov.in")},
        "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}")},
        "object": {"objectType": "Activity", "id": activity},
        "result": {"completion": true, "score": {"scaled": 0.9}},
    })
}

pub fn post(lrs: &Lrs, body: &Value) -> Vec<String> {
    let r = lrs.post("statements").json(body).send();
    assert_eq!(r.status, 200, "{}", r.describe());
    serde_json::from_value(r.json()).expect("ids")
}

/// Checks a `GET /audit/proof` answer the way an offline verifier would: recompute the
/// leaf from the statement, its salt and department, and verify the inclusion proof
/// against the checkpoint inside the proof, opened with the published key.
pub fn verify_proof(proof: &Value, v: &Verifier) -> u64 {
    let statement = &proof["statement"];
    let salt = Salt::from_hex(proof["salt"].as_str().expect("salt")).expect("hex salt");
    let department = Department::parse(proof["department"].as_str().expect("department"))
        .expect("a department path");
    let stored = leaf::stored_us_of(statement).expect("stored");
    let (_, leaf_hash) =
        leaf::recompute(&statement.to_string(), &salt, &department, stored).expect("recompute");
    let text = proof["proof"].as_str().expect("tlog-proof text");
    let (head, note) = text
        .split_once("\n\n")
        .expect("proof lines, blank line, checkpoint");
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("c2sp.org/tlog-proof@v1"));
    let index: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("index "))
        .and_then(|i| i.parse().ok())
        .expect("index line");
    assert_eq!(Some(index), proof["leafIndex"].as_u64());
    let hashes: Vec<Hash> = lines
        .map(|l| Hash::from_base64(l).expect("base64 hash"))
        .collect();
    let (cp, _) = Checkpoint::open(note.as_bytes(), v.name(), std::slice::from_ref(v))
        .expect("the proof's checkpoint opens with the published key");
    merkle::verify_inclusion(&leaf_hash, index, cp.size, &hashes, &cp.root)
        .expect("the inclusion proof verifies");
    index
}

fn proof_of(lrs: &Lrs, id: &str) -> Value {
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
        assert_eq!(r.header("retry-after"), Some("2"));
        assert!(Instant::now() < deadline, "no proof within 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the leaf hashes of the first `size` leaves from the entry bundles, checks them
/// against the level-0 tiles, and returns them.
fn leaves_from_tiles(lrs: &Lrs, size: u64) -> Vec<(Leaf, Hash)> {
    let mut out = Vec::new();
    let mut n = 0u64;
    while n < size {
        let width = (size - n).min(256);
        let suffix = if width == 256 {
            String::new()
        } else {
            format!(".p/{width}")
        };
        let index = karmayogi_lrs::audit::tiles::encode_index(n / 256);
        let entries = lrs
            .get(&format!("{}/audit/tile/entries/{index}{suffix}", root(lrs)))
            .no_version()
            .send();
        assert_eq!(entries.status, 200, "{}", entries.describe());
        assert!(entries
            .header("cache-control")
            .is_some_and(|c| c.contains("immutable")));
        let tile = lrs
            .get(&format!("{}/audit/tile/0/{index}{suffix}", root(lrs)))
            .no_version()
            .send();
        assert_eq!(tile.status, 200, "{}", tile.describe());
        assert_eq!(tile.body.len() as u64, 32 * width);
        let mut at = 0;
        for i in 0..width as usize {
            let len = u16::from_be_bytes([entries.body[at], entries.body[at + 1]]) as usize;
            let entry = &entries.body[at + 2..at + 2 + len];
            at += 2 + len;
            let h = merkle::leaf_hash(entry);
            assert_eq!(
                &tile.body[32 * i..32 * (i + 1)],
                &h.0[..],
                "leaf {}",
                n + i as u64
            );
            out.push((Leaf::parse(entry).expect("a well-formed leaf"), h));
        }
        assert_eq!(at, entries.body.len());
        n += width;
    }
    out
}

#[test]
fn every_statement_is_logged_and_its_proof_verifies_offline() {
    let lrs = Lrs::start();
    let mut ids = post(
        &lrs,
        &json!([
            statement("asha", "completed", "https://igot.gov.in/course/ethics"),
            statement("ravi", "passed", "https://igot.gov.in/course/ethics"),
            statement("meena", "attempted", "https://igot.gov.in/course/rti"),
        ]),
    );
    ids.extend(post(
        &lrs,
        &statement("asha", "passed", "https://igot.gov.in/course/rti"),
    ));
    // A voiding statement is a statement like any other: it is logged too.
    let voiding = json!({
        "actor": {"mbox": "mailto:admin@example.gov.in"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": ids[2]},
    });
    ids.extend(post(&lrs, &voiding));
    let v = vkey(&lrs);
    let (cp, _) = checkpoint_of(&lrs, ids.len() as u64);
    let mut seen = std::collections::BTreeSet::new();
    for id in &ids {
        let proof = proof_of(&lrs, id);
        // The statement the proof carries is the statement as stored (format=exact).
        let stored = lrs
            .get("statements")
            .query(
                if id == &ids[2] {
                    "voidedStatementId"
                } else {
                    "statementId"
                },
                id,
            )
            .query("format", "exact")
            .send();
        assert_eq!(stored.status, 200, "{}", stored.describe());
        assert_eq!(proof["statement"], stored.json());
        assert_eq!(proof["department"], "");
        assert!(
            seen.insert(verify_proof(&proof, &v)),
            "two statements share a leaf"
        );
    }
    // Stored order: leaf indexes follow `stored`.
    let leaves = leaves_from_tiles(&lrs, cp.size);
    let stored: Vec<u64> = leaves
        .iter()
        .map(|(l, _)| match l {
            Leaf::Statement(s) => s.stored_us,
            other => panic!("unexpected leaf {other:?}"),
        })
        .collect();
    assert!(stored.windows(2).all(|w| w[0] < w[1]), "{stored:?}");
    // The tiles rebuild the checkpoint's root.
    let hashes: Vec<Hash> = leaves.iter().map(|(_, h)| *h).collect();
    assert_eq!(merkle::root(&hashes[..cp.size as usize]), cp.root);
    // A changed statement, salt or department no longer recomputes the leaf.
    let proof = proof_of(&lrs, &ids[0]);
    for (field, value) in [
        ("statement", {
            let mut s = proof["statement"].clone();
            s["result"]["score"]["scaled"] = json!(0.91);
            s
        }),
        ("salt", json!("00".repeat(32))),
        ("department", json!("moe")),
    ] {
        let mut bad = proof.clone();
        bad[field] = value;
        let r = std::panic::catch_unwind(|| verify_proof(&bad, &v));
        assert!(r.is_err(), "a changed {field} still verified");
    }
}

#[test]
fn audit_paths_answer_plain_http() {
    let lrs = Lrs::start();
    let base = root(&lrs);
    // Public, no version header needed.
    let r = lrs
        .get(&format!("{base}/audit/vkey"))
        .no_version()
        .no_auth()
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    checkpoint_of(&lrs, 0);
    // Tiles beyond the tree, malformed tile paths, unknown resources: 404 with a JSON body.
    for path in [
        "tile/0/000",
        "tile/0/000.p/1",
        "tile/0/0",
        "tile/entries/x001/000",
        "nothing",
    ] {
        let r = lrs
            .get(&format!("{base}/audit/{path}"))
            .no_version()
            .no_auth()
            .send();
        assert_eq!(r.status, 404, "{path}: {}", r.describe());
        assert!(r.json()["error"]["message"].is_string());
    }
    // Proofs need a credential that may read statements.
    let r = lrs
        .get(&format!("{base}/audit/proof"))
        .no_version()
        .no_auth()
        .query("statementId", "3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b1a")
        .send();
    assert_eq!(r.status, 401, "{}", r.describe());
    let r = lrs
        .get(&format!("{base}/audit/proof"))
        .no_version()
        .query("statementId", "3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b1a")
        .send();
    assert_eq!(r.status, 404, "{}", r.describe());
    let r = lrs.get(&format!("{base}/audit/proof")).no_version().send();
    assert_eq!(r.status, 400, "{}", r.describe());
    assert_eq!(r.json()["error"]["path"], "statementId");
    let r = lrs
        .get(&format!("{base}/audit/consistency"))
        .no_version()
        .query("old", "2")
        .query("new", "1")
        .send();
    assert_eq!(r.status, 400, "{}", r.describe());
}

#[test]
fn checkpoints_stay_consistent_across_restarts_and_crashes() {
    let mut lrs = Lrs::start();
    let key_file = lrs.data_dir().join("audit.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file must be private");
    }
    let v = vkey(&lrs);
    let mut ids = post(
        &lrs,
        &json!((0..40)
            .map(|i| statement(
                &format!("learner{i}"),
                "completed",
                "https://igot.gov.in/c/1"
            ))
            .collect::<Vec<_>>()),
    );
    let (first, _) = checkpoint_of(&lrs, 40);
    // A clean stop, then a crash while statements arrive: what was acknowledged is logged
    // once, and the new checkpoints extend the old ones.
    lrs.restart(Stop::Term);
    assert_eq!(
        vkey(&lrs).to_string(),
        v.to_string(),
        "the key survives restarts"
    );
    let writer = {
        let endpoint = lrs.endpoint().to_owned();
        let auth = crate::harness::basic(lrs.key(), lrs.secret());
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build();
            let mut acked = Vec::new();
            for i in 0..400 {
                let body = json!((0..10)
                    .map(|j| statement(
                        &format!("crash{i}-{j}"),
                        "completed",
                        "https://igot.gov.in/c/2"
                    ))
                    .collect::<Vec<_>>());
                match agent
                    .post(&format!("{endpoint}/statements"))
                    .set("Authorization", &auth)
                    .set("X-Experience-API-Version", "1.0.3")
                    .send_json(body)
                {
                    Ok(r) => {
                        let got: Vec<String> = r.into_json().unwrap_or_default();
                        acked.extend(got);
                    }
                    Err(_) => break,
                }
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    lrs.stop(Stop::Kill);
    let acked = writer.join().expect("writer");
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the crash"
    );
    lrs.start_again();
    ids.extend(acked);
    let (second, _) = checkpoint_after_crash(&lrs, ids.len() as u64);
    // Consistency: the second tree extends the first.
    let r = lrs
        .get(&format!("{}/audit/consistency", root(&lrs)))
        .no_version()
        .query("old", &first.size.to_string())
        .query("new", &second.size.to_string())
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let proof: Vec<Hash> = r.json()["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| Hash::from_base64(h.as_str().expect("b64")).expect("hash"))
        .collect();
    merkle::verify_consistency(first.size, second.size, &proof, &first.root, &second.root)
        .expect("the log after the crash extends the log before it");
    // Every acknowledged statement is in the log, each exactly once; the tiles agree.
    let mut leaves = std::collections::BTreeSet::new();
    for id in &ids {
        assert!(
            leaves.insert(verify_proof(&proof_of(&lrs, id), &v)),
            "{id} twice"
        );
    }
    let (cp, _) = checkpoint_of(&lrs, 0);
    let from_tiles = leaves_from_tiles(&lrs, cp.size);
    let hashes: Vec<Hash> = from_tiles.iter().map(|(_, h)| *h).collect();
    assert_eq!(merkle::root(&hashes), cp.root);
    assert!(cp.size >= ids.len() as u64);
}

#[test]
fn proofs_and_leaves_follow_the_department_tree() {
    let lrs = Lrs::start();
    lrs.cli(&["departments", "create", "moe"]);
    lrs.cli(&["departments", "create", "moe/dhe"]);
    lrs.cli(&["departments", "create", "mha"]);
    let (dhe_key, dhe_secret) = lrs.department_credential("moe/dhe", &["all"]);
    let (moe_key, moe_secret) = lrs.department_credential("moe", &["all"]);
    let (mha_key, mha_secret) = lrs.department_credential("mha", &["all"]);
    let r = lrs
        .post("statements")
        .auth(&dhe_key, &dhe_secret)
        .json(&statement(
            "asha",
            "completed",
            "https://igot.gov.in/course/ethics",
        ))
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let id = r.json()[0].as_str().expect("id").to_owned();
    let v = vkey(&lrs);
    checkpoint_of(&lrs, 1);
    let base = root(&lrs);
    let proof = |key: &str, secret: &str| {
        lrs.get(&format!("{base}/audit/proof"))
            .no_version()
            .auth(key, secret)
            .query("statementId", &id)
            .send()
    };
    // The department, its parent and the root see the proof; the commitment covers the
    // department, so the proof names it.
    for (k, s) in [(&dhe_key, &dhe_secret), (&moe_key, &moe_secret)] {
        let r = proof(k, s);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["department"], "moe/dhe");
        verify_proof(&r.json(), &v);
    }
    let root_view = proof_of(&lrs, &id);
    let index = verify_proof(&root_view, &v);
    // Another department: the same 404 as for a statement that does not exist.
    let other = proof(&mha_key, &mha_secret);
    assert_eq!(other.status, 404, "{}", other.describe());
    let missing = lrs
        .get(&format!("{base}/audit/proof"))
        .no_version()
        .auth(&mha_key, &mha_secret)
        .query("statementId", "3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b1a")
        .send();
    assert_eq!(other.body, missing.body);
    // The leaf endpoint (monitors) follows the same rule.
    let leaf = |key: &str, secret: &str| {
        lrs.get(&format!("{base}/audit/leaf"))
            .no_version()
            .auth(key, secret)
            .query("index", &index.to_string())
            .send()
    };
    let r = leaf(lrs.key(), lrs.secret());
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["statementId"], id.as_str());
    assert_eq!(r.json()["statement"], root_view["statement"]);
    assert_eq!(leaf(&mha_key, &mha_secret).status, 404);
    assert_eq!(leaf(&moe_key, &moe_secret).status, 200);
    // A leaf the log has not reached, even one beyond any integer the store keeps, is
    // simply not there: 404, never a store failure (found by schemathesis in CI).
    for beyond in ["1000000", "9223372036854775808", "18446744073709551615"] {
        let r = lrs
            .get(&format!("{base}/audit/leaf"))
            .no_version()
            .query("index", beyond)
            .send();
        assert_eq!(r.status, 404, "index {beyond}: {}", r.describe());
    }
}

/// Runs `karmayogi-lrs audit verify FILE --vkey VKEY`; (exit code, stdout).
fn audit_verify(file: &std::path::Path, vkey: &str) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_karmayogi-lrs"))
        .args(["audit", "verify"])
        .arg(file)
        .args(["--vkey", vkey])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run audit verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `GET /audit/certificate` with the root credential, waiting out 503 (not yet in a
/// checkpoint).
pub fn certificate(lrs: &Lrs, agent: &Value, activity: &str) -> crate::harness::Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = lrs
            .get(&format!("{}/audit/certificate", root(lrs)))
            .no_version()
            .query("agent", &agent.to_string())
            .query("activity", activity)
            .send();
        if r.status != 503 || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_completion_certificate_verifies_offline_and_any_changed_byte_fails() {
    let lrs = Lrs::start();
    let course = "https://igot.gov.in/course/ethics";
    let asha = json!({"objectType": "Agent", "mbox": "mailto:asha@example.gov.in"});
    let ids = post(
        &lrs,
        &json!([
            statement("asha", "attempted", course),
            statement("asha", "completed", course),
            statement("ravi", "completed", course),
        ]),
    );
    checkpoint_of(&lrs, 3);
    let r = certificate(&lrs, &asha, course);
    assert_eq!(r.status, 200, "{}", r.describe());
    let cert: Value = r.json();
    let certified: Vec<&str> = cert["statements"]
        .as_array()
        .expect("statements")
        .iter()
        .map(|s| s["statement"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(certified, vec![ids[1].as_str()], "only Asha's completion");
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("certificate.json");
    std::fs::write(&file, &r.body).expect("write");
    let vkey = vkey(&lrs).to_string();
    let (code, summary) = audit_verify(&file, &vkey);
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains("asha@example.gov.in"), "{summary}");
    // A byte changed anywhere (a sample spread over the whole file) makes it fail.
    let bytes = r.body.clone();
    let step = (bytes.len() / 40).max(1);
    for at in (0..bytes.len()).step_by(step) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        std::fs::write(&file, &bad).expect("write");
        let (code, out) = audit_verify(&file, &vkey);
        assert_eq!(code, 1, "byte {at} changed, still verified:\n{out}");
    }
    // Another log's key does not verify it.
    std::fs::write(&file, &bytes).expect("write");
    let other = karmayogi_lrs::audit::note::Signer::generate(vkey.split('+').next().unwrap_or("x"))
        .expect("key")
        .verifier()
        .to_string();
    assert_eq!(audit_verify(&file, &other).0, 1);

    // No completion, or a voided one: 404.
    let r = certificate(
        &lrs,
        &json!({"mbox": "mailto:ravi@example.gov.in"}),
        "https://igot.gov.in/course/rti",
    );
    assert_eq!(r.status, 404, "{}", r.describe());
    let voiding = json!({
        "actor": {"mbox": "mailto:admin@example.gov.in"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": ids[2]},
    });
    post(&lrs, &voiding);
    let r = certificate(&lrs, &json!({"mbox": "mailto:ravi@example.gov.in"}), course);
    assert_eq!(
        r.status,
        404,
        "a voided completion is no completion: {}",
        r.describe()
    );
    // Malformed requests: 400 naming the parameter.
    let r = lrs
        .get(&format!("{}/audit/certificate", root(&lrs)))
        .no_version()
        .query("agent", "{not json")
        .query("activity", course)
        .send();
    assert_eq!(r.status, 400, "{}", r.describe());
    assert_eq!(r.json()["error"]["path"], "agent");
}

#[test]
fn certificates_follow_the_department_tree() {
    let lrs = Lrs::start();
    lrs.cli(&["departments", "create", "moe"]);
    lrs.cli(&["departments", "create", "mha"]);
    let (moe_key, moe_secret) = lrs.department_credential("moe", &["all"]);
    let (mha_key, mha_secret) = lrs.department_credential("mha", &["all"]);
    let course = "https://igot.gov.in/course/ethics";
    let r = lrs
        .post("statements")
        .auth(&moe_key, &moe_secret)
        .json(&statement("asha", "passed", course))
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    checkpoint_of(&lrs, 1);
    let agent = json!({"mbox": "mailto:asha@example.gov.in"}).to_string();
    let get = |key: &str, secret: &str| {
        lrs.get(&format!("{}/audit/certificate", root(&lrs)))
            .no_version()
            .auth(key, secret)
            .query("agent", &agent)
            .query("activity", course)
            .send()
    };
    let ok = get(&moe_key, &moe_secret);
    assert_eq!(ok.status, 200, "{}", ok.describe());
    assert_eq!(ok.json()["statements"][0]["department"], "moe");
    assert_eq!(get(lrs.key(), lrs.secret()).status, 200);
    // Outside the subtree: the answer of "no such completion".
    let other = get(&mha_key, &mha_secret);
    assert_eq!(other.status, 404, "{}", other.describe());
}
