//! Faults under load (`make chaos`): the steady mix at 70 % of the hardened knee, a fault injected a while in and
//! ended a while later, the run's seconds cut into before, during and after, and the accounting of acknowledged
//! writes against what is stored once the load is over. Each fault asserts what the design promises of it, so a
//! broken promise fails the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::accounting::{self, Accounting};
use crate::partition::{PartitionOutcome, Partitioned};
use crate::plan::{Clients, Persona, Plan, PlanName, PlanOptions};
use crate::population::Population;
use crate::proxy::Condition;
use crate::runner::{self, RunArgs};
use crate::stats::{SecondSummary, failure_rate};
use crate::suite::Suite;

/// The hardened knee over 3,000 people on half a core (docs/capacity.md); chaos runs at 70 % of it by default.
pub const HARDENED_KNEE: f64 = 453.0;

/// A fault injected into the running suite.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Fault {
    /// Redis killed (SIGKILL) and started again empty: every cache, status document and stream gone.
    RedisEmpty,
    /// Redis killed and started again from its AOF.
    RedisAof,
    /// PostgreSQL killed (its postmaster, SIGKILL) and started again: crash recovery from its WAL.
    Postgres,
    /// The network to Redis 500 ms slower each way (a proxy between the services and Redis).
    SlowRedis,
    /// The network to Redis losing 10 % of what it carries: each lost piece costs a 200 ms retransmission timeout.
    LossyRedis,
    /// The network to PostgreSQL 500 ms slower each way (a proxy between everything and PostgreSQL).
    SlowPostgres,
    /// The network to PostgreSQL losing 10 % of what it carries, as `lossy-redis`.
    LossyPostgres,
    /// A second rendering replica, in a network namespace behind a balancer with the first, cut off from Redis (its
    /// packets dropped): it must report not ready and the first carry its load (see `crate::partition`).
    PartitionRendering,
    /// The same replica cut off from scoring instead (a partition between services): it needs scoring only for a
    /// status Redis lacks, so it must stay in and keep serving.
    PartitionRenderingScoring,
    /// A second verification replica cut off from Redis, as `partition-rendering`: the checkpoints' service.
    PartitionVerification,
    /// A second identity replica cut off from Redis: the one-time codes and sign-ins.
    PartitionIdentity,
    /// A second declaration replica cut off from Redis: the declarations and the labs' imports, whose cut-off
    /// requests resume on the other replica by their keys and batch ids.
    PartitionDeclaration,
    /// A second scoring replica cut off from Redis: the citizens' status reads, and its events' consumers.
    PartitionScoring,
    KillIdentity,
    KillDeclaration,
    KillScoring,
    KillRendering,
    KillVerification,
}

/// A slow network: 500 ms more each way.
const SLOW: Condition = Condition::Slow(Duration::from_millis(500));
/// A lossy one: a tenth of the chunks held for Linux's minimum retransmission timeout.
const LOSSY: Condition = Condition::Lossy {
    share: 0.1,
    rto: Duration::from_millis(200),
};

impl Fault {
    pub const ALL: &[Fault] = <Fault as strum::VariantArray>::VARIANTS;

    /// A partition fault's replica and what it is cut off from: (service, the host's port).
    fn partition(self) -> Option<(&'static str, u16)> {
        use crate::suite::{OWN_REDIS_PORT, port};
        match self {
            Fault::PartitionRendering => Some(("rendering", OWN_REDIS_PORT)),
            Fault::PartitionRenderingScoring => Some(("rendering", port("scoring"))),
            Fault::PartitionVerification => Some(("verification", OWN_REDIS_PORT)),
            Fault::PartitionIdentity => Some(("identity", OWN_REDIS_PORT)),
            Fault::PartitionDeclaration => Some(("declaration", OWN_REDIS_PORT)),
            Fault::PartitionScoring => Some(("scoring", OWN_REDIS_PORT)),
            _ => None,
        }
    }

    /// The service a kill fault kills.
    fn service(self) -> Option<&'static str> {
        <&str>::from(self).strip_prefix("kill-")
    }

    fn inject(self, suite: &Suite) {
        match (self, self.service()) {
            (_, Some(service)) => suite.kill(service),
            (Fault::Postgres, None) => suite.kill_postgres(),
            (Fault::SlowRedis, None) => suite.redis_network(SLOW),
            (Fault::LossyRedis, None) => suite.redis_network(LOSSY),
            (Fault::SlowPostgres, None) => suite.postgres_network(SLOW),
            (Fault::LossyPostgres, None) => suite.postgres_network(LOSSY),
            // The scenario cuts the namespace it made (`Partitioned::cut`).
            (_, None) if self.partition().is_some() => {}
            (_, None) => suite.kill_redis(),
        }
    }

    async fn end(self, suite: &Suite) -> anyhow::Result<()> {
        match (self, self.service()) {
            (_, Some(service)) => suite.restart(service).await,
            (Fault::Postgres, None) => suite.start_postgres(),
            (Fault::SlowRedis | Fault::LossyRedis, None) => {
                suite.redis_network(Condition::Clear);
                Ok(())
            }
            (Fault::SlowPostgres | Fault::LossyPostgres, None) => {
                suite.postgres_network(Condition::Clear);
                Ok(())
            }
            (_, None) if self.partition().is_some() => Ok(()),
            (Fault::RedisEmpty, None) => suite.start_redis(false),
            (_, None) => suite.start_redis(true),
        }
    }
}

/// Errors, goodput and latency over a stretch of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Window {
    pub from_s: u64,
    pub to_s: u64,
    pub offered_per_s: f64,
    pub goodput_per_s: f64,
    pub error_rate: f64,
    /// The worst second's p99 (the recorder keeps percentiles per second).
    pub p99_ms: f64,
    /// The worst second's p99 of the requests a person waits on (all but the labs' imports).
    #[serde(default)]
    pub people_p99_ms: f64,
}

impl Window {
    fn of(seconds: &[SecondSummary], from_s: u64, to_s: u64) -> Window {
        let s: Vec<&SecondSummary> = seconds
            .iter()
            .filter(|s| s.t >= from_s && s.t < to_s)
            .collect();
        let n = s.len().max(1) as f64;
        let offered: u64 = s.iter().map(|s| s.offered).sum();
        let ok: u64 = s.iter().map(|s| s.ok).sum();
        Window {
            from_s,
            to_s,
            offered_per_s: offered as f64 / n,
            goodput_per_s: s.iter().map(|s| s.goodput).sum::<u64>() as f64 / n,
            error_rate: failure_rate(offered, ok),
            p99_ms: s.iter().map(|s| s.p99_us).max().unwrap_or(0) as f64 / 1000.0,
            people_p99_ms: s.iter().map(|s| s.people_p99_us).max().unwrap_or(0) as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StaleCodes {
    pub before: usize,
    pub during: usize,
    pub after: usize,
    pub last_at_s: Option<u64>,
}

impl StaleCodes {
    fn of(at_s: &[u64], fault_at_s: u64, back_s: u64) -> Self {
        StaleCodes {
            before: at_s.iter().filter(|&&t| t < fault_at_s).count(),
            during: at_s
                .iter()
                .filter(|&&t| (fault_at_s..back_s).contains(&t))
                .count(),
            after: at_s.iter().filter(|&&t| t >= back_s).count(),
            last_at_s: at_s.iter().copied().max(),
        }
    }
}

/// The requests a killed service does not serve: they must not go down with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bystanders {
    pub killed: String,
    pub before_goodput_per_s: f64,
    pub during_goodput_per_s: f64,
}

impl Bystanders {
    fn of(seconds: &[SecondSummary], killed: &str, before: (u64, u64), during: (u64, u64)) -> Self {
        let goodput = |(from, to): (u64, u64)| {
            let s: Vec<&SecondSummary> =
                seconds.iter().filter(|s| s.t >= from && s.t < to).collect();
            let good: u64 = s
                .iter()
                .flat_map(|s| &s.personas)
                .filter(|(name, _)| {
                    Persona::ALL
                        .iter()
                        .any(|p| p.name() == *name && !p.services().contains(&killed))
                })
                .map(|(_, p)| p.goodput)
                .sum();
            good as f64 / s.len().max(1) as f64
        };
        Bystanders {
            killed: killed.to_owned(),
            before_goodput_per_s: goodput(before),
            during_goodput_per_s: goodput(during),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosResult {
    pub name: String,
    pub fault: Fault,
    pub rate: f64,
    pub fault_at_s: f64,
    pub fault_for_s: f64,
    /// When the fault ended and the dependency or service was back (ready), seconds into the run.
    pub back_at_s: f64,
    pub before: Window,
    pub during: Window,
    pub after: Window,
    /// Seconds from the fault's end until the first of 10 healthy seconds in a row: failures under 1 % and p99 no
    /// worse than before the fault (or a second, whichever is more).
    pub recovery_s: Option<f64>,
    /// Codes shown flagged stale (the status as of a time, because scoring could not vouch for it now), before,
    /// during and after the fault, and the last second one was.
    #[serde(default)]
    pub stale_codes: StaleCodes,
    /// For a partition: when the cut-off replica was taken out and put back, and the connections each replica got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionOutcome>,
    /// For a killed service: the goodput of the requests that do not go to it, before and during.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bystanders: Option<Bystanders>,
    pub accounting: Accounting,
    /// What the run promised and did not keep (empty: passed).
    pub broken: Vec<String>,
    pub run: String,
}

#[derive(clap::Args, Clone)]
pub struct ChaosArgs {
    /// The faults, each in a run of its own (repeatable); by default all of them.
    #[arg(long, default_values_t = Fault::ALL.to_vec())]
    pub fault: Vec<Fault>,
    #[arg(long, default_value_t = 20.0)]
    pub fault_at: f64,
    #[arg(long, default_value_t = 10.0)]
    pub fault_for: f64,
    /// How long the accounting waits for the events to settle after the load (it stops as soon as nothing is
    /// missing; the time taken is reported).
    #[arg(long, default_value_t = 300.0)]
    pub settle: f64,
    /// --rate (default 70 % of the hardened knee) and --duration (default 60 s).
    #[arg(skip)]
    pub rate: f64,
    #[arg(skip)]
    pub duration_s: f64,
}

/// One fault under the steady mix; the result is written beside the run's and returned.
pub async fn scenario(
    suite: &Suite,
    population: Arc<Population>,
    mut run_args: RunArgs,
    fault: Fault,
    a: &ChaosArgs,
) -> anyhow::Result<ChaosResult> {
    let plan = Plan::new(
        PlanName::Steady,
        1.0,
        &PlanOptions {
            duration_s: Some(a.duration_s),
            rate: Some(a.rate),
            clients: Some(Clients::Page),
            risk_change: Some(false),
            ..Default::default()
        },
    )
    .map_err(anyhow::Error::msg)?;
    let partition = match fault.partition() {
        Some((service, cut_port)) => Some(Partitioned::start(suite, service, cut_port).await?),
        None => None,
    };
    let (started_tx, mut started) = tokio::sync::watch::channel(None);
    run_args.started = Some(started_tx);
    let faults = async {
        let start: Instant = loop {
            if let Some(at) = *started.borrow_and_update() {
                break at;
            }
            started.changed().await?;
        };
        tokio::time::sleep_until((start + Duration::from_secs_f64(a.fault_at)).into()).await;
        eprintln!("[chaos] {fault}: injected");
        match &partition {
            Some(p) => p.cut()?,
            None => fault.inject(suite),
        }
        tokio::time::sleep_until(
            (start + Duration::from_secs_f64(a.fault_at + a.fault_for)).into(),
        )
        .await;
        match &partition {
            Some(p) => p.heal()?,
            None => fault.end(suite).await?,
        }
        let back = start.elapsed().as_secs_f64();
        eprintln!("[chaos] {fault}: back at {back:.1} s");
        anyhow::Ok(back)
    };
    let (run, back) = tokio::join!(runner::run(suite, population, plan, &run_args), faults);
    let (run, back_at_s) = (run?, back?);
    let accounting =
        accounting::check(suite, &run.ledger, Duration::from_secs_f64(a.settle)).await?;
    let seconds = &run.summary.seconds;
    let at = a.fault_at as u64;
    let back_s = back_at_s.ceil() as u64;
    let end = a.duration_s as u64;
    let (before_s, during_s) = ((1, at.saturating_sub(1)), (at, back_s));
    let before = Window::of(seconds, before_s.0, before_s.1);
    // Back to how it was before: failures under 1 % and people's p99 no worse than the worst second before the fault
    // (and never asked to beat a second). People's, as the patience promise: the labs' batches take a second or more
    // with no fault at all, and one of them in a second broke a run of healthy seconds (kill-scoring "recovered" 26 s
    // after the fault on all requests' p99, 11 s on people's, in one run).
    let healthy_p99_us = (before.people_p99_ms * 1000.0).max(1_000_000.0) as u64;
    let mut result = ChaosResult {
        name: run_args.name.clone(),
        fault,
        rate: a.rate,
        fault_at_s: a.fault_at,
        fault_for_s: a.fault_for,
        back_at_s,
        before,
        during: Window::of(seconds, during_s.0, during_s.1),
        after: Window::of(seconds, back_s, end),
        recovery_s: recovery_s(seconds, back_at_s, healthy_p99_us),
        stale_codes: StaleCodes::of(&run.ledger.stale_codes_at_s, at, back_s),
        partition: partition.as_ref().map(Partitioned::outcome),
        bystanders: fault
            .service()
            .map(|killed| Bystanders::of(seconds, killed, before_s, during_s)),
        accounting,
        broken: Vec::new(),
        run: run.name.clone(),
    };
    result.broken = promises_broken(&result);
    let path = run_args.out.join(format!("{}.chaos.json", run_args.name));
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    print(&result);
    Ok(result)
}

/// Seconds of health in a row that count as recovered. At 70 % of the knee on half a core a lone second's p99 passes
/// a second now and then with no fault at all; ten healthy seconds in a row do not happen during one.
const HEALTHY_RUN: usize = 10;

/// Seconds from `from_s` until the first of [`HEALTHY_RUN`] seconds in a row with people's p99 within `p99_us` and
/// failures under 1 %; `None` if that never comes.
fn recovery_s(seconds: &[SecondSummary], from_s: f64, p99_us: u64) -> Option<f64> {
    crate::stats::recovery_s(seconds, from_s, HEALTHY_RUN, |s| {
        s.people_p99_us <= p99_us && failure_rate(s.offered, s.ok) < 0.01
    })
}

/// What each fault promises: nothing acknowledged lost or stored twice, and the suite back to how it was before
/// (ten seconds in a row with failures under 1 % and people's p99 no worse than the worst second before, or a second) within
/// 20 s of the fault's end. A killed Redis or service may fail requests while it is
/// down, but never all of them: the page keeps its stale-but-signed code, and the rest of the suite answers.
fn promises_broken(r: &ChaosResult) -> Vec<String> {
    let mut broken = r.accounting.problems();
    match r.recovery_s {
        Some(s) if s <= 20.0 => {}
        Some(s) => broken.push(format!(
            "recovered {s:.0} s after the fault ended, not within 20 s"
        )),
        None => broken.push("never recovered to failures < 1 % and p99 as before".into()),
    }
    if r.before.error_rate >= 0.01 {
        broken.push(format!(
            "{:.1} % failures before the fault: the rate is past what the suite holds here",
            r.before.error_rate * 100.0
        ));
    }
    // A slow or lossy network is ridden out by timeouts and breakers. Behind Redis there are fallbacks, so no person
    // waits past their patience (5 s). A write has no fallback from PostgreSQL: a try is cut at the request timeout
    // (5 s) and answered 503 with Retry-After, and the client's time to a stored write includes its retry. A lab's
    // import of 1,000 rows is nobody's wait: it takes seconds without any fault, and resumes by its batch id.
    let p99_limit_ms = match r.fault {
        Fault::SlowRedis | Fault::LossyRedis | Fault::PartitionRenderingScoring => Some(5_000.0),
        Fault::SlowPostgres | Fault::LossyPostgres => Some(10_000.0),
        _ => None,
    };
    if let Some(limit) = p99_limit_ms
        && r.during.people_p99_ms > limit
    {
        broken.push(format!(
            "people's p99 {:.0} ms during the fault: past {:.0} s",
            r.during.people_p99_ms,
            limit / 1000.0
        ));
    }
    // Scoring down, Redis up: codes still show, from the documents in Redis, flagged stale once scoring has been
    // silent a while (5 s in a chaos run), and no longer once it is back.
    if r.fault == Fault::KillScoring {
        if r.stale_codes.during == 0 {
            broken.push("no code was flagged stale while scoring was down".into());
        }
        if let Some(last) = r
            .stale_codes
            .last_at_s
            .filter(|&t| t as f64 > r.back_at_s + 10.0)
        {
            broken.push(format!(
                "codes still flagged stale {:.0} s after scoring was back",
                last as f64 - r.back_at_s
            ));
        }
    }
    if let Some(p) = &r.partition {
        if r.fault == Fault::PartitionRenderingScoring {
            // Cut off from scoring, the replica still serves from Redis: it must stay in.
            if let Some(t) = p.taken_out_after_s {
                broken.push(format!(
                    "the replica cut off from scoring was taken out {t:.1} s after the cut: it needs scoring only \
                     for a status Redis lacks"
                ));
            }
        } else {
            match p.taken_out_after_s {
                Some(t) if t <= 5.0 => {}
                Some(t) => broken.push(format!(
                    "the cut-off replica was taken out only {t:.1} s after the cut"
                )),
                None => broken.push(
                    "the cut-off replica was never taken out: it did not report not ready".into(),
                ),
            }
            match p.back_in_after_s {
                Some(t) if t <= 10.0 => {}
                Some(t) => broken.push(format!(
                    "the replica was back in only {t:.1} s after the heal"
                )),
                None => broken.push("the replica never came back in after the heal".into()),
            }
        }
        // The replicas carry the load between them: nearly all of it, not the 30 % that marks a collapse.
        if r.during.goodput_per_s < r.before.goodput_per_s * 0.7 {
            broken.push(format!(
                "goodput fell to {:.0}/s during the partition (from {:.0}/s): the replicas did not carry the load",
                r.during.goodput_per_s, r.before.goodput_per_s
            ));
        }
    }
    match &r.bystanders {
        // One replica of a killed service fails its own requests until it is back (in a cluster its other replicas
        // take them); what must hold is everything else: no cascade.
        Some(b) if b.during_goodput_per_s < b.before_goodput_per_s * 0.7 => broken.push(format!(
            "the requests not sent to {} fell to {:.0}/s during the fault (from {:.0}/s): its failure spread",
            b.killed, b.during_goodput_per_s, b.before_goodput_per_s
        )),
        Some(_) => {}
        None if r.during.goodput_per_s < r.before.goodput_per_s * 0.3 => broken.push(format!(
            "goodput fell to {:.0}/s during the fault (from {:.0}/s): a collapse, not a degradation",
            r.during.goodput_per_s, r.before.goodput_per_s
        )),
        None => {}
    }
    broken
}

fn print(r: &ChaosResult) {
    eprintln!(
        "{}: before {:.0}/s ok, {:.2} % failed, p99 {:.0} ms (people's {:.0}) | during {:.0}/s, {:.2} %, p99 {:.0} ms (people's {:.0}) | after {:.0}/s, {:.2} %, p99 {:.0} ms (people's {:.0}) | recovered in {:?} s",
        r.name,
        r.before.goodput_per_s,
        r.before.error_rate * 100.0,
        r.before.p99_ms,
        r.before.people_p99_ms,
        r.during.goodput_per_s,
        r.during.error_rate * 100.0,
        r.during.p99_ms,
        r.during.people_p99_ms,
        r.after.goodput_per_s,
        r.after.error_rate * 100.0,
        r.after.p99_ms,
        r.after.people_p99_ms,
        r.recovery_s
    );
    eprintln!("  accounting: {:?}", r.accounting);
    for b in &r.broken {
        eprintln!("  BROKEN: {b}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(t: u64, p99_ms: u64, failed: u64) -> SecondSummary {
        SecondSummary {
            t,
            offered: 100,
            ok: 100 - failed,
            p99_us: p99_ms * 1000,
            people_p99_us: p99_ms * 1000,
            ..Default::default()
        }
    }

    #[test]
    fn bystanders_are_the_requests_the_killed_service_does_not_serve() {
        let with = |t, show: u64, status: u64| {
            let mut s = second(t, 100, 0);
            for (name, goodput) in [("show-code", show), ("read-status", status)] {
                s.personas.insert(
                    name.into(),
                    crate::stats::PersonaSecond {
                        offered: 100,
                        goodput,
                    },
                );
            }
            s
        };
        let seconds = vec![
            with(0, 100, 20),
            with(1, 100, 20),
            with(2, 0, 18),
            with(3, 0, 18),
        ];
        let b = Bystanders::of(&seconds, "rendering", (0, 2), (2, 4));
        assert_eq!(
            (b.before_goodput_per_s, b.during_goodput_per_s),
            (20.0, 18.0)
        );
        let b = Bystanders::of(&seconds, "scoring", (0, 2), (2, 4));
        assert_eq!(
            (b.before_goodput_per_s, b.during_goodput_per_s),
            (100.0, 0.0)
        );
    }

    #[test]
    fn recovery_is_the_first_of_ten_healthy_seconds_in_a_row() {
        // Unhealthy until 33, a lone slow second at 37, then healthy to the end.
        let seconds: Vec<_> = (0..60)
            .map(|t| match t {
                30..=32 => second(t, 3000, 0),
                33 => second(t, 200, 5),
                37 => second(t, 1500, 0),
                _ => second(t, 200, 0),
            })
            .collect();
        assert_eq!(recovery_s(&seconds, 30.0, 1_000_000), Some(8.0));
        // Never healthy for ten seconds: not recovered.
        let flapping: Vec<_> = (0..60).map(|t| second(t, 200, t % 5)).collect();
        assert_eq!(recovery_s(&flapping, 30.0, 1_000_000), None);
        // A lab's slow batch in a second sets all requests' p99, not people's.
        let with_batches: Vec<_> = (0..60)
            .map(|t| SecondSummary {
                p99_us: 4_000_000,
                ..second(t, 200, 0)
            })
            .collect();
        assert_eq!(recovery_s(&with_batches, 30.0, 1_000_000), Some(0.0));
    }
}
