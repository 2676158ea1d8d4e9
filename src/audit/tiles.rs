//! C2SP tlog-tiles (c2sp.org/tlog-tiles) arithmetic: which tiles a tree has, their paths
//! `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, and which stored hashes make them.
//!
//! A tile at level L holds up to 256 consecutive hashes of Merkle nodes at tree level 8·L
//! (level 0: leaf hashes); a full tile spans 256^(L+1) leaves. The levels in between are
//! recomputed from the tile's hashes. Entry bundles are cut like level-0 tiles.
use std::fmt;
use std::ops::Range;

use super::merkle::Node;

/// Tree levels spanned by one tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u16 = 256;
/// Highest tile level a path may name.
pub const MAX_TILE_LEVEL: u8 = 63;

/// Why a path is not a tile path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a tile path: {0}")]
pub struct TilePathError(&'static str);

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Merkle hashes at tile level L (tree level 8·L).
    Hashes(u8),
    /// An entry bundle: the entries of the leaves of the level-0 tile of the same index.
    Entries,
}

/// One tile (or entry bundle) of a tree: index `index` within its level, `width` hashes
/// (1–256; 256 = full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub kind: TileKind,
    pub index: u64,
    pub width: u16,
}

impl Tile {
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// Tile level (0 for entry bundles).
    pub fn level(&self) -> u8 {
        match self.kind {
            TileKind::Hashes(l) => l,
            TileKind::Entries => 0,
        }
    }

    /// The path under the log's prefix: `tile/<L>/<N>` or `tile/entries/<N>`, followed by
    /// `.p/<W>` for a partial tile.
    pub fn path(&self) -> String {
        let mut p = match self.kind {
            TileKind::Hashes(l) => format!("tile/{l}/"),
            TileKind::Entries => "tile/entries/".to_string(),
        };
        p.push_str(&encode_index(self.index));
        if !self.is_full() {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses a path written by [`Tile::path`], rejecting every other spelling (leading
    /// zeros, a `.p/256` suffix, a level above 63, an index written with extra groups …).
    pub fn parse_path(path: &str) -> Result<Tile, TilePathError> {
        let rest = path
            .strip_prefix("tile/")
            .ok_or(TilePathError("must start with tile/"))?;
        let (kind, rest) = rest.split_once('/').ok_or(TilePathError("missing index"))?;
        let kind = if kind == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(kind)
                .filter(|&l| l <= u64::from(MAX_TILE_LEVEL))
                .ok_or(TilePathError("level is not a number from 0 to 63"))?;
            TileKind::Hashes(level as u8)
        };
        let mut elems: Vec<&str> = rest.split('/').collect();
        let mut width = TILE_WIDTH;
        if elems.len() >= 2 {
            let before_last = elems[elems.len() - 2];
            if let Some(stripped) = before_last.strip_suffix(".p") {
                let w = parse_decimal(elems[elems.len() - 1])
                    .filter(|w| (1..u64::from(TILE_WIDTH)).contains(w))
                    .ok_or(TilePathError("partial width is not a number from 1 to 255"))?;
                width = w as u16;
                elems.pop();
                let last = elems.len() - 1;
                elems[last] = stripped;
            }
        }
        let index = parse_index(&elems).ok_or(TilePathError(
            "index is not written as zero-padded 3-digit groups, all but the last prefixed by x",
        ))?;
        Ok(Tile { kind, index, width })
    }

    /// The Merkle nodes whose hashes this tile holds, in order (for an entry bundle, the
    /// leaves whose entries it holds).
    pub fn nodes(&self) -> impl Iterator<Item = Node> {
        let level = self.level() * TILE_HEIGHT;
        let first = self.index * u64::from(TILE_WIDTH);
        (first..first + u64::from(self.width)).map(move |index| Node { level, index })
    }

    /// The stored hash indexes of the tile's hashes, in order: a tile's content is these
    /// stored hashes concatenated (32 bytes each).
    pub fn stored_hash_indexes(&self) -> Vec<u64> {
        self.nodes().map(|n| n.stored_index()).collect()
    }

    /// The leaves spanned, `[start, end)` (`None` if beyond 2^64).
    pub fn leaf_range(&self) -> Option<Range<u64>> {
        let shift = u32::from(self.level()) * u32::from(TILE_HEIGHT);
        let per_hash = 1u64.checked_shl(shift).filter(|_| shift < 64)?;
        let start = self
            .index
            .checked_mul(u64::from(TILE_WIDTH))?
            .checked_mul(per_hash)?;
        let end = start.checked_add(u64::from(self.width).checked_mul(per_hash)?)?;
        Some(start..end)
    }

    /// The entry bundle matching a level-0 tile.
    pub fn entries_bundle(&self) -> Option<Tile> {
        (self.kind == TileKind::Hashes(0)).then_some(Tile {
            kind: TileKind::Entries,
            ..*self
        })
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// A tile index as zero-padded 3-digit path elements, all but the last prefixed by `x`:
/// 1234067 → `x001/x234/067`, 5 → `005`.
pub fn encode_index(mut n: u64) -> String {
    let mut groups = vec![n % 1000];
    n /= 1000;
    while n > 0 {
        groups.push(n % 1000);
        n /= 1000;
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g:03}")
            } else {
                format!("{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_index(elems: &[&str]) -> Option<u64> {
    let (last, init) = elems.split_last()?;
    let mut n: u64 = 0;
    for (i, e) in init.iter().enumerate() {
        let g = e.strip_prefix('x')?;
        if i == 0 && g == "000" {
            return None; // not the canonical (shortest) spelling
        }
        n = n.checked_mul(1000)?.checked_add(three_digits(g)?)?;
    }
    n.checked_mul(1000)?.checked_add(three_digits(last)?)
}

fn three_digits(s: &str) -> Option<u64> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// A decimal with no leading zeros (but `0`).
fn parse_decimal(s: &str) -> Option<u64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0')) {
        s.parse().ok()
    } else {
        None
    }
}

/// Number of nodes at tile level `level` (tree level 8·level) in a tree of `size` leaves.
fn nodes_at(level: u8, size: u64) -> u64 {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    if shift >= 64 {
        0
    } else {
        size >> shift
    }
}

/// The hash tile at `level`, `index` as it is in a tree of `size` leaves: full, partial
/// (its width is ⌊size / 256^level⌋ mod 256), or `None` if it has no hash yet.
pub fn tile_at(level: u8, index: u64, size: u64) -> Option<Tile> {
    let have = nodes_at(level, size);
    let first = index.checked_mul(u64::from(TILE_WIDTH))?;
    if have <= first {
        return None;
    }
    Some(Tile {
        kind: TileKind::Hashes(level),
        index,
        width: (have - first).min(u64::from(TILE_WIDTH)) as u16,
    })
}

/// Number of hash tiles (full and partial) at `level` in a tree of `size` leaves.
pub fn tile_count(level: u8, size: u64) -> u64 {
    nodes_at(level, size).div_ceil(u64::from(TILE_WIDTH))
}

/// The hash tiles whose content changes when the tree grows from `old_size` to
/// `new_size` leaves (new tiles, and wider versions of the old partial ones), as they are
/// at `new_size`, lowest level first. Their level-0 members also name the entry bundles to
/// write ([`Tile::entries_bundle`]).
pub fn new_tiles(old_size: u64, new_size: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    if new_size <= old_size {
        return out;
    }
    for level in 0..=MAX_TILE_LEVEL {
        let (old, new) = (nodes_at(level, old_size), nodes_at(level, new_size));
        if new == old {
            break; // nothing changes at this level, so nothing above it either
        }
        let w = u64::from(TILE_WIDTH);
        for index in old / w..new.div_ceil(w) {
            out.extend(tile_at(level, index, new_size));
        }
    }
    out
}

/// Where the hash of `node` is found in a tree of `size` leaves: the tile to read, and the
/// range of its hashes whose Merkle Tree Hash (`merkle::root`) is the node's hash (a single
/// hash when the node's level is a multiple of 8). `None` if the node is not complete at
/// that size.
pub fn tile_for_node(node: Node, size: u64) -> Option<(Tile, Range<usize>)> {
    let level = node.level / TILE_HEIGHT;
    let height = node.level % TILE_HEIGHT;
    let first = node.index.checked_shl(u32::from(height))?;
    let w = u64::from(TILE_WIDTH);
    let tile = tile_at(level, first / w, size)?;
    let start = (first % w) as usize;
    let end = start + (1usize << height);
    (end <= usize::from(tile.width)).then_some((tile, start..end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::{leaf_hash, root, stored_hashes_for_append, Hash};

    fn hashes(level: u8, index: u64, width: u16) -> Tile {
        Tile {
            kind: TileKind::Hashes(level),
            index,
            width,
        }
    }

    #[test]
    fn index_encoding() {
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(5), "005");
        assert_eq!(encode_index(999), "999");
        assert_eq!(encode_index(1000), "x001/000");
        assert_eq!(encode_index(u64::MAX), "x018/x446/x744/x073/x709/x551/615");
    }

    #[test]
    fn paths_from_the_spec() {
        assert_eq!(hashes(0, 1234067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(hashes(2, 1234067, 8).path(), "tile/2/x001/x234/067.p/8");
        let bundle = Tile {
            kind: TileKind::Entries,
            index: 1234067,
            width: 256,
        };
        assert_eq!(bundle.path(), "tile/entries/x001/x234/067");
        assert_eq!(
            hashes(0, 7, 3).entries_bundle().unwrap().path(),
            "tile/entries/007.p/3"
        );
        assert_eq!(hashes(1, 7, 3).entries_bundle(), None);
    }

    #[test]
    fn paths_round_trip() {
        let mut tiles = vec![];
        for level in [0u8, 1, 5, 63] {
            for index in [0u64, 1, 255, 999, 1000, 1234067, 999_999_999, u64::MAX] {
                for width in [1u16, 17, 255, 256] {
                    tiles.push(hashes(level, index, width));
                    if level == 0 {
                        tiles.push(Tile {
                            kind: TileKind::Entries,
                            index,
                            width,
                        });
                    }
                }
            }
        }
        for t in tiles {
            assert_eq!(Tile::parse_path(&t.path()), Ok(t), "{t}");
        }
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for bad in [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "/tile/0/000",
            "tiles/0/000",
            "tile/00/000",
            "tile/01/000",
            "tile/64/000",
            "tile/-1/000",
            "tile/x/000",
            "tile/0/0",
            "tile/0/00",
            "tile/0/0000",
            "tile/0/x000/001",
            "tile/0/x001/x234",
            "tile/0/001/234",
            "tile/0/x001/x234/067/",
            "tile/0/x1/234",
            "tile/0/x0a1/234",
            "tile/0/+12",
            "tile/0/001.p",
            "tile/0/001.p/",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/08",
            "tile/0/001.p/8/",
            "tile/0/001.p/8.p/8",
            "tile/0/001.q/8",
            "tile/entry/001",
            "tile/entries/",
            "tile/entries/1",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
        ] {
            assert!(Tile::parse_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tiles_of_a_tree_of_70000_leaves() {
        // The example of c2sp.org/tlog-tiles: 273 full level-0 tiles, a partial level-0
        // tile of width 112, a full level-1 tile, a partial level-1 tile of width 17 and
        // a partial level-2 tile of width 1.
        let s = 70_000;
        assert_eq!(tile_count(0, s), 274);
        assert!(tile_at(0, 272, s).unwrap().is_full());
        assert_eq!(tile_at(0, 273, s), Some(hashes(0, 273, 112)));
        assert_eq!(tile_at(0, 274, s), None);
        assert_eq!(tile_count(1, s), 2);
        assert_eq!(tile_at(1, 0, s), Some(hashes(1, 0, 256)));
        assert_eq!(tile_at(1, 1, s), Some(hashes(1, 1, 17)));
        assert_eq!(tile_count(2, s), 1);
        assert_eq!(tile_at(2, 0, s), Some(hashes(2, 0, 1)));
        assert_eq!(tile_count(3, s), 0);
        // "A tree of size 256 is a full level-0 tile and a partial level-1 tile of width 1."
        assert_eq!(tile_at(0, 0, 256), Some(hashes(0, 0, 256)));
        assert_eq!(tile_at(1, 0, 256), Some(hashes(1, 0, 1)));
        assert_eq!(tile_count(0, 0), 0);
        assert_eq!(tile_at(0, 0, 0), None);
        assert_eq!(tile_at(63, 0, u64::MAX), None);
    }

    #[test]
    fn leaf_ranges() {
        assert_eq!(hashes(0, 2, 256).leaf_range(), Some(512..768));
        assert_eq!(hashes(0, 273, 112).leaf_range(), Some(69_888..70_000));
        assert_eq!(
            hashes(1, 1, 17).leaf_range(),
            Some(65_536..65_536 + 17 * 256)
        );
        assert_eq!(hashes(2, 0, 1).leaf_range(), Some(0..65_536));
        assert_eq!(hashes(7, 1, 1).leaf_range(), None);
        assert_eq!(hashes(8, 0, 1).leaf_range(), None);
    }

    #[test]
    fn new_tiles_when_growing() {
        assert!(new_tiles(0, 0).is_empty());
        assert!(new_tiles(5, 5).is_empty());
        assert_eq!(new_tiles(0, 1), vec![hashes(0, 0, 1)]);
        assert_eq!(new_tiles(1, 3), vec![hashes(0, 0, 3)]);
        assert_eq!(
            new_tiles(250, 256),
            vec![hashes(0, 0, 256), hashes(1, 0, 1)]
        );
        assert_eq!(new_tiles(256, 257), vec![hashes(0, 1, 1)]);
        assert_eq!(
            new_tiles(200, 70_000).len() as u64,
            274 + 2 + 1,
            "every tile of a 70,000 tree but none of the old ones is left out"
        );
        assert_eq!(
            new_tiles(69_999, 70_000),
            vec![hashes(0, 273, 112)],
            "one more leaf rewrites only the partial level-0 tile"
        );
        // Every tile that differs between the two sizes is listed, and only those.
        for (old, new) in [(0u64, 600u64), (255, 513), (511, 512), (65_535, 65_537)] {
            let listed = new_tiles(old, new);
            for level in 0..3u8 {
                for index in 0..tile_count(level, new) {
                    let changed = tile_at(level, index, old) != tile_at(level, index, new);
                    let t = tile_at(level, index, new).unwrap();
                    assert_eq!(listed.contains(&t), changed, "{old}→{new}: {t}");
                }
            }
        }
    }

    #[test]
    fn tiles_hold_stored_hashes_and_nodes_are_found_in_them() {
        // Build 600 leaves of stored hashes, cut tiles from them, and recompute every
        // complete node's hash from its tile.
        let size = 600u64;
        let mut stored: Vec<Hash> = Vec::new();
        let mut leaves = Vec::new();
        for i in 0..size {
            let leaf = leaf_hash(&i.to_be_bytes());
            stored.extend(stored_hashes_for_append(i, &leaf, stored.as_slice()).unwrap());
            leaves.push(leaf);
        }
        let read_tile = |t: &Tile| -> Vec<Hash> {
            t.stored_hash_indexes()
                .iter()
                .map(|&i| stored[i as usize])
                .collect()
        };
        let t = tile_at(0, 1, size).unwrap();
        assert_eq!(read_tile(&t), leaves[256..512].to_vec());
        let t1 = tile_at(1, 0, size).unwrap();
        assert_eq!(t1.width, 2);
        assert_eq!(read_tile(&t1)[1], root(&leaves[256..512]));
        for (i, h) in stored.iter().enumerate() {
            let node = crate::audit::merkle::split_stored_hash_index(i as u64);
            let (tile, range) = tile_for_node(node, size).unwrap();
            let content = read_tile(&tile);
            assert_eq!(root(&content[range]), *h, "{node:?} from {tile}");
        }
        // A node not complete at the size is not found.
        // Node (3, 75) spans leaves 600..608.
        assert_eq!(
            tile_for_node(
                Node {
                    level: 3,
                    index: 75
                },
                size
            ),
            None
        );
        assert!(tile_for_node(
            Node {
                level: 3,
                index: 75
            },
            608
        )
        .is_some());
    }
}
