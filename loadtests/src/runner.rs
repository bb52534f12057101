//! One goose attack per plan run: the context its users share, the CPU sampler and the recolouring probe beside
//! it, and the result written as JSON next to goose's own reports.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde::{Deserialize, Serialize};

use crate::LoadArgs;
use crate::cpu::CpuSample;
use crate::personas::{self, RecolourResult, RunContext};
use crate::plan::{Persona, Plan, PlanName, PlanOptions};
use crate::population::{self, Population};
use crate::stats::Summary;
use crate::suite::{self, Profile, Suite};

/// How the machine was shared and what ran, for the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    pub profile: String,
    pub people: usize,
    pub suite_cpus: Option<String>,
    pub suite_cores: Option<f64>,
    pub generator_cpus: Option<String>,
    pub workers: usize,
    pub build: String,
}

impl Setup {
    pub fn new(o: &suite::SuiteOptions, generator_cpus: Option<String>) -> Setup {
        Setup {
            profile: o.profile.name(),
            people: o.people,
            suite_cpus: o.suite_cpus.clone(),
            suite_cores: o.suite_cores,
            generator_cpus,
            workers: o.workers,
            build: o.bin_dir.display().to_string(),
        }
    }
}

pub struct RunArgs {
    pub patience: Duration,
    pub in_flight_s: f64,
    pub max_users: usize,
    pub thresholds: Vec<String>,
    pub out: PathBuf,
    pub name: String,
    pub seed: u64,
    pub setup: Setup,
    /// Told when the plan's clock starts (a chaos run times its fault from it).
    pub started: Option<tokio::sync::watch::Sender<Option<Instant>>>,
}

impl RunArgs {
    pub fn from(load: &LoadArgs, setup: &Setup, name: &str) -> RunArgs {
        RunArgs {
            patience: Duration::from_secs_f64(load.patience.clamp(0.1, 120.0)),
            in_flight_s: load.in_flight.clamp(0.01, 120.0),
            max_users: load.max_users,
            thresholds: load.threshold.clone(),
            out: load.out.clone(),
            name: name.to_owned(),
            seed: load.seed,
            setup: setup.clone(),
            started: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub name: String,
    pub date: String,
    pub setup: Setup,
    pub plan: Plan,
    pub users: BTreeMap<String, usize>,
    pub summary: Summary,
    /// Cores used on average over the run, by program (the load generator among them).
    pub cpu: BTreeMap<String, f64>,
    /// Cores used, second by second, by program.
    pub cpu_per_second: Vec<BTreeMap<String, f64>>,
    /// Each service's requests in flight and its admission limit, second by second (`rendering in_flight`,
    /// `rendering limit`): how close admission came to shedding, and how far its limit came down.
    #[serde(default)]
    pub admission_per_second: Vec<BTreeMap<String, f64>>,
    pub recolour: Option<RecolourResult>,
    /// Seconds from the surge's end until p99 < 200 ms and failures < 1 % for good; null if never.
    pub recovery_s: Option<f64>,
    pub import_rows: u64,
    pub wrong_answers: Vec<String>,
    /// The writes acknowledged to the load's clients (for a chaos run's accounting; not written out).
    #[serde(skip)]
    pub ledger: crate::accounting::Ledger,
    /// goose's thresholds that failed.
    pub thresholds_failed: Vec<String>,
    /// Counters the services expose that say where the load went (shed, pool waits, breaker, stale codes).
    pub service_counters: BTreeMap<String, f64>,
}

/// The counters of the services' /metrics that tell where the load went, each summed by one of its labels: answers
/// by status class (the 503s of admission and timeouts among the 5xx), code requests by where the answer came from
/// (caches, Redis, scoring, stale), calls from rendering to scoring by outcome (the breaker's refusals), and the
/// requests shed by reason (admission, timeout, pool_wait, imports_at_capacity).
const COUNTERS: [(&str, &str); 4] = [
    ("http_requests_total", "status"),
    ("http_requests_shed_total", "reason"),
    ("rendering_code_requests_total", "outcome"),
    ("rendering_scoring_calls_total", "outcome"),
];

fn counters(metrics: &BTreeMap<String, String>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for text in metrics.values() {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let Some((_, label)) = COUNTERS.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let value = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            let key = format!("{label}=\"");
            let by = line
                .split_once(&key)
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(v, _)| v)
                .unwrap_or("");
            *out.entry(format!("{name}{{{label}={by}}}")).or_default() += value;
        }
    }
    out
}

/// The admission gauges of every service: `"{service} in_flight"` and `"{service} limit"`.
fn admission_gauges(metrics: &BTreeMap<String, String>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (service, text) in metrics {
        for (gauge, key) in [
            ("admission_in_flight ", "in_flight"),
            ("admission_limit ", "limit"),
        ] {
            if let Some(v) = text
                .lines()
                .find_map(|l| l.strip_prefix(gauge))
                .and_then(|v| v.trim().parse::<f64>().ok())
            {
                out.insert(format!("{service} {key}"), v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_knee_step_draws_its_own_people_and_the_same_ones_when_repeated() {
        let a = step_seed(1, "knee-hardened-1m-step0");
        assert_eq!(a, step_seed(1, "knee-hardened-1m-step0"));
        assert_ne!(a, step_seed(1, "knee-hardened-1m-step1"));
        assert_ne!(a, step_seed(1, "knee-naive-1m-step0"));
        assert_ne!(a, step_seed(2, "knee-hardened-1m-step0"));
    }

    #[test]
    fn admission_gauges_are_read_per_service() {
        let metrics = BTreeMap::from([
            (
                "rendering".to_owned(),
                "# TYPE admission_limit gauge\nadmission_limit 37\nadmission_in_flight 12\n"
                    .to_owned(),
            ),
            (
                "scoring".to_owned(),
                "http_requests_total{status=\"2xx\"} 3\n".to_owned(),
            ),
        ]);
        let g = admission_gauges(&metrics);
        assert_eq!(g["rendering limit"], 37.0);
        assert_eq!(g["rendering in_flight"], 12.0);
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn service_counters_are_summed_by_their_label_across_services_and_routes() {
        let text = "# TYPE http_requests_total counter\n\
            http_requests_total{method=\"GET\",route=\"/v1/codes/me\",status=\"5xx\"} 3\n\
            http_requests_total{method=\"POST\",route=\"/v1/verify\",status=\"5xx\"} 4\n\
            http_requests_total{method=\"GET\",route=\"/v1/codes/me\",status=\"2xx\"} 10\n\
            rendering_code_requests_total{outcome=\"memory_hit\"} 7\n\
            verification_decisions_total{decision=\"pass\"} 9\n";
        let metrics = BTreeMap::from([
            ("a".to_owned(), text.to_owned()),
            ("b".to_owned(), text.to_owned()),
        ]);
        let c = counters(&metrics);
        assert_eq!(c["http_requests_total{status=5xx}"], 14.0);
        assert_eq!(c["http_requests_total{status=2xx}"], 20.0);
        assert_eq!(c["rendering_code_requests_total{outcome=memory_hit}"], 14.0);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn shed_requests_are_read_by_reason() {
        let c = BTreeMap::from([
            (
                "http_requests_shed_total{reason=admission}".to_owned(),
                12.0,
            ),
            ("http_requests_shed_total{reason=pool_wait}".to_owned(), 2.0),
            ("http_requests_total{status=5xx}".to_owned(), 14.0),
        ]);
        let shed = shed_by_reason(&c);
        assert_eq!(shed["admission"], 12.0);
        assert_eq!(shed["pool_wait"], 2.0);
        assert_eq!(shed.len(), 2);
    }
}

pub async fn run(
    suite: &Suite,
    population: Arc<Population>,
    plan: Plan,
    args: &RunArgs,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&args.out)?;
    let http = reqwest::Client::new();
    let device =
        population::client_token(&http, &population.device.id, &population.device.secret).await?;
    let lab = population::client_token(&http, &population.importer.id, &population.importer.secret)
        .await?;
    let risk =
        population::client_token(&http, &population.risk.id, &population.risk.secret).await?;
    let redis =
        redis::aio::ConnectionManager::new(redis::Client::open(suite.redis_url.as_str())?).await?;

    let users = personas::scenarios(&plan, args.in_flight_s, args.max_users);
    let total_users: usize = users.iter().map(|(_, n)| n).sum::<usize>() + 1;
    // goose launches its users at `increase_rate` per second; the plan's clock starts once all of them are up.
    let launch = Duration::from_secs_f64(2.0 + total_users as f64 / 2_000.0);
    let ctx = Arc::new(RunContext::new(
        plan.clone(),
        Instant::now() + launch,
        args.patience,
        args.seed,
        population.clone(),
        (device, lab, risk),
        redis,
        suite.prefix.clone(),
    ));
    personas::install(ctx.clone());
    if let Some(started) = &args.started {
        started.send_replace(Some(ctx.start));
    }

    let mut config = GooseConfiguration::default();
    config.host = Some(suite::url("rendering"));
    config.users = Some(total_users);
    config.increase_rate = Some("2000".into());
    config.run_time = Some(format!(
        "{}",
        (launch + Duration::from_secs_f64(plan.duration_s) + args.patience).as_secs() + 3
    ));
    config.timeout = Some(format!("{}", args.patience.as_secs_f64()));
    config.no_telnet = true;
    config.no_reset_metrics = true;
    config.no_threshold_abort = true;
    config.quiet = 1;
    config.no_print_metrics = true;
    config.threshold = args.thresholds.clone();
    let base = args.out.join(&args.name);
    config.report_file = ["html", "json", "md"]
        .iter()
        .map(|ext| format!("{}.goose.{ext}", base.display()))
        .collect();

    // One client for all users: its own timeout is the citizen's patience, and it has no retries of its own (goose
    // adds none and reqwest retries only HTTP/2 refusals, and HTTP/2 is not built in): every retry is ours, counted.
    let mut attack = GooseAttack::initialize_with_config(config)?
        .set_client_builder_without_cookies(
            goose::client::GooseClientBuilder::new()
                .without_cookies()
                .timeout(args.patience),
        )?;
    for (persona, n) in &users {
        attack = attack.register_scenario(personas::scenario(*persona, *n)?);
    }
    attack = attack.register_scenario(personas::risk_scenario()?);

    let metrics_before = counters(&suite.metrics().await);
    let pids = suite.pids();
    let sampler = {
        let ctx = ctx.clone();
        let pids = pids.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(ctx.start.into()).await;
            let first = CpuSample::take(&pids);
            let mut last = first.clone();
            let (mut per_second, mut admission) = (Vec::new(), Vec::new());
            let end = ctx.start + Duration::from_secs_f64(ctx.plan.duration_s);
            let scraper = reqwest::Client::new();
            let mut tick = tokio::time::interval_at(
                (Instant::now() + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while Instant::now() < end {
                tick.tick().await;
                let now = CpuSample::take(&pids);
                per_second.push(now.cores_since(&last));
                last = now;
                // Short timeout: a scrape must not shift the next second's CPU sample.
                let metrics = suite::scrape_metrics(&scraper, Duration::from_millis(300)).await;
                admission.push(admission_gauges(&metrics));
            }
            (last.cores_since(&first), per_second, admission)
        })
    };
    let prober = plan
        .risk_change_at_s
        .map(|_| tokio::spawn(personas::recolour_sweep(ctx.clone())));

    let thresholds_failed = match attack.execute().await {
        Ok(_) => Vec::new(),
        Err(GooseError::ThresholdsFailed { failed, .. }) => failed
            .iter()
            .map(|t| format!("{} (observed {})", t.rule, t.observed))
            .collect(),
        Err(e) => return Err(e.into()),
    };
    let (cpu, cpu_per_second, admission_per_second) = sampler.await.context("the CPU sampler")?;
    let recolour = match prober {
        Some(p) => p.await.ok().flatten(),
        None => None,
    };
    let metrics_after = counters(&suite.metrics().await);
    let summary = ctx.recorder.summary(plan.duration_s);
    let recovery_s = plan
        .surge
        .map(|s| s.end_s())
        .and_then(|end| summary.recovery_s(end, 200_000));
    let result = RunResult {
        name: args.name.clone(),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        setup: args.setup.clone(),
        plan,
        users: users
            .iter()
            .map(|(p, n)| (p.name().to_owned(), *n))
            .collect(),
        summary,
        cpu,
        cpu_per_second,
        admission_per_second,
        recolour,
        recovery_s,
        import_rows: ctx.import_rows.load(std::sync::atomic::Ordering::Relaxed),
        wrong_answers: ctx.wrong.lock().map(|w| w.clone()).unwrap_or_default(),
        ledger: ctx
            .ledger
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default(),
        thresholds_failed,
        service_counters: metrics_after
            .iter()
            .map(|(k, v)| (k.clone(), v - metrics_before.get(k).copied().unwrap_or(0.0)))
            .collect(),
    };
    let path = args.out.join(format!("{}.json", args.name));
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    print_summary(&result);
    eprintln!("wrote {} and goose's reports beside it", path.display());
    Ok(result)
}

fn print_summary(r: &RunResult) {
    let s = &r.summary;
    eprintln!(
        "{}: offered {:.0}/s, goodput {:.0}/s, failures {:.3} %, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; generator {:.2} cores",
        r.name,
        s.offered_per_s,
        s.goodput_per_s,
        s.error_rate * 100.0,
        s.latency.p50_us as f64 / 1000.0,
        s.latency.p99_us as f64 / 1000.0,
        s.latency.p999_us as f64 / 1000.0,
        r.cpu.get("load generator").copied().unwrap_or(0.0)
    );
    for (p, ps) in &s.personas {
        eprintln!(
            "  {p:<16} {:>7} requests {:>7} attempts  {:?}  p99 {:.2} ms",
            ps.requests,
            ps.attempts,
            ps.outcomes,
            ps.latency.p99_us as f64 / 1000.0
        );
    }
    if let Some(rc) = &r.recolour {
        eprintln!("  recolour: {rc:?}");
    }
    for w in r.wrong_answers.iter().take(5) {
        eprintln!("  wrong: {w}");
    }
}

/// Fails a run that gave a wrong answer, missed a goose threshold or did not recover in time.
pub fn enforce(r: &RunResult, require_recovery: Option<f64>) -> anyhow::Result<()> {
    let wrong: u64 = r
        .summary
        .personas
        .values()
        .map(|p| p.outcomes.get("wrong").copied().unwrap_or(0))
        .sum();
    if wrong > 0 {
        bail!("{wrong} wrong answers, e.g. {:?}", r.wrong_answers.first());
    }
    if !r.thresholds_failed.is_empty() {
        bail!(
            "goose thresholds missed: {}",
            r.thresholds_failed.join("; ")
        );
    }
    if let Some(limit) = require_recovery {
        match r.recovery_s {
            Some(s) if s <= limit => {}
            other => bail!(
                "not recovered within {limit} s of the surge's end (recovered after {other:?} s)"
            ),
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KneeResult {
    pub name: String,
    pub date: String,
    pub setup: Setup,
    pub steps: Vec<KneeStep>,
    /// The highest offered rate (requests/s at this machine's scale) that held.
    pub knee_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KneeStep {
    pub offered_per_s: f64,
    pub goodput_per_s: f64,
    pub error_rate: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub holds: bool,
    pub cpu: BTreeMap<String, f64>,
    pub requests_by_persona: BTreeMap<String, u64>,
    /// Requests the services shed during the step, by reason (admission, timeout, pool_wait,
    /// imports_at_capacity); None in results recorded before it was counted.
    #[serde(default)]
    pub shed: Option<BTreeMap<String, f64>>,
}

/// The `http_requests_shed_total` counters of a run, by reason.
fn shed_by_reason(counters: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    counters
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("http_requests_shed_total{reason=")
                .and_then(|r| r.strip_suffix('}'))
                .map(|r| (r.to_owned(), *v))
        })
        .collect()
}

/// The seed of one knee step: the run's seed mixed with the step's name (deterministic for a build).
fn step_seed(seed: u64, step: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (seed, step).hash(&mut h);
    h.finish()
}

#[allow(clippy::too_many_arguments)]
pub async fn knee(
    suite: &Suite,
    population: Arc<Population>,
    load: &LoadArgs,
    profile: &Profile,
    setup: &Setup,
    name: &str,
    from: f64,
    factor: f64,
    steps: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        factor > 1.0 && steps >= 1 && from > 0.0,
        "--factor > 1, --steps >= 1, --from > 0"
    );
    let mut result = KneeResult {
        name: name.to_owned(),
        date: String::new(),
        setup: setup.clone(),
        steps: Vec::new(),
        knee_per_s: None,
    };
    let mut rate = from;
    for i in 0..steps {
        let options = PlanOptions {
            rate: Some(rate),
            risk_change: Some(false),
            duration_s: Some(load.plan.duration_s.unwrap_or(20.0)),
            ..load.plan_options(profile)
        };
        let plan = Plan::new(PlanName::Steady, load.scale, &options).map_err(anyhow::Error::msg)?;
        let step = format!("{name}-step{i}");
        let mut args = RunArgs::from(load, setup, &step);
        args.out = load.out.join("steps");
        // Each step its own draw of people: with one seed every step (and the next profile's sweep over the same
        // suite) signs in the same phones again, until their hourly one-time-code limit sheds them.
        args.seed = step_seed(load.seed, &step);
        let r = run(suite, population.clone(), plan, &args).await?;
        let s = &r.summary;
        let holds = s.holds();
        if holds {
            result.knee_per_s = Some(result.knee_per_s.unwrap_or(0.0).max(s.offered_per_s));
        }
        result.steps.push(KneeStep {
            offered_per_s: s.offered_per_s,
            goodput_per_s: s.goodput_per_s,
            error_rate: s.error_rate,
            p50_us: s.latency.p50_us,
            p99_us: s.latency.p99_us,
            holds,
            cpu: r.cpu.clone(),
            requests_by_persona: s
                .personas
                .iter()
                .map(|(k, v)| (k.clone(), v.requests))
                .collect(),
            shed: Some(shed_by_reason(&r.service_counters)),
        });
        // Up to three times the knee, then stop: beyond it nothing new is learnt.
        if let Some(k) = result.knee_per_s
            && s.offered_per_s > 3.0 * k
        {
            break;
        }
        // Let the suite drain between steps.
        tokio::time::sleep(Duration::from_secs(5)).await;
        rate *= factor;
    }
    result.date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let path = load.out.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    eprintln!(
        "{name}: knee {:?} requests/s; wrote {}",
        result.knee_per_s,
        path.display()
    );
    Ok(())
}

/// make test's proof that the generator works: a small suite from debug builds, every persona a few times at a
/// low rate with the risk change in the middle, every answer right, every persona answered (after a short run in the
/// naive profile and a restart).
pub async fn smoke(bin_dir: PathBuf) -> anyhow::Result<()> {
    let people = 300;
    let options = suite::SuiteOptions {
        profile: Profile::Naive,
        people,
        bin_dir,
        suite_cpus: None,
        suite_cores: None,
        workers: 1,
        target: None,
        target_service: Vec::new(),
        own_stores: false,
    };
    let mut s = Suite::start(options).await?;
    let (population, _) = population::seed(&s, people).await?;
    let population = Arc::new(population);
    let out = std::env::temp_dir().join(format!("hc-loadtest-smoke-{}", std::process::id()));
    let args = |name: &str, s: &Suite| RunArgs {
        patience: Duration::from_secs(10),
        in_flight_s: 1.0,
        max_users: 200,
        thresholds: vec!["error-rate<1%".into()],
        out: out.clone(),
        name: name.into(),
        seed: 1,
        setup: Setup::new(&s.options, None),
        started: None,
    };
    // First a few seconds in the naive profile at 20/s, then the same seeded suite restarted in the hardened one
    // (how `knee --then` sweeps both profiles over one seeding): the people seeded before the restart still get
    // their right answers.
    let o = PlanOptions {
        rate: Some(200.0),
        duration_s: Some(3.0),
        risk_change: Some(false),
        ..Default::default()
    };
    let plan = Plan::new(PlanName::Steady, 0.1, &o).map_err(anyhow::Error::msg)?;
    let naive = run(&s, population.clone(), plan, &args("smoke-naive", &s)).await?;
    enforce(&naive, None)?;
    all_answered_right(&naive, Persona::ShowCode).context("naive profile")?;
    s.restart_as(Profile::Hardened).await?;
    // 800 full-scale requests/s at scale 0.1: 80/s, so that even the 1 % personas come a few times in 8 s.
    let o = PlanOptions {
        rate: Some(800.0),
        duration_s: Some(8.0),
        risk_change: Some(true),
        ..Default::default()
    };
    let plan = Plan::new(PlanName::Steady, 0.1, &o).map_err(anyhow::Error::msg)?;
    let r = run(&s, population, plan, &args("smoke", &s)).await?;
    enforce(&r, None)?;
    for &p in Persona::ALL {
        all_answered_right(&r, p)?;
    }
    let rc = r.recolour.as_ref().context("no recolouring measured")?;
    anyhow::ensure!(
        rc.still_not_red == 0 && rc.all_red_after_s.is_some(),
        "recolouring incomplete: {rc:?}"
    );
    anyhow::ensure!(r.import_rows >= 1_000, "no import counted");
    for ext in ["html", "json", "md"] {
        let report = out.join(format!("smoke.goose.{ext}"));
        anyhow::ensure!(report.exists(), "goose wrote no {}", report.display());
    }
    anyhow::ensure!(
        r.cpu.get("load generator").copied().unwrap_or(0.0) > 0.0,
        "no CPU measured for the generator"
    );
    let _ = std::fs::remove_dir_all(out);
    eprintln!(
        "smoke: every persona answered right ({} requests), after a restart from the naive profile",
        r.summary.requests
    );
    Ok(())
}

/// The persona came at least once in the run, and every answer it got was right.
fn all_answered_right(r: &RunResult, p: Persona) -> anyhow::Result<()> {
    let ps = r.summary.personas.get(p.name());
    let ok = ps
        .and_then(|ps| ps.outcomes.get("ok"))
        .copied()
        .unwrap_or(0);
    let total = ps.map(|ps| ps.requests).unwrap_or(0);
    anyhow::ensure!(
        ok >= 1 && ok == total,
        "{p}: {ok} right answers of {total}: {ps:?}"
    );
    Ok(())
}

/// CPU per request of each persona alone, and of the suite idle: what each request type costs, by program.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostsResult {
    pub name: String,
    pub date: String,
    pub setup: Setup,
    /// Cores by program with no load at all (background work: relays, consumers, scheduler, autovacuum).
    pub idle: BTreeMap<String, f64>,
    pub personas: BTreeMap<String, PersonaCost>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersonaCost {
    pub offered_per_s: f64,
    pub goodput_per_s: f64,
    pub p99_us: u64,
    pub cpu: BTreeMap<String, f64>,
    /// µs of CPU per answered request by program, the idle cores taken off.
    pub us_per_request: BTreeMap<String, f64>,
    pub suite_us_per_request: f64,
}

/// The rate each persona is measured at alone (requests/s): low enough to hold on half a core.
fn cost_rate(p: Persona, base: f64) -> f64 {
    match p {
        Persona::ImportNat => (base / 50.0).max(0.5),
        Persona::SignIn => (base / 4.0).max(2.0),
        _ => base,
    }
}

pub async fn costs(
    suite: &Suite,
    population: Arc<Population>,
    load: &LoadArgs,
    setup: &Setup,
    name: &str,
) -> anyhow::Result<()> {
    let pids = suite.pids();
    let before = CpuSample::take(&pids);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = CpuSample::take(&pids).cores_since(&before);
    let base = load.plan.rate.unwrap_or(100.0);
    let mut personas = BTreeMap::new();
    for &p in Persona::ALL {
        let options = PlanOptions {
            rate: Some(cost_rate(p, base)),
            duration_s: Some(load.plan.duration_s.unwrap_or(15.0)),
            risk_change: Some(false),
            only: Some(p),
            ..Default::default()
        };
        let plan = Plan::new(PlanName::Steady, 1.0, &options).map_err(anyhow::Error::msg)?;
        let mut args = RunArgs::from(load, setup, &format!("{name}-{}", p.name()));
        args.out = load.out.join("steps");
        let r = run(suite, population.clone(), plan, &args).await?;
        let s = &r.summary;
        let us_per_request: BTreeMap<String, f64> = r
            .cpu
            .iter()
            .map(|(k, v)| {
                let net = (v - idle.get(k).copied().unwrap_or(0.0)).max(0.0);
                (k.clone(), net * 1e6 / s.goodput_per_s.max(1e-9))
            })
            .collect();
        let suite_us = crate::report::suite_cpu(&us_per_request);
        personas.insert(
            p.name().to_owned(),
            PersonaCost {
                offered_per_s: s.offered_per_s,
                goodput_per_s: s.goodput_per_s,
                p99_us: s.latency.p99_us,
                cpu: r.cpu.clone(),
                us_per_request,
                suite_us_per_request: suite_us,
            },
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let result = CostsResult {
        name: name.to_owned(),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        setup: setup.clone(),
        idle,
        personas,
    };
    let path = load.out.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    for (p, c) in &result.personas {
        eprintln!(
            "{name}: {p:<16} {:>8.0} µs of suite CPU per request at {:.1}/s",
            c.suite_us_per_request, c.goodput_per_s
        );
    }
    eprintln!("idle: {:?}; wrote {}", result.idle, path.display());
    Ok(())
}
