//! The change feed (docs/FEED.md): every event of the audit log that a department's
//! subtree sees, in log order, as NDJSON lines. Pure: cursors and the lines; the store
//! finds the leaves (`Store::feed`), the HTTP adapter streams them.
//!
//! A cursor is a position in the log (the index of the next leaf to read) bound to the
//! reader's department: `<position>.<tag>`, the tag being the first 4 bytes of
//! SHA-256(`karmayogi-lrs/feed-cursor/v1` ‖ 0x00 ‖ department path), in hex. Positions only
//! grow, so every event's cursor is greater than the one before, and a reader resumes
//! from the cursor of the last event it processed without gap or repeat.
use crate::audit::records::{FeedEvent, FeedItem};
use crate::departments::{self, Department};
use chrono::{DateTime, SecondsFormat};
use sha2::{Digest, Sha256};

/// Events per response unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 1_000;
/// Most events one response carries.
pub const MAX_LIMIT: usize = 100_000;
/// Longest long-poll (`wait`), in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;

const CURSOR_TAG: &[u8] = b"karmayogi-lrs/feed-cursor/v1";

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("malformed cursor: expected `<position>.<tag>` as the feed gave it")]
    Malformed,
    #[error("this cursor belongs to another department's feed")]
    Foreign,
    #[error("this cursor is ahead of the log ({position} > {size} leaves)")]
    Ahead { position: u64, size: u64 },
}

fn tag(department: &Department) -> String {
    let mut h = Sha256::new();
    h.update(CURSOR_TAG);
    h.update([0]);
    h.update(department.as_str().as_bytes());
    hex::encode(&h.finalize()[..4])
}

/// The cursor of `position` in `department`'s feed.
pub fn cursor(position: u64, department: &Department) -> String {
    format!("{position}.{}", tag(department))
}

/// The position a cursor names, if it is `department`'s and within a log of `size`
/// leaves.
pub fn position(cursor: &str, department: &Department, size: u64) -> Result<u64, CursorError> {
    let (pos, t) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
    let well_formed = !pos.is_empty()
        && pos.len() <= 20
        && pos.bytes().all(|b| b.is_ascii_digit())
        && (pos == "0" || !pos.starts_with('0'))
        && t.len() == 8
        && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(CursorError::Malformed);
    }
    let position: u64 = pos.parse().map_err(|_| CursorError::Malformed)?;
    if t != tag(department) {
        return Err(CursorError::Foreign);
    }
    if position > size {
        return Err(CursorError::Ahead { position, size });
    }
    Ok(position)
}

fn department_name(d: &Department) -> &str {
    if d.is_root() {
        "/"
    } else {
        d.as_str()
    }
}

/// Appends a JSON string literal.
fn push_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping of a &str cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn rfc3339_us(us: u64) -> String {
    DateTime::from_timestamp_micros(us as i64)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// The NDJSON line of one event, as `reader` sees it (newline included):
/// - `{"cursor","leaf","event":"statement","department","statement"}`;
/// - `{"cursor","leaf","event":"voided","department","voidedStatementId","statement"}`
///   for a voiding statement (the statement is the voiding one);
/// - `{"cursor","leaf","event":"erased","erased","receipt","leaves","cursors"}`: the
///   statements of those leaves (the events with those cursors) were erased.
pub fn line(item: &FeedItem, reader: &Department, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"cursor\":");
    push_str(out, &cursor(item.leaf + 1, reader));
    out.extend_from_slice(b",\"leaf\":");
    out.extend_from_slice(itoa::Buffer::new().format(item.leaf).as_bytes());
    match &item.event {
        FeedEvent::Statement { key, json, voids } => {
            let (_, department) = departments::split_record_key(key);
            match voids {
                None => out.extend_from_slice(b",\"event\":\"statement\""),
                Some(target) => {
                    out.extend_from_slice(b",\"event\":\"voided\",\"voidedStatementId\":");
                    push_str(out, departments::split_record_key(target).0);
                }
            }
            out.extend_from_slice(b",\"department\":");
            push_str(out, department_name(&department));
            out.extend_from_slice(b",\"statement\":");
            // Stored statements are compact JSON text: embedded as they are.
            out.extend_from_slice(json.trim().as_bytes());
        }
        FeedEvent::Erasure {
            erased_us,
            receipt,
            leaves,
        } => {
            out.extend_from_slice(b",\"event\":\"erased\",\"erased\":");
            push_str(out, &rfc3339_us(*erased_us));
            out.extend_from_slice(b",\"receipt\":");
            push_str(out, &hex::encode(receipt.0));
            out.extend_from_slice(b",\"leaves\":[");
            for (i, l) in leaves.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(itoa::Buffer::new().format(*l).as_bytes());
            }
            out.extend_from_slice(b"],\"cursors\":[");
            for (i, l) in leaves.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_str(out, &cursor(l + 1, reader));
            }
            out.push(b']');
        }
    }
    out.extend_from_slice(b"}\n");
}

/// The last line of every response: where to resume, and the log's size when the
/// response was made (`{"cursor","event":"end","logSize"}`). A reader whose subtree saw
/// nothing new still moves its cursor on.
pub fn end_line(position: u64, reader: &Department, log_size: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"cursor\":");
    push_str(out, &cursor(position, reader));
    out.extend_from_slice(b",\"event\":\"end\",\"logSize\":");
    out.extend_from_slice(itoa::Buffer::new().format(log_size).as_bytes());
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::Hash;
    use serde_json::Value;

    fn d(p: &str) -> Department {
        Department::parse(p).expect("valid")
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_department() {
        let moe = d("moe");
        let c = cursor(42, &moe);
        assert_eq!(position(&c, &moe, 100), Ok(42));
        assert_eq!(position(&c, &d("moe/dhe"), 100), Err(CursorError::Foreign));
        assert_eq!(
            position(&c, &Department::root(), 100),
            Err(CursorError::Foreign)
        );
        assert_eq!(
            position(&c, &moe, 41),
            Err(CursorError::Ahead {
                position: 42,
                size: 41
            })
        );
        assert_eq!(position(&cursor(0, &moe), &moe, 0), Ok(0));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let root = Department::root();
        let good_tag = cursor(0, &root).split_once('.').map(|x| x.1.to_owned());
        let good_tag = good_tag.expect("a tag");
        for bad in [
            "",
            ".",
            "12",
            "12.",
            ".abcdef01",
            "-1.abcdef01",
            "01.abcdef01",
            "1.ABCDEF01",
            "1.abcdef0",
            "1.abcdef012",
            "99999999999999999999999.abcdef01",
            "1 .abcdef01",
            "1.abcdefgh",
        ] {
            assert_eq!(
                position(bad, &root, 10),
                Err(CursorError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            position(&format!("18446744073709551616.{good_tag}"), &root, 10),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn statement_voided_and_erased_lines_are_json_with_increasing_cursors() {
        let reader = d("moe");
        let items = [
            FeedItem {
                leaf: 3,
                event: FeedEvent::Statement {
                    key: "s1 moe/dhe".into(),
                    json: r#"{"id":"s1","verb":{"id":"v"}}"#.into(),
                    voids: None,
                },
            },
            FeedItem {
                leaf: 7,
                event: FeedEvent::Statement {
                    key: "s2 moe".into(),
                    json: r#"{"id":"s2"}"#.into(),
                    voids: Some("s1 moe".into()),
                },
            },
            FeedItem {
                leaf: 9,
                event: FeedEvent::Erasure {
                    erased_us: 1_700_000_000_000_001,
                    receipt: Hash([7; 32]),
                    leaves: vec![3],
                },
            },
        ];
        let mut out = Vec::new();
        for i in &items {
            line(i, &reader, &mut out);
        }
        end_line(12, &reader, 12, &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["event"], "statement");
        assert_eq!(lines[0]["department"], "moe/dhe");
        assert_eq!(lines[0]["statement"]["id"], "s1");
        assert_eq!(lines[1]["event"], "voided");
        assert_eq!(lines[1]["voidedStatementId"], "s1");
        assert_eq!(lines[2]["event"], "erased");
        assert_eq!(lines[2]["erased"], "2023-11-14T22:13:20.000001Z");
        assert_eq!(lines[2]["cursors"][0], lines[0]["cursor"]);
        assert_eq!(lines[3]["event"], "end");
        let positions: Vec<u64> = lines
            .iter()
            .map(|l| {
                let c = l["cursor"].as_str().expect("cursor");
                position(c, &reader, 100).expect("own cursor")
            })
            .collect();
        assert_eq!(positions, [4, 8, 10, 12]);
    }
}
