//! Helpers for integration tests against real servers (behind the `testing` feature, so never in a service binary):
//! [`TestSuite`] starts any set of services over one throw-away database and one Redis key prefix, [`eventually`]
//! waits for what happens asynchronously, [`expect_json`] and [`problem`] check an answer's status, and there is
//! a log capture and a TCP proxy that can be cut to make a dependency unreachable. Connection settings come from
//! `HC_TEST_DATABASE_URL` and `HC_TEST_REDIS_URL`.

use crate::tls::Tls;
use std::io::Write;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tracing_subscriber::fmt::MakeWriter;

use crate::service::Service;
use crate::settings::{Builder, Settings, load_with};
use crate::store::Store;

/// How long a test waits for something asynchronous (generous: a CI machine may be slow and busy).
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// On a connection whose head announced a chunked body, sends 64 KiB chunks on toward 64 GiB (bounded, and far more
/// than a server could read in the test's time) and returns the server's answer, once the server has stopped reading.
/// Panics when no answer comes within 30 s, or when the server still reads 10 s after answering (it is draining the
/// body instead of closing the connection).
pub async fn answer_to_an_endless_chunked_body(stream: TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const ENDLESS: u64 = 64 << 30;
    let (mut reader, mut writer) = stream.into_split();
    let sending = tokio::spawn(async move {
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "7".repeat(64 * 1024));
        let mut sent: u64 = 0;
        while sent < ENDLESS {
            if writer.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 64 * 1024;
        }
        sent
    });
    let mut answer = vec![0u8; 8192];
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), reader.read(&mut answer))
        .await
        .expect("an answer within 30 s")
        .expect("read");
    drop(reader);
    let sent = tokio::time::timeout(std::time::Duration::from_secs(10), sending)
        .await
        .unwrap_or_else(|_| panic!("the server still reads the body 10 s after answering"))
        .expect("join");
    assert!(sent < ENDLESS, "the whole body was read");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// A TCP port on 127.0.0.1 that nothing listens on (for a server a test starts itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Waits (blocking, up to 30 s) until something accepts connections on `port` of 127.0.0.1.
pub fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Asks `probe` every 20 ms until it answers `Some`, and returns that answer; panics with `what` once `timeout` has
/// passed. The one way a test waits for something that happens asynchronously (an event consumed, a status
/// written): one interval, one deadline, one message.
pub async fn eventually<T, F, Fut>(
    timeout: std::time::Duration,
    what: impl std::fmt::Display,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} (waited {timeout:?})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn admin_database_url() -> String {
    std::env::var("HC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("HC_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Seed nodes of the test Redis Cluster (`scripts/infra.sh up` starts one on 7001-7003).
pub fn redis_cluster_urls() -> String {
    std::env::var("HC_TEST_REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
        "redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003".into()
    })
}

/// A valid ID number (its ISO 7064 check character appended) from its first 17 digits.
pub fn valid_id_number(first17: &str) -> String {
    format!(
        "{first17}{}",
        hc_domain::check_character(first17.as_bytes()) as char
    )
}

/// The JSON body of `response`, once its status is `status` (the body is in the message when it is not).
pub async fn expect_json(
    response: reqwest::Response,
    status: reqwest::StatusCode,
) -> serde_json::Value {
    let got = response.status();
    let url = response.url().path().to_owned();
    let body = response.text().await.expect("a response body");
    assert_eq!(got, status, "{url} answered {got}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"))
}

/// Asserts an `application/problem+json` response with `status` and returns its body.
/// The sum of a counter's series at `address`'s `/metrics` whose labels contain `labels` ("" for all).
pub async fn metric(http: &reqwest::Client, address: &str, name: &str, labels: &str) -> f64 {
    let text = http
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub async fn problem(
    response: reqwest::Response,
    status: reqwest::StatusCode,
) -> serde_json::Value {
    assert_eq!(response.status(), status);
    let ctype = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(ctype, "application/problem+json");
    response.json().await.expect("problem body")
}

/// A database created for one test and dropped (with its connections) when this value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let admin_url = admin_database_url();
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let (client, connection) = tokio_postgres::connect(&admin_url, NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(&admin_url);
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot block on itself: use a runtime of our own. Tests run on
        // a multi-thread runtime, so the app's connections keep being driven meanwhile; a blocked current-thread
        // runtime leaves its backends unable to acknowledge DROP DATABASE's barrier, which then stalls for a minute.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin_url, NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
    }
}

/// A unique Redis key prefix whose keys are deleted when this value is dropped.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    pub fn new() -> Self {
        Self {
            url: redis_url(),
            prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let sweep = || -> redis::RedisResult<()> {
            let mut conn = redis::Client::open(self.url.as_str())?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut conn)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).query::<()>(&mut conn)?;
            }
            Ok(())
        };
        let _ = sweep();
    }
}

/// Collects everything the log writes, to assert on what was (not) logged.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

pub struct CapturedLogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CapturedLogWriter(self.0.clone())
    }
}

/// A TCP forwarder in front of a real server; [`TcpProxy::cut`] closes it and every connection through it,
/// which is what a dependency going away looks like to a service.
pub struct TcpProxy {
    pub addr: std::net::SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    pub async fn start(target: std::net::SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = tasks.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(pipe);
            }
        });
        tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(acceptor);
        Ok(Self { addr, tasks })
    }

    pub fn cut(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Services under test over one database, one Redis key prefix and one blind-index key, shared as a deployment
/// shares them. Start identity first when the others need tokens ([`TestSuite::trust_identity_at`]): every service
/// started after that verifies tokens against its keys.
pub struct TestSuite {
    pub db: TestDatabase,
    pub redis: TestRedis,
    pub blind_key: String,
    /// The same Redis as the services, without their key prefix: tests spell whole keys.
    pub store: Store,
    pub http: reqwest::Client,
    jwks_url: OnceLock<String>,
}

impl TestSuite {
    pub async fn new() -> Self {
        let redis = TestRedis::new();
        let store = Store::connect(
            &crate::settings::RedisSettings {
                url: redis.url.clone().into(),
                cluster_urls: String::new(),
                key_prefix: String::new(),
                response_timeout_ms: 5_000,
            },
            &Tls::system(),
        )
        .await
        .expect("test Redis");
        Self {
            db: TestDatabase::create().await.expect("test database"),
            redis,
            blind_key: crate::privacy::random_base64(32).expect("random key"),
            store,
            http: reqwest::Client::new(),
            jwks_url: OnceLock::new(),
        }
    }

    /// The services' keys, as the services see them (with the suite's prefix).
    pub fn prefixed(&self) -> Store {
        self.store.with_prefix(&self.redis.prefix)
    }

    /// Services started from now on verify access tokens against the identity service at `address`.
    pub fn trust_identity_at(&self, address: &str) {
        let _ = self.jwks_url.set(format!("{address}/v1/auth/keys"));
    }

    /// Prepares `S` with the suite's settings; add overrides with [`Starting::set`], then [`Starting::start`] it.
    pub fn service<S: Service>(&self) -> Starting<'_, S> {
        Starting {
            suite: self,
            overrides: Vec::new(),
            service: PhantomData,
        }
    }
}

/// A service about to start in a [`TestSuite`].
pub struct Starting<'a, S> {
    suite: &'a TestSuite,
    overrides: Vec<(String, config::Value)>,
    service: PhantomData<S>,
}

impl<S: Service> Starting<'_, S> {
    /// Overrides one setting (`section.key`).
    pub fn set(mut self, key: &str, value: impl Into<config::Value>) -> Self {
        self.overrides.push((key.to_owned(), value.into()));
        self
    }

    /// Starts the service on a free port, serving in the background until the test ends.
    pub async fn start(self) -> Started<S::Settings> {
        self.start_with(|b| b).await
    }

    /// As [`Self::start`], with a test's own overrides applied last.
    pub async fn start_with(self, tweak: impl FnOnce(Builder) -> Builder) -> Started<S::Settings> {
        let Starting {
            suite, overrides, ..
        } = self;
        let settings: Settings<S::Settings> = load_with(S::DEFAULT_CONFIG, S::NAME, None, |b| {
            let mut b = shared_overrides(b, &suite.db, &suite.redis, &suite.blind_key)
                .set_override("events.idle_ms", 20)
                .expect("test overrides");
            if let Some(jwks) = suite.jwks_url.get() {
                b = b
                    .set_override("auth.jwks_url", jwks.as_str())
                    .expect("test overrides");
            }
            for (key, value) in overrides {
                b = b.set_override(key, value).expect("test overrides");
            }
            tweak(b)
        })
        .unwrap_or_else(|e| panic!("{} settings: {e:#}", S::NAME));
        let running = S::start(settings.clone())
            .await
            .unwrap_or_else(|e| panic!("{} starts: {e:#}", S::NAME));
        let address = format!("http://127.0.0.1:{}", running.port());
        tokio::spawn(running.run_until_stopped());
        Started { address, settings }
    }
}

/// A service serving in a [`TestSuite`].
pub struct Started<S> {
    pub address: String,
    /// The settings it started with.
    pub settings: Settings<S>,
}

impl<S> Started<S> {
    /// A pool on the service's schema, for tests that look at its tables.
    pub fn pool(&self, schema: &'static str) -> deadpool_postgres::Pool {
        let tls = Tls::from_settings(&self.settings.platform.tls).expect("test TLS");
        crate::db::pool(&self.settings.platform.database, &tls, schema).expect("test pool")
    }

    /// The Redis (node or cluster) the service uses, without its key prefix: tests spell whole keys.
    pub async fn unprefixed_store(&self) -> Store {
        let mut redis = self.settings.platform.redis.clone();
        redis.key_prefix = String::new();
        let tls = Tls::from_settings(&self.settings.platform.tls).expect("test TLS");
        Store::connect(&redis, &tls).await.expect("test Redis")
    }
}

/// The overrides every service under test shares: its database and Redis prefix, a free port, two workers, a
/// small pool, and the platform-wide blind-index key (services under test together must share it).
/// The national blind index key of every test platform: the one thing all regions share (docs/interop.md).
pub const NATIONAL_INDEX_KEY: &str = "bmF0aW9uYWwgaW5kZXgga2V5IGZvciB0aGUgdGVzdHM=";

fn shared_overrides(
    b: crate::settings::Builder,
    db: &TestDatabase,
    redis: &TestRedis,
    blind_index_key: &str,
) -> crate::settings::Builder {
    b.set_override("database.url", db.url.clone())
        .and_then(|b| b.set_override("redis.url", redis.url.clone()))
        .and_then(|b| b.set_override("redis.key_prefix", redis.prefix.clone()))
        .and_then(|b| b.set_override("server.port", 0))
        .and_then(|b| b.set_override("server.workers", 2))
        .and_then(|b| b.set_override("database.pool_max_size", 4))
        .and_then(|b| b.set_override("privacy.blind_index_key", blind_index_key))
        .and_then(|b| b.set_override("privacy.national_index_key", NATIONAL_INDEX_KEY))
        .expect("test overrides")
}

/// Telemetry as in production (a tracer provider, W3C propagation) with the logs discarded, installed once per
/// test process.
pub fn quiet_telemetry(service: &'static str) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let settings = crate::settings::TelemetrySettings {
            log_filter: "warn".into(),
            otlp_endpoint: String::new(),
        };
        std::mem::forget(crate::telemetry::init_with_writer(
            service,
            &settings,
            std::io::sink,
        ));
    });
}

#[cfg(test)]
mod eventually_tests {
    use std::time::Duration;

    use super::eventually;

    #[tokio::test]
    async fn eventually_returns_the_first_answer() {
        let mut asked = 0;
        let answer = eventually(Duration::from_secs(5), "never answered", || {
            asked += 1;
            let n = asked;
            async move { (n >= 3).then_some(n) }
        })
        .await;
        assert_eq!(answer, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "the thing never came")]
    async fn eventually_gives_up_naming_what_it_waited_for() {
        eventually(
            Duration::from_millis(60),
            "the thing never came",
            || async { None::<()> },
        )
        .await;
    }
}
