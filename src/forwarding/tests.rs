use super::*;

fn d(p: &str) -> Department {
    Department::parse(p).expect("valid")
}

fn request(target: &str) -> NewRule {
    NewRule {
        target: Some(target.into()),
        ..NewRule::default()
    }
}

fn rule(verbs: &[&str], activities: &[&str]) -> Rule {
    let mut r = request("http://127.0.0.1:9/xapi/statements");
    r.verbs = verbs.iter().map(|s| s.to_string()).collect();
    r.activities = activities.iter().map(|s| s.to_string()).collect();
    build(r, &d("moe"), "r1".into(), [7; 32], 1).expect("valid rule")
}

#[test]
fn defaults_and_round_trip_through_storage() {
    let r = build(
        request("https://collector.example/in"),
        &d("moe"),
        "id".into(),
        [1; 32],
        5,
    )
    .expect("valid");
    assert_eq!(r.department, d("moe"));
    assert_eq!(r.batch_size, DEFAULT_BATCH);
    assert_eq!(r.xapi_version, "1.0.3");
    assert_eq!(r.secret, hex::encode([1u8; 32]));
    assert_eq!(Rule::from_stored(&r.to_stored()), Ok(r));
}

#[test]
fn bad_rules_are_refused_with_a_pointer() {
    let caller = d("moe");
    let refuse = |r: NewRule| {
        build(r, &caller, "id".into(), [0; 32], 0)
            .expect_err("refused")
            .at
    };
    assert_eq!(refuse(NewRule::default()), "/target");
    for bad in [
        "ftp://x.example/",
        "not a url",
        "http://user:pw@x.example/",
        "http://x.example/#frag",
        "/relative",
    ] {
        assert_eq!(refuse(request(bad)), "/target", "{bad}");
    }
    let mut r = request("http://x.example/");
    r.batch_size = Some(0);
    assert_eq!(refuse(r.clone()), "/batchSize");
    r.batch_size = Some(501);
    assert_eq!(refuse(r), "/batchSize");
    let mut r = request("http://x.example/");
    r.xapi_version = Some("1.0.0".into());
    assert_eq!(refuse(r), "/xapiVersion");
    let mut r = request("http://x.example/");
    r.verbs = vec!["http://ok.example/v".into(), "not an iri".into()];
    assert_eq!(refuse(r), "/verbs/1");
    let mut r = request("http://x.example/");
    r.authorization = Some("Basic abc\r\nX-Evil: 1".into());
    assert_eq!(refuse(r), "/authorization");
    let mut r = request("http://x.example/");
    r.department = Some("Bad Dept".into());
    assert_eq!(refuse(r), "/department");
}

#[test]
fn filters_match_verb_object_and_context_activities() {
    let s = json!({
        "verb": {"id": "http://v.example/completed"},
        "object": {"id": "http://a.example/course"},
        "context": {"contextActivities": {
            "parent": [{"id": "http://a.example/programme"}],
            "category": {"id": "http://a.example/cat"}
        }}
    });
    assert!(matches(&rule(&[], &[]), &s));
    assert!(matches(&rule(&["http://v.example/completed"], &[]), &s));
    assert!(!matches(&rule(&["http://v.example/attempted"], &[]), &s));
    assert!(matches(&rule(&[], &["http://a.example/course"]), &s));
    assert!(matches(&rule(&[], &["http://a.example/programme"]), &s));
    assert!(matches(&rule(&[], &["http://a.example/cat"]), &s));
    assert!(!matches(&rule(&[], &["http://a.example/other"]), &s));
    // Both filters must hold.
    assert!(!matches(
        &rule(
            &["http://v.example/attempted"],
            &["http://a.example/course"]
        ),
        &s
    ));
    // An agent object is not an activity, whatever its id-like fields say.
    let agent = json!({"verb": {"id": "http://v.example/completed"},
        "object": {"objectType": "Agent", "id": "http://a.example/course"}});
    assert!(!matches(&rule(&[], &["http://a.example/course"]), &agent));
}

#[test]
fn voiding_follows_the_voided_statement() {
    let voiding =
        json!({"verb": {"id": VOIDED}, "object": {"objectType": "StatementRef", "id": "x"}});
    let target = json!({"verb": {"id": "http://v.example/completed"}, "object": {"id": "http://a.example/c"}});
    assert!(matches_voiding(&rule(&[], &[]), &voiding, None));
    let completed = rule(&["http://v.example/completed"], &[]);
    assert!(needs_voided_target(&completed));
    assert!(matches_voiding(&completed, &voiding, Some(&target)));
    assert!(!matches_voiding(&completed, &voiding, None));
    assert!(matches_voiding(&rule(&[VOIDED], &[]), &voiding, None));
    assert!(!matches_voiding(
        &rule(&["http://v.example/other"], &[]),
        &voiding,
        Some(&target)
    ));
}

#[test]
fn body_signature_and_delivery_id() {
    let b = body([r#"{"id":"a"}"#, " {\"id\":\"b\"}\n"]);
    assert_eq!(b, br#"[{"id":"a"},{"id":"b"}]"#);
    let secret = hex::encode([9u8; 32]);
    let sig = signature(&secret, &b);
    assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
    assert!(verify(&secret, &b, &sig));
    assert!(!verify(&secret, b"[]", &sig));
    assert!(!verify(&hex::encode([8u8; 32]), &b, &sig));
    assert!(!verify(&secret, &b, "sha256=zz"));
    assert!(!verify(&secret, &b, &sig[7..]));
    // RFC 4231 test case 2 ("Jefe"), so the header is plain HMAC-SHA256 anyone can check.
    let jefe = hex::encode(b"Jefe");
    assert_eq!(
        signature(&jefe, b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(delivery_id("r", 3, 9), "r/3-9");
}

#[test]
fn statuses_and_backoff() {
    assert!(is_xapi_target("https://lrs.example/xapi/statements"));
    assert!(is_xapi_target("https://lrs.example/xapi/statements/"));
    assert!(!is_xapi_target("https://collector.example/in"));
    assert_eq!(outcome(200, false, 5), Outcome::Delivered);
    assert_eq!(outcome(204, true, 5), Outcome::Delivered);
    assert_eq!(outcome(409, false, 1), Outcome::Retry);
    assert_eq!(outcome(409, true, 1), Outcome::Delivered);
    assert_eq!(outcome(409, true, 2), Outcome::OneByOne);
    for s in [301, 400, 401, 404, 429, 500, 503] {
        assert_eq!(outcome(s, true, 1), Outcome::Retry, "{s}");
    }
    let (min, max) = (BACKOFF_MIN, BACKOFF_MAX);
    assert_eq!(backoff(1, min, max, 0), Duration::from_secs(1));
    assert_eq!(backoff(2, min, max, 0), Duration::from_secs(2));
    assert_eq!(backoff(4, min, max, 0), Duration::from_secs(8));
    assert_eq!(backoff(30, min, max, 0), Duration::from_secs(300));
    assert_eq!(backoff(u32::MAX, min, max, 0), Duration::from_secs(300));
    for j in [1, 77, 499, 500, 501, u64::MAX] {
        let w = backoff(1, min, max, j);
        assert!(
            w >= Duration::from_millis(500) && w <= Duration::from_secs(1),
            "{w:?}"
        );
    }
}

#[test]
fn the_view_hides_secrets_and_shows_lag() {
    let mut r = rule(&[], &[]);
    r.authorization = Some("Basic c2VjcmV0".into());
    let record = RuleRecord {
        rule: r.clone(),
        state: DeliveryState {
            cursor: 4,
            ..DeliveryState::default()
        },
    };
    let v = view(&record, 10, |us| us.to_string());
    let text = v.to_string();
    assert!(!text.contains("c2VjcmV0") && !text.contains(&r.secret));
    assert_eq!(v["hasAuthorization"], true);
    assert_eq!(v["delivery"]["lag"], 6);
    assert_eq!(error_note("a\nb"), "a b");
}
