//! The one handle to Redis: a single node or a Redis Cluster, chosen by settings, with every key built
//! through [`Store::key`] so that it carries the service's prefix.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use secrecy::ExposeSecret;

use crate::breaker::Breaker;
use crate::settings::RedisSettings;
use crate::tls::Tls;

#[derive(Clone)]
pub struct Store {
    conn: Conn,
    prefix: Arc<str>,
}

/// A connection that reconnects by itself (a multiplexed manager on one node, or a cluster connection), behind a
/// circuit breaker shared by every clone.
#[derive(Clone)]
pub struct Conn {
    inner: Inner,
    breaker: Arc<Breaker>,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Failures in a row (timeouts, refused or dropped connections) that open the breaker in front of Redis, and how long
/// it stays open. A Redis slower than the response timeout made every command of a request wait it out in turn, and
/// requests took 5-8 s (make chaos, slow-redis); refused at once instead, they take the fallbacks behind Redis as
/// they do when it is down.
const BREAKER_FAILURES: u32 = 5;
const BREAKER_OPEN: Duration = Duration::from_secs(1);

impl Store {
    /// A `rediss://` URL connects over TLS with the trust store of `tls`.
    pub async fn connect(settings: &RedisSettings, tls: &Tls) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.response_timeout_ms);
        let conn = if settings.cluster_urls.trim().is_empty() {
            let url = settings.url.expose_secret();
            tls.check_redis("redis.url", url)?;
            let client = match url.starts_with("rediss://") {
                true => redis::Client::build_with_tls(url, tls.redis_certs()),
                false => redis::Client::open(url),
            }
            .context("redis.url")?;
            // While Redis is down every command waits on the manager's reconnection; its default (6 retries from
            // 100 ms, doubling) held each request about 6 s, so the fallbacks behind Redis came too late for anyone
            // (make chaos, redis-empty). One quick retry: a command fails within a connection timeout and 100 ms, and
            // the next command tries again.
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(timeout))
                .set_connection_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(100));
            Inner::Single(
                ConnectionManager::new_with_config(client, config)
                    .await
                    .context("connecting to Redis")?,
            )
        } else {
            let nodes: Vec<String> = settings
                .cluster_urls
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect();
            for node in &nodes {
                tls.check_redis("redis.cluster_urls", node)?;
            }
            let mut builder = ClusterClientBuilder::new(nodes.clone());
            if nodes.iter().all(|n| n.starts_with("rediss://")) {
                builder = builder.certs(tls.redis_certs());
            }
            // As on one node: with redis-rs's default of 16 retries, from 1.28 s apart, a command for a node that is
            // down waited out its whole response timeout. One quick retry follows a redirect (MOVED after a failover
            // or a reshard); past it the command fails and the request takes the fallbacks behind Redis.
            let client = builder
                .response_timeout(timeout)
                .connection_timeout(timeout)
                .retries(1)
                .min_retry_wait(50)
                .max_retry_wait(100)
                .build()
                .context("redis.cluster_urls")?;
            Inner::Cluster(
                client
                    .get_async_connection()
                    .await
                    .context("connecting to Redis Cluster")?,
            )
        };
        Ok(Self {
            conn: Conn {
                inner: conn,
                breaker: Arc::new(Breaker::new(
                    "redis_breaker_open",
                    true,
                    BREAKER_FAILURES,
                    BREAKER_OPEN,
                )),
            },
            prefix: settings.key_prefix.as_str().into(),
        })
    }

    /// The full key for `suffix`, e.g. `hc:otp:…`. The only place keys are built (the suffixes of keys shared
    /// between services come from the functions below).
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// When the Redis behind this store (every primary of a cluster) started: new at every restart, so a reader can
    /// tell that what it wrote there before may be gone (see `hc_platform::outbox`).
    pub async fn started(&self) -> anyhow::Result<RedisStart> {
        let info: redis::Value = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.conn())
            .await?;
        RedisStart::of(&info)
    }

    /// The Redis's start when it is not the one recorded under `marker` (a key under the prefix): what was written
    /// to it before may be gone. Also says whether a record was there at all: it survives a restart from the AOF, not
    /// one that came back empty. Record the start with [`Self::record_start`] once the loss is made good.
    pub async fn unrecorded_start(
        &self,
        marker: &str,
    ) -> anyhow::Result<Option<(RedisStart, bool)>> {
        let started = self.started().await?;
        let recorded: Option<String> = redis::cmd("GET")
            .arg(self.key(marker))
            .query_async(&mut self.conn())
            .await?;
        Ok(match recorded {
            Some(r) if r == started.run_ids => None,
            r => Some((started, r.is_some())),
        })
    }

    /// Records `start` under `marker` (see [`Self::unrecorded_start`]).
    pub async fn record_start(&self, marker: &str, start: &RedisStart) -> redis::RedisResult<()> {
        redis::cmd("SET")
            .arg(self.key(marker))
            .arg(&start.run_ids)
            .query_async(&mut self.conn())
            .await
    }

    /// The same connection under another key prefix: a test seeds a service's keys as that service would.
    pub fn with_prefix(&self, prefix: &str) -> Store {
        Store {
            conn: self.conn.clone(),
            prefix: prefix.into(),
        }
    }

    /// A connection for one or more commands (cheap: clones share the underlying connection).
    pub fn conn(&self) -> Conn {
        self.conn.clone()
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn())
            .await
            .map(|_| ())
    }
}

/// Whether Redis gave no answer (in time, or at all: refused, dropped, or refused by the open breaker), as against a
/// server's error answer. What the breaker counts.
pub fn is_unanswered(e: &redis::RedisError) -> bool {
    e.is_timeout() || e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// Whether Redis cannot serve now: no answer, or an answer saying so (loading its AOF after a restart, a cluster
/// without a primary for the slot or between failovers). A request that meets it is told to come back (503), not that
/// something broke (500).
pub fn is_unavailable(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    is_unanswered(e)
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
            )
        )
}

impl Conn {
    /// Refused at once while the breaker is open.
    fn admit(&self) -> redis::RedisResult<()> {
        if self.breaker.allow() {
            Ok(())
        } else {
            metrics::counter!("redis_breaker_refusals_total").increment(1);
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "Redis is not answering in time: the breaker is open",
            )))
        }
    }

    /// An answer (even a server's error) closes the breaker; no answer in time counts against it.
    fn record<T>(&self, result: &redis::RedisResult<T>) {
        let unanswered = result.as_ref().err().is_some_and(is_unanswered);
        self.breaker.record(!unanswered);
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.admit()?;
            let result = match &mut self.inner {
                Inner::Single(c) => c.req_packed_command(cmd).await,
                Inner::Cluster(c) => c.req_packed_command(cmd).await,
            };
            self.record(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.admit()?;
            let result = match &mut self.inner {
                Inner::Single(c) => c.req_packed_commands(cmd, offset, count).await,
                Inner::Cluster(c) => c.req_packed_commands(cmd, offset, count).await,
            };
            self.record(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

/// A person's Redis Cluster hash tag, `{person-id}`: every key of one person carries it, so that the keys read or
/// written together (the status and the code renders, in one pipeline on the show-code path) share a hash slot
/// and reach one node. Without it the cluster client refuses such a pipeline as cross-slot.
pub fn person_tag(person: uuid::Uuid) -> String {
    format!("{{{person}}}")
}

/// The key suffix of a person's status hash, written by scoring and read by rendering and verification.
pub fn status_key(person: uuid::Uuid) -> String {
    format!("status:{}", person_tag(person))
}

/// When the Redis the streams live in started: the run ids of its nodes (one, or a cluster's, sorted and joined) and
/// how long the most recently started of them has surely been up.
pub struct RedisStart {
    pub run_ids: String,
    /// `uptime_in_seconds` less one: Redis subtracts two whole-second clock readings, so a node up 0.2 s may say 1.
    /// Taken as exact, that put its start before the last events the old Redis was sent, and a replay after an AOF
    /// restart missed them (a test failed so on a CI machine).
    pub up_at_least: Duration,
}

impl RedisStart {
    /// From the reply to `INFO server`: one node's text, or (from a cluster) one text per node.
    fn of(info: &redis::Value) -> anyhow::Result<Self> {
        let mut texts = Vec::new();
        collect_text(info, &mut texts);
        let mut run_ids = Vec::new();
        let mut uptime = None::<u64>;
        for line in texts.iter().flat_map(|t| t.lines()) {
            if let Some(id) = line.strip_prefix("run_id:") {
                run_ids.push(id.trim().to_owned());
            } else if let Some(secs) = line.strip_prefix("uptime_in_seconds:") {
                let secs: u64 = secs.trim().parse()?;
                uptime = Some(uptime.map_or(secs, |u| u.min(secs)));
            }
        }
        run_ids.sort();
        anyhow::ensure!(!run_ids.is_empty(), "INFO server names no run_id");
        Ok(Self {
            run_ids: run_ids.join(","),
            up_at_least: Duration::from_secs(uptime.unwrap_or(0).saturating_sub(1)),
        })
    }
}

fn collect_text(value: &redis::Value, into: &mut Vec<String>) {
    match value {
        redis::Value::BulkString(bytes) => into.push(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(text) => into.push(text.clone()),
        redis::Value::VerbatimString { text, .. } => into.push(text.clone()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().for_each(|v| collect_text(v, into));
        }
        redis::Value::Map(pairs) => pairs.iter().for_each(|(_, v)| collect_text(v, into)),
        _ => {}
    }
}
