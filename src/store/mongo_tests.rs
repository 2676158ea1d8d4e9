use super::*;

fn q() -> StatementQuery {
    StatementQuery {
        limit: 10,
        include_voided: false,
        ..Default::default()
    }
}

#[test]
fn positions_sort_like_stored_then_id() {
    let a = position(-5, "b");
    let b = position(0, "a");
    let c = position(1_700_000_000_000_000, "a");
    let d = position(1_700_000_000_000_000, "b");
    let e = position(1_700_000_000_000_001, "0");
    assert!(a < b && b < c && c < d && d < e);
    assert!(POSITION_MIN <= a.as_str() && e.as_str() < POSITION_END);
    assert!(position_floor(1_700_000_000_000_000) < c);
    assert!(position_floor(1_700_000_000_000_001) > d);
}

#[test]
fn filter_is_one_range_on_the_position() {
    let (f, s) = query_filter(&q());
    assert_eq!(f, doc! { "pos": { "$gte": "0", "$lt": "g" } });
    assert_eq!(s, doc! { "pos": -1 });

    let mut x = q();
    x.keys = vec!["v:http://x/v".into()];
    x.since_us = Some(10);
    x.until_us = Some(20);
    let (f, _) = query_filter(&x);
    assert_eq!(
        f,
        doc! { "q": "v:http://x/v", "pos": { "$gte": position_floor(11), "$lt": position_floor(21) } }
    );

    // A descending cursor lowers the upper bound; an ascending one raises the lower.
    x.after = Some((15, "id".into()));
    let (f, _) = query_filter(&x);
    assert_eq!(
        f.get_document("pos").ok(),
        Some(&doc! { "$gte": position_floor(11), "$lt": position(15, "id") })
    );
    x.ascending = true;
    let (f, s) = query_filter(&x);
    assert_eq!(
        f.get_document("pos").ok(),
        Some(&doc! { "$gt": position(15, "id"), "$lt": position_floor(21) })
    );
    assert_eq!(s, doc! { "pos": 1 });

    // A cursor before `since` leaves `since` in force.
    x.after = Some((3, "id".into()));
    let (f, _) = query_filter(&x);
    assert_eq!(
        f.get_document("pos").ok(),
        Some(&doc! { "$gte": position_floor(11), "$lt": position_floor(21) })
    );

    x.keys = vec!["a:x".into(), "v:y".into()];
    let (f, _) = query_filter(&x);
    assert_eq!(
        f.get_document("q").ok(),
        Some(&doc! { "$all": ["a:x", "v:y"] })
    );
}

/// The `$all` list of the filter of query `x` (empty if it has none).
fn all_of(x: &StatementQuery) -> Vec<Bson> {
    let (f, _) = query_filter(x);
    f.get_document("q")
        .and_then(|d| d.get_array("$all"))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn operator_lookalikes_stay_strings() {
    let mut x = q();
    x.keys = vec![r#"a:{"$where":"1"}"#.into(), "$gt".into()];
    let all = all_of(&x);
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|b| matches!(b, Bson::String(_))));
}

#[test]
fn scope_keys_are_unambiguous() {
    let root = Department::root();
    let a = DocumentScope::State {
        activity_id: "x\u{1f}y".into(),
        agent: "z".into(),
        registration: None,
    }
    .key_in(&root);
    let b = DocumentScope::State {
        activity_id: "x".into(),
        agent: "y\u{1f}z".into(),
        registration: None,
    }
    .key_in(&root);
    assert_ne!(a, b);
}

#[test]
fn big_contents_are_chunked() {
    let small = content_fields("b", &[1, 2, 3]);
    assert!(small.chunks.is_empty());
    assert_eq!(get_bytes(&small.fields, "data"), Some(&[1u8, 2, 3][..]));
    let big = vec![7u8; CHUNK_BYTES * 2 + 5];
    let c = content_fields("b", &big);
    assert_eq!(c.chunks.len(), 3);
    assert_eq!(get_int(&c.fields, "chunks"), Some(3));
    assert!(c.fields.get("data").is_none());
}

#[test]
fn uri_credentials_are_not_shown() {
    assert_eq!(
        redact("mongodb://user:pw@h1:27017,h2/db?w=1"),
        "mongodb://…@h1:27017,h2/db?w=1"
    );
    assert_eq!(redact("mongodb://h1/db"), "mongodb://h1/db");
}

#[test]
fn keys_within_departments_are_stored_and_scanned_as_hashes() {
    let keys: Vec<String> = ["a:x", "d:moe", "d:moe/dhe", "in:moe v:old", "v:y"]
        .map(String::from)
        .to_vec();
    let Bson::Array(stored) = query_keys(&keys) else {
        panic!("an array")
    };
    // The plain keys as strings (an older version's key within as a string dropped), then
    // the two filter keys within each of the two departments as hashes.
    let plain: Vec<&str> = stored.iter().filter_map(Bson::as_str).collect();
    assert_eq!(plain, ["a:x", "d:moe", "d:moe/dhe", "v:y"]);
    let hashes: Vec<i64> = stored.iter().filter_map(Bson::as_i64).collect();
    let expected: Vec<i64> = [
        "in:moe a:x",
        "in:moe v:y",
        "in:moe/dhe a:x",
        "in:moe/dhe v:y",
    ]
    .iter()
    .map(|k| key_hash(k))
    .collect();
    assert_eq!(hashes, expected);
    assert_eq!(stored.len(), 8);

    // A reader of moe/dhe scans the hash of its first filter key within moe/dhe, and the
    // plain keys (its department's among them) decide.
    let mut x = q();
    x.keys = vec!["a:x".into(), "v:y".into()];
    x.within(&Department::parse("moe/dhe").expect("a path"));
    assert_eq!(
        all_of(&x),
        vec![
            Bson::Int64(key_hash("in:moe/dhe a:x")),
            Bson::String("a:x".into()),
            Bson::String("v:y".into()),
            Bson::String("d:moe/dhe".into()),
        ]
    );
    // Without a filter the department's own key is scanned, as a string.
    let mut x = q();
    x.within(&Department::parse("moe").expect("a path"));
    let (f, _) = query_filter(&x);
    assert_eq!(f.get_str("q").ok(), Some("d:moe"));
}
