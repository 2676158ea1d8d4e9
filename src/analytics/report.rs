//! `GET /analytics/completions` (docs/ANALYTICS.md): its parameters, checked, and its
//! answer as JSON or CSV. Pure: the HTTP adapter reads the request, the store sums the
//! counters.
use super::query::{FigureRow, FiguresQuery, GroupBy, GroupKey};
use super::{date_of, day_of, Counts, Day, ALL_ACTIVITIES};
use crate::departments::Department;
use chrono::NaiveDate;
use serde_json::{json, Map, Value};

/// The parameters the endpoint takes.
pub const PARAMETERS: [&str; 4] = ["activity", "from", "to", "group_by"];
/// Most days one `group_by=day` answer covers.
pub const MAX_DAYS: i32 = 366;
/// Widest range of days the counters can hold (a statement's timestamp is a year from
/// 0000 to 9999).
const FIRST_DAY: Day = -719_528;
const LAST_DAY: Day = 2_932_896;

/// A rejected parameter: what was wrong and which parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParameter {
    pub message: String,
    pub parameter: &'static str,
}

fn bad(parameter: &'static str, message: impl Into<String>) -> BadParameter {
    BadParameter {
        message: message.into(),
        parameter,
    }
}

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `None`: every activity.
    pub activity: Option<String>,
    /// The day range asked for or implied; `None` ends are open.
    pub from: Option<Day>,
    pub to: Option<Day>,
    pub group_by: GroupBy,
}

fn date(parameter: &'static str, s: &str) -> Result<Day, BadParameter> {
    let ok = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
    ok.then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .map(day_of)
        .ok_or_else(|| {
            bad(
                parameter,
                format!("`{parameter}` must be a date YYYY-MM-DD"),
            )
        })
}

impl Request {
    /// Checks the parameters (`get` answers a parameter's value). `today` fills in the
    /// range of `group_by=day` when neither end is given: the 366 days up to today.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        today: Day,
        is_iri: impl Fn(&str) -> bool,
    ) -> Result<Request, BadParameter> {
        let group_by = match get("group_by") {
            None => GroupBy::Day,
            Some(g) => GroupBy::parse(g)
                .ok_or_else(|| bad("group_by", "`group_by` must be day, department or activity"))?,
        };
        let activity = match get("activity") {
            None => None,
            Some(a) if is_iri(a) => Some(a.to_owned()),
            Some(_) => return Err(bad("activity", "`activity` must be an IRI")),
        };
        let mut from = get("from").map(|s| date("from", s)).transpose()?;
        let mut to = get("to").map(|s| date("to", s)).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(bad("from", "`from` must not be after `to`"));
            }
        }
        if group_by == GroupBy::Day {
            let span = MAX_DAYS - 1;
            match (from, to) {
                (None, None) => (from, to) = (Some(today - span), Some(today)),
                (Some(f), None) => to = Some(f + span),
                (None, Some(t)) => from = Some(t - span),
                (Some(f), Some(t)) if t - f + 1 > MAX_DAYS => {
                    return Err(bad(
                        "to",
                        format!("group_by=day covers at most {MAX_DAYS} days: narrow `from`..`to`"),
                    ))
                }
                _ => {}
            }
        }
        Ok(Request {
            activity,
            from,
            to,
            group_by,
        })
    }

    /// The store's query for a reader of `subtree`.
    pub fn query(&self, subtree: &Department) -> FiguresQuery {
        FiguresQuery {
            subtree: subtree.clone(),
            activity: self
                .activity
                .clone()
                .unwrap_or_else(|| ALL_ACTIVITIES.to_owned()),
            from: self.from.unwrap_or(FIRST_DAY),
            to: self.to.unwrap_or(LAST_DAY),
            group_by: self.group_by,
        }
    }
}

fn date_text(day: Day) -> String {
    date_of(day).format("%Y-%m-%d").to_string()
}

fn group_text(g: &GroupKey) -> String {
    match g {
        GroupKey::Day(d) => date_text(*d),
        GroupKey::Department(d) if d.is_root() => "/".to_owned(),
        GroupKey::Department(d) => d.as_str().to_owned(),
        GroupKey::Activity(a) => a.clone(),
    }
}

fn counts_json(c: &Counts, into: &mut Map<String, Value>) {
    into.insert("attempted".into(), c.attempted.into());
    into.insert("completed".into(), c.completed.into());
    into.insert("passed".into(), c.passed.into());
    into.insert("failed".into(), c.failed.into());
    into.insert("scored".into(), c.scored.into());
    into.insert(
        "averageScaledScore".into(),
        c.average_scaled_score().map_or(Value::Null, Value::from),
    );
}

/// The sum of every row.
pub fn totals(rows: &[FigureRow]) -> Counts {
    rows.iter().fold(Counts::default(), |mut t, r| {
        t.add(&r.counts);
        t
    })
}

/// The JSON answer.
pub fn to_json(req: &Request, rows: &[FigureRow], projected_through: u64, log_size: u64) -> Value {
    let name = req.group_by.name();
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert(name.into(), group_text(&r.group).into());
            counts_json(&r.counts, &mut m);
            Value::Object(m)
        })
        .collect();
    let mut total = Map::new();
    counts_json(&totals(rows), &mut total);
    json!({
        "activity": req.activity,
        "from": req.from.map(date_text),
        "to": req.to.map(date_text),
        "groupBy": name,
        "projectedThrough": projected_through,
        "logSize": log_size,
        "rows": list,
        "totals": total,
    })
}

fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// The CSV answer (RFC 4180): a header row, then one row per group, the same columns as
/// the JSON rows.
pub fn to_csv(req: &Request, rows: &[FigureRow]) -> String {
    let mut out = format!(
        "{},attempted,completed,passed,failed,scored,averageScaledScore\r\n",
        req.group_by.name()
    );
    for r in rows {
        csv_field(&group_text(&r.group), &mut out);
        let c = &r.counts;
        out.push_str(&format!(
            ",{},{},{},{},{},{}\r\n",
            c.attempted,
            c.completed,
            c.passed,
            c.failed,
            c.scored,
            c.average_scaled_score()
                .map(|a| a.to_string())
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Request, BadParameter> {
        let today = day_of(NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default());
        Request::parse(
            |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v),
            today,
            |s| s.starts_with("https://"),
        )
    }

    #[test]
    fn parameters_are_checked() {
        let ok = parse(&[("from", "2026-01-01"), ("to", "2026-12-31")]).expect("valid");
        assert_eq!(ok.group_by, GroupBy::Day);
        assert_eq!(ok.to.zip(ok.from).map(|(t, f)| t - f + 1), Some(365));
        for (pairs, at) in [
            (vec![("from", "2026-1-01")], "from"),
            (vec![("to", "2026-02-30")], "to"),
            (vec![("from", "2026-03-02"), ("to", "2026-03-01")], "from"),
            (vec![("from", "2024-01-01"), ("to", "2025-01-01")], "to"),
            (vec![("group_by", "week")], "group_by"),
            (vec![("activity", "not an iri")], "activity"),
        ] {
            assert_eq!(parse(&pairs).map_err(|e| e.parameter), Err(at), "{pairs:?}");
        }
        // 366 days is allowed (a leap year); other groupings have no limit.
        assert!(parse(&[("from", "2024-01-01"), ("to", "2024-12-31")]).is_ok());
        let all = parse(&[("group_by", "department")]).expect("valid");
        assert_eq!((all.from, all.to), (None, None));
        let d = parse(&[]).expect("valid");
        assert_eq!(d.to.zip(d.from).map(|(t, f)| t - f + 1), Some(MAX_DAYS));
    }

    #[test]
    fn csv_has_the_json_columns_and_quotes_what_needs_it() {
        let req = parse(&[("group_by", "activity")]).expect("valid");
        let rows = vec![FigureRow {
            group: GroupKey::Activity("https://x.in/a,b".into()),
            counts: Counts {
                attempted: 2,
                completed: 1,
                passed: 1,
                failed: 0,
                score_sum: 1_500_000_000,
                scored: 2,
            },
        }];
        let csv = to_csv(&req, &rows);
        assert_eq!(
            csv,
            "activity,attempted,completed,passed,failed,scored,averageScaledScore\r\n\"https://x.in/a,b\",2,1,1,0,2,0.75\r\n"
        );
        let j = to_json(&req, &rows, 5, 6);
        assert_eq!(j["rows"][0]["activity"], "https://x.in/a,b");
        assert_eq!(j["rows"][0]["averageScaledScore"], 0.75);
        assert_eq!(j["totals"]["attempted"], 2);
        assert_eq!(j["projectedThrough"], 5);
    }
}
