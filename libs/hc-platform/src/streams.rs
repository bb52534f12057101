//! Consuming events from Redis Streams: with a consumer group, at-least-once delivery, an entry acknowledged
//! only after its handler succeeded, and entries left pending by a crashed consumer delivered again; or, where
//! every replica needs every entry, [`follow`] without a group.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;

use crate::outbox::stream_key;
use crate::store::Store;

/// Where a [`follow`] starts reading its stream.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// After the newest entry there when it starts: older entries concern nothing this replica holds.
    End,
    /// With the entries of the last `Duration` (stream ids are milliseconds).
    Within(Duration),
}

/// Follows `stream` without a consumer group, every replica reading every entry, until cancelled: each entry goes
/// to `each` in order; a read that fails goes to `missed` (entries may have been lost meanwhile) and is tried again.
/// Reads again at once after hearing something, and polls every `idle` when there is nothing new.
pub async fn follow(
    store: Store,
    stream: &str,
    start: Start,
    cancel: CancellationToken,
    idle: Duration,
    mut each: impl FnMut(&Delivered),
    mut missed: impl FnMut(&redis::RedisError),
) {
    const BATCH: usize = 500;
    let key = store.key(&stream_key(stream));
    let mut last: Option<String> = match start {
        Start::End => None,
        Start::Within(span) => {
            let since = chrono::Utc::now().timestamp_millis() - span.as_millis() as i64;
            Some(format!("{}-0", since.max(0)))
        }
    };
    while !cancel.is_cancelled() {
        let step = async {
            let from = match &last {
                Some(id) => id.clone(),
                None => {
                    let tail: redis::streams::StreamRangeReply =
                        store.conn().xrevrange_count(&key, "+", "-", 1).await?;
                    tail.ids
                        .first()
                        .map_or_else(|| "0-0".to_owned(), |e| e.id.clone())
                }
            };
            let reply: StreamReadReply = store
                .conn()
                .xread_options(
                    &[&key],
                    &[&from],
                    &StreamReadOptions::default().count(BATCH),
                )
                .await?;
            let mut heard = 0;
            let mut newest = from;
            for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                each(&Delivered::from_entry(&entry));
                newest = entry.id;
                heard += 1;
            }
            redis::RedisResult::Ok((newest, heard))
        };
        match step.await {
            Ok((newest, heard)) => {
                last = Some(newest);
                if heard > 0 {
                    continue;
                }
            }
            Err(err) => missed(&err),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(idle) => {}
        }
    }
}

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

/// An entry read from the stream: its stream id, the event, and the payload as sent (for the dead-letter stream).
struct Entry {
    id: String,
    delivered: Delivered,
    payload: String,
}

pub struct Consumer {
    store: Store,
    /// The event name (a metric label), and its Redis key.
    stream: String,
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

/// How often a consumer reports its group's backlog (one XINFO GROUPS).
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

impl Delivered {
    /// An event as read from its stream (by a group or by a plain follower): the publisher's id (the entry's own
    /// when it has none), the payload (JSON null when it does not parse, which every decoder calls malformed), and
    /// the trace context.
    pub fn from_entry(entry: &redis::streams::StreamId) -> Self {
        Delivered {
            event_id: field(&entry.map, "event_id").unwrap_or_else(|| entry.id.clone()),
            payload: serde_json::from_str(&field(&entry.map, "payload").unwrap_or_default())
                .unwrap_or(serde_json::Value::Null),
            traceparent: field(&entry.map, "traceparent"),
        }
    }
}

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
            stream: stream.to_owned(),
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
            let mut last = self.last_claim.lock().unwrap_or_else(|p| p.into_inner());
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
        let handler = &handler;
        self.process_next_group(false, |events: Vec<Delivered>| async move {
            for event in events {
                handler(event).await?;
            }
            Ok(())
        })
        .await
    }

    /// As [`Self::process_next_batch`], with the handler given a whole batch at once when `grouped` (so that
    /// it can write it in one transaction: one commit instead of one per event). A batch that fails is handled
    /// again one event at a time, so that a malformed event is dead-lettered alone and a transient failure
    /// leaves the events from the failing one on pending, in order.
    pub async fn process_next_group<F, Fut>(
        &self,
        grouped: bool,
        handler: F,
    ) -> anyhow::Result<usize>
    where
        F: Fn(Vec<Delivered>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        self.claim_abandoned().await?;
        for start in ["0", ">"] {
            let options = StreamReadOptions::default()
                .group(&self.group, &self.name)
                .count(self.batch);
            let reply: StreamReadReply = self
                .store
                .conn()
                .xread_options(&[&self.key], &[start], &options)
                .await?;
            let entries: Vec<Entry> = reply
                .keys
                .into_iter()
                .flat_map(|k| k.ids)
                .map(|entry| Entry {
                    delivered: Delivered::from_entry(&entry),
                    payload: field(&entry.map, "payload").unwrap_or_default(),
                    id: entry.id,
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            if grouped && entries.len() > 1 {
                let all = entries.iter().map(|e| e.delivered.clone()).collect();
                if handler(all).await.is_ok() {
                    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
                    self.store
                        .conn()
                        .xack::<_, _, _, ()>(&self.key, &self.group, &ids)
                        .await?;
                    entries.iter().for_each(|e| self.record_age(e));
                    return Ok(entries.len());
                }
            }
            for entry in &entries {
                if let Err(err) = handler(vec![entry.delivered.clone()]).await {
                    let Some(malformed) = err.downcast_ref::<Malformed>() else {
                        return Err(err);
                    };
                    self.dead_letter(entry, malformed).await?;
                }
                self.store
                    .conn()
                    .xack::<_, _, _, ()>(&self.key, &self.group, &[&entry.id])
                    .await?;
                self.record_age(entry);
            }
            return Ok(entries.len());
        }
        Ok(0)
    }

    /// How long the event waited in the stream before it was applied (an entry id starts with the milliseconds
    /// at which Redis added it): for scoring, the recolouring lag.
    fn record_age(&self, entry: &Entry) {
        let Some(added_ms) = entry
            .id
            .split('-')
            .next()
            .and_then(|ms| ms.parse::<i64>().ok())
        else {
            return;
        };
        let age_ms = (chrono::Utc::now().timestamp_millis() - added_ms).max(0);
        metrics::histogram!("stream_event_age_seconds", "stream" => self.stream.clone())
            .record(age_ms as f64 / 1000.0);
    }

    /// Entries of the stream this group has not acknowledged yet: not yet delivered (the group's lag) and
    /// delivered but pending.
    async fn record_backlog(&self) -> anyhow::Result<()> {
        let groups: redis::streams::StreamInfoGroupsReply =
            self.store.conn().xinfo_groups(&self.key).await?;
        if let Some(group) = groups.groups.iter().find(|g| g.name == self.group) {
            let backlog = group.pending + group.lag.unwrap_or(0);
            metrics::gauge!("stream_backlog_events", "stream" => self.stream.clone())
                .set(backlog as f64);
        }
        Ok(())
    }

    async fn dead_letter(&self, entry: &Entry, malformed: &Malformed) -> anyhow::Result<()> {
        let event_id = entry.delivered.event_id.as_str();
        tracing::error!(event = %event_id, stream = %self.key, reason = %malformed, "malformed event moved to the dead-letter stream");
        metrics::counter!("stream_dead_letters_total", "stream" => self.stream.clone())
            .increment(1);
        self.store
            .conn()
            .xadd::<_, _, _, _, ()>(
                format!("{}:dead", self.key),
                "*",
                &[
                    ("event_id", event_id),
                    ("payload", entry.payload.as_str()),
                    ("group", self.group.as_str()),
                    ("reason", &malformed.to_string()),
                ],
            )
            .await?;
        Ok(())
    }

    /// Consumes until cancelled. Reads do not block on the shared multiplexed connection (a blocking read
    /// would hold up every other command on it); the loop pauses `idle` when there was nothing.
    /// `grouped`: see [`Self::process_next_group`].
    pub async fn run<F, Fut>(
        self,
        cancel: CancellationToken,
        idle: Duration,
        grouped: bool,
        handler: F,
    ) where
        F: Fn(Vec<Delivered>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        if let Err(err) = self.ensure_group().await {
            tracing::error!(error = %err, stream = %self.key, "cannot create the consumer group");
        }
        // Present from the start at 0, so that an alert on its increase sees the first dead letter.
        metrics::counter!("stream_dead_letters_total", "stream" => self.stream.clone()).absolute(0);
        let mut backlog_measured: Option<std::time::Instant> = None;
        while !cancel.is_cancelled() {
            if backlog_measured.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
                backlog_measured = Some(std::time::Instant::now());
                if let Err(err) = self.record_backlog().await {
                    tracing::debug!(error = %err, stream = %self.key, "measuring the backlog failed");
                }
            }
            let handled = match self.process_next_group(grouped, &handler).await {
                Ok(n) => n,
                // A Redis that came back empty has lost the group with the stream: make both again, reading from the
                // start, where the relays publish again what the lost stream held (hc_platform::outbox).
                Err(err) if no_group(&err) => {
                    tracing::warn!(stream = %self.key, "the consumer group is gone: Redis lost its data; making it again");
                    if let Err(err) = self.ensure_group().await {
                        tracing::warn!(error = %err, stream = %self.key, "cannot create the consumer group");
                    }
                    0
                }
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

/// The error of reading through a consumer group that does not exist.
fn no_group(err: &anyhow::Error) -> bool {
    err.downcast_ref::<redis::RedisError>()
        .is_some_and(|e| e.code() == Some("NOGROUP"))
}
