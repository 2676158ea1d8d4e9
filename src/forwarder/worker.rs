//! The delivery worker: one task per rule, each holding the rule's lease
//! (`forwarding:<id>`) so processes sharing a store never deliver one rule twice at once.
//! A task reads the rule's subtree feed from the rule's cursor, keeps the statements the
//! rule matches, sends them in batches (blocking HTTP on tokio's blocking pool), and moves
//! the stored cursor only once the target acknowledged (or past leaves that match
//! nothing). Failures wait out the backoff and retry the same leaves: at-least-once.
//!
//! Ingestion never waits on it: the tasks only read the store (and write one small row
//! per batch), and hold at most one batch in memory each.
use super::Settings;
use crate::auditlog::AuditLog;
use crate::departments;
use crate::forwarding::{self, Outcome, Rule};
use crate::store::{DynStore, FeedEvent, StoreError};
use rand::RngCore;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the rule list is read again (new and removed rules).
const RESCAN: Duration = Duration::from_secs(2);
/// How long an idle task waits for the log to grow before looking again (another
/// process may be the one sequencing).
const IDLE: Duration = Duration::from_secs(1);
/// After a batch smaller than the rule's, wait this long for more statements: a busy log
/// then goes out in full batches, a few requests (and state writes) a second, rather
/// than one request per trickle of statements.
const LINGER: Duration = Duration::from_millis(500);
/// Delivery state is written at most this often while batches succeed (each write is a
/// durable commit beside the statements'); a crash in between only sends those batches
/// again, which at-least-once allows.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Delivery state moved on in memory and not yet written.
struct Unsaved {
    state: crate::forwarding::DeliveryState,
    since: std::time::Instant,
}
/// Most leaves looked at for one batch: a rule that matches rarely still saves its
/// progress regularly.
const SCAN: u64 = 20_000;
/// Leaves read per feed page.
const PAGE: usize = 1_000;

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

struct Context {
    store: DynStore,
    audit: Arc<AuditLog>,
    settings: Settings,
    metrics: Arc<crate::metrics::Metrics>,
    /// This process's name as a lease holder.
    holder: String,
}

/// Runs until `stop` turns true: starts a task for each rule, stops the tasks of removed
/// rules, and restarts a task that ended.
pub async fn run(
    store: DynStore,
    audit: Arc<AuditLog>,
    settings: Settings,
    metrics: Arc<crate::metrics::Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let ctx = Arc::new(Context {
        store,
        audit,
        settings,
        metrics,
        holder: uuid::Uuid::new_v4().to_string(),
    });
    let mut tasks: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        match ctx.store.list_forwarding_rules().await {
            Ok(rules) => {
                let ids: Vec<String> = rules.into_iter().map(|r| r.rule.id).collect();
                tasks.retain(|id, t| {
                    let keep = ids.contains(id) && !t.is_finished();
                    if !keep {
                        t.abort();
                        if !ids.contains(id) {
                            ctx.metrics.forget_forwarding_rule(id);
                        }
                    }
                    keep
                });
                for id in ids {
                    if let std::collections::hash_map::Entry::Vacant(e) = tasks.entry(id) {
                        let id = e.key().clone();
                        e.insert(tokio::spawn(rule_task(ctx.clone(), id, stop.clone())));
                    }
                }
            }
            Err(e) => tracing::warn!("forwarding: cannot read the rules: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RESCAN) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
    }
    // Tasks end between requests; one still waiting on a target is left behind.
    for (_, mut t) in tasks {
        if tokio::time::timeout(Duration::from_secs(2), &mut t)
            .await
            .is_err()
        {
            t.abort();
        }
    }
}

/// Sleeps `d` unless `stop` turns true first; true when stopping.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
    *stop.borrow()
}

/// The leaves of one batch: the statements to send and where the cursor goes after.
struct Batch {
    /// (leaf, statement as stored).
    items: Vec<(u64, String)>,
    next: u64,
}

async fn rule_task(ctx: Arc<Context>, id: String, mut stop: watch::Receiver<bool>) {
    let lease = format!("forwarding:{id}");
    let ttl = ctx.settings.lease.as_micros() as i64;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(ctx.settings.connect_timeout)
        .timeout(ctx.settings.timeout)
        .redirects(0)
        .build();
    let mut attempt: u32 = 0;
    let mut unsaved: Option<Unsaved> = None;
    // A lease is a store write: renewed a few times per lease period, not per batch.
    let mut renewed: Option<std::time::Instant> = None;
    while !*stop.borrow() {
        if renewed.is_some_and(|t| t.elapsed() < ctx.settings.lease / 5) {
            // Held.
        } else {
            match ctx.store.lease(&lease, &ctx.holder, now_us(), ttl).await {
                Ok(true) => renewed = Some(std::time::Instant::now()),
                Ok(false) => {
                    renewed = None;
                    // Another process delivers this rule; look again when its lease may
                    // have run out.
                    if pause(ctx.settings.lease / 3, &mut stop).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    renewed = None;
                    tracing::warn!("forwarding rule {id}: cannot take its lease: {e}");
                    if pause(IDLE, &mut stop).await {
                        break;
                    }
                    continue;
                }
            }
        }
        match step(&ctx, &id, &lease, &agent, attempt, &mut unsaved).await {
            Ok(Step::Gone) => break,
            Ok(Step::Idle) => {
                tokio::select! {
                    _ = ctx.audit.growth(IDLE) => {}
                    _ = stop.changed() => {}
                }
            }
            Ok(Step::Moved { full }) => {
                attempt = 0;
                if !full && pause(LINGER, &mut stop).await {
                    break;
                }
            }
            Ok(Step::Failed) => {
                attempt = attempt.saturating_add(1);
                let wait = forwarding::backoff(
                    attempt,
                    ctx.settings.backoff_min,
                    ctx.settings.backoff_max,
                    rand::rngs::OsRng.next_u64(),
                );
                if pause(wait, &mut stop).await {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!("forwarding rule {id}: store error: {e}");
                if pause(IDLE, &mut stop).await {
                    break;
                }
            }
        }
    }
    if let Some(u) = unsaved.take() {
        let _ = ctx.store.save_forwarding_state(&id, &u.state).await;
    }
    // Hand the rule over at once rather than after the lease runs out.
    let _ = ctx.store.lease(&lease, &ctx.holder, now_us(), 0).await;
}

enum Step {
    /// The rule was removed.
    Gone,
    /// Nothing new in the log.
    Idle,
    /// The cursor moved.
    Moved {
        /// Whether more is ready at once (a full batch, or leaves left to scan).
        full: bool,
    },
    /// A delivery failed (recorded in the rule's state).
    Failed,
}

async fn step(
    ctx: &Context,
    id: &str,
    lease: &str,
    agent: &ureq::Agent,
    attempt: u32,
    unsaved: &mut Option<Unsaved>,
) -> Result<Step, StoreError> {
    let Some(record) = ctx.store.get_forwarding_rule(id).await? else {
        *unsaved = None;
        return Ok(Step::Gone);
    };
    let size = ctx.store.log_state().await?.size;
    // What this task moved on in memory is ahead of what is stored.
    let mut state = match unsaved.take() {
        Some(u) if u.state.cursor >= record.state.cursor => {
            *unsaved = Some(Unsaved {
                state: u.state.clone(),
                since: u.since,
            });
            u.state
        }
        _ => record.state,
    };
    // Writes the state now, or within SAVE_EVERY when `lazily`.
    async fn save(
        ctx: &Context,
        id: &str,
        state: &crate::forwarding::DeliveryState,
        unsaved: &mut Option<Unsaved>,
        lazily: bool,
    ) -> Result<(), StoreError> {
        let since = unsaved
            .as_ref()
            .map_or_else(std::time::Instant::now, |u| u.since);
        if lazily && since.elapsed() < SAVE_EVERY {
            *unsaved = Some(Unsaved {
                state: state.clone(),
                since,
            });
            return Ok(());
        }
        ctx.store.save_forwarding_state(id, state).await?;
        *unsaved = None;
        Ok(())
    }
    ctx.metrics
        .set_forwarding_lag(id, size.saturating_sub(state.cursor));
    if state.cursor >= size {
        if unsaved.is_some() {
            save(ctx, id, &state, unsaved, false).await?;
        }
        return Ok(Step::Idle);
    }
    let batch = collect(ctx, &record.rule, state.cursor, size).await?;
    if batch.items.is_empty() {
        state.cursor = batch.next;
        save(ctx, id, &state, unsaved, true).await?;
        return Ok(Step::Moved {
            full: batch.next < size,
        });
    }
    let result = deliver(ctx, lease, agent, &record.rule, &batch.items).await;
    state.last_attempt_us = Some(now_us());
    match result {
        Ok(()) => {
            state.cursor = batch.next;
            state.delivered += batch.items.len() as u64;
            state.last_error = None;
            save(ctx, id, &state, unsaved, true).await?;
            ctx.metrics
                .forwarding_delivered(id, batch.items.len() as u64);
            ctx.metrics
                .set_forwarding_lag(id, size.saturating_sub(state.cursor));
            Ok(Step::Moved {
                full: batch.items.len() >= record.rule.batch_size || batch.next < size,
            })
        }
        Err(e) => {
            state.failures += 1;
            ctx.metrics.forwarding_failed(id);
            let note = forwarding::error_note(&e);
            // Never the authorization value or the secret: only the target's answer.
            if attempt == 0 || attempt.is_power_of_two() {
                tracing::warn!(
                    "forwarding rule {id}: delivery failed (attempt {}): {note}",
                    attempt + 1
                );
            }
            state.last_error = Some(note);
            save(ctx, id, &state, unsaved, false).await?;
            Ok(Step::Failed)
        }
    }
}

/// The next batch from `from`: up to the rule's batch size of matching statements,
/// looking at no more than `SCAN` leaves.
async fn collect(ctx: &Context, rule: &Rule, from: u64, size: u64) -> Result<Batch, StoreError> {
    let mut items = Vec::new();
    let mut pos = from;
    let end = size.min(from.saturating_add(SCAN));
    // Read no more than the batch needs when every statement matches; grow the pages
    // when filters leave most of them out.
    let mut want = rule.batch_size.max(1);
    while pos < end {
        let page = ctx
            .store
            .feed(&rule.department, pos, end, want.min(PAGE))
            .await?;
        want = want.saturating_mul(4);
        for item in page.items {
            let FeedEvent::Statement { key, json, voids } = item.event else {
                // Erasure events are not forwarded (docs/FORWARDING.md).
                continue;
            };
            if keeps(ctx, rule, &key, &json, voids.as_deref()).await? {
                items.push((item.leaf, json));
                if items.len() >= rule.batch_size {
                    return Ok(Batch {
                        items,
                        next: item.leaf + 1,
                    });
                }
            }
        }
        if page.next <= pos {
            break;
        }
        pos = page.next;
    }
    Ok(Batch { items, next: pos })
}

/// Whether the rule forwards this statement (a voiding one by what it voids).
async fn keeps(
    ctx: &Context,
    rule: &Rule,
    key: &str,
    json: &str,
    voids: Option<&str>,
) -> Result<bool, StoreError> {
    if rule.verbs.is_empty() && rule.activities.is_empty() {
        // No filter: everything in the subtree goes, voiding statements included.
        return Ok(true);
    }
    let Ok(statement) = serde_json::from_str::<Value>(json) else {
        tracing::warn!("forwarding: statement {key} is not JSON; skipped");
        return Ok(false);
    };
    let Some(target_key) = voids else {
        return Ok(forwarding::matches(rule, &statement));
    };
    let target = if forwarding::needs_voided_target(rule) {
        let (target_id, _) = departments::split_record_key(target_key);
        ctx.store
            .get_statement_copies(target_id)
            .await?
            .into_iter()
            .find(|c| c.id == target_key)
            .and_then(|c| serde_json::from_str::<Value>(&c.json).ok())
    } else {
        None
    };
    Ok(forwarding::matches_voiding(
        rule,
        &statement,
        target.as_ref(),
    ))
}

/// Sends a batch; Ok once the target acknowledged every statement in it.
async fn deliver(
    ctx: &Context,
    lease: &str,
    agent: &ureq::Agent,
    rule: &Rule,
    items: &[(u64, String)],
) -> Result<(), String> {
    match post(ctx, lease, agent, rule, items).await? {
        Outcome::Delivered => Ok(()),
        Outcome::OneByOne => {
            for one in items.chunks(1) {
                if post(ctx, lease, agent, rule, one).await? != Outcome::Delivered {
                    return Err("a statement sent alone was refused".into());
                }
            }
            Ok(())
        }
        // `post` answers Err for what is retried.
        Outcome::Retry => Err("the target refused the batch".into()),
    }
}

/// One request. Err when not delivered (the message says why); keeps renewing the lease
/// while the request runs.
async fn post(
    ctx: &Context,
    lease: &str,
    agent: &ureq::Agent,
    rule: &Rule,
    items: &[(u64, String)],
) -> Result<Outcome, String> {
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Ok(Outcome::Delivered);
    };
    let body = forwarding::body(items.iter().map(|(_, s)| s.as_str()));
    let signature = forwarding::signature(&rule.secret, &body);
    let delivery = forwarding::delivery_id(&rule.id, first.0, last.0);
    let request = {
        let mut r = agent
            .post(&rule.target)
            .set("Content-Type", "application/json")
            .set("X-Experience-API-Version", &rule.xapi_version)
            .set(forwarding::SIGNATURE_HEADER, &signature)
            .set(forwarding::DELIVERY_HEADER, &delivery);
        if let Some(a) = &rule.authorization {
            r = r.set("Authorization", a);
        }
        r
    };
    let call = tokio::task::spawn_blocking(move || match request.send_bytes(&body) {
        Ok(resp) => {
            let status = resp.status();
            // Read (a bounded part of) the answer so the connection can be reused.
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut std::io::Read::take(resp.into_reader(), 64 * 1024),
                &mut sink,
            );
            Ok(status)
        }
        Err(ureq::Error::Status(status, _)) => Ok(status),
        Err(ureq::Error::Transport(t)) => Err(t.to_string()),
    });
    tokio::pin!(call);
    let renew = ctx.settings.lease / 3;
    let deadline = Instant::now() + ctx.settings.timeout + Duration::from_secs(2);
    let answer = loop {
        tokio::select! {
            r = &mut call => break r,
            _ = tokio::time::sleep(renew) => {
                if Instant::now() > deadline {
                    return Err(format!("no answer within {:?}", ctx.settings.timeout));
                }
                let ttl = ctx.settings.lease.as_micros() as i64;
                let _ = ctx.store.lease(lease, &ctx.holder, now_us(), ttl).await;
            }
        }
    };
    let status = answer.map_err(|e| format!("the request did not complete: {e}"))??;
    match forwarding::outcome(
        status,
        forwarding::is_xapi_target(&rule.target),
        items.len(),
    ) {
        Outcome::Retry => Err(format!("the target answered {status}")),
        o => Ok(o),
    }
}
