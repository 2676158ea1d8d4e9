//! `multipart/mixed` statement requests and responses (Communication 1.5.2, Data 2.4.11).
//!
//! Pure: the whole body is already in memory. [`parse`] splits a body per RFC 2046,
//! [`statements_request`] applies the xAPI attachment rules to the parts,
//! [`check_attachments_without_parts`] applies them to an `application/json` request,
//! and [`build`] writes the `multipart/mixed` answer of `GET statements?attachments=true`.
use crate::error::XapiError;
use crate::xapi::XapiVersion;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512, Sha512_224, Sha512_256};

/// One body part: its headers (names lowercased, values trimmed, in order) and its raw content.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An attachment's bytes, ready to store (content stored once per sha2).
///
/// `sha2` is lowercase hex (compare case-insensitively with the statements' `sha2`);
/// `content` has been checked to hash to it.
#[derive(Debug, Clone)]
pub struct AttachmentContent {
    pub sha2: String,
    pub content_type: String,
    pub content: Bytes,
}

const REQ_MULTIPART: &str = "Communication 1.5.2.s2.b2 (RFC 2046), XAPI-00130, XAPI-00131";
const REQ_FIRST_PART: &str = "Communication 1.5.2.s2.b2.b1, XAPI-00133, XAPI-00134";
const REQ_HASH_HEADER: &str = "Communication 1.5.2.s2.b2.b3, XAPI-00132";
const REQ_EXCESS_PART: &str = "Communication 1.5.2 (LRS requirements), XAPI-00128, XAPI-00132";
const REQ_TRANSFER_ENCODING: &str = "Communication 1.5.2.s2.b2.b4, XAPI-00135";
const REQ_MISSING_PART: &str = "Communication 1.5.2 (LRS requirements), XAPI-00129";
const REQ_HASH_CONTENT: &str = "Communication 1.5.2 (match raw data by SHA-2), Data 2.4.11";
const REQ_JSON_NEEDS_FILE_URL: &str = "Communication 1.5.1, XAPI-00129";

/// The `type/subtype` of a media type, lowercased, parameters dropped.
pub(crate) fn media_type_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Splits `a; b="c;d"; e` at the semicolons that are outside quoted strings.
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ';' && !quoted {
            out.push(&value[start..i]);
            start = i + 1;
        }
    }
    out.push(&value[start..]);
    out
}

/// Boundary parameter of a `multipart/mixed` Content-Type (quoted or not); None if not multipart/mixed or no boundary.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut pieces = split_params(content_type).into_iter();
    if media_type_essence(pieces.next()?) != "multipart/mixed" {
        return None;
    }
    for param in pieces {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let value = value.trim();
        let b = match value.strip_prefix('"') {
            Some(rest) => {
                let mut b = String::new();
                let mut chars = rest.chars();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => b.push(chars.next()?),
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => b.push(c),
                    }
                }
                if !closed {
                    return None;
                }
                b
            }
            None => value.to_owned(),
        };
        // RFC 2046 §5.1.1: 1 to 70 characters, none of them controls, not ending with a space.
        let ok = !b.is_empty()
            && b.len() <= 70
            && !b.ends_with(' ')
            && !b.chars().any(|c| c.is_control());
        return ok.then_some(b);
    }
    None
}

fn malformed(message: impl Into<String>) -> XapiError {
    XapiError::bad_request(message).req(REQ_MULTIPART)
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let last_start = haystack.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last_start {
        let off = haystack[i..=last_start].iter().position(|&b| b == first)?;
        i += off;
        if &haystack[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

struct Delimiter {
    /// End of the preceding part's content (the line break before the delimiter excluded).
    content_end: usize,
    /// First byte after the delimiter line.
    after: usize,
    /// `--boundary--`: the last one.
    close: bool,
}

/// The next `--boundary` at the start of a line, at or after `from`, followed by `--`
/// (close) or by optional transport padding and a line break (CRLF, or LF tolerated).
fn next_delimiter(body: &[u8], dash_boundary: &[u8], from: usize) -> Option<Delimiter> {
    let mut i = from;
    while i < body.len() {
        let at = i + find(&body[i..], dash_boundary)?;
        if at == 0 || body[at - 1] == b'\n' {
            let mut content_end = at;
            if at > from && body[at - 1] == b'\n' {
                content_end -= 1;
                if content_end > from && body[content_end - 1] == b'\r' {
                    content_end -= 1;
                }
            }
            let j = at + dash_boundary.len();
            let rest = &body[j..];
            if rest.starts_with(b"--") {
                return Some(Delimiter {
                    content_end,
                    after: j + 2,
                    close: true,
                });
            }
            let pad = rest
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
            let rest = &rest[pad..];
            let eol = if rest.starts_with(b"\r\n") {
                2
            } else if rest.starts_with(b"\n") {
                1
            } else {
                0
            };
            if eol > 0 {
                return Some(Delimiter {
                    content_end,
                    after: j + pad + eol,
                    close: false,
                });
            }
        }
        i = at + 1;
    }
    None
}

/// One encapsulation: header lines, an empty line, the content.
fn parse_part(bytes: &[u8], index: usize) -> Result<Part, XapiError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    loop {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            return Err(malformed(format!(
                "multipart part {index} has no empty line ending its headers"
            )));
        };
        let mut line = &bytes[pos..pos + nl];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        pos += nl + 1;
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if text.starts_with(' ') || text.starts_with('\t') {
            // obsolete line folding: continues the previous header
            let Some((_, value)) = headers.last_mut() else {
                return Err(malformed(format!(
                    "multipart part {index} starts with a continuation line"
                )));
            };
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(text.trim());
            continue;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(malformed(format!(
                "multipart part {index} has a header line without a colon"
            )));
        };
        let name = name.trim_end();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(malformed(format!(
                "multipart part {index} has an invalid header name"
            )));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Part {
        headers,
        body: Bytes::copy_from_slice(&bytes[pos..]),
    })
}

/// Splits a multipart body (CRLF line endings; tolerate LF as well) into parts. 400 on malformed input.
///
/// The preamble before the first delimiter and the epilogue after the close delimiter are
/// ignored (RFC 2046 §5.1.1); a missing first delimiter or close delimiter, or a part
/// without the empty line ending its headers, is malformed.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, XapiError> {
    if boundary.is_empty() {
        return Err(malformed("the multipart boundary is empty"));
    }
    let dash_boundary = format!("--{boundary}").into_bytes();
    let Some(first) = next_delimiter(body, &dash_boundary, 0) else {
        return Err(malformed(
            "the multipart body does not contain the boundary given in the Content-Type header",
        ));
    };
    let mut parts = Vec::new();
    if first.close {
        return Ok(parts);
    }
    let mut cursor = first.after;
    loop {
        let Some(next) = next_delimiter(body, &dash_boundary, cursor) else {
            return Err(malformed(
                "the multipart body has no closing boundary delimiter",
            ));
        };
        let end = next.content_end.max(cursor);
        parts.push(parse_part(&body[cursor..end], parts.len())?);
        if next.close {
            return Ok(parts);
        }
        cursor = next.after;
    }
}

/// Each statement of a request body (one statement or an array of them) with its JSON pointer prefix.
pub(crate) fn each_statement(statements: &Value) -> Vec<(String, &Value)> {
    match statements {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("/{i}"), s))
            .collect(),
        other => vec![(String::new(), other)],
    }
}

/// An Attachment Object found in the request, with its JSON pointer.
struct AttachmentRef<'a> {
    pointer: String,
    value: &'a Value,
}

impl AttachmentRef<'_> {
    fn sha2(&self) -> Option<String> {
        self.value
            .get("sha2")
            .and_then(Value::as_str)
            .map(normalize_hash)
    }
    fn has_file_url(&self) -> bool {
        matches!(self.value.get("fileUrl"), Some(Value::String(s)) if !s.trim().is_empty())
    }
}

/// Attachments of each statement and of each statement's SubStatement (Data 2.4.4.3: a
/// SubStatement is validated as a Statement, and Data 2.4.11 allows it Attachments).
fn attachment_refs(statements: &Value) -> Vec<AttachmentRef<'_>> {
    fn push<'a>(out: &mut Vec<AttachmentRef<'a>>, prefix: &str, holder: &'a Value) {
        if let Some(items) = holder.get("attachments").and_then(Value::as_array) {
            for (j, value) in items.iter().enumerate() {
                out.push(AttachmentRef {
                    pointer: format!("{prefix}/attachments/{j}"),
                    value,
                });
            }
        }
    }
    let mut out = Vec::new();
    for (ptr, statement) in each_statement(statements) {
        push(&mut out, &ptr, statement);
        if let Some(object) = statement.get("object") {
            if object.get("objectType").and_then(Value::as_str) == Some("SubStatement") {
                push(&mut out, &format!("{ptr}/object"), object);
            }
        }
    }
    out
}

pub(crate) fn normalize_hash(hash: &str) -> String {
    hash.trim().to_ascii_lowercase()
}

/// Whether `content` hashes to `expected` (lowercase hex) with a SHA-2 function of that length.
fn sha2_matches(expected: &str, content: &[u8]) -> bool {
    fn hex_of<D: Digest>(content: &[u8]) -> String {
        hex::encode(D::digest(content))
    }
    match expected.len() {
        56 => hex_of::<Sha224>(content) == expected || hex_of::<Sha512_224>(content) == expected,
        64 => hex_of::<Sha256>(content) == expected || hex_of::<Sha512_256>(content) == expected,
        96 => hex_of::<Sha384>(content) == expected,
        128 => hex_of::<Sha512>(content) == expected,
        _ => false,
    }
}

/// Applies the xAPI rules to a multipart/mixed statements request: first part is application/json holding
/// the statement(s) (returned parsed); every other part needs X-Experience-API-Hash and
/// Content-Transfer-Encoding: binary; every attachment in the statements (SubStatements included)
/// that has no fileUrl must have a matching part by sha2, and every part must match an
/// attachment's sha2; checks the part content's actual SHA-2 equals the hash header.
/// Returns the statements JSON value and the attachment contents (one per distinct sha2, in
/// part order).
///
/// The statements are only parsed here, not validated: run the statement validator on the
/// returned value. The declared `length` is not compared with the content (the ADL suite sends
/// a content whose length differs from it and expects 200), nor the part Content-Type with
/// the declared `contentType` (the spec's own example differs in parameters).
pub fn statements_request(
    parts: Vec<Part>,
    _version: XapiVersion,
) -> Result<(Value, Vec<AttachmentContent>), XapiError> {
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Err(malformed("the multipart body has no parts"));
    };
    let first_type = first.header("content-type").map(media_type_essence);
    if first_type.as_deref() != Some("application/json") {
        return Err(XapiError::bad_request(format!(
            "the first part of a multipart/mixed statement request must have Content-Type application/json, not {}",
            first.header("content-type").unwrap_or("(none)")
        ))
        .req(REQ_FIRST_PART));
    }
    let json = first
        .body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&first.body);
    let statements: Value = serde_json::from_slice(json).map_err(|e| {
        XapiError::bad_request(format!("the first part is not valid JSON: {e}")).req(REQ_FIRST_PART)
    })?;
    if !statements.is_object() && !statements.is_array() {
        return Err(XapiError::bad_request(
            "the first part must hold a statement object or an array of statements",
        )
        .req(REQ_FIRST_PART));
    }

    let refs = attachment_refs(&statements);
    let declared: Vec<Option<String>> = refs.iter().map(AttachmentRef::sha2).collect();

    let mut contents: Vec<AttachmentContent> = Vec::new();
    for (i, part) in parts.enumerate() {
        let index = i + 1;
        let Some(hash) = part.header("x-experience-api-hash") else {
            return Err(XapiError::bad_request(format!(
                "multipart part {index} has no X-Experience-API-Hash header"
            ))
            .req(REQ_HASH_HEADER));
        };
        let hash = normalize_hash(hash);
        match part.header("content-transfer-encoding") {
            Some(cte) if cte.eq_ignore_ascii_case("binary") => {}
            other => {
                return Err(XapiError::bad_request(format!(
                    "multipart part {index} must have Content-Transfer-Encoding: binary, not {}",
                    other.unwrap_or("(none)")
                ))
                .req(REQ_TRANSFER_ENCODING))
            }
        }
        let Some(owner) = declared
            .iter()
            .position(|d| d.as_deref() == Some(hash.as_str()))
        else {
            return Err(XapiError::bad_request(format!(
                "multipart part {index} (X-Experience-API-Hash {hash}) matches no attachment's sha2"
            ))
            .req(REQ_EXCESS_PART));
        };
        if !sha2_matches(&hash, &part.body) {
            return Err(XapiError::bad_request(format!(
                "the content of multipart part {index} does not hash to its X-Experience-API-Hash {hash}"
            ))
            .req(REQ_HASH_CONTENT));
        }
        if contents.iter().any(|c| c.sha2 == hash) {
            continue;
        }
        let content_type = refs[owner]
            .value
            .get("contentType")
            .and_then(Value::as_str)
            .or_else(|| part.header("content-type"))
            .unwrap_or("application/octet-stream")
            .to_owned();
        contents.push(AttachmentContent {
            sha2: hash,
            content_type,
            content: part.body,
        });
    }

    for (r, sha2) in refs.iter().zip(&declared) {
        if r.has_file_url() {
            continue;
        }
        let Some(sha2) = sha2 else {
            return Err(XapiError::bad_request(
                "an attachment without fileUrl must have a sha2 string matching a multipart part",
            )
            .at(format!("{}/sha2", r.pointer))
            .req(REQ_MISSING_PART));
        };
        if !contents.iter().any(|c| &c.sha2 == sha2) {
            return Err(XapiError::bad_request(format!(
                "the attachment with sha2 {sha2} has no fileUrl and no multipart part carrying its content"
            ))
            .at(r.pointer.clone())
            .req(REQ_MISSING_PART));
        }
    }
    Ok((statements, contents))
}

/// For an application/json statements request: every attachment must have a fileUrl, else 400.
pub fn check_attachments_without_parts(
    statements: &Value,
    _version: XapiVersion,
) -> Result<(), XapiError> {
    match attachment_refs(statements)
        .into_iter()
        .find(|r| !r.has_file_url())
    {
        None => Ok(()),
        Some(r) => Err(XapiError::bad_request(
            "an attachment without fileUrl must be sent as multipart/mixed with its content",
        )
        .at(r.pointer)
        .req(REQ_JSON_NEEDS_FILE_URL)),
    }
}

/// A header value safe to write: line breaks would start a new header.
fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Builds a multipart/mixed response: first part application/json `json`, then each attachment
/// (Content-Type, Content-Transfer-Encoding: binary, X-Experience-API-Hash). Returns (content_type header value, body).
///
/// Attachments sharing a sha2 are written once. The boundary is derived from the content and
/// never occurs in it.
pub fn build(json: &[u8], attachments: &[AttachmentContent]) -> (String, Vec<u8>) {
    let mut unique: Vec<&AttachmentContent> = Vec::with_capacity(attachments.len());
    for a in attachments {
        if !unique.iter().any(|u| u.sha2.eq_ignore_ascii_case(&a.sha2)) {
            unique.push(a);
        }
    }
    let mut seed = Sha256::new();
    seed.update(json);
    for a in &unique {
        seed.update(a.sha2.as_bytes());
    }
    let seed = seed.finalize();
    let mut counter: u32 = 0;
    let boundary = loop {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        let candidate = format!("xapi-{}", &hex::encode(h.finalize())[..40]);
        let needle = candidate.as_bytes();
        let clash = find(json, needle).is_some()
            || unique.iter().any(|a| find(&a.content, needle).is_some());
        if !clash {
            break candidate;
        }
        counter = counter.wrapping_add(1);
    };

    let size = json.len() + unique.iter().map(|a| a.content.len() + 256).sum::<usize>() + 256;
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/json\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(json);
    for a in unique {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {}\r\n\r\n",
                header_safe(&a.content_type),
                header_safe(&a.sha2)
            )
            .as_bytes(),
        );
        body.extend_from_slice(&a.content);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const V1: XapiVersion = XapiVersion::V1_0;
    const V2: XapiVersion = XapiVersion::V2_0;
    const B: &str = "-------314159265358979323846";
    const TXT1: &[u8] = b"here is a simple attachment";
    const TXT2: &[u8] = b"here is another simple attachment";

    fn sha256_hex(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    fn attachment(sha2: &str, file_url: Option<&str>) -> Value {
        let mut a = json!({
            "usageType": "http://example.com/attachment-usage/test",
            "display": {"en-US": "A test attachment"},
            "contentType": "text/plain",
            "length": 27,
            "sha2": sha2,
        });
        if let Some(u) = file_url {
            a["fileUrl"] = json!(u);
        }
        a
    }

    fn statement(attachments: Vec<Value>) -> Value {
        json!({
            "actor": {"mbox": "mailto:xapi@adlnet.gov", "objectType": "Agent"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"en-US": "attended"}},
            "object": {"id": "http://www.example.com/meetings/occurances/34534"},
            "attachments": attachments,
        })
    }

    /// A multipart body: each part is (header lines, content), joined with `eol`.
    fn body_with(eol: &str, parts: &[(Vec<String>, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (headers, content) in parts {
            out.extend_from_slice(format!("--{B}{eol}").as_bytes());
            for h in headers {
                out.extend_from_slice(format!("{h}{eol}").as_bytes());
            }
            out.extend_from_slice(eol.as_bytes());
            out.extend_from_slice(content);
            out.extend_from_slice(eol.as_bytes());
        }
        out.extend_from_slice(format!("--{B}--{eol}").as_bytes());
        out
    }

    fn json_part(v: &Value) -> (Vec<String>, Vec<u8>) {
        (
            vec!["Content-Type: application/json".into()],
            serde_json::to_vec(v).unwrap(),
        )
    }

    fn att_part(hash: &str, content: &[u8]) -> (Vec<String>, Vec<u8>) {
        (
            vec![
                "Content-Type: text/plain".into(),
                "Content-Transfer-Encoding: binary".into(),
                format!("X-Experience-API-Hash: {hash}"),
            ],
            content.to_vec(),
        )
    }

    fn request(
        parts: &[(Vec<String>, Vec<u8>)],
        version: XapiVersion,
    ) -> Result<(Value, Vec<AttachmentContent>), XapiError> {
        let parsed = parse(&body_with("\r\n", parts), B)?;
        statements_request(parsed, version)
    }

    fn requirement(e: &XapiError) -> &str {
        e.requirement.as_deref().unwrap_or("")
    }

    // ----- boundary -----

    #[test]
    fn comm_1_5_2_boundary_unquoted_and_quoted() {
        assert_eq!(
            boundary(&format!("multipart/mixed; boundary={B}")).as_deref(),
            Some(B)
        );
        assert_eq!(
            boundary("multipart/mixed; boundary=\"abcABC0123'()+_,-./:=?\"").as_deref(),
            Some("abcABC0123'()+_,-./:=?")
        );
        assert_eq!(
            boundary("Multipart/Mixed;charset=utf-8; BOUNDARY=xyz ").as_deref(),
            Some("xyz")
        );
        assert_eq!(
            boundary("multipart/mixed; boundary=\"a;b\"; x=y").as_deref(),
            Some("a;b")
        );
        assert_eq!(
            boundary("multipart/mixed; boundary=\"a\\\"b\"").as_deref(),
            Some("a\"b")
        );
    }

    #[test]
    fn comm_1_5_2_xapi_00131_no_boundary_parameter_is_none() {
        assert_eq!(boundary("multipart/mixed;"), None);
        assert_eq!(boundary("multipart/mixed"), None);
        assert_eq!(boundary("multipart/mixed; boundary="), None);
        assert_eq!(boundary("multipart/mixed; boundary=\"\""), None);
        assert_eq!(boundary("multipart/mixed; boundary=\"unclosed"), None);
        assert_eq!(
            boundary(&format!("multipart/mixed; boundary={}", "x".repeat(71))),
            None
        );
    }

    #[test]
    fn comm_1_5_xapi_00127_not_multipart_mixed_is_none() {
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={B}")),
            None
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary(""), None);
    }

    // ----- parse -----

    #[test]
    fn rfc_2046_parse_crlf_body() {
        let body = body_with("\r\n", &[json_part(&json!({"a": 1})), att_part("h", TXT1)]);
        let parts = parse(&body, B).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].header("Content-Type"), Some("application/json"));
        assert_eq!(&parts[0].body[..], br#"{"a":1}"#);
        assert_eq!(parts[1].header("x-experience-api-hash"), Some("h"));
        assert_eq!(
            parts[1].headers[1],
            ("content-transfer-encoding".into(), "binary".into())
        );
        assert_eq!(&parts[1].body[..], TXT1);
    }

    #[test]
    fn rfc_2046_parse_tolerates_lf_only() {
        let body = body_with("\n", &[json_part(&json!({"a": 1})), att_part("h", TXT1)]);
        let parts = parse(&body, B).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].body[..], br#"{"a":1}"#);
        assert_eq!(&parts[1].body[..], TXT1);
    }

    #[test]
    fn rfc_2046_parse_keeps_inner_line_breaks_and_binary() {
        let content: Vec<u8> = b"line1\r\nline2\n\r\n\x00\xff--not-a-boundary\r\n".to_vec();
        let body = body_with("\r\n", &[json_part(&json!({})), att_part("h", &content)]);
        assert_eq!(&parse(&body, B).unwrap()[1].body[..], &content[..]);
    }

    #[test]
    fn rfc_2046_parse_ignores_preamble_and_epilogue() {
        let mut body = b"This is a preamble\r\n".to_vec();
        body.extend(body_with("\r\n", &[json_part(&json!({"a": 1}))]));
        body.extend_from_slice(b"epilogue, ignored\r\n");
        let parts = parse(&body, B).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(&parts[0].body[..], br#"{"a":1}"#);
    }

    #[test]
    fn rfc_2046_parse_leading_crlf_and_headers_without_space() {
        // The shape the ADL suite uses for signed statements.
        let body = format!(
            "\r\n--{B}\r\nContent-Type:application/json\r\n\r\n{{}}\r\n--{B}\r\nContent-Type:application/octet-stream\r\nContent-Transfer-Encoding:binary\r\nX-Experience-API-Hash:abc\r\n\r\nxyz\r\n--{B}--"
        );
        let parts = parse(body.as_bytes(), B).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].header("content-type"), Some("application/json"));
        assert_eq!(parts[1].header("X-Experience-API-Hash"), Some("abc"));
        assert_eq!(&parts[1].body[..], b"xyz");
    }

    #[test]
    fn rfc_2046_parse_transport_padding_folding_and_empty_content() {
        let body = format!(
            "--{B}  \r\nContent-Type: application/json;\r\n charset=utf-8\r\n\r\n[]\r\n--{B}\r\nX-A: 1\r\n\r\n\r\n--{B}\r\n\r\nno headers\r\n--{B}--\r\n"
        );
        let parts = parse(body.as_bytes(), B).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0].header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert!(parts[1].body.is_empty());
        assert!(parts[2].headers.is_empty());
        assert_eq!(&parts[2].body[..], b"no headers");
    }

    #[test]
    fn rfc_2046_parse_line_starting_with_boundary_and_more_is_content() {
        let body = format!("--{B}\r\nA: b\r\n\r\nx\r\n--{B}xyz\r\ny\r\n--{B}--");
        let parts = parse(body.as_bytes(), B).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(&parts[0].body[..], format!("x\r\n--{B}xyz\r\ny").as_bytes());
    }

    #[test]
    fn rfc_2046_parse_close_only_is_zero_parts() {
        assert!(parse(format!("--{B}--\r\n").as_bytes(), B)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn comm_1_5_2_xapi_00131_body_without_boundary_rejected() {
        let e = parse(b"Content-Type: application/json\r\n\r\n{}\r\n", B).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(requirement(&e).contains("XAPI-00131"));
        // a different boundary than the header's
        let body = body_with("\r\n", &[json_part(&json!({}))]);
        assert!(parse(&body, "other-boundary").is_err());
        assert!(parse(&body, "").is_err());
    }

    #[test]
    fn comm_1_5_2_xapi_00131_statement_before_first_boundary_rejected() {
        // The statement sits in the preamble; the only part is the attachment.
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let mut body = b"Content-Type: application/json\r\n\r\n".to_vec();
        body.extend(serde_json::to_vec(&s).unwrap());
        body.extend_from_slice(b"\r\n");
        body.extend(body_with("\r\n", &[att_part(&h1, TXT1)]));
        let parts = parse(&body, B).unwrap();
        assert_eq!(parts.len(), 1);
        let e = statements_request(parts, V2).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn rfc_2046_parse_missing_close_delimiter_rejected() {
        let body = format!("--{B}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n");
        assert_eq!(parse(body.as_bytes(), B).unwrap_err().status.as_u16(), 400);
        let body = format!("--{B}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{B}");
        assert!(parse(body.as_bytes(), B).is_err());
    }

    #[test]
    fn rfc_2046_parse_part_without_blank_line_rejected() {
        let body = format!("--{B}\r\nContent-Type: application/json\r\n--{B}--");
        assert!(parse(body.as_bytes(), B).is_err());
        let body = format!("--{B}\r\n--{B}--");
        assert!(parse(body.as_bytes(), B).is_err());
    }

    #[test]
    fn rfc_2046_parse_bad_header_lines_rejected() {
        for bad in [
            "no colon here",
            " continuation first",
            "Bad Name: x",
            ": empty name",
        ] {
            let body = format!("--{B}\r\n{bad}\r\n\r\n{{}}\r\n--{B}--");
            assert!(parse(body.as_bytes(), B).is_err(), "{bad}");
        }
    }

    // ----- statements_request -----

    #[test]
    fn comm_1_5_2_s3_b4_attachments_with_parts_accepted() {
        let (h1, h2) = (sha256_hex(TXT1), sha256_hex(TXT2));
        let s = statement(vec![attachment(&h1, None), attachment(&h2, None)]);
        for v in [V1, V2] {
            let (value, contents) = request(
                &[json_part(&s), att_part(&h1, TXT1), att_part(&h2, TXT2)],
                v,
            )
            .unwrap();
            assert_eq!(value, s);
            assert_eq!(contents.len(), 2);
            assert_eq!(contents[0].sha2, h1);
            assert_eq!(contents[0].content_type, "text/plain");
            assert_eq!(&contents[0].content[..], TXT1);
            assert_eq!(&contents[1].content[..], TXT2);
        }
    }

    #[test]
    fn comm_1_5_2_lf_only_request_accepted() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let body = body_with("\n", &[json_part(&s), att_part(&h1, TXT1)]);
        let (_, contents) = statements_request(parse(&body, B).unwrap(), V1).unwrap();
        assert_eq!(&contents[0].content[..], TXT1);
    }

    #[test]
    fn comm_1_5_2_s3_b8_file_url_only_multipart_accepted() {
        let s = statement(vec![attachment(
            &sha256_hex(TXT1),
            Some("http://over.there.com/file.txt"),
        )]);
        let (_, contents) = request(&[json_part(&s)], V2).unwrap();
        assert!(contents.is_empty());
    }

    #[test]
    fn comm_1_5_2_s3_b7_no_attachments_multipart_accepted() {
        let mut s = statement(vec![]);
        s.as_object_mut().unwrap().remove("attachments");
        let (value, contents) = request(&[json_part(&json!([s.clone(), s]))], V1).unwrap();
        assert!(value.is_array());
        assert!(contents.is_empty());
    }

    #[test]
    fn comm_1_5_2_file_url_attachment_may_also_carry_a_part() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(
            &h1,
            Some("http://over.there.com/file.txt"),
        )]);
        let (_, contents) = request(&[json_part(&s), att_part(&h1, TXT1)], V1).unwrap();
        assert_eq!(contents.len(), 1);
    }

    #[test]
    fn data_2_4_11_declared_length_is_not_compared_with_content() {
        // The ADL suite declares the file's length but sends its hex text (twice as long).
        let content = hex::encode(b"\xff\xd8\xff\xe0 jpeg bytes");
        let h = sha256_hex(content.as_bytes());
        let mut a = attachment(&h, None);
        a["length"] = json!(3);
        a["contentType"] = json!("image/jpeg");
        let (_, contents) = request(
            &[
                json_part(&statement(vec![a])),
                att_part(&h, content.as_bytes()),
            ],
            V2,
        )
        .unwrap();
        assert_eq!(contents[0].content_type, "image/jpeg");
    }

    #[test]
    fn comm_1_5_2_s2_b2_b1_xapi_00134_first_part_not_json_rejected() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let first = (
            vec!["Content-Type: text/plain".to_string()],
            serde_json::to_vec(&s).unwrap(),
        );
        let e = request(&[first, att_part(&h1, TXT1)], V1).unwrap_err();
        assert!(requirement(&e).contains("XAPI-00134"), "{e:?}");
        // no Content-Type at all (RFC 2046 default text/plain)
        let first = (vec![], serde_json::to_vec(&s).unwrap());
        assert!(request(&[first, att_part(&h1, TXT1)], V1).is_err());
        // a parameter is fine
        let first = (
            vec!["content-type: Application/JSON; charset=UTF-8".to_string()],
            serde_json::to_vec(&s).unwrap(),
        );
        assert!(request(&[first, att_part(&h1, TXT1)], V1).is_ok());
    }

    #[test]
    fn comm_1_5_2_xapi_00130_no_boundary_before_attachment_headers_rejected() {
        // The attachment's headers end up inside the first part: not JSON any more.
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let mut json = serde_json::to_vec(&s).unwrap();
        json.extend_from_slice(
            format!("\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {h1}\r\n\r\nhere is a simple attachment").as_bytes(),
        );
        let e = request(&[(vec!["Content-Type: application/json".into()], json)], V2).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn comm_1_5_2_first_part_must_be_statement_json() {
        assert!(request(
            &[(
                vec!["Content-Type: application/json".into()],
                b"{not json".to_vec()
            )],
            V1
        )
        .is_err());
        assert!(request(
            &[(
                vec!["Content-Type: application/json".into()],
                b"\"a string\"".to_vec()
            )],
            V1
        )
        .is_err());
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(b"{}");
        assert!(request(&[(vec!["Content-Type: application/json".into()], bom)], V1).is_ok());
        assert!(statements_request(vec![], V1).is_err());
    }

    #[test]
    fn comm_1_5_2_xapi_00133_statements_split_over_two_parts_rejected() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let e = request(&[json_part(&s), json_part(&s), att_part(&h1, TXT1)], V1).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn data_2_4_11_s2_b2_xapi_00132_part_without_hash_header_rejected() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let part = (
            vec![
                "Content-Type: text/plain".to_string(),
                "Content-Transfer-Encoding: binary".to_string(),
            ],
            TXT1.to_vec(),
        );
        let e = request(&[json_part(&s), part], V2).unwrap_err();
        assert!(requirement(&e).contains("XAPI-00132"), "{e:?}");
    }

    #[test]
    fn comm_1_5_2_xapi_00132_hash_header_matching_no_sha2_rejected() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let other = "b018994f8bbe0f08992a65c48c8c8c56f09e9baceaa6227ed85c90ae52b73c89";
        let e = request(&[json_part(&s), att_part(other, TXT1)], V1).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn comm_1_5_1_xapi_00128_excess_part_rejected() {
        let (h1, h2) = (sha256_hex(TXT1), sha256_hex(TXT2));
        let t3 = b"here is a third attachment";
        let s = statement(vec![attachment(&h1, None), attachment(&h2, None)]);
        let e = request(
            &[
                json_part(&s),
                att_part(&h1, TXT1),
                att_part(&h2, TXT2),
                att_part(&sha256_hex(t3), t3),
            ],
            V1,
        )
        .unwrap_err();
        assert!(requirement(&e).contains("XAPI-00128"), "{e:?}");
        // a part for a statement without attachments at all
        let mut bare = statement(vec![]);
        bare.as_object_mut().unwrap().remove("attachments");
        assert!(request(&[json_part(&bare), att_part(&h1, TXT1)], V2).is_err());
    }

    #[test]
    fn comm_1_5_2_xapi_00129_missing_part_rejected() {
        let (h1, h2) = (sha256_hex(TXT1), sha256_hex(TXT2));
        let s = statement(vec![attachment(&h1, None), attachment(&h2, None)]);
        let e = request(&[json_part(&s), att_part(&h1, TXT1)], V1).unwrap_err();
        assert!(requirement(&e).contains("XAPI-00129"), "{e:?}");
        assert_eq!(e.path.as_deref(), Some("/attachments/1"));
        // in a batch, the pointer names the statement
        let e = request(
            &[
                json_part(&json!([statement(vec![]), s])),
                att_part(&h1, TXT1),
            ],
            V2,
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("/1/attachments/1"));
    }

    #[test]
    fn comm_1_5_2_xapi_00129_empty_file_url_needs_a_part() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, Some(""))]);
        assert!(request(&[json_part(&s)], V1).is_err());
    }

    #[test]
    fn comm_1_5_2_attachment_without_sha2_string_rejected() {
        let mut a = attachment("x", None);
        a["sha2"] = json!(12345);
        let e = request(&[json_part(&statement(vec![a]))], V1).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("/attachments/0/sha2"));
    }

    #[test]
    fn data_2_4_4_3_substatement_attachments_need_parts_too() {
        let h1 = sha256_hex(TXT1);
        let mut s = statement(vec![]);
        s["object"] = json!({
            "objectType": "SubStatement",
            "actor": {"mbox": "mailto:a@example.com"},
            "verb": {"id": "http://example.com/v"},
            "object": {"id": "http://example.com/a"},
            "attachments": [attachment(&h1, None)],
        });
        let e = request(&[json_part(&s)], V1).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("/object/attachments/0"));
        let (_, contents) = request(&[json_part(&s), att_part(&h1, TXT1)], V1).unwrap();
        assert_eq!(contents.len(), 1);
    }

    #[test]
    fn comm_1_5_2_s2_b2_b4_xapi_00135_transfer_encoding_not_binary_rejected() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        for cte in [Some("base64"), Some("8bit"), None] {
            let mut headers = vec![
                "Content-Type: text/plain".to_string(),
                format!("X-Experience-API-Hash: {h1}"),
            ];
            if let Some(c) = cte {
                headers.push(format!("Content-Transfer-Encoding: {c}"));
            }
            let e = request(&[json_part(&s), (headers, TXT1.to_vec())], V1).unwrap_err();
            assert!(requirement(&e).contains("XAPI-00135"), "{cte:?}: {e:?}");
        }
        let headers = vec![
            "Content-Transfer-Encoding: BINARY".to_string(),
            format!("X-Experience-API-Hash: {h1}"),
        ];
        assert!(request(&[json_part(&s), (headers, TXT1.to_vec())], V1).is_ok());
    }

    #[test]
    fn comm_1_5_2_content_not_matching_its_hash_rejected() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let e = request(&[json_part(&s), att_part(&h1, TXT2)], V2).unwrap_err();
        assert!(e.message.contains("does not hash"), "{e:?}");
        // an unknown hash length cannot be checked either
        let s = statement(vec![attachment("abcd", None)]);
        assert!(request(&[json_part(&s), att_part("abcd", TXT1)], V2).is_err());
    }

    #[test]
    fn comm_1_5_2_sha2_compared_case_insensitively() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1.to_uppercase(), None)]);
        let (_, contents) = request(&[json_part(&s), att_part(&h1, TXT1)], V1).unwrap();
        assert_eq!(contents[0].sha2, h1);
        let s = statement(vec![attachment(&h1, None)]);
        assert!(request(&[json_part(&s), att_part(&h1.to_uppercase(), TXT1)], V1).is_ok());
    }

    #[test]
    fn comm_1_5_2_sha384_and_sha512_accepted() {
        for h in [
            hex::encode(Sha384::digest(TXT1)),
            hex::encode(Sha512::digest(TXT1)),
        ] {
            let s = statement(vec![attachment(&h, None)]);
            assert!(request(&[json_part(&s), att_part(&h, TXT1)], V2).is_ok());
        }
    }

    #[test]
    fn comm_1_5_2_shared_attachment_sent_once_or_twice() {
        let h1 = sha256_hex(TXT1);
        let batch = json!([
            statement(vec![attachment(&h1, None)]),
            statement(vec![attachment(&h1, None)])
        ]);
        let (_, once) = request(&[json_part(&batch), att_part(&h1, TXT1)], V1).unwrap();
        assert_eq!(once.len(), 1);
        let (_, twice) = request(
            &[json_part(&batch), att_part(&h1, TXT1), att_part(&h1, TXT1)],
            V1,
        )
        .unwrap();
        assert_eq!(twice.len(), 1);
    }

    // ----- check_attachments_without_parts -----

    #[test]
    fn comm_1_5_1_s1_b2_file_url_only_json_accepted() {
        let s = statement(vec![attachment(
            "abc",
            Some("http://over.there.com/file.txt"),
        )]);
        assert!(check_attachments_without_parts(&s, V1).is_ok());
        assert!(check_attachments_without_parts(&json!([s]), V2).is_ok());
        assert!(check_attachments_without_parts(&statement(vec![]), V2).is_ok());
        let mut bare = statement(vec![]);
        bare.as_object_mut().unwrap().remove("attachments");
        assert!(check_attachments_without_parts(&bare, V1).is_ok());
    }

    #[test]
    fn comm_1_5_1_xapi_00129_json_attachment_without_file_url_rejected() {
        let ok = attachment("abc", Some("http://over.there.com/file.txt"));
        let s = statement(vec![ok.clone(), attachment("abc", None)]);
        let e = check_attachments_without_parts(&json!([statement(vec![ok]), s]), V1).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(e.path.as_deref(), Some("/1/attachments/1"));
        assert!(requirement(&e).contains("XAPI-00129"));
        let s = statement(vec![attachment("abc", Some(""))]);
        assert!(check_attachments_without_parts(&s, V2).is_err());
    }

    #[test]
    fn comm_1_5_1_substatement_attachment_without_file_url_rejected() {
        let mut s = statement(vec![]);
        s["object"] =
            json!({"objectType": "SubStatement", "attachments": [attachment("abc", None)]});
        let e = check_attachments_without_parts(&s, V2).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("/object/attachments/0"));
    }

    // ----- build -----

    fn content(sha2: &str, content_type: &str, body: &[u8]) -> AttachmentContent {
        AttachmentContent {
            sha2: sha2.into(),
            content_type: content_type.into(),
            content: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn comm_2_1_3_build_round_trips_through_parse() {
        let (h1, h2) = (sha256_hex(TXT1), sha256_hex(TXT2));
        let json = br#"{"statements":[],"more":""}"#;
        let atts = [
            content(&h1, "text/plain", TXT1),
            content(&h2, "image/png", TXT2),
            content(&h1, "text/plain", TXT1),
        ];
        let (ct, body) = build(json, &atts);
        let b = boundary(&ct).unwrap();
        assert!(
            body.starts_with(format!("--{b}\r\nContent-Type: application/json\r\n\r\n").as_bytes())
        );
        assert!(body.ends_with(format!("\r\n--{b}--\r\n").as_bytes()));
        let parts = parse(&body, &b).unwrap();
        assert_eq!(parts.len(), 3, "duplicate sha2 written once");
        assert_eq!(&parts[0].body[..], json);
        assert_eq!(parts[1].header("content-type"), Some("text/plain"));
        assert_eq!(parts[1].header("content-transfer-encoding"), Some("binary"));
        assert_eq!(parts[1].header("x-experience-api-hash"), Some(h1.as_str()));
        assert_eq!(&parts[1].body[..], TXT1);
        assert_eq!(parts[2].header("content-type"), Some("image/png"));
        assert_eq!(&parts[2].body[..], TXT2);
    }

    #[test]
    fn comm_2_1_3_build_then_statements_request_accepts_it() {
        let h1 = sha256_hex(TXT1);
        let s = statement(vec![attachment(&h1, None)]);
        let (ct, body) = build(
            &serde_json::to_vec(&s).unwrap(),
            &[content(&h1, "text/plain", TXT1)],
        );
        let parts = parse(&body, &boundary(&ct).unwrap()).unwrap();
        let (value, contents) = statements_request(parts, V1).unwrap();
        assert_eq!(value, s);
        assert_eq!(&contents[0].content[..], TXT1);
    }

    #[test]
    fn comm_2_1_3_build_without_attachments_and_header_injection() {
        let (ct, body) = build(b"{}", &[]);
        let b = boundary(&ct).unwrap();
        assert_eq!(parse(&body, &b).unwrap().len(), 1);
        let (ct, body) = build(b"{}", &[content("ab", "text/plain\r\nX-Evil: 1", b"z")]);
        let parts = parse(&body, &boundary(&ct).unwrap()).unwrap();
        assert_eq!(parts[1].header("x-evil"), None);
        assert_eq!(
            parts[1].header("content-type"),
            Some("text/plain  X-Evil: 1")
        );
    }

    #[test]
    fn comm_2_1_3_build_boundary_never_in_content() {
        let json = b"{}";
        let (ct, _) = build(json, &[]);
        let first = boundary(&ct).unwrap();
        // content that contains the boundary the first attempt would pick
        let (ct2, body) = build(json, &[content("ab", "text/plain", first.as_bytes())]);
        let b2 = boundary(&ct2).unwrap();
        assert!(find(first.as_bytes(), b2.as_bytes()).is_none());
        assert_eq!(&parse(&body, &b2).unwrap()[1].body[..], first.as_bytes());
    }
}
