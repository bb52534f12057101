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

use crate::settings::RedisSettings;
use crate::tls::Tls;

#[derive(Clone)]
pub struct Store {
    conn: Conn,
    prefix: Arc<str>,
}

/// A connection that reconnects by itself: a multiplexed manager on one node, or a cluster connection.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

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
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(timeout))
                .set_connection_timeout(Some(timeout));
            Conn::Single(
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
            let client = builder
                .response_timeout(timeout)
                .connection_timeout(timeout)
                .build()
                .context("redis.cluster_urls")?;
            Conn::Cluster(
                client
                    .get_async_connection()
                    .await
                    .context("connecting to Redis Cluster")?,
            )
        };
        Ok(Self {
            conn,
            prefix: settings.key_prefix.as_str().into(),
        })
    }

    /// The full key for `suffix`, e.g. `hc:otp:…`. The only place keys are built (the suffixes of keys shared
    /// between services come from the functions below).
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// The same connection under another key prefix: a test seeds a service's keys as that service would.
    pub fn with_prefix(&self, prefix: &str) -> Store {
        Store {
            conn: self.conn.clone(),
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
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

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
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
