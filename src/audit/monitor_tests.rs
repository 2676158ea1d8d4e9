use serde_json::json;

use super::*;
use crate::audit::leaf::StatementLeaf;
use crate::audit::note::Signer;

const ORIGIN: &str = "lrs.example/audit";
const HOUR: u64 = 3600;

fn log_key() -> Signer {
    Signer::from_seed(ORIGIN, &[3; 32]).unwrap()
}

fn statement_entry(i: u64) -> Vec<u8> {
    StatementLeaf {
        commitment: merkle::leaf_hash(format!("statement {i}").as_bytes()),
        stored_us: 1_000_000 + i,
    }
    .encode()
}

fn erasure_entry(indexes: &[u64]) -> Vec<u8> {
    erasure_part(indexes, 0, 1, 42)
}

fn erasure_part(indexes: &[u64], part: u16, parts: u16, erased_us: u64) -> Vec<u8> {
    ErasureLeaf {
        erased_us,
        receipt: merkle::leaf_hash(b"receipt"),
        part,
        parts,
        indexes: indexes.to_vec(),
    }
    .encode()
    .unwrap()
}

/// A log as the monitor sees it: entries, and signed checkpoints of any prefix.
struct Log {
    entries: Vec<Vec<u8>>,
    key: Signer,
}

impl Log {
    fn new() -> Log {
        Log {
            entries: Vec::new(),
            key: log_key(),
        }
    }

    fn statements(&mut self, n: u64) -> &mut Log {
        for _ in 0..n {
            let i = self.entries.len() as u64;
            self.entries.push(statement_entry(i));
        }
        self
    }

    fn push(&mut self, entry: Vec<u8>) -> &mut Log {
        self.entries.push(entry);
        self
    }

    fn root(&self, n: u64) -> Hash {
        let leaves: Vec<Hash> = self.entries[..n as usize]
            .iter()
            .map(|e| merkle::leaf_hash(e))
            .collect();
        merkle::root(&leaves)
    }

    fn checkpoint(&self, n: u64) -> String {
        Checkpoint::new(ORIGIN, n, self.root(n))
            .sign(&self.key)
            .unwrap()
    }
}

fn monitor() -> Monitor {
    Monitor::new(log_key().verifier(), MonitorState::new(ORIGIN)).unwrap()
}

/// One pass over `log` at its full size; `content` decides what each new statement
/// leaf's content check says (`None`: no check). Commits on success.
fn pass(m: &mut Monitor, log: &Log, now: u64, content: impl Fn(u64) -> Option<Content>) -> Report {
    let n = log.entries.len() as u64;
    let step = match m.check_checkpoint(log.checkpoint(n).as_bytes()) {
        Ok(s) => s,
        Err(f) => {
            return Report {
                findings: vec![f],
                tree_size: m.state().size,
                ..Report::default()
            }
        }
    };
    let CheckpointStep::Grow(new) = step else {
        return Report {
            tree_size: n,
            ..Report::default()
        };
    };
    let mut b = m.begin(new, now);
    for e in &log.entries[b.next_index() as usize..] {
        b.push_entry(e);
    }
    let leaves: Vec<u64> = b.statement_leaves().map(|(i, _)| i).collect();
    for i in leaves {
        if let Some(c) = content(i) {
            b.record_content(i, c);
        }
    }
    let (report, state) = b.finish();
    if let Some(s) = state {
        m.commit(s);
    }
    report
}

fn tampered_reasons(r: &Report) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.is_tampered())
        .map(ToString::to_string)
        .collect()
}

#[test]
fn frontier_root_matches_the_tree_hash() {
    let mut f = Frontier::default();
    let mut leaves = Vec::new();
    assert_eq!(f.root(), merkle::empty_root());
    for i in 0..300u64 {
        let h = merkle::leaf_hash(&i.to_be_bytes());
        leaves.push(h);
        f.push(h);
        assert_eq!(f.size, i + 1);
        assert!(f.is_well_formed());
        assert_eq!(f.root(), merkle::root(&leaves), "size {}", i + 1);
    }
}

#[test]
fn a_growing_log_is_followed_without_refetching() {
    let mut log = Log::new();
    let mut m = monitor();
    log.statements(5);
    let r = pass(&mut m, &log, 0, |_| Some(Content::Matches));
    assert_eq!(r.findings, vec![]);
    assert_eq!(
        (r.tree_size, r.leaves_checked, r.contents_checked),
        (5, 5, 5)
    );
    assert_eq!(r.summary(), "ok: tree size 5, 5 leaves checked, 0 erased");
    assert_eq!(m.state().size, 5);
    assert_eq!(m.state().checkpoint, log.checkpoint(5));
    log.statements(300);
    let r = pass(&mut m, &log, 0, |_| Some(Content::Matches));
    assert_eq!(r.findings, vec![]);
    assert_eq!(r.leaves_checked, 300);
    assert_eq!(m.state().size, 305);
    assert_eq!(m.state().root, log.root(305));
    assert_eq!(m.state().contents_checked, 305);
    // The same checkpoint again: nothing to do.
    assert_eq!(
        m.check_checkpoint(log.checkpoint(305).as_bytes()),
        Ok(CheckpointStep::Unchanged)
    );
}

#[test]
fn state_round_trips_through_json_and_is_checked_on_load() {
    let mut log = Log::new();
    let mut m = monitor();
    log.statements(7).push(erasure_entry(&[1, 3]));
    pass(&mut m, &log, 9, |i| {
        Some(if i == 1 {
            Content::Absent
        } else {
            Content::Matches
        })
    });
    let json = serde_json::to_string(m.state()).unwrap();
    let back: MonitorState = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, m.state());
    assert!(Monitor::new(log_key().verifier(), back.clone()).is_ok());
    // Another log's key; a state whose edge does not match its root.
    let other = Signer::from_seed("other.example/log", &[1; 32]).unwrap();
    assert!(Monitor::new(other.verifier(), back.clone()).is_err());
    let mut broken = back;
    broken.root = merkle::empty_root();
    assert!(Monitor::new(log_key().verifier(), broken).is_err());
}

#[test]
fn rollback_fork_and_bad_signatures_are_tampering() {
    let mut log = Log::new();
    let mut m = monitor();
    log.statements(10);
    pass(&mut m, &log, 0, |_| None);
    // Rollback: a smaller, validly signed checkpoint.
    let f = m
        .check_checkpoint(log.checkpoint(8).as_bytes())
        .unwrap_err();
    assert!(f.to_string().starts_with("tampered: rollback"), "{f}");
    // Fork: the same size, another root.
    let forged = Checkpoint::new(ORIGIN, 10, merkle::leaf_hash(b"x"))
        .sign(&log_key())
        .unwrap();
    let f = m.check_checkpoint(forged.as_bytes()).unwrap_err();
    assert!(f.to_string().starts_with("tampered: fork"), "{f}");
    // Signed by another key, or altered after signing.
    let stranger = Signer::from_seed(ORIGIN, &[4; 32]).unwrap();
    let cp = Checkpoint::new(ORIGIN, 11, log.root(10))
        .sign(&stranger)
        .unwrap();
    assert!(m.check_checkpoint(cp.as_bytes()).unwrap_err().is_tampered());
    let altered = log.checkpoint(10).replacen("\n10\n", "\n11\n", 1);
    let f = m.check_checkpoint(altered.as_bytes()).unwrap_err();
    assert!(f.to_string().contains("checkpoint refused"), "{f}");
    assert!(m.check_checkpoint(b"<html>").unwrap_err().is_tampered());
    // Nothing was committed.
    assert_eq!(m.state().size, 10);
}

#[test]
fn a_new_tree_that_does_not_extend_the_old_one_is_tampering() {
    let mut log = Log::new();
    let mut m = monitor();
    log.statements(10);
    pass(&mut m, &log, 0, |_| None);
    // The log rewrites leaf 3 and signs the rewritten tree of 12 leaves.
    log.statements(2);
    log.entries[3] = statement_entry(99);
    let r = pass(&mut m, &log, 0, |_| None);
    let t = tampered_reasons(&r);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0].contains("does not extend"), "{t:?}");
    assert!(r.summary().starts_with("TAMPERED: 1 finding"));
    assert_eq!(m.state().size, 10, "a tampered pass is not committed");
    // Entries that are not the checkpoint's leaves (served for the new range only).
    let mut log2 = Log::new();
    log2.statements(12);
    let m2 = monitor();
    let cp = log2.checkpoint(12);
    let CheckpointStep::Grow(new) = m2.check_checkpoint(cp.as_bytes()).unwrap() else {
        panic!("grows")
    };
    let mut b = m2.begin(new, 0);
    for i in 0..12 {
        b.push_entry(&statement_entry(i + 1));
    }
    assert_eq!(b.finish().0.tampered(), 1);
    // Too few entries.
    let CheckpointStep::Grow(new) = m2.check_checkpoint(cp.as_bytes()).unwrap() else {
        panic!("grows")
    };
    let mut b = m2.begin(new, 0);
    b.push_entry(&statement_entry(0));
    let (r, s) = b.finish();
    assert!(s.is_none());
    assert!(r.findings[0].to_string().contains("read 1 leaves"));
}

#[test]
fn malformed_entries_are_tampering() {
    for bad in [
        vec![],
        vec![0x03, 0x01],
        vec![0x01, 0x02],
        statement_entry(0)[..41].to_vec(),
        {
            let mut e = erasure_entry(&[0]);
            e[45] = 0; // parts = 0
            e
        },
    ] {
        let mut log = Log::new();
        log.statements(2).push(bad.clone());
        let mut m = monitor();
        let r = pass(&mut m, &log, 0, |_| None);
        let t = tampered_reasons(&r);
        assert_eq!(t.len(), 1, "{bad:?}: {t:?}");
        assert!(
            t[0].starts_with("tampered: leaf 2: malformed entry"),
            "{t:?}"
        );
        assert_eq!(m.state().size, 0);
    }
}

#[test]
fn erasures_of_earlier_statement_leaves_are_fine() {
    let mut log = Log::new();
    let mut m = monitor();
    log.statements(4).push(erasure_entry(&[0, 2]));
    // The erased contents are absent, the others match.
    let r = pass(&mut m, &log, 0, |i| {
        Some(if i == 0 || i == 2 {
            Content::Absent
        } else {
            Content::Matches
        })
    });
    assert_eq!(tampered_reasons(&r), Vec::<String>::new());
    assert_eq!(r.erased(), 2);
    assert_eq!(
        r.findings[0].to_string(),
        format!(
            "erased: leaf 0 (by erasure leaf 4 at 1970-01-01T00:00:00.000042Z, receipt {})",
            merkle::leaf_hash(b"receipt").to_hex()
        )
    );
    assert_eq!(r.summary(), "ok: tree size 5, 5 leaves checked, 2 erased");
    assert!(m.state().missing.is_empty());
    assert_eq!(m.state().erased.get(&2), Some(&4));
    assert!(m.conclude(0, 0).is_empty());
    // Erasing a leaf of an earlier pass works the same.
    let mut another = erasure_part(&[1], 0, 1, 43);
    another[10] ^= 1; // another receipt
    log.push(another);
    let r = pass(&mut m, &log, 0, |_| None);
    assert_eq!((r.erased(), r.tampered()), (1, 0));
}

#[test]
fn bad_erasures_are_tampering() {
    let erasure_rest = |e: &mut Vec<u8>| {
        // Another receipt so that the part bookkeeping stays out of the way.
        e[10] ^= 1;
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (erasure_entry(&[3]), "not before it"),
        (erasure_entry(&[1, 7]), "not before it"),
        (erasure_entry(&[2]), "not a statement leaf"),
    ];
    for (entry, want) in cases {
        let mut log = Log::new();
        log.statements(2).push(erasure_entry(&[0])).push(entry);
        let mut e = log.entries[3].clone();
        erasure_rest(&mut e);
        log.entries[3] = e;
        let mut m = monitor();
        let r = pass(&mut m, &log, 0, |_| None);
        let t = tampered_reasons(&r);
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].contains(want), "{t:?}");
    }
    // A leaf erased twice (by two erasures).
    let mut log = Log::new();
    let mut twice = erasure_entry(&[1]);
    erasure_rest(&mut twice);
    log.statements(2).push(erasure_entry(&[1])).push(twice);
    let r = pass(&mut monitor(), &log, 0, |_| None);
    let t = tampered_reasons(&r);
    assert!(
        t.len() == 1 && t[0].contains("already erased by leaf 2"),
        "{t:?}"
    );
    // The same erasure leaf twice: its part appears twice (and its leaf is named twice).
    let mut log = Log::new();
    log.statements(2)
        .push(erasure_entry(&[0]))
        .push(erasure_entry(&[1]));
    let t = tampered_reasons(&pass(&mut monitor(), &log, 0, |_| None));
    assert!(
        t.iter()
            .any(|t| t.contains("is complete, yet has another part")),
        "{t:?}"
    );
}

#[test]
fn erasure_parts_must_agree_and_all_be_present() {
    let n = MAX_ERASED_PER_LEAF as u64 + 3;
    let all: Vec<u64> = (0..n).collect();
    let (a, b) = all.split_at(MAX_ERASED_PER_LEAF);
    // Both parts, in either order: fine.
    for order in [[0usize, 1], [1, 0]] {
        let mut log = Log::new();
        log.statements(n);
        let parts = [erasure_part(a, 0, 2, 5), erasure_part(b, 1, 2, 5)];
        for o in order {
            log.push(parts[o].clone());
        }
        let mut m = monitor();
        let r = pass(&mut m, &log, 0, |_| None);
        assert_eq!(tampered_reasons(&r), Vec::<String>::new());
        assert_eq!(r.erased(), n as usize);
        assert!(m.state().pending_erasures.is_empty());
    }
    // Parts disagreeing on the time.
    let mut log = Log::new();
    log.statements(n)
        .push(erasure_part(a, 0, 2, 5))
        .push(erasure_part(b, 1, 2, 6));
    let t = tampered_reasons(&pass(&mut monitor(), &log, 0, |_| None));
    assert!(t.len() == 1 && t[0].contains("disagree"), "{t:?}");
    // A part holding indexes of another rank, or a non-final part not full.
    let mut log = Log::new();
    log.statements(n)
        .push(erasure_part(b, 0, 2, 5))
        .push(erasure_part(a, 1, 2, 5));
    let t = tampered_reasons(&pass(&mut monitor(), &log, 0, |_| None));
    assert!(
        !t.is_empty() && t.iter().all(|t| t.contains("of its rank")),
        "{t:?}"
    );
    // One part only: pending, then tampered once the grace period is over.
    let mut log = Log::new();
    log.statements(n).push(erasure_part(a, 0, 2, 5));
    let mut m = monitor();
    let r = pass(&mut m, &log, 100, |_| None);
    assert_eq!(r.tampered(), 0);
    assert_eq!(m.state().pending_erasures.len(), 1);
    assert!(m.conclude(100 + HOUR - 1, HOUR).is_empty());
    let f = m.conclude(100 + HOUR, HOUR);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].to_string().contains("has 1 of its 2 parts"),
        "{}",
        f[0]
    );
    // The late part arrives: complete.
    log.push(erasure_part(b, 1, 2, 5));
    let r = pass(&mut m, &log, 200, |_| None);
    assert_eq!(r.tampered(), 0);
    assert!(m.conclude(u64::MAX, 0).is_empty());
}

#[test]
fn missing_then_erased_is_an_erasure() {
    let mut log = Log::new();
    let mut m = monitor();
    log.statements(3);
    let r = pass(&mut m, &log, 1000, |i| {
        Some(if i == 1 {
            Content::Absent
        } else {
            Content::Matches
        })
    });
    assert_eq!(r.findings, vec![]);
    assert_eq!(m.state().missing.get(&1), Some(&1000));
    // Within the grace period it is not concluded; the erasure leaf then explains it.
    assert!(m.conclude(1000 + 5, 10).is_empty());
    log.push(erasure_entry(&[1]));
    let r = pass(&mut m, &log, 1010, |_| None);
    assert_eq!((r.erased(), r.tampered()), (1, 0));
    assert!(m.state().missing.is_empty());
    assert!(m.conclude(u64::MAX, 0).is_empty());
}

#[test]
fn missing_and_unexplained_is_tampering() {
    let mut log = Log::new();
    let mut m = monitor();
    log.statements(3);
    pass(&mut m, &log, 50, |i| {
        Some(if i == 2 {
            Content::Absent
        } else {
            Content::Matches
        })
    });
    let f = m.conclude(50, 0);
    assert_eq!(
        f,
        vec![Finding::Tampered {
            reason: "the statement is missing and no erasure leaf names it".into(),
            index: Some(2)
        }]
    );
    assert_eq!(
        f[0].to_string(),
        "tampered: leaf 2: the statement is missing and no erasure leaf names it"
    );
    // An erasure that names only another leaf does not explain it.
    log.push(erasure_entry(&[0]));
    pass(&mut m, &log, 60, |_| None);
    assert_eq!(m.conclude(60, 0).len(), 1);
}

#[test]
fn edited_statements_are_tampering() {
    let mut log = Log::new();
    let mut m = monitor();
    log.statements(3);
    let r = pass(&mut m, &log, 0, |i| {
        Some(if i == 1 {
            Content::Differs("edited".into())
        } else {
            Content::Matches
        })
    });
    let t = tampered_reasons(&r);
    assert_eq!(
        t,
        vec!["tampered: leaf 1: the statement served does not match its leaf: edited"]
    );
    assert_eq!(m.state().size, 0);
    // Content for a leaf that is not new is a caller's mistake, reported, never silent.
    let cp = log.checkpoint(3);
    let CheckpointStep::Grow(new) = m.check_checkpoint(cp.as_bytes()).unwrap() else {
        panic!()
    };
    let mut b = m.begin(new, 0);
    b.record_content(0, Content::Matches);
    assert_eq!(b.finish().0.tampered(), 2); // that, and no leaves read
}

fn opening(index: u64, statement: &Value, salt: &Salt, dept: &str) -> String {
    json!({
        "leafIndex": index,
        "statementId": statement["id"],
        "department": dept,
        "salt": salt.to_hex(),
        "statement": statement,
    })
    .to_string()
}

#[test]
fn openings_recompute_to_the_logged_leaf() {
    let statement = json!({
        "id": "3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b1a",
        "actor": {"objectType": "Agent", "mbox": "mailto:learner@example.gov.in"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "https://example.gov.in/course/ethics-101"},
        "stored": "2026-12-01T04:30:00.123456Z",
        "version": "1.0.3"
    });
    let salt = Salt::from_bytes([5; 32]);
    let dept = Department::parse("moe/dhe").unwrap();
    let stored_us = leaf::stored_us_of(&statement).unwrap();
    let logged = leaf::statement_leaf(&statement, &salt, &dept, stored_us)
        .unwrap()
        .leaf_hash();
    assert_eq!(
        check_opening(7, &logged, &opening(7, &statement, &salt, "moe/dhe")),
        Content::Matches
    );
    // The root department is "".
    let root_leaf = leaf::statement_leaf(&statement, &salt, &Department::root(), stored_us)
        .unwrap()
        .leaf_hash();
    assert_eq!(
        check_opening(7, &root_leaf, &opening(7, &statement, &salt, "")),
        Content::Matches
    );
    let differs = |body: String| matches!(check_opening(7, &logged, &body), Content::Differs(_));
    let mut edited = statement.clone();
    edited["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/failed");
    assert!(differs(opening(7, &edited, &salt, "moe/dhe")));
    assert!(differs(opening(7, &statement, &salt, "moe")));
    assert!(differs(opening(
        7,
        &statement,
        &Salt::from_bytes([6; 32]),
        "moe/dhe"
    )));
    assert!(differs(opening(8, &statement, &salt, "moe/dhe")));
    let mut restamped = statement.clone();
    restamped["stored"] = json!("2026-12-01T04:30:00.123457Z");
    assert!(differs(opening(7, &restamped, &salt, "moe/dhe")));
    assert!(differs("not json".into()));
    assert!(differs("{}".into()));
    assert!(differs(r#"{"leafIndex":7,"leafIndex":7}"#.into()));
    assert!(differs(opening(7, &statement, &salt, "Bad Dept")));
}

#[test]
fn entry_bundles_split() {
    let a = statement_entry(0);
    let b = erasure_entry(&[0]);
    let mut bundle = Vec::new();
    for e in [&a, &b, &vec![]] {
        bundle.extend_from_slice(&(e.len() as u16).to_be_bytes());
        bundle.extend_from_slice(e);
    }
    let got = parse_entry_bundle(&bundle).unwrap();
    assert_eq!(got, vec![&a[..], &b[..], &[][..]]);
    assert_eq!(parse_entry_bundle(&[]).unwrap().len(), 0);
    assert!(parse_entry_bundle(&bundle[..bundle.len() - 3]).is_err());
    assert!(parse_entry_bundle(&[0]).is_err());
    assert!(parse_entry_bundle(&[0, 5, 1]).is_err());
}
