//! Open arrivals on top of goose's closed-loop users.
//!
//! Citizens do not wait for each other: the offered rate is the controlled variable. Each persona has one arrival
//! schedule, a Poisson process whose rate follows the plan, drawn ahead of time from a seeded generator. A goose
//! user takes the next arrival (a ticket with its intended send time), sleeps until that time, sends, and
//! measures the latency from the intended time, not from when it got round to sending (no coordinated omission).
//! When every user of a persona is busy with a slow request, tickets wait; a ticket taken later than the
//! client's patience is never sent and counts as a failure (the citizen gave up), so a slow suite cannot lower
//! the offered load by slowing its clients down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::plan::{Persona, Plan};

/// One intended request: its place in the schedule and when it should be sent (seconds into the run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ticket {
    pub seq: usize,
    pub at_s: f64,
}

/// The arrival times of one persona over a run.
pub struct Schedule {
    times: Vec<f64>,
    next: AtomicUsize,
}

impl Schedule {
    /// Draws a Poisson process with the persona's rate over the plan: exponential gaps at the rate of the moment
    /// (thinning against the peak rate keeps it exact where the rate changes).
    pub fn draw(plan: &Plan, persona: Persona, seed: u64) -> Schedule {
        let mut rng =
            StdRng::seed_from_u64(seed ^ (persona as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let peak = plan.peak_rate(persona);
        let mut times = Vec::with_capacity(plan.expected(persona).ceil() as usize + 16);
        if peak > 0.0 {
            let mut t = 0.0;
            loop {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                t += -u.ln() / peak;
                if t >= plan.duration_s {
                    break;
                }
                if rng.random::<f64>() * peak <= plan.rate(persona, t) {
                    times.push(t);
                }
            }
        }
        Schedule {
            times,
            next: AtomicUsize::new(0),
        }
    }

    /// The next arrival, or `None` when the run has no more for this persona.
    pub fn take(&self) -> Option<Ticket> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.times.get(seq).map(|&at_s| Ticket { seq, at_s })
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.times.len()
    }

    #[cfg(test)]
    /// How many arrivals fall in each whole second of the run: the offered load, second by second.
    pub fn per_second(&self, seconds: usize) -> Vec<u64> {
        let mut out = vec![0; seconds];
        for &t in &self.times {
            if let Some(slot) = out.get_mut(t as usize) {
                *slot += 1;
            }
        }
        out
    }
}

/// Jittered backoff for the hardened page: the server's `Retry-After` (or 1 s) times a factor drawn from
/// [0.5, 1.5), so that a crowd shed at the same moment does not come back at the same moment.
pub fn backoff_s(retry_after_s: Option<f64>, rng: &Mutex<StdRng>) -> f64 {
    let base = retry_after_s.unwrap_or(1.0).clamp(0.1, 60.0);
    let factor: f64 = rng
        .lock()
        .map(|mut r| r.random_range(0.5..1.5))
        .unwrap_or(1.0);
    base * factor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanName, PlanOptions};

    fn steady(rate: f64, duration: f64) -> Plan {
        let o = PlanOptions {
            rate: Some(rate),
            duration_s: Some(duration),
            ..Default::default()
        };
        Plan::new(PlanName::Steady, 1.0, &o).expect("plan")
    }

    #[test]
    fn a_steady_schedule_offers_the_rate_and_is_sorted_and_within_the_run() {
        let plan = steady(10_000.0, 20.0);
        let s = Schedule::draw(&plan, Persona::ShowCode, 7);
        let expected = 10_000.0 * Persona::ShowCode.share() * 20.0;
        let n = s.len() as f64;
        // Poisson: the standard deviation is sqrt(n) = 374; allow 4 of them.
        assert!(
            (n - expected).abs() < 4.0 * expected.sqrt(),
            "{n} arrivals, {expected} expected"
        );
        assert!(s.times.windows(2).all(|w| w[0] <= w[1]));
        assert!(s.times.iter().all(|&t| (0.0..20.0).contains(&t)));
        let per_second = s.per_second(20);
        assert!(
            per_second.iter().all(|&c| (6_500..7_500).contains(&c)),
            "{per_second:?}"
        );
    }

    #[test]
    fn a_surge_is_in_the_schedule_where_the_plan_puts_it() {
        let o = PlanOptions {
            rate: Some(2_000.0),
            duration_s: Some(100.0),
            ..Default::default()
        };
        let plan = Plan::new(PlanName::MassTesting, 1.0, &o).expect("plan");
        let surge = plan.surge.expect("surge");
        let s = Schedule::draw(&plan, Persona::ShowCode, 1);
        let per_second = s.per_second(100);
        let base: f64 = per_second[..15].iter().sum::<u64>() as f64 / 15.0;
        let held_from = (surge.start_s + surge.ramp_s) as usize + 1;
        let held: f64 = per_second[held_from..held_from + 20].iter().sum::<u64>() as f64 / 20.0;
        assert!((held / base - 10.0).abs() < 0.8, "base {base}, held {held}");
        // The personas that do not surge stay flat.
        let v = Schedule::draw(&plan, Persona::VerifyCode, 1).per_second(100);
        let vb: f64 = v[..15].iter().sum::<u64>() as f64 / 15.0;
        let vh: f64 = v[held_from..held_from + 20].iter().sum::<u64>() as f64 / 20.0;
        assert!((vh / vb - 1.0).abs() < 0.25, "{vb} {vh}");
    }

    #[test]
    fn the_same_seed_draws_the_same_schedule_and_tickets_are_handed_out_once_in_order() {
        let plan = steady(100.0, 5.0);
        let a = Schedule::draw(&plan, Persona::ShowCode, 42);
        let b = Schedule::draw(&plan, Persona::ShowCode, 42);
        assert_eq!(a.times, b.times);
        let mut last = -1.0;
        let mut count = 0;
        while let Some(t) = a.take() {
            assert_eq!(t.seq, count);
            assert!(t.at_s >= last);
            last = t.at_s;
            count += 1;
        }
        assert_eq!(count, a.len());
        assert!(a.take().is_none());
    }

    #[test]
    fn backoff_is_jittered_around_retry_after() {
        let rng = Mutex::new(StdRng::seed_from_u64(3));
        let waits: Vec<f64> = (0..1000).map(|_| backoff_s(Some(2.0), &rng)).collect();
        assert!(waits.iter().all(|&w| (1.0..3.0).contains(&w)));
        let distinct = waits
            .iter()
            .map(|w| (w * 1000.0) as i64)
            .collect::<std::collections::BTreeSet<_>>();
        assert!(distinct.len() > 500, "not jittered");
        assert!(backoff_s(None, &rng) < 1.5);
    }
}
