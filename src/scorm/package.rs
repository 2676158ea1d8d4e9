//! Reading an uploaded package: a zip archive held in memory.
//!
//! Nothing in the archive is trusted: names are normalized and refused when they could
//! escape the package folder, symbolic links are refused, and sizes are counted while
//! inflating (the sizes the archive declares are never believed), so a zip bomb stops at
//! the first limit it crosses instead of filling memory.
use std::collections::HashSet;
use std::io::{Cursor, Read};

use serde::Serialize;

use super::manifest::{self, PackageManifest, CMI5_XML, IMSMANIFEST};
use super::ScormError;

/// Limits applied while reading a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PackageLimits {
    /// Entries in the archive (directories included).
    pub max_files: usize,
    /// Inflated bytes of one entry.
    pub max_file_size: u64,
    /// Inflated bytes of all entries together.
    pub max_total_size: u64,
    /// Inflated over compressed bytes, for one entry (checked once it passes
    /// `ratio_floor` bytes: tiny files compress arbitrarily well and are harmless).
    pub max_ratio: u64,
    /// Inflated bytes of all entries over the archive's size.
    pub max_total_ratio: u64,
    /// Inflated bytes below which the ratios are not checked.
    pub ratio_floor: u64,
}

impl Default for PackageLimits {
    fn default() -> Self {
        PackageLimits {
            max_files: 10_000,
            max_file_size: 200 * 1024 * 1024,
            max_total_size: 1024 * 1024 * 1024,
            max_ratio: 100,
            max_total_ratio: 100,
            ratio_floor: 1024 * 1024,
        }
    }
}

/// One file of a package, its path relative to the folder holding the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub path: String,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// A package read from a zip.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    /// The folder prefix stripped from every entry (`""`, or `"name/"` when the whole
    /// package sits in one top folder).
    pub root: String,
    /// `imsmanifest.xml` or `cmi5.xml`.
    pub manifest_file: &'static str,
    pub manifest: PackageManifest,
    /// Every file (directories left out) in archive order.
    pub files: Vec<PackageFile>,
    /// Inflated bytes of all files.
    pub total_size: u64,
    /// Relative launch URLs that name no file of the package (reported, not refused:
    /// authoring tools sometimes launch through a redirect the server resolves).
    pub missing_launch_files: Vec<String>,
}

impl Package {
    /// The file at `path` (relative to the manifest's folder).
    pub fn file(&self, path: &str) -> Option<&PackageFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Entries that archivers add beside the content and that are never part of a package.
fn is_archiver_litter(path: &str) -> bool {
    path.starts_with("__MACOSX/")
        || path == "__MACOSX"
        || path.rsplit('/').next().is_some_and(|n| n == ".DS_Store")
}

/// Normalizes a zip entry name to a relative `/`-separated path, or refuses it.
///
/// Refused: backslashes (a Windows separator some servers honour), absolute paths, drive
/// letters, `..` components, NUL and other control characters. `.` components and repeated
/// slashes are dropped. A trailing `/` (directory entry) is kept.
pub fn normalize_entry_path(name: &str) -> Result<String, ScormError> {
    let unsafe_path = |reason: &str| ScormError::UnsafePath {
        path: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(unsafe_path("the name is empty"));
    }
    if name.contains('\\') {
        return Err(unsafe_path("it contains a backslash"));
    }
    if name.chars().any(char::is_control) {
        return Err(unsafe_path("it contains a control character"));
    }
    if name.starts_with('/') {
        return Err(unsafe_path("it is absolute"));
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(unsafe_path("it starts with a drive letter"));
    }
    let is_dir = name.ends_with('/');
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path("it contains a \"..\" component")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(unsafe_path("it names no file"));
    }
    let mut path = parts.join("/");
    if is_dir {
        path.push('/');
    }
    Ok(path)
}

/// A content type from the file extension (what a browser needs to run the content).
pub fn content_type_for(path: &str) -> &'static str {
    let ext = path
        .rsplit('/')
        .next()
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "xhtml" => "application/xhtml+xml",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "xml" | "xsd" | "dtd" => "application/xml",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv",
        "vtt" => "text/vtt",
        "srt" => "application/x-subrip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "ogv" => "video/ogg",
        "mov" => "video/quicktime",
        "pdf" => "application/pdf",
        "swf" => "application/x-shockwave-flash",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "wasm" => "application/wasm",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Unix `st_mode` file type bits, from the entry's external attributes.
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

/// Reads a package from the bytes of a zip archive.
pub fn read_package(bytes: &[u8], limits: &PackageLimits) -> Result<Package, ScormError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ScormError::NotAZip {
            detail: e.to_string(),
        })?;
    if archive.len() > limits.max_files {
        return Err(ScormError::TooManyFiles {
            count: archive.len(),
            limit: limits.max_files,
        });
    }
    if archive.has_duplicate_names() {
        // The archive keeps the last of identical names; find which to name it.
        let mut seen = HashSet::new();
        let dup = archive
            .file_names()
            .filter_map(Result::ok)
            .find(|n| !seen.insert(n.to_string()))
            .map(|n| n.to_string())
            .unwrap_or_default();
        return Err(ScormError::DuplicateEntry { path: dup });
    }

    let archive_len = u64::try_from(bytes.len()).unwrap_or(u64::MAX).max(1);
    let mut total: u64 = 0;
    let mut seen = HashSet::new();
    let mut files: Vec<PackageFile> = Vec::new();
    for index in 0..archive.len() {
        let listed_name = archive
            .name_for_index(index)
            .and_then(Result::ok)
            .map(|n| n.into_owned())
            .unwrap_or_else(|| format!("entry #{index}"));
        let mut entry = archive.by_index(index).map_err(|e| match e {
            zip::result::ZipError::UnsupportedArchive(what)
                if what.to_ascii_lowercase().contains("compression") =>
            {
                ScormError::UnsupportedCompression {
                    path: listed_name.clone(),
                    method: what.to_string(),
                }
            }
            other => ScormError::CorruptEntry {
                path: listed_name.clone(),
                detail: other.to_string(),
            },
        })?;
        // A name that is not UTF-8 (nor flagged CP437) is read lossily, then checked.
        let raw_name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(entry.name_raw()).into_owned());
        let path = normalize_entry_path(&raw_name)?;
        let symlink = entry
            .unix_mode()
            .is_some_and(|mode| mode & S_IFMT == S_IFLNK);
        if symlink || entry.is_symlink() {
            return Err(ScormError::SymlinkInPackage { path: raw_name });
        }
        if !seen.insert(path.trim_end_matches('/').to_string()) {
            return Err(ScormError::DuplicateEntry { path: raw_name });
        }
        if path.ends_with('/') || entry.is_dir() || is_archiver_litter(&path) {
            continue;
        }
        match entry.compression() {
            zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated => {}
            other => {
                return Err(ScormError::UnsupportedCompression {
                    path: raw_name,
                    method: format!("{other:?}"),
                })
            }
        }
        let compressed = entry.compressed_size().max(1);
        let mut data = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buf).map_err(|e| ScormError::CorruptEntry {
                path: raw_name.clone(),
                detail: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            let n64 = u64::try_from(n).unwrap_or(u64::MAX);
            let size = u64::try_from(data.len()).unwrap_or(u64::MAX) + n64;
            total = total.saturating_add(n64);
            if size > limits.max_file_size {
                return Err(ScormError::FileTooLarge {
                    path: raw_name,
                    limit: limits.max_file_size,
                });
            }
            if total > limits.max_total_size {
                return Err(ScormError::PackageTooLarge {
                    path: raw_name,
                    limit: limits.max_total_size,
                });
            }
            if size > limits.ratio_floor && size > compressed.saturating_mul(limits.max_ratio) {
                return Err(ScormError::CompressionRatio {
                    path: Some(raw_name),
                    compressed,
                    inflated: size,
                    limit: limits.max_ratio,
                });
            }
            if total > limits.ratio_floor
                && total > archive_len.saturating_mul(limits.max_total_ratio)
            {
                return Err(ScormError::CompressionRatio {
                    path: None,
                    compressed: archive_len,
                    inflated: total,
                    limit: limits.max_total_ratio,
                });
            }
            data.extend_from_slice(&buf[..n]);
        }
        files.push(PackageFile {
            content_type: content_type_for(&path),
            path,
            bytes: data,
        });
    }

    let (root, manifest_file) = locate_manifest(&files)?;
    let manifest_path = format!("{root}{manifest_file}");
    let manifest_bytes = files
        .iter()
        .find(|f| f.path.eq_ignore_ascii_case(&manifest_path))
        .map(|f| f.bytes.clone())
        .unwrap_or_default();
    let manifest = if manifest_file == CMI5_XML {
        PackageManifest::Cmi5(manifest::parse_cmi5(&manifest_bytes)?)
    } else {
        PackageManifest::Scorm(manifest::parse_imsmanifest(&manifest_bytes)?)
    };
    if !root.is_empty() {
        for f in &mut files {
            if let Some(rest) = f.path.strip_prefix(&root) {
                f.path = rest.to_string();
            }
        }
    }
    let launch_urls: Vec<&str> = match &manifest {
        PackageManifest::Scorm(m) => m
            .launchables
            .iter()
            .map(|l| l.launch_url.as_str())
            .collect(),
        PackageManifest::Cmi5(c) => c.aus.iter().map(|a| a.url.as_str()).collect(),
    };
    let mut missing_launch_files = Vec::new();
    for url in launch_urls {
        if let Some(path) = local_path(url) {
            if !files.iter().any(|f| f.path == path) && !missing_launch_files.contains(&path) {
                missing_launch_files.push(path);
            }
        }
    }
    Ok(Package {
        root,
        manifest_file,
        manifest,
        files,
        total_size: total,
        missing_launch_files,
    })
}

/// The package path a relative launch URL names (query and fragment dropped, percent
/// escapes decoded), `None` for an absolute URL.
fn local_path(url: &str) -> Option<String> {
    if url.contains("://") || url.starts_with("//") {
        return None;
    }
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let path = percent_encoding::percent_decode_str(&url[..end])
        .decode_utf8_lossy()
        .to_string();
    normalize_entry_path(&path).ok()
}

/// Finds the manifest: `cmi5.xml` or `imsmanifest.xml` at the root (cmi5 preferred when
/// both are there: it is the xAPI-native description), else in the single top folder that
/// holds every file.
fn locate_manifest(files: &[PackageFile]) -> Result<(String, &'static str), ScormError> {
    let at = |prefix: &str, name: &str| {
        files.iter().any(|f| {
            f.path.len() == prefix.len() + name.len()
                && f.path.starts_with(prefix)
                && f.path[prefix.len()..].eq_ignore_ascii_case(name)
        })
    };
    for name in [CMI5_XML, IMSMANIFEST] {
        if at("", name) {
            return Ok((String::new(), name));
        }
    }
    let tops: HashSet<&str> = files
        .iter()
        .map(|f| f.path.split_once('/').map_or("", |(top, _)| top))
        .collect();
    if tops.len() == 1 {
        if let Some(top) = tops.iter().next().filter(|t| !t.is_empty()) {
            let prefix = format!("{top}/");
            for name in [CMI5_XML, IMSMANIFEST] {
                if at(&prefix, name) {
                    return Ok((prefix, name));
                }
            }
        }
    }
    let found = files
        .iter()
        .filter(|f| {
            let name = f.path.rsplit('/').next().unwrap_or_default();
            name.eq_ignore_ascii_case(IMSMANIFEST) || name.eq_ignore_ascii_case(CMI5_XML)
        })
        .map(|f| f.path.clone())
        .take(5)
        .collect();
    Err(ScormError::MissingManifest { found })
}

#[cfg(test)]
#[path = "package_tests.rs"]
mod tests;
