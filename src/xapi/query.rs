//! GET /statements parameters (Communication 2.1.3) → a store query, and the opaque
//! `more` cursor.
use super::agent::ifi_key;
use super::records::StatementQuery;
use super::statement::{key, Format};
use super::validate::{is_valid_iri, is_valid_uuid, parse_timestamp, validate_agent_param};
use super::XapiVersion;
use crate::error::{XapiError, XapiResult};
use base64::Engine;
use serde_json::Value;

const REQ_PARAMS: &str = "Communication 2.1.3.s1";
const QUERY_PARAMS: [&str; 13] = [
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
    "more",
];

/// What a GET /statements asks for.
#[derive(Debug)]
pub enum StatementsGet {
    /// `statementId` or `voidedStatementId`.
    Single {
        id: String,
        voided: bool,
        format: Format,
        attachments: bool,
    },
    Query {
        query: StatementQuery,
        format: Format,
        attachments: bool,
        params: Vec<(String, String)>,
    },
}

fn bad(msg: impl Into<String>, param: &str) -> XapiError {
    XapiError::bad_request(msg)
        .at(param.to_owned())
        .req(REQ_PARAMS)
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn boolean(params: &[(String, String)], name: &str) -> XapiResult<bool> {
    match get(params, name) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(bad(
            format!("`{name}` must be true or false, not `{v}`"),
            name,
        )),
    }
}

fn format_param(params: &[(String, String)]) -> XapiResult<Format> {
    match get(params, "format") {
        None | Some("exact") => Ok(Format::Exact),
        Some("ids") => Ok(Format::Ids),
        Some("canonical") => Ok(Format::Canonical),
        Some(v) => Err(bad(
            format!("`format` must be ids, exact or canonical, not `{v}`"),
            "format",
        )),
    }
}

/// Page sizes the server allows.
pub struct PageLimits {
    pub default: usize,
    pub max: usize,
}

/// Parses the parameters of GET /statements. `mine` limits the results to statements
/// whose authority is that agent (statements/read/mine scope).
pub fn parse(
    params: &[(String, String)],
    version: XapiVersion,
    pages: &PageLimits,
    mine: Option<&Value>,
) -> XapiResult<StatementsGet> {
    let sid = get(params, "statementId");
    let vid = get(params, "voidedStatementId");
    if sid.is_some() && vid.is_some() {
        return Err(XapiError::bad_request(
            "statementId and voidedStatementId cannot be used together",
        )
        .req("Communication 2.1.3.s2.b1"));
    }
    if let Some((name, id)) = sid
        .map(|i| ("statementId", i))
        .or(vid.map(|i| ("voidedStatementId", i)))
    {
        if let Some((other, _)) = params
            .iter()
            .find(|(k, _)| k != name && k != "attachments" && k != "format")
        {
            return Err(XapiError::bad_request(format!(
                "`{name}` allows no other parameter than attachments and format (got `{other}`)"
            ))
            .at(other.clone())
            .req("Communication 2.1.3.s2.b2"));
        }
        if !is_valid_uuid(id) {
            return Err(bad(format!("`{name}` must be a UUID"), name));
        }
        return Ok(StatementsGet::Single {
            id: id.to_ascii_lowercase(),
            voided: name == "voidedStatementId",
            format: format_param(params)?,
            attachments: boolean(params, "attachments")?,
        });
    }
    if let Some((unknown, _)) = params
        .iter()
        .find(|(k, _)| !QUERY_PARAMS.contains(&k.as_str()))
    {
        return Err(bad(format!("unknown parameter `{unknown}`"), unknown));
    }
    let mut q = StatementQuery::default();
    let related_agents = boolean(params, "related_agents")?;
    let related_activities = boolean(params, "related_activities")?;
    if let Some(a) = get(params, "agent") {
        let agent: Value = serde_json::from_str(a)
            .map_err(|_| bad("`agent` must be a JSON Agent or Group", "agent"))?;
        validate_agent_param(&agent, version).map_err(|e| e.at("agent"))?;
        let ifi = ifi_key(&agent)
            .ok_or_else(|| bad("`agent` needs an inverse functional identifier", "agent"))?;
        let prefix = if related_agents {
            key::RELATED_AGENT
        } else {
            key::AGENT
        };
        q.keys.push(format!("{prefix}{ifi}"));
    }
    if let Some(v) = get(params, "verb") {
        if !is_valid_iri(v) {
            return Err(bad("`verb` must be an IRI", "verb"));
        }
        q.keys.push(format!("{}{v}", key::VERB));
    }
    if let Some(a) = get(params, "activity") {
        if !is_valid_iri(a) {
            return Err(bad("`activity` must be an IRI", "activity"));
        }
        let prefix = if related_activities {
            key::RELATED_ACTIVITY
        } else {
            key::ACTIVITY
        };
        q.keys.push(format!("{prefix}{a}"));
    }
    if let Some(r) = get(params, "registration") {
        if !is_valid_uuid(r) {
            return Err(bad("`registration` must be a UUID", "registration"));
        }
        q.keys
            .push(format!("{}{}", key::REGISTRATION, r.to_ascii_lowercase()));
    }
    if let Some(m) = mine.and_then(ifi_key) {
        q.keys.push(format!("{}{m}", key::AUTHORITY));
    }
    for (name, slot) in [("since", &mut q.since_us), ("until", &mut q.until_us)] {
        if let Some(t) = get(params, name) {
            let ts = parse_timestamp(t, version)
                .ok_or_else(|| bad(format!("`{name}` must be a timestamp"), name))?;
            *slot = Some(ts.timestamp_micros());
        }
    }
    q.ascending = boolean(params, "ascending")?;
    q.limit = match get(params, "limit") {
        None => pages.default,
        Some(l) => match l.parse::<usize>() {
            Ok(0) => pages.max,
            Ok(n) => n.min(pages.max),
            Err(_) => return Err(bad("`limit` must be a nonnegative integer", "limit")),
        },
    };
    // The most selective keys first: the first one drives the index scan.
    q.keys.sort_by_key(|k| selectivity_rank(k));
    Ok(StatementsGet::Query {
        query: q,
        format: format_param(params)?,
        attachments: boolean(params, "attachments")?,
        params: params.to_vec(),
    })
}

/// Lower is more selective (drives the scan); a guess that holds for learning data.
fn selectivity_rank(k: &str) -> u8 {
    if k.starts_with(key::REGISTRATION) {
        0
    } else if k.starts_with(key::AGENT) || k.starts_with(key::RELATED_AGENT) {
        1
    } else if k.starts_with(key::ACTIVITY) || k.starts_with(key::RELATED_ACTIVITY) {
        2
    } else if k.starts_with(key::AUTHORITY) {
        3
    } else {
        4
    }
}

/// The opaque `more` cursor: the original parameters and the position after the last
/// statement returned. Parameters are re-validated (and scopes re-applied) on use.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    p: Vec<(String, String)>,
    s: i64,
    i: String,
    /// The reader's department (absent in cursors from before departments: the root).
    #[serde(default)]
    d: String,
}

/// `department`: the reader's (a cursor continues only the query it was made for).
pub fn encode_cursor(params: &[(String, String)], after: (i64, &str), department: &str) -> String {
    let c = Cursor {
        p: params
            .iter()
            .filter(|(k, _)| k != "more")
            .cloned()
            .collect(),
        s: after.0,
        i: after.1.to_owned(),
        d: department.to_owned(),
    };
    let json = serde_json::to_vec(&c).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Query parameters as received, in order.
pub type Pairs = Vec<(String, String)>;

/// Decodes a `more` token into the parameters it continues and its position.
pub fn decode_cursor(token: &str) -> XapiResult<(Pairs, (i64, String), String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad("invalid `more` cursor", "more"))?;
    let c: Cursor =
        serde_json::from_slice(&bytes).map_err(|_| bad("invalid `more` cursor", "more"))?;
    Ok((c.p, (c.s, c.i), c.d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn cursor_round_trip() {
        let params = p(&[("verb", "http://x/v"), ("limit", "2")]);
        let t = encode_cursor(&params, (42, "abc"), "moe/dhe");
        let (back, pos, department) = decode_cursor(&t).expect("decodes");
        assert_eq!(department, "moe/dhe");
        assert_eq!(back, params);
        assert_eq!(pos, (42, "abc".to_string()));
        assert!(decode_cursor("not a cursor").is_err());
    }
}
