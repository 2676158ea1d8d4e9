//! Tampering with the store behind the LRS's back, and the log catching it
//! (docs/AUDIT.md section 8.1, the monitor; section 7.4, certificates). Each test runs the
//! real `karmayogi-lrs audit monitor` and `audit verify` binaries against a real server on
//! whichever store the run uses (SQLite, or MongoDB with `LRS_TEST_STORE`): first a clean
//! pass (exit 0), then an attack on the database itself, as an operator or an intruder
//! with database access could make it, and the monitor (exit 1, tampered) or the verifier
//! saying so.
use crate::audit::{
    certificate, checkpoint_after_crash, checkpoint_of, post, root, statement, vkey,
};
use crate::harness::{mongo_db, Lrs, Stop};
use karmayogi_lrs::audit::leaf;
use karmayogi_lrs::audit::note::{Checkpoint, Verifier};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_karmayogi-lrs");
const COURSE: &str = "https://igot.gov.in/course/ethics";

// ---------------------------------------------------------------------------------------
// The binaries

/// What one run of a command printed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    // Nothing from the developer's shell (e.g. LRS_MONITOR_SECRET) leaks in.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LRS_") {
            cmd.env_remove(&k);
        }
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run karmayogi-lrs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One pass of `audit monitor URL --vkey V --state DIR --once --key K --secret S` (section
/// 8.1) with the root credential, so that every new statement leaf is opened (step 4).
fn monitor(lrs: &Lrs, vkey: &str, state: &Path, grace: u64) -> Run {
    let url = format!("{}/audit", root(lrs));
    let state = state.display().to_string();
    run(&[
        "audit",
        "monitor",
        &url,
        "--vkey",
        vkey,
        "--state",
        &state,
        "--once",
        "--key",
        lrs.key(),
        "--secret",
        lrs.secret(),
        "--grace",
        &grace.to_string(),
    ])
}

/// A pass that finds nothing wrong: exit 0 and `ok: tree size N, …` (section 8.1, output).
fn monitor_ok(lrs: &Lrs, vkey: &str, state: &Path, size: u64) -> Run {
    let r = monitor(lrs, vkey, state, 0);
    assert_eq!(
        r.code,
        0,
        "the monitor found the honest log tampered\n{}",
        r.describe()
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with(&format!("ok: tree size {size},"))),
        "{}",
        r.describe()
    );
    assert!(!r.stdout.contains("tampered"), "{}", r.describe());
    r
}

/// A pass that finds tampering: exit 1, a `tampered: …` line containing each of `what`
/// (any one of the alternatives separated by `|`), and the `TAMPERED:` summary.
fn monitor_tampered(lrs: &Lrs, vkey: &str, state: &Path, what: &[&str]) -> Run {
    let r = monitor(lrs, vkey, state, 0);
    assert_eq!(
        r.code,
        1,
        "the monitor did not report tampering\n{}",
        r.describe()
    );
    let findings: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("tampered: "))
        .collect();
    for w in what {
        assert!(
            findings
                .iter()
                .any(|l| w.split('|').any(|alt| l.contains(alt))),
            "no finding says `{w}`\n{}",
            r.describe()
        );
    }
    assert!(
        r.stdout.lines().any(|l| l.starts_with("TAMPERED: ")),
        "{}",
        r.describe()
    );
    r
}

/// `audit verify FILE --vkey V` (section 7.4): exit 0 verified, 1 not.
fn verify(cert: &[u8], vkey: &str) -> Run {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("certificate.json");
    std::fs::write(&file, cert).expect("write the certificate");
    run(&[
        "audit",
        "verify",
        &file.display().to_string(),
        "--vkey",
        vkey,
    ])
}

/// Waits (up to 10 s) for a checkpoint of at least `size` leaves that opens with `vkey`
/// (section 4), skipping notes it does not open.
fn checkpoint_signed_by(lrs: &Lrs, vkey: &str, size: u64) -> Checkpoint {
    let v = Verifier::parse(vkey).expect("a vkey");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = lrs
            .get(&format!("{}/audit/checkpoint", root(lrs)))
            .no_version()
            .send();
        if r.status == 200 {
            if let Ok((cp, _)) = Checkpoint::open(&r.body, v.name(), std::slice::from_ref(&v)) {
                if cp.size >= size {
                    return cp;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {size} leaves signed by {vkey} within 10 s: {}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `n` statements of distinct learners, posted in one request; their ids.
fn post_batch(lrs: &Lrs, tag: &str, n: usize) -> Vec<String> {
    let batch: Vec<Value> = (0..n)
        .map(|i| statement(&format!("{tag}{i}"), "completed", COURSE))
        .collect();
    post(lrs, &json!(batch))
}

fn asha() -> Value {
    json!({"objectType": "Agent", "mbox": "mailto:asha@example.gov.in"})
}

// ---------------------------------------------------------------------------------------
// The store, reached directly (not through the LRS)

/// The server's store, as an attacker with database access sees it.
enum Db {
    /// The SQLite file `lrs.db` (with `-wal`, `-shm`, and the key index `lrs.db.keys*`).
    Sqlite(PathBuf),
    /// A MongoDB URI naming the test's database.
    Mongo(String),
}

/// Every document of every collection of a MongoDB database.
type MongoSnapshot = Vec<(String, Vec<mongodb::bson::Document>)>;

/// A copy of the whole store at one moment (section 8.1: what a rollback restores).
enum Snapshot {
    /// Copies of the `lrs.db*` files.
    Files(tempfile::TempDir),
    Mongo(MongoSnapshot),
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

impl Db {
    fn of(lrs: &Lrs) -> Db {
        let store = lrs.store().expect("a spawned server");
        match store.strip_prefix("sqlite:") {
            Some(path) => Db::Sqlite(PathBuf::from(path)),
            None => Db::Mongo(store.to_owned()),
        }
    }

    /// A second connection beside the server's (WAL lets it write while the server runs).
    fn sqlite(path: &Path) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(path).expect("open the SQLite store");
        c.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        c
    }

    /// The record key of the statement logged at `leaf` (`audit_leaves`).
    fn statement_at_leaf(&self, leaf: u64) -> String {
        match self {
            Db::Sqlite(path) => Db::sqlite(path)
                .query_row(
                    "SELECT s.id FROM audit_leaves a JOIN statements s ON s.seq = a.seq WHERE a.leaf = ?1",
                    [leaf as i64],
                    |r| r.get(0),
                )
                .expect("the leaf's statement"),
            Db::Mongo(uri) => runtime().block_on(async {
                use mongodb::bson::{doc, Document};
                let db = mongo_db(uri).await;
                db.collection::<Document>("audit_leaves")
                    .find_one(doc! { "_id": leaf as i64 })
                    .await
                    .expect("find")
                    .expect("the leaf")
                    .get_str("s")
                    .expect("the leaf's statement")
                    .to_owned()
            }),
        }
    }

    /// Rewrites the stored JSON text of the statement `key` with `edit` applied.
    fn edit_statement(&self, key: &str, edit: impl FnOnce(&mut Value)) {
        match self {
            Db::Sqlite(path) => {
                let c = Db::sqlite(path);
                let text: String = c
                    .query_row("SELECT json FROM statements WHERE id = ?1", [key], |r| {
                        r.get(0)
                    })
                    .expect("the statement row");
                let mut v: Value = serde_json::from_str(&text).expect("stored JSON");
                edit(&mut v);
                let n = c
                    .execute(
                        "UPDATE statements SET json = ?1 WHERE id = ?2",
                        rusqlite::params![v.to_string(), key],
                    )
                    .expect("update");
                assert_eq!(n, 1);
            }
            Db::Mongo(uri) => runtime().block_on(async {
                use mongodb::bson::{doc, Document};
                let db = mongo_db(uri).await;
                let statements = db.collection::<Document>("statements");
                let d = statements
                    .find_one(doc! { "_id": key })
                    .await
                    .expect("find")
                    .expect("the statement document");
                let mut v: Value =
                    serde_json::from_str(d.get_str("json").expect("json")).expect("stored JSON");
                edit(&mut v);
                let r = statements
                    .update_one(
                        doc! { "_id": key },
                        doc! { "$set": { "json": v.to_string() } },
                    )
                    .await
                    .expect("update");
                assert_eq!(r.modified_count, 1);
            }),
        }
    }

    /// Deletes the statement `key`'s row (document), leaving its leaf in the log.
    fn delete_statement(&self, key: &str) {
        match self {
            Db::Sqlite(path) => {
                let n = Db::sqlite(path)
                    .execute("DELETE FROM statements WHERE id = ?1", [key])
                    .expect("delete");
                assert_eq!(n, 1);
            }
            Db::Mongo(uri) => runtime().block_on(async {
                use mongodb::bson::{doc, Document};
                let db = mongo_db(uri).await;
                let r = db
                    .collection::<Document>("statements")
                    .delete_one(doc! { "_id": key })
                    .await
                    .expect("delete");
                assert_eq!(r.deleted_count, 1);
            }),
        }
    }

    /// The SQLite files of the store: `lrs.db` and everything beside it named `lrs.db*`.
    fn sqlite_files(path: &Path) -> Vec<PathBuf> {
        let dir = path.parent().expect("a directory");
        let name = path.file_name().expect("a file name").to_string_lossy();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("list the store's directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(&*name))
            })
            .collect();
        files.sort();
        files
    }

    /// Copies the whole store (the server must be stopped).
    fn snapshot(&self) -> Snapshot {
        match self {
            Db::Sqlite(path) => {
                let copy = tempfile::tempdir().expect("tmp");
                for f in Db::sqlite_files(path) {
                    std::fs::copy(&f, copy.path().join(f.file_name().expect("name")))
                        .expect("copy a store file");
                }
                Snapshot::Files(copy)
            }
            Db::Mongo(uri) => Snapshot::Mongo(runtime().block_on(async {
                use futures_util::TryStreamExt;
                use mongodb::bson::{doc, Document};
                let db = mongo_db(uri).await;
                let mut all = Vec::new();
                let mut names = db.list_collection_names().await.expect("collections");
                names.sort();
                for name in names {
                    let docs: Vec<Document> = db
                        .collection::<Document>(&name)
                        .find(doc! {})
                        .await
                        .expect("find")
                        .try_collect()
                        .await
                        .expect("read every document");
                    all.push((name, docs));
                }
                all
            })),
        }
    }

    /// Puts the store back as `snapshot` copied it (the server must be stopped).
    fn restore(&self, snapshot: &Snapshot) {
        match (self, snapshot) {
            (Db::Sqlite(path), Snapshot::Files(copy)) => {
                for f in Db::sqlite_files(path) {
                    std::fs::remove_file(&f).expect("remove a store file");
                }
                let dir = path.parent().expect("a directory");
                for e in std::fs::read_dir(copy.path()).expect("list the copy") {
                    let f = e.expect("entry").path();
                    std::fs::copy(&f, dir.join(f.file_name().expect("name")))
                        .expect("restore a store file");
                }
            }
            (Db::Mongo(uri), Snapshot::Mongo(collections)) => runtime().block_on(async {
                use mongodb::bson::Document;
                let db = mongo_db(uri).await;
                for name in db.list_collection_names().await.expect("collections") {
                    db.collection::<Document>(&name)
                        .drop()
                        .await
                        .expect("drop a collection");
                }
                for (name, docs) in collections {
                    if docs.is_empty() {
                        db.create_collection(name).await.expect("create");
                    } else {
                        db.collection::<Document>(name)
                            .insert_many(docs)
                            .await
                            .expect("reinsert the documents");
                    }
                }
            }),
            _ => unreachable!("a snapshot of another kind of store"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tests

/// Section 8.1 step 4 and section 6.6 ("any change to a value … does"): a statement whose
/// stored JSON was edited in the database no longer recomputes its logged leaf. A fresh
/// monitor with a credential reports the leaf tampered; the certificate issued before the
/// edit still verifies (it is what was logged), but with the statement the LRS now serves
/// in it, `audit verify` (section 7.4 step 5) fails, and the LRS refuses to certify the
/// edited statement.
#[test]
fn an_edited_statement_is_reported_by_the_monitor_and_fails_its_certificate() {
    let lrs = Lrs::start();
    let mut batch: Vec<Value> = (0..4)
        .map(|i| statement(&format!("learner{i}"), "completed", COURSE))
        .collect();
    batch.insert(2, statement("asha", "completed", COURSE));
    let ids = post(&lrs, &json!(batch));
    let asha_id = ids[2].clone();
    let v = vkey(&lrs).to_string();
    checkpoint_of(&lrs, 5);
    let state = tempfile::tempdir().expect("tmp");
    monitor_ok(&lrs, &v, state.path(), 5);

    let before = certificate(&lrs, &asha(), COURSE);
    assert_eq!(before.status, 200, "{}", before.describe());
    let r = verify(&before.body, &v);
    assert_eq!(r.code, 0, "{}", r.describe());
    let cert: Value = before.json();
    let leaf_index = cert["statements"][0]["leafIndex"]
        .as_u64()
        .expect("leafIndex");
    assert_eq!(cert["statements"][0]["statement"]["id"], asha_id.as_str());

    // The attack: Asha's score, raised in the database (the server keeps running).
    let db = Db::of(&lrs);
    let key = db.statement_at_leaf(leaf_index);
    db.edit_statement(&key, |s| s["result"]["score"]["scaled"] = json!(1.0));
    let served = lrs
        .get("statements")
        .query("statementId", &asha_id)
        .query("format", "exact")
        .send();
    assert_eq!(served.status, 200, "{}", served.describe());
    let served = served.json();
    assert_eq!(
        served["result"]["score"]["scaled"],
        json!(1.0),
        "the LRS serves the edited statement"
    );

    // A fresh monitor (new state dir) opens every leaf and finds this one changed, and only
    // this one: the other four still check.
    let fresh = tempfile::tempdir().expect("tmp");
    let finding =
        format!("tampered: leaf {leaf_index}: the statement served does not match its leaf");
    let first = monitor_tampered(&lrs, &v, fresh.path(), &[&finding]);
    let findings = |r: &Run| -> Vec<String> {
        r.stdout
            .lines()
            .filter(|l| l.starts_with("tampered: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(findings(&first).len(), 1, "{}", first.describe());
    // A pass that found tampering does not advance the state (section 8.1): the next pass
    // checks the same leaves again and reports the same finding.
    let again = monitor_tampered(&lrs, &v, fresh.path(), &[&finding]);
    assert_eq!(findings(&again), findings(&first), "{}", again.describe());

    // The certificate issued before the edit is still the truth about the log…
    assert_eq!(verify(&before.body, &v).code, 0);
    // …and with the statement the LRS serves now, it no longer verifies: the leaf it
    // recomputes is not the logged one. (The splice changes only the statement: the rest
    // of the canonical file is as issued.)
    let text = before.body.strip_suffix(b"\n").unwrap_or(&before.body);
    assert_eq!(
        leaf::canonicalize(&cert).expect("canonical"),
        text,
        "re-canonicalising the certificate as issued gives its own bytes"
    );
    let mut spliced = cert.clone();
    spliced["statements"][0]["statement"] = served;
    let mut bytes = leaf::canonicalize(&spliced).expect("canonical");
    bytes.push(b'\n');
    let r = verify(&bytes, &v);
    assert_eq!(
        r.code,
        1,
        "a certificate carrying the edited statement verified\n{}",
        r.describe()
    );
    assert!(
        r.stdout.starts_with(&format!("NOT VERIFIED: statement {asha_id} (leaf {leaf_index}): the recomputed leaf is not included")),
        "the failure is the recomputed leaf (step 5), not the form of the file\n{}",
        r.describe()
    );
    // And the LRS itself refuses to certify a statement that no longer matches its leaf.
    let after = certificate(&lrs, &asha(), COURSE);
    assert_eq!(
        after.status,
        500,
        "the LRS certified an edited statement\n{}",
        after.describe()
    );
    assert!(
        after.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("leaf {leaf_index}"))),
        "{}",
        after.describe()
    );
}

/// Section 8.1 step 4 and section 6.5: a statement row deleted directly is "missing"; no
/// erasure leaf names it, so once the grace period is over it is tampered (a deleted row),
/// never "erased".
#[test]
fn a_deleted_statement_is_tampered_not_erased() {
    let lrs = Lrs::start();
    post_batch(&lrs, "learner", 6);
    let v = vkey(&lrs).to_string();
    checkpoint_of(&lrs, 6);
    let state = tempfile::tempdir().expect("tmp");
    monitor_ok(&lrs, &v, state.path(), 6);

    let db = Db::of(&lrs);
    let key = db.statement_at_leaf(3);
    db.delete_statement(&key);
    let r = lrs
        .get(&format!("{}/audit/leaf", root(&lrs)))
        .no_version()
        .query("index", "3")
        .send();
    assert_eq!(r.status, 404, "{}", r.describe());

    // A fresh monitor with the default grace (0): tampered at once.
    let fresh = tempfile::tempdir().expect("tmp");
    let r = monitor_tampered(
        &lrs,
        &v,
        fresh.path(),
        &["leaf 3: the statement is missing and no erasure leaf names it"],
    );
    assert!(
        !r.stdout.lines().any(|l| l.starts_with("erased: ")),
        "a deleted row passed for an erasure\n{}",
        r.describe()
    );
    // Within a grace period it is only listed as missing (time for an erasure leaf to reach
    // a checkpoint)…
    let patient = tempfile::tempdir().expect("tmp");
    let r = monitor(&lrs, &v, patient.path(), 3600);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(r.stderr.contains("missing: leaf 3"), "{}", r.describe());
    // …and the same monitor, once the grace is over, reports it (the state remembers when
    // the leaf went missing).
    monitor_tampered(
        &lrs,
        &v,
        patient.path(),
        &["leaf 3: the statement is missing"],
    );
}

/// Section 8.1 step 1 (rollback, fork) and step 2 (the new tree must extend the verified
/// one): the store is put back to an older copy and the LRS appends other statements. A
/// monitor that has seen the larger tree first sees a smaller checkpoint (rollback), then
/// one of its size with another root (fork), then a larger one whose leaves do not extend
/// what it verified.
#[test]
fn a_store_rolled_back_and_appended_again_is_a_rollback_then_a_fork() {
    let mut lrs = Lrs::start();
    let db = Db::of(&lrs);
    post_batch(&lrs, "first", 4);
    let v = vkey(&lrs).to_string();
    let (a, _) = checkpoint_of(&lrs, 4);
    let state = tempfile::tempdir().expect("tmp");
    monitor_ok(&lrs, &v, state.path(), a.size);

    // The copy, at size A, taken with the server cleanly stopped.
    lrs.stop(Stop::Term);
    let copy = db.snapshot();
    lrs.start_again();
    post_batch(&lrs, "second", 4);
    let (b, _) = checkpoint_of(&lrs, a.size + 4);
    assert!(b.size > a.size);
    monitor_ok(&lrs, &v, state.path(), b.size);

    // The rollback: the copy restored, the same key, the server started again.
    lrs.stop(Stop::Term);
    db.restore(&copy);
    lrs.start_again();
    let (now, _) = checkpoint_of(&lrs, 0);
    assert_eq!(now.size, a.size, "the store was rolled back to size A");
    monitor_tampered(
        &lrs,
        &v,
        state.path(),
        &[&format!(
            "rollback: checkpoint size {} is below the verified size {}",
            a.size, b.size
        )],
    );
    // Other statements, up to the size the monitor verified: same size, another root.
    post_batch(&lrs, "other", (b.size - a.size) as usize);
    let (forked, _) = checkpoint_of(&lrs, b.size);
    assert_eq!(forked.size, b.size);
    assert_ne!(forked.root, b.root);
    monitor_tampered(
        &lrs,
        &v,
        state.path(),
        &[&format!("fork: checkpoint of size {}", b.size)],
    );
    // Past it: the new leaves, hashed onto the verified tree, do not give the new root.
    post_batch(&lrs, "more", 1);
    let (past, _) = checkpoint_of(&lrs, b.size + 1);
    monitor_tampered(
        &lrs,
        &v,
        state.path(),
        &[&format!(
            "the leaves of the tree of size {} do not hash to the checkpoint's root",
            past.size
        )],
    );
    // The forked log is consistent in itself: a monitor that never saw the old branch
    // accepts it, which is why monitors must keep their state.
    let fresh = tempfile::tempdir().expect("tmp");
    monitor_ok(&lrs, &v, fresh.path(), past.size);
}

/// Section 4 (key id = hash of name and public key) and sections 8.1 step 1 and 7.4 steps
/// 2–3: the server restarted with another signing key under the same origin. Its new
/// checkpoints carry no signature by the published key: the monitor holding the old vkey
/// reports tampered, and a certificate issued after the switch fails `audit verify` with
/// the old vkey.
#[test]
fn checkpoints_signed_by_another_key_are_tampered_for_the_old_vkey() {
    let mut lrs = Lrs::start();
    post(&lrs, &json!([statement("asha", "completed", COURSE)]));
    post_batch(&lrs, "learner", 3);
    let old = vkey(&lrs).to_string();
    checkpoint_of(&lrs, 4);
    let state = tempfile::tempdir().expect("tmp");
    monitor_ok(&lrs, &old, state.path(), 4);

    lrs.stop(Stop::Term);
    let other_key = lrs.data_dir().join("another.key").display().to_string();
    lrs.start_again_with_args(&["--audit-key", &other_key]);
    let new = vkey(&lrs).to_string();
    assert_ne!(new, old, "the server publishes the other key");
    assert_eq!(
        new.split('+').next(),
        old.split('+').next(),
        "the same origin (key name)"
    );
    // Without any new statement, the tree is signed again with the new key: the
    // published key always opens the checkpoint served (section 4).
    let resigned = checkpoint_signed_by(&lrs, &new, 4);
    assert_eq!(resigned.size, 4);
    post_batch(&lrs, "after", 3);
    let cp = checkpoint_signed_by(&lrs, &new, 7);

    monitor_tampered(&lrs, &old, state.path(), &["checkpoint refused"]);
    let fresh = tempfile::tempdir().expect("tmp");
    monitor_tampered(&lrs, &old, fresh.path(), &["checkpoint refused"]);
    // The log itself is intact: with the new key (what an operator who really rotated
    // keys would publish), a new monitor accepts it.
    let rotated = tempfile::tempdir().expect("tmp");
    monitor_ok(&lrs, &new, rotated.path(), cp.size);

    let cert = certificate(&lrs, &asha(), COURSE);
    assert_eq!(cert.status, 200, "{}", cert.describe());
    let r = verify(&cert.body, &old);
    assert_eq!(
        r.code,
        1,
        "a certificate signed by another key verified with the old vkey\n{}",
        r.describe()
    );
    assert!(
        r.stdout
            .starts_with("NOT VERIFIED: the certificate names the verifier key"),
        "{}",
        r.describe()
    );
    // Relabelling it with the old vkey does not help: its checkpoint and credential carry
    // no signature by that key (steps 3 and 6).
    let mut relabelled: Value = cert.json();
    relabelled["verifierKey"] = json!(old);
    let mut bytes = leaf::canonicalize(&relabelled).expect("canonical");
    bytes.push(b'\n');
    let r = verify(&bytes, &old);
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        !r.stdout.contains("names the verifier key"),
        "{}",
        r.describe()
    );
    assert!(r.stdout.contains("checkpoint"), "{}", r.describe());
    let r = verify(&cert.body, &new);
    assert_eq!(r.code, 0, "{}", r.describe());
}

/// Section 8.1: honest growth is never tampering. One monitor state across passes with
/// statements posted between them, an unchanged log, more than one entry bundle (the
/// partial bundle of an earlier pass is then read as the full one, step 2), a clean
/// restart and a crash of the server: every pass exits 0.
#[test]
fn honest_growth_across_passes_and_restarts_is_never_tampering() {
    let mut lrs = Lrs::start();
    let v = vkey(&lrs).to_string();
    let state = tempfile::tempdir().expect("tmp");
    let mut size = post_batch(&lrs, "a", 3).len() as u64;
    checkpoint_of(&lrs, size);
    monitor_ok(&lrs, &v, state.path(), size);
    // Nothing new: still ok.
    monitor_ok(&lrs, &v, state.path(), size);
    // Past the first tile of 256 leaves: the monitor reads the full bundle 0 (it read
    // the partial `.p/3` before) and a partial bundle 1.
    for k in 0..3 {
        size += post_batch(&lrs, &format!("b{k}-"), 100).len() as u64;
    }
    checkpoint_of(&lrs, size);
    let r = monitor_ok(&lrs, &v, state.path(), size);
    assert!(
        r.stdout.contains(&format!("{} leaves checked", size - 3)),
        "{}",
        r.describe()
    );
    for how in [Stop::Term, Stop::Kill] {
        lrs.restart(how);
        assert_eq!(vkey(&lrs).to_string(), v, "the key survives a restart");
        size += post_batch(&lrs, &format!("{how:?}"), 5).len() as u64;
        checkpoint_after_crash(&lrs, size);
        monitor_ok(&lrs, &v, state.path(), size);
    }
}

impl Db {
    /// Makes the store look as a version before the audit log left it: no salts,
    /// commitments or marks on the statements, no log (embedded: layout version 5).
    fn forget_the_log(&self) {
        match self {
            Db::Sqlite(path) => {
                let c = Db::sqlite(path);
                c.execute_batch(
                    "DROP TABLE audit_leaves; DROP TABLE audit_hashes; DROP TABLE audit_state;
                     DROP TABLE audit_erasures; DROP TABLE audit_statement_leaf;
                     ALTER TABLE statements DROP COLUMN salt;
                     ALTER TABLE statements DROP COLUMN commitment;
                     PRAGMA user_version = 5;",
                )
                .expect("downgrade the layout");
            }
            Db::Mongo(uri) => runtime().block_on(async {
                let db = mongo_db(uri).await;
                for c in [
                    "audit_leaves",
                    "audit_hashes",
                    "audit_state",
                    "audit_erasures",
                ] {
                    db.collection::<mongodb::bson::Document>(c)
                        .drop()
                        .await
                        .expect("drop");
                }
                db.collection::<mongodb::bson::Document>("statements")
                    .update_many(
                        mongodb::bson::doc! {},
                        mongodb::bson::doc! { "$unset": { "salt": "", "cm": "", "lq": "" } },
                    )
                    .await
                    .expect("unset");
            }),
        }
    }
}

impl Db {
    /// Back to the layout before the change feed: leaves without departments.
    fn forget_the_feed(&self) {
        match self {
            Db::Sqlite(path) => {
                let c = Db::sqlite(path);
                c.execute_batch(
                    "DROP TABLE audit_leaf_departments; DROP TABLE leases;
                     ALTER TABLE audit_leaves DROP COLUMN department;
                     PRAGMA user_version = 6;",
                )
                .expect("downgrade the layout");
            }
            Db::Mongo(uri) => runtime().block_on(async {
                let db = mongo_db(uri).await;
                db.collection::<mongodb::bson::Document>("audit_leaves")
                    .update_many(
                        mongodb::bson::doc! {},
                        mongodb::bson::doc! { "$unset": { "d": "", "k": "" } },
                    )
                    .await
                    .expect("unset");
            }),
        }
    }
}

/// Upgrade: a log made before the change feed gets each leaf's department when a version
/// with the feed first starts on the store; each subtree's feed then holds its own
/// statements (docs/FEED.md).
#[test]
fn leaves_logged_before_the_feed_existed_are_placed_on_upgrade() {
    let mut lrs = Lrs::start();
    lrs.require_spawned("it edits the store");
    lrs.cli(&["departments", "create", "moe"]);
    let moe = lrs.department_credential("moe", &["all"]);
    let root_ids = post_batch(&lrs, "root", 3);
    let r = lrs
        .post("statements")
        .auth(&moe.0, &moe.1)
        .json(&json!([
            statement("meera", "completed", COURSE),
            statement("ravi", "completed", COURSE)
        ]))
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let moe_ids: Vec<String> = serde_json::from_value(r.json()).expect("ids");
    checkpoint_of(&lrs, 5);
    lrs.stop(Stop::Term);
    Db::of(&lrs).forget_the_feed();
    lrs.start_again();
    let ids = |auth: (&str, &str)| -> std::collections::HashSet<String> {
        let page = crate::feed::feed_page(&lrs, auth, None, 100);
        page.events
            .iter()
            .map(|e| e["statement"]["id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(ids((&moe.0, &moe.1)), moe_ids.iter().cloned().collect());
    let mut all: std::collections::HashSet<String> = root_ids.into_iter().collect();
    all.extend(moe_ids);
    assert_eq!(ids((lrs.key(), lrs.secret())), all);
}

/// Upgrade: statements stored before the audit log existed are sealed and logged when a
/// version with the log first starts on the store (docs/AUDIT.md 9.2), and prove like
/// any other.
#[test]
fn statements_stored_before_the_log_existed_are_logged_on_upgrade() {
    let mut lrs = Lrs::start();
    let mut ids = post(&lrs, &json!([statement("asha", "completed", COURSE)]));
    ids.extend(post_batch(&lrs, "before", 5));
    checkpoint_of(&lrs, 6);
    lrs.stop(Stop::Term);
    Db::of(&lrs).forget_the_log();
    lrs.start_again();
    ids.extend(post_batch(&lrs, "after", 2));
    let v = Verifier::parse(&vkey(&lrs).to_string()).expect("vkey");
    let cp = checkpoint_of(&lrs, 8).0;
    assert_eq!(cp.size, 8, "each statement once");
    let mut leaves = std::collections::BTreeSet::new();
    for id in &ids {
        let r = lrs
            .get(&format!("{}/audit/proof", root(&lrs)))
            .no_version()
            .query("statementId", id)
            .send();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(leaves.insert(crate::audit::verify_proof(&r.json(), &v)));
    }
    let cert = certificate(&lrs, &asha(), COURSE);
    assert_eq!(cert.status, 200, "{}", cert.describe());
}
