//! Signed Statements (Data 2.6): a JWS over the Statement, sent as an Attachment.
//!
//! What is checked, for each Statement carrying an Attachment whose usageType is
//! [`SIGNATURE_USAGE_TYPE`]:
//! * the Attachment's contentType is `application/octet-stream` and its content (the part
//!   with that sha2) was received (Data 2.6.s4.b1);
//! * the content is a JWS: Compact Serialization; under 1.0.x the (discouraged) JSON
//!   Serialization is accepted too, under 2.0 it is not (Data 2.6.s4.b2);
//! * its `alg` is RS256, RS384 or RS512 (Data 2.6.s4.b4); a `crit` header is refused, as
//!   this LRS understands no JWS extension (RFC 7515 §4.1.11);
//! * its payload is a JSON object logically equivalent to the received Statement
//!   (Data 2.6.s4.b3 and the LRS requirements; comparison per Data 2.3.1, see
//!   [`statements_equivalent`]);
//! * when the header carries `x5c`, the first certificate's RSA key verifies the signature,
//!   and each further certificate is the issuer of the one before it (names match, and
//!   its key verifies that certificate's signature when signed with SHA-2 + RSA). Validity
//!   dates and trust anchors are not checked: the spec says this step catches mistakes and
//!   is not a security measure. Without `x5c` there is no key to verify with, so only the
//!   form of the JWS is checked.
use crate::error::{pointer_token, XapiError};
use crate::xapi::multipart::{
    each_statement, media_type_essence, normalize_hash, AttachmentContent,
};
use crate::xapi::XapiVersion;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Number, Value};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
};
use x509_parser::public_key::PublicKey;

/// usageType of a signature attachment
pub const SIGNATURE_USAGE_TYPE: &str = "http://adlnet.gov/expapi/attachments/signature";

const REQ_SIGNATURE_ATTACHMENT: &str = "Data 2.6.s4.b1, XAPI-00115";
const REQ_JWS_FORM: &str = "Data 2.6.s4.b1-b2 (RFC 7515), XAPI-00115";
const REQ_JWS_PAYLOAD: &str = "Data 2.6.s4.b3, XAPI-00116";
const REQ_JWS_ALG: &str = "Data 2.6.s4.b4, XAPI-00117";
const REQ_EQUIVALENT: &str = "Data 2.6 (LRS requirements: logically equivalent), Data 2.3.1";
const REQ_X509: &str = "Data 2.6 (LRS requirements: validate against the X.509 certificate)";

/// For each statement in the request that carries a signature attachment (usageType above): the attachment
/// must have contentType application/octet-stream, its part must be a JWS (RS256/RS384/RS512)
/// whose payload is the same statement as the one carrying it, and the `x5c` certificate, when
/// given, must verify it. Invalid → 400.
///
/// `statements` is the request body (one statement or an array), as received or after the LRS
/// filled in `id`, `stored`, `authority`, `version` or `timestamp` (differences those could
/// cause are ignored). `attachments` is what [`crate::xapi::multipart::statements_request`]
/// returned (empty for an `application/json` request: a signature then has no content → 400).
/// Only top-level Statements are examined; a signature Attachment inside a SubStatement is
/// treated as an ordinary Attachment.
pub fn verify_signed_statements(
    statements: &Value,
    attachments: &[AttachmentContent],
    version: XapiVersion,
) -> Result<(), XapiError> {
    for (pointer, statement) in each_statement(statements) {
        let Some(items) = statement.get("attachments").and_then(Value::as_array) else {
            continue;
        };
        for (j, attachment) in items.iter().enumerate() {
            if attachment.get("usageType").and_then(Value::as_str) != Some(SIGNATURE_USAGE_TYPE) {
                continue;
            }
            let at = format!("{pointer}/attachments/{j}");
            verify_one(statement, attachment, attachments, version)
                .map_err(|f| f.into_error(&pointer, &at))?;
        }
    }
    Ok(())
}

/// Why one signature was refused.
#[derive(Debug)]
enum Failure {
    /// The Attachment itself (contentType, missing content).
    Attachment(String),
    /// Not a JWS as RFC 7515 defines it, or not in an allowed serialization.
    Form(String),
    Alg(String),
    /// The payload is not a JSON object.
    Payload(String),
    /// The payload is not the same Statement; the JSON pointer (inside the Statement) of the
    /// first difference.
    Mismatch(String),
    Certificate(String),
}

impl Failure {
    fn into_error(self, statement_pointer: &str, attachment_pointer: &str) -> XapiError {
        let (message, requirement, at) = match self {
            Failure::Attachment(m) => (m, REQ_SIGNATURE_ATTACHMENT, attachment_pointer.to_owned()),
            Failure::Form(m) => (m, REQ_JWS_FORM, attachment_pointer.to_owned()),
            Failure::Alg(m) => (m, REQ_JWS_ALG, attachment_pointer.to_owned()),
            Failure::Payload(m) => (m, REQ_JWS_PAYLOAD, attachment_pointer.to_owned()),
            Failure::Mismatch(p) => (
                format!(
                    "the signed statement (JWS payload) differs from the statement received, at `{}`",
                    if p.is_empty() { "/" } else { &p }
                ),
                REQ_EQUIVALENT,
                format!("{statement_pointer}{p}"),
            ),
            Failure::Certificate(m) => (m, REQ_X509, attachment_pointer.to_owned()),
        };
        XapiError::bad_request(format!("invalid statement signature: {message}"))
            .at(at)
            .req(requirement)
    }
}

fn verify_one(
    statement: &Value,
    attachment: &Value,
    contents: &[AttachmentContent],
    version: XapiVersion,
) -> Result<(), Failure> {
    let content_type = attachment
        .get("contentType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if media_type_essence(content_type) != "application/octet-stream" {
        return Err(Failure::Attachment(format!(
            "a signature attachment must have contentType application/octet-stream, not `{content_type}`"
        )));
    }
    let Some(sha2) = attachment
        .get("sha2")
        .and_then(Value::as_str)
        .map(normalize_hash)
    else {
        return Err(Failure::Attachment(
            "the signature attachment has no sha2".into(),
        ));
    };
    let Some(content) = contents.iter().find(|c| c.sha2 == sha2) else {
        return Err(Failure::Attachment(
            "the signature attachment's content (the JWS) was not sent in the request".into(),
        ));
    };
    for jws in decode_jws(&content.content, version)? {
        let alg = allowed_alg(&jws.header)?;
        if jws.header.contains_key("crit") {
            return Err(Failure::Form(
                "the JWS header has `crit` extensions, which this LRS does not understand".into(),
            ));
        }
        let signed: Value = serde_json::from_slice(&jws.payload).map_err(|e| {
            Failure::Payload(format!(
                "the JWS payload is not a JSON serialization of a statement: {e}"
            ))
        })?;
        let (Value::Object(signed), Value::Object(received)) = (&signed, statement) else {
            return Err(Failure::Payload(
                "the JWS payload is not a JSON object (a statement)".into(),
            ));
        };
        compare_statement(signed, received, false, version, "").map_err(Failure::Mismatch)?;
        if let Some(x5c) = jws.header.get("x5c") {
            verify_with_certificates(&jws, alg, x5c)?;
        }
    }
    Ok(())
}

/// A decoded JWS with one signature.
struct Jws {
    header: Map<String, Value>,
    payload: Vec<u8>,
    /// ASCII(BASE64URL(protected header)) '.' ASCII(BASE64URL(payload)), as received.
    signing_input: String,
    /// BASE64URL(signature), without padding.
    signature: String,
}

fn b64url(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()
}

fn header_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, Failure> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Failure::Form(format!(
            "the JWS {what} is not a JSON object"
        ))),
    }
}

/// Compact Serialization (RFC 7515 §7.1); under 1.0.x also the JSON Serialization (§7.2),
/// general (every signature checked) or flattened.
fn decode_jws(content: &[u8], version: XapiVersion) -> Result<Vec<Jws>, Failure> {
    let text = std::str::from_utf8(content)
        .map_err(|_| Failure::Form("the signature is not a JWS (not text)".into()))?
        .trim();
    if text.starts_with('{') {
        if version.is_v2() {
            return Err(Failure::Form(
                "xAPI 2.0 requires the JWS Compact Serialization; the JSON Serialization is not accepted"
                    .into(),
            ));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Failure::Form(format!("the JWS JSON Serialization is not valid JSON: {e}"))
        })?;
        return decode_json_serialization(&value);
    }
    let segments: Vec<&str> = text.split('.').collect();
    let [header, payload, signature] = segments[..] else {
        return Err(Failure::Form(
            "the signature is not a JWS Compact Serialization (three base64url parts joined by dots)"
                .into(),
        ));
    };
    let header_bytes = b64url(header)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Failure::Form("the JWS protected header is not base64url".into()))?;
    let payload_bytes =
        b64url(payload).ok_or_else(|| Failure::Form("the JWS payload is not base64url".into()))?;
    let signature_ok = b64url(signature).is_some_and(|s| !s.is_empty());
    if !signature_ok {
        return Err(Failure::Form(
            "the JWS signature is missing or not base64url".into(),
        ));
    }
    Ok(vec![Jws {
        header: header_object(&header_bytes, "protected header")?,
        payload: payload_bytes,
        signing_input: format!("{header}.{payload}"),
        signature: signature.trim_end_matches('=').to_owned(),
    }])
}

fn decode_json_serialization(value: &Value) -> Result<Vec<Jws>, Failure> {
    let Some(payload) = value.get("payload").and_then(Value::as_str) else {
        return Err(Failure::Form(
            "the JWS JSON Serialization has no payload".into(),
        ));
    };
    let payload_bytes =
        b64url(payload).ok_or_else(|| Failure::Form("the JWS payload is not base64url".into()))?;
    let signatures: Vec<&Value> = match value.get("signatures") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(_) => {
            return Err(Failure::Form(
                "the JWS `signatures` is not a non-empty array".into(),
            ))
        }
        None => vec![value],
    };
    let mut out = Vec::with_capacity(signatures.len());
    for s in signatures {
        let protected = match s.get("protected") {
            None => "",
            Some(Value::String(p)) => p.as_str(),
            Some(_) => return Err(Failure::Form("the JWS `protected` is not a string".into())),
        };
        let mut header = if protected.is_empty() {
            Map::new()
        } else {
            let bytes = b64url(protected)
                .ok_or_else(|| Failure::Form("the JWS protected header is not base64url".into()))?;
            header_object(&bytes, "protected header")?
        };
        match s.get("header") {
            None => {}
            Some(Value::Object(unprotected)) => {
                for (k, v) in unprotected {
                    // RFC 7515 §7.2.1: the two header sets are disjoint.
                    if header.insert(k.clone(), v.clone()).is_some() {
                        return Err(Failure::Form(format!(
                            "the JWS header parameter `{k}` is both protected and unprotected"
                        )));
                    }
                }
            }
            Some(_) => return Err(Failure::Form("the JWS `header` is not an object".into())),
        }
        let Some(signature) = s.get("signature").and_then(Value::as_str) else {
            return Err(Failure::Form("the JWS has no signature".into()));
        };
        if b64url(signature).is_none_or(|b| b.is_empty()) {
            return Err(Failure::Form(
                "the JWS signature is missing or not base64url".into(),
            ));
        }
        out.push(Jws {
            header,
            payload: payload_bytes.clone(),
            signing_input: format!("{protected}.{payload}"),
            signature: signature.trim_end_matches('=').to_owned(),
        });
    }
    Ok(out)
}

fn allowed_alg(header: &Map<String, Value>) -> Result<Algorithm, Failure> {
    match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Ok(Algorithm::RS256),
        Some("RS384") => Ok(Algorithm::RS384),
        Some("RS512") => Ok(Algorithm::RS512),
        Some(other) => Err(Failure::Alg(format!(
            "the JWS algorithm must be RS256, RS384 or RS512, not `{other}`"
        ))),
        None => Err(Failure::Alg("the JWS header has no `alg`".into())),
    }
}

fn rsa_key(cert: &X509Certificate<'_>) -> Option<DecodingKey> {
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(key)) => Some(DecodingKey::from_rsa_raw_components(
            key.modulus,
            key.exponent,
        )),
        _ => None,
    }
}

/// RSA verification with the crypto backend of `jsonwebtoken`; `signature` is base64url.
fn rsa_verifies(signature: &str, message: &[u8], key: &DecodingKey, alg: Algorithm) -> bool {
    matches!(
        jsonwebtoken::crypto::verify(signature, message, key, alg),
        Ok(true)
    )
}

fn verify_with_certificates(jws: &Jws, alg: Algorithm, x5c: &Value) -> Result<(), Failure> {
    let bad = |m: &str| Failure::Certificate(m.to_owned());
    let Some(items) = x5c.as_array().filter(|a| !a.is_empty()) else {
        return Err(bad(
            "the JWS `x5c` header must be a non-empty array of certificates",
        ));
    };
    let mut ders = Vec::with_capacity(items.len());
    for item in items {
        // RFC 7515 §4.1.6: base64 (not base64url) DER.
        let der = item
            .as_str()
            .and_then(|s| {
                STANDARD
                    .decode(s)
                    .or_else(|_| STANDARD_NO_PAD.decode(s))
                    .ok()
            })
            .ok_or_else(|| bad("a JWS `x5c` entry is not a base64 string"))?;
        ders.push(der);
    }
    let mut certs = Vec::with_capacity(ders.len());
    for der in &ders {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| bad("a JWS `x5c` entry is not a DER X.509 certificate"))?;
        certs.push(cert);
    }
    let Some(leaf) = certs.first() else {
        return Err(bad("the JWS `x5c` header is empty"));
    };
    let key = rsa_key(leaf)
        .ok_or_else(|| bad("the JWS `x5c` certificate does not hold an RSA public key"))?;
    if !rsa_verifies(&jws.signature, jws.signing_input.as_bytes(), &key, alg) {
        return Err(bad(
            "the JWS signature does not verify against the public key of its `x5c` certificate",
        ));
    }
    for pair in certs.windows(2) {
        let [child, issuer] = pair else { continue };
        if child.issuer().as_raw() != issuer.subject().as_raw() {
            return Err(bad(
                "the JWS `x5c` chain is broken: a certificate is not followed by its issuer",
            ));
        }
        let oid = &child.signature_algorithm.algorithm;
        let cert_alg = if *oid == OID_PKCS1_SHA256WITHRSA {
            Algorithm::RS256
        } else if *oid == OID_PKCS1_SHA384WITHRSA {
            Algorithm::RS384
        } else if *oid == OID_PKCS1_SHA512WITHRSA {
            Algorithm::RS512
        } else {
            // SHA-1, PSS, ECDSA …: no primitive at hand to check; the names matched.
            continue;
        };
        let Some(issuer_key) = rsa_key(issuer) else {
            continue;
        };
        let signature = URL_SAFE_NO_PAD.encode(&child.signature_value.data);
        if !rsa_verifies(
            &signature,
            child.tbs_certificate.as_ref(),
            &issuer_key,
            cert_alg,
        ) {
            return Err(bad(
                "the JWS `x5c` chain is broken: a certificate's signature does not verify with its issuer's key",
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Statement comparison (Data 2.3.1 "Statement Comparison Requirements").
// ---------------------------------------------------------------------------------------

/// Whether `signed` (the JWS payload) and `received` are the same Statement, per the
/// comparison requirements of Data 2.3.1: differences that the exceptions to immutability
/// could cause are ignored, every other difference counts. Concretely:
/// * `attachments` is not compared (Attachments are an exception; the signed serialization
///   is the Statement before its signature Attachment was added);
/// * `authority` and `stored` are not compared; `id`, `version` and `timestamp` are only
///   compared when the signed Statement has them (an LRS may assign them);
/// * `timestamp` values compare as points in time (to the millisecond);
/// * `result.duration` compares as a string under 1.0.x (Data 2.3.1), and ignoring
///   precision finer than 0.01 s under 2.0;
/// * case-insensitive data: language tags (language map keys), UUIDs (`id`,
///   `registration`), the scheme and domain of `mbox`;
/// * Group `member` lists are unordered; a single Activity in `contextActivities` equals an
///   array holding it; a missing `objectType` equals its default (`Agent`, `Activity`);
/// * numbers compare by value (`1` = `1.0`); extensions compare as plain JSON.
pub fn statements_equivalent(signed: &Value, received: &Value, version: XapiVersion) -> bool {
    match (signed, received) {
        (Value::Object(s), Value::Object(r)) => compare_statement(s, r, false, version, "").is_ok(),
        _ => false,
    }
}

fn union_keys<'a>(a: &'a Map<String, Value>, b: &'a Map<String, Value>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = a.keys().map(String::as_str).collect();
    keys.extend(b.keys().map(String::as_str).filter(|k| !a.contains_key(*k)));
    keys
}

/// A property present on one side only that is nevertheless no difference.
fn absence_is_default(key: &str, present: &Value) -> bool {
    key == "objectType" && matches!(present.as_str(), Some("Agent" | "Activity"))
}

fn compare_statement(
    signed: &Map<String, Value>,
    received: &Map<String, Value>,
    sub: bool,
    version: XapiVersion,
    path: &str,
) -> Result<(), String> {
    for key in union_keys(signed, received) {
        if key == "attachments" || (!sub && matches!(key, "authority" | "stored")) {
            continue;
        }
        let here = format!("{path}/{}", pointer_token(key));
        match (signed.get(key), received.get(key)) {
            (Some(a), Some(b)) => compare(a, b, Some(key), version, &here)?,
            (None, Some(_)) if !sub && matches!(key, "id" | "version" | "timestamp") => {}
            (Some(v), None) | (None, Some(v)) if absence_is_default(key, v) => {}
            _ => return Err(here),
        }
    }
    Ok(())
}

fn compare_objects(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    version: XapiVersion,
    path: &str,
) -> Result<(), String> {
    for key in union_keys(a, b) {
        let here = format!("{path}/{}", pointer_token(key));
        match (a.get(key), b.get(key)) {
            (Some(x), Some(y)) => compare(x, y, Some(key), version, &here)?,
            (Some(v), None) | (None, Some(v)) if absence_is_default(key, v) => {}
            _ => return Err(here),
        }
    }
    Ok(())
}

fn is_substatement(m: &Map<String, Value>) -> bool {
    m.get("objectType").and_then(Value::as_str) == Some("SubStatement")
}

fn compare(
    a: &Value,
    b: &Value,
    key: Option<&str>,
    version: XapiVersion,
    path: &str,
) -> Result<(), String> {
    let same = match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            return match key {
                Some("object") if is_substatement(x) && is_substatement(y) => {
                    compare_statement(x, y, true, version, path)
                }
                Some("display" | "name" | "description") => language_maps_equal(x, y)
                    .then_some(())
                    .ok_or_else(|| path.to_owned()),
                Some("contextActivities") => compare_context_activities(x, y, version, path),
                Some("extensions") => json_equal(a, b)
                    .then_some(())
                    .ok_or_else(|| path.to_owned()),
                _ => compare_objects(x, y, version, path),
            };
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(path.to_owned());
            }
            if key == Some("member") {
                return unordered_equal(x, y, version)
                    .then_some(())
                    .ok_or_else(|| path.to_owned());
            }
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                compare(p, q, None, version, &format!("{path}/{i}"))?;
            }
            return Ok(());
        }
        (Value::String(x), Value::String(y)) => match key {
            Some("timestamp") => timestamps_equal(x, y),
            Some("duration") => durations_equal(x, y, version),
            Some("mbox") => mbox_normal(x) == mbox_normal(y),
            Some("id" | "registration") => uuid_or_string_equal(x, y),
            _ => x == y,
        },
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        _ => a == b,
    };
    same.then_some(()).ok_or_else(|| path.to_owned())
}

fn unordered_equal(x: &[Value], y: &[Value], version: XapiVersion) -> bool {
    let mut used = vec![false; y.len()];
    x.iter().all(|p| {
        let found = y
            .iter()
            .enumerate()
            .position(|(j, q)| !used[j] && compare(p, q, None, version, "").is_ok());
        if let Some(j) = found {
            used[j] = true;
        }
        found.is_some()
    })
}

/// Language tags are case-insensitive (RFC 5646 §2.1.1).
fn language_maps_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len()
        && x.iter().all(|(tag, v)| {
            y.iter()
                .any(|(other, w)| other.eq_ignore_ascii_case(tag) && json_equal(v, w))
        })
}

/// 1.0.x allows a single Activity object where an array is meant; the LRS returns arrays.
fn compare_context_activities(
    x: &Map<String, Value>,
    y: &Map<String, Value>,
    version: XapiVersion,
    path: &str,
) -> Result<(), String> {
    fn as_list(v: &Value) -> Vec<Value> {
        match v {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        }
    }
    for key in union_keys(x, y) {
        let here = format!("{path}/{}", pointer_token(key));
        match (x.get(key), y.get(key)) {
            (Some(p), Some(q)) => {
                let (p, q) = (Value::Array(as_list(p)), Value::Array(as_list(q)));
                compare(&p, &q, Some(key), version, &here)?;
            }
            _ => return Err(here),
        }
    }
    Ok(())
}

/// Plain JSON equality, except that numbers compare by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &Number, y: &Number) -> bool {
    if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
        return p == q;
    }
    if let (Some(p), Some(q)) = (x.as_u64(), y.as_u64()) {
        return p == q;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(p), Some(q)) => p == q,
        _ => x == y,
    }
}

fn uuid_or_string_equal(x: &str, y: &str) -> bool {
    if x == y {
        return true;
    }
    match (uuid::Uuid::try_parse(x), uuid::Uuid::try_parse(y)) {
        (Ok(p), Ok(q)) if x.len() == 36 && y.len() == 36 => p == q,
        _ => false,
    }
}

/// `mailto:` scheme and the domain are case-insensitive; the local part is not.
fn mbox_normal(mbox: &str) -> String {
    if !mbox
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("mailto:"))
    {
        return mbox.to_owned();
    }
    let address = &mbox[7..];
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("mailto:{local}@{}", domain.to_ascii_lowercase()),
        None => format!("mailto:{address}"),
    }
}

/// ISO 8601 / RFC 3339 timestamp → point in time; without an offset, UTC is assumed.
fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let naive = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(naive, f).ok())
        .map(|t| t.and_utc())
}

/// The same point in time, to the millisecond (an LRS may keep only milliseconds).
fn timestamps_equal(x: &str, y: &str) -> bool {
    if x == y {
        return true;
    }
    match (parse_instant(x), parse_instant(y)) {
        (Some(p), Some(q)) => (p - q).num_microseconds().is_some_and(|d| d.abs() < 1000),
        _ => false,
    }
}

fn durations_equal(x: &str, y: &str, version: XapiVersion) -> bool {
    if x == y {
        return true;
    }
    if !version.is_v2() {
        // Data 2.3.1: "the Result Duration is considered a string for purposes of Statement comparison".
        return false;
    }
    match (duration_key(x), duration_key(y)) {
        (Some(p), Some(q)) => p == q,
        _ => false,
    }
}

/// An ISO 8601 duration as its non-zero components `(designator, canonical decimal)`, the
/// seconds truncated to hundredths (xAPI 2.0: finer precision is not compared).
fn duration_key(s: &str) -> Option<Vec<(char, String)>> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut out = Vec::new();
    let mut any = false;
    any |= components(date, &['Y', 'M', 'W', 'D'], false, &mut out)?;
    if let Some(t) = time {
        let found = components(t, &['H', 'M', 'S'], true, &mut out)?;
        if !found {
            return None; // "T" with nothing after it
        }
        any = true;
    }
    any.then_some(out)
}

/// Parses `nX nY …` with designators in order; pushes non-zero components. Returns whether
/// any component was present.
fn components(
    mut s: &str,
    designators: &[char],
    time: bool,
    out: &mut Vec<(char, String)>,
) -> Option<bool> {
    let mut next = 0;
    let mut any = false;
    while !s.is_empty() {
        let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
        let (number, rest) = s.split_at(end);
        let designator = rest.chars().next()?;
        let index = designators[next..].iter().position(|&d| d == designator)? + next;
        next = index + 1;
        s = &rest[designator.len_utf8()..];
        let (int, frac) = match number.split_once(['.', ',']) {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let frac = if time && designator == 'S' {
            &frac[..frac.len().min(2)]
        } else {
            frac
        };
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        any = true;
        if int.is_empty() && frac.is_empty() {
            continue;
        }
        let tag = if time {
            designator.to_ascii_lowercase()
        } else {
            designator
        };
        let int = if int.is_empty() { "0" } else { int };
        let value = if frac.is_empty() {
            int.to_owned()
        } else {
            format!("{int}.{frac}")
        };
        out.push((tag, value));
    }
    Some(any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xapi::multipart;
    use bytes::Bytes;
    use jsonwebtoken::EncodingKey;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    const V1: XapiVersion = XapiVersion::V1_0;
    const V2: XapiVersion = XapiVersion::V2_0;

    // Test fixtures made for this file with the openssl CLI: a root CA, a signer certificate
    // it issued (both sha256WithRSAEncryption, 2048-bit keys), and a second self-signed
    // "root" with the same subject name but another key.
    const LEAF_KEY: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEogIBAAKCAQEAmpjSp7O+rBFzPmzEq3HWzB2BRkSvQVXnqWJZBiOVcbdzpSFw\n\
5TRwUc1DqdPl5lesSQTHXBLVY72wc15qI/fMnzse3N3wXinuGeGfiBdCw/B7tZ/1\n\
5WSZkNkEkn/vUDmUUSAXpHc3JSSOZbFT7Yl17nkOIiUOtjLWr9+iwJv22/FjqhSh\n\
iPAn1UWrbHJTvrFVCa/GwR59Z/txwlTY3lK2qn87buS41MsvHjx0Ano1HGrjkcAg\n\
sOuyZzL6VMjStj70g0RppS+igkVAicqKjUlVKpEge1VM/onxE4BPKO0xkShz6NBp\n\
mjr4eJ10voCnHMoG4fLMIa4FxxFS0ooLr3paOQIDAQABAoIBAC2pGnrOs2/F3ahf\n\
3ryWbG8v/bkf2zVsZnZYZlvSUbbbDKyGkn4X/V6jxirYO4xLc8bDQxCWPXFumrmQ\n\
dr/11flnsEdiw7ZEIx+AzKoY2K7fjeJIgwuEKXknJ9sPL0MeJojJdkIstdxiDi7J\n\
77R2R58uIPcDw/MbU95xKnRB/GjcTmxtzMUQxiUMo1qxYVdasu9a2GzG5geVbfHO\n\
tMUPrQ5DV3cMOK62pMcBlokhtNMklVp4ytT5S/mHyyI6hd9oZSb26YdyowGcyblJ\n\
cd35eeaOfjmU24OAT/6ice/64R7edY0cEr0/WqRlmJA+FmZMWGtgxDPp3FZOUXX4\n\
d0un6esCgYEA2Xh9NYyMgA7LKeDHISUxFlmbDlCHxSXCqOT+8O5KtXYOlRg1LXpx\n\
gvfsGw3KeDE2YLVMFN38auu1yvXdyEsmYAvhIaQzTfMgtANTx7jygZKDMikxbbUa\n\
7m3PnXHuSPvgymJ4nijfNaW0V3mNO+0vxrkzdcJWjyvCeD1yLGzudQcCgYEAtfyo\n\
8xs3qGmXhi0/okrw1iwelvHMRBDl0gvtWAwCtoOztqJJeSfMSPgr+FjVZ6R9SpRE\n\
NJaQprcRBJKZ94NrvBQkf++8xN34O3prekZ236e8FL1zdKGkw/xAim3rpOsDbRb9\n\
KzKx09/3uPL/MbPjPv4L2/e+xyDMQTqBhU++Jr8CgYAA5+iVnYVET0t3XDFYKQCA\n\
WFU2BQ3bu2GJNJL/S+7RvLEo29X034qzgfbg0fji8UmJs5eiip4vj9XNB6Mp325E\n\
figs7LMuAvJC7bSeo12XPpX/Un6bN2LqVVjFDiFw+mOgVDKubfsoDQ2oQ6Bb/Ivz\n\
ZvgY6HtV01fXCmJ8XuPLZwKBgAl4FgpgNisrI1k17YOyRom+TfEor6oy/uJJAJZ+\n\
OX3pqGYuV4hYS8bYMuF/LctwwZwpzsq1st0Z1WbZge1hBzAIFEYb4USVEB94JTN9\n\
ix3kCmNB4EoHRx1zeKA7S/GO0OTSN2YSAzK1Cpyy+BhL9d0HNvLBF0ohKL+UHb0k\n\
Aw7dAoGAK9ItpfR4TBUtFUc57gGvwiCRlP2AaeDQGk2Ol3DtM3iW57m81h+n6dRC\n\
pgFMZMmdzQ0WPhHiqGgX3IeFaUBBXTg6yJ5OOCdIQcVCqGiEh0Oa8dMH4cUE6miu\n\
KcgEBEkFQo459mCpninKcmeGwgEkkPnoLRw+RkNB8bpL3ElE7NQ=\n\
-----END RSA PRIVATE KEY-----\n";
    const LEAF_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIDWDCCAkCgAwIBAgIUVSm8Pn2a60ImBtFctv6Y6Y7OC6QwDQYJKoZIhvcNAQEL\n\
BQAwNTEcMBoGA1UECgwTa2FybWF5b2dpLWxycyB0ZXN0czEVMBMGA1UEAwwMVGVz\n\
dCBSb290IENBMCAXDTI2MTEyMjA4MTgwM1oYDzIxMjYxMDI5MDgxODAzWjA5MRww\n\
GgYDVQQKDBNrYXJtYXlvZ2ktbHJzIHRlc3RzMRkwFwYDVQQDDBBTdGF0ZW1lbnQg\n\
U2lnbmVyMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmpjSp7O+rBFz\n\
PmzEq3HWzB2BRkSvQVXnqWJZBiOVcbdzpSFw5TRwUc1DqdPl5lesSQTHXBLVY72w\n\
c15qI/fMnzse3N3wXinuGeGfiBdCw/B7tZ/15WSZkNkEkn/vUDmUUSAXpHc3JSSO\n\
ZbFT7Yl17nkOIiUOtjLWr9+iwJv22/FjqhShiPAn1UWrbHJTvrFVCa/GwR59Z/tx\n\
wlTY3lK2qn87buS41MsvHjx0Ano1HGrjkcAgsOuyZzL6VMjStj70g0RppS+igkVA\n\
icqKjUlVKpEge1VM/onxE4BPKO0xkShz6NBpmjr4eJ10voCnHMoG4fLMIa4FxxFS\n\
0ooLr3paOQIDAQABo1owWDAJBgNVHRMEAjAAMAsGA1UdDwQEAwIHgDAdBgNVHQ4E\n\
FgQUvPlDXVVFY/n0SwwMoJDKtxHySccwHwYDVR0jBBgwFoAUpCq2IIyoNklid5jt\n\
bIBwBhqaVmIwDQYJKoZIhvcNAQELBQADggEBAKhNiQzad6RmFhUt8xKWBIJCk+YR\n\
fob1z1cc7o9h52JkJuqWi4IksrFbzSsducrG0sc3JKTAIp/T7jqqbQ7MxIB0c1M1\n\
xvvXO+1Eg6nhPHnNYseN9BbHYsSu+iCSF9An4npqzN+SlWvYJAQxoLUS06k9KPCj\n\
KTZ05zp2KDCNAPQVOHx/XJfJF1uBaZQwnoYPRVDbiu9DNFN1plPdrb+BNBitQnUG\n\
zJNypFmcwky/BifsaxB22brPtz68h8BeLmkLQ8VnUaMO+0CM3AnGyaQxbi4uORNT\n\
ACHiUEhv/9o8UQIpODm+g0YANhWYhlocD6eZz0W+hoEBZcbCylDYejiNyfQ=\n\
-----END CERTIFICATE-----\n";
    const CA_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIDXTCCAkWgAwIBAgIUUR7NsHjDyQhoGCoVGqIC3nAVxBkwDQYJKoZIhvcNAQEL\n\
BQAwNTEcMBoGA1UECgwTa2FybWF5b2dpLWxycyB0ZXN0czEVMBMGA1UEAwwMVGVz\n\
dCBSb290IENBMCAXDTI2MTEyMjA4MTgwM1oYDzIxMjYxMDI5MDgxODAzWjA1MRww\n\
GgYDVQQKDBNrYXJtYXlvZ2ktbHJzIHRlc3RzMRUwEwYDVQQDDAxUZXN0IFJvb3Qg\n\
Q0EwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDXjFucy08Ud2tXpYOd\n\
eQ8xRkr1L6kTikZg+lFPbnoqeVK0AQUuoyPK3SskBzrxOf7axBctAwdjq+1zhQVC\n\
HBfCmFP0Xwp4ZlzPA+neJS4+ytDQDpuEL7DjGC9e57s5hQ006SIBLDe+JVP+ODVz\n\
59wV9B83bYNACQQvfnfshwWZvHYHHdU1cdOMqFZyd7VNS+oXzMbjFEIfAeZSVwxp\n\
ATnjewEKfv7z/uxCllK3KFEIi1m5eLpKPKPaI9lK7iNssKrRYs9aLasRK6Q+CbWN\n\
2osFcm9Ei9z5CDEkRAhhV1D9qvAh6UfxFwTr1lu6nevc8kj+toZgtWo2UvfdSNrS\n\
kTRHAgMBAAGjYzBhMB0GA1UdDgQWBBSkKrYgjKg2SWJ3mO1sgHAGGppWYjAfBgNV\n\
HSMEGDAWgBSkKrYgjKg2SWJ3mO1sgHAGGppWYjAPBgNVHRMBAf8EBTADAQH/MA4G\n\
A1UdDwEB/wQEAwICBDANBgkqhkiG9w0BAQsFAAOCAQEAyApPqTxX/AbFW3JcHFC9\n\
jh/MfIjMFjq2QcmzK9EJ++jncf1SsiDrAUqIwlN/Tn96LKgnIIPXharC+E06zJRu\n\
bzrs09rifLAKIwArQYVHLySPIOsZ/9jrjDopUuWxRehd8zcpboloQmREmO+Kszqz\n\
Aj3ebmzEfUDS2lvGekz+cgcgHGfcTiQJQgSPaW0TOCXLAkqRFcTedg7tKqfpRobb\n\
WHNc4fVt30Qq6wxvHgwq515q7LP8NJoanOw8Nm7/po/bfEPHnnr/DlAIKLJtjet5\n\
uafVeKLE3JXZHUjn0Ny2MNvqpPtvEJVzreO2vU/RasmRne8Wi/GD4TJEY/y9ShZn\n\
Tw==\n\
-----END CERTIFICATE-----\n";
    const OTHER_CA_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIDTTCCAjWgAwIBAgIUR0HJCxYMjATC7vFX6bAqjMx2hZMwDQYJKoZIhvcNAQEL\n\
BQAwNTEcMBoGA1UECgwTa2FybWF5b2dpLWxycyB0ZXN0czEVMBMGA1UEAwwMVGVz\n\
dCBSb290IENBMCAXDTI2MTEyMjA4MTgxMloYDzIxMjYxMDI5MDgxODEyWjA1MRww\n\
GgYDVQQKDBNrYXJtYXlvZ2ktbHJzIHRlc3RzMRUwEwYDVQQDDAxUZXN0IFJvb3Qg\n\
Q0EwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDMPnfmkEVMEmqcagOW\n\
GavKNZEeDaET6E0ODkWeenOlqpHRQXrqOzpOqv/AkPgHTXIfNf/hMd/usu32X9QT\n\
sQIVL0kmaOr49Ss5viTdGJ8X9n4uiFsdgHmfpjVj9cIiB1KHX75z7SxrBBRdGB1s\n\
62GdcQaa7THKtENjqGndxnfVgTFIodHZx90mHq6T8//adTEQdGpMrATmkpgp7wo8\n\
FbifgSycppyw3p4UOXWQVAR0cqyhYboebYC3GqM+scvohMNasplz40KQHB5/erJ+\n\
ajl30LYlpJKHBbpLUX98aSvrq3MEIGvtH98OGs3BtXipS5oazSvRhMDhDZfWO+lY\n\
sMr/AgMBAAGjUzBRMB0GA1UdDgQWBBRu+ESUl78Ecula6X5KVOinPP0rMzAfBgNV\n\
HSMEGDAWgBRu+ESUl78Ecula6X5KVOinPP0rMzAPBgNVHRMBAf8EBTADAQH/MA0G\n\
CSqGSIb3DQEBCwUAA4IBAQCUH9QOd/Xpv2R32eHbBV5TxETDLatzEWpAGhAoyJyp\n\
APvLGIZvwTAeG06EtjHKdGjLhqALm+MBsDsWVZMePv5dJ0wzLuFeQ3e53ZnGYxdk\n\
4eL8wi7g3XDrdx7zA1E3MQZzJOVKu23lBpSpofozceyiTwNifhv3O0KdlpkF6D56\n\
2ybqZdUztpesCXblFOLL2cxQKs1Z74N0Ap8uDrRrzZk/iikoNPTwmhZoGOmRUAIA\n\
UP1b6Oti9qr4zAXbU0MpdttSItmjOjxnemayh+x7nY43MWf4pIO8L67ArY8Y4Nz7\n\
YSeslWWaVM26spGTo2Jm+wR60HdqJJEAeqYhVRBXDSVo\n\
-----END CERTIFICATE-----\n";

    /// Made with `openssl dgst -sha256 -sign` (leaf key) over the JWS signing input of
    /// header `{"alg":"RS256","x5c":[LEAF_CERT,CA_CERT]}` and payload [`OPENSSL_PAYLOAD`].
    const OPENSSL_SIGNATURE: &str = "asgwzgTSqeK2qzd4C85PQEcMiZhP1LzdlADrb2aqgZd8pAIKSPK_9JAXbMugKPKMYMXw-UHdiIp7ynzy7esjOa-w3ypVoIMa56TEopvRhm2pThKOTMmLPJJelFAZonZOOhoWloBUbbVmhsFEEdnE1b_1iF4j7wTZUCDBwpa8nI--PHi3NQbZE2uodrKMQBlXzl7Dbc8qW-h1SEjAEg4tXevsvi3LEyOtKxX8b3N98ashI4Ld0H60ImbhSMI5ftxKpusDaZ7ck_HbFOQSpxGGHnuVUGnUTDww20WDo2ftVcjnYxe_I--H39kn7FZslK8tER2d7_H4JKNX7ZizA3WfOw";
    const OPENSSL_PAYLOAD: &str = r#"{"id":"6690e6c9-3ef0-4ed3-8b37-7f3964730bee","actor":{"mbox":"mailto:signer@example.com","objectType":"Agent"},"verb":{"id":"http://adlnet.gov/expapi/verbs/attended","display":{"en-US":"attended"}},"object":{"id":"http://www.example.com/meetings/occurances/34534","objectType":"Activity"},"timestamp":"2024-01-02T03:04:05.678Z"}"#;

    fn der_b64(pem: &str) -> String {
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn leaf_key() -> EncodingKey {
        EncodingKey::from_rsa_pem(LEAF_KEY.as_bytes()).unwrap()
    }

    fn x5c(pems: &[&str]) -> Value {
        Value::Array(pems.iter().map(|p| Value::String(der_b64(p))).collect())
    }

    /// A compact JWS of `payload` with `header`, signed with `key`.
    fn sign(header: &Value, payload: &[u8], alg: Algorithm, key: &EncodingKey) -> String {
        let (h, p) = (b64(&serde_json::to_vec(header).unwrap()), b64(payload));
        let signature =
            jsonwebtoken::crypto::sign(format!("{h}.{p}").as_bytes(), key, alg).unwrap();
        format!("{h}.{p}.{signature}")
    }

    fn sign_statement(statement: &Value, header: Value) -> String {
        let alg = match header["alg"].as_str() {
            Some("RS384") => Algorithm::RS384,
            Some("RS512") => Algorithm::RS512,
            _ => Algorithm::RS256,
        };
        sign(
            &header,
            &serde_json::to_vec(statement).unwrap(),
            alg,
            &leaf_key(),
        )
    }

    fn statement() -> Value {
        json!({
            "id": "0b8f7f4a-7cf5-4a4c-a0a3-33b1c8f32d55",
            "actor": {"objectType": "Agent", "name": "xAPI account", "mbox": "mailto:xapi@adlnet.gov"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"en-GB": "attended", "en-US": "attended"}},
            "object": {"objectType": "Activity", "id": "http://www.example.com/meetings/occurances/34534"},
            "result": {"duration": "P1DT12H36M0.12S", "score": {"scaled": 0.5}},
            "timestamp": "2024-05-04T12:00:00.000Z",
        })
    }

    fn signature_attachment(jws: &str) -> (Value, AttachmentContent) {
        let sha2 = hex::encode(Sha256::digest(jws.as_bytes()));
        let attachment = json!({
            "usageType": SIGNATURE_USAGE_TYPE,
            "display": {"en-US": "Signature"},
            "contentType": "application/octet-stream",
            "length": jws.len(),
            "sha2": sha2,
        });
        let content = AttachmentContent {
            sha2,
            content_type: "application/octet-stream".into(),
            content: Bytes::from(jws.to_owned()),
        };
        (attachment, content)
    }

    /// `statement` as sent with its signature attachment, checked.
    fn check(statement: &Value, jws: &str, version: XapiVersion) -> Result<(), XapiError> {
        let (attachment, content) = signature_attachment(jws);
        let mut sent = statement.clone();
        sent["attachments"] = json!([attachment]);
        verify_signed_statements(&sent, &[content], version)
    }

    fn requirement(e: &XapiError) -> &str {
        e.requirement.as_deref().unwrap_or("")
    }

    // ----- algorithms (XAPI-00117) -----

    #[test]
    fn data_2_6_s4_b4_xapi_00117_rs256_rs384_rs512_accepted() {
        for alg in ["RS256", "RS384", "RS512"] {
            let jws = sign_statement(&statement(), json!({"alg": alg}));
            for v in [V1, V2] {
                check(&statement(), &jws, v).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            }
            let jws = sign_statement(
                &statement(),
                json!({"alg": alg, "x5c": x5c(&[LEAF_CERT, CA_CERT])}),
            );
            check(&statement(), &jws, V2).unwrap_or_else(|e| panic!("{alg} x5c: {e:?}"));
        }
    }

    #[test]
    fn data_2_6_s4_b4_xapi_00117_hs256_rejected() {
        let payload = serde_json::to_vec(&statement()).unwrap();
        let jws = sign(
            &json!({"alg": "HS256"}),
            &payload,
            Algorithm::HS256,
            &EncodingKey::from_secret(LEAF_KEY.as_bytes()),
        );
        let e = check(&statement(), &jws, V1).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(requirement(&e).contains("XAPI-00117"), "{e:?}");
    }

    #[test]
    fn data_2_6_s4_b4_xapi_00117_other_or_missing_alg_rejected() {
        let p = b64(&serde_json::to_vec(&statement()).unwrap());
        for header in [
            json!({"alg": "none"}),
            json!({"alg": "PS256"}),
            json!({"alg": "ES256"}),
            json!({"typ": "JWT"}),
        ] {
            let jws = format!("{}.{p}.AAAA", b64(&serde_json::to_vec(&header).unwrap()));
            let e = check(&statement(), &jws, V2).unwrap_err();
            assert!(requirement(&e).contains("XAPI-00117"), "{header}: {e:?}");
        }
    }

    // ----- the attachment (XAPI-00115) -----

    #[test]
    fn data_2_6_s4_b1_xapi_00115_content_type_not_octet_stream_rejected() {
        let jws = sign_statement(&statement(), json!({"alg": "RS256"}));
        let (mut attachment, content) = signature_attachment(&jws);
        attachment["contentType"] = json!("text/plain; charset=ascii");
        let mut sent = statement();
        sent["attachments"] = json!([attachment]);
        let e = verify_signed_statements(&sent, &[content], V1).unwrap_err();
        assert!(requirement(&e).contains("XAPI-00115"), "{e:?}");
        assert_eq!(e.path.as_deref(), Some("/attachments/0"));
    }

    #[test]
    fn data_2_6_s4_b1_xapi_00115_signature_without_content_rejected() {
        let jws = sign_statement(&statement(), json!({"alg": "RS256"}));
        let (mut attachment, _) = signature_attachment(&jws);
        attachment["fileUrl"] = json!("http://example.com/signature.jws");
        let mut sent = statement();
        sent["attachments"] = json!([attachment]);
        // an application/json request: no contents at all
        let e = verify_signed_statements(&sent, &[], V2).unwrap_err();
        assert!(requirement(&e).contains("XAPI-00115"), "{e:?}");
    }

    #[test]
    fn data_2_6_statements_without_signature_are_not_examined() {
        let mut s = statement();
        s["attachments"] = json!([{"usageType": "http://example.com/other", "contentType": "text/plain", "sha2": "ab"}]);
        assert!(verify_signed_statements(&s, &[], V1).is_ok());
        assert!(verify_signed_statements(&json!([statement(), s]), &[], V2).is_ok());
    }

    // ----- JWS form -----

    #[test]
    fn data_2_6_s4_b1_xapi_00115_malformed_jws_rejected() {
        let jws = sign_statement(&statement(), json!({"alg": "RS256"}));
        let parts: Vec<&str> = jws.split('.').collect();
        for bad in [
            "not a jws".to_string(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{}.{}.{}.x", parts[0], parts[1], parts[2]),
            format!("{}.{}.", parts[0], parts[1]),
            format!("!!!.{}.{}", parts[1], parts[2]),
            format!(".{}.{}", parts[1], parts[2]),
            format!("{}.{}.{}", b64(b"[1,2]"), parts[1], parts[2]),
        ] {
            let e = check(&statement(), &bad, V1).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{bad}");
        }
    }

    #[test]
    fn data_2_6_s4_b3_xapi_00116_payload_not_json_rejected() {
        // What the ADL suite sends: the serialization with its first `"` replaced by `'`.
        let broken = serde_json::to_string(&statement())
            .unwrap()
            .replacen('"', "'", 1);
        let jws = sign(
            &json!({"alg": "RS256"}),
            broken.as_bytes(),
            Algorithm::RS256,
            &leaf_key(),
        );
        let e = check(&statement(), &jws, V1).unwrap_err();
        assert!(requirement(&e).contains("XAPI-00116"), "{e:?}");
        let jws = sign(
            &json!({"alg": "RS256"}),
            b"[1,2,3]",
            Algorithm::RS256,
            &leaf_key(),
        );
        assert!(requirement(&check(&statement(), &jws, V2).unwrap_err()).contains("XAPI-00116"));
    }

    #[test]
    fn rfc_7515_crit_header_rejected() {
        let jws = sign_statement(
            &statement(),
            json!({"alg": "RS256", "crit": ["exp"], "exp": 1}),
        );
        assert!(check(&statement(), &jws, V1).is_err());
    }

    #[test]
    fn data_2_6_s4_b2_json_serialization_only_under_1_0() {
        let jws = sign_statement(
            &statement(),
            json!({"alg": "RS256", "x5c": x5c(&[LEAF_CERT])}),
        );
        let parts: Vec<&str> = jws.split('.').collect();
        let flattened =
            json!({"protected": parts[0], "payload": parts[1], "signature": parts[2]}).to_string();
        check(&statement(), &flattened, V1).unwrap();
        let general = json!({"payload": parts[1], "signatures": [{"protected": parts[0], "signature": parts[2]}]}).to_string();
        check(&statement(), &general, V1).unwrap();
        assert!(
            check(&statement(), &flattened, V2).is_err(),
            "2.0: compact serialization only"
        );
        // the JSON form is verified too
        let tampered =
            json!({"protected": parts[0], "payload": parts[1], "signature": b64(b"forged")})
                .to_string();
        assert!(check(&statement(), &tampered, V1).is_err());
        // header parameters may not be both protected and unprotected
        let dup = json!({"protected": parts[0], "header": {"alg": "RS256"}, "payload": parts[1], "signature": parts[2]}).to_string();
        assert!(check(&statement(), &dup, V1).is_err());
    }

    // ----- X.509 -----

    #[test]
    fn data_2_6_x5c_single_certificate_accepted() {
        let jws = sign_statement(
            &statement(),
            json!({"alg": "RS512", "x5c": x5c(&[LEAF_CERT])}),
        );
        check(&statement(), &jws, V1).unwrap();
    }

    #[test]
    fn data_2_6_x5c_signature_made_by_openssl_verifies() {
        let header = format!(
            r#"{{"alg":"RS256","x5c":["{}","{}"]}}"#,
            der_b64(LEAF_CERT),
            der_b64(CA_CERT)
        );
        let jws = format!(
            "{}.{}.{OPENSSL_SIGNATURE}",
            b64(header.as_bytes()),
            b64(OPENSSL_PAYLOAD.as_bytes())
        );
        let received: Value = serde_json::from_str(OPENSSL_PAYLOAD).unwrap();
        check(&received, &jws, V1).unwrap();
        check(&received, &jws, V2).unwrap();
    }

    #[test]
    fn data_2_6_x5c_tampered_payload_rejected() {
        let jws = sign_statement(
            &statement(),
            json!({"alg": "RS256", "x5c": x5c(&[LEAF_CERT, CA_CERT])}),
        );
        let mut altered = statement();
        altered["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/passed");
        let parts: Vec<&str> = jws.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&altered).unwrap()),
            parts[2]
        );
        let e = check(&altered, &forged, V2).unwrap_err();
        assert!(e.message.contains("does not verify"), "{e:?}");
        // without x5c there is no key: only the form is checked, so the same forgery passes
        let plain = sign_statement(&statement(), json!({"alg": "RS256"}));
        let parts: Vec<&str> = plain.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&altered).unwrap()),
            parts[2]
        );
        assert!(check(&altered, &forged, V2).is_ok());
    }

    #[test]
    fn data_2_6_x5c_certificate_of_another_key_rejected() {
        let jws = sign_statement(
            &statement(),
            json!({"alg": "RS256", "x5c": x5c(&[CA_CERT])}),
        );
        assert!(check(&statement(), &jws, V1).is_err());
    }

    #[test]
    fn data_2_6_x5c_broken_chain_rejected() {
        // the signer certificate followed by something that is not its issuer
        let jws = sign_statement(
            &statement(),
            json!({"alg": "RS256", "x5c": x5c(&[LEAF_CERT, LEAF_CERT])}),
        );
        let e = check(&statement(), &jws, V1).unwrap_err();
        assert!(e.message.contains("chain"), "{e:?}");
        // same issuer name, but another key: the signer certificate's signature fails
        let jws = sign_statement(
            &statement(),
            json!({"alg": "RS256", "x5c": x5c(&[LEAF_CERT, OTHER_CA_CERT])}),
        );
        let e = check(&statement(), &jws, V2).unwrap_err();
        assert!(e.message.contains("chain"), "{e:?}");
    }

    #[test]
    fn data_2_6_x5c_malformed_rejected() {
        for bad in [
            json!([]),
            json!("MIIB"),
            json!(["not base64 !"]),
            json!([b64(b"not a certificate")]),
            json!([1]),
        ] {
            let jws = sign_statement(&statement(), json!({"alg": "RS256", "x5c": bad}));
            assert!(check(&statement(), &jws, V1).is_err(), "{bad}");
        }
    }

    // ----- payload vs statement -----

    #[test]
    fn data_2_6_payload_differing_from_statement_rejected() {
        let jws = sign_statement(&statement(), json!({"alg": "RS256"}));
        let mut other = statement();
        other["object"]["id"] = json!("http://www.example.com/elsewhere");
        let e = check(&other, &jws, V1).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("/object/id"));
        assert!(requirement(&e).contains("Data 2.6"));
        // one property more or less is a difference too
        let mut more = statement();
        more["context"] = json!({"language": "en"});
        assert_eq!(
            check(&more, &jws, V2).unwrap_err().path.as_deref(),
            Some("/context")
        );
        let mut less = statement();
        less.as_object_mut().unwrap().remove("result");
        assert!(check(&less, &jws, V2).is_err());
    }

    #[test]
    fn data_2_6_batch_error_points_at_the_statement() {
        let good = sign_statement(&statement(), json!({"alg": "RS256"}));
        let (att_good, content_good) = signature_attachment(&good);
        let mut other = statement();
        other["verb"]["id"] = json!("http://example.com/verb");
        let bad = sign_statement(&other, json!({"alg": "RS256"}));
        let (att_bad, content_bad) = signature_attachment(&bad);
        let mut first = statement();
        first["attachments"] = json!([att_good]);
        let mut second = statement();
        second["attachments"] = json!([att_bad]);
        let e = verify_signed_statements(&json!([first, second]), &[content_good, content_bad], V1)
            .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("/1/verb/id"));
    }

    #[test]
    fn data_2_3_1_lrs_assigned_properties_ignored() {
        let mut signed = statement();
        for k in ["id", "timestamp"] {
            signed.as_object_mut().unwrap().remove(k);
        }
        let jws = sign_statement(&signed, json!({"alg": "RS256"}));
        let mut stored = statement();
        stored["stored"] = json!("2024-05-04T12:00:01.000Z");
        stored["authority"] = json!({"objectType": "Agent", "mbox": "mailto:lrs@example.com"});
        stored["version"] = json!("1.0.0");
        check(&stored, &jws, V1).unwrap();
        // but an id that was signed must be the id received
        let jws = sign_statement(&statement(), json!({"alg": "RS256"}));
        let mut other_id = statement();
        other_id["id"] = json!("11111111-7cf5-4a4c-a0a3-33b1c8f32d55");
        assert_eq!(
            check(&other_id, &jws, V1).unwrap_err().path.as_deref(),
            Some("/id")
        );
        let mut no_id = statement();
        no_id.as_object_mut().unwrap().remove("id");
        assert!(check(&no_id, &jws, V1).is_err());
    }

    #[test]
    fn data_2_3_1_timestamps_compare_as_points_in_time() {
        let jws = sign_statement(&statement(), json!({"alg": "RS256"}));
        for same in [
            "2024-05-04T07:00:00-05:00",
            "2024-05-04T12:00:00Z",
            "2024-05-04T12:00:00.0004Z",
            "2024-05-04T14:00:00+0200",
        ] {
            let mut s = statement();
            s["timestamp"] = json!(same);
            check(&s, &jws, V1).unwrap_or_else(|e| panic!("{same}: {e:?}"));
            check(&s, &jws, V2).unwrap_or_else(|e| panic!("{same}: {e:?}"));
        }
        let mut s = statement();
        s["timestamp"] = json!("2024-05-04T12:00:00.002Z");
        assert_eq!(
            check(&s, &jws, V2).unwrap_err().path.as_deref(),
            Some("/timestamp")
        );
    }

    #[test]
    fn xapi_2_0_durations_compare_to_hundredths_of_a_second() {
        // As the ADL suite (2.0) does: the statement says 0.1237 s, the signed one 0.12 s.
        let jws = sign_statement(&statement(), json!({"alg": "RS256"}));
        let mut s = statement();
        s["result"]["duration"] = json!("P1DT12H36M0.1237S");
        check(&s, &jws, V2).unwrap();
        s["result"]["duration"] = json!("P1DT12H36M00.120S");
        check(&s, &jws, V2).unwrap();
        s["result"]["duration"] = json!("P1DT12H36M0.13S");
        assert_eq!(
            check(&s, &jws, V2).unwrap_err().path.as_deref(),
            Some("/result/duration")
        );
        s["result"]["duration"] = json!("P1DT12H37M0.12S");
        assert!(check(&s, &jws, V2).is_err());
    }

    #[test]
    fn data_2_3_1_durations_compare_as_strings_under_1_0() {
        let jws = sign_statement(&statement(), json!({"alg": "RS256"}));
        let mut s = statement();
        s["result"]["duration"] = json!("P1DT12H36M0.1237S");
        assert_eq!(
            check(&s, &jws, V1).unwrap_err().path.as_deref(),
            Some("/result/duration")
        );
    }

    #[test]
    fn duration_keys() {
        assert_eq!(duration_key("PT0.129S"), duration_key("PT0.12S"));
        assert_eq!(duration_key("PT0S"), duration_key("P0D"));
        assert_eq!(
            duration_key("P1Y2M"),
            Some(vec![('Y', "1".into()), ('M', "2".into())])
        );
        assert_ne!(duration_key("P1M"), duration_key("PT1M"));
        assert_eq!(duration_key("PT1,5H"), duration_key("PT1.50H"));
        for bad in [
            "", "P", "PT", "1D", "P1", "PT1D", "P1D2Y", "P.S", "PT-1S", "P1DT",
        ] {
            assert_eq!(duration_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn data_2_3_1_case_insensitive_and_unordered_data() {
        let mut signed = statement();
        signed["actor"] = json!({"objectType": "Group", "mbox": "mailto:Team@Example.COM", "member": [
            {"mbox": "mailto:a@example.com"}, {"mbox": "mailto:b@example.com", "objectType": "Agent"}
        ]});
        signed["context"] = json!({
            "registration": "EC531277-B57B-4C15-8D91-D292C5B2B8F7",
            "contextActivities": {"parent": {"id": "http://example.com/parent"}},
        });
        signed["object"]["definition"] = json!({"name": {"en-us": "Meeting"}});
        let jws = sign_statement(&signed, json!({"alg": "RS256"}));
        let mut received = signed.clone();
        received["id"] = json!("0B8F7F4A-7CF5-4A4C-A0A3-33B1C8F32D55");
        received["actor"] = json!({"objectType": "Group", "mbox": "mailto:Team@example.com", "member": [
            {"mbox": "mailto:b@example.com", "objectType": "Agent"}, {"mbox": "mailto:a@example.com", "objectType": "Agent"}
        ]});
        received["context"]["registration"] = json!("ec531277-b57b-4c15-8d91-d292c5b2b8f7");
        received["context"]["contextActivities"]["parent"] =
            json!([{"id": "http://example.com/parent", "objectType": "Activity"}]);
        received["object"]["definition"]["name"] = json!({"en-US": "Meeting"});
        received["result"]["score"]["scaled"] = json!(0.50);
        check(&received, &jws, V1).unwrap();
        check(&received, &jws, V2).unwrap();
        // the local part of an mbox is case-sensitive, and so are IRIs and strings
        let mut other = received.clone();
        other["actor"]["mbox"] = json!("mailto:team@example.com");
        assert!(check(&other, &jws, V1).is_err());
        let mut other = received.clone();
        other["object"]["definition"]["name"] = json!({"en-US": "meeting"});
        assert!(check(&other, &jws, V1).is_err());
        let mut other = received;
        other["object"]["objectType"] = json!("Agent");
        assert!(check(&other, &jws, V1).is_err());
    }

    #[test]
    fn data_2_3_1_numbers_compare_by_value_extensions_as_json() {
        let mut signed = statement();
        signed["result"]["score"] = json!({"raw": 1, "min": 0, "max": 2});
        signed["result"]["extensions"] =
            json!({"http://example.com/ext": {"Display": {"en": "x"}, "n": 1}});
        let jws = sign_statement(&signed, json!({"alg": "RS256"}));
        let mut received = signed.clone();
        received["result"]["score"]["raw"] = json!(1.0);
        received["result"]["extensions"]["http://example.com/ext"]["n"] = json!(1.0);
        check(&received, &jws, V1).unwrap();
        received["result"]["extensions"]["http://example.com/ext"]["Display"] = json!({"EN": "x"});
        assert_eq!(
            check(&received, &jws, V1).unwrap_err().path.as_deref(),
            Some("/result/extensions")
        );
    }

    #[test]
    fn data_2_3_1_substatements_compared_as_statements() {
        let mut signed = statement();
        signed["object"] = json!({
            "objectType": "SubStatement",
            "actor": {"mbox": "mailto:a@example.com"},
            "verb": {"id": "http://example.com/will-attend"},
            "object": {"id": "http://example.com/meeting"},
            "timestamp": "2024-06-01T10:00:00Z",
        });
        let jws = sign_statement(&signed, json!({"alg": "RS256"}));
        let mut received = signed.clone();
        received["object"]["timestamp"] = json!("2024-06-01T12:00:00+02:00");
        received["object"]["actor"]["objectType"] = json!("Agent");
        check(&received, &jws, V2).unwrap();
        received["object"]["verb"]["id"] = json!("http://example.com/attended");
        assert_eq!(
            check(&received, &jws, V2).unwrap_err().path.as_deref(),
            Some("/object/verb/id")
        );
        // a SubStatement's timestamp is never assigned by an LRS: its absence is a difference
        let mut missing = signed.clone();
        missing["object"]
            .as_object_mut()
            .unwrap()
            .remove("timestamp");
        assert!(check(&missing, &jws, V2).is_err());
    }

    #[test]
    fn data_2_3_1_other_attachments_are_not_compared() {
        let mut signed = statement();
        signed["attachments"] = json!([{"usageType": "http://example.com/a", "sha2": "00"}]);
        let jws = sign_statement(&signed, json!({"alg": "RS256"}));
        // received: other attachments plus the signature
        check(&statement(), &jws, V1).unwrap();
        assert!(statements_equivalent(&signed, &statement(), V1));
        assert!(!statements_equivalent(&json!([]), &statement(), V1));
    }

    #[test]
    fn data_2_6_pointer_escaping_in_differences() {
        let mut signed = statement();
        signed["context"] = json!({"extensions": {"http://example.com/a~b": 1}});
        let jws = sign_statement(&signed, json!({"alg": "RS256"}));
        let mut received = signed.clone();
        received["context"]["extensions"]["http://example.com/a~b"] = json!(2);
        assert_eq!(
            check(&received, &jws, V1).unwrap_err().path.as_deref(),
            Some("/context/extensions")
        );
        let mut received = signed;
        received["context"]["instructor"] = json!({"mbox": "mailto:i@example.com"});
        received["context"]["x/y"] = json!(1);
        let e = check(&received, &jws, V1).unwrap_err();
        assert!(
            matches!(
                e.path.as_deref(),
                Some("/context/instructor" | "/context/x~1y")
            ),
            "{e:?}"
        );
    }

    // ----- end to end, shaped like the ADL suite's request -----

    #[test]
    fn data_2_6_suite_shaped_multipart_request_accepted() {
        let boundary = "-------------__5f6a3d2e-1c1b-4c4e-9a0b-2b7f0d6c8e11__123__456";
        let mut signed = statement();
        signed.as_object_mut().unwrap().remove("attachments");
        let jws = sign_statement(&signed, json!({"alg": "RS384"}));
        let (attachment, _) = signature_attachment(&jws);
        let mut sent = signed.clone();
        sent["attachments"] = json!([attachment]);
        let body = format!(
            "\r\n--{boundary}\r\nContent-Type:application/json\r\n\r\n{}\r\n--{boundary}\r\nContent-Type:application/octet-stream\r\nContent-Transfer-Encoding:binary\r\nX-Experience-API-Hash:{}\r\n\r\n{jws}\r\n--{boundary}--",
            serde_json::to_string(&sent).unwrap(),
            attachment["sha2"].as_str().unwrap(),
        );
        let content_type = format!("multipart/mixed; boundary={boundary}");
        let b = multipart::boundary(&content_type).unwrap();
        let parts = multipart::parse(body.as_bytes(), &b).unwrap();
        let (statements, contents) = multipart::statements_request(parts, V2).unwrap();
        verify_signed_statements(&statements, &contents, V2).unwrap();
        verify_signed_statements(&statements, &contents, V1).unwrap();
    }
}
