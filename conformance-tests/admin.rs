//! Delegated administration (`/admin`, not xAPI; issue 12): a credential with the `admin`
//! scope creates and removes the departments below its own and issues, lists and revokes
//! the credentials of its subtree, without learning anything about the rest of the tree.
//! The `departments` and `credentials` commands do the same as the root.
use crate::harness::{statement, Lrs, Response};
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};

/// `http://host:port/admin{path}`: the admin API sits beside the xAPI endpoint.
fn admin_url(lrs: &Lrs, path: &str) -> String {
    let origin = lrs
        .endpoint()
        .strip_suffix("/xapi")
        .unwrap_or_else(|| panic!("the endpoint {} does not end in /xapi", lrs.endpoint()));
    format!("{origin}/admin{path}")
}

/// A request to the admin API with the bootstrap credential (scopes `all` and `admin`)
/// and no `X-Experience-API-Version` header (the admin API is not xAPI).
fn admin<'a>(lrs: &'a Lrs, method: &str, path: &str) -> crate::harness::Req<'a> {
    lrs.request(method, &admin_url(lrs, path)).no_version()
}

/// The same with another credential.
fn admin_as<'a>(
    lrs: &'a Lrs,
    who: &(String, String),
    method: &str,
    path: &str,
) -> crate::harness::Req<'a> {
    admin(lrs, method, path).auth(&who.0, &who.1)
}

fn create_department(lrs: &Lrs, path: &str) -> Value {
    let r = admin(lrs, "POST", "/departments")
        .json(&json!({ "path": path }))
        .send();
    r.assert_status(201);
    r.json()
}

/// Issues a credential through the API as `by` (default: the bootstrap credential).
fn issue(
    lrs: &Lrs,
    by: Option<&(String, String)>,
    department: Option<&str>,
    scopes: &[&str],
) -> (String, String) {
    let mut body = json!({ "name": "issued by the admin API", "scopes": scopes });
    if let Some(d) = department {
        body["department"] = json!(d);
    }
    let req = match by {
        Some(who) => admin_as(lrs, who, "POST", "/credentials"),
        None => admin(lrs, "POST", "/credentials"),
    };
    let r = req.json(&body).send();
    r.assert_status(201);
    let v = r.json();
    (
        v["key"].as_str().expect("key").to_owned(),
        v["secret"].as_str().expect("secret").to_owned(),
    )
}

fn paths(r: &Response) -> Vec<String> {
    r.json()["departments"]
        .as_array()
        .unwrap_or_else(|| panic!("no `departments` array\n{}", r.describe()))
        .iter()
        .map(|d| d["path"].as_str().expect("path").to_owned())
        .collect()
}

fn credential_entries(r: &Response) -> Vec<Value> {
    r.json()["credentials"]
        .as_array()
        .unwrap_or_else(|| panic!("no `credentials` array\n{}", r.describe()))
        .clone()
}

fn post_statement(lrs: &Lrs, who: &(String, String)) -> (u16, String) {
    let s = statement();
    let id = s["id"].as_str().expect("id").to_owned();
    let r = lrs.post("/statements").auth(&who.0, &who.1).json(&s).send();
    (r.status, id)
}

/// Runs the command line on the server's store (acting as the root).
fn cli(lrs: &Lrs, args: &[&str]) -> Output {
    lrs.require_spawned("it administers the store with the command line");
    let store = lrs.store().expect("spawned").to_owned();
    Command::new(env!("CARGO_BIN_EXE_karmayogi-lrs"))
        .args(args)
        .args(["--store", &store])
        .env_remove("LRS_STORE")
        .env("LRS_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn cli_ok(lrs: &Lrs, args: &[&str]) -> String {
    let out = cli(lrs, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command fails; returns its standard error.
fn cli_fails(lrs: &Lrs, args: &[&str]) -> String {
    let out = cli(lrs, args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn message(err: &Value) -> &str {
    err["message"].as_str().unwrap_or_default()
}

#[test]
fn admin_every_route_needs_the_admin_scope() {
    let lrs = Lrs::start();
    lrs.require_spawned("it creates credentials");
    create_department(&lrs, "moe");
    let all = lrs.credential(&["all"]);
    let routes = [
        ("GET", "/departments", None),
        ("POST", "/departments", Some(json!({"path": "moe/x"}))),
        ("DELETE", "/departments/moe", None),
        ("GET", "/credentials", None),
        (
            "POST",
            "/credentials",
            Some(json!({"name": "x", "scopes": ["all"]})),
        ),
        ("DELETE", "/credentials/some-key", None),
    ];
    for (method, path, body) in &routes {
        fn with_body<'a>(
            req: crate::harness::Req<'a>,
            body: &Option<Value>,
        ) -> crate::harness::Req<'a> {
            match body {
                Some(b) => req.json(b),
                None => req,
            }
        }
        // No credential: 401; scope `all` (xAPI only): 403.
        let r = with_body(admin(&lrs, method, path).no_auth(), body).send();
        r.assert_error(401);
        let r = with_body(admin_as(&lrs, &all, method, path), body).send();
        let e = r.assert_error(403);
        assert!(message(&e).contains("admin"), "{}", r.describe());
    }
    // Nothing changed.
    assert_eq!(
        paths(&admin(&lrs, "GET", "/departments").send()),
        ["/", "moe"]
    );
    // `all` + `admin` (the bootstrap credential), without a version header: allowed.
    let r = admin(&lrs, "GET", "/departments").send();
    r.assert_status(200);
    assert!(
        r.header("Content-Type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{}",
        r.describe()
    );
    // A credential with `admin` alone administers but cannot use xAPI.
    let only_admin = issue(&lrs, None, None, &["admin"]);
    admin_as(&lrs, &only_admin, "GET", "/credentials")
        .send()
        .assert_status(200);
    lrs.get("/statements")
        .auth(&only_admin.0, &only_admin.1)
        .send()
        .assert_error(403);
}

#[test]
fn admin_api_is_not_xapi_but_errors_stay_json() {
    let lrs = Lrs::start();
    // No version header needed here, still needed on /xapi.
    admin(&lrs, "GET", "/departments").send().assert_status(200);
    lrs.get("/statements").no_version().send().assert_error(400);
    // A version header is harmless.
    admin(&lrs, "GET", "/credentials")
        .version("2.0.0")
        .send()
        .assert_status(200);
    admin(&lrs, "GET", "/nothing-here").send().assert_error(404);
    admin(&lrs, "PUT", "/departments")
        .json(&json!({"path": "moe"}))
        .send()
        .assert_error(405);
    admin(&lrs, "GET", "/departments")
        .query("foo", "1")
        .send()
        .assert_error(400);
}

#[test]
fn admin_departments_create_list_remove() {
    let lrs = Lrs::start();
    let moe = create_department(&lrs, "moe");
    assert_eq!(moe["path"], "moe");
    assert_eq!(moe["parent"], "/");
    let created = moe["created"].as_str().expect("created is a string");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "created `{created}` is not RFC 3339"
    );
    let dhe = create_department(&lrs, "moe/dhe");
    assert_eq!(dhe["parent"], "moe");
    create_department(&lrs, "moe-x");
    create_department(&lrs, "mha");

    // Exists: 409. Parent missing: 404 naming it. The root: never created.
    let e = admin(&lrs, "POST", "/departments")
        .json(&json!({"path": "moe"}))
        .send()
        .assert_error(409);
    assert!(message(&e).contains("already exists"), "{e}");
    let e = admin(&lrs, "POST", "/departments")
        .json(&json!({"path": "mof/dea"}))
        .send()
        .assert_error(404);
    assert!(
        message(&e).contains("parent department `mof` does not exist"),
        "{e}"
    );
    admin(&lrs, "POST", "/departments")
        .json(&json!({"path": "/"}))
        .send()
        .assert_error(403);

    // The caller's node first (the root: no parent, no creation time), then tree order.
    let r = admin(&lrs, "GET", "/departments").send();
    r.assert_status(200);
    assert_eq!(paths(&r), ["/", "mha", "moe", "moe/dhe", "moe-x"]);
    let root = &r.json()["departments"][0];
    assert_eq!(root["parent"], Value::Null);
    assert_eq!(root["created"], Value::Null);

    // Sub-departments first: 409; then 204; again: 404.
    let e = admin(&lrs, "DELETE", "/departments/moe")
        .send()
        .assert_error(409);
    assert!(message(&e).contains("moe/dhe"), "{e}");
    admin(&lrs, "DELETE", "/departments/moe/dhe")
        .send()
        .assert_status(204);
    admin(&lrs, "DELETE", "/departments/moe/dhe")
        .send()
        .assert_error(404);
    admin(&lrs, "DELETE", "/departments/moe")
        .send()
        .assert_status(204);
    admin(&lrs, "DELETE", "/departments/never-was")
        .send()
        .assert_error(404);
    // The root cannot be removed.
    admin(&lrs, "DELETE", "/departments/")
        .send()
        .assert_error(403);
    admin(&lrs, "DELETE", "/departments/mha")
        .query("force", "maybe")
        .send()
        .assert_error(400);
    assert_eq!(
        paths(&admin(&lrs, "GET", "/departments").send()),
        ["/", "mha", "moe-x"]
    );
}

#[test]
fn admin_malformed_requests_are_400_naming_the_field() {
    let lrs = Lrs::start();
    create_department(&lrs, "moe");
    let nine = ["a"; 9].join("/");
    let long = "a".repeat(65);
    for bad in [
        "..", "moe/..", "a//b", "MoE", "/moe", "moe/", "moe dhe", &nine, &long,
    ] {
        let r = admin(&lrs, "POST", "/departments")
            .json(&json!({ "path": bad }))
            .send();
        let e = r.assert_error(400);
        assert_eq!(e["path"], "/path", "{bad}: {}", r.describe());
    }
    // The same paths in a DELETE (those a URL carries unchanged).
    for bad in ["MoE", "a//b", &nine, &long] {
        admin(&lrs, "DELETE", &format!("/departments/{bad}"))
            .send()
            .assert_error(400);
    }
    let cases = [
        (json!({"path": "moe/a", "name": "x"}), "/name"),
        (json!({"path": 7}), "/path"),
        (json!({}), "/path"),
    ];
    for (body, field) in cases {
        let r = admin(&lrs, "POST", "/departments").json(&body).send();
        let e = r.assert_error(400);
        assert_eq!(e["path"], field, "{body}: {}", r.describe());
    }
    for raw in ["", "{", "[\"moe/a\"]", "\"moe/a\""] {
        admin(&lrs, "POST", "/departments")
            .body("application/json", raw)
            .send()
            .assert_error(400);
    }
    let cases = [
        (
            json!({"name": "x", "scopes": ["all"], "extra": 1}),
            "/extra",
        ),
        (json!({"name": "x", "scopes": ["all", "nope"]}), "/scopes/1"),
        (json!({"name": "x", "scopes": "all,nope"}), "/scopes/1"),
        (json!({"name": "x", "scopes": [3]}), "/scopes/0"),
        (json!({"name": "x", "scopes": 3}), "/scopes"),
        (json!({"name": "x", "scopes": []}), "/scopes"),
        (json!({"name": "x"}), "/scopes"),
        (json!({"scopes": ["all"]}), "/name"),
        (json!({"name": " ", "scopes": ["all"]}), "/name"),
        (
            json!({"name": "x", "scopes": ["all"], "department": "MoE"}),
            "/department",
        ),
        (
            json!({"name": "x", "scopes": ["all"], "department": 1}),
            "/department",
        ),
    ];
    for (body, field) in cases {
        let r = admin(&lrs, "POST", "/credentials").json(&body).send();
        let e = r.assert_error(400);
        assert_eq!(e["path"], field, "{body}: {}", r.describe());
    }
    // Nothing was issued.
    let r = admin(&lrs, "GET", "/credentials").send();
    assert_eq!(credential_entries(&r).len(), 1, "{}", r.describe());
}

#[test]
fn admin_delegated_admin_sees_and_administers_only_its_subtree() {
    let lrs = Lrs::start();
    create_department(&lrs, "moe");
    create_department(&lrs, "moe/dhe");
    let moe_admin = issue(&lrs, None, Some("moe"), &["admin", "all"]);

    // Before `mha` exists: what a delegated admin of `moe` gets for `mha` and below.
    let attempts = |lrs: &Lrs| -> Vec<(u16, Value)> {
        let rs = [
            admin_as(lrs, &moe_admin, "POST", "/departments").json(&json!({"path": "mha/x"})),
            admin_as(lrs, &moe_admin, "POST", "/departments").json(&json!({"path": "mha"})),
            admin_as(lrs, &moe_admin, "DELETE", "/departments/mha/x"),
            admin_as(lrs, &moe_admin, "DELETE", "/departments/mha"),
            admin_as(lrs, &moe_admin, "POST", "/credentials")
                .json(&json!({"name": "x", "scopes": ["all"], "department": "mha/x"})),
        ];
        rs.into_iter()
            .map(|r| {
                let r = r.send();
                let e = r.assert_error(403);
                assert!(!message(&e).is_empty());
                (r.status, r.json())
            })
            .collect()
    };
    let before = attempts(&lrs);
    create_department(&lrs, "mha");
    create_department(&lrs, "mha/x");
    let after = attempts(&lrs);
    assert_eq!(
        before, after,
        "answers about departments outside the subtree must not tell existing from missing ones"
    );

    // Its own department and the root are not its to create or remove.
    for path in ["moe", "/"] {
        admin_as(&lrs, &moe_admin, "POST", "/departments")
            .json(&json!({ "path": path }))
            .send()
            .assert_error(403);
    }
    admin_as(&lrs, &moe_admin, "DELETE", "/departments/moe")
        .send()
        .assert_error(403);
    // Below it: yours.
    let r = admin_as(&lrs, &moe_admin, "POST", "/departments")
        .json(&json!({"path": "moe/dhe/ugc"}))
        .send();
    r.assert_status(201);
    assert_eq!(r.json()["parent"], "moe/dhe");
    let e = admin_as(&lrs, &moe_admin, "POST", "/departments")
        .json(&json!({"path": "moe/nope/x"}))
        .send()
        .assert_error(404);
    assert!(message(&e).contains("`moe/nope`"), "{e}");

    // It lists its own node first, then its subtree; nothing else.
    let r = admin_as(&lrs, &moe_admin, "GET", "/departments").send();
    r.assert_status(200);
    assert_eq!(paths(&r), ["moe", "moe/dhe", "moe/dhe/ugc"]);
    assert_eq!(r.json()["departments"][0]["parent"], "/");
    assert!(r.json()["departments"][0]["created"].is_string());

    // Credentials: issued in its own department by default, never outside the subtree.
    let r = admin_as(&lrs, &moe_admin, "POST", "/credentials")
        .json(&json!({"name": "moe content", "scopes": "statements/write"}))
        .send();
    r.assert_status(201);
    assert_eq!(r.json()["department"], "moe");
    for outside in ["/", "mha"] {
        admin_as(&lrs, &moe_admin, "POST", "/credentials")
            .json(&json!({"name": "x", "scopes": ["all"], "department": outside}))
            .send()
            .assert_error(403);
    }
    let e = admin_as(&lrs, &moe_admin, "POST", "/credentials")
        .json(&json!({"name": "x", "scopes": ["all"], "department": "moe/gone"}))
        .send()
        .assert_error(404);
    assert!(message(&e).contains("moe/gone"), "{e}");
    let mha_key = issue(&lrs, None, Some("mha"), &["all"]).0;

    // Listing: the subtree's credentials only (not the root's bootstrap, not mha's).
    let r = admin_as(&lrs, &moe_admin, "GET", "/credentials").send();
    r.assert_status(200);
    let listed = credential_entries(&r);
    let keys: Vec<&str> = listed.iter().filter_map(|c| c["key"].as_str()).collect();
    assert!(keys.contains(&moe_admin.0.as_str()), "{}", r.describe());
    assert!(!keys.contains(&lrs.key()), "{}", r.describe());
    assert!(!keys.contains(&mha_key.as_str()), "{}", r.describe());
    assert_eq!(listed.len(), 2, "{}", r.describe());
    for c in &listed {
        let d = c["department"].as_str().unwrap_or_default();
        assert!(d == "moe" || d.starts_with("moe/"), "{c}");
    }
    // The root's administrator sees them all.
    let r = admin(&lrs, "GET", "/credentials").send();
    assert_eq!(credential_entries(&r).len(), 4, "{}", r.describe());
}

#[test]
fn admin_credential_issued_in_a_department_works_for_xapi() {
    let lrs = Lrs::start();
    create_department(&lrs, "moe");
    create_department(&lrs, "moe/dhe");
    let r = admin(&lrs, "POST", "/credentials")
        .json(&json!({
            "name": "DHE content",
            "scopes": ["statements/write", "statements/read", "statements/write"],
            "department": "moe/dhe"
        }))
        .send();
    r.assert_status(201);
    assert_eq!(
        r.header("Cache-Control"),
        Some("no-store"),
        "{}",
        r.describe()
    );
    let v = r.json();
    assert_eq!(v["name"], "DHE content");
    assert_eq!(v["department"], "moe/dhe");
    assert_eq!(v["scopes"], json!(["statements/write", "statements/read"]));
    let key = v["key"].as_str().expect("key").to_owned();
    let secret = v["secret"].as_str().expect("secret").to_owned();
    assert!(!key.starts_with('-') && secret.len() >= 32, "{v}");
    let dhe = (key.clone(), secret.clone());

    let (status, id) = post_statement(&lrs, &dhe);
    assert_eq!(status, 200);
    lrs.get("/statements")
        .auth(&key, &secret)
        .query("statementId", &id)
        .send()
        .assert_status(200);

    let r = admin(&lrs, "GET", "/credentials").send();
    let listed = credential_entries(&r);
    let entry = listed
        .iter()
        .find(|c| c["key"] == key.as_str())
        .unwrap_or_else(|| panic!("{key} not listed\n{}", r.describe()));
    assert_eq!(entry["department"], "moe/dhe");
    assert_eq!(entry["name"], "DHE content");
    assert_eq!(entry["revoked"], false);
    assert!(entry["created"].is_string());
    let mut fields: Vec<&str> = entry
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["created", "department", "key", "name", "revoked", "scopes"]
    );
    assert!(
        !r.text().contains(&secret) && !r.text().contains("argon2"),
        "listing must never show secrets or hashes\n{}",
        r.describe()
    );
}

#[test]
fn admin_revoking_outside_the_subtree_looks_like_an_unknown_key() {
    let lrs = Lrs::start();
    create_department(&lrs, "moe");
    create_department(&lrs, "mha");
    let moe_admin = issue(&lrs, None, Some("moe"), &["admin"]);
    let mha = issue(&lrs, None, Some("mha"), &["all"]);

    let r = admin_as(
        &lrs,
        &moe_admin,
        "DELETE",
        &format!("/credentials/{}", mha.0),
    )
    .send();
    r.assert_error(404);
    let other = r.text().replace(&mha.0, "KEY");
    let unknown_key = "no-such-key-0123456789";
    let r = admin_as(
        &lrs,
        &moe_admin,
        "DELETE",
        &format!("/credentials/{unknown_key}"),
    )
    .send();
    r.assert_error(404);
    assert_eq!(
        other,
        r.text().replace(unknown_key, "KEY"),
        "a key outside the subtree must get the answer of an unknown key"
    );
    // The bootstrap (root) credential is outside `moe` too.
    admin_as(
        &lrs,
        &moe_admin,
        "DELETE",
        &format!("/credentials/{}", lrs.key()),
    )
    .send()
    .assert_error(404);
    // Untouched: mha's credential still writes.
    assert_eq!(post_statement(&lrs, &mha).0, 200);

    // Within the subtree: revoked (and revoking again is no error).
    let moe_content = issue(&lrs, Some(&moe_admin), None, &["statements/write"]);
    for _ in 0..2 {
        admin_as(
            &lrs,
            &moe_admin,
            "DELETE",
            &format!("/credentials/{}", moe_content.0),
        )
        .send()
        .assert_status(204);
    }
    let r = admin(&lrs, "GET", "/credentials").send();
    let listed = credential_entries(&r);
    let revoked = |key: &str| {
        listed
            .iter()
            .find(|c| c["key"] == key)
            .map(|c| c["revoked"].clone())
    };
    assert_eq!(
        revoked(&moe_content.0),
        Some(json!(true)),
        "{}",
        r.describe()
    );
    assert_eq!(revoked(&mha.0), Some(json!(false)), "{}", r.describe());
    // Never used, so never cached: refused at once.
    lrs.post("/statements")
        .auth(&moe_content.0, &moe_content.1)
        .json(&statement())
        .send()
        .assert_error(401);
}

#[test]
fn admin_removing_a_department_keeps_its_records() {
    let lrs = Lrs::start();
    create_department(&lrs, "moe");
    create_department(&lrs, "moe/dhe");
    create_department(&lrs, "moe/empty");
    let moe_admin = issue(&lrs, None, Some("moe"), &["admin"]);
    let moe_reader = issue(&lrs, None, Some("moe"), &["statements/read"]);
    let dhe = issue(
        &lrs,
        Some(&moe_admin),
        Some("moe/dhe"),
        &["statements/write"],
    );
    let (status, id) = post_statement(&lrs, &dhe);
    assert_eq!(status, 200);

    // Holding a credential and statements: refused without force, saying what it holds.
    let r = admin_as(&lrs, &moe_admin, "DELETE", "/departments/moe/dhe").send();
    let e = r.assert_error(409);
    let m = message(&e);
    assert!(
        m.contains("1 active credential") && m.contains("statements") && m.contains("force"),
        "{}",
        r.describe()
    );
    assert!(paths(&admin(&lrs, "GET", "/departments").send()).contains(&"moe/dhe".to_owned()));

    // An empty department goes without force.
    admin_as(&lrs, &moe_admin, "DELETE", "/departments/moe/empty")
        .send()
        .assert_status(204);

    // Forced: the node goes, its credentials are revoked, its records stay.
    admin_as(&lrs, &moe_admin, "DELETE", "/departments/moe/dhe")
        .query("force", "true")
        .send()
        .assert_status(204);
    assert_eq!(
        paths(&admin_as(&lrs, &moe_admin, "GET", "/departments").send()),
        ["moe"]
    );
    let r = admin(&lrs, "GET", "/credentials").send();
    let entry = credential_entries(&r)
        .into_iter()
        .find(|c| c["key"] == dhe.0.as_str())
        .unwrap_or_else(|| panic!("{} not listed\n{}", dhe.0, r.describe()));
    assert_eq!(entry["revoked"], true, "{entry}");
    // The parent's credential still reads the statement.
    let r = lrs
        .get("/statements")
        .auth(&moe_reader.0, &moe_reader.1)
        .query("statementId", &id)
        .send();
    r.assert_status(200);
    assert_eq!(r.json()["id"], id.as_str(), "{}", r.describe());
}

#[test]
fn admin_documents_alone_block_a_removal() {
    let lrs = Lrs::start();
    create_department(&lrs, "moe");
    let state = issue(&lrs, None, Some("moe"), &["state"]);
    let r = lrs
        .put("/activities/state")
        .auth(&state.0, &state.1)
        .query("activityId", "http://example.com/activities/a")
        .query(
            "agent",
            &json!({"mbox": "mailto:learner@example.com"}).to_string(),
        )
        .query("stateId", "bookmark")
        .body("application/octet-stream", "page 4")
        .send();
    r.assert_status(204);
    admin(&lrs, "DELETE", &format!("/credentials/{}", state.0))
        .send()
        .assert_status(204);
    let r = admin(&lrs, "DELETE", "/departments/moe").send();
    let e = r.assert_error(409);
    assert!(message(&e).contains("holds documents:"), "{}", r.describe());
    admin(&lrs, "DELETE", "/departments/moe")
        .query("force", "true")
        .send()
        .assert_status(204);
}

#[test]
fn admin_cli_departments_and_department_credentials() {
    let lrs = Lrs::start();
    lrs.require_spawned("it runs the command line");
    assert_eq!(
        cli_ok(&lrs, &["departments", "create", "moe"]).trim(),
        "created moe"
    );
    cli_ok(&lrs, &["departments", "create", "moe/dhe"]);
    assert!(cli_fails(&lrs, &["departments", "create", "moe"]).contains("already exists"));
    assert!(cli_fails(&lrs, &["departments", "create", "mha/x"]).contains("`mha` does not exist"));
    assert!(cli_fails(&lrs, &["departments", "create", "MoE"]).contains("malformed"));

    let listed = cli_ok(&lrs, &["departments", "list"]);
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert_eq!(rows[0][..2], ["/", "-"], "{listed}");
    assert_eq!(rows[1][..2], ["moe", "/"], "{listed}");
    assert_eq!(rows[2][..2], ["moe/dhe", "moe"], "{listed}");
    // The API agrees.
    assert_eq!(
        paths(&admin(&lrs, "GET", "/departments").send()),
        ["/", "moe", "moe/dhe"]
    );

    let out = cli_ok(
        &lrs,
        &[
            "credentials",
            "create",
            "--name",
            "DHE content",
            "--scopes",
            "statements/write,statements/read",
            "--department",
            "moe/dhe",
        ],
    );
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no `{name}` line:\n{out}"))
    };
    let dhe = (field("key:"), field("secret:"));
    assert_eq!(field("department:"), "moe/dhe");
    assert_eq!(post_statement(&lrs, &dhe).0, 200);
    let listed = cli_ok(&lrs, &["credentials", "list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&dhe.0))
        .unwrap_or_else(|| panic!("{} not listed:\n{listed}", dhe.0));
    assert!(
        line.contains("\tmoe/dhe\t") && line.ends_with("active"),
        "{line}"
    );
    // The default department is the root.
    let out = cli_ok(&lrs, &["credentials", "create", "--name", "root content"]);
    assert!(out.lines().any(|l| l == "department: /"), "{out}");
    assert!(cli_fails(
        &lrs,
        &[
            "credentials",
            "create",
            "--name",
            "x",
            "--department",
            "mha"
        ]
    )
    .contains("`mha` does not exist"));

    let err = cli_fails(&lrs, &["departments", "remove", "moe"]);
    assert!(err.contains("sub-department"), "{err}");
    let err = cli_fails(&lrs, &["departments", "remove", "moe/dhe"]);
    assert!(
        err.contains("1 active credential") && err.contains("statements"),
        "{err}"
    );
    let out = cli_ok(&lrs, &["departments", "remove", "moe/dhe", "--force"]);
    assert!(out.contains(&format!("revoked {}", dhe.0)), "{out}");
    // The statements written in `moe/dhe` still lie in `moe`'s subtree.
    let err = cli_fails(&lrs, &["departments", "remove", "moe"]);
    assert!(err.contains("holds statements"), "{err}");
    let out = cli_ok(&lrs, &["departments", "remove", "moe", "--force"]);
    assert!(!out.contains("revoked"), "{out}");
    assert!(cli_fails(&lrs, &["departments", "remove", "moe"]).contains("does not exist"));
    assert_eq!(cli_ok(&lrs, &["departments", "list"]).lines().count(), 1);
    let listed = cli_ok(&lrs, &["credentials", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&dhe.0) && l.ends_with("revoked")),
        "{listed}"
    );
}

#[test]
fn admin_scope_through_a_bearer_token() {
    const SECRET: &str = "test-hs256-secret-of-reasonable-length";
    let lrs = Lrs::builder().arg("--jwt-hs256-secret").arg(SECRET).start();
    lrs.require_spawned("the server must be started with a JWT key");
    create_department(&lrs, "moe");
    create_department(&lrs, "moe/dhe");
    create_department(&lrs, "mha");
    let token = |scope: &str| {
        let claims = json!({
            "sub": "moe-administrator", "scope": scope, "department": "moe",
            "exp": chrono::Utc::now().timestamp() + 3600,
        });
        let t = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("token encodes");
        format!("Bearer {t}")
    };
    let r = admin(&lrs, "GET", "/departments")
        .authorization(&token("admin"))
        .send();
    r.assert_status(200);
    assert_eq!(paths(&r), ["moe", "moe/dhe"]);
    admin(&lrs, "GET", "/departments")
        .authorization(&token("all"))
        .send()
        .assert_error(403);
}
