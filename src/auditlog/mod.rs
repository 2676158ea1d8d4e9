//! The audit log at run time: the signing key file, the latest checkpoint, and reads of
//! the tree for the HTTP adapter (tiles, proofs). The rules and formats are `crate::audit`
//! (pure); the sequencer task that extends the tree is `sequencer`.
pub mod sequencer;
pub mod witnesses;

use crate::audit::merkle::{self, Hash};
use crate::audit::note::{Signer, Verifier};
use crate::audit::tiles::{Tile, TileKind, TILE_HEIGHT, TILE_WIDTH};
use crate::store::{DynStore, StoreError};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// Published maximum merge delay: a statement is in a signed checkpoint at most this long
/// after it was stored (the sequencer runs every 250 ms, signs at most once a second).
pub const MAX_MERGE_DELAY_MS: u64 = 2_000;

/// The audit log of one LRS process.
pub struct AuditLog {
    pub store: DynStore,
    signer: Signer,
    vkey: String,
    /// The latest checkpoint: (size, signed note).
    latest: RwLock<Option<(u64, String)>>,
    /// Merge delays seen by this process's sequencer (ms), newest last, bounded.
    delays: Mutex<std::collections::VecDeque<u64>>,
    /// `stored` of the statements appended since the last checkpoint.
    unpublished: Mutex<Vec<i64>>,
    /// Wakes the sequencer when this process stored statements or erased.
    wake: tokio::sync::Notify,
    /// Wakes long-polling feed readers when this process's sequencer appended.
    grown: tokio::sync::Notify,
    /// How many appends this process's sequencer made (background work yields while it
    /// grows).
    appends: std::sync::atomic::AtomicU64,
}

/// How many merge delays are kept for the status figures.
const DELAY_SAMPLES: usize = 100_000;

impl AuditLog {
    pub fn new(store: DynStore, signer: Signer) -> Arc<AuditLog> {
        let vkey = signer.verifier().to_string();
        Arc::new(AuditLog {
            store,
            signer,
            vkey,
            latest: RwLock::new(None),
            delays: Mutex::new(Default::default()),
            unpublished: Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            grown: tokio::sync::Notify::new(),
            appends: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Tells the sequencer there is something to log (statements stored, an erasure).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next `wake` (or at once if one came since the last call).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Tells waiting feed readers the log grew.
    pub fn grew(&self) {
        self.appends
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.grown.notify_waiters();
    }

    /// Appends so far by this process's sequencer.
    pub fn appends(&self) -> u64 {
        self.appends.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves when this process's sequencer next appends, or after `at_most` (another
    /// process may be the one sequencing).
    pub async fn growth(&self, at_most: std::time::Duration) {
        let _ = tokio::time::timeout(at_most, self.grown.notified()).await;
    }

    /// The origin line of the checkpoints (the name of the signing key).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The verifier key, signed-note `vkey` form.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    /// The latest checkpoint (size, note) this process knows of.
    pub fn checkpoint(&self) -> Option<(u64, String)> {
        self.latest.read().ok().and_then(|l| l.clone())
    }

    /// Takes a checkpoint as the latest if it is newer.
    pub fn set_checkpoint(&self, size: u64, note: String) {
        if let Ok(mut l) = self.latest.write() {
            if l.as_ref().is_none_or(|(s, _)| *s <= size) {
                *l = Some((size, note));
            }
        }
    }

    /// Reloads the latest checkpoint from the store (processes that do not sequence).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        if let Some((size, note)) = self.store.log_state().await?.checkpoint {
            if self.opens(&note) {
                self.set_checkpoint(size, note);
            }
        }
        Ok(())
    }

    /// Whether a checkpoint note carries this log's signature (only those are served).
    pub fn opens(&self, note: &str) -> bool {
        crate::audit::note::Checkpoint::open(note.as_bytes(), self.origin(), &[self.verifier()])
            .is_ok()
    }

    /// Notes the `stored` times of statements just appended, not yet in a checkpoint.
    fn appended(&self, stored_us: impl IntoIterator<Item = i64>) {
        if let Ok(mut u) = self.unpublished.lock() {
            u.extend(stored_us);
        }
    }

    /// A checkpoint naming every leaf appended so far was published at `now_us`: their
    /// merge delays are known.
    fn published(&self, now_us: i64) {
        let stored = match self.unpublished.lock() {
            Ok(mut u) => std::mem::take(&mut *u),
            Err(_) => return,
        };
        if let Ok(mut d) = self.delays.lock() {
            for s in stored {
                if d.len() == DELAY_SAMPLES {
                    d.pop_front();
                }
                d.push_back((now_us.saturating_sub(s).max(0) / 1000) as u64);
            }
        }
    }

    /// How many leaves were appended since the last checkpoint, and the `stored` time of
    /// the oldest of them (µs).
    pub fn unpublished(&self) -> (usize, Option<i64>) {
        match self.unpublished.lock() {
            Ok(u) => (u.len(), u.iter().copied().min()),
            Err(_) => (0, None),
        }
    }

    /// (samples, p50, p99, max) of the merge delays this process's sequencer saw, in ms.
    pub fn merge_delays(&self) -> (usize, u64, u64, u64) {
        let mut v: Vec<u64> = match self.delays.lock() {
            Ok(d) => d.iter().copied().collect(),
            Err(_) => Vec::new(),
        };
        if v.is_empty() {
            return (0, 0, 0, 0);
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (v.len(), at(0.5), at(0.99), v[v.len() - 1])
    }

    /// The bytes of a tile (c2sp.org/tlog-tiles) of the tree of the latest checkpoint;
    /// None when the checkpoint's tree does not have it.
    pub async fn tile(&self, tile: &Tile) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((size, _)) = self.checkpoint() else {
            return Ok(None);
        };
        // How many nodes of the tile's level the tree has completed; a tile (full, or
        // partial of any width up to what exists: its hashes never change) is served
        // when they cover it.
        let height = u32::from(tile.level()) * u32::from(TILE_HEIGHT);
        let complete = if height < 64 { size >> height } else { 0 };
        let Some(start) = tile.index.checked_mul(u64::from(TILE_WIDTH)) else {
            return Ok(None);
        };
        if complete <= start || complete - start < u64::from(tile.width) {
            return Ok(None);
        }
        match tile.kind {
            TileKind::Entries => {
                let entries = self
                    .store
                    .log_entries(start, start + u64::from(tile.width))
                    .await?;
                let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
                for e in entries {
                    let len = u16::try_from(e.len())
                        .map_err(|_| StoreError::Internal("a log entry above 64 KiB".into()))?;
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&e);
                }
                Ok(Some(out))
            }
            TileKind::Hashes(_) => {
                let hashes = self.store.log_hashes(tile.stored_hash_indexes()).await?;
                Ok(Some(hashes.iter().flat_map(|h| h.0).collect()))
            }
        }
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, String> {
        let plan = merkle::inclusion_plan(index, size)?;
        self.resolve(&plan).await
    }

    /// The consistency proof from the tree of `old` leaves to the tree of `new` leaves.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, String> {
        let plan = merkle::consistency_plan(old, new)?;
        self.resolve(&plan).await
    }

    async fn resolve(&self, plan: &merkle::ProofPlan) -> Result<Vec<Hash>, String> {
        let hashes = self
            .store
            .log_hashes(merkle::plan_indexes(plan))
            .await
            .map_err(|e| e.to_string())?;
        merkle::fold_plan(plan, &hashes)
            .ok_or_else(|| "the stored hashes do not fit the proof".into())
    }
}

/// Loads the log's signing key from `path`, or creates it (mode 0600) on first start.
/// The key never enters the database. A key file readable by others is refused.
pub fn load_or_create_key(path: &Path, origin: &str) -> Result<Signer, String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "the audit key file {shown} is readable by others (mode {:o}): chmod 600 it",
                    meta.permissions().mode() & 0o777
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the audit key file {shown}: {e}"))?;
            let signer = Signer::parse(text.trim())
                .map_err(|e| format!("the audit key file {shown} holds no signing key: {e}"))?;
            if signer.name() != origin {
                return Err(format!(
                    "the audit key file {shown} is the key of the log `{}`, not of `{origin}` (--audit-origin)",
                    signer.name()
                ));
            }
            Ok(signer)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = Signer::generate(origin)
                .map_err(|e| format!("`{origin}` cannot name a log (--audit-origin): {e}"))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot create the audit key file {shown}: {e}"))?;
            f.write_all(format!("{}\n", signer.to_private_key_string()).as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("cannot write the audit key file {shown}: {e}"))?;
            tracing::info!("created the audit log's signing key in {shown}");
            Ok(signer)
        }
        Err(e) => Err(format!("cannot read the audit key file {shown}: {e}")),
    }
}

/// Resolves once `stop` is true (at once if it already is): for the background tasks'
/// `select!`, where a stop seen earlier must not be waited for again.
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
