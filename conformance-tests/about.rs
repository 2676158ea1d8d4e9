//! Communication 2.8 About Resource.
use crate::harness::{Lrs, VERSIONS};
use serde_json::Value;

/// Communication 2.8.s5.b3 (SHOULD allow unauthenticated access) and 2.8.s5.b4 (no
/// version header needed): GET /about with neither credentials nor version header.
#[test]
fn comm_2_8_s5_b3_about_without_auth_or_version_header_200() {
    let lrs = Lrs::start();
    let r = lrs.get("/about").no_auth().no_version().send();
    r.assert_status(200);
    let ct = r.assert_header("Content-Type").to_ascii_lowercase();
    assert!(
        ct.starts_with("application/json"),
        "GET /about must return JSON\n{}",
        r.describe()
    );
    assert!(
        r.json().is_object(),
        "GET /about must return a JSON object\n{}",
        r.describe()
    );
    for v in VERSIONS {
        lrs.get("/about")
            .no_auth()
            .version(v)
            .send()
            .assert_status(200)
            .assert_version(v);
    }
}

/// Communication 2.8.s4 table row 1 and 2.8.s5.b1: `version` is an array of strings that
/// lists the latest patch of every version served — "1.0.3" and "2.0.0".
#[test]
fn comm_2_8_s5_b1_about_version_lists_1_0_3_and_2_0_0() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let r = lrs.get("/about").version(v).send();
        r.assert_status(200);
        let body = r.json();
        let versions = body
            .get("version")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("`version` must be an array\n{}", r.describe()));
        assert!(
            versions.iter().all(Value::is_string),
            "`version` must hold strings only\n{}",
            r.describe()
        );
        for expected in ["1.0.3", "2.0.0"] {
            assert!(
                versions.iter().any(|x| x == expected),
                "`version` must include {expected}\n{}",
                r.describe()
            );
        }
    }
}

/// Communication 2.8.s5.b2: no properties outside `version` and `extensions`;
/// `extensions` (optional) is an object.
#[test]
fn comm_2_8_s5_b2_about_has_only_version_and_extensions() {
    let lrs = Lrs::start();
    let r = lrs.get("/about").send();
    r.assert_status(200);
    let body = r.json();
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object\n{}", r.describe()));
    for k in obj.keys() {
        assert!(
            k == "version" || k == "extensions",
            "unexpected About property `{k}`\n{}",
            r.describe()
        );
    }
    if let Some(ext) = obj.get("extensions") {
        assert!(
            ext.is_object(),
            "`extensions` must be an object\n{}",
            r.describe()
        );
    }
}
