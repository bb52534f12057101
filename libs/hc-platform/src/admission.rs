//! Admission control that finds its own limit. A fixed number of requests in flight fits one machine only: 512 is
//! right for a replica with cores to spare and, on half a core, is seconds of queue in front of every request (the
//! capacity report measured exactly that). So the limit moves: once per window (100 ms with at least 8 requests
//! finished, else up to 1 s), if at least half of the requests that finished in it took longer than
//! `latency_target`, a queue is standing and the limit shrinks to three quarters of what was really in flight; while
//! most finish fast and the limit is in use, it grows by a quarter. `max_inflight` stays the ceiling and
//! `min_inflight` the floor, so that a few long requests (an import's upload) never shut a replica.
//!
//! CoDel judges by the fastest packet of an interval, which suits one FIFO queue. Requests are not one queue: a code
//! served from memory finishes in the poll that admitted it while the requests waiting on Redis or PostgreSQL
//! behind a saturated CPU take seconds, so the fastest request says nothing (the load test saw 512 in flight, and
//! the limit back at 512, with the median request at 2 s). The median does not miss them.
//!
//! No crate does this for actix-web (the adaptive limiters are Tower layers), and the controller is the small pure
//! [`LimitController`]; a request costs a few atomic operations and, when it ends, a short uncontended lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::settings::AdmissionSettings;

/// How often the limit is reconsidered (CoDel's interval)...
const WINDOW: Duration = Duration::from_millis(100);
/// ...once this many requests finished in the window: one slow request of a quiet replica is not a queue. A window
/// without them is judged after `LONGEST_WINDOW`.
const SAMPLES: usize = 8;
const LONGEST_WINDOW: Duration = Duration::from_secs(1);

/// The limit's arithmetic, apart from clocks and atomics.
#[derive(Debug, Clone)]
pub struct LimitController {
    min: usize,
    max: usize,
    target: Duration,
    limit: usize,
}

impl LimitController {
    /// Starts at the ceiling: until a queue is seen, nothing is shed that a fixed limit would have admitted.
    pub fn new(min: usize, max: usize, target: Duration) -> Self {
        let min = min.clamp(1, max.max(1));
        Self {
            min,
            max: max.max(min),
            target,
            limit: max.max(min),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The end of a window: `finished` requests finished in it, `slow` of them took longer than the target, and
    /// at most `peak` were in flight at once. Returns the new limit.
    pub fn end_window(&mut self, finished: usize, slow: usize, peak: usize) -> usize {
        if self.target.is_zero() {
            return self.limit;
        }
        // Requests in flight and none finished in a whole window is a queue as well (or a stuck dependency,
        // where shedding the rest early is what the request timeout would do later anyway).
        let queue_standing = match finished {
            0 => peak > 0,
            // Too few to tell a queue from one slow request of a quiet replica.
            1..SAMPLES => return self.limit,
            _ => slow * 2 >= finished,
        };
        // No fewer than the floor were in flight: a queue that short is no reason to shed.
        if queue_standing && peak > self.min {
            self.limit = (self.limit.min(peak) * 3 / 4).max(self.min);
        } else if peak * 2 >= self.limit {
            self.limit = (self.limit + (self.limit / 4).max(1)).min(self.max);
        }
        self.limit
    }

    /// Whether a request that took `took` counts as slow.
    pub fn is_slow(&self, took: Duration) -> bool {
        !self.target.is_zero() && took > self.target
    }
}

struct Window {
    started: Instant,
    finished: usize,
    slow: usize,
    controller: LimitController,
}

/// The shared state of one replica's admission control.
pub struct Admission {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    limit: AtomicUsize,
    window: Mutex<Window>,
}

/// One admitted request; dropping it (when the response is ready, or the request is abandoned) lets the next in.
pub struct Permit {
    admission: Arc<Admission>,
    admitted: Instant,
    /// Whether its time says anything about a queue (a streamed upload's does not).
    sampled: bool,
}

impl Admission {
    /// None when admission control is off (`max_inflight = 0`).
    pub fn from_settings(settings: &AdmissionSettings) -> Option<Arc<Self>> {
        (settings.max_inflight > 0).then(|| {
            let controller = LimitController::new(
                settings.min_inflight,
                settings.max_inflight,
                Duration::from_millis(settings.latency_target_ms),
            );
            Arc::new(Self {
                in_flight: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                limit: AtomicUsize::new(controller.limit()),
                window: Mutex::new(Window {
                    started: Instant::now(),
                    finished: 0,
                    slow: 0,
                    controller,
                }),
            })
        })
    }

    /// A permit, or None: the request is to be shed. `sampled`: whether the request's time counts towards the
    /// limit (not for routes that take long by nature, as a streamed import does).
    pub fn try_admit(self: &Arc<Self>, sampled: bool) -> Option<Permit> {
        let now = Instant::now();
        let in_flight = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        if in_flight > self.limit.load(Ordering::Acquire) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.observe(now, None);
            return None;
        }
        self.peak.fetch_max(in_flight, Ordering::AcqRel);
        Some(Permit {
            admission: self.clone(),
            admitted: now,
            sampled,
        })
    }

    fn observe(&self, now: Instant, finished_in: Option<Duration>) {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(took) = finished_in {
            window.finished += 1;
            window.slow += usize::from(window.controller.is_slow(took));
        }
        let open_for = now.duration_since(window.started);
        if open_for < WINDOW || (window.finished < SAMPLES && open_for < LONGEST_WINDOW) {
            return;
        }
        let (finished, slow) = (window.finished, window.slow);
        (window.finished, window.slow) = (0, 0);
        // (A window judged with fewer than SAMPLES finished is one that waited LONGEST_WINDOW.)
        let in_flight = self.in_flight.load(Ordering::Acquire);
        let peak = self.peak.swap(in_flight, Ordering::AcqRel).max(in_flight);
        let limit = window.controller.end_window(finished, slow, peak);
        window.started = now;
        self.limit.store(limit, Ordering::Release);
        metrics::gauge!("admission_limit").set(limit as f64);
        metrics::gauge!("admission_in_flight").set(in_flight as f64);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let now = Instant::now();
        self.admission.in_flight.fetch_sub(1, Ordering::AcqRel);
        let took = self.sampled.then(|| now.duration_since(self.admitted));
        self.admission.observe(now, took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(100);

    #[test]
    fn a_standing_queue_shrinks_the_limit_to_three_quarters_of_what_was_in_flight() {
        let mut c = LimitController::new(16, 512, TARGET);
        assert_eq!(c.limit(), 512);
        // 200 in flight and most of what finished was slow: a queue.
        assert_eq!(c.end_window(40, 30, 200), 150);
        assert_eq!(c.end_window(40, 20, 150), 112);
        assert_eq!(c.end_window(10, 9, 112), 84);
    }

    #[test]
    fn fast_requests_finishing_beside_a_slow_majority_do_not_hide_the_queue() {
        // Codes served from memory finish at once while the requests waiting on Redis take seconds: the fastest
        // request is fast, the median is not.
        let mut c = LimitController::new(16, 512, TARGET);
        assert_eq!(c.end_window(100, 60, 500), 375);
    }

    #[test]
    fn the_limit_never_goes_below_the_floor_nor_above_the_ceiling() {
        let mut c = LimitController::new(16, 64, TARGET);
        for _ in 0..20 {
            c.end_window(10, 10, 64);
        }
        assert_eq!(c.limit(), 16);
        for _ in 0..20 {
            c.end_window(10, 0, c.limit());
        }
        assert_eq!(c.limit(), 64);
    }

    #[test]
    fn fast_answers_grow_the_limit_only_while_it_is_in_use() {
        let mut c = LimitController::new(8, 512, TARGET);
        c.end_window(10, 10, 40);
        assert_eq!(c.limit(), 30);
        // Idle or lightly used: nothing to learn, nothing changes.
        assert_eq!(c.end_window(10, 1, 3), 30);
        assert_eq!(c.end_window(0, 0, 0), 30);
        // In use, and most requests fast: a quarter more each window.
        assert_eq!(c.end_window(10, 4, 30), 37);
        assert_eq!(c.end_window(10, 0, 37), 46);
    }

    #[test]
    fn one_slow_request_of_a_quiet_replica_is_not_a_queue() {
        let mut c = LimitController::new(16, 512, TARGET);
        // A window of 1 s with one request finished, and it slow.
        assert_eq!(c.end_window(1, 1, 1), 512);
        // Enough finished, all slow, but never more in flight than the floor.
        assert_eq!(c.end_window(10, 10, 16), 512);
    }

    #[test]
    fn requests_in_flight_with_none_finished_in_a_window_is_a_queue() {
        let mut c = LimitController::new(4, 100, TARGET);
        assert_eq!(c.end_window(0, 0, 40), 30);
    }

    #[test]
    fn a_zero_target_keeps_the_limit_fixed_and_nothing_is_slow() {
        let mut c = LimitController::new(16, 512, Duration::ZERO);
        assert!(!c.is_slow(Duration::from_secs(5)));
        assert_eq!(c.end_window(10, 10, 512), 512);
        assert_eq!(c.end_window(0, 0, 512), 512);
    }

    #[test]
    fn a_ceiling_below_the_floor_wins() {
        let mut c = LimitController::new(16, 1, TARGET);
        assert_eq!(c.limit(), 1);
        assert_eq!(c.end_window(10, 10, 1), 1);
    }

    #[test]
    fn slow_means_over_the_target() {
        let c = LimitController::new(16, 512, TARGET);
        assert!(c.is_slow(Duration::from_millis(101)));
        assert!(!c.is_slow(Duration::from_millis(100)));
    }
}
