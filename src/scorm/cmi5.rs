//! cmi5, the LMS side: the launch URL (8.1), the `LMS.LaunchData` state document (10),
//! the `launched` statement (9.3.1) and the fetch URL's answers (8.2).
//!
//! Pure functions: the session id, statement id, times and tokens come in as arguments.
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::manifest::{Au, LangString, LaunchMethod, MoveOn};
use super::ScormError;

pub const VERB_LAUNCHED: &str = "http://adlnet.gov/expapi/verbs/launched";
pub const CATEGORY_CMI5: &str = "https://w3id.org/xapi/cmi5/context/categories/cmi5";
pub const CATEGORY_MOVEON: &str = "https://w3id.org/xapi/cmi5/context/categories/moveon";
pub const EXT_SESSION_ID: &str = "https://w3id.org/xapi/cmi5/context/extensions/sessionid";
pub const EXT_MASTERY_SCORE: &str = "https://w3id.org/xapi/cmi5/context/extensions/masteryscore";
pub const EXT_LAUNCH_MODE: &str = "https://w3id.org/xapi/cmi5/context/extensions/launchmode";
pub const EXT_LAUNCH_URL: &str = "https://w3id.org/xapi/cmi5/context/extensions/launchurl";
pub const EXT_MOVE_ON: &str = "https://w3id.org/xapi/cmi5/context/extensions/moveon";
pub const EXT_LAUNCH_PARAMETERS: &str =
    "https://w3id.org/xapi/cmi5/context/extensions/launchparameters";
/// The state id of the launch data document (10.1).
pub const LAUNCH_DATA_STATE_ID: &str = "LMS.LaunchData";
/// The agent profile id of learner preferences (11.0).
pub const LEARNER_PREFERENCES_PROFILE_ID: &str = "cmi5LearnerPreferences";

/// The launch parameter names cmi5 reserves (8.1).
const LAUNCH_PARAMS: [&str; 5] = ["endpoint", "fetch", "actor", "registration", "activityId"];

/// cmi5 `launchMode` (10.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchMode {
    Normal,
    Browse,
    Review,
}

impl LaunchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchMode::Normal => "Normal",
            LaunchMode::Browse => "Browse",
            LaunchMode::Review => "Review",
        }
    }
}

/// Values are encoded as RFC 3986 unreserved characters or percent escapes.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// The activity id the LMS gives an AU (8.1.5): never the publisher's AU id, the same for
/// every registration: `<course IRI>/au/<UUIDv5 of the AU id>`.
pub fn au_activity_id(course_iri: &str, au_id: &str) -> String {
    let id = Uuid::new_v5(&Uuid::NAMESPACE_URL, au_id.as_bytes());
    format!("{}/au/{id}", course_iri.trim_end_matches('/'))
}

/// Where the AU is: an absolute `url` as is, a relative one against `content_base` (the
/// URL the package's files are served under, ending with `/`).
pub fn au_location(content_base: &str, au_url: &str) -> Result<String, ScormError> {
    if let Ok(u) = url::Url::parse(au_url) {
        return Ok(u.to_string());
    }
    let base = url::Url::parse(content_base).map_err(|e| ScormError::InvalidLaunch {
        detail: format!("the content base \"{content_base}\" is not an absolute URL: {e}"),
    })?;
    base.join(au_url)
        .map(|u| u.to_string())
        .map_err(|e| ScormError::InvalidLaunch {
            detail: format!("the AU url \"{au_url}\" cannot be resolved: {e}"),
        })
}

/// Checks a cmi5 actor: an Agent with an `account` (9.2).
pub fn check_actor(actor: &Value) -> Result<(), ScormError> {
    let bad = |detail: &str| ScormError::InvalidLaunch {
        detail: format!("the actor {detail} (cmi5 9.2)"),
    };
    let obj = actor
        .as_object()
        .ok_or_else(|| bad("is not a JSON object"))?;
    if let Some(t) = obj.get("objectType") {
        if t != "Agent" {
            return Err(bad("must be an Agent"));
        }
    }
    let account = obj
        .get("account")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("must have an account"))?;
    let ok = |k: &str| {
        account
            .get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !ok("homePage") || !ok("name") {
        return Err(bad("account needs a homePage and a name"));
    }
    Ok(())
}

/// What the launch URL carries (8.1).
#[derive(Debug, Clone)]
pub struct LaunchParams<'a> {
    /// The AU's location ([`au_location`]); its own query is kept.
    pub au_url: &'a str,
    /// The LRS endpoint the AU sends xAPI requests to.
    pub endpoint: &'a str,
    /// The one-time fetch URL for the authorization token.
    pub fetch: &'a str,
    pub actor: &'a Value,
    pub registration: Uuid,
    /// The activity id of the AU ([`au_activity_id`]).
    pub activity_id: &'a str,
}

/// The URL that launches an AU: its own query (without any of the five cmi5 names, which
/// the LMS's values replace) followed by `endpoint`, `fetch`, `actor`, `registration` and
/// `activityId`, each percent-encoded; a fragment stays last.
pub fn launch_url(p: &LaunchParams<'_>) -> Result<String, ScormError> {
    check_actor(p.actor)?;
    for (name, value) in [("endpoint", p.endpoint), ("fetch", p.fetch)] {
        url::Url::parse(value).map_err(|e| ScormError::InvalidLaunch {
            detail: format!("{name} \"{value}\" is not an absolute URL: {e}"),
        })?;
    }
    if p.activity_id.trim().is_empty() {
        return Err(ScormError::InvalidLaunch {
            detail: "the activityId is empty".to_string(),
        });
    }
    let (rest, fragment) = match p.au_url.find('#') {
        Some(i) => (&p.au_url[..i], &p.au_url[i..]),
        None => (p.au_url, ""),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| {
            let name = kv.split('=').next().unwrap_or_default();
            !LAUNCH_PARAMS.contains(&name)
        })
        .map(str::to_string)
        .collect();
    let actor = serde_json::to_string(p.actor).unwrap_or_default();
    let registration = p.registration.to_string();
    for (name, value) in [
        ("endpoint", p.endpoint),
        ("fetch", p.fetch),
        ("actor", actor.as_str()),
        ("registration", registration.as_str()),
        ("activityId", p.activity_id),
    ] {
        pairs.push(format!("{name}={}", encode(value)));
    }
    Ok(format!("{path}?{}{fragment}", pairs.join("&")))
}

/// The `launchurl` extension: the launch URL without the cmi5 parameters (9.6.3.4).
pub fn launch_url_without_params(au_url: &str) -> String {
    let (rest, fragment) = match au_url.find('#') {
        Some(i) => (&au_url[..i], &au_url[i..]),
        None => (au_url, ""),
    };
    let Some((path, query)) = rest.split_once('?') else {
        return au_url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| !LAUNCH_PARAMS.contains(&kv.split('=').next().unwrap_or_default()))
        .collect();
    if kept.is_empty() {
        format!("{path}{fragment}")
    } else {
        format!("{path}?{}{fragment}", kept.join("&"))
    }
}

/// Inputs of the `LMS.LaunchData` document; the overrides replace the course structure's
/// values (10.2.3–10.2.5 let the LMS change them).
#[derive(Debug, Clone)]
pub struct LaunchDataInput<'a> {
    pub au: &'a Au,
    pub session_id: &'a str,
    pub launch_mode: LaunchMode,
    pub return_url: Option<&'a str>,
    pub mastery_score: Option<f64>,
    pub move_on: Option<MoveOn>,
    pub launch_parameters: Option<&'a str>,
    /// `entitlementKey.alternate`, agreed with the AU provider.
    pub entitlement_alternate: Option<&'a str>,
}

impl<'a> LaunchDataInput<'a> {
    /// The course structure's values, launched in `Normal` mode.
    pub fn new(au: &'a Au, session_id: &'a str) -> Self {
        LaunchDataInput {
            au,
            session_id,
            launch_mode: LaunchMode::Normal,
            return_url: None,
            mastery_score: None,
            move_on: None,
            launch_parameters: None,
            entitlement_alternate: None,
        }
    }
}

/// The context template: the session id extension and the publisher id grouping
/// activity (10.2.1).
pub fn context_template(au: &Au, session_id: &str) -> Value {
    let mut ext = Map::new();
    ext.insert(EXT_SESSION_ID.into(), json!(session_id));
    json!({
        "contextActivities": { "grouping": [ { "objectType": "Activity", "id": au.id } ] },
        "extensions": ext,
    })
}

/// The `LMS.LaunchData` state document (10.2). `launchMethod` is added beside the
/// standard properties so a player reading only this document knows the window rule.
pub fn launch_data(input: &LaunchDataInput<'_>) -> Value {
    let au = input.au;
    let mut doc = Map::new();
    doc.insert(
        "contextTemplate".into(),
        context_template(au, input.session_id),
    );
    doc.insert("launchMode".into(), json!(input.launch_mode.as_str()));
    doc.insert("launchMethod".into(), json!(au.launch_method.as_str()));
    doc.insert(
        "moveOn".into(),
        json!(input.move_on.unwrap_or(au.move_on).as_str()),
    );
    if let Some(m) = input.mastery_score.or(au.mastery_score) {
        doc.insert("masteryScore".into(), json!(m));
    }
    if let Some(r) = input.return_url {
        doc.insert("returnURL".into(), json!(r));
    }
    if let Some(p) = input.launch_parameters.or(au.launch_parameters.as_deref()) {
        doc.insert("launchParameters".into(), json!(p));
    }
    if let Some(k) = &au.entitlement_key {
        let mut key = Map::new();
        key.insert("courseStructure".into(), json!(k));
        if let Some(a) = input.entitlement_alternate {
            key.insert("alternate".into(), json!(a));
        }
        doc.insert("entitlementKey".into(), Value::Object(key));
    }
    Value::Object(doc)
}

/// A cmi5 langstring list as an xAPI language map (`und` where no language is given).
fn language_map(strings: &[LangString]) -> Option<Value> {
    let mut m = Map::new();
    for s in strings.iter().filter(|s| !s.value.is_empty()) {
        let lang = s
            .lang
            .clone()
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "und".into());
        m.entry(lang).or_insert_with(|| json!(s.value));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Inputs of the `launched` statement.
#[derive(Debug, Clone)]
pub struct LaunchedInput<'a> {
    pub id: Uuid,
    pub actor: &'a Value,
    pub registration: Uuid,
    /// The AU's activity id (the statement's object).
    pub activity_id: &'a str,
    pub au: &'a Au,
    /// The `LMS.LaunchData` document written for this launch.
    pub launch_data: &'a Value,
    /// The URL the AU was launched with (the cmi5 parameters are removed here).
    pub launch_url: &'a str,
    pub timestamp: DateTime<Utc>,
}

/// The `launched` statement the LMS records before launching an AU (9.3.1): the context
/// template, the registration, the cmi5 category, and the session id, launch mode, launch
/// URL, moveOn, launch parameters and mastery score extensions.
pub fn launched_statement(input: &LaunchedInput<'_>) -> Result<Value, ScormError> {
    check_actor(input.actor)?;
    let data = input.launch_data;
    let template = data
        .get("contextTemplate")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let session = template
        .get("extensions")
        .and_then(|e| e.get(EXT_SESSION_ID))
        .cloned()
        .ok_or_else(|| ScormError::InvalidLaunch {
            detail: "the launch data has no session id in its contextTemplate".to_string(),
        })?;
    let mut context = template;
    context["registration"] = json!(input.registration.to_string());
    let activities = context
        .as_object_mut()
        .map(|c| c.entry("contextActivities").or_insert_with(|| json!({})));
    if let Some(a) = activities {
        let category = a
            .as_object_mut()
            .map(|o| o.entry("category").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = category {
            if !list.iter().any(|c| c["id"] == CATEGORY_CMI5) {
                list.push(json!({ "objectType": "Activity", "id": CATEGORY_CMI5 }));
            }
        }
    }
    let mut ext = Map::new();
    ext.insert(EXT_SESSION_ID.into(), session);
    ext.insert(
        EXT_LAUNCH_MODE.into(),
        data.get("launchMode")
            .cloned()
            .unwrap_or_else(|| json!("Normal")),
    );
    ext.insert(
        EXT_LAUNCH_URL.into(),
        json!(launch_url_without_params(input.launch_url)),
    );
    ext.insert(
        EXT_MOVE_ON.into(),
        data.get("moveOn")
            .cloned()
            .unwrap_or_else(|| json!(input.au.move_on.as_str())),
    );
    if let Some(p) = data.get("launchParameters") {
        ext.insert(EXT_LAUNCH_PARAMETERS.into(), p.clone());
    }
    if let Some(m) = data.get("masteryScore") {
        ext.insert(EXT_MASTERY_SCORE.into(), m.clone());
    }
    let existing = context
        .get("extensions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut merged = existing;
    merged.extend(ext);
    context["extensions"] = Value::Object(merged);

    let mut definition = Map::new();
    if let Some(n) = language_map(&input.au.title) {
        definition.insert("name".into(), n);
    }
    if let Some(d) = language_map(&input.au.description) {
        definition.insert("description".into(), d);
    }
    if let Some(t) = &input.au.activity_type {
        definition.insert("type".into(), json!(t));
    }
    let mut object = json!({ "objectType": "Activity", "id": input.activity_id });
    if !definition.is_empty() {
        object["definition"] = Value::Object(definition);
    }
    Ok(json!({
        "id": input.id.to_string(),
        "actor": input.actor,
        "verb": { "id": VERB_LAUNCHED, "display": { "en-US": "launched" } },
        "object": object,
        "context": context,
        "timestamp": input.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
    }))
}

/// The fetch URL's answer with the token (8.2.1).
pub fn fetch_token_body(token: &str) -> Value {
    json!({ "auth-token": token })
}

/// The fetch URL's `error-code` values (8.2.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// 1: the token was returned before, or the session expired.
    AlreadyInUseOrExpired,
    /// 2: any other security problem (an unknown or invalid fetch key).
    GeneralSecurity,
    /// 3: the application failed.
    GeneralApplication,
}

impl FetchError {
    pub fn code(self) -> u8 {
        match self {
            FetchError::AlreadyInUseOrExpired => 1,
            FetchError::GeneralSecurity => 2,
            FetchError::GeneralApplication => 3,
        }
    }
}

/// The fetch URL's error answer (8.2.3): sent with HTTP 200, as the spec requires.
pub fn fetch_error_body(error: FetchError, text: &str) -> Value {
    json!({ "error-code": error.code().to_string(), "error-text": text })
}

/// The learner preferences agent profile document (11.0).
pub fn learner_preferences(languages: &[&str], audio_on: Option<bool>) -> Value {
    let mut doc = Map::new();
    if !languages.is_empty() {
        doc.insert("languagePreference".into(), json!(languages.join(",")));
    }
    if let Some(on) = audio_on {
        doc.insert(
            "audioPreference".into(),
            json!(if on { "on" } else { "off" }),
        );
    }
    Value::Object(doc)
}

/// Whether an AU's window must be its own (8.1).
pub fn needs_own_window(au: &Au) -> bool {
    au.launch_method == LaunchMethod::OwnWindow
}

#[cfg(test)]
#[path = "cmi5_tests.rs"]
mod tests;
