//! Statement validation (Data 2.2 Formatting Requirements, 2.4 Statement Properties,
//! Data 4 special data types, and the 2.0 changes): each invalid statement is rejected
//! with 400 and a JSON error whose `path` is the JSON pointer of the offending property,
//! and nothing is stored; the valid neighbours of each rule are accepted.
//!
//! Invalid statements are sent as a one-statement batch, so the expected pointers start
//! with `/0`; `error_path_points_into_the_request_body` checks single statements and PUT.
use crate::harness::{new_id, statement, Lrs, VERSIONS};
use crate::statements::{assert_400_at, assert_not_stored, fetch, id_of, post_ok};
use serde_json::{json, Value};

/// `statement()` changed by `f`.
fn with(f: impl FnOnce(&mut Value)) -> Value {
    let mut s = statement();
    f(&mut s);
    s
}

/// POSTs `[s]` and expects 400 with `error.path` one of `/0` + `paths`; nothing stored.
fn reject(lrs: &Lrs, v: &str, s: &Value, paths: &[&str]) {
    let r = lrs.post("/statements").version(v).json(&json!([s])).send();
    let full: Vec<String> = paths.iter().map(|p| format!("/0{p}")).collect();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    if r.status != 400 {
        panic!("{v}: expected 400 for statement {s}\n{}", r.describe());
    }
    assert_400_at(&r, &full);
    r.assert_version(v);
    if let Some(id) = s.get("id").and_then(Value::as_str) {
        if uuid::Uuid::parse_str(id).is_ok() {
            assert_not_stored(lrs, id);
        }
    }
}

/// POSTs `s` and expects it stored.
fn accept(lrs: &Lrs, v: &str, s: &Value) -> Value {
    let r = lrs.post("/statements").version(v).json(s).send();
    if r.status != 200 {
        panic!(
            "{v}: expected statement {s} to be accepted\n{}",
            r.describe()
        );
    }
    fetch(lrs, v, &id_of(s))
}

fn mbox() -> String {
    format!("mailto:{}@example.com", new_id())
}

// ----- error paths ---------------------------------------------------------------------

/// Communication 3.2 (error bodies of this LRS): `error.path` is a JSON pointer into the
/// request body — without an index for a single statement (POST or PUT), with the
/// statement's index in a batch.
#[test]
fn error_path_points_into_the_request_body() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let bad = with(|s| s["actor"]["mbox"] = json!("not-a-mailbox"));
        let r = lrs.post("/statements").version(v).json(&bad).send();
        assert_400_at(&r, &["/actor/mbox"]);
        let r = lrs
            .put("/statements")
            .query("statementId", &id_of(&bad))
            .version(v)
            .json(&bad)
            .send();
        assert_400_at(&r, &["/actor/mbox"]);
        let r = lrs
            .post("/statements")
            .version(v)
            .json(&json!([statement(), statement(), bad]))
            .send();
        assert_400_at(&r, &["/2/actor/mbox"]);
        assert_not_stored(&lrs, &id_of(&bad));
    }
}

// ----- actor / agents / groups ---------------------------------------------------------

/// Data 2.4.2.1.s2.b1 / 2.4.2.3 (XAPI-00034): an Agent has exactly one inverse
/// functional identifier — none, or two, is rejected (actor, object Agent, group member).
#[test]
fn data_2_4_2_s2_b1_agent_with_zero_or_two_ifis_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        reject(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"objectType": "Agent", "name": "No IFI"})),
            &["/actor"],
        );
        reject(
            &lrs,
            v,
            &with(
                |s| s["actor"] = json!({"mbox": mbox(), "mbox_sha1sum": "cd7d2f4cfb5a0e5de5e0fab3e0fda7c4a1ed95ef"}),
            ),
            &["/actor"],
        );
        reject(
            &lrs,
            v,
            &with(|s| {
                s["actor"] = json!({"mbox": mbox(), "openid": "http://openid.example.com/someone"})
            }),
            &["/actor"],
        );
        reject(
            &lrs,
            v,
            &with(|s| {
                s["actor"] = json!({
                    "mbox": mbox(),
                    "account": {"homePage": "http://example.com", "name": "someone"}
                })
            }),
            &["/actor"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["object"] = json!({"objectType": "Agent", "name": "No IFI"})),
            &["/object"],
        );
        reject(
            &lrs,
            v,
            &with(|s| {
                s["actor"] = json!({
                    "objectType": "Group",
                    "member": [{"mbox": mbox()}, {"objectType": "Agent", "name": "No IFI"}]
                })
            }),
            &["/actor/member/1"],
        );
        // Each single IFI is fine.
        for actor in [
            json!({"mbox": mbox()}),
            json!({"mbox_sha1sum": "cd7d2f4cfb5a0e5de5e0fab3e0fda7c4a1ed95ef"}),
            json!({"openid": "http://openid.example.com/someone"}),
            json!({"account": {"homePage": "http://example.com", "name": "someone"}}),
        ] {
            let s = with(|s| s["actor"] = actor.clone());
            assert_eq!(accept(&lrs, v, &s)["actor"], actor);
        }
    }
}

/// Data 2.4.2.3 (IFI formats; Data 2.2: format-following values): mbox is a `mailto:` IRI,
/// mbox_sha1sum 40 hex digits, openid a URI, an account has a homePage IRL and a name.
#[test]
fn data_2_4_2_3_invalid_ifi_values_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for bad in [
            "someone@example.com",
            "",
            "http://example.com/someone",
            "mailto:",
        ] {
            reject(
                &lrs,
                v,
                &with(|s| s["actor"]["mbox"] = json!(bad)),
                &["/actor/mbox"],
            );
        }
        for bad in [
            "xyz",
            "",
            "cd7d2f4cfb5a0e5de5e0fab3e0fda7c4a1ed95e",
            "zz7d2f4cfb5a0e5de5e0fab3e0fda7c4a1ed95ef",
        ] {
            reject(
                &lrs,
                v,
                &with(|s| s["actor"] = json!({"mbox_sha1sum": bad})),
                &["/actor/mbox_sha1sum"],
            );
        }
        reject(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"openid": "not a uri"})),
            &["/actor/openid"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"account": {"homePage": "not an irl", "name": "x"}})),
            &["/actor/account/homePage"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"account": {"homePage": "http://example.com"}})),
            &["/actor/account", "/actor/account/name"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"account": {"name": "x"}})),
            &["/actor/account", "/actor/account/homePage"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["actor"]["mbox"] = json!(42)),
            &["/actor/mbox"],
        );
    }
}

/// Data 2.4.2.2 (XAPI-00036): an anonymous Group lists its members; members
/// are Agents (no Group inside a Group). An identified Group needs no members.
#[test]
fn data_2_4_2_2_anonymous_group_without_members_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        reject(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"objectType": "Group", "name": "Nobody"})),
            &["/actor", "/actor/member"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"objectType": "Group", "member": {"mbox": mbox()}})),
            &["/actor/member"],
        );
        reject(
            &lrs,
            v,
            &with(|s| {
                s["actor"] = json!({
                    "objectType": "Group",
                    "member": [{"objectType": "Group", "mbox": mbox(), "member": [{"mbox": mbox()}]}]
                })
            }),
            &["/actor/member/0", "/actor/member/0/objectType"],
        );
        // Valid: anonymous with members, identified without members.
        accept(
            &lrs,
            v,
            &with(|s| {
                s["actor"] =
                    json!({"objectType": "Group", "member": [{"mbox": mbox()}, {"mbox": mbox()}]})
            }),
        );
        accept(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"objectType": "Group", "mbox": mbox()})),
        );
    }
}

// ----- IRIs, language maps, extensions --------------------------------------------------

/// Data 2.4.3 (verb id is an IRI), Data 2.4.4.1 (Activity id is an IRI), Data 2.2 (IRIs
/// without a scheme are rejected; format-following strings may not be empty).
#[test]
fn data_2_4_3_and_2_4_4_1_invalid_iris_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for bad in ["not an iri", "", "example.com/verbs/did"] {
            reject(
                &lrs,
                v,
                &with(|s| s["verb"]["id"] = json!(bad)),
                &["/verb/id"],
            );
            reject(
                &lrs,
                v,
                &with(|s| s["object"]["id"] = json!(bad)),
                &["/object/id"],
            );
        }
        reject(
            &lrs,
            v,
            &with(|s| s["verb"] = json!({"display": {"en-US": "no id"}})),
            &["/verb", "/verb/id"],
        );
        reject(
            &lrs,
            v,
            &with(|s| {
                s["context"] = json!({"contextActivities": {"parent": [{"id": "not an iri"}]}})
            }),
            &["/context/contextActivities/parent/0/id"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["object"]["definition"] = json!({"type": "not an iri"})),
            &["/object/definition/type"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["object"]["definition"] = json!({"moreInfo": "not an irl"})),
            &["/object/definition/moreInfo"],
        );
        // Non-ASCII IRIs are IRIs.
        accept(
            &lrs,
            v,
            &with(|s| s["object"]["id"] = json!("http://example.com/activités/学习")),
        );
    }
}

/// Data 4.1 (XAPI-00118, XAPI-00120): extension keys are IRIs — in Activity definitions,
/// results and contexts.
#[test]
fn data_4_1_extension_keys_must_be_iris() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        reject(
            &lrs,
            v,
            &with(|s| s["object"]["definition"] = json!({"extensions": {"notAnIri": 1}})),
            &["/object/definition/extensions/notAnIri"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"extensions": {"notAnIri": 1}})),
            &["/result/extensions/notAnIri"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["context"] = json!({"extensions": {"notAnIri": 1}})),
            &["/context/extensions/notAnIri"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"extensions": []})),
            &["/result/extensions"],
        );
    }
}

/// Data 4.1 (extension values are any JSON) and Data 2.2 (null is allowed inside
/// extensions): strings, numbers, booleans, null, arrays and nested objects are accepted
/// and returned as sent.
#[test]
fn data_4_1_extension_values_accept_any_json() {
    let lrs = Lrs::start();
    let ext = json!({
        "http://example.com/ext/string": "text",
        "http://example.com/ext/number": 3.25,
        "http://example.com/ext/integer": -7,
        "http://example.com/ext/bool": false,
        "http://example.com/ext/null": null,
        "http://example.com/ext/array": [1, "two", {"three": [3]}, null],
        "http://example.com/ext/object": {"any key": {"deep": [true, null, {}]}, "": ""}
    });
    for v in VERSIONS {
        let s = with(|s| {
            s["object"]["definition"] = json!({"extensions": ext});
            s["result"] = json!({"extensions": ext});
            s["context"] = json!({"extensions": ext});
        });
        let got = accept(&lrs, v, &s);
        assert_eq!(got["result"]["extensions"], ext, "{v}");
        assert_eq!(got["context"]["extensions"], ext, "{v}");
        assert_eq!(got["object"]["definition"]["extensions"], ext, "{v}");
    }
}

/// Data 4.2 / Data 2.2 (language map keys are RFC 5646 tags, token lengths validated):
/// verb display, Activity name and description, interaction component descriptions.
#[test]
fn data_4_2_invalid_language_tag_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for bad in ["abcdefghij", "en--US", "e!", ""] {
            reject(
                &lrs,
                v,
                &with(|s| s["verb"]["display"] = json!({bad: "did"})),
                &[&format!("/verb/display/{bad}")],
            );
        }
        reject(
            &lrs,
            v,
            &with(|s| {
                s["object"]["definition"] = json!({"name": {"en-US": "ok", "123456789": "x"}})
            }),
            &["/object/definition/name/123456789"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["object"]["definition"] = json!({"description": {"e!": "x"}})),
            &["/object/definition/description/e!"],
        );
        reject(
            &lrs,
            v,
            &with(|s| {
                s["object"]["definition"] = json!({
                    "interactionType": "choice",
                    "choices": [{"id": "a", "description": {"e!": "A"}}]
                })
            }),
            &["/object/definition/choices/0/description/e!"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["verb"]["display"] = json!({"en-US": 5})),
            &["/verb/display/en-US"],
        );
        // Valid tags of several shapes.
        let display = json!({"en": "a", "en-US": "b", "zh-Hant-TW": "c", "de-CH-1996": "d", "x-private": "e", "und": "f"});
        let s = with(|s| s["verb"]["display"] = display.clone());
        assert_eq!(accept(&lrs, v, &s)["verb"]["display"], display);
    }
}

// ----- special data types ---------------------------------------------------------------

/// Data 4.6 (XAPI-00077, XAPI-00124): result.duration is an ISO 8601 duration.
#[test]
fn data_4_6_invalid_duration_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for bad in [
            "P1Q", "1H", "PT", "P", "PT1H30", "P1DT", "forever", "", "PT-5S",
        ] {
            reject(
                &lrs,
                v,
                &with(|s| s["result"] = json!({"duration": bad})),
                &["/result/duration"],
            );
        }
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"duration": 30})),
            &["/result/duration"],
        );
        for good in ["PT1H30M", "P4W", "PT0.5S", "P1Y2M3DT4H5M6.7S", "PT0S"] {
            let s = with(|s| s["result"] = json!({"duration": good}));
            accept(&lrs, v, &s);
        }
    }
}

/// Data 4.5 / Data 2.4.7: timestamp is an ISO 8601 / RFC 3339 date-time.
#[test]
fn data_4_5_invalid_timestamp_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for bad in [
            "not a date",
            "",
            "2020-13-01T00:00:00Z",
            "2020-02-30T00:00:00Z",
            "2020-01-01T25:00:00Z",
            "01/02/2020 10:00",
        ] {
            reject(
                &lrs,
                v,
                &with(|s| s["timestamp"] = json!(bad)),
                &["/timestamp"],
            );
        }
        reject(
            &lrs,
            v,
            &with(|s| s["timestamp"] = json!(1577836800)),
            &["/timestamp"],
        );
        for good in [
            "2020-01-01T00:00:00Z",
            "2020-01-01T00:00:00.123456Z",
            "2020-01-01T10:00:00+02:00",
            "2020-01-01T10:00:00.5-07:30",
        ] {
            accept(&lrs, v, &with(|s| s["timestamp"] = json!(good)));
        }
    }
}

/// Data 4.4 / Data 2.4.1 (ids and registrations are UUIDs): an id, a
/// registration, a StatementRef id, a context statement id that is not a UUID is
/// rejected.
#[test]
fn data_2_4_1_invalid_uuids_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for bad in [
            "not-a-uuid",
            "",
            "12345",
            "3fa85f64-5717-4562-b3fc-2c963f66afa",
        ] {
            reject(&lrs, v, &with(|s| s["id"] = json!(bad)), &["/id"]);
            reject(
                &lrs,
                v,
                &with(|s| s["context"] = json!({"registration": bad})),
                &["/context/registration"],
            );
            reject(
                &lrs,
                v,
                &with(|s| s["object"] = json!({"objectType": "StatementRef", "id": bad})),
                &["/object/id"],
            );
            reject(
                &lrs,
                v,
                &with(|s| {
                    s["context"] = json!({"statement": {"objectType": "StatementRef", "id": bad}})
                }),
                &["/context/statement/id"],
            );
        }
        // Upper-case UUIDs are UUIDs.
        let s = with(|s| s["id"] = json!(new_id().to_ascii_uppercase()));
        post_ok(&lrs, v, &s);
    }
}

// ----- result ---------------------------------------------------------------------------

/// Data 2.4.5.1: score.scaled lies in [-1, 1]; raw lies between min
/// and max (inclusive); max is greater than min; and result values have their JSON types.
#[test]
fn data_2_4_5_1_score_out_of_range_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for scaled in [1.5, -1.01, 100.0] {
            reject(
                &lrs,
                v,
                &with(|s| s["result"] = json!({"score": {"scaled": scaled}})),
                &["/result/score/scaled"],
            );
        }
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"score": {"raw": 11, "min": 0, "max": 10}})),
            &["/result/score/raw"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"score": {"raw": -1, "min": 0, "max": 10}})),
            &["/result/score/raw"],
        );
        // max is greater than min (Data 2.4.5.1 score table).
        for (min, max) in [(10, 5), (10, 10)] {
            reject(
                &lrs,
                v,
                &with(|s| s["result"] = json!({"score": {"min": min, "max": max}})),
                &["/result/score", "/result/score/min", "/result/score/max"],
            );
        }
        // Wrong types (Data 2.2: strings where numbers / booleans are required).
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"score": {"raw": "5"}})),
            &["/result/score/raw"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"success": "true"})),
            &["/result/success"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"completion": 1})),
            &["/result/completion"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["result"] = json!({"response": 42})),
            &["/result/response"],
        );
        // Valid: bounds included.
        for score in [
            json!({"scaled": 1}),
            json!({"scaled": -1}),
            json!({"scaled": 0.5, "raw": 10, "min": 0, "max": 10}),
            json!({"raw": 0, "min": 0, "max": 100}),
            json!({"raw": 1e3}),
        ] {
            let s = with(|s| {
                s["result"] = json!({"score": score, "success": true, "completion": false})
            });
            accept(&lrs, v, &s);
        }
    }
}

// ----- context --------------------------------------------------------------------------

/// Data 2.4.6: context revision and platform are only used when
/// the object is an Activity.
#[test]
fn data_2_4_6_revision_and_platform_only_with_activity_object() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let agent_object = json!({"objectType": "Agent", "mbox": mbox()});
        let ref_object = json!({"objectType": "StatementRef", "id": new_id()});
        let sub_object = json!({
            "objectType": "SubStatement",
            "actor": {"mbox": mbox()},
            "verb": {"id": "http://example.com/verbs/did"},
            "object": {"id": "http://example.com/activities/x"}
        });
        for object in [&agent_object, &ref_object, &sub_object] {
            for prop in ["revision", "platform"] {
                reject(
                    &lrs,
                    v,
                    &with(|s| {
                        s["object"] = object.clone();
                        s["context"] = json!({ prop: "1.2" });
                    }),
                    &[&format!("/context/{prop}")],
                );
            }
        }
        accept(
            &lrs,
            v,
            &with(|s| s["context"] = json!({"revision": "1.2", "platform": "test runner"})),
        );
        // Instructor and team are Agents / Groups.
        reject(
            &lrs,
            v,
            &with(|s| s["context"] = json!({"instructor": {"name": "no ifi"}})),
            &["/context/instructor"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["context"] = json!({"team": {"objectType": "Agent", "mbox": mbox()}})),
            &["/context/team", "/context/team/objectType"],
        );
        // contextActivities keys are parent, grouping, category, other.
        reject(
            &lrs,
            v,
            &with(|s| {
                s["context"] =
                    json!({"contextActivities": {"sibling": [{"id": "http://example.com/a"}]}})
            }),
            &["/context/contextActivities/sibling"],
        );
    }
}

/// xAPI 2.0 context agents and groups are not part of 1.0.3: under a 1.0.3 request they
/// are unknown properties (400).
#[test]
fn data_2_4_6_context_agents_and_groups_rejected_under_1_0_3() {
    let lrs = Lrs::start();
    let v = "1.0.3";
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] = json!({"contextAgents": [{"objectType": "contextAgent", "agent": {"mbox": mbox()}}]})
        }),
        &["/context/contextAgents"],
    );
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] = json!({"contextGroups": [{
                "objectType": "contextGroup",
                "group": {"objectType": "Group", "mbox": mbox()}
            }]})
        }),
        &["/context/contextGroups"],
    );
}

/// xAPI 2.0 (context.contextAgents / contextGroups): accepted and returned; each item has
/// its objectType, an agent / group, and relevantTypes, when present, is a non-empty array
/// of IRIs.
#[test]
fn xapi_2_0_context_agents_and_groups_accepted_and_validated() {
    let lrs = Lrs::start();
    let v = "2.0.0";
    let context = json!({
        "contextAgents": [
            {"objectType": "contextAgent", "agent": {"objectType": "Agent", "mbox": mbox()},
             "relevantTypes": ["http://example.com/types/coach"]},
            {"objectType": "contextAgent", "agent": {"mbox": mbox()}}
        ],
        "contextGroups": [
            {"objectType": "contextGroup",
             "group": {"objectType": "Group", "member": [{"mbox": mbox()}]},
             "relevantTypes": ["http://example.com/types/cohort"]}
        ]
    });
    let s = with(|s| s["context"] = context.clone());
    let got = accept(&lrs, v, &s);
    assert_eq!(got["context"]["contextAgents"], context["contextAgents"]);
    assert_eq!(got["context"]["contextGroups"], context["contextGroups"]);

    let agent_item = |extra: Value| {
        let mut item = json!({"objectType": "contextAgent", "agent": {"mbox": mbox()}});
        for (k, val) in extra.as_object().unwrap() {
            item[k] = val.clone();
        }
        item
    };
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] = json!({"contextAgents": [agent_item(json!({"relevantTypes": []}))]})
        }),
        &["/context/contextAgents/0/relevantTypes"],
    );
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] =
                json!({"contextAgents": [agent_item(json!({"relevantTypes": ["not an iri"]}))]})
        }),
        &["/context/contextAgents/0/relevantTypes/0"],
    );
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] =
                json!({"contextAgents": [agent_item(json!({"objectType": "ContextAgent"}))]})
        }),
        &["/context/contextAgents/0/objectType"],
    );
    reject(
        &lrs,
        v,
        &with(|s| s["context"] = json!({"contextAgents": [{"objectType": "contextAgent"}]})),
        &["/context/contextAgents/0", "/context/contextAgents/0/agent"],
    );
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] =
                json!({"contextAgents": [agent_item(json!({"agent": {"name": "no ifi"}}))]})
        }),
        &["/context/contextAgents/0/agent"],
    );
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] = json!({"contextGroups": [{
                "objectType": "contextGroup",
                "group": {"objectType": "Group", "mbox": mbox()},
                "relevantTypes": []
            }]})
        }),
        &["/context/contextGroups/0/relevantTypes"],
    );
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] = json!({"contextGroups": [{
                "objectType": "contextGroup",
                "group": {"mbox": mbox()}
            }]})
        }),
        &[
            "/context/contextGroups/0/group",
            "/context/contextGroups/0/group/objectType",
        ],
    );
    reject(
        &lrs,
        v,
        &with(|s| {
            s["context"] =
                json!({"contextAgents": {"objectType": "contextAgent", "agent": {"mbox": mbox()}}})
        }),
        &["/context/contextAgents"],
    );
}

// ----- object ---------------------------------------------------------------------------

/// Data 2.4.4.3 SubStatements: a SubStatement has no id, stored,
/// version or authority, and does not contain another SubStatement.
#[test]
fn data_2_4_4_3_substatement_restrictions() {
    let lrs = Lrs::start();
    let sub = || {
        json!({
            "objectType": "SubStatement",
            "actor": {"mbox": mbox()},
            "verb": {"id": "http://example.com/verbs/planned"},
            "object": {"objectType": "Activity", "id": "http://example.com/activities/x"}
        })
    };
    for v in VERSIONS {
        let forbidden = [
            ("id", json!(new_id())),
            ("stored", json!("2020-01-01T00:00:00Z")),
            ("version", json!("1.0.0")),
            (
                "authority",
                json!({"objectType": "Agent", "mbox": "mailto:authority@example.com"}),
            ),
        ];
        for (prop, value) in forbidden {
            reject(
                &lrs,
                v,
                &with(|s| {
                    let mut o = sub();
                    o[prop] = value.clone();
                    s["object"] = o;
                }),
                &[&format!("/object/{prop}")],
            );
        }
        reject(
            &lrs,
            v,
            &with(|s| {
                let mut o = sub();
                o["object"] = sub();
                s["object"] = o;
            }),
            &["/object/object", "/object/object/objectType"],
        );
        // A SubStatement's own parts are validated as a statement's.
        reject(
            &lrs,
            v,
            &with(|s| {
                let mut o = sub();
                o["actor"] = json!({"mbox": "bad"});
                s["object"] = o;
            }),
            &["/object/actor/mbox"],
        );
        // A valid SubStatement, with result, context and timestamp, is accepted as sent.
        let mut o = sub();
        o["result"] = json!({"success": true});
        o["context"] = json!({"registration": new_id()});
        o["timestamp"] = json!("2020-01-01T00:00:00Z");
        let s = with(|s| s["object"] = o.clone());
        let got = accept(&lrs, v, &s);
        assert_eq!(got["object"]["verb"], o["verb"]);
        assert_eq!(got["object"]["result"], o["result"]);
    }
}

/// Data 2.3.2: a statement with the voided verb must have a StatementRef as
/// its object.
#[test]
fn data_2_3_2_voiding_verb_requires_statement_ref_object() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let voided =
            json!({"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}});
        for object in [
            json!({"objectType": "Activity", "id": "http://example.com/activities/x"}),
            json!({"objectType": "Agent", "mbox": mbox()}),
        ] {
            reject(
                &lrs,
                v,
                &with(|s| {
                    s["verb"] = voided.clone();
                    s["object"] = object.clone();
                }),
                &["/object", "/object/objectType"],
            );
        }
        // Voiding a statement the LRS does not have is accepted (2.0; 1.0.3: SHOULD NOT reject).
        accept(
            &lrs,
            v,
            &with(|s| {
                s["verb"] = voided.clone();
                s["object"] = json!({"objectType": "StatementRef", "id": new_id()});
            }),
        );
    }
}

/// Data 2.2 (the case of keys and of enumerated values must match): objectType values
/// in another case are rejected.
#[test]
fn data_2_2_wrong_object_type_case_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        reject(
            &lrs,
            v,
            &with(|s| s["actor"]["objectType"] = json!("agent")),
            &["/actor/objectType"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["actor"] = json!({"objectType": "GROUP", "mbox": mbox()})),
            &["/actor/objectType"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["object"]["objectType"] = json!("activity")),
            &["/object/objectType"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["object"] = json!({"objectType": "statementref", "id": new_id()})),
            &["/object/objectType"],
        );
        reject(
            &lrs,
            v,
            &with(|s| {
                s["object"] = json!({
                    "objectType": "substatement",
                    "actor": {"mbox": mbox()},
                    "verb": {"id": "http://example.com/verbs/did"},
                    "object": {"id": "http://example.com/activities/x"}
                })
            }),
            &["/object/objectType"],
        );
        reject(
            &lrs,
            v,
            &with(|s| s["object"] = json!({"objectType": "Person", "mbox": mbox()})),
            &["/object/objectType"],
        );
        // An Agent as object must say so (Data 2.4.4.2.s1.b1, XAPI-00065).
        reject(
            &lrs,
            v,
            &with(|s| s["object"] = json!({"mbox": mbox()})),
            &[
                "/object",
                "/object/id",
                "/object/mbox",
                "/object/objectType",
            ],
        );
        // Keys in another case are not the keys of the specification.
        reject(
            &lrs,
            v,
            &with(|s| {
                let actor = s["actor"].clone();
                s.as_object_mut().unwrap().remove("actor");
                s["Actor"] = actor;
            }),
            &["/Actor", "/actor", ""],
        );
    }
}

/// Data 2.2 (additional properties are rejected, SHOULD*; 2.0: unknown properties are
/// rejected everywhere) — at the top level and at several depths.
#[test]
fn data_2_2_unknown_properties_rejected_at_any_depth() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let cases: Vec<(&str, Value)> = vec![
            ("/foo", with(|s| s["foo"] = json!("bar"))),
            ("/actor/foo", with(|s| s["actor"]["foo"] = json!(1))),
            ("/verb/foo", with(|s| s["verb"]["foo"] = json!(1))),
            ("/object/foo", with(|s| s["object"]["foo"] = json!(1))),
            (
                "/object/definition/foo",
                with(|s| s["object"]["definition"] = json!({"foo": 1})),
            ),
            (
                "/result/score/foo",
                with(|s| s["result"] = json!({"score": {"scaled": 0.5, "foo": 1}})),
            ),
            ("/result/foo", with(|s| s["result"] = json!({"foo": 1}))),
            ("/context/foo", with(|s| s["context"] = json!({"foo": 1}))),
            (
                "/context/contextActivities/parent/0/foo",
                with(
                    |s| s["context"] = json!({"contextActivities": {"parent": [{"id": "http://example.com/p", "foo": 1}]}}),
                ),
            ),
            (
                "/actor/account/foo",
                with(|s| {
                    s["actor"] = json!({"account": {"homePage": "http://example.com", "name": "x", "foo": 1}})
                }),
            ),
            (
                "/object/definition/choices/0/foo",
                with(|s| {
                    s["object"]["definition"] = json!({
                        "interactionType": "choice",
                        "choices": [{"id": "a", "foo": 1}]
                    })
                }),
            ),
            (
                "/object/result/foo",
                with(|s| {
                    s["object"] = json!({
                        "objectType": "SubStatement",
                        "actor": {"mbox": mbox()},
                        "verb": {"id": "http://example.com/verbs/did"},
                        "object": {"id": "http://example.com/activities/x"},
                        "result": {"foo": 1}
                    })
                }),
            ),
            (
                "/attachments/0/foo",
                with(|s| {
                    s["attachments"] = json!([{
                        "usageType": "http://example.com/usage",
                        "display": {"en-US": "file"},
                        "contentType": "text/plain",
                        "length": 4,
                        "sha2": "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589",
                        "fileUrl": "http://example.com/file.txt",
                        "foo": 1
                    }])
                }),
            ),
        ];
        for (path, s) in &cases {
            reject(&lrs, v, s, &[path]);
        }
    }
}

/// Data 2.2 (no null values except inside extensions).
#[test]
fn data_2_2_null_values_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let cases: Vec<(&str, Value)> = vec![
            ("/result", with(|s| s["result"] = Value::Null)),
            ("/context", with(|s| s["context"] = Value::Null)),
            ("/timestamp", with(|s| s["timestamp"] = Value::Null)),
            ("/id", with(|s| s["id"] = Value::Null)),
            ("/actor/name", with(|s| s["actor"]["name"] = Value::Null)),
            (
                "/verb/display/en-US",
                with(|s| s["verb"]["display"]["en-US"] = Value::Null),
            ),
            (
                "/object/definition",
                with(|s| s["object"]["definition"] = Value::Null),
            ),
            (
                "/result/score/raw",
                with(|s| s["result"] = json!({"score": {"raw": null}})),
            ),
            (
                "/context/registration",
                with(|s| s["context"] = json!({"registration": null})),
            ),
            (
                "/context/contextActivities/parent",
                with(|s| s["context"] = json!({"contextActivities": {"parent": null}})),
            ),
        ];
        for (path, s) in &cases {
            reject(&lrs, v, s, &[path]);
        }
        // The required parts may not be null either.
        for prop in ["actor", "verb", "object"] {
            reject(
                &lrs,
                v,
                &with(|s| s[prop] = Value::Null),
                &[&format!("/{prop}")],
            );
        }
    }
}

/// Data 2.2 (a statement uses actor, verb and object): a statement missing one is
/// rejected.
#[test]
fn data_2_2_missing_actor_verb_or_object_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        for prop in ["actor", "verb", "object"] {
            let s = with(|s| {
                s.as_object_mut().unwrap().remove(prop);
            });
            reject(&lrs, v, &s, &["", &format!("/{prop}")]);
        }
    }
}

// ----- interaction activities ------------------------------------------------------------

/// Data 2.4.4.1 Interaction Activities (interactionType; interaction component lists only
/// for the types that support them; distinct component ids).
#[test]
fn data_2_4_4_1_interaction_components_must_match_interaction_type() {
    let lrs = Lrs::start();
    let components = json!([{"id": "a", "description": {"en-US": "A"}}, {"id": "b"}]);
    for v in VERSIONS {
        let cases = [
            ("likert", "choices"),
            ("true-false", "scale"),
            ("choice", "steps"),
            ("matching", "choices"),
            ("performance", "source"),
            ("fill-in", "choices"),
            ("numeric", "target"),
            ("other", "scale"),
        ];
        for (itype, list) in cases {
            let s = with(|s| {
                s["object"]["definition"] = json!({
                    "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
                    "interactionType": itype,
                    list: components
                })
            });
            reject(&lrs, v, &s, &[&format!("/object/definition/{list}")]);
        }
        for bad in ["Choice", "multiple-choice", ""] {
            let s = with(|s| s["object"]["definition"] = json!({"interactionType": bad}));
            reject(&lrs, v, &s, &["/object/definition/interactionType"]);
        }
        let s = with(|s| {
            s["object"]["definition"] = json!({
                "interactionType": "choice",
                "choices": [{"id": "a"}, {"id": "a"}]
            })
        });
        reject(
            &lrs,
            v,
            &s,
            &[
                "/object/definition/choices",
                "/object/definition/choices/1",
                "/object/definition/choices/1/id",
            ],
        );
        let s = with(|s| {
            s["object"]["definition"] = json!({
                "interactionType": "choice",
                "correctResponsesPattern": "a"
            })
        });
        reject(&lrs, v, &s, &["/object/definition/correctResponsesPattern"]);

        // Every supported combination is accepted.
        let valid = [
            ("choice", vec!["choices"]),
            ("sequencing", vec!["choices"]),
            ("likert", vec!["scale"]),
            ("matching", vec!["source", "target"]),
            ("performance", vec!["steps"]),
            ("true-false", vec![]),
            ("fill-in", vec![]),
            ("long-fill-in", vec![]),
            ("numeric", vec![]),
            ("other", vec![]),
        ];
        for (itype, lists) in valid {
            let mut def = json!({
                "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
                "interactionType": itype,
                "correctResponsesPattern": ["a"]
            });
            for l in lists {
                def[l] = components.clone();
            }
            let s = with(|s| s["object"]["definition"] = def.clone());
            let got = accept(&lrs, v, &s);
            assert_eq!(got["object"]["definition"], def, "{v} {itype}");
        }
    }
}
