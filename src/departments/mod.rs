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

/// The department a read covers when its caller, of department `own`, asks for
/// `requested` (a path, or none for its own): `None` unless it is well formed and within
/// `own`'s subtree. The caller answers every `None` alike, so nothing tells a department
/// outside the subtree that exists from one that does not.
pub fn narrowed(own: &Department, requested: Option<&str>) -> Option<Department> {
    let Some(requested) = requested else {
        return Some(own.clone());
    };
    Department::parse(requested.trim())
        .ok()
        .filter(|d| d.is_within(own))
}

/// Records are keyed by their id within their department: the bare id in the root (so a
/// store from before departments needs no migration), `id department` elsewhere. Ids
/// (UUIDs, sha2 hashes, IRIs) contain no space, so the key splits back unambiguously, and
/// every department's record of one id lies in `copies_range(id)`.
pub fn record_key(id: &str, department: &Department) -> String {
    if department.is_root() {
        id.to_owned()
    } else {
        format!("{id} {}", department.0)
    }
}

/// The id and the department of a record key.
pub fn split_record_key(key: &str) -> (&str, Department) {
    match key.split_once(' ') {
        Some((id, d)) => (id, Department(d.to_owned())),
        None => (key, Department::root()),
    }
}

/// The half-open range of record keys holding `id`, in every department: `id` itself and
/// `id <department>` (`!` is the character after the space).
pub fn copies_range(id: &str) -> (String, String) {
    (id.to_owned(), format!("{id}!"))
}

/// What a placement key (`filter_key`) starts with.
const PLACEMENT: &str = "d:";
/// What a key within a department (`key_within`) starts with.
const WITHIN: &str = "in:";

/// The statement filter key that selects a department's subtree.
pub fn filter_key(department: &Department) -> String {
    format!("{PLACEMENT}{}", department.0)
}

/// The filter keys a statement stored in `department` carries: one per department whose
/// subtree holds it, the root excepted (a root reader filters on nothing).
pub fn placement_keys(department: &Department) -> Vec<String> {
    department
        .lineage()
        .iter()
        .filter(|d| !d.is_root())
        .map(filter_key)
        .collect()
}

/// Whether `key` is a placement key (`filter_key`): it selects a department's subtree.
pub fn is_placement_key(key: &str) -> bool {
    key.starts_with(PLACEMENT)
}

/// The index key of filter key `key` within the subtree that `placement` (a placement key)
/// selects. A department reader's filtered query scans these, so its cost follows what its
/// own subtree holds, not what the whole store holds: scanning a verb's entries and
/// dropping other departments' rows cost a small department's query a second at 1M
/// statements. Unambiguous: department paths hold no space.
pub fn key_within(placement: &str, key: &str) -> String {
    let department = placement.strip_prefix(PLACEMENT).unwrap_or(placement);
    format!("{WITHIN}{department} {key}")
}

/// Whether `key` was made by `key_within`.
pub fn is_key_within(key: &str) -> bool {
    key.starts_with(WITHIN)
}

/// The keys a statement with filter and placement keys `keys` is indexed under besides
/// those: each filter key within each placement (none for a root statement). Keys made by
/// `key_within` among `keys` (inherited from a StatementRef target) are not combined again.
pub fn keys_within<K: AsRef<str>>(keys: &[K]) -> Vec<String> {
    let keys = keys.iter().map(AsRef::as_ref);
    let placements: Vec<&str> = keys.clone().filter(|k| is_placement_key(k)).collect();
    if placements.is_empty() {
        return Vec::new();
    }
    let filters: Vec<&str> = keys
        .filter(|k| !is_placement_key(k) && !is_key_within(k))
        .collect();
    placements
        .iter()
        .flat_map(|p| filters.iter().map(move |k| key_within(p, k)))
        .collect()
}

/// Which of several departments' copies of one record a reader in `reader` gets: those
/// outside its subtree never; of the rest, the one nearest to `reader` (fewest levels
/// below it), ties broken by path order, so the answer is the same every time.
pub fn nearest<'a, T>(
    reader: &Department,
    copies: impl IntoIterator<Item = (Department, T)>,
) -> Option<(Department, T)>
where
    T: 'a,
{
    copies
        .into_iter()
        .filter(|(d, _)| d.is_within(reader))
        .min_by(|(a, _), (b, _)| a.depth().cmp(&b.depth()).then_with(|| a.cmp(b)))
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
    fn narrowing_stays_within_the_subtree() {
        let moe = Department::parse("moe").unwrap();
        assert_eq!(narrowed(&moe, None), Some(moe.clone()));
        assert_eq!(
            narrowed(&moe, Some("moe/dhe")),
            Some(Department::parse("moe/dhe").unwrap())
        );
        assert_eq!(narrowed(&moe, Some("moe")), Some(moe.clone()));
        for outside in ["mha", "/", "moex", "MOE/dhe", "moe//dhe", ".."] {
            assert_eq!(narrowed(&moe, Some(outside)), None, "{outside}");
        }
        assert!(narrowed(&Department::root(), Some("mha/x")).is_some());
    }

    #[test]
    fn record_keys_split_back() {
        let d = Department::parse("moe/dhe").unwrap();
        let k = record_key("3f1c", &d);
        assert_eq!(k, "3f1c moe/dhe");
        assert_eq!(split_record_key(&k), ("3f1c", d.clone()));
        assert_eq!(record_key("3f1c", &Department::root()), "3f1c");
        assert_eq!(split_record_key("3f1c"), ("3f1c", Department::root()));
        let (lo, hi) = copies_range("3f1c");
        for key in ["3f1c", "3f1c moe/dhe", "3f1c a"] {
            assert!(lo.as_str() <= key && key < hi.as_str(), "{key}");
        }
        for key in ["3f1c0", "3f1", "3f1c-x", "3f1d"] {
            assert!(!(lo.as_str() <= key && key < hi.as_str()), "{key}");
        }
        assert_eq!(placement_keys(&d), ["d:moe", "d:moe/dhe"]);
        assert!(placement_keys(&Department::root()).is_empty());
    }

    #[test]
    fn nearest_copy_within_the_subtree() {
        let p = |s| Department::parse(s).unwrap();
        let copies = vec![
            (p("moe/dhe/ugc"), 1),
            (p("moe/b"), 2),
            (p("moe/a"), 3),
            (p("mha"), 4),
        ];
        assert_eq!(nearest(&p("moe"), copies.clone()).map(|c| c.1), Some(3));
        assert_eq!(nearest(&p("moe/dhe"), copies.clone()).map(|c| c.1), Some(1));
        assert_eq!(nearest(&p("mha/x"), copies.clone()), None);
        assert_eq!(nearest(&Department::root(), copies).map(|c| c.1), Some(4));
    }

    #[test]
    fn keys_within_pair_each_filter_key_with_each_placement() {
        let d = Department::parse("moe/dhe").unwrap();
        let mut keys = vec!["v:http://x/v".to_owned(), "a:mbox|mailto:a@x".to_owned()];
        keys.extend(placement_keys(&d));
        let mut within = keys_within(&keys);
        within.sort();
        assert_eq!(
            within,
            [
                "in:moe a:mbox|mailto:a@x",
                "in:moe v:http://x/v",
                "in:moe/dhe a:mbox|mailto:a@x",
                "in:moe/dhe v:http://x/v",
            ]
        );
        // Inherited ones are not paired again; a root statement has none.
        keys.push("in:moe o:http://x/a".to_owned());
        assert_eq!(keys_within(&keys).len(), 4);
        assert!(keys_within(&["v:http://x/v".to_owned()]).is_empty());
        assert_eq!(key_within(&filter_key(&d), "g:1"), "in:moe/dhe g:1");
        assert!(is_placement_key("d:moe") && !is_placement_key("in:moe v:x"));
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

// --- Delegated administration (the admin API and the `departments` command) ---

/// Whether a caller of department `caller` may create or remove department `target`:
/// only strictly below its own (nobody creates or removes its own department or the root).
pub fn may_administer_department(caller: &Department, target: &Department) -> bool {
    target != caller && target.is_within(caller)
}

/// Whether a caller of department `caller` may issue, list and revoke credentials of
/// `department`: anywhere within its subtree, its own department included.
pub fn may_administer_credentials_of(caller: &Department, department: &Department) -> bool {
    department.is_within(caller)
}

/// Tree order: a department before its sub-departments, siblings by name, compared
/// segment by segment (`moe`, `moe/dhe`, `moe-x`; byte order would put `moe-x` between
/// `moe` and `moe/dhe`).
pub fn tree_order(a: &Department, b: &Department) -> std::cmp::Ordering {
    a.0.split('/').cmp(b.0.split('/'))
}

/// The items whose department lies strictly below `top`, in tree order.
pub fn strictly_below<T>(
    top: &Department,
    items: impl IntoIterator<Item = T>,
    department: impl Fn(&T) -> &Department,
) -> Vec<T> {
    let mut out: Vec<T> = items
        .into_iter()
        .filter(|t| may_administer_department(top, department(t)))
        .collect();
    out.sort_by(|a, b| tree_order(department(a), department(b)));
    out
}

/// What a department's subtree holds that stops its removal (unless forced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    pub active_credentials: usize,
    pub statements: bool,
    pub documents: bool,
}

impl Holdings {
    pub fn is_empty(&self) -> bool {
        self.active_credentials == 0 && !self.statements && !self.documents
    }

    /// E.g. `2 active credentials, statements and documents`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.active_credentials {
            0 => {}
            1 => parts.push("1 active credential".to_owned()),
            n => parts.push(format!("{n} active credentials")),
        }
        if self.statements {
            parts.push("statements".to_owned());
        }
        if self.documents {
            parts.push("documents".to_owned());
        }
        match parts.len() {
            0 => "nothing".to_owned(),
            1 => parts.remove(0),
            _ => {
                let last = parts.pop().unwrap_or_default();
                format!("{} and {last}", parts.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod admin_tests {
    use super::*;

    fn p(s: &str) -> Department {
        Department::parse(s).unwrap()
    }

    #[test]
    fn departments_are_administered_strictly_from_above() {
        let root = Department::root();
        assert!(may_administer_department(&root, &p("moe")));
        assert!(may_administer_department(&root, &p("moe/dhe")));
        assert!(may_administer_department(&p("moe"), &p("moe/dhe")));
        assert!(may_administer_department(&p("moe"), &p("moe/dhe/ugc")));
        assert!(!may_administer_department(&p("moe"), &p("moe")));
        assert!(!may_administer_department(&root, &root));
        assert!(!may_administer_department(&p("moe"), &root));
        assert!(!may_administer_department(&p("moe"), &p("mha")));
        assert!(!may_administer_department(&p("moe"), &p("mha/x")));
        assert!(!may_administer_department(&p("moe"), &p("moex")));
        assert!(!may_administer_department(&p("moe/dhe"), &p("moe")));
    }

    #[test]
    fn credentials_are_administered_within_the_subtree() {
        let root = Department::root();
        assert!(may_administer_credentials_of(&root, &root));
        assert!(may_administer_credentials_of(&root, &p("mha")));
        assert!(may_administer_credentials_of(&p("moe"), &p("moe")));
        assert!(may_administer_credentials_of(&p("moe"), &p("moe/dhe")));
        assert!(!may_administer_credentials_of(&p("moe"), &root));
        assert!(!may_administer_credentials_of(&p("moe"), &p("mha")));
        assert!(!may_administer_credentials_of(&p("moe/dhe"), &p("moe")));
    }

    #[test]
    fn subtree_in_tree_order() {
        let all = [
            "moe-x",
            "mha",
            "moe/dhe/ugc",
            "moe",
            "moe/dhe",
            "moe/a",
            "moex",
        ]
        .map(p);
        let names = |v: Vec<&Department>| v.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(strictly_below(&p("moe"), all.iter(), |d| d)),
            ["moe/a", "moe/dhe", "moe/dhe/ugc"]
        );
        assert_eq!(
            names(strictly_below(&Department::root(), all.iter(), |d| d)),
            [
                "mha",
                "moe",
                "moe/a",
                "moe/dhe",
                "moe/dhe/ugc",
                "moe-x",
                "moex"
            ]
        );
        assert!(strictly_below(&p("moe/dhe/ugc"), all.iter(), |d| d).is_empty());
    }

    #[test]
    fn holdings_say_what_blocks_a_removal() {
        assert!(Holdings::default().is_empty());
        let h = |c, s, d| Holdings {
            active_credentials: c,
            statements: s,
            documents: d,
        };
        assert_eq!(h(1, false, false).describe(), "1 active credential");
        assert_eq!(h(0, true, false).describe(), "statements");
        assert_eq!(h(0, true, true).describe(), "statements and documents");
        assert_eq!(
            h(2, true, true).describe(),
            "2 active credentials, statements and documents"
        );
        assert!(!h(0, false, true).is_empty());
    }
}
