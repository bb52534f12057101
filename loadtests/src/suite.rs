//! The suite under test: the five services started from their binaries over a scratch database and Redis key
//! prefix, in a profile (hardened defaults, naive, or hardened with one defence off), on loopback ports of their
//! own, optionally confined to a CPU share; stopped and its data dropped when this value is dropped.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::proxy::Proxy;

/// An attached run's addresses: service name (or `*` for every service, as behind one Ingress) to base URL.
static TARGETS: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();

/// The services, their ports in a load run (clear of `make up`'s 808x and the benchmarks' 1808x).
pub const SERVICES: [(&str, u16); 5] = [
    ("identity", 19081),
    ("declaration", 19082),
    ("scoring", 19083),
    ("rendering", 19084),
    ("verification", 19085),
];

/// Services the generator reaches elsewhere for a while (a balancer in front of replicas, in a partition run).
static ROUTES: RwLock<BTreeMap<String, String>> = RwLock::new(BTreeMap::new());

/// A mutex's value, also after a panic while it was held.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends the generator's requests for `service` to `url` until [`unroute`].
pub fn route(service: &str, url: String) {
    let mut routes = ROUTES.write().unwrap_or_else(PoisonError::into_inner);
    routes.insert(service.to_owned(), url);
}

pub fn unroute(service: &str) {
    ROUTES
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(service);
}

pub fn url(service: &str) -> String {
    // Read on every request of every user: a read lock, which they share.
    let routed = ROUTES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(service)
        .cloned();
    routed.unwrap_or_else(|| own_url(service))
}

/// The service's own address, past any balancer a partition run routes it through: where its metrics are read, so
/// that two scrapes reach the same replica.
fn own_url(service: &str) -> String {
    if let Some(targets) = TARGETS.get()
        && let Some(url) = targets.get(service).or_else(|| targets.get("*"))
    {
        return url.clone();
    }
    format!("http://127.0.0.1:{}", port(service))
}

pub fn port(service: &str) -> u16 {
    SERVICES
        .iter()
        .find(|(n, _)| *n == service)
        .map(|(_, p)| *p)
        .unwrap_or(0)
}

/// A defence the ablation turns off, one at a time (docs/architecture.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "kebab-case")]
pub enum Defence {
    RenderCache,
    InProcessCaches,
    Admission,
    RequestTimeouts,
    PoolWaitLimit,
    CircuitBreaker,
    StaleFallback,
    ImportCap,
}

impl Defence {
    pub const ALL: &[Defence] = <Defence as strum::VariantArray>::VARIANTS;

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The settings that turn it off (the same keys as config/naive.toml).
    fn off(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Defence::RenderCache => &[
                ("HC__RENDERING__RENDER_CACHE_ENABLED", "false"),
                ("HC__RENDERING__MEMORY_CACHE_ENABLED", "false"),
            ],
            Defence::InProcessCaches => &[
                ("HC__AUTH__VERIFIED_CACHE_CAPACITY", "0"),
                ("HC__RENDERING__MEMORY_CACHE_ENABLED", "false"),
            ],
            Defence::Admission => &[("HC__ADMISSION__MAX_INFLIGHT", "0")],
            Defence::RequestTimeouts => &[("HC__TIMEOUTS__REQUEST_MS", "0")],
            Defence::PoolWaitLimit => &[("HC__DATABASE__POOL_WAIT_TIMEOUT_MS", "0")],
            Defence::CircuitBreaker => &[("HC__RENDERING__BREAKER_ENABLED", "false")],
            Defence::StaleFallback => &[("HC__RENDERING__STALE_FALLBACK_ENABLED", "false")],
            Defence::ImportCap => &[("HC__DECLARATION__IMPORT_MAX_CONCURRENT", "0")],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    Hardened,
    Naive,
    /// The hardened profile with one defence off.
    Without(Defence),
}

impl Profile {
    pub fn name(&self) -> String {
        match self {
            Profile::Hardened => "hardened".into(),
            Profile::Naive => "naive".into(),
            Profile::Without(d) => format!("without-{}", d.name()),
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let all = [Profile::Hardened, Profile::Naive].into_iter();
        all.chain(Defence::ALL.iter().map(|&d| Profile::Without(d)))
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown profile {s:?} (hardened, naive, without-DEFENCE)"))
    }
}

/// Where the suite runs and how much of the machine it gets (the options of every command that drives one).
#[derive(clap::Args, Debug, Clone)]
pub struct SuiteOptions {
    /// hardened, naive, or without-DEFENCE (render-cache, in-process-caches, admission, request-timeouts,
    /// pool-wait-limit, circuit-breaker, stale-fallback, import-cap).
    #[arg(long, default_value = "hardened")]
    pub profile: Profile,
    #[arg(long, default_value_t = 20_000)]
    pub people: usize,
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// CPUs of the suite (services, PostgreSQL, Redis), e.g. "0".
    #[arg(long)]
    pub suite_cpus: Option<String>,
    /// The suite's CPU capacity in cores (cgroup v1 quota), e.g. 0.5.
    #[arg(long)]
    pub suite_cores: Option<f64>,
    /// actix workers per service.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Drive a suite that is already running instead of starting one: the base URL every service answers under
    /// (an Ingress host). Its keys and addresses come from the environment (see `Suite::attach`).
    #[arg(long)]
    pub target: Option<String>,
    /// As `--target`, one service at its own base URL (NAME=URL; repeatable, e.g. identity=http://127.0.0.1:8081).
    #[arg(long, value_parser = parse_target)]
    pub target_service: Vec<(String, String)>,
    /// A PostgreSQL and a redis-server of the suite's own (on ports [`OWN_POSTGRES_PORT`] and [`OWN_REDIS_PORT`];
    /// Redis with an AOF synced every second) instead of the shared ones, so that a chaos run can kill them.
    #[arg(skip)]
    pub own_stores: bool,
}

fn parse_target(s: &str) -> Result<(String, String), String> {
    let (name, url) = s.split_once('=').ok_or("expected NAME=URL")?;
    if !SERVICES.iter().any(|(n, _)| *n == name) {
        return Err(format!("unknown service {name}"));
    }
    Ok((name.to_owned(), url.trim_end_matches('/').to_owned()))
}

/// The ports of the suite's own PostgreSQL and Redis (chaos runs). The services reach that Redis through a proxy
/// (`crate::proxy`) that can slow the network down or make it lossy.
pub const OWN_POSTGRES_PORT: u16 = 19432;
const OWN_POSTGRES_BEHIND_PROXY_PORT: u16 = 19433;
pub const OWN_REDIS_PORT: u16 = 19079;
const OWN_REDIS_BEHIND_PROXY_PORT: u16 = 19078;
/// The shared PostgreSQL of `scripts/infra.sh up` (unless HC_TEST_DATABASE_URL names another).
const SHARED_POSTGRES: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

pub struct Suite {
    pub options: SuiteOptions,
    pub db_url: String,
    admin_db_url: String,
    db_name: String,
    pub redis_url: String,
    pub prefix: String,
    /// The run's secrets (development ones, generated for this run only).
    pub secrets: BTreeMap<String, String>,
    /// The services' processes (behind a lock: a chaos run kills and restarts them while the load runs).
    children: Mutex<Vec<(String, Child)>>,
    /// The suite's own redis-server, when it has one.
    redis: Mutex<Option<Child>>,
    /// The suite's own PostgreSQL cluster, when it has one.
    postgres: Option<OwnPostgres>,
    /// The proxies in front of the suite's own Redis and PostgreSQL.
    redis_proxy: Option<Proxy>,
    postgres_proxy: Option<Proxy>,
    pub log_dir: PathBuf,
    confinement: Option<crate::cpu::Confinement>,
    /// A suite running elsewhere (a cluster): nothing to start, stop or drop.
    pub attached: bool,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

impl Suite {
    pub async fn start(options: SuiteOptions) -> anyhow::Result<Suite> {
        for (name, port) in SERVICES {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                bail!(
                    "port {port} (for {name}) is taken: an earlier load run still going? Stop it first"
                );
            }
        }
        let stamp = format!(
            "{}_{}",
            chrono::Utc::now().format("%Y%m%d%H%M%S"),
            std::process::id()
        );
        let (own_postgres, postgres_proxy, admin_db_url, redis_url) = if options.own_stores {
            let pg = OwnPostgres::create(&stamp)?;
            // Everything reaches the suite's own PostgreSQL through a proxy that can slow its network down.
            let proxy = Proxy::start(OWN_POSTGRES_PORT, OWN_POSTGRES_BEHIND_PROXY_PORT).await?;
            let admin = format!("postgres://postgres@127.0.0.1:{OWN_POSTGRES_PORT}/postgres");
            let redis = format!("redis://127.0.0.1:{OWN_REDIS_PORT}");
            (Some(pg), Some(proxy), admin, redis)
        } else {
            let var = |k, default: &str| std::env::var(k).unwrap_or_else(|_| default.into());
            let admin = var("HC_TEST_DATABASE_URL", SHARED_POSTGRES);
            (
                None,
                None,
                admin,
                var("HC_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
            )
        };
        let db_name = format!("hc_load_{stamp}");
        let (admin, conn) = tokio_postgres::connect(&admin_db_url, tokio_postgres::NoTls)
            .await
            .context(
                "connecting to PostgreSQL (HC_TEST_DATABASE_URL; `scripts/infra.sh up` starts one)",
            )?;
        tokio::spawn(conn);
        admin
            .execute(&format!("CREATE DATABASE {db_name}"), &[])
            .await?;
        let db_url = format!(
            "{}/{db_name}",
            admin_db_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin_db_url)
        );
        let log_dir = repo_root().join("loadtests/out/logs").join(&stamp);
        fs::create_dir_all(&log_dir)?;
        let mut suite = Suite {
            options,
            db_url,
            admin_db_url,
            db_name,
            redis_url,
            prefix: format!("load:{stamp}:"),
            secrets: BTreeMap::new(),
            children: Default::default(),
            redis: Default::default(),
            postgres: own_postgres,
            redis_proxy: None,
            postgres_proxy,
            log_dir,
            confinement: None,
            attached: false,
        };
        suite.generate_secrets()?;
        if suite.options.own_stores {
            suite.start_redis(true)?;
            suite.redis_proxy =
                Some(Proxy::start(OWN_REDIS_PORT, OWN_REDIS_BEHIND_PROXY_PORT).await?);
        }
        if suite.options.suite_cpus.is_some() || suite.options.suite_cores.is_some() {
            suite.confinement = Some(crate::cpu::Confinement::create(
                suite.options.suite_cpus.as_deref(),
                suite.options.suite_cores,
            )?);
        }
        suite.start_services().await?;
        Ok(suite)
    }

    async fn start_services(&mut self) -> anyhow::Result<()> {
        // Identity first: the others fetch its keys at start.
        self.spawn("identity")?;
        self.wait_ready("identity").await?;
        for name in ["declaration", "scoring", "rendering", "verification"] {
            self.spawn(name)?;
        }
        for (name, _) in SERVICES {
            self.wait_ready(name).await?;
        }
        if let Some(c) = &self.confinement {
            // PostgreSQL and Redis are part of the suite: their processes join its CPUs and quota for the run.
            c.adopt_by_name(&["postgres", "redis-server"])?;
        }
        Ok(())
    }

    /// Each service asked to stop (SIGTERM), and killed if it has not within 10 s.
    fn stop_services(&mut self) {
        let children = std::mem::take(self.children.get_mut().unwrap_or_else(|p| p.into_inner()));
        for (_, child) in &children {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
        }
        for (_, mut child) in children {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The same suite (its database, Redis prefix and secrets, so the seeded population) in another profile: the
    /// services stop and start again with that profile's settings. Seeding a million people takes half an hour;
    /// this sweeps both profiles over one seeding, side by side.
    pub async fn restart_as(&mut self, profile: Profile) -> anyhow::Result<()> {
        anyhow::ensure!(!self.attached, "a suite running elsewhere is not restarted");
        self.stop_services();
        self.options.profile = profile;
        self.start_services().await
    }

    /// Seeding is not measured: the suite runs it on every CPU without its quota (see `Confinement::lift`).
    pub fn unconfined_for_seeding(&self) -> anyhow::Result<()> {
        self.confinement.as_ref().map_or(Ok(()), |c| c.lift())
    }

    /// After seeding, before anything is timed: the seeded tables vacuumed and analysed, and a checkpoint, so
    /// that autovacuum and the checkpointer do not wake up in the middle of a run over a large population.
    pub async fn settle(&self) -> anyhow::Result<()> {
        if self.attached {
            return Ok(());
        }
        let (db, conn) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        // Two statements: one query string of both would be a transaction block, where VACUUM cannot run.
        db.batch_execute("VACUUM (ANALYZE)")
            .await
            .context("VACUUM after seeding")?;
        db.batch_execute("CHECKPOINT")
            .await
            .context("CHECKPOINT after seeding")?;
        Ok(())
    }

    /// Back to the run's CPUs and quota after seeding.
    pub fn confined_for_the_run(&self) -> anyhow::Result<()> {
        self.confinement
            .as_ref()
            .map_or(Ok(()), |c| c.confine_again())
    }

    /// A suite that is already running (in a cluster, behind its Ingress: `targets` maps `*` or each service to its
    /// base URL). What the generator needs of it comes from the environment, as the load-test Job gets it from the
    /// suite's Secrets: HC__IDENTITY__ADMIN_KEY (the bootstrap client that creates the load's API clients),
    /// HC__IDENTITY__SIGNING_KEYS (citizens' tokens are minted with them), HC__DATABASE__URL (to see the seeded
    /// statuses in place), HC__REDIS__URL and HC__REDIS__KEY_PREFIX (the development SMS gateway's codes, for the
    /// sign-in persona: a staging suite). Nothing is started, stopped or removed.
    pub fn attach(
        options: SuiteOptions,
        targets: BTreeMap<String, String>,
    ) -> anyhow::Result<Suite> {
        anyhow::ensure!(
            TARGETS.set(targets).is_ok(),
            "the targets of an attached run are set once"
        );
        let env =
            |k: &str| std::env::var(k).with_context(|| format!("{k} is not set (attached run)"));
        let mut secrets = BTreeMap::new();
        for k in ["HC__IDENTITY__ADMIN_KEY", "HC__IDENTITY__SIGNING_KEYS"] {
            secrets.insert(k.to_owned(), env(k)?);
        }
        Ok(Suite {
            options,
            db_url: env("HC__DATABASE__URL")?,
            admin_db_url: String::new(),
            db_name: String::new(),
            redis_url: env("HC__REDIS__URL")?,
            prefix: std::env::var("HC__REDIS__KEY_PREFIX").unwrap_or_else(|_| "hc:".into()),
            secrets,
            children: Default::default(),
            redis: Default::default(),
            postgres: None,
            redis_proxy: None,
            postgres_proxy: None,
            log_dir: std::env::temp_dir(),
            confinement: None,
            attached: true,
        })
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.options.bin_dir.join(name)
    }

    fn generate_secrets(&mut self) -> anyhow::Result<()> {
        for service in ["identity", "rendering", "verification"] {
            let out = Command::new(self.bin(service))
                .arg("generate-secrets")
                .output()
                .with_context(|| {
                    format!(
                        "running {} generate-secrets (built?)",
                        self.bin(service).display()
                    )
                })?;
            anyhow::ensure!(out.status.success(), "{service} generate-secrets failed");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((k, v)) = line.split_once('=') {
                    self.secrets.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let pseudonyms = self
            .secrets
            .get("HC__RENDERING__PSEUDONYM_KEYS")
            .cloned()
            .unwrap_or_default();
        self.secrets
            .insert("HC__VERIFICATION__PSEUDONYM_KEYS".into(), pseudonyms);
        Ok(())
    }

    /// The environment of every service in this run's profile.
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("HC__DATABASE__URL", self.db_url.clone()),
            ("HC__REDIS__URL", self.redis_url.clone()),
            ("HC__REDIS__KEY_PREFIX", self.prefix.clone()),
            (
                "HC__AUTH__JWKS_URL",
                format!("{}/v1/auth/keys", url("identity")),
            ),
            ("HC__RENDERING__SCORING_URL", url("scoring")),
            (
                "HC__VERIFICATION__OWN_KEYS_URL",
                format!("{}/v1/trust/keys", url("rendering")),
            ),
            ("HC__SERVER__WORKERS", self.options.workers.to_string()),
            ("HC__TELEMETRY__LOG_FILTER", "warn".into()),
            // All load comes from 127.0.0.1, where the field has millions of addresses, and a handful of devices
            // and labs stand for thousands: the per-IP and per-key limits would measure the generator instead.
            ("HC__RATE_LIMIT__PER_IP_PER_SECOND", "0".into()),
            ("HC__RATE_LIMIT__PER_KEY_PER_SECOND", "0".into()),
            ("HC__IDENTITY__OTP__PER_IP_PER_HOUR", "10000000".into()),
            // The load's citizens get their codes and real-name tickets from the development stand-ins.
            ("HC__IDENTITY__SMS__KIND", "dev".into()),
            ("HC__IDENTITY__REAL_NAME__KIND", "dev".into()),
            // The load's labs are one API client: a real lab sends one batch at a time, the mix's import users
            // stand for many labs.
            ("HC__DECLARATION__IMPORT_MAX_PER_CLIENT", "0".into()),
            // Imports of the seed are larger than the default body limit of a batch.
            ("HC__DECLARATION__IMPORT_MAX_BYTES", "1000000000".into()),
        ];
        if self.options.own_stores {
            // A chaos run's faults last 10 s: scoring beats every second and rendering calls it silent after 5 s
            // (30 s in production), so that a scoring killed under load shows its codes flagged stale.
            env.push(("HC__SCORING__PULSE_INTERVAL_MS", "1000".into()));
            env.push(("HC__RENDERING__SCORING_SILENT_AFTER_SECONDS", "5".into()));
        }
        match &self.options.profile {
            Profile::Hardened => {}
            Profile::Naive => env.push(("APP_ENV", "naive".into())),
            Profile::Without(d) => env.extend(d.off().iter().map(|&(k, v)| (k, v.to_owned()))),
        }
        env
    }

    fn spawn(&self, name: &str) -> anyhow::Result<()> {
        self.spawn_as(name, name, None, &[])
    }

    /// Starts service `service` as process `name` (its log `{name}.log`), in network namespace `namespace` if
    /// given, with `env` over the suite's.
    pub fn spawn_as(
        &self,
        service: &str,
        name: &str,
        namespace: Option<&str>,
        env: &[(&str, String)],
    ) -> anyhow::Result<()> {
        let log = fs::File::create(self.log_dir.join(format!("{name}.log")))?;
        // `ip netns exec` and `taskset` each exec the next: the child's pid is the service's.
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(ns) = namespace {
            argv.extend(["ip", "netns", "exec", ns].map(Into::into));
        }
        if let Some(cpus) = &self.options.suite_cpus {
            argv.extend(["taskset".into(), "-c".into(), cpus.into()]);
        }
        argv.push(self.bin(service).into());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(repo_root())
            .env_remove("APP_ENV")
            .envs(&self.secrets)
            .envs(self.env())
            .env("HC__SERVER__PORT", port(service).to_string())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        if let Some(c) = &self.confinement {
            c.adopt(child.id())?;
        }
        lock(&self.children).push((name.to_owned(), child));
        Ok(())
    }

    async fn wait_ready(&self, name: &str) -> anyhow::Result<()> {
        self.wait_ready_at(name, &format!("{}/health/ready", url(name)))
            .await
    }

    pub async fn wait_ready_at(&self, name: &str, ready: &str) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(r) = client
                .get(ready)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(());
            }
            let exited = lock(&self.children)
                .iter_mut()
                .find(|(n, _)| n == name)
                .and_then(|(_, child)| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                bail!("{name} exited ({status}); {}", self.log_tail(name));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{name} never became ready; {}", self.log_tail(name))
    }

    fn log_tail(&self, name: &str) -> String {
        let text = fs::read_to_string(self.log_dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "last lines of its log:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }

    /// The service processes' ids by name (CPU accounting).
    pub fn pids(&self) -> Vec<(String, u32)> {
        lock(&self.children)
            .iter()
            .map(|(n, c)| (n.clone(), c.id()))
            .collect()
    }

    /// Kills a service at once (SIGKILL), as a crash of its machine would.
    pub fn kill(&self, name: &str) {
        let mut children = lock(&self.children);
        if let Some(i) = children.iter().position(|(n, _)| n == name) {
            let (_, mut child) = children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed service again (its log goes on in the same file) and waits until it is ready.
    pub async fn restart(&self, name: &str) -> anyhow::Result<()> {
        self.spawn(name)?;
        self.wait_ready(name).await
    }

    /// Starts the suite's own redis-server; `keep_data`: from its AOF, else empty (its data directory removed).
    pub fn start_redis(&self, keep_data: bool) -> anyhow::Result<()> {
        let dir = self.log_dir.join("redis");
        if !keep_data {
            let _ = fs::remove_dir_all(&dir);
        }
        fs::create_dir_all(&dir)?;
        let options = format!(
            "--port {OWN_REDIS_BEHIND_PROXY_PORT} --bind 127.0.0.1 --appendonly yes --appendfsync everysec"
        );
        let child = Command::new("redis-server")
            .args(options.split(' '))
            .args(["--save", ""])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(self.log_dir.join("redis.log"))
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        if let Some(c) = &self.confinement {
            c.adopt(child.id())?;
        }
        *lock(&self.redis) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", OWN_REDIS_BEHIND_PROXY_PORT)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "redis-server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills the suite's own PostgreSQL (its postmaster, SIGKILL: the backends follow it).
    pub fn kill_postgres(&self) {
        if let Some(pg) = &self.postgres {
            pg.kill();
        }
    }

    /// Starts the suite's own PostgreSQL again (crash recovery replays its WAL) and waits until it answers.
    pub fn start_postgres(&self) -> anyhow::Result<()> {
        let Some(pg) = &self.postgres else {
            bail!("this suite has no PostgreSQL of its own")
        };
        pg.start()?;
        if let Some(c) = &self.confinement {
            c.adopt_by_name(&["postgres"])?;
        }
        Ok(())
    }

    /// What the network between the services and the suite's own Redis does from now on.
    pub fn redis_network(&self, condition: crate::proxy::Condition) {
        if let Some(proxy) = &self.redis_proxy {
            proxy.set(condition);
        }
    }

    /// What the network between the services and the suite's own PostgreSQL does from now on.
    pub fn postgres_network(&self, condition: crate::proxy::Condition) {
        if let Some(proxy) = &self.postgres_proxy {
            proxy.set(condition);
        }
    }

    /// Kills the suite's own redis-server (SIGKILL).
    pub fn kill_redis(&self) {
        if let Some(mut child) = lock(&self.redis).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The services' Prometheus text, by service.
    pub async fn metrics(&self) -> BTreeMap<String, String> {
        scrape_metrics(&reqwest::Client::new(), Duration::from_secs(5)).await
    }
}

/// Every service's Prometheus text, by service, scraped at once; a service that does not answer within `timeout`
/// is left out. A service behind a partition run's balancer is scraped on its first replica's own port: through the
/// balancer two scrapes could reach two replicas, and their difference would mean nothing.
pub async fn scrape_metrics(
    client: &reqwest::Client,
    timeout: Duration,
) -> BTreeMap<String, String> {
    let scrapes = SERVICES.iter().map(|(name, _)| async move {
        let text = async {
            client
                .get(format!("{}/metrics", own_url(name)))
                .timeout(timeout)
                .send()
                .await?
                .text()
                .await
        };
        (name.to_string(), text.await.ok())
    });
    futures_util::future::join_all(scrapes)
        .await
        .into_iter()
        .filter_map(|(name, text)| Some((name, text?)))
        .collect()
}

/// A PostgreSQL cluster of a suite's own, in a scratch directory (run as `postgres` when we are root: PostgreSQL
/// refuses root), trusting local connections, with the settings of `scripts/infra.sh`'s.
struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
}

impl OwnPostgres {
    fn create(stamp: &str) -> anyhow::Result<OwnPostgres> {
        let bin = fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL's binaries under /usr/lib/postgresql (scripts/infra.sh up installs them)")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .context("initdb")?;
        let data = std::env::temp_dir().join(format!("hc-load-pg-{stamp}"));
        fs::create_dir_all(&data)?;
        if is_root() {
            run(Command::new("chown").arg("postgres").arg(&data))?;
        }
        let pg = OwnPostgres { bin, data };
        let initdb = "-U postgres -A trust -E UTF8 --locale=C.UTF-8".split(' ');
        run(pg.tool("initdb").arg("-D").arg(&pg.data).args(initdb))?;
        pg.start()?;
        Ok(pg)
    }

    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.stdout(Stdio::null());
        c
    }

    /// Starts the cluster; after a kill, again until the old backends have let go of its shared memory.
    fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-h 127.0.0.1 -p {OWN_POSTGRES_BEHIND_PROXY_PORT} -k /tmp -c max_connections=300 -c shared_buffers=256MB -c autovacuum_naptime=5"
        );
        let mut last = Ok(());
        for _ in 0..40 {
            last = run(self
                .tool("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.data.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]));
            if last.is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        last
    }

    fn kill(&self) {
        let pid = fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned));
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }

    fn remove(self) {
        let _ =
            run(self
                .tool("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "stop"]));
        let _ = fs::remove_dir_all(&self.data);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("{command:?}"))?;
    anyhow::ensure!(status.success(), "{command:?} failed ({status})");
    Ok(())
}

impl Drop for Suite {
    fn drop(&mut self) {
        if self.attached {
            return;
        }
        self.stop_services();
        // Give PostgreSQL and Redis their whole machine back.
        self.confinement.take();
        // The scratch data goes with the run.
        if let Some(pg) = self.postgres.take() {
            pg.remove();
        }
        let _ = Command::new("psql")
            .arg(&self.admin_db_url)
            .args([
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if self.options.own_stores {
            self.kill_redis();
            let _ = fs::remove_dir_all(self.log_dir.join("redis"));
            return;
        }
        // The run's keys in the shared Redis.
        let Ok(mut redis) =
            redis::Client::open(self.redis_url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let keys: Vec<String> =
            redis::Commands::scan_match(&mut redis, format!("{}*", self.prefix))
                // A failed page ends the scan (retrying it could spin for good in a drop).
                .map(|keys| keys.map_while(Result::ok).collect())
                .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<()> = redis::Commands::del(&mut redis, chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_named_and_parsed_both_ways() {
        for p in [
            Profile::Hardened,
            Profile::Naive,
            Profile::Without(Defence::Admission),
        ] {
            assert_eq!(p.name().parse::<Profile>(), Ok(p.clone()));
        }
        for &d in Defence::ALL {
            assert_eq!(
                format!("without-{}", d.name()).parse::<Profile>(),
                Ok(Profile::Without(d))
            );
            assert!(!d.off().is_empty());
        }
        assert!("without-seatbelts".parse::<Profile>().is_err());
    }

    #[test]
    fn the_naive_profile_turns_off_every_defence_the_ablation_turns_off_one_by_one() {
        // config/naive.toml must hold every key the ablation uses, with the same value: one list of defences.
        let naive =
            fs::read_to_string(repo_root().join("config/naive.toml")).expect("config/naive.toml");
        for &d in Defence::ALL {
            for (key, value) in d.off() {
                let mut parts = key.trim_start_matches("HC__").split("__");
                let (section, field) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let section = format!("[{}]", section.to_lowercase());
                let start = naive
                    .find(&section)
                    .unwrap_or_else(|| panic!("{section} missing from naive.toml"));
                let body = &naive[start..];
                let body = &body[..body[1..].find("\n[").map(|i| i + 1).unwrap_or(body.len())];
                let line = format!("{} = {}", field.to_lowercase(), value);
                assert!(body.contains(&line), "naive.toml lacks {line} in {section}");
            }
        }
    }
}
