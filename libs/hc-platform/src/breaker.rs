//! A circuit breaker for the calls to a dependency (rendering's to scoring, every service's to Redis): after `failures`
//! failures in a row it opens, and for `open_for` every call is refused at once (no connection, no timeout to wait
//! out); then one trial call is let through, and its outcome closes or re-opens it. Small enough that no crate's
//! generality is worth its weight here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is out, since then. A trial whose caller gave up on it (a request timeout dropped its future)
    /// never reports: after `open_for` another trial goes. Without that, one abandoned trial held the breaker
    /// half-open for good and refused every call (make chaos, lossy-redis: scoring stopped reading its streams).
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug)]
pub struct Breaker {
    /// The gauge that is 1 while the breaker is open.
    gauge: &'static str,
    enabled: bool,
    failures: u32,
    open_for: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(gauge: &'static str, enabled: bool, failures: u32, open_for: Duration) -> Self {
        Self {
            gauge,
            enabled,
            failures,
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// May a call go out now?
    pub fn allow(&self) -> bool {
        if !self.enabled {
            return true;
        }
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen {
                    since: Instant::now(),
                };
                true
            }
            State::HalfOpen { since } if since.elapsed() >= self.open_for => {
                *state = State::HalfOpen {
                    since: Instant::now(),
                };
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    pub fn record(&self, ok: bool) {
        if !self.enabled {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let next = match (&*state, ok) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.failures => State::Closed {
                failures: failures + 1,
            },
            (_, false) => State::Open {
                until: Instant::now() + self.open_for,
            },
        };
        let open = matches!(next, State::Open { .. });
        *state = next;
        metrics::gauge!(self.gauge).set(if open { 1.0 } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_closes_after_a_good_trial() {
        let b = Breaker::new("test_breaker_open", true, 3, Duration::from_millis(30));
        for _ in 0..2 {
            assert!(b.allow());
            b.record(false);
        }
        b.record(true);
        for _ in 0..3 {
            assert!(b.allow(), "a success resets the count");
            b.record(false);
        }
        assert!(!b.allow(), "open after three in a row");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one trial after the pause");
        assert!(!b.allow(), "only one");
        b.record(false);
        assert!(!b.allow(), "a failed trial opens it again");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.record(true);
        assert!(b.allow() && b.allow(), "closed");
    }

    #[test]
    fn a_trial_that_never_reports_is_followed_by_another() {
        let b = Breaker::new("test_breaker_open", true, 1, Duration::from_millis(30));
        b.record(false);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "the trial");
        assert!(!b.allow(), "while it is out");
        // Its caller gave up on it: no record.
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "another trial");
        b.record(true);
        assert!(b.allow() && b.allow(), "closed");
    }

    #[test]
    fn a_disabled_breaker_always_lets_calls_through() {
        let b = Breaker::new("test_breaker_open", false, 1, Duration::from_secs(60));
        b.record(false);
        b.record(false);
        assert!(b.allow());
    }
}
