//! The MongoDB store's part of the audit log. Several LRS processes may share one
//! database: statements the log has not taken carry `lq`, so a statement committed late
//! by another process is still found; one process sequences at a time (a lease), and
//! each append is one transaction (leaves, hashes, tree size, `lq` cleared), so a crash
//! mid-batch leaves nothing half-written.
use super::*;
use crate::audit::leaf::Leaf;
use crate::audit::merkle::{stored_hash_count, Hash};
use mongodb::options::Hint;

pub(super) const UNLOGGED_INDEX: &str = "lq_stored";
pub(super) const LEAF_STATEMENT_INDEX: &str = "leaf_statement";
pub(super) const LEAF_ERASURE_INDEX: &str = "leaf_erasure";
/// Leaves by the subtrees that see them in the change feed (`k`).
pub(super) const LEAF_FEED_INDEX: &str = "leaf_feed";
const TREE: &str = "tree";
/// Keys per `$in` list.
const IN_SLICE: usize = 200;
const LEASE: &str = "lease";
/// Documents per insert of an append, the lease renewed before each.
const APPEND_CHUNK: usize = 1_000;
/// How long clearing a slice of marks retries write conflicts before it leaves them for
/// a later step (see `clear_marks`).
const MARK_RETRY: Duration = Duration::from_secs(1);

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
                row: 0,
                stored_us: get_int(&d, "stored").ok_or_else(|| corrupt("no stored"))?,
                seal,
                json: None,
            });
        }
        // Only after an append whose marks were not all cleared (a crash in between, or
        // marks held by a killed process's transaction) can a marked statement already be
        // in the log.
        let tree = self
            .log_state
            .find_one(doc! { "_id": TREE })
            .await
            .map_err(db_err)?;
        let clean = tree
            .as_ref()
            .is_some_and(|t| t.get_bool("clean").unwrap_or(false));
        let stale = tree
            .as_ref()
            .is_some_and(|t| t.get_bool("stale").unwrap_or(false));
        // Every marked statement up to the horizon was read: any logged one among them
        // is every one there is (a logged statement was stored before an earlier horizon).
        let saw_all = out.len() < limit;
        let logged = if clean || out.is_empty() {
            Vec::new()
        } else {
            self.already_logged(
                "s",
                out.iter().map(|u| Bson::String(u.key.clone())).collect(),
            )
            .await?
        };
        if !logged.is_empty() {
            let keys: Vec<String> = logged
                .iter()
                .filter_map(|b| b.as_str().map(str::to_owned))
                .collect();
            let cleared = self.clear_marks(&keys, &[]).await?;
            out.retain(|u| !keys.contains(&u.key));
            unsealed.retain(|k| !keys.contains(k));
            if cleared && stale && saw_all {
                self.no_stale_marks().await?;
            }
        } else if stale && saw_all {
            self.no_stale_marks().await?;
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
        let logged: Vec<i64> = self
            .already_logged("x", out.iter().map(|e| Bson::Int64(e.id)).collect())
            .await?
            .iter()
            .filter_map(Bson::as_i64)
            .collect();
        if !logged.is_empty() {
            // Logged either way; marks left behind are tried again at the next read.
            self.clear_marks::<&str>(&[], &logged).await?;
            out.retain(|e| !logged.contains(&e.id));
        }
        Ok(out)
    }

    /// Appends without a transaction: a transaction left open by a sequencer that
    /// crashed holds its locks until the server expires it (a minute on MongoDB), which
    /// would stop the log that long. Instead every write is idempotent or cleaned up:
    /// leftovers of a crashed attempt (at or above the size) are deleted first, the size
    /// moves last by compare-and-set, and statements or erasures whose `lq`/`logged` mark
    /// a crash left behind are recognised by their leaf (`s`, `x`) and not logged twice.
    pub(super) async fn append_log_unshared(&self, a: &LogAppend) -> StoreResult<bool> {
        // The lease is renewed before every step, so an append that takes longer than
        // the lease (a large one on a busy server) goes on rather than being given up
        // and started again forever; a holder that lost it stops before moving the size.
        if !self.keep_lease(a).await? {
            return Ok(false);
        }
        let tree = self
            .log_state
            .find_one(doc! { "_id": TREE })
            .await
            .map_err(db_err)?
            .ok_or_else(|| corrupt("the audit log's state is missing"))?;
        if get_int(&tree, "size").map(|n| n as u64) != Some(a.old_size) {
            return Ok(false);
        }
        let old = i64_of(a.old_size)?;
        let first_hash = i64_of(stored_hash_count(a.old_size))?;
        self.log_leaves
            .delete_many(doc! { "_id": { "$gte": old } })
            .await
            .map_err(db_err)?;
        self.log_hashes
            .delete_many(doc! { "_id": { "$gte": first_hash } })
            .await
            .map_err(db_err)?;
        let mut leaves = Vec::with_capacity(a.entries.len());
        let mut keys = Vec::new();
        for (i, e) in a.entries.iter().enumerate() {
            let mut d = doc! { "_id": i64_of(a.old_size + i as u64)?, "e": bin(&e.entry) };
            let department = e
                .statement
                .as_deref()
                .map(|k| departments::split_record_key(k).1);
            self.see_leaf(&mut d, &e.entry, department.as_ref()).await?;
            if let Some(k) = &e.statement {
                d.insert("s", k.clone());
                keys.push(k.as_str());
            }
            if let Some(x) = e.erasure {
                d.insert("x", x);
            }
            leaves.push(d);
        }
        if !self.insert_leased(&self.log_leaves, &leaves, a).await? {
            return Ok(false);
        }
        let mut hashes = Vec::with_capacity(a.hashes.len());
        for (i, h) in a.hashes.iter().enumerate() {
            hashes.push(doc! { "_id": first_hash + i as i64, "h": bin(&h.0) });
        }
        if !self.insert_leased(&self.log_hashes, &hashes, a).await? {
            return Ok(false);
        }
        for (i, (key, salt, cm)) in a.seals.iter().enumerate() {
            if i % APPEND_CHUNK == 0 && !self.keep_lease(a).await? {
                return Ok(false);
            }
            self.statements
                .update_one(
                    doc! { "_id": key },
                    doc! { "$set": { "salt": bin(salt), "cm": bin(cm) } },
                )
                .await
                .map_err(db_err)?;
        }
        if !self.keep_lease(a).await? {
            return Ok(false);
        }
        let new_size = i64_of(a.old_size + a.entries.len() as u64)?;
        let moved = self
            .log_state
            .update_one(
                doc! { "_id": TREE, "size": old },
                doc! { "$set": { "size": new_size, "clean": false } },
            )
            .await
            .map_err(db_err)?;
        if moved.matched_count == 0 {
            return Ok(false);
        }
        // The entries are in the log now: marks that cannot be cleared at once leave the
        // tree unclean, and later reads recognise those statements by their leaf.
        if self.clear_marks(&keys, &a.erasures).await? {
            self.log_state
                .update_one(
                    doc! { "_id": TREE, "size": new_size, "stale": { "$ne": true } },
                    doc! { "$set": { "clean": true } },
                )
                .await
                .map_err(db_err)?;
        }
        Ok(true)
    }

    /// Sets a leaf's department (`d`, statement leaves) and the subtrees that see it in the
    /// feed (`k`: every department above and at the statement's, the root excepted; for an
    /// erasure leaf, those of every statement leaf it names).
    async fn see_leaf(
        &self,
        d: &mut BsonDoc,
        entry: &[u8],
        department: Option<&Department>,
    ) -> StoreResult<()> {
        let mut seen: std::collections::BTreeSet<Department> = Default::default();
        match department {
            Some(dep) => {
                d.insert("d", dep.as_str());
                seen.extend(dep.lineage());
            }
            None => {
                d.insert("d", Bson::Null);
                if let Ok(Leaf::Erasure(x)) = Leaf::parse(entry) {
                    for dep in self.leaf_departments(&x.indexes).await?.into_values() {
                        seen.extend(dep.lineage());
                    }
                }
            }
        }
        let k: Vec<&str> = seen
            .iter()
            .filter(|d| !d.is_root())
            .map(Department::as_str)
            .collect();
        if !k.is_empty() {
            d.insert("k", k);
        }
        Ok(())
    }

    /// The departments of statement leaves (those whose department is known).
    async fn leaf_departments(
        &self,
        indexes: &[u64],
    ) -> StoreResult<std::collections::HashMap<u64, Department>> {
        let mut out = std::collections::HashMap::new();
        for slice in indexes.chunks(IN_SLICE) {
            let ids = slice
                .iter()
                .map(|&i| i64_of(i))
                .collect::<Result<Vec<_>, _>>()?;
            let mut cursor = self
                .log_leaves
                .find(doc! { "_id": { "$in": ids } })
                .projection(doc! { "d": 1 })
                .await
                .map_err(db_err)?;
            while cursor.advance().await.map_err(db_err)? {
                let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
                if let (Some(i), Some(dep)) = (get_int(&d, "_id"), get_str(&d, "d")) {
                    if let Ok(dep) = Department::parse(dep) {
                        out.insert(i as u64, dep);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Fills in `d` and `k` for leaves appended before the change feed existed (once).
    pub(super) async fn backfill_feed(&self) -> StoreResult<()> {
        let mut cursor = self
            .log_leaves
            .find(doc! { "d": { "$exists": false } })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(db_err)?;
        let mut todo = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            todo.push(cursor.deserialize_current().map_err(db_err)?);
        }
        for old in todo {
            let Some(id) = get_int(&old, "_id") else {
                continue;
            };
            let entry = get_bytes(&old, "e").unwrap_or_default().to_vec();
            let department = get_str(&old, "s").map(|k| departments::split_record_key(k).1);
            let mut set = BsonDoc::new();
            self.see_leaf(&mut set, &entry, department.as_ref()).await?;
            self.log_leaves
                .update_one(doc! { "_id": id }, doc! { "$set": set })
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// The feed's page of leaves `[from, to)` for `subtree` (see `Store::feed`).
    pub(super) async fn read_feed(
        &self,
        subtree: &Department,
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<FeedPage> {
        let range = doc! { "$gte": i64_of(from)?, "$lt": i64_of(to)? };
        let filter = if subtree.is_root() {
            doc! { "_id": range }
        } else {
            doc! { "k": subtree.as_str(), "_id": range }
        };
        let limit = limit.max(1);
        let mut cursor = self
            .log_leaves
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(limit as i64)
            .projection(doc! { "e": 1, "s": 1 })
            .await
            .map_err(db_err)?;
        let mut leaves: Vec<(u64, Vec<u8>, Option<String>)> = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            let leaf = get_int(&d, "_id").ok_or_else(|| corrupt("a leaf without index"))?;
            let entry = get_bytes(&d, "e")
                .ok_or_else(|| corrupt("a log entry without bytes"))?
                .to_vec();
            leaves.push((leaf as u64, entry, get_str(&d, "s").map(str::to_owned)));
        }
        let next = match leaves.last() {
            Some((leaf, ..)) if leaves.len() == limit => leaf + 1,
            _ => to,
        };
        // The statements, by key, in slices.
        let keys: Vec<&str> = leaves.iter().filter_map(|l| l.2.as_deref()).collect();
        let mut statements: std::collections::HashMap<String, (String, Option<String>)> =
            std::collections::HashMap::with_capacity(keys.len());
        for slice in keys.chunks(IN_SLICE) {
            let mut cursor = self
                .statements
                .find(doc! { "_id": { "$in": slice.to_vec() }, "ph": { "$ne": true } })
                .projection(doc! { "json": 1, "voids": 1 })
                .await
                .map_err(db_err)?;
            while cursor.advance().await.map_err(db_err)? {
                let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
                if let (Some(k), Some(j)) = (get_str(&d, "_id"), get_str(&d, "json")) {
                    let voids = get_str(&d, "voids").map(str::to_owned);
                    statements.insert(k.to_owned(), (j.to_owned(), voids));
                }
            }
        }
        let mut items = Vec::with_capacity(leaves.len());
        for (leaf, entry, key) in leaves {
            if let Some(key) = key {
                if let Some((json, voids)) = statements.remove(&key) {
                    items.push(FeedItem {
                        leaf,
                        event: FeedEvent::Statement { key, json, voids },
                    });
                }
                continue;
            }
            let Ok(Leaf::Erasure(x)) = Leaf::parse(&entry) else {
                continue;
            };
            let leaves = if subtree.is_root() {
                x.indexes
            } else {
                let of = self.leaf_departments(&x.indexes).await?;
                x.indexes
                    .into_iter()
                    .filter(|i| of.get(i).is_some_and(|d| d.is_within(subtree)))
                    .collect()
            };
            if !leaves.is_empty() {
                items.push(FeedItem {
                    leaf,
                    event: FeedEvent::Erasure {
                        erased_us: x.erased_us,
                        receipt: x.receipt,
                        leaves,
                    },
                });
            }
        }
        Ok(FeedPage { items, next })
    }

    /// Takes or renews a named lease (see `Store::lease`).
    pub(super) async fn take_named_lease(
        &self,
        name: &str,
        holder: &str,
        now_us: i64,
        ttl_us: i64,
    ) -> StoreResult<bool> {
        let id = format!("lease:{name}");
        let until = now_us.saturating_add(ttl_us);
        let renewed = self
            .log_state
            .update_one(
                doc! { "_id": &id, "$or": [ { "holder": holder }, { "until": { "$lt": now_us } } ] },
                doc! { "$set": { "holder": holder, "until": until } },
            )
            .await
            .map_err(db_err)?;
        if renewed.matched_count > 0 {
            return Ok(true);
        }
        match self
            .log_state
            .insert_one(doc! { "_id": &id, "holder": holder, "until": until })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if error_codes(&e).contains(&code::DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    /// Clears the marks of statements and erasures now in the log; false when some are
    /// left (the tree is then marked `stale` and stays unclean until a read finds them
    /// all cleared).
    ///
    /// In slices: a long `$in` list costs more than linearly on some servers (SecantusDB:
    /// 1,100 keys took 2.1 s, slices of 200 0.1 s each). Each slice is a transaction: a
    /// statement held by a transaction a killed process left open makes it fail with a
    /// write conflict, where a plain update would wait on it (SecantusDB: for ever,
    /// holding the collection, which stopped every client of the server). The conflict
    /// lasts until the server expires the dead transaction (MongoDB: a minute); the log
    /// does not wait for that: clearing marks is housekeeping, the entries are logged.
    async fn clear_marks<K: AsRef<str>>(&self, keys: &[K], erasures: &[i64]) -> StoreResult<bool> {
        let mut all = true;
        for slice in keys.chunks(IN_SLICE) {
            let slice: Vec<String> = slice.iter().map(|k| k.as_ref().to_owned()).collect();
            all &= self.mark_slice(Op::MarkLogged(&slice, &[])).await?;
        }
        if !erasures.is_empty() {
            all &= self.mark_slice(Op::MarkLogged(&[], erasures)).await?;
        }
        if !all {
            self.log_state
                .update_one(
                    doc! { "_id": TREE },
                    doc! { "$set": { "stale": true, "clean": false } },
                )
                .await
                .map_err(db_err)?;
        }
        Ok(all)
    }

    /// One slice of `clear_marks`: false when it still conflicts after `MARK_RETRY`.
    async fn mark_slice(&self, op: Op<'_>) -> StoreResult<bool> {
        match self.transaction_for(op, MARK_RETRY).await {
            Ok(_) => Ok(true),
            Err(StoreError::Busy(m)) => {
                tracing::warn!("audit log: marks of logged statements left for a later step: {m}");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// A read found no marked statement left in the log: the tree is clean again.
    async fn no_stale_marks(&self) -> StoreResult<()> {
        self.log_state
            .update_one(
                doc! { "_id": TREE, "stale": true },
                doc! { "$unset": { "stale": "" }, "$set": { "clean": true } },
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn mark_logged_body(
        &self,
        s: &mut ClientSession,
        keys: &[String],
        erasures: &[i64],
    ) -> Attempt<(Done, bool)> {
        if !keys.is_empty() {
            self.statements
                .update_many(
                    doc! { "_id": { "$in": keys } },
                    doc! { "$unset": { "lq": "" } },
                )
                .session(&mut *s)
                .await?;
        }
        if !erasures.is_empty() {
            self.log_erasures
                .update_many(
                    doc! { "_id": { "$in": erasures } },
                    doc! { "$set": { "logged": true } },
                )
                .session(&mut *s)
                .await?;
        }
        Ok((Done::Unit, true))
    }

    /// Inserts `docs` into `coll` `APPEND_CHUNK` at a time, renewing the append's lease
    /// before each; false once it is lost.
    async fn insert_leased(
        &self,
        coll: &Collection<BsonDoc>,
        docs: &[BsonDoc],
        a: &LogAppend,
    ) -> StoreResult<bool> {
        for chunk in docs.chunks(APPEND_CHUNK) {
            if !self.keep_lease(a).await? {
                return Ok(false);
            }
            coll.insert_many(chunk.to_vec()).await.map_err(db_err)?;
        }
        Ok(true)
    }

    /// Renews the sequencer lease of the append's holder while it is still theirs; false
    /// when another process has taken it. A lease that ran out while its holder was busy
    /// (reading thousands of unlogged statements from a slow server takes longer than the
    /// lease) is still the holder's until another process takes it: taking and renewing
    /// are single-document updates, so exactly one of two racing processes gets it. A
    /// check that wanted time left on the lease instead gave up every such append and
    /// started it again, forever, on a busy server.
    async fn keep_lease(&self, a: &LogAppend) -> StoreResult<bool> {
        let now = chrono::Utc::now().timestamp_micros();
        let renewed = self
            .log_state
            .update_one(
                doc! { "_id": LEASE, "holder": &a.holder },
                doc! { "$set": { "until": now.saturating_add(a.lease_us.max(1_000_000)) } },
            )
            .await
            .map_err(db_err)?;
        Ok(renewed.matched_count > 0)
    }

    /// Of these statement keys (`s`) or erasure ids (`x`), those already logged below
    /// the tree size (a crash between the size moving and the marks being cleared).
    async fn already_logged(&self, field: &str, values: Vec<Bson>) -> StoreResult<Vec<Bson>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let size = get_int(
            &self
                .log_state
                .find_one(doc! { "_id": TREE })
                .await
                .map_err(db_err)?
                .ok_or_else(|| corrupt("the audit log's state is missing"))?,
            "size",
        )
        .unwrap_or(0);
        let hint = if field == "s" {
            LEAF_STATEMENT_INDEX
        } else {
            LEAF_ERASURE_INDEX
        };
        let mut out = Vec::new();
        for slice in values.chunks(IN_SLICE) {
            let mut c = self
                .log_leaves
                .find(doc! { field: { "$in": slice.to_vec() }, "_id": { "$lt": size } })
                .projection(doc! { field: 1 })
                .hint(Hint::Name(hint.to_owned()))
                .await
                .map_err(db_err)?;
            while c.advance().await.map_err(db_err)? {
                let d: BsonDoc = c.deserialize_current().map_err(db_err)?;
                if let Some(v) = d.get(field) {
                    out.push(v.clone());
                }
            }
        }
        Ok(out)
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
        // No log reaches a leaf beyond the store's integers: it is absent, not an error.
        let Ok(index) = i64::try_from(index) else {
            return Ok(None);
        };
        let Some(leaf) = self
            .log_leaves
            .find_one(doc! { "_id": index })
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

    pub(super) async fn erase_body(
        &self,
        s: &mut ClientSession,
        e: &Erasure,
    ) -> Attempt<(Done, bool)> {
        let mut done = Erased::default();
        let mut attachments: Vec<String> = Vec::new();
        for d in find_all(
            &self.statements,
            doc! { "_id": { "$in": &e.statements }, "ph": { "$ne": true } },
            Some(doc! { "atts": 1 }),
            s,
        )
        .await?
        {
            attachments.extend(get_strings(&d, "atts"));
        }
        if !e.statements.is_empty() {
            let deleted = self
                .statements
                .delete_many(doc! { "_id": { "$in": &e.statements }, "ph": { "$ne": true } })
                .session(&mut *s)
                .await?;
            done.statements = deleted.deleted_count as usize;
            self.log_leaves
                .update_many(
                    doc! { "s": { "$in": &e.statements } },
                    doc! { "$unset": { "s": "" } },
                )
                .session(&mut *s)
                .await?;
        }
        attachments.sort_unstable();
        attachments.dedup();
        for sha in &attachments {
            // Erasure is rare: `atts` has no index of its own.
            let used = self
                .statements
                .find_one(doc! { "atts": sha })
                .projection(doc! { "_id": 1 })
                .session(&mut *s)
                .await?;
            if used.is_some() {
                continue;
            }
            if let Some(meta) = self
                .attachments
                .find_one(doc! { "_id": sha })
                .session(&mut *s)
                .await?
            {
                self.delete_chunks(s, Self::chunks_of(&meta)).await?;
                self.attachments
                    .delete_one(doc! { "_id": sha })
                    .session(&mut *s)
                    .await?;
                done.attachments += 1;
            }
        }
        let mut doomed = Vec::new();
        for d in find_all(&self.documents, subtree_filter(&e.department), None, s).await? {
            let scope = get_str(&d, "scope").unwrap_or("");
            if crate::xapi::records::scope_names_agent(scope, &e.agent_key) {
                if let Some(id) = d.get("_id") {
                    doomed.push(id.clone());
                }
                let chunks = Self::chunks_of(&d);
                self.delete_chunks(s, chunks).await?;
            }
        }
        if !doomed.is_empty() {
            let deleted = self
                .documents
                .delete_many(doc! { "_id": { "$in": doomed } })
                .session(&mut *s)
                .await?;
            done.documents = deleted.deleted_count as usize;
        }
        if !e.leaves.is_empty() {
            let leaves: Vec<i64> = e.leaves.iter().map(|&l| l as i64).collect();
            self.log_erasures
                .insert_one(doc! {
                    "_id": e.erased_us,
                    "rh": bin(&e.receipt_hash.0),
                    "erased": e.erased_us,
                    "leaves": leaves,
                    "logged": false,
                })
                .session(&mut *s)
                .await?;
        }
        // The learner rows name the person: they go in the same transaction.
        self.erase_completions(s, &e.department, &e.agent_key)
            .await?;
        Ok((Done::Erased(done), true))
    }
}
