//! The embedded store's part of the completion figures (docs/ANALYTICS.md): learner rows
//! keyed learner first (an erasure finds a person's rows by one range), counters keyed
//! activity first (a query of one activity in a subtree is one range), and the position
//! of the projection. Every write here runs inside the writer's transaction.
use super::*;
use crate::analytics::{self, CounterChanges, Counts};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS completion_rows (
    learner TEXT NOT NULL,
    department TEXT NOT NULL,
    activity TEXT NOT NULL,
    row TEXT NOT NULL,
    contrib TEXT NOT NULL,
    PRIMARY KEY (learner, department, activity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS completion_counts (
    activity TEXT NOT NULL,
    department TEXT NOT NULL,
    day INTEGER NOT NULL,
    attempted INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    score_sum INTEGER NOT NULL,
    scored INTEGER NOT NULL,
    PRIMARY KEY (activity, department, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS completion_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT OR IGNORE INTO completion_state (id, position) VALUES (1, 0);
";

/// The SQL condition (on `department`) and its bound values for a subtree: the
/// department itself or any path below it; nothing for the root. The first range keeps
/// the scan on the primary key; the second drops siblings that share the prefix.
fn subtree_sql(d: &Department, first: usize) -> (String, Vec<String>) {
    if d.is_root() {
        return (String::new(), Vec::new());
    }
    let p = d.as_str();
    let (a, b, c) = (first, first + 1, first + 2);
    (
        format!(
            " AND department >= ?{a} AND department < ?{c} AND (department = ?{a} OR department >= ?{b})"
        ),
        vec![p.to_owned(), format!("{p}/"), format!("{p}0")],
    )
}

pub(super) fn position(c: &Connection) -> rusqlite::Result<u64> {
    let p: i64 = c.query_row(
        "SELECT position FROM completion_state WHERE id = 1",
        [],
        |r| r.get(0),
    )?;
    Ok(p.max(0) as u64)
}

pub(super) fn rows(c: &Connection, keys: &[RowKey]) -> rusqlite::Result<Vec<(RowKey, String)>> {
    let mut get = c.prepare_cached(
        "SELECT row FROM completion_rows WHERE learner = ?1 AND department = ?2 AND activity = ?3",
    )?;
    let mut out = Vec::new();
    for k in keys {
        let row: Option<String> = get
            .query_row(params![k.learner, k.department.as_str(), k.activity], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(row) = row {
            out.push((k.clone(), row));
        }
    }
    Ok(out)
}

pub(super) fn voided_among(c: &Connection, keys: &[String]) -> rusqlite::Result<Vec<String>> {
    let mut get = c.prepare_cached("SELECT voided FROM statements WHERE id = ?1")?;
    let mut out = Vec::new();
    for k in keys {
        let voided: Option<bool> = get.query_row(params![k], |r| r.get(0)).optional()?;
        if voided == Some(true) {
            out.push(k.clone());
        }
    }
    Ok(out)
}

/// Adds `n` to one counter, dropping it when that brings it to zero.
fn change(
    t: &Transaction<'_>,
    department: &str,
    activity: &str,
    day: analytics::Day,
    n: &Counts,
) -> rusqlite::Result<()> {
    t.prepare_cached(
        "INSERT INTO completion_counts
           (activity, department, day, attempted, completed, passed, failed, score_sum, scored)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (activity, department, day) DO UPDATE SET
           attempted = attempted + excluded.attempted, completed = completed + excluded.completed,
           passed = passed + excluded.passed, failed = failed + excluded.failed,
           score_sum = score_sum + excluded.score_sum, scored = scored + excluded.scored",
    )?
    .execute(params![
        activity,
        department,
        day,
        n.attempted,
        n.completed,
        n.passed,
        n.failed,
        n.score_sum,
        n.scored
    ])?;
    if n.lowers() {
        t.prepare_cached(
            "DELETE FROM completion_counts WHERE activity = ?1 AND department = ?2 AND day = ?3
               AND attempted = 0 AND completed = 0 AND passed = 0 AND failed = 0
               AND score_sum = 0 AND scored = 0",
        )?
        .execute(params![activity, department, day])?;
    }
    Ok(())
}

pub(super) fn project(t: &Transaction<'_>, w: &ProjectionWrite) -> rusqlite::Result<bool> {
    if position(t)? != w.from {
        return Ok(false);
    }
    let mut exists = t.prepare_cached("SELECT 1 FROM statements WHERE id = ?1")?;
    let mut old = t.prepare_cached(
        "SELECT contrib FROM completion_rows WHERE learner = ?1 AND department = ?2 AND activity = ?3",
    )?;
    // Summed over the step, each counter written once (rows of a page share counters).
    let mut changes = CounterChanges::default();
    for r in &w.rows {
        let mut present = true;
        for key in &r.requires {
            if !exists.exists(params![key])? {
                present = false;
                break;
            }
        }
        if !present {
            // Erased since it was read: the erasure already removed the row.
            continue;
        }
        let (dept, act, learner) = (r.key.department.as_str(), &r.key.activity, &r.key.learner);
        let before: Option<String> = old
            .query_row(params![learner, dept, act], |x| x.get(0))
            .optional()?;
        if let Some(before) = before.as_deref() {
            changes.take_back(
                &r.key.department,
                &analytics::contributions_from_text(before),
            );
        }
        changes.add(&r.key.department, &r.contributions);
        match &r.row {
            Some(row) => t.prepare_cached(
                "INSERT INTO completion_rows (learner, department, activity, row, contrib)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (learner, department, activity) DO UPDATE SET row = ?4, contrib = ?5",
            )?
            .execute(params![learner, dept, act, row, analytics::contributions_text(&r.contributions)])?,
            None => t
                .prepare_cached(
                    "DELETE FROM completion_rows WHERE learner = ?1 AND department = ?2 AND activity = ?3",
                )?
                .execute(params![learner, dept, act])?,
        };
    }
    for (department, activity, day, n) in changes.into_changes() {
        change(t, department.as_str(), &activity, day, &n)?;
    }
    t.execute(
        "UPDATE completion_state SET position = ?1 WHERE id = 1",
        params![i64::try_from(w.to).unwrap_or(i64::MAX)],
    )?;
    Ok(true)
}

/// Deletes a person's rows in a subtree and takes back what they contributed.
pub(super) fn erase(
    t: &Transaction<'_>,
    subtree: &Department,
    learner: &str,
) -> rusqlite::Result<usize> {
    let (cond, values) = subtree_sql(subtree, 2);
    let found: Vec<(String, String, String)> = {
        let mut q = t.prepare(&format!(
            "SELECT department, activity, contrib FROM completion_rows WHERE learner = ?1{cond}"
        ))?;
        let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&learner];
        bound.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
        let rows = q.query_map(bound.as_slice(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut delete = t.prepare_cached(
        "DELETE FROM completion_rows WHERE learner = ?1 AND department = ?2 AND activity = ?3",
    )?;
    for (dept, act, contrib) in &found {
        for c in analytics::contributions_from_text(contrib) {
            change(t, dept, &c.activity, c.day, &c.counts.negated())?;
        }
        delete.execute(params![learner, dept, act])?;
    }
    Ok(found.len())
}

pub(super) fn figures(c: &Connection, q: &FiguresQuery) -> rusqlite::Result<Vec<FigureRow>> {
    let (group, activity_cond) = match q.group_by {
        GroupBy::Day => ("day", "activity = ?1"),
        GroupBy::Department => ("department", "activity = ?1"),
        GroupBy::Activity if q.activity == analytics::ALL_ACTIVITIES => {
            // Every activity on its own: all keys but the sum over them.
            ("activity", "activity > ?1")
        }
        GroupBy::Activity => ("activity", "activity = ?1"),
    };
    let (cond, values) = subtree_sql(&q.subtree, 4);
    let sql = format!(
        "SELECT {group}, SUM(attempted), SUM(completed), SUM(passed), SUM(failed), SUM(score_sum), SUM(scored)
         FROM completion_counts WHERE {activity_cond} AND day >= ?2 AND day <= ?3{cond}
         GROUP BY {group} ORDER BY {group}"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&q.activity, &q.from, &q.to];
    bound.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
    let rows = stmt.query_map(bound.as_slice(), |r| {
        let group = match q.group_by {
            GroupBy::Day => GroupKey::Day(r.get(0)?),
            GroupBy::Department => {
                let d: String = r.get(0)?;
                GroupKey::Department(Department::parse(&d).unwrap_or_default())
            }
            GroupBy::Activity => GroupKey::Activity(r.get(0)?),
        };
        Ok(FigureRow {
            group,
            counts: Counts {
                attempted: r.get(1)?,
                completed: r.get(2)?,
                passed: r.get(3)?,
                failed: r.get(4)?,
                score_sum: r.get(5)?,
                scored: r.get(6)?,
            },
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{contributions, LearnerRow};

    fn db() -> Connection {
        let c = Connection::open_in_memory().expect("memory");
        c.execute_batch(
            "CREATE TABLE statements (id TEXT PRIMARY KEY, voided INTEGER NOT NULL DEFAULT 0);",
        )
        .expect("statements");
        c.execute_batch(SCHEMA).expect("schema");
        c
    }

    fn row(dept: &str, learner: &str, day: i32, statement: &str) -> RowWrite {
        let r = LearnerRow {
            attempted: Some(day),
            completed: Some(day),
            ..LearnerRow::default()
        };
        RowWrite {
            key: RowKey {
                department: Department::parse(dept).expect("department"),
                activity: "https://x.in/a".into(),
                learner: learner.into(),
            },
            row: Some(r.to_text()),
            contributions: contributions("https://x.in/a", &r),
            requires: vec![statement.into()],
        }
    }

    fn attempted(c: &Connection, subtree: &str, group_by: GroupBy) -> Vec<(GroupKey, i64)> {
        let q = FiguresQuery {
            subtree: Department::parse(subtree).expect("department"),
            activity: analytics::ALL_ACTIVITIES.into(),
            from: 0,
            to: 100_000,
            group_by,
        };
        figures(c, &q)
            .expect("figures")
            .into_iter()
            .map(|r| (r.group, r.counts.attempted))
            .collect()
    }

    #[test]
    fn subtrees_exclude_siblings_sharing_a_prefix_and_erasure_takes_rows_back() {
        let mut c = db();
        c.execute_batch("INSERT INTO statements (id) VALUES ('s1'), ('s2'), ('s3'), ('s4');")
            .expect("statements");
        let t = c.transaction().expect("tx");
        let w = ProjectionWrite {
            from: 0,
            to: 4,
            rows: vec![
                row("moe", "Agent|mbox|mailto:a@x.in", 10, "s1"),
                row("moe/dhe", "Agent|mbox|mailto:a@x.in", 11, "s2"),
                row("moe-x", "Agent|mbox|mailto:a@x.in", 12, "s3"),
                row("moe/dhe", "Agent|mbox|mailto:b@x.in", 11, "s4"),
                // Its statement is gone (erased meanwhile): not written.
                row("moe", "Agent|mbox|mailto:c@x.in", 10, "gone"),
            ],
        };
        assert!(project(&t, &w).expect("project"));
        // The same step again: the position moved, nothing is counted twice.
        assert!(!project(&t, &w).expect("project"));
        t.commit().expect("commit");
        let dept = |p: &str| GroupKey::Department(Department::parse(p).expect("department"));
        assert_eq!(
            attempted(&c, "moe", GroupBy::Department),
            vec![(dept("moe"), 1), (dept("moe/dhe"), 2)]
        );
        assert_eq!(
            attempted(&c, "/", GroupBy::Day),
            vec![
                (GroupKey::Day(10), 1),
                (GroupKey::Day(11), 2),
                (GroupKey::Day(12), 1)
            ]
        );
        assert_eq!(position(&c).expect("position"), 4);
        let t = c.transaction().expect("tx");
        let moe = Department::parse("moe").expect("department");
        assert_eq!(
            erase(&t, &moe, "Agent|mbox|mailto:a@x.in").expect("erase"),
            2
        );
        t.commit().expect("commit");
        assert_eq!(
            attempted(&c, "/", GroupBy::Department),
            vec![(dept("moe-x"), 1), (dept("moe/dhe"), 1)]
        );
        // Counters that reached zero are gone, not left at zero.
        let zero: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM completion_counts WHERE attempted = 0 AND completed = 0",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(zero, 0);
    }
}
