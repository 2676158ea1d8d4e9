//! Forwarding rules in the embedded store (layout 8): one row per rule, the definition as
//! the domain wrote it (`forwarding::Rule::to_stored`) beside its delivery state.
use super::*;
use rusqlite::{params, Connection, OptionalExtension};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS forwarding_rules (
    id TEXT PRIMARY KEY,
    department TEXT NOT NULL,
    rule TEXT NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt INTEGER
);
";

const COLUMNS: &str = "rule, cursor, delivered, failures, last_error, last_attempt";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<ForwardingRecord>> {
    let text: String = r.get(0)?;
    let Ok(rule) = ForwardingRule::from_stored(&text) else {
        // Unreadable rows are skipped rather than failing every listing.
        tracing::warn!("skipping an unreadable forwarding rule");
        return Ok(None);
    };
    Ok(Some(ForwardingRecord {
        rule,
        state: DeliveryState {
            cursor: r.get::<_, i64>(1)?.max(0) as u64,
            delivered: r.get::<_, i64>(2)?.max(0) as u64,
            failures: r.get::<_, i64>(3)?.max(0) as u64,
            last_error: r.get(4)?,
            last_attempt_us: r.get(5)?,
        },
    }))
}

fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<ForwardingRecord>> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM forwarding_rules WHERE id = ?1"),
        params![id],
        record,
    )
    .optional()?
    .flatten())
}

fn list(c: &Connection) -> rusqlite::Result<Vec<ForwardingRecord>> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM forwarding_rules ORDER BY id"
    ))?;
    let rows = st.query_map([], record)?;
    let mut out = Vec::new();
    for r in rows {
        out.extend(r?);
    }
    Ok(out)
}

impl SqliteStore {
    pub(super) async fn forwarding_put(&self, rule: &ForwardingRule) -> StoreResult<bool> {
        let (id, department, text) = (
            rule.id.clone(),
            rule.department.as_str().to_owned(),
            rule.to_stored(),
        );
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    let n = t.execute(
                        "INSERT OR IGNORE INTO forwarding_rules (id, department, rule) VALUES (?1, ?2, ?3)",
                        params![id, department, text],
                    )?;
                    Ok(n > 0)
                }),
                tx,
            )
        })
        .await
    }

    pub(super) async fn forwarding_get(&self, id: &str) -> StoreResult<Option<ForwardingRecord>> {
        let id = id.to_owned();
        self.read(move |c| get(c, &id)).await
    }

    pub(super) async fn forwarding_list(&self) -> StoreResult<Vec<ForwardingRecord>> {
        self.read(list).await
    }

    pub(super) async fn forwarding_delete(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    Ok(t.execute("DELETE FROM forwarding_rules WHERE id = ?1", params![id])? > 0)
                }),
                tx,
            )
        })
        .await
    }

    pub(super) async fn forwarding_save(
        &self,
        id: &str,
        state: &DeliveryState,
    ) -> StoreResult<bool> {
        let (id, s) = (id.to_owned(), state.clone());
        self.write(|tx| {
            WriteOp::Admin(
                Box::new(move |t| {
                    let cursor = i64::try_from(s.cursor).unwrap_or(i64::MAX);
                    let n = t.execute(
                        "UPDATE forwarding_rules SET cursor = ?2, delivered = ?3, failures = ?4,
                         last_error = ?5, last_attempt = ?6 WHERE id = ?1 AND cursor <= ?2",
                        params![
                            id,
                            cursor,
                            i64::try_from(s.delivered).unwrap_or(i64::MAX),
                            i64::try_from(s.failures).unwrap_or(i64::MAX),
                            s.last_error,
                            s.last_attempt_us
                        ],
                    )?;
                    Ok(n > 0)
                }),
                tx,
            )
        })
        .await
    }
}
