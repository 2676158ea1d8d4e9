//! Fault injection (issue 17, docs/RELIABILITY.md, "Fault injection"): a process killed with SIGKILL
//! in the middle of its work loses nothing it acknowledged and stores nothing twice once
//! the work is done again; a full disk is answered with 507, a disk whose fsync fails with
//! 503, and writes resume once the disk recovers, without a restart.
//!
//! A crash of the server while the audit-log sequencer is busy is covered by
//! `audit::checkpoints_stay_consistent_across_restarts_and_crashes`.
use crate::audit::statement;
use crate::harness::{clean_command, Lrs, Stop};
use std::collections::HashSet;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Enough statements that the import is still running when it is killed: the embedded
/// store imports about 10,000 a second, SecantusDB a tenth of that.
const IMPORTED_EMBEDDED: usize = 40_000;
const IMPORTED_MONGODB: usize = 6_000;

/// Ids of every statement the LRS holds (root reader), each counted once per page seen.
fn stored_ids(lrs: &Lrs) -> Vec<String> {
    let mut out = Vec::new();
    let mut more: Option<String> = None;
    loop {
        let r = match &more {
            None => lrs.get("statements").query("limit", "1000").send(),
            Some(m) => lrs.get(&format!("{}{m}", crate::audit::root(lrs))).send(),
        };
        assert_eq!(r.status, 200, "{}", r.describe());
        let body = r.json();
        for s in body["statements"].as_array().expect("statements") {
            out.push(s["id"].as_str().expect("id").to_owned());
        }
        match body["more"].as_str() {
            Some(m) if !m.is_empty() => more = Some(m.to_owned()),
            _ => return out,
        }
    }
}

#[test]
fn an_import_killed_mid_way_and_run_again_stores_each_statement_exactly_once() {
    let mut lrs = Lrs::start();
    lrs.require_spawned("it kills an import writing into the store");
    let embedded = lrs.store().is_some_and(|s| s.starts_with("sqlite:"));
    if embedded {
        // The embedded store has one writer: the import runs while the server does not.
        lrs.stop(Stop::Term);
    }
    let store = lrs.store().expect("store").to_owned();
    let imported = if embedded {
        IMPORTED_EMBEDDED
    } else {
        IMPORTED_MONGODB
    };
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("big.ndjson");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).expect("create"));
        for i in 0..imported {
            let mut s = statement(&format!("imp{i}"), "completed", "https://igot.gov.in/c/f");
            s["id"] = serde_json::json!(uuid::Uuid::from_u128(0xfa17_0000 + i as u128));
            writeln!(w, "{s}").expect("write");
        }
        w.flush().expect("flush");
    }
    let path = file.to_str().expect("path");
    let args = [
        "import", "--quiet", "--batch", "100", "--store", &store, path,
    ];
    let mut child = clean_command(&[])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the import");
    // Kill it once it has had time to write some batches but not all: after a second on
    // the embedded store (the server is stopped); on MongoDB once the running server
    // shows a statement (a busy server may take longer than a second for the first).
    if embedded {
        std::thread::sleep(Duration::from_millis(1000));
    } else {
        let deadline = Instant::now() + Duration::from_secs(60);
        while lrs.get("/statements").query("limit", "1").send().json()["statements"]
            .as_array()
            .is_none_or(|a| a.is_empty())
        {
            assert!(
                Instant::now() < deadline,
                "the import stored nothing in 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the import finished before it could be killed: make the file larger"
    );
    child.kill().expect("SIGKILL the import");
    child.wait().expect("reap");
    // The same import again completes and reports what the killed one had already stored.
    let started = Instant::now();
    let out = clean_command(&[])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the import again");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    // "…: S stored, A already there, R rejected": A is what the killed import committed.
    let count = |before: &str| -> usize {
        said.split(before)
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count before {before:?}: {said}"))
    };
    let (stored, there) = (count(" stored, "), count(" already there"));
    assert_eq!(count(" rejected"), 0, "{said}");
    assert_eq!(stored + there, imported, "{said}");
    assert!(
        there > 0 && there < imported,
        "the killed import should have committed some but not all: {said}"
    );
    eprintln!(
        "re-run after the kill: {} in {:.1} s",
        said.trim(),
        started.elapsed().as_secs_f64()
    );
    if embedded {
        lrs.start_again();
    }
    let ids = stored_ids(&lrs);
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a statement is stored twice");
    assert_eq!(ids.len(), imported, "every imported statement, once");
}

/// Unmounts the test's filesystem however the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_answers_507_loses_nothing_and_writes_resume_once_space_is_freed() {
    let dir = tempfile::tempdir().expect("tmp");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("run mount");
    assert!(
        mounted.success(),
        "mounting a 48 MB tmpfs needs root: run this test as root"
    );
    let _mount = Mounted(dir.path().to_owned());
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 20 << 20]).expect("filler");
    // The embedded store, whatever the pass, in a directory on the small filesystem (one
    // test per process under nextest, so the environment is this test's own).
    std::env::remove_var("LRS_TEST_STORE");
    std::env::set_var("TMPDIR", dir.path());
    let mut lrs = Lrs::start();
    lrs.require_spawned("it fills the store's filesystem");
    let pad = "x".repeat(800);
    let mut acked: Vec<String> = Vec::new();
    let mut full = None;
    for i in 0..3000 {
        let body: Vec<_> = (0..100)
            .map(|j| {
                let mut s = statement(
                    &format!("full{i}-{j}"),
                    "completed",
                    "https://igot.gov.in/c/d",
                );
                s["result"]["response"] = serde_json::json!(pad);
                s
            })
            .collect();
        let r = lrs.post("statements").json(&serde_json::json!(body)).send();
        if r.status == 200 {
            acked.extend(serde_json::from_value::<Vec<String>>(r.json()).expect("ids"));
        } else {
            full = Some(r);
            break;
        }
    }
    let r = full.expect("the filesystem never filled up");
    assert_eq!(r.status, 507, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "store_full", "{}", r.describe());
    assert!(r.header("retry-after").is_some(), "{}", r.describe());
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the disk filled"
    );
    // Space freed: the same server writes again.
    std::fs::remove_file(&filler).expect("free space");
    let r = lrs
        .post("statements")
        .json(&statement("after", "completed", "https://igot.gov.in/c/d"))
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    // The audit log's sequencer, whose appends failed on the full disk too, catches up by
    // itself: one leaf for every acknowledged statement.
    let (cp, _) = crate::audit::checkpoint_of(&lrs, acked.len() as u64 + 1);
    assert_eq!(cp.size, acked.len() as u64 + 1, "leaves against statements");
    // So does the completion projection: one completing learner per statement.
    assert_eq!(
        completed_learners(&lrs, cp.size, "https://igot.gov.in/c/d"),
        cp.size
    );
    // One more batch, then the disk full to its last byte while its keys may still wait
    // for the key index: the stop must not wait for space (it hung on the index's last
    // fold), and the store must open on the full disk (it refused: "database or disk is
    // full"), serving reads and answering writes 507 until space is freed.
    let last: Vec<_> = (0..100)
        .map(|j| statement(&format!("last-{j}"), "completed", "https://igot.gov.in/c/d"))
        .collect();
    let r = lrs.post("statements").json(&serde_json::json!(last)).send();
    assert_eq!(r.status, 200, "{}", r.describe());
    acked.extend(serde_json::from_value::<Vec<String>>(r.json()).expect("ids"));
    let full_again = fill_up(dir.path(), "filler-again");
    let stopped = lrs.stop(Stop::Term);
    assert!(stopped.success(), "a stop on a full disk: {stopped:?}");
    // The stop may have emptied a WAL: full again before the start.
    let topped_up = fill_up(dir.path(), "filler-top");
    // After a restart (the store opens, so it is whole) a sample of the acknowledged is there.
    lrs.start_again();
    for id in acked.iter().step_by(97).chain(acked.last()) {
        let r = lrs.get("statements").query("statementId", id).send();
        assert_eq!(r.status, 200, "{id}: {}", r.describe());
    }
    // A write gets 507, or 200 where it fits in what the store's files already hold (a
    // WAL that starts again from its beginning).
    let r = lrs
        .post("statements")
        .json(&statement(
            "on-full",
            "completed",
            "https://igot.gov.in/c/d",
        ))
        .send();
    assert!(
        r.status == 200 || (r.status == 507 && r.json()["error"]["code"] == "store_full"),
        "{}",
        r.describe()
    );
    std::fs::remove_file(&full_again).expect("free space again");
    std::fs::remove_file(&topped_up).expect("free space again");
    let r = lrs
        .post("statements")
        .json(&statement(
            "freed-again",
            "completed",
            "https://igot.gov.in/c/d",
        ))
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    // Filtered queries answer once the key index has what the full disk kept out of it:
    // the last batch's learners, each with one statement.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = lrs
            .get("statements")
            .query("agent", r#"{"mbox": "mailto:last-99@example.gov.in"}"#)
            .send();
        if r.status == 200 {
            let found = &r.json()["statements"];
            assert_eq!(found.as_array().map_or(0, Vec::len), 1, "{}", r.describe());
            assert_eq!(found[0]["id"], acked[acked.len() - 1], "{}", r.describe());
            break;
        }
        assert_eq!(r.status, 503, "{}", r.describe());
        assert!(r.header("retry-after").is_some(), "{}", r.describe());
        assert!(
            std::time::Instant::now() < deadline,
            "the key index never caught up: {}",
            r.describe()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!(
        "{} statements acknowledged before the disk filled",
        acked.len()
    );
    lrs.stop(Stop::Term);
}

/// Fills the file system of `dir` to its last byte with a new file `name`, and returns
/// its path.
fn fill_up(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("filler");
    for size in [1 << 16, 1 << 9, 1] {
        let chunk = vec![0u8; size];
        while f.write_all(&chunk).is_ok() {}
    }
    path
}

/// Learners who completed `activity`, once the completion projection has taken in the
/// first `leaves` leaves of the log.
fn completed_learners(lrs: &Lrs, leaves: u64, activity: &str) -> u64 {
    crate::completions::wait_projected(lrs, leaves as usize);
    let auth = (lrs.key().to_owned(), lrs.secret().to_owned());
    let f = crate::completions::figures(
        lrs,
        &auth,
        &[("activity", activity), ("group_by", "department")],
        None,
    );
    f["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["completed"].as_u64().expect("completed"))
        .sum()
}

/// A batch of `n` statements of `actor`, acknowledged (200) or not.
fn batch(actor: &str, n: usize) -> serde_json::Value {
    serde_json::json!((0..n)
        .map(|j| statement(
            &format!("{actor}-{j}"),
            "completed",
            "https://igot.gov.in/c/f"
        ))
        .collect::<Vec<_>>())
}

/// Builds the fsync fault library (faults/fsync_fails.c) with the system C compiler.
fn fsync_fault_library(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("fsync_fails.c");
    std::fs::write(&src, include_str!("faults/fsync_fails.c")).expect("write the source");
    let lib = dir.join("libfsync_fails.so");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .status()
        .expect("run cc (the system C compiler, which building Rust needs anyway)");
    assert!(
        built.success(),
        "cc could not build the fsync fault library"
    );
    lib
}

/// A disk whose fsync fails (EIO, injected into the server's fsync by a preloaded
/// library while a flag file exists): a write cannot be made durable, so it is not
/// acknowledged. It gets 503 + `Retry-After` (code `store_unavailable`) promptly, never a
/// hang or a 500; reads go on; once fsync works again the same server writes without a
/// restart, the audit log catches up, and after a crash every acknowledged statement is
/// there.
#[test]
fn a_failing_fsync_answers_503_loses_nothing_and_writes_resume_once_the_disk_recovers() {
    std::env::remove_var("LRS_TEST_STORE");
    let dir = tempfile::tempdir().expect("tmp");
    let lib = fsync_fault_library(dir.path());
    let flag = dir.path().join("fail-fsync");
    let mut lrs = Lrs::builder()
        .env("LD_PRELOAD", lib.to_string_lossy())
        .env("LRS_TEST_FSYNC_FAIL", flag.to_string_lossy())
        .start();
    lrs.require_spawned("it makes the server's fsync fail");
    let mut acked: Vec<String> = Vec::new();
    for i in 0..20 {
        let r = lrs
            .post("statements")
            .json(&batch(&format!("before{i}"), 25))
            .send();
        assert_eq!(r.status, 200, "{}", r.describe());
        acked.extend(serde_json::from_value::<Vec<String>>(r.json()).expect("ids"));
    }
    let reference = acked[7].clone();
    std::fs::write(&flag, b"").expect("flag");
    for i in 0..3 {
        let t = Instant::now();
        let r = lrs
            .post("statements")
            .json(&batch(&format!("during{i}"), 25))
            .send();
        assert_eq!(r.status, 503, "{}", r.describe());
        assert_eq!(
            r.json()["error"]["code"],
            "store_unavailable",
            "{}",
            r.describe()
        );
        assert!(r.header("retry-after").is_some(), "{}", r.describe());
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "answered after {:?}",
            t.elapsed()
        );
        // Reads are served meanwhile.
        let r = lrs
            .get("statements")
            .query("statementId", &reference)
            .send();
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    std::fs::remove_file(&flag).expect("the disk recovers");
    let r = lrs.post("statements").json(&batch("after", 25)).send();
    assert_eq!(r.status, 200, "{}", r.describe());
    acked.extend(serde_json::from_value::<Vec<String>>(r.json()).expect("ids"));
    // The log catches up with every acknowledged statement (a refused batch may have
    // reached the file before its fsync failed, and then counts too: it was never
    // acknowledged, and a client's retry of it with the same ids is answered as a repeat).
    let (cp, _) = crate::audit::checkpoint_of(&lrs, acked.len() as u64);
    assert!(cp.size <= acked.len() as u64 + 75, "{} leaves", cp.size);
    // So does the completion projection: one completing learner per statement.
    assert_eq!(
        completed_learners(&lrs, cp.size, "https://igot.gov.in/c/f"),
        cp.size
    );
    // A crash now: every acknowledged statement survives it, and nothing twice.
    lrs.restart(Stop::Kill);
    let ids = stored_ids(&lrs);
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a statement is stored twice");
    for id in &acked {
        assert!(distinct.contains(id), "acknowledged {id} lost");
    }
    eprintln!(
        "{} acknowledged, {} stored after the crash",
        acked.len(),
        ids.len()
    );
    lrs.stop(Stop::Term);
}
