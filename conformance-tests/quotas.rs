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

/// PATCH /admin/departments/{path} with `limits`.
fn set_limits(lrs: &Lrs, admin: &(String, String), path: &str, limits: Value) -> Response {
    lrs.request(
        "PATCH",
        &lrs.root_url(&format!("/admin/departments/{path}")),
    )
    .no_version()
    .auth(&admin.0, &admin.1)
    .json(&serde_json::json!({ "limits": limits }))
    .send()
}

/// Limits per department, set through the admin API: a department's limit applies to
/// every credential in its subtree, a sub-department's own setting (here: unlimited)
/// overrides it, a department without one has the server's; a department's
/// administrators set them only below their own department; the limits survive a restart.
#[test]
fn department_limits_apply_to_the_subtree_and_a_sub_department_overrides_them() {
    let mut lrs = Lrs::builder()
        .args(["--rate-statements", "20", "--rate-statements-burst", "20"])
        .start();
    lrs.require_spawned("it sets --rate-statements and restarts");
    for d in ["moe", "moe/dhe", "moe/dsel", "mohfw"] {
        lrs.cli(&["departments", "create", d]);
    }
    let root = (lrs.key().to_owned(), lrs.secret().to_owned());
    let moe_admin = lrs.department_credential("moe", &["admin"]);
    let moe = lrs.department_credential("moe", &["all"]);
    let dhe = lrs.department_credential("moe/dhe", &["all"]);
    let dsel = lrs.department_credential("moe/dsel", &["all"]);
    let mohfw = lrs.department_credential("mohfw", &["all"]);

    let ten = serde_json::json!({ "statements": { "perSecond": 1, "burst": 10 } });
    let r = set_limits(&lrs, &root, "moe", ten.clone());
    r.assert_status(200);
    assert_eq!(r.json()["path"], "moe", "{}", r.describe());
    assert_eq!(
        r.json()["limits"]["statements"]["burst"],
        10.0,
        "{}",
        r.describe()
    );
    // Not their own department, and nothing outside their subtree (the same answer
    // whether or not the department exists there).
    let own = set_limits(&lrs, &moe_admin, "moe", serde_json::json!({}));
    own.assert_error(403);
    let elsewhere = set_limits(&lrs, &moe_admin, "mohfw", serde_json::json!({}));
    let nowhere = set_limits(&lrs, &moe_admin, "mocl", serde_json::json!({}));
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.describe());
    assert_eq!(nowhere.status, 403, "{}", nowhere.describe());
    set_limits(&lrs, &moe_admin, "moe/none", serde_json::json!({})).assert_error(404);
    for (bad, path) in [
        (serde_json::json!(5), "/limits"),
        (
            serde_json::json!({ "statements": { "perSecond": 0 } }),
            "/limits/statements/perSecond",
        ),
        (
            serde_json::json!({ "statement": null }),
            "/limits/statement",
        ),
    ] {
        let r = set_limits(&lrs, &moe_admin, "moe/dhe", bad);
        assert_eq!(r.assert_error(400)["path"], path, "{}", r.describe());
    }
    // The department's administrator lifts the limit for one sub-department.
    set_limits(
        &lrs,
        &moe_admin,
        "moe/dhe",
        serde_json::json!({ "statements": null }),
    )
    .assert_status(200);

    let listed = lrs
        .get(&lrs.root_url("/admin/departments"))
        .no_version()
        .send();
    listed.assert_status(200);
    let limits_of = |path: &str| -> Value {
        listed.json()["departments"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["path"] == path).cloned())
            .map(|d| d["limits"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        limits_of("moe"),
        serde_json::json!({ "statements": { "perSecond": 1.0, "burst": 10.0 } })
    );
    assert_eq!(
        limits_of("moe/dhe"),
        serde_json::json!({ "statements": null })
    );
    assert_eq!(limits_of("mohfw"), serde_json::json!({}));

    let batch =
        |n: usize| -> Value { Value::from((0..n).map(|_| statement()).collect::<Vec<_>>()) };
    let post = |lrs: &Lrs, who: &(String, String), n: usize| {
        lrs.post("/statements")
            .auth(&who.0, &who.1)
            .json(&batch(n))
            .send()
    };
    let check = |lrs: &Lrs, note: &str| {
        // moe's limit (burst 10) in moe and below it, dhe excepted.
        assert_429(&post(lrs, &moe, 11), "statements");
        post(lrs, &moe, 10).assert_status(200);
        assert_429(&post(lrs, &dsel, 11), "statements");
        // Unlimited in dhe: past moe's limit and the server's.
        post(lrs, &dhe, 60).assert_status(200);
        // No setting in mohfw: the server's (burst 20).
        assert_429(&post(lrs, &mohfw, 21), "statements");
        post(lrs, &mohfw, 20).assert_status(200);
        eprintln!("department limits hold {note}");
    };
    check(&lrs, "as set");
    lrs.restart(crate::harness::Stop::Term);
    check(&lrs, "after a restart");
}
