//! The completion projector (docs/ANALYTICS.md): a background task that keeps the
//! learner rows and per-day counters of `crate::analytics` up with the root change feed.
//! One process projects at a time (the `completions` lease); each page of the feed is one
//! atomic store write that also moves the projection's position, guarded by the position
//! it started from, so a crash or a second projector never counts a leaf twice.
use crate::analytics::query::{ProjectionWrite, RowKey, RowWrite};
use crate::analytics::{self, LearnerRow, Observation};
use crate::auditlog::AuditLog;
use crate::departments::{self, Department};
use crate::store::{DynStore, FeedEvent, StatementQuery, StoreError};
use crate::xapi::statement::key;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The lease's name in the store.
pub const LEASE_NAME: &str = "completions";
/// Leaves read per step (one transaction).
const PAGE: usize = 2_000;
/// The same while statements are arriving, where the store runs in this process
/// (`Store::shares_the_machine`): its one writer also commits every acknowledged
/// statement, and a step of a thousand leaves held it for 15–25 ms, which made W1's p99
/// (docs/PERFORMANCE.md). Small steps keep each write to a millisecond or two; once the
/// log stops growing, the projector catches up in full pages.
const SHARED_PAGE: usize = 64;
/// The log counts as growing for this long after its last append.
const QUIET: Duration = Duration::from_secs(1);
/// Longest wait between two looks at the log when no growth woke the task.
const POLL: Duration = Duration::from_millis(250);
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// While statements are arriving, the projector rests this many times as long as each
/// page took: at most a tenth of the time goes to projecting, so ingestion keeps the
/// machine when it is busy; when the log stops growing it runs at full speed and the
/// figures catch up (`projectedThrough` says how far they are). Only where the store runs
/// in this process (`Store::shares_the_machine`).
const REST_FACTOR: u32 = 9;
const LEASE: Duration = Duration::from_secs(5);
/// Statements read per page when a row is rebuilt.
const REBUILD_PAGE: usize = 1_000;

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Runs until `stop` turns true.
pub async fn run(store: DynStore, audit: Arc<AuditLog>, mut stop: watch::Receiver<bool>) {
    let holder = uuid::Uuid::new_v4().to_string();
    let mut renewed: Option<Instant> = None;
    let mut seen_appends = audit.appends();
    let mut last_growth = Instant::now();
    loop {
        tokio::select! {
            _ = audit.growth(POLL) => {}
            _ = crate::auditlog::stopped(&mut stop) => {}
        }
        if *stop.borrow() {
            if renewed.is_some() {
                // Hand the lease over at once rather than after it runs out.
                let _ = store.lease(LEASE_NAME, &holder, now_us(), 0).await;
            }
            break;
        }
        if renewed.is_none_or(|t| t.elapsed() >= RENEW_EVERY) {
            match store
                .lease(LEASE_NAME, &holder, now_us(), LEASE.as_micros() as i64)
                .await
            {
                Ok(true) => renewed = Some(Instant::now()),
                Ok(false) => {
                    renewed = None;
                    continue;
                }
                Err(e) => {
                    tracing::warn!("completions: cannot take the lease: {e}");
                    renewed = None;
                    continue;
                }
            }
        }
        // Catch up page by page, renewing the lease between pages.
        loop {
            let started = Instant::now();
            let appends = audit.appends();
            if appends != seen_appends {
                seen_appends = appends;
                last_growth = started;
            }
            // Small pages while the log grows (the sequencer appends every tick), so
            // that no write of the projection holds the writer long.
            let page = if store.shares_the_machine() && last_growth.elapsed() < QUIET {
                SHARED_PAGE
            } else {
                PAGE
            };
            // Reading and planning a page can take long on a busy database and writes
            // nothing: a stop cancels it. The write is one short transaction and always
            // finishes, so a stop never leaves one open for the server to expire.
            let planned = tokio::select! {
                p = plan_step(&store, page) => p,
                _ = crate::auditlog::stopped(&mut stop) => break,
            };
            let stepped = match planned {
                Ok(Some((write, more))) => write_step(&store, write).await.map(|()| more),
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            // Resting frees this process's cores for ingestion, which only matters where
            // the store works on them (the embedded store); MongoDB does its work in its
            // own server, so the projector there keeps its pace.
            let rest = if store.shares_the_machine() && audit.appends() != appends {
                started.elapsed() * REST_FACTOR
            } else {
                Duration::ZERO
            };
            tokio::select! {
                _ = tokio::time::sleep(rest) => {}
                _ = crate::auditlog::stopped(&mut stop) => {}
            }
            match stepped {
                Ok(true) if !*stop.borrow() => {
                    if renewed.is_some_and(|t| t.elapsed() >= RENEW_EVERY) {
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!("completions: projection step failed: {e}");
                    break;
                }
            }
        }
    }
}

/// Projects one page of the feed; true when the log holds more.
pub async fn step(store: &DynStore) -> Result<bool, StoreError> {
    match plan_step(store, PAGE).await? {
        Some((write, more)) => write_step(store, write).await.map(|()| more),
        None => Ok(false),
    }
}

/// Reads the next page of the feed (at most `page` leaves) and plans its write (nothing
/// is written): `None` when the figures are up to date, else the write and whether the
/// log holds more after it.
pub async fn plan_step(
    store: &DynStore,
    page: usize,
) -> Result<Option<(ProjectionWrite, bool)>, StoreError> {
    let from = store.completions_position().await?;
    let size = store.log_state().await?.size;
    if from >= size {
        return Ok(None);
    }
    let page = store.feed(&Department::root(), from, size, page).await?;
    let write = plan(store, &page.items, from, page.next).await?;
    Ok(Some((write, page.next < size)))
}

async fn write_step(store: &DynStore, write: ProjectionWrite) -> Result<(), StoreError> {
    if !store.project_completions(write).await? {
        tracing::debug!("completions: the position moved meanwhile; reading again");
    }
    Ok(())
}

/// What one page of the feed changes: rows merged with the page's statements, and rows
/// rebuilt from what remains where the page voids a statement.
async fn plan(
    store: &DynStore,
    items: &[crate::store::FeedItem],
    from: u64,
    to: u64,
) -> Result<ProjectionWrite, StoreError> {
    let mut merges: BTreeMap<RowKey, (Vec<Observation>, Vec<String>)> = BTreeMap::new();
    let mut voided_targets: Vec<String> = Vec::new();
    for item in items {
        let FeedEvent::Statement { key, json, voids } = &item.event else {
            // Erasures already took their rows back (`Store::erase`).
            continue;
        };
        if let Some(target) = voids {
            voided_targets.push(target.clone());
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        let Some(o) = analytics::observe(&v) else {
            continue;
        };
        let (_, department) = departments::split_record_key(key);
        let row = RowKey {
            department,
            activity: o.activity.clone(),
            learner: o.learner.clone(),
        };
        let entry = merges.entry(row).or_default();
        entry.0.push(o);
        entry.1.push(key.clone());
    }
    // A statement voided since it was stored counts for nothing (its voiding statement,
    // wherever it is in the log, rebuilds the row).
    let keys: Vec<String> = merges
        .values()
        .flat_map(|(_, k)| k.iter().cloned())
        .collect();
    let voided: BTreeSet<String> = if keys.is_empty() {
        BTreeSet::new()
    } else {
        store.voided_among(keys).await?.into_iter().collect()
    };
    let mut rows = Vec::new();
    let mut rebuilt: BTreeSet<RowKey> = BTreeSet::new();
    for target in &voided_targets {
        if let Some((row_key, target_key)) = target_row(store, target).await? {
            if rebuilt.insert(row_key.clone()) {
                rows.push(rebuild(store, row_key, target_key).await?);
            }
        }
    }
    let wanted: Vec<RowKey> = merges
        .keys()
        .filter(|k| !rebuilt.contains(*k))
        .cloned()
        .collect();
    let existing: BTreeMap<RowKey, String> = if wanted.is_empty() {
        BTreeMap::new()
    } else {
        store.learner_rows(wanted).await?.into_iter().collect()
    };
    for (row_key, (observations, keys)) in merges {
        if rebuilt.contains(&row_key) {
            continue;
        }
        let old = existing
            .get(&row_key)
            .map(|t| LearnerRow::from_text(t))
            .unwrap_or_default();
        let mut new = old;
        let mut requires = Vec::new();
        for (o, k) in observations.iter().zip(keys) {
            if !voided.contains(&k) {
                new = analytics::merge(new, o);
                requires.push(k);
            }
        }
        if new == old {
            continue;
        }
        rows.push(RowWrite {
            contributions: analytics::contributions(&row_key.activity, &new),
            row: Some(new.to_text()),
            key: row_key,
            requires,
        });
    }
    Ok(ProjectionWrite { from, to, rows })
}

/// The row a voided statement (by record key) belonged to, if it is still stored.
async fn target_row(
    store: &DynStore,
    target: &str,
) -> Result<Option<(RowKey, String)>, StoreError> {
    let (id, department) = departments::split_record_key(target);
    let copies = store.get_statement_copies(id).await?;
    let Some(s) = copies.into_iter().find(|s| s.id == target) else {
        // Erased, or never arrived: nothing was counted for it.
        return Ok(None);
    };
    let Ok(v) = serde_json::from_str::<Value>(&s.json) else {
        return Ok(None);
    };
    Ok(analytics::observe(&v).map(|o| {
        (
            RowKey {
                department,
                activity: o.activity,
                learner: o.learner,
            },
            s.id,
        )
    }))
}

/// The row folded again from the learner's statements about the activity that remain
/// (not voided) in the department.
async fn rebuild(
    store: &DynStore,
    row_key: RowKey,
    target: String,
) -> Result<RowWrite, StoreError> {
    let mut query = StatementQuery {
        keys: vec![
            format!("{}{}", key::AGENT, row_key.learner),
            format!("{}{}", key::ACTIVITY, row_key.activity),
        ],
        ascending: true,
        limit: REBUILD_PAGE,
        ..StatementQuery::default()
    };
    query.within(&row_key.department);
    let mut row = LearnerRow::default();
    let mut requires = vec![target];
    loop {
        let page = store.query_statements(&query).await?;
        let full = page.len() == REBUILD_PAGE;
        for s in &page {
            if departments::split_record_key(&s.id).1 != row_key.department {
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(&s.json) else {
                continue;
            };
            if let Some(o) = analytics::observe(&v) {
                if o.learner == row_key.learner && o.activity == row_key.activity {
                    row = analytics::merge(row, &o);
                    requires.push(s.id.clone());
                }
            }
        }
        match page.last() {
            Some(last) if full => query.after = Some((last.stored_us, last.id.clone())),
            _ => break,
        }
    }
    Ok(RowWrite {
        contributions: analytics::contributions(&row_key.activity, &row),
        row: (!row.is_empty()).then(|| row.to_text()),
        key: row_key,
        requires,
    })
}
