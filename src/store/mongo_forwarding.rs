//! Forwarding rules in MongoDB: the `forwarding` collection, one document per rule:
//! `_id` (the rule id), `department`, `rule` (the definition as the domain wrote it,
//! `forwarding::Rule::to_stored`) and the delivery state (`cursor`, `delivered`,
//! `failures`, `lastError`, `lastAttempt`).
use super::*;

fn collection(s: &MongoStore) -> Collection<BsonDoc> {
    s.db.collection("forwarding")
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn record(d: &BsonDoc) -> Option<ForwardingRecord> {
    let Some(rule) = get_str(d, "rule").and_then(|t| ForwardingRule::from_stored(t).ok()) else {
        // Unreadable documents are skipped rather than failing every listing.
        tracing::warn!("skipping an unreadable forwarding rule");
        return None;
    };
    let count = |k: &str| get_int(d, k).unwrap_or(0).max(0) as u64;
    Some(ForwardingRecord {
        rule,
        state: DeliveryState {
            cursor: count("cursor"),
            delivered: count("delivered"),
            failures: count("failures"),
            last_error: get_str(d, "lastError").map(str::to_owned),
            last_attempt_us: get_int(d, "lastAttempt"),
        },
    })
}

impl MongoStore {
    pub(super) async fn forwarding_put(&self, rule: &ForwardingRule) -> StoreResult<bool> {
        let d = doc! {
            "_id": &rule.id,
            "department": rule.department.as_str(),
            "rule": rule.to_stored(),
            "cursor": 0i64,
            "delivered": 0i64,
            "failures": 0i64,
        };
        match collection(self).insert_one(d).await {
            Ok(_) => Ok(true),
            Err(e) if error_codes(&e).contains(&code::DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    pub(super) async fn forwarding_get(&self, id: &str) -> StoreResult<Option<ForwardingRecord>> {
        let found = collection(self)
            .find_one(doc! { "_id": id })
            .await
            .map_err(db_err)?;
        Ok(found.as_ref().and_then(record))
    }

    pub(super) async fn forwarding_list(&self) -> StoreResult<Vec<ForwardingRecord>> {
        let mut cursor = collection(self)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            out.extend(record(&d));
        }
        Ok(out)
    }

    pub(super) async fn forwarding_delete(&self, id: &str) -> StoreResult<bool> {
        let r = collection(self)
            .delete_one(doc! { "_id": id })
            .await
            .map_err(db_err)?;
        Ok(r.deleted_count > 0)
    }

    pub(super) async fn forwarding_save(
        &self,
        id: &str,
        state: &DeliveryState,
    ) -> StoreResult<bool> {
        let cursor = int(state.cursor);
        let last_error = match &state.last_error {
            Some(e) => Bson::String(e.clone()),
            None => Bson::Null,
        };
        let last_attempt = match state.last_attempt_us {
            Some(t) => Bson::Int64(t),
            None => Bson::Null,
        };
        // The cursor only moves forward: a process that lost its lease mid-request
        // cannot take it back.
        let r = collection(self)
            .update_one(
                doc! { "_id": id, "cursor": { "$lte": cursor } },
                doc! { "$set": {
                    "cursor": cursor,
                    "delivered": int(state.delivered),
                    "failures": int(state.failures),
                    "lastError": last_error,
                    "lastAttempt": last_attempt,
                } },
            )
            .await
            .map_err(db_err)?;
        Ok(r.matched_count > 0)
    }
}
