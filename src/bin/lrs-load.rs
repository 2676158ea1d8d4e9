//! Load generator for karmayogi-lrs (issue 6 workloads W1–W4; W5 the audit log's proofs
//! and certificates, issue 13; W6 completion figures, issue 14), speaking HTTP/1.1 with
//! keep-alive over plain TCP so the client costs little next to the server.
//!
//! ```text
//! lrs-load --endpoint http://127.0.0.1:8080/xapi --key K --secret S --workload all
//! ```
use base64::Engine;
use clap::Parser;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser, Debug, Clone)]
#[command(about = "Load generator for an xAPI LRS (workloads W1–W4)")]
struct Args {
    /// xAPI base URL (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080/xapi")]
    endpoint: String,
    #[arg(long, env = "LRS_KEY")]
    key: String,
    #[arg(long, env = "LRS_SECRET")]
    secret: String,
    /// w1, w2, w3, w4, w5 (audit proofs and certificates), w6 (completion figures) or all.
    #[arg(long, default_value = "all")]
    workload: String,
    /// Seconds each workload runs.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Statements to add (in batches of 1,000) before W3; 0 to query the store as it is.
    #[arg(long, default_value_t = 100_000)]
    preload: usize,
    /// Server process id, to report its peak RSS (VmHWM).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seed of the statement generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Deterministic generator (splitmix64) so runs are comparable.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a & 0xfff) as u16,
            (0x8000 | (b >> 48) & 0x3fff) as u16,
            b & 0xffff_ffff_ffff
        )
    }
}

const VERBS: [&str; 10] = [
    "completed",
    "attempted",
    "passed",
    "failed",
    "experienced",
    "answered",
    "launched",
    "initialized",
    "terminated",
    "progressed",
];

/// A realistic ~1.2 KB statement: actor from a pool of 1,000, 10 verbs, 200 activities.
fn statement(g: &mut Gen) -> Value {
    let learner = g.below(1000);
    let verb = VERBS[g.below(10) as usize];
    let course = g.below(200);
    json!({
        "actor": {"objectType": "Agent", "name": format!("Officer {learner}"), "mbox": format!("mailto:officer{learner}@karmayogi.example.gov.in")},
        "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}"), "display": {"en-US": verb, "hi-IN": verb}},
        "object": {
            "objectType": "Activity",
            "id": format!("https://igot.example.gov.in/course/{course}"),
            "definition": {
                "name": {"en-US": format!("Course {course}: Public administration module"), "hi-IN": format!("पाठ्यक्रम {course}")},
                "description": {"en-US": "A module of the capacity-building programme for civil servants."},
                "type": "http://adlnet.gov/expapi/activities/course"
            }
        },
        "result": {
            "score": {"scaled": (g.below(101) as f64) / 100.0, "raw": g.below(101), "min": 0, "max": 100},
            "success": g.below(2) == 1, "completion": true, "duration": format!("PT{}M{}S", g.below(90), g.below(60))
        },
        "context": {
            "registration": g.uuid(),
            "contextActivities": {
                "parent": [{"id": format!("https://igot.example.gov.in/programme/{}", course % 20)}],
                "grouping": [{"id": "https://igot.example.gov.in/karmayogi"}],
                "category": [{"id": "https://w3id.org/xapi/cmi5/context/categories/cmi5"}]
            },
            "platform": "iGOT Karmayogi",
            "language": "en-IN",
            "extensions": {"https://igot.example.gov.in/ext/ministry": "Ministry of Personnel"}
        },
        "timestamp": "2026-11-22T10:00:00.000Z"
    })
}

struct Conn {
    host: String,
    auth: String,
    stream: Option<BufReader<TcpStream>>,
}

struct Resp {
    status: u16,
    body: Vec<u8>,
}

impl Conn {
    fn new(args: &Args) -> Conn {
        let host = args
            .endpoint
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("127.0.0.1:8080")
            .to_owned();
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", args.key, args.secret));
        Conn {
            host,
            auth,
            stream: None,
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> std::io::Result<Resp> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let s = TcpStream::connect(&self.host).await?;
                s.set_nodelay(true)?;
                self.stream = Some(BufReader::new(s));
            }
            match self.exchange(method, path, body).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 => {
                    self.stream = None;
                    let _ = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("unreachable"))
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> std::io::Result<Resp> {
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no connection"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {}\r\nX-Experience-API-Version: 2.0.0\r\n",
            self.host, self.auth
        );
        if let Some((ct, b)) = body {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if let Some((_, b)) = body {
            out.extend_from_slice(b);
        }
        s.get_mut().write_all(&out).await?;
        let mut line = String::new();
        s.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))?;
        let mut len = 0usize;
        loop {
            line.clear();
            s.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        Ok(Resp { status, body })
    }
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    errors: u64,
    items: u64,
    /// The same latencies again by kind of request, where a workload mixes kinds (W3:
    /// by verb, by agent), each reported on its own line.
    by_kind: std::collections::BTreeMap<&'static str, Vec<u64>>,
}

/// The value at quantile `p` of sorted latencies, in ms.
fn quantile_ms(sorted: &[u64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0) as f64
        / 1000.0
}

fn report(name: &str, stats: &[Stats], elapsed: Duration, unit: &str) {
    let mut all: Vec<u64> = stats
        .iter()
        .flat_map(|s| s.latencies_us.iter().copied())
        .collect();
    all.sort_unstable();
    let items: u64 = stats.iter().map(|s| s.items).sum();
    let errors: u64 = stats.iter().map(|s| s.errors).sum();
    let pct = |p: f64| quantile_ms(&all, p);
    println!(
        "{name}: {:.0} {unit}/s  ({} requests, {items} {unit}, {errors} errors, {:.1}s)  p50 {:.2} ms  p99 {:.2} ms",
        items as f64 / elapsed.as_secs_f64(),
        all.len(),
        elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
    let mut kinds: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    for s in stats {
        for (k, l) in &s.by_kind {
            kinds.entry(k).or_default().extend(l);
        }
    }
    for (kind, mut l) in kinds {
        l.sort_unstable();
        println!(
            "  {kind}: {} requests  p50 {:.2} ms  p99 {:.2} ms",
            l.len(),
            quantile_ms(&l, 0.50),
            quantile_ms(&l, 0.99)
        );
    }
}

async fn run_workers<F, Fut>(
    args: &Args,
    concurrency: usize,
    seconds: f64,
    f: F,
) -> (Vec<Stats>, Duration)
where
    F: Fn(Conn, u64, Instant) -> Fut,
    Fut: std::future::Future<Output = Stats> + 'static,
{
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let fut = f(
            Conn::new(args),
            args.seed.wrapping_mul(1000).wrapping_add(w as u64),
            deadline,
        );
        set.spawn_local(fut);
    }
    let mut stats = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(s) = r {
            stats.push(s);
        }
    }
    (stats, start.elapsed())
}

fn statements_path(args: &Args) -> String {
    let base = args.endpoint.trim_start_matches("http://");
    let path = base.find('/').map(|i| &base[i..]).unwrap_or("/xapi");
    format!("{}/statements", path.trim_end_matches('/'))
}

async fn post_loop(mut c: Conn, seed: u64, deadline: Instant, path: String, batch: usize) -> Stats {
    let mut g = Gen(seed);
    let mut st = Stats::default();
    while Instant::now() < deadline {
        let body = if batch == 1 {
            statement(&mut g).to_string()
        } else {
            Value::Array((0..batch).map(|_| statement(&mut g)).collect()).to_string()
        };
        let t = Instant::now();
        match c
            .request("POST", &path, Some(("application/json", body.as_bytes())))
            .await
        {
            Ok(r) if r.status == 200 => {
                st.items += batch as u64;
            }
            _ => st.errors += 1,
        }
        st.latencies_us.push(t.elapsed().as_micros() as u64);
    }
    st
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn get_loop(mut c: Conn, seed: u64, deadline: Instant, path: String) -> Stats {
    let mut g = Gen(seed);
    let mut st = Stats::default();
    while Instant::now() < deadline {
        let by_verb = g.below(2) == 0;
        let q = if by_verb {
            format!(
                "verb={}",
                encode(&format!(
                    "http://adlnet.gov/expapi/verbs/{}",
                    VERBS[g.below(10) as usize]
                ))
            )
        } else {
            let agent = json!({"mbox": format!("mailto:officer{}@karmayogi.example.gov.in", g.below(1000))}).to_string();
            format!("agent={}", encode(&agent))
        };
        let t = Instant::now();
        match c
            .request("GET", &format!("{path}?{q}&limit=50"), None)
            .await
        {
            Ok(r) if r.status == 200 && r.body.starts_with(b"{") => st.items += 1,
            _ => st.errors += 1,
        }
        let us = t.elapsed().as_micros() as u64;
        st.latencies_us.push(us);
        let kind = if by_verb { "by verb" } else { "by agent" };
        st.by_kind.entry(kind).or_default().push(us);
    }
    st
}

async fn state_loop(mut c: Conn, seed: u64, deadline: Instant, base: String) -> Stats {
    let mut g = Gen(seed);
    let mut st = Stats::default();
    while Instant::now() < deadline {
        let agent = encode(
            &json!({"mbox": format!("mailto:officer{}@karmayogi.example.gov.in", g.below(1000))})
                .to_string(),
        );
        let activity = encode(&format!(
            "https://igot.example.gov.in/course/{}",
            g.below(200)
        ));
        let path =
            format!("{base}/activities/state?activityId={activity}&agent={agent}&stateId=bookmark");
        let put = g.below(2) == 0;
        let t = Instant::now();
        let r = if put {
            let body = json!({"page": g.below(50), "suspend_data": "x".repeat(200)}).to_string();
            c.request("POST", &path, Some(("application/json", body.as_bytes())))
                .await
        } else {
            c.request("GET", &path, None).await
        };
        match r {
            Ok(r) if r.status == 204 || r.status == 200 || (!put && r.status == 404) => {
                st.items += 1
            }
            _ => st.errors += 1,
        }
        st.latencies_us.push(t.elapsed().as_micros() as u64);
    }
    st
}

/// W5's sample of the store: statement ids, and (agent, activity) pairs of completions.
struct AuditSample {
    ids: Vec<String>,
    completions: Vec<(String, String)>,
}

/// Waits for the log to have taken every statement (no writer runs now), then samples
/// statements of every verb.
async fn audit_sample(args: &Args, path: &str, audit: &str) -> AuditSample {
    let mut c = Conn::new(args);
    for _ in 0..100 {
        if let Ok(r) = c.request("GET", &format!("{audit}/status"), None).await {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            if v["treeSize"].as_u64().is_some_and(|n| n > 0) && v["checkpointSize"] == v["treeSize"]
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut sample = AuditSample {
        ids: Vec::new(),
        completions: Vec::new(),
    };
    for verb in VERBS {
        let q = encode(&format!("http://adlnet.gov/expapi/verbs/{verb}"));
        let Ok(r) = c
            .request("GET", &format!("{path}?verb={q}&limit=200"), None)
            .await
        else {
            continue;
        };
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        for s in v["statements"].as_array().into_iter().flatten() {
            if let Some(id) = s["id"].as_str() {
                sample.ids.push(id.to_owned());
            }
            // What the LRS certifies: completed, or passed with success (docs/AUDIT.md 7.1).
            if verb == "completed" || (verb == "passed" && s["result"]["success"] == true) {
                if let (Some(m), Some(a)) =
                    (s["actor"]["mbox"].as_str(), s["object"]["id"].as_str())
                {
                    sample
                        .completions
                        .push((json!({ "mbox": m }).to_string(), a.to_owned()));
                }
            }
        }
    }
    sample
}

async fn audit_loop(
    mut c: Conn,
    seed: u64,
    deadline: Instant,
    audit: String,
    sample: std::sync::Arc<AuditSample>,
    certificates: bool,
) -> Stats {
    let mut g = Gen(seed);
    let mut st = Stats::default();
    let n = if certificates {
        sample.completions.len()
    } else {
        sample.ids.len()
    } as u64;
    if n == 0 {
        st.errors += 1;
        return st;
    }
    while Instant::now() < deadline {
        let i = g.below(n) as usize;
        let path = if certificates {
            let (agent, activity) = &sample.completions[i];
            format!(
                "{audit}/certificate?agent={}&activity={}",
                encode(agent),
                encode(activity)
            )
        } else {
            format!("{audit}/proof?statementId={}", sample.ids[i])
        };
        let t = Instant::now();
        match c.request("GET", &path, None).await {
            Ok(r) if r.status == 200 && r.body.starts_with(b"{") => st.items += 1,
            _ => st.errors += 1,
        }
        st.latencies_us.push(t.elapsed().as_micros() as u64);
    }
    st
}

/// W6: `GET /analytics/completions` for a random activity of the generator, grouped by
/// day (the default year) or by department.
async fn completions_loop(mut c: Conn, seed: u64, deadline: Instant, url: String) -> Stats {
    let mut g = Gen(seed);
    let mut st = Stats::default();
    while Instant::now() < deadline {
        let activity = encode(&format!(
            "https://igot.example.gov.in/course/{}",
            g.below(200)
        ));
        let group_by = if g.below(2) == 0 { "day" } else { "department" };
        let t = Instant::now();
        match c
            .request(
                "GET",
                &format!("{url}?activity={activity}&group_by={group_by}"),
                None,
            )
            .await
        {
            Ok(r) if r.status == 200 && r.body.starts_with(b"{") => st.items += 1,
            _ => st.errors += 1,
        }
        st.latencies_us.push(t.elapsed().as_micros() as u64);
    }
    st
}

/// How far the completion figures are behind the log: (projectedThrough, logSize).
async fn projection_lag(args: &Args, url: &str) -> Option<(u64, u64)> {
    let mut c = Conn::new(args);
    let r = c
        .request("GET", &format!("{url}?group_by=department"), None)
        .await
        .ok()?;
    let v: Value = serde_json::from_slice(&r.body).ok()?;
    Some((v["projectedThrough"].as_u64()?, v["logSize"].as_u64()?))
}

fn peak_rss(pid: Option<u32>) {
    if let Some(pid) = pid {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for l in s
                .lines()
                .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
            {
                println!("server {l}");
            }
        }
    }
}

async fn run(args: Args) {
    let path = statements_path(&args);
    let base = path.trim_end_matches("/statements").to_owned();
    let w = args.workload.to_ascii_lowercase();
    let all = w == "all";
    if all || w == "w1" {
        let p = path.clone();
        let (s, e) = run_workers(&args, 16, args.seconds, move |c, seed, d| {
            post_loop(c, seed, d, p.clone(), 1)
        })
        .await;
        report(
            "W1 single-statement POST, concurrency 16",
            &s,
            e,
            "statements",
        );
    }
    if all || w == "w2" {
        let p = path.clone();
        let (s, e) = run_workers(&args, 4, args.seconds, move |c, seed, d| {
            post_loop(c, seed, d, p.clone(), 100)
        })
        .await;
        report("W2 POST batches of 100, concurrency 4", &s, e, "statements");
    }
    if all || w == "w3" {
        if args.preload > 0 {
            let batches = args.preload.div_ceil(1000);
            let t = Instant::now();
            let mut c = Conn::new(&args);
            let mut g = Gen(args.seed ^ 0xabcdef);
            let mut errors = 0;
            for _ in 0..batches {
                let body = Value::Array((0..1000).map(|_| statement(&mut g)).collect()).to_string();
                match c
                    .request("POST", &path, Some(("application/json", body.as_bytes())))
                    .await
                {
                    Ok(r) if r.status == 200 => {}
                    _ => errors += 1,
                }
            }
            println!(
                "preloaded {} statements in {:.1}s ({errors} failed batches)",
                batches * 1000,
                t.elapsed().as_secs_f64()
            );
        }
        let p = path.clone();
        let (s, e) = run_workers(&args, 16, args.seconds, move |c, seed, d| {
            get_loop(c, seed, d, p.clone())
        })
        .await;
        report(
            "W3 GET by verb or agent, limit 50, concurrency 16",
            &s,
            e,
            "queries",
        );
    }
    if all || w == "w4" {
        let b = base.clone();
        let (s, e) = run_workers(&args, 16, args.seconds, move |c, seed, d| {
            state_loop(c, seed, d, b.clone())
        })
        .await;
        report(
            "W4 state document POST/GET, concurrency 16",
            &s,
            e,
            "requests",
        );
    }
    if all || w == "w5" {
        let audit = format!("{}/audit", base.trim_end_matches("/xapi"));
        let sample = std::sync::Arc::new(audit_sample(&args, &path, &audit).await);
        for (certificates, name, unit) in [
            (false, "W5 GET /audit/proof, concurrency 4", "proofs"),
            (
                true,
                "W5 GET /audit/certificate, concurrency 4",
                "certificates",
            ),
        ] {
            let (a, sm) = (audit.clone(), sample.clone());
            let (s, e) = run_workers(&args, 4, args.seconds, move |c, seed, d| {
                audit_loop(c, seed, d, a.clone(), sm.clone(), certificates)
            })
            .await;
            report(name, &s, e, unit);
        }
    }
    if all || w == "w6" {
        let url = format!("{}/analytics/completions", base.trim_end_matches("/xapi"));
        if let Some((p, n)) = projection_lag(&args, &url).await {
            println!("completion figures projected through leaf {p} of {n}");
        }
        let u = url.clone();
        let (s, e) = run_workers(&args, 8, args.seconds, move |c, seed, d| {
            completions_loop(c, seed, d, u.clone())
        })
        .await;
        report(
            "W6 GET /analytics/completions, one activity, concurrency 8",
            &s,
            e,
            "queries",
        );
        if let Some((p, n)) = projection_lag(&args, &url).await {
            println!("completion figures projected through leaf {p} of {n}");
        }
    }
    peak_rss(args.server_pid);
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match rt {
        Ok(rt) => {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run(args));
        }
        Err(e) => eprintln!("cannot start runtime: {e}"),
    }
}
