//! Attachments (Data 2.4.11; Communication 1.5.1 application/json with fileUrl, 1.5.2
//! multipart/mixed requests and responses, 2.1.3 `attachments` parameter).
use crate::harness::{new_id, statement, Lrs, Response, VERSIONS};
use crate::statements::{
    activity_iri, assert_400_at, assert_not_stored, fetch, id_of, ids_of, post_ok, statement_about,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Hex SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An Attachment object describing `content`.
pub(crate) fn attachment_for(content: &[u8], content_type: &str) -> Value {
    json!({
        "usageType": "http://example.com/attachment-usage/test",
        "display": {"en-US": "test attachment"},
        "description": {"en-US": "an attachment of the conformance tests"},
        "contentType": content_type,
        "length": content.len(),
        "sha2": sha256(content)
    })
}

/// One body part to send.
pub(crate) struct OutPart {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OutPart {
    /// The statements part.
    pub(crate) fn json(v: &Value) -> OutPart {
        OutPart {
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: v.to_string().into_bytes(),
        }
    }

    /// An attachment part as Communication 1.5.2 prescribes it.
    pub(crate) fn attachment(content: &[u8], content_type: &str) -> OutPart {
        OutPart {
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                ("Content-Transfer-Encoding".into(), "binary".into()),
                ("X-Experience-API-Hash".into(), sha256(content)),
            ],
            body: content.to_vec(),
        }
    }

    fn without(mut self, header: &str) -> OutPart {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(header));
        self
    }

    fn with_header(mut self, name: &str, value: &str) -> OutPart {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A multipart/mixed body: (Content-Type header value, bytes).
pub(crate) fn multipart(parts: &[OutPart]) -> (String, Vec<u8>) {
    let boundary = format!("conformance-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        for (k, v) in &p.headers {
            body.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&p.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary={boundary}"), body)
}

/// POSTs a multipart/mixed statements request.
pub(crate) fn post_multipart(lrs: &Lrs, v: &str, parts: &[OutPart]) -> Response {
    let (ct, body) = multipart(parts);
    lrs.post("/statements").version(v).body(&ct, body).send()
}

/// One part of a multipart response.
#[derive(Debug)]
pub(crate) struct InPart {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl InPart {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Splits a multipart/mixed response (RFC 2046) into its parts; panics on malformed ones.
pub(crate) fn parse_multipart(r: &Response) -> Vec<InPart> {
    let ct = r.assert_header("Content-Type").to_owned();
    assert!(
        ct.to_ascii_lowercase().starts_with("multipart/mixed"),
        "expected a multipart/mixed response\n{}",
        r.describe()
    );
    let boundary = ct
        .split(';')
        .map(str::trim)
        .find_map(|p| {
            p.strip_prefix("boundary=")
                .or_else(|| p.strip_prefix("Boundary="))
        })
        .unwrap_or_else(|| panic!("no boundary in `{ct}`"))
        .trim_matches('"')
        .to_owned();
    let delimiter = format!("--{boundary}").into_bytes();
    let body = &r.body;
    let mut pos = find(body, &delimiter, 0)
        .unwrap_or_else(|| panic!("no boundary in the body\n{}", r.describe()));
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        if body[pos..].starts_with(b"--") {
            break;
        }
        // Transport padding, then CRLF.
        let line_end = find(body, b"\r\n", pos).expect("CRLF after a boundary");
        let start = line_end + 2;
        let mut close = Vec::from(&b"\r\n"[..]);
        close.extend_from_slice(&delimiter);
        let end = find(body, &close, start)
            .unwrap_or_else(|| panic!("unterminated part\n{}", r.describe()));
        let part = &body[start..end];
        let (head, content) = match find(part, b"\r\n\r\n", 0) {
            Some(i) => (&part[..i], &part[i + 4..]),
            None if part.starts_with(b"\r\n") => (&part[..0], &part[2..]),
            None => panic!("part without header block\n{}", r.describe()),
        };
        let headers = String::from_utf8_lossy(head)
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        parts.push(InPart {
            headers,
            body: content.to_vec(),
        });
        pos = end + 2;
    }
    parts
}

/// The parts of a multipart response after the first, as (hash, content type, content).
fn attachment_parts(parts: &[InPart]) -> Vec<(String, String, Vec<u8>)> {
    parts[1..]
        .iter()
        .map(|p| {
            (
                p.header("X-Experience-API-Hash")
                    .unwrap_or_else(|| panic!("attachment part without hash: {p:?}"))
                    .to_ascii_lowercase(),
                p.header("Content-Type").unwrap_or_default().to_owned(),
                p.body.clone(),
            )
        })
        .collect()
}

fn get_with_attachments(lrs: &Lrs, v: &str, param: (&str, &str), on: &str) -> Response {
    lrs.get("/statements")
        .query(param.0, param.1)
        .query("attachments", on)
        .version(v)
        .send()
}

// ----- multipart requests ------------------------------------------------------------------

/// Communication 1.5.2 (XAPI-00130..00135): a multipart/mixed POST or PUT — the statement
/// first as application/json, then each attachment with X-Experience-API-Hash and
/// Content-Transfer-Encoding: binary — is accepted; GET ?attachments=true answers
/// multipart/mixed with the statement first and the attachment's bytes with its hash;
/// attachments=false (the default) answers application/json with the metadata only.
#[test]
fn comm_1_5_2_multipart_statement_with_attachment_round_trip() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let content = b"here is a simple attachment \xe2\x9c\x93".to_vec();
        let mut s = statement();
        s["attachments"] = json!([attachment_for(&content, "text/plain")]);
        let r = post_multipart(
            &lrs,
            v,
            &[
                OutPart::json(&s),
                OutPart::attachment(&content, "text/plain"),
            ],
        );
        r.assert_status(200).assert_version(v);
        assert_eq!(ids_of(&r), vec![id_of(&s)]);

        // PUT takes the same form.
        let binary: Vec<u8> = (0u8..=255).chain([13, 10, 45, 45]).collect();
        let mut p = statement();
        p["attachments"] = json!([attachment_for(&binary, "application/octet-stream")]);
        let (ct, body) = multipart(&[
            OutPart::json(&p),
            OutPart::attachment(&binary, "application/octet-stream"),
        ]);
        lrs.put("/statements")
            .query("statementId", &id_of(&p))
            .version(v)
            .body(&ct, body)
            .send()
            .assert_status(204);

        for (st, bytes, ctype) in [
            (&s, &content, "text/plain"),
            (&p, &binary, "application/octet-stream"),
        ] {
            let id = id_of(st);
            let r = get_with_attachments(&lrs, v, ("statementId", &id), "true");
            r.assert_status(200).assert_version(v);
            let parts = parse_multipart(&r);
            assert!(
                parts[0]
                    .header("Content-Type")
                    .is_some_and(|c| c.starts_with("application/json")),
                "the first part is the statement as application/json: {:?}",
                parts[0]
            );
            let got: Value = serde_json::from_slice(&parts[0].body).expect("JSON first part");
            assert_eq!(got["id"], json!(id));
            assert_eq!(got["attachments"], st["attachments"]);
            let atts = attachment_parts(&parts);
            assert_eq!(atts.len(), 1, "{v}: one attachment part");
            assert_eq!(atts[0].0, sha256(bytes));
            assert!(atts[0].1.starts_with(ctype), "{:?}", atts[0].1);
            assert_eq!(&atts[0].2, bytes, "{v}: attachment bytes intact");
            assert!(
                parts[1]
                    .header("Content-Transfer-Encoding")
                    .is_some_and(|c| c.eq_ignore_ascii_case("binary")),
                "{:?}",
                parts[1]
            );

            for off in [Some("false"), None] {
                let mut req = lrs.get("/statements").query("statementId", &id).version(v);
                if let Some(o) = off {
                    req = req.query("attachments", o);
                }
                let r = req.send();
                r.assert_status(200);
                assert!(
                    r.assert_header("Content-Type")
                        .starts_with("application/json"),
                    "{}",
                    r.describe()
                );
                assert_eq!(r.json()["attachments"], st["attachments"]);
            }
        }
    }
}

/// Communication 1.5.2 (parts matched by SHA-2 only; one copy of an attachment used by
/// several statements): a batch sharing one attachment sends its part once, parts in
/// any order; a query with attachments=true returns the StatementResult first and each
/// attachment once.
#[test]
fn comm_1_5_2_batch_attachments_matched_by_hash_each_sent_once() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let activity = activity_iri();
        let shared = format!("shared attachment {}", new_id()).into_bytes();
        let own = format!("own attachment {}", new_id()).into_bytes();
        let mut a = statement_about(&activity);
        a["attachments"] = json!([attachment_for(&shared, "text/plain")]);
        let mut b = statement_about(&activity);
        b["attachments"] = json!([attachment_for(&shared, "text/plain")]);
        let mut c = statement_about(&activity);
        c["attachments"] = json!([
            attachment_for(&own, "text/plain"),
            attachment_for(&shared, "text/plain")
        ]);
        let r = post_multipart(
            &lrs,
            v,
            &[
                OutPart::json(&json!([a, b, c])),
                OutPart::attachment(&own, "text/plain"),
                OutPart::attachment(&shared, "text/plain"),
            ],
        );
        r.assert_status(200);
        assert_eq!(ids_of(&r), vec![id_of(&a), id_of(&b), id_of(&c)]);

        let r = get_with_attachments(&lrs, v, ("activity", &activity), "true");
        r.assert_status(200);
        let parts = parse_multipart(&r);
        let result: Value = serde_json::from_slice(&parts[0].body).expect("JSON first part");
        assert_eq!(result["statements"].as_array().map(Vec::len), Some(3));
        let mut atts = attachment_parts(&parts);
        atts.sort();
        let mut want = vec![sha256(&shared), sha256(&own)];
        want.sort();
        assert_eq!(
            atts.iter().map(|a| a.0.clone()).collect::<Vec<_>>(),
            want,
            "{v}: each attachment exactly once"
        );
        for (hash, _, bytes) in &atts {
            assert_eq!(&sha256(bytes), hash);
        }
    }
}

/// Communication 1.5.2 (multipart/mixed as RFC 2046 defines it): a quoted boundary, a
/// preamble and an epilogue, header names in another case, a JSON part with a charset,
/// and an attachment part without Content-Type (SHOULD, not MUST) are all accepted.
#[test]
fn comm_1_5_2_multipart_syntax_variants_accepted() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let content = format!("variant content {}", new_id()).into_bytes();
        let mut s = statement();
        s["attachments"] = json!([attachment_for(&content, "text/plain")]);
        let boundary = format!("b-{}", uuid::Uuid::new_v4().simple());
        let mut body = Vec::new();
        body.extend_from_slice(b"This is a preamble, to be ignored.\r\n");
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(b"content-type: application/json; charset=UTF-8\r\n\r\n");
        body.extend_from_slice(s.to_string().as_bytes());
        body.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!(
                "x-experience-api-hash: {}\r\ncontent-transfer-encoding: binary\r\n\r\n",
                sha256(&content)
            )
            .as_bytes(),
        );
        body.extend_from_slice(&content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\nAn epilogue.\r\n").as_bytes());
        let r = lrs
            .post("/statements")
            .version(v)
            .body(&format!("multipart/mixed; boundary=\"{boundary}\""), body)
            .send();
        r.assert_status(200);
        let r = get_with_attachments(&lrs, v, ("statementId", &id_of(&s)), "true");
        let parts = parse_multipart(&r);
        assert_eq!(attachment_parts(&parts)[0].2, content, "{v}");
    }
}

/// Communication 1.5.2 (LRS requirements, XAPI-00129): an attachment without fileUrl and
/// without a part carrying its content is rejected; nothing is stored.
#[test]
fn comm_1_5_2_missing_attachment_part_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let content = b"never sent".to_vec();
        let mut s = statement();
        s["attachments"] = json!([attachment_for(&content, "text/plain")]);
        let r = post_multipart(&lrs, v, &[OutPart::json(&s)]);
        r.assert_error(400);
        r.assert_version(v);
        assert_not_stored(&lrs, &id_of(&s));

        // Two attachments, one part.
        let other = b"sent".to_vec();
        let mut s = statement();
        s["attachments"] = json!([
            attachment_for(&other, "text/plain"),
            attachment_for(&content, "text/plain")
        ]);
        let r = post_multipart(
            &lrs,
            v,
            &[OutPart::json(&s), OutPart::attachment(&other, "text/plain")],
        );
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));
    }
}

/// Communication 1.5.2 (parts are attachments of the statements, XAPI-00128): a part
/// that matches no attachment's sha2 is rejected; nothing is stored.
#[test]
fn comm_1_5_2_extra_attachment_part_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let content = b"declared".to_vec();
        let stray = b"not declared anywhere".to_vec();
        let mut s = statement();
        s["attachments"] = json!([attachment_for(&content, "text/plain")]);
        let r = post_multipart(
            &lrs,
            v,
            &[
                OutPart::json(&s),
                OutPart::attachment(&content, "text/plain"),
                OutPart::attachment(&stray, "text/plain"),
            ],
        );
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));
        // A statement without attachments and a part.
        let s = statement();
        let r = post_multipart(
            &lrs,
            v,
            &[OutPart::json(&s), OutPart::attachment(&stray, "text/plain")],
        );
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));
    }
}

/// Communication 1.5.2 (X-Experience-API-Hash in every part after the first; raw data
/// matched by its SHA-2): a part whose content does not hash to its declared hash, or
/// without the hash header, is rejected; nothing is stored.
#[test]
fn comm_1_5_2_hash_mismatch_or_missing_hash_header_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let content = b"the declared content".to_vec();
        let mut s = statement();
        s["attachments"] = json!([attachment_for(&content, "text/plain")]);

        let tampered = OutPart::attachment(&content, "text/plain");
        let tampered = OutPart {
            body: b"some other content".to_vec(),
            ..tampered
        };
        let r = post_multipart(&lrs, v, &[OutPart::json(&s), tampered]);
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));

        let no_hash = OutPart::attachment(&content, "text/plain").without("X-Experience-API-Hash");
        let r = post_multipart(&lrs, v, &[OutPart::json(&s), no_hash]);
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));

        let wrong_hash = OutPart::attachment(&content, "text/plain")
            .with_header("X-Experience-API-Hash", &sha256(b"something else"));
        let r = post_multipart(&lrs, v, &[OutPart::json(&s), wrong_hash]);
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));

        // The statements part must come first, as application/json.
        let first_not_json = OutPart::json(&s).with_header("Content-Type", "text/plain");
        let r = post_multipart(
            &lrs,
            v,
            &[first_not_json, OutPart::attachment(&content, "text/plain")],
        );
        r.assert_error(400);
        let r = post_multipart(
            &lrs,
            v,
            &[
                OutPart::attachment(&content, "text/plain"),
                OutPart::json(&s),
            ],
        );
        r.assert_error(400);
        assert_not_stored(&lrs, &id_of(&s));

        // The correct request is then accepted.
        post_multipart(
            &lrs,
            v,
            &[
                OutPart::json(&s),
                OutPart::attachment(&content, "text/plain"),
            ],
        )
        .assert_status(200);
        fetch(&lrs, v, &id_of(&s));
    }
}

// ----- application/json requests -----------------------------------------------------------

/// Communication 1.5.1 (an LRS MUST accept application/json batches whose attachments all
/// have a fileUrl; 2.0 likewise): accepted, stored as sent; multipart/mixed with no parts
/// is accepted too (1.5.2, SHOULD*).
#[test]
fn comm_1_5_1_file_url_only_attachments_accepted_as_json() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let mut att = attachment_for(b"remote content", "text/plain");
        att["fileUrl"] = json!("http://example.com/files/remote.txt");
        let mut a = statement();
        a["attachments"] = json!([att]);
        let mut b = statement();
        b["attachments"] = json!([att, att]);
        post_ok(&lrs, v, &json!([a, b]));
        assert_eq!(fetch(&lrs, v, &id_of(&a))["attachments"], a["attachments"]);
        assert_eq!(fetch(&lrs, v, &id_of(&b))["attachments"], b["attachments"]);

        let mut c = statement();
        c["attachments"] = json!([att]);
        post_multipart(&lrs, v, &[OutPart::json(&c)]).assert_status(200);
        fetch(&lrs, v, &id_of(&c));

        // attachments=true on it: multipart, the statement first, no attachment part.
        let r = get_with_attachments(&lrs, v, ("statementId", &id_of(&c)), "true");
        r.assert_status(200);
        let parts = parse_multipart(&r);
        let got: Value = serde_json::from_slice(&parts[0].body).expect("JSON first part");
        assert_eq!(got["id"], json!(id_of(&c)));
        assert_eq!(parts.len(), 1, "no content to send: {parts:?}");
    }
}

/// Communication 1.5.1 / 1.5.2 (an application/json request needs a fileUrl for every
/// attachment): an attachment without fileUrl in application/json is rejected.
#[test]
fn comm_1_5_1_json_attachment_without_file_url_rejected() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let good = {
            let mut s = statement();
            let mut att = attachment_for(b"x", "text/plain");
            att["fileUrl"] = json!("http://example.com/files/x.txt");
            s["attachments"] = json!([att]);
            s
        };
        let mut bad = statement();
        bad["attachments"] = json!([attachment_for(b"no url", "text/plain")]);
        let r = lrs
            .post("/statements")
            .version(v)
            .json(&json!([good, bad]))
            .send();
        assert_400_at(&r, &["/1/attachments/0", "/1/attachments/0/fileUrl"]);
        assert_not_stored(&lrs, &id_of(&good));
        assert_not_stored(&lrs, &id_of(&bad));
    }
}

/// Data 2.4.11 (Attachment object: usageType IRI, display Language Map, contentType,
/// length integer, sha2 string required; fileUrl an IRL): invalid metadata is rejected.
#[test]
fn data_2_4_11_attachment_object_validated() {
    let lrs = Lrs::start();
    for v in VERSIONS {
        let base = {
            let mut att = attachment_for(b"x", "text/plain");
            att["fileUrl"] = json!("http://example.com/files/x.txt");
            att
        };
        let mut cases: Vec<(Value, Vec<&str>)> = Vec::new();
        for prop in ["usageType", "display", "contentType", "length", "sha2"] {
            let mut att = base.clone();
            att.as_object_mut().unwrap().remove(prop);
            cases.push((att, vec!["/0/attachments/0", "/0/attachments/0/{prop}"]));
        }
        let mut att = base.clone();
        att["usageType"] = json!("not an iri");
        cases.push((att, vec!["/0/attachments/0/usageType"]));
        let mut att = base.clone();
        att["length"] = json!("1");
        cases.push((att, vec!["/0/attachments/0/length"]));
        let mut att = base.clone();
        att["length"] = json!(1.5);
        cases.push((att, vec!["/0/attachments/0/length"]));
        let mut att = base.clone();
        att["display"] = json!("text");
        cases.push((att, vec!["/0/attachments/0/display"]));
        let mut att = base.clone();
        att["fileUrl"] = json!("not an irl");
        cases.push((att, vec!["/0/attachments/0/fileUrl"]));
        let mut att = base.clone();
        att["sha2"] = json!(42);
        cases.push((att, vec!["/0/attachments/0/sha2"]));
        for (att, paths) in cases {
            let missing = att.as_object().map(|o| {
                ["usageType", "display", "contentType", "length", "sha2"]
                    .into_iter()
                    .find(|k| !o.contains_key(*k))
            });
            let paths: Vec<String> = paths
                .iter()
                .map(|p| p.replace("{prop}", missing.flatten().unwrap_or("")))
                .collect();
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            let mut s = statement();
            s["attachments"] = json!([att]);
            let r = lrs.post("/statements").version(v).json(&json!([s])).send();
            assert_400_at(&r, &paths);
            assert_not_stored(&lrs, &id_of(&s));
        }
        let mut s = statement();
        s["attachments"] = json!([base]);
        post_ok(&lrs, v, &s);
    }
}
