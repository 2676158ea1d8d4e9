//! Completion figures (issue 14; docs/ANALYTICS.md), through HTTP and a real store: the
//! figures of `GET /analytics/completions` equal a brute-force count over the statements
//! read back with `GET /xapi/statements`, after voiding, an erasure and restarts (a crash
//! mid-projection never counts a statement twice), for every grouping, a date range, a
//! department's subtree and `X-Department`; one department never sees another's figures;
//! CSV says what JSON says; bad parameters get 400.
use crate::audit::root;
use crate::harness::{Lrs, Stop};
use crate::statement_queries::more_url;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const ACTIVITIES: [&str; 3] = [
    "https://igot.gov.in/course/ethics",
    "https://igot.gov.in/course/rti",
    "https://igot.gov.in/course/gem",
];
const LEARNERS: [&str; 5] = ["asha", "ravi", "meena", "arjun", "zoya"];
const VERBS: [&str; 4] = ["completed", "passed", "failed", "experienced"];
const ADL: &str = "http://adlnet.gov/expapi/verbs/";

pub type Auth = (String, String);
/// A reader, the subtree it reads, its `X-Department`, and the query parameters.
type Case<'a> = (&'a Auth, &'a str, Option<&'a str>, Vec<(&'a str, &'a str)>);

/// The departments of the test and their writers (the root's is the bootstrap credential).
struct Tree {
    root: Auth,
    moe: Auth,
    dhe: Auth,
    mohfw: Auth,
    moe_admin: Auth,
}

fn tree(lrs: &Lrs) -> Tree {
    for d in ["moe", "moe/dhe", "mohfw"] {
        lrs.cli(&["departments", "create", d]);
    }
    Tree {
        root: (lrs.key().to_owned(), lrs.secret().to_owned()),
        moe: lrs.department_credential("moe", &["all"]),
        dhe: lrs.department_credential("moe/dhe", &["all"]),
        mohfw: lrs.department_credential("mohfw", &["all"]),
        moe_admin: lrs.department_credential("moe", &["admin"]),
    }
}

/// A deterministic variety of statements: learners, activities, days, verbs and results.
fn generate(tag: u64, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let k = i as u64 * 7 + tag * 13;
            let learner = LEARNERS[(k % 5) as usize];
            let activity = ACTIVITIES[((k / 5) % 3) as usize];
            let verb = VERBS[((k / 3 + tag) % 4) as usize];
            let day = 1 + (k * 3 + tag) % 10;
            let hour = (k * 5) % 24;
            let mut s = json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "actor": {"objectType": "Agent", "mbox": format!("mailto:{learner}@example.gov.in")},
                "verb": {"id": format!("{ADL}{verb}")},
                "object": {"objectType": "Activity", "id": activity},
                "timestamp": format!("2026-03-{day:02}T{hour:02}:15:00Z"),
            });
            let score = ((k * 37) % 150) as f64 / 100.0 - 0.5;
            match k % 6 {
                0 => {}
                1 => s["result"] = json!({"success": true, "score": {"scaled": score}}),
                2 => s["result"] = json!({"success": false, "score": {"scaled": score}}),
                3 => s["result"] = json!({"completion": true}),
                4 => s["result"] = json!({"score": {"scaled": score}}),
                _ => {
                    // Early morning in India is the previous day in UTC.
                    s["timestamp"] = json!(format!("2026-03-{:02}T02:00:00+05:30", day + 1));
                    s["result"] = json!({"completion": false, "success": true});
                }
            }
            s
        })
        .collect()
}

fn post(lrs: &Lrs, auth: &Auth, body: &[Value]) {
    let r = lrs
        .post("statements")
        .auth(&auth.0, &auth.1)
        .json(&Value::Array(body.to_vec()))
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
}

fn voiding(target: &Value) -> Value {
    json!({
        "actor": {"objectType": "Agent", "mbox": "mailto:registrar@example.gov.in"},
        "verb": {"id": format!("{ADL}voided")},
        "object": {"objectType": "StatementRef", "id": target["id"]},
    })
}

/// Every statement the root reads (voided ones excluded), all pages.
fn read_back(lrs: &Lrs) -> Vec<Value> {
    let mut out = Vec::new();
    let mut r = lrs.get("statements").query("limit", "500").send();
    loop {
        assert_eq!(r.status, 200, "{}", r.describe());
        let body = r.json();
        out.extend(body["statements"].as_array().cloned().unwrap_or_default());
        match body["more"].as_str() {
            Some(m) if !m.is_empty() => r = lrs.get(&more_url(lrs, m)).send(),
            _ => return out,
        }
    }
}

/// The figures as the endpoint gives them: group name → the row.
pub fn figures(lrs: &Lrs, auth: &Auth, params: &[(&str, &str)], dept: Option<&str>) -> Value {
    let mut req = lrs
        .get(&format!("{}/analytics/completions", root(lrs)))
        .no_version()
        .auth(&auth.0, &auth.1);
    for (k, v) in params {
        req = req.query(k, v);
    }
    if let Some(d) = dept {
        req = req.header("X-Department", d);
    }
    let r = req.send();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// Waits until the log holds at least `leaves` leaves (every statement stored, erased
/// ones included, has one) and the figures include all of them.
pub fn wait_projected(lrs: &Lrs, leaves: usize) {
    // A process killed inside a MongoDB transaction (the sequencer's or the projector's)
    // leaves it to the server's transaction timeout (60 s by default) before the log and
    // the projection move on.
    // A busy SecantusDB reads thousands of unlogged statements in seconds: 240 s.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let (p, n) = progress(lrs);
        if n >= leaves as u64 && p >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "figures projected through {p} of {n} leaves ({leaves} expected) after 240 s\n{}",
            lrs.server_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The projection position as the root sees it: (projectedThrough, logSize).
fn progress(lrs: &Lrs) -> (u64, u64) {
    let auth = (lrs.key().to_owned(), lrs.secret().to_owned());
    let f = figures(lrs, &auth, &[("group_by", "department")], None);
    (
        f["projectedThrough"].as_u64().unwrap_or(0),
        f["logSize"].as_u64().unwrap_or(0),
    )
}

#[derive(Default, Clone, Copy, Debug, PartialEq)]
struct Counts {
    attempted: i64,
    completed: i64,
    passed: i64,
    failed: i64,
    scored: i64,
    score_sum: f64,
}

/// One learner row by brute force: first days, best score and its day.
#[derive(Default)]
struct Row {
    attempted: Option<String>,
    completed: Option<String>,
    passed: Option<String>,
    failed: Option<String>,
    best: Option<(f64, String)>,
}

fn first(slot: &mut Option<String>, day: &str) {
    if slot.as_deref().is_none_or(|d| day < d) {
        *slot = Some(day.to_owned());
    }
}

/// Per (department, activity, day) counters, computed from the statements and the
/// department each was written to.
fn brute_force(
    statements: &[Value],
    department_of: &HashMap<String, String>,
) -> Vec<(String, String, String, Counts)> {
    let mut rows: BTreeMap<(String, String, String), Row> = BTreeMap::new();
    for s in statements {
        // Only activities count; an identified group is a learner, an anonymous one nobody.
        let (Some(kind), Some(mbox)) = (
            s["actor"]["objectType"].as_str(),
            s["actor"]["mbox"].as_str(),
        ) else {
            continue;
        };
        if s["object"]["objectType"] != "Activity" {
            continue;
        }
        let learner = format!("{kind}|{mbox}");
        let id = s["id"].as_str().expect("id");
        let dept = department_of
            .get(id)
            .cloned()
            .expect("a statement the test wrote");
        let t = s["timestamp"].as_str().expect("timestamp");
        let day = chrono::DateTime::parse_from_rfc3339(t)
            .expect("timestamp")
            .naive_utc()
            .date()
            .format("%Y-%m-%d")
            .to_string();
        let activity = s["object"]["id"].as_str().expect("activity").to_owned();
        let verb = s["verb"]["id"].as_str().unwrap_or("");
        let success = s["result"]["success"].as_bool();
        let row = rows.entry((dept, activity, learner)).or_default();
        first(&mut row.attempted, &day);
        if verb == format!("{ADL}completed") || s["result"]["completion"] == true {
            first(&mut row.completed, &day);
        }
        if verb == format!("{ADL}passed") || success == Some(true) {
            first(&mut row.passed, &day);
        }
        if verb == format!("{ADL}failed") || success == Some(false) {
            first(&mut row.failed, &day);
        }
        if let Some(score) = s["result"]["score"]["scaled"].as_f64() {
            let better = match &row.best {
                None => true,
                Some((b, d)) => score > *b || (score == *b && day < *d),
            };
            if better {
                row.best = Some((score, day.clone()));
            }
        }
    }
    let mut counters: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
    for ((dept, activity, _), row) in rows {
        let mut at = |day: &Option<String>, f: &dyn Fn(&mut Counts)| {
            if let Some(d) = day {
                f(counters
                    .entry((dept.clone(), activity.clone(), d.clone()))
                    .or_default());
            }
        };
        at(&row.attempted, &|c| c.attempted += 1);
        at(&row.completed, &|c| c.completed += 1);
        at(&row.passed, &|c| c.passed += 1);
        if row.passed.is_none() {
            at(&row.failed, &|c| c.failed += 1);
        }
        if let Some((score, day)) = &row.best {
            let score = *score;
            at(&Some(day.clone()), &|c| {
                c.scored += 1;
                c.score_sum += score;
            });
        }
    }
    counters
        .into_iter()
        .map(|((d, a, day), c)| (d, a, day, c))
        .collect()
}

fn within(dept: &str, subtree: &str) -> bool {
    subtree == "/" || dept == subtree || dept.starts_with(&format!("{subtree}/"))
}

/// What the endpoint should answer for these parameters and this reader's subtree.
fn expected(
    counters: &[(String, String, String, Counts)],
    subtree: &str,
    activity: Option<&str>,
    from: &str,
    to: &str,
    group_by: &str,
) -> BTreeMap<String, Counts> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for (dept, act, day, c) in counters {
        if !within(dept, subtree)
            || activity.is_some_and(|a| a != act)
            || day.as_str() < from
            || day.as_str() > to
        {
            continue;
        }
        let key = match group_by {
            "day" => day.clone(),
            "department" => dept.clone(),
            _ => act.clone(),
        };
        let e = out.entry(key).or_default();
        e.attempted += c.attempted;
        e.completed += c.completed;
        e.passed += c.passed;
        e.failed += c.failed;
        e.scored += c.scored;
        e.score_sum += c.score_sum;
    }
    out
}

fn assert_figures(answer: &Value, want: &BTreeMap<String, Counts>, what: &str) {
    let group = answer["groupBy"].as_str().expect("groupBy").to_owned();
    let rows = answer["rows"].as_array().expect("rows");
    let mut got: BTreeMap<String, Value> = BTreeMap::new();
    for r in rows {
        got.insert(r[&group].as_str().expect("group").to_owned(), r.clone());
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: groups\n{answer}"
    );
    let mut total = Counts::default();
    for (k, w) in want {
        let g = &got[k];
        for (name, n) in [
            ("attempted", w.attempted),
            ("completed", w.completed),
            ("passed", w.passed),
            ("failed", w.failed),
            ("scored", w.scored),
        ] {
            assert_eq!(g[name].as_i64(), Some(n), "{what}: {k} {name}\n{answer}");
        }
        let avg = g["averageScaledScore"].as_f64();
        if w.scored == 0 {
            assert_eq!(avg, None, "{what}: {k}");
        } else {
            let want_avg = w.score_sum / w.scored as f64;
            assert!(
                avg.is_some_and(|a| (a - want_avg).abs() < 1e-6),
                "{what}: {k} average {avg:?} != {want_avg}"
            );
        }
        total.attempted += w.attempted;
        total.completed += w.completed;
        total.passed += w.passed;
        total.failed += w.failed;
        total.scored += w.scored;
    }
    for (name, n) in [
        ("attempted", total.attempted),
        ("completed", total.completed),
        ("passed", total.passed),
        ("failed", total.failed),
        ("scored", total.scored),
    ] {
        assert_eq!(
            answer["totals"][name].as_i64(),
            Some(n),
            "{what}: totals {name}"
        );
    }
}

/// Posts a batch into a department, remembering where each statement went.
fn post_into(
    lrs: &Lrs,
    auth: &Auth,
    dept: &str,
    body: &[Value],
    department_of: &mut HashMap<String, String>,
) {
    post(lrs, auth, body);
    for s in body {
        if let Some(id) = s["id"].as_str() {
            department_of.insert(id.to_owned(), dept.to_owned());
        }
    }
}

/// Compares every kind of query with the brute force over what the root reads back.
fn check_all(lrs: &Lrs, t: &Tree, department_of: &HashMap<String, String>) {
    let statements = read_back(lrs);
    let counters = brute_force(&statements, department_of);
    assert!(counters.len() > 10, "the data covers many counters");
    let (lo, hi) = ("2000-01-01", "2100-01-01");
    let cases: Vec<Case> = vec![
        (
            &t.root,
            "/",
            None,
            vec![("from", "2026-02-20"), ("to", "2026-03-31")],
        ),
        (&t.root, "/", None, vec![("group_by", "department")]),
        (&t.root, "/", None, vec![("group_by", "activity")]),
        (
            &t.root,
            "/",
            None,
            vec![("group_by", "department"), ("activity", ACTIVITIES[0])],
        ),
        (
            &t.root,
            "/",
            None,
            vec![
                ("activity", ACTIVITIES[1]),
                ("from", "2026-03-03"),
                ("to", "2026-03-06"),
            ],
        ),
        (&t.moe, "moe", None, vec![("group_by", "department")]),
        (
            &t.moe,
            "moe",
            None,
            vec![("from", "2026-03-03"), ("to", "2026-03-06")],
        ),
        (
            &t.moe,
            "moe",
            None,
            vec![("group_by", "activity"), ("from", "2026-03-05")],
        ),
        (
            &t.root,
            "moe/dhe",
            Some("moe/dhe"),
            vec![("group_by", "activity")],
        ),
        (
            &t.moe,
            "moe/dhe",
            Some("moe/dhe"),
            vec![("group_by", "department"), ("activity", ACTIVITIES[2])],
        ),
        (&t.mohfw, "mohfw", None, vec![("group_by", "department")]),
        (
            &t.dhe,
            "moe/dhe",
            None,
            vec![("from", "2026-03-01"), ("to", "2026-03-10")],
        ),
    ];
    for (auth, subtree, dept, params) in cases {
        let get = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let group_by = get("group_by").unwrap_or("day");
        let want = expected(
            &counters,
            subtree,
            get("activity"),
            get("from").unwrap_or(lo),
            get("to").unwrap_or(hi),
            group_by,
        );
        let answer = figures(lrs, auth, &params, dept);
        assert_figures(&answer, &want, &format!("{subtree} {params:?}"));
    }
}

#[test]
fn completion_figures_equal_a_brute_force_count_after_voiding_erasure_and_restarts() {
    let mut lrs = Lrs::start();
    let t = tree(&lrs);
    let mut department_of: HashMap<String, String> = HashMap::new();
    let mut posted = 0;
    let mut batches: Vec<(&Auth, &str, Vec<Value>)> = vec![
        (&t.root, "/", generate(1, 40)),
        (&t.moe, "moe", generate(2, 60)),
        (&t.dhe, "moe/dhe", generate(3, 60)),
        (&t.mohfw, "mohfw", generate(4, 40)),
    ];
    // An identified group is a learner; an anonymous one is nobody; a StatementRef or
    // an Agent object is no activity.
    let mut odd = generate(5, 3);
    odd[0]["actor"] = json!({"objectType": "Group", "mbox": "mailto:cadre-2026@example.gov.in"});
    odd[1]["actor"] =
        json!({"objectType": "Group", "member": [{"mbox": "mailto:ravi@example.gov.in"}]});
    odd[2]["object"] = json!({"objectType": "Agent", "mbox": "mailto:ravi@example.gov.in"});
    batches.push((&t.moe, "moe", odd));
    for (auth, dept, body) in &batches {
        post_into(&lrs, auth, dept, body, &mut department_of);
        posted += body.len();
    }
    // Void some statements in each department (voiding stays in the writer's department).
    for (auth, dept, body) in &batches {
        let voids: Vec<Value> = body.iter().skip(1).step_by(9).map(voiding).collect();
        post_into(&lrs, auth, dept, &voids, &mut department_of);
        posted += voids.len();
    }
    // A crash while the projector may be mid-way, then a clean restart.
    lrs.restart(Stop::Kill);
    // The figures hold her rows before she is erased.
    wait_projected(&lrs, posted);
    check_all(&lrs, &t, &department_of);
    // Erase one person in moe's subtree: her figures there go, those in mohfw stay.
    let asha = json!({"objectType": "Agent", "mbox": "mailto:asha@example.gov.in"});
    let r = lrs
        .delete(&format!("{}/admin/agents", root(&lrs)))
        .no_version()
        .auth(&t.moe_admin.0, &t.moe_admin.1)
        .query("agent", &asha.to_string())
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let erased = r.json()["statements"].as_u64().expect("statements") as usize;
    assert!(erased > 0);
    // More after the erasure, hers included, and a voiding of an older statement.
    let later = generate(6, 30);
    post_into(&lrs, &t.dhe, "moe/dhe", &later, &mut department_of);
    posted += later.len();
    let v = vec![voiding(&batches[3].2[1])];
    post_into(&lrs, &t.mohfw, "mohfw", &v, &mut department_of);
    posted += 1;
    lrs.restart(Stop::Term);
    wait_projected(&lrs, posted);
    check_all(&lrs, &t, &department_of);
    // Asha has no row left in moe's subtree: her mbox is nowhere in the figures' inputs,
    // and the counters equal the brute force without her (checked above). After a crash
    // with nothing new, nothing moves.
    let before = figures(&lrs, &t.root, &[("group_by", "department")], None);
    lrs.restart(Stop::Kill);
    wait_projected(&lrs, posted);
    let after = figures(&lrs, &t.root, &[("group_by", "department")], None);
    assert_eq!(
        before["rows"], after["rows"],
        "a restart counts nothing twice"
    );
}

#[test]
fn a_department_sees_only_its_subtree_and_csv_says_what_json_says() {
    let lrs = Lrs::start();
    let t = tree(&lrs);
    let mut department_of = HashMap::new();
    post_into(&lrs, &t.moe, "moe", &generate(7, 30), &mut department_of);
    post_into(
        &lrs,
        &t.mohfw,
        "mohfw",
        &generate(8, 30),
        &mut department_of,
    );
    wait_projected(&lrs, 60);
    // mohfw's credential: only mohfw, whatever it asks.
    let f = figures(&lrs, &t.mohfw, &[("group_by", "department")], None);
    let depts: Vec<&str> = f["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["department"].as_str())
        .collect();
    assert_eq!(depts, ["mohfw"]);
    for d in ["moe", "/", "moe/dhe", "nowhere"] {
        let r = lrs
            .get(&format!("{}/analytics/completions", root(&lrs)))
            .no_version()
            .auth(&t.mohfw.0, &t.mohfw.1)
            .header("X-Department", d)
            .send();
        assert_eq!(r.status, 403, "X-Department {d}: {}", r.describe());
    }
    // moe/dhe has no statements: its figures are empty, not its parent's.
    let f = figures(&lrs, &t.dhe, &[("group_by", "department")], None);
    assert_eq!(f["rows"], json!([]));
    assert_eq!(f["totals"]["attempted"], 0);
    // statements/read/mine is not enough.
    let mine = lrs.department_credential("moe", &["statements/read/mine"]);
    let r = lrs
        .get(&format!("{}/analytics/completions", root(&lrs)))
        .no_version()
        .auth(&mine.0, &mine.1)
        .send();
    assert_eq!(r.status, 403, "{}", r.describe());
    // CSV: the same rows and columns as JSON.
    for group_by in ["day", "department", "activity"] {
        let params = [
            ("group_by", group_by),
            ("from", "2026-03-01"),
            ("to", "2026-03-31"),
        ];
        let json = figures(&lrs, &t.root, &params, None);
        let mut req = lrs
            .get(&format!("{}/analytics/completions", root(&lrs)))
            .no_version()
            .auth(&t.root.0, &t.root.1)
            .header("Accept", "text/csv");
        for (k, v) in params {
            req = req.query(k, v);
        }
        let r = req.send();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/csv")));
        let text = r.text();
        let mut lines = text.lines();
        let columns = [
            group_by,
            "attempted",
            "completed",
            "passed",
            "failed",
            "scored",
            "averageScaledScore",
        ];
        assert_eq!(lines.next(), Some(columns.join(",").as_str()));
        let rows = json["rows"].as_array().expect("rows");
        assert!(!rows.is_empty());
        let csv: Vec<&str> = lines.collect();
        assert_eq!(csv.len(), rows.len());
        for (line, row) in csv.iter().zip(rows) {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells[0], row[group_by].as_str().unwrap_or(""));
            for (i, c) in columns.iter().enumerate().skip(1).take(5) {
                assert_eq!(cells[i], row[*c].to_string(), "{c} in {line}");
            }
            let avg = row["averageScaledScore"].as_f64();
            assert_eq!(cells[6].parse::<f64>().ok(), avg, "{line}");
        }
    }
}

#[test]
fn bad_parameters_get_400_with_the_error_body() {
    let lrs = Lrs::start();
    for (params, at) in [
        (vec![("from", "2026-13-01")], "from"),
        (vec![("to", "yesterday")], "to"),
        (vec![("from", "2026-03-02"), ("to", "2026-03-01")], "from"),
        (vec![("from", "2024-01-01"), ("to", "2025-06-01")], "to"),
        (vec![("group_by", "week")], "group_by"),
        (vec![("activity", "not an IRI")], "activity"),
        (vec![("agent", "x")], "agent"),
    ] {
        let mut req = lrs
            .get(&format!("{}/analytics/completions", root(&lrs)))
            .no_version()
            .auth(lrs.key(), lrs.secret());
        for (k, v) in &params {
            req = req.query(k, v);
        }
        let r = req.send();
        let body = r.assert_error(400);
        assert!(body.to_string().contains(at), "{params:?}: {body}");
    }
    // 366 days of group_by=day is allowed; longer ranges group by department or activity.
    for params in [
        vec![("from", "2024-01-01"), ("to", "2024-12-31")],
        vec![
            ("from", "2020-01-01"),
            ("to", "2025-06-01"),
            ("group_by", "department"),
        ],
    ] {
        let mut req = lrs
            .get(&format!("{}/analytics/completions", root(&lrs)))
            .no_version()
            .auth(lrs.key(), lrs.secret());
        for (k, v) in &params {
            req = req.query(k, v);
        }
        assert_eq!(req.send().status, 200, "{params:?}");
    }
    // Unauthenticated: 401.
    let r = lrs
        .get(&format!("{}/analytics/completions", root(&lrs)))
        .no_version()
        .no_auth()
        .send();
    assert_eq!(r.status, 401, "{}", r.describe());
}

#[test]
fn a_crash_in_the_middle_of_the_projection_counts_nothing_twice() {
    let mut lrs = Lrs::start();
    let t = tree(&lrs);
    let mut department_of = HashMap::new();
    let mut posted = 0;
    for (i, (auth, dept)) in [
        (&t.moe, "moe"),
        (&t.dhe, "moe/dhe"),
        (&t.mohfw, "mohfw"),
        (&t.moe, "moe"),
    ]
    .into_iter()
    .enumerate()
    {
        // The last one large, in one request: the log takes it in one append and the
        // projector needs two steps (2,000 leaves each) for it.
        let body = generate(10 + i as u64, if i == 3 { 2_100 } else { 200 });
        post_into(&lrs, auth, dept, &body, &mut department_of);
        posted += body.len();
    }
    // Kill the server as soon as the projection has taken some of the log and not all
    // (pages are 2,000 leaves); if it was too fast to catch there, kill it anyway.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = (0, 0);
    while Instant::now() < deadline {
        let (p, n) = progress(&lrs);
        seen = (p, n);
        if p > 0 && p < n.max(posted as u64) || p >= posted as u64 && p >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "killed with the figures through {} of {} leaves ({posted} statements posted)",
        seen.0, seen.1
    );
    lrs.restart(Stop::Kill);
    let later = generate(20, 200);
    post_into(&lrs, &t.dhe, "moe/dhe", &later, &mut department_of);
    posted += later.len();
    wait_projected(&lrs, posted);
    check_all(&lrs, &t, &department_of);
}
