//! The MongoDB store's part of the completion figures (docs/ANALYTICS.md).
//! - `completion_rows`: one learner row, `_id` the JSON array [learner, department,
//!   activity], fields `l`, `dept` (absent in the root), `a`, `row`, `c` (its
//!   contributions). Index `{l, dept}`: an erasure finds a person's rows by one range.
//! - `completion_counts`: one counter, `_id` the JSON array [activity, department, day],
//!   fields `a`, `dept`, `day` and the sums `at`, `co`, `pa`, `fa`, `ss`, `sc`. Index
//!   `{a, dept, day}`: a query of one activity in a subtree is one or two ranges.
//! - `completion_state`: `{_id: "position", p}`, the feed position projected through.
//!   An erasure writes it too (`e`), so an erasure and a projection step that overlap
//!   conflict and one of them runs again on what the other committed.
use super::*;
use crate::analytics::{self, Contribution, CounterChanges, Counts};
use std::collections::BTreeMap;

const ROWS: &str = "completion_rows";
const COUNTS: &str = "completion_counts";
const STATE: &str = "completion_state";
const POSITION: &str = "position";
/// Keys per `$in` list.
const IN_SLICE: usize = 500;

fn row_id(k: &RowKey) -> String {
    serde_json::json!([k.learner, k.department.as_str(), k.activity]).to_string()
}

fn count_id(department: &str, activity: &str, day: i32) -> String {
    serde_json::json!([activity, department, day]).to_string()
}

/// A projection step read and summed outside its transaction (see `prepare_projection`).
pub(super) struct PreparedProjection {
    /// The erasure count when it was read.
    erasures: i64,
    /// Net change of each counter touched, by `_id`: (department, activity, day, change).
    counters: Vec<(String, (Department, String, i32, Counts))>,
    /// Rows to write (`_id`, fields) and rows to delete.
    upserts: Vec<(String, BsonDoc)>,
    deletes: Vec<String>,
}

impl MongoStore {
    fn rows_coll(&self) -> Collection<BsonDoc> {
        self.db.collection(ROWS)
    }

    fn counts_coll(&self) -> Collection<BsonDoc> {
        self.db.collection(COUNTS)
    }

    fn state_coll(&self) -> Collection<BsonDoc> {
        self.db.collection(STATE)
    }

    /// Indexes and the position document (idempotent; called on open).
    pub(super) async fn start_completions(&self) -> Result<(), MongoError> {
        let index = |keys: BsonDoc, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        self.rows_coll()
            .create_indexes([index(doc! { "l": 1, "dept": 1 }, "learner_dept")])
            .await?;
        self.counts_coll()
            .create_indexes([index(
                doc! { "a": 1, "dept": 1, "day": 1 },
                "activity_dept_day",
            )])
            .await?;
        match self
            .state_coll()
            .insert_one(doc! { "_id": POSITION, "p": 0_i64, "e": 0_i64 })
            .await
        {
            Ok(_) => Ok(()),
            // There already (or another process made it first).
            Err(e) if error_codes(&e).contains(&code::DUPLICATE_KEY) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn read_completions_position(&self) -> StoreResult<u64> {
        let d = self
            .state_coll()
            .find_one(doc! { "_id": POSITION })
            .await
            .map_err(db_err)?;
        Ok(d.and_then(|d| get_int(&d, "p")).unwrap_or(0).max(0) as u64)
    }

    pub(super) async fn read_learner_rows(
        &self,
        keys: Vec<RowKey>,
    ) -> StoreResult<Vec<(RowKey, String)>> {
        let mut by_id: HashMap<String, RowKey> =
            keys.into_iter().map(|k| (row_id(&k), k)).collect();
        let ids: Vec<String> = by_id.keys().cloned().collect();
        let mut out = Vec::new();
        for slice in ids.chunks(IN_SLICE) {
            let mut cursor = self
                .rows_coll()
                .find(doc! { "_id": { "$in": slice } })
                .projection(doc! { "row": 1 })
                .await
                .map_err(db_err)?;
            while cursor.advance().await.map_err(db_err)? {
                let d = cursor.deserialize_current().map_err(db_err)?;
                let id = get_str(&d, "_id").unwrap_or_default().to_owned();
                if let (Some(k), Some(row)) = (by_id.remove(&id), get_str(&d, "row")) {
                    out.push((k, row.to_owned()));
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn read_voided_among(&self, keys: Vec<String>) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        for slice in keys.chunks(IN_SLICE) {
            let mut cursor = self
                .statements
                .find(doc! { "_id": { "$in": slice }, "voided": true, "ph": { "$ne": true } })
                .projection(doc! { "_id": 1 })
                .await
                .map_err(db_err)?;
            while cursor.advance().await.map_err(db_err)? {
                let d = cursor.deserialize_current().map_err(db_err)?;
                if let Some(id) = get_str(&d, "_id") {
                    out.push(id.to_owned());
                }
            }
        }
        Ok(out)
    }

    /// Adds `sign` × the contribution to its counter, dropping counters that reach zero.
    async fn count(
        &self,
        s: &mut ClientSession,
        department: &Department,
        c: &Contribution,
        sign: i64,
    ) -> Result<(), MongoError> {
        let n = &c.counts;
        let id = count_id(department.as_str(), &c.activity, c.day);
        let mut on_insert = doc! { "a": &c.activity, "day": c.day };
        if !department.is_root() {
            on_insert.insert("dept", department.as_str());
        }
        self.counts_coll()
            .update_one(
                doc! { "_id": &id },
                doc! {
                    "$setOnInsert": on_insert,
                    "$inc": {
                        "at": sign * n.attempted, "co": sign * n.completed,
                        "pa": sign * n.passed, "fa": sign * n.failed,
                        "ss": sign * n.score_sum, "sc": sign * n.scored,
                    },
                },
            )
            .upsert(true)
            .session(&mut *s)
            .await?;
        if sign < 0 {
            self.counts_coll()
                .delete_one(doc! {
                    "_id": &id, "at": 0_i64, "co": 0_i64, "pa": 0_i64, "fa": 0_i64,
                    "ss": 0_i64, "sc": 0_i64,
                })
                .session(&mut *s)
                .await?;
        }
        Ok(())
    }

    /// The statements among `keys` that are stored (outside any transaction: reading
    /// statements inside one made SecantusDB's concurrent statement writes conflict).
    pub(super) async fn present_among(&self, keys: Vec<String>) -> StoreResult<HashSet<String>> {
        let mut present = HashSet::with_capacity(keys.len());
        for slice in keys.chunks(IN_SLICE) {
            let mut cursor = self
                .statements
                .find(doc! { "_id": { "$in": slice }, "ph": { "$ne": true } })
                .projection(doc! { "_id": 1 })
                .await
                .map_err(db_err)?;
            while cursor.advance().await.map_err(db_err)? {
                let d = cursor.deserialize_current().map_err(db_err)?;
                if let Some(id) = get_str(&d, "_id") {
                    present.insert(id.to_owned());
                }
            }
        }
        Ok(present)
    }

    /// The projection's position and erasure count, as stored.
    pub(super) async fn completions_state(&self) -> StoreResult<(i64, i64)> {
        let d = self
            .state_coll()
            .find_one(doc! { "_id": POSITION })
            .await
            .map_err(db_err)?;
        Ok(
            d.map(|d| (get_int(&d, "p").unwrap_or(0), get_int(&d, "e").unwrap_or(0)))
                .unwrap_or((0, 0)),
        )
    }

    /// Everything a projection step writes, read and summed before its transaction so
    /// the transaction is short (a process that dies inside one leaves it to the
    /// server's transaction timeout). What was read stays true as long as the position
    /// and the erasure count have not moved: only the projector (which moves the
    /// position) and erasures (which move the count) write rows and counters, and the
    /// transaction checks both.
    pub(super) async fn prepare_projection(
        &self,
        w: &ProjectionWrite,
    ) -> StoreResult<Option<PreparedProjection>> {
        let (position, erasures) = self.completions_state().await?;
        if u64::try_from(position).ok() != Some(w.from) {
            return Ok(None);
        }
        let mut required: Vec<String> = w
            .rows
            .iter()
            .flat_map(|r| r.requires.iter().cloned())
            .collect();
        required.sort_unstable();
        required.dedup();
        let present = self.present_among(required).await?;
        let rows: Vec<&RowWrite> = w
            .rows
            .iter()
            .filter(|r| r.requires.iter().all(|k| present.contains(k)))
            .collect();
        let ids: Vec<String> = rows.iter().map(|r| row_id(&r.key)).collect();
        let mut old: HashMap<String, String> = HashMap::new();
        for slice in ids.chunks(IN_SLICE) {
            let mut cursor = self
                .rows_coll()
                .find(doc! { "_id": { "$in": slice } })
                .projection(doc! { "c": 1 })
                .await
                .map_err(db_err)?;
            while cursor.advance().await.map_err(db_err)? {
                let d = cursor.deserialize_current().map_err(db_err)?;
                if let (Some(id), Some(c)) = (get_str(&d, "_id"), get_str(&d, "c")) {
                    old.insert(id.to_owned(), c.to_owned());
                }
            }
        }
        let mut changes = CounterChanges::default();
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for (r, id) in rows.into_iter().zip(ids) {
            if let Some(before) = old.get(&id) {
                changes.take_back(
                    &r.key.department,
                    &analytics::contributions_from_text(before),
                );
            }
            changes.add(&r.key.department, &r.contributions);
            match &r.row {
                Some(row) => {
                    let mut set = doc! {
                        "l": &r.key.learner, "a": &r.key.activity, "row": row,
                        "c": analytics::contributions_text(&r.contributions),
                    };
                    if !r.key.department.is_root() {
                        set.insert("dept", r.key.department.as_str());
                    }
                    upserts.push((id, set));
                }
                None => deletes.push(id),
            }
        }
        Ok(Some(PreparedProjection {
            erasures,
            counters: changes
                .into_changes()
                .map(|(d, a, day, n)| (count_id(d.as_str(), &a, day), (d, a, day, n)))
                .collect(),
            upserts,
            deletes,
        }))
    }

    pub(super) async fn project_body(
        &self,
        s: &mut ClientSession,
        w: &ProjectionWrite,
        p: &PreparedProjection,
    ) -> Attempt<(Done, bool)> {
        let (from, to) = (
            i64::try_from(w.from).map_err(|_| Fail::Corrupt("position too large".into()))?,
            i64::try_from(w.to).map_err(|_| Fail::Corrupt("position too large".into()))?,
        );
        let moved = self
            .state_coll()
            .update_one(
                doc! { "_id": POSITION, "p": from, "e": p.erasures },
                doc! { "$set": { "p": to } },
            )
            .session(&mut *s)
            .await?;
        if moved.matched_count == 0 {
            return Ok((Done::Bool(false), false));
        }
        let mut lowered = Vec::new();
        for (id, (department, activity, day, n)) in &p.counters {
            let mut on_insert = doc! { "a": activity, "day": *day };
            if !department.is_root() {
                on_insert.insert("dept", department.as_str());
            }
            self.counts_coll()
                .update_one(
                    doc! { "_id": id },
                    doc! {
                        "$setOnInsert": on_insert,
                        "$inc": {
                            "at": n.attempted, "co": n.completed, "pa": n.passed,
                            "fa": n.failed, "ss": n.score_sum, "sc": n.scored,
                        },
                    },
                )
                .upsert(true)
                .session(&mut *s)
                .await?;
            if n.attempted < 0 || n.completed < 0 || n.passed < 0 || n.failed < 0 || n.scored < 0 {
                lowered.push(id.clone());
            }
        }
        if !lowered.is_empty() {
            self.counts_coll()
                .delete_many(doc! {
                    "_id": { "$in": lowered }, "at": 0_i64, "co": 0_i64, "pa": 0_i64,
                    "fa": 0_i64, "ss": 0_i64, "sc": 0_i64,
                })
                .session(&mut *s)
                .await?;
        }
        for (id, set) in &p.upserts {
            self.rows_coll()
                .update_one(doc! { "_id": id }, doc! { "$set": set.clone() })
                .upsert(true)
                .session(&mut *s)
                .await?;
        }
        if !p.deletes.is_empty() {
            self.rows_coll()
                .delete_many(doc! { "_id": { "$in": &p.deletes } })
                .session(&mut *s)
                .await?;
        }
        Ok((Done::Bool(true), true))
    }

    /// Deletes a person's rows in a subtree and takes back what they contributed (inside
    /// the erasure's transaction).
    pub(super) async fn erase_completions(
        &self,
        s: &mut ClientSession,
        subtree: &Department,
        learner: &str,
    ) -> Result<(), MongoError> {
        self.state_coll()
            .update_one(doc! { "_id": POSITION }, doc! { "$inc": { "e": 1_i64 } })
            .session(&mut *s)
            .await?;
        let mut filter = subtree_filter(subtree);
        filter.insert("l", learner);
        let rows = find_all(
            &self.rows_coll(),
            filter,
            Some(doc! { "c": 1, "dept": 1 }),
            s,
        )
        .await?;
        for d in rows {
            let department = get_str(&d, "dept")
                .and_then(|p| Department::parse(p).ok())
                .unwrap_or_default();
            for c in analytics::contributions_from_text(get_str(&d, "c").unwrap_or("")) {
                self.count(s, &department, &c, -1).await?;
            }
            if let Some(id) = d.get("_id") {
                self.rows_coll()
                    .delete_one(doc! { "_id": id.clone() })
                    .session(&mut *s)
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn read_figures(&self, q: FiguresQuery) -> StoreResult<Vec<FigureRow>> {
        let activity = if q.group_by == GroupBy::Activity && q.activity == analytics::ALL_ACTIVITIES
        {
            Bson::Document(doc! { "$gt": "" })
        } else {
            Bson::String(q.activity.clone())
        };
        let mut filter = doc! { "a": activity, "day": { "$gte": q.from, "$lte": q.to } };
        filter.extend(subtree_filter(&q.subtree));
        let mut cursor = self
            .counts_coll()
            .find(filter)
            .projection(doc! { "a": 1, "dept": 1, "day": 1, "at": 1, "co": 1, "pa": 1, "fa": 1, "ss": 1, "sc": 1 })
            .await
            .map_err(db_err)?;
        let mut groups: BTreeMap<GroupKey, Counts> = BTreeMap::new();
        while cursor.advance().await.map_err(db_err)? {
            let d = cursor.deserialize_current().map_err(db_err)?;
            let key = match q.group_by {
                GroupBy::Day => GroupKey::Day(get_int(&d, "day").unwrap_or_default() as i32),
                GroupBy::Department => GroupKey::Department(
                    get_str(&d, "dept")
                        .and_then(|p| Department::parse(p).ok())
                        .unwrap_or_default(),
                ),
                GroupBy::Activity => GroupKey::Activity(get_str(&d, "a").unwrap_or("").to_owned()),
            };
            let n = |k: &str| get_int(&d, k).unwrap_or(0);
            groups.entry(key).or_default().add(&Counts {
                attempted: n("at"),
                completed: n("co"),
                passed: n("pa"),
                failed: n("fa"),
                score_sum: n("ss"),
                scored: n("sc"),
            });
        }
        Ok(groups
            .into_iter()
            .filter(|(_, c)| !c.is_zero())
            .map(|(group, counts)| FigureRow { group, counts })
            .collect())
    }
}
