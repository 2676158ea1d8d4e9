//! The embedded store's part of the audit log: leaves, stored hashes, the tree size and
//! the sequencer's cursor, in the same file and transactions as the statements.
use super::{
    Erased, Erasure, FeedEvent, FeedItem, FeedPage, LogAppend, LogState, PendingErasure,
    StatementLog, StoredStatement, UnloggedStatement,
};
use crate::audit::leaf::Leaf;
use crate::audit::merkle::{stored_hash_count, Hash};
use crate::departments::{self, Department};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeSet;

fn bad(m: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(m.into().into())
}

fn blob32(b: Option<Vec<u8>>) -> Option<[u8; 32]> {
    b.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
}

fn i64_of(n: u64) -> rusqlite::Result<i64> {
    i64::try_from(n).map_err(|_| bad(format!("{n} is beyond the store's integers")))
}

pub(super) fn log_state(c: &Connection) -> rusqlite::Result<LogState> {
    c.query_row(
        "SELECT size, checkpoint_size, checkpoint FROM audit_state WHERE id = 1",
        [],
        |r| {
            let size: i64 = r.get(0)?;
            let cp_size: Option<i64> = r.get(1)?;
            let cp: Option<String> = r.get(2)?;
            Ok(LogState {
                size: size as u64,
                checkpoint: cp_size.zip(cp).map(|(s, n)| (s as u64, n)),
            })
        },
    )
}

/// Statements after the sequencer's cursor, up to the horizon. One process writes the
/// file and `stored` values come from its clock, so every statement with `stored` ≤ the
/// horizon (its Consistent-Through) is committed and the cursor misses none.
pub(super) fn unlogged(
    c: &Connection,
    horizon_us: i64,
    limit: usize,
) -> rusqlite::Result<Vec<UnloggedStatement>> {
    let (cs, cid): (i64, String) = c.query_row(
        "SELECT cursor_stored, cursor_id FROM audit_state WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut stmt = c.prepare_cached(
        "SELECT id, stored, salt, commitment, CASE WHEN commitment IS NULL THEN json END, seq
         FROM statements
         WHERE stored >= ?1 AND stored <= ?2 AND NOT (stored = ?1 AND id <= ?3)
         ORDER BY stored, id LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![cs, horizon_us, cid, limit as i64], |r| {
        let salt = blob32(r.get(2)?);
        let commitment = blob32(r.get(3)?);
        Ok(UnloggedStatement {
            key: r.get(0)?,
            row: r.get(5)?,
            stored_us: r.get(1)?,
            seal: salt.zip(commitment),
            json: r.get(4)?,
        })
    })?;
    rows.collect()
}

pub(super) fn pending_erasures(c: &Connection) -> rusqlite::Result<Vec<PendingErasure>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, receipt_hash, erased, leaves FROM audit_erasures WHERE logged = 0 ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let hash: Vec<u8> = r.get(1)?;
        let leaves: String = r.get(3)?;
        Ok(PendingErasure {
            id: r.get(0)?,
            receipt_hash: Hash::from_slice(&hash).ok_or_else(|| bad("receipt hash"))?,
            erased_us: r.get(2)?,
            indexes: leaves
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<u64>().map_err(|_| bad("erased leaf index")))
                .collect::<rusqlite::Result<_>>()?,
        })
    })?;
    rows.collect()
}

pub(super) fn append(t: &Transaction<'_>, a: &LogAppend) -> rusqlite::Result<bool> {
    let size: i64 = t.query_row("SELECT size FROM audit_state WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    if size as u64 != a.old_size {
        return Ok(false);
    }
    // Statements are found by their row number (an integer key appended in order), not
    // by their id: no text index to maintain in the writer.
    let mut put_leaf = t.prepare_cached(
        "INSERT INTO audit_leaves (leaf, entry, seq, department) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut put_link =
        t.prepare_cached("INSERT INTO audit_statement_leaf (seq, leaf) VALUES (?1, ?2)")?;
    for (i, e) in a.entries.iter().enumerate() {
        let leaf = i64_of(a.old_size + i as u64)?;
        let seq = e.statement.is_some().then_some(e.row);
        let department = e
            .statement
            .as_deref()
            .map(|k| departments::split_record_key(k).1);
        put_leaf.execute(params![
            leaf,
            e.entry,
            seq,
            department.as_ref().map(Department::as_str)
        ])?;
        if let Some(seq) = seq {
            put_link.execute(params![seq, leaf])?;
        }
        see_leaf(t, leaf, &e.entry, department.as_ref())?;
    }
    let first = stored_hash_count(a.old_size);
    let mut put_hash = t.prepare_cached("INSERT INTO audit_hashes (idx, hash) VALUES (?1, ?2)")?;
    for (i, h) in a.hashes.iter().enumerate() {
        put_hash.execute(params![i64_of(first + i as u64)?, &h.0[..]])?;
    }
    let mut seal =
        t.prepare_cached("UPDATE statements SET salt = ?2, commitment = ?3 WHERE id = ?1")?;
    for (key, salt, commitment) in &a.seals {
        seal.execute(params![key, &salt[..], &commitment[..]])?;
    }
    let mut logged = t.prepare_cached("UPDATE audit_erasures SET logged = 1 WHERE id = ?1")?;
    for id in &a.erasures {
        logged.execute(params![id])?;
    }
    let new_size = i64_of(a.old_size + a.entries.len() as u64)?;
    match &a.through {
        Some((stored, key)) => t.execute(
            "UPDATE audit_state SET size = ?1, cursor_stored = ?2, cursor_id = ?3 WHERE id = 1",
            params![new_size, stored, key],
        )?,
        None => t.execute(
            "UPDATE audit_state SET size = ?1 WHERE id = 1",
            params![new_size],
        )?,
    };
    Ok(true)
}

/// Records which subtrees see leaf `leaf` in the feed: every department above and at the
/// statement's own (the root sees everything and needs no row), or for an erasure leaf
/// those of every statement leaf it names.
fn see_leaf(
    c: &Connection,
    leaf: i64,
    entry: &[u8],
    department: Option<&Department>,
) -> rusqlite::Result<()> {
    let mut seen: BTreeSet<Department> = BTreeSet::new();
    match department {
        Some(d) => seen.extend(d.lineage()),
        None => {
            if let Ok(Leaf::Erasure(x)) = Leaf::parse(entry) {
                let mut of =
                    c.prepare_cached("SELECT department FROM audit_leaves WHERE leaf = ?1")?;
                for i in x.indexes {
                    let d: Option<Option<String>> =
                        of.query_row(params![i64_of(i)?], |r| r.get(0)).optional()?;
                    if let Some(Ok(d)) = d.flatten().map(|d| Department::parse(&d)) {
                        seen.extend(d.lineage());
                    }
                }
            }
        }
    }
    let mut put = c.prepare_cached(
        "INSERT OR IGNORE INTO audit_leaf_departments (department, leaf) VALUES (?1, ?2)",
    )?;
    for d in seen.iter().filter(|d| !d.is_root()) {
        put.execute(params![d.as_str(), leaf])?;
    }
    Ok(())
}

/// Fills in what version 7 added for the leaves a version 6 file holds. Statements
/// erased before the upgrade left no department: their leaves are seen by the root only.
pub(super) fn backfill_feed(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(
        "UPDATE audit_leaves SET department = (SELECT s.id FROM statements s WHERE s.seq = audit_leaves.seq)
         WHERE seq IS NOT NULL;",
    )?;
    let rows: Vec<(i64, Vec<u8>, Option<String>)> = {
        let mut all =
            c.prepare("SELECT leaf, entry, department FROM audit_leaves ORDER BY leaf")?;
        let rows = all.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut set = c.prepare("UPDATE audit_leaves SET department = ?2 WHERE leaf = ?1")?;
    for (leaf, entry, key) in rows {
        // The column held the record key for a moment; it holds the department now.
        let department = key.as_deref().map(|k| departments::split_record_key(k).1);
        set.execute(params![leaf, department.as_ref().map(Department::as_str)])?;
        see_leaf(c, leaf, &entry, department.as_ref())?;
    }
    Ok(())
}

/// The feed's page of leaves `[from, to)` for `subtree` (see `Store::feed`).
pub(super) fn feed(
    c: &Connection,
    subtree: &Department,
    from: u64,
    to: u64,
    limit: usize,
) -> rusqlite::Result<FeedPage> {
    const COLUMNS: &str = "a.leaf, a.entry, s.id, s.json, s.voids";
    let (from, to, limit) = (i64_of(from)?, i64_of(to)?, limit.max(1) as i64);
    // leaf, entry, and the statement's record key, JSON and voided target, if stored.
    type Row = (i64, Vec<u8>, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = {
        let map =
            |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?));
        if subtree.is_root() {
            let mut q = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit_leaves a LEFT JOIN statements s ON s.seq = a.seq
                 WHERE a.leaf >= ?1 AND a.leaf < ?2 ORDER BY a.leaf LIMIT ?3"
            ))?;
            let rows = q.query_map(params![from, to, limit], map)?;
            rows.collect::<rusqlite::Result<_>>()?
        } else {
            let mut q = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit_leaf_departments k
                 JOIN audit_leaves a ON a.leaf = k.leaf LEFT JOIN statements s ON s.seq = a.seq
                 WHERE k.department = ?4 AND k.leaf >= ?1 AND k.leaf < ?2 ORDER BY k.leaf LIMIT ?3"
            ))?;
            let rows = q.query_map(params![from, to, limit, subtree.as_str()], map)?;
            rows.collect::<rusqlite::Result<_>>()?
        }
    };
    let next = match rows.last() {
        Some((leaf, ..)) if rows.len() as i64 == limit => *leaf as u64 + 1,
        _ => to as u64,
    };
    let mut items = Vec::with_capacity(rows.len());
    let mut department_of =
        c.prepare_cached("SELECT department FROM audit_leaves WHERE leaf = ?1")?;
    for (leaf, entry, key, json, voids) in rows {
        let event = match (key, json) {
            (Some(key), Some(json)) => FeedEvent::Statement { key, json, voids },
            // A statement leaf whose statement was erased, or an erasure leaf.
            _ => match Leaf::parse(&entry) {
                Ok(Leaf::Erasure(x)) => {
                    let mut leaves = Vec::with_capacity(x.indexes.len());
                    for i in x.indexes {
                        let seen = subtree.is_root() || {
                            let d: Option<Option<String>> = department_of
                                .query_row(params![i64_of(i)?], |r| r.get(0))
                                .optional()?;
                            d.flatten()
                                .and_then(|d| Department::parse(&d).ok())
                                .is_some_and(|d| d.is_within(subtree))
                        };
                        if seen {
                            leaves.push(i);
                        }
                    }
                    if leaves.is_empty() {
                        continue;
                    }
                    FeedEvent::Erasure {
                        erased_us: x.erased_us,
                        receipt: x.receipt,
                        leaves,
                    }
                }
                _ => continue,
            },
        };
        items.push(FeedItem {
            leaf: leaf as u64,
            event,
        });
    }
    Ok(FeedPage { items, next })
}

pub(super) fn hashes(c: &Connection, indexes: &[u64]) -> rusqlite::Result<Vec<Hash>> {
    let mut get = c.prepare_cached("SELECT hash FROM audit_hashes WHERE idx = ?1")?;
    indexes
        .iter()
        .map(|&i| {
            let h: Option<Vec<u8>> = get
                .query_row(params![i64_of(i)?], |r| r.get(0))
                .optional()?;
            h.as_deref()
                .and_then(Hash::from_slice)
                .ok_or_else(|| bad(format!("stored hash {i} is missing")))
        })
        .collect()
}

pub(super) fn entries(c: &Connection, start: u64, end: u64) -> rusqlite::Result<Vec<Vec<u8>>> {
    let mut stmt = c.prepare_cached(
        "SELECT leaf, entry FROM audit_leaves WHERE leaf >= ?1 AND leaf < ?2 ORDER BY leaf",
    )?;
    let rows = stmt.query_map(params![i64_of(start)?, i64_of(end)?], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for (want, row) in (start..end).zip(rows) {
        let (leaf, entry) = row?;
        if leaf as u64 != want {
            return Err(bad(format!("log entry {want} is missing")));
        }
        out.push(entry);
    }
    if out.len() as u64 != end.saturating_sub(start) {
        return Err(bad("log entries are missing"));
    }
    Ok(out)
}

pub(super) fn put_checkpoint(t: &Transaction<'_>, size: u64, note: &str) -> rusqlite::Result<bool> {
    t.execute(
        "UPDATE audit_state SET checkpoint_size = ?1, checkpoint = ?2
         WHERE id = 1 AND (checkpoint_size IS NULL OR checkpoint_size <= ?1)",
        params![i64_of(size)?, note],
    )
    .map(|n| n > 0)
}

pub(super) fn statement_log(c: &Connection, key: &str) -> rusqlite::Result<Option<StatementLog>> {
    c.prepare_cached(
        "SELECT s.salt, l.leaf FROM statements s LEFT JOIN audit_statement_leaf l ON l.seq = s.seq
         WHERE s.id = ?1",
    )?
    .query_row(params![key], |r| {
        Ok(StatementLog {
            salt: blob32(r.get(0)?),
            leaf: r.get::<_, Option<i64>>(1)?.map(|l| l as u64),
        })
    })
    .optional()
}

pub(super) fn statement_at_leaf(
    c: &Connection,
    index: u64,
) -> rusqlite::Result<Option<(String, StoredStatement, [u8; 32])>> {
    // No log reaches a leaf beyond the store's integers: it is absent, not an error.
    let Ok(index) = i64::try_from(index) else {
        return Ok(None);
    };
    c.prepare_cached(
        "SELECT s.id, s.json, s.stored, s.voided, s.attachments, s.salt
         FROM audit_leaves a JOIN statements s ON s.seq = a.seq WHERE a.leaf = ?1",
    )?
    .query_row(params![index], |r| {
        let s = super::row_to_stored(r)?;
        let salt = blob32(r.get(5)?).ok_or_else(|| bad("a logged statement without a salt"))?;
        Ok((s.id.clone(), s, salt))
    })
    .optional()
}

pub(super) fn erase(t: &Transaction<'_>, e: &Erasure) -> rusqlite::Result<Erased> {
    let mut done = Erased::default();
    let mut attachments: Vec<String> = Vec::new();
    {
        let mut atts = t.prepare_cached("SELECT attachments, seq FROM statements WHERE id = ?1")?;
        let mut delete = t.prepare_cached("DELETE FROM statements WHERE seq = ?1")?;
        // A row number can be used again once its row is gone: unlink its leaf first.
        let mut unlink_leaf =
            t.prepare_cached("UPDATE audit_leaves SET seq = NULL WHERE seq = ?1")?;
        let mut unlink = t.prepare_cached("DELETE FROM audit_statement_leaf WHERE seq = ?1")?;
        for key in &e.statements {
            let Some((list, seq)) = atts
                .query_row(params![key], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?
            else {
                continue;
            };
            attachments.extend(
                list.split('\n')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned),
            );
            unlink_leaf.execute(params![seq])?;
            unlink.execute(params![seq])?;
            done.statements += delete.execute(params![seq])?;
        }
    }
    attachments.sort_unstable();
    attachments.dedup();
    {
        // Erasure is rare: a scan of the attachment lists is acceptable here.
        let mut used = t.prepare_cached(
            "SELECT 1 FROM statements WHERE instr(char(10) || attachments || char(10), ?1) > 0 LIMIT 1",
        )?;
        let mut drop_att = t.prepare_cached("DELETE FROM attachments WHERE sha2 = ?1")?;
        for sha in &attachments {
            if !used.exists(params![format!("\n{sha}\n")])? {
                done.attachments += drop_att.execute(params![sha])?;
            }
        }
    }
    {
        let mut docs: Vec<(String, String)> = Vec::new();
        let mut scan = t.prepare_cached(
            "SELECT scope, doc_id FROM documents WHERE scope >= ?1 AND scope < ?2",
        )?;
        for (lo, hi) in crate::xapi::records::subtree_scope_ranges(&e.department) {
            let rows = scan.query_map(params![lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for row in rows {
                let (scope, id): (String, String) = row?;
                if crate::xapi::records::scope_names_agent(&scope, &e.agent_key) {
                    docs.push((scope, id));
                }
            }
        }
        let mut delete =
            t.prepare_cached("DELETE FROM documents WHERE scope = ?1 AND doc_id = ?2")?;
        for (scope, id) in docs {
            done.documents += delete.execute(params![scope, id])?;
        }
    }
    if !e.leaves.is_empty() {
        let leaves: Vec<String> = e.leaves.iter().map(u64::to_string).collect();
        t.execute(
            "INSERT INTO audit_erasures (receipt_hash, erased, leaves) VALUES (?1, ?2, ?3)",
            params![&e.receipt_hash.0[..], e.erased_us, leaves.join(",")],
        )?;
    }
    // The learner rows name the person: they go in the same transaction.
    super::completions::erase(t, &e.department, &e.agent_key)?;
    Ok(done)
}
