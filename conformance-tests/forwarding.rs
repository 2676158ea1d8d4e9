//! Forwarding (issue 14; docs/FORWARDING.md), through HTTP and a real store: rules sent to
//! a receiver written here, which checks the HMAC signature and fails about 30% of the
//! requests (500, garbage, a closed connection, a hang longer than the LRS's timeout),
//! is stopped and restarted on the same port, while the LRS itself restarts (cleanly and
//! by a crash): every matching statement arrives at least once, nothing else does.
//! And the rules' admin API: bad input, the caller's subtree, secrets never shown.
use crate::audit::root;
use crate::harness::{Lrs, Stop};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The LRS's delivery timeout in these tests; a hanging answer outlasts it.
const TIMEOUT_MS: u64 = 800;

/// What the receiver saw: statement ids by path, from requests it acknowledged.
#[derive(Default)]
struct Seen {
    ids: HashMap<String, HashMap<String, usize>>,
    bad_signatures: usize,
    requests: usize,
    failed: usize,
}

/// An HTTP receiver on 127.0.0.1 that checks signatures with each path's secret and fails
/// about 30% of requests, deterministically (a counter through a mixing function).
struct Receiver {
    port: u16,
    secrets: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    seen: Arc<Mutex<Seen>>,
    counter: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: a fixed, well-spread sequence of fates.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn read_request(s: &mut TcpStream) -> Option<(String, HashMap<String, String>, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, body))
}

fn respond(s: &mut TcpStream, status: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

impl Receiver {
    fn start(
        port: u16,
        secrets: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        seen: Arc<Mutex<Seen>>,
        counter: Arc<AtomicU64>,
    ) -> Receiver {
        // The port may linger briefly after a stop.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot listen on port {port}: {e}"),
            }
        };
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, secrets, seen, counter) =
                (stop.clone(), secrets.clone(), seen.clone(), counter.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let (secrets, seen, counter) =
                                (secrets.clone(), seen.clone(), counter.clone());
                            std::thread::spawn(move || serve(s, &secrets, &seen, &counter));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Receiver {
            port,
            secrets,
            seen,
            counter,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops listening (connections in flight finish); the port is free again.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn restart(&mut self) {
        self.stop();
        *self = Receiver::start(
            self.port,
            self.secrets.clone(),
            self.seen.clone(),
            self.counter.clone(),
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(
    mut s: TcpStream,
    secrets: &Mutex<HashMap<String, Vec<u8>>>,
    seen: &Mutex<Seen>,
    counter: &AtomicU64,
) {
    let _ = s.set_nonblocking(false);
    let Some((path, headers, body)) = read_request(&mut s) else {
        return;
    };
    let fate = mix(counter.fetch_add(1, Ordering::SeqCst)) % 100;
    if let Ok(mut seen) = seen.lock() {
        seen.requests += 1;
        if fate < 30 {
            seen.failed += 1;
        }
    }
    match fate {
        0..=9 => return respond(&mut s, "500 Internal Server Error"),
        10..=14 => {
            let _ = s.write_all(b"garbage, not HTTP at all\r\n\r\n");
            return;
        }
        15..=19 => return, // closed without an answer
        20..=29 => {
            // Hangs past the LRS's timeout, then would acknowledge: must not count.
            std::thread::sleep(Duration::from_millis(TIMEOUT_MS + 700));
            return respond(&mut s, "200 OK");
        }
        _ => {}
    }
    let key = secrets.lock().ok().and_then(|m| m.get(&path).cloned());
    let signature = headers
        .get("x-karmayogi-signature")
        .cloned()
        .unwrap_or_default();
    let verified = key.is_some_and(|k| {
        let Some(sig) = signature
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&k).expect("any key length");
        mac.update(&body);
        mac.verify_slice(&sig).is_ok()
    });
    if !verified {
        if let Ok(mut seen) = seen.lock() {
            seen.bad_signatures += 1;
        }
        return respond(&mut s, "401 Unauthorized");
    }
    let delivery = headers
        .get("x-karmayogi-delivery")
        .cloned()
        .unwrap_or_default();
    let statements: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array body");
    assert!(delivery.contains('/'), "delivery id {delivery}");
    if let Ok(mut seen) = seen.lock() {
        let ids = seen.ids.entry(path).or_default();
        for st in statements {
            let id = st["id"]
                .as_str()
                .expect("statements as stored have ids")
                .to_owned();
            *ids.entry(id).or_default() += 1;
        }
    }
    respond(&mut s, "200 OK");
}

fn admin(lrs: &Lrs) -> String {
    format!("{}/admin", root(lrs))
}

fn create_department(lrs: &Lrs, path: &str) {
    let r = lrs
        .post(&format!("{}/departments", admin(lrs)))
        .no_version()
        .json(&json!({ "path": path }))
        .send();
    assert_eq!(r.status, 201, "{}", r.describe());
}

fn create_rule(lrs: &Lrs, auth: (&str, &str), body: &Value) -> crate::harness::Response {
    lrs.post(&format!("{}/forwarding", admin(lrs)))
        .no_version()
        .auth(auth.0, auth.1)
        .json(body)
        .send()
}

const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
const ATTEMPTED: &str = "http://adlnet.gov/expapi/verbs/attempted";
const COURSE_1: &str = "https://igot.gov.in/course/1";
const COURSE_2: &str = "https://igot.gov.in/course/2";

fn statement(n: usize, verb: &str, object: &str, parent: Option<&str>) -> Value {
    let mut s = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "actor": {"objectType": "Agent", "mbox": format!("mailto:officer{n}@example.gov.in")},
        "verb": {"id": verb},
        "object": {"objectType": "Activity", "id": object},
    });
    if let Some(p) = parent {
        s["context"] = json!({"contextActivities": {"parent": [{"id": p}]}});
    }
    s
}

#[test]
fn forwarding_delivers_every_matching_statement_at_least_once_through_failures_and_restarts() {
    let mut lrs = Lrs::builder()
        .env("LRS_FORWARDING_TIMEOUT_MS", TIMEOUT_MS.to_string())
        .env("LRS_FORWARDING_BACKOFF_MIN_MS", "50")
        .env("LRS_FORWARDING_BACKOFF_MAX_MS", "400")
        .env("LRS_FORWARDING_LEASE_MS", "2000")
        .start();
    for d in ["moe", "moe/dhe", "mof"] {
        create_department(&lrs, d);
    }
    let writers: Vec<(&str, (String, String))> = ["moe", "moe/dhe", "mof"]
        .into_iter()
        .map(|d| (d, lrs.department_credential(d, &["all"])))
        .collect();

    let secrets = Arc::new(Mutex::new(HashMap::new()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut receiver = Receiver::start(
        0,
        secrets.clone(),
        seen.clone(),
        Arc::new(AtomicU64::new(0)),
    );

    // Rule A: moe's subtree, completed only, small batches. Rule B: the whole tree,
    // course 1 as object or parent context activity.
    let root_auth = (lrs.key().to_owned(), lrs.secret().to_owned());
    let root_auth = (root_auth.0.as_str(), root_auth.1.as_str());
    let a = create_rule(
        &lrs,
        root_auth,
        &json!({"department": "moe", "verbs": [COMPLETED], "target": receiver.url("/a"),
                "authorization": "Bearer receiver-token-a", "batchSize": 7}),
    );
    assert_eq!(a.status, 201, "{}", a.describe());
    let b = create_rule(
        &lrs,
        root_auth,
        &json!({"activities": [COURSE_1], "target": receiver.url("/b/xapi/statements"), "xapiVersion": "2.0.0", "batchSize": 4}),
    );
    assert_eq!(b.status, 201, "{}", b.describe());
    for (path, r) in [("/a", a.json()), ("/b/xapi/statements", b.json())] {
        let secret = hex::decode(r["secret"].as_str().expect("secret shown at creation"))
            .expect("hex secret");
        assert_eq!(secret.len(), 32);
        secrets
            .lock()
            .expect("lock")
            .insert(path.to_owned(), secret);
    }

    let mut expected_a: HashSet<String> = HashSet::new();
    let mut expected_b: HashSet<String> = HashSet::new();
    let mut n = 0;
    let mut post_round = |lrs: &Lrs, count: usize| {
        for _ in 0..count {
            n += 1;
            let (dept, (key, secret)) = &writers[n % writers.len()];
            let verb = if n % 2 == 0 { COMPLETED } else { ATTEMPTED };
            let (object, parent) = match n % 3 {
                0 => (COURSE_1, None),
                1 => (COURSE_2, Some(COURSE_1)),
                _ => (COURSE_2, None),
            };
            let s = statement(n, verb, object, parent);
            let id = s["id"].as_str().expect("id").to_owned();
            let r = lrs.post("statements").auth(key, secret).json(&s).send();
            assert_eq!(r.status, 200, "{}", r.describe());
            if dept.starts_with("moe") && verb == COMPLETED {
                expected_a.insert(id.clone());
            }
            if object == COURSE_1 || parent == Some(COURSE_1) {
                expected_b.insert(id);
            }
        }
    };

    post_round(&lrs, 40);
    std::thread::sleep(Duration::from_millis(700));
    receiver.stop();
    post_round(&lrs, 30);
    std::thread::sleep(Duration::from_millis(1_000));
    receiver.restart();
    post_round(&lrs, 30);
    std::thread::sleep(Duration::from_millis(500));
    lrs.restart(Stop::Term);
    post_round(&lrs, 30);
    std::thread::sleep(Duration::from_millis(500));
    lrs.restart(Stop::Kill);
    post_round(&lrs, 30);

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = {
            let seen = seen.lock().expect("lock");
            let got = |p: &str| -> HashSet<String> {
                seen.ids
                    .get(p)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            };
            expected_a.is_subset(&got("/a")) && expected_b.is_subset(&got("/b/xapi/statements"))
        };
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not everything arrived within 90 s\nrules: {}\n{}",
            lrs.get(&format!("{}/forwarding", admin(&lrs)))
                .no_version()
                .send()
                .text(),
            lrs.server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let seen = seen.lock().expect("lock");
    let repeats: usize = seen
        .ids
        .values()
        .flat_map(|m| m.values())
        .map(|c| c - 1)
        .sum();
    eprintln!(
        "receiver: {} requests, {} failed on purpose, {repeats} statements received more than once",
        seen.requests, seen.failed
    );
    assert_eq!(
        seen.bad_signatures, 0,
        "every request is signed with its rule's secret"
    );
    assert!(
        seen.failed > 0 && seen.failed < seen.requests,
        "the receiver failed some requests"
    );
    let got_a: HashSet<String> = seen.ids["/a"].keys().cloned().collect();
    let got_b: HashSet<String> = seen.ids["/b/xapi/statements"].keys().cloned().collect();
    assert_eq!(
        got_a, expected_a,
        "rule A: exactly moe's subtree's completions"
    );
    assert_eq!(
        got_b, expected_b,
        "rule B: exactly the statements about course 1"
    );
    assert!(!expected_a.is_empty() && !expected_b.is_empty());

    // The delivery state is listed, without secrets.
    let r = lrs
        .get(&format!("{}/forwarding", admin(&lrs)))
        .no_version()
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let text = r.text();
    assert!(!text.contains("receiver-token-a"), "{text}");
    for secret in secrets.lock().expect("lock").values() {
        assert!(!text.contains(&hex::encode(secret)), "{text}");
    }
    let rules = r.json()["rules"].as_array().cloned().expect("rules");
    assert_eq!(rules.len(), 2);
    for rule in &rules {
        assert!(
            rule["delivery"]["delivered"].as_u64().expect("delivered") > 0,
            "{rule}"
        );
        assert!(rule["delivery"]["failures"].as_u64().is_some(), "{rule}");
    }
    drop(seen);
    drop(receiver);
}

#[test]
fn forwarding_rules_refuse_bad_input_stay_in_the_callers_subtree_and_never_show_secrets() {
    let lrs = Lrs::start();
    for d in ["moe", "moe/dhe", "mof"] {
        create_department(&lrs, d);
    }
    let root_auth = (lrs.key().to_owned(), lrs.secret().to_owned());
    let root_auth = (root_auth.0.as_str(), root_auth.1.as_str());
    let good = json!({"target": "https://collector.example.gov.in/in"});
    for (body, at) in [
        (json!({"target": "ftp://x.example/"}), "/target"),
        (json!({"target": "not a url"}), "/target"),
        (json!({"target": "http://user:pw@x.example/"}), "/target"),
        (json!({}), "/target"),
        (
            json!({"target": "http://x.example/", "batchSize": 0}),
            "/batchSize",
        ),
        (
            json!({"target": "http://x.example/", "batchSize": 501}),
            "/batchSize",
        ),
        (
            json!({"target": "http://x.example/", "batchSize": "7"}),
            "/batchSize",
        ),
        (
            json!({"target": "http://x.example/", "verbs": ["not an iri"]}),
            "/verbs/0",
        ),
        (
            json!({"target": "http://x.example/", "verbs": "http://v.example/"}),
            "/verbs",
        ),
        (
            json!({"target": "http://x.example/", "xapiVersion": "0.9"}),
            "/xapiVersion",
        ),
        (
            json!({"target": "http://x.example/", "secret": "mine"}),
            "/secret",
        ),
        (
            json!({"target": "http://x.example/", "department": "No Such"}),
            "/department",
        ),
    ] {
        let r = create_rule(&lrs, root_auth, &body);
        let e = r.assert_error(400);
        assert_eq!(e["path"], at, "{body}: {}", r.describe());
    }
    let r = lrs
        .post(&format!("{}/forwarding", admin(&lrs)))
        .no_version()
        .body("application/json", "[1,")
        .send();
    r.assert_error(400);

    // A department administrator: its own subtree only.
    let (mk, ms) = lrs.department_credential("moe", &["all", "admin"]);
    let moe = (mk.as_str(), ms.as_str());
    let outside = create_rule(
        &lrs,
        moe,
        &json!({"department": "mof", "target": "http://x.example/"}),
    );
    outside.assert_error(403);
    let missing = create_rule(
        &lrs,
        moe,
        &json!({"department": "moe/none", "target": "http://x.example/"}),
    );
    missing.assert_error(404);
    let (nk, ns) = lrs.department_credential("moe", &["all"]);
    create_rule(&lrs, (&nk, &ns), &good).assert_error(403);

    let mut with_auth = good.clone();
    with_auth["authorization"] = json!("Basic c2VjcmV0LXZhbHVl");
    with_auth["department"] = json!("moe/dhe");
    let created = create_rule(&lrs, moe, &with_auth);
    assert_eq!(created.status, 201, "{}", created.describe());
    let created = created.json();
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert_eq!(secret.len(), 64);
    assert_eq!(created["hasAuthorization"], true);
    assert!(!created.to_string().contains("c2VjcmV0LXZhbHVl"));
    assert_eq!(created["batchSize"], 100);
    assert_eq!(created["xapiVersion"], "1.0.3");
    let root_rule = create_rule(&lrs, root_auth, &good);
    assert_eq!(root_rule.status, 201, "{}", root_rule.describe());
    let root_id = root_rule.json()["id"].as_str().expect("id").to_owned();

    // Lists and reads: the caller's subtree, never the secrets.
    let list = |auth: (&str, &str)| {
        let r = lrs
            .get(&format!("{}/forwarding", admin(&lrs)))
            .no_version()
            .auth(auth.0, auth.1)
            .send();
        assert_eq!(r.status, 200, "{}", r.describe());
        let text = r.text();
        assert!(
            !text.contains("c2VjcmV0LXZhbHVl") && !text.contains(&secret),
            "{text}"
        );
        r.json()["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect::<HashSet<_>>()
    };
    assert_eq!(list(moe), HashSet::from([id.clone()]));
    assert_eq!(
        list(root_auth),
        HashSet::from([id.clone(), root_id.clone()])
    );
    let one = lrs
        .get(&format!("{}/forwarding/{id}", admin(&lrs)))
        .no_version()
        .auth(moe.0, moe.1)
        .send();
    assert_eq!(one.status, 200, "{}", one.describe());
    assert!(!one.text().contains(&secret) && !one.text().contains("c2VjcmV0LXZhbHVl"));
    assert_eq!(one.json()["department"], "moe/dhe");
    assert!(one.json()["delivery"]["lag"].is_u64());
    // Outside the subtree and unknown alike: 404.
    for (rid, auth) in [
        (root_id.as_str(), moe),
        ("no-such-rule", moe),
        ("no-such-rule", root_auth),
    ] {
        let url = format!("{}/forwarding/{rid}", admin(&lrs));
        lrs.get(&url)
            .no_version()
            .auth(auth.0, auth.1)
            .send()
            .assert_error(404);
        lrs.delete(&url)
            .no_version()
            .auth(auth.0, auth.1)
            .send()
            .assert_error(404);
    }
    let r = lrs
        .delete(&format!("{}/forwarding/{id}", admin(&lrs)))
        .no_version()
        .auth(moe.0, moe.1)
        .send();
    assert_eq!(r.status, 204, "{}", r.describe());
    assert_eq!(list(moe), HashSet::new());

    // The command line: create (secret shown once), list (no secret), remove.
    let out = lrs.cli(&[
        "forwarding",
        "create",
        "--target",
        "http://127.0.0.1:9/in",
        "--department",
        "mof",
        "--verb",
        COMPLETED,
        "--authorization",
        "Bearer cli-token",
    ]);
    let made: Value = serde_json::from_str(&out).expect("JSON rule");
    let cli_id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["secret"].as_str().map(str::len), Some(64));
    let listed = lrs.cli(&["forwarding", "list"]);
    assert!(
        listed.contains(&cli_id) && !listed.contains("cli-token"),
        "{listed}"
    );
    assert!(!listed.contains(made["secret"].as_str().expect("secret")));
    lrs.cli(&["forwarding", "remove", &cli_id]);
    assert!(!lrs.cli(&["forwarding", "list"]).contains(&cli_id));
}

/// Another LRS as the target: statements arrive as stored, voiding follows the statement
/// it voids, and a batch refused with 409 (one id already there, with other content) is
/// sent again one statement at a time, so the others still arrive.
#[test]
fn forwarding_to_another_lrs_carries_voiding_and_splits_a_batch_refused_with_409() {
    let source = Lrs::builder()
        .env("LRS_FORWARDING_BACKOFF_MIN_MS", "50")
        .env("LRS_FORWARDING_BACKOFF_MAX_MS", "200")
        .start();
    let target = Lrs::start();
    let auth = crate::harness::basic(target.key(), target.secret());

    let completed: Vec<Value> = (0..6)
        .map(|n| statement(n, COMPLETED, COURSE_1, None))
        .collect();
    let ids: Vec<String> = completed
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect();
    // The target already holds ids[2] with other content: a batch with it gets 409.
    let mut clash = statement(99, ATTEMPTED, COURSE_2, None);
    clash["id"] = json!(ids[2]);
    let r = target.post("statements").json(&clash).send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let other = statement(7, ATTEMPTED, COURSE_2, None);
    let r = source
        .post("statements")
        .json(&Value::Array(
            completed.iter().chain([&other]).cloned().collect(),
        ))
        .send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let voiding = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "actor": {"objectType": "Agent", "mbox": "mailto:officer1@example.gov.in"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": ids[0]},
    });
    let r = source.post("statements").json(&voiding).send();
    assert_eq!(r.status, 200, "{}", r.describe());

    let root_auth = (source.key().to_owned(), source.secret().to_owned());
    let rule = create_rule(
        &source,
        (&root_auth.0, &root_auth.1),
        &json!({"verbs": [COMPLETED], "target": target.url("statements"),
                "authorization": auth, "xapiVersion": "2.0.0"}),
    );
    assert_eq!(rule.status, 201, "{}", rule.describe());

    let find = |id: &str, voided: bool| {
        target
            .get("statements")
            .query(
                if voided {
                    "voidedStatementId"
                } else {
                    "statementId"
                },
                id,
            )
            .send()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while find(&ids[0], true).status != 200
        || ids[3..].iter().any(|id| find(id, false).status != 200)
    {
        assert!(
            Instant::now() < deadline,
            "not forwarded within 30 s: {}\n{}",
            source
                .get(&format!("{}/forwarding", admin(&source)))
                .no_version()
                .send()
                .text(),
            source.server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // As stored in the source, with the target's own `stored`.
    let got = find(&ids[1], false).json();
    assert_eq!(got["object"]["id"], COURSE_1);
    // The clash stays the target's own; the non-matching statement never went.
    assert_eq!(find(&ids[2], false).json()["verb"]["id"], ATTEMPTED);
    assert_eq!(find(other["id"].as_str().expect("id"), false).status, 404);
    let rules = source
        .get(&format!("{}/forwarding", admin(&source)))
        .no_version()
        .send()
        .json();
    assert_eq!(
        rules["rules"][0]["delivery"]["lastError"],
        Value::Null,
        "{rules}"
    );
}
