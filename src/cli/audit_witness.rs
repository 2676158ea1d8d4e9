//! `karmayogi-lrs audit witness`: a c2sp.org/tlog-witness witness. It serves
//! `POST /add-checkpoint` (checks in `audit::witness`) and the monitoring API
//! `GET /<origin hash>/checkpoint`, and cosigns with an Ed25519 `cosignature/v1` key kept
//! in a file it creates (mode 0600) at first start.
//!
//! Per log origin it records the latest cosigned checkpoint in `<state>/<origin hash>.json`
//! (written to a temporary file and renamed, mode 0600) before answering; requests for one
//! origin are serialised so that two cannot both pass the old-size check (the spec's
//! rollback race).
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Args;

use crate::audit::note::{self, CosignatureSigner, Verifier};
use crate::audit::witness::{self, Cosigned, Refusal};

#[derive(Args, Debug)]
pub struct WitnessArgs {
    /// Address to listen on, e.g. `127.0.0.1:7380` (port 0: any free port).
    #[arg(long)]
    pub listen: String,
    /// The witness's private key file; created (mode 0600) with a new key if absent.
    #[arg(long)]
    pub key: PathBuf,
    /// The witness's name, the name of its key (a schema-less URL: `witness.example/w1`).
    #[arg(long)]
    pub name: String,
    /// A log to witness: its vkey, or a file holding it. Repeat for each log; the key's
    /// name is the log's origin.
    #[arg(long = "log", required = true)]
    pub logs: Vec<String>,
    /// Directory of the records of the latest cosigned checkpoint of each log.
    #[arg(long)]
    pub state: PathBuf,
}

/// Exit status of a usage or configuration error.
const USAGE: u8 = 2;

pub async fn run(args: WitnessArgs) -> ExitCode {
    let witness = match setup(&args) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("audit witness: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let vkey = witness.signer.verifier().to_string();
    let data = web::Data::new(witness);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(witness::MAX_REQUEST_SIZE))
            .route("/add-checkpoint", web::post().to(add_checkpoint))
            .route(
                "/{origin_hash}/checkpoint",
                web::get().to(latest_checkpoint),
            )
    })
    .workers(2)
    .shutdown_timeout(5);
    let server = match server.bind(&args.listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("audit witness: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(USAGE);
        }
    };
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    println!("vkey {vkey}");
    let _ = std::io::stdout().flush();
    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit witness: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Witness {
    signer: CosignatureSigner,
    /// Origin → the log's keys.
    logs: HashMap<String, Vec<Verifier>>,
    dir: PathBuf,
    /// Origin → the lock serialising its read-check-write.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn setup(args: &WitnessArgs) -> Result<Witness, String> {
    if !note::is_valid_key_name(&args.name) {
        return Err(format!("`{}` is not a valid key name", args.name));
    }
    let signer = load_or_create_key(&args.key, &args.name)?;
    let mut logs: HashMap<String, Vec<Verifier>> = HashMap::new();
    for l in &args.logs {
        let v = read_vkey(l)?;
        if v.alg() != note::ALG_ED25519 {
            return Err(format!("--log {l}: a log key has signature type 0x01"));
        }
        // A key given twice would make its signatures ambiguous to `note::open`.
        let keys = logs.entry(v.name().to_string()).or_default();
        if !keys.contains(&v) {
            keys.push(v);
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.state)
        .map_err(|e| format!("cannot create {}: {e}", args.state.display()))?;
    Ok(Witness {
        signer,
        logs,
        dir: args.state.clone(),
        locks: Default::default(),
    })
}

/// A vkey given on the command line, or the first line of the file it names.
pub(crate) fn read_vkey(arg: &str) -> Result<Verifier, String> {
    if let Ok(v) = Verifier::parse(arg.trim()) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(arg)
        .map_err(|e| format!("`{arg}` is neither a vkey nor a readable file: {e}"))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    Verifier::parse(line).map_err(|e| format!("{arg}: {e}"))
}

/// Reads the witness key, or creates it: mode 0600, never printed. A key readable by
/// others, or named otherwise than `--name`, is refused.
fn load_or_create_key(path: &Path, name: &str) -> Result<CosignatureSigner, String> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "{} is readable by others; make it mode 0600",
                    path.display()
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let signer = CosignatureSigner::parse(text.trim())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if signer.name() != name {
                return Err(format!(
                    "{} holds the key of `{}`, not `{name}`",
                    path.display(),
                    signer.name()
                ));
            }
            Ok(signer)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = CosignatureSigner::generate(name).map_err(|e| e.to_string())?;
            let text = format!("{}\n", signer.to_private_key_string());
            // Written aside then linked: atomic, and never replaces a key created meanwhile.
            let tmp = write_temp(path, text.as_bytes())?;
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            linked.map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            Ok(signer)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes `bytes` to a new mode-0600 temporary file beside `path`, synced; returns its path.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let file_name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file path", path.display()))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", tmp.display()));
    }
    Ok(tmp)
}

/// Replaces `path` with `bytes` atomically (temporary file, then rename), mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = write_temp(path, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot replace {}: {e}", path.display()));
    }
    Ok(())
}

impl Witness {
    fn record_path(&self, origin_hash: &str) -> PathBuf {
        self.dir.join(format!("{origin_hash}.json"))
    }

    fn read_record(&self, origin_hash: &str) -> Result<Option<Cosigned>, String> {
        let path = self.record_path(origin_hash);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn lock_for(&self, origin: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(origin.to_string()).or_default().clone()
    }
}

fn refused(r: &Refusal) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(r.status())
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status)
        .content_type(r.content_type())
        .body(r.body())
}

fn internal(e: String) -> HttpResponse {
    eprintln!("audit witness: {e}");
    HttpResponse::InternalServerError()
        .content_type("text/plain; charset=utf-8")
        .body("internal error\n")
}

async fn add_checkpoint(body: web::Bytes, w: web::Data<Witness>) -> HttpResponse {
    let req = match witness::parse_request(&body) {
        Ok(r) => r,
        Err(r) => return refused(&r),
    };
    let origin = match witness::origin_of(&req) {
        Ok(o) => o,
        Err(r) => return refused(&r),
    };
    let Some(keys) = w.logs.get(&origin) else {
        return refused(&Refusal::UnknownOrigin(origin));
    };
    let lock = w.lock_for(&origin);
    let _guard = lock.lock().await;
    let origin_hash = witness::origin_hash(&origin);
    let known = match w.read_record(&origin_hash) {
        Ok(k) => k,
        Err(e) => return internal(e),
    };
    let accepted = match witness::check(&req, keys, known.as_ref()) {
        Ok(a) => a,
        Err(r) => {
            // A refused checkpoint with a valid signature may be evidence of misbehaviour.
            if matches!(r, Refusal::Unprocessable(_)) {
                eprintln!("audit witness: {origin}: refused: {r}");
            }
            return refused(&r);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (line, record) = match witness::respond(&accepted, &w.signer, now) {
        Ok(x) => x,
        Err(e) => return internal(e.to_string()),
    };
    // Persisted before answering: a cosignature is never given for a state not recorded.
    let json = match serde_json::to_vec_pretty(&record) {
        Ok(j) => j,
        Err(e) => return internal(e.to_string()),
    };
    if let Err(e) = write_atomic(&w.record_path(&origin_hash), &json) {
        return internal(e);
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(line)
}

async fn latest_checkpoint(path: web::Path<String>, w: web::Data<Witness>) -> HttpResponse {
    let h = path.into_inner();
    let not_found = || HttpResponse::NotFound().finish();
    if h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return not_found();
    }
    match w.read_record(&h) {
        Ok(Some(r)) if !r.checkpoint.is_empty() => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(r.checkpoint),
        Ok(_) => not_found(),
        Err(e) => internal(e),
    }
}
