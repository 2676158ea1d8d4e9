//! Statement queries on MongoDB: the `q` keys a statement is stored with, positions
//! (`stored`, id) as one sortable string, the filter, sort and index hint of a query,
//! what `explain` says of it, and the rewrite of older databases' keys within departments.
use super::*;

/// The `q` array of a statement with filter and placement keys `keys`: those keys as
/// strings, and each of them within each department above the statement
/// (`departments::keys_within`) as its 64-bit hash, the embedded index's value for it.
/// As strings those keys were over a kilobyte a statement two levels down (22 of them,
/// each repeating a department path and a key); as hashes, 12 bytes each. A query names
/// the plain keys beside the hash it scans (`query_filter`), so a collision cannot
/// answer a statement that does not match. Keys within departments that an older
/// version stored as strings are left out.
pub(super) fn query_keys(keys: &[String]) -> Bson {
    let plain = keys
        .iter()
        .filter(|k| !departments::is_key_within(k))
        .map(|k| Bson::String(k.clone()));
    let within = departments::keys_within(keys)
        .into_iter()
        .map(|k| Bson::Int64(key_hash(&k)));
    Bson::Array(plain.chain(within).collect())
}

/// `stored` then `id` in one string whose order is that of the pair: the sign-flipped
/// `stored` as 16 hex digits, then the id. Every position is in `["0", "g")`.
pub fn position(stored_us: i64, id: &str) -> String {
    format!("{:016x}{id}", (stored_us as u64) ^ (1u64 << 63))
}

/// The smallest position with this `stored` (the 16-digit prefix alone).
pub(super) fn position_floor(stored_us: i64) -> String {
    format!("{:016x}", (stored_us as u64) ^ (1u64 << 63))
}

pub(super) const POSITION_MIN: &str = "0";
pub(super) const POSITION_END: &str = "g";

/// Name of the index that serves every keyed statement query.
pub(super) const KEYS_INDEX: &str = "q_pos";
/// Name of the index that serves the unfiltered statement order.
pub(super) const POS_INDEX: &str = "pos";
/// Voided statements by their keys (`vq`, sparse: only voided statements have it).
pub(super) const VOIDED_KEYS_INDEX: &str = "vq_keys";

/// The find filter and sort of a statement query: one index range on `{q, pos}` (or on
/// `{pos}` without keys), whatever the combination of since, until and cursor.
pub fn query_filter(q: &StatementQuery) -> (BsonDoc, BsonDoc) {
    // Lower bound: (inclusive?, value); upper bound: exclusive value.
    let mut lower: (bool, String) = (true, POSITION_MIN.to_owned());
    let mut upper: String = POSITION_END.to_owned();
    let raise = |incl: bool, v: String, lower: &mut (bool, String)| {
        if v > lower.1 || (v == lower.1 && !incl) {
            *lower = (incl, v);
        }
    };
    if let Some(since) = q.since_us {
        // stored > since  ⇔  pos ≥ floor(since + 1)
        match since.checked_add(1) {
            Some(s) => raise(true, position_floor(s), &mut lower),
            None => upper = POSITION_MIN.to_owned(),
        }
    }
    if let Some(until) = q.until_us {
        // stored ≤ until  ⇔  pos < floor(until + 1)
        if let Some(u) = until.checked_add(1) {
            let f = position_floor(u);
            if f < upper {
                upper = f;
            }
        }
    }
    if let Some((stored, id)) = &q.after {
        let p = position(*stored, id);
        if q.ascending {
            raise(false, p, &mut lower);
        } else if p < upper {
            upper = p;
        }
    }
    let mut range = BsonDoc::new();
    range.insert(if lower.0 { "$gte" } else { "$gt" }, lower.1);
    range.insert("$lt", upper);
    let mut filter = BsonDoc::new();
    // The first index key gives the index bounds (`query_hint`). Within a department it is
    // a key within that department, stored as a hash (`query_keys`): the plain keys, the
    // department's among them, follow it and decide exactly.
    let keys = q.index_keys();
    match keys.first() {
        None => {}
        Some(first) if departments::is_key_within(first) => {
            let mut all = vec![Bson::Int64(key_hash(first))];
            all.extend(q.keys.iter().map(|k| Bson::String(k.clone())));
            filter.insert("q", doc! { "$all": all });
        }
        Some(first) if keys.len() == 1 => {
            filter.insert("q", first.clone());
        }
        Some(_) => {
            filter.insert("q", doc! { "$all": strings(&keys) });
        }
    }
    filter.insert("pos", range);
    let sort = doc! { "pos": if q.ascending { 1 } else { -1 } };
    (filter, sort)
}

/// The index a statement query names explicitly: `{q, pos}` with keys, `{pos}` without.
/// Several keys are one `$all` on the multikey `q`: the index bounds come from one key and
/// the others are checked on the fetched entries (the embedded store does the same with its
/// key table). The hint keeps the planner from walking `{pos}` in order and filtering, and
/// makes planners that do not consider a multikey index for `$all` (SecantusDB) use it.
/// It is given for every query because SecantusDB 0.7's unhinted plans drop the document
/// sitting exactly on a `$gte` bound of `pos` (a `since` one microsecond before a
/// statement's `stored`, which is what Consistent-Through readers send); hinted plans and
/// MongoDB itself are exact.
pub(super) fn query_hint(q: &StatementQuery) -> &'static str {
    if q.keys.is_empty() {
        POS_INDEX
    } else {
        KEYS_INDEX
    }
}

/// Every `stage` of an explain plan, depth first.
pub fn plan_stages(plan: &BsonDoc) -> Vec<String> {
    fn walk(b: &Bson, out: &mut Vec<String>) {
        match b {
            Bson::Document(d) => {
                if let Some(Bson::String(s)) = d.get("stage") {
                    out.push(s.clone());
                }
                for (_, v) in d {
                    walk(v, out);
                }
            }
            Bson::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&Bson::Document(plan.clone()), &mut out);
    out
}

impl MongoStore {
    /// Gives the statements of departments the `q` this version writes (`query_keys`),
    /// once per database: statements stored before department readers had keys of their
    /// own get the hashes of their keys within departments; those of the version that
    /// stored those keys as strings get hashes instead (and `vq` loses them: it is searched
    /// by plain keys). The `store_meta` document `keys_within_hashed` records that it is
    /// done. Each update applies only if the array is still the one read, so a statement
    /// voided meanwhile is never given its `q` back; a run cut short is simply run again at
    /// the next start. Stop older versions' servers before upgrading.
    pub(super) async fn backfill_keys_within(&self) -> StoreResult<()> {
        let meta = self.db.collection::<BsonDoc>("store_meta");
        let done = doc! { "_id": "keys_within_hashed" };
        if meta.find_one(done.clone()).await.map_err(db_err)?.is_some() {
            return Ok(());
        }
        let mut cursor = self
            .statements
            .find(doc! { "dept": { "$exists": true } })
            .projection(doc! { "q": 1, "vq": 1 })
            .await
            .map_err(db_err)?;
        // Streamed a thousand at a time: a large store's keys would not fit in memory.
        let mut todo = Vec::new();
        let mut changed = 0usize;
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            let Some(id) = d.get("_id") else { continue };
            for field in ["q", "vq"] {
                let Some(Bson::Array(now)) = d.get(field) else {
                    continue;
                };
                let keys = get_strings(&d, field);
                let wanted = if field == "q" {
                    query_keys(&keys)
                } else {
                    let plain: Vec<String> = keys
                        .into_iter()
                        .filter(|k| !departments::is_key_within(k))
                        .collect();
                    strings(&plain)
                };
                if wanted != Bson::Array(now.clone()) {
                    todo.push((id.clone(), field, now.clone(), wanted));
                }
            }
            if todo.len() >= 1000 {
                changed += self.rewrite_keys(&mut todo).await?;
            }
        }
        changed += self.rewrite_keys(&mut todo).await?;
        if changed > 0 {
            tracing::info!("hashed the keys within departments of {changed} statements");
        }
        meta.update_one(
            done,
            doc! { "$set": { "at": chrono::Utc::now().timestamp_micros() } },
        )
        .upsert(true)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Sets each (statement id, field, array read, array wanted) of `todo` where the field
    /// still holds the array read, and empties it; returns how many were set.
    async fn rewrite_keys(
        &self,
        todo: &mut Vec<(Bson, &str, Vec<Bson>, Bson)>,
    ) -> StoreResult<usize> {
        let mut n = 0;
        for (id, field, now, wanted) in todo.drain(..) {
            let r = self
                .statements
                .update_one(
                    doc! { "_id": id, field: { "$eq": now } },
                    doc! { "$set": { field: wanted } },
                )
                .await
                .map_err(db_err)?;
            n += usize::try_from(r.modified_count).unwrap_or(0);
        }
        Ok(n)
    }

    /// `explain` of a statement query as the store sends it, at `verbosity`.
    async fn explain(&self, q: &StatementQuery, verbosity: &str) -> StoreResult<BsonDoc> {
        let (filter, sort) = query_filter(q);
        let find = doc! {
            "find": self.statements.name(),
            "filter": filter,
            "sort": sort,
            "limit": q.limit.max(1) as i64,
            "hint": query_hint(q),
        };
        self.db
            .run_command(doc! { "explain": find, "verbosity": verbosity })
            .await
            .map_err(db_err)
    }

    /// The stages of the winning plan of a statement query, as the server would run it
    /// (`explain`, verbosity `queryPlanner`).
    pub async fn explain_statement_query(&self, q: &StatementQuery) -> StoreResult<Vec<String>> {
        let reply = self.explain(q, "queryPlanner").await?;
        let planner = reply
            .get_document("queryPlanner")
            .map_err(|e| StoreError::Internal(format!("explain without queryPlanner: {e}")))?;
        let winning = planner
            .get_document("winningPlan")
            .map_err(|e| StoreError::Internal(format!("explain without winningPlan: {e}")))?;
        Ok(plan_stages(winning))
    }

    /// The index keys a statement query examines when run (`explain`, verbosity
    /// `executionStats`): what its cost follows.
    pub async fn keys_examined_by_statement_query(&self, q: &StatementQuery) -> StoreResult<i64> {
        let reply = self.explain(q, "executionStats").await?;
        let stats = reply
            .get_document("executionStats")
            .map_err(|e| StoreError::Internal(format!("explain without executionStats: {e}")))?;
        get_int(stats, "totalKeysExamined")
            .ok_or_else(|| StoreError::Internal("explain without totalKeysExamined".into()))
    }
}
