//! cmi5 through HTTP (issue 15, docs/SCORM.md "cmi5"): the launch of a course package, the
//! one-time fetch URL, and the AU's xAPI endpoint on the content origin, driven exactly as
//! the AU in `browser-tests/cmi5-au` drives them; what it stored is then read through the
//! LRS's own `/xapi/statements` with the admin credential.
use crate::harness::{basic, Lrs};
use crate::scorm::{learner, upload, zip_folder, zip_of, zip_package};
use serde_json::{json, Value};
use std::path::Path;

const CATEGORY_CMI5: &str = "https://w3id.org/xapi/cmi5/context/categories/cmi5";
const CATEGORY_MOVEON: &str = "https://w3id.org/xapi/cmi5/context/categories/moveon";
const EXT_SESSION: &str = "https://w3id.org/xapi/cmi5/context/extensions/sessionid";
const EXT_LAUNCH_URL: &str = "https://w3id.org/xapi/cmi5/context/extensions/launchurl";
const AU_ID: &str = "https://karmayogi.example.gov.in/courses/cmi5-check/au/quiz";

fn verb_iri(verb: &str) -> String {
    match verb {
        "abandoned" | "waived" | "satisfied" => format!("https://w3id.org/xapi/adl/verbs/{verb}"),
        _ => format!("http://adlnet.gov/expapi/verbs/{verb}"),
    }
}

/// The AU of `browser-tests/cmi5-au`, uploaded; its package id.
fn au_package(lrs: &Lrs) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser-tests/cmi5-au");
    let p = upload(lrs, zip_folder(&dir));
    assert_eq!(p["kind"], "cmi5", "{p}");
    p["id"].as_str().expect("id").to_owned()
}

/// An AU as launched: what its launch URL told it, and the auth token once fetched.
struct Au {
    launch: Value,
    url: String,
    endpoint: String,
    fetch: String,
    actor: Value,
    registration: String,
    activity_id: String,
    auth: String,
}

impl Au {
    /// `POST` to the fetch URL, as the AU does: no credential, no xAPI header.
    fn fetch(&self, lrs: &Lrs) -> Value {
        let r = lrs.post(&self.fetch).no_auth().no_version().send();
        r.assert_status(200);
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
        r.json()
    }

    /// Fetches the auth token (the first fetch).
    fn fetched(mut self, lrs: &Lrs) -> Au {
        let body = self.fetch(lrs);
        self.auth = body["auth-token"]
            .as_str()
            .unwrap_or_else(|| panic!("no auth-token: {body}"))
            .to_owned();
        self
    }

    /// A request to the AU's endpoint with its auth token.
    fn req<'a>(&self, lrs: &'a Lrs, method: &str, resource: &str) -> crate::harness::Req<'a> {
        lrs.request(method, &format!("{}{resource}", self.endpoint))
            .authorization(&format!("Basic {}", self.auth))
    }

    /// A cmi5 defined statement of this session, built as the AU builds it from
    /// LMS.LaunchData's context template.
    fn defined(&self, template: &Value, verb: &str, result: Option<Value>) -> Value {
        let mut context = template.clone();
        context["registration"] = json!(self.registration);
        let mut category = vec![json!({ "objectType": "Activity", "id": CATEGORY_CMI5 })];
        if result
            .as_ref()
            .is_some_and(|r| r.get("success").is_some() || r.get("completion").is_some())
        {
            category.push(json!({ "objectType": "Activity", "id": CATEGORY_MOVEON }));
        }
        context["contextActivities"]["category"] = json!(category);
        let mut s = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "actor": self.actor,
            "verb": { "id": verb_iri(verb), "display": { "en-US": verb } },
            "object": { "objectType": "Activity", "id": self.activity_id },
            "context": context,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        if let Some(r) = result {
            s["result"] = r;
        }
        s
    }

    /// A cmi5 allowed statement: another verb and object, the context template, no cmi5
    /// category.
    fn allowed(&self, template: &Value) -> Value {
        let mut s = self.defined(template, "answered", None);
        s["object"]["id"] = json!(format!("{}/question/1", self.activity_id));
        if let Some(a) = s["context"]["contextActivities"].as_object_mut() {
            a.remove("category");
        }
        s
    }
}

fn query_of(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no `{name}` in {pairs:?}"))
}

/// Launches the package's AU for `actor` and reads the launch URL as the AU does.
fn launch(lrs: &Lrs, package: &str, body: &Value) -> Au {
    let r = lrs
        .post(&lrs.root_url(&format!("/scorm/packages/{package}/launch")))
        .json(body)
        .send();
    r.assert_status(201);
    let launch = r.json();
    let url = launch["playerUrl"].as_str().expect("playerUrl").to_owned();
    let pairs = query_of(&url);
    Au {
        endpoint: param(&pairs, "endpoint"),
        fetch: param(&pairs, "fetch"),
        actor: serde_json::from_str(&param(&pairs, "actor")).expect("actor is JSON"),
        registration: param(&pairs, "registration"),
        activity_id: param(&pairs, "activityId"),
        launch,
        url,
        auth: String::new(),
    }
}

fn lrs_statements(lrs: &Lrs, registration: &str) -> Vec<Value> {
    let r = lrs
        .get("/statements")
        .query("registration", registration)
        .query("ascending", "true")
        .query("limit", "100")
        .send();
    r.assert_status(200);
    r.json()["statements"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn verbs(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|s| {
            s["verb"]["id"]
                .as_str()
                .and_then(|v| v.rsplit('/').next())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn state_query<'a>(
    au: &Au,
    req: crate::harness::Req<'a>,
    state_id: &str,
) -> crate::harness::Req<'a> {
    req.query("activityId", &au.activity_id)
        .query("agent", &au.actor.to_string())
        .query("registration", &au.registration)
        .query("stateId", state_id)
}

/// LMS.LaunchData as the AU reads it, through its endpoint.
fn launch_data(lrs: &Lrs, au: &Au) -> Value {
    let r = state_query(au, au.req(lrs, "GET", "activities/state"), "LMS.LaunchData").send();
    r.assert_status(200);
    r.json()
}

fn assert_refused(r: &crate::harness::Response, status: u16, code: &str) {
    r.assert_status(status);
    let e = r.json()["error"].clone();
    assert_eq!(e["code"], code, "{}", r.describe());
}

#[test]
fn cmi5_launch_writes_launch_data_and_the_launched_statement() {
    let lrs = Lrs::start();
    let package = au_package(&lrs);
    let actor = learner("meera");
    let au = launch(&lrs, &package, &json!({ "actor": actor }));
    let l = &au.launch;
    assert_eq!(l["kind"], "cmi5");
    assert_eq!(l["sco"], AU_ID);
    assert_eq!(l["launchMethod"], "AnyWindow");
    // The launch URL: the package's file on the content origin, with the five parameters.
    assert!(!au.url.starts_with(&lrs.root_url("/")), "{}", au.url);
    let (location, _) = au.url.split_once('?').expect("query");
    assert!(location.ends_with("/index.html"), "{location}");
    assert!(location.contains("/content/"), "{location}");
    let origin = location.split("/content/").next().expect("origin");
    assert!(au.endpoint.starts_with(&format!("{origin}/cmi5/")) && au.endpoint.ends_with("/xapi/"));
    assert!(au.fetch.starts_with(&format!("{origin}/cmi5/")) && au.fetch.ends_with("/fetch"));
    assert_eq!(au.actor, actor);
    assert_eq!(
        au.registration,
        l["registration"].as_str().expect("registration")
    );
    assert_eq!(
        au.activity_id,
        l["activityId"].as_str().expect("activityId")
    );
    assert_ne!(
        au.activity_id, AU_ID,
        "the launch activity id is never the publisher's"
    );
    let page = lrs.get(&au.url).no_auth().no_version().send();
    page.assert_status(200);
    assert!(page.text().contains("au.js"));

    // `launched`, by the LMS, before the AU runs.
    let stored = lrs_statements(&lrs, &au.registration);
    assert_eq!(verbs(&stored), ["launched"], "{stored:#?}");
    let launched = &stored[0];
    assert_eq!(launched["actor"]["account"], actor["account"]);
    assert_eq!(launched["object"]["id"], au.activity_id.as_str());
    assert_eq!(
        launched["object"]["definition"]["name"]["en-US"],
        "Short quiz"
    );
    let ctx = &launched["context"];
    assert_eq!(ctx["registration"], au.registration.as_str());
    assert_eq!(ctx["contextActivities"]["category"][0]["id"], CATEGORY_CMI5);
    assert_eq!(ctx["contextActivities"]["grouping"][0]["id"], AU_ID);
    assert_eq!(ctx["extensions"][EXT_SESSION], l["session"]);
    // The launch token is a capability: never written into a statement.
    let token = au
        .fetch
        .trim_end_matches("/fetch")
        .rsplit('/')
        .next()
        .expect("token");
    let shown = ctx["extensions"][EXT_LAUNCH_URL]
        .as_str()
        .expect("launchurl");
    assert!(!shown.contains(token) && !shown.contains('?'), "{shown}");
    assert!(!launched.to_string().contains(token));

    // LMS.LaunchData, as the LRS's own State resource has it.
    let r = lrs
        .get("/activities/state")
        .query("activityId", &au.activity_id)
        .query("agent", &actor.to_string())
        .query("registration", &au.registration)
        .query("stateId", "LMS.LaunchData")
        .send();
    r.assert_status(200);
    let data = r.json();
    assert_eq!(data["launchMode"], "Normal");
    assert_eq!(data["moveOn"], "CompletedAndPassed");
    assert_eq!(data["masteryScore"], 0.8);
    assert_eq!(
        data["contextTemplate"]["extensions"][EXT_SESSION],
        l["session"]
    );
    assert_eq!(
        data["contextTemplate"]["contextActivities"]["grouping"][0]["id"],
        AU_ID
    );

    // An AU that is not in the course: 400 with a code.
    let r = lrs
        .post(&lrs.root_url(&format!("/scorm/packages/{package}/launch")))
        .json(&json!({ "actor": actor, "sco": "https://example.com/no-such-au" }))
        .send();
    assert_refused(&r, 400, "no_such_item");
}

#[test]
fn cmi5_fetch_hands_out_the_auth_token_once() {
    let lrs = Lrs::start();
    let package = au_package(&lrs);
    let au = launch(&lrs, &package, &json!({ "actor": learner("arjun") }));
    // Before the fetch, the endpoint opens for nothing.
    let r = au
        .req(&lrs, "GET", "activities/state")
        .authorization(&basic(l_session(&au), "guess"));
    assert_refused(
        &state_query(&au, r, "LMS.LaunchData").send(),
        401,
        "cmi5_unauthorized",
    );

    let first = au.fetch(&lrs);
    let token = first["auth-token"].as_str().expect("auth-token");
    assert!(!token.is_empty());
    assert_eq!(first.as_object().map(|o| o.len()), Some(1), "{first}");
    // Once only: then error 1, still HTTP 200 (cmi5 8.2.1, 8.2.3).
    let again = au.fetch(&lrs);
    assert_eq!(again["error-code"], "1", "{again}");
    assert!(again["error-text"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(again.get("auth-token").is_none());
    // GET is not the fetch (no caching of the token).
    let r = lrs.get(&au.fetch).no_auth().no_version().send();
    r.assert_status(405);
    // An unknown fetch URL: error 2.
    let forged = format!(
        "{}/{}/fetch",
        au.fetch
            .trim_end_matches("/fetch")
            .rsplit_once('/')
            .expect("path")
            .0,
        "A".repeat(43)
    );
    let r = lrs.post(&forged).no_auth().no_version().send();
    r.assert_status(200);
    assert_eq!(r.json()["error-code"], "2");
    // A SCORM launch has no fetch URL.
    let scorm = upload(&lrs, zip_package("scorm12/RuntimeMinimumCalls_SCORM12"));
    let (l, _) = crate::scorm::launch(
        &lrs,
        scorm["id"].as_str().expect("id"),
        &json!({ "actor": learner("arjun") }),
    );
    let player = l["playerUrl"].as_str().expect("playerUrl");
    let scorm_fetch = player
        .trim_end_matches('/')
        .replacen("/player/", "/cmi5/", 1)
        + "/fetch";
    let r = lrs.post(&scorm_fetch).no_auth().no_version().send();
    r.assert_status(200);
    assert_eq!(r.json()["error-code"], "2");

    // The token fetched works.
    let au = Au {
        auth: token.to_owned(),
        ..au
    };
    assert_eq!(launch_data(&lrs, &au)["launchMode"], "Normal");
}

/// The session id of a launch (the user part of its auth token).
fn l_session(au: &Au) -> &str {
    au.launch["session"].as_str().expect("session")
}

#[test]
fn cmi5_au_session_is_stored_as_the_au_sends_it() {
    let lrs = Lrs::start();
    let package = au_package(&lrs);
    let actor = learner("kavya");
    let au = launch(&lrs, &package, &json!({ "actor": actor })).fetched(&lrs);

    // What the AU reads at startup, in both xAPI versions.
    let r = state_query(
        &au,
        au.req(&lrs, "GET", "activities/state"),
        "LMS.LaunchData",
    )
    .version("1.0.3")
    .send();
    r.assert_status(200);
    assert_eq!(r.header("x-experience-api-version"), Some("1.0.3"));
    let data = launch_data(&lrs, &au);
    let template = data["contextTemplate"].clone();
    let prefs = au
        .req(&lrs, "GET", "agents/profile")
        .query("agent", &au.actor.to_string())
        .query("profileId", "cmi5LearnerPreferences")
        .send();
    prefs.assert_status(404);
    let about = au.req(&lrs, "GET", "about").no_auth().send();
    about.assert_status(200);
    assert!(about.json()["version"].as_array().is_some());

    let post = |body: &Value, v: &str| {
        let r = au
            .req(&lrs, "POST", "statements")
            .version(v)
            .json(body)
            .send();
        r.assert_status(200);
        assert!(r.header("x-experience-api-consistent-through").is_some());
        r.json()
    };
    let init = au.defined(&template, "initialized", None);
    assert_eq!(post(&init, "1.0.3"), json!([init["id"]]));
    // A cmi5 allowed statement, by PUT.
    let answered = au.allowed(&template);
    let id = answered["id"].as_str().expect("id").to_owned();
    au.req(&lrs, "PUT", "statements")
        .query("statementId", &id)
        .json(&answered)
        .send()
        .assert_status(204);
    // completed and passed (score above the mastery score 0.8), one batch.
    let completed = au.defined(
        &template,
        "completed",
        Some(json!({ "completion": true, "duration": "PT1M2S" })),
    );
    let passed = au.defined(
        &template,
        "passed",
        Some(json!({ "success": true, "score": { "scaled": 0.9, "raw": 90, "min": 0, "max": 100 }, "duration": "PT1M3S" })),
    );
    let ids = post(&json!([completed, passed]), "2.0.0");
    assert_eq!(ids, json!([completed["id"], passed["id"]]));
    // Its own state, and its own statement back.
    state_query(&au, au.req(&lrs, "PUT", "activities/state"), "au.progress")
        .json(&json!({ "completed": true }))
        .send()
        .assert_status(204);
    let r = state_query(&au, au.req(&lrs, "GET", "activities/state"), "au.progress").send();
    r.assert_status(200);
    assert_eq!(r.json(), json!({ "completed": true }));
    let r = au
        .req(&lrs, "GET", "statements")
        .query("statementId", &id)
        .send();
    r.assert_status(200);
    assert_eq!(r.json()["verb"]["id"], answered["verb"]["id"]);
    // It reads nothing else of the LRS.
    let r = au
        .req(&lrs, "GET", "statements")
        .query("registration", &au.registration)
        .send();
    assert_refused(&r, 403, "cmi5_read_only");

    let terminated = au.defined(&template, "terminated", Some(json!({ "duration": "PT2M" })));
    post(&terminated, "2.0.0");

    // The LRS has the LMS's statement, then the AU's, in order, vouched for by the
    // launching credential.
    let stored = lrs_statements(&lrs, &au.registration);
    assert_eq!(
        verbs(&stored),
        [
            "launched",
            "initialized",
            "answered",
            "completed",
            "passed",
            "terminated"
        ],
        "{stored:#?}"
    );
    let authority = &stored[0]["authority"];
    assert!(stored.iter().all(|s| s["authority"] == *authority));
    assert_eq!(stored[4]["result"]["score"]["scaled"], 0.9);
    assert!(stored[1..]
        .iter()
        .all(|s| s["context"]["extensions"][EXT_SESSION] == template["extensions"][EXT_SESSION]));

    // After `terminated`, the session takes no more statements.
    let late = au.allowed(&template);
    let r = au.req(&lrs, "POST", "statements").json(&late).send();
    assert_refused(&r, 403, "cmi5_session_ended");
    assert_eq!(lrs_statements(&lrs, &au.registration).len(), stored.len());
}

#[test]
fn cmi5_endpoint_refuses_what_is_not_the_sessions() {
    let lrs = Lrs::start();
    let package = au_package(&lrs);
    let actor = learner("dev");
    let au = launch(&lrs, &package, &json!({ "actor": actor })).fetched(&lrs);
    let template = launch_data(&lrs, &au)["contextTemplate"].clone();
    let post = |body: &Value| au.req(&lrs, "POST", "statements").json(body).send();

    // Nothing before `initialized`.
    assert_refused(&post(&au.allowed(&template)), 403, "cmi5_not_initialized");
    post(&au.defined(&template, "initialized", None)).assert_status(200);

    // Another actor, another registration, the LMS's verbs, voiding.
    let mut s = au.allowed(&template);
    s["actor"] = learner("someone-else");
    let r = post(&s);
    assert_refused(&r, 403, "cmi5_actor_mismatch");
    assert!(r.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("actor")));
    let mut s = au.allowed(&template);
    s["context"]["registration"] = json!(uuid::Uuid::new_v4().to_string());
    assert_refused(&post(&s), 403, "cmi5_registration_mismatch");
    let mut s = au.allowed(&template);
    s["context"]
        .as_object_mut()
        .expect("context")
        .remove("registration");
    assert_refused(&post(&s), 403, "cmi5_registration_mismatch");
    let launched = au.defined(&template, "launched", None);
    assert_refused(&post(&launched), 403, "cmi5_lms_verb");
    let mut void = au.allowed(&template);
    void["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/voided");
    void["object"] =
        json!({ "objectType": "StatementRef", "id": uuid::Uuid::new_v4().to_string() });
    assert_refused(&post(&void), 403, "cmi5_voiding_refused");
    // In a batch, the error points at the statement; nothing of the batch is stored.
    let good = au.allowed(&template);
    let r = post(&json!([good, launched]));
    assert_refused(&r, 403, "cmi5_lms_verb");
    assert_eq!(r.json()["error"]["path"], "/1/verb/id");
    // A passed statement below the mastery score (0.8).
    let low = au.defined(
        &template,
        "passed",
        Some(json!({ "success": true, "score": { "scaled": 0.5 }, "duration": "PT1S" })),
    );
    assert_refused(&post(&low), 403, "cmi5_result_invalid");
    // xAPI's own rules come first: an invalid statement is 400.
    let mut broken = au.allowed(&template);
    broken.as_object_mut().expect("statement").remove("verb");
    post(&broken).assert_status(400);
    let stored = lrs_statements(&lrs, &au.registration);
    assert_eq!(verbs(&stored), ["launched", "initialized"], "{stored:#?}");

    // Documents: the session's agent and registration only; LMS.LaunchData is read only.
    let other = learner("someone-else");
    let r = au
        .req(&lrs, "GET", "activities/state")
        .query("activityId", &au.activity_id)
        .query("agent", &other.to_string())
        .query("registration", &au.registration)
        .query("stateId", "LMS.LaunchData")
        .send();
    assert_refused(&r, 403, "cmi5_document_forbidden");
    let r = au
        .req(&lrs, "PUT", "activities/state")
        .query("activityId", &au.activity_id)
        .query("agent", &au.actor.to_string())
        .query("registration", &uuid::Uuid::new_v4().to_string())
        .query("stateId", "bookmark")
        .json(&json!({}))
        .send();
    assert_refused(&r, 403, "cmi5_document_forbidden");
    let r = au
        .req(&lrs, "GET", "activities/state")
        .query("activityId", &au.activity_id)
        .query("agent", &au.actor.to_string())
        .query("stateId", "bookmark")
        .send();
    assert_refused(&r, 403, "cmi5_document_forbidden");
    let r = state_query(
        &au,
        au.req(&lrs, "PUT", "activities/state"),
        "LMS.LaunchData",
    )
    .json(&json!({ "launchMode": "Review" }))
    .send();
    assert_refused(&r, 403, "cmi5_read_only");
    let r = au
        .req(&lrs, "DELETE", "activities/state")
        .query("activityId", &au.activity_id)
        .query("agent", &au.actor.to_string())
        .query("registration", &au.registration)
        .send();
    assert_refused(&r, 403, "cmi5_read_only");
    assert_eq!(launch_data(&lrs, &au)["launchMode"], "Normal");
    let r = au
        .req(&lrs, "PUT", "agents/profile")
        .query("agent", &au.actor.to_string())
        .query("profileId", "cmi5LearnerPreferences")
        .json(&json!({ "audioPreference": "off" }))
        .send();
    assert_refused(&r, 403, "cmi5_read_only");
    let r = au
        .req(&lrs, "GET", "agents/profile")
        .query("agent", &other.to_string())
        .query("profileId", "cmi5LearnerPreferences")
        .send();
    assert_refused(&r, 403, "cmi5_document_forbidden");
}

#[test]
fn cmi5_endpoint_answers_its_own_auth_token_only() {
    let lrs = Lrs::start();
    let package = au_package(&lrs);
    let a = launch(&lrs, &package, &json!({ "actor": learner("isha") })).fetched(&lrs);
    let b = launch(&lrs, &package, &json!({ "actor": learner("omar") })).fetched(&lrs);
    let get = |au: &Au, authorization: Option<&str>| {
        let r = state_query(
            au,
            au.req(&lrs, "GET", "activities/state"),
            "LMS.LaunchData",
        );
        match authorization {
            Some(h) => r.authorization(h),
            None => r.no_auth(),
        }
        .send()
    };
    get(&a, None).assert_status(200);
    assert_refused(&get(&a, Some("")), 401, "cmi5_unauthorized");
    let r = lrs
        .get(&format!("{}activities/state", a.endpoint))
        .no_auth()
        .query("activityId", &a.activity_id)
        .query("agent", &a.actor.to_string())
        .query("registration", &a.registration)
        .query("stateId", "LMS.LaunchData")
        .send();
    assert_refused(&r, 401, "cmi5_unauthorized");
    // Another session's token, a wrong secret, the LRS's own credential: 401.
    assert_refused(
        &get(&a, Some(&format!("Basic {}", b.auth))),
        401,
        "cmi5_unauthorized",
    );
    assert_refused(
        &get(&a, Some(&basic(l_session(&a), "0".repeat(64).as_str()))),
        401,
        "cmi5_unauthorized",
    );
    assert_refused(
        &get(&a, Some(&basic(lrs.key(), lrs.secret()))),
        401,
        "cmi5_unauthorized",
    );
    // An unknown launch token in the endpoint.
    let forged = a.endpoint.replacen(
        a.endpoint
            .trim_end_matches("/xapi/")
            .rsplit('/')
            .next()
            .expect("token"),
        &"A".repeat(43),
        1,
    );
    let r = lrs
        .get(&format!("{forged}activities/state"))
        .authorization(&format!("Basic {}", a.auth))
        .query("activityId", &a.activity_id)
        .query("agent", &a.actor.to_string())
        .query("registration", &a.registration)
        .query("stateId", "LMS.LaunchData")
        .send();
    assert_refused(&r, 401, "cmi5_unauthorized");
    // The xAPI version header rules hold here too.
    let r = state_query(&a, a.req(&lrs, "GET", "activities/state"), "LMS.LaunchData")
        .no_version()
        .send();
    r.assert_status(400);
    assert!(r.header("x-experience-api-version").is_some());
    let r = state_query(&a, a.req(&lrs, "GET", "activities/state"), "LMS.LaunchData")
        .version("0.9")
        .send();
    r.assert_status(400);
    // Unknown resources of the endpoint: 404 (the LRS's other resources are not here).
    a.req(&lrs, "GET", "agents")
        .query("agent", &a.actor.to_string())
        .send()
        .assert_status(404);
}

#[test]
fn cmi5_relaunch_abandons_the_open_session() {
    let lrs = Lrs::start();
    let package = au_package(&lrs);
    let actor = learner("nila");
    let first = launch(&lrs, &package, &json!({ "actor": actor })).fetched(&lrs);
    let template = launch_data(&lrs, &first)["contextTemplate"].clone();
    first
        .req(&lrs, "POST", "statements")
        .json(&first.defined(&template, "initialized", None))
        .send()
        .assert_status(200);
    // The same registration again: the first session is abandoned.
    let second = launch(
        &lrs,
        &package,
        &json!({ "actor": actor, "registration": first.registration }),
    )
    .fetched(&lrs);
    assert_eq!(second.registration, first.registration);
    assert_eq!(second.activity_id, first.activity_id);
    let stored = lrs_statements(&lrs, &first.registration);
    assert_eq!(
        verbs(&stored),
        ["launched", "initialized", "abandoned", "launched"],
        "{stored:#?}"
    );
    let abandoned = &stored[2];
    assert_eq!(abandoned["verb"]["id"], verb_iri("abandoned"));
    assert_eq!(
        abandoned["context"]["extensions"][EXT_SESSION],
        l_session(&first)
    );
    assert!(abandoned["result"]["duration"]
        .as_str()
        .is_some_and(|d| d.starts_with("PT")));
    // The abandoned session takes nothing more; the new one starts afresh.
    let r = first
        .req(&lrs, "POST", "statements")
        .json(&first.allowed(&template))
        .send();
    assert_refused(&r, 403, "cmi5_session_ended");
    let template2 = launch_data(&lrs, &second)["contextTemplate"].clone();
    assert_ne!(template2, template);
    second
        .req(&lrs, "POST", "statements")
        .json(&second.defined(&template2, "initialized", None))
        .send()
        .assert_status(200);
    // A third launch abandons the second only (the first is closed already).
    launch(
        &lrs,
        &package,
        &json!({ "actor": actor, "registration": first.registration }),
    );
    let stored = lrs_statements(&lrs, &first.registration);
    assert_eq!(
        verbs(&stored).iter().filter(|v| *v == "abandoned").count(),
        2,
        "{stored:#?}"
    );
}

#[test]
fn cmi5_absolute_au_url_is_launched_as_is() {
    let lrs = Lrs::start();
    let course = br#"<courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd">
  <course id="https://karmayogi.example.gov.in/courses/hosted"><title><langstring lang="en-US">Hosted</langstring></title>
    <description><langstring lang="en-US">An AU served elsewhere</langstring></description></course>
  <au id="https://karmayogi.example.gov.in/courses/hosted/au/1" moveOn="Completed">
    <title><langstring lang="en-US">Hosted AU</langstring></title>
    <description><langstring lang="en-US">Elsewhere</langstring></description>
    <url>https://au.example.com/start.html?lang=hi&amp;endpoint=https://evil.example.com/</url>
  </au>
</courseStructure>"#;
    let p = upload(&lrs, zip_of(&[("cmi5.xml", course)]));
    let au = launch(
        &lrs,
        p["id"].as_str().expect("id"),
        &json!({ "actor": learner("ravi") }),
    );
    assert!(
        au.url
            .starts_with("https://au.example.com/start.html?lang=hi&"),
        "{}",
        au.url
    );
    // The LMS's endpoint replaces the one the course structure carried.
    let pairs = query_of(&au.url);
    assert_eq!(pairs.iter().filter(|(k, _)| k == "endpoint").count(), 1);
    assert!(!au.endpoint.contains("evil.example.com"));
    let au = au.fetched(&lrs);
    assert_eq!(launch_data(&lrs, &au)["moveOn"], "Completed");
    assert_eq!(
        lrs_statements(&lrs, &au.registration)[0]["context"]["extensions"][EXT_LAUNCH_URL],
        "https://au.example.com/start.html?lang=hi"
    );
}
