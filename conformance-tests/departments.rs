//! Departments (issue 12): every record belongs to one department; a credential writes to
//! its own and reads its subtree. The leak matrix: whatever one department writes is
//! invisible and uninferable from a sibling (the same answers as for things that exist
//! nowhere), visible from the parent, and the parent's own records are invisible from the
//! child — for every read path of every resource. Runs on whichever store the harness
//! uses (the embedded one, or MongoDB in the MongoDB pass).
use crate::attachments::{attachment_for, multipart, OutPart};
use crate::harness::{new_id, Lrs, Req, Response, VERSIONS};
use serde_json::{json, Value};

/// A Basic credential.
struct Who {
    key: String,
    secret: String,
}

/// `moe` with two sub-departments, `moe/dhe` and `moe/dsel`, and a credential (scope
/// `all`) in each.
struct Tree {
    lrs: Lrs,
    parent: Who,
    child: Who,
    sibling: Who,
}

fn tree() -> Tree {
    let lrs = Lrs::start();
    for d in ["moe", "moe/dhe", "moe/dsel"] {
        lrs.cli(&["departments", "create", d]);
    }
    let who = |d: &str| {
        let (key, secret) = lrs.department_credential(d, &["all"]);
        Who { key, secret }
    };
    let (parent, child, sibling) = (who("moe"), who("moe/dhe"), who("moe/dsel"));
    Tree {
        lrs,
        parent,
        child,
        sibling,
    }
}

fn req<'a>(lrs: &'a Lrs, who: &Who, method: &str, path: &str) -> Req<'a> {
    lrs.request(method, path).auth(&who.key, &who.secret)
}

/// What one department wrote: unique ids and IRIs, so any trace of them elsewhere shows.
struct Written {
    tag: String,
    activity: String,
    parent_activity: String,
    verb: String,
    agent: Value,
    instructor: Value,
    registration: String,
    /// Plain statements, with the activity definition carrying `tag`.
    ids: Vec<String>,
    /// With an attachment whose content is `tag`.
    attachment_statement: String,
    voided: String,
    statement_ref: String,
    state_etag: String,
    /// A `more` token of the writer's own query.
    more: String,
}

fn write(lrs: &Lrs, who: &Who) -> Written {
    let tag = format!("secret-{}", uuid::Uuid::new_v4().simple());
    let activity = format!("https://igot.example.gov.in/course/{tag}");
    let parent_activity = format!("https://igot.example.gov.in/programme/{tag}");
    let verb = format!("https://example.gov.in/verbs/{tag}");
    let agent = json!({"objectType": "Agent", "mbox": format!("mailto:{tag}@example.gov.in")});
    let instructor = json!({"mbox": format!("mailto:instructor-{tag}@example.gov.in")});
    let registration = uuid::Uuid::new_v4().to_string();
    let statement = |id: &str| {
        json!({
            "id": id,
            "actor": agent,
            "verb": {"id": verb, "display": {"en-US": "completed"}},
            "object": {"id": activity, "definition": {"name": {"en-US": tag}}},
            "context": {
                "registration": registration,
                "instructor": instructor,
                "contextActivities": {"parent": [{"id": parent_activity}]}
            }
        })
    };
    let ids = vec![new_id(), new_id()];
    let batch: Vec<Value> = ids.iter().map(|id| statement(id)).collect();
    req(lrs, who, "POST", "/statements")
        .json(&Value::from(batch))
        .send()
        .assert_status(200);

    let attachment_statement = new_id();
    let mut with_attachment = statement(&attachment_statement);
    with_attachment["attachments"] = json!([attachment_for(tag.as_bytes(), "text/plain")]);
    let (ct, body) = multipart(&[
        OutPart::json(&with_attachment),
        OutPart::attachment(tag.as_bytes(), "text/plain"),
    ]);
    req(lrs, who, "POST", "/statements")
        .body(&ct, body)
        .send()
        .assert_status(200);

    let voided = new_id();
    req(lrs, who, "POST", "/statements")
        .json(&statement(&voided))
        .send()
        .assert_status(200);
    req(lrs, who, "POST", "/statements")
        .json(&json!({
            "actor": agent,
            "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
            "object": {"objectType": "StatementRef", "id": voided}
        }))
        .send()
        .assert_status(200);
    let statement_ref = new_id();
    req(lrs, who, "POST", "/statements")
        .json(&json!({
            "id": statement_ref,
            "actor": agent,
            "verb": {"id": "https://example.gov.in/verbs/confirmed"},
            "object": {"objectType": "StatementRef", "id": ids[0]}
        }))
        .send()
        .assert_status(200);

    let agent_param = agent.to_string();
    let r = req(lrs, who, "PUT", "/activities/state")
        .query("activityId", &activity)
        .query("agent", &agent_param)
        .query("stateId", "bookmark")
        .json(&json!({"secret": tag}))
        .send();
    r.assert_status(204);
    let r = req(lrs, who, "GET", "/activities/state")
        .query("activityId", &activity)
        .query("agent", &agent_param)
        .query("stateId", "bookmark")
        .send();
    r.assert_status(200);
    let state_etag = r.assert_header("ETag").to_owned();
    req(lrs, who, "PUT", "/activities/profile")
        .query("activityId", &activity)
        .query("profileId", "syllabus")
        .header("If-None-Match", "*")
        .json(&json!({"secret": tag}))
        .send()
        .assert_status(204);
    req(lrs, who, "PUT", "/agents/profile")
        .query("agent", &agent_param)
        .query("profileId", "preferences")
        .header("If-None-Match", "*")
        .json(&json!({"secret": tag}))
        .send()
        .assert_status(204);

    let r = req(lrs, who, "GET", "/statements")
        .query("verb", &verb)
        .query("limit", "1")
        .send();
    r.assert_status(200);
    let more = r.json()["more"].as_str().unwrap_or_default().to_owned();
    assert!(!more.is_empty(), "the writer's own query pages");
    Written {
        tag,
        activity,
        parent_activity,
        verb,
        agent,
        instructor,
        registration,
        ids,
        attachment_statement,
        voided,
        statement_ref,
        state_etag,
        more,
    }
}

/// Every filter of GET /statements that selects `w`'s statements.
fn filters(w: &Written) -> Vec<Vec<(&'static str, String)>> {
    vec![
        vec![("verb", w.verb.clone())],
        vec![("agent", w.agent.to_string())],
        vec![("activity", w.activity.clone())],
        vec![("registration", w.registration.clone())],
        vec![
            ("activity", w.parent_activity.clone()),
            ("related_activities", "true".into()),
        ],
        vec![
            ("agent", w.instructor.to_string()),
            ("related_agents", "true".into()),
        ],
        vec![("verb", w.verb.clone()), ("ascending", "true".into())],
        vec![
            ("verb", w.verb.clone()),
            ("since", "2000-01-01T00:00:00Z".into()),
        ],
    ]
}

fn statements_of(r: &Response) -> Vec<Value> {
    r.json()["statements"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn body_text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The error body without what differs per request (nothing, today): compared between a
/// record that exists elsewhere and one that exists nowhere.
fn error_of(r: &Response, status: u16) -> Value {
    r.assert_error(status)
}

/// `reader` sees nothing of `w`, and every answer equals the one for things that exist
/// nowhere.
fn assert_invisible(lrs: &Lrs, reader: &Who, w: &Written, writer_department: &str) {
    for v in VERSIONS {
        // Statements by id, voided ones, HEAD: 404 with the body of an unknown id.
        let unknown = req(lrs, reader, "GET", "/statements")
            .version(v)
            .query("statementId", &new_id())
            .send();
        let unknown = error_of(&unknown, 404);
        for id in w
            .ids
            .iter()
            .chain([&w.attachment_statement, &w.statement_ref])
        {
            for attachments in ["false", "true"] {
                let r = req(lrs, reader, "GET", "/statements")
                    .version(v)
                    .query("statementId", id)
                    .query("attachments", attachments)
                    .send();
                assert_eq!(error_of(&r, 404), unknown, "statementId {id} under {v}");
            }
            req(lrs, reader, "HEAD", "/statements")
                .version(v)
                .query("statementId", id)
                .send()
                .assert_status(404);
        }
        let unknown_voided = req(lrs, reader, "GET", "/statements")
            .version(v)
            .query("voidedStatementId", &new_id())
            .send();
        let unknown_voided = error_of(&unknown_voided, 404);
        let r = req(lrs, reader, "GET", "/statements")
            .version(v)
            .query("voidedStatementId", &w.voided)
            .send();
        assert_eq!(error_of(&r, 404), unknown_voided, "voidedStatementId");

        // Every filter, every format, with and without attachments: nothing.
        for f in filters(w) {
            for format in ["exact", "ids", "canonical"] {
                for attachments in ["false", "true"] {
                    let mut q = req(lrs, reader, "GET", "/statements")
                        .version(v)
                        .query("format", format)
                        .query("attachments", attachments);
                    for (k, val) in &f {
                        q = q.query(k, val);
                    }
                    let r = q.send();
                    r.assert_status(200);
                    let text = body_text(&r);
                    assert!(
                        !text.contains(&w.tag),
                        "filter {f:?} format {format} attachments {attachments} under {v} shows another department's statement: {text}"
                    );
                    if attachments == "false" {
                        assert!(statements_of(&r).is_empty(), "filter {f:?}: {text}");
                    }
                }
            }
            let mut q = req(lrs, reader, "HEAD", "/statements").version(v);
            for (k, val) in &f {
                q = q.query(k, val);
            }
            q.send().assert_status(200);
        }
        // No filter at all: none of them among everything the reader may see.
        let r = req(lrs, reader, "GET", "/statements")
            .version(v)
            .query("limit", "0")
            .send();
        r.assert_status(200);
        assert!(!body_text(&r).contains(&w.tag), "unfiltered GET under {v}");

        // Another department's `more` is no cursor here.
        let r = lrs
            .get(&crate::statement_queries::more_url(lrs, &w.more))
            .auth(&reader.key, &reader.secret)
            .version(v)
            .send();
        let e = error_of(&r, 400);
        assert!(!e.to_string().contains(&w.tag), "{e}");

        // Narrowing to the writer's department: 403, as for a department that does not
        // exist.
        let nowhere = format!("{writer_department}-nowhere");
        let a = req(lrs, reader, "GET", "/statements")
            .version(v)
            .header("X-Department", writer_department)
            .send();
        let b = req(lrs, reader, "GET", "/statements")
            .version(v)
            .header("X-Department", &nowhere)
            .send();
        let (a, b) = (error_of(&a, 403), error_of(&b, 403));
        assert_eq!(
            a, b,
            "X-Department answers must not tell existing from missing departments"
        );
    }

    // The alternate request syntax (1.0.x) reads the same way.
    let auth = crate::harness::basic(&reader.key, &reader.secret);
    let form = format!(
        "statementId={}&X-Experience-API-Version=1.0.3&Authorization={}",
        w.ids[0],
        percent(&auth)
    );
    let r = lrs
        .post("/statements")
        .query("method", "GET")
        .no_auth()
        .no_version()
        .body("application/x-www-form-urlencoded", form)
        .send();
    r.assert_status(404);

    // Canonical definitions: the reader's own statement about the same activity, and the
    // activities resource, show nothing of the writer's definition.
    let own = new_id();
    req(lrs, reader, "POST", "/statements")
        .json(&json!({
            "id": own,
            "actor": {"mbox": "mailto:reader@example.gov.in"},
            "verb": {"id": "https://example.gov.in/verbs/viewed"},
            "object": {"id": w.activity}
        }))
        .send()
        .assert_status(200);
    let r = req(lrs, reader, "GET", "/statements")
        .query("statementId", &own)
        .query("format", "canonical")
        .send();
    r.assert_status(200);
    assert_eq!(
        r.json()["object"].get("definition"),
        None,
        "canonical format shows another department's definition"
    );
    let r = req(lrs, reader, "GET", "/activities")
        .query("activityId", &w.activity)
        .send();
    r.assert_status(200);
    assert_eq!(
        r.json(),
        json!({"objectType": "Activity", "id": w.activity})
    );

    // Agents: the Person object comes from the request alone.
    let r = req(lrs, reader, "GET", "/agents")
        .query("agent", &w.agent.to_string())
        .send();
    r.assert_status(200);
    assert!(!body_text(&r).contains("instructor"));

    // Documents: per department; GET, list, ETag preconditions.
    let agent_param = w.agent.to_string();
    let state = |method: &str| {
        req(lrs, reader, method, "/activities/state")
            .query("activityId", &w.activity)
            .query("agent", &agent_param)
    };
    state("GET")
        .query("stateId", "bookmark")
        .send()
        .assert_status(404);
    state("GET")
        .query("stateId", "bookmark")
        .header("If-None-Match", &w.state_etag)
        .send()
        .assert_status(404);
    state("HEAD")
        .query("stateId", "bookmark")
        .send()
        .assert_status(404);
    let r = state("GET").send();
    r.assert_status(200);
    assert_eq!(r.json(), json!([]), "state ids");
    let r = state("GET").query("registration", &w.registration).send();
    assert_eq!(r.json(), json!([]));
    // A write conditional on the writer's ETag finds no document here.
    state("PUT")
        .query("stateId", "bookmark")
        .header("If-Match", &w.state_etag)
        .json(&json!({"overwrite": true}))
        .send()
        .assert_status(412);
    state("DELETE")
        .query("stateId", "bookmark")
        .header("If-Match", &w.state_etag)
        .send()
        .assert_status(412);
    let r = req(lrs, reader, "GET", "/activities/profile")
        .query("activityId", &w.activity)
        .query("profileId", "syllabus")
        .send();
    r.assert_status(404);
    let r = req(lrs, reader, "GET", "/activities/profile")
        .query("activityId", &w.activity)
        .send();
    assert_eq!(r.json(), json!([]), "activity profile ids");
    let r = req(lrs, reader, "GET", "/agents/profile")
        .query("agent", &agent_param)
        .query("profileId", "preferences")
        .send();
    r.assert_status(404);
    let r = req(lrs, reader, "GET", "/agents/profile")
        .query("agent", &agent_param)
        .send();
    assert_eq!(r.json(), json!([]), "agent profile ids");

    // Ids are per department: the same id with another statement is no conflict here.
    req(lrs, reader, "PUT", "/statements")
        .query("statementId", &w.ids[1])
        .json(&json!({
            "actor": {"mbox": "mailto:reader@example.gov.in"},
            "verb": {"id": "https://example.gov.in/verbs/viewed"},
            "object": {"id": "https://example.gov.in/elsewhere"}
        }))
        .send()
        .assert_status(204);
}

/// The writer's records are all still its own, unchanged by what readers elsewhere did.
fn assert_intact(lrs: &Lrs, writer: &Who, w: &Written) {
    let r = req(lrs, writer, "GET", "/statements")
        .query("statementId", &w.ids[1])
        .send();
    r.assert_status(200);
    assert_eq!(r.json()["verb"]["id"], json!(w.verb));
    let r = req(lrs, writer, "GET", "/activities/state")
        .query("activityId", &w.activity)
        .query("agent", &w.agent.to_string())
        .query("stateId", "bookmark")
        .send();
    r.assert_status(200);
    assert_eq!(r.json(), json!({"secret": w.tag}));
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The parent reads its sub-departments' statements through every path; documents stay
/// per department.
fn assert_visible_to_parent(lrs: &Lrs, parent: &Who, w: &Written, writer_department: &str) {
    for v in VERSIONS {
        // (`ids[1]` may exist in other departments too: readers reuse it in theirs.)
        for id in [&w.ids[0], &w.attachment_statement, &w.statement_ref] {
            let r = req(lrs, parent, "GET", "/statements")
                .version(v)
                .query("statementId", id)
                .send();
            r.assert_status(200);
            assert_eq!(r.json()["id"], json!(id));
            assert_eq!(r.header("X-Department"), Some(writer_department));
        }
        req(lrs, parent, "GET", "/statements")
            .version(v)
            .query("voidedStatementId", &w.voided)
            .send()
            .assert_status(200);
        for f in filters(w) {
            let mut q = req(lrs, parent, "GET", "/statements").version(v);
            for (k, val) in &f {
                q = q.query(k, val);
            }
            let r = q.send();
            r.assert_status(200);
            let got: Vec<String> = statements_of(&r)
                .iter()
                .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            for id in &w.ids {
                assert!(got.contains(id), "filter {f:?} under {v}: {got:?}");
            }
        }
        // Paging through `more` within the parent's own reads.
        let r = req(lrs, parent, "GET", "/statements")
            .version(v)
            .query("verb", &w.verb)
            .query("limit", "1")
            .send();
        let more = r.json()["more"].as_str().unwrap_or_default().to_owned();
        assert!(!more.is_empty());
        let r = lrs
            .get(&crate::statement_queries::more_url(lrs, &more))
            .auth(&parent.key, &parent.secret)
            .version(v)
            .send();
        r.assert_status(200);
        assert_eq!(statements_of(&r).len(), 1);
    }
    // The attachment comes along.
    let r = req(lrs, parent, "GET", "/statements")
        .query("statementId", &w.attachment_statement)
        .query("attachments", "true")
        .send();
    r.assert_status(200);
    assert!(body_text(&r).contains(&w.tag), "attachment for the parent");
    // The canonical definition of the sub-department's activity.
    let r = req(lrs, parent, "GET", "/activities")
        .query("activityId", &w.activity)
        .send();
    assert_eq!(r.json()["definition"]["name"]["en-US"], json!(w.tag));
    // Narrowed to the sub-department: the same statements.
    let r = req(lrs, parent, "GET", "/statements")
        .header("X-Department", writer_department)
        .query("verb", &w.verb)
        .send();
    r.assert_status(200);
    // The plain ones, the one with an attachment, and (StatementRef filter semantics) the
    // voiding statement and the StatementRef.
    assert_eq!(statements_of(&r).len(), w.ids.len() + 3);
    // Documents are the department's own: none of them from the parent.
    req(lrs, parent, "GET", "/activities/state")
        .query("activityId", &w.activity)
        .query("agent", &w.agent.to_string())
        .query("stateId", "bookmark")
        .send()
        .assert_status(404);
}

#[test]
fn departments_leak_matrix_sibling_parent_child() {
    let t = tree();
    let lrs = &t.lrs;
    let by_child = write(lrs, &t.child);
    let by_parent = write(lrs, &t.parent);
    let by_sibling = write(lrs, &t.sibling);

    // Siblings see nothing of each other.
    assert_invisible(lrs, &t.sibling, &by_child, "moe/dhe");
    assert_invisible(lrs, &t.child, &by_sibling, "moe/dsel");
    // The child sees nothing of its parent's own records.
    assert_invisible(lrs, &t.child, &by_parent, "moe");
    // The parent sees its sub-departments' statements.
    assert_visible_to_parent(lrs, &t.parent, &by_child, "moe/dhe");
    assert_visible_to_parent(lrs, &t.parent, &by_sibling, "moe/dsel");
    // The root (the bootstrap credential) sees everything.
    let root = Who {
        key: lrs.key().to_owned(),
        secret: lrs.secret().to_owned(),
    };
    assert_visible_to_parent(lrs, &root, &by_child, "moe/dhe");

    assert_intact(lrs, &t.child, &by_child);
    assert_intact(lrs, &t.parent, &by_parent);
    assert_intact(lrs, &t.sibling, &by_sibling);
}

/// The same statement id in several departments: a reader whose subtree holds more than
/// one gets its own department's, else the nearest (fewest levels below it; equal depth:
/// path order), and `X-Department` narrows the read to reach each one. The answer names
/// the department it came from.
#[test]
fn departments_same_id_in_several_departments() {
    let t = tree();
    let lrs = &t.lrs;
    let id = new_id();
    let put = |who: &Who, tag: &str| {
        req(lrs, who, "PUT", "/statements")
            .query("statementId", &id)
            .json(&json!({
                "actor": {"mbox": "mailto:someone@example.gov.in"},
                "verb": {"id": format!("https://example.gov.in/verbs/{tag}")},
                "object": {"id": "https://example.gov.in/course/x"}
            }))
            .send()
            .assert_status(204);
    };
    let verb_seen = |who: &Who, narrow: Option<&str>| {
        let mut q = req(lrs, who, "GET", "/statements").query("statementId", &id);
        if let Some(d) = narrow {
            q = q.header("X-Department", d);
        }
        let r = q.send();
        r.assert_status(200);
        (
            r.json()["verb"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            r.header("X-Department").unwrap_or_default().to_owned(),
        )
    };
    put(&t.sibling, "in-dsel");
    put(&t.child, "in-dhe");
    let v = |t: &str| format!("https://example.gov.in/verbs/{t}");
    // Equal depth: path order, `moe/dhe` before `moe/dsel`.
    assert_eq!(verb_seen(&t.parent, None), (v("in-dhe"), "moe/dhe".into()));
    assert_eq!(
        verb_seen(&t.parent, Some("moe/dsel")),
        (v("in-dsel"), "moe/dsel".into())
    );
    assert_eq!(
        verb_seen(&t.sibling, None),
        (v("in-dsel"), "moe/dsel".into())
    );
    // The parent's own wins once it has one.
    put(&t.parent, "in-moe");
    assert_eq!(verb_seen(&t.parent, None), (v("in-moe"), "moe".into()));
    assert_eq!(
        verb_seen(&t.parent, Some("moe/dhe")),
        (v("in-dhe"), "moe/dhe".into())
    );
    // A query lists each department's statement once.
    let r = req(lrs, &t.parent, "GET", "/statements")
        .query("activity", "https://example.gov.in/course/x")
        .send();
    assert_eq!(statements_of(&r).len(), 3);
    // Voiding in one department voids only that department's statement.
    req(lrs, &t.child, "POST", "/statements")
        .json(&json!({
            "actor": {"mbox": "mailto:someone@example.gov.in"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
            "object": {"objectType": "StatementRef", "id": id}
        }))
        .send()
        .assert_status(200);
    req(lrs, &t.child, "GET", "/statements")
        .query("statementId", &id)
        .send()
        .assert_status(404);
    req(lrs, &t.child, "GET", "/statements")
        .query("voidedStatementId", &id)
        .send()
        .assert_status(200);
    assert_eq!(
        verb_seen(&t.sibling, None),
        (v("in-dsel"), "moe/dsel".into())
    );
    assert_eq!(verb_seen(&t.parent, None), (v("in-moe"), "moe".into()));
}

/// A store made before departments keeps everything in the root, readable as before.
#[test]
fn departments_root_keeps_what_existed() {
    let lrs = Lrs::start();
    let id = new_id();
    lrs.put("/statements")
        .query("statementId", &id)
        .json(&json!({
            "actor": {"mbox": "mailto:someone@example.gov.in"},
            "verb": {"id": "https://example.gov.in/verbs/did"},
            "object": {"id": "https://example.gov.in/course/y"}
        }))
        .send()
        .assert_status(204);
    let r = lrs.get("/statements").query("statementId", &id).send();
    r.assert_status(200);
    assert_eq!(r.header("X-Department"), Some("/"));
    // A sub-department created afterwards does not see it.
    lrs.cli(&["departments", "create", "mha"]);
    let (key, secret) = lrs.department_credential("mha", &["all"]);
    lrs.get("/statements")
        .auth(&key, &secret)
        .query("statementId", &id)
        .send()
        .assert_status(404);
}
