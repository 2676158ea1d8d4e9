//! The write path of statements, shared by `PUT`/`POST /xapi/statements` and `import`:
//! each statement prepared by `xapi::statement` (validated, id, `stored`, `authority`),
//! then the batch stored atomically in the writer's department, identical re-sends told
//! from conflicts (Communication 2.1.1.s2.b2 / 2.1.2.s2.b3).
use crate::departments::{self, Department};
use crate::error::{XapiError, XapiResult};
use crate::store::clock::StoredClock;
use crate::store::{DynStore, InsertOutcome, StatementBatch};
use crate::xapi::document;
use crate::xapi::multipart::AttachmentContent;
use crate::xapi::statement::{self, Receipt};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Where and as whom statements are written.
pub struct Writer<'a> {
    pub store: &'a DynStore,
    pub clock: &'a StoredClock,
    pub department: &'a Department,
    pub receipt: Receipt<'a>,
}

/// What a statement that cannot be stored gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole request fails (a client's batch: stored whole or not at all).
    Atomic,
    /// The statement is set aside with its error and the others are stored (import).
    Lenient,
}

/// The result of one call.
#[derive(Debug, Default)]
pub struct Stored {
    /// The ids of the statements stored or already there, in the order given
    /// (Lenient: without the rejected ones).
    pub ids: Vec<String>,
    /// Lenient: (index in the list, why) of each statement set aside.
    pub rejected: Vec<(usize, XapiError)>,
    /// How many were already stored, identical (no-ops).
    pub already: usize,
}

/// A statement handed to the store, as kept for comparison with a stored one.
struct Sent {
    index: usize,
    /// The id the store keys it by.
    key: String,
    stored_us: i64,
    statement: Value,
    timestamp_given: bool,
}

/// Error paths inside a batch point at the statement's index.
pub fn prefix_path(mut e: XapiError, i: usize) -> XapiError {
    e.path = Some(format!("/{i}{}", e.path.as_deref().unwrap_or("")));
    e
}

impl Writer<'_> {
    /// Prepares and stores `list`. `batch`: the body was an array, so error paths start
    /// with the statement's index.
    pub async fn store(
        &self,
        list: Vec<Value>,
        batch: bool,
        attachments: Vec<AttachmentContent>,
        mode: Mode,
    ) -> XapiResult<Stored> {
        let version = self.receipt.version;
        // Held until the store has answered: the batch counts as in flight for
        // Consistent-Through from before its first `stored` exists (see `store::clock`).
        let mut reservation = self.clock.reserve();
        let mut out = Stored::default();
        let mut seen = HashSet::with_capacity(list.len());
        // Records and definitions move into the batch; what telling an identical re-send
        // from a conflict needs stays here.
        let mut records = Vec::with_capacity(list.len());
        let mut definitions = Vec::new();
        let mut sent = Vec::with_capacity(list.len());
        let mut ids: Vec<(usize, String)> = Vec::with_capacity(list.len());
        for (i, s) in list.into_iter().enumerate() {
            let p = match statement::prepare(s, &self.receipt, reservation.next_stored_us()) {
                Ok(p) => p,
                Err(e) => {
                    let e = if batch && e.status == actix_web::http::StatusCode::BAD_REQUEST {
                        prefix_path(e, i)
                    } else {
                        e
                    };
                    match mode {
                        Mode::Atomic => return Err(e),
                        Mode::Lenient => {
                            out.rejected.push((i, e));
                            continue;
                        }
                    }
                }
            };
            if !seen.insert(p.record.id.clone()) {
                let e = XapiError::bad_request(format!(
                    "statement id {} appears twice in the batch",
                    p.record.id
                ))
                // Only a batch can repeat an id, so the path always has the index.
                .at(format!("/{i}/id"))
                .req("Communication 2.1.2.s2.b4");
                match mode {
                    Mode::Atomic => return Err(e),
                    Mode::Lenient => {
                        out.rejected.push((i, e));
                        continue;
                    }
                }
            }
            ids.push((
                i,
                p.statement
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or(&p.record.id)
                    .to_owned(),
            ));
            sent.push(Sent {
                index: i,
                key: departments::record_key(&p.record.id, self.department),
                stored_us: p.record.stored_us,
                statement: p.statement,
                timestamp_given: p.timestamp_given,
            });
            records.push(p.record);
            definitions.extend(p.definitions);
        }
        let finish = |mut out: Stored, rejected: &HashSet<usize>| {
            out.ids = ids
                .iter()
                .filter(|(i, _)| !rejected.contains(i))
                .map(|(_, id)| id.clone())
                .collect();
            out.rejected.sort_by_key(|(i, _)| *i);
            out
        };
        let mut conflicted: HashSet<usize> = HashSet::new();
        while !sent.is_empty() {
            let batch = StatementBatch::new(
                self.department,
                records,
                attachments.clone(),
                definitions,
                document::merge_definition,
            )?;
            let existing = match self.store.insert_statements(batch).await? {
                InsertOutcome::Inserted => break,
                InsertOutcome::Existing(existing) => existing,
            };
            let existing: HashMap<String, String> = existing.into_iter().collect();
            for s in &sent {
                if let Some(json) = existing.get(&s.key) {
                    let stored: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                    let received = statement::as_received(&s.statement, s.timestamp_given);
                    if statement::same_statement(&received, &stored, version) {
                        out.already += 1;
                        continue;
                    }
                    let e = XapiError::conflict(format!(
                        "a different statement is already stored with id {}",
                        departments::split_record_key(&s.key).0
                    ))
                    .req("Communication 2.1.1.s2.b2");
                    match mode {
                        Mode::Atomic => return Err(e),
                        Mode::Lenient => {
                            conflicted.insert(s.index);
                            out.rejected.push((s.index, e));
                        }
                    }
                }
            }
            // Identical re-sends are no-ops; store the rest. The store consumed the batch,
            // so their records are derived again, exactly as before.
            sent.retain(|s| !existing.contains_key(&s.key));
            records = Vec::with_capacity(sent.len());
            definitions = Vec::new();
            for s in &sent {
                let (record, defs) =
                    statement::derive(&s.statement, s.stored_us, self.receipt.may_define);
                records.push(record);
                definitions.extend(defs);
            }
        }
        drop(reservation);
        Ok(finish(out, &conflicted))
    }
}
