//! `karmayogi-lrs audit monitor URL --vkey VKEY --state DIR [--key K --secret S]`: follows
//! a log. Each pass fetches the checkpoint and the entry bundles of the new leaves
//! (c2sp.org/tlog-tiles), has `audit::monitor` check them, and with a credential opens
//! every new statement leaf through `GET URL/leaf?index=N`. The state (last verified
//! checkpoint, right edge of the tree, erasure bookkeeping) is kept in `DIR/state.json`.
//!
//! Exit status: 0 nothing tampered (erasures are fine), 1 tampered, 2 usage or network
//! error. `--once` makes one pass; otherwise passes repeat every `--interval` seconds until
//! interrupted, and the status says whether any pass found tampering.
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Args;

use super::audit_witness::{read_vkey, write_atomic};
use crate::audit::monitor::{
    self, CheckpointStep, Content, Finding, Monitor, MonitorState, Report,
};
use crate::audit::note;
use crate::audit::tiles::{Tile, TileKind, TILE_WIDTH};

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// The log's URL prefix, e.g. `http://127.0.0.1:8080/audit`.
    pub url: String,
    /// The log's verifier key (vkey), or a file holding it.
    #[arg(long)]
    pub vkey: String,
    /// Directory of the monitor's state (created if absent).
    #[arg(long)]
    pub state: PathBuf,
    /// Key of a credential that may read statements: every new statement leaf is then
    /// opened and recomputed.
    #[arg(long, requires = "secret")]
    pub key: Option<String>,
    /// Secret of that credential.
    #[arg(
        long,
        requires = "key",
        env = "LRS_MONITOR_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
    /// One pass, then exit.
    #[arg(long)]
    pub once: bool,
    /// Seconds between passes.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
    /// Seconds a statement may stay missing (or an erasure incomplete) before it is
    /// reported as tampered: time for the erasure leaf to reach a checkpoint.
    #[arg(long, default_value_t = 0)]
    pub grace: u64,
}

const USAGE: u8 = 2;
const TAMPERED: u8 = 1;
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest entry bundle: 256 entries of at most 65,535 bytes and their length prefixes.
const MAX_BUNDLE: u64 = 256 * (2 + 65_535);

/// Why a pass could not complete.
enum PassError {
    /// Bad configuration (exit 2 at once).
    Usage(String),
    /// The log could not be read (exit 2 with --once; retried otherwise).
    Network(String),
}

/// Why reading entries stopped: an error, or a bundle the log should not have served.
enum Stop {
    Error(PassError),
    Tampered(Finding),
}

struct Ctx {
    url: String,
    agent: ureq::Agent,
    auth: Option<String>,
    grace: u64,
    state_file: PathBuf,
}

pub async fn run(args: MonitorArgs) -> ExitCode {
    let (ctx, monitor) = match setup(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("audit monitor: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let shared = std::sync::Arc::new(ctx);
    let mut monitor = monitor;
    let mut ever_tampered = false;
    let mut last_size = None;
    loop {
        let ctx = shared.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let r = pass(&ctx, &mut monitor);
            (monitor, r)
        })
        .await;
        let (m, result) = match joined {
            Ok(x) => x,
            Err(e) => {
                eprintln!("audit monitor: {e}");
                return ExitCode::from(USAGE);
            }
        };
        monitor = m;
        match result {
            Ok(report) => {
                let tampered = report.tampered() > 0;
                ever_tampered |= tampered;
                // In a loop, an unchanged log with nothing to say stays quiet.
                if args.once
                    || tampered
                    || !report.findings.is_empty()
                    || last_size != Some(report.tree_size)
                {
                    for f in &report.findings {
                        println!("{f}");
                    }
                    println!("{}", report.summary());
                }
                last_size = Some(report.tree_size);
                if args.once {
                    return ExitCode::from(if tampered { TAMPERED } else { 0 });
                }
            }
            Err(PassError::Usage(e)) => {
                eprintln!("audit monitor: {e}");
                return ExitCode::from(USAGE);
            }
            Err(PassError::Network(e)) => {
                eprintln!("audit monitor: {e}");
                if args.once {
                    return ExitCode::from(USAGE);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.interval.max(1))) => {}
            _ = tokio::signal::ctrl_c() => {
                return ExitCode::from(if ever_tampered { TAMPERED } else { 0 });
            }
        }
    }
}

fn setup(args: &MonitorArgs) -> Result<(Ctx, Monitor), String> {
    let verifier = read_vkey(&args.vkey)?;
    if verifier.alg() != note::ALG_ED25519 {
        return Err("the log's vkey must have signature type 0x01".into());
    }
    let url = args.url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{}` is not an http(s) URL", args.url));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.state)
        .map_err(|e| format!("cannot create {}: {e}", args.state.display()))?;
    let state_file = args.state.join("state.json");
    let state = match std::fs::read(&state_file) {
        Ok(b) => serde_json::from_slice::<MonitorState>(&b)
            .map_err(|e| format!("{}: {e}", state_file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => MonitorState::new(verifier.name()),
        Err(e) => return Err(format!("cannot read {}: {e}", state_file.display())),
    };
    let monitor =
        Monitor::new(verifier, state).map_err(|e| format!("{}: {e}", state_file.display()))?;
    let auth = match (&args.key, &args.secret) {
        (Some(k), Some(s)) => Some(format!("Basic {}", STANDARD.encode(format!("{k}:{s}")))),
        _ => None,
    };
    Ok((
        Ctx {
            url,
            agent: ureq::AgentBuilder::new().timeout(TIMEOUT).build(),
            auth,
            grace: args.grace,
            state_file,
        },
        monitor,
    ))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// GETs `path` under the log; `Ok(None)` on 404.
fn get(ctx: &Ctx, path: &str, limit: u64, auth: bool) -> Result<Option<Vec<u8>>, PassError> {
    let url = format!("{}/{path}", ctx.url);
    let mut req = ctx.agent.get(&url);
    if auth {
        if let Some(a) = &ctx.auth {
            req = req.set("Authorization", a);
        }
    }
    match req.call() {
        Ok(resp) => {
            let mut body = Vec::new();
            resp.into_reader()
                .take(limit + 1)
                .read_to_end(&mut body)
                .map_err(|e| PassError::Network(format!("{url}: {e}")))?;
            if body.len() as u64 > limit {
                return Err(PassError::Network(format!("{url}: answer too large")));
            }
            Ok(Some(body))
        }
        Err(ureq::Error::Status(404, _)) => Ok(None),
        Err(ureq::Error::Status(s @ (401 | 403), _)) if auth => Err(PassError::Usage(format!(
            "{url}: {s}: the credential may not read statements"
        ))),
        Err(ureq::Error::Status(s, _)) => Err(PassError::Network(format!("{url}: status {s}"))),
        // The transport error already names the URL.
        Err(ureq::Error::Transport(t)) => Err(PassError::Network(t.to_string())),
    }
}

/// Fetches the entries of leaves `[from, to)`, bundle by bundle: the partial bundle a
/// tree of size `to` has, or the full one if the log has grown past it.
fn fetch_entries(ctx: &Ctx, from: u64, to: u64, mut each: impl FnMut(&[u8])) -> Result<(), Stop> {
    let w = u64::from(TILE_WIDTH);
    if from >= to {
        return Ok(());
    }
    for k in from / w..=(to - 1) / w {
        let width = (to - k * w).min(w) as u16;
        let tile = Tile {
            kind: TileKind::Entries,
            index: k,
            width,
        };
        let mut body = get(ctx, &tile.path(), MAX_BUNDLE, false).map_err(Stop::Error)?;
        if body.is_none() && !tile.is_full() {
            let full = Tile {
                width: TILE_WIDTH,
                ..tile
            };
            body = get(ctx, &full.path(), MAX_BUNDLE, false).map_err(Stop::Error)?;
        }
        let Some(body) = body else {
            return Err(Stop::Error(PassError::Network(format!(
                "{}/{}: not found",
                ctx.url,
                tile.path()
            ))));
        };
        let entries = monitor::parse_entry_bundle(&body).map_err(|e| {
            Stop::Tampered(Finding::Tampered {
                reason: format!("{}: {e}", tile.path()),
                index: None,
            })
        })?;
        if entries.len() < usize::from(width)
            || (entries.len() != usize::from(width) && entries.len() != usize::from(TILE_WIDTH))
        {
            return Err(Stop::Tampered(Finding::Tampered {
                reason: format!(
                    "{} holds {} entries, expected {width}",
                    tile.path(),
                    entries.len()
                ),
                index: None,
            }));
        }
        let skip = (from.max(k * w) - k * w) as usize;
        for e in &entries[skip..usize::from(width)] {
            each(e);
        }
    }
    Ok(())
}

/// One pass: checkpoint, new entries, contents; persists the state when it advanced.
fn pass(ctx: &Ctx, m: &mut Monitor) -> Result<Report, PassError> {
    let now = now();
    let note_bytes = get(ctx, "checkpoint", note::MAX_NOTE_SIZE as u64, false)?
        .ok_or_else(|| PassError::Network(format!("{}/checkpoint: not found", ctx.url)))?;
    let mut report = match m.check_checkpoint(&note_bytes) {
        Err(f) => Report {
            findings: vec![f],
            tree_size: m.state().size,
            ..Report::default()
        },
        Ok(CheckpointStep::Unchanged) => Report {
            tree_size: m.state().size,
            ..Report::default()
        },
        Ok(CheckpointStep::Grow(new)) => {
            let mut batch = m.begin(new, now);
            let from = batch.next_index();
            let to = batch.target_size();
            match fetch_entries(ctx, from, to, |e| batch.push_entry(e)) {
                Ok(()) => {}
                Err(Stop::Error(e)) => return Err(e),
                Err(Stop::Tampered(f)) => {
                    return Ok(Report {
                        findings: vec![f],
                        tree_size: m.state().size,
                        ..Report::default()
                    })
                }
            }
            if ctx.auth.is_some() {
                let leaves: Vec<_> = batch.statement_leaves().collect();
                for (i, logged) in leaves {
                    let content = match get(ctx, &format!("leaf?index={i}"), 64 << 20, true)? {
                        None => Content::Absent,
                        Some(body) => match std::str::from_utf8(&body) {
                            Ok(text) => monitor::check_opening(i, &logged, text),
                            Err(_) => Content::Differs("the answer is not UTF-8".into()),
                        },
                    };
                    batch.record_content(i, content);
                }
            }
            let (report, state) = batch.finish();
            if let Some(state) = state {
                let json = serde_json::to_vec(&state)
                    .map_err(|e| PassError::Usage(format!("cannot encode the state: {e}")))?;
                write_atomic(&ctx.state_file, &json).map_err(PassError::Usage)?;
                m.commit(state);
            }
            report
        }
    };
    report.findings.extend(m.conclude(now, ctx.grace));
    if ctx.grace > 0 {
        for (i, _) in m
            .state()
            .missing
            .iter()
            .filter(|(_, &at)| at.saturating_add(ctx.grace) > now)
        {
            eprintln!("missing: leaf {i} (no erasure leaf names it yet)");
        }
    }
    Ok(report)
}
