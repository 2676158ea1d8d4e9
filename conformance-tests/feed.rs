//! The change feed (issue 14; docs/FEED.md), through HTTP and a real store: every stored
//! statement exactly once, in log order, across restarts and concurrent writers; a reader
//! killed mid-stream resumes without gap or repeat; cursors are bound to the reader's
//! department; voiding and erasure are events; long polls wake on new statements.
use crate::audit::{root, statement};
use crate::harness::{Lrs, Stop};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

/// One `GET /feed` answer: its event lines and the end line.
pub struct Page {
    pub events: Vec<Value>,
    pub end: Value,
}

pub fn feed_page(lrs: &Lrs, auth: (&str, &str), cursor: Option<&str>, limit: usize) -> Page {
    let mut req = lrs
        .get(&format!("{}/feed", root(lrs)))
        .no_version()
        .auth(auth.0, auth.1)
        .query("limit", &limit.to_string());
    if let Some(c) = cursor {
        req = req.query("cursor", c);
    }
    let r = req.send();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let mut lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let end = lines.pop().expect("an end line");
    assert_eq!(
        end["event"], "end",
        "the last line ends the response: {end}"
    );
    Page { events: lines, end }
}

/// The position part of a cursor.
pub fn position(cursor: &Value) -> u64 {
    let c = cursor.as_str().expect("a cursor string");
    c.split_once('.')
        .and_then(|(p, _)| p.parse().ok())
        .unwrap_or_else(|| panic!("malformed cursor {c}"))
}

/// Reads the feed from `cursor` in pages of `limit` until it holds `want` statement events
/// (waiting while the log takes them: up to 45 s without progress, 100 s in all, so a slow
/// store under load is not taken for a stalled feed); checks cursors only grow.
pub fn read_until(
    lrs: &Lrs,
    auth: (&str, &str),
    mut cursor: Option<String>,
    limit: usize,
    want: usize,
) -> (Vec<Value>, String) {
    let started = Instant::now();
    let mut deadline = started + Duration::from_secs(45);
    let mut seen = 0;
    let mut events: Vec<Value> = Vec::new();
    let mut last = 0;
    loop {
        let page = feed_page(lrs, auth, cursor.as_deref(), limit);
        assert!(page.events.len() <= limit);
        for e in &page.events {
            let p = position(&e["cursor"]);
            assert!(p > last, "cursors only grow: {p} after {last}");
            last = p;
        }
        assert!(position(&page.end["cursor"]) >= last);
        last = position(&page.end["cursor"]);
        events.extend(page.events);
        cursor = Some(page.end["cursor"].as_str().expect("cursor").to_owned());
        let statements = events.iter().filter(|e| e["statement"].is_object()).count();
        if statements >= want {
            return (events, cursor.unwrap_or_default());
        }
        if statements > seen {
            seen = statements;
            deadline = Instant::now() + Duration::from_secs(45);
        }
        assert!(
            Instant::now() < deadline && started.elapsed() < Duration::from_secs(100),
            "the feed gave {statements} of {want} statements (none more in the last 45 s, or 100 s in all)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ids_of(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["statement"]["id"].as_str().map(str::to_owned))
        .collect()
}

fn batch(tag: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                statement(
                    &format!("{tag}-{i}"),
                    "experienced",
                    "https://igot.gov.in/c/feed",
                )
            })
            .collect(),
    )
}

fn post_as(lrs: &Lrs, auth: (&str, &str), body: &Value) -> Vec<String> {
    let r = lrs
        .post("statements")
        .auth(auth.0, auth.1)
        .json(body)
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    serde_json::from_value(r.json()).expect("ids")
}

#[test]
fn feed_gives_every_statement_once_in_log_order_across_restarts_and_concurrent_writers() {
    let mut lrs = Lrs::start();
    lrs.require_spawned("it restarts the server");
    let admin = (lrs.key().to_owned(), lrs.secret().to_owned());
    let auth = (admin.0.as_str(), admin.1.as_str());
    let mut posted: Vec<String> = Vec::new();
    for round in 0..2 {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let endpoint = lrs.endpoint().to_owned();
                let (k, s) = admin.clone();
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new().build();
                    let mut ids = Vec::new();
                    for b in 0..6 {
                        let r = agent
                            .post(&format!("{endpoint}/statements"))
                            .set("X-Experience-API-Version", "2.0.0")
                            .set("Authorization", &crate::harness::basic(&k, &s))
                            .send_json(batch(&format!("r{round}w{w}b{b}"), 20))
                            .expect("post");
                        let got: Vec<String> = r.into_json().expect("ids");
                        ids.extend(got);
                    }
                    ids
                })
            })
            .collect();
        for w in writers {
            posted.extend(w.join().expect("writer"));
        }
        if round == 0 {
            lrs.restart(Stop::Term);
        }
    }
    assert_eq!(posted.len(), 2 * 4 * 6 * 20);
    let (events, _) = read_until(&lrs, auth, None, 97, posted.len());
    let got = ids_of(&events);
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "no statement twice");
    assert_eq!(
        unique,
        posted.iter().collect::<HashSet<_>>(),
        "every statement"
    );
    // Log order: leaf indexes strictly increase, and each cursor is the position after
    // its leaf.
    let leaves: Vec<u64> = events
        .iter()
        .map(|e| e["leaf"].as_u64().expect("leaf"))
        .collect();
    assert!(leaves.windows(2).all(|w| w[0] < w[1]));
    for e in &events {
        assert_eq!(
            position(&e["cursor"]),
            e["leaf"].as_u64().expect("leaf") + 1
        );
        assert_eq!(e["event"], "statement");
        assert_eq!(e["department"], "/");
        assert!(
            e["statement"]["stored"].is_string(),
            "the statement as stored: {e}"
        );
    }
    // After a restart the same cursor resumes at the same place.
    let middle = events[200]["cursor"].as_str().expect("cursor").to_owned();
    lrs.restart(Stop::Term);
    let (rest, _) = read_until(&lrs, auth, Some(middle), 1000, posted.len() - 201);
    assert_eq!(ids_of(&rest), got[201..].to_vec());
}

/// Reads `GET /feed` over a raw socket and drops the connection after `lines` lines, as a
/// reader killed mid-stream would; returns the lines read whole.
fn read_then_drop(lrs: &Lrs, auth: (&str, &str), lines: usize) -> Vec<Value> {
    let url = format!("{}/feed?limit=100000", root(lrs));
    let rest = url.strip_prefix("http://").expect("http");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        crate::harness::basic(auth.0, auth.1)
    )
    .expect("request");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Status line and headers.
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line == "\r\n" {
            break;
        }
    }
    // Chunked body: chunk size lines interleave; keep only whole JSON lines.
    let mut body = Vec::new();
    let mut got = Vec::new();
    while got.len() < lines {
        let mut size = String::new();
        r.read_line(&mut size).expect("chunk size");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex size");
        if n == 0 {
            break;
        }
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).expect("chunk");
        body.extend_from_slice(&chunk[..n]);
        while let Some(i) = body.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = body.drain(..=i).collect();
            if got.len() < lines {
                got.push(serde_json::from_slice(&l).expect("a JSON line"));
            }
        }
    }
    got
}

#[test]
fn a_reader_killed_mid_stream_resumes_without_gap_or_duplicate() {
    let lrs = Lrs::start();
    let auth = (lrs.key(), lrs.secret());
    let mut posted = Vec::new();
    for b in 0..30 {
        posted.extend(post_as(&lrs, auth, &batch(&format!("k{b}"), 100)));
    }
    // Wait until the log holds them all.
    let (all, _) = read_until(&lrs, auth, None, 100_000, posted.len());
    assert_eq!(ids_of(&all).len(), posted.len());
    // Killed after 1,234 lines: resume from the last one it processed.
    let first = read_then_drop(&lrs, auth, 1234);
    assert_eq!(first.len(), 1234);
    let last = first.last().expect("a line")["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let (rest, _) = read_until(&lrs, auth, Some(last), 500, posted.len() - 1234);
    let mut resumed = ids_of(&first);
    resumed.extend(ids_of(&rest));
    assert_eq!(
        resumed,
        ids_of(&all),
        "identical ids, in order, no gap, no duplicate"
    );
    // The server is unharmed.
    assert_eq!(feed_page(&lrs, auth, None, 1).events.len(), 1);
}

#[test]
fn feed_is_bound_to_the_readers_subtree_and_refuses_foreign_or_malformed_cursors() {
    let lrs = Lrs::start();
    lrs.require_spawned("it creates departments");
    for d in ["moe", "moe/dhe", "mohfw"] {
        lrs.cli(&["departments", "create", d]);
    }
    let moe = lrs.department_credential("moe", &["all"]);
    let dhe = lrs.department_credential("moe/dhe", &["all"]);
    let health = lrs.department_credential("mohfw", &["all"]);
    let mine = lrs.department_credential("moe", &["statements/read/mine", "statements/write"]);
    let a = post_as(&lrs, (&moe.0, &moe.1), &batch("moe", 3));
    let b = post_as(&lrs, (&dhe.0, &dhe.1), &batch("dhe", 4));
    let c = post_as(&lrs, (&health.0, &health.1), &batch("health", 5));
    let root_auth = (lrs.key(), lrs.secret());
    let (all, _) = read_until(&lrs, root_auth, None, 100, 12);
    assert_eq!(ids_of(&all).len(), 12);
    let (moe_events, moe_end) = read_until(&lrs, (&moe.0, &moe.1), None, 100, 7);
    let set = |v: &[String]| v.iter().cloned().collect::<HashSet<_>>();
    let mut want = set(&a);
    want.extend(b.iter().cloned());
    assert_eq!(set(&ids_of(&moe_events)), want);
    let depts: HashSet<&str> = moe_events
        .iter()
        .map(|e| e["department"].as_str().expect("department"))
        .collect();
    assert_eq!(depts, HashSet::from(["moe", "moe/dhe"]));
    let (dhe_events, _) = read_until(&lrs, (&dhe.0, &dhe.1), None, 100, 4);
    assert_eq!(set(&ids_of(&dhe_events)), set(&b));
    let (health_events, _) = read_until(&lrs, (&health.0, &health.1), None, 100, 5);
    assert_eq!(set(&ids_of(&health_events)), set(&c));
    // X-Department narrows the feed like any statement read.
    let r = lrs
        .get(&format!("{}/feed", root(&lrs)))
        .no_version()
        .auth(&moe.0, &moe.1)
        .header("X-Department", "moe/dhe")
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text().lines().count(), 5, "4 events and the end line");
    // A cursor is the reader's own: another department's gets 400, as does one that is
    // malformed or ahead of the log; limit and wait out of range too.
    let bad = |auth: (&str, &str), q: &[(&str, &str)], what: &str| {
        let mut req = lrs
            .get(&format!("{}/feed", root(&lrs)))
            .no_version()
            .auth(auth.0, auth.1);
        for (k, v) in q {
            req = req.query(k, v);
        }
        let r = req.send();
        assert_eq!(r.status, 400, "{what}: {}", r.describe());
        let body = r.json();
        assert!(body["message"].is_string() || body["error"].is_object() || body.is_object());
        r.text()
    };
    let foreign = moe_end.as_str();
    let text = bad(
        (&dhe.0, &dhe.1),
        &[("cursor", foreign)],
        "a parent's cursor",
    );
    assert!(text.contains("another department"), "{text}");
    bad(
        (&health.0, &health.1),
        &[("cursor", foreign)],
        "a sibling's cursor",
    );
    bad(
        root_auth,
        &[("cursor", foreign)],
        "a child's cursor at the root",
    );
    for c in ["", "abc", "1", "1.zz", "-1.00000000", "1.0000000000"] {
        bad((&moe.0, &moe.1), &[("cursor", c)], c);
    }
    let ahead = format!("999999.{}", foreign.split_once('.').expect("tag").1);
    let text = bad((&moe.0, &moe.1), &[("cursor", &ahead)], "ahead of the log");
    assert!(text.contains("ahead"), "{text}");
    for l in ["0", "100001", "x", "-3"] {
        bad(root_auth, &[("limit", l)], l);
    }
    for w in ["61", "x", "-1"] {
        bad(root_auth, &[("wait", w)], w);
    }
    bad(root_auth, &[("since", "x")], "an unknown parameter");
    // statements/read/mine cannot read the whole subtree; no credential at all: 401.
    let r = lrs
        .get(&format!("{}/feed", root(&lrs)))
        .no_version()
        .auth(&mine.0, &mine.1)
        .send();
    assert_eq!(r.status, 403, "{}", r.describe());
    let r = lrs
        .get(&format!("{}/feed", root(&lrs)))
        .no_version()
        .no_auth()
        .send();
    assert_eq!(r.status, 401, "{}", r.describe());
    // X-Department outside the subtree: 403, alike for one that exists and one that does not.
    for d in ["mohfw", "nowhere"] {
        let r = lrs
            .get(&format!("{}/feed", root(&lrs)))
            .no_version()
            .auth(&moe.0, &moe.1)
            .header("X-Department", d)
            .send();
        assert_eq!(r.status, 403, "{d}: {}", r.describe());
    }
}

#[test]
fn voiding_and_erasure_are_events_of_the_feed() {
    let lrs = Lrs::start();
    let auth = (lrs.key(), lrs.secret());
    let ids = post_as(&lrs, auth, &batch("void", 2));
    let voiding = json!({
        "actor": {"mbox": "mailto:admin@example.gov.in"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": ids[0]},
    });
    let v = post_as(&lrs, auth, &voiding);
    let (events, end) = read_until(&lrs, auth, None, 100, 3);
    assert_eq!(events[2]["event"], "voided");
    assert_eq!(events[2]["voidedStatementId"], ids[0].as_str());
    assert_eq!(events[2]["statement"]["id"], v[0].as_str());
    // Erase the person of the second statement: an erasure event names its cursor.
    let person = json!({"objectType": "Agent", "mbox": "mailto:void-1@example.gov.in"});
    let r = lrs
        .delete(&format!("{}/admin/agents", root(&lrs)))
        .no_version()
        .query("agent", &person.to_string())
        .query("reference", "test")
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let deadline = Instant::now() + Duration::from_secs(20);
    let erased = loop {
        let page = feed_page(&lrs, auth, Some(&end), 100);
        if let Some(e) = page.events.iter().find(|e| e["event"] == "erased") {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "no erasure event within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(erased["cursors"], json!([events[1]["cursor"]]));
    assert_eq!(erased["leaves"], json!([events[1]["leaf"]]));
    // Read from the start now: the erased statement is gone, the rest is there.
    let page = feed_page(&lrs, auth, None, 100);
    let now = ids_of(&page.events);
    assert!(!now.contains(&ids[1]) && now.contains(&ids[0]), "{now:?}");
}

#[test]
fn a_long_poll_wakes_when_a_statement_arrives() {
    let lrs = Lrs::start();
    let auth = (lrs.key().to_owned(), lrs.secret().to_owned());
    post_as(&lrs, (&auth.0, &auth.1), &batch("before", 1));
    let (_, end) = read_until(&lrs, (&auth.0, &auth.1), None, 10, 1);
    let url = format!("{}/feed", root(&lrs));
    let started = Instant::now();
    let poll = {
        let (k, s) = auth.clone();
        std::thread::spawn(move || {
            ureq::get(&url)
                .query("cursor", &end)
                .query("wait", "60")
                .set("Authorization", &crate::harness::basic(&k, &s))
                .call()
                .expect("long poll")
                .into_string()
                .expect("body")
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    let id = post_as(&lrs, (&auth.0, &auth.1), &batch("after", 1));
    let body = poll.join().expect("poll");
    let waited = started.elapsed();
    assert!(body.contains(&id[0]), "{body}");
    // Well before the 60 s the poll may wait: on SecantusDB, next to the suite's heavy
    // tests, the log once took 12 s to take the statement in.
    assert!(waited < Duration::from_secs(30), "woke after {waited:?}");
    assert!(
        waited >= Duration::from_millis(700),
        "it waited for the statement"
    );
}

#[test]
fn feed_is_gzip_when_asked() {
    let lrs = Lrs::start();
    let auth = (lrs.key(), lrs.secret());
    post_as(&lrs, auth, &batch("gz", 50));
    read_until(&lrs, auth, None, 100, 50);
    let r = lrs
        .get(&format!("{}/feed", root(&lrs)))
        .no_version()
        .header("Accept-Encoding", "gzip")
        .send();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .expect("gzip");
    assert_eq!(text.lines().count(), 51);
}
