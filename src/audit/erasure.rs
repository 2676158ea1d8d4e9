//! Lawful erasure (DPDP Act 2023 §12, GDPR Art. 17): the receipt of one erasure. The
//! statements' content and salts are deleted; their leaves stay (the log is append-only)
//! and erasure leaves naming them are appended, carrying the SHA-256 of this receipt
//! (docs/AUDIT.md 6.5 and 9). The receipt goes to whoever asked for the erasure; the LRS
//! keeps only its hash, so it keeps no copy of the person's identifier.
use super::leaf::{self, LeafError};
use super::merkle::Hash;
use crate::departments::Department;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const RECEIPT_FORMAT: &str = "karmayogi-lrs/erasure-receipt/v1";

/// One erased statement as the receipt names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedStatement {
    pub leaf_index: u64,
    pub statement_id: String,
    pub department: Department,
    pub stored_us: i64,
}

/// What one erasure was: whose, where, at whose request, when, and which statements.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The person, as the identifier the request named (an Agent's inverse functional
    /// identifier, nothing else).
    pub agent: Value,
    /// The department whose subtree was erased.
    pub department: Department,
    /// Who asked: the authority of the credential, or the command line.
    pub requested_by: Value,
    /// The request's own reference (a case number), when given.
    pub reference: Option<String>,
    pub erased_us: i64,
    /// In increasing leaf order.
    pub statements: Vec<ErasedStatement>,
}

impl Receipt {
    /// The receipt's bytes: its RFC 8785 canonical JSON and a newline. Its hash is what
    /// the erasure leaves carry.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LeafError> {
        let mut statements = self.statements.clone();
        statements.sort_by_key(|s| s.leaf_index);
        let value = json!({
            "format": RECEIPT_FORMAT,
            "agent": self.agent,
            "department": self.department.as_str(),
            "requestedBy": self.requested_by,
            "reference": self.reference,
            "erased": chrono::DateTime::from_timestamp_micros(self.erased_us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            "erasedMicros": self.erased_us,
            "statements": statements.iter().map(|s| json!({
                "leafIndex": s.leaf_index,
                "statementId": s.statement_id,
                "department": s.department.as_str(),
                "storedMicros": s.stored_us,
            })).collect::<Vec<_>>(),
        });
        let mut bytes = leaf::canonicalize(&value)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The leaf indexes the erasure leaves name.
    pub fn leaf_indexes(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.statements.iter().map(|s| s.leaf_index).collect();
        v.sort_unstable();
        v
    }
}

/// SHA-256 of a receipt's bytes (erasure leaf field `receipt`).
pub fn receipt_hash(bytes: &[u8]) -> Hash {
    Hash(Sha256::digest(bytes).into())
}

/// Only the inverse functional identifier of an Agent (a name or other properties the
/// request carried are not part of whose data was erased).
pub fn agent_identifier(agent: &Value) -> Option<Value> {
    let obj = agent.as_object()?;
    if obj.get("objectType").and_then(Value::as_str) == Some("Group") {
        return None;
    }
    for k in ["mbox", "mbox_sha1sum", "openid", "account"] {
        if let Some(v) = obj.get(k) {
            return Some(json!({ "objectType": "Agent", k: v }));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            agent: json!({"objectType": "Agent", "mbox": "mailto:asha@example.gov.in"}),
            department: Department::parse("moe").unwrap(),
            requested_by: json!({"objectType": "Agent", "account": {"homePage": "https://x", "name": "admin"}}),
            reference: Some("DPDP-2026-0042".into()),
            erased_us: 1_796_099_400_123_456,
            statements: vec![
                ErasedStatement {
                    leaf_index: 9,
                    statement_id: "b".into(),
                    department: Department::parse("moe/dhe").unwrap(),
                    stored_us: 2,
                },
                ErasedStatement {
                    leaf_index: 3,
                    statement_id: "a".into(),
                    department: Department::parse("moe").unwrap(),
                    stored_us: 1,
                },
            ],
        }
    }

    #[test]
    fn the_receipt_is_canonical_json_and_lists_leaves_in_order() {
        let r = receipt();
        let bytes = r.to_bytes().unwrap();
        assert_eq!(bytes.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&bytes[..bytes.len() - 1]).unwrap();
        // Canonical: re-canonicalising the text gives the same bytes.
        assert_eq!(leaf::canonicalize_text(text).unwrap(), text.as_bytes());
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["format"], RECEIPT_FORMAT);
        assert_eq!(v["statements"][0]["leafIndex"], 3);
        assert_eq!(v["statements"][1]["leafIndex"], 9);
        assert_eq!(v["erased"], "2026-12-01T04:30:00.123456Z");
        assert_eq!(r.leaf_indexes(), vec![3, 9]);
    }

    #[test]
    fn the_hash_changes_with_any_field() {
        let base = receipt_hash(&receipt().to_bytes().unwrap());
        let mut r = receipt();
        r.reference = None;
        assert_ne!(receipt_hash(&r.to_bytes().unwrap()), base);
        let mut r = receipt();
        r.statements[0].leaf_index = 10;
        assert_ne!(receipt_hash(&r.to_bytes().unwrap()), base);
        assert_eq!(receipt_hash(&receipt().to_bytes().unwrap()), base);
    }

    #[test]
    fn only_the_identifier_of_an_agent_is_kept() {
        assert_eq!(
            agent_identifier(&json!({"name": "Asha", "mbox": "mailto:a@x.in"})),
            Some(json!({"objectType": "Agent", "mbox": "mailto:a@x.in"}))
        );
        assert_eq!(
            agent_identifier(&json!({"objectType": "Group", "mbox": "mailto:g@x.in"})),
            None
        );
        assert_eq!(agent_identifier(&json!({"name": "nobody"})), None);
    }
}
