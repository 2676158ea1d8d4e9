//! `karmayogi-lrs export`: a department subtree's change feed (docs/FEED.md), from a cursor,
//! into an NDJSON file (gzip when it ends in `.gz`), read from the store page by page so
//! memory stays bounded. Every line carries its cursor: `--resume` continues a file from
//! its last complete line.
use super::progress::Progress;
use crate::departments::Department;
use crate::feed;
use crate::store;
use clap::Args;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Leaves per store read.
const PAGE: usize = 4_096;

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: crate::config::StoreArg,
    /// The file to write (`.gz`: gzip).
    #[arg(long)]
    pub out: PathBuf,
    /// The department whose subtree is exported (default: the root, everything).
    #[arg(long, default_value = "/")]
    pub department: String,
    /// Start after this cursor (a feed or export cursor of the same department).
    #[arg(long, conflicts_with = "resume")]
    pub cursor: Option<String>,
    /// Continue `--out` from its last complete line.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// The last complete line's cursor of an export file, and (plain files) the length of its
/// complete lines.
fn last_cursor(path: &Path) -> Result<(Option<String>, u64), String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let reader: Box<dyn Read> = if gz(path) {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::new(reader);
    let (mut cursor, mut complete) = (None, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A gzip file cut short ends in an error: what came before it is kept.
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.last() != Some(&b'\n') => break,
            Ok(n) => {
                let v: serde_json::Value = serde_json::from_slice(&line)
                    .map_err(|e| format!("{} is not an export file: {e}", path.display()))?;
                if let Some(c) = v.get("cursor").and_then(|c| c.as_str()) {
                    cursor = Some(c.to_owned());
                }
                complete += n as u64;
            }
        }
    }
    Ok((cursor, complete))
}

/// Opens `--out` for writing from where the export starts; answers the start cursor.
fn open_out(args: &ExportArgs) -> Result<(Out, Option<String>), String> {
    let path = &args.out;
    let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
    if !args.resume {
        if exists {
            return Err(format!(
                "{} exists: --resume continues it, or remove it first",
                path.display()
            ));
        }
        let f = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        return Ok((wrap(f, gz(path)), args.cursor.clone()));
    }
    if !exists {
        let f = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        return Ok((wrap(f, gz(path)), None));
    }
    let (cursor, complete) = last_cursor(path)?;
    if gz(path) {
        // A gzip stream cut short cannot be appended to: its complete lines are written
        // again into a new file, which then replaces it.
        let tmp = path.with_extension("gz.partial");
        {
            let src = File::open(path).map_err(|e| e.to_string())?;
            let mut lines = BufReader::new(MultiGzDecoder::new(BufReader::new(src)));
            let mut out = GzEncoder::new(
                BufWriter::new(File::create(&tmp).map_err(|e| e.to_string())?),
                Compression::fast(),
            );
            let mut left = complete;
            let mut buf = vec![0u8; 1 << 16];
            while left > 0 {
                let n = lines
                    .read(&mut buf[..(left.min(1 << 16)) as usize])
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                left -= n as u64;
            }
            out.finish()
                .and_then(|mut w| w.flush())
                .map_err(|e| e.to_string())?;
        }
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
        let f = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| e.to_string())?;
        return Ok((wrap(f, true), cursor));
    }
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    // Drop a line cut short, then append.
    f.set_len(complete).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    Ok((wrap(f, false), cursor))
}

/// The output file, gzip or not.
pub enum Out {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Out {
    /// Writes everything out, the gzip trailer included.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Out::Plain(mut w) => w.flush(),
            Out::Gzip(g) => g.finish()?.flush(),
        }
    }
}

impl Write for Out {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::Plain(w) => w.write(b),
            Out::Gzip(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::Plain(w) => w.flush(),
            Out::Gzip(w) => w.flush(),
        }
    }
}

fn wrap(f: File, gzip: bool) -> Out {
    let w = BufWriter::with_capacity(1 << 20, f);
    if gzip {
        // A new gzip member (members concatenate into one valid stream).
        Out::Gzip(GzEncoder::new(w, Compression::fast()))
    } else {
        Out::Plain(w)
    }
}

pub async fn run(args: ExportArgs) -> Result<(), String> {
    let department = Department::parse(&args.department)?;
    let (mut out, start) = open_out(&args)?;
    let store = store::open(&args.store.store).await?;
    let result = export(&*store, &department, start.as_deref(), &mut out, args.quiet).await;
    store.close().await;
    let (events, cursor, secs) = result?;
    out.finish()
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    eprintln!(
        "exported {events} events of {} to {} in {secs:.1} s ({:.0}/s); resume from cursor {cursor}",
        args.department,
        args.out.display(),
        events as f64 / secs.max(1e-6)
    );
    Ok(())
}

async fn export(
    store: &dyn store::Store,
    department: &Department,
    cursor: Option<&str>,
    out: &mut Out,
    quiet: bool,
) -> Result<(u64, String, f64), String> {
    let size = store.log_state().await.map_err(|e| e.to_string())?.size;
    let mut from = match cursor {
        None => 0,
        Some(c) => feed::position(c, department, size).map_err(|e| e.to_string())?,
    };
    let progress = Progress::new(size.saturating_sub(from), "leaves", quiet);
    let first = from;
    let mut events = 0u64;
    let mut buf = Vec::with_capacity(PAGE * 1_400);
    while from < size {
        let page = store
            .feed(department, from, size, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        buf.clear();
        for item in &page.items {
            feed::line(item, department, &mut buf);
        }
        out.write_all(&buf)
            .map_err(|e| format!("cannot write: {e}"))?;
        events += page.items.len() as u64;
        from = page.next.max(from + 1).min(size);
        progress.update(from - first, events);
    }
    buf.clear();
    feed::end_line(from, department, size, &mut buf);
    out.write_all(&buf)
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write: {e}"))?;
    progress.finish();
    Ok((events, feed::cursor(from, department), progress.seconds()))
}
