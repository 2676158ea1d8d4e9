//! The `stored` clock and `X-Experience-API-Consistent-Through` (Communication 2.1.3: "all
//! Statements that have or will have a `stored` property before that time are known with
//! reasonable certainty to be available for retrieval").
//!
//! Incremental readers take the Consistent-Through of one response as `since` of the next,
//! so the answer must never pass a statement that is not yet visible. Two rules make it so:
//! - `stored` is handed out only under a [`Reservation`], registered in the same critical
//!   section that picks its first value. A Consistent-Through computed at any later moment
//!   sees the reservation and stays before it; there is no window between "`stored`
//!   assigned" and "batch known to be in flight".
//! - A reservation lives until the store has answered, i.e. until its statements are
//!   durable and visible to every later read (or were refused): only then may
//!   Consistent-Through pass them. Every `stored` handed out later is after every
//!   Consistent-Through already given, so a reader never has to look back.
//!
//! One clock serves one process. Several processes on one MongoDB database each know only
//! their own writes; see the README (Consistent-Through with several processes).
use chrono::Utc;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct StoredClock {
    /// The last `stored` handed out (µs since the epoch): every new one is greater.
    last: AtomicI64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// First `stored` of each live reservation → how many reservations share it.
    in_flight: BTreeMap<i64, usize>,
    /// The latest Consistent-Through answered.
    answered: i64,
}

/// The right to assign `stored` times to one write; the write counts as in flight until
/// this is dropped.
pub struct Reservation<'a> {
    clock: &'a StoredClock,
    first: i64,
    /// The first value is taken by the first `next_stored_us`.
    used_first: bool,
}

fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

impl StoredClock {
    /// Starts a write. Its `stored` times come from [`Reservation::next_stored_us`].
    pub fn reserve(&self) -> Reservation<'_> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // After every Consistent-Through already answered, and unique in this process.
        let floor = now_us().max(state.answered + 1);
        let first = self.advance(floor);
        *state.in_flight.entry(first).or_insert(0) += 1;
        Reservation {
            clock: self,
            first,
            used_first: false,
        }
    }

    /// A time through which every statement is visible to reads: before the first `stored`
    /// of every write still in flight, and never in the future.
    pub fn consistent_through_us(&self) -> i64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_us();
        let through = match state.in_flight.keys().next() {
            Some(oldest) => now.min(oldest - 1),
            None => now,
        };
        state.answered = state.answered.max(through);
        through
    }

    /// Moves `last` to at least `floor` and one past its previous value; returns it.
    fn advance(&self, floor: i64) -> i64 {
        let mut prev = self.last.load(Ordering::Acquire);
        loop {
            let next = floor.max(prev + 1);
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return next,
                Err(actual) => prev = actual,
            }
        }
    }
}

impl Reservation<'_> {
    /// The `stored` time of the write's next statement: increasing, unique in the process,
    /// and never before the reservation's first value.
    pub fn next_stored_us(&mut self) -> i64 {
        if !self.used_first {
            self.used_first = true;
            return self.first;
        }
        self.clock.advance(now_us())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut state = self.clock.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = state.in_flight.get_mut(&self.first) {
            *n -= 1;
            if *n == 0 {
                state.in_flight.remove(&self.first);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_are_unique_and_increasing() {
        let clock = StoredClock::default();
        let mut r = clock.reserve();
        let mut last = 0;
        for _ in 0..10_000 {
            let s = r.next_stored_us();
            assert!(s > last, "{s} after {last}");
            last = s;
        }
    }

    #[test]
    fn consistent_through_stays_before_a_write_in_flight() {
        let clock = StoredClock::default();
        let mut slow = clock.reserve();
        let first = slow.next_stored_us();
        // Later writes finish first: the answer still may not pass the slow one.
        for _ in 0..100 {
            let mut w = clock.reserve();
            w.next_stored_us();
        }
        assert!(clock.consistent_through_us() < first);
        drop(slow);
        assert!(clock.consistent_through_us() >= first);
    }

    #[test]
    fn every_later_stored_is_after_every_answer() {
        let clock = StoredClock::default();
        for _ in 0..1_000 {
            let through = clock.consistent_through_us();
            let mut r = clock.reserve();
            assert!(r.next_stored_us() > through);
            assert!(r.next_stored_us() > through);
        }
    }

    #[test]
    fn concurrent_writers_never_share_a_stored_time() {
        let clock = StoredClock::default();
        let all = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    for _ in 0..2_000 {
                        let mut r = clock.reserve();
                        mine.push(r.next_stored_us());
                        mine.push(r.next_stored_us());
                    }
                    all.lock().unwrap().extend(mine);
                });
            }
        });
        let mut all = all.into_inner().unwrap();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
