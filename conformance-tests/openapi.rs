//! `GET /openapi.json`: an OpenAPI 3.1 document that matches what the server serves.
//! Every documented operation (except those marked `x-karmayogi-status: in progress`) is
//! sent to a real server with a valid credential and the document's examples: the route
//! must exist (no 405, no router 404), and the status and Content-Type must be ones the
//! document lists for that operation.
use crate::audit::root;
use crate::harness::{Lrs, Response};
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "head", "put", "post", "delete"];

/// The 404 messages of the routers (no route matched), as opposed to a handler's 404.
const ROUTER_404: [&str; 5] = [
    "no such xAPI resource",
    karmayogi_lrs::http::front::NO_SUCH_RESOURCE,
    "no such admin resource",
    "no such audit resource",
    "this listener serves GET /metrics only",
];

fn document(lrs: &Lrs) -> Value {
    let r = lrs
        .get(&format!("{}/openapi.json", root(lrs)))
        .no_version()
        .no_auth()
        .send();
    r.assert_status(200);
    assert!(
        r.header("Content-Type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{}",
        r.describe()
    );
    r.json()
}

/// Follows a local `$ref` (`#/components/…`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(doc, target)
        }
        None => v,
    }
}

fn example_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Operations not in progress: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, &'static str, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                if op.get("x-karmayogi-status").is_none() {
                    ops.push((path.clone(), m, op.clone()));
                }
            }
        }
    }
    ops
}

fn send(lrs: &Lrs, doc: &Value, path: &str, method: &str, op: &Value) -> Response {
    let params: Vec<&Value> = op["parameters"]
        .as_array()
        .map(|a| a.iter().map(|p| resolve(doc, p)).collect())
        .unwrap_or_default();
    let mut url_path = path.to_owned();
    for p in params.iter().filter(|p| p["in"] == "path") {
        let name = p["name"].as_str().expect("name");
        let ex = p
            .get("example")
            .unwrap_or_else(|| panic!("{method} {path}: path parameter `{name}` has no example"));
        url_path = url_path.replace(&format!("{{{name}}}"), &example_text(ex));
    }
    let mut req = lrs
        .request(method, &format!("{}{url_path}", root(lrs)))
        .no_version();
    for p in params.iter().filter(|p| p["required"] == true) {
        let name = p["name"].as_str().expect("name");
        let ex = p.get("example").unwrap_or_else(|| {
            panic!("{method} {path}: required parameter `{name}` has no example")
        });
        match p["in"].as_str() {
            Some("query") => req = req.query(name, &example_text(ex)),
            Some("header") => req = req.header(name, &example_text(ex)),
            _ => {}
        }
    }
    if let Some(body) = op.get("requestBody") {
        let body = resolve(doc, body);
        if let Some(ex) = body.pointer("/content/application~1octet-stream/example") {
            // A binary upload (a package zip): the example is its bytes as text.
            req = req.body("application/octet-stream", example_text(ex).into_bytes());
        } else {
            let ex = body
                .pointer("/content/application~1json/example")
                .unwrap_or_else(|| panic!("{method} {path}: no application/json example body"));
            req = req.json(ex);
        }
    }
    req.send()
}

/// Checks one answer against the operation's responses.
fn check(doc: &Value, path: &str, method: &str, op: &Value, r: &Response) {
    let what = format!("{} {path}", method.to_ascii_uppercase());
    assert_ne!(
        r.status,
        405,
        "{what} is documented but not served\n{}",
        r.describe()
    );
    if r.status == 404 {
        let message = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        assert!(
            !ROUTER_404.contains(&message.as_str()),
            "{what} is documented but no route serves it\n{}",
            r.describe()
        );
    }
    let responses = op["responses"].as_object().expect("responses");
    let listed = responses
        .get(&r.status.to_string())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| {
            panic!(
                "{what}: status {} is not among the documented {:?}\n{}",
                r.status,
                responses.keys().collect::<Vec<_>>(),
                r.describe()
            )
        });
    let listed = resolve(doc, listed);
    if method == "head" || r.body.is_empty() {
        return;
    }
    let ct = essence(r.header("Content-Type").unwrap_or_default());
    let types: Vec<String> = listed
        .get("content")
        .and_then(Value::as_object)
        .map(|c| c.keys().map(|k| essence(k)).collect())
        .unwrap_or_default();
    assert!(
        types.iter().any(|t| *t == ct || t == "*/*"),
        "{what} → {}: Content-Type `{ct}` is not among the documented {types:?}\n{}",
        r.status,
        r.describe()
    );
}

#[test]
fn openapi_document_is_openapi_3_1_and_served_plainly() {
    let lrs = Lrs::start();
    let doc = document(&lrs);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["basicAuth"]["scheme"], "basic");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{m} {path} has no responses"
                );
            }
        }
    }
}

#[test]
fn openapi_every_documented_operation_is_served_as_documented() {
    let lrs = Lrs::start();
    let doc = document(&lrs);
    let ops = operations(&doc);
    assert!(ops.len() >= 40, "only {} operations documented", ops.len());
    for (path, method, op) in &ops {
        let r = send(&lrs, &doc, path, method, op);
        check(&doc, path, method, op, &r);
    }
    // Each path served for a method the document does not list answers 405.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if item
            .as_object()
            .is_some_and(|o| o.values().any(|op| op.get("x-karmayogi-status").is_some()))
            || path.contains('{')
        {
            continue;
        }
        for m in METHODS.iter().filter(|m| item.get(**m).is_none()) {
            let r = lrs
                .request(m, &format!("{}{path}", root(&lrs)))
                .version("2.0.0")
                .send();
            assert!(
                matches!(r.status, 404 | 405),
                "{} {path} answers but is not documented\n{}",
                m.to_ascii_uppercase(),
                r.describe()
            );
        }
    }
}
