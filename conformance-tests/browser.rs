//! Runs a script of `browser-tests/` (Node.js, playwright-core, Debian's Chromium) against
//! the test's own LRS, so that an ordinary test can check what a person sees in a real
//! browser:
//!
//! ```ignore
//! let lrs = Lrs::start();
//! run_script(&lrs, "front-door.mjs");
//! BrowserRun::new(&lrs, "console.mjs").env("LEARNERS", "3").timeout(Duration::from_secs(60)).run();
//! ```
//!
//! The script gets `LRS_BASE_URL` (`http://127.0.0.1:PORT`), `LRS_XAPI_ENDPOINT`
//! (`…/xapi/`), `LRS_KEY` and `LRS_SECRET` (the harness's bootstrap credential, scopes
//! `all` and `admin`), `BROWSER_ARTIFACTS` (`target/browser-artifacts/<script>/<store>/`,
//! emptied first: screenshots go there) and `CHROMIUM`. The test fails, with the script's
//! output, when the script fails or outlives its timeout, and fails (never skips) when
//! Chromium, Node.js or `browser-tests/node_modules` is missing, saying how to install it.
#![allow(dead_code)]

use crate::harness::Lrs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a script may run unless `BrowserRun::timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

const INSTALL: &str = "`./scripts/test` installs everything the browser tests need; by hand: \
     `apt-get install chromium chromium-driver` (Debian's Chromium; never `npx playwright install`) \
     and `npm ci` in browser-tests/";

/// The repository's `browser-tests/` folder.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser-tests")
}

/// The Chromium the scripts drive: `CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// `target/` of this build (`CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Panics unless Node.js, Chromium and the scripts' packages are there.
fn require_tools(dir: &Path) {
    let browser = chromium();
    if !browser.is_file() {
        panic!(
            "the browser tests need Chromium at {} (set CHROMIUM to use another): {INSTALL}",
            browser.display()
        );
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`node --version` failed ({}): the browser tests need Node.js 20 or later",
            o.status
        ),
        Err(e) => panic!("cannot run `node` ({e}): the browser tests need Node.js 20 or later"),
    }
    for package in ["playwright-core", "axe-core"] {
        if !dir
            .join("node_modules")
            .join(package)
            .join("package.json")
            .is_file()
        {
            panic!(
                "{}/node_modules/{package} is missing: {INSTALL}",
                dir.display()
            );
        }
    }
}

/// What a script printed, and where its artifacts are.
#[derive(Debug)]
pub struct BrowserOutput {
    pub stdout: String,
    pub stderr: String,
    /// `BROWSER_ARTIFACTS` of the run.
    pub artifacts: PathBuf,
}

impl BrowserOutput {
    /// The path of screenshot `name` (`name.png`); panics when the script did not take it.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let p = self.artifacts.join(format!("{name}.png"));
        let ok = std::fs::read(&p).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(
            ok,
            "no PNG screenshot {} (the script's output:\n{}\n{})",
            p.display(),
            self.stdout,
            self.stderr
        );
        p
    }
}

/// One run of a browser script against an LRS.
#[must_use = "a BrowserRun does nothing until `.run()`"]
pub struct BrowserRun<'a> {
    lrs: &'a Lrs,
    script: String,
    env: Vec<(String, String)>,
    timeout: Duration,
    /// The artifacts folder's name when not the script's (tests sharing one script).
    artifacts: Option<String>,
}

impl<'a> BrowserRun<'a> {
    /// `script` is a file name in `browser-tests/`, e.g. `"front-door.mjs"`.
    pub fn new(lrs: &'a Lrs, script: &str) -> Self {
        BrowserRun {
            lrs,
            script: script.to_owned(),
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            artifacts: None,
        }
    }

    /// Screenshots go to `target/browser-artifacts/<name>/<store>/` instead of the
    /// script's name (for tests that run one script on different inputs).
    pub fn artifacts(mut self, name: &str) -> Self {
        self.artifacts = Some(name.to_owned());
        self
    }

    /// One more environment variable for the script.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// How long the script may take (it is killed, with its browser, past that).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Runs the script; panics with its output unless it exits with status 0.
    pub fn run(self) -> BrowserOutput {
        let dir = scripts_dir();
        let script = dir.join(&self.script);
        if !script.is_file() {
            panic!("no browser script {}", script.display());
        }
        require_tools(&dir);

        let endpoint = self.lrs.endpoint().to_owned();
        let base = endpoint
            .strip_suffix("/xapi")
            .unwrap_or_else(|| panic!("the endpoint {endpoint} does not end in /xapi"))
            .to_owned();
        let store = match self.lrs.store() {
            Some(s) if s.starts_with("mongodb") => "mongodb",
            Some(_) => "sqlite",
            None => "external",
        };
        let stem = self
            .script
            .rsplit_once('.')
            .map_or(self.script.as_str(), |(s, _)| s);
        let artifacts = target_dir()
            .join("browser-artifacts")
            .join(self.artifacts.as_deref().unwrap_or(stem))
            .join(store);
        // Only this run's screenshots: a stale one cannot pass for a new one.
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", artifacts.display()));

        let mut cmd = Command::new("node");
        cmd.arg(&script).current_dir(&dir);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("LRS_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("LRS_BASE_URL", &base)
            .env("LRS_XAPI_ENDPOINT", format!("{endpoint}/"))
            .env("LRS_KEY", self.lrs.key())
            .env("LRS_SECRET", self.lrs.secret())
            .env("BROWSER_ARTIFACTS", &artifacts)
            .env("CHROMIUM", chromium())
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // A group of its own, so that a timeout ends Node.js and anything it started in its
        // group. Playwright starts Chromium in a group of Chromium's own; Chromium exits
        // when Node.js dies and its DevTools pipe closes (seen here with SIGKILL).
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `node {}`: {e}", script.display()));
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let readers = [
            (
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
                Arc::clone(&out),
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
                Arc::clone(&err),
            ),
        ]
        .map(|(pipe, keep)| {
            let name = self.script.clone();
            std::thread::spawn(move || {
                let Some(pipe) = pipe else { return };
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    // Streamed as it comes (the test runner shows it with the test's output).
                    eprintln!("[{name}] {line}");
                    if let Ok(mut k) = keep.lock() {
                        k.push_str(&line);
                        k.push('\n');
                    }
                }
            })
        });

        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if started.elapsed() < self.timeout => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => {
                    // The whole group of Node.js.
                    let _ = Command::new("kill")
                        .arg("-KILL")
                        .arg(format!("-{}", child.id()))
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                    let _ = child.wait();
                    break None;
                }
                Err(e) => panic!("waiting for `node {}`: {e}", self.script),
            }
        };
        // Never signal the group once Node.js has been reaped: its number is free again,
        // and on a machine whose pids wrap at 32768 it can be another process's group by
        // then (a signal to it once killed the shell that ran the tests). Something the
        // script left running may hold the output pipes open: the readers get a few
        // seconds, then are left behind.
        let deadline = Instant::now() + Duration::from_secs(5);
        for r in readers {
            while !r.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
        let stdout = out.lock().map(|s| s.clone()).unwrap_or_default();
        let stderr = err.lock().map(|s| s.clone()).unwrap_or_default();
        let failure = match status {
            Some(s) if s.success() => None,
            Some(s) => Some(format!("exited with {s}")),
            None => Some(format!(
                "did not finish within {:?} and was killed",
                self.timeout
            )),
        };
        if let Some(why) = failure {
            panic!(
                "browser script {} {why} (after {:.1} s)\nartifacts: {}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}--- LRS server log (tail) ---\n{}",
                self.script,
                started.elapsed().as_secs_f64(),
                artifacts.display(),
                self.lrs.server_log()
            );
        }
        BrowserOutput {
            stdout,
            stderr,
            artifacts,
        }
    }
}

/// `BrowserRun::new(lrs, script).run()`.
pub fn run_script(lrs: &Lrs, script: &str) -> BrowserOutput {
    BrowserRun::new(lrs, script).run()
}

/// The helpers the browser scripts rely on fail on the faults they are for (a CSP
/// violation, an uncaught error, a console error, a 404 or failed request, an inaccessible
/// page, a page wider than a phone) and pass a clean page: a browser test cannot pass by a
/// helper that checks nothing.
#[test]
fn browser_helpers_catch_what_they_promise() {
    let lrs = Lrs::start();
    let out = run_script(&lrs, "self-check.mjs");
    assert!(
        out.stdout
            .contains("ok: the browser helpers catch what they promise"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("caught as expected:").count(),
        8,
        "{}",
        out.stdout
    );
}
