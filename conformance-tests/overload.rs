//! Overload: slow clients are cut off on a deadline and cannot crowd out others; past the
//! in-flight bound requests are shed with 503 + Retry-After at once, never queued.
use crate::harness::{statement, Lrs};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Resident memory of a process in KiB (current, peak), from /proc.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("status field")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn host_port(lrs: &Lrs) -> String {
    let url = lrs.root_url("/");
    let rest = url.split("://").nth(1).expect("scheme");
    rest.split('/').next().expect("host").to_string()
}

const SLOW: usize = 2000;
const HEADER_TIMEOUT_MS: u64 = 2000;
/// Measured: 2,000 idle connections cost the server about 28 KiB each (socket state and
/// read buffers), ~57 MiB. The bound allows 64 KiB each: a server that buffered partial
/// headers without bound or kept a thread per connection would exceed it.
const RSS_GROWTH_LIMIT_KIB: u64 = 128 * 1024;

#[test]
fn slow_header_clients_are_cut_off_and_others_served() {
    let lrs = Lrs::builder()
        .arg("--client-request-timeout-ms")
        .arg(HEADER_TIMEOUT_MS.to_string())
        .arg("--max-connections")
        .arg("25000")
        .start();
    lrs.require_spawned("it reads the server's memory and sets its header timeout");
    let pid = lrs.pid().expect("pid");
    let addr = host_port(&lrs);
    lrs.get("/about").send().assert_status(200);
    let (rss_before, _) = rss_kib(pid);

    let opened = Instant::now();
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(&addr).expect("connect");
        // A request line and part of a header, never finished.
        s.write_all(b"GET /xapi/about HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .expect("partial header");
        slow.push(s);
    }
    // While they hang, a normal client is served promptly and correctly.
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        lrs.get("/about").send().assert_status(200);
        let r = lrs.post("/statements").json(&statement()).send();
        r.assert_status(200);
        worst = worst.max(t.elapsed());
    }
    assert!(
        worst < Duration::from_secs(1),
        "normal client took {worst:?} beside {SLOW} slow connections"
    );
    let (rss_during, hwm) = rss_kib(pid);
    eprintln!(
        "slowloris: {SLOW} connections, RSS before {rss_before} KiB, during {rss_during} KiB, peak {hwm} KiB, normal client worst {worst:?}"
    );
    assert!(
        rss_during.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {rss_before} to {rss_during} KiB"
    );

    // The server closes every slow connection within the header timeout (plus slack
    // for the timer and the disconnect grace).
    let deadline = opened + Duration::from_millis(HEADER_TIMEOUT_MS * 3 + 2000);
    for mut s in slow {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("timeout");
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("slow connection still open past the header timeout: {e}"),
        }
        // actix answers a timed-out header with 408 (or just closes).
        let text = String::from_utf8_lossy(&buf);
        assert!(
            buf.is_empty() || text.starts_with("HTTP/1.1 408"),
            "unexpected answer to a slow header: {text}"
        );
    }
    lrs.get("/about").send().assert_status(200);
}

const CLIENTS: usize = 256;
const PER_CLIENT: usize = 8;

#[test]
fn sixteen_times_w1_sheds_with_503_and_loses_nothing() {
    let lrs = Lrs::builder().arg("--max-in-flight").arg("4").start();
    lrs.require_spawned("it sets --max-in-flight");
    let pid = lrs.pid().expect("pid");
    let (rss_before, _) = rss_kib(pid);
    let results: Vec<(u16, Option<String>, Duration, String, String)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    let lrs = &lrs;
                    scope.spawn(move || {
                        (0..PER_CLIENT)
                            .map(|_| {
                                let st = statement();
                                let id = st["id"].as_str().expect("id").to_string();
                                let t = Instant::now();
                                let r = lrs.post("/statements").json(&st).send();
                                let code = if r.status == 503 {
                                    r.assert_error_body()["code"]
                                        .as_str()
                                        .unwrap_or_default()
                                        .to_string()
                                } else {
                                    String::new()
                                };
                                (
                                    r.status,
                                    r.header("Retry-After").map(str::to_string),
                                    t.elapsed(),
                                    id,
                                    code,
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("client thread"))
                .collect()
        });
    let (rss_after, hwm) = rss_kib(pid);
    let mut ok = Vec::new();
    let mut shed = 0usize;
    let mut slowest = Duration::ZERO;
    for (status, retry, took, id, code) in &results {
        slowest = slowest.max(*took);
        match status {
            200 => ok.push(id.clone()),
            503 => {
                shed += 1;
                let secs: u64 = retry
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .expect("503 carries a whole-second Retry-After");
                assert!(secs >= 1);
                assert_eq!(code, "overloaded");
            }
            other => panic!("unexpected status {other} under overload"),
        }
    }
    eprintln!(
        "16x W1: {} requests, {} acknowledged, {} shed ({:.1}%), slowest {slowest:?}, RSS {rss_before} -> {rss_after} KiB (peak {hwm})",
        results.len(),
        ok.len(),
        shed,
        100.0 * shed as f64 / results.len() as f64
    );
    assert!(!ok.is_empty(), "nothing was served under overload");
    assert!(
        slowest < Duration::from_secs(10),
        "a request took {slowest:?}: queued rather than shed"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    // Every acknowledged statement is stored.
    for id in &ok {
        lrs.get("/statements")
            .query("statementId", id)
            .send()
            .assert_status(200);
    }
    // Afterwards a normal client is served normally.
    lrs.post("/statements")
        .json(&statement())
        .send()
        .assert_status(200);
    // /metrics counts every request shed (and those of the reads above, if any).
    let scrape = lrs.get(&lrs.root_url("/metrics")).no_version().send();
    scrape.assert_status(200);
    let counted: usize = scrape
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("lrs_overloaded_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no lrs_overloaded_total in /metrics"));
    assert!(counted >= shed, "{counted} counted, {shed} shed");
}

/// Sends the head of a statements POST declaring `declared` bytes of body, then the body
/// as `send` decides; returns the answer's status line and body and when it came.
fn slow_body(
    addr: &str,
    auth: &str,
    declared: usize,
    send: impl Fn(&mut TcpStream) -> std::io::Result<()> + Send + 'static,
) -> (String, String, Duration) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let t = Instant::now();
    write!(
        s,
        "POST /xapi/statements HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         X-Experience-API-Version: 1.0.3\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {declared}\r\n\r\n"
    )
    .expect("head");
    // The body is written beside the read, which ends when the server answers and closes;
    // the writer then stops on the broken connection.
    let mut writer = s.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let _ = send(&mut writer);
    });
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body, took)
}

/// A server with these body deadlines (`--body-idle-secs`, `--body-grace-secs`,
/// `--body-min-rate-bytes`), its host:port and a Basic header for raw requests.
fn with_body_deadlines(idle: &str, grace: &str, min_rate: &str) -> (Lrs, String, String) {
    let lrs = Lrs::builder()
        .args(["--body-idle-secs", idle, "--body-grace-secs", grace])
        .args(["--body-min-rate-bytes", min_rate])
        .start();
    let addr = host_port(&lrs);
    let auth = crate::harness::basic(lrs.key(), lrs.secret());
    (lrs, addr, auth)
}

/// A body that stops, or trickles in slower than the configured floor, is answered 408
/// with a JSON body (code `body_too_slow`) and its connection closed, within the body
/// deadlines (`--body-idle-secs` without a byte; `--body-min-rate-bytes` on average after
/// `--body-grace-secs`), while other clients are served as usual; nothing of it is stored.
#[test]
fn a_body_that_stalls_or_trickles_is_answered_408_and_others_served() {
    let (lrs, addr, auth) = with_body_deadlines("3", "3", "4096");
    let (stalled, trickled) = std::thread::scope(|scope| {
        let stalled = scope.spawn(|| {
            slow_body(&addr, &auth, 4000, |s| {
                // Then nothing more.
                s.write_all(b"[{\"actor\": ")
            })
        });
        let trickled = scope.spawn(|| {
            slow_body(&addr, &auth, 4000, |s| {
                for _ in 0..4000 {
                    s.write_all(b" ")?;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Ok(())
            })
        });
        // Meanwhile a normal client is served promptly.
        for _ in 0..20 {
            let t = Instant::now();
            lrs.post("/statements")
                .json(&statement())
                .send()
                .assert_status(200);
            assert!(t.elapsed() < Duration::from_secs(2));
            std::thread::sleep(Duration::from_millis(100));
        }
        (
            stalled.join().expect("stalled sender"),
            trickled.join().expect("trickling sender"),
        )
    });
    for (what, (status, body, took)) in [("stalled", stalled), ("trickled", trickled)] {
        eprintln!("{what} body: {status} after {took:?}");
        assert!(
            status.starts_with("HTTP/1.1 408"),
            "{what}: {status}\n{body}"
        );
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{what}: the 408 body is not JSON ({e}): {body}"));
        assert_eq!(v["error"]["code"], "body_too_slow", "{what}: {v}");
        assert!(
            took >= Duration::from_millis(2900) && took < Duration::from_secs(9),
            "{what}: answered after {took:?}"
        );
    }
    lrs.get("/about").send().assert_status(200);
}

/// With no rate floor (`--body-min-rate-bytes 0`) a body that keeps coming, however
/// slowly, is read whole and stored: only a pause of `--body-idle-secs` cuts it off.
/// (A body this slow fails the default floor of 4,096 bytes/s: the test above.)
#[test]
fn a_slow_but_steady_body_is_stored_when_the_rate_floor_is_off() {
    let (lrs, addr, auth) = with_body_deadlines("2", "1", "0");
    let id = uuid::Uuid::new_v4().to_string();
    let mut st = statement();
    st["id"] = serde_json::json!(id);
    let text = serde_json::to_vec(&st).expect("statement");
    let chunks: Vec<Vec<u8>> = text
        .chunks(text.len().div_ceil(8))
        .map(<[u8]>::to_vec)
        .collect();
    // Eight chunks, 0.5 s apart: about 4 s for some hundred bytes, far under 4 KiB/s.
    let (status, body, took) = slow_body(&addr, &auth, text.len(), move |s| {
        for c in &chunks {
            s.write_all(c)?;
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    });
    assert!(status.starts_with("HTTP/1.1 200"), "{status}\n{body}");
    assert!(
        took >= Duration::from_millis(3400),
        "answered after {took:?}"
    );
    lrs.get(&format!("/statements?statementId={id}"))
        .send()
        .assert_status(200);
}
