//! Test harness: starts one LRS per test (or points at an external one) and sends
//! requests to it.
//!
//! Modes, chosen from the environment of the test run:
//! - default: spawn the `karmayogi-lrs` binary of this package on `127.0.0.1:0` with a
//!   fresh SQLite file in a temporary directory;
//! - `LRS_TEST_STORE=mongodb://host:port`: spawn the binary on that MongoDB, one fresh
//!   database per test;
//! - `LRS_ENDPOINT=http://host/xapi`, `LRS_KEY`, `LRS_SECRET`: spawn nothing and run
//!   against that LRS (tests that need to configure or administer the server panic).
//!
//! Typical use from a test module:
//! ```ignore
//! use crate::harness::{Lrs, VERSIONS};
//!
//! #[test]
//! fn comm_x_y_something() {
//!     let lrs = Lrs::start();
//!     for v in VERSIONS {
//!         let r = lrs.get("/statements").query("limit", "1").version(v).send();
//!         r.assert_status(200).assert_version(v);
//!     }
//! }
//! ```
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The versions this suite exercises, as sent in `X-Experience-API-Version`.
pub const VERSIONS: [&str; 2] = ["1.0.3", "2.0.0"];

/// The version the LRS answers with when the request had no (or an unusable) header.
pub const DEFAULT_VERSION: &str = "2.0.0";

/// The header name, as the standard spells it.
pub const VERSION_HEADER: &str = "X-Experience-API-Version";

const BIN: &str = env!("CARGO_BIN_EXE_karmayogi-lrs");
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `Stop::Term` waits for the clean exit (the server lets in-flight requests
/// finish for up to 30 s).
const TERM_TIMEOUT: Duration = Duration::from_secs(40);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const TAIL_LINES: usize = 200;

/// The response header value a request carrying version `requested` must get back
/// (Communication 3.3.s3.b2: the latest patch version of the version in force).
pub fn answered_version(requested: &str) -> &'static str {
    if requested == "1.0" || requested.starts_with("1.0.") {
        "1.0.3"
    } else {
        "2.0.0"
    }
}

type Tail = Arc<Mutex<VecDeque<String>>>;

fn push_tail(tail: &Tail, line: String) {
    if let Ok(mut t) = tail.lock() {
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

fn tail_text(tail: &Tail) -> String {
    tail.lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// Environment of a child process: the caller's, minus every `LRS_*` variable (so a
/// developer's shell settings never leak into a test server), plus `extra`.
pub fn clean_command(extra_env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LRS_") {
            cmd.env_remove(&k);
        }
    }
    // Plain server logs in failure messages.
    cmd.env("NO_COLOR", "1");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

fn new_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .redirects(0)
        .try_proxy_from_env(false)
        .build()
}

fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `mongodb://host:port[/][?opts]` + a database name → `mongodb://host:port/name[?opts]`.
fn mongo_store(uri: &str, database: &str) -> String {
    let (base, query) = match uri.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (uri, None),
    };
    // Drop a database already named in the URI; keep the host list.
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let hosts_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut s = format!("{}/{}", &base[..hosts_end], database);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// Builder for a spawned server with extra command-line arguments or environment.
#[derive(Default, Clone)]
pub struct LrsBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl LrsBuilder {
    /// One extra argument to `karmayogi-lrs serve`, e.g. `.arg("--max-body-bytes").arg("1024")`.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// One extra environment variable of the server process.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn start(self) -> Lrs {
        Lrs::start_with(self)
    }
}

/// How `Lrs::stop` and `Lrs::restart` end the server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: the graceful shutdown a service manager asks for; the server must exit
    /// cleanly.
    Term,
    /// SIGKILL: a crash; no shutdown code of the server runs.
    Kill,
}

/// A server this harness spawned, and what it needs to spawn it again on the same store.
struct Spawned {
    /// The current process (`None` only before the first launch).
    child: Option<Child>,
    /// SQLite directory (removed on drop, after the server stopped); kept across restarts.
    dir: Option<tempfile::TempDir>,
    store: String,
    /// Extra `serve` arguments.
    args: Vec<String>,
    /// Environment of the server: the bootstrap credential and the extra variables.
    env: Vec<(String, String)>,
    /// Output of every process so far (restarts are marked).
    stderr: Tail,
    stdout: Tail,
}

/// One LRS under test.
pub struct Lrs {
    endpoint: String,
    key: String,
    secret: String,
    agent: ureq::Agent,
    spawned: Option<Spawned>,
}

static SERVERS: AtomicUsize = AtomicUsize::new(0);

impl Lrs {
    /// The LRS for one test, with default settings.
    pub fn start() -> Lrs {
        Lrs::start_with(LrsBuilder::default())
    }

    /// A server with extra settings: `Lrs::builder().arg("--max-body-bytes").arg("1024").start()`.
    pub fn builder() -> LrsBuilder {
        LrsBuilder::default()
    }

    fn start_with(opts: LrsBuilder) -> Lrs {
        let agent = new_agent();
        if let Ok(endpoint) = std::env::var("LRS_ENDPOINT") {
            if !opts.args.is_empty() || !opts.env.is_empty() {
                panic!(
                    "this test needs a spawned server (it sets server options {:?} / env {:?}), \
                     but LRS_ENDPOINT is set: unset LRS_ENDPOINT to run it",
                    opts.args, opts.env
                );
            }
            let key =
                std::env::var("LRS_KEY").expect("LRS_ENDPOINT is set: LRS_KEY must be set too");
            let secret = std::env::var("LRS_SECRET")
                .expect("LRS_ENDPOINT is set: LRS_SECRET must be set too");
            return Lrs {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                key,
                secret,
                agent,
                spawned: None,
            };
        }

        let n = SERVERS.fetch_add(1, Ordering::SeqCst);
        // Every server gets its own directory: the SQLite files, and the audit log's
        // signing key whatever the store (never the working directory's `./data`).
        let dir = tempfile::Builder::new()
            .prefix("lrs-conformance-")
            .tempdir()
            .expect("create temp dir");
        let store = match std::env::var("LRS_TEST_STORE") {
            Ok(uri) if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") => {
                let token = random_token();
                let db = format!("lrs_test_{}_{}_{}", std::process::id(), n, &token[..12]);
                mongo_store(&uri, &db)
            }
            Ok(other) if !other.is_empty() => {
                panic!(
                    "LRS_TEST_STORE must be a mongodb:// URI (got `{other}`); unset it for SQLite"
                )
            }
            _ => format!("sqlite:{}", dir.path().join("lrs.db").display()),
        };
        let audit_key = dir.path().join("audit.key").display().to_string();
        let dir = Some(dir);
        let key = format!("test-{}", &random_token()[..16]);
        let secret = random_token();
        let mut env = vec![
            ("LRS_BOOTSTRAP_KEY".to_owned(), key.clone()),
            ("LRS_BOOTSTRAP_SECRET".to_owned(), secret.clone()),
            ("LRS_AUDIT_KEY".to_owned(), audit_key),
        ];
        env.extend(opts.env.iter().cloned());
        let mut spawned = Spawned {
            child: None,
            dir,
            store,
            args: opts.args,
            env,
            stderr: Tail::default(),
            stdout: Tail::default(),
        };
        let endpoint = spawned.launch();
        Lrs {
            endpoint,
            key,
            secret,
            agent,
            spawned: Some(spawned),
        }
    }

    /// Stops the spawned server process, leaving its store (SQLite files or MongoDB
    /// database) as that stop leaves it, and returns its exit status. `Stop::Term` must
    /// end in a clean exit (status 0) within `TERM_TIMEOUT`, or this panics with the
    /// server's log. Requests fail until `start_again`.
    pub fn stop(&mut self, how: Stop) -> ExitStatus {
        self.require_spawned("it stops the server process");
        // Fresh connections afterwards: pooled keep-alive connections belong to this
        // process (and a graceful stop has no idle connection to wait for).
        self.agent = new_agent();
        let s = self.spawned.as_mut().expect("spawned");
        let status = s.stop(how);
        let note = format!("--- harness: server stopped by {how:?} ({status}) ---");
        push_tail(&s.stdout, note.clone());
        push_tail(&s.stderr, note);
        status
    }

    /// Starts a new server process on the same store, with the same bootstrap credential,
    /// arguments and environment as the first one; the endpoint (a new port) is updated.
    /// Panics when the previous process is still running.
    pub fn start_again(&mut self) {
        self.require_spawned("it restarts the server on the same store");
        let s = self.spawned.as_mut().expect("spawned");
        if let Some(c) = s.child.as_mut() {
            if let Ok(None) = c.try_wait() {
                panic!("start_again: the server is still running; stop it first");
            }
        }
        self.endpoint = s.launch();
    }

    /// `start_again` with `args` appended to the server's `serve` arguments (kept for
    /// later restarts too), e.g. another `--audit-key`.
    pub fn start_again_with_args(&mut self, args: &[&str]) {
        self.require_spawned("it restarts the server with other arguments");
        let s = self.spawned.as_mut().expect("spawned");
        s.args.extend(args.iter().map(|a| a.to_string()));
        self.start_again();
    }

    /// Stops the server (`Stop::Kill`: a crash; `Stop::Term`: a clean shutdown) and starts a
    /// new process on the same store: `stop` then `start_again`.
    pub fn restart(&mut self, how: Stop) {
        self.stop(how);
        self.start_again();
    }

    /// The spawned server's own directory (SQLite files, the audit key `audit.key`).
    pub fn data_dir(&self) -> &std::path::Path {
        self.require_spawned("it reads the server's files");
        self.spawned
            .as_ref()
            .and_then(|s| s.dir.as_ref())
            .map(|d| d.path())
            .expect("a spawned server has a directory")
    }

    /// Whether this harness started (and so can configure) the server.
    /// The server process's id, when this harness spawned it (to read its memory use).
    pub fn pid(&self) -> Option<u32> {
        self.spawned
            .as_ref()
            .and_then(|s| s.child.as_ref())
            .map(|c| c.id())
    }

    pub fn spawned(&self) -> bool {
        self.spawned.is_some()
    }

    /// Panics unless the server was spawned by this harness (`why` says what the test needs).
    pub fn require_spawned(&self, why: &str) {
        if !self.spawned() {
            panic!("this test needs a server spawned by the harness ({why}); unset LRS_ENDPOINT to run it");
        }
    }

    /// The xAPI endpoint, e.g. `http://127.0.0.1:PORT/xapi` (no trailing slash).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The full URL of `path`: absolute URLs unchanged, anything else relative to the
    /// endpoint (`"/statements"` and `"statements"` are the same).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.is_empty() {
            self.endpoint.clone()
        } else {
            format!("{}/{}", self.endpoint, path.trim_start_matches('/'))
        }
    }

    /// The full URL of a path outside the xAPI endpoint (`/scorm/packages`, `/admin/…`).
    pub fn root_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.endpoint.trim_end_matches("/xapi"),
            path.trim_start_matches('/')
        )
    }

    /// The credential requests use by default (scope `all`).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The `--store` argument of the spawned server.
    pub fn store(&self) -> Option<&str> {
        self.spawned.as_ref().map(|s| s.store.as_str())
    }

    /// Creates another Basic credential with these xAPI scopes (e.g. `&["statements/read"]`)
    /// through `karmayogi-lrs credentials create`; returns (key, secret).
    pub fn credential(&self, scopes: &[&str]) -> (String, String) {
        self.require_spawned("it creates credentials with `karmayogi-lrs credentials create`");
        let store = self.store().expect("spawned");
        let out = clean_command(&[])
            .args([
                "credentials",
                "create",
                "--store",
                store,
                "--name",
                "test",
                "--scopes",
                &scopes.join(","),
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN} credentials create: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            panic!(
                "`credentials create --scopes {}` failed ({}):\n{stdout}\n{stderr}",
                scopes.join(","),
                out.status
            );
        }
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
                .unwrap_or_else(|| {
                    panic!("no `{name}` line in `credentials create` output:\n{stdout}\n{stderr}")
                })
        };
        (field("key:"), field("secret:"))
    }

    /// Runs `karmayogi-lrs ARGS… --store STORE` on this server's store; panics when it
    /// fails, returns its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        self.require_spawned("it runs the command line on the server's store");
        let store = self.store().expect("spawned");
        let out = clean_command(&[])
            .args(args)
            .args(["--store", store])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN} {}: {e}", args.join(" ")));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            panic!(
                "`{}` failed ({}):\n{stdout}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        stdout
    }

    /// Creates a Basic credential in `department` (which must exist) with these scopes
    /// through the command line; returns (key, secret).
    pub fn department_credential(&self, department: &str, scopes: &[&str]) -> (String, String) {
        let stdout = self.cli(&[
            "credentials",
            "create",
            "--name",
            "test",
            "--scopes",
            &scopes.join(","),
            "--department",
            department,
        ]);
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
                .unwrap_or_else(|| panic!("no `{name}` line in `credentials create`:\n{stdout}"))
        };
        (field("key:"), field("secret:"))
    }

    /// The last lines the spawned server wrote to stdout (e.g. `metrics listening on …`,
    /// printed before `listening on …`).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.spawned
            .as_ref()
            .and_then(|s| s.stdout.lock().ok().map(|t| t.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// The last lines the spawned server wrote to stderr.
    pub fn server_log(&self) -> String {
        self.spawned
            .as_ref()
            .map(|s| tail_text(&s.stderr))
            .unwrap_or_default()
    }

    /// A request with the defaults: Basic auth with the bootstrap credential and
    /// `X-Experience-API-Version: 2.0.0`.
    pub fn request(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            lrs: self,
            method: method.to_ascii_uppercase(),
            url: self.url(path),
            query: Vec::new(),
            headers: Vec::new(),
            auth: Auth::Basic(self.key.clone(), self.secret.clone()),
            version: Some(DEFAULT_VERSION.to_owned()),
            body: None,
            chunked: false,
        }
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.request("GET", path)
    }

    pub fn head(&self, path: &str) -> Req<'_> {
        self.request("HEAD", path)
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.request("POST", path)
    }

    pub fn put(&self, path: &str) -> Req<'_> {
        self.request("PUT", path)
    }

    pub fn delete(&self, path: &str) -> Req<'_> {
        self.request("DELETE", path)
    }

    pub fn options(&self, path: &str) -> Req<'_> {
        self.request("OPTIONS", path)
    }
}

impl Spawned {
    fn diagnostics(&self) -> String {
        format!(
            "command: {BIN} serve --listen 127.0.0.1:0 --store {} {}\n--- server stdout (tail) ---\n{}\n--- server stderr (tail) ---\n{}",
            self.store,
            self.args.join(" "),
            tail_text(&self.stdout),
            tail_text(&self.stderr)
        )
    }

    /// Stops the current process, then panics with `message` and the server's log.
    fn fail(&mut self, message: String) -> ! {
        if let Some(c) = self.child.as_mut() {
            stop_child(c);
        }
        panic!("{message}\n{}", self.diagnostics());
    }

    /// Spawns `karmayogi-lrs serve` on the store and waits for its `listening on …` line;
    /// returns the xAPI endpoint. Panics (after stopping the process) when it does not
    /// start.
    fn launch(&mut self) -> String {
        let mut cmd = clean_command(&self.env);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--store", &self.store])
            .args(&self.args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        {
            let pipe = child.stderr.take().expect("stderr piped");
            let tail = Arc::clone(&self.stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    match line {
                        Ok(l) => push_tail(&tail, l),
                        Err(_) => break,
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel::<String>();
        {
            let pipe = child.stdout.take().expect("stdout piped");
            let tail = Arc::clone(&self.stdout);
            std::thread::spawn(move || {
                // Keeps draining stdout for the life of the server.
                for line in BufReader::new(pipe).lines() {
                    match line {
                        Ok(l) => {
                            push_tail(&tail, l.clone());
                            let _ = tx.send(l);
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        let address = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.trim().strip_prefix("listening on ") {
                        break addr.trim().trim_end_matches('/').to_owned();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.fail(format!(
                    "the LRS did not print `listening on …` within {START_TIMEOUT:?}"
                )),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the server exited (or closed stdout) before listening.
                    let status = self.child.as_mut().and_then(wait_briefly);
                    std::thread::sleep(Duration::from_millis(100)); // let stderr drain
                    self.fail(format!(
                        "the LRS closed stdout before listening (exit status: {status:?})"
                    ))
                }
            }
        };
        if !address.starts_with("http://") {
            self.fail(format!(
                "unexpected listening line: `listening on {address}`"
            ));
        }
        format!("{address}/xapi")
    }

    /// Ends the current process as `how` says and reaps it.
    fn stop(&mut self, how: Stop) -> ExitStatus {
        let Some(child) = self.child.as_mut() else {
            panic!("stop: no server process was started");
        };
        if let Ok(Some(status)) = child.try_wait() {
            self.fail(format!(
                "stop({how:?}): the server is not running (it exited: {status})"
            ));
        }
        match how {
            Stop::Kill => {
                if let Err(e) = child.kill() {
                    self.fail(format!("cannot SIGKILL the server: {e}"));
                }
                child
                    .wait()
                    .unwrap_or_else(|e| panic!("cannot reap the killed server: {e}"))
            }
            Stop::Term => {
                let sent = signal(child, "TERM");
                if !sent {
                    self.fail("cannot send SIGTERM to the server".to_owned());
                }
                let deadline = Instant::now() + TERM_TIMEOUT;
                let status = loop {
                    match child.try_wait() {
                        Ok(Some(s)) => break s,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        _ => self.fail(format!(
                            "the server did not exit within {TERM_TIMEOUT:?} of SIGTERM"
                        )),
                    }
                };
                if !status.success() {
                    std::thread::sleep(Duration::from_millis(100)); // let stderr drain
                    self.fail(format!(
                        "after SIGTERM the server must exit cleanly, but it exited with {status}"
                    ));
                }
                status
            }
        }
    }
}

/// Sends `SIG<name>` to the child with kill(1) (no libc in this crate); whether it was sent.
fn signal(child: &Child, name: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_briefly(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// SIGTERM, up to `STOP_TIMEOUT` for a clean exit, then SIGKILL.
fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    signal(child, "TERM");
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Lrs {
    fn drop(&mut self) {
        if let Some(s) = self.spawned.as_mut() {
            if std::thread::panicking() {
                eprintln!("--- LRS server stderr (tail) ---\n{}", tail_text(&s.stderr));
            }
            if let Some(c) = s.child.as_mut() {
                stop_child(c);
            }
            // The TempDir (if any) is removed when `s.dir` drops, after the server stopped.
            drop(s.dir.take());
        }
    }
}

#[derive(Clone)]
enum Auth {
    None,
    Basic(String, String),
}

/// One request under construction; `send()` performs it.
#[must_use = "a request does nothing until `.send()`"]
pub struct Req<'a> {
    lrs: &'a Lrs,
    method: String,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    auth: Auth,
    version: Option<String>,
    body: Option<Vec<u8>>,
    chunked: bool,
}

impl<'a> Req<'a> {
    /// The `X-Experience-API-Version` header value to send (default `2.0.0`).
    pub fn version(mut self, v: &str) -> Self {
        self.version = Some(v.to_owned());
        self
    }

    /// Send no `X-Experience-API-Version` header.
    pub fn no_version(mut self) -> Self {
        self.version = None;
        self
    }

    /// Basic auth with this key and secret instead of the bootstrap credential.
    pub fn auth(mut self, key: &str, secret: &str) -> Self {
        self.auth = Auth::Basic(key.to_owned(), secret.to_owned());
        self
    }

    /// Send no `Authorization` header.
    pub fn no_auth(mut self) -> Self {
        self.auth = Auth::None;
        self
    }

    /// A raw `Authorization` header value (replaces the default Basic credential).
    pub fn authorization(mut self, value: &str) -> Self {
        self.auth = Auth::None;
        self.headers
            .push(("Authorization".to_owned(), value.to_owned()));
        self
    }

    /// Any other request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A query parameter (percent-encoded when sent).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body, `Content-Type: application/json`.
    pub fn json(self, v: &Value) -> Self {
        self.body(
            "application/json",
            serde_json::to_vec(v).expect("serialise JSON"),
        )
    }

    /// A body with this content type.
    pub fn body(mut self, content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = Some(bytes.into());
        self
    }

    /// A body with no content type header.
    pub fn raw_body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some(bytes.into());
        self
    }

    /// Send the body with `Transfer-Encoding: chunked` (no `Content-Length`).
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// The full URL, query string included.
    pub fn full_url(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let mut u = self.url.clone();
        u.push(if u.contains('?') { '&' } else { '?' });
        let q: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        u.push_str(&q.join("&"));
        u
    }

    fn all_headers(&self) -> Vec<(String, String)> {
        let mut h = Vec::new();
        if let Auth::Basic(k, s) = &self.auth {
            h.push(("Authorization".to_owned(), basic(k, s)));
        }
        if let Some(v) = &self.version {
            h.push((VERSION_HEADER.to_owned(), v.clone()));
        }
        h.extend(self.headers.iter().cloned());
        h
    }

    /// Performs the request. 4xx/5xx are ordinary responses; a transport failure panics
    /// (with the server's log). HEAD requests go over a raw connection so a body the
    /// server wrongly sends is seen.
    pub fn send(self) -> Response {
        let url = self.full_url();
        let headers = self.all_headers();
        if self.method == "HEAD" {
            return self.send_raw(&url, &headers);
        }
        let mut req = self.lrs.agent.request(&self.method, &url);
        for (k, v) in &headers {
            req = req.set(k, v);
        }
        let result = match (&self.body, self.chunked) {
            (Some(b), true) => req.send(std::io::Cursor::new(b.clone())),
            (Some(b), false) => req.send_bytes(b),
            (None, _) => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                panic!(
                    "{} {url}: transport error: {t}\n--- server stderr ---\n{}",
                    self.method,
                    self.lrs.server_log()
                )
            }
        };
        let status = resp.status();
        let mut hs = Vec::new();
        for name in resp.headers_names() {
            for v in resp.all(&name) {
                hs.push((name.clone(), v.to_owned()));
            }
        }
        let mut body = Vec::new();
        if let Err(e) = resp.into_reader().read_to_end(&mut body) {
            panic!(
                "{} {url}: reading the response body failed: {e}",
                self.method
            );
        }
        Response {
            method: self.method,
            url,
            status,
            headers: hs,
            body,
        }
    }

    /// HTTP/1.1 over a fresh TCP connection with `Connection: close`; everything after
    /// the header block is the body.
    fn send_raw(&self, url: &str, headers: &[(String, String)]) -> Response {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("raw requests need an http:// URL: {url}"));
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let mut stream =
            TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).ok();
        stream.set_write_timeout(Some(REQUEST_TIMEOUT)).ok();
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n",
            self.method
        );
        for (k, v) in headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        if let Some(b) = &self.body {
            let _ = write!(head, "Content-Length: {}\r\n", b.len());
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some(b) = &self.body {
            bytes.extend_from_slice(b);
        }
        stream
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{} {url}: write failed: {e}", self.method));
        let mut raw = Vec::new();
        if let Err(e) = stream.read_to_end(&mut raw) {
            if raw.is_empty() {
                panic!(
                    "{} {url}: read failed: {e}\n--- server stderr ---\n{}",
                    self.method,
                    self.lrs.server_log()
                );
            }
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "{} {url}: no complete header block in {:?}",
                    self.method,
                    String::from_utf8_lossy(&raw)
                )
            });
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let body = raw[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{} {url}: bad status line `{status_line}`", self.method));
        let hs = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Response {
            method: self.method.clone(),
            url: url.to_owned(),
            status,
            headers: hs,
            body,
        }
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `Basic base64(key:secret)`.
pub fn basic(key: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    )
}

/// A response: status, headers (case-insensitive lookup) and the body as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (repeated headers).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The comma-separated tokens of every `name` header, trimmed and lower-cased.
    pub fn header_tokens(&self, name: &str) -> Vec<String> {
        self.headers_named(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics (with the response) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e})\n{}",
                self.summary(),
                self.describe()
            )
        })
    }

    /// `GET http://… → 400`.
    pub fn summary(&self) -> String {
        format!("{} {} → {}", self.method, self.url, self.status)
    }

    /// Everything about the response, for failure messages.
    pub fn describe(&self) -> String {
        let mut s = self.summary();
        for (k, v) in &self.headers {
            let _ = write!(s, "\n  {k}: {v}");
        }
        let text = self.text();
        let shown: String = text.chars().take(2000).collect();
        let _ = write!(s, "\n  body ({} bytes): {shown}", self.body.len());
        s
    }

    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "expected status {expected}\n{}",
            self.describe()
        );
        self
    }

    /// A 2xx status.
    pub fn assert_success(&self) -> &Self {
        assert!(
            (200..300).contains(&self.status),
            "expected a 2xx status\n{}",
            self.describe()
        );
        self
    }

    /// `X-Experience-API-Version` present and equal to `expected`.
    pub fn assert_version(&self, expected: &str) -> &Self {
        match self.header(VERSION_HEADER) {
            Some(v) => assert_eq!(
                v,
                expected,
                "wrong {VERSION_HEADER} response header\n{}",
                self.describe()
            ),
            None => panic!(
                "no {VERSION_HEADER} response header (Communication 3.3.s3.b1)\n{}",
                self.describe()
            ),
        }
        self
    }

    pub fn assert_empty_body(&self) -> &Self {
        assert!(
            self.body.is_empty(),
            "expected no message body\n{}",
            self.describe()
        );
        self
    }

    pub fn assert_header(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no `{name}` response header\n{}", self.describe()))
    }

    /// Header `name` lists `token` (comma-separated, case-insensitive).
    pub fn assert_header_lists(&self, name: &str, token: &str) -> &Self {
        let tokens = self.header_tokens(name);
        assert!(
            tokens.iter().any(|t| t.eq_ignore_ascii_case(token)),
            "`{name}` does not list `{token}`\n{}",
            self.describe()
        );
        self
    }

    /// The error shape of this LRS: status `expected`, a JSON body
    /// `{"error": {"status": expected, "message": non-empty string, "path"?: string,
    /// "requirement"?: string}}`. Returns the `error` object.
    pub fn assert_error(&self, expected: u16) -> Value {
        self.assert_status(expected);
        self.assert_error_body()
    }

    /// The error body shape, whatever the (error) status.
    pub fn assert_error_body(&self) -> Value {
        assert!(
            self.status >= 400,
            "expected an error status\n{}",
            self.describe()
        );
        let ct = self
            .header("Content-Type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            ct.starts_with("application/json"),
            "error Content-Type is not application/json\n{}",
            self.describe()
        );
        let body = self.json();
        let err = body
            .get("error")
            .filter(|e| e.is_object())
            .unwrap_or_else(|| panic!("error body has no `error` object\n{}", self.describe()))
            .clone();
        assert_eq!(
            err.get("status").and_then(Value::as_u64),
            Some(u64::from(self.status)),
            "`error.status` must equal the HTTP status\n{}",
            self.describe()
        );
        let message = err.get("message").and_then(Value::as_str);
        assert!(
            message.is_some_and(|m| !m.trim().is_empty()),
            "`error.message` must be a non-empty string\n{}",
            self.describe()
        );
        for opt in ["path", "requirement"] {
            if let Some(v) = err.get(opt) {
                assert!(
                    v.is_string(),
                    "`error.{opt}` must be a string when present\n{}",
                    self.describe()
                );
            }
        }
        err
    }
}

/// A minimal valid statement (valid under 1.0.3 and 2.0.0) with a fresh id.
pub fn statement() -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "actor": {
            "objectType": "Agent",
            "name": "Conformance Tester",
            "mbox": "mailto:conformance-tester@example.com"
        },
        "verb": {
            "id": "http://adlnet.gov/expapi/verbs/experienced",
            "display": { "en-US": "experienced" }
        },
        "object": {
            "objectType": "Activity",
            "id": "http://example.com/activities/conformance-test"
        }
    })
}

/// A fresh UUID as a string.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The database a `mongodb://…/db` store URI names, for tests that look inside it.
pub async fn mongo_db(uri: &str) -> mongodb::Database {
    mongodb::Client::with_uri_str(uri)
        .await
        .expect("a MongoDB client")
        .default_database()
        .expect("a database in the store URI")
}
