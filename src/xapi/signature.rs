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
use crate::error::XapiError;
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

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
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
        let here = format!("{path}/{}", pointer_escape(key));
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
        let here = format!("{path}/{}", pointer_escape(key));
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
        let here = format!("{path}/{}", pointer_escape(key));
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
