//! What a run measured: per persona, every intended request's outcome and its latency in microseconds from its
//! intended send time (hdrhistogram: goose's own figures are whole milliseconds to the first byte), and second by
//! second the offered load, goodput, errors and latency of all personas together.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::plan::Persona;

/// A latency counts towards goodput when the right answer came within this long of the intended send time: a
/// citizen at a gate waits about a second before pressing again.
pub const GOODPUT_DEADLINE_US: u64 = 1_000_000;

/// How one intended request ended, after every retry its client made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// The answer was checked and right.
    Ok,
    /// A 2xx whose answer was wrong (colour, decision, counts): always a failure.
    Wrong,
    /// Shed by a defence (503 or 429 with Retry-After) on the last try.
    Shed,
    /// Another 5xx, or a 4xx that a correct request should never get.
    Error,
    /// No answer within the client's patience.
    Timeout,
    /// Never sent: the ticket was taken later than the client's patience (every user of the persona was busy).
    Late,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes at 3 significant figures.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Clone)]
struct PersonaStats {
    latency_us: Histogram<u64>,
    outcomes: BTreeMap<&'static str, u64>,
    attempts: u64,
}

#[derive(Clone)]
struct Second {
    latency_us: Histogram<u64>,
    /// Of the requests a person waits on (`Persona::a_person_waits`).
    people_latency_us: Histogram<u64>,
    /// Its counts (offered, attempts, ok, goodput, shed, failed); `t` and the percentiles come with the summary.
    counts: SecondSummary,
}

/// Shared by every user of a run.
pub struct Recorder {
    inner: Mutex<Inner>,
}

struct Inner {
    personas: BTreeMap<Persona, PersonaStats>,
    seconds: Vec<Second>,
}

impl Recorder {
    pub fn new(seconds: usize) -> Recorder {
        let second = Second {
            latency_us: histogram(),
            people_latency_us: histogram(),
            counts: SecondSummary::default(),
        };
        Recorder {
            inner: Mutex::new(Inner {
                personas: BTreeMap::new(),
                seconds: vec![second; seconds + 1],
            }),
        }
    }

    /// One intended request, sent at `intended_s` into the run, after `attempts` tries (0 when never sent).
    pub fn record(
        &self,
        persona: Persona,
        intended_s: f64,
        latency_us: u64,
        outcome: Outcome,
        attempts: u32,
    ) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let latency = latency_us.clamp(1, 600_000_000);
        let stats = inner
            .personas
            .entry(persona)
            .or_insert_with(|| PersonaStats {
                latency_us: histogram(),
                outcomes: BTreeMap::new(),
                attempts: 0,
            });
        if outcome != Outcome::Late {
            stats.latency_us.saturating_record(latency);
        }
        *stats.outcomes.entry(outcome.into()).or_default() += 1;
        stats.attempts += u64::from(attempts);
        let last = inner.seconds.len() - 1;
        let second = &mut inner.seconds[(intended_s.max(0.0) as usize).min(last)];
        if outcome != Outcome::Late {
            second.latency_us.saturating_record(latency);
            if persona.a_person_waits() {
                second.people_latency_us.saturating_record(latency);
            }
        }
        let good = outcome == Outcome::Ok && latency <= GOODPUT_DEADLINE_US;
        let own = second
            .counts
            .personas
            .entry(persona.name().to_owned())
            .or_default();
        own.offered += 1;
        own.goodput += u64::from(good);
        let s = &mut second.counts;
        s.offered += 1;
        s.attempts += u64::from(attempts);
        s.ok += u64::from(outcome == Outcome::Ok);
        s.goodput += u64::from(good);
        s.shed += u64::from(outcome == Outcome::Shed);
        s.failed += u64::from(outcome != Outcome::Ok);
    }

    pub fn summary(&self, duration_s: f64) -> Summary {
        let Ok(inner) = self.inner.lock() else {
            return Summary::default();
        };
        let mut all = histogram();
        let mut personas = BTreeMap::new();
        let (mut requests, mut ok, mut attempts) = (0u64, 0u64, 0u64);
        for (p, s) in &inner.personas {
            all.add(&s.latency_us).ok();
            let total: u64 = s.outcomes.values().sum();
            let good = s.outcomes.get("ok").copied().unwrap_or(0);
            requests += total;
            ok += good;
            attempts += s.attempts;
            personas.insert(
                p.name().to_owned(),
                PersonaSummary {
                    requests: total,
                    attempts: s.attempts,
                    outcomes: s
                        .outcomes
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), *v))
                        .collect(),
                    error_rate: failure_rate(total, good),
                    latency: Percentiles::of(&s.latency_us),
                },
            );
        }
        let seconds = inner
            .seconds
            .iter()
            .enumerate()
            .take(duration_s.ceil() as usize)
            .map(|(i, s)| SecondSummary {
                t: i as u64,
                p50_us: s.latency_us.value_at_quantile(0.5),
                p99_us: s.latency_us.value_at_quantile(0.99),
                people_p99_us: s.people_latency_us.value_at_quantile(0.99),
                ..s.counts.clone()
            })
            .collect();
        let goodput: u64 = inner.seconds.iter().map(|s| s.counts.goodput).sum();
        Summary {
            requests,
            attempts,
            ok,
            error_rate: failure_rate(requests, ok),
            offered_per_s: requests as f64 / duration_s,
            goodput_per_s: goodput as f64 / duration_s,
            latency: Percentiles::of(&all),
            personas,
            seconds,
        }
    }
}

/// Failures over intended requests (0 when there were none).
pub fn failure_rate(requests: u64, ok: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        (requests - ok.min(requests)) as f64 / requests as f64
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PersonaSummary {
    pub requests: u64,
    pub attempts: u64,
    pub outcomes: BTreeMap<String, u64>,
    pub error_rate: f64,
    pub latency: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecondSummary {
    pub t: u64,
    pub offered: u64,
    pub attempts: u64,
    pub ok: u64,
    pub goodput: u64,
    pub shed: u64,
    pub failed: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// p99 of the requests a person waits on: without the labs' batches, which take seconds each and, at 1 % of the
    /// requests, would set the p99 of many a second on their own.
    #[serde(default)]
    pub people_p99_us: u64,
    /// The offered requests and goodput of each persona in this second: which requests a fault took down, and
    /// whether the others were spared.
    #[serde(default)]
    pub personas: BTreeMap<String, PersonaSecond>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonaSecond {
    pub offered: u64,
    pub goodput: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub requests: u64,
    pub attempts: u64,
    pub ok: u64,
    pub error_rate: f64,
    pub offered_per_s: f64,
    pub goodput_per_s: f64,
    pub latency: Percentiles,
    pub personas: BTreeMap<String, PersonaSummary>,
    pub seconds: Vec<SecondSummary>,
}

impl Summary {
    /// The knee's test: p99 under 200 ms and failures under 0.1 %.
    pub fn holds(&self) -> bool {
        self.latency.p99_us < 200_000 && self.error_rate < 0.001
    }

    /// The first second after `from_s` from which p99 stays under `p99_us` and failures under 1 % to the end of
    /// the run, counted from `from_s`; `None` if it never settles.
    pub fn recovery_s(&self, from_s: f64, p99_us: u64) -> Option<f64> {
        recovery_s(&self.seconds, from_s, usize::MAX, |s| {
            s.p99_us < p99_us && failure_rate(s.offered, s.ok) < 0.01
        })
    }
}

/// Seconds from `from_s` until the first of `run` `healthy` seconds in a row (fewer if the run ends first;
/// `usize::MAX`: healthy to the end); `None` if that never comes. The run's last second, cut short, is left out.
pub fn recovery_s(
    seconds: &[SecondSummary],
    from_s: f64,
    run: usize,
    healthy: impl Fn(&SecondSummary) -> bool,
) -> Option<f64> {
    let tail = seconds.get(from_s.ceil() as usize..)?;
    let tail = &tail[..tail.len().saturating_sub(1)];
    if tail.is_empty() {
        return Some(0.0);
    }
    (0..tail.len())
        .find(|&i| tail[i..].iter().take(run).all(&healthy))
        .map(|i| i as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labs_slow_batches_set_the_seconds_p99_but_not_the_peoples() {
        let r = Recorder::new(2);
        for _ in 0..97 {
            r.record(Persona::ShowCode, 0.5, 1_000, Outcome::Ok, 1);
        }
        for _ in 0..3 {
            r.record(Persona::ImportNat, 0.5, 4_000_000, Outcome::Ok, 1);
        }
        let second = &r.summary(1.0).seconds[0];
        assert!(second.p99_us >= 3_990_000, "{second:?}");
        assert!(
            (1_000..=1_010).contains(&second.people_p99_us),
            "{second:?}"
        );
    }

    #[test]
    fn percentiles_are_in_microseconds_and_failures_are_counted_per_intended_request() {
        let r = Recorder::new(10);
        for i in 0..990 {
            r.record(Persona::ShowCode, 1.5, 300 + (i % 10), Outcome::Ok, 1);
        }
        for _ in 0..9 {
            r.record(Persona::ShowCode, 2.5, 150_000, Outcome::Shed, 4);
        }
        r.record(Persona::VerifyCode, 3.0, 2_000_000, Outcome::Timeout, 1);
        let s = r.summary(10.0);
        assert_eq!(s.requests, 1000);
        assert_eq!(s.ok, 990);
        assert_eq!(s.attempts, 990 + 36 + 1);
        assert!((s.error_rate - 0.01).abs() < 1e-12);
        assert!((300..=310).contains(&s.latency.p50_us), "{:?}", s.latency);
        // 990 of 1,000 at about 300 µs: the 99th percentile is still one of them, the 99.9th a shed request.
        assert!((300..=310).contains(&s.latency.p99_us), "{:?}", s.latency);
        assert!(
            (149_000..=151_000).contains(&s.latency.p999_us),
            "{:?}",
            s.latency
        );
        assert!(s.latency.max_us >= 1_990_000);
        let show = &s.personas["show-code"];
        assert_eq!(show.outcomes["shed"], 9);
        assert_eq!(s.seconds[1].goodput, 990);
        assert_eq!(s.seconds[2].shed, 9);
        let own = |t: usize, p: &str| s.seconds[t].personas.get(p).cloned().unwrap_or_default();
        assert_eq!(
            own(1, "show-code"),
            PersonaSecond {
                offered: 990,
                goodput: 990
            }
        );
        assert_eq!(
            own(2, "show-code"),
            PersonaSecond {
                offered: 9,
                goodput: 0
            }
        );
        assert_eq!(
            own(3, "verify-code"),
            PersonaSecond {
                offered: 1,
                goodput: 0
            }
        );
        // The timeout answered nothing within the deadline: not goodput.
        assert_eq!(s.seconds[3].goodput, 0);
        assert!(!s.holds());
        assert!((s.goodput_per_s - 99.0).abs() < 1e-9);
    }

    #[test]
    fn a_late_ticket_is_a_failure_without_a_latency() {
        let r = Recorder::new(2);
        r.record(Persona::Declare, 0.2, 9_000_000, Outcome::Late, 0);
        r.record(Persona::Declare, 0.3, 500, Outcome::Ok, 1);
        let s = r.summary(2.0);
        assert_eq!(s.personas["declare"].outcomes["late"], 1);
        assert!(s.latency.max_us < 1_000, "{:?}", s.latency);
        assert!((s.error_rate - 0.5).abs() < 1e-12);
    }

    #[test]
    fn recovery_is_the_first_second_from_which_the_run_stays_healthy() {
        let sec = |t, p99_us, ok| SecondSummary {
            t,
            offered: 100,
            ok,
            p99_us,
            ..Default::default()
        };
        let mut s = Summary {
            seconds: vec![
                sec(0, 1_000, 100),
                sec(1, 900_000, 20),
                sec(2, 900_000, 20),
                sec(3, 1_000, 100),
                sec(4, 500_000, 100),
                sec(5, 1_000, 100),
                sec(6, 1_000, 100),
                sec(7, 1_000, 100),
            ],
            ..Default::default()
        };
        assert_eq!(s.recovery_s(1.0, 200_000), Some(4.0));
        s.seconds[6] = sec(6, 900_000, 0);
        assert_eq!(s.recovery_s(1.0, 200_000), None);
        assert_eq!(s.recovery_s(7.0, 200_000), Some(0.0));
    }
}
