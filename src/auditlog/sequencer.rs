//! The sequencer: takes statements the acknowledgement path stored (with their
//! commitments) and erasures carried out, in `stored` order up to Consistent-Through,
//! appends them to the tree in batches, and signs a checkpoint at most once a second
//! when the tree grew. On MongoDB with several processes, the one holding the lease
//! sequences; the others refresh their checkpoint from the store.
use super::witnesses::{Cosigner, WitnessSpec};
use super::AuditLog;
use crate::audit::leaf::{self, ErasureLeaf, StatementLeaf};
use crate::audit::merkle::{self, Hash};
use crate::audit::note::Checkpoint;
use crate::audit::records::{LogAppend, LogEntry};
use crate::departments;
use crate::store::clock::StoredClock;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Least time between two runs of the sequencer (larger, fewer appends under load).
const TICK: Duration = Duration::from_millis(250);
/// Longest time between two runs: statements stored by another process (MongoDB) are
/// not announced, and a grown tree waits at most this long for its checkpoint.
const IDLE: Duration = Duration::from_millis(500);
/// How often the holder renews its lease (well inside `LEASE`).
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// Statements per append (one transaction).
const BATCH: usize = 8_192;
/// The same where the store runs in this process (`Store::shares_the_machine`): its one
/// writer also commits every acknowledged statement, and an append of a tick's ~900
/// statements held it for 5–10 ms plus a longer commit, in W1's p99 (docs/PERFORMANCE.md).
/// 128 leaves take well under a millisecond; the sequencer still keeps up with W2.
const SHARED_BATCH: usize = 128;
/// Least time between two checkpoints.
const SIGN_EVERY: Duration = Duration::from_secs(1);
/// The sequencer lease (MongoDB): renewed every tick, lost after this without renewal.
const LEASE: Duration = Duration::from_secs(5);

/// The right edge of the tree: the roots of its complete subtrees, largest first, as
/// (level, hash). Appending a leaf merges the equal-level tail (RFC 6962 §2.1).
struct Frontier {
    size: u64,
    nodes: Vec<(u8, Hash)>,
}

impl Frontier {
    async fn load(log: &AuditLog, size: u64) -> Result<Frontier, String> {
        let nodes = merkle::range_nodes(0, size);
        let hashes = log
            .store
            .log_hashes(nodes.iter().map(merkle::Node::stored_index).collect())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Frontier {
            size,
            nodes: nodes.iter().map(|n| n.level).zip(hashes).collect(),
        })
    }

    /// Appends one leaf; pushes the hashes to store (the leaf hash, then every node it
    /// completes, lowest first: stored-hash order).
    fn push(&mut self, leaf: Hash, out: &mut Vec<Hash>) {
        out.push(leaf);
        let (mut level, mut h) = (0u8, leaf);
        while let Some(&(l, left)) = self.nodes.last() {
            if l != level {
                break;
            }
            self.nodes.pop();
            h = merkle::node_hash(&left, &h);
            out.push(h);
            level += 1;
        }
        self.nodes.push((level, h));
        self.size += 1;
    }

    fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut h)) = it.next() else {
            return merkle::empty_root();
        };
        for (_, left) in it {
            h = merkle::node_hash(left, &h);
        }
        h
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Runs until `stop` turns true. Each checkpoint signed is offered to the `witnesses`
/// (`witnesses::Cosigner`), which never hold sequencing up.
pub async fn run(
    log: Arc<AuditLog>,
    clock: Arc<StoredClock>,
    witnesses: Vec<WitnessSpec>,
    mut stop: watch::Receiver<bool>,
) {
    let cosigner = Cosigner::start(log.clone(), witnesses);
    let holder = uuid::Uuid::new_v4().to_string();
    let mut frontier: Option<Frontier> = None;
    let mut last_signed: Option<Instant> = None;
    let mut last_refresh = Instant::now();
    let mut last_run = Instant::now();
    let mut renewed: Option<Instant> = None;
    loop {
        // Woken by this process's writes (`AuditLog::wake`), else every IDLE.
        tokio::select! {
            _ = tokio::time::sleep(IDLE) => {}
            _ = log.woken() => {}
            _ = super::stopped(&mut stop) => {}
        }
        if let Some(rest) = TICK.checked_sub(last_run.elapsed()) {
            tokio::select! {
                _ = tokio::time::sleep(rest) => {}
                _ = super::stopped(&mut stop) => {}
            }
        }
        last_run = Instant::now();
        if *stop.borrow() {
            // Hand the lease over at once rather than after it runs out.
            let _ = log.store.sequencer_lease(&holder, now_us(), 0).await;
            cosigner.stop().await;
            break;
        }
        let held = renewed.is_some_and(|t| t.elapsed() < RENEW_EVERY);
        let lease = if held {
            Ok(true)
        } else {
            log.store
                .sequencer_lease(&holder, now_us(), LEASE.as_micros() as i64)
                .await
        };
        match lease {
            Ok(true) => {
                if !held {
                    renewed = Some(Instant::now());
                }
            }
            Ok(false) => {
                renewed = None;
                frontier = None;
                if last_refresh.elapsed() >= SIGN_EVERY {
                    last_refresh = Instant::now();
                    if let Err(e) = log.refresh().await {
                        tracing::warn!("audit log: cannot read the latest checkpoint: {e}");
                    }
                }
                continue;
            }
            Err(e) => {
                renewed = None;
                tracing::warn!("audit log: cannot take the sequencer lease: {e}");
                continue;
            }
        }
        // A stop cancels a step (a slow read of thousands of unlogged statements, or an
        // append): on MongoDB an append is idempotent and cleaned up by the next one, on
        // the embedded store the writer finishes what it was given; the next start
        // resumes from the store either way.
        let stepped = tokio::select! {
            r = step(
                &log,
                &clock,
                &holder,
                &mut frontier,
                &mut last_signed,
                &cosigner,
            ) => r,
            _ = super::stopped(&mut stop) => continue,
        };
        if let Err(e) = stepped {
            tracing::warn!("audit log: sequencing failed, will retry: {e}");
            frontier = None;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn step(
    log: &AuditLog,
    clock: &StoredClock,
    holder: &str,
    frontier: &mut Option<Frontier>,
    last_signed: &mut Option<Instant>,
    cosigner: &Cosigner,
) -> Result<(), String> {
    let state = log.store.log_state().await.map_err(|e| e.to_string())?;
    if frontier.as_ref().is_none_or(|f| f.size != state.size) {
        *frontier = Some(Frontier::load(log, state.size).await?);
    }
    if log.checkpoint().is_none() {
        if let Some((size, note)) = state.checkpoint.clone() {
            if log.opens(&note) {
                log.set_checkpoint(size, note);
            } else {
                // The key changed (a new key file): the tree is signed again at once
                // with the key /audit/vkey publishes.
                tracing::warn!(
                    "audit log: the stored checkpoint is not signed by the configured key; signing the tree again with it"
                );
            }
        }
    }
    let horizon = clock.consistent_through_us();
    let batch = if log.store.shares_the_machine() {
        SHARED_BATCH
    } else {
        BATCH
    };
    loop {
        let Some(f) = frontier.as_mut() else {
            return Ok(());
        };
        let statements = log
            .store
            .unlogged_statements(horizon, batch)
            .await
            .map_err(|e| e.to_string())?;
        let erasures = log
            .store
            .pending_erasures()
            .await
            .map_err(|e| e.to_string())?;
        if statements.is_empty() && erasures.is_empty() {
            break;
        }
        let old_size = f.size;
        let mut next = Frontier {
            size: f.size,
            nodes: f.nodes.clone(),
        };
        let mut entries = Vec::with_capacity(statements.len());
        let mut hashes = Vec::with_capacity(2 * statements.len() + 2);
        let mut seals = Vec::new();
        for s in &statements {
            let (_, commitment) = match s.seal {
                Some(seal) => seal,
                None => {
                    // Stored before the log existed: sealed now, from its stored JSON.
                    let json = s
                        .json
                        .as_deref()
                        .ok_or_else(|| format!("statement {} has neither seal nor JSON", s.key))?;
                    let (_, department) = departments::split_record_key(&s.key);
                    let (salt, c) = leaf::seal(json, &department)
                        .map_err(|e| format!("cannot seal statement {}: {e}", s.key))?;
                    seals.push((s.key.clone(), *salt.as_bytes(), c.0));
                    (*salt.as_bytes(), c.0)
                }
            };
            let entry = StatementLeaf {
                commitment: Hash(commitment),
                stored_us: u64::try_from(s.stored_us)
                    .map_err(|_| format!("statement {} was stored before 1970", s.key))?,
            }
            .encode();
            next.push(merkle::leaf_hash(&entry), &mut hashes);
            entries.push(LogEntry {
                entry,
                statement: Some(s.key.clone()),
                row: s.row,
                erasure: None,
            });
        }
        let mut logged_erasures = Vec::new();
        for e in &erasures {
            let erased_us = u64::try_from(e.erased_us).unwrap_or(0);
            let parts = ErasureLeaf::split(erased_us, e.receipt_hash, e.indexes.clone())
                .map_err(|x| format!("erasure {}: {x}", e.id))?;
            for p in parts {
                let entry = p.encode().map_err(|x| format!("erasure {}: {x}", e.id))?;
                next.push(merkle::leaf_hash(&entry), &mut hashes);
                entries.push(LogEntry {
                    entry,
                    statement: None,
                    row: 0,
                    erasure: Some(e.id),
                });
            }
            logged_erasures.push(e.id);
        }
        let through = statements.last().map(|s| (s.stored_us, s.key.clone()));
        let appended = log
            .store
            .append_log(LogAppend {
                old_size,
                entries,
                hashes,
                seals,
                erasures: logged_erasures,
                through,
                holder: holder.to_owned(),
                lease_us: LEASE.as_micros() as i64,
            })
            .await
            .map_err(|e| e.to_string())?;
        if !appended {
            // Another sequencer moved the tree: start again from the store.
            *frontier = None;
            return Ok(());
        }
        *f = next;
        log.appended(statements.iter().map(|s| s.stored_us));
        log.grew();
        if statements.len() < batch {
            break;
        }
    }
    let Some(f) = frontier.as_ref() else {
        return Ok(());
    };
    let signed_size = log.checkpoint().map(|(s, _)| s);
    let due = last_signed.is_none_or(|t| t.elapsed() >= SIGN_EVERY);
    if signed_size.is_none_or(|s| s < f.size) && due {
        let note = Checkpoint::new(log.origin(), f.size, f.root())
            .sign(log.signer())
            .map_err(|e| format!("cannot sign a checkpoint: {e}"))?;
        log.store
            .put_checkpoint(f.size, note.clone())
            .await
            .map_err(|e| e.to_string())?;
        log.set_checkpoint(f.size, note.clone());
        // The merge delay of each statement: from `stored` to the checkpoint naming it.
        log.published(now_us());
        cosigner.offer(f.size, note);
        *last_signed = Some(Instant::now());
    }
    Ok(())
}
