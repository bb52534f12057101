//! `loadtest`: the load generator of the health-code suite (goose as a library under this CLI).
//!
//!     loadtest seed  --people 1000000                      # seeds a suite it starts, reports how long it took
//!     loadtest run   --plan mass-testing --profile naive --scale 0.02
//!     loadtest knee  --profile hardened --from 200 --factor 1.4 --steps 8
//!     loadtest costs --profile hardened --rate 100                # CPU per request of each persona alone
//!     loadtest smoke                                       # every persona, a few seconds, answers checked
//!     loadtest report                                      # docs/capacity.md from loadtests/results/*.json
//!
//! Every run starts its own suite (scratch database and key prefix, ports 19081-19085, loopback only), seeds it,
//! drives it for a bounded time, writes goose's HTML, JSON and Markdown reports and our own JSON result, and
//! removes the scratch data. See docs/capacity.md for the method.

mod accounting;
mod chaos;
mod cpu;
mod partition;
mod personas;
mod plan;
mod population;
mod proxy;
mod report;
mod runner;
mod schedule;
mod stats;
mod suite;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plan::{Clients, PlanName, PlanOptions};
use crate::suite::Profile;

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load tests of the health-code suite (goose)"
)]
struct Cli {
    /// CPUs this generator runs on (taskset list, e.g. "1"); the suite gets `--suite-cpus`.
    #[arg(long, global = true)]
    generator_cpus: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a suite, seed the population, print how long each step took, and remove it again.
    Seed {
        #[command(flatten)]
        suite: SuiteArgs,
    },
    /// One plan against a suite in one profile.
    Run {
        #[command(flatten)]
        suite: SuiteArgs,
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long)]
        plan: PlanName,
    },
    /// Steady runs at rising rates: the knee (p99 < 200 ms, failures < 0.1 %) and goodput up to 3x it.
    Knee {
        #[command(flatten)]
        suite: SuiteArgs,
        #[command(flatten)]
        load: LoadArgs,
        /// Full-scale rate of the first step (times --scale).
        #[arg(long, default_value_t = 200.0)]
        from: f64,
        #[arg(long, default_value_t = 1.4)]
        factor: f64,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// After the sweep, the same sweep in another profile over the same seeded population: PROFILE@FROM, e.g.
        /// `naive@8` (repeatable). Its result is named as the first with the profile's name swapped.
        #[arg(long)]
        then: Vec<ThenSweep>,
    },
    /// The suite idle, then each persona alone at a steady rate (`--rate`, 100/s; imports a fiftieth, sign-ins a
    /// quarter): CPU per request of each request type, by program.
    Costs {
        #[command(flatten)]
        suite: SuiteArgs,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Faults under load: the steady mix at --rate (default 70 % of the hardened knee, 317/s) for --duration
    /// (default 60 s), each fault in a run of its own over one seeded suite with a PostgreSQL and a Redis of its own, injected at
    /// --fault-at and ended --fault-for later; then the acknowledged writes are accounted for. Fails when a fault
    /// breaks a promise (docs/reliability.md).
    Chaos {
        #[command(flatten)]
        suite: SuiteArgs,
        #[command(flatten)]
        load: LoadArgs,
        /// redis-empty, redis-aof, postgres, slow-redis, lossy-redis, slow-postgres, lossy-postgres,
        /// partition-rendering, partition-rendering-scoring, partition-verification, partition-identity,
        /// partition-declaration, partition-scoring, kill-identity, kill-declaration, kill-scoring, kill-rendering,
        /// kill-verification (repeatable); none: all of them.
        #[arg(long)]
        fault: Vec<chaos::Fault>,
        #[arg(long, default_value_t = 20.0)]
        fault_at: f64,
        #[arg(long, default_value_t = 10.0)]
        fault_for: f64,
        /// How long the accounting waits for the events to settle after the load (it stops as soon as nothing is
        /// missing; the time taken is reported).
        #[arg(long, default_value_t = 300.0)]
        settle: f64,
    },
    /// Every persona for a few seconds against a small suite, every answer checked: proves the generator works
    /// (make test); measures nothing.
    Smoke {
        #[arg(long, default_value = "target/debug")]
        bin_dir: PathBuf,
    },
    /// Writes docs/capacity.md and its plots from the results.
    Report {
        #[arg(long, default_value = "loadtests/results")]
        results: PathBuf,
        #[arg(long, default_value = "docs/capacity.md")]
        out: PathBuf,
    },
}

#[derive(Args, Clone)]
struct SuiteArgs {
    /// hardened, naive, or without-DEFENCE (render-cache, in-process-caches, admission, request-timeouts,
    /// pool-wait-limit, circuit-breaker, stale-fallback, import-cap).
    #[arg(long, default_value = "hardened")]
    profile: Profile,
    #[arg(long, default_value_t = 20_000)]
    people: usize,
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// CPUs of the suite (services, PostgreSQL, Redis), e.g. "0".
    #[arg(long)]
    suite_cpus: Option<String>,
    /// The suite's CPU capacity in cores (cgroup v1 quota), e.g. 0.5.
    #[arg(long)]
    suite_cores: Option<f64>,
    /// actix workers per service.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Drive a suite that is already running instead of starting one: the base URL every service answers under
    /// (an Ingress host). Its keys and addresses come from the environment (see `Suite::attach`).
    #[arg(long)]
    target: Option<String>,
    /// As `--target`, one service at its own base URL (NAME=URL; repeatable, e.g. identity=http://127.0.0.1:8081).
    #[arg(long, value_parser = parse_target)]
    target_service: Vec<(String, String)>,
    /// A PostgreSQL and a Redis of the suite's own (chaos runs kill them).
    #[arg(skip)]
    own_stores: bool,
}

/// A further knee sweep over the same seeded suite (`--then naive@8`).
#[derive(Clone)]
struct ThenSweep {
    profile: suite::Profile,
    from: f64,
}

impl std::str::FromStr for ThenSweep {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (profile, from) = s.split_once('@').ok_or("expected PROFILE@FROM")?;
        let from: f64 = from
            .parse()
            .map_err(|_| format!("{from:?} is not a rate"))?;
        Ok(ThenSweep {
            profile: profile.parse()?,
            from,
        })
    }
}

/// The result name of a `--then` sweep: the first sweep's with the profile's name swapped, or the profile appended
/// when the first name does not contain it (so that no sweep overwrites another's result).
fn then_name(first: &str, first_profile: &suite::Profile, profile: &suite::Profile) -> String {
    let swapped = first.replace(&first_profile.name(), &profile.name());
    if swapped == first {
        format!("{first}-{}", profile.name())
    } else {
        swapped
    }
}

fn parse_target(s: &str) -> Result<(String, String), String> {
    let (name, url) = s.split_once('=').ok_or("expected NAME=URL")?;
    if !suite::SERVICES.iter().any(|(n, _)| *n == name) {
        return Err(format!("unknown service {name}"));
    }
    Ok((name.to_owned(), url.trim_end_matches('/').to_owned()))
}

/// A suite of the run's own, or the running one named by --target / --target-service.
async fn suite_for(s: &SuiteArgs) -> anyhow::Result<suite::Suite> {
    let mut targets: std::collections::BTreeMap<String, String> =
        s.target_service.iter().cloned().collect();
    if let Some(base) = &s.target {
        targets.insert("*".into(), base.trim_end_matches('/').to_owned());
    }
    if targets.is_empty() {
        suite::Suite::start(suite_options(s)).await
    } else {
        suite::Suite::attach(suite_options(s), targets)
    }
}

#[derive(Args, Clone)]
struct LoadArgs {
    #[arg(long, default_value_t = 0.01)]
    scale: f64,
    #[arg(long)]
    duration: Option<f64>,
    /// Full-scale rate of a steady run or of the baseline.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long)]
    surge_factor: Option<f64>,
    #[arg(long)]
    surge_hold: Option<f64>,
    /// page (the hardened page: Retry-After with jittered backoff) or immediate (retries at once, 3 times).
    /// Default: the plan's (retry-storm: immediate), else page for hardened and immediate for naive.
    #[arg(long)]
    clients: Option<Clients>,
    /// A citizen's patience: the client timeout, in seconds.
    #[arg(long, default_value_t = 5.0)]
    patience: f64,
    /// goose users per persona: its peak rate times this many seconds (the time a user may be held by one
    /// arrival, retries included), within --max-users in all.
    #[arg(long, default_value_t = 2.0)]
    in_flight: f64,
    #[arg(long, default_value_t = 5_000)]
    max_users: usize,
    /// goose threshold rules (e.g. "error-rate<5%"), passed to goose; a missed one fails the run.
    #[arg(long)]
    threshold: Vec<String>,
    /// Our own checks: fail unless the suite is back to p99 < 200 ms within this many seconds of the surge.
    #[arg(long)]
    require_recovery: Option<f64>,
    #[arg(long, default_value = "loadtests/results")]
    out: PathBuf,
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl LoadArgs {
    fn plan_options(&self, profile: &Profile) -> PlanOptions {
        PlanOptions {
            duration_s: self.duration,
            rate: self.rate,
            surge_factor: self.surge_factor,
            surge_hold_s: self.surge_hold,
            clients: self.clients.or(match profile {
                Profile::Naive => Some(Clients::Immediate),
                _ => None,
            }),
            risk_change: None,
            only: None,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(cpus) = &cli.generator_cpus {
        // Before the runtime starts its threads: they inherit it. The suite's processes are pinned apart.
        cpu::set_affinity(std::process::id(), cpus)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Stopped by a signal, the run's future is dropped, and with it the suite: its services are stopped, its
        // scratch database and keys removed, and PostgreSQL and Redis given their CPUs back.
        tokio::select! {
            result = run(cli) => result,
            signal = stop_signal() => Err(anyhow::anyhow!("stopped by {signal}; the suite it started is removed")),
        }
    })
}

async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => std::future::pending().await,
    }
}

/// A load run's setup, its suite (started or attached), and the population seeded into it.
async fn seeded(
    s: &SuiteArgs,
    generator_cpus: &Option<String>,
) -> anyhow::Result<(
    runner::Setup,
    suite::Suite,
    std::sync::Arc<population::Population>,
)> {
    let setup = runner::Setup::new(&suite_options(s), s.people, generator_cpus.clone());
    let suite = suite_for(s).await?;
    suite.unconfined_for_seeding()?;
    let seeding = async {
        let seeded = population::seed(&suite, s.people).await?;
        suite.settle().await?;
        Ok::<_, anyhow::Error>(seeded)
    }
    .await;
    suite.confined_for_the_run()?;
    let (population, times) = seeding?;
    eprintln!("seeded {} people: {times:?}", s.people);
    Ok((setup, suite, std::sync::Arc::new(population)))
}

fn suite_options(s: &SuiteArgs) -> suite::SuiteOptions {
    suite::SuiteOptions {
        profile: s.profile.clone(),
        bin_dir: s.bin_dir.clone(),
        cpus: s.suite_cpus.clone(),
        cores: s.suite_cores,
        workers: s.workers,
        own_stores: s.own_stores,
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Seed { suite } => {
            let s = suite_for(&suite).await?;
            let (_, times) = population::seed(&s, suite.people).await?;
            println!("{}", serde_json::to_string_pretty(&times)?);
            Ok(())
        }
        Command::Run { suite, load, plan } => {
            let options = load.plan_options(&suite.profile);
            let plan = plan::Plan::new(plan, load.scale, &options).map_err(anyhow::Error::msg)?;
            let (setup, s, population) = seeded(&suite, &cli.generator_cpus).await?;
            let name = load
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-{}", plan.name.as_str(), suite.profile.name()));
            let result = runner::run(
                &s,
                population,
                plan,
                &runner::RunArgs::from(&load, &setup, &name),
            )
            .await?;
            runner::enforce(&result, load.require_recovery)
        }
        Command::Knee {
            suite,
            load,
            from,
            factor,
            steps,
            then,
        } => {
            let (setup, mut s, population) = seeded(&suite, &cli.generator_cpus).await?;
            let name = load
                .name
                .clone()
                .unwrap_or_else(|| format!("knee-{}", suite.profile.name()));
            let first = ThenSweep {
                profile: suite.profile.clone(),
                from,
            };
            for (i, sweep) in std::iter::once(first).chain(then).enumerate() {
                let (setup, name) = if i == 0 {
                    (setup.clone(), name.clone())
                } else {
                    s.restart_as(sweep.profile.clone()).await?;
                    (
                        runner::Setup::new(&s.options, suite.people, cli.generator_cpus.clone()),
                        then_name(&name, &suite.profile, &sweep.profile),
                    )
                };
                runner::knee(
                    &s,
                    population.clone(),
                    &load,
                    &sweep.profile,
                    &setup,
                    &name,
                    sweep.from,
                    factor,
                    steps,
                )
                .await?;
            }
            Ok(())
        }
        Command::Costs { suite, load } => {
            let (setup, s, population) = seeded(&suite, &cli.generator_cpus).await?;
            let name = load
                .name
                .clone()
                .unwrap_or_else(|| format!("costs-{}", suite.profile.name()));
            runner::costs(&s, population, &load, &setup, &name).await
        }
        Command::Chaos {
            mut suite,
            load,
            fault,
            fault_at,
            fault_for,
            settle,
        } => {
            anyhow::ensure!(
                suite.target.is_none() && suite.target_service.is_empty(),
                "chaos runs start their own suite: it kills its processes"
            );
            suite.own_stores = true;
            let faults = if fault.is_empty() {
                chaos::Fault::ALL.to_vec()
            } else {
                fault
            };
            let args = chaos::ChaosArgs {
                rate: load.rate.unwrap_or(0.7 * chaos::HARDENED_KNEE),
                duration_s: load.duration.unwrap_or(60.0),
                fault_at_s: fault_at,
                fault_for_s: fault_for,
                settle: std::time::Duration::from_secs_f64(settle),
            };
            let mut broken = Vec::new();
            for f in faults {
                // Each fault gets a suite and a population of its own: on one suite every run left 195,000 more test
                // results with the same 3,000 people, and the later runs' settling measured that (22 s after the
                // first run of a list, 310 s after the sixth) rather than their fault.
                let (setup, s, population) = seeded(&suite, &cli.generator_cpus).await?;
                let name = format!("{}-{}", load.name.as_deref().unwrap_or("chaos"), f.name());
                let r = chaos::scenario(
                    &s,
                    population.clone(),
                    runner::RunArgs::from(&load, &setup, &name),
                    f,
                    &args,
                )
                .await?;
                broken.extend(r.broken.iter().map(|b| format!("{name}: {b}")));
            }
            anyhow::ensure!(broken.is_empty(), "promises broken:\n{}", broken.join("\n"));
            Ok(())
        }
        Command::Smoke { bin_dir } => runner::smoke(bin_dir).await,
        Command::Report { results, out } => report::write(&results, &out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_then_sweep_is_named_after_the_first_and_never_overwrites_it() {
        let (h, n) = (suite::Profile::Hardened, suite::Profile::Naive);
        assert_eq!(then_name("knee-hardened-1m", &h, &n), "knee-naive-1m");
        assert_eq!(then_name("knee-1m", &h, &n), "knee-1m-naive");
    }
}
