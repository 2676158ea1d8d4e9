//! Per-credential rate limits: over the limit a credential gets 429 with Retry-After and
//! a JSON body; a batch over the statement allowance is refused whole; other credentials
//! are unaffected; /metrics counts the refusals.
use crate::harness::{statement, Lrs, Response};
use serde_json::Value;
use std::time::Duration;

fn assert_429(r: &Response, limit: &str) -> u64 {
    let body = r.assert_error(429);
    assert_eq!(body["code"], "rate_limited", "{}", r.describe());
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(limit), "{}", r.describe());
    let secs: u64 = r
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no whole-second Retry-After\n{}", r.describe()));
    assert!(secs >= 1, "{}", r.describe());
    secs
}

fn rate_limited_total(lrs: &Lrs, limit: &str) -> f64 {
    let scrape = || lrs.get(&lrs.root_url("/metrics")).no_version().send();
    let mut r = scrape();
    // The scrape is a request of the limited credential too: it waits its turn.
    if r.status == 429 {
        let wait = assert_429(&r, "requests");
        std::thread::sleep(Duration::from_secs(wait));
        r = scrape();
    }
    r.assert_status(200);
    let series = format!("lrs_rate_limited_total{{limit=\"{limit}\"}} ");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[test]
fn request_limit_answers_429_then_serves_after_retry_after() {
    let lrs = Lrs::builder()
        .args(["--rate-requests", "1", "--rate-requests-burst", "3"])
        .start();
    lrs.require_spawned("it sets --rate-requests");
    let (other_key, other_secret) = lrs.credential(&["all"]);
    let mut refused = None;
    for _ in 0..10 {
        let r = lrs.get("/statements").query("limit", "1").send();
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        r.assert_status(200);
    }
    let refused = refused.expect("10 quick requests against 1/s, burst 3, were all served");
    let wait = assert_429(&refused, "requests");
    // A noisy client does not starve another credential.
    lrs.get("/statements")
        .query("limit", "1")
        .auth(&other_key, &other_secret)
        .send()
        .assert_status(200);
    std::thread::sleep(Duration::from_secs(wait));
    lrs.get("/statements")
        .query("limit", "1")
        .send()
        .assert_status(200);
    assert!(rate_limited_total(&lrs, "requests") >= 1.0);
}

#[test]
fn statement_batch_over_allowance_is_refused_whole() {
    let lrs = Lrs::builder()
        .args(["--rate-statements", "1", "--rate-statements-burst", "10"])
        .start();
    lrs.require_spawned("it sets --rate-statements");
    let (other_key, other_secret) = lrs.credential(&["all"]);
    let batch = |n: usize| -> Vec<Value> { (0..n).map(|_| statement()).collect() };
    lrs.post("/statements")
        .json(&Value::from(batch(8)))
        .send()
        .assert_status(200);
    let refused_batch = batch(5);
    let r = lrs
        .post("/statements")
        .json(&Value::from(refused_batch.clone()))
        .send();
    assert_429(&r, "statements");
    for s in &refused_batch {
        let id = s["id"].as_str().expect("id");
        lrs.get("/statements")
            .query("statementId", id)
            .send()
            .assert_status(404);
    }
    // The refused batch cost nothing: two more statements still fit.
    lrs.post("/statements")
        .json(&Value::from(batch(2)))
        .send()
        .assert_status(200);
    // Another credential has its own allowance.
    lrs.post("/statements")
        .json(&Value::from(batch(10)))
        .auth(&other_key, &other_secret)
        .send()
        .assert_status(200);
    assert!(rate_limited_total(&lrs, "statements") >= 1.0);
}
