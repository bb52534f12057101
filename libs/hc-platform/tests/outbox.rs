//! The outbox relay against a Redis of the test's own that is killed (SIGKILL) and restarted: events relayed but not
//! yet consumed are lost with it, when it comes back empty or when its AOF lost its last writes (as a machine crash
//! loses what `appendfsync everysec` had not yet synced). The relay notices the restart and publishes them again, and
//! the consumer, whose group went with an empty Redis, makes the group again and sees every event.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hc_platform::outbox::{Relay, enqueue};
use hc_platform::settings::{DatabaseSettings, RedisSettings};
use hc_platform::store::Store;
use hc_platform::streams::Consumer;
use hc_platform::testing::{TestDatabase, WAIT, eventually, free_port, wait_for_port};
use hc_platform::tls::Tls;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

/// A redis-server of the test's own on a fixed port and directory, so that it can be killed and started again.
struct OwnRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    aof: bool,
}

impl OwnRedis {
    fn start(aof: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("hc-outbox-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir,
            aof,
        };
        redis.run();
        redis
    }

    fn run(&mut self) {
        let aof = if self.aof { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                aof,
                "--appendfsync",
                "everysec",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        wait_for_port(self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The AOF that takes the writes (Redis 7 keeps a base and an incremental file under `appendonlydir`).
    fn incremental_aof(&self) -> PathBuf {
        std::fs::read_dir(self.dir.join("appendonlydir"))
            .expect("appendonlydir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
            .expect("an incremental AOF")
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Setup {
    _db: TestDatabase,
    pool: deadpool_postgres::Pool,
    store: Store,
    /// The distinct events the consumer has handled.
    seen: Arc<Mutex<HashSet<String>>>,
    /// Until opened, the consumer fails every event (a transient failure: they stay pending, unconsumed).
    open: Arc<AtomicBool>,
    stop: CancellationToken,
}

const STREAM: &str = "test.things";

/// A pool on `db` whose schema `relaytest` has an outbox table as the services' migrations make it.
async fn outbox_pool(db: &TestDatabase) -> deadpool_postgres::Pool {
    let settings = DatabaseSettings {
        url: db.url.clone().into(),
        pool_max_size: 4,
        pool_wait_timeout_ms: 5000,
        connect_timeout_ms: 5000,
        read_url: String::new().into(),
    };
    let pool = hc_platform::db::pool(&settings, &Tls::system(), "relaytest").expect("pool");
    pool.get()
        .await
        .expect("db")
        .batch_execute(
            "CREATE SCHEMA relaytest;
             CREATE TABLE relaytest.outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
               stream text NOT NULL, payload jsonb NOT NULL, traceparent text,
               created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz);",
        )
        .await
        .expect("outbox table");
    pool
}

async fn setup(redis: &OwnRedis) -> Setup {
    let db = TestDatabase::create().await.expect("database");
    let pool = outbox_pool(&db).await;
    let store = Store::connect(
        &RedisSettings {
            url: format!("redis://127.0.0.1:{}", redis.port).into(),
            cluster_urls: String::new(),
            key_prefix: "t:".into(),
            response_timeout_ms: 1000,
        },
        &Tls::system(),
    )
    .await
    .expect("redis");
    let stop = CancellationToken::new();
    tokio::spawn(
        Relay::new(pool.clone(), store.clone(), "relaytest", 100)
            .run(stop.clone(), Duration::from_millis(20)),
    );
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let open = Arc::new(AtomicBool::new(false));
    let (seen_by, open_for) = (seen.clone(), open.clone());
    tokio::spawn(Consumer::new(store.clone(), STREAM, "tests", "c1", 10).run(
        stop.clone(),
        Duration::from_millis(20),
        false,
        move |events: Vec<hc_platform::streams::Delivered>| {
            let (seen, open) = (seen_by.clone(), open_for.clone());
            async move {
                anyhow::ensure!(open.load(Ordering::SeqCst), "not yet");
                let mut seen = seen.lock().expect("lock");
                seen.extend(events.into_iter().map(|e| e.event_id));
                Ok(())
            }
        },
    ));
    Setup {
        _db: db,
        pool,
        store,
        seen,
        open,
        stop,
    }
}

impl Setup {
    async fn enqueue(&self, numbers: std::ops::Range<i64>) {
        let db = self.pool.get().await.expect("db");
        for n in numbers {
            enqueue(&db, STREAM, &serde_json::json!({ "n": n }))
                .await
                .expect("enqueue");
        }
    }

    /// Waits until the stream holds `n` entries.
    async fn relayed(&self, n: usize) {
        let key = self.store.key(&hc_platform::outbox::stream_key(STREAM));
        eventually(WAIT, format!("{n} entries relayed"), || async {
            let len: usize = self.store.conn().xlen(&key).await.ok()?;
            (len >= n).then_some(())
        })
        .await;
    }

    /// Opens the consumer and waits until it has seen `n` distinct events.
    async fn all_consumed(&self, n: usize) {
        self.open.store(true, Ordering::SeqCst);
        eventually(WAIT, format!("all {n} events consumed"), || async {
            (self.seen.lock().expect("lock").len() == n).then_some(())
        })
        .await;
        self.stop.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_relayed_into_a_redis_that_restarts_empty_are_published_again() {
    let mut redis = OwnRedis::start(false);
    let setup = setup(&redis).await;
    setup.enqueue(0..20).await;
    setup.relayed(20).await;
    redis.kill();
    redis.run();
    setup.enqueue(20..25).await;
    setup.all_consumed(25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_lost_from_the_aof_s_last_second_are_published_again() {
    let mut redis = OwnRedis::start(true);
    let setup = setup(&redis).await;
    setup.enqueue(0..10).await;
    setup.relayed(10).await;
    // Past the everysec fsync: what the AOF holds here survives a machine crash.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let synced = std::fs::metadata(redis.incremental_aof())
        .expect("aof")
        .len();
    setup.enqueue(10..20).await;
    setup.relayed(20).await;
    redis.kill();
    // A process kill loses nothing the kernel was given; a machine crash loses the writes not yet synced. Cutting the
    // AOF back to its size a second ago does to the file what that crash would.
    truncate(&redis.incremental_aof(), synced);
    redis.run();
    setup.all_consumed(20).await;
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .expect("truncate the AOF");
}

/// On a Redis Cluster, `INFO` answers from every primary: the relay must see the same cluster from one check to the
/// next (the run ids sorted), or it would replay its outbox every second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_the_relay_replays_once_not_at_every_check() {
    let db = TestDatabase::create().await.expect("database");
    let pool = outbox_pool(&db).await;
    let store = Store::connect(
        &RedisSettings {
            url: String::new().into(),
            cluster_urls: hc_platform::testing::redis_cluster_urls(),
            key_prefix: format!("hc:test-{}:", uuid::Uuid::new_v4()),
            response_timeout_ms: 2000,
        },
        &Tls::system(),
    )
    .await
    .expect("cluster");
    let relay = Relay::new(pool.clone(), store, "relaytest", 100);
    {
        let db = pool.get().await.expect("db");
        for n in 0..3 {
            enqueue(&db, STREAM, &serde_json::json!({ "n": n }))
                .await
                .expect("enqueue");
        }
    }
    assert_eq!(relay.process_next_batch().await.expect("relay"), 3);
    assert_eq!(
        relay.replay_if_redis_restarted().await.expect("check"),
        3,
        "a cluster this outbox was never replayed for"
    );
    assert_eq!(relay.process_next_batch().await.expect("relay"), 3);
    for _ in 0..3 {
        assert_eq!(relay.replay_if_redis_restarted().await.expect("check"), 0);
    }
}
