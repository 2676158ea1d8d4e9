//! Content packages and launch sessions in MongoDB:
//! - `scorm_packages`: `_id` (package id), `dept`, `created`, `title`, `manifest` (the
//!   domain's stored form, text), `size`, `files`;
//! - `scorm_files`: one document per part of a file (`pkg`, `path`, `part`, `ct`,
//!   `data`), parts of at most 8 MiB so no file meets the 16 MB document limit; unique
//!   index `{pkg, path, part}`;
//! - `scorm_launches`: `_id` (SHA-256 of the token), `pkg`, `dept`, `created`, `expires`
//!   (a TTL index removes expired ones), `session`, `fetched`.
//!
//! A package's files are written before its record: a package is visible only once
//! whole. An upload that fails halfway leaves parts under an id no record names (ids are
//! fresh UUIDs), removed by the next delete of that id.
use super::*;
use crate::scorm::records::{LaunchRecord, PackageRecord, StoredFile};

const FILES_INDEX: &str = "pkg_path_part";

fn packages(s: &MongoStore) -> Collection<BsonDoc> {
    s.db.collection("scorm_packages")
}

fn files(s: &MongoStore) -> Collection<BsonDoc> {
    s.db.collection("scorm_files")
}

fn launches(s: &MongoStore) -> Collection<BsonDoc> {
    s.db.collection("scorm_launches")
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `dept` within `within`'s subtree (the root: anything).
fn subtree_filter(within: &Department) -> BsonDoc {
    if within.is_root() {
        return doc! {};
    }
    let p = within.as_str();
    doc! { "$or": [
        { "dept": p },
        { "dept": { "$gte": format!("{p}/"), "$lt": format!("{p}0") } },
    ] }
}

fn package(d: &BsonDoc) -> Option<PackageRecord> {
    let department = match d.get("dept") {
        Some(Bson::String(p)) => Department::parse(p).ok()?,
        _ => Department::root(),
    };
    Some(PackageRecord {
        id: get_str(d, "_id")?.to_owned(),
        department,
        created_us: get_int(d, "created").unwrap_or(0),
        title: get_str(d, "title").unwrap_or("").to_owned(),
        manifest: get_str(d, "manifest")?.to_owned(),
        size: get_int(d, "size").unwrap_or(0).max(0) as u64,
        file_count: get_int(d, "files").unwrap_or(0).max(0) as u64,
    })
}

fn launch(d: &BsonDoc) -> Option<LaunchRecord> {
    let department = match d.get("dept") {
        Some(Bson::String(p)) => Department::parse(p).ok()?,
        _ => Department::root(),
    };
    let expires_us = match d.get("expires") {
        Some(Bson::DateTime(t)) => t.timestamp_millis().saturating_mul(1000),
        _ => return None,
    };
    Some(LaunchRecord {
        token_hash: get_str(d, "_id")?.to_owned(),
        package_id: get_str(d, "pkg")?.to_owned(),
        department,
        created_us: get_int(d, "created").unwrap_or(0),
        expires_us,
        session: get_str(d, "session")?.to_owned(),
        fetched: get_bool(d, "fetched"),
    })
}

impl MongoStore {
    pub(super) async fn start_scorm(&self) -> Result<(), MongoError> {
        let index = |keys: BsonDoc, name: &str, unique: bool, ttl: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .unique(unique.then_some(true))
                        .expire_after(ttl.then_some(Duration::ZERO))
                        .build(),
                )
                .build()
        };
        files(self)
            .create_indexes([index(
                doc! { "pkg": 1, "path": 1, "part": 1 },
                FILES_INDEX,
                true,
                false,
            )])
            .await?;
        packages(self)
            .create_indexes([index(doc! { "dept": 1, "_id": 1 }, "dept_id", false, false)])
            .await?;
        launches(self)
            .create_indexes([index(doc! { "expires": 1 }, "expires_ttl", false, true)])
            .await?;
        Ok(())
    }

    pub(super) async fn scorm_put_package(
        &self,
        p: &PackageRecord,
        list: Vec<StoredFile>,
    ) -> StoreResult<bool> {
        let exists = packages(self)
            .find_one(doc! { "_id": &p.id })
            .await
            .map_err(db_err)?;
        if exists.is_some() {
            return Ok(false);
        }
        // Parts left by an earlier failed upload under this id go first.
        files(self)
            .delete_many(doc! { "pkg": &p.id })
            .await
            .map_err(db_err)?;
        for f in &list {
            let parts: Vec<&[u8]> = if f.content.is_empty() {
                vec![&[][..]]
            } else {
                f.content.chunks(CHUNK_BYTES).collect()
            };
            for (i, part) in parts.into_iter().enumerate() {
                files(self)
                    .insert_one(doc! {
                        "pkg": &p.id,
                        "path": &f.path,
                        "part": i as i64,
                        "ct": &f.content_type,
                        "data": bin(part),
                    })
                    .await
                    .map_err(db_err)?;
            }
        }
        let d = doc! {
            "_id": &p.id,
            "dept": dept_value(&p.department),
            "created": p.created_us,
            "title": &p.title,
            "manifest": &p.manifest,
            "size": int(p.size),
            "files": int(p.file_count),
        };
        match packages(self).insert_one(d).await {
            Ok(_) => Ok(true),
            Err(e) if error_codes(&e).contains(&code::DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    pub(super) async fn scorm_get_package(
        &self,
        id: &str,
        within: &Department,
    ) -> StoreResult<Option<PackageRecord>> {
        let mut filter = subtree_filter(within);
        filter.insert("_id", id);
        let found = packages(self).find_one(filter).await.map_err(db_err)?;
        Ok(found.as_ref().and_then(package))
    }

    pub(super) async fn scorm_list_packages(
        &self,
        within: &Department,
    ) -> StoreResult<Vec<PackageRecord>> {
        let mut cursor = packages(self)
            .find(subtree_filter(within))
            .sort(doc! { "created": 1, "_id": 1 })
            .projection(
                doc! { "manifest": 1, "dept": 1, "created": 1, "title": 1, "size": 1, "files": 1 },
            )
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            out.extend(package(&d));
        }
        Ok(out)
    }

    pub(super) async fn scorm_delete_package(
        &self,
        id: &str,
        within: &Department,
    ) -> StoreResult<bool> {
        let mut filter = subtree_filter(within);
        filter.insert("_id", id);
        let r = packages(self).delete_one(filter).await.map_err(db_err)?;
        if r.deleted_count == 0 {
            return Ok(false);
        }
        // The record goes first: from then on nothing serves the files or launches.
        files(self)
            .delete_many(doc! { "pkg": id })
            .await
            .map_err(db_err)?;
        launches(self)
            .delete_many(doc! { "pkg": id })
            .await
            .map_err(db_err)?;
        Ok(true)
    }

    pub(super) async fn scorm_package_file(
        &self,
        id: &str,
        path: &str,
    ) -> StoreResult<Option<StoredFile>> {
        let mut cursor = files(self)
            .find(doc! { "pkg": id, "path": path })
            .sort(doc! { "part": 1 })
            .await
            .map_err(db_err)?;
        let mut out: Option<StoredFile> = None;
        while cursor.advance().await.map_err(db_err)? {
            let d: BsonDoc = cursor.deserialize_current().map_err(db_err)?;
            let data = get_bytes(&d, "data").unwrap_or_default();
            match &mut out {
                Some(f) => f.content.extend_from_slice(data),
                None => {
                    out = Some(StoredFile {
                        path: path.to_owned(),
                        content_type: get_str(&d, "ct")
                            .unwrap_or("application/octet-stream")
                            .to_owned(),
                        content: data.to_vec(),
                    })
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn scorm_put_launch(&self, l: &LaunchRecord) -> StoreResult<bool> {
        let d = doc! {
            "_id": &l.token_hash,
            "pkg": &l.package_id,
            "dept": dept_value(&l.department),
            "created": l.created_us,
            "expires": mongodb::bson::DateTime::from_millis(l.expires_us / 1000),
            "session": &l.session,
            "fetched": l.fetched,
        };
        match launches(self).insert_one(d).await {
            Ok(_) => Ok(true),
            Err(e) if error_codes(&e).contains(&code::DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    pub(super) async fn scorm_get_launch(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<LaunchRecord>> {
        let found = launches(self)
            .find_one(doc! { "_id": token_hash })
            .await
            .map_err(db_err)?;
        Ok(found.as_ref().and_then(launch))
    }

    pub(super) async fn scorm_mark_fetched(&self, token_hash: &str) -> StoreResult<bool> {
        let r = launches(self)
            .update_one(
                doc! { "_id": token_hash, "fetched": false },
                doc! { "$set": { "fetched": true } },
            )
            .await
            .map_err(db_err)?;
        Ok(r.modified_count > 0)
    }
}
