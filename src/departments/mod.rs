//! Departments: the tree of ministries, departments and organisations (MDOs) that own
//! records. Pure: paths, their rules, and who may see what.
//!
//! A department is named by a path of slugs (`moe`, `moe/dhe`, `moe/dhe/ugc`); the root,
//! written `/`, always exists. A credential belongs to one department: it writes there and
//! reads the department's subtree.
use std::fmt;

/// Deepest path allowed (segments).
pub const MAX_DEPTH: usize = 8;
/// Longest segment allowed (characters).
pub const MAX_SEGMENT: usize = 64;

/// A department path, valid by construction. The root is the empty path, shown as `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Department(String);

impl Department {
    pub fn root() -> Department {
        Department(String::new())
    }

    /// Parses `/` (the root) or `seg/seg/…`: each segment 1–64 characters of `a-z`, `0-9`
    /// and inner `-`, at most 8 segments.
    pub fn parse(s: &str) -> Result<Department, String> {
        if s == "/" || s.is_empty() {
            return Ok(Department::root());
        }
        let segments: Vec<&str> = s.split('/').collect();
        if segments.len() > MAX_DEPTH {
            return Err(format!(
                "a department path has at most {MAX_DEPTH} segments; `{s}` has {}",
                segments.len()
            ));
        }
        for seg in &segments {
            if seg.is_empty() {
                return Err(format!(
                    "`{s}` has an empty segment (write the root as `/`, others as `a/b` without leading or trailing `/`)"
                ));
            }
            if seg.len() > MAX_SEGMENT {
                return Err(format!(
                    "segment `{seg}` is longer than {MAX_SEGMENT} characters"
                ));
            }
            let ok = seg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !seg.starts_with('-')
                && !seg.ends_with('-');
            if !ok {
                return Err(format!(
                    "segment `{seg}` must be lower-case letters, digits and inner hyphens"
                ));
            }
        }
        Ok(Department(s.to_owned()))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path without the root's `/`: empty for the root. This is the stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or lies below it (its subtree).
    pub fn is_within(&self, other: &Department) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(&other.0)
                && self.0.as_bytes()[other.0.len()] == b'/')
    }

    /// The parent; `None` for the root.
    pub fn parent(&self) -> Option<Department> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => Department(self.0[..i].to_owned()),
            None => Department::root(),
        })
    }

    /// Every ancestor from the root down, then `self`.
    pub fn lineage(&self) -> Vec<Department> {
        let mut out = vec![Department::root()];
        if self.is_root() {
            return out;
        }
        for (i, b) in self.0.bytes().enumerate() {
            if b == b'/' {
                out.push(Department(self.0[..i].to_owned()));
            }
        }
        out.push(self.clone());
        out
    }

    /// Number of segments (0 for the root).
    pub fn depth(&self) -> usize {
        if self.is_root() {
            0
        } else {
            self.0.split('/').count()
        }
    }

    /// The child department `name` (one segment) of `self`.
    pub fn child_of(&self, name: &str) -> Result<Department, String> {
        if self.is_root() {
            Department::parse(name)
        } else {
            Department::parse(&format!("{}/{name}", self.0))
        }
    }
}

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str("/")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_the_root() {
        assert!(Department::parse("/").unwrap().is_root());
        assert_eq!(Department::parse("moe/dhe").unwrap().as_str(), "moe/dhe");
        assert_eq!(Department::parse("moe/dhe").unwrap().to_string(), "moe/dhe");
        assert_eq!(Department::root().to_string(), "/");
        assert!(Department::parse("a-1/b2/c").is_ok());
        assert!(Department::parse(&["a"; 8].join("/")).is_ok());
    }

    #[test]
    fn refuses_malformed_paths() {
        for bad in [
            "..",
            "moe/..",
            "moe//dhe",
            "/moe",
            "moe/",
            "MoE",
            "moe dhe",
            "-moe",
            "moe-",
            "moe/dhe_x",
            "mö",
        ] {
            assert!(Department::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(Department::parse(&["a"; 9].join("/")).is_err());
        assert!(Department::parse(&"a".repeat(65)).is_err());
        assert!(Department::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn subtree_membership() {
        let p = |s| Department::parse(s).unwrap();
        assert!(p("moe/dhe").is_within(&p("moe")));
        assert!(p("moe").is_within(&p("moe")));
        assert!(p("moe").is_within(&Department::root()));
        assert!(!p("moe").is_within(&p("moe/dhe")));
        assert!(!p("moex").is_within(&p("moe")));
        assert!(!p("mha").is_within(&p("moe")));
        assert!(!Department::root().is_within(&p("moe")));
    }

    #[test]
    fn lineage_and_parent() {
        let d = Department::parse("a/b/c").unwrap();
        let names: Vec<String> = d.lineage().iter().map(|d| d.to_string()).collect();
        assert_eq!(names, ["/", "a", "a/b", "a/b/c"]);
        assert_eq!(d.parent().unwrap().as_str(), "a/b");
        assert_eq!(d.depth(), 3);
        assert!(Department::root().parent().is_none());
        assert_eq!(
            Department::parse("a").unwrap().parent(),
            Some(Department::root())
        );
    }
}
