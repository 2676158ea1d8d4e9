use super::*;
use crate::scorm::manifest::parse_cmi5;
use crate::xapi::validate::validate_statement;
use crate::xapi::XapiVersion;
use chrono::TimeZone;

const COURSE: &str = r#"<courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd">
  <course id="https://example.com/course/geo"><title><langstring lang="en-US">Geology</langstring></title>
    <description><langstring lang="en-US">Rocks</langstring></description></course>
  <au id="https://example.com/au/quiz" moveOn="Passed" masteryScore="0.7" launchMethod="OwnWindow"
      activityType="http://adlnet.gov/expapi/activities/assessment">
    <title><langstring lang="en-US">Quiz</langstring><langstring lang="de-DE">Quiz DE</langstring></title>
    <description><langstring>Check</langstring></description>
    <url>quiz/index.html?mode=exam</url>
    <launchParameters>{'level':3}</launchParameters>
    <entitlementKey>key-123</entitlementKey>
  </au>
  <au id="https://example.com/au/intro">
    <title><langstring lang="en-US">Intro</langstring></title>
    <description><langstring lang="en-US">Start</langstring></description>
    <url>https://content.example.com/intro</url>
  </au>
</courseStructure>"#;

fn actor() -> Value {
    json!({ "objectType": "Agent", "account": { "homePage": "https://igot.example.gov.in", "name": "1625378" } })
}

fn registration() -> Uuid {
    Uuid::parse_str("760e3480-ba55-4991-94b0-01820dbd23a2").unwrap()
}

fn decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .unwrap()
        .to_string()
}

#[test]
fn launch_url_carries_the_five_parameters_encoded() {
    let course = parse_cmi5(COURSE.as_bytes()).unwrap();
    let quiz = &course.aus[0];
    let location = au_location("https://lrs.example.gov.in/content/pkg-1/", &quiz.url).unwrap();
    assert_eq!(
        location,
        "https://lrs.example.gov.in/content/pkg-1/quiz/index.html?mode=exam"
    );
    let activity_id = au_activity_id(&course.course.id, &quiz.id);
    assert_ne!(activity_id, quiz.id);
    let a = actor();
    let url = launch_url(&LaunchParams {
        au_url: &location,
        endpoint: "https://lrs.example.gov.in/xapi/",
        fetch: "https://lrs.example.gov.in/cmi5/fetch/k-2390289x0",
        actor: &a,
        registration: registration(),
        activity_id: &activity_id,
    })
    .unwrap();
    let (path, query) = url.split_once('?').unwrap();
    assert_eq!(
        path,
        "https://lrs.example.gov.in/content/pkg-1/quiz/index.html"
    );
    let pairs: Vec<(&str, String)> = query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k, decode(v))
        })
        .collect();
    assert_eq!(pairs[0], ("mode", "exam".to_string()));
    assert_eq!(
        pairs[1],
        ("endpoint", "https://lrs.example.gov.in/xapi/".to_string())
    );
    assert_eq!(pairs[2].0, "fetch");
    assert_eq!(serde_json::from_str::<Value>(&pairs[3].1).unwrap(), a);
    assert_eq!(pairs[4], ("registration", registration().to_string()));
    assert_eq!(pairs[5], ("activityId", activity_id.clone()));
    // Encoded: no raw reserved characters in values.
    assert!(!query.contains('{') && !query.contains("://"));
    // The fetch URL's own query survives the round trip.
    let fetch_with_query = "https://lms.example.com/tokenGen.htm?k=2390289x0";
    let url = launch_url(&LaunchParams {
        au_url: "https://content.example.com/intro?activityId=wrong#top",
        endpoint: "https://lrs.example.gov.in/xapi/",
        fetch: fetch_with_query,
        actor: &a,
        registration: registration(),
        activity_id: &activity_id,
    })
    .unwrap();
    assert!(url.ends_with("#top"), "{url}");
    assert!(!url.contains("activityId=wrong"), "{url}");
    assert!(url.contains(&format!("fetch={}", encode(fetch_with_query))));
    assert_eq!(
        launch_url_without_params(&url),
        "https://content.example.com/intro#top"
    );
}

#[test]
fn launch_refusals() {
    let base = LaunchParams {
        au_url: "https://c.example.com/au",
        endpoint: "https://lrs.example.com/xapi/",
        fetch: "https://lrs.example.com/fetch/1",
        actor: &Value::Null,
        registration: registration(),
        activity_id: "https://lrs.example.com/au/1",
    };
    for bad_actor in [
        json!(null),
        json!({ "mbox": "mailto:a@example.com" }),
        json!({ "objectType": "Group", "account": { "homePage": "https://x", "name": "1" } }),
        json!({ "account": { "homePage": "https://x" } }),
    ] {
        let err = launch_url(&LaunchParams {
            actor: &bad_actor,
            ..base.clone()
        })
        .unwrap_err();
        assert_eq!(err.code(), "invalid_launch", "{bad_actor}");
    }
    let a = actor();
    let err = launch_url(&LaunchParams {
        actor: &a,
        endpoint: "/xapi",
        ..base.clone()
    })
    .unwrap_err();
    assert!(err.to_string().contains("endpoint"), "{err}");
    let err = launch_url(&LaunchParams {
        actor: &a,
        activity_id: " ",
        ..base.clone()
    })
    .unwrap_err();
    assert_eq!(err.code(), "invalid_launch");
    assert_eq!(
        au_location("not a url", "a.html").unwrap_err().code(),
        "invalid_launch"
    );
}

#[test]
fn launch_data_document() {
    let course = parse_cmi5(COURSE.as_bytes()).unwrap();
    let quiz = &course.aus[0];
    let mut input = LaunchDataInput::new(quiz, "session-1");
    input.return_url = Some("https://igot.example.gov.in/course/geo");
    let doc = launch_data(&input);
    assert_eq!(
        doc["contextTemplate"]["extensions"][EXT_SESSION_ID],
        "session-1"
    );
    assert_eq!(
        doc["contextTemplate"]["contextActivities"]["grouping"][0]["id"],
        quiz.id
    );
    assert_eq!(doc["launchMode"], "Normal");
    assert_eq!(doc["launchMethod"], "OwnWindow");
    assert_eq!(doc["moveOn"], "Passed");
    assert_eq!(doc["masteryScore"], 0.7);
    assert_eq!(doc["returnURL"], "https://igot.example.gov.in/course/geo");
    assert_eq!(doc["launchParameters"], "{'level':3}");
    assert_eq!(
        doc["entitlementKey"],
        json!({ "courseStructure": "key-123" })
    );

    // LMS overrides, and an AU without the optional values.
    let intro = &course.aus[1];
    let input = LaunchDataInput {
        launch_mode: LaunchMode::Review,
        move_on: Some(MoveOn::Completed),
        mastery_score: Some(0.5),
        ..LaunchDataInput::new(intro, "session-2")
    };
    let doc = launch_data(&input);
    assert_eq!(doc["launchMode"], "Review");
    assert_eq!(doc["moveOn"], "Completed");
    assert_eq!(doc["masteryScore"], 0.5);
    assert!(doc.get("returnURL").is_none());
    assert!(doc.get("launchParameters").is_none());
    assert!(doc.get("entitlementKey").is_none());
    assert_eq!(
        LaunchDataInput::new(intro, "s").launch_mode,
        LaunchMode::Normal
    );
    assert_eq!(
        launch_data(&LaunchDataInput::new(intro, "s"))["moveOn"],
        "NotApplicable"
    );
}

#[test]
fn launched_statement_is_valid_and_complete() {
    let course = parse_cmi5(COURSE.as_bytes()).unwrap();
    let quiz = &course.aus[0];
    let activity_id = au_activity_id(&course.course.id, &quiz.id);
    let data = launch_data(&LaunchDataInput::new(quiz, "session-1"));
    let a = actor();
    let url =
        "https://lrs.example.gov.in/content/pkg-1/quiz/index.html?mode=exam&endpoint=x&fetch=y";
    let id = Uuid::parse_str("2f1d7d5c-7b8e-4e2a-9a53-0e7c9f1b6a10").unwrap();
    let s = launched_statement(&LaunchedInput {
        id,
        actor: &a,
        registration: registration(),
        activity_id: &activity_id,
        au: quiz,
        launch_data: &data,
        launch_url: url,
        timestamp: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    })
    .unwrap();
    for v in [XapiVersion::V1_0, XapiVersion::V2_0] {
        validate_statement(&s, v).unwrap_or_else(|e| panic!("{v}: {e}\n{s:#}"));
    }
    assert_eq!(s["id"], id.to_string());
    assert_eq!(s["verb"]["id"], VERB_LAUNCHED);
    assert_eq!(s["object"]["id"], activity_id);
    assert_eq!(s["object"]["definition"]["name"]["de-DE"], "Quiz DE");
    assert_eq!(s["object"]["definition"]["description"]["und"], "Check");
    assert_eq!(
        s["object"]["definition"]["type"],
        "http://adlnet.gov/expapi/activities/assessment"
    );
    let ctx = &s["context"];
    assert_eq!(ctx["registration"], registration().to_string());
    assert_eq!(ctx["contextActivities"]["category"][0]["id"], CATEGORY_CMI5);
    assert_eq!(ctx["contextActivities"]["grouping"][0]["id"], quiz.id);
    let ext = &ctx["extensions"];
    assert_eq!(ext[EXT_SESSION_ID], "session-1");
    assert_eq!(ext[EXT_LAUNCH_MODE], "Normal");
    assert_eq!(
        ext[EXT_LAUNCH_URL],
        "https://lrs.example.gov.in/content/pkg-1/quiz/index.html?mode=exam"
    );
    assert_eq!(ext[EXT_MOVE_ON], "Passed");
    assert_eq!(ext[EXT_LAUNCH_PARAMETERS], "{'level':3}");
    assert_eq!(ext[EXT_MASTERY_SCORE], 0.7);
    assert_eq!(s["timestamp"], "2026-03-01T09:00:00.000Z");

    // No mastery score or parameters: no such extensions; launch data without a session id is refused.
    let intro = &course.aus[1];
    let data = launch_data(&LaunchDataInput::new(intro, "session-2"));
    let s = launched_statement(&LaunchedInput {
        id,
        actor: &a,
        registration: registration(),
        activity_id: "https://lrs.example.gov.in/course/au/2",
        au: intro,
        launch_data: &data,
        launch_url: "https://content.example.com/intro",
        timestamp: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    })
    .unwrap();
    assert!(s["context"]["extensions"].get(EXT_MASTERY_SCORE).is_none());
    assert!(s["context"]["extensions"]
        .get(EXT_LAUNCH_PARAMETERS)
        .is_none());
    validate_statement(&s, XapiVersion::V1_0).unwrap();
    let err = launched_statement(&LaunchedInput {
        id,
        actor: &a,
        registration: registration(),
        activity_id: "https://lrs.example.gov.in/course/au/2",
        au: intro,
        launch_data: &json!({}),
        launch_url: "https://content.example.com/intro",
        timestamp: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    })
    .unwrap_err();
    assert_eq!(err.code(), "invalid_launch");
}

#[test]
fn fetch_bodies() {
    assert_eq!(
        fetch_token_body("QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        json!({ "auth-token": "QWxhZGRpbjpvcGVuIHNlc2FtZQ==" })
    );
    assert_eq!(
        fetch_error_body(
            FetchError::AlreadyInUseOrExpired,
            "The authorization token has already been returned."
        ),
        json!({ "error-code": "1", "error-text": "The authorization token has already been returned." })
    );
    assert_eq!(FetchError::GeneralSecurity.code(), 2);
    assert_eq!(FetchError::GeneralApplication.code(), 3);
}

#[test]
fn learner_preferences_document() {
    assert_eq!(
        learner_preferences(&["en-US", "hi-IN"], Some(false)),
        json!({ "languagePreference": "en-US,hi-IN", "audioPreference": "off" })
    );
    assert_eq!(learner_preferences(&[], None), json!({}));
    let course = parse_cmi5(COURSE.as_bytes()).unwrap();
    assert!(needs_own_window(&course.aus[0]));
    assert!(!needs_own_window(&course.aus[1]));
}
