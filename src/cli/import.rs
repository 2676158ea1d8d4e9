//! `karmayogi-lrs import`: statements from a file into a department, through the same
//! preparation and store as `POST /xapi/statements` (docs/FEED.md, Export and import).
//!
//! The file is NDJSON (one statement per line, or the lines of an export) or a JSON array
//! of statements, gzip or not. Ids are kept (a statement without one gets a UUID derived
//! from its content, so a re-run names it alike); `stored` and `authority` are this LRS's,
//! the originals kept under the `imported` context extension. Statements already stored,
//! identical, are no-ops, so re-running an import (all of it, or after a crash) stores
//! nothing twice. Lines that are not valid statements are reported with their line
//! numbers and written, with the reason, to a rejects file.
use super::progress::Progress;
use crate::departments::Department;
use crate::ingest::{self, Writer};
use crate::store::clock::StoredClock;
use crate::store::{self, DynStore};
use crate::xapi::statement::Receipt;
use crate::xapi::XapiVersion;
use clap::Args;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The context extension that keeps an imported statement's original `stored` and
/// `authority`.
pub const IMPORTED_EXTENSION: &str = "https://karmayogi-lrs.local/xapi/extensions/imported";
/// Names the UUIDs given to statements imported without an id (UUID v5 of their
/// canonical JSON).
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b61726d_6179_6f67_6901_696d706f7274);

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: crate::config::StoreArg,
    /// NDJSON or a JSON array of statements; gzip is recognised by its content.
    pub file: PathBuf,
    /// The department the statements are stored in (default: the root).
    #[arg(long, default_value = "/")]
    pub department: String,
    /// Where rejected lines go, one JSON object each (default: FILE.rejects.ndjson).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Statements per atomic write.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub batch: u16,
    /// The xAPI version whose rules check statements that do not name theirs.
    #[arg(long, default_value = "2.0.0")]
    pub xapi_version: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// One statement read from the file, or why the line is not one.
struct Item {
    /// Line number (NDJSON) or element number (JSON array), from 1.
    at: u64,
    value: Result<Value, String>,
}

/// Counts bytes read from the file (for progress).
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open(path: &Path, read: Arc<AtomicU64>) -> Result<Box<dyn BufRead + Send>, String> {
    let mut file = BufReader::new(Counted {
        inner: File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        read,
    });
    let gzip = file
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(file)
    })
}

/// Whether the content starts with `[` (a JSON array) after white space.
fn is_array(r: &mut dyn BufRead) -> Result<bool, String> {
    loop {
        let buf = r.fill_buf().map_err(|e| e.to_string())?;
        if buf.is_empty() {
            return Ok(false);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let first = buf[i];
                r.consume(i);
                return Ok(first == b'[');
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

/// Cursors of statements an export says were erased after it wrote them: those are not
/// imported.
fn erased_cursors(r: &mut dyn BufRead) -> HashSet<String> {
    let mut out = HashSet::new();
    for line in r.lines().map_while(Result::ok) {
        if !line.contains("\"erased\"") {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["event"] == "erased" {
                if let Some(cs) = v["cursors"].as_array() {
                    out.extend(cs.iter().filter_map(|c| c.as_str().map(str::to_owned)));
                }
            }
        }
    }
    out
}

/// Reads the file on its own thread, sending batches of items.
fn read_items(
    path: PathBuf,
    batch: usize,
    read: Arc<AtomicU64>,
    tx: tokio::sync::mpsc::Sender<Vec<Item>>,
) -> Result<(), String> {
    let mut r = open(&path, Arc::new(AtomicU64::new(0)))?;
    if is_array(&mut *r)? {
        let mut r = open(&path, read)?;
        let mut de = serde_json::Deserializer::from_reader(&mut r);
        let visitor = ArrayVisitor {
            batch,
            tx: &tx,
            pending: Vec::with_capacity(batch),
        };
        return de
            .deserialize_seq(visitor)
            .map_err(|e| format!("{} is not a JSON array of statements: {e}", path.display()));
    }
    let erased = erased_cursors(&mut *r);
    let r = open(&path, read)?;
    let mut pending = Vec::with_capacity(batch);
    for (i, line) in r.split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let at = i as u64 + 1;
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let value = match serde_json::from_str::<Value>(&text) {
            Err(e) => Err(format!("not JSON: {e}")),
            Ok(v) => match v.get("event").and_then(Value::as_str) {
                // The lines of an export: statements and voiding statements are stored,
                // the rest (erasures, end lines) only say where the export was.
                Some("statement" | "voided") => {
                    if v["cursor"].as_str().is_some_and(|c| erased.contains(c)) {
                        continue;
                    }
                    Ok(v["statement"].clone())
                }
                Some(_) => continue,
                None => Ok(v),
            },
        };
        pending.push(Item { at, value });
        if pending.len() == batch {
            let full = std::mem::replace(&mut pending, Vec::with_capacity(batch));
            if tx.blocking_send(full).is_err() {
                return Ok(());
            }
        }
    }
    if !pending.is_empty() {
        let _ = tx.blocking_send(pending);
    }
    Ok(())
}

/// Streams the elements of a JSON array without holding the array.
struct ArrayVisitor<'a> {
    batch: usize,
    tx: &'a tokio::sync::mpsc::Sender<Vec<Item>>,
    pending: Vec<Item>,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of statements")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut at = 0u64;
        while let Some(v) = seq.next_element::<Value>()? {
            at += 1;
            self.pending.push(Item { at, value: Ok(v) });
            if self.pending.len() == self.batch {
                let full = std::mem::replace(&mut self.pending, Vec::with_capacity(self.batch));
                if self.tx.blocking_send(full).is_err() {
                    return Ok(());
                }
            }
        }
        if !self.pending.is_empty() {
            let _ = self.tx.blocking_send(std::mem::take(&mut self.pending));
        }
        Ok(())
    }
}

/// The statement as this LRS stores it on import: the original `stored` and `authority`
/// moved into the `imported` context extension, an id derived from the content if it
/// has none.
pub fn for_import(mut statement: Value) -> Result<Value, String> {
    let obj = statement
        .as_object_mut()
        .ok_or("a statement must be a JSON object")?;
    let mut original = serde_json::Map::new();
    for k in ["stored", "authority"] {
        if let Some(v) = obj.remove(k) {
            original.insert(k.to_owned(), v);
        }
    }
    if !original.is_empty() {
        let context = obj
            .entry("context")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("`context` must be an object")?;
        let ext = context
            .entry("extensions")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("`context.extensions` must be an object")?;
        ext.insert(IMPORTED_EXTENSION.to_owned(), Value::Object(original));
    }
    if !obj.contains_key("id") {
        let canonical = crate::audit::leaf::canonicalize(&statement).map_err(|e| e.to_string())?;
        let id = uuid::Uuid::new_v5(&ID_NAMESPACE, &canonical).to_string();
        if let Some(o) = statement.as_object_mut() {
            o.insert("id".into(), Value::String(id));
        }
    }
    Ok(statement)
}

fn version_of(statement: &Value, default: XapiVersion) -> XapiVersion {
    match statement.get("version").and_then(Value::as_str) {
        Some(v) if v.starts_with("1.0") => XapiVersion::V1_0,
        Some(v) if v.starts_with("2.0") => XapiVersion::V2_0,
        _ => default,
    }
}

#[derive(Default)]
struct Tally {
    stored: u64,
    already: u64,
    rejected: Vec<u64>,
}

pub async fn run(args: ImportArgs) -> ExitCode {
    match import(args).await {
        Ok(t) if t.rejected.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn import(args: ImportArgs) -> Result<Tally, String> {
    let department = Department::parse(&args.department)?;
    let default_version = match args.xapi_version.as_str() {
        v if v.starts_with("1.0") => XapiVersion::V1_0,
        v if v.starts_with("2.0") => XapiVersion::V2_0,
        v => return Err(format!("--xapi-version {v}: expected 1.0.3 or 2.0.0")),
    };
    let _lock = store::exclusive(&args.store.store)?;
    let total = std::fs::metadata(&args.file)
        .map_err(|e| format!("cannot open {}: {e}", args.file.display()))?
        .len();
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        let mut p = args.file.clone().into_os_string();
        p.push(".rejects.ndjson");
        PathBuf::from(p)
    });
    // Past the server's transaction timeout: a run right after a killed one meets the
    // killed one's open transaction until the server expires it.
    let given = args.store.options();
    let options = store::StoreOptions {
        conflict_retry: given
            .conflict_retry
            .max(std::time::Duration::from_secs(120)),
        ..given
    };
    let store = store::open_with(&args.store.store, &options).await?;
    if !store
        .department_exists(&department)
        .await
        .map_err(|e| e.to_string())?
    {
        store.close().await;
        return Err(format!("no department {department}"));
    }
    let read = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let reader = {
        let (path, read) = (args.file.clone(), read.clone());
        let batch = usize::from(args.batch);
        std::thread::spawn(move || read_items(path, batch, read, tx))
    };
    let progress = Progress::new(total, "bytes", args.quiet);
    let result = store_all(
        &store,
        &department,
        default_version,
        rx,
        &rejects_path,
        &progress,
        &read,
    )
    .await;
    store.close().await;
    progress.finish();
    let read_result = reader
        .join()
        .map_err(|_| "the file reader failed".to_owned())?;
    let tally = result?;
    read_result?;
    let secs = progress.seconds();
    eprintln!(
        "imported {} of {}: {} stored, {} already there, {} rejected, in {secs:.1} s ({:.0} statements/s)",
        args.file.display(),
        department,
        tally.stored,
        tally.already,
        tally.rejected.len(),
        (tally.stored + tally.already) as f64 / secs.max(1e-6)
    );
    if !tally.rejected.is_empty() {
        let shown: Vec<String> = tally.rejected.iter().take(20).map(u64::to_string).collect();
        eprintln!(
            "rejected lines {}{}; each with its reason in {}",
            shown.join(", "),
            if tally.rejected.len() > 20 {
                ", …"
            } else {
                ""
            },
            rejects_path.display()
        );
    } else {
        let _ = std::fs::remove_file(&rejects_path);
    }
    Ok(tally)
}

async fn store_all(
    store: &DynStore,
    department: &Department,
    default_version: XapiVersion,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Item>>,
    rejects_path: &Path,
    progress: &Progress,
    read: &AtomicU64,
) -> Result<Tally, String> {
    let authority = json!({
        "objectType": "Agent",
        "account": {"homePage": "https://karmayogi-lrs.local/command-line", "name": "import"},
    });
    let clock = StoredClock::default();
    let mut rejects = BufWriter::new(
        File::create(rejects_path)
            .map_err(|e| format!("cannot create {}: {e}", rejects_path.display()))?,
    );
    let mut tally = Tally::default();
    let mut reject = |tally: &mut Tally,
                      at: u64,
                      error: Value,
                      statement: Option<&Value>|
     -> Result<(), String> {
        tally.rejected.push(at);
        let line = json!({"line": at, "error": error, "statement": statement});
        writeln!(rejects, "{line}").map_err(|e| e.to_string())
    };
    let mut stored = 0u64;
    let mut already = 0u64;
    while let Some(items) = rx.recv().await {
        // Statements go in runs of one xAPI version (each run checked by its rules).
        let mut runs: Vec<(XapiVersion, Vec<(u64, Value)>)> = Vec::new();
        for item in items {
            match item.value.and_then(for_import) {
                Err(e) => reject(&mut tally, item.at, json!({ "message": e }), None)?,
                Ok(s) => {
                    let v = version_of(&s, default_version);
                    match runs.last_mut() {
                        Some((rv, run)) if *rv == v => run.push((item.at, s)),
                        _ => runs.push((v, vec![(item.at, s)])),
                    }
                }
            }
        }
        for (version, run) in runs {
            let (ats, list): (Vec<u64>, Vec<Value>) = run.into_iter().unzip();
            let kept = list.clone();
            let writer = Writer {
                store,
                clock: &clock,
                department,
                receipt: Receipt {
                    version,
                    authority: &authority,
                    may_define: true,
                },
            };
            let out = writer
                .store(list, false, Vec::new(), ingest::Mode::Lenient)
                .await
                .map_err(|e| format!("the store failed: {}", e.message))?;
            for (i, e) in &out.rejected {
                reject(&mut tally, ats[*i], e.body()["error"].clone(), kept.get(*i))?;
            }
            already += out.already as u64;
            stored += (out.ids.len() - out.already) as u64;
        }
        progress.update(read.load(Ordering::Relaxed), stored + already);
    }
    rejects.flush().map_err(|e| e.to_string())?;
    tally.stored = stored;
    tally.already = already;
    Ok(tally)
}
