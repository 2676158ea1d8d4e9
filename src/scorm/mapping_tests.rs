use super::*;
use crate::scorm::manifest::ItemValues;
use crate::scorm::restore::*;
use crate::xapi::validate::validate_statement;
use crate::xapi::XapiVersion;
use chrono::TimeZone;
use ScormVersion::{Scorm12 as V12, Scorm2004 as V2004};

const REGISTRATION: &str = "8f1c7a4e-2b3d-4c5e-9f60-718293a4b5c6";

fn course() -> Activity {
    Activity {
        id: "https://lrs.example.gov.in/scorm/courses/golf".into(),
        name: "Golf Explained".into(),
    }
}

fn sco() -> Activity {
    Activity {
        id: sco_iri("https://lrs.example.gov.in/scorm/courses/golf", "item_1"),
        name: "Golf lesson".into(),
    }
}

fn actor() -> Value {
    json!({ "objectType": "Agent", "account": { "homePage": "https://igot.example.gov.in", "name": "learner-42" } })
}

fn stored_attempt<'a>(runtime: Option<&'a Value>, suspend: Option<&'a str>) -> StoredAttempt<'a> {
    StoredAttempt {
        runtime_state: runtime,
        suspend_data: suspend,
        ..StoredAttempt::default()
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

struct Run {
    version: ScormVersion,
    event: CommitEvent,
    session_start: DateTime<Utc>,
    attempt: u32,
}

impl Run {
    fn new(version: ScormVersion, event: CommitEvent) -> Self {
        Run {
            version,
            event,
            session_start: start(),
            attempt: 1,
        }
    }
    fn map(&self, previous: &Model, current: &Model) -> CommitOutput {
        let (c, s, a) = (course(), sco(), actor());
        let out = map_commit(&CommitInput {
            version: self.version,
            course: &c,
            sco: &s,
            actor: &a,
            registration: Uuid::parse_str(REGISTRATION).unwrap(),
            attempt: self.attempt,
            session_start: self.session_start,
            now: self.session_start + chrono::Duration::seconds(95),
            event: self.event,
            previous,
            current,
            language: "en-US",
        });
        for st in &out.statements {
            for v in [XapiVersion::V1_0, XapiVersion::V2_0] {
                if let Err(e) = validate_statement(st, v) {
                    panic!("invalid under {v}: {e}\n{st:#}");
                }
            }
        }
        out
    }
}

fn verbs(out: &CommitOutput) -> Vec<&str> {
    out.statements
        .iter()
        .map(|s| {
            s["verb"]["id"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
        })
        .collect()
}

fn one<'a>(out: &'a CommitOutput, verb: &str) -> &'a Value {
    let found: Vec<&Value> = out
        .statements
        .iter()
        .filter(|s| {
            s["verb"]["id"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{verb}"))
        })
        .collect();
    assert_eq!(found.len(), 1, "{verb} in {:?}", verbs(out));
    found[0]
}

fn doc<'a>(out: &'a CommitOutput, id: &str) -> Option<&'a DocumentWrite> {
    out.documents.iter().find(|d| match &d.target {
        DocumentTarget::State { state_id, .. } => state_id == id,
        DocumentTarget::ActivityProfile { profile_id, .. } => profile_id == id,
        DocumentTarget::AgentProfile { profile_id, .. } => profile_id == id,
    })
}

fn runtime(out: &CommitOutput) -> Value {
    match &doc(out, STATE_RUNTIME).unwrap().body {
        DocumentBody::Replace { content, .. } => serde_json::from_slice(content).unwrap(),
        other => panic!("{other:?}"),
    }
}

fn fresh12() -> Model {
    let launch = LaunchValues {
        learner_id: "learner-42".into(),
        learner_name: "Asha".into(),
        item: ItemValues {
            mastery_score: Some(80.0),
            launch_data: Some("chapter=1".into()),
            max_time_allowed: Some("0001:00:00".into()),
            time_limit_action: Some("continue,no message".into()),
            ..ItemValues::default()
        },
        ..LaunchValues::default()
    };
    restore_model(V12, &StoredAttempt::default(), &launch)
        .unwrap()
        .0
}

fn fresh2004() -> Model {
    let launch = LaunchValues {
        learner_id: "learner-42".into(),
        learner_name: "{lang=en}Asha".into(),
        item: ItemValues {
            scaled_passing_score: Some(0.8),
            completion_threshold: Some(0.75),
            max_time_allowed: Some("PT1H".into()),
            ..ItemValues::default()
        },
        ..LaunchValues::default()
    };
    restore_model(V2004, &StoredAttempt::default(), &launch)
        .unwrap()
        .0
}

fn with(base: &Model, pairs: &[(&str, &str)]) -> Model {
    let mut m = base.clone();
    for (k, v) in pairs {
        m.insert(k.to_string(), v.to_string());
    }
    m
}

#[test]
fn initialize_a_new_attempt() {
    for (version, m) in [(V12, fresh12()), (V2004, fresh2004())] {
        let out = Run::new(version, CommitEvent::Initialize).map(&m, &m);
        assert_eq!(verbs(&out), ["initialized"], "{version}");
        let s = &out.statements[0];
        assert_eq!(s["object"]["id"], sco().id);
        assert_eq!(s["object"]["definition"]["type"], TYPE_LESSON);
        assert_eq!(s["timestamp"], "2026-03-01T09:00:00.000Z");
        let ctx = &s["context"];
        assert_eq!(ctx["registration"], REGISTRATION);
        assert!(ctx["contextActivities"].get("parent").is_none());
        let grouping = ctx["contextActivities"]["grouping"].as_array().unwrap();
        assert_eq!(grouping[0]["id"], course().id);
        assert_eq!(grouping[0]["definition"]["type"], TYPE_COURSE);
        let attempt = attempt_iri(&sco().id, Uuid::parse_str(REGISTRATION).unwrap(), 1);
        assert_eq!(grouping[1]["id"], attempt.as_str());
        assert_eq!(grouping[1]["definition"]["type"], TYPE_ATTEMPT);
        assert_eq!(ctx["contextActivities"]["category"][0]["id"], PROFILE_ID);
        assert_eq!(
            ctx["contextActivities"]["category"][0]["definition"]["type"],
            TYPE_PROFILE
        );

        assert_eq!(
            doc(&out, STATE_ACTIVITY).unwrap().body,
            DocumentBody::AppendAttempt(attempt.clone())
        );
        let DocumentBody::Merge(profile) = &doc(&out, PROFILE_ACTIVITY).unwrap().body else {
            panic!()
        };
        assert_eq!(profile["scaled_passing_score"], 0.8);
        assert_eq!(profile["max_time_allowed"], 3600.0);
        let DocumentBody::Merge(agent) = &doc(&out, PROFILE_AGENT).unwrap().body else {
            panic!()
        };
        assert_eq!(
            agent,
            &json!({ "learner_id": "learner-42", "learner_name": "Asha" })
        );
        let DocumentBody::Merge(state) = &doc(&out, STATE_ATTEMPT).unwrap().body else {
            panic!()
        };
        assert_eq!(state["credit"], "credit");
        assert_eq!(state["mode"], "normal");
        assert_eq!(state["total_time"], "PT0S");
        let DocumentTarget::State {
            activity_id,
            registration,
            ..
        } = &doc(&out, STATE_ATTEMPT).unwrap().target
        else {
            panic!()
        };
        assert_eq!(activity_id, &attempt);
        assert!(registration.is_some());
        assert_eq!(runtime(&out)["status"], "active");
        assert_eq!(runtime(&out)["attempt"], 1);
    }
    let DocumentBody::Merge(profile) = &doc(
        &Run::new(V12, CommitEvent::Initialize).map(&fresh12(), &fresh12()),
        PROFILE_ACTIVITY,
    )
    .unwrap()
    .body
    .clone() else {
        panic!()
    };
    assert_eq!(profile["launch_data"], "chapter=1");
    assert_eq!(profile["time_limit_action"], "continue,no message");
    let DocumentBody::Merge(profile) = &doc(
        &Run::new(V2004, CommitEvent::Initialize).map(&fresh2004(), &fresh2004()),
        PROFILE_ACTIVITY,
    )
    .unwrap()
    .body
    .clone() else {
        panic!()
    };
    assert_eq!(profile["completion_threshold"], 0.75);
}

#[test]
fn initialize_a_resumed_attempt() {
    for (version, entry) in [(V12, "cmi.core.entry"), (V2004, "cmi.entry")] {
        let m = with(
            &if version == V12 {
                fresh12()
            } else {
                fresh2004()
            },
            &[(entry, "resume")],
        );
        let out = Run::new(version, CommitEvent::Initialize).map(&m, &m);
        assert_eq!(verbs(&out), ["resumed"]);
        assert!(
            doc(&out, STATE_ACTIVITY).is_none(),
            "no new attempt is listed"
        );
    }
}

#[test]
fn scorm12_lesson_status_rows() {
    let base = fresh12();
    let run = Run::new(V12, CommitEvent::Commit);
    let out = run.map(
        &base,
        &with(&base, &[("cmi.core.lesson_status", "completed")]),
    );
    assert_eq!(verbs(&out), ["completed"]);
    assert_eq!(out.statements[0]["result"], json!({ "completion": true }));

    let scored = with(&base, &[("cmi.core.score.raw", "85")]);
    let out = run.map(
        &scored,
        &with(&scored, &[("cmi.core.lesson_status", "passed")]),
    );
    assert_eq!(verbs(&out), ["passed"]);
    assert_eq!(
        out.statements[0]["result"],
        json!({ "success": true, "completion": true, "score": { "raw": 85.0, "scaled": 0.85 } })
    );
    let out = run.map(
        &scored,
        &with(&scored, &[("cmi.core.lesson_status", "failed")]),
    );
    assert_eq!(one(&out, "failed")["result"]["success"], false);
    for quiet in ["incomplete", "browsed"] {
        let out = run.map(&base, &with(&base, &[("cmi.core.lesson_status", quiet)]));
        assert!(out.statements.is_empty(), "{quiet}");
    }
}

#[test]
fn scorm2004_status_rows() {
    let base = fresh2004();
    let run = Run::new(V2004, CommitEvent::Commit);
    let out = run.map(
        &base,
        &with(&base, &[("cmi.completion_status", "completed")]),
    );
    assert_eq!(verbs(&out), ["completed"]);
    assert_eq!(out.statements[0]["result"], json!({ "completion": true }));
    let out = run.map(
        &base,
        &with(&base, &[("cmi.completion_status", "incomplete")]),
    );
    assert!(out.statements.is_empty());

    let now = with(
        &base,
        &[
            ("cmi.success_status", "passed"),
            ("cmi.score.scaled", "0.9"),
        ],
    );
    let out = run.map(&base, &now);
    assert_eq!(verbs(&out), ["passed", "scored"]);
    assert_eq!(
        one(&out, "passed")["result"],
        json!({ "success": true, "score": { "scaled": 0.9 } })
    );
    let now = with(&base, &[("cmi.success_status", "failed")]);
    assert_eq!(
        one(&run.map(&base, &now), "failed")["result"],
        json!({ "success": false })
    );
}

#[test]
fn score_rows() {
    // 1.2: scaled derived from raw within min..max.
    let base = fresh12();
    let now = with(
        &base,
        &[
            ("cmi.core.score.raw", "30"),
            ("cmi.core.score.min", "10"),
            ("cmi.core.score.max", "50"),
        ],
    );
    let out = Run::new(V12, CommitEvent::Commit).map(&base, &now);
    assert_eq!(
        one(&out, "scored")["result"]["score"],
        json!({ "raw": 30.0, "min": 10.0, "max": 50.0, "scaled": 0.5 })
    );
    // Raw outside min..max: min and max are dropped (xAPI forbids it), no scaled.
    let now = with(
        &base,
        &[("cmi.core.score.raw", "130"), ("cmi.core.score.max", "100")],
    );
    let out = Run::new(V12, CommitEvent::Commit).map(&base, &now);
    assert_eq!(
        one(&out, "scored")["result"]["score"],
        json!({ "raw": 130.0 })
    );
    // 2004: all four as given.
    let base = fresh2004();
    let now = with(
        &base,
        &[
            ("cmi.score.scaled", "-0.25"),
            ("cmi.score.raw", "5"),
            ("cmi.score.min", "0"),
            ("cmi.score.max", "20"),
        ],
    );
    let out = Run::new(V2004, CommitEvent::Commit).map(&base, &now);
    assert_eq!(
        one(&out, "scored")["result"]["score"],
        json!({ "scaled": -0.25, "raw": 5.0, "min": 0.0, "max": 20.0 })
    );
    // Unchanged score: nothing.
    assert!(Run::new(V2004, CommitEvent::Commit)
        .map(&now, &now)
        .statements
        .is_empty());
}

#[test]
fn progress_measure_row() {
    let base = fresh2004();
    let out = Run::new(V2004, CommitEvent::Commit)
        .map(&base, &with(&base, &[("cmi.progress_measure", "0.4")]));
    assert_eq!(
        one(&out, "progressed")["result"],
        json!({ "score": { "scaled": 0.4 } })
    );
}

#[test]
fn scorm12_interaction_rows() {
    let base = fresh12();
    let now = with(
        &base,
        &[
            ("cmi.interactions.0.id", "q1"),
            ("cmi.interactions.0.type", "choice"),
            ("cmi.interactions.0.correct_responses.0.pattern", "a,c"),
            ("cmi.interactions.0.student_response", "{a,b}"),
            ("cmi.interactions.0.result", "wrong"),
            ("cmi.interactions.0.latency", "0000:00:12.5"),
            ("cmi.interactions.1.id", "q2"),
            ("cmi.interactions.1.type", "matching"),
            ("cmi.interactions.1.correct_responses.0.pattern", "1.a,2.b"),
            ("cmi.interactions.1.student_response", "1.a,2.c"),
            ("cmi.interactions.1.result", "correct"),
            ("cmi.interactions.2.id", "q3"),
            ("cmi.interactions.2.type", "true-false"),
            ("cmi.interactions.2.correct_responses.0.pattern", "t"),
            ("cmi.interactions.2.student_response", "0"),
            ("cmi.interactions.3.id", "q4"),
            ("cmi.interactions.3.type", "numeric"),
            ("cmi.interactions.3.student_response", "42"),
            ("cmi.interactions.3.result", "0.5"),
        ],
    );
    let out = Run::new(V12, CommitEvent::Commit).map(&base, &now);
    assert_eq!(verbs(&out), ["responded"; 4]);
    let q1 = &out.statements[0];
    assert_eq!(q1["object"]["id"], format!("{}/interactions/q1", sco().id));
    assert_eq!(q1["object"]["definition"]["type"], TYPE_INTERACTION);
    assert_eq!(q1["object"]["definition"]["interactionType"], "choice");
    assert_eq!(
        q1["object"]["definition"]["correctResponsesPattern"],
        json!(["a[,]c"])
    );
    assert_eq!(
        q1["result"],
        json!({ "response": "a[,]b", "success": false, "duration": "PT12.5S" })
    );
    assert_eq!(
        q1["context"]["contextActivities"]["parent"][0]["id"],
        sco().id
    );
    let q2 = &out.statements[1];
    assert_eq!(
        q2["object"]["definition"]["correctResponsesPattern"],
        json!(["1[.]a[,]2[.]b"])
    );
    assert_eq!(q2["result"]["response"], "1[.]a[,]2[.]c");
    assert_eq!(q2["result"]["success"], true);
    let q3 = &out.statements[2];
    assert_eq!(
        q3["object"]["definition"]["correctResponsesPattern"],
        json!(["true"])
    );
    assert_eq!(q3["result"]["response"], "false");
    assert_eq!(out.statements[3]["result"]["score"], json!({ "raw": 0.5 }));
}

#[test]
fn scorm2004_interaction_rows() {
    let base = fresh2004();
    let now = with(
        &base,
        &[
            ("cmi.interactions.0.id", "urn:golf:q 1"),
            ("cmi.interactions.0.type", "fill-in"),
            (
                "cmi.interactions.0.description",
                "{lang=en-US}Name the club",
            ),
            (
                "cmi.interactions.0.correct_responses.0.pattern",
                "{case_matters=false}driver[,]wood",
            ),
            ("cmi.interactions.0.learner_response", "Driver"),
            ("cmi.interactions.0.result", "incorrect"),
            ("cmi.interactions.0.latency", "PT3.2S"),
            ("cmi.interactions.1.id", "q2"),
            ("cmi.interactions.1.type", "numeric"),
            ("cmi.interactions.1.correct_responses.0.pattern", "3[:]5"),
            ("cmi.interactions.1.learner_response", "4"),
            ("cmi.interactions.1.result", "correct"),
            // Set but not answered: no statement yet.
            ("cmi.interactions.2.id", "q3"),
            ("cmi.interactions.2.type", "likert"),
        ],
    );
    let out = Run::new(V2004, CommitEvent::Commit).map(&base, &now);
    assert_eq!(verbs(&out), ["responded", "responded"]);
    let q1 = &out.statements[0];
    assert_eq!(
        q1["object"]["id"],
        format!("{}/interactions/urn%3Agolf%3Aq%201", sco().id)
    );
    assert_eq!(q1["object"]["definition"]["name"]["en-US"], "Name the club");
    assert_eq!(
        q1["object"]["definition"]["correctResponsesPattern"],
        json!(["{case_matters=false}driver[,]wood"])
    );
    assert_eq!(
        q1["result"],
        json!({ "response": "Driver", "success": false, "duration": "PT3.2S" })
    );
    assert_eq!(
        out.statements[1]["object"]["definition"]["correctResponsesPattern"],
        json!(["3[:]5"])
    );
    // Answering the third later emits only that one.
    let later = with(&now, &[("cmi.interactions.2.learner_response", "agree")]);
    let out2 = Run::new(V2004, CommitEvent::Commit).map(&now, &later);
    assert_eq!(verbs(&out2), ["responded"]);
    assert_eq!(
        out2.statements[0]["object"]["definition"]["interactionType"],
        "likert"
    );
}

#[test]
fn comment_rows() {
    let base = with(&fresh12(), &[("cmi.comments", "First. ")]);
    let now = with(&base, &[("cmi.comments", "First. Second one.")]);
    let out = Run::new(V12, CommitEvent::Commit).map(&base, &now);
    assert_eq!(
        one(&out, "commented")["result"],
        json!({ "response": "Second one." })
    );
    assert_eq!(one(&out, "commented")["object"]["id"], sco().id);

    let base = fresh2004();
    let now = with(
        &base,
        &[
            (
                "cmi.comments_from_learner.0.comment",
                "{lang=en}Great lesson",
            ),
            ("cmi.comments_from_learner.0.location", "page 2"),
        ],
    );
    let out = Run::new(V2004, CommitEvent::Commit).map(&base, &now);
    assert_eq!(
        one(&out, "commented")["result"],
        json!({ "response": "Great lesson" })
    );
}

#[test]
fn objective_rows() {
    let base = fresh12();
    let now = with(
        &base,
        &[
            ("cmi.objectives.0.id", "obj_etiquette"),
            ("cmi.objectives.0.status", "passed"),
            ("cmi.objectives.0.score.raw", "90"),
        ],
    );
    let out = Run::new(V12, CommitEvent::Commit).map(&base, &now);
    assert_eq!(verbs(&out), ["passed", "scored"]);
    let passed = one(&out, "passed");
    assert_eq!(
        passed["object"]["id"],
        format!("{}/objectives/obj_etiquette", sco().id)
    );
    assert_eq!(passed["object"]["definition"]["type"], TYPE_OBJECTIVE);
    assert_eq!(
        passed["context"]["contextActivities"]["parent"][0]["id"],
        sco().id
    );
    assert_eq!(
        passed["result"]["score"],
        json!({ "raw": 90.0, "scaled": 0.9 })
    );
    let now = with(
        &base,
        &[
            ("cmi.objectives.0.id", "o"),
            ("cmi.objectives.0.status", "completed"),
        ],
    );
    assert_eq!(
        verbs(&Run::new(V12, CommitEvent::Commit).map(&base, &now)),
        ["completed"]
    );

    let base = fresh2004();
    let now = with(
        &base,
        &[
            ("cmi.objectives.0.id", "obj_playing"),
            ("cmi.objectives.0.success_status", "failed"),
            ("cmi.objectives.0.completion_status", "completed"),
            ("cmi.objectives.0.description", "{lang=en}Playing"),
        ],
    );
    let out = Run::new(V2004, CommitEvent::Commit).map(&base, &now);
    assert_eq!(verbs(&out), ["completed", "failed"]);
    assert_eq!(
        one(&out, "failed")["object"]["definition"]["name"]["en-US"],
        "Playing"
    );
    assert_eq!(one(&out, "failed")["result"], json!({ "success": false }));
}

#[test]
fn terminate_rows() {
    // 1.2, normal exit: terminated with the overall result and the session time.
    let base = with(&fresh12(), &[("cmi.core.total_time", "0000:10:00.00")]);
    let now = with(
        &base,
        &[
            ("cmi.core.lesson_status", "passed"),
            ("cmi.core.score.raw", "80"),
            ("cmi.core.session_time", "0000:01:30.5"),
            ("cmi.core.exit", ""),
        ],
    );
    let out = Run::new(V12, CommitEvent::Terminate).map(&base, &now);
    assert_eq!(verbs(&out), ["passed", "scored", "terminated"]);
    let t = one(&out, "terminated");
    assert_eq!(
        t["result"],
        json!({ "success": true, "completion": true, "score": { "raw": 80.0, "scaled": 0.8 }, "duration": "PT1M30.5S" })
    );
    assert_eq!(t["timestamp"], "2026-03-01T09:01:35.000Z");
    let rt = runtime(&out);
    assert_eq!(rt["status"], "terminated");
    assert_eq!(rt["model"]["cmi.core.total_time"], "0000:11:30.50");
    assert!(rt["model"].get("cmi.core.session_time").is_none());
    assert!(rt["model"].get("cmi.core.exit").is_none());
    let DocumentBody::Merge(state) = &doc(&out, STATE_ATTEMPT).unwrap().body else {
        panic!()
    };
    assert_eq!(state["total_time"], "PT11M30.5S");

    // 2004, suspend: suspended; the duration falls back to the session's length.
    let base = fresh2004();
    let now = with(
        &base,
        &[
            ("cmi.exit", "suspend"),
            ("cmi.completion_status", "incomplete"),
            ("cmi.location", "p3"),
        ],
    );
    let out = Run::new(V2004, CommitEvent::Terminate).map(&base, &now);
    assert_eq!(verbs(&out), ["suspended"]);
    assert_eq!(
        one(&out, "suspended")["result"],
        json!({ "completion": false, "duration": "PT1M35S" })
    );
    assert_eq!(runtime(&out)["status"], "suspended");
    assert_eq!(runtime(&out)["model"]["cmi.total_time"], "PT1M35S");
    let DocumentBody::Merge(state) = &doc(&out, STATE_ATTEMPT).unwrap().body else {
        panic!()
    };
    assert_eq!(state["location"], "p3");
}

#[test]
fn suspend_data_goes_to_its_own_state_document() {
    let base = fresh2004();
    let now = with(&base, &[("cmi.suspend_data", "A1B2C3")]);
    let out = Run::new(V2004, CommitEvent::Commit).map(&base, &now);
    let d = doc(&out, STATE_SUSPEND_DATA).unwrap();
    assert_eq!(
        d.body,
        DocumentBody::Replace {
            content_type: "text/plain; charset=utf-8",
            content: b"A1B2C3".to_vec()
        }
    );
    let DocumentTarget::State { activity_id, .. } = &d.target else {
        panic!()
    };
    assert!(activity_id.contains("/attempt/"), "{activity_id}");
    // Unchanged: not written again.
    assert!(doc(
        &Run::new(V2004, CommitEvent::Commit).map(&now, &now),
        STATE_SUSPEND_DATA
    )
    .is_none());
}

#[test]
fn statement_ids_are_deterministic() {
    let base = fresh2004();
    let now = with(
        &base,
        &[
            ("cmi.completion_status", "completed"),
            ("cmi.score.scaled", "0.5"),
        ],
    );
    let run = Run::new(V2004, CommitEvent::Commit);
    let (a, b) = (run.map(&base, &now), run.map(&base, &now));
    let ids = |o: &CommitOutput| {
        o.statements
            .iter()
            .map(|s| s["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    // A re-sent commit (nothing changed since the last one) adds no statement.
    assert!(run.map(&now, &now).statements.is_empty());
    // Another attempt gets other ids.
    let other = Run {
        attempt: 2,
        ..Run::new(V2004, CommitEvent::Commit)
    };
    assert_ne!(ids(&a), ids(&other.map(&base, &now)));
    // Resumptions in different sessions are different statements.
    let resume = with(&base, &[("cmi.entry", "resume")]);
    let r1 = Run::new(V2004, CommitEvent::Initialize).map(&resume, &resume);
    let later = Run {
        session_start: start() + chrono::Duration::days(1),
        ..Run::new(V2004, CommitEvent::Initialize)
    };
    let r2 = later.map(&resume, &resume);
    assert_ne!(r1.statements[0]["id"], r2.statements[0]["id"]);
    assert!(Uuid::parse_str(r1.statements[0]["id"].as_str().unwrap()).is_ok());
}

#[test]
fn restore_after_suspend_resumes() {
    let base = fresh2004();
    let now = with(
        &base,
        &[
            ("cmi.exit", "suspend"),
            ("cmi.location", "page-7"),
            ("cmi.score.scaled", "0.5"),
            ("cmi.completion_status", "incomplete"),
        ],
    );
    let out = Run::new(V2004, CommitEvent::Terminate).map(&base, &now);
    let stored = runtime(&out);
    let launch = LaunchValues {
        learner_id: "learner-42".into(),
        learner_name: "Asha".into(),
        ..LaunchValues::default()
    };
    let (m, decision) = restore_model(
        V2004,
        &stored_attempt(Some(&stored), Some("SUSPENDED-STATE")),
        &launch,
    )
    .unwrap();
    assert_eq!(decision, LaunchDecision::Resume { attempt: 1 });
    assert_eq!(m["cmi.entry"], "resume");
    assert_eq!(m["cmi.location"], "page-7");
    assert_eq!(m["cmi.suspend_data"], "SUSPENDED-STATE");
    assert_eq!(m["cmi.score.scaled"], "0.5");
    assert_eq!(m["cmi.completion_status"], "incomplete");
    assert_eq!(m["cmi.total_time"], "PT1M35S");
    assert!(!m.contains_key("cmi.exit"));
    assert_eq!(
        datamodel::get_value(V2004, "cmi.location", &m).unwrap(),
        "page-7"
    );
}

#[test]
fn restore_after_terminate_starts_a_new_attempt() {
    let base = fresh2004();
    let now = with(
        &base,
        &[
            ("cmi.exit", "normal"),
            ("cmi.completion_status", "completed"),
            ("cmi.location", "end"),
        ],
    );
    let stored = runtime(&Run::new(V2004, CommitEvent::Terminate).map(&base, &now));
    let (m, decision) = restore_model(
        V2004,
        &stored_attempt(Some(&stored), None),
        &LaunchValues::default(),
    )
    .unwrap();
    assert_eq!(decision, LaunchDecision::NewAttempt { attempt: 2 });
    assert_eq!(m["cmi.entry"], "ab-initio");
    assert!(!m.contains_key("cmi.location"));
    assert_eq!(m["cmi.completion_status"], "unknown");
    assert_eq!(m["cmi.total_time"], "PT0S");

    // 1.2 attempt that ended unfinished is entered again with entry "".
    let base = fresh12();
    let now = with(
        &base,
        &[
            ("cmi.core.lesson_status", "incomplete"),
            ("cmi.core.lesson_location", "3"),
        ],
    );
    let stored = runtime(&Run::new(V12, CommitEvent::Terminate).map(&base, &now));
    let (m, decision) = restore_model(
        V12,
        &stored_attempt(Some(&stored), None),
        &LaunchValues::default(),
    )
    .unwrap();
    assert_eq!(decision, LaunchDecision::Resume { attempt: 1 });
    assert_eq!(m["cmi.core.entry"], "");
    assert_eq!(m["cmi.core.lesson_location"], "3");
    // ... and that launch is a resumption.
    assert_eq!(
        verbs(&Run::new(V12, CommitEvent::Initialize).map(&m, &m)),
        ["resumed"]
    );
    // 1.2 finished: new attempt.
    let now = with(&base, &[("cmi.core.lesson_status", "passed")]);
    let stored = runtime(&Run::new(V12, CommitEvent::Terminate).map(&base, &now));
    assert_eq!(
        launch_decision(Some(&stored)).unwrap(),
        LaunchDecision::NewAttempt { attempt: 2 }
    );
}

#[test]
fn restore_refuses_unusable_state() {
    let launch = LaunchValues::default();
    let err = restore_model(
        V12,
        &stored_attempt(Some(&json!({ "version": "1.2" })), None),
        &launch,
    )
    .unwrap_err();
    assert_eq!(err.code(), "invalid_state");
    let stored = json!({ "version": "2004", "attempt": 1, "status": "suspended", "model": {} });
    let err = restore_model(V12, &stored_attempt(Some(&stored), None), &launch).unwrap_err();
    assert_eq!(err.code(), "invalid_state");
    assert!(err.to_string().contains("SCORM 2004"), "{err}");
    assert_eq!(
        launch_decision(None).unwrap(),
        LaunchDecision::NewAttempt { attempt: 1 }
    );
}

#[test]
fn restored_models_pass_the_data_model_checks() {
    // Every value restore_model writes is one the data model accepts when read.
    for (version, m) in [(V12, fresh12()), (V2004, fresh2004())] {
        for (k, v) in &m {
            if let Ok(read) = datamodel::get_value(version, k, &m) {
                assert_eq!(&read, v, "{k}");
            }
        }
    }
    assert_eq!(fresh12()["cmi.student_data.mastery_score"], "80");
    assert_eq!(fresh2004()["cmi.scaled_passing_score"], "0.8");
}

#[test]
fn durations() {
    assert_eq!(timespan12_centis("0000:01:30.5"), Some(9_050));
    assert_eq!(timespan12_centis("12:00:00"), Some(4_320_000));
    assert_eq!(timespan12_centis("00:61:00"), None);
    assert_eq!(timespan12_centis("PT1M"), None);
    assert_eq!(iso_duration_centis("PT1H2M3.45S"), Some(372_345));
    assert_eq!(iso_duration_centis("P1DT1S"), Some(8_640_100));
    assert_eq!(iso_duration_centis("0000:01:00"), None);
    assert_eq!(centis_to_iso(0), "PT0S");
    assert_eq!(centis_to_iso(372_345), "PT1H2M3.45S");
    assert_eq!(centis_to_iso(360_000), "PT1H");
    assert_eq!(centis_to_iso(9_050), "PT1M30.5S");
    assert_eq!(centis_to_timespan12(9_050), "0000:01:30.50");
    assert!(centis_to_timespan12(u64::MAX / 2).starts_with("9999:"));
}

#[test]
fn response_conversion_12() {
    assert_eq!(convert_response_12("choice", "a,b,c"), "a[,]b[,]c");
    assert_eq!(convert_response_12("choice", "{a,b}"), "a[,]b");
    assert_eq!(convert_response_12("sequencing", "c,a,b"), "c[,]a[,]b");
    assert_eq!(convert_response_12("matching", "1.a,2.b"), "1[.]a[,]2[.]b");
    assert_eq!(convert_response_12("true-false", "T"), "true");
    assert_eq!(convert_response_12("true-false", "0"), "false");
    assert_eq!(
        convert_response_12("fill-in", "hello, world"),
        "hello, world"
    );
    assert_eq!(convert_response_12("numeric", "3.5"), "3.5");
}

#[test]
fn iri_shapes() {
    let s = sco_iri("https://x.org/c/", "item 1");
    assert_eq!(s, "https://x.org/c/sco/item%201");
    let r = Uuid::parse_str(REGISTRATION).unwrap();
    let a1 = attempt_iri(&s, r, 1);
    assert!(a1.starts_with("https://x.org/c/sco/item%201/attempt/"));
    assert_eq!(a1, attempt_iri(&s, r, 1));
    assert_ne!(a1, attempt_iri(&s, r, 2));
    assert_eq!(
        objective_iri(&s, "o/1"),
        "https://x.org/c/sco/item%201/objectives/o%2F1"
    );
    assert_eq!(
        interaction_iri(&s, "q.1"),
        "https://x.org/c/sco/item%201/interactions/q.1"
    );
    assert_eq!(
        activity_state_with_attempt(Some(&json!({ "attempts": ["a"] })), "b"),
        json!({ "attempts": ["a", "b"] })
    );
    assert_eq!(
        activity_state_with_attempt(Some(&json!({ "attempts": ["a"] })), "a"),
        json!({ "attempts": ["a"] })
    );
    assert_eq!(
        activity_state_with_attempt(None, "a"),
        json!({ "attempts": ["a"] })
    );
}

#[test]
fn preferences_go_to_the_attempt_state() {
    let base = fresh12();
    let now = with(
        &base,
        &[
            ("cmi.student_preference.audio", "50"),
            ("cmi.student_preference.speed", "-50"),
            ("cmi.student_preference.text", "1"),
            ("cmi.student_preference.language", "hi"),
        ],
    );
    let out = Run::new(V12, CommitEvent::Commit).map(&base, &now);
    let DocumentBody::Merge(state) = &doc(&out, STATE_ATTEMPT).unwrap().body else {
        panic!()
    };
    assert_eq!(
        state["preferences"],
        json!({ "audio_level": 0.5, "delivery_speed": 0.5, "audio_captioning": 1, "language": "hi" })
    );
    let base = fresh2004();
    let now = with(
        &base,
        &[
            ("cmi.learner_preference.audio_captioning", "-1"),
            ("cmi.comments_from_lms.0.comment", "{lang=en}Hi"),
        ],
    );
    let state = attempt_state(V2004, &now);
    assert_eq!(state["preferences"]["audio_captioning"], -1);
    assert_eq!(state["comments_from_lms"], json!([{ "comment": "Hi" }]));
}

#[test]
fn terminate_rows_the_other_way_round() {
    // 1.2 suspend: suspended, location and suspend data kept for the next session.
    let base = fresh12();
    let now = with(
        &base,
        &[
            ("cmi.core.exit", "suspend"),
            ("cmi.core.lesson_status", "incomplete"),
            ("cmi.core.lesson_location", "page-4"),
            ("cmi.suspend_data", "x=1"),
            ("cmi.core.session_time", "00:05:00"),
        ],
    );
    let out = Run::new(V12, CommitEvent::Terminate).map(&base, &now);
    assert_eq!(verbs(&out), ["suspended"]);
    assert_eq!(
        one(&out, "suspended")["result"],
        json!({ "completion": false, "duration": "PT5M" })
    );
    let DocumentBody::Merge(state) = &doc(&out, STATE_ATTEMPT).unwrap().body else {
        panic!()
    };
    assert_eq!(state["location"], "page-4");
    assert_eq!(state["total_time"], "PT5M");
    assert!(doc(&out, STATE_SUSPEND_DATA).is_some());
    assert_eq!(runtime(&out)["status"], "suspended");
    let (m, decision) = restore_model(
        V12,
        &stored_attempt(Some(&runtime(&out)), Some("x=1")),
        &LaunchValues::default(),
    )
    .unwrap();
    assert_eq!(decision, LaunchDecision::Resume { attempt: 1 });
    assert_eq!(m["cmi.core.entry"], "resume");
    assert_eq!(m["cmi.core.total_time"], "0000:05:00.00");

    // 2004 normal, logout and time-out exits all terminate.
    for exit in ["normal", "logout", "time-out", ""] {
        let base = fresh2004();
        let now = with(
            &base,
            &[
                ("cmi.exit", exit),
                ("cmi.completion_status", "completed"),
                ("cmi.success_status", "passed"),
                ("cmi.score.scaled", "0.95"),
                ("cmi.session_time", "PT20M"),
            ],
        );
        let out = Run::new(V2004, CommitEvent::Terminate).map(&base, &now);
        assert_eq!(
            verbs(&out),
            ["completed", "passed", "scored", "terminated"],
            "{exit}"
        );
        assert_eq!(
            one(&out, "terminated")["result"],
            json!({ "completion": true, "success": true, "score": { "scaled": 0.95 }, "duration": "PT20M" })
        );
        assert_eq!(runtime(&out)["status"], "terminated");
    }
}

#[test]
fn a_session_without_changes_writes_only_the_runtime_state() {
    for (version, m) in [(V12, fresh12()), (V2004, fresh2004())] {
        let out = Run::new(version, CommitEvent::Commit).map(&m, &m);
        assert!(out.statements.is_empty());
        assert_eq!(out.documents.len(), 1);
        assert!(doc(&out, STATE_RUNTIME).is_some());
    }
}

#[test]
fn restore_from_the_profile_attempt_state_alone() {
    // An attempt recorded only with the profile's documents (another system wrote them).
    let attempt_state = json!({
        "location": "slide-9",
        "total_time": "PT1H2M3.5S",
        "credit": "credit",
        "preferences": { "audio_level": 0.5, "delivery_speed": 1.5, "audio_captioning": 1, "language": "hi-IN" }
    });
    let stored = StoredAttempt {
        attempt_state: Some(&attempt_state),
        suspend_data: Some("bookmark=9"),
        attempt: 3,
        ..StoredAttempt::default()
    };
    let (m, decision) = restore_model(V12, &stored, &LaunchValues::default()).unwrap();
    assert_eq!(decision, LaunchDecision::Resume { attempt: 3 });
    assert_eq!(m["cmi.core.entry"], "resume");
    assert_eq!(m["cmi.core.lesson_location"], "slide-9");
    assert_eq!(m["cmi.suspend_data"], "bookmark=9");
    assert_eq!(m["cmi.core.total_time"], "0001:02:03.50");
    assert_eq!(m["cmi.student_preference.audio"], "50");
    assert_eq!(m["cmi.student_preference.speed"], "50");
    assert_eq!(m["cmi.student_preference.text"], "1");
    assert_eq!(m["cmi.student_preference.language"], "hi-IN");
    for (k, v) in &m {
        // Every restored value reads back as stored (none is write-only).
        assert_eq!(&datamodel::get_value(V12, k, &m).unwrap(), v, "{k}");
    }

    let (m, _) = restore_model(V2004, &stored, &LaunchValues::default()).unwrap();
    assert_eq!(m["cmi.entry"], "resume");
    assert_eq!(m["cmi.location"], "slide-9");
    assert_eq!(m["cmi.total_time"], "PT1H2M3.5S");
    assert_eq!(m["cmi.learner_preference.delivery_speed"], "1.5");
    assert_eq!(m["cmi.learner_preference.audio_captioning"], "1");

    // The round trip: what map_commit writes, overlay reads back.
    let written = with(
        &fresh12(),
        &[
            ("cmi.student_preference.audio", "-1"),
            ("cmi.student_preference.speed", "20"),
        ],
    );
    let mut back = Model::new();
    overlay_attempt_state(V12, &attempt_state_of(V12, &written), &mut back);
    assert_eq!(back["cmi.student_preference.audio"], "-1");
    assert_eq!(back["cmi.student_preference.speed"], "20");

    // The run-time state wins over the attempt state; nothing stored: a first attempt.
    let base = fresh2004();
    let now = with(
        &base,
        &[("cmi.exit", "suspend"), ("cmi.location", "from-runtime")],
    );
    let rt = runtime(&Run::new(V2004, CommitEvent::Terminate).map(&base, &now));
    let both = StoredAttempt {
        runtime_state: Some(&rt),
        attempt_state: Some(&attempt_state),
        ..StoredAttempt::default()
    };
    let (m, _) = restore_model(V2004, &both, &LaunchValues::default()).unwrap();
    assert_eq!(m["cmi.location"], "from-runtime");
    assert_eq!(
        restore_model(V2004, &StoredAttempt::default(), &LaunchValues::default())
            .unwrap()
            .1,
        LaunchDecision::NewAttempt { attempt: 1 }
    );
}

fn attempt_state_of(version: ScormVersion, m: &Model) -> Value {
    attempt_state(version, m)
}

/// Runs `SetValue`s as the content would, keeping the API's answers.
fn session(version: ScormVersion, m: &mut Model, calls: &[(&str, &str)]) -> Vec<u16> {
    calls
        .iter()
        .map(|(k, v)| match datamodel::set_value(version, k, v, m) {
            Ok(()) => 0,
            Err(e) => e.0,
        })
        .collect()
}

#[test]
fn the_advanced_golf_example_end_to_end() {
    let path = crate::scorm::manifest::tests::test_packages()
        .join("scorm2004/RunTimeAdvancedCalls_SCORM20043rdEdition/imsmanifest.xml");
    let manifest =
        crate::scorm::manifest::parse_imsmanifest(&std::fs::read(path).unwrap()).unwrap();
    let sco_item = &manifest.launchables[0];
    let launch = LaunchValues {
        learner_id: "learner-42".into(),
        learner_name: "Asha".into(),
        item: sco_item.values.clone(),
        ..LaunchValues::default()
    };
    let (m0, decision) = restore_model(V2004, &StoredAttempt::default(), &launch).unwrap();
    assert_eq!(decision, LaunchDecision::NewAttempt { attempt: 1 });
    // The manifest's objectives are in the model, so the content finds them by id.
    assert_eq!(
        datamodel::get_value(V2004, "cmi.objectives._count", &m0).unwrap(),
        "5"
    );
    assert_eq!(
        datamodel::get_value(V2004, "cmi.objectives.4.id", &m0).unwrap(),
        "obj_playing"
    );
    assert_eq!(
        datamodel::get_value(V2004, "cmi.scaled_passing_score", &m0).unwrap(),
        "0.8"
    );

    let init = Run::new(V2004, CommitEvent::Initialize).map(&m0, &m0);
    assert_eq!(verbs(&init), ["initialized"]);

    let mut m1 = m0.clone();
    let codes = session(
        V2004,
        &mut m1,
        &[
            ("cmi.completion_status", "incomplete"),
            ("cmi.location", "2"),
            ("cmi.objectives.4.progress_measure", "0.5"),
            ("cmi.objectives.4.completion_status", "incomplete"),
            ("cmi.interactions.0.id", "Playing_1"),
            (
                "cmi.interactions.0.description",
                "How many strokes is par on a long hole?",
            ),
            ("cmi.interactions.0.objectives.0.id", "obj_playing"),
            ("cmi.interactions.0.type", "choice"),
            ("cmi.interactions.0.learner_response", "3"),
            ("cmi.interactions.0.correct_responses.0.pattern", "5"),
            ("cmi.interactions.0.result", "incorrect"),
            ("cmi.interactions.1.id", "Playing_2"),
            ("cmi.interactions.1.objectives.0.id", "obj_playing"),
            ("cmi.interactions.1.type", "true-false"),
            ("cmi.interactions.1.learner_response", "true"),
            ("cmi.interactions.1.correct_responses.0.pattern", "true"),
            ("cmi.interactions.1.result", "correct"),
            // What the content writes when it cannot find an objective: refused, harmless.
            ("cmi.objectives.undefined.score.scaled", "1"),
        ],
    );
    assert_eq!(codes[..17], [0; 17]);
    assert_eq!(codes[17], 401);
    let commit = Run::new(V2004, CommitEvent::Commit).map(&m0, &m1);
    assert_eq!(verbs(&commit), ["responded", "responded"]);

    let mut m2 = m1.clone();
    let codes = session(
        V2004,
        &mut m2,
        &[
            ("cmi.score.raw", "50"),
            ("cmi.score.min", "0"),
            ("cmi.score.max", "100"),
            ("cmi.score.scaled", "0.5"),
            ("cmi.success_status", "failed"),
            ("cmi.objectives.4.score.scaled", "0.5"),
            ("cmi.objectives.4.score.raw", "1"),
            ("cmi.objectives.4.score.min", "0"),
            ("cmi.objectives.4.score.max", "2"),
            ("cmi.progress_measure", "0.6"),
            ("cmi.session_time", "PT10M5S"),
            ("cmi.exit", "suspend"),
            ("adl.nav.request", "suspendAll"),
        ],
    );
    assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    let end = Run::new(V2004, CommitEvent::Terminate).map(&m1, &m2);
    assert_eq!(
        verbs(&end),
        ["failed", "scored", "progressed", "scored", "suspended"]
    );
    let objective_score = &end.statements[3];
    assert_eq!(
        objective_score["object"]["id"],
        format!("{}/objectives/obj_playing", sco().id)
    );
    assert_eq!(
        one(&end, "suspended")["result"],
        json!({ "success": false, "completion": false,
                "score": { "scaled": 0.5, "raw": 50.0, "min": 0.0, "max": 100.0 }, "duration": "PT10M5S" })
    );

    // The next launch resumes with everything the SCO had.
    let rt = runtime(&end);
    let stored = StoredAttempt {
        runtime_state: Some(&rt),
        ..StoredAttempt::default()
    };
    let (m3, decision) = restore_model(V2004, &stored, &launch).unwrap();
    assert_eq!(decision, LaunchDecision::Resume { attempt: 1 });
    assert_eq!(m3["cmi.entry"], "resume");
    assert_eq!(m3["cmi.location"], "2");
    assert_eq!(m3["cmi.total_time"], "PT10M5S");
    assert_eq!(
        datamodel::get_value(V2004, "cmi.objectives._count", &m3).unwrap(),
        "5"
    );
    assert_eq!(
        datamodel::get_value(V2004, "cmi.interactions._count", &m3).unwrap(),
        "2"
    );
    assert_eq!(m3["cmi.objectives.4.progress_measure"], "0.5");
    assert_eq!(
        verbs(&Run::new(V2004, CommitEvent::Initialize).map(&m3, &m3)),
        ["resumed"]
    );
}

#[test]
fn the_basic_golf_example_end_to_end_in_scorm12() {
    let path = crate::scorm::manifest::tests::test_packages()
        .join("scorm12/RuntimeBasicCalls_SCORM12/imsmanifest.xml");
    let manifest =
        crate::scorm::manifest::parse_imsmanifest(&std::fs::read(path).unwrap()).unwrap();
    let launch = LaunchValues {
        learner_id: "learner-42".into(),
        learner_name: "Asha".into(),
        item: manifest.launchables[0].values.clone(),
        ..LaunchValues::default()
    };
    let (m0, _) = restore_model(V12, &StoredAttempt::default(), &launch).unwrap();
    assert_eq!(
        datamodel::get_value(V12, "cmi.core.lesson_status", &m0).unwrap(),
        "not attempted"
    );
    assert_eq!(
        datamodel::get_value(V12, "cmi.core.entry", &m0).unwrap(),
        "ab-initio"
    );
    let mut m1 = m0.clone();
    let codes = session(
        V12,
        &mut m1,
        &[
            ("cmi.core.lesson_status", "incomplete"),
            ("cmi.core.lesson_location", "3"),
            ("cmi.core.exit", "suspend"),
            ("cmi.core.session_time", "0000:04:12.30"),
        ],
    );
    assert_eq!(codes, [0; 4]);
    let first = Run::new(V12, CommitEvent::Terminate).map(&m0, &m1);
    assert_eq!(verbs(&first), ["suspended"]);

    let rt = runtime(&first);
    let (m2, decision) = restore_model(
        V12,
        &StoredAttempt {
            runtime_state: Some(&rt),
            ..StoredAttempt::default()
        },
        &launch,
    )
    .unwrap();
    assert_eq!(decision, LaunchDecision::Resume { attempt: 1 });
    assert_eq!(
        datamodel::get_value(V12, "cmi.core.lesson_location", &m2).unwrap(),
        "3"
    );
    assert_eq!(
        datamodel::get_value(V12, "cmi.core.total_time", &m2).unwrap(),
        "0000:04:12.30"
    );
    let later = Run {
        session_start: start() + chrono::Duration::hours(2),
        ..Run::new(V12, CommitEvent::Initialize)
    };
    assert_eq!(verbs(&later.map(&m2, &m2)), ["resumed"]);

    let mut m3 = m2.clone();
    let codes = session(
        V12,
        &mut m3,
        &[
            ("cmi.core.score.raw", "83"),
            ("cmi.core.score.min", "0"),
            ("cmi.core.score.max", "100"),
            ("cmi.core.lesson_status", "passed"),
            ("cmi.core.exit", ""),
            ("cmi.core.session_time", "0000:02:00"),
        ],
    );
    assert_eq!(codes, [0; 6]);
    let end = Run {
        session_start: start() + chrono::Duration::hours(2),
        ..Run::new(V12, CommitEvent::Terminate)
    }
    .map(&m2, &m3);
    assert_eq!(verbs(&end), ["passed", "scored", "terminated"]);
    assert_eq!(one(&end, "passed")["result"]["score"]["scaled"], 0.83);
    assert_eq!(
        runtime(&end)["model"]["cmi.core.total_time"],
        "0000:06:12.30"
    );
    assert_eq!(
        launch_decision(Some(&runtime(&end))).unwrap(),
        LaunchDecision::NewAttempt { attempt: 2 }
    );
}
