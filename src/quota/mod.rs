//! Per-credential rate limits: pure rules, no store, no HTTP.
//!
//! A limit is a token bucket (rate per second, burst). A request takes one token from the
//! request bucket; a statement batch takes one token per statement from the statement
//! bucket, all or nothing, so a batch over the allowance is refused whole. State lives in
//! process memory: a restart refills every bucket, and several processes each count alone.

use crate::departments::Department;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A rate (tokens per second) and the burst a full bucket holds. `rate == 0` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: f64,
}

impl Limit {
    /// A burst below one token could never admit anything; it is raised to the rate (at least 1).
    pub fn new(per_second: f64, burst: f64) -> Option<Limit> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return None;
        }
        let burst = if burst.is_finite() && burst >= 1.0 {
            burst
        } else {
            per_second.max(1.0)
        };
        Some(Limit { per_second, burst })
    }
}

/// The limits of one department as set by an administrator: `None` means "inherit".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DepartmentLimits {
    pub requests: Option<Option<Limit>>,
    pub statements: Option<Option<Limit>>,
}

impl Limit {
    fn to_json(self) -> Value {
        json!({ "perSecond": self.per_second, "burst": self.burst })
    }
}

/// What was wrong with a department's `limits` object: where (a JSON pointer below
/// `/limits`) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsError {
    pub path: String,
    pub message: String,
}

fn limits_error(path: &str, message: impl Into<String>) -> LimitsError {
    LimitsError {
        path: format!("/limits{path}"),
        message: message.into(),
    }
}

impl DepartmentLimits {
    /// The JSON form an administrator sends and reads back:
    /// `{"requests": {"perSecond": 50, "burst": 100}, "statements": null}`. A missing
    /// member inherits from the department above; `null` is explicitly unlimited.
    pub fn from_json(v: &Value) -> Result<DepartmentLimits, LimitsError> {
        let Value::Object(map) = v else {
            return Err(limits_error("", "`limits` must be a JSON object"));
        };
        if let Some(k) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "requests" | "statements"))
        {
            return Err(limits_error(
                &format!("/{k}"),
                format!("unknown member `{k}`: only `requests` and `statements` are limits"),
            ));
        }
        Ok(DepartmentLimits {
            requests: member(map, "requests")?,
            statements: member(map, "statements")?,
        })
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (name, l) in [("requests", self.requests), ("statements", self.statements)] {
            if let Some(l) = l {
                out.insert(name.into(), l.map(Limit::to_json).unwrap_or(Value::Null));
            }
        }
        Value::Object(out)
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_none() && self.statements.is_none()
    }

    /// The stored text (`to_json` written out) read back; text that does not read, which
    /// only a hand edit could leave, counts as nothing set.
    pub fn from_stored(text: Option<&str>) -> DepartmentLimits {
        text.and_then(|t| serde_json::from_str::<Value>(t).ok())
            .and_then(|v| DepartmentLimits::from_json(&v).ok())
            .unwrap_or_default()
    }
}

/// One member of `limits`: absent → inherit, `null` → unlimited, else a rate.
fn member(map: &Map<String, Value>, name: &str) -> Result<Option<Option<Limit>>, LimitsError> {
    let Some(v) = map.get(name) else {
        return Ok(None);
    };
    let Value::Object(l) = v else {
        return match v {
            Value::Null => Ok(Some(None)),
            _ => Err(limits_error(
                &format!("/{name}"),
                "a limit is an object {\"perSecond\": n, \"burst\": n} or null (unlimited)",
            )),
        };
    };
    if let Some(k) = l
        .keys()
        .find(|k| !matches!(k.as_str(), "perSecond" | "burst"))
    {
        return Err(limits_error(
            &format!("/{name}/{k}"),
            format!("unknown member `{k}`: a limit has `perSecond` and `burst`"),
        ));
    }
    let number = |k: &str, required: bool| -> Result<Option<f64>, LimitsError> {
        match l.get(k) {
            None if !required => Ok(None),
            Some(n) => match n.as_f64() {
                Some(f) if f.is_finite() && f > 0.0 && f <= 1e9 => Ok(Some(f)),
                _ => Err(limits_error(
                    &format!("/{name}/{k}"),
                    format!("`{k}` must be a number above 0 (at most 1e9)"),
                )),
            },
            None => Err(limits_error(
                &format!("/{name}/{k}"),
                format!("`{k}` is required"),
            )),
        }
    };
    let per_second = number("perSecond", true)?.unwrap_or(1.0);
    let burst = number("burst", false)?.unwrap_or(0.0);
    Ok(Some(Limit::new(per_second, burst)))
}

/// How often a process reads the departments' limits again from the store (those set
/// through another process sharing a MongoDB database).
pub const REFRESH: Duration = Duration::from_secs(10);

/// One token bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn full(limit: Limit, now: Instant) -> Bucket {
        Bucket {
            tokens: limit.burst,
            last: now,
        }
    }

    fn refill(&mut self, limit: Limit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.burst);
        self.last = now;
    }

    /// Takes `n` tokens or none. On refusal, the whole seconds (≥ 1) after which `n`
    /// tokens will be there; a request larger than the burst can never pass, and is told
    /// the time to refill a full bucket.
    pub fn take(&mut self, limit: Limit, n: f64, now: Instant) -> Result<(), u64> {
        self.refill(limit, now);
        if n <= self.tokens {
            self.tokens -= n;
            return Ok(());
        }
        let missing = n.min(limit.burst) - self.tokens;
        let secs = (missing / limit.per_second).ceil();
        Err((secs as u64).max(1))
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requests,
    Statements,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Statements => "statements",
        }
    }
}

/// A refusal: what was exceeded, the limit, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    pub kind: Kind,
    pub limit: Limit,
    pub retry_after_secs: u64,
}

/// Buckets of every credential seen; O(1) per check (one map lookup).
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: HashMap<String, (Option<Bucket>, Option<Bucket>)>,
}

impl Limiter {
    /// Counts one request of `credential`, and `statements` statements if it stores any.
    /// Nothing is taken when either bucket refuses, so a refused batch costs no allowance.
    pub fn check(
        &mut self,
        credential: &str,
        requests: Option<Limit>,
        statements_limit: Option<Limit>,
        statements: usize,
        now: Instant,
    ) -> Result<(), Refusal> {
        let entry = self
            .buckets
            .entry(credential.to_string())
            .or_insert((None, None));
        let mut req = entry.0.clone();
        let mut stm = entry.1.clone();
        if let Some(l) = requests {
            let b = req.get_or_insert_with(|| Bucket::full(l, now));
            b.take(l, 1.0, now).map_err(|s| Refusal {
                kind: Kind::Requests,
                limit: l,
                retry_after_secs: s,
            })?;
        }
        if let (Some(l), true) = (statements_limit, statements > 0) {
            let b = stm.get_or_insert_with(|| Bucket::full(l, now));
            b.take(l, statements as f64, now).map_err(|s| Refusal {
                kind: Kind::Statements,
                limit: l,
                retry_after_secs: s,
            })?;
        }
        *entry = (req, stm);
        Ok(())
    }

    /// Forgets every bucket (after an administrator changes a limit, so the new one
    /// applies at once rather than to a bucket sized for the old one).
    pub fn reset(&mut self) {
        self.buckets.clear();
    }

    /// Drops buckets idle long enough to be full again, so memory follows active
    /// credentials rather than every credential ever seen.
    pub fn prune(&mut self, now: Instant, idle: Duration) {
        self.buckets.retain(|_, (r, s)| {
            let recent = |b: &Option<Bucket>| {
                b.as_ref()
                    .is_some_and(|b| now.saturating_duration_since(b.last) < idle)
            };
            recent(r) || recent(s)
        });
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The limiter of one process with the server-wide default limits and the limits
/// departments set (a copy of the store's, refreshed by the caller).
#[derive(Debug, Default)]
pub struct Quotas {
    limiter: std::sync::Mutex<Limiter>,
    pub requests: Option<Limit>,
    pub statements: Option<Limit>,
    /// By department path (`Department::as_str`), so a lookup walks up a path's
    /// prefixes without allocating.
    departments: std::sync::RwLock<HashMap<String, DepartmentLimits>>,
}

impl Quotas {
    pub fn new(requests: Option<Limit>, statements: Option<Limit>) -> Quotas {
        Quotas {
            limiter: std::sync::Mutex::new(Limiter::default()),
            requests,
            statements,
            departments: Default::default(),
        }
    }

    /// Replaces the departments' limits (as stored). When they changed, every bucket
    /// starts again full under the new limits.
    pub fn set_department_limits(&self, limits: HashMap<Department, DepartmentLimits>) {
        let limits: HashMap<String, DepartmentLimits> = limits
            .into_iter()
            .map(|(d, l)| (d.as_str().to_owned(), l))
            .collect();
        let mut current = self
            .departments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current == limits {
            return;
        }
        *current = limits;
        drop(current);
        self.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .reset();
    }

    /// The limits in force in `department`: its own setting, else the nearest
    /// department above that sets one, else the server-wide default. A department's
    /// explicit `null` (`Some(None)`) means unlimited, overriding those above it.
    pub fn limits_for(&self, department: &Department) -> (Option<Limit>, Option<Limit>) {
        let set = self
            .departments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if set.is_empty() {
            return (self.requests, self.statements);
        }
        // From the department up to the root (""), the nearest setting of each wins.
        let (mut requests, mut statements) = (None, None);
        let mut path = department.as_str();
        loop {
            if let Some(d) = set.get(path) {
                requests = requests.or(d.requests);
                statements = statements.or(d.statements);
            }
            if path.is_empty() || (requests.is_some() && statements.is_some()) {
                break;
            }
            path = path.rfind('/').map_or("", |i| &path[..i]);
        }
        (
            requests.unwrap_or(self.requests),
            statements.unwrap_or(self.statements),
        )
    }

    /// Counts one request (`statements == 0`) or a batch of statements of `credential`,
    /// which belongs to `department`.
    pub fn check(
        &self,
        credential: &str,
        department: &Department,
        statements: usize,
    ) -> Result<(), Refusal> {
        let (requests, stm) = self.limits_for(department);
        let (requests, stm) = if statements == 0 {
            (requests, None)
        } else {
            (None, stm)
        };
        if requests.is_none() && stm.is_none() {
            return Ok(());
        }
        // A poisoned lock only means another request panicked mid-update; the buckets
        // are still usable numbers.
        let mut limiter = self
            .limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if limiter.len() > 100_000 {
            limiter.prune(now, Duration::from_secs(600));
        }
        limiter.check(credential, requests, stm, statements, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(r: f64, b: f64) -> Limit {
        Limit::new(r, b).expect("valid limit")
    }

    #[test]
    fn zero_rate_is_unlimited_and_small_burst_is_raised() {
        assert_eq!(Limit::new(0.0, 10.0), None);
        assert_eq!(
            Limit::new(5.0, 0.0),
            Some(Limit {
                per_second: 5.0,
                burst: 5.0
            })
        );
        assert_eq!(
            Limit::new(0.5, 0.0),
            Some(Limit {
                per_second: 0.5,
                burst: 1.0
            })
        );
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let t0 = Instant::now();
        let l = lim(2.0, 3.0);
        let mut b = Bucket::full(l, t0);
        for _ in 0..3 {
            assert_eq!(b.take(l, 1.0, t0), Ok(()));
        }
        assert_eq!(b.take(l, 1.0, t0), Err(1));
        // Half a second at 2/s gives one token back.
        assert_eq!(b.take(l, 1.0, t0 + Duration::from_millis(500)), Ok(()));
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert_eq!(b.take(l, 1.0, later), Ok(()));
        }
        assert!(b.take(l, 1.0, later).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        let t0 = Instant::now();
        let l = lim(1.0, 10.0);
        let mut b = Bucket::full(l, t0);
        assert_eq!(b.take(l, 10.0, t0), Ok(()));
        assert_eq!(b.take(l, 5.0, t0), Err(5));
        assert_eq!(b.take(l, 0.5, t0), Err(1));
        // More than the burst: told the time to fill the whole bucket.
        assert_eq!(b.take(l, 50.0, t0), Err(10));
    }

    #[test]
    fn batch_is_refused_whole_and_costs_nothing() {
        let t0 = Instant::now();
        let mut q = Limiter::default();
        let st = Some(lim(10.0, 10.0));
        assert!(q.check("a", None, st, 8, t0).is_ok());
        let r = q.check("a", None, st, 5, t0).expect_err("over allowance");
        assert_eq!(r.kind, Kind::Statements);
        // The refused batch took nothing: two statements still fit.
        assert!(q.check("a", None, st, 2, t0).is_ok());
    }

    #[test]
    fn refused_statements_do_not_cost_a_request_token() {
        let t0 = Instant::now();
        let mut q = Limiter::default();
        let rq = Some(lim(1.0, 1.0));
        let st = Some(lim(1.0, 1.0));
        assert!(q.check("a", rq, st, 5, t0).is_err());
        assert!(q.check("a", rq, st, 1, t0).is_ok());
    }

    #[test]
    fn credentials_have_their_own_buckets() {
        let t0 = Instant::now();
        let mut q = Limiter::default();
        let rq = Some(lim(1.0, 1.0));
        assert!(q.check("noisy", rq, None, 0, t0).is_ok());
        assert_eq!(
            q.check("noisy", rq, None, 0, t0).map_err(|r| r.kind),
            Err(Kind::Requests)
        );
        assert!(q.check("quiet", rq, None, 0, t0).is_ok());
    }

    #[test]
    fn nearest_department_setting_wins() {
        let parent = DepartmentLimits {
            requests: Some(Some(lim(10.0, 10.0))),
            statements: Some(Some(lim(100.0, 100.0))),
        };
        let child_own = DepartmentLimits {
            requests: Some(Some(lim(2.0, 2.0))),
            statements: None,
        };
        let child_unlimited = DepartmentLimits {
            requests: Some(None),
            statements: None,
        };
        let default = Some(lim(1000.0, 1000.0));
        let dept = |p: &str| Department::parse(p).expect("a department");
        let q = Quotas::new(default, None);
        // No department sets anything: the server default.
        assert_eq!(q.limits_for(&dept("moe/dhe")), (default, None));
        q.set_department_limits(HashMap::from([
            (dept("moe"), parent),
            (dept("moe/dhe"), child_own),
            (dept("moe/dsel"), child_unlimited),
        ]));
        // Inherits both from the parent, two levels down.
        assert_eq!(
            q.limits_for(&dept("moe/x/y")),
            (Some(lim(10.0, 10.0)), Some(lim(100.0, 100.0)))
        );
        // Own request limit overrides; the statement limit is still inherited.
        assert_eq!(
            q.limits_for(&dept("moe/dhe/u")),
            (Some(lim(2.0, 2.0)), Some(lim(100.0, 100.0)))
        );
        // Explicitly unlimited overrides the parent too.
        assert_eq!(q.limits_for(&dept("moe/dsel")).0, None);
        // A department outside every setting, and the root: the server default; a name
        // that only starts like a set one ("moex") is not below it.
        assert_eq!(q.limits_for(&dept("mha")), (default, None));
        assert_eq!(q.limits_for(&dept("moex")), (default, None));
        assert_eq!(q.limits_for(&Department::root()), (default, None));
    }

    #[test]
    fn prune_forgets_idle_credentials() {
        let t0 = Instant::now();
        let mut q = Limiter::default();
        let rq = Some(lim(1.0, 1.0));
        assert!(q.check("a", rq, None, 0, t0).is_ok());
        assert!(q
            .check("b", rq, None, 0, t0 + Duration::from_secs(50))
            .is_ok());
        q.prune(t0 + Duration::from_secs(60), Duration::from_secs(30));
        assert_eq!(q.len(), 1);
    }

    fn dept(p: &str) -> Department {
        Department::parse(p).expect("a department path")
    }

    #[test]
    fn department_limits_read_back_as_written() {
        let v = json!({ "requests": { "perSecond": 5, "burst": 10 }, "statements": null });
        let l = DepartmentLimits::from_json(&v).expect("valid");
        assert_eq!(l.requests, Some(Some(lim(5.0, 10.0))));
        assert_eq!(l.statements, Some(None));
        assert_eq!(
            l.to_json(),
            json!({ "requests": { "perSecond": 5.0, "burst": 10.0 }, "statements": null })
        );
        let inherit = DepartmentLimits::from_json(&json!({})).expect("valid");
        assert!(inherit.is_empty());
        assert_eq!(inherit.to_json(), json!({}));
    }

    #[test]
    fn malformed_department_limits_name_the_member() {
        for (v, path) in [
            (json!([]), "/limits"),
            (json!({ "request": null }), "/limits/request"),
            (json!({ "requests": 5 }), "/limits/requests"),
            (json!({ "requests": {} }), "/limits/requests/perSecond"),
            (
                json!({ "requests": { "perSecond": 0 } }),
                "/limits/requests/perSecond",
            ),
            (
                json!({ "requests": { "perSecond": -1 } }),
                "/limits/requests/perSecond",
            ),
            (
                json!({ "statements": { "perSecond": 1, "burst": "x" } }),
                "/limits/statements/burst",
            ),
            (
                json!({ "statements": { "perSecond": 1, "every": 2 } }),
                "/limits/statements/every",
            ),
        ] {
            let e = DepartmentLimits::from_json(&v).expect_err("malformed");
            assert_eq!(e.path, path, "{v}");
        }
    }

    #[test]
    fn a_department_limit_applies_below_it_unless_overridden() {
        let q = Quotas::new(None, Some(lim(1000.0, 1000.0)));
        let mut set = HashMap::new();
        set.insert(
            dept("moe"),
            DepartmentLimits {
                requests: None,
                statements: Some(Some(lim(10.0, 10.0))),
            },
        );
        set.insert(
            dept("moe/dhe"),
            DepartmentLimits {
                requests: None,
                statements: Some(None),
            },
        );
        q.set_department_limits(set);
        assert_eq!(q.limits_for(&dept("moe")).1, Some(lim(10.0, 10.0)));
        assert_eq!(q.limits_for(&dept("moe/dsel/x")).1, Some(lim(10.0, 10.0)));
        assert_eq!(q.limits_for(&dept("moe/dhe")).1, None);
        assert_eq!(q.limits_for(&dept("mohfw")).1, Some(lim(1000.0, 1000.0)));
        assert_eq!(
            q.limits_for(&Department::root()).1,
            Some(lim(1000.0, 1000.0))
        );
        assert!(q.check("k", &dept("moe/a"), 11).is_err());
        assert!(q.check("k", &dept("moe/a"), 10).is_ok());
        assert!(q.check("d", &dept("moe/dhe"), 5000).is_ok());
    }
}
