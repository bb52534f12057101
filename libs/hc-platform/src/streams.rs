//! Consuming events from Redis Streams with a consumer group: at-least-once delivery, an entry acknowledged
//! only after its handler succeeded, and entries left pending by a crashed consumer delivered again.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;

use crate::outbox::stream_key;
use crate::store::Store;

/// A handler's verdict on an event that can never be handled (its payload is malformed): the consumer moves it to
/// the dead-letter stream `events:{stream}:dead` with the reason, acknowledges it and goes on, instead of retrying
/// it forever in front of every later event. Any other error is taken as transient and the event comes again.
#[derive(Debug, thiserror::Error)]
#[error("malformed event: {0}")]
pub struct Malformed(pub String);

/// One event as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The publisher's id (`{source}:{n}`): the same event delivered twice has the same `event_id`.
    pub event_id: String,
    pub payload: serde_json::Value,
    pub traceparent: Option<String>,
}

pub struct Consumer {
    store: Store,
    key: String,
    group: String,
    name: String,
    batch: usize,
    /// Entries another consumer of the group has held unacknowledged this long are taken over.
    claim_idle: Duration,
    last_claim: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long an entry may sit with a consumer that took it and never acknowledged it (a replica that crashed or
/// was scaled away, whose name will not come back) before another consumer of the group takes it over.
const CLAIM_IDLE: Duration = Duration::from_secs(60);

fn field(map: &HashMap<String, redis::Value>, name: &str) -> Option<String> {
    map.get(name)
        .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
}

impl Consumer {
    /// `stream` is the event name (`person.registered`), `group` the consuming service.
    pub fn new(store: Store, stream: &str, group: &str, name: &str, batch: usize) -> Self {
        let key = store.key(&stream_key(stream));
        Self {
            store,
            key,
            group: group.to_owned(),
            name: name.to_owned(),
            batch,
            claim_idle: CLAIM_IDLE,
            last_claim: std::sync::Mutex::new(None),
        }
    }

    /// Takes over other consumers' entries once they have been pending for `idle` (tests use a short one).
    pub fn claiming_after(mut self, idle: Duration) -> Self {
        self.claim_idle = idle;
        self
    }

    /// Moves entries that other consumers of the group took and left unacknowledged for `claim_idle` to this
    /// one, so that they are handled with its own pending entries. Without this an event delivered to a replica
    /// that then died would stay pending under its name forever: acknowledged by the publisher, never applied.
    /// Runs at most every half `claim_idle`.
    async fn claim_abandoned(&self) -> anyhow::Result<()> {
        {
            let mut last = self
                .last_claim
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < self.claim_idle / 2) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        let idle_ms = u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let _: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&self.key)
            .arg(&self.group)
            .arg(&self.name)
            .arg(idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.batch)
            .arg("JUSTID")
            .query_async(&mut self.store.conn())
            .await?;
        Ok(())
    }

    /// Creates the group (and the stream) if needed, reading from the stream's beginning.
    pub async fn ensure_group(&self) -> anyhow::Result<()> {
        let created: redis::RedisResult<()> = self
            .store
            .conn()
            .xgroup_create_mkstream(&self.key, &self.group, "0")
            .await;
        match created {
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// Handles this consumer's pending entries first (a previous run crashed before acknowledging them),
    /// then new ones; returns how many were handled. A failing handler leaves its entry pending and stops the
    /// batch, so order within the stream is kept.
    pub async fn process_next_batch<F, Fut>(&self, handler: F) -> anyhow::Result<usize>
    where
        F: Fn(Delivered) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        self.claim_abandoned().await?;
        let mut handled = 0;
        for start in ["0", ">"] {
            let options = StreamReadOptions::default()
                .group(&self.group, &self.name)
                .count(self.batch);
            let reply: StreamReadReply = self
                .store
                .conn()
                .xread_options(&[&self.key], &[start], &options)
                .await?;
            for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                let delivered = Delivered {
                    event_id: field(&entry.map, "event_id").unwrap_or_else(|| entry.id.clone()),
                    payload: serde_json::from_str(
                        &field(&entry.map, "payload").unwrap_or_default(),
                    )
                    .unwrap_or(serde_json::Value::Null),
                    traceparent: field(&entry.map, "traceparent"),
                };
                let event_id = delivered.event_id.clone();
                let payload = field(&entry.map, "payload").unwrap_or_default();
                if let Err(err) = handler(delivered).await {
                    let Some(malformed) = err.downcast_ref::<Malformed>() else {
                        return Err(err);
                    };
                    tracing::error!(event = %event_id, stream = %self.key, reason = %malformed, "malformed event moved to the dead-letter stream");
                    metrics::counter!("stream_dead_letters_total").increment(1);
                    self.store
                        .conn()
                        .xadd::<_, _, _, _, ()>(
                            format!("{}:dead", self.key),
                            "*",
                            &[
                                ("event_id", event_id.as_str()),
                                ("payload", payload.as_str()),
                                ("group", self.group.as_str()),
                                ("reason", &malformed.to_string()),
                            ],
                        )
                        .await?;
                }
                self.store
                    .conn()
                    .xack::<_, _, _, ()>(&self.key, &self.group, &[&entry.id])
                    .await?;
                handled += 1;
            }
            if handled > 0 {
                break;
            }
        }
        Ok(handled)
    }

    /// Consumes until cancelled. Reads do not block on the shared multiplexed connection (a blocking read
    /// would hold up every other command on it); the loop pauses `idle` when there was nothing.
    pub async fn run<F, Fut>(self, cancel: CancellationToken, idle: Duration, handler: F)
    where
        F: Fn(Delivered) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        if let Err(err) = self.ensure_group().await {
            tracing::error!(error = %err, stream = %self.key, "cannot create the consumer group");
        }
        while !cancel.is_cancelled() {
            let handled = match self.process_next_batch(&handler).await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, stream = %self.key, "stream consumer step failed");
                    0
                }
            };
            if handled == 0 {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(idle) => {}
                }
            }
        }
    }
}
