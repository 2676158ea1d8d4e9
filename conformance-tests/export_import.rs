//! Export and import (issue 14; docs/FEED.md): `karmayogi-lrs export` writes a subtree's
//! feed to NDJSON (gzip too) and resumes; `karmayogi-lrs import` stores statements from any
//! LRS (NDJSON or a JSON array) with their ids, this LRS's `stored` and `authority` (the
//! originals kept in an extension), rejects bad lines by line number, and re-runs as a
//! no-op; an import of an export reproduces the statements.
use crate::audit::{root, statement};
use crate::feed::read_until;
use crate::harness::{clean_command, Lrs, Stop};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

const IMPORTED: &str = "https://karmayogi-lrs.local/xapi/extensions/imported";

/// Runs the command line; answers (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = clean_command(&[])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run karmayogi-lrs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn export(lrs: &Lrs, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["export", "--quiet", "--store", lrs.store().expect("store")];
    let out = out.to_str().expect("path");
    args.extend(["--out", out]);
    args.extend(extra);
    let (code, _, err) = run(&args);
    assert_eq!(code, 0, "export failed: {err}");
    err
}

fn import(lrs: &Lrs, file: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["import", "--quiet", "--store", lrs.store().expect("store")];
    args.push(file.to_str().expect("path"));
    args.extend(extra);
    let (code, _, err) = run(&args);
    (code, err)
}

fn lines_of(path: &Path) -> Vec<Value> {
    let mut text = String::new();
    let f = std::fs::File::open(path).expect("open");
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(f)
            .read_to_string(&mut text)
            .expect("gzip");
    } else {
        std::io::BufReader::new(f)
            .read_to_string(&mut text)
            .expect("read");
    }
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn statements_of(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["event"] == "statement" || e["event"] == "voided")
        .map(|e| e["statement"].clone())
        .collect()
}

/// Every statement of the LRS (root reader), by id.
fn all_statements(lrs: &Lrs) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    let mut url: Option<String> = None;
    loop {
        let r = match &url {
            None => lrs.get("statements").query("limit", "500").send(),
            Some(more) => lrs.get(&format!("{}{more}", root(lrs))).send(),
        };
        assert_eq!(r.status, 200, "{}", r.describe());
        let body = r.json();
        for s in body["statements"].as_array().expect("statements") {
            out.insert(s["id"].as_str().expect("id").to_owned(), s.clone());
        }
        match body["more"].as_str() {
            Some(m) if !m.is_empty() => url = Some(m.to_owned()),
            _ => return out,
        }
    }
}

fn seed(lrs: &Lrs) -> usize {
    for d in ["moe", "moe/dhe"] {
        lrs.cli(&["departments", "create", d]);
    }
    let moe = lrs.department_credential("moe", &["all"]);
    let dhe = lrs.department_credential("moe/dhe", &["all"]);
    let post = |auth: (&str, &str), body: Value| -> Vec<String> {
        let r = lrs
            .post("statements")
            .auth(auth.0, auth.1)
            .json(&body)
            .send();
        assert_eq!(r.status, 200, "{}", r.describe());
        serde_json::from_value(r.json()).expect("ids")
    };
    let batch = |tag: &str, n: usize| {
        Value::Array(
            (0..n)
                .map(|i| statement(&format!("{tag}{i}"), "completed", "https://igot.gov.in/c/x"))
                .collect(),
        )
    };
    let a = post((lrs.key(), lrs.secret()), batch("root", 40));
    post((&moe.0, &moe.1), batch("moe", 30));
    post((&dhe.0, &dhe.1), batch("dhe", 30));
    post(
        (lrs.key(), lrs.secret()),
        json!({
            "actor": {"mbox": "mailto:admin@example.gov.in"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
            "object": {"objectType": "StatementRef", "id": a[0]},
        }),
    );
    101
}

#[test]
fn an_import_of_an_export_reproduces_the_statements_and_a_rerun_is_a_no_op() {
    let a = Lrs::start();
    a.require_spawned("it runs the command line on the store");
    let n = seed(&a);
    read_until(&a, (a.key(), a.secret()), None, 1000, n);
    let dir = tempfile::tempdir().expect("tmp");
    let everything = dir.path().join("all.ndjson");
    let said = export(&a, &everything, &[]);
    assert!(said.contains(&format!("exported {n} events")), "{said}");
    let events = lines_of(&everything);
    assert_eq!(events.last().expect("end")["event"], "end");
    assert_eq!(statements_of(&events).len(), n);
    // A subtree's export holds that subtree only, gzip when the name says so.
    let moe = dir.path().join("moe.ndjson.gz");
    export(&a, &moe, &["--department", "moe"]);
    let moe_events = lines_of(&moe);
    assert_eq!(statements_of(&moe_events).len(), 60);
    assert!(moe_events[..60]
        .iter()
        .all(|e| e["department"] == "moe" || e["department"] == "moe/dhe"));

    let mut b = Lrs::start();
    b.require_spawned("it imports into the store");
    b.stop(Stop::Term);
    let (code, said) = import(&b, &everything, &[]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains(&format!("{n} stored, 0 already there, 0 rejected")),
        "{said}"
    );
    // The same file again: nothing stored twice.
    let (code, said) = import(&b, &everything, &[]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains(&format!("0 stored, {n} already there")),
        "{said}"
    );
    b.start_again();
    let before = all_statements(&a);
    let after = all_statements(&b);
    assert_eq!(before.len(), n - 1, "all but the voided one");
    assert_eq!(
        after.keys().collect::<std::collections::BTreeSet<_>>(),
        before.keys().collect::<std::collections::BTreeSet<_>>(),
        "the same ids"
    );
    for (id, original) in &before {
        let copy = &after[id];
        // `stored` and `authority` are this LRS's; the originals are in the extension.
        let kept = &copy["context"]["extensions"][IMPORTED];
        assert_eq!(kept["stored"], original["stored"], "{id}");
        assert_eq!(kept["authority"], original["authority"], "{id}");
        assert_ne!(copy["authority"], original["authority"]);
        for k in ["actor", "verb", "object", "result", "timestamp"] {
            assert_eq!(copy[k], original[k], "{id}: {k}");
        }
    }
    // The voiding statement voided its target here too.
    let voided = before
        .values()
        .find(|s| s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/voided")
        .expect("a voiding statement");
    let target = voided["object"]["id"].as_str().expect("target");
    let r = b.get("statements").query("statementId", target).send();
    assert_eq!(
        r.status, 404,
        "a voided statement is not returned by statementId"
    );
    let r = b
        .get("statements")
        .query("voidedStatementId", target)
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn an_export_resumes_from_a_cursor_or_from_a_file_cut_short() {
    let a = Lrs::start();
    a.require_spawned("it runs the command line on the store");
    let n = seed(&a);
    read_until(&a, (a.key(), a.secret()), None, 1000, n);
    let dir = tempfile::tempdir().expect("tmp");
    let whole = dir.path().join("whole.ndjson");
    export(&a, &whole, &[]);
    let all = lines_of(&whole);
    // From a cursor: the rest, nothing before it.
    let middle = all[49]["cursor"].as_str().expect("cursor").to_owned();
    let rest = dir.path().join("rest.ndjson");
    export(&a, &rest, &["--cursor", &middle]);
    assert_eq!(lines_of(&rest), all[50..].to_vec());
    // A file cut mid-line (a killed export), plain and gzip: --resume completes it.
    for name in ["cut.ndjson", "cut.ndjson.gz"] {
        let cut = dir.path().join(name);
        if name.ends_with(".gz") {
            let bytes = std::fs::read(dir.path().join("whole.ndjson")).expect("read");
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &bytes).expect("gzip");
            let z = gz.finish().expect("gzip");
            std::fs::write(&cut, &z[..z.len() * 2 / 3]).expect("write");
        } else {
            let bytes = std::fs::read(&whole).expect("read");
            std::fs::write(&cut, &bytes[..bytes.len() / 2 + 17]).expect("write");
        }
        // Refused without --resume.
        let (code, _, err) = run(&[
            "export",
            "--quiet",
            "--store",
            a.store().expect("store"),
            "--out",
            cut.to_str().expect("path"),
        ]);
        assert_ne!(code, 0);
        assert!(err.contains("--resume"), "{err}");
        export(&a, &cut, &["--resume"]);
        let resumed = lines_of(&cut);
        let ids = |v: &[Value]| -> Vec<String> {
            statements_of(v)
                .iter()
                .map(|s| s["id"].as_str().expect("id").to_owned())
                .collect()
        };
        assert_eq!(
            ids(&resumed),
            ids(&all),
            "{name}: every statement once, in order"
        );
    }
}

#[test]
fn import_takes_json_arrays_from_any_lrs_and_reports_bad_lines_by_number() {
    let mut b = Lrs::start();
    b.require_spawned("it imports into the store");
    let existing = b
        .post("statements")
        .json(&statement("taken", "completed", "https://igot.gov.in/c/y"))
        .send();
    assert_eq!(existing.status, 200);
    let taken: Vec<String> = serde_json::from_value(existing.json()).expect("ids");
    let dir = tempfile::tempdir().expect("tmp");
    // Statements from another LRS, without ids, as a JSON array.
    let array = dir.path().join("other.json");
    let mut list: Vec<Value> = (0..25)
        .map(|i| statement(&format!("other{i}"), "passed", "https://igot.gov.in/c/z"))
        .collect();
    list[3]["stored"] = json!("2020-01-01T00:00:00.000Z");
    list[3]["authority"] = json!({"mbox": "mailto:lrs@other.example"});
    std::fs::write(&array, serde_json::to_vec_pretty(&list).expect("json")).expect("write");
    // NDJSON with bad lines: not JSON (2), not a statement (4), an id already stored with
    // other content (5); blank lines are skipped.
    let ndjson = dir.path().join("mixed.ndjson");
    let mut conflicting = statement("someone-else", "completed", "https://igot.gov.in/c/y");
    conflicting["id"] = json!(taken[0]);
    let text = [
        statement("good1", "completed", "https://igot.gov.in/c/y").to_string(),
        "{not json".to_owned(),
        String::new(),
        json!({"actor": {"mbox": "mailto:x@example.gov.in"}, "verb": {"id": "not an iri"}})
            .to_string(),
        conflicting.to_string(),
        statement("good2", "completed", "https://igot.gov.in/c/y").to_string(),
    ]
    .join("\n");
    std::fs::write(&ndjson, text).expect("write");
    if b.store().is_some_and(|s| s.starts_with("sqlite:")) {
        // The embedded store has one writer: not while the server runs.
        let (code, said) = import(&b, &array, &[]);
        assert_eq!(code, 1, "{said}");
        assert!(said.contains("in use"), "{said}");
        b.stop(Stop::Term);
    }
    let (code, said) = import(&b, &array, &[]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("25 stored"), "{said}");
    let (code, said) = import(&b, &array, &[]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("0 stored, 25 already there"),
        "ids derived from content: {said}"
    );
    let rejects = dir.path().join("rejects.ndjson");
    let (code, said) = import(&b, &ndjson, &["--rejects", rejects.to_str().expect("path")]);
    assert_eq!(code, 2, "some lines rejected: {said}");
    assert!(said.contains("2 stored"), "{said}");
    assert!(said.contains("rejected lines 2, 4, 5"), "{said}");
    let rejected = lines_of(&rejects);
    let at: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(at, [2, 4, 5]);
    assert!(rejected[1]["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(rejected[2]["error"]["status"], 409);
    if !b.spawned() || b.store().is_some_and(|s| s.starts_with("sqlite:")) {
        b.start_again();
    }
    let all = all_statements(&b);
    assert_eq!(all.len(), 1 + 25 + 2);
    let imported = all
        .values()
        .find(|s| s["context"]["extensions"][IMPORTED]["stored"] == "2020-01-01T00:00:00.000Z")
        .expect("the original stored time kept");
    assert_eq!(
        imported["context"]["extensions"][IMPORTED]["authority"]["mbox"],
        "mailto:lrs@other.example"
    );
    assert_eq!(
        all[&taken[0]]["actor"]["mbox"], "mailto:taken@example.gov.in",
        "not overwritten"
    );
    // A department that does not exist: a clear error, nothing stored.
    let (code, said) = import(&b, &array, &["--department", "nowhere"]);
    assert_eq!(code, 1, "{said}");
}
