//! Properties shared by the fuzz targets.

use karmayogi_lrs::xapi::statement::{prepare, Receipt};
use karmayogi_lrs::xapi::validate::validate_statement;
use karmayogi_lrs::xapi::XapiVersion;
use serde_json::Value;

/// The POST path for one body under `version`: JSON parse, validate, prepare. Asserts
/// that it never panics, that validate and prepare agree, and that a statement accepted
/// once is accepted again after a serialise/parse round trip.
pub fn statement(data: &[u8], version: XapiVersion) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // A POST body is one statement or an array of them; each goes through the same path.
    let items = match body {
        Value::Array(items) => items,
        one => vec![one],
    };
    let authority = serde_json::json!({"objectType": "Agent", "mbox": "mailto:fuzz@example.com"});
    let receipt = Receipt {
        version,
        authority: &authority,
        may_define: true,
    };
    for s in items {
        let valid = validate_statement(&s, version).is_ok();
        let prepared = prepare(s.clone(), &receipt, 1_700_000_000_000_000);
        // prepare validates first: it must never accept what validate rejects, nor the reverse.
        assert_eq!(
            valid,
            prepared.is_ok(),
            "validate and prepare disagree on {s}"
        );
        let Ok(prepared) = prepared else { continue };
        let text = serde_json::to_string(&s).expect("a Value serialises");
        let again: Value = serde_json::from_str(&text).expect("own output parses");
        assert!(
            validate_statement(&again, version).is_ok(),
            "accepted statement rejected after a round trip: {text}"
        );
        // What the LRS stores must serialise and still name the same id.
        let stored = serde_json::to_string(&prepared.statement).expect("a Value serialises");
        let stored: Value = serde_json::from_str(&stored).expect("own output parses");
        assert!(stored.get("id").and_then(Value::as_str).is_some());
    }
}

/// GET /statements parameters: any query string, under either version, never panics; a
/// cursor token from anywhere never panics its decoder.
pub fn query(data: &[u8]) {
    use karmayogi_lrs::xapi::query::{decode_cursor, parse, PageLimits};
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let version = if first & 1 == 0 {
        XapiVersion::V1_0
    } else {
        XapiVersion::V2_0
    };
    let text = String::from_utf8_lossy(rest);
    // The split actix does before percent-decoding; decoding is not the code under test.
    let params: Vec<(String, String)> = text
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.to_owned(), String::new()),
        })
        .collect();
    let pages = PageLimits {
        default: 100,
        max: 1000,
    };
    let mine = serde_json::json!({"objectType": "Agent", "mbox": "mailto:fuzz@example.com"});
    let _ = parse(&params, version, &pages, None);
    let _ = parse(&params, version, &pages, Some(&mine));
    for (_, v) in &params {
        let _ = decode_cursor(v);
    }
}
