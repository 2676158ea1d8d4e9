//! The MongoDB store's part of the audit log. Several LRS processes may share one
//! database: statements the log has not taken carry `lq`, so a statement committed late
//! by another process is still found; one process sequences at a time (a lease), and
//! each append is one transaction (leaves, hashes, tree size, `lq` cleared), so a crash
//! mid-batch leaves nothing half-written.
use super::*;
use crate::audit::merkle::{stored_hash_count, Hash};
use mongodb::options::Hint;

pub(super) const UNLOGGED_INDEX: &str = "lq_stored";
pub(super) const LEAF_STATEMENT_INDEX: &str = "leaf_statement";
const TREE: &str = "tree";
const LEASE: &str = "lease";

fn i64_of(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n)
        .map_err(|_| StoreError::Internal(format!("{n} is beyond the store's integers")))
}

fn blob32(d: &BsonDoc, k: &str) -> Option<[u8; 32]> {
    get_bytes(d, k).and_then(|b| <[u8; 32]>::try_from(b).ok())
}

fn corrupt(m: impl Into<String>) -> StoreError {
    StoreError::Internal(m.into())
}

impl MongoStore {
    /// Creates the log's state on first start. Statements stored before the log existed
    /// are marked unlogged then, so the log takes them too.
    pub(super) async fn start_log(&self) -> Result<(), MongoError> {
        if self
            .log_state
            .find_one(doc! { "_id": TREE })
            .await?
            .is_some()
        {
            return Ok(());
        }
        self.statements
            .update_many(
                doc! { "ph": { "$ne": true }, "lq": { "$exists": false } },
                doc! { "$set": { "lq": true } },
            )
            .await?;
        match self
            .log_state
            .insert_one(doc! { "_id": TREE, "size": 0_i64 })
            .await
        {
            Ok(_) => Ok(()),
            // Another process made it first.
            Err(e) if error_codes(&e).contains(&code::DUPLICATE_KEY) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn read_log_state(&self) -> StoreResult<LogState> {
        let d = self
            .log_state
            .find_one(doc! { "_id": TREE })
            .await
            .map_err(db_err)?
            .ok_or_else(|| corrupt("the audit log's state is missing"))?;
        let size = get_int(&d, "size").ok_or_else(|| corrupt("the log's size is missing"))?;
        let checkpoint = get_int(&d, "cps")
            .zip(get_str(&d, "cp"))
            .map(|(s, n)| (s as u64, n.to_owned()));
        Ok(LogState {
            size: size as u64,
            checkpoint,
        })
    }

    pub(super) async fn read_unlogged(
        &self,
        horizon_us: i64,
        limit: usize,
    ) -> StoreResult<Vec<UnloggedStatement>> {
        let mut cursor = self
            .statements
            .find(doc! { "lq": true, "stored": { "$lte": horizon_us } })
            .sort(doc! { "lq": 1, "stored": 1, "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .projection(doc! { "stored": 1, "salt": 1, "cm": 1 })
            .hint(Hint::Name(UNLOGGED_INDEX.to_owned()))
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        let mut unsealed = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            let key = get_str(&d, "_id").ok_or_else(|| corrupt("a statement without _id"))?;
            let seal = blob32(&d, "salt").zip(blob32(&d, "cm"));
            if seal.is_none() {
                unsealed.push(key.to_owned());
            }
            out.push(UnloggedStatement {
                key: key.to_owned(),
                stored_us: get_int(&d, "stored").ok_or_else(|| corrupt("no stored"))?,
                seal,
                json: None,
            });
        }
        if !unsealed.is_empty() {
            // Stored before the log existed: the sequencer seals them from their JSON.
            let mut json: HashMap<String, String> = HashMap::new();
            let mut c = self
                .statements
                .find(doc! { "_id": { "$in": &unsealed } })
                .projection(doc! { "json": 1 })
                .await
                .map_err(db_err)?;
            while c.advance().await.map_err(db_err)? {
                let d: BsonDoc = c.deserialize_current().map_err(db_err)?;
                if let (Some(k), Some(j)) = (get_str(&d, "_id"), get_str(&d, "json")) {
                    json.insert(k.to_owned(), j.to_owned());
                }
            }
            for u in &mut out {
                if u.seal.is_none() {
                    u.json = json.remove(&u.key);
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn read_pending_erasures(&self) -> StoreResult<Vec<PendingErasure>> {
        let mut cursor = self
            .log_erasures
            .find(doc! { "logged": false })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            let bad = || corrupt("a malformed erasure record");
            out.push(PendingErasure {
                id: get_int(&d, "_id").ok_or_else(bad)?,
                receipt_hash: get_bytes(&d, "rh")
                    .and_then(Hash::from_slice)
                    .ok_or_else(bad)?,
                erased_us: get_int(&d, "erased").ok_or_else(bad)?,
                indexes: d
                    .get_array("leaves")
                    .map_err(|_| bad())?
                    .iter()
                    .map(|b| b.as_i64().map(|i| i as u64).ok_or_else(bad))
                    .collect::<StoreResult<_>>()?,
            });
        }
        Ok(out)
    }

    pub(super) async fn append_log_body(
        &self,
        s: &mut ClientSession,
        a: &LogAppend,
    ) -> Attempt<(Done, bool)> {
        let tree = self
            .log_state
            .find_one(doc! { "_id": TREE })
            .session(&mut *s)
            .await?
            .ok_or_else(|| Fail::Corrupt("the audit log's state is missing".into()))?;
        if get_int(&tree, "size").map(|n| n as u64) != Some(a.old_size) {
            return Ok((Done::Bool(false), false));
        }
        let too_big = |n: u64| Fail::Corrupt(format!("{n} is beyond the store's integers"));
        let mut leaves = Vec::with_capacity(a.entries.len());
        let mut keys = Vec::new();
        for (i, e) in a.entries.iter().enumerate() {
            let n = a.old_size + i as u64;
            let mut d =
                doc! { "_id": i64::try_from(n).map_err(|_| too_big(n))?, "e": bin(&e.entry) };
            if let Some(k) = &e.statement {
                d.insert("s", k.clone());
                keys.push(k.as_str());
            }
            leaves.push(d);
        }
        if !leaves.is_empty() {
            self.log_leaves.insert_many(leaves).session(&mut *s).await?;
        }
        let first = stored_hash_count(a.old_size);
        let mut hashes = Vec::with_capacity(a.hashes.len());
        for (i, h) in a.hashes.iter().enumerate() {
            let n = first + i as u64;
            hashes.push(doc! { "_id": i64::try_from(n).map_err(|_| too_big(n))?, "h": bin(&h.0) });
        }
        if !hashes.is_empty() {
            self.log_hashes.insert_many(hashes).session(&mut *s).await?;
        }
        for (key, salt, cm) in &a.seals {
            self.statements
                .update_one(
                    doc! { "_id": key },
                    doc! { "$set": { "salt": bin(salt), "cm": bin(cm) } },
                )
                .session(&mut *s)
                .await?;
        }
        if !a.erasures.is_empty() {
            self.log_erasures
                .update_many(
                    doc! { "_id": { "$in": &a.erasures } },
                    doc! { "$set": { "logged": true } },
                )
                .session(&mut *s)
                .await?;
        }
        if !keys.is_empty() {
            self.statements
                .update_many(
                    doc! { "_id": { "$in": &keys } },
                    doc! { "$unset": { "lq": "" } },
                )
                .session(&mut *s)
                .await?;
        }
        let new_size = a.old_size + a.entries.len() as u64;
        let moved = self
            .log_state
            .update_one(
                doc! { "_id": TREE, "size": i64::try_from(a.old_size).map_err(|_| too_big(a.old_size))? },
                doc! { "$set": { "size": i64::try_from(new_size).map_err(|_| too_big(new_size))? } },
            )
            .session(&mut *s)
            .await?;
        if moved.matched_count == 0 {
            return Ok((Done::Bool(false), false));
        }
        Ok((Done::Bool(true), true))
    }

    pub(super) async fn read_log_hashes(&self, indexes: Vec<u64>) -> StoreResult<Vec<Hash>> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let ids = indexes
            .iter()
            .map(|&i| i64_of(i))
            .collect::<StoreResult<Vec<i64>>>()?;
        let mut cursor = self
            .log_hashes
            .find(doc! { "_id": { "$in": &ids } })
            .await
            .map_err(db_err)?;
        let mut found: HashMap<i64, Hash> = HashMap::with_capacity(ids.len());
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            if let (Some(i), Some(h)) = (
                get_int(&d, "_id"),
                get_bytes(&d, "h").and_then(Hash::from_slice),
            ) {
                found.insert(i, h);
            }
        }
        ids.iter()
            .map(|i| {
                found
                    .get(i)
                    .copied()
                    .ok_or_else(|| corrupt(format!("stored hash {i} is missing")))
            })
            .collect()
    }

    pub(super) async fn read_log_entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>> {
        let mut cursor = self
            .log_leaves
            .find(doc! { "_id": { "$gte": i64_of(start)?, "$lt": i64_of(end)? } })
            .sort(doc! { "_id": 1 })
            .hint(Hint::Name("_id_".to_owned()))
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        let mut want = start;
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            if get_int(&d, "_id").map(|i| i as u64) != Some(want) {
                return Err(corrupt(format!("log entry {want} is missing")));
            }
            out.push(
                get_bytes(&d, "e")
                    .ok_or_else(|| corrupt("a log entry without bytes"))?
                    .to_vec(),
            );
            want += 1;
        }
        if want != end {
            return Err(corrupt(format!("log entry {want} is missing")));
        }
        Ok(out)
    }

    pub(super) async fn write_checkpoint(&self, size: u64, note: String) -> StoreResult<()> {
        let size = i64_of(size)?;
        self.log_state
            .update_one(
                doc! { "_id": TREE, "$or": [ { "cps": { "$exists": false } }, { "cps": { "$lte": size } } ] },
                doc! { "$set": { "cps": size, "cp": note } },
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn read_statement_log(&self, key: &str) -> StoreResult<Option<StatementLog>> {
        let Some(d) = self
            .statements
            .find_one(doc! { "_id": key })
            .projection(doc! { "salt": 1, "ph": 1 })
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        if get_bool(&d, "ph") {
            return Ok(None);
        }
        let leaf = self
            .log_leaves
            .find_one(doc! { "s": key })
            .projection(doc! { "_id": 1 })
            .hint(Hint::Name(LEAF_STATEMENT_INDEX.to_owned()))
            .await
            .map_err(db_err)?
            .and_then(|l| get_int(&l, "_id"))
            .map(|i| i as u64);
        Ok(Some(StatementLog {
            salt: blob32(&d, "salt"),
            leaf,
        }))
    }

    pub(super) async fn read_statement_at_leaf(
        &self,
        index: u64,
    ) -> StoreResult<Option<(String, StoredStatement, [u8; 32])>> {
        let Some(leaf) = self
            .log_leaves
            .find_one(doc! { "_id": i64_of(index)? })
            .projection(doc! { "s": 1 })
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let Some(key) = get_str(&leaf, "s") else {
            return Ok(None);
        };
        let Some(d) = self
            .statements
            .find_one(doc! { "_id": key })
            .projection(doc! { "json": 1, "stored": 1, "voided": 1, "atts": 1, "salt": 1, "ph": 1 })
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        if get_bool(&d, "ph") {
            return Ok(None);
        }
        let s = stored_statement(&d).ok_or_else(|| corrupt("a malformed statement"))?;
        let salt = blob32(&d, "salt").ok_or_else(|| corrupt("a logged statement without salt"))?;
        Ok(Some((key.to_owned(), s, salt)))
    }

    pub(super) async fn take_lease(
        &self,
        holder: &str,
        now_us: i64,
        ttl_us: i64,
    ) -> StoreResult<bool> {
        let until = now_us.saturating_add(ttl_us);
        let renewed = self
            .log_state
            .update_one(
                doc! { "_id": LEASE, "$or": [ { "holder": holder }, { "until": { "$lt": now_us } } ] },
                doc! { "$set": { "holder": holder, "until": until } },
            )
            .await
            .map_err(db_err)?;
        if renewed.matched_count > 0 {
            return Ok(true);
        }
        match self
            .log_state
            .insert_one(doc! { "_id": LEASE, "holder": holder, "until": until })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if error_codes(&e).contains(&code::DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }
}
