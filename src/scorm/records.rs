//! What the store keeps of uploaded content: packages (SCORM 1.2/2004 or cmi5), their
//! files, and launch sessions. The domain prepares every field; a backend only persists
//! and finds them.
use crate::departments::Department;

/// One uploaded package. `manifest` is the parsed manifest in the domain's stored form
/// (JSON text), so a backend never needs to understand it.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageRecord {
    pub id: String,
    /// The department that owns it: it and its subtree may list and launch it.
    pub department: Department,
    pub created_us: i64,
    pub title: String,
    pub manifest: String,
    /// Total uncompressed bytes of its files.
    pub size: u64,
    pub file_count: u64,
}

/// One file of a package, by its normalised path inside the package.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub path: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A launch: what its bearer token allows. The token itself is never stored, only its
/// SHA-256 (`token_hash`), so a copy of the store gives no one a live session.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRecord {
    pub token_hash: String,
    pub package_id: String,
    pub department: Department,
    pub created_us: i64,
    pub expires_us: i64,
    /// The session as the domain describes it (actor, registration, SCO, attempt…), JSON
    /// text.
    pub session: String,
    /// cmi5: the fetch URL has handed out its auth token (it does so once).
    pub fetched: bool,
}
