//! The process's Prometheus metrics: a small registry of atomic counters, gauges and
//! fixed-bucket histograms, rendered in the text exposition format 0.0.4. It holds no
//! xAPI rule; the HTTP layer records into it and adds the figures it reads at scrape time
//! (store queue, audit log) through [`Snapshot`].
//!
//! Hot path: a request finds its series under a read lock (an atomic, no mutual
//! exclusion) and bumps atomics; the write lock is taken only the first time a series
//! appears. Label values are bounded: routes are actix match patterns, methods a fixed
//! list, statuses three digits, forwarding rules as many as are configured.
//!
//! For the change feed and forwarding (built elsewhere), the API is:
//! - [`Metrics::feed_reader`]: a guard counting one connected feed reader while alive;
//! - [`Metrics::set_forwarding_lag`]`(rule, leaves)`: how far a rule is behind;
//! - [`Metrics::forwarding_delivered`]`(rule, n)`: statements a rule delivered;
//! - [`Metrics::forwarding_failed`]`(rule)`: one failed delivery attempt;
//! - [`Metrics::forget_forwarding_rule`]`(rule)`: drop a deleted rule's series.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the request duration buckets: 0.5 ms to 10 s.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Methods kept as label values; anything else is `OTHER` (clients choose methods).
const METHODS: [&str; 7] = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"];

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative; cumulated when rendered), then +Inf.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// The series of one (route, method): its duration histogram and a counter per status.
#[derive(Default)]
struct RouteSeries {
    duration: Histogram,
    statuses: RwLock<Vec<(u16, Arc<AtomicU64>)>>,
}

impl RouteSeries {
    fn status(&self, status: u16) -> Arc<AtomicU64> {
        if let Ok(list) = self.statuses.read() {
            if let Some((_, c)) = list.iter().find(|(s, _)| *s == status) {
                return c.clone();
            }
        }
        match self.statuses.write() {
            Ok(mut list) => {
                if let Some((_, c)) = list.iter().find(|(s, _)| *s == status) {
                    return c.clone();
                }
                let c = Arc::new(AtomicU64::new(0));
                list.push((status, c.clone()));
                list.sort_by_key(|(s, _)| *s);
                c
            }
            // A poisoned lock loses this one count rather than failing the request.
            Err(_) => Arc::new(AtomicU64::new(0)),
        }
    }
}

/// A route's series, one per method label (looked up by `&str` route, no allocation).
#[derive(Default)]
struct RouteMethods([RouteSeries; METHODS.len() + 1]);

#[derive(Default)]
struct RuleSeries {
    lag: AtomicU64,
    delivered: AtomicU64,
    failures: AtomicU64,
}

/// A per-rule family: name, type, help, and the value it reads.
type RuleFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&RuleSeries) -> u64,
);

/// Figures the registry does not own, read when `/metrics` is scraped.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Writes waiting for the store's writer.
    pub store_queue_depth: usize,
    /// Leaves in the audit log (its tree size); None when the store did not answer.
    pub audit_log_size: Option<u64>,
    /// Leaves in the latest signed checkpoint.
    pub audit_checkpoint_size: Option<u64>,
    /// Merge delays seen by this process's sequencer (ms): p50, p99, max; None if none.
    pub audit_merge_delay_ms: Option<(u64, u64, u64)>,
    /// Age (seconds) of the oldest leaf appended but not yet in a signed checkpoint.
    pub audit_unpublished_seconds: f64,
}

/// The registry (one per process, shared as `Arc<Metrics>`).
#[derive(Default)]
pub struct Metrics {
    routes: RwLock<HashMap<String, Arc<RouteMethods>>>,
    statements_stored: AtomicU64,
    /// Refusals by the rate limits: [requests, statements]. No credential or department
    /// label: their number is unbounded, and a series each would grow /metrics with them.
    rate_limited: [AtomicU64; 2],
    /// Requests shed with 503 because the in-flight bound was reached.
    overloaded: AtomicU64,
    feed_readers: Arc<AtomicI64>,
    rules: RwLock<HashMap<String, Arc<RuleSeries>>>,
}

/// Counts one connected feed reader until dropped.
pub struct FeedReaderGuard(Arc<AtomicI64>);

impl Drop for FeedReaderGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// The index of a method label: one of `METHODS`, or `OTHER` after them.
fn method_index(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len())
}

fn method_label(i: usize) -> &'static str {
    METHODS.get(i).copied().unwrap_or("OTHER")
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// One request done: `route` is the match pattern (or [`UNMATCHED`]).
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let m = method_index(method);
        let methods = self.route_series(route);
        let series = &methods.0[m];
        series.duration.observe(elapsed);
        series.status(status).fetch_add(1, Relaxed);
    }

    fn route_series(&self, route: &str) -> Arc<RouteMethods> {
        if let Ok(map) = self.routes.read() {
            if let Some(s) = map.get(route) {
                return s.clone();
            }
        }
        match self.routes.write() {
            Ok(mut map) => map.entry(route.to_owned()).or_default().clone(),
            Err(_) => Arc::new(RouteMethods::default()),
        }
    }

    /// Statements the store acknowledged as stored.
    pub fn statements_stored(&self, n: u64) {
        self.statements_stored.fetch_add(n, Relaxed);
    }

    /// One request refused by a rate limit (`statements` = the statement limit).
    pub fn rate_limited(&self, statements: bool) {
        self.rate_limited[usize::from(statements)].fetch_add(1, Relaxed);
    }

    /// One request shed with 503 at the in-flight bound.
    pub fn overloaded(&self) {
        self.overloaded.fetch_add(1, Relaxed);
    }

    /// One feed reader connected; the count drops when the guard is dropped.
    pub fn feed_reader(&self) -> FeedReaderGuard {
        self.feed_readers.fetch_add(1, Relaxed);
        FeedReaderGuard(self.feed_readers.clone())
    }

    fn rule(&self, rule: &str) -> Arc<RuleSeries> {
        if let Ok(map) = self.rules.read() {
            if let Some(s) = map.get(rule) {
                return s.clone();
            }
        }
        match self.rules.write() {
            Ok(mut map) => map.entry(rule.to_owned()).or_default().clone(),
            Err(_) => Arc::new(RuleSeries::default()),
        }
    }

    /// How many log leaves forwarding rule `rule` has yet to deliver.
    pub fn set_forwarding_lag(&self, rule: &str, leaves: u64) {
        self.rule(rule).lag.store(leaves, Relaxed);
    }

    /// Rule `rule` delivered `n` statements.
    pub fn forwarding_delivered(&self, rule: &str, n: u64) {
        self.rule(rule).delivered.fetch_add(n, Relaxed);
    }

    /// One delivery attempt of rule `rule` failed.
    pub fn forwarding_failed(&self, rule: &str) {
        self.rule(rule).failures.fetch_add(1, Relaxed);
    }

    /// Drops the series of a deleted rule.
    pub fn forget_forwarding_rule(&self, rule: &str) {
        if let Ok(mut map) = self.rules.write() {
            map.remove(rule);
        }
    }

    /// The text exposition (format 0.0.4) of every family.
    pub fn render(&self, snap: &Snapshot) -> String {
        let mut out = String::with_capacity(4096);
        self.render_http(&mut out);

        family(
            &mut out,
            "lrs_statements_stored_total",
            "counter",
            "Statements the store acknowledged as stored.",
        );
        let _ = writeln!(
            out,
            "lrs_statements_stored_total {}",
            self.statements_stored.load(Relaxed)
        );
        family(
            &mut out,
            "lrs_rate_limited_total",
            "counter",
            "Requests refused with 429 by a per-credential rate limit.",
        );
        for (i, limit) in ["requests", "statements"].iter().enumerate() {
            let _ = writeln!(
                out,
                "lrs_rate_limited_total{{limit=\"{limit}\"}} {}",
                self.rate_limited[i].load(Relaxed)
            );
        }
        family(
            &mut out,
            "lrs_overloaded_total",
            "counter",
            "Requests shed with 503 because --max-in-flight requests were already being served.",
        );
        let _ = writeln!(
            out,
            "lrs_overloaded_total {}",
            self.overloaded.load(Relaxed)
        );
        family(
            &mut out,
            "lrs_store_queue_depth",
            "gauge",
            "Writes waiting for the store's writer.",
        );
        let _ = writeln!(out, "lrs_store_queue_depth {}", snap.store_queue_depth);

        family(
            &mut out,
            "lrs_audit_log_size",
            "gauge",
            "Leaves in the audit log.",
        );
        if let Some(size) = snap.audit_log_size {
            let _ = writeln!(out, "lrs_audit_log_size {size}");
        }
        family(
            &mut out,
            "lrs_audit_checkpoint_size",
            "gauge",
            "Leaves in the latest signed checkpoint.",
        );
        if let Some(size) = snap.audit_checkpoint_size {
            let _ = writeln!(out, "lrs_audit_checkpoint_size {size}");
        }
        family(
            &mut out,
            "lrs_audit_merge_delay_seconds",
            "gauge",
            "Time from stored to signed checkpoint seen by this process's sequencer (recent samples).",
        );
        if let Some((p50, p99, max)) = snap.audit_merge_delay_ms {
            for (stat, ms) in [("p50", p50), ("p99", p99), ("max", max)] {
                let _ = writeln!(
                    out,
                    "lrs_audit_merge_delay_seconds{{stat=\"{stat}\"}} {}",
                    seconds(ms as f64 / 1000.0)
                );
            }
        }
        family(
            &mut out,
            "lrs_audit_unpublished_seconds",
            "gauge",
            "Age of the oldest leaf appended to the audit log but not yet in a signed checkpoint (0 if none).",
        );
        let _ = writeln!(
            out,
            "lrs_audit_unpublished_seconds {}",
            seconds(snap.audit_unpublished_seconds)
        );

        family(
            &mut out,
            "lrs_feed_readers",
            "gauge",
            "Change feed readers connected.",
        );
        let _ = writeln!(
            out,
            "lrs_feed_readers {}",
            self.feed_readers.load(Relaxed).max(0)
        );
        self.render_forwarding(&mut out);
        out
    }

    fn render_http(&self, out: &mut String) {
        let mut routes: Vec<(String, Arc<RouteMethods>)> = match self.routes.read() {
            Ok(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        };
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        // Only the methods a route was asked with.
        let series: Vec<((&str, &'static str), &RouteSeries)> = routes
            .iter()
            .flat_map(|(route, methods)| {
                methods
                    .0
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.duration.count.load(Relaxed) > 0)
                    .map(move |(i, s)| ((route.as_str(), method_label(i)), s))
            })
            .collect();

        family(
            out,
            "lrs_http_requests_total",
            "counter",
            "HTTP requests answered, by route pattern, method and status.",
        );
        for ((route, method), s) in &series {
            let statuses: Vec<(u16, u64)> = match s.statuses.read() {
                Ok(l) => l.iter().map(|(st, c)| (*st, c.load(Relaxed))).collect(),
                Err(_) => Vec::new(),
            };
            for (status, n) in statuses {
                let _ = writeln!(
                    out,
                    "lrs_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }

        family(
            out,
            "lrs_http_request_duration_seconds",
            "histogram",
            "Time to answer an HTTP request, by route pattern and method.",
        );
        for ((route, method), s) in &series {
            let labels = format!("route=\"{}\",method=\"{method}\"", escape(route));
            let h = &s.duration;
            let mut cumulative = 0u64;
            for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "lrs_http_request_duration_seconds_bucket{{{labels},le=\"{}\"}} {cumulative}",
                    seconds(*bound)
                );
            }
            cumulative += h.buckets[DURATION_BUCKETS.len()].load(Relaxed);
            let _ = writeln!(
                out,
                "lrs_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "lrs_http_request_duration_seconds_sum{{{labels}}} {}",
                seconds(h.sum_ns.load(Relaxed) as f64 / 1e9)
            );
            // The count read last would race the buckets; the +Inf bucket is the count.
            let _ = writeln!(
                out,
                "lrs_http_request_duration_seconds_count{{{labels}}} {cumulative}"
            );
        }
    }

    fn render_forwarding(&self, out: &mut String) {
        let mut rules: Vec<(String, Arc<RuleSeries>)> = match self.rules.read() {
            Ok(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        };
        rules.sort_by(|a, b| a.0.cmp(&b.0));
        let families: [RuleFamily; 3] = [
            (
                "lrs_forwarding_lag_leaves",
                "gauge",
                "Audit log leaves a forwarding rule has yet to deliver.",
                |r| r.lag.load(Relaxed),
            ),
            (
                "lrs_forwarding_delivered_total",
                "counter",
                "Statements a forwarding rule delivered.",
                |r| r.delivered.load(Relaxed),
            ),
            (
                "lrs_forwarding_failures_total",
                "counter",
                "Failed delivery attempts of a forwarding rule.",
                |r| r.failures.load(Relaxed),
            ),
        ];
        for (name, kind, help, value) in families {
            family(out, name, kind, help);
            for (rule, r) in &rules {
                let _ = writeln!(out, "{name}{{rule=\"{}\"}} {}", escape(rule), value(r));
            }
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value escaped as the exposition format requires.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A float as Prometheus reads it (Rust's shortest round-trip form).
fn seconds(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
    }

    #[test]
    fn requests_counted_by_route_method_status() {
        let m = Metrics::new();
        m.observe_request("/xapi/statements", "POST", 200, Duration::from_millis(3));
        m.observe_request("/xapi/statements", "POST", 200, Duration::from_millis(30));
        m.observe_request("/xapi/statements", "POST", 400, Duration::from_micros(100));
        m.observe_request(UNMATCHED, "BREW", 404, Duration::from_secs(20));
        let text = m.render(&Snapshot::default());
        let r = "lrs_http_requests_total{route=\"/xapi/statements\",method=\"POST\",status=";
        assert_eq!(line(&text, &format!("{r}\"200\"}}")), Some("2"));
        assert_eq!(line(&text, &format!("{r}\"400\"}}")), Some("1"));
        assert_eq!(
            line(
                &text,
                "lrs_http_requests_total{route=\"unmatched\",method=\"OTHER\",status=\"404\"}"
            ),
            Some("1")
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        m.observe_request("/r", "GET", 200, Duration::from_micros(400)); // ≤ 0.5 ms
        m.observe_request("/r", "GET", 200, Duration::from_millis(7)); // ≤ 10 ms
        m.observe_request("/r", "GET", 200, Duration::from_secs(11)); // +Inf only
        let text = m.render(&Snapshot::default());
        let b = "lrs_http_request_duration_seconds_bucket{route=\"/r\",method=\"GET\",le=";
        assert_eq!(line(&text, &format!("{b}\"0.0005\"}}")), Some("1"));
        assert_eq!(line(&text, &format!("{b}\"0.005\"}}")), Some("1"));
        assert_eq!(line(&text, &format!("{b}\"0.01\"}}")), Some("2"));
        assert_eq!(line(&text, &format!("{b}\"10\"}}")), Some("2"));
        assert_eq!(line(&text, &format!("{b}\"+Inf\"}}")), Some("3"));
        let count = "lrs_http_request_duration_seconds_count{route=\"/r\",method=\"GET\"}";
        assert_eq!(line(&text, count), Some("3"));
        let sum = "lrs_http_request_duration_seconds_sum{route=\"/r\",method=\"GET\"}";
        let sum: f64 = line(&text, sum).and_then(|s| s.parse().ok()).unwrap_or(0.0);
        assert!((sum - 11.0074).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn every_family_has_help_and_type_once() {
        let m = Metrics::new();
        m.observe_request("/a", "GET", 200, Duration::ZERO);
        m.set_forwarding_lag("r1", 5);
        let text = m.render(&Snapshot::default());
        for name in [
            "lrs_http_requests_total",
            "lrs_http_request_duration_seconds",
            "lrs_statements_stored_total",
            "lrs_rate_limited_total",
            "lrs_overloaded_total",
            "lrs_store_queue_depth",
            "lrs_audit_log_size",
            "lrs_audit_merge_delay_seconds",
            "lrs_feed_readers",
            "lrs_forwarding_lag_leaves",
            "lrs_forwarding_delivered_total",
            "lrs_forwarding_failures_total",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}\n{text}"
            );
            assert_eq!(text.matches(&format!("# HELP {name} ")).count(), 1);
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn feed_readers_follow_guards() {
        let m = Metrics::new();
        let a = m.feed_reader();
        let b = m.feed_reader();
        assert_eq!(
            line(&m.render(&Snapshot::default()), "lrs_feed_readers "),
            Some("2")
        );
        drop(a);
        assert_eq!(
            line(&m.render(&Snapshot::default()), "lrs_feed_readers "),
            Some("1")
        );
        drop(b);
        assert_eq!(
            line(&m.render(&Snapshot::default()), "lrs_feed_readers "),
            Some("0")
        );
    }

    #[test]
    fn forwarding_families_per_rule() {
        let m = Metrics::new();
        m.set_forwarding_lag("rule \"x\"", 12);
        m.set_forwarding_lag("rule \"x\"", 7);
        m.forwarding_delivered("rule \"x\"", 3);
        m.forwarding_delivered("rule \"x\"", 2);
        m.forwarding_failed("rule \"x\"");
        let text = m.render(&Snapshot::default());
        let rule = "{rule=\"rule \\\"x\\\"\"}";
        assert_eq!(
            line(&text, &format!("lrs_forwarding_lag_leaves{rule}")),
            Some("7")
        );
        assert_eq!(
            line(&text, &format!("lrs_forwarding_delivered_total{rule}")),
            Some("5")
        );
        assert_eq!(
            line(&text, &format!("lrs_forwarding_failures_total{rule}")),
            Some("1")
        );
        m.forget_forwarding_rule("rule \"x\"");
        assert!(!m.render(&Snapshot::default()).contains("rule=\"rule"));
    }

    #[test]
    fn snapshot_figures_rendered() {
        let m = Metrics::new();
        m.statements_stored(4);
        let text = m.render(&Snapshot {
            store_queue_depth: 3,
            audit_log_size: Some(10),
            audit_checkpoint_size: Some(9),
            audit_merge_delay_ms: Some((250, 900, 1500)),
            audit_unpublished_seconds: 0.5,
        });
        assert_eq!(line(&text, "lrs_statements_stored_total "), Some("4"));
        assert_eq!(line(&text, "lrs_store_queue_depth "), Some("3"));
        assert_eq!(line(&text, "lrs_audit_log_size "), Some("10"));
        assert_eq!(line(&text, "lrs_audit_checkpoint_size "), Some("9"));
        assert_eq!(
            line(&text, "lrs_audit_merge_delay_seconds{stat=\"max\"}"),
            Some("1.5")
        );
        assert_eq!(line(&text, "lrs_audit_unpublished_seconds "), Some("0.5"));
    }
}
