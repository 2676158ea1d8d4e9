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

/// A multipart/mixed statement request: the first line is the request's Content-Type
/// (where the boundary comes from), the rest its body. Never panics; a body that parses
/// into statements and attachments gives statements the validator can judge.
pub fn multipart(data: &[u8]) {
    use karmayogi_lrs::xapi::multipart::{boundary, parse, statements_request};
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let content_type = String::from_utf8_lossy(head);
    let Some(b) = boundary(&content_type) else {
        return;
    };
    let Ok(parts) = parse(body, &b) else {
        return;
    };
    for version in [XapiVersion::V1_0, XapiVersion::V2_0] {
        if let Ok((statements, _attachments)) = statements_request(parts.clone(), version) {
            let items = match statements {
                Value::Array(items) => items,
                one => vec![one],
            };
            for s in items {
                let _ = validate_statement(&s, version);
            }
        }
    }
}

/// The key the JWT target signs and verifies with (HS256).
pub const JWT_SECRET: &[u8] = b"fuzz-secret-of-thirty-two-bytes!";
/// The fixed "now" of the JWT target (seconds), so a run repeats.
pub const JWT_NOW: u64 = 1_750_000_000;

/// Bearer tokens. First byte even: the rest is a token as sent (header, signature and
/// claims all under the fuzzer's control). Odd: the rest is a claims object, signed with
/// the configured key, so the claims checks after the signature are reached. Never
/// panics; a token is accepted only with a valid signature, an `exp` in the future and a
/// lifetime within the maximum.
pub fn jwt(data: &[u8]) {
    use karmayogi_lrs::auth::{check_times, department_of, JwtConfig, JwtKeys};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let config = JwtConfig {
        keys: JwtKeys::Static {
            key: jsonwebtoken::DecodingKey::from_secret(JWT_SECRET),
            algorithm: jsonwebtoken::Algorithm::HS256,
        },
        issuer: None,
        audience: None,
        authority_homepage: "https://lrs.example.gov.in".into(),
        department_claim: "department".into(),
        leeway_secs: 60,
        max_lifetime_secs: 86_400,
    };
    let token = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let Ok(claims) = serde_json::from_slice::<Value>(rest) else {
            return;
        };
        let _ = check_times(&claims, JWT_NOW as f64, 60, 86_400);
        let _ = department_of(&claims, "department", mode & 2 == 0);
        let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET);
        match jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key) {
            Ok(t) => t,
            Err(_) => return,
        }
    };
    // The static-key path never waits: one poll finishes it.
    use std::future::Future;
    let mut verify = std::pin::pin!(config.verify(&token));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if let std::task::Poll::Ready(Ok(claims)) = verify.as_mut().poll(&mut cx) {
        // The real clock decides expiry here; an accepted token has an `exp`.
        assert!(
            claims.get("exp").is_some(),
            "accepted a token without exp: {token}"
        );
    }
}

/// Signed notes, checkpoints, verifier keys and completion certificates as an auditor's
/// tool reads them. Never panics; a note opened with the log's key is one that key signed.
pub fn notes(data: &[u8]) {
    use karmayogi_lrs::audit::{certificate, note};
    let signer = note::Signer::from_seed("lrs.fuzz.example", &[7u8; 32]).expect("a valid name");
    let verifier = signer.verifier();
    let _ = note::parse(data);
    if let Ok(opened) = note::open(data, std::slice::from_ref(&verifier)) {
        let _ = note::Checkpoint::parse(&opened.text);
    }
    let text = String::from_utf8_lossy(data);
    let _ = note::Checkpoint::parse(&text);
    let _ = note::Verifier::parse(&text);
    let _ = certificate::TlogProof::parse(&text);
    if certificate::verify(data, &verifier).ok {
        // A certificate verifies only under the key that signed its checkpoint.
        let other = note::Signer::from_seed("lrs.fuzz.example", &[8u8; 32])
            .expect("a valid name")
            .verifier();
        assert!(
            !certificate::verify(data, &other).ok,
            "a certificate verified under two keys"
        );
    }
}

/// SCORM and cmi5 content: `imsmanifest.xml`, `cmi5.xml` and the package zip. Never
/// panics, and a package that reads stays within the limits it was read under.
pub fn scorm(data: &[u8]) {
    use karmayogi_lrs::scorm::manifest::{parse_cmi5, parse_imsmanifest};
    use karmayogi_lrs::scorm::package::{read_package, PackageLimits};
    let _ = parse_imsmanifest(data);
    let _ = parse_cmi5(data);
    let limits = PackageLimits {
        max_files: 64,
        max_file_size: 1 << 20,
        max_total_size: 4 << 20,
        ..PackageLimits::default()
    };
    if let Ok(p) = read_package(data, &limits) {
        let total: u64 = p.files.iter().map(|f| f.bytes.len() as u64).sum();
        assert!(
            total <= limits.max_total_size && p.files.len() <= limits.max_files,
            "a package past its limits was read"
        );
    }
}

/// The sha2 the signature target gives its JWS attachment (the match is by this string;
/// the content's real hash is not what is under test).
const SIGNATURE_SHA2: &str = "5d1c7a3bb5a0a7f3c1e8a24b39a6b6ddc9c5e1cc4a8b3ac24f3f1d1e5b2a9c01";

/// Signed statements (Data 2.6). Input: a statement (JSON), a NUL byte, then the content
/// of its signature attachment (a JWS as the client sent it); without a NUL the whole
/// input is the JWS and the statement a fixed one. The target adds the signature
/// attachment to the statement and runs `verify_signed_statements` under both versions,
/// alone and as a batch of one. Never panics; the verdict does not depend on whether the
/// statement came alone or in an array; a valid statement is equivalent (Data 2.3.1) to
/// itself and to what `prepare` makes of it (id, stored, authority, version, timestamp).
pub fn signature(data: &[u8]) {
    let _ = signature_verdicts(data);
}

/// [`signature`], returning whether the signature was accepted under 1.0.3 and under 2.0.
pub fn signature_verdicts(data: &[u8]) -> [bool; 2] {
    use karmayogi_lrs::xapi::multipart::AttachmentContent;
    use karmayogi_lrs::xapi::signature::{
        statements_equivalent, verify_signed_statements, SIGNATURE_USAGE_TYPE,
    };
    let (head, jws) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let received = match serde_json::from_slice::<Value>(head) {
        Ok(v @ Value::Object(_)) => v,
        _ => serde_json::json!({
            "actor": {"mbox": "mailto:a@example.com"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
            "object": {"id": "http://example.com/activities/a"}
        }),
    };
    let mut statement = received.clone();
    let attachment = serde_json::json!({
        "usageType": SIGNATURE_USAGE_TYPE,
        "display": {"en-US": "Signature"},
        "contentType": "application/octet-stream",
        "length": jws.len(),
        "sha2": SIGNATURE_SHA2
    });
    match statement.get_mut("attachments") {
        Some(Value::Array(items)) => items.push(attachment),
        _ => statement["attachments"] = Value::Array(vec![attachment]),
    }
    let contents = [AttachmentContent {
        sha2: SIGNATURE_SHA2.to_owned(),
        content_type: "application/octet-stream".to_owned(),
        content: jws.to_vec().into(),
    }];
    let authority = serde_json::json!({"objectType": "Agent", "mbox": "mailto:fuzz@example.com"});
    let batch = Value::Array(vec![statement.clone()]);
    let mut verdicts = [false; 2];
    for (i, version) in [XapiVersion::V1_0, XapiVersion::V2_0]
        .into_iter()
        .enumerate()
    {
        let alone = verify_signed_statements(&statement, &contents, version).is_ok();
        let in_batch = verify_signed_statements(&batch, &contents, version).is_ok();
        assert_eq!(alone, in_batch, "alone and in a batch disagree");
        verdicts[i] = alone;
        if validate_statement(&received, version).is_err() {
            continue;
        }
        assert!(
            statements_equivalent(&received, &received, version),
            "a statement is not equivalent to itself: {received}"
        );
        let receipt = Receipt {
            version,
            authority: &authority,
            may_define: true,
        };
        if let Ok(prepared) = prepare(received.clone(), &receipt, 1_700_000_000_000_000) {
            assert!(
                statements_equivalent(&received, &prepared.statement, version),
                "what the LRS fills in counts as a difference: {received} vs {}",
                prepared.statement
            );
        }
    }
    verdicts
}

/// The document resources (Communication 2.3, 2.6, 2.7 and 3.1). Input: a mode byte
/// (resource, method, version, which document exists), then lines: the query string, the
/// `If-Match` value, the `If-None-Match` value, the content type, the body. Runs the
/// parameter validation, the precondition parsing and the store update the method makes,
/// applied to the existing document. Never panics; an accepted target uses only the
/// parameters its method recognises; a failed precondition never yields a change; a new
/// version's ETag is that of its content; a JSON merge keeps every posted property.
pub fn documents(data: &[u8]) {
    use karmayogi_lrs::xapi::document::{
        delete_update, etag, is_json, new_document, parse_target, post_update, put_update, Op,
        Preconditions, Resource,
    };
    use karmayogi_lrs::xapi::records::DocumentChange;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let resource = [
        Resource::State,
        Resource::ActivityProfile,
        Resource::AgentProfile,
    ][usize::from(mode % 3)];
    let op = [Op::Get, Op::Put, Op::Post, Op::Delete][usize::from((mode >> 2) & 3)];
    let version = if mode & 16 == 0 {
        XapiVersion::V1_0
    } else {
        XapiVersion::V2_0
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.splitn(5, '\n');
    let query = lines.next().unwrap_or("");
    let if_match = lines.next().filter(|s| !s.is_empty());
    let if_none_match = lines.next().filter(|s| !s.is_empty());
    let content_type = lines.next().unwrap_or("application/json").to_owned();
    let content = lines.next().unwrap_or("").as_bytes().to_vec();

    // Each name once, as the HTTP layer leaves them (it refuses duplicates before this).
    let mut params: Vec<(&str, &str)> = Vec::new();
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if !params.iter().any(|(n, _)| *n == k) {
            params.push((k, v));
        }
    }
    if let Ok(target) = parse_target(resource, op, version, &params) {
        let allowed = resource.allowed_params(op);
        assert!(
            params.iter().all(|(k, _)| allowed.contains(k)),
            "accepted a parameter {op:?} does not recognise: {query}"
        );
        assert_eq!(
            target.document_id.is_some(),
            params.iter().any(|(k, _)| *k == resource.id_param()),
            "the document id is not the one sent: {query}"
        );
    }

    let pre = Preconditions::parse(if_match, if_none_match);
    let existing = match (mode >> 5) & 3 {
        0 => None,
        1 => Some(new_document(
            "application/json",
            br#"{"a":1,"b":{"c":2}}"#.to_vec().into(),
            1,
        )),
        2 => Some(new_document("text/plain", b"plain".to_vec().into(), 1)),
        _ => Some(new_document(&content_type, content.clone().into(), 1)),
    };
    let update = match op {
        Op::Get => {
            let _ = pre.check(existing.as_ref());
            return;
        }
        Op::Put => put_update(
            resource,
            version,
            pre.clone(),
            content_type.clone(),
            content.clone().into(),
            2,
        ),
        Op::Post => match post_update(pre.clone(), content_type.clone(), content.clone().into(), 2)
        {
            Ok(u) => u,
            Err(_) => return,
        },
        Op::Delete => delete_update(pre.clone()),
    };
    let outcome = update(existing.as_ref());
    if pre.check(existing.as_ref()).is_err() {
        assert!(
            outcome.is_err(),
            "a failed precondition changed the document"
        );
    }
    if let Ok(DocumentChange::Put(doc)) = outcome {
        assert_eq!(doc.etag, etag(&doc.content), "an ETag not of the content");
        let merged = op == Op::Post
            && existing.as_ref().is_some_and(|d| is_json(&d.content_type))
            && is_json(&content_type);
        if merged {
            let Ok(Value::Object(posted)) = serde_json::from_slice::<Value>(&content) else {
                panic!("a POST merged a body that is not a JSON object");
            };
            let Ok(Value::Object(out)) = serde_json::from_slice::<Value>(&doc.content) else {
                panic!("a JSON merge did not give a JSON object");
            };
            for k in posted.keys() {
                assert!(out.contains_key(k), "the merge lost the posted `{k}`");
            }
        }
    }
}
