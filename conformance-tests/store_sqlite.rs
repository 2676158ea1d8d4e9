//! The embedded store across crashes. A statement commit stores the statement row
//! durably; its filter keys reach the key index (`<db>.keys`) later, folded in batches
//! by a background thread. These tests kill the server (SIGKILL, no shutdown) right after
//! acknowledgements and restart it on the same files: every acknowledged statement must
//! answer every filter, exactly once, in `stored` order.
//!
//! They start their own servers on a SQLite file (whatever `LRS_TEST_STORE` says).
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_karmayogi-lrs");
const KEY: &str = "crash-test";
const SECRET: &str = "crash-test-secret";

/// One server process on a given SQLite file.
struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    fn start(db: &std::path::Path) -> Server {
        Self::start_with(db, &[])
    }

    fn start_with(db: &std::path::Path, env: &[(&str, &str)]) -> Server {
        Self::start_logging(db, env, Stdio::null())
    }

    /// Started with its log (stderr) going to `log`.
    fn start_logging(db: &std::path::Path, env: &[(&str, &str)], log: Stdio) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(format!("sqlite:{}", db.display()))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LRS_BOOTSTRAP_KEY", KEY)
            .env("LRS_BOOTSTRAP_SECRET", SECRET)
            .env("LRS_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the LRS");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.trim().strip_prefix("listening on ") {
                        return Server {
                            child,
                            endpoint: format!("{}/xapi", addr.trim()),
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the LRS did not start on {}", db.display());
                }
            }
        }
    }

    /// SIGKILL: no shutdown code runs (no final fold, no checkpoint).
    fn crash(mut self) {
        self.child.kill().expect("kill the LRS");
        let _ = self.child.wait();
    }

    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build()
    }

    fn auth() -> String {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"))
        )
    }

    fn post(&self, body: &Value) -> Vec<String> {
        let r = Self::agent()
            .post(&format!("{}/statements", self.endpoint))
            .set("Authorization", &Self::auth())
            .set("X-Experience-API-Version", "2.0.0")
            .send_json(body.clone())
            .unwrap_or_else(|e| panic!("POST /statements failed: {e}"));
        r.into_json().expect("POST answers an id list")
    }

    /// Follows `more` to the end; returns ids in the order served.
    fn all_pages(&self, params: &[(&str, &str)]) -> Vec<String> {
        let mut ids = Vec::new();
        let mut req = Self::agent().get(&format!("{}/statements", self.endpoint));
        for (k, v) in params {
            req = req.query(k, v);
        }
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages < 1000, "paging does not end for {params:?}");
            let body: Value = req
                .set("Authorization", &Self::auth())
                .set("X-Experience-API-Version", "2.0.0")
                .call()
                .unwrap_or_else(|e| panic!("GET /statements {params:?} failed: {e}"))
                .into_json()
                .expect("a StatementResult");
            let statements = body["statements"].as_array().expect("statements array");
            ids.extend(
                statements
                    .iter()
                    .map(|s| s["id"].as_str().unwrap_or_default().to_owned()),
            );
            match body["more"].as_str() {
                Some(m) if !m.is_empty() => {
                    let base = self.endpoint.trim_end_matches("/xapi");
                    req = Self::agent().get(&format!("{base}{m}"));
                }
                _ => return ids,
            }
        }
    }

    fn stored_of(&self, id: &str) -> String {
        let s: Value = Self::agent()
            .get(&format!("{}/statements", self.endpoint))
            .query("statementId", id)
            .set("Authorization", &Self::auth())
            .set("X-Experience-API-Version", "2.0.0")
            .call()
            .unwrap_or_else(|e| panic!("GET statementId={id} failed: {e}"))
            .into_json()
            .expect("a statement");
        s["stored"].as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn statement(registration: &str, learner: &str, i: usize) -> Value {
    json!({
        "actor": {"mbox": format!("mailto:{learner}@crash.example")},
        "verb": {"id": format!("http://example.org/verb/{}", i % 3)},
        "object": {"id": format!("http://example.org/module/{}", i % 4)},
        "context": {
            "registration": registration,
            "instructor": {"mbox": "mailto:teacher@crash.example"},
            "contextActivities": {"parent": [{"id": "http://example.org/course"}]}
        }
    })
}

/// Checks every filter against what was acknowledged: exact sets, no duplicates,
/// newest first, and the same with `ascending=true`.
fn assert_every_filter_answers(server: &Server, acknowledged: &[String], registration: &str) {
    let expected: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    let agent = json!({"mbox": "mailto:learner@crash.example"}).to_string();
    let teacher = json!({"mbox": "mailto:teacher@crash.example"}).to_string();
    let filters: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("registration", vec![("registration", registration)]),
        ("agent", vec![("agent", agent.as_str())]),
        (
            "related agent",
            vec![("agent", teacher.as_str()), ("related_agents", "true")],
        ),
        (
            "related activity",
            vec![
                ("activity", "http://example.org/course"),
                ("related_activities", "true"),
            ],
        ),
        (
            "agent and registration",
            vec![("agent", agent.as_str()), ("registration", registration)],
        ),
    ];
    for (name, mut params) in filters {
        params.push(("limit", "37"));
        let ids = server.all_pages(&params);
        let distinct: HashSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(
            distinct.len(),
            ids.len(),
            "{name}: a statement came back twice"
        );
        assert_eq!(
            distinct,
            expected,
            "{name}: the acknowledged statements and the answer differ \
             ({} acknowledged, {} answered)",
            expected.len(),
            ids.len()
        );
        params.push(("ascending", "true"));
        let ascending = server.all_pages(&params);
        let mut reversed = ids.clone();
        reversed.reverse();
        assert_eq!(
            ascending, reversed,
            "{name}: ascending is not the reverse order"
        );
    }
    // Statements of each verb, by the verb filter.
    for v in 0..3 {
        let verb = format!("http://example.org/verb/{v}");
        let ids = server.all_pages(&[("verb", &verb), ("registration", registration)]);
        let want = acknowledged
            .iter()
            .enumerate()
            // Each burst numbers its statements from 0 (verb = number % 3).
            .filter(|(i, _)| (i % BURST) % 3 == v)
            .count();
        assert_eq!(ids.len(), want, "verb {v}: count after restart");
    }
    // Newest first by `stored` (spot check across the whole answer).
    let ids = server.all_pages(&[("registration", registration), ("limit", "50")]);
    let first = server.stored_of(&ids[0]);
    let last = server.stored_of(&ids[ids.len() - 1]);
    assert!(first >= last, "not newest first: {first} then {last}");
}

/// Statements one `post_burst` sends.
const BURST: usize = 340;

fn post_burst(server: &Server, registration: &str) -> Vec<String> {
    let mut acknowledged = Vec::new();
    let mut i = 0;
    // Batches and single statements, as content and the SCORM wrapper send them.
    for _ in 0..6 {
        let batch: Vec<Value> = (0..50)
            .map(|k| statement(registration, "learner", i + k))
            .collect();
        acknowledged.extend(server.post(&Value::Array(batch)));
        i += 50;
    }
    for _ in 0..40 {
        acknowledged.extend(server.post(&statement(registration, "learner", i)));
        i += 1;
    }
    assert_eq!(acknowledged.len(), BURST);
    acknowledged
}

#[test]
fn data_2_4_acknowledged_statements_survive_a_crash_and_answer_every_filter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("lrs.db");
    let registration = "7f9e1c1a-3c59-4c5e-9f0e-2b8d6f1c0a11";

    let server = Server::start(&db);
    let acknowledged = post_burst(&server, registration);
    // Killed before the key index could fold the last statements (it folds after 250 ms
    // or 4,096 statements): the restart must fold them from the statements themselves.
    server.crash();

    let server = Server::start(&db);
    assert_every_filter_answers(&server, &acknowledged, registration);

    // More statements on the recovered store, then a second crash: old and new together.
    let mut more = acknowledged.clone();
    more.extend(post_burst(&server, registration));
    server.crash();
    let server = Server::start(&db);
    assert_every_filter_answers(&server, &more, registration);
}

/// A burst of statements stored in `db`, then the server crashed and the key index file
/// lost entirely; returns the acknowledged ids.
fn stored_with_a_lost_key_index(db: &std::path::Path, registration: &str) -> Vec<String> {
    let server = Server::start(db);
    let acknowledged = post_burst(&server, registration);
    // Let the indexer fold everything, then crash and lose the index file entirely.
    std::thread::sleep(Duration::from_millis(800));
    server.crash();
    for suffix in [".keys", ".keys-wal", ".keys-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            std::fs::remove_file(&p).expect("remove the index file");
        }
    }
    acknowledged
}

#[test]
fn embedded_store_rebuilds_a_lost_key_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("lrs.db");
    let registration = "2b6c9d4e-1f3a-4b7c-8d9e-0a1b2c3d4e5f";
    let acknowledged = stored_with_a_lost_key_index(&db, registration);
    let server = Server::start(&db);
    assert_every_filter_answers(&server, &acknowledged, registration);
}

/// `--sqlite-readers` (LRS_SQLITE_READERS) sets the threads that answer reads. With one,
/// concurrent queries take turns on it while statements are written, and every query
/// gets the full, exact answer; zero readers is refused at start with a usage error
/// naming the option.
#[test]
fn one_reader_thread_answers_concurrent_queries_while_writes_go_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("lrs.db");
    let registration = "5d0c3b2a-9e8f-4a7b-8c6d-1e2f3a4b5c6d";

    let refused = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(format!("sqlite:{}", db.display()))
        .env("LRS_SQLITE_READERS", "0")
        .env("LRS_BOOTSTRAP_KEY", KEY)
        .env("LRS_BOOTSTRAP_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .expect("run the LRS");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "zero readers: {err}");
    assert!(err.contains("--sqlite-readers"), "zero readers: {err}");

    let server = Server::start_with(&db, &[("LRS_SQLITE_READERS", "1")]);
    let acknowledged = post_burst(&server, registration);
    let agent = json!({"mbox": "mailto:learner@crash.example"}).to_string();
    let want: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    std::thread::scope(|scope| {
        // Writes go on meanwhile, for another registration.
        let writer = scope.spawn(|| post_burst(&server, "0e1d2c3b-4a59-4687-9786-a5b4c3d2e1f0"));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..5 {
                        let ids = server.all_pages(&[
                            ("agent", agent.as_str()),
                            ("registration", registration),
                            ("limit", "60"),
                        ]);
                        let got: HashSet<&str> = ids.iter().map(String::as_str).collect();
                        assert_eq!(ids.len(), acknowledged.len(), "duplicates or losses");
                        assert_eq!(got, want, "the answer differs from what was acknowledged");
                    }
                })
            })
            .collect();
        for r in readers {
            r.join().expect("a reading client");
        }
        assert_eq!(writer.join().expect("the writing client").len(), BURST);
    });
}

/// Size of a file, 0 when it does not exist (a truncated or never-made WAL).
fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Under steady writes with readers always present, SQLite's WAL never restarts by
/// itself (a commit restarts it only when no reader uses it): it grew to 1.7 GB during a
/// 1M preload. The store must keep both WAL files near `--sqlite-wal-limit-mb` while
/// writing, without a restart, and lose nothing.
#[test]
fn the_write_ahead_logs_stay_bounded_under_sustained_writes_and_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("lrs.db");
    let registration = "5d0c7a8e-2b1f-4c3d-9e8f-7a6b5c4d3e2f";
    let server = Server::start_with(&db, &[("LRS_SQLITE_WAL_LIMIT_MB", "1")]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers that always hold a snapshot somewhere, as analytics clients do.
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let endpoint = server.endpoint.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let agent = json!({"mbox": "mailto:learner@crash.example"}).to_string();
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let limit = (r + 1) * 7;
                    let _ = Server::agent()
                        .get(&format!("{endpoint}/statements"))
                        .set("Authorization", &Server::auth())
                        .set("X-Experience-API-Version", "2.0.0")
                        .query("agent", &agent)
                        .query("limit", &limit.to_string())
                        .call();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let wal = dir.path().join("lrs.db-wal");
    let keys_wal = dir.path().join("lrs.db.keys-wal");
    let (mut max_wal, mut max_keys_wal) = (0, 0);
    let mut acknowledged = Vec::new();
    for b in 0..360 {
        let batch: Vec<Value> = (0..25)
            .map(|k| statement(registration, "learner", b * 25 + k))
            .collect();
        acknowledged.extend(server.post(&Value::Array(batch)));
        max_wal = max_wal.max(file_len(&wal));
        max_keys_wal = max_keys_wal.max(file_len(&keys_wal));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|h| h.join().expect("reader")).sum();
    assert!(reads > 50, "the readers ran ({reads} queries)");
    // The limit is checked every 50 ms, and a truncation waits for readers: allow a few
    // megabytes of commits in between. Unbounded, these 9,000 statements leave a WAL of
    // about 10 MB (≈ 1.2 KB a statement, 1.2 GB a million).
    const BOUND: u64 = 4 << 20;
    assert!(
        max_wal <= BOUND,
        "statements WAL reached {max_wal} bytes (limit 1 MiB, bound {BOUND})"
    );
    assert!(
        max_keys_wal <= BOUND,
        "key index WAL reached {max_keys_wal} bytes (limit 1 MiB, bound {BOUND})"
    );
    assert_eq!(acknowledged.len(), 9000);
    let served: HashSet<String> = server
        .all_pages(&[("registration", registration), ("limit", "500")])
        .into_iter()
        .collect();
    let expected: HashSet<String> = acknowledged.into_iter().collect();
    assert_eq!(
        served, expected,
        "every acknowledged statement is served once"
    );
}

/// An index lost, or rebuilt whole after an upgrade, is caught up while the server serves
/// when it lacks more than `--sqlite-index-fold-at-start` statements (`0` here): the server
/// listens at once and stores what it is sent, and a filtered query answers either 503
/// with Retry-After and a JSON body (while the catch-up runs) or every statement, never a
/// part of them. Afterwards every filter answers everything, old and new.
#[test]
fn a_lost_key_index_is_rebuilt_while_the_server_serves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("lrs.db");
    let registration = "5d1f0a3c-6b2e-4c8d-9a7f-3e4b5c6d7e8f";
    let mut acknowledged = stored_with_a_lost_key_index(&db, registration);
    let log_path = dir.path().join("lrs.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let server = Server::start_logging(
        &db,
        &[("LRS_SQLITE_INDEX_FOLD_AT_START", "0"), ("LRS_LOG", "info")],
        Stdio::from(log),
    );
    let mut unavailable = 0;
    // Numbered as a second burst, so that `assert_every_filter_answers` knows their verbs.
    for k in 0..BURST {
        acknowledged.extend(server.post(&statement(registration, "learner", k)));
        let answer = Server::agent()
            .get(&format!("{}/statements", server.endpoint))
            .query("registration", registration)
            .query("limit", "1000")
            .set("Authorization", &Server::auth())
            .set("X-Experience-API-Version", "2.0.0")
            .call();
        match answer {
            Ok(r) => {
                let body: Value = r.into_json().expect("a StatementResult");
                let ids: HashSet<&str> = body["statements"]
                    .as_array()
                    .expect("statements")
                    .iter()
                    .filter_map(|s| s["id"].as_str())
                    .collect();
                let want: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
                assert_eq!(
                    ids, want,
                    "a filtered query answered a part of the statements"
                );
                break;
            }
            Err(ureq::Error::Status(503, r)) => {
                assert!(
                    r.header("Retry-After")
                        .is_some_and(|s| s.parse::<u32>().is_ok()),
                    "503 without Retry-After"
                );
                let body: Value = r.into_json().expect("a JSON error body");
                assert!(
                    body.to_string().contains("key index"),
                    "the 503 does not say why: {body}"
                );
                unavailable += 1;
            }
            Err(e) => panic!("GET /statements during the catch-up: {e}"),
        }
        assert!(k + 1 < BURST, "the catch-up did not end");
    }
    eprintln!("{unavailable} queries answered 503 while the index was caught up");
    assert_every_filter_answers(&server, &acknowledged, registration);
    // It was the indexer, in the background, that folded them (the log says so), not
    // the start before listening.
    let log = std::fs::read_to_string(&log_path).expect("the log");
    assert!(
        log.contains(&format!(
            "folding the keys of {BURST} statements into the key index while serving"
        )) && log.contains("the key index answers for every statement again"),
        "{log}"
    );
}
