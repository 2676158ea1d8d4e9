//! The records the store keeps for completion figures and the figures' query: what the
//! projector writes (learner rows with their contributions), what it reads back, and
//! the grouped counters `GET /analytics/completions` answers with.
use super::{Contribution, Counts, Day};
use crate::departments::Department;

/// One learner row's identity: (department, activity, learner).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    pub department: Department,
    pub activity: String,
    /// The learner's identity key (`xapi::agent::ifi_key`).
    pub learner: String,
}

/// One row to write.
#[derive(Debug, Clone)]
pub struct RowWrite {
    pub key: RowKey,
    /// The row (`LearnerRow::to_text`); `None` deletes it (no statement left).
    pub row: Option<String>,
    /// Every counter the row adds to. The store takes back what the stored row
    /// contributed and adds these, so the counters always equal the sum over the rows.
    pub contributions: Vec<Contribution>,
    /// Record keys of the statements this write reads the row from. If one is no longer
    /// stored (an erasure came in between), the row is left as the erasure left it.
    pub requires: Vec<String>,
}

/// One atomic step of the projection: the rows of the feed's leaves `[from, to)`.
#[derive(Debug, Clone)]
pub struct ProjectionWrite {
    /// The position the projection was at when the leaves were read; nothing is written
    /// when the stored position is no longer this (another projector moved it).
    pub from: u64,
    pub to: u64,
    pub rows: Vec<RowWrite>,
}

/// How figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Department,
    Activity,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "day" => Some(GroupBy::Day),
            "department" => Some(GroupBy::Department),
            "activity" => Some(GroupBy::Activity),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Department => "department",
            GroupBy::Activity => "activity",
        }
    }
}

/// Counters of a subtree summed by group.
#[derive(Debug, Clone)]
pub struct FiguresQuery {
    /// The department and everything below it.
    pub subtree: Department,
    /// One activity, or `ALL_ACTIVITIES`; with `GroupBy::Activity` and `ALL_ACTIVITIES`,
    /// every activity on its own.
    pub activity: String,
    /// Days `from..=to`.
    pub from: Day,
    pub to: Day,
    pub group_by: GroupBy,
}

/// What a group is named by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKey {
    Day(Day),
    Department(Department),
    Activity(String),
}

/// One group's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureRow {
    pub group: GroupKey,
    pub counts: Counts,
}
