//! Content packages and launch sessions in the embedded store (layout 9): a row per
//! package, a row per file (its whole content: package limits keep files far below
//! SQLite's blob limit), a row per launch.
use super::*;
use crate::scorm::records::{LaunchRecord, PackageRecord, StoredFile};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scorm_packages (
    id TEXT PRIMARY KEY,
    department TEXT NOT NULL,
    created INTEGER NOT NULL,
    title TEXT NOT NULL,
    manifest TEXT NOT NULL,
    size INTEGER NOT NULL,
    files INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS scorm_packages_department ON scorm_packages (department, id);
CREATE TABLE IF NOT EXISTS scorm_files (
    package TEXT NOT NULL,
    path TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (package, path)
);
CREATE TABLE IF NOT EXISTS scorm_launches (
    token_hash TEXT PRIMARY KEY,
    package TEXT NOT NULL,
    department TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    session TEXT NOT NULL,
    fetched INTEGER NOT NULL DEFAULT 0
);
";

const PACKAGE_COLUMNS: &str = "id, department, created, title, manifest, size, files";

fn package(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<PackageRecord>> {
    let Ok(department) = Department::parse(&r.get::<_, String>(1)?) else {
        tracing::warn!("skipping a package with an unreadable department");
        return Ok(None);
    };
    Ok(Some(PackageRecord {
        id: r.get(0)?,
        department,
        created_us: r.get(2)?,
        title: r.get(3)?,
        manifest: r.get(4)?,
        size: r.get::<_, i64>(5)?.max(0) as u64,
        file_count: r.get::<_, i64>(6)?.max(0) as u64,
    }))
}

/// `department` and its subtree, as a condition on the `department` column (?1, ?2).
fn subtree_bounds(within: &Department) -> (String, String) {
    let p = within.as_str();
    // Children sort between "p/" and "p0" ('0' follows '/').
    (format!("{p}/"), format!("{p}0"))
}

fn in_subtree(
    c: &Connection,
    id: &str,
    within: &Department,
) -> rusqlite::Result<Option<PackageRecord>> {
    let (lo, hi) = subtree_bounds(within);
    Ok(c.query_row(
        &format!(
            "SELECT {PACKAGE_COLUMNS} FROM scorm_packages WHERE id = ?1
             AND (?2 OR department = ?3 OR (department >= ?4 AND department < ?5))"
        ),
        params![id, within.is_root(), within.as_str(), lo, hi],
        package,
    )
    .optional()?
    .flatten())
}

fn launch(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<LaunchRecord>> {
    let Ok(department) = Department::parse(&r.get::<_, String>(2)?) else {
        return Ok(None);
    };
    Ok(Some(LaunchRecord {
        token_hash: r.get(0)?,
        package_id: r.get(1)?,
        department,
        created_us: r.get(3)?,
        expires_us: r.get(4)?,
        session: r.get(5)?,
        fetched: r.get::<_, i64>(6)? != 0,
    }))
}

impl SqliteStore {
    pub(super) async fn scorm_put_package(
        &self,
        p: &PackageRecord,
        files: Vec<StoredFile>,
    ) -> StoreResult<bool> {
        let p = p.clone();
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    let n = t.execute(
                        &format!(
                            "INSERT OR IGNORE INTO scorm_packages ({PACKAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                        ),
                        params![
                            p.id,
                            p.department.as_str(),
                            p.created_us,
                            p.title,
                            p.manifest,
                            i64::try_from(p.size).unwrap_or(i64::MAX),
                            i64::try_from(p.file_count).unwrap_or(i64::MAX)
                        ],
                    )?;
                    if n == 0 {
                        return Ok(false);
                    }
                    let mut put = t.prepare_cached(
                        "INSERT INTO scorm_files (package, path, content_type, content) VALUES (?1, ?2, ?3, ?4)",
                    )?;
                    for f in &files {
                        put.execute(params![p.id, f.path, f.content_type, f.content])?;
                    }
                    Ok(true)
                }),
                tx,
            )
        })
        .await
    }

    pub(super) async fn scorm_get_package(
        &self,
        id: &str,
        within: &Department,
    ) -> StoreResult<Option<PackageRecord>> {
        let (id, within) = (id.to_owned(), within.clone());
        self.read(move |c| in_subtree(c, &id, &within)).await
    }

    pub(super) async fn scorm_list_packages(
        &self,
        within: &Department,
    ) -> StoreResult<Vec<PackageRecord>> {
        let within = within.clone();
        self.read(move |c| {
            let (lo, hi) = subtree_bounds(&within);
            let mut st = c.prepare(&format!(
                "SELECT {PACKAGE_COLUMNS} FROM scorm_packages
                 WHERE ?1 OR department = ?2 OR (department >= ?3 AND department < ?4)
                 ORDER BY created, id"
            ))?;
            let rows = st.query_map(params![within.is_root(), within.as_str(), lo, hi], package)?;
            let mut out = Vec::new();
            for r in rows {
                out.extend(r?);
            }
            Ok(out)
        })
        .await
    }

    pub(super) async fn scorm_delete_package(
        &self,
        id: &str,
        within: &Department,
    ) -> StoreResult<bool> {
        let (id, within) = (id.to_owned(), within.clone());
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    if in_subtree(t, &id, &within)?.is_none() {
                        return Ok(false);
                    }
                    t.execute("DELETE FROM scorm_files WHERE package = ?1", params![id])?;
                    t.execute("DELETE FROM scorm_launches WHERE package = ?1", params![id])?;
                    Ok(t.execute("DELETE FROM scorm_packages WHERE id = ?1", params![id])? > 0)
                }),
                tx,
            )
        })
        .await
    }

    pub(super) async fn scorm_package_file(
        &self,
        id: &str,
        path: &str,
    ) -> StoreResult<Option<StoredFile>> {
        let (id, path) = (id.to_owned(), path.to_owned());
        self.read(move |c| {
            c.query_row(
                "SELECT path, content_type, content FROM scorm_files WHERE package = ?1 AND path = ?2",
                params![id, path],
                |r| {
                    Ok(StoredFile {
                        path: r.get(0)?,
                        content_type: r.get(1)?,
                        content: r.get(2)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    pub(super) async fn scorm_put_launch(&self, l: &LaunchRecord) -> StoreResult<bool> {
        let l = l.clone();
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    // Expired launches go as new ones come: the table stays the size of
                    // the live sessions.
                    t.execute(
                        "DELETE FROM scorm_launches WHERE expires < ?1",
                        params![l.created_us],
                    )?;
                    let n = t.execute(
                        "INSERT OR IGNORE INTO scorm_launches (token_hash, package, department, created, expires, session, fetched)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            l.token_hash,
                            l.package_id,
                            l.department.as_str(),
                            l.created_us,
                            l.expires_us,
                            l.session,
                            i64::from(l.fetched)
                        ],
                    )?;
                    Ok(n > 0)
                }),
                tx,
            )
        })
        .await
    }

    pub(super) async fn scorm_get_launch(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<LaunchRecord>> {
        let token_hash = token_hash.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT token_hash, package, department, created, expires, session, fetched
                 FROM scorm_launches WHERE token_hash = ?1",
                params![token_hash],
                launch,
            )
            .optional()?
            .flatten())
        })
        .await
    }

    pub(super) async fn scorm_mark_fetched(&self, token_hash: &str) -> StoreResult<bool> {
        let token_hash = token_hash.to_owned();
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    Ok(t.execute(
                        "UPDATE scorm_launches SET fetched = 1 WHERE token_hash = ?1 AND fetched = 0",
                        params![token_hash],
                    )? > 0)
                }),
                tx,
            )
        })
        .await
    }
}
