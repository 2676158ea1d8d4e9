//! `GET /metrics` (Prometheus text format 0.0.4): the counters follow what the LRS did,
//! the main listener shows them to root operators only, and `--metrics-listen` serves
//! them (and nothing else) without credentials.
use crate::audit::root;
use crate::harness::{statement, Lrs};
use serde_json::Value;

/// The value of one series (`name{labels}` exactly as rendered); 0 when absent.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("`{series}` value `{v}`: {e}"))
        })
        .unwrap_or(0.0)
}

fn scrape(lrs: &Lrs) -> String {
    let r = lrs
        .get(&format!("{}/metrics", root(lrs)))
        .no_version()
        .send();
    r.assert_status(200);
    let ct = r.header("Content-Type").unwrap_or_default();
    assert!(
        ct.starts_with("text/plain") && ct.contains("version=0.0.4"),
        "{}",
        r.describe()
    );
    r.text()
}

const POSTS: &str =
    "lrs_http_requests_total{route=\"/xapi/statements\",method=\"POST\",status=\"200\"}";
const STORED: &str = "lrs_statements_stored_total";

#[test]
fn metrics_count_requests_and_stored_statements() {
    let lrs = Lrs::start();
    let before = scrape(&lrs);
    let batch = Value::Array((0..3).map(|_| statement()).collect());
    lrs.post("statements")
        .json(&batch)
        .send()
        .assert_status(200);
    lrs.post("statements")
        .json(&statement())
        .send()
        .assert_status(200);
    // A re-sent identical statement is no new stored statement.
    let same = statement();
    lrs.post("statements").json(&same).send().assert_status(200);
    lrs.post("statements").json(&same).send().assert_status(200);
    // A raw path never becomes a label: it is "unmatched".
    lrs.get("/no-such-resource/123456")
        .send()
        .assert_status(404);
    let after = scrape(&lrs);

    assert_eq!(value(&after, POSTS) - value(&before, POSTS), 4.0, "{after}");
    assert_eq!(
        value(&after, STORED) - value(&before, STORED),
        5.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "lrs_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ) >= 1.0,
        "{after}"
    );
    assert!(
        !after.contains("123456"),
        "a raw path became a label\n{after}"
    );

    let labels = "route=\"/xapi/statements\",method=\"POST\"";
    let h = "lrs_http_request_duration_seconds";
    let inf = value(&after, &format!("{h}_bucket{{{labels},le=\"+Inf\"}}"));
    let count = value(&after, &format!("{h}_count{{{labels}}}"));
    assert_eq!(inf, 4.0, "{after}");
    assert_eq!(count, 4.0, "{after}");
    assert!(
        value(&after, &format!("{h}_sum{{{labels}}}")) > 0.0,
        "{after}"
    );
    // Buckets are cumulative up to +Inf.
    let small = value(&after, &format!("{h}_bucket{{{labels},le=\"0.0005\"}}"));
    assert!(small <= inf, "{after}");
    for family in [
        "lrs_store_queue_depth",
        "lrs_audit_log_size",
        "lrs_audit_merge_delay_seconds",
        "lrs_feed_readers",
        "lrs_forwarding_lag_leaves",
        "lrs_forwarding_delivered_total",
        "lrs_forwarding_failures_total",
    ] {
        assert!(
            after.contains(&format!("# TYPE {family} ")),
            "{family}\n{after}"
        );
    }
}

#[test]
fn metrics_on_the_main_listener_need_a_root_operator() {
    let lrs = Lrs::start();
    let url = format!("{}/metrics", root(&lrs));
    lrs.get(&url)
        .no_version()
        .no_auth()
        .send()
        .assert_error(401);
    lrs.cli(&["departments", "create", "moe"]);
    let (key, secret) = lrs.department_credential("moe", &["all", "admin"]);
    lrs.get(&url)
        .no_version()
        .auth(&key, &secret)
        .send()
        .assert_error(403);
    let (key, secret) = lrs.credential(&["statements/read"]);
    lrs.get(&url)
        .no_version()
        .auth(&key, &secret)
        .send()
        .assert_error(403);
    let (key, secret) = lrs.credential(&["admin"]);
    lrs.get(&url)
        .no_version()
        .auth(&key, &secret)
        .send()
        .assert_status(200);
    scrape(&lrs);
}

#[test]
fn metrics_listener_serves_metrics_only_and_without_credentials() {
    let lrs = Lrs::builder()
        .args(["--metrics-listen", "127.0.0.1:0"])
        .start();
    let base = lrs
        .stdout_lines()
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("metrics listening on ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no `metrics listening on` line: {:?}", lrs.stdout_lines()));
    assert_ne!(base, root(&lrs), "a listener of its own");
    lrs.post("statements")
        .json(&statement())
        .send()
        .assert_status(200);
    let r = lrs
        .get(&format!("{base}/metrics"))
        .no_version()
        .no_auth()
        .send();
    r.assert_status(200);
    assert!(value(&r.text(), STORED) >= 1.0, "{}", r.describe());
    for path in ["/xapi/about", "/openapi.json", "/metrics/x", "/"] {
        lrs.get(&format!("{base}{path}"))
            .no_version()
            .send()
            .assert_error(404);
    }
}
