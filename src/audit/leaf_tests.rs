use super::*;
use serde_json::json;

fn jcs(text: &str) -> String {
    String::from_utf8(canonicalize_text(text).unwrap()).unwrap()
}

fn jcs_f64(bits: u64) -> String {
    String::from_utf8(canonicalize(&json!(f64::from_bits(bits))).unwrap()).unwrap()
}

// ---- RFC 8785 -------------------------------------------------------------------------

#[test]
fn jcs_numbers_follow_ecmascript() {
    // IEEE-754 bit patterns and their ECMAScript Number.prototype.toString forms.
    let cases = [
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"), // −0
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555555, "333333333.3333333"),
    ];
    for (bits, want) in cases {
        assert_eq!(jcs_f64(bits), want, "bits {bits:016x}");
    }
}

#[test]
fn jcs_number_texts() {
    assert_eq!(jcs("1.0"), "1");
    assert_eq!(jcs("1"), "1");
    assert_eq!(jcs("-0.0"), "0");
    assert_eq!(jcs("1E2"), "100");
    assert_eq!(jcs("12e1"), "120");
    assert_eq!(jcs("4.50"), "4.5");
    assert_eq!(jcs("2e-3"), "0.002");
    assert_eq!(jcs("1E30"), "1e+30");
    assert_eq!(jcs("0.000000000000000000000000001"), "1e-27");
    assert_eq!(jcs("333333333.33333329"), "333333333.3333333");
    assert_eq!(jcs("0.1"), "0.1");
    assert_eq!(jcs("-0"), "0");
    assert_eq!(jcs("1e21"), "1e+21");
    assert_eq!(jcs("1e20"), "100000000000000000000");
    assert_eq!(jcs("0.000001"), "0.000001");
    assert_eq!(jcs("0.0000001"), "1e-7");
    // Beyond 2^53 an integer is rounded to the nearest double, as JCS says.
    assert_eq!(jcs("9007199254740993"), "9007199254740992");
    assert_eq!(jcs("-9007199254740993"), "-9007199254740992");
    assert_eq!(jcs("18446744073709551615"), "18446744073709552000");
    assert_eq!(
        jcs("123456789012345678901234567890"),
        "1.2345678901234568e+29"
    );
    assert!(canonicalize_text("1e400").is_err());
}

#[test]
fn jcs_strings_are_escaped_as_rfc8785() {
    // Only `"`, `\` and controls below U+0020 are escaped; short forms where JSON has them,
    // lowercase \u00xx otherwise; `/`, DEL and non-ASCII stay as they are (UTF-8).
    assert_eq!(
        jcs(r#""\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/""#),
        "\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\""
    );
    assert_eq!(
        jcs(r#""\b\f\n\r\t\u0000\u001f\u007f é 😀""#),
        "\"\\b\\f\\n\\r\\t\\u0000\\u001f\u{7f} é 😀\""
    );
    // Lone surrogates are not Unicode text: refused.
    assert!(canonicalize_text(r#""\ud800""#).is_err());
    assert!(canonicalize_text(r#""\udc00x""#).is_err());
}

#[test]
fn jcs_whole_document() {
    // The shape of the RFC 8785 §3.2 example.
    let input = r#"{
        "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    }"#;
    assert_eq!(
        jcs(input),
        concat!(
            r#"{"literals":[null,true,false],"#,
            r#""numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"#,
            r#""string":"€$\u000f\nA'B\"\\\\\"/"}"#
        )
    );
}

#[test]
fn jcs_sorts_members_by_utf16_code_units() {
    // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB33 in UTF-16 (but
    // after it in UTF-8 or by code point).
    let input = r#"{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7,"":8,"a":{"b":1,"a":2}}"#;
    assert_eq!(
        jcs(input),
        "{\"\":8,\"\\r\":2,\"1\":4,\"a\":{\"a\":2,\"b\":1},\"\u{80}\":6,\"ö\":7,\"€\":1,\"😀\":5,\"\u{fb33}\":3}"
    );
}

#[test]
fn jcs_refuses_duplicate_members_and_trailing_text() {
    assert!(matches!(
        canonicalize_text(r#"{"a":1,"a":2}"#),
        Err(LeafError::Json(_))
    ));
    assert!(canonicalize_text(r#"{"x":{"a":1,"b":{"c":1,"c":1}}}"#).is_err());
    assert!(canonicalize_text(r#"{"a":1} {}"#).is_err());
    assert!(canonicalize_text("").is_err());
    // The same name at different levels is fine.
    assert_eq!(jcs(r#"{"a":{"a":1}}"#), r#"{"a":{"a":1}}"#);
}

#[test]
fn canonicalize_value_and_text_agree() {
    let text = r#"{ "b" : [1.0, {"z":null,"y":"é"}], "a" : -2.50 }"#;
    let value: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        canonicalize(&value).unwrap(),
        canonicalize_text(text).unwrap()
    );
    assert_eq!(jcs(text), r#"{"a":-2.5,"b":[1,{"y":"é","z":null}]}"#);
}

#[test]
fn imprecise_integers_are_found() {
    let v = json!({
        "ok": [9007199254740992u64, -9007199254740992i64, 1.5e300],
        "x/~y": {"big": 9007199254740993u64, "neg": -9007199254740993i64},
        "list": [0, 18446744073709551615u64]
    });
    let mut found = imprecise_integers(&v);
    found.sort();
    assert_eq!(found, ["/list/1", "/x~1~0y/big", "/x~1~0y/neg"]);
    assert!(imprecise_integers(&json!({"a": [1, 2.5, "x"]})).is_empty());
}

// ---- Salt and commitment ----------------------------------------------------------------

#[test]
fn salts() {
    let a = Salt::generate();
    let b = Salt::generate();
    assert_ne!(a, b);
    assert_eq!(a.as_bytes().len(), SALT_LEN);
    const { assert!(SALT_LEN >= 16) };
    assert_eq!(Salt::from_hex(&a.to_hex()).unwrap(), a);
    assert_eq!(a.to_hex().len(), 64);
    assert_eq!(format!("{a:?}"), "Salt(..)");
    let fixed = Salt::from_bytes(std::array::from_fn(|i| i as u8));
    assert_eq!(
        fixed.to_hex(),
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    );
    for bad in [
        "",
        "00",
        &"0".repeat(62),
        &"0".repeat(66),
        &"A".repeat(64),
        &"g".repeat(64),
        &format!("{}+", "0".repeat(63)),
    ] {
        assert!(Salt::from_hex(bad).is_err(), "{bad}");
    }
}

#[test]
fn commitment_is_the_documented_formula() {
    let salt = Salt::from_bytes([7; 32]);
    let dept = Department::parse("moe/dhe").unwrap();
    let jcs = br#"{"a":1}"#;
    let mut pre = Vec::new();
    pre.extend_from_slice(b"karmayogi-lrs/statement/v1");
    pre.push(0);
    pre.extend_from_slice(&[7; 32]);
    pre.extend_from_slice(&[0, 7]);
    pre.extend_from_slice(b"moe/dhe");
    pre.extend_from_slice(&[0, 0, 0, 7]);
    pre.extend_from_slice(jcs);
    assert_eq!(
        commitment(&salt, &dept, jcs).unwrap(),
        Hash(Sha256::digest(&pre).into())
    );
    // The root department is the empty path: a zero length and no bytes.
    let mut root_pre = pre[..27 + 32].to_vec();
    root_pre.extend_from_slice(&[0, 0, 0, 0, 0, 7]);
    root_pre.extend_from_slice(jcs);
    assert_eq!(
        commitment(&salt, &Department::root(), jcs).unwrap(),
        Hash(Sha256::digest(&root_pre).into())
    );
}

#[test]
fn commitment_fields_are_unambiguous() {
    // Moving bytes between the department and the statement changes the commitment.
    let salt = Salt::from_bytes([1; 32]);
    let a = commitment(&salt, &Department::parse("moe").unwrap(), b"d{}").unwrap();
    let b = commitment(&salt, &Department::parse("moed").unwrap(), b"{}").unwrap();
    assert_ne!(a, b);
}

// ---- Leaves -------------------------------------------------------------------------------

fn sample_erasure(n: usize) -> ErasureLeaf {
    ErasureLeaf {
        erased_us: 1_780_000_000_000_000,
        receipt: Hash([0xab; 32]),
        part: 0,
        parts: 1,
        indexes: (0..n as u64).map(|i| i * 3 + 1).collect(),
    }
}

#[test]
fn statement_leaf_layout_and_round_trip() {
    let leaf = StatementLeaf {
        commitment: Hash([0x11; 32]),
        stored_us: 0x0102030405060708,
    };
    let d = leaf.encode();
    assert_eq!(d.len(), STATEMENT_LEAF_SIZE);
    assert_eq!(d.len(), 42);
    assert_eq!(&d[..2], &[0x01, 0x01]);
    assert_eq!(&d[2..34], &[0x11; 32]);
    assert_eq!(&d[34..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(Leaf::parse(&d).unwrap(), Leaf::Statement(leaf));
    assert_eq!(leaf.leaf_hash(), merkle::leaf_hash(&d));
    assert_eq!(
        Leaf::Statement(leaf).leaf_hash().unwrap(),
        merkle::leaf_hash(&d)
    );
}

#[test]
fn erasure_leaf_layout_and_round_trip() {
    let leaf = ErasureLeaf {
        erased_us: 0x1122334455667788,
        receipt: Hash([0xcd; 32]),
        part: 1,
        parts: 3,
        indexes: vec![5, 0x0102030405060708],
    };
    let d = leaf.encode().unwrap();
    assert_eq!(d.len(), ERASURE_HEADER_SIZE + 16);
    assert_eq!(ERASURE_HEADER_SIZE, 48);
    assert_eq!(&d[..2], &[0x02, 0x01]);
    assert_eq!(&d[2..10], &0x1122334455667788u64.to_be_bytes());
    assert_eq!(&d[10..42], &[0xcd; 32]);
    assert_eq!(&d[42..48], &[0, 1, 0, 3, 0, 2]);
    assert_eq!(&d[48..56], &5u64.to_be_bytes());
    assert_eq!(&d[56..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(Leaf::parse(&d).unwrap(), Leaf::Erasure(leaf));
}

#[test]
fn erasure_leaf_size_limit() {
    assert_eq!(MAX_ERASED_PER_LEAF, 8185);
    let full = sample_erasure(MAX_ERASED_PER_LEAF);
    let d = full.encode().unwrap();
    assert!(d.len() <= MAX_ENTRY_SIZE);
    assert_eq!(d.len(), 65_528);
    assert_eq!(Leaf::parse(&d).unwrap(), Leaf::Erasure(full));
    assert!(matches!(
        sample_erasure(MAX_ERASED_PER_LEAF + 1).encode(),
        Err(LeafError::TooLarge { .. })
    ));
    // An entry that claims more, or is longer than a bundle allows, is refused.
    let mut d = sample_erasure(1).encode().unwrap();
    d[46..48].copy_from_slice(&8186u16.to_be_bytes());
    d.resize(ERASURE_HEADER_SIZE + 8 * 8186, 0);
    assert!(Leaf::parse(&d).is_err());
    assert!(matches!(
        Leaf::parse(&vec![0x02; MAX_ENTRY_SIZE + 1]),
        Err(LeafError::TooLarge { .. })
    ));
}

#[test]
fn split_erasures() {
    let receipt = Hash([9; 32]);
    let n = 2 * MAX_ERASED_PER_LEAF + 10;
    let mut indexes: Vec<u64> = (0..n as u64).rev().map(|i| i * 2).collect();
    indexes.swap(3, 700);
    let leaves = ErasureLeaf::split(42, receipt, indexes).unwrap();
    assert_eq!(leaves.len(), 3);
    let mut all = Vec::new();
    for (k, leaf) in leaves.iter().enumerate() {
        assert_eq!((leaf.part as usize, leaf.parts), (k, 3));
        assert_eq!((leaf.erased_us, leaf.receipt), (42, receipt));
        let d = leaf.encode().unwrap();
        assert!(d.len() <= MAX_ENTRY_SIZE);
        assert_eq!(Leaf::parse(&d).unwrap(), Leaf::Erasure(leaf.clone()));
        all.extend_from_slice(&leaf.indexes);
    }
    assert_eq!(leaves[2].indexes.len(), 10);
    assert_eq!(all, (0..n as u64).map(|i| i * 2).collect::<Vec<_>>());
    assert_eq!(ErasureLeaf::split(1, receipt, vec![7]).unwrap().len(), 1);
    assert!(ErasureLeaf::split(1, receipt, vec![]).is_err());
    assert!(ErasureLeaf::split(1, receipt, vec![3, 1, 3]).is_err());
}

#[test]
fn parse_is_strict() {
    let stmt = StatementLeaf {
        commitment: Hash([0x22; 32]),
        stored_us: 1,
    }
    .encode();
    let era = sample_erasure(3).encode().unwrap();

    assert_eq!(Leaf::parse(&[]), Err(LeafError::Malformed("empty")));
    assert!(matches!(Leaf::parse(&[0x01]), Err(LeafError::Malformed(_))));
    for t in [0x00, 0x03, 0x7f, 0xff] {
        let mut d = stmt.clone();
        d[0] = t;
        assert_eq!(Leaf::parse(&d), Err(LeafError::UnknownType(t)));
    }
    for (d, t) in [(&stmt, 0x01), (&era, 0x02)] {
        for v in [0x00, 0x02, 0xff] {
            let mut d = d.clone();
            d[1] = v;
            assert_eq!(
                Leaf::parse(&d),
                Err(LeafError::UnknownVersion {
                    leaf_type: t,
                    version: v
                })
            );
        }
    }
    // Wrong lengths.
    assert!(Leaf::parse(&stmt[..41]).is_err());
    let mut long = stmt.clone();
    long.push(0);
    assert!(Leaf::parse(&long).is_err());
    assert!(Leaf::parse(&era[..47]).is_err());
    assert!(Leaf::parse(&era[..era.len() - 1]).is_err());
    let mut long = era.clone();
    long.extend_from_slice(&[0; 8]);
    assert!(Leaf::parse(&long).is_err());
    // Erasure fields.
    let with = |at: usize, bytes: &[u8]| {
        let mut d = era.clone();
        d[at..at + bytes.len()].copy_from_slice(bytes);
        Leaf::parse(&d)
    };
    assert!(with(42, &[0, 1, 0, 1]).is_err()); // part = parts
    assert!(with(42, &[0, 0, 0, 0]).is_err()); // parts = 0
    assert!(with(42, &[0, 0, 0, 2]).is_ok());
    assert!(with(56, &1u64.to_be_bytes()).is_err()); // not increasing (1, 1, 7)
    assert!(with(56, &0u64.to_be_bytes()).is_err()); // decreasing
    let mut empty = era[..ERASURE_HEADER_SIZE].to_vec();
    empty[46..48].copy_from_slice(&[0, 0]);
    assert!(matches!(Leaf::parse(&empty), Err(LeafError::Erasure(_))));
    // Encoding refuses what parsing would refuse.
    let mut bad = sample_erasure(2);
    bad.indexes.reverse();
    assert!(bad.encode().is_err());
    bad.indexes.clear();
    assert!(bad.encode().is_err());
    let mut bad = sample_erasure(2);
    bad.part = 1;
    assert!(bad.encode().is_err());
}

#[test]
fn parse_encode_round_trip_on_every_accepted_mutation() {
    // Flip each byte of valid entries; whatever still parses must re-encode identically.
    let stmt = StatementLeaf {
        commitment: Hash([0x33; 32]),
        stored_us: 99,
    }
    .encode();
    let era = sample_erasure(4).encode().unwrap();
    for d in [stmt, era] {
        for i in 0..d.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut m = d.clone();
                m[i] ^= x;
                if let Ok(leaf) = Leaf::parse(&m) {
                    assert_eq!(leaf.encode().unwrap(), m);
                }
            }
        }
    }
}

// ---- Recomputing statement leaves ---------------------------------------------------------

const EXAMPLE_STATEMENT: &str = r#"{
  "id": "3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b1a",
  "actor": {"objectType": "Agent", "mbox": "mailto:learner@example.gov.in"},
  "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
  "object": {"id": "https://example.gov.in/course/ethics-101"},
  "result": {"score": {"scaled": 1.0}, "completion": true},
  "stored": "2026-12-01T04:30:00.123456Z",
  "timestamp": "2026-12-01T04:29:58.000000Z",
  "authority": {"objectType": "Agent", "account": {"homePage": "https://example.gov.in", "name": "moe-dhe"}},
  "version": "1.0.3"
}"#;

const EXAMPLE_JCS: &str = concat!(
    r#"{"actor":{"mbox":"mailto:learner@example.gov.in","objectType":"Agent"},"#,
    r#""authority":{"account":{"homePage":"https://example.gov.in","name":"moe-dhe"},"objectType":"Agent"},"#,
    r#""id":"3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b1a","#,
    r#""object":{"id":"https://example.gov.in/course/ethics-101"},"#,
    r#""result":{"completion":true,"score":{"scaled":1}},"#,
    r#""stored":"2026-12-01T04:30:00.123456Z","#,
    r#""timestamp":"2026-12-01T04:29:58.000000Z","#,
    r#""verb":{"id":"http://adlnet.gov/expapi/verbs/completed"},"#,
    r#""version":"1.0.3"}"#
);
const EXAMPLE_SALT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const EXAMPLE_STORED_US: u64 = 1_796_099_400_123_456;
const EXAMPLE_COMMITMENT: &str = "17865dd56387948eae91e079187acf63f12e6157b5939e6aaa48d221bdbb9144";
const EXAMPLE_ENTRY: &str =
    "010117865dd56387948eae91e079187acf63f12e6157b5939e6aaa48d221bdbb91440006618afab9c440";
const EXAMPLE_LEAF_HASH: &str = "eb3969220ff5efb4cf084de59a44dc22f18acad2f6561188060a928373f45751";

/// The worked example of docs/AUDIT.md §6.5: if this fails, fix the doc with the code.
#[test]
fn worked_example_of_the_doc() {
    let salt = Salt::from_hex(EXAMPLE_SALT).unwrap();
    let dept = Department::parse("moe/dhe").unwrap();
    let jcs = canonicalize_text(EXAMPLE_STATEMENT).unwrap();
    assert_eq!(String::from_utf8(jcs.clone()).unwrap(), EXAMPLE_JCS);
    let value: Value = serde_json::from_str(EXAMPLE_STATEMENT).unwrap();
    assert_eq!(stored_us_of(&value).unwrap(), EXAMPLE_STORED_US);
    let c = commitment(&salt, &dept, &jcs).unwrap();
    let (entry, hash) = recompute(EXAMPLE_STATEMENT, &salt, &dept, EXAMPLE_STORED_US).unwrap();
    println!(
        "commitment {c}\nentry {}\nleaf hash {hash}",
        hex::encode(&entry)
    );
    assert_eq!(c.to_hex(), EXAMPLE_COMMITMENT);
    assert_eq!(hex::encode(&entry), EXAMPLE_ENTRY);
    assert_eq!(hash.to_hex(), EXAMPLE_LEAF_HASH);
    let leaf = statement_leaf(&value, &salt, &dept, EXAMPLE_STORED_US).unwrap();
    assert_eq!(leaf.encode(), entry);
    assert_eq!(leaf.leaf_hash(), hash);
}

fn example_hash(statement: &str, salt: &Salt, dept: &str, stored_us: u64) -> Hash {
    recompute(
        statement,
        salt,
        &Department::parse(dept).unwrap(),
        stored_us,
    )
    .unwrap()
    .1
}

#[test]
fn every_input_changes_the_leaf_hash() {
    let salt = Salt::from_hex(EXAMPLE_SALT).unwrap();
    let base = example_hash(EXAMPLE_STATEMENT, &salt, "moe/dhe", EXAMPLE_STORED_US);

    // Any change to a byte of the canonical statement.
    let jcs = EXAMPLE_JCS.as_bytes();
    let mut changed = 0;
    for i in 0..jcs.len() {
        for x in [0x01u8, 0x20] {
            let mut m = jcs.to_vec();
            m[i] ^= x;
            let Ok(text) = String::from_utf8(m) else {
                continue;
            };
            // Only mutations that leave valid JSON with a different canonical form count.
            match canonicalize_text(&text) {
                Ok(c) if c != jcs => {
                    assert_ne!(
                        example_hash(&text, &salt, "moe/dhe", EXAMPLE_STORED_US),
                        base
                    );
                    changed += 1;
                }
                _ => {}
            }
        }
    }
    assert!(changed > 300, "{changed}");

    // Any bit of the salt.
    for i in 0..SALT_LEN {
        let mut bytes = *salt.as_bytes();
        bytes[i] ^= 0x01;
        let other = Salt::from_bytes(bytes);
        assert_ne!(
            example_hash(EXAMPLE_STATEMENT, &other, "moe/dhe", EXAMPLE_STORED_US),
            base
        );
    }
    // The department.
    for dept in ["/", "moe", "moe/dhf", "moe/dhe/ugc", "moa/dhe"] {
        assert_ne!(
            example_hash(EXAMPLE_STATEMENT, &salt, dept, EXAMPLE_STORED_US),
            base
        );
    }
    // Stored.
    for stored in [0, EXAMPLE_STORED_US - 1, EXAMPLE_STORED_US + 1, u64::MAX] {
        assert_ne!(
            example_hash(EXAMPLE_STATEMENT, &salt, "moe/dhe", stored),
            base
        );
    }
}

#[test]
fn formatting_and_member_order_do_not_change_the_leaf_hash() {
    let salt = Salt::from_hex(EXAMPLE_SALT).unwrap();
    let base = example_hash(EXAMPLE_STATEMENT, &salt, "moe/dhe", EXAMPLE_STORED_US);
    assert_eq!(
        example_hash(EXAMPLE_JCS, &salt, "moe/dhe", EXAMPLE_STORED_US),
        base
    );
    // Reordered members, other white space, other spellings of the same numbers and
    // strings.
    let other = "\t{\"version\":\"1.0.3\",\"verb\":{\"id\":\"http:\\/\\/adlnet.gov/expapi/verbs/completed\"},\r\n\
        \"result\" : { \"completion\" : true , \"score\" : { \"scaled\" : 10e-1 } },\n\
        \"object\":{\"id\":\"https://example.gov.in/course/ethics-101\"},\n\
        \"timestamp\":\"2026-12-01T04:29:58.000000Z\",\"stored\":\"2026-12-01T04:30:00.123456Z\",\n\
        \"id\":\"3f0c2a5e-8d1b-4c7a-9e2f-6b5d4a3c2b1a\",\n\
        \"authority\":{\"account\":{\"name\":\"moe-dhe\",\"homePage\":\"https://example.gov.in\"},\"objectType\":\"Agent\"},\n\
        \"actor\":{\"mbox\":\"\\u006dailto:learner@example.gov.in\",\"objectType\":\"Agent\"}}  ";
    assert_eq!(canonicalize_text(other).unwrap(), EXAMPLE_JCS.as_bytes());
    assert_eq!(
        example_hash(other, &salt, "moe/dhe", EXAMPLE_STORED_US),
        base
    );
    // 1.0 and 1 are the same JCS number; "1" (a string) is not.
    let one = |v: &str| {
        example_hash(
            &EXAMPLE_STATEMENT.replace("\"scaled\": 1.0", &format!("\"scaled\": {v}")),
            &salt,
            "moe/dhe",
            EXAMPLE_STORED_US,
        )
    };
    assert_eq!(one("1"), base);
    assert_eq!(one("1.000"), base);
    assert_eq!(one("1e0"), base);
    assert_ne!(one("\"1\""), base);
    assert_ne!(one("0.9999"), base);
}

#[test]
fn recompute_refuses_what_jcs_refuses() {
    let salt = Salt::from_bytes([0; 32]);
    let root = Department::root();
    assert!(recompute(r#"{"a":1,"a":1}"#, &salt, &root, 0).is_err());
    assert!(recompute(r#"{"a":"\udead"}"#, &salt, &root, 0).is_err());
    assert!(recompute(r#"{"a":1e999}"#, &salt, &root, 0).is_err());
    assert!(recompute("{", &salt, &root, 0).is_err());
}

#[test]
fn stored_time() {
    assert_eq!(
        stored_us_of(&json!({"stored": "1970-01-01T00:00:00.000001Z"})),
        Ok(1)
    );
    assert_eq!(
        stored_us_of(&json!({"stored": "2026-12-01T10:00:00.123456+05:30"})),
        Ok(EXAMPLE_STORED_US)
    );
    assert!(stored_us_of(&json!({})).is_err());
    assert!(stored_us_of(&json!({"stored": 5})).is_err());
    assert!(stored_us_of(&json!({"stored": "yesterday"})).is_err());
    assert!(stored_us_of(&json!({"stored": "1969-12-31T23:59:59Z"})).is_err());
}

/// The worked example in docs/AUDIT.md §6.7 shows exactly the values the code computes.
#[test]
fn the_doc_shows_the_worked_example() {
    let doc = include_str!("../../docs/AUDIT.md");
    let section = &doc[doc.find("### 6.7 Worked example").expect("section 6.7")..];
    for value in [
        EXAMPLE_SALT,
        EXAMPLE_COMMITMENT,
        EXAMPLE_ENTRY,
        EXAMPLE_LEAF_HASH,
        "`moe/dhe`",
        "`000001e0`",
        "1796099400123456 µs = `0006618afab9c440`",
        "480 bytes",
    ] {
        assert!(section.contains(value), "docs/AUDIT.md §6.7 lacks {value}");
    }
    assert_eq!(EXAMPLE_JCS.len(), 0x1e0);
    assert_eq!(
        hex::encode(EXAMPLE_STORED_US.to_be_bytes()),
        "0006618afab9c440"
    );
    // The canonical form, as wrapped in the doc, joins back to EXAMPLE_JCS.
    let block = section
        .split("```\n")
        .nth(2)
        .expect("the canonical form's code block");
    assert_eq!(block.replace('\n', ""), EXAMPLE_JCS);
    // The statement's text in the doc is the one the test canonicalises.
    let json = section
        .split("```json\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert_eq!(json, EXAMPLE_STATEMENT.to_owned() + "\n");
}

/// The log's own RFC 8785 writer against a general one (serde_json_canonicalizer), on
/// random values: names and strings from every Unicode range that sorts or escapes
/// differently (controls, quotes, non-BMP against U+E000–U+FFFF), integers around 2^53
/// and 2^64, doubles of every magnitude.
#[test]
fn jcs_writer_agrees_with_a_reference_implementation() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(8785);
    fn text(rng: &mut rand::rngs::StdRng) -> String {
        const PICK: [&str; 14] = [
            "a",
            "Z",
            "\"",
            "\\",
            "\u{0}",
            "\u{1f}",
            "\n",
            "\u{7f}",
            "é",
            "\u{e000}",
            "\u{fffd}",
            "😀",
            "\u{10000}",
            "/",
        ];
        (0..rng.gen_range(0..6))
            .map(|_| PICK[rng.gen_range(0..PICK.len())])
            .collect()
    }
    fn value(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
        match rng.gen_range(0..if depth > 3 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.gen()),
            2 => {
                let around = [0u64, 1, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, u64::MAX];
                let base = around[rng.gen_range(0..around.len())];
                serde_json::json!(base.wrapping_add(rng.gen_range(0..3)))
            }
            3 => serde_json::json!(-(rng.gen_range(0..(1i64 << 55)))),
            4 => {
                let f: f64 = rng.gen::<f64>() * 10f64.powi(rng.gen_range(-30..30));
                serde_json::json!(if rng.gen() { f } else { -f })
            }
            5 => Value::String(text(rng)),
            6 => Value::Array(
                (0..rng.gen_range(0..4))
                    .map(|_| value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.gen_range(0..5))
                    .map(|_| (text(rng), value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }
    for _ in 0..20_000 {
        let v = value(&mut rng, 0);
        let ours = canonicalize(&v).unwrap();
        let reference = serde_json_canonicalizer::to_vec(&v).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&reference),
            "{v}"
        );
    }
    // Every double's corner: zeros, the smallest and largest, exponents at the switch
    // between plain and exponent notation.
    for f in [
        0.0,
        -0.0,
        5e-324,
        f64::MAX,
        1e21,
        1e-7,
        1e-6,
        123e18,
        0.1,
        1.0 / 3.0,
    ] {
        let v = serde_json::json!(f);
        assert_eq!(
            canonicalize(&v).unwrap(),
            serde_json_canonicalizer::to_vec(&v).unwrap(),
            "{f}"
        );
    }
}
