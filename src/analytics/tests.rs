use super::*;
use serde_json::json;

fn st(actor: &str, verb: &str, activity: &str, ts: &str, result: Value) -> Value {
    let mut s = json!({
        "actor": {"mbox": format!("mailto:{actor}@gov.in")},
        "verb": {"id": verb},
        "object": {"id": activity},
        "timestamp": ts,
        "stored": "2030-01-01T00:00:00Z",
    });
    if !result.is_null() {
        s["result"] = result;
    }
    s
}

fn obs(s: &Value) -> Observation {
    observe(s).expect("an observation")
}

const EXP: &str = "http://adlnet.gov/expapi/verbs/experienced";
const A: &str = "https://igot.gov.in/c/1";

fn d(s: &str) -> Day {
    day_of(NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date"))
}

#[test]
fn days_round_trip_and_use_utc() {
    assert_eq!(day_of(date_of(20_000)), 20_000);
    assert_eq!(d("1970-01-02"), 1);
    // 2024-03-01T02:00+05:30 is still 29 February in UTC.
    let s = st("a", EXP, A, "2024-03-01T02:00:00+05:30", Value::Null);
    assert_eq!(obs(&s).day, d("2024-02-29"));
    let mut s = st("a", EXP, A, "x", Value::Null);
    s.as_object_mut().map(|o| o.remove("timestamp"));
    assert_eq!(obs(&s).day, d("2030-01-01"), "falls back to stored");
}

#[test]
fn verbs_and_results_decide_completed_passed_failed() {
    let t = "2024-05-01T10:00:00Z";
    let o = obs(&st("a", COMPLETED, A, t, Value::Null));
    assert!(o.completed && !o.passed && !o.failed);
    let o = obs(&st("a", PASSED, A, t, Value::Null));
    assert!(o.passed && !o.completed && !o.failed);
    let o = obs(&st("a", FAILED, A, t, Value::Null));
    assert!(o.failed && !o.passed);
    let o = obs(&st(
        "a",
        EXP,
        A,
        t,
        json!({"success": true, "completion": true, "score": {"scaled": 0.75}}),
    ));
    assert!(o.passed && o.completed && !o.failed);
    assert_eq!(o.score, Some(750_000_000));
    let o = obs(&st("a", EXP, A, t, json!({"success": false})));
    assert!(o.failed && !o.passed);
    let o = obs(&st("a", EXP, A, t, json!({"completion": false})));
    assert!(!o.completed);
}

#[test]
fn only_activities_and_identified_actors_count() {
    let t = "2024-05-01T10:00:00Z";
    let mut s = st("a", EXP, A, t, Value::Null);
    s["object"] = json!({"objectType": "Agent", "mbox": "mailto:x@y.in"});
    assert_eq!(observe(&s), None);
    s["object"] =
        json!({"objectType": "StatementRef", "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"});
    assert_eq!(observe(&s), None);
    let mut s = st("a", EXP, A, t, Value::Null);
    s["actor"] = json!({"objectType": "Group", "member": [{"mbox": "mailto:a@b.in"}]});
    assert_eq!(observe(&s), None, "an anonymous group is nobody");
    s["actor"] = json!({"objectType": "Group", "mbox": "mailto:team@b.in"});
    assert_eq!(obs(&s).learner, "Group|mbox|mailto:team@b.in");
    let s = st("a", EXP, A, t, Value::Null);
    assert_eq!(obs(&s).learner, "Agent|mbox|mailto:a@gov.in");
    assert_eq!(obs(&s).activity, A);
}

#[test]
fn a_row_keeps_first_days_and_best_score_whatever_the_order() {
    let list = [
        st(
            "a",
            EXP,
            A,
            "2024-05-03T00:00:00Z",
            json!({"score": {"scaled": 0.5}}),
        ),
        st(
            "a",
            FAILED,
            A,
            "2024-05-02T00:00:00Z",
            json!({"score": {"scaled": 0.2}}),
        ),
        st("a", COMPLETED, A, "2024-05-05T00:00:00Z", Value::Null),
        st(
            "a",
            PASSED,
            A,
            "2024-05-06T00:00:00Z",
            json!({"score": {"scaled": 0.9}}),
        ),
        st(
            "a",
            EXP,
            A,
            "2024-05-07T00:00:00Z",
            json!({"score": {"scaled": 0.9}}),
        ),
        st("a", COMPLETED, A, "2024-05-04T00:00:00Z", Value::Null),
    ];
    let o: Vec<Observation> = list.iter().map(obs).collect();
    let row = fold(&o);
    assert_eq!(
        row,
        LearnerRow {
            attempted: Some(d("2024-05-02")),
            completed: Some(d("2024-05-04")),
            passed: Some(d("2024-05-06")),
            failed: Some(d("2024-05-02")),
            best: Some((900_000_000, d("2024-05-06"))),
        }
    );
    // Every order gives the same row; merging a statement twice changes nothing.
    let mut rev = o.clone();
    rev.reverse();
    assert_eq!(fold(&rev), row);
    for k in 0..o.len() {
        let mut r = o.clone();
        r.rotate_left(k);
        assert_eq!(fold(&r), row);
        assert_eq!(merge(row, &o[k]), row);
    }
    assert_eq!(LearnerRow::from_text(&row.to_text()), row);
}

#[test]
fn contributions_count_a_learner_once_per_counter_and_failure_only_without_a_pass() {
    let failed = fold(&[
        obs(&st(
            "a",
            FAILED,
            A,
            "2024-05-02T00:00:00Z",
            json!({"score": {"scaled": 0.25}}),
        )),
        obs(&st("a", EXP, A, "2024-05-01T00:00:00Z", Value::Null)),
    ]);
    let days = daily(&failed);
    assert_eq!(
        days,
        vec![
            (
                d("2024-05-01"),
                Counts {
                    attempted: 1,
                    ..Counts::default()
                }
            ),
            (
                d("2024-05-02"),
                Counts {
                    failed: 1,
                    score_sum: 250_000_000,
                    scored: 1,
                    ..Counts::default()
                }
            ),
        ]
    );
    let passed = merge(
        failed,
        &obs(&st("a", PASSED, A, "2024-05-03T00:00:00Z", Value::Null)),
    );
    let total = daily(&passed)
        .iter()
        .fold(Counts::default(), |mut t, (_, c)| {
            t.add(c);
            t
        });
    assert_eq!(total.failed, 0, "a pass takes the failure back");
    assert_eq!((total.attempted, total.passed, total.scored), (1, 1, 1));
    let c = contributions(A, &passed);
    assert_eq!(c.len(), 2 * daily(&passed).len());
    assert!(c.iter().any(|x| x.activity == ALL_ACTIVITIES));
    assert_eq!(contributions_from_text(&contributions_text(&c)), c);
    assert!(contributions(A, &LearnerRow::default()).is_empty());
}

#[test]
fn delta_is_new_minus_old_and_voiding_is_a_rebuild_from_what_remains() {
    let a = obs(&st("a", EXP, A, "2024-05-01T00:00:00Z", Value::Null));
    let b = obs(&st(
        "a",
        PASSED,
        A,
        "2024-05-02T00:00:00Z",
        json!({"score": {"scaled": 1.0}}),
    ));
    let c = obs(&st("a", FAILED, A, "2024-05-03T00:00:00Z", Value::Null));
    let old = fold([&a, &c]);
    let new = merge(old, &b);
    let dlt = delta(A, &old, &new);
    // Applying the delta to old's contributions gives new's.
    let sum = |list: &[Contribution], key: &str| {
        list.iter()
            .filter(|x| x.activity == key)
            .fold(Counts::default(), |mut t, x| {
                t.add(&x.counts);
                t
            })
    };
    let mut applied = sum(&contributions(A, &old), A);
    applied.add(&sum(&dlt, A));
    assert_eq!(applied, sum(&contributions(A, &new), A));
    assert_eq!(sum(&dlt, A).failed, -1);
    assert_eq!(sum(&dlt, ALL_ACTIVITIES).passed, 1);
    assert!(delta(A, &new, &new).is_empty());
    // Voiding b: the row is rebuilt from a and c; the counters move back exactly.
    let rebuilt = fold([&a, &c]);
    assert_eq!(rebuilt, old);
    let back = delta(A, &new, &rebuilt);
    let mut undone = sum(&dlt, A);
    undone.add(&sum(&back, A));
    assert!(undone.is_zero());
    // Voiding everything empties the row: every contribution is taken back.
    let gone = fold(std::iter::empty::<&Observation>());
    assert!(gone.is_empty());
    let mut zero = sum(&contributions(A, &new), A);
    zero.add(&sum(&delta(A, &new, &gone), A));
    assert!(zero.is_zero());
}

#[test]
fn average_scaled_score_is_exact_over_sums() {
    let c = Counts {
        score_sum: 1_500_000_000,
        scored: 2,
        ..Counts::default()
    };
    assert_eq!(c.average_scaled_score(), Some(0.75));
    assert_eq!(Counts::default().average_scaled_score(), None);
}

/// A projection step writes each counter once, with the net change of all its rows; a
/// row taken back and added again unchanged writes nothing.
#[test]
fn counter_changes_sum_per_counter_and_drop_what_nets_to_zero() {
    let moe = Department::parse("moe").expect("a department");
    let c = |activity: &str, day: Day, completed: i64| Contribution {
        activity: activity.to_owned(),
        day,
        counts: Counts {
            attempted: 1,
            completed,
            ..Counts::default()
        },
    };
    let mut changes = CounterChanges::default();
    // Row 1 unchanged: taken back and added again.
    changes.take_back(&moe, &[c("a", 10, 0)]);
    changes.add(&moe, &[c("a", 10, 0)]);
    // Row 2 completes `a` on day 10; row 3 is new, on `b`; both also in the root.
    changes.take_back(&moe, &[c("a", 10, 0)]);
    changes.add(&moe, &[c("a", 10, 1)]);
    changes.add(&moe, &[c("b", 11, 0)]);
    changes.add(&Department::root(), &[c("b", 11, 0), c("b", 11, 1)]);
    let out: Vec<_> = changes.into_changes().collect();
    let completed_only = Counts {
        completed: 1,
        ..Counts::default()
    };
    let new_row = Counts {
        attempted: 1,
        ..Counts::default()
    };
    let two = Counts {
        attempted: 2,
        completed: 1,
        ..Counts::default()
    };
    assert_eq!(
        out,
        vec![
            (Department::root(), "b".to_owned(), 11, two),
            (moe.clone(), "a".to_owned(), 10, completed_only),
            (moe.clone(), "b".to_owned(), 11, new_row),
        ]
    );
    assert!(!completed_only.lowers());
    assert!(completed_only.negated().lowers());
}
