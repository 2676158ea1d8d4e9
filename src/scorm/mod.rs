//! SCORM 1.2, SCORM 2004 (2nd–4th edition) and cmi5: the pure part.
//!
//! Nothing here does I/O, reads a clock or draws a random number: bytes, times and ids come
//! in as arguments, so every function is deterministic and testable on its own. The HTTP
//! adapter (`http/scorm.rs`), the store and the browser runtime are built on top.
//!
//! # How an adapter uses it
//!
//! Import (upload of a package):
//! 1. [`package::read_package`]`(bytes, &PackageLimits::default())` unzips in memory with
//!    limits enforced while inflating, refuses unsafe paths and symlinks, finds
//!    `imsmanifest.xml` or `cmi5.xml` (at the root or in one top folder) and parses it into a
//!    [`manifest::PackageManifest`]. The adapter stores [`package::Package::files`] (path,
//!    bytes, content type) and the manifest; a [`ScormError`] maps to a response through
//!    [`ScormError::code`] / [`ScormError::status`] / its `Display` text.
//! 2. [`manifest::parse_imsmanifest`] / [`manifest::parse_cmi5`] are usable alone (a bare
//!    `cmi5.xml` upload is a valid cmi5 course package).
//!
//! SCORM launch (SCO in the browser, statements built on the server):
//! 1. [`mapping::sco_iri`] / [`mapping::attempt_iri`] name the activities;
//!    [`restore::launch_decision`] says whether a launch resumes the stored attempt or starts
//!    a new one, and [`restore::restore_model`] builds the run-time data model the browser
//!    starts from (entry, location, suspend data, statuses, scores, LMS-owned values) from
//!    the stored documents ([`restore::StoredAttempt`]: this LRS's run-time state, the
//!    profile's attempt state, the suspend data).
//! 2. The browser runtime validates each `SetValue`/`GetValue` with the same tables, exported
//!    by [`datamodel::to_json`]; the server re-checks a commit with
//!    [`datamodel::validate_set`].
//! 3. On `Initialize`, every `Commit` and on `Terminate`, the adapter calls
//!    [`mapping::map_commit`] with the previously committed model and the new one. It gets
//!    xAPI statements (deterministic ids: a re-sent commit yields the same ids, so the LRS
//!    stores nothing twice) and document writes (attempt state, suspend data, activity and
//!    agent profiles, and this LRS's own run-time state used for the next diff and restore).
//!
//! cmi5 launch: [`cmi5::launch_url`], [`cmi5::launch_data`] (the `LMS.LaunchData` state
//! document), [`cmi5::launched_statement`], and the fetch URL bodies
//! [`cmi5::fetch_token_body`] / [`cmi5::fetch_error_body`]. What an AU then sends is checked
//! by [`cmi5_rules::check_statements`]; a relaunch abandons the sessions left open
//! ([`cmi5_rules::open_sessions`], [`cmi5_rules::abandoned_statement`]).
//!
//! The mapping, IRI shapes and limits are described in `docs/SCORM.md`.
pub mod cmi5;
pub mod cmi5_rules;
pub mod datamodel;
pub mod evaluation;
pub mod manifest;
pub mod mapping;
pub mod package;
pub mod records;
pub mod restore;

use std::fmt;

/// The SCORM run-time generation a package or a data model belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ScormVersion {
    /// SCORM 1.2 (CMI001 data model, `LMSInitialize` API).
    #[serde(rename = "1.2")]
    Scorm12,
    /// SCORM 2004, any edition (IEEE 1484.11.1 data model, `Initialize` API).
    #[serde(rename = "2004")]
    Scorm2004,
}

impl ScormVersion {
    /// The label used in documents and JSON: `1.2` or `2004`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScormVersion::Scorm12 => "1.2",
            ScormVersion::Scorm2004 => "2004",
        }
    }

    /// Parses the label written by [`ScormVersion::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "1.2" => Some(ScormVersion::Scorm12),
            "2004" => Some(ScormVersion::Scorm2004),
            _ => None,
        }
    }
}

impl fmt::Display for ScormVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a package, a manifest or a launch request was refused.
///
/// Each variant has a stable snake_case [`code`](ScormError::code) for programs, an HTTP
/// status suggestion for the adapter, and a message (its `Display`) that names the file,
/// line, path or limit concerned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScormError {
    /// The upload is not a readable zip archive (no end of central directory, truncated…).
    #[error("the package is not a readable zip archive: {detail}")]
    NotAZip { detail: String },
    /// An entry could not be inflated (bad CRC, truncated data, encryption).
    #[error("the zip entry \"{path}\" cannot be read: {detail}")]
    CorruptEntry { path: String, detail: String },
    /// An entry uses a compression method other than stored or deflate.
    #[error("the zip entry \"{path}\" uses an unsupported compression method ({method}); only stored and deflate are accepted")]
    UnsupportedCompression { path: String, method: String },
    /// Neither `imsmanifest.xml` nor `cmi5.xml` at the root or in a single top folder.
    #[error("no imsmanifest.xml (SCORM) or cmi5.xml (cmi5) at the root of the package or in its single top folder{}", found_hint(.found))]
    MissingManifest { found: Vec<String> },
    /// The manifest is not well-formed XML (or uses a DTD, which is refused).
    #[error("{file} is not well-formed XML at line {line}, column {column}: {detail}")]
    MalformedManifest {
        file: String,
        line: u32,
        column: u32,
        detail: String,
    },
    /// Well-formed XML that is not a usable manifest: wrong root element, a missing
    /// required attribute, a reference to nothing.
    #[error("{file}: {detail}{}", at_line(*.line))]
    InvalidManifest {
        file: String,
        line: Option<u32>,
        detail: String,
    },
    /// A SCO, an item's resource or an AU has no launch location.
    #[error("{file}: {what} has no launch URL{}", at_line(*.line))]
    MissingLaunchUrl {
        file: String,
        line: Option<u32>,
        what: String,
    },
    /// A zip entry name that could escape the package folder or is not portable.
    #[error("the zip entry \"{path}\" has an unsafe path: {reason}")]
    UnsafePath { path: String, reason: String },
    /// A zip entry is a symbolic link (unix mode in its external attributes).
    #[error("the zip entry \"{path}\" is a symbolic link; links are refused")]
    SymlinkInPackage { path: String },
    /// Two zip entries name the same file once their paths are normalized.
    #[error("the zip holds \"{path}\" more than once")]
    DuplicateEntry { path: String },
    /// More entries than the limit allows.
    #[error("the package holds {count} entries, more than the limit of {limit}")]
    TooManyFiles { count: usize, limit: usize },
    /// One entry inflates beyond the per-file limit.
    #[error("the zip entry \"{path}\" inflates to more than the per-file limit of {limit} bytes")]
    FileTooLarge { path: String, limit: u64 },
    /// All entries together inflate beyond the total limit.
    #[error(
        "the package inflates to more than the limit of {limit} bytes (reached at \"{path}\")"
    )]
    PackageTooLarge { path: String, limit: u64 },
    /// Inflated size over compressed size is beyond the limit: a zip bomb, or an entry
    /// that is not worth the risk.
    #[error("{} inflates more than {limit}:1 (compressed {compressed} bytes, inflated beyond {inflated} bytes)", ratio_subject(.path))]
    CompressionRatio {
        /// The entry, or `None` for the archive as a whole.
        path: Option<String>,
        compressed: u64,
        inflated: u64,
        limit: u64,
    },
    /// A launch request that cannot be honoured (bad actor, not an absolute URL…).
    #[error("invalid launch: {detail}")]
    InvalidLaunch { detail: String },
    /// A stored SCORM document that cannot be read back (restore after relaunch).
    #[error("the stored {document} cannot be used: {detail}")]
    InvalidState { document: String, detail: String },
}

fn found_hint(found: &[String]) -> String {
    if found.is_empty() {
        String::new()
    } else {
        format!(" (found: {})", found.join(", "))
    }
}

fn at_line(line: Option<u32>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

fn ratio_subject(path: &Option<String>) -> String {
    match path {
        Some(p) => format!("the zip entry \"{p}\""),
        None => "the package as a whole".to_string(),
    }
}

/// One row of the error table: code, suggested HTTP status, what it means.
pub struct ErrorRow {
    pub code: &'static str,
    pub status: u16,
    pub meaning: &'static str,
}

/// Every [`ScormError`] code, its suggested HTTP status and meaning (published in
/// `docs/SCORM.md`).
pub const ERROR_TABLE: &[ErrorRow] = &[
    ErrorRow {
        code: "not_a_zip",
        status: 400,
        meaning: "the upload is not a readable zip archive",
    },
    ErrorRow {
        code: "corrupt_entry",
        status: 400,
        meaning: "a zip entry cannot be inflated (CRC, truncation, encryption)",
    },
    ErrorRow {
        code: "unsupported_compression",
        status: 400,
        meaning: "a zip entry uses a method other than stored or deflate",
    },
    ErrorRow {
        code: "missing_manifest",
        status: 400,
        meaning: "no imsmanifest.xml or cmi5.xml at the root or in a single top folder",
    },
    ErrorRow {
        code: "malformed_manifest",
        status: 400,
        meaning: "the manifest is not well-formed XML (line and column given)",
    },
    ErrorRow {
        code: "invalid_manifest",
        status: 400,
        meaning: "the manifest is XML but not a usable SCORM or cmi5 manifest",
    },
    ErrorRow {
        code: "missing_launch_url",
        status: 400,
        meaning: "a SCO, item or AU has no launch URL",
    },
    ErrorRow {
        code: "unsafe_path",
        status: 400,
        meaning:
            "a zip entry path could escape the package (.., absolute, backslash, drive letter)",
    },
    ErrorRow {
        code: "symlink_in_package",
        status: 400,
        meaning: "a zip entry is a symbolic link",
    },
    ErrorRow {
        code: "duplicate_entry",
        status: 400,
        meaning: "two zip entries name the same file",
    },
    ErrorRow {
        code: "too_many_files",
        status: 413,
        meaning: "more entries than the file-count limit",
    },
    ErrorRow {
        code: "file_too_large",
        status: 413,
        meaning: "one entry inflates beyond the per-file limit",
    },
    ErrorRow {
        code: "package_too_large",
        status: 413,
        meaning: "the entries together inflate beyond the total limit",
    },
    ErrorRow {
        code: "compression_ratio",
        status: 413,
        meaning: "an entry or the archive inflates beyond the ratio limit (zip bomb)",
    },
    ErrorRow {
        code: "invalid_launch",
        status: 400,
        meaning: "a launch request cannot be honoured",
    },
    ErrorRow {
        code: "invalid_state",
        status: 500,
        meaning: "a stored SCORM document cannot be read back",
    },
];

impl ScormError {
    /// The stable machine-readable code (snake_case), listed in [`ERROR_TABLE`].
    pub fn code(&self) -> &'static str {
        match self {
            ScormError::NotAZip { .. } => "not_a_zip",
            ScormError::CorruptEntry { .. } => "corrupt_entry",
            ScormError::UnsupportedCompression { .. } => "unsupported_compression",
            ScormError::MissingManifest { .. } => "missing_manifest",
            ScormError::MalformedManifest { .. } => "malformed_manifest",
            ScormError::InvalidManifest { .. } => "invalid_manifest",
            ScormError::MissingLaunchUrl { .. } => "missing_launch_url",
            ScormError::UnsafePath { .. } => "unsafe_path",
            ScormError::SymlinkInPackage { .. } => "symlink_in_package",
            ScormError::DuplicateEntry { .. } => "duplicate_entry",
            ScormError::TooManyFiles { .. } => "too_many_files",
            ScormError::FileTooLarge { .. } => "file_too_large",
            ScormError::PackageTooLarge { .. } => "package_too_large",
            ScormError::CompressionRatio { .. } => "compression_ratio",
            ScormError::InvalidLaunch { .. } => "invalid_launch",
            ScormError::InvalidState { .. } => "invalid_state",
        }
    }

    /// The HTTP status the adapter should answer with (from [`ERROR_TABLE`]).
    pub fn status(&self) -> u16 {
        let code = self.code();
        ERROR_TABLE
            .iter()
            .find(|row| row.code == code)
            .map_or(400, |row| row.status)
    }

    /// `{"code", "message"}` plus the location fields a program can act on.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        let mut put = |k: &str, v: serde_json::Value| {
            if let Some(o) = body.as_object_mut() {
                o.insert(k.to_string(), v);
            }
        };
        match self {
            ScormError::MalformedManifest {
                file, line, column, ..
            } => {
                put("file", file.clone().into());
                put("line", (*line).into());
                put("column", (*column).into());
            }
            ScormError::InvalidManifest { file, line, .. }
            | ScormError::MissingLaunchUrl { file, line, .. } => {
                put("file", file.clone().into());
                if let Some(l) = line {
                    put("line", (*l).into());
                }
            }
            ScormError::CorruptEntry { path, .. }
            | ScormError::UnsupportedCompression { path, .. }
            | ScormError::UnsafePath { path, .. }
            | ScormError::SymlinkInPackage { path }
            | ScormError::DuplicateEntry { path }
            | ScormError::FileTooLarge { path, .. }
            | ScormError::PackageTooLarge { path, .. } => put("path", path.clone().into()),
            ScormError::CompressionRatio { path: Some(p), .. } => put("path", p.clone().into()),
            _ => {}
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_in_the_table_once() {
        let samples = [
            ScormError::NotAZip { detail: "x".into() },
            ScormError::CorruptEntry {
                path: "a".into(),
                detail: "x".into(),
            },
            ScormError::UnsupportedCompression {
                path: "a".into(),
                method: "bzip2".into(),
            },
            ScormError::MissingManifest { found: vec![] },
            ScormError::MalformedManifest {
                file: "imsmanifest.xml".into(),
                line: 3,
                column: 4,
                detail: "x".into(),
            },
            ScormError::InvalidManifest {
                file: "imsmanifest.xml".into(),
                line: None,
                detail: "x".into(),
            },
            ScormError::MissingLaunchUrl {
                file: "imsmanifest.xml".into(),
                line: Some(2),
                what: "x".into(),
            },
            ScormError::UnsafePath {
                path: "../a".into(),
                reason: "x".into(),
            },
            ScormError::SymlinkInPackage { path: "a".into() },
            ScormError::DuplicateEntry { path: "a".into() },
            ScormError::TooManyFiles { count: 2, limit: 1 },
            ScormError::FileTooLarge {
                path: "a".into(),
                limit: 1,
            },
            ScormError::PackageTooLarge {
                path: "a".into(),
                limit: 1,
            },
            ScormError::CompressionRatio {
                path: None,
                compressed: 1,
                inflated: 200,
                limit: 100,
            },
            ScormError::InvalidLaunch { detail: "x".into() },
            ScormError::InvalidState {
                document: "d".into(),
                detail: "x".into(),
            },
        ];
        assert_eq!(samples.len(), ERROR_TABLE.len());
        for e in &samples {
            let rows = ERROR_TABLE.iter().filter(|r| r.code == e.code()).count();
            assert_eq!(rows, 1, "{}", e.code());
            assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert_eq!(e.to_json()["code"], e.code());
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn messages_name_the_place() {
        let e = ScormError::MalformedManifest {
            file: "imsmanifest.xml".into(),
            line: 27,
            column: 5,
            detail: "unexpected close tag".into(),
        };
        assert_eq!(
            e.to_string(),
            "imsmanifest.xml is not well-formed XML at line 27, column 5: unexpected close tag"
        );
        assert_eq!(e.to_json()["line"], 27);
        let e = ScormError::CompressionRatio {
            path: Some("big.bin".into()),
            compressed: 1000,
            inflated: 200_000,
            limit: 100,
        };
        assert!(e.to_string().contains("big.bin"));
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn version_labels_round_trip() {
        for v in [ScormVersion::Scorm12, ScormVersion::Scorm2004] {
            assert_eq!(ScormVersion::parse(v.as_str()), Some(v));
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        assert_eq!(ScormVersion::parse("1.3"), None);
    }
}
