//! Per-credential rate limits: pure rules, no store, no HTTP.
//!
//! A limit is a token bucket (rate per second, burst). A request takes one token from the
//! request bucket; a statement batch takes one token per statement from the statement
//! bucket, all or nothing, so a batch over the allowance is refused whole. State lives in
//! process memory: a restart refills every bucket, and several processes each count alone.

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

/// Limits in force for a credential: the nearest department (self, then ancestors) that
/// sets a limit wins; none set means the server-wide default. `Some(None)` set by a
/// department means explicitly unlimited, overriding its parent.
pub fn effective(
    chain_nearest_first: &[DepartmentLimits],
    default_requests: Option<Limit>,
    default_statements: Option<Limit>,
) -> (Option<Limit>, Option<Limit>) {
    let requests = chain_nearest_first
        .iter()
        .find_map(|d| d.requests)
        .unwrap_or(default_requests);
    let statements = chain_nearest_first
        .iter()
        .find_map(|d| d.statements)
        .unwrap_or(default_statements);
    (requests, statements)
}

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

/// The limiter of one process with the server-wide default limits.
#[derive(Debug, Default)]
pub struct Quotas {
    limiter: std::sync::Mutex<Limiter>,
    pub requests: Option<Limit>,
    pub statements: Option<Limit>,
}

impl Quotas {
    pub fn new(requests: Option<Limit>, statements: Option<Limit>) -> Quotas {
        Quotas {
            limiter: std::sync::Mutex::new(Limiter::default()),
            requests,
            statements,
        }
    }

    /// Counts one request (`statements == 0`) or a batch of statements of `credential`.
    pub fn check(&self, credential: &str, statements: usize) -> Result<(), Refusal> {
        let (requests, stm) = if statements == 0 {
            (self.requests, None)
        } else {
            (None, self.statements)
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
        // Inherits both from the parent.
        let (r, s) = effective(&[DepartmentLimits::default(), parent], default, default);
        assert_eq!(r, Some(lim(10.0, 10.0)));
        assert_eq!(s, Some(lim(100.0, 100.0)));
        // Own request limit overrides; statement limit still inherited.
        let (r, s) = effective(&[child_own, parent], default, default);
        assert_eq!(r, Some(lim(2.0, 2.0)));
        assert_eq!(s, Some(lim(100.0, 100.0)));
        // Explicitly unlimited overrides the parent too.
        let (r, _) = effective(&[child_unlimited, parent], default, default);
        assert_eq!(r, None);
        // No department sets anything: the server default.
        let (r, s) = effective(&[DepartmentLimits::default()], default, None);
        assert_eq!((r, s), (default, None));
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
}
