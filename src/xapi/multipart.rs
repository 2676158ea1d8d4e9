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
