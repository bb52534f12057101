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
use std::sync::Arc;

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
        suite: suite::SuiteOptions,
    },
    /// One plan against a suite in one profile.
    Run {
        #[command(flatten)]
        suite: suite::SuiteOptions,
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long)]
        plan: PlanName,
    },
    /// Steady runs at rising rates: the knee (p99 < 200 ms, failures < 0.1 %) and goodput up to 3x it.
    Knee {
        #[command(flatten)]
        suite: suite::SuiteOptions,
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
        #[arg(long, value_parser = parse_then)]
        then: Vec<(Profile, f64)>,
    },
    /// The suite idle, then each persona alone at a steady rate (`--rate`, 100/s; imports a fiftieth, sign-ins a
    /// quarter): CPU per request of each request type, by program.
    Costs {
        #[command(flatten)]
        suite: suite::SuiteOptions,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Faults under load: the steady mix at --rate (default 70 % of the hardened knee, 317/s) for --duration
    /// (default 60 s), each fault in a run of its own over one seeded suite with a PostgreSQL and a Redis of its own, injected at
    /// --fault-at and ended --fault-for later; then the acknowledged writes are accounted for. Fails when a fault
    /// breaks a promise (docs/reliability.md).
    Chaos {
        #[command(flatten)]
        suite: suite::SuiteOptions,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        chaos: chaos::ChaosArgs,
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

/// A further knee sweep over the same seeded suite (`--then naive@8`): its profile and first rate.
fn parse_then(s: &str) -> Result<(Profile, f64), String> {
    let (profile, from) = s.split_once('@').ok_or("expected PROFILE@FROM")?;
    let from = from
        .parse()
        .map_err(|_| format!("{from:?} is not a rate"))?;
    Ok((profile.parse()?, from))
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

/// A suite of the run's own, or the running one named by --target / --target-service.
async fn suite_for(o: &suite::SuiteOptions) -> anyhow::Result<suite::Suite> {
    let mut targets: std::collections::BTreeMap<String, String> =
        o.target_service.iter().cloned().collect();
    if let Some(base) = &o.target {
        targets.insert("*".into(), base.trim_end_matches('/').to_owned());
    }
    if targets.is_empty() {
        suite::Suite::start(o.clone()).await
    } else {
        suite::Suite::attach(o.clone(), targets)
    }
}

#[derive(Args, Clone)]
struct LoadArgs {
    #[arg(long, default_value_t = 0.01)]
    scale: f64,
    #[command(flatten)]
    plan: PlanOptions,
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
    /// `--name`, or `default`.
    fn name_or(&self, default: String) -> String {
        self.name.clone().unwrap_or(default)
    }

    fn plan_options(&self, profile: &Profile) -> PlanOptions {
        let naive = (*profile == Profile::Naive).then_some(Clients::Immediate);
        PlanOptions {
            clients: self.plan.clients.or(naive),
            ..self.plan.clone()
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
    o: &suite::SuiteOptions,
    generator_cpus: &Option<String>,
) -> anyhow::Result<(runner::Setup, suite::Suite, Arc<population::Population>)> {
    let setup = runner::Setup::new(o, generator_cpus.clone());
    let suite = suite_for(o).await?;
    suite.unconfined_for_seeding()?;
    let seeding = async {
        let seeded = population::seed(&suite, o.people).await?;
        suite.settle().await?;
        Ok::<_, anyhow::Error>(seeded)
    }
    .await;
    suite.confined_for_the_run()?;
    let (population, times) = seeding?;
    eprintln!("seeded {} people: {times:?}", o.people);
    Ok((setup, suite, Arc::new(population)))
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
            let name = load.name_or(format!("{}-{}", plan.name, suite.profile.name()));
            let args = runner::RunArgs::from(&load, &setup, &name);
            let result = runner::run(&s, population, plan, &args).await?;
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
            let (_, mut s, population) = seeded(&suite, &cli.generator_cpus).await?;
            let first = load.name_or(format!("knee-{}", suite.profile.name()));
            for (i, (profile, from)) in std::iter::once((suite.profile.clone(), from))
                .chain(then)
                .enumerate()
            {
                let name = if i == 0 {
                    first.clone()
                } else {
                    s.restart_as(profile.clone()).await?;
                    then_name(&first, &suite.profile, &profile)
                };
                let setup = runner::Setup::new(&s.options, cli.generator_cpus.clone());
                runner::knee(
                    &s,
                    population.clone(),
                    &load,
                    &profile,
                    &setup,
                    &name,
                    from,
                    factor,
                    steps,
                )
                .await?;
            }
            Ok(())
        }
        Command::Costs { suite, load } => {
            let (setup, s, population) = seeded(&suite, &cli.generator_cpus).await?;
            let name = load.name_or(format!("costs-{}", suite.profile.name()));
            runner::costs(&s, population, &load, &setup, &name).await
        }
        Command::Chaos {
            mut suite,
            load,
            mut chaos,
        } => {
            anyhow::ensure!(
                suite.target.is_none() && suite.target_service.is_empty(),
                "chaos runs start their own suite: it kills its processes"
            );
            suite.own_stores = true;
            chaos.rate = load.plan.rate.unwrap_or(0.7 * chaos::HARDENED_KNEE);
            chaos.duration_s = load.plan.duration_s.unwrap_or(60.0);
            let mut broken = Vec::new();
            for &f in &chaos.fault {
                // Each fault gets a suite and a population of its own: on one suite every run left 195,000 more test
                // results with the same 3,000 people, and the later runs' settling measured that (22 s after the
                // first run of a list, 310 s after the sixth) rather than their fault.
                let (setup, s, population) = seeded(&suite, &cli.generator_cpus).await?;
                let name = format!("{}-{f}", load.name.as_deref().unwrap_or("chaos"));
                let args = runner::RunArgs::from(&load, &setup, &name);
                let r = chaos::scenario(&s, population, args, f, &chaos).await?;
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
