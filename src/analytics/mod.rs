//! Completion figures (docs/ANALYTICS.md): how one stored statement bears on one learner's
//! progress in one activity, and what that progress adds to the per-day counters. Pure:
//! the projector (`crate::completions`) reads the feed and the store keeps the rows and
//! counters this module prepares.
//!
//! A *learner row* is the state of one (department, activity, learner): the day of the
//! first attempt, first completion, first pass and first failure, and the best scaled
//! score with the day it was reached. Merging is commutative and idempotent (minimum of
//! days, maximum of scores), so the order statements arrive in never changes a row, and a
//! row can always be rebuilt by folding the statements that remain.
//!
//! A row *contributes* one learner to each counter on its day: attempted, completed,
//! passed, failed (only while the learner has not passed), and its best score to the
//! score sum and score count. Each contribution is counted twice: under the activity and
//! under [`ALL_ACTIVITIES`], so figures over every activity are one index range too.
use crate::departments::Department;
use crate::xapi::agent::ifi_key;
use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod query;
pub mod report;

pub const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
pub const PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
pub const FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";

/// The counter key that sums every activity (no IRI is empty).
pub const ALL_ACTIVITIES: &str = "";

/// Scaled scores are kept in units of 10⁻⁹, so sums and their reversal (voiding, erasure)
/// are exact integer arithmetic.
pub const SCORE_UNIT: f64 = 1e9;

/// A UTC calendar day: days since 1970-01-01.
pub type Day = i32;

/// The day of a date.
pub fn day_of(date: NaiveDate) -> Day {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days() as Day
}

/// The date of a day.
pub fn date_of(day: Day) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    epoch + chrono::Duration::days(day as i64)
}

/// What one statement says about one learner and one activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub activity: String,
    /// The learner's identity key (`xapi::agent::ifi_key` of the actor).
    pub learner: String,
    pub day: Day,
    pub completed: bool,
    pub passed: bool,
    pub failed: bool,
    /// Scaled score in [`SCORE_UNIT`]s.
    pub score: Option<i64>,
}

/// The learner and activity a statement concerns, and what it says of them; `None` when
/// its object is not an Activity or its actor has no identity (an anonymous group).
pub fn observe(statement: &Value) -> Option<Observation> {
    let object = statement.get("object")?;
    let kind = object.get("objectType").and_then(Value::as_str);
    if !matches!(kind, None | Some("Activity")) {
        return None;
    }
    let activity = object.get("id")?.as_str()?.to_owned();
    let learner = ifi_key(statement.get("actor")?)?;
    let day = statement_day(statement)?;
    let verb = statement
        .get("verb")
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let result = statement.get("result");
    let success = result
        .and_then(|r| r.get("success"))
        .and_then(Value::as_bool);
    let completion = result
        .and_then(|r| r.get("completion"))
        .and_then(Value::as_bool);
    let score = result
        .and_then(|r| r.get("score"))
        .and_then(|s| s.get("scaled"))
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite())
        .map(|s| (s.clamp(-1.0, 1.0) * SCORE_UNIT).round() as i64);
    Some(Observation {
        activity,
        learner,
        day,
        completed: verb == COMPLETED || completion == Some(true),
        passed: verb == PASSED || success == Some(true),
        failed: verb == FAILED || success == Some(false),
        score,
    })
}

/// The UTC day of the statement's `timestamp`, else of its `stored`.
pub fn statement_day(statement: &Value) -> Option<Day> {
    ["timestamp", "stored"].iter().find_map(|k| {
        let t = statement.get(*k)?.as_str()?;
        let t = DateTime::parse_from_rfc3339(t).ok()?;
        Some(day_of(t.naive_utc().date()))
    })
}

/// One learner's progress in one activity of one department.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnerRow {
    #[serde(rename = "a")]
    pub attempted: Option<Day>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Day>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<Day>,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Day>,
    /// The best scaled score (in [`SCORE_UNIT`]s) and the first day it was reached.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub best: Option<(i64, Day)>,
}

fn earliest(a: Option<Day>, b: Option<Day>) -> Option<Day> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

impl LearnerRow {
    /// Whether the row holds nothing (no statement left).
    pub fn is_empty(&self) -> bool {
        self.attempted.is_none()
    }

    /// The row as stored (compact JSON).
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored row; an empty one when unreadable (the projector then rebuilds nothing
    /// from it, and a later voiding or rebuild restores it).
    pub fn from_text(text: &str) -> LearnerRow {
        serde_json::from_str(text).unwrap_or_default()
    }
}

/// The row after one more statement about it.
pub fn merge(row: LearnerRow, o: &Observation) -> LearnerRow {
    let on = |flag: bool| flag.then_some(o.day);
    let best = match (row.best, o.score) {
        (None, s) => s.map(|s| (s, o.day)),
        (Some(b), None) => Some(b),
        // Higher score wins; an equal one keeps the earlier day.
        (Some((bs, bd)), Some(s)) => Some(if s > bs || (s == bs && o.day < bd) {
            (s, o.day)
        } else {
            (bs, bd)
        }),
    };
    LearnerRow {
        attempted: earliest(row.attempted, Some(o.day)),
        completed: earliest(row.completed, on(o.completed)),
        passed: earliest(row.passed, on(o.passed)),
        failed: earliest(row.failed, on(o.failed)),
        best,
    }
}

/// The row of a set of statements (all about the same learner and activity).
pub fn fold<'a>(observations: impl IntoIterator<Item = &'a Observation>) -> LearnerRow {
    observations.into_iter().fold(LearnerRow::default(), merge)
}

/// Learners (and score sums) on one counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub attempted: i64,
    pub completed: i64,
    pub passed: i64,
    pub failed: i64,
    /// Sum of the best scaled scores, in [`SCORE_UNIT`]s.
    pub score_sum: i64,
    /// Learners with a score.
    pub scored: i64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.attempted += o.attempted;
        self.completed += o.completed;
        self.passed += o.passed;
        self.failed += o.failed;
        self.score_sum += o.score_sum;
        self.scored += o.scored;
    }

    pub fn negated(&self) -> Counts {
        Counts {
            attempted: -self.attempted,
            completed: -self.completed,
            passed: -self.passed,
            failed: -self.failed,
            score_sum: -self.score_sum,
            scored: -self.scored,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    /// Whether a change by these counts lowers any counter (so that it may reach zero).
    pub fn lowers(&self) -> bool {
        [
            self.attempted,
            self.completed,
            self.passed,
            self.failed,
            self.score_sum,
            self.scored,
        ]
        .iter()
        .any(|n| *n < 0)
    }

    /// The mean best scaled score, when any learner has one.
    pub fn average_scaled_score(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.score_sum as f64 / SCORE_UNIT / self.scored as f64)
    }
}

/// The net change one projection step makes to each counter it touches: what the rows it
/// replaces contributed, taken back, plus what their new versions contribute. Summed
/// before the store is written, so that a counter a thousand rows touch is written once,
/// and a row whose contributions did not change writes no counter at all.
#[derive(Debug, Default)]
pub struct CounterChanges(std::collections::BTreeMap<(Department, String, Day), Counts>);

impl CounterChanges {
    /// Takes back what a stored row contributed in `department`.
    pub fn take_back(&mut self, department: &Department, contributions: &[Contribution]) {
        for c in contributions {
            self.at(department, c).add(&c.counts.negated());
        }
    }

    /// Adds what a new row contributes in `department`.
    pub fn add(&mut self, department: &Department, contributions: &[Contribution]) {
        for c in contributions {
            self.at(department, c).add(&c.counts);
        }
    }

    fn at(&mut self, department: &Department, c: &Contribution) -> &mut Counts {
        self.0
            .entry((department.clone(), c.activity.clone(), c.day))
            .or_default()
    }

    /// The changes that are not zero: (department, activity key, day, change).
    pub fn into_changes(self) -> impl Iterator<Item = (Department, String, Day, Counts)> {
        self.0
            .into_iter()
            .filter(|(_, n)| !n.is_zero())
            .map(|((d, a, day), n)| (d, a, day, n))
    }
}

/// What a row adds to one counter: (activity key, day) in the row's department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The activity, or [`ALL_ACTIVITIES`].
    pub activity: String,
    pub day: Day,
    pub counts: Counts,
}

/// Per-day counts of one row, one entry per day it touches, in day order.
pub fn daily(row: &LearnerRow) -> Vec<(Day, Counts)> {
    let mut out: Vec<(Day, Counts)> = Vec::with_capacity(4);
    let mut at = |day: Option<Day>, f: &dyn Fn(&mut Counts)| {
        if let Some(d) = day {
            match out.iter_mut().find(|(x, _)| *x == d) {
                Some((_, c)) => f(c),
                None => {
                    let mut c = Counts::default();
                    f(&mut c);
                    out.push((d, c));
                }
            }
        }
    };
    at(row.attempted, &|c| c.attempted += 1);
    at(row.completed, &|c| c.completed += 1);
    at(row.passed, &|c| c.passed += 1);
    // A learner who passed is no longer counted as failed.
    if row.passed.is_none() {
        at(row.failed, &|c| c.failed += 1);
    }
    if let Some((score, day)) = row.best {
        at(Some(day), &|c| {
            c.score_sum += score;
            c.scored += 1;
        });
    }
    out.sort_by_key(|(d, _)| *d);
    out
}

/// Every counter a row of `activity` adds to: under the activity and under
/// [`ALL_ACTIVITIES`].
pub fn contributions(activity: &str, row: &LearnerRow) -> Vec<Contribution> {
    let days = daily(row);
    let mut out = Vec::with_capacity(days.len() * 2);
    for key in [activity, ALL_ACTIVITIES] {
        out.extend(days.iter().map(|(day, counts)| Contribution {
            activity: key.to_owned(),
            day: *day,
            counts: *counts,
        }));
    }
    out
}

/// What replacing `old` by `new` changes on each counter (new minus old; zero changes
/// left out), in (activity, day) order.
pub fn delta(activity: &str, old: &LearnerRow, new: &LearnerRow) -> Vec<Contribution> {
    let mut all: Vec<Contribution> = contributions(activity, new);
    for c in contributions(activity, old) {
        match all
            .iter_mut()
            .find(|x| x.activity == c.activity && x.day == c.day)
        {
            Some(x) => x.counts.add(&c.counts.negated()),
            None => all.push(Contribution {
                counts: c.counts.negated(),
                ..c
            }),
        }
    }
    all.retain(|c| !c.counts.is_zero());
    all.sort_by(|a, b| (&a.activity, a.day).cmp(&(&b.activity, b.day)));
    all
}

/// Serialized contributions as the store keeps them beside a row.
pub fn contributions_text(list: &[Contribution]) -> String {
    serde_json::to_string(list).unwrap_or_default()
}

/// Stored contributions (none when unreadable).
pub fn contributions_from_text(text: &str) -> Vec<Contribution> {
    serde_json::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests;
