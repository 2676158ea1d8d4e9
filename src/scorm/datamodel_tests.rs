use super::*;
use ScormVersion::{Scorm12 as V12, Scorm2004 as V2004};

fn model(pairs: &[(&str, &str)]) -> Model {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set(version: ScormVersion, m: &mut Model, element: &str, value: &str) -> u16 {
    match set_value(version, element, value, m) {
        Ok(()) => 0,
        Err(e) => e.0,
    }
}

fn get(version: ScormVersion, m: &Model, element: &str) -> Result<String, u16> {
    get_value(version, element, m).map_err(|e| e.0)
}

#[test]
fn error_tables_match_the_standards() {
    let v12: Vec<u16> = error_codes(V12).iter().map(|(c, _)| *c).collect();
    assert_eq!(v12, [0, 101, 201, 202, 203, 301, 401, 402, 403, 404, 405]);
    let v2004: Vec<u16> = error_codes(V2004).iter().map(|(c, _)| *c).collect();
    assert_eq!(
        v2004,
        [
            0, 101, 102, 103, 104, 111, 112, 113, 122, 123, 132, 133, 142, 143, 201, 301, 351, 391,
            401, 402, 403, 404, 405, 406, 407, 408
        ]
    );
    assert_eq!(
        error_string(V12, v12::READ_ONLY),
        Some("Element is read only")
    );
    assert_eq!(
        error_string(V2004, v2004::DEPENDENCY_NOT_ESTABLISHED),
        Some("Data Model Dependency Not Established")
    );
    assert_eq!(error_string(V12, ErrorCode(351)), None);
}

#[test]
fn every_table_name_resolves_to_itself() {
    for version in [V12, V2004] {
        for e in elements(version) {
            let concrete = element_name(e.name, &[0, 0]);
            let r = resolve(version, &concrete).unwrap_or_else(|| panic!("{concrete}"));
            assert_eq!(r.element.name, e.name);
        }
    }
    assert!(resolve(V12, "cmi.objectives.01.id").is_none());
    assert!(resolve(V2004, "cmi.core.lesson_status").is_none());
    assert!(resolve(V12, "cmi.completion_status").is_none());
}

#[test]
fn scorm12_keywords() {
    let m = Model::new();
    assert_eq!(get(V12, &m, "cmi._version").unwrap(), "3.4");
    assert_eq!(
        get(V12, &m, "cmi.core.score._children").unwrap(),
        "raw,min,max"
    );
    assert_eq!(get(V12, &m, "cmi.objectives._count").unwrap(), "0");
    assert_eq!(get(V12, &m, "cmi.core.lesson_location._children"), Err(202));
    assert_eq!(get(V12, &m, "cmi.core._count"), Err(203));
    assert_eq!(get(V12, &m, "cmi.core.nothing"), Err(201));
    assert_eq!(get(V12, &m, ""), Err(201));
    let mut m = Model::new();
    assert_eq!(set(V12, &mut m, "cmi._version", "1"), 402);
    assert_eq!(set(V12, &mut m, "cmi.objectives._count", "1"), 402);
    assert_eq!(
        set(V12, &mut m, "cmi.core.lesson_location._children", "x"),
        402
    );
    assert_eq!(set(V12, &mut m, "cmi.nothing", "x"), 201);
}

#[test]
fn scorm12_access() {
    let mut m = model(&[
        ("cmi.core.student_id", "u1"),
        ("cmi.core.entry", "ab-initio"),
    ]);
    assert_eq!(set(V12, &mut m, "cmi.core.student_id", "u2"), 403);
    assert_eq!(set(V12, &mut m, "cmi.core.entry", "resume"), 403);
    assert_eq!(set(V12, &mut m, "cmi.launch_data", "x"), 403);
    assert_eq!(set(V12, &mut m, "cmi.core.exit", "suspend"), 0);
    assert_eq!(get(V12, &m, "cmi.core.exit"), Err(404));
    assert_eq!(get(V12, &m, "cmi.core.session_time"), Err(404));
    assert_eq!(get(V12, &m, "cmi.core.student_id").unwrap(), "u1");
}

#[test]
fn scorm12_defaults() {
    let m = Model::new();
    assert_eq!(
        get(V12, &m, "cmi.core.lesson_status").unwrap(),
        "not attempted"
    );
    assert_eq!(
        get(V12, &m, "cmi.core.total_time").unwrap(),
        "0000:00:00.00"
    );
    assert_eq!(get(V12, &m, "cmi.core.lesson_location").unwrap(), "");
    assert_eq!(get(V12, &m, "cmi.suspend_data").unwrap(), "");
}

#[test]
fn scorm12_types_and_vocabularies() {
    let mut m = Model::new();
    for (element, value, code) in [
        ("cmi.core.lesson_status", "passed", 0),
        ("cmi.core.lesson_status", "browsed", 0),
        ("cmi.core.lesson_status", "not attempted", 405),
        ("cmi.core.lesson_status", "Passed", 405),
        ("cmi.core.exit", "", 0),
        ("cmi.core.exit", "normal", 405),
        ("cmi.core.score.raw", "85.5", 0),
        ("cmi.core.score.raw", "", 0),
        ("cmi.core.score.raw", "eighty", 405),
        ("cmi.core.score.raw", "1e3", 405),
        ("cmi.core.session_time", "0000:12:30.5", 0),
        ("cmi.core.session_time", "12:30", 405),
        ("cmi.core.session_time", "PT12M", 405),
        ("cmi.core.lesson_location", &"x".repeat(255), 0),
        ("cmi.core.lesson_location", &"x".repeat(256), 405),
        ("cmi.suspend_data", &"x".repeat(10_000), 0),
        ("cmi.suspend_data", &"x".repeat(64_001), 405),
        ("cmi.student_preference.audio", "-1", 0),
        ("cmi.student_preference.audio", "101", 405),
        ("cmi.student_preference.speed", "-100", 0),
        ("cmi.student_preference.text", "2", 405),
        ("cmi.student_preference.text", "x", 405),
        ("cmi.student_preference.language", "en", 0),
        ("cmi.objectives.0.id", "obj 1", 405),
        ("cmi.objectives.0.id", "obj1", 0),
        ("cmi.objectives.0.status", "not attempted", 0),
        ("cmi.objectives.0.score.raw", "70", 0),
        ("cmi.interactions.0.id", "q1", 0),
        ("cmi.interactions.0.type", "choice", 0),
        ("cmi.interactions.0.type", "long-fill-in", 405),
        ("cmi.interactions.0.time", "13:45:00", 0),
        ("cmi.interactions.0.time", "25:00:00", 405),
        ("cmi.interactions.0.result", "wrong", 0),
        ("cmi.interactions.0.result", "incorrect", 405),
        ("cmi.interactions.0.result", "0.5", 0),
        ("cmi.interactions.0.latency", "0000:00:05", 0),
        ("cmi.interactions.0.student_response", "a,b", 0),
        ("cmi.interactions.0.student_response", &"a".repeat(256), 405),
        ("cmi.interactions.0.correct_responses.0.pattern", "a,b", 0),
        ("cmi.interactions.0.objectives.0.id", "obj1", 0),
    ] {
        assert_eq!(
            set(V12, &mut m, element, value),
            code,
            "{element} = {value:.20}"
        );
    }
    assert_eq!(get(V12, &m, "cmi.interactions._count").unwrap(), "1");
    assert_eq!(
        get(V12, &m, "cmi.interactions.0.objectives._count").unwrap(),
        "1"
    );
    assert_eq!(
        get(V12, &m, "cmi.interactions.0.correct_responses._count").unwrap(),
        "1"
    );
    assert_eq!(get(V12, &m, "cmi.interactions.0.id"), Err(404));
}

#[test]
fn scorm12_collections_grow_in_order() {
    let mut m = Model::new();
    assert_eq!(set(V12, &mut m, "cmi.objectives.1.id", "o2"), 201);
    assert_eq!(set(V12, &mut m, "cmi.objectives.0.id", "o1"), 0);
    assert_eq!(set(V12, &mut m, "cmi.objectives.1.id", "o2"), 0);
    assert_eq!(get(V12, &m, "cmi.objectives._count").unwrap(), "2");
    assert_eq!(get(V12, &m, "cmi.objectives.5.id"), Err(201));
    // 1.2 creates an interaction from any of its fields.
    assert_eq!(
        set(V12, &mut m, "cmi.interactions.0.objectives.0.id", "o1"),
        0
    );
    assert_eq!(get(V12, &m, "cmi.interactions._count").unwrap(), "1");
}

#[test]
fn scorm12_comments_are_appended() {
    let mut m = Model::new();
    assert_eq!(set(V12, &mut m, "cmi.comments", "Good. "), 0);
    assert_eq!(set(V12, &mut m, "cmi.comments", "Short."), 0);
    assert_eq!(get(V12, &m, "cmi.comments").unwrap(), "Good. Short.");
    assert_eq!(set(V12, &mut m, "cmi.comments", &"x".repeat(4090)), 405);
}

#[test]
fn scorm2004_keywords_and_access() {
    let mut m = model(&[("cmi.learner_id", "u1")]);
    assert_eq!(get(V2004, &m, "cmi._version").unwrap(), "1.0");
    assert_eq!(
        get(V2004, &m, "cmi.score._children").unwrap(),
        "scaled,raw,min,max"
    );
    assert_eq!(get(V2004, &m, "cmi.location._children"), Err(301));
    assert_eq!(get(V2004, &m, "cmi.location._count"), Err(301));
    assert_eq!(get(V2004, &m, "cmi.nothing"), Err(401));
    assert_eq!(get(V2004, &m, ""), Err(301));
    assert_eq!(set(V2004, &mut m, "cmi._version", "2"), 404);
    assert_eq!(set(V2004, &mut m, "cmi.interactions._count", "2"), 404);
    assert_eq!(set(V2004, &mut m, "cmi.learner_id", "u2"), 404);
    assert_eq!(set(V2004, &mut m, "cmi.location._children", "x"), 401);
    assert_eq!(set(V2004, &mut m, "", "x"), 351);
    assert_eq!(set(V2004, &mut m, "cmi.exit", "suspend"), 0);
    assert_eq!(get(V2004, &m, "cmi.exit"), Err(405));
    assert_eq!(get(V2004, &m, "cmi.session_time"), Err(405));
}

#[test]
fn scorm2004_uninitialized_values() {
    let m = Model::new();
    assert_eq!(get(V2004, &m, "cmi.location"), Err(403));
    assert_eq!(get(V2004, &m, "cmi.score.raw"), Err(403));
    assert_eq!(get(V2004, &m, "cmi.suspend_data"), Err(403));
    assert_eq!(get(V2004, &m, "cmi.completion_status").unwrap(), "unknown");
    assert_eq!(get(V2004, &m, "cmi.success_status").unwrap(), "unknown");
    assert_eq!(get(V2004, &m, "cmi.entry").unwrap(), "ab-initio");
    assert_eq!(get(V2004, &m, "cmi.total_time").unwrap(), "PT0S");
    assert_eq!(
        get(V2004, &m, "cmi.learner_preference.audio_level").unwrap(),
        "1"
    );
    assert_eq!(get(V2004, &m, "cmi.interactions.0.id"), Err(301));
    assert_eq!(get(V2004, &m, "adl.nav.request").unwrap(), "_none_");
    assert_eq!(
        get(V2004, &m, "adl.nav.request_valid.choice.{target=sco2}").unwrap(),
        "unknown"
    );
}

#[test]
fn scorm2004_types_ranges_and_vocabularies() {
    let mut m = Model::new();
    for (element, value, code) in [
        ("cmi.completion_status", "completed", 0),
        ("cmi.completion_status", "passed", 406),
        ("cmi.success_status", "failed", 0),
        ("cmi.success_status", "completed", 406),
        ("cmi.exit", "normal", 0),
        ("cmi.exit", "quit", 406),
        ("cmi.score.scaled", "0.85", 0),
        ("cmi.score.scaled", "-1", 0),
        ("cmi.score.scaled", "1.01", 407),
        ("cmi.score.scaled", "high", 406),
        ("cmi.score.raw", "850", 0),
        ("cmi.score.min", "-5", 0),
        ("cmi.progress_measure", "0.5", 0),
        ("cmi.progress_measure", "1.5", 407),
        ("cmi.session_time", "PT1H2M3.45S", 0),
        ("cmi.session_time", "P1DT2H", 0),
        ("cmi.session_time", "PT1.234S", 406),
        ("cmi.session_time", "P", 406),
        ("cmi.session_time", "PT", 406),
        ("cmi.session_time", "0000:10:00", 406),
        ("cmi.location", &"l".repeat(1000), 0),
        ("cmi.location", &"l".repeat(1001), 406),
        ("cmi.suspend_data", &"s".repeat(64_000), 0),
        ("cmi.suspend_data", &"s".repeat(64_001), 406),
        ("cmi.learner_preference.audio_level", "0", 0),
        ("cmi.learner_preference.audio_level", "-0.5", 407),
        ("cmi.learner_preference.delivery_speed", "2.5", 0),
        ("cmi.learner_preference.audio_captioning", "1", 0),
        ("cmi.learner_preference.audio_captioning", "2", 406),
        ("cmi.learner_preference.language", "en-US", 0),
        ("cmi.learner_preference.language", "", 0),
        ("cmi.learner_preference.language", "english!", 406),
        ("cmi.comments_from_learner.0.comment", "{lang=en}Nice", 0),
        ("cmi.comments_from_learner.0.comment", "{lang=}x", 406),
        ("cmi.comments_from_learner.0.location", "page 3", 0),
        (
            "cmi.comments_from_learner.0.timestamp",
            "2024-05-01T10:20:30.5Z",
            0,
        ),
        (
            "cmi.comments_from_learner.0.timestamp",
            "2024-05-01T10:20:30+05:30",
            0,
        ),
        ("cmi.comments_from_learner.0.timestamp", "2024-13-01", 406),
        ("cmi.comments_from_learner.0.timestamp", "yesterday", 406),
        ("cmi.comments_from_learner.2.comment", "gap", 351),
        ("adl.nav.request", "continue", 0),
        ("adl.nav.request", "{target=sco2}choice", 0),
        ("adl.nav.request", "{target=}choice", 406),
        ("adl.nav.request", "jump", 406),
        ("adl.nav.request_valid.continue", "true", 404),
    ] {
        assert_eq!(
            set(V2004, &mut m, element, value),
            code,
            "{element} = {value:.20}"
        );
    }
}

#[test]
fn scorm2004_objectives_need_an_id_first_and_keep_it() {
    let mut m = Model::new();
    assert_eq!(
        set(V2004, &mut m, "cmi.objectives.0.success_status", "passed"),
        408
    );
    assert_eq!(set(V2004, &mut m, "cmi.objectives.0.id", "obj1"), 0);
    assert_eq!(
        set(V2004, &mut m, "cmi.objectives.0.success_status", "passed"),
        0
    );
    assert_eq!(set(V2004, &mut m, "cmi.objectives.0.id", "obj1"), 0);
    assert_eq!(set(V2004, &mut m, "cmi.objectives.0.id", "other"), 351);
    assert_eq!(set(V2004, &mut m, "cmi.objectives.1.id", "obj1"), 351);
    assert_eq!(set(V2004, &mut m, "cmi.objectives.2.id", "obj3"), 351);
    assert_eq!(set(V2004, &mut m, "cmi.objectives.1.id", "obj2"), 0);
    assert_eq!(get(V2004, &m, "cmi.objectives._count").unwrap(), "2");
    assert_eq!(
        get(V2004, &m, "cmi.objectives.1.success_status").unwrap(),
        "unknown"
    );
    assert_eq!(
        get(V2004, &m, "cmi.objectives.0.score._children").unwrap(),
        "scaled,raw,min,max"
    );
    // The advanced golf example writes `cmi.objectives.undefined.*`: refused, not a crash.
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.objectives.undefined.success_status",
            "passed"
        ),
        401
    );
}

#[test]
fn scorm2004_interactions_rules() {
    let mut m = Model::new();
    assert_eq!(set(V2004, &mut m, "cmi.interactions.0.type", "choice"), 408);
    assert_eq!(
        set(V2004, &mut m, "cmi.interactions.0.objectives.0.id", "o"),
        408
    );
    assert_eq!(set(V2004, &mut m, "cmi.interactions.0.id", "urn:q:1"), 0);
    assert_eq!(
        set(V2004, &mut m, "cmi.interactions.0.learner_response", "a"),
        408
    );
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.0.correct_responses.0.pattern",
            "a"
        ),
        408
    );
    assert_eq!(set(V2004, &mut m, "cmi.interactions.0.type", "choice"), 0);
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.0.learner_response",
            "a[,]b"
        ),
        0
    );
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.0.learner_response",
            "a[,]a"
        ),
        406
    );
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.0.correct_responses.0.pattern",
            "b[,]c"
        ),
        0
    );
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.0.correct_responses.1.pattern",
            "d"
        ),
        0
    );
    assert_eq!(
        set(V2004, &mut m, "cmi.interactions.0.objectives.0.id", "o1"),
        0
    );
    assert_eq!(
        set(V2004, &mut m, "cmi.interactions.0.objectives.1.id", "o1"),
        351
    );
    assert_eq!(
        set(V2004, &mut m, "cmi.interactions.0.result", "incorrect"),
        0
    );
    assert_eq!(
        set(V2004, &mut m, "cmi.interactions.0.result", "wrong"),
        406
    );
    assert_eq!(set(V2004, &mut m, "cmi.interactions.0.result", "12.5"), 0);
    assert_eq!(set(V2004, &mut m, "cmi.interactions.0.latency", "PT5S"), 0);
    assert_eq!(set(V2004, &mut m, "cmi.interactions.0.weighting", "1"), 0);
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.0.timestamp",
            "2024-05-01T10:00:00"
        ),
        0
    );
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.0.description",
            "{lang=en-US}Pick"
        ),
        0
    );
    assert_eq!(
        get(V2004, &m, "cmi.interactions.0.correct_responses._count").unwrap(),
        "2"
    );
    assert_eq!(
        get(V2004, &m, "cmi.interactions.0.learner_response").unwrap(),
        "a[,]b"
    );
    assert_eq!(set(V2004, &mut m, "cmi.interactions.2.id", "q3"), 351);

    assert_eq!(set(V2004, &mut m, "cmi.interactions.1.id", "q2"), 0);
    assert_eq!(
        set(V2004, &mut m, "cmi.interactions.1.type", "true-false"),
        0
    );
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.1.correct_responses.0.pattern",
            "true"
        ),
        0
    );
    assert_eq!(
        set(
            V2004,
            &mut m,
            "cmi.interactions.1.correct_responses.1.pattern",
            "false"
        ),
        351
    );
    assert_eq!(
        set(V2004, &mut m, "cmi.interactions.1.learner_response", "t"),
        406
    );
}

#[test]
fn scorm2004_response_formats() {
    let cases: &[(&str, &str, bool, bool)] = &[
        ("true-false", "true", true, true),
        ("true-false", "1", false, false),
        ("choice", "", true, true),
        ("sequencing", "", false, false),
        ("sequencing", "a[,]b[,]a", false, true),
        (
            "fill-in",
            "{case_matters=true}{order_matters=false}red[,]blue",
            true,
            true,
        ),
        ("fill-in", "{case_matters=maybe}red", true, false),
        ("fill-in", "{lang=en}red", false, true),
        (
            "long-fill-in",
            "{case_matters=false}A long answer",
            true,
            true,
        ),
        ("likert", "agree", false, true),
        ("likert", "", false, false),
        ("matching", "1[.]a[,]2[.]b", true, true),
        ("matching", "1[.]a[.]x", true, false),
        ("matching", "1", false, false),
        (
            "performance",
            "{order_matters=true}step1[.]a[,][.]b",
            true,
            true,
        ),
        ("performance", "[.]", false, false),
        ("numeric", "1[:]5", true, true),
        ("numeric", "[:]5", true, true),
        ("numeric", "5[:]1", true, false),
        ("numeric", "3.5", false, true),
        ("numeric", "3[:]5", false, false),
        ("other", "anything at all", false, true),
        ("unknown-type", "x", false, false),
    ];
    for (kind, value, pattern, ok) in cases {
        assert_eq!(
            response_ok(V2004, kind, value, *pattern),
            *ok,
            "{kind} {value} pattern={pattern}"
        );
    }
    assert!(response_ok(V12, "choice", "a,b,c", true));
}

#[test]
fn json_export_describes_every_element_and_its_patterns_compile() {
    for version in [V12, V2004] {
        let j = to_json(version);
        assert_eq!(j["version"], version.as_str());
        let rows = j["elements"].as_array().unwrap();
        assert_eq!(rows.len(), elements(version).len());
        for row in rows {
            assert!(
                row["name"].is_string() && row["access"].is_string() && row["type"].is_string()
            );
            if let Some(p) = row["pattern"].as_str() {
                Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            }
        }
        assert_eq!(
            j["errors"].as_array().unwrap().len(),
            error_codes(version).len()
        );
    }
    let j = to_json(V12);
    let status = j["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "cmi.core.lesson_status")
        .unwrap();
    assert_eq!(status["access"], "rw");
    assert_eq!(status["vocabulary"][0], "passed");
    assert_eq!(status["default"], "not attempted");
    let j = to_json(V2004);
    let scaled = j["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "cmi.score.scaled")
        .unwrap();
    assert_eq!(
        (scaled["min"].as_f64(), scaled["max"].as_f64()),
        (Some(-1.0), Some(1.0))
    );
    assert_eq!(j["rules"]["dependencies"][0]["error"], 408);
}

#[test]
fn the_exported_patterns_agree_with_the_checks() {
    // Values the Rust checks accept must match the exported pattern, and the reverse.
    for (pattern, values) in [
        (
            RE_TIMESPAN12,
            &[
                "0000:00:00.00",
                "12:30:00",
                "9999:59:59.9",
                "1:00:00",
                "00:60:00",
            ][..],
        ),
        (RE_REAL, &["1", "-1.5", ".5", "5.", "-", "1e3", ""][..]),
        (
            RE_TIMESTAMP,
            &[
                "2024",
                "2024-02-30",
                "2024-05-01T10",
                "2024-05-01T10:00:00Z",
                "24-05-01",
            ][..],
        ),
    ] {
        let r = Regex::new(pattern).unwrap();
        for v in values {
            assert_eq!(r.is_match(v), matches(pattern, v), "{pattern} {v}");
        }
    }
    assert!(is_duration("PT0S"));
    assert!(!is_duration("P1H"));
    assert_eq!(strip_lang("{lang=en-US}Hello"), "Hello");
    assert_eq!(strip_lang("Hello"), "Hello");
}
