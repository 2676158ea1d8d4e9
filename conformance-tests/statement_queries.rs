//! GET /statements (Communication 2.1.3): single statements, voided statements (2.1.4),
//! the filters, StatementRef filter conditions, formats, paging (Data 2.5), and the
//! headers of every Statements response.
use crate::harness::{new_id, statement, Lrs, Response, VERSIONS};
use crate::statements::{
    activity_iri, agent, assert_400_at, fetch, get_statement, id_of, post_ok, rfc3339,
    statement_about,
};
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Value};
use std::collections::HashSet;

const VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";

/// GET /statements with these parameters.
fn query(lrs: &Lrs, v: &str, params: &[(&str, &str)]) -> Response {
    let mut r = lrs.get("/statements").version(v);
    for (k, val) in params {
        r = r.query(k, val);
    }
    r.send()
}

/// The StatementResult of a successful query: (statements, more).
fn result_of(r: &Response) -> (Vec<Value>, String) {
    r.assert_status(200);
    let body = r.json();
    let statements = body["statements"]
        .as_array()
        .unwrap_or_else(|| {
            panic!(
                "a StatementResult has a `statements` array\n{}",
                r.describe()
            )
        })
        .clone();
    let more = match body.get("more") {
        None => String::new(),
        Some(Value::String(m)) => m.clone(),
        Some(other) => panic!("`more` must be a string, got {other}\n{}", r.describe()),
    };
    (statements, more)
}

/// The ids of the statements matching these parameters (one page; asserts no `more`).
fn ids(lrs: &Lrs, v: &str, params: &[(&str, &str)]) -> Vec<String> {
    let r = query(lrs, v, params);
    let (list, more) = result_of(&r);
    assert!(
        more.is_empty(),
        "expected one page of results\n{}",
        r.describe()
    );
    list.iter().map(id_of).collect()
}

fn set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn id_set(ids: Vec<String>) -> HashSet<String> {
    ids.into_iter().collect()
}

/// The `stored` of a statement the LRS has.
fn stored_of(lrs: &Lrs, v: &str, id: &str) -> String {
    fetch(lrs, v, id)["stored"]
        .as_str()
        .expect("stored is a string")
        .to_owned()
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc2822(s).unwrap_or_else(|e| panic!("`{s}` is not an HTTP date: {e}"))
}

/// A statement by `actor` about `activity`.
fn by(actor: &Value, activity: &str) -> Value {
    let mut s = statement_about(activity);
    s["actor"] = actor.clone();
    s
}

fn voiding(target: &str) -> Value {
    let mut s = statement();
    s["verb"] = json!({"id": VOIDED, "display": {"en-US": "voided"}});
    s["object"] = json!({"objectType": "StatementRef", "id": target});
    s
}

fn statement_ref(target: &str, actor: &Value) -> Value {
    let mut s = statement();
    s["actor"] = actor.clone();
    s["verb"] = json!({"id": "http://example.com/verbs/confirmed"});
    s["object"] = json!({"objectType": "StatementRef", "id": target});
    s
}

/// The endpoint's origin joined with a `more` IRL (absolute, or relative to the server).
pub(crate) fn more_url(lrs: &Lrs, more: &str) -> String {
    if more.starts_with("http://") || more.starts_with("https://") {
        return more.to_owned();
    }
    let endpoint = lrs.endpoint();
    let scheme_end = endpoint.find("://").map(|i| i + 3).unwrap_or(0);
    let origin_end = endpoint[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(endpoint.len());
    if more.starts_with('/') {
        format!("{}{more}", &endpoint[..origin_end])
    } else {
        format!("{endpoint}/{more}")
    }
}

// ----- single statements ----------------------------------------------------------------

/// Communication 2.1.3.s1 (XAPI-00156, XAPI-00158): GET ?statementId answers 200 with that
/// statement as JSON, a Last-Modified equal to its stored time (to the second), and 404 for
/// an id the LRS does not have; format and attachments may accompany statementId.
#[test]
fn comm_2_1_3_s1_get_single_statement_by_id() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        let id = id_of(&s);
        post_ok(&lrs, v, &s);
        let r = get_statement(&lrs, v, &id);
        r.assert_status(200).assert_version(v);
        assert!(
            r.assert_header("Content-Type")
                .starts_with("application/json"),
            "{}",
            r.describe()
        );
        let got = r.json();
        assert_eq!(got["id"], json!(id));
        assert_eq!(got["verb"], s["verb"]);
        let stored = rfc3339(got["stored"].as_str().unwrap());
        let last_modified = http_date(r.assert_header("Last-Modified"));
        assert_eq!(
            last_modified.timestamp(),
            stored.timestamp(),
            "Last-Modified must match stored (Communication 2.1.3 requirements)\n{}",
            r.describe()
        );

        for (k, val) in [
            ("format", "exact"),
            ("format", "ids"),
            ("format", "canonical"),
            ("attachments", "false"),
        ] {
            let r = lrs
                .get("/statements")
                .query("statementId", &id)
                .query(k, val)
                .version(v)
                .send();
            r.assert_status(200);
            assert_eq!(r.json()["id"], json!(id), "{k}={val}");
        }

        get_statement(&lrs, v, &new_id()).assert_error(404);
    }
}

/// Communication 2.1.3.s2.b1: statementId and voidedStatementId together are rejected.
#[test]
fn comm_2_1_3_s2_b1_statement_id_with_voided_statement_id_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        post_ok(&lrs, v, &s);
        let id = id_of(&s);
        let r = query(&lrs, v, &[("statementId", &id), ("voidedStatementId", &id)]);
        r.assert_error(400);
        r.assert_version(v);
    }
}

/// Communication 2.1.3.s2.b2 (XAPI-00150, XAPI-00151): statementId or voidedStatementId
/// with any parameter other than attachments or format is rejected.
#[test]
fn comm_2_1_3_s2_b2_single_statement_get_with_filter_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let s = statement();
        post_ok(&lrs, v, &s);
        let id = id_of(&s);
        let agent = s["actor"].to_string();
        let others: [(&str, &str); 10] = [
            ("agent", &agent),
            ("verb", "http://adlnet.gov/expapi/verbs/experienced"),
            ("activity", "http://example.com/activities/conformance-test"),
            ("registration", "3fa85f64-5717-4562-b3fc-2c963f66afa6"),
            ("related_activities", "false"),
            ("related_agents", "false"),
            ("since", "2000-01-01T00:00:00Z"),
            ("until", "2100-01-01T00:00:00Z"),
            ("limit", "1"),
            ("ascending", "true"),
        ];
        for single in ["statementId", "voidedStatementId"] {
            for (k, val) in others {
                let r = query(&lrs, v, &[(single, &id), (k, val)]);
                r.assert_error(400);
            }
        }
    }
}

// ----- voided statements ----------------------------------------------------------------

/// Communication 2.1.4 (XAPI-00162, XAPI-00163) and Data 2.3.2 (XAPI-00018): a voided
/// statement is hidden from ?statementId and from queries and returned by
/// ?voidedStatementId; the voiding statement itself is an ordinary statement (returned
/// by statementId, not by voidedStatementId) that queries for the voided statement's
/// filters return.
#[test]
fn comm_2_1_4_voided_statements_hidden_except_by_voided_statement_id() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let actor = agent();
        let target = by(&actor, &activity);
        let keep = by(&actor, &activity);
        post_ok(&lrs, v, &json!([target, keep]));
        let target_id = id_of(&target);
        let void = voiding(&target_id);
        let void_id = id_of(&void);
        post_ok(&lrs, v, &void);

        get_statement(&lrs, v, &target_id).assert_error(404);
        let r = query(&lrs, v, &[("voidedStatementId", &target_id)]);
        r.assert_status(200);
        assert_eq!(r.json()["id"], json!(target_id));
        assert!(
            r.header("Last-Modified").is_some(),
            "Last-Modified on voidedStatementId GET\n{}",
            r.describe()
        );
        fetch(&lrs, v, &void_id);
        query(&lrs, v, &[("voidedStatementId", &void_id)]).assert_error(404);
        query(&lrs, v, &[("voidedStatementId", &id_of(&keep))]).assert_error(404);

        // Queries: never the voided statement; the voiding statement matches through its
        // StatementRef.
        let want = set(&[&id_of(&keep), &void_id]);
        assert_eq!(id_set(ids(&lrs, v, &[("activity", &activity)])), want);
        assert_eq!(id_set(ids(&lrs, v, &[("agent", &actor.to_string())])), want);
        let all = ids(&lrs, v, &[]);
        assert!(!all.contains(&target_id), "voided statement in a query");
        assert!(all.contains(&void_id), "voiding statement missing");

        // A voiding statement stored before its target: the target is voided on arrival.
        let late = by(&actor, &activity);
        post_ok(&lrs, v, &voiding(&id_of(&late)));
        post_ok(&lrs, v, &late);
        get_statement(&lrs, v, &id_of(&late)).assert_error(404);
        query(&lrs, v, &[("voidedStatementId", &id_of(&late))]).assert_status(200);

        // Re-sending the voided statement changes nothing: it stays voided.
        let _ = lrs.post("/statements").version(v).json(&target).send();
        get_statement(&lrs, v, &target_id).assert_error(404);

        // Target and voiding statement in one batch.
        let t = by(&actor, &activity);
        let vt = voiding(&id_of(&t));
        post_ok(&lrs, v, &json!([t, vt]));
        get_statement(&lrs, v, &id_of(&t)).assert_error(404);
        query(&lrs, v, &[("voidedStatementId", &id_of(&t))]).assert_status(200);

        // A voiding statement cannot be voided (Data 2.3.2.s2.b7): whether the LRS accepts
        // such a statement or not, the first voiding statement stays visible.
        let again = voiding(&void_id);
        let _ = lrs.post("/statements").version(v).json(&again).send();
        fetch(&lrs, v, &void_id);
        query(&lrs, v, &[("voidedStatementId", &void_id)]).assert_error(404);
    }
}

// ----- StatementRef filter conditions -----------------------------------------------------

/// Communication 2.1.3 (Filter Conditions for StatementRefs): a statement targeting a
/// matching statement (StatementRef object), recursively, meets the target's non-time
/// filters; time filters apply to the targeting statement; context StatementRefs do not
/// count; none of this applies to statementId GETs.
#[test]
fn comm_2_1_3_statement_ref_filter_conditions() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let ben = agent();
        let andrew = agent();
        let carol = agent();
        let registration = new_id();
        let verb = format!("http://example.com/verbs/{}", new_id());
        let mut a = by(&ben, &activity);
        a["verb"] = json!({"id": verb});
        a["context"] = json!({"registration": registration});
        post_ok(&lrs, v, &a);
        let b = statement_ref(&id_of(&a), &andrew);
        post_ok(&lrs, v, &b);
        let c = statement_ref(&id_of(&b), &carol);
        post_ok(&lrs, v, &c);
        // Context StatementRef: no effect on filtering.
        let mut d = by(&carol, &activity_iri());
        d["context"] = json!({"statement": {"objectType": "StatementRef", "id": id_of(&a)}});
        post_ok(&lrs, v, &d);

        let chain = set(&[&id_of(&a), &id_of(&b), &id_of(&c)]);
        let ben_s = ben.to_string();
        for params in [
            vec![("agent", ben_s.as_str())],
            vec![("activity", activity.as_str())],
            vec![("verb", verb.as_str())],
            vec![("registration", registration.as_str())],
            vec![("agent", ben_s.as_str()), ("activity", activity.as_str())],
        ] {
            assert_eq!(
                id_set(ids(&lrs, v, &params)),
                chain,
                "{v}: filters {params:?}"
            );
        }
        // Andrew's statement b: c targets it.
        assert_eq!(
            id_set(ids(&lrs, v, &[("agent", &andrew.to_string())])),
            set(&[&id_of(&b), &id_of(&c)])
        );
        // Carol: c (her own) and d, but nothing through d's context StatementRef.
        assert_eq!(
            id_set(ids(&lrs, v, &[("agent", &carol.to_string())])),
            set(&[&id_of(&c), &id_of(&d)])
        );
        // Time filters apply to the targeting statement.
        let a_stored = stored_of(&lrs, v, &id_of(&a));
        assert_eq!(
            id_set(ids(&lrs, v, &[("agent", &ben_s), ("since", &a_stored)])),
            set(&[&id_of(&b), &id_of(&c)])
        );
        let b_stored = stored_of(&lrs, v, &id_of(&b));
        assert_eq!(
            id_set(ids(
                &lrs,
                v,
                &[("activity", &activity), ("until", &b_stored)]
            )),
            set(&[&id_of(&a), &id_of(&b)])
        );
        // Not for statementId: the StatementRef is returned as stored.
        let got = fetch(&lrs, v, &id_of(&c));
        assert_eq!(
            got["object"],
            json!({"objectType": "StatementRef", "id": id_of(&b)})
        );
    }
}

// ----- filters ----------------------------------------------------------------------------

/// Communication 2.1.3 (agent filter): the Agent is the actor or the object; a Group
/// matches by its own IFI and, for this filter, when one of its members matches; the
/// Agent as instructor or authority does not count without related_agents. Any IFI type
/// works.
#[test]
fn comm_2_1_3_filter_agent() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let x = agent();
        let actor = by(&x, &activity_iri());
        let mut object = statement();
        object["object"] = x.clone();
        let mut member = statement();
        member["actor"] = json!({"objectType": "Group", "member": [agent(), x.clone()]});
        let mut instructor = statement();
        instructor["context"] = json!({"instructor": x});
        let other = statement();
        let group =
            json!({"objectType": "Group", "mbox": format!("mailto:{}@example.com", new_id())});
        let by_group = by(&group, &activity_iri());
        let account = json!({"account": {"homePage": "http://example.com", "name": new_id()}});
        let by_account = by(&account, &activity_iri());
        let sha1 = json!({"mbox_sha1sum": hex::encode(sha1_of(&new_id()))});
        let by_sha1 = by(&sha1, &activity_iri());
        let openid = json!({"openid": format!("http://openid.example.com/{}", new_id())});
        let by_openid = by(&openid, &activity_iri());
        post_ok(
            &lrs,
            v,
            &json!([
                actor, object, member, instructor, other, by_group, by_account, by_sha1, by_openid
            ]),
        );

        assert_eq!(
            id_set(ids(&lrs, v, &[("agent", &x.to_string())])),
            set(&[&id_of(&actor), &id_of(&object), &id_of(&member)]),
            "{v}"
        );
        for (who, s) in [
            (&group, &by_group),
            (&account, &by_account),
            (&sha1, &by_sha1),
            (&openid, &by_openid),
        ] {
            assert_eq!(
                ids(&lrs, v, &[("agent", &who.to_string())]),
                vec![id_of(s)],
                "{v}: {who}"
            );
        }
    }
}

fn sha1_of(s: &str) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    Sha1::digest(s.as_bytes()).to_vec()
}

/// Communication 2.1.3 (verb, activity and registration filters): exact matches on the
/// verb id, the object Activity id (not context Activities, without related_activities)
/// and the context registration; several filters combine with AND.
#[test]
fn comm_2_1_3_filter_verb_activity_registration() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let verb = format!("http://example.com/verbs/{}", new_id());
        let registration = new_id();
        let mut a = statement_about(&activity);
        a["verb"] = json!({"id": verb});
        let b = statement_about(&activity);
        let mut c = statement();
        c["verb"] = json!({"id": verb});
        c["context"] = json!({"registration": registration,
            "contextActivities": {"parent": [{"id": activity}]}});
        let mut d = statement_about(&activity);
        d["context"] = json!({"registration": registration});
        post_ok(&lrs, v, &json!([a, b, c, d]));

        assert_eq!(
            id_set(ids(&lrs, v, &[("verb", &verb)])),
            set(&[&id_of(&a), &id_of(&c)])
        );
        assert_eq!(
            id_set(ids(&lrs, v, &[("activity", &activity)])),
            set(&[&id_of(&a), &id_of(&b), &id_of(&d)])
        );
        assert_eq!(
            id_set(ids(&lrs, v, &[("registration", &registration)])),
            set(&[&id_of(&c), &id_of(&d)])
        );
        assert_eq!(
            ids(
                &lrs,
                v,
                &[("registration", &registration), ("activity", &activity)]
            ),
            vec![id_of(&d)]
        );
        assert_eq!(
            ids(&lrs, v, &[("verb", &verb), ("activity", &activity)]),
            vec![id_of(&a)]
        );
        assert!(ids(&lrs, v, &[("registration", &new_id())]).is_empty());
        assert!(ids(&lrs, v, &[("verb", "http://example.com/verbs/none")]).is_empty());
    }
}

/// Communication 2.1.3 (related_activities): with related_activities=true the activity
/// filter also matches context Activities (parent, grouping, category, other) and the
/// object and context Activities of a SubStatement.
#[test]
fn comm_2_1_3_filter_related_activities() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let direct = statement_about(&activity);
        let mut in_context = Vec::new();
        for key in ["parent", "grouping", "category", "other"] {
            let mut s = statement();
            s["context"] =
                json!({"contextActivities": {key: [{"id": activity_iri()}, {"id": activity}]}});
            in_context.push(s);
        }
        let sub = |object: Value, context: Option<Value>| {
            let mut o = json!({
                "objectType": "SubStatement",
                "actor": agent(),
                "verb": {"id": "http://example.com/verbs/planned"},
                "object": object
            });
            if let Some(c) = context {
                o["context"] = c;
            }
            let mut s = statement();
            s["object"] = o;
            s
        };
        let sub_object = sub(json!({"id": activity}), None);
        let sub_context = sub(
            json!({"id": activity_iri()}),
            Some(json!({"contextActivities": {"grouping": [{"id": activity}]}})),
        );
        let unrelated = statement();
        let mut all = vec![
            direct.clone(),
            sub_object.clone(),
            sub_context.clone(),
            unrelated,
        ];
        all.extend(in_context.iter().cloned());
        post_ok(&lrs, v, &Value::from(all));

        assert_eq!(
            ids(&lrs, v, &[("activity", &activity)]),
            vec![id_of(&direct)]
        );
        assert_eq!(
            ids(
                &lrs,
                v,
                &[("activity", &activity), ("related_activities", "false")]
            ),
            vec![id_of(&direct)]
        );
        let mut want = set(&[&id_of(&direct), &id_of(&sub_object), &id_of(&sub_context)]);
        want.extend(in_context.iter().map(id_of));
        assert_eq!(
            id_set(ids(
                &lrs,
                v,
                &[("activity", &activity), ("related_activities", "true")]
            )),
            want,
            "{v}"
        );
    }
}

/// Communication 2.1.3 (related_agents): with related_agents=true the agent filter also
/// matches the authority, instructor, team (by member), and the actor / object of a
/// SubStatement (and, under 2.0, context agents and context groups, in the statement or
/// its SubStatement).
#[test]
fn comm_2_1_3_filter_related_agents() {
    let lrs = Lrs::start();
    let (key, secret) = lrs.credential(&["statements/write", "statements/read"]);
    for v in VERSIONS {
        // The authority of the extra credential, as the LRS records it.
        let by_credential = statement();
        lrs.post("/statements")
            .version(v)
            .auth(&key, &secret)
            .json(&by_credential)
            .send()
            .assert_status(200);
        let authority = fetch(&lrs, v, &id_of(&by_credential))["authority"].clone();

        let x = agent();
        let actor = by(&x, &activity_iri());
        let mut instructor = statement();
        instructor["context"] = json!({"instructor": x});
        let mut team = statement();
        team["context"] = json!({"team": {"objectType": "Group", "member": [agent(), x.clone()]}});
        let mut sub_actor = statement();
        sub_actor["object"] = json!({
            "objectType": "SubStatement",
            "actor": x,
            "verb": {"id": "http://example.com/verbs/planned"},
            "object": {"id": activity_iri()}
        });
        let mut sub_object = statement();
        sub_object["object"] = json!({
            "objectType": "SubStatement",
            "actor": agent(),
            "verb": {"id": "http://example.com/verbs/met"},
            "object": x
        });
        let unrelated = statement();
        post_ok(
            &lrs,
            v,
            &json!([actor, instructor, team, sub_actor, sub_object, unrelated]),
        );
        let mut want = set(&[
            &id_of(&actor),
            &id_of(&instructor),
            &id_of(&team),
            &id_of(&sub_actor),
            &id_of(&sub_object),
        ]);
        if v == "2.0.0" {
            let mut context_agent = statement();
            context_agent["context"] = json!({"contextAgents": [
                {"objectType": "contextAgent", "agent": x,
                 "relevantTypes": ["http://example.com/types/observer"]}
            ]});
            let mut context_group = statement();
            context_group["context"] = json!({"contextGroups": [
                {"objectType": "contextGroup",
                 "group": {"objectType": "Group", "member": [agent(), x.clone()]}}
            ]});
            let mut sub_context_agent = statement();
            sub_context_agent["object"] = json!({
                "objectType": "SubStatement",
                "actor": agent(),
                "verb": {"id": "http://example.com/verbs/planned"},
                "object": {"id": activity_iri()},
                "context": {"contextAgents": [{"objectType": "contextAgent", "agent": x}]}
            });
            post_ok(
                &lrs,
                v,
                &json!([context_agent, context_group, sub_context_agent]),
            );
            want.insert(id_of(&context_agent));
            want.insert(id_of(&context_group));
            want.insert(id_of(&sub_context_agent));
        }

        let xs = x.to_string();
        assert_eq!(
            ids(&lrs, v, &[("agent", &xs)]),
            vec![id_of(&actor)],
            "{v}: without related_agents only actor / object match"
        );
        assert_eq!(
            id_set(ids(&lrs, v, &[("agent", &xs), ("related_agents", "true")])),
            want,
            "{v}"
        );

        let authority_s = authority.to_string();
        let plain = ids(&lrs, v, &[("agent", &authority_s)]);
        assert!(
            !plain.contains(&id_of(&by_credential)),
            "{v}: authority matches only with related_agents"
        );
        let related = ids(
            &lrs,
            v,
            &[("agent", &authority_s), ("related_agents", "true")],
        );
        assert!(
            related.contains(&id_of(&by_credential)),
            "{v}: related_agents matches the authority {authority}"
        );
    }
}

/// Communication 2.1.3 (since: exclusive; until: inclusive — both on stored).
#[test]
fn comm_2_1_3_filter_since_exclusive_until_inclusive() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let list: Vec<Value> = (0..3).map(|_| statement_about(&activity)).collect();
        for s in &list {
            post_ok(&lrs, v, s);
        }
        let [a, b, c] = [&list[0], &list[1], &list[2]].map(id_of);
        let sa = stored_of(&lrs, v, &a);
        let sb = stored_of(&lrs, v, &b);
        let sc = stored_of(&lrs, v, &c);
        let q = |extra: &[(&str, &str)]| {
            let mut p = vec![("activity", activity.as_str())];
            p.extend_from_slice(extra);
            id_set(ids(&lrs, v, &p))
        };
        assert_eq!(q(&[("since", &sa)]), set(&[&b, &c]), "{v}: since {sa}");
        assert_eq!(q(&[("until", &sb)]), set(&[&a, &b]), "{v}: until {sb}");
        assert_eq!(q(&[("since", &sa), ("until", &sb)]), set(&[&b]));
        assert_eq!(q(&[("since", &sc)]), set(&[]));
        assert_eq!(q(&[("until", &sc)]), set(&[&a, &b, &c]));
        // The same instant with an offset.
        let shifted = rfc3339(&sa)
            .with_timezone(&FixedOffset::east_opt(2 * 3600).unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
        assert_eq!(
            q(&[("since", &shifted)]),
            set(&[&b, &c]),
            "{v}: since {shifted}"
        );
        let before = (rfc3339(&sa) - chrono::Duration::hours(1)).to_rfc3339();
        assert_eq!(q(&[("since", &before)]), set(&[&a, &b, &c]));
        assert_eq!(q(&[("until", &before)]), set(&[]));
    }
}

/// Communication 2.1.3 (limit, ascending; results in reverse chronological order of
/// stored by default) and the 2.0 Last-Modified of a StatementResult (the newest stored
/// among the statements returned).
#[test]
fn comm_2_1_3_limit_ascending_and_order() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let list: Vec<Value> = (0..5).map(|_| statement_about(&activity)).collect();
        for s in &list {
            post_ok(&lrs, v, s);
        }
        let posted: Vec<String> = list.iter().map(id_of).collect();
        let mut newest_first = posted.clone();
        newest_first.reverse();

        let r = query(&lrs, v, &[("activity", &activity)]);
        let (got, more) = result_of(&r);
        assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), newest_first);
        assert_eq!(more, "");
        let newest_stored = rfc3339(got[0]["stored"].as_str().unwrap());
        let lm = http_date(r.assert_header("Last-Modified"));
        assert_eq!(
            lm.timestamp(),
            newest_stored.timestamp(),
            "Last-Modified is the newest stored returned\n{}",
            r.describe()
        );

        let got = ids(&lrs, v, &[("activity", &activity), ("ascending", "true")]);
        assert_eq!(got, posted);
        let got = ids(&lrs, v, &[("activity", &activity), ("ascending", "false")]);
        assert_eq!(got, newest_first);

        let r = query(&lrs, v, &[("activity", &activity), ("limit", "2")]);
        let (got, more) = result_of(&r);
        assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), newest_first[..2]);
        assert!(
            !more.is_empty(),
            "more results: `more` is set\n{}",
            r.describe()
        );
        let r = query(
            &lrs,
            v,
            &[
                ("activity", &activity),
                ("limit", "2"),
                ("ascending", "true"),
            ],
        );
        let (got, _) = result_of(&r);
        assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), posted[..2]);
        // limit=0: the server's maximum.
        let got = ids(&lrs, v, &[("activity", &activity), ("limit", "0")]);
        assert_eq!(got, newest_first);
    }
}

/// Data 2.5 (XAPI-00108, XAPI-00109, XAPI-00111, XAPI-00114): `more` pages through the whole
/// result — same filters, no duplicates, no gaps — and the cursor is not disturbed by
/// statements stored while paging; the last page has an empty `more`.
#[test]
fn data_2_5_paging_with_more_is_stable_and_complete() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        // Noise the filter must keep out of every page.
        post_ok(&lrs, v, &json!([statement(), statement(), statement()]));
        let mut posted = Vec::new();
        for _ in 0..23 {
            let s = statement_about(&activity);
            post_ok(&lrs, v, &s);
            posted.push(id_of(&s));
        }
        for ascending in [false, true] {
            let mut params = vec![("activity", activity.as_str()), ("limit", "5")];
            if ascending {
                params.push(("ascending", "true"));
            }
            let r = query(&lrs, v, &params);
            let (page, mut more) = result_of(&r);
            assert_eq!(page.len(), 5);
            let mut seen: Vec<String> = page.iter().map(id_of).collect();
            let mut pages = 1;
            let mut added = Vec::new();
            while !more.is_empty() {
                // New statements for the same filter while paging.
                if pages <= 2 {
                    let s = statement_about(&activity);
                    post_ok(&lrs, v, &s);
                    added.push(id_of(&s));
                }
                let r = lrs.get(&more_url(&lrs, &more)).version(v).send();
                let (page, next) = result_of(&r);
                assert!(
                    page.len() <= 5,
                    "a `more` page keeps the limit\n{}",
                    r.describe()
                );
                for s in &page {
                    assert_eq!(
                        s["object"]["id"],
                        json!(activity),
                        "a `more` page keeps the filters\n{}",
                        r.describe()
                    );
                }
                seen.extend(page.iter().map(id_of));
                more = next;
                pages += 1;
                assert!(pages < 20, "paging does not end");
            }
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "{v}: duplicates across pages");
            if ascending {
                assert_eq!(
                    seen[..posted.len()],
                    posted[..],
                    "{v} ascending: every statement once, in stored order"
                );
                // Statements stored during paging may follow, nothing else.
                for id in &seen[posted.len()..] {
                    assert!(added.contains(id), "{v}: unexpected {id}");
                }
            } else {
                let mut want: Vec<String> = posted.clone();
                want.reverse();
                assert_eq!(
                    seen, want,
                    "{v} descending: every statement once, newest first, nothing stored later"
                );
            }
            // Stored after everything before: the order stays that of `posted`.
            posted.extend(added);
        }

        // Later pages keep the format (and the attachments setting) of the first request.
        let r = query(
            &lrs,
            v,
            &[("activity", &activity), ("limit", "4"), ("format", "ids")],
        );
        let (_, mut more) = result_of(&r);
        let mut pages = 0;
        while !more.is_empty() && pages < 3 {
            let r = lrs.get(&more_url(&lrs, &more)).version(v).send();
            let (page, next) = result_of(&r);
            for st in &page {
                assert!(
                    st["actor"].get("name").is_none() && st["verb"].get("display").is_none(),
                    "{v}: a `more` page of a format=ids query is in ids format\n{}",
                    r.describe()
                );
            }
            more = next;
            pages += 1;
        }
        assert!(pages > 0, "{v}: expected several pages");
    }
}

/// Communication 2.1.3 (no match: still 200 and a StatementResult with an empty array;
/// Data 2.5: `more` empty or absent).
#[test]
fn comm_2_1_3_empty_result_is_200_with_empty_statements() {
    let lrs = Lrs::start();
    // An LRS without statements, unfiltered.
    for v in VERSIONS {
        let r = query(&lrs, v, &[]);
        r.assert_status(200).assert_version(v);
        let body = r.json();
        assert_eq!(body["statements"], json!([]), "{}", r.describe());
        assert!(
            body.get("more").is_none() || body["more"] == json!(""),
            "{}",
            r.describe()
        );
    }
    // Statements exist, none matches.
    post_ok(&lrs, "2.0.0", &statement());
    for v in VERSIONS {
        let r = query(&lrs, v, &[("activity", &activity_iri())]);
        r.assert_status(200).assert_version(v);
        let (list, more) = result_of(&r);
        assert!(list.is_empty());
        assert_eq!(more, "");
    }
}

// ----- formats ------------------------------------------------------------------------------

/// Communication 2.1.3 (format): `ids` keeps only what identifies Agents, Groups,
/// Activities and Verbs; `exact` returns the statement as received; `canonical` returns
/// the Activity definitions with one language per language map, chosen by
/// Accept-Language (XAPI-00172), and the Agents as received.
#[test]
fn comm_2_1_3_format_ids_exact_canonical() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let mut s = statement_about(&activity);
        s["actor"] = json!({"objectType": "Agent", "name": "Named Person",
            "mbox": format!("mailto:{}@example.com", new_id())});
        s["verb"] = json!({"id": "http://example.com/verbs/sang",
            "display": {"en-US": "sang", "fr-FR": "a chanté"}});
        s["object"]["definition"] = json!({
            "name": {"en-US": "Song", "fr-FR": "Chanson", "de-DE": "Lied"},
            "description": {"en-US": "A song", "fr-FR": "Une chanson", "de-DE": "Ein Lied"},
            "type": "http://example.com/types/song"
        });
        let group = json!({"objectType": "Group", "name": "Choir",
            "member": [{"name": "Member", "mbox": format!("mailto:{}@example.com", new_id())}]});
        s["context"] = json!({"team": group});
        post_ok(&lrs, v, &s);
        let id = id_of(&s);

        // exact
        for params in [
            vec![("activity", activity.as_str())],
            vec![("activity", activity.as_str()), ("format", "exact")],
        ] {
            let (list, _) = result_of(&query(&lrs, v, &params));
            assert_eq!(list.len(), 1);
            let got = &list[0];
            for k in ["actor", "verb", "object", "context"] {
                assert_eq!(got[k], s[k], "{v} exact: {k}");
            }
        }

        // ids
        let (list, _) = result_of(&query(
            &lrs,
            v,
            &[("activity", &activity), ("format", "ids")],
        ));
        let got = &list[0];
        assert_eq!(got["id"], json!(id));
        assert!(
            got["actor"].get("name").is_none(),
            "{v} ids: {}",
            got["actor"]
        );
        assert_eq!(got["actor"]["mbox"], s["actor"]["mbox"]);
        assert!(
            got["verb"].get("display").is_none(),
            "{v} ids: {}",
            got["verb"]
        );
        assert_eq!(got["verb"]["id"], s["verb"]["id"]);
        assert!(
            got["object"].get("definition").is_none(),
            "{v} ids: {}",
            got["object"]
        );
        assert_eq!(got["object"]["id"], json!(activity));
        let team = &got["context"]["team"];
        assert!(team.get("name").is_none(), "{v} ids: {team}");
        assert_eq!(team["member"][0]["mbox"], group["member"][0]["mbox"]);
        assert!(team["member"][0].get("name").is_none(), "{v} ids: {team}");
        // …and for a single statement.
        let r = lrs
            .get("/statements")
            .query("statementId", &id)
            .query("format", "ids")
            .version(v)
            .send();
        assert!(r.json()["actor"].get("name").is_none(), "{}", r.describe());

        // canonical with Accept-Language
        for (accept, lang) in [
            ("fr-FR", "fr-FR"),
            ("de-DE, en-US;q=0.5", "de-DE"),
            ("en-US", "en-US"),
            ("es-ES, fr-FR;q=0.8, en-US;q=0.6", "fr-FR"),
        ] {
            let r = lrs
                .get("/statements")
                .query("activity", &activity)
                .query("format", "canonical")
                .header("Accept-Language", accept)
                .version(v)
                .send();
            let (list, _) = result_of(&r);
            let def = &list[0]["object"]["definition"];
            let name = def["name"].as_object().expect("name");
            assert_eq!(
                name.keys().collect::<Vec<_>>(),
                vec![lang],
                "{v} canonical, Accept-Language {accept}: one language per map\n{}",
                r.describe()
            );
            assert_eq!(def["name"][lang], s["object"]["definition"]["name"][lang]);
            let desc = def["description"].as_object().expect("description");
            assert_eq!(desc.keys().collect::<Vec<_>>(), vec![lang], "{v} {accept}");
            assert_eq!(
                list[0]["actor"], s["actor"],
                "canonical keeps Agents as received"
            );
            // …and for a single statement.
            let r = lrs
                .get("/statements")
                .query("statementId", &id)
                .query("format", "canonical")
                .header("Accept-Language", accept)
                .version(v)
                .send();
            r.assert_status(200);
            let name = r.json()["object"]["definition"]["name"].clone();
            assert_eq!(
                name.as_object().map(|m| m.len()),
                Some(1),
                "{}",
                r.describe()
            );
        }
        // Without Accept-Language: still one language per map.
        let (list, _) = result_of(&query(
            &lrs,
            v,
            &[("activity", &activity), ("format", "canonical")],
        ));
        let name = list[0]["object"]["definition"]["name"]
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            name.len(),
            1,
            "{v} canonical without Accept-Language: {name:?}"
        );

        query(&lrs, v, &[("format", "full")]).assert_error(400);
        query(&lrs, v, &[("format", "IDS")]).assert_error(400);
    }
}

// ----- headers, parameters, permissions ------------------------------------------------------

/// Communication 2.1.3.s2.b5 (XAPI-00153): X-Experience-API-Consistent-Through, an ISO 8601
/// timestamp, is on every Statements response — successes and errors, every method — and
/// is not older than a statement just stored.
#[test]
fn comm_2_1_3_s2_b5_consistent_through_on_every_statements_response() {
    let lrs = Lrs::start();
    let (read_key, read_secret) = lrs.credential(&["statements/read"]);
    for v in VERSIONS {
        let s = statement();
        let id = id_of(&s);
        let mut responses = vec![
            lrs.put("/statements")
                .query("statementId", &id)
                .version(v)
                .json(&s)
                .send(),
            lrs.post("/statements").version(v).json(&statement()).send(),
        ];
        let stored = rfc3339(&stored_of(&lrs, v, &id));
        let mut conflicting = s.clone();
        conflicting["verb"]["id"] = json!("http://example.com/verbs/other");
        responses.extend([
            get_statement(&lrs, v, &id),
            query(&lrs, v, &[]),
            query(&lrs, v, &[("limit", "1")]),
            lrs.head("/statements").version(v).send(),
            get_statement(&lrs, v, &new_id()),
            query(&lrs, v, &[("notAParameter", "1")]),
            lrs.post("/statements")
                .version(v)
                .json(&json!({"actor": {}}))
                .send(),
            lrs.post("/statements").version(v).json(&conflicting).send(),
            lrs.get("/statements").version(v).no_auth().send(),
            lrs.put("/statements").version(v).json(&statement()).send(),
            lrs.post("/statements")
                .version(v)
                .auth(&read_key, &read_secret)
                .json(&statement())
                .send(),
        ]);
        let expected_status = [
            204, 200, 200, 200, 200, 200, 404, 400, 400, 409, 401, 400, 403,
        ];
        let now = Utc::now();
        for (r, status) in responses.iter().zip(expected_status) {
            r.assert_status(status);
            let h = r.assert_header("X-Experience-API-Consistent-Through");
            let t = rfc3339(h);
            assert!(
                (t.with_timezone(&Utc) - now).num_seconds().abs() < 300,
                "Consistent-Through should be recent\n{}",
                r.describe()
            );
        }
        // Read-after-write: the GET after the PUT is consistent through the stored time.
        let t = rfc3339(responses[2].assert_header("X-Experience-API-Consistent-Through"));
        assert!(
            t >= stored,
            "Consistent-Through {t} is before stored {stored}"
        );
    }
}

/// Communication 3.2.s3.b7 (unknown parameters) and Data 2.2.s4.b4 (XAPI-00012: parameter
/// values validate as their statement counterparts): 400 with the parameter as path.
#[test]
fn data_2_2_s4_b4_invalid_query_parameters_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let cases: [(&str, &str); 20] = [
            ("agent", "not json"),
            ("agent", "{\"name\": \"no ifi\"}"),
            (
                "agent",
                "{\"mbox\": \"mailto:a@example.com\", \"openid\": \"http://example.com/a\"}",
            ),
            ("agent", "{\"mbox\": \"a@example.com\"}"),
            ("verb", "not an iri"),
            ("activity", "not an iri"),
            ("registration", "not-a-uuid"),
            ("since", "yesterday"),
            ("until", "2020-13-01T00:00:00Z"),
            ("limit", "-1"),
            ("limit", "ten"),
            ("ascending", "yes"),
            ("related_agents", "1"),
            ("related_activities", "TRUE!"),
            ("attachments", "maybe"),
            ("format", "full"),
            ("statementId", "not-a-uuid"),
            ("voidedStatementId", "not-a-uuid"),
            ("Agent", "{\"mbox\": \"mailto:a@example.com\"}"),
            ("notAParameter", "1"),
        ];
        for (k, val) in cases {
            let r = query(&lrs, v, &[(k, val)]);
            assert_400_at(&r, &[k]);
            r.assert_version(v);
        }
    }
}

/// Communication 2.1.3 (the LRS MAY filter by the permissions of the credential): a
/// `statements/read/mine` credential sees only the statements it stored itself.
#[test]
fn comm_2_1_3_read_mine_credential_sees_only_its_own_statements() {
    let lrs = Lrs::start();
    let (key, secret) = lrs.credential(&["statements/write", "statements/read/mine"]);
    for v in VERSIONS {
        let activity = activity_iri();
        let mine = statement_about(&activity);
        lrs.post("/statements")
            .version(v)
            .auth(&key, &secret)
            .json(&mine)
            .send()
            .assert_status(200);
        let theirs = statement_about(&activity);
        post_ok(&lrs, v, &theirs);

        let r = lrs
            .get("/statements")
            .query("activity", &activity)
            .auth(&key, &secret)
            .version(v)
            .send();
        let (list, _) = result_of(&r);
        assert_eq!(
            list.iter().map(id_of).collect::<Vec<_>>(),
            vec![id_of(&mine)]
        );
        let r = lrs.get("/statements").auth(&key, &secret).version(v).send();
        let (list, _) = result_of(&r);
        assert!(
            list.iter().all(|s| s["id"] != json!(id_of(&theirs))),
            "{}",
            r.describe()
        );
        let r = lrs
            .get("/statements")
            .query("statementId", &id_of(&mine))
            .auth(&key, &secret)
            .version(v)
            .send();
        r.assert_status(200);
        let r = lrs
            .get("/statements")
            .query("statementId", &id_of(&theirs))
            .auth(&key, &secret)
            .version(v)
            .send();
        assert!(
            r.status == 403 || r.status == 404,
            "another credential's statement must not be readable\n{}",
            r.describe()
        );
        r.assert_error_body();
        // The full-read credential sees both.
        assert_eq!(
            id_set(ids(&lrs, v, &[("activity", &activity)])),
            set(&[&id_of(&mine), &id_of(&theirs)])
        );
    }
}
