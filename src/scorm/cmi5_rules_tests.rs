use super::*;
use crate::xapi::validate::validate_statement;
use crate::xapi::XapiVersion;
use chrono::TimeZone;

const AU: &str = "https://lrs.example.gov.in/course/au/1";
const PUBLISHER: &str = "https://example.com/au/quiz";
const SESSION: &str = "5b1f0c4e-3c1a-4d55-9a43-8f3e2d1c0b9a";

fn actor() -> Value {
    json!({ "objectType": "Agent", "name": "Asha", "account": { "homePage": "https://igot.example.gov.in", "name": "1625378" } })
}

fn registration() -> Uuid {
    Uuid::parse_str("760e3480-ba55-4991-94b0-01820dbd23a2").unwrap()
}

fn session(mastery: Option<f64>) -> AuSession<'static> {
    static ACTOR: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    AuSession {
        session_id: SESSION,
        actor: ACTOR.get_or_init(actor),
        registration: registration(),
        activity_id: AU,
        publisher_id: PUBLISHER,
        mastery_score: mastery,
    }
}

/// A cmi5 defined statement of the session, as a well-behaved AU sends it.
fn defined(verb: &str, n: u32) -> Value {
    let mut category = vec![json!({ "id": CATEGORY_CMI5 })];
    let mut result = Map::new();
    match verb {
        VERB_PASSED => {
            result.insert("success".into(), json!(true));
            result.insert("score".into(), json!({ "scaled": 0.9 }));
        }
        VERB_FAILED => {
            result.insert("success".into(), json!(false));
            result.insert("score".into(), json!({ "scaled": 0.2 }));
        }
        VERB_COMPLETED => {
            result.insert("completion".into(), json!(true));
        }
        _ => {}
    }
    if result.contains_key("success") || result.contains_key("completion") {
        category.push(json!({ "id": CATEGORY_MOVEON }));
    }
    if verb != VERB_INITIALIZED {
        result.insert("duration".into(), json!("PT30S"));
    }
    let mut s = json!({
        "id": Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{verb}{n}").as_bytes()).to_string(),
        "actor": actor(),
        "verb": { "id": verb },
        "object": { "objectType": "Activity", "id": AU },
        "context": {
            "registration": registration().to_string(),
            "contextActivities": {
                "grouping": [{ "id": PUBLISHER }],
                "category": category,
            },
            "extensions": { EXT_SESSION_ID: SESSION },
        },
        "timestamp": format!("2026-03-01T09:00:{:02}.000Z", n % 60),
    });
    if !result.is_empty() {
        s["result"] = Value::Object(result);
    }
    s
}

/// A cmi5 allowed statement: any verb and object, the template, no cmi5 category.
fn allowed(n: u32) -> Value {
    let mut s = defined(VERB_INITIALIZED, n);
    s["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/answered");
    s["object"]["id"] = json!(format!("{AU}/question/{n}"));
    s["context"]["contextActivities"]
        .as_object_mut()
        .unwrap()
        .remove("category");
    s
}

fn code_of(prior: &[Value], new: &[Value]) -> Option<&'static str> {
    check_statements(&session(Some(0.7)), prior, new)
        .err()
        .map(|r| r.code)
}

#[test]
fn a_well_behaved_session_passes_every_rule() {
    let launched = {
        let mut l = defined(VERB_INITIALIZED, 0);
        l["verb"]["id"] = json!(VERB_LAUNCHED);
        l
    };
    let prior = [launched];
    let flow = [
        defined(VERB_INITIALIZED, 1),
        allowed(2),
        allowed(3),
        defined(VERB_COMPLETED, 4),
        defined(VERB_PASSED, 5),
        defined(VERB_TERMINATED, 6),
    ];
    assert_eq!(check_statements(&session(Some(0.7)), &prior, &flow), Ok(()));
    // The same, one request at a time.
    let mut stored = prior.to_vec();
    for s in flow {
        assert_eq!(
            check_statements(&session(Some(0.7)), &stored, std::slice::from_ref(&s)),
            Ok(())
        );
        stored.push(s);
    }
    for s in &stored {
        validate_statement(s, XapiVersion::V2_0).unwrap();
    }
}

#[test]
fn statements_must_be_the_sessions() {
    let init = defined(VERB_INITIALIZED, 1);
    let prior = [init.clone()];
    let mut s = allowed(2);
    s.as_object_mut().unwrap().remove("id");
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_statement_id_required"));
    let mut s = allowed(2);
    s.as_object_mut().unwrap().remove("timestamp");
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_timestamp_required"));
    let mut s = allowed(2);
    s["actor"]["account"]["name"] = json!("someone-else");
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_actor_mismatch"));
    // The same IFI with another name or no objectType is the same actor; a Group is not.
    let mut s = allowed(2);
    s["actor"] = json!({ "account": actor()["account"] });
    assert_eq!(code_of(&prior, &[s]), None);
    let mut s = allowed(2);
    s["actor"]["objectType"] = json!("Group");
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_actor_mismatch"));
    let mut s = allowed(2);
    s["context"]["registration"] = json!(Uuid::new_v4().to_string());
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_registration_mismatch"));
    let mut s = allowed(2);
    s["context"].as_object_mut().unwrap().remove("registration");
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_registration_mismatch"));
    // Upper case is the same UUID.
    let mut s = allowed(2);
    s["context"]["registration"] = json!(registration().to_string().to_uppercase());
    assert_eq!(code_of(&prior, &[s]), None);
    let mut s = allowed(2);
    s["context"]["extensions"][EXT_SESSION_ID] = json!("another-session");
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_session_mismatch"));
}

#[test]
fn the_lms_verbs_and_voiding_are_refused() {
    let prior = [defined(VERB_INITIALIZED, 1)];
    for v in LMS_VERBS {
        let mut s = defined(VERB_COMPLETED, 2);
        s["verb"]["id"] = json!(v);
        assert_eq!(code_of(&prior, &[s.clone()]), Some("cmi5_lms_verb"), "{v}");
        // Without the cmi5 category too.
        s["context"]["contextActivities"]
            .as_object_mut()
            .unwrap()
            .remove("category");
        assert_eq!(code_of(&prior, &[s]), Some("cmi5_lms_verb"), "{v}");
    }
    let mut s = allowed(2);
    s["verb"]["id"] = json!(VERB_VOIDED);
    s["object"] = json!({ "objectType": "StatementRef", "id": Uuid::new_v4().to_string() });
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_voiding_refused"));
}

#[test]
fn initialized_comes_first_and_nothing_follows_the_end() {
    assert_eq!(code_of(&[], &[allowed(1)]), Some("cmi5_not_initialized"));
    assert_eq!(
        code_of(&[], &[defined(VERB_COMPLETED, 1)]),
        Some("cmi5_not_initialized")
    );
    // An `initialized` without the cmi5 category is not the session's start.
    let mut init = defined(VERB_INITIALIZED, 1);
    init["context"]["contextActivities"]
        .as_object_mut()
        .unwrap()
        .remove("category");
    assert_eq!(code_of(&[], &[init]), Some("cmi5_not_initialized"));
    // Initialized by another session does not start this one.
    let mut other = defined(VERB_INITIALIZED, 1);
    other["context"]["extensions"][EXT_SESSION_ID] = json!("earlier-session");
    assert_eq!(
        code_of(&[other], &[allowed(2)]),
        Some("cmi5_not_initialized")
    );

    let ended = [defined(VERB_INITIALIZED, 1), defined(VERB_TERMINATED, 2)];
    assert_eq!(code_of(&ended, &[allowed(3)]), Some("cmi5_session_ended"));
    // In one batch: what follows `terminated` is refused, with its index.
    let r = check_statements(
        &session(None),
        &ended[..1],
        &[allowed(2), defined(VERB_TERMINATED, 3), allowed(4)],
    )
    .unwrap_err();
    assert_eq!((r.index, r.code), (2, "cmi5_session_ended"));
    // Abandoned by the LMS: ended too.
    let mut abandoned = defined(VERB_TERMINATED, 2);
    abandoned["verb"]["id"] = json!(VERB_ABANDONED);
    assert_eq!(
        code_of(&[ended[0].clone(), abandoned], &[allowed(3)]),
        Some("cmi5_session_ended")
    );
}

#[test]
fn defined_statements_follow_the_template_and_the_verb_rules() {
    let prior = [defined(VERB_INITIALIZED, 1)];
    let mut s = defined(VERB_COMPLETED, 2);
    s["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/experienced");
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_verb_not_defined"));
    let mut s = defined(VERB_COMPLETED, 2);
    s["object"]["id"] = json!(PUBLISHER);
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_object_mismatch"));
    let mut s = defined(VERB_COMPLETED, 2);
    s["context"]["extensions"] = json!({});
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_context_template"));
    let mut s = defined(VERB_COMPLETED, 2);
    s["context"]["contextActivities"]["grouping"] = json!([]);
    assert_eq!(code_of(&prior, &[s]), Some("cmi5_context_template"));
    // A grouping given as one object (xAPI 1.0) counts.
    let mut s = defined(VERB_COMPLETED, 2);
    s["context"]["contextActivities"]["grouping"] = json!({ "id": PUBLISHER });
    assert_eq!(code_of(&prior, &[s]), None);

    // Once per session; passed or failed, not both.
    assert_eq!(
        code_of(&prior, &[defined(VERB_INITIALIZED, 2)]),
        Some("cmi5_duplicate_verb")
    );
    let stored = [defined(VERB_INITIALIZED, 1), defined(VERB_FAILED, 2)];
    assert_eq!(
        code_of(&stored, &[defined(VERB_PASSED, 3)]),
        Some("cmi5_duplicate_verb")
    );
    // Per registration: completed and passed once, no failed after passed, whatever the
    // session.
    let mut earlier = defined(VERB_PASSED, 0);
    earlier["context"]["extensions"][EXT_SESSION_ID] = json!("earlier-session");
    let mut earlier_completed = defined(VERB_COMPLETED, 0);
    earlier_completed["context"]["extensions"][EXT_SESSION_ID] = json!("earlier-session");
    let stored = [earlier, earlier_completed, defined(VERB_INITIALIZED, 1)];
    assert_eq!(
        code_of(&stored, &[defined(VERB_PASSED, 2)]),
        Some("cmi5_duplicate_verb")
    );
    assert_eq!(
        code_of(&stored, &[defined(VERB_COMPLETED, 2)]),
        Some("cmi5_duplicate_verb")
    );
    assert_eq!(
        code_of(&stored, &[defined(VERB_FAILED, 2)]),
        Some("cmi5_failed_after_passed")
    );
    // A failed session before a passed one is fine.
    let mut failed = defined(VERB_FAILED, 0);
    failed["context"]["extensions"][EXT_SESSION_ID] = json!("earlier-session");
    assert_eq!(
        code_of(
            &[failed, defined(VERB_INITIALIZED, 1)],
            &[defined(VERB_PASSED, 2)]
        ),
        None
    );
}

#[test]
fn results_follow_the_verb() {
    let prior = [defined(VERB_INITIALIZED, 1)];
    let with = |verb: &str, f: &dyn Fn(&mut Value)| {
        let mut s = defined(verb, 2);
        f(&mut s);
        code_of(&prior, &[s])
    };
    let bad = Some("cmi5_result_invalid");
    assert_eq!(
        with(VERB_PASSED, &|s| s["result"]["success"] = json!(false)),
        bad
    );
    assert_eq!(
        with(VERB_FAILED, &|s| s["result"]["success"] = json!(true)),
        bad
    );
    assert_eq!(
        with(VERB_COMPLETED, &|s| s["result"]["completion"] =
            json!(false)),
        bad
    );
    assert_eq!(
        with(VERB_COMPLETED, &|s| s["result"]["success"] = json!(true)),
        bad
    );
    assert_eq!(
        with(VERB_PASSED, &|s| s["result"]["completion"] = json!(true)),
        bad
    );
    assert_eq!(
        with(VERB_COMPLETED, &|s| s["result"]["score"] =
            json!({ "scaled": 1.0 })),
        bad
    );
    assert_eq!(
        with(VERB_PASSED, &|s| s["result"]["score"]["scaled"] =
            json!(0.5)),
        bad
    );
    assert_eq!(
        with(VERB_FAILED, &|s| s["result"]["score"]["scaled"] =
            json!(0.7)),
        bad
    );
    assert_eq!(
        with(VERB_TERMINATED, &|s| {
            s["result"].as_object_mut().unwrap().remove("duration");
        }),
        bad
    );
    // The moveOn category: with success/completion only.
    assert_eq!(
        with(VERB_PASSED, &|s| {
            s["context"]["contextActivities"]["category"] = json!([{ "id": CATEGORY_CMI5 }]);
        }),
        Some("cmi5_context_template")
    );
    assert_eq!(
        with(VERB_TERMINATED, &|s| {
            s["context"]["contextActivities"]["category"] =
                json!([{ "id": CATEGORY_CMI5 }, { "id": CATEGORY_MOVEON }]);
        }),
        Some("cmi5_context_template")
    );
    // Without a mastery score any scaled score goes with either verb.
    let mut s = defined(VERB_PASSED, 2);
    s["result"]["score"]["scaled"] = json!(0.1);
    assert_eq!(check_statements(&session(None), &prior, &[s]), Ok(()));
}

#[test]
fn open_sessions_are_found_and_abandoned() {
    let launched = |session: &str, second: u32| {
        let mut l = defined(VERB_INITIALIZED, second);
        l["verb"]["id"] = json!(VERB_LAUNCHED);
        l["context"]["extensions"][EXT_SESSION_ID] = json!(session);
        l
    };
    let of = |mut s: Value, session: &str| {
        s["context"]["extensions"][EXT_SESSION_ID] = json!(session);
        s
    };
    let statements = [
        launched("s1", 0),
        of(defined(VERB_INITIALIZED, 1), "s1"),
        of(defined(VERB_TERMINATED, 5), "s1"),
        launched("s2", 10),
        of(defined(VERB_INITIALIZED, 11), "s2"),
        of(allowed(42), "s2"),
        launched("s3", 50),
    ];
    let open = open_sessions(&statements);
    assert_eq!(
        open.iter()
            .map(|o| o.session_id.as_str())
            .collect::<Vec<_>>(),
        ["s2", "s3"]
    );
    assert_eq!((open[0].last - open[0].started).num_seconds(), 32);
    assert_eq!(open[1].last, open[1].started);

    let now = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    let a = abandoned_statement(&open[0], now);
    for v in [XapiVersion::V1_0, XapiVersion::V2_0] {
        validate_statement(&a, v).unwrap_or_else(|e| panic!("{v}: {e}\n{a:#}"));
    }
    assert_eq!(a["id"], abandoned_id("s2").to_string());
    assert_eq!(a["verb"]["id"], VERB_ABANDONED);
    assert_eq!(a["object"]["id"], AU);
    assert_eq!(a["actor"], actor());
    assert_eq!(a["result"]["duration"], "PT32S");
    assert_eq!(a["context"]["registration"], registration().to_string());
    assert_eq!(a["context"]["extensions"][EXT_SESSION_ID], "s2");
    assert_eq!(
        a["context"]["contextActivities"]["grouping"][0]["id"],
        PUBLISHER
    );
    assert!(is_defined(&a));
    // Once abandoned, the session is no longer open.
    let mut all = statements.to_vec();
    all.push(a);
    assert_eq!(
        open_sessions(&all)
            .iter()
            .map(|o| o.session_id.as_str())
            .collect::<Vec<_>>(),
        ["s3"]
    );
}
