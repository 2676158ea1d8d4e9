//! Completion certificates: one self-contained file that shows, offline and to anyone
//! holding the log's verifier key, that an agent completed (or passed) an activity.
//!
//! The file carries the statements exactly as stored with their salts, departments and
//! leaf indexes, a C2SP `tlog-proof@v1` inclusion proof for each against one signed
//! checkpoint, and an Open Badges 3.0 `OpenBadgeCredential` (an `AchievementCredential`)
//! as a VC-JWT signed with the log's own Ed25519 key. The format and the verification
//! algorithm are specified in `docs/AUDIT.md` §7.
//!
//! The file is one JSON object in RFC 8785 canonical form plus an optional final newline,
//! and every member is checked: any changed byte makes [`verify`] fail.
//!
//! What cannot be checked offline: that a statement was not voided later. The LRS only
//! certifies statements that are not voided when it builds the certificate; a relying
//! party that needs to know about a later voiding asks the LRS (or a monitor).
//!
//! **Agent matching.** An agent is identified by its inverse functional identifier (IFI):
//! exactly one of `mbox`, `mbox_sha1sum`, `openid` or `account` (`homePage` and `name`).
//! IFIs are compared as exact strings, `mbox` included: xAPI defines no normalisation of
//! the address, and an LRS that lowered the case of the domain would be guessing which
//! learner was meant. A Group is never the agent of a certificate.
//!
//! **One key, two formats.** The VC-JWT is signed with the same Ed25519 key as the log's
//! checkpoints. The two signed messages can never be confused: a note text always ends in
//! a newline (c2sp.org/signed-note), while a JWS signing input (`base64url(header) "."
//! base64url(payload)`) holds only base64url characters and one `.`, never a newline.
use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::leaf::{self, Salt};
use super::merkle::{self, Hash};
use super::note::{self, Checkpoint, Signer, Verifier};
use crate::departments::Department;

/// The format tag of a certificate file.
pub const FORMAT: &str = "karmayogi-lrs/certificate/v1";
/// First line of a C2SP transparency log proof.
pub const TLOG_PROOF_V1: &str = "c2sp.org/tlog-proof@v1";
/// The ADL verbs that show a completion.
pub const VERB_COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
pub const VERB_PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
/// JSON-LD contexts of an Open Badges 3.0 credential, in this order.
pub const VC_V2_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";
pub const OB_V3_CONTEXT: &str = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json";
/// The JWS algorithm of the VC-JWT (RFC 8037: Ed25519).
pub const JWS_ALG: &str = "EdDSA";

/// Domain-separation tag of the credential id derivation.
const CREDENTIAL_ID_TAG: &[u8] = b"karmayogi-lrs/certificate/v1/credential-id";
/// The members of a certificate and of one of its statements, no more, no fewer.
const CERTIFICATE_MEMBERS: [&str; 7] = [
    "activity",
    "agent",
    "checkpoint",
    "credential",
    "format",
    "statements",
    "verifierKey",
];
const STATEMENT_MEMBERS: [&str; 5] = ["department", "leafIndex", "salt", "statement", "tlogProof"];
const CRITERIA: &str = "Completed (xAPI verb http://adlnet.gov/expapi/verbs/completed) or \
passed (http://adlnet.gov/expapi/verbs/passed) the activity, as recorded by the xAPI \
statements given as evidence, each logged in the issuer's transparency log.";

/// One statement to certify, with what a verifier needs to recompute its leaf and check
/// that the leaf is in the tree of the checkpoint.
#[derive(Debug, Clone)]
pub struct CertifiedStatement {
    /// The statement exactly as stored (`format=exact`).
    pub statement: Value,
    pub salt: Salt,
    pub department: Department,
    pub leaf_index: u64,
    /// The inclusion proof of the leaf at `leaf_index` in the checkpoint's tree.
    pub proof: Vec<Hash>,
}

/// Why a certificate could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("a certificate needs at least one statement")]
    NoStatements,
    #[error(
        "the agent must be an Agent identified by exactly one of mbox, mbox_sha1sum, openid or account"
    )]
    Agent,
    #[error("the activity id must be an IRI")]
    Activity,
    #[error("the issuer must be an IRI")]
    Issuer,
    #[error("leaf {0} is certified twice")]
    DuplicateLeaf(u64),
    #[error("the statement at leaf {leaf_index}: {reason}")]
    Statement { leaf_index: u64, reason: String },
    #[error("the checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    Time(String),
    #[error("the certificate built does not verify: {0}")]
    SelfCheck(String),
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub ok: bool,
    /// Who completed what, when, and where it was logged; or why verification failed.
    pub summary: String,
    /// Every failed check (empty when `ok`).
    pub failures: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Agents and completions

/// An agent's inverse functional identifier (xAPI 1.0.3 §4.1.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ifi {
    Mbox(String),
    MboxSha1sum(String),
    Openid(String),
    Account { home_page: String, name: String },
}

/// The IFI of an Agent (`objectType` absent or `Agent`) that has exactly one; `None` for a
/// Group, anything not an object, or an Agent with zero or several IFIs.
fn agent_ifi(agent: &Value) -> Option<Ifi> {
    let a = agent.as_object()?;
    if !matches!(
        a.get("objectType").map(Value::as_str),
        None | Some(Some("Agent"))
    ) {
        return None;
    }
    let mut ifis = Vec::new();
    if let Some(v) = a.get("mbox") {
        ifis.push(Ifi::Mbox(v.as_str()?.to_owned()));
    }
    if let Some(v) = a.get("mbox_sha1sum") {
        ifis.push(Ifi::MboxSha1sum(v.as_str()?.to_owned()));
    }
    if let Some(v) = a.get("openid") {
        ifis.push(Ifi::Openid(v.as_str()?.to_owned()));
    }
    if let Some(v) = a.get("account") {
        let account = v.as_object()?;
        ifis.push(Ifi::Account {
            home_page: account.get("homePage")?.as_str()?.to_owned(),
            name: account.get("name")?.as_str()?.to_owned(),
        });
    }
    if ifis.len() != 1 {
        return None;
    }
    ifis.pop()
}

impl Ifi {
    /// The agent as a certificate carries it: `objectType` and the IFI, nothing else (a
    /// display name is not identifying and is left out).
    fn agent(&self) -> Value {
        match self {
            Ifi::Mbox(m) => json!({"objectType": "Agent", "mbox": m}),
            Ifi::MboxSha1sum(h) => json!({"objectType": "Agent", "mbox_sha1sum": h}),
            Ifi::Openid(o) => json!({"objectType": "Agent", "openid": o}),
            Ifi::Account { home_page, name } => {
                json!({"objectType": "Agent", "account": {"homePage": home_page, "name": name}})
            }
        }
    }

    /// How the credential subject names the agent: `id` for the IFIs that are IRIs
    /// (`mailto:` and OpenID), an Open Badges `IdentityObject` for the others.
    fn subject_identity(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match self {
            Ifi::Mbox(iri) | Ifi::Openid(iri) => {
                m.insert("id".into(), json!(iri));
            }
            Ifi::MboxSha1sum(h) => {
                m.insert(
                    "identifier".into(),
                    json!([{
                        "type": "IdentityObject",
                        "identityType": "emailAddress",
                        "hashed": true,
                        "identityHash": format!("sha1${h}"),
                    }]),
                );
            }
            Ifi::Account { home_page, name } => {
                // homePage is an IRL, which holds no space: the first space separates.
                m.insert(
                    "identifier".into(),
                    json!([{
                        "type": "IdentityObject",
                        "identityType": "ext:xapiAccount",
                        "hashed": false,
                        "identityHash": format!("{home_page} {name}"),
                    }]),
                );
            }
        }
        m
    }

    fn describe(&self) -> String {
        match self {
            Ifi::Mbox(s) | Ifi::Openid(s) => s.clone(),
            Ifi::MboxSha1sum(h) => format!("the agent with mbox_sha1sum {h}"),
            Ifi::Account { home_page, name } => format!("account {name} at {home_page}"),
        }
    }
}

/// Whether `statement` shows that `agent` completed or passed `activity`: the verb is
/// ADL `completed` (then `result.completion`, if present, is true) or ADL `passed` (then
/// `result.success`, if present, is true); the object is the Activity whose id is
/// `activity`; the actor is an Agent with the same IFI as `agent`, compared as exact
/// strings (see the module documentation).
pub fn shows_completion(statement: &Value, agent: &Value, activity: &str) -> bool {
    let Some(want) = agent_ifi(agent) else {
        return false;
    };
    if statement.get("actor").and_then(agent_ifi) != Some(want) {
        return false;
    }
    let flag = match statement.pointer("/verb/id").and_then(Value::as_str) {
        Some(VERB_COMPLETED) => "completion",
        Some(VERB_PASSED) => "success",
        _ => return false,
    };
    if !matches!(
        statement.get("result").and_then(|r| r.get(flag)),
        None | Some(Value::Bool(true))
    ) {
        return false;
    }
    let Some(object) = statement.get("object") else {
        return false;
    };
    matches!(
        object.get("objectType").map(Value::as_str),
        None | Some(Some("Activity"))
    ) && object.get("id").and_then(Value::as_str) == Some(activity)
}

// ---------------------------------------------------------------------------------------
// tlog-proof@v1

/// A C2SP transparency log proof (c2sp.org/tlog-proof), without extra data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    /// `c2sp.org/tlog-proof@v1`, `index <n>`, one base64 hash per line, a blank line, then
    /// the checkpoint note.
    pub fn to_text(&self) -> String {
        let mut t = format!("{TLOG_PROOF_V1}\nindex {}\n", self.index);
        for h in &self.proof {
            t.push_str(&h.to_base64());
            t.push('\n');
        }
        t.push('\n');
        t.push_str(&self.checkpoint);
        t
    }

    /// Parses a proof as [`TlogProof::to_text`] writes it; refuses `extra` data (a
    /// certificate has none) and any other spelling.
    pub fn parse(text: &str) -> Result<TlogProof, &'static str> {
        // Proof lines are never empty: the first blank line ends them.
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or("no blank line before the checkpoint")?;
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_V1) {
            return Err("the first line is not c2sp.org/tlog-proof@v1");
        }
        let index = lines.next().ok_or("no index line")?;
        if index.starts_with("extra ") {
            return Err("a certificate's proof has no extra data");
        }
        let index = index
            .strip_prefix("index ")
            .ok_or("the second line is not `index <n>`")?;
        let index_ok =
            index.bytes().all(|b| b.is_ascii_digit()) && (index == "0" || !index.starts_with('0'));
        let index = index
            .parse::<u64>()
            .ok()
            .filter(|_| index_ok)
            .ok_or("the index is not a decimal number without leading zeros")?;
        let proof = lines
            .map(Hash::from_base64)
            .collect::<Option<Vec<Hash>>>()
            .ok_or("a proof line is not the base64 of a 32-byte hash")?;
        let p = TlogProof {
            index,
            proof,
            checkpoint: checkpoint.to_owned(),
        };
        if p.to_text() != text {
            return Err("not written in the one spelling of a proof");
        }
        Ok(p)
    }
}

// ---------------------------------------------------------------------------------------
// The credential

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// When a statement says the completion happened: its `timestamp`, else its `stored`.
fn completion_time(statement: &Value) -> Result<DateTime<Utc>, String> {
    let text = statement
        .get("timestamp")
        .or_else(|| statement.get("stored"))
        .and_then(Value::as_str)
        .ok_or("the statement has neither timestamp nor stored")?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("timestamp `{text}`: {e}"))
}

/// `validFrom`: the earliest completion time among the statements.
fn valid_from<'a>(statements: impl Iterator<Item = &'a Value>) -> Result<DateTime<Utc>, String> {
    let mut earliest: Option<DateTime<Utc>> = None;
    for s in statements {
        let t = completion_time(s)?;
        earliest = Some(earliest.map_or(t, |e| e.min(t)));
    }
    earliest.ok_or_else(|| "no statement".to_string())
}

/// The string of a language map to show: `en-US`, else `en`, else the least tag's.
fn pick_language(map: Option<&Value>) -> Option<String> {
    let m = map?.as_object()?;
    ["en-US", "en"]
        .iter()
        .find_map(|k| m.get(*k).and_then(Value::as_str))
        .or_else(|| {
            m.iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?)))
                .min()
                .map(|(_, v)| v)
        })
        .map(str::to_owned)
}

/// The Open Badges `Achievement`: the activity, named by the first statement whose
/// activity definition has a name.
fn achievement<'a>(activity: &str, statements: impl Iterator<Item = &'a Value> + Clone) -> Value {
    let definition = |field: &str| {
        statements
            .clone()
            .find_map(|s| pick_language(s.pointer(&format!("/object/definition/{field}"))))
    };
    let name = definition("name").unwrap_or_else(|| activity.to_owned());
    let description = definition("description")
        .unwrap_or_else(|| format!("Completion of the activity {activity}."));
    json!({
        "id": activity,
        "type": ["Achievement"],
        "name": name,
        "description": description,
        "criteria": {"narrative": CRITERIA},
    })
}

/// One `Evidence` of the credential: a certified statement, where it is logged, and its
/// tlog-proof (which binds the checkpoint, witness cosignatures included).
fn evidence(statement_id: &str, leaf_index: u64, tlog_proof: &str, origin: &str) -> Value {
    json!({
        "id": format!("urn:uuid:{statement_id}"),
        "type": ["Evidence"],
        "name": format!("xAPI statement {statement_id}"),
        "description": format!(
            "Logged at leaf index {leaf_index} of the transparency log {origin}; the narrative is its c2sp.org/tlog-proof@v1 inclusion proof."
        ),
        "narrative": tlog_proof,
    })
}

/// The protected header: the public key as an RFC 8037 `OKP` JWK (a `kid` would have to
/// be a URL that dereferences to the key).
fn jws_header(vkey: &Verifier) -> Value {
    json!({
        "alg": JWS_ALG,
        "typ": "JWT",
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(vkey.public_key())},
    })
}

/// A name-based credential id (a version 8 UUID from SHA-256), so that the same inputs
/// always give the same certificate.
fn credential_id(
    agent: &Value,
    activity: &str,
    leaf_indexes: &[u64],
    checkpoint: &str,
    awarded: &str,
) -> Result<String, CertificateError> {
    let jcs = leaf::canonicalize(&json!([agent, activity, leaf_indexes, checkpoint, awarded]))
        .map_err(|e| CertificateError::SelfCheck(e.to_string()))?;
    let digest = Sha256::new()
        .chain_update(CREDENTIAL_ID_TAG)
        .chain_update([0x00])
        .chain_update(&jcs)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ok(format!(
        "urn:uuid:{}",
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    ))
}

fn statement_id(statement: &Value) -> Option<&str> {
    statement.get("id").and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------
// Building

/// Builds the certificate that `agent` completed `activity`: checks that every statement
/// shows it, is logged at its leaf index in the tree of the checkpoint (signed by
/// `signer`, whose name is the log's origin), then writes the file (RFC 8785 JSON and one
/// newline) and checks it with [`verify`] before handing it out. `now_us` (microseconds
/// since the epoch) becomes the credential's `awardedDate`. The caller certifies only
/// statements that are not voided.
pub fn build(
    agent: &Value,
    activity: &str,
    statements: &[CertifiedStatement],
    checkpoint_note: &str,
    signer: &Signer,
    issuer_url: &str,
    now_us: i64,
) -> Result<Vec<u8>, CertificateError> {
    let ifi = agent_ifi(agent).ok_or(CertificateError::Agent)?;
    if iri_string::types::IriStr::new(activity).is_err() {
        return Err(CertificateError::Activity);
    }
    if iri_string::types::IriStr::new(issuer_url).is_err() {
        return Err(CertificateError::Issuer);
    }
    if statements.is_empty() {
        return Err(CertificateError::NoStatements);
    }
    let vkey = signer.verifier();
    let (cp, _) = Checkpoint::open(
        checkpoint_note.as_bytes(),
        signer.name(),
        std::slice::from_ref(&vkey),
    )
    .map_err(|e| CertificateError::Checkpoint(e.to_string()))?;
    let mut seen = BTreeSet::new();
    for s in statements {
        let fail = |reason: String| CertificateError::Statement {
            leaf_index: s.leaf_index,
            reason,
        };
        if !seen.insert(s.leaf_index) {
            return Err(CertificateError::DuplicateLeaf(s.leaf_index));
        }
        if statement_id(&s.statement).is_none() {
            return Err(fail("it has no id".into()));
        }
        if !shows_completion(&s.statement, agent, activity) {
            return Err(fail(
                "it does not show that the agent completed the activity".into(),
            ));
        }
        let stored_us = leaf::stored_us_of(&s.statement).map_err(|e| fail(e.to_string()))?;
        let leaf = leaf::statement_leaf(&s.statement, &s.salt, &s.department, stored_us)
            .map_err(|e| fail(e.to_string()))?;
        merkle::verify_inclusion(&leaf.leaf_hash(), s.leaf_index, cp.size, &s.proof, &cp.root)
            .map_err(|e| fail(format!("not included in the checkpoint's tree: {e}")))?;
        completion_time(&s.statement).map_err(fail)?;
    }
    let awarded = DateTime::<Utc>::from_timestamp_micros(now_us)
        .ok_or_else(|| CertificateError::Time(format!("{now_us} µs is out of range")))?;
    let file = assemble(
        &ifi,
        activity,
        statements,
        checkpoint_note,
        signer,
        issuer_url,
        &rfc3339(&awarded),
    )?;
    let v = verify(&file, &vkey);
    if !v.ok {
        return Err(CertificateError::SelfCheck(v.failures.join("; ")));
    }
    Ok(file)
}

/// Writes the certificate file, checking nothing about the statements (tests forge
/// certificates with it).
fn assemble(
    ifi: &Ifi,
    activity: &str,
    statements: &[CertifiedStatement],
    checkpoint_note: &str,
    signer: &Signer,
    issuer_url: &str,
    awarded: &str,
) -> Result<Vec<u8>, CertificateError> {
    let vkey = signer.verifier();
    let agent = ifi.agent();
    let mut entries = Vec::with_capacity(statements.len());
    let mut evidences = Vec::with_capacity(statements.len());
    for s in statements {
        let tlog_proof = TlogProof {
            index: s.leaf_index,
            proof: s.proof.clone(),
            checkpoint: checkpoint_note.to_owned(),
        }
        .to_text();
        let id = statement_id(&s.statement).unwrap_or_default();
        evidences.push(evidence(id, s.leaf_index, &tlog_proof, signer.name()));
        entries.push(json!({
            "statement": s.statement,
            "salt": s.salt.to_hex(),
            "department": s.department.as_str(),
            "leafIndex": s.leaf_index,
            "tlogProof": tlog_proof,
        }));
    }
    let valid_from =
        valid_from(statements.iter().map(|s| &s.statement)).map_err(CertificateError::Time)?;
    let leaf_indexes: Vec<u64> = statements.iter().map(|s| s.leaf_index).collect();
    let id = credential_id(&agent, activity, &leaf_indexes, checkpoint_note, awarded)?;
    let achievement = achievement(activity, statements.iter().map(|s| &s.statement));

    let mut subject = ifi.subject_identity();
    let sub = subject.get("id").cloned();
    subject.insert("type".into(), json!(["AchievementSubject"]));
    subject.insert("achievement".into(), achievement.clone());
    let mut credential = json!({
        "@context": [VC_V2_CONTEXT, OB_V3_CONTEXT],
        "id": id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": achievement["name"],
        "issuer": {"id": issuer_url, "type": ["Profile"], "name": signer.name()},
        "validFrom": rfc3339(&valid_from),
        "awardedDate": awarded,
        "credentialSubject": subject,
        "evidence": evidences,
        // JWT registered claims (Open Badges 3.0 §8.2 VC-JWT), beside the credential.
        "iss": issuer_url,
        "jti": id,
        "nbf": valid_from.timestamp(),
    });
    if let (Some(sub), Some(c)) = (sub, credential.as_object_mut()) {
        c.insert("sub".into(), sub);
    }
    let jcs =
        |v: &Value| leaf::canonicalize(v).map_err(|e| CertificateError::SelfCheck(e.to_string()));
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(jcs(&jws_header(&vkey))?),
        URL_SAFE_NO_PAD.encode(jcs(&credential)?)
    );
    let signature = signer.sign_bytes(signing_input.as_bytes());
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));

    let certificate = json!({
        "format": FORMAT,
        "agent": agent,
        "activity": activity,
        "statements": entries,
        "checkpoint": checkpoint_note,
        "verifierKey": vkey.to_string(),
        "credential": jwt,
    });
    let mut file = jcs(&certificate)?;
    file.push(b'\n');
    Ok(file)
}

// ---------------------------------------------------------------------------------------
// Verifying

/// Checks a certificate file offline against the log's verifier key (docs/AUDIT.md §7.4).
pub fn verify(file: &[u8], vkey: &Verifier) -> Verification {
    match check(file, vkey) {
        Ok(summary) => Verification {
            ok: true,
            summary,
            failures: Vec::new(),
        },
        Err(failures) => {
            let first = failures.first().cloned().unwrap_or_default();
            let more = match failures.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            Verification {
                ok: false,
                summary: format!("NOT VERIFIED: {first}{more}"),
                failures,
            }
        }
    }
}

/// One statement of a certificate, its members read but not checked.
struct Entry<'a> {
    statement: &'a Value,
    id: &'a str,
    salt: &'a str,
    department: &'a str,
    leaf_index: u64,
    tlog_proof: &'a str,
}

fn exact_members(
    obj: &Map<String, Value>,
    members: &[&str],
    what: &str,
) -> Result<(), Vec<String>> {
    if obj.len() != members.len() || !members.iter().all(|m| obj.contains_key(*m)) {
        let got: Vec<&str> = obj.keys().map(String::as_str).collect();
        return Err(vec![format!(
            "{what} must have exactly the members {members:?}, not {got:?}"
        )]);
    }
    Ok(())
}

fn string_member<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<&'a str, Vec<String>> {
    obj.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| vec![format!("{what}: `{name}` is not a string")])
}

fn check(file: &[u8], vkey: &Verifier) -> Result<String, Vec<String>> {
    let one = |m: String| vec![m];

    // 1. The file is RFC 8785 JSON, byte for byte, and an optional final newline.
    let body = file.strip_suffix(b"\n").unwrap_or(file);
    let text = std::str::from_utf8(body).map_err(|_| one("the file is not UTF-8".into()))?;
    let cert = leaf::parse_strict(text).map_err(|e| one(format!("the file is not JSON: {e}")))?;
    let canonical = leaf::canonicalize(&cert).map_err(|e| one(e.to_string()))?;
    if canonical != body {
        return Err(one(
            "the file is not exactly RFC 8785 canonical JSON (and one optional final newline): it was changed".into(),
        ));
    }
    let top = cert
        .as_object()
        .ok_or_else(|| one("the file is not a JSON object".into()))?;
    exact_members(top, &CERTIFICATE_MEMBERS, "the certificate")?;
    if top.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(one(format!("the format is not `{FORMAT}`")));
    }

    // 2. The key.
    if vkey.alg() != note::ALG_ED25519 {
        return Err(one(
            "the verifier key is not an Ed25519 log key (type 0x01)".into(),
        ));
    }
    let vkey_text = vkey.to_string();
    if string_member(top, "verifierKey", "the certificate")? != vkey_text {
        return Err(one(format!(
            "the certificate names the verifier key `{}`, not `{vkey_text}`",
            string_member(top, "verifierKey", "the certificate")?
        )));
    }

    // 3. The checkpoint: signed by the key, whose name is the log's origin.
    let checkpoint_note = string_member(top, "checkpoint", "the certificate")?;
    let (cp, _) = Checkpoint::open(
        checkpoint_note.as_bytes(),
        vkey.name(),
        std::slice::from_ref(vkey),
    )
    .map_err(|e| one(format!("the checkpoint does not verify: {e}")))?;

    // 4. The agent (its IFI alone) and the activity.
    let agent = top.get("agent").unwrap_or(&Value::Null);
    let ifi = agent_ifi(agent)
        .filter(|ifi| ifi.agent() == *agent)
        .ok_or_else(|| {
            one("the agent is not an Agent given by `objectType` and one IFI alone".into())
        })?;
    let activity = string_member(top, "activity", "the certificate")?;

    // 5. The statements' members.
    let list = top
        .get("statements")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| one("`statements` is not a non-empty array".into()))?;
    let mut entries = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let what = format!("statements[{i}]");
        let obj = s
            .as_object()
            .ok_or_else(|| one(format!("{what} is not an object")))?;
        exact_members(obj, &STATEMENT_MEMBERS, &what)?;
        let statement = obj.get("statement").unwrap_or(&Value::Null);
        entries.push(Entry {
            statement,
            id: statement_id(statement)
                .ok_or_else(|| one(format!("{what}: the statement has no id")))?,
            salt: string_member(obj, "salt", &what)?,
            department: string_member(obj, "department", &what)?,
            leaf_index: obj
                .get("leafIndex")
                .and_then(Value::as_u64)
                .ok_or_else(|| one(format!("{what}: `leafIndex` is not a leaf index")))?,
            tlog_proof: string_member(obj, "tlogProof", &what)?,
        });
    }

    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for e in &entries {
        if !seen.insert(e.leaf_index) {
            failures.push(format!("leaf {} is certified twice", e.leaf_index));
        }
        if let Err(f) = check_statement(e, &cp, checkpoint_note, agent, activity) {
            failures.push(format!("statement {} (leaf {}): {f}", e.id, e.leaf_index));
        }
    }

    // 6. The VC-JWT.
    let facts = match check_credential(
        string_member(top, "credential", "the certificate")?,
        vkey,
        &ifi,
        activity,
        &entries,
    ) {
        Ok(facts) => Some(facts),
        Err(f) => {
            failures.extend(f.into_iter().map(|m| format!("the credential: {m}")));
            None
        }
    };
    let Some(facts) = facts.filter(|_| failures.is_empty()) else {
        return Err(failures);
    };

    let verb = entries
        .iter()
        .find_map(|e| e.statement.pointer("/verb/id").and_then(Value::as_str))
        .map_or("completed", |v| {
            if v == VERB_PASSED {
                "passed"
            } else {
                "completed"
            }
        });
    let logged: Vec<String> = entries
        .iter()
        .map(|e| format!("statement {} at leaf {}", e.id, e.leaf_index))
        .collect();
    Ok(format!(
        "VERIFIED: {} {verb} \"{}\" ({activity}) on {}; {} of log {} (checkpoint tree size {}); \
         credential {} issued by {} on {}. Voiding after issue cannot be checked offline.",
        ifi.describe(),
        facts.name,
        facts.valid_from,
        logged.join(", "),
        cp.origin,
        cp.size,
        facts.id,
        facts.issuer,
        facts.awarded,
    ))
}

/// Recomputes a statement's leaf and checks its tlog-proof against the checkpoint, and
/// that it shows the completion.
fn check_statement(
    e: &Entry,
    cp: &Checkpoint,
    checkpoint_note: &str,
    agent: &Value,
    activity: &str,
) -> Result<(), String> {
    let salt = Salt::from_hex(e.salt).map_err(|e| e.to_string())?;
    let department = Department::parse(e.department)
        .ok()
        .filter(|d| d.as_str() == e.department)
        .ok_or_else(|| format!("`{}` is not a department path as stored", e.department))?;
    let stored_us = leaf::stored_us_of(e.statement).map_err(|e| e.to_string())?;
    let leaf = leaf::statement_leaf(e.statement, &salt, &department, stored_us)
        .map_err(|e| e.to_string())?;
    let proof = TlogProof::parse(e.tlog_proof).map_err(|m| format!("tlog-proof: {m}"))?;
    if proof.index != e.leaf_index {
        return Err(format!(
            "the tlog-proof is for index {}, not leaf {}",
            proof.index, e.leaf_index
        ));
    }
    if proof.checkpoint != checkpoint_note {
        return Err("the tlog-proof's checkpoint is not the certificate's".into());
    }
    merkle::verify_inclusion(
        &leaf.leaf_hash(),
        proof.index,
        cp.size,
        &proof.proof,
        &cp.root,
    )
    .map_err(|e| format!("the recomputed leaf is not included in the checkpoint's tree: {e}"))?;
    if !shows_completion(e.statement, agent, activity) {
        return Err("it does not show that the agent completed or passed the activity".into());
    }
    Ok(())
}

/// What the summary tells about the credential.
struct CredentialFacts {
    id: String,
    name: String,
    issuer: String,
    valid_from: String,
    awarded: String,
}

fn check_credential(
    jwt: &str,
    vkey: &Verifier,
    ifi: &Ifi,
    activity: &str,
    entries: &[Entry],
) -> Result<CredentialFacts, Vec<String>> {
    let one = |m: &str| vec![m.to_string()];
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(one("not a compact JWS (three base64url parts)"));
    };
    let decode_json = |part: &str, what: &str| -> Result<Value, Vec<String>> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| vec![format!("the {what} is not base64url")])?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| vec![format!("the {what} is not UTF-8")])?;
        leaf::parse_strict(text).map_err(|e| vec![format!("the {what} is not JSON: {e}")])
    };
    if decode_json(header, "header")? != jws_header(vkey) {
        return Err(one(
            "the header is not {alg: EdDSA, typ: JWT, jwk: the log's Ed25519 key}",
        ));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| one("the signature is not base64url"))?;
    let signing_input = &jwt[..header.len() + 1 + payload.len()];
    if !vkey.verify_bytes(signing_input.as_bytes(), &signature) {
        return Err(one("the signature does not verify with the log's key"));
    }
    let payload = decode_json(payload, "payload")?;
    let c = payload
        .as_object()
        .ok_or_else(|| one("the payload is not an object"))?;

    let mut failures = Vec::new();
    let mut require = |ok: bool, m: &str| {
        if !ok {
            failures.push(m.to_string());
        }
    };
    let get = |name: &str| c.get(name).unwrap_or(&Value::Null);
    require(
        *get("@context") == json!([VC_V2_CONTEXT, OB_V3_CONTEXT]),
        "@context is not the VC 2.0 and Open Badges 3.0 contexts",
    );
    require(
        *get("type") == json!(["VerifiableCredential", "OpenBadgeCredential"]),
        "type is not [VerifiableCredential, OpenBadgeCredential]",
    );
    let id = get("id").as_str().unwrap_or_default();
    require(id.starts_with("urn:uuid:"), "id is not a urn:uuid:");
    require(
        get("jti").as_str() == Some(id),
        "jti is not the credential id",
    );
    let issuer = get("issuer")
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    require(!issuer.is_empty(), "issuer has no id");
    require(
        get("iss").as_str() == Some(issuer),
        "iss is not the issuer's id",
    );
    match valid_from(entries.iter().map(|e| e.statement)) {
        Ok(t) => {
            require(
                get("validFrom").as_str() == Some(rfc3339(&t).as_str()),
                "validFrom is not the earliest completion time of the statements",
            );
            require(
                get("nbf").as_i64() == Some(t.timestamp()),
                "nbf is not validFrom",
            );
        }
        Err(m) => require(false, &m),
    }
    let awarded = get("awardedDate").as_str().unwrap_or_default();
    require(
        DateTime::parse_from_rfc3339(awarded).is_ok(),
        "awardedDate is not an RFC 3339 time",
    );

    let subject = get("credentialSubject");
    let identity = ifi.subject_identity();
    for name in ["id", "identifier"] {
        require(
            subject.get(name) == identity.get(name),
            "credentialSubject does not name the certificate's agent",
        );
    }
    require(
        get("sub") == identity.get("id").unwrap_or(&Value::Null),
        "sub is not the credential subject's id",
    );
    require(
        subject.get("type") == Some(&json!(["AchievementSubject"])),
        "credentialSubject.type is not [AchievementSubject]",
    );
    let achievement = subject.get("achievement").unwrap_or(&Value::Null);
    require(
        achievement.get("id").and_then(Value::as_str) == Some(activity),
        "the achievement is not the certificate's activity",
    );
    require(
        achievement.get("type") == Some(&json!(["Achievement"])),
        "the achievement's type is not [Achievement]",
    );
    let name = achievement
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(activity)
        .to_owned();
    let evidences: Vec<Value> = entries
        .iter()
        .map(|e| evidence(e.id, e.leaf_index, e.tlog_proof, vkey.name()))
        .collect();
    require(
        *get("evidence") == Value::Array(evidences),
        "evidence is not the certificate's statements, leaf indexes and tlog-proofs",
    );
    if !failures.is_empty() {
        return Err(failures);
    }
    Ok(CredentialFacts {
        id: id.to_owned(),
        name,
        issuer: issuer.to_owned(),
        valid_from: get("validFrom").as_str().unwrap_or_default().to_owned(),
        awarded: awarded.to_owned(),
    })
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;
