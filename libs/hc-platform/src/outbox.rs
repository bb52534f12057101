//! The transactional outbox: an event is written in the same transaction as the change it announces, and a
//! relay publishes it to a Redis Stream afterwards. A crash between commit and publish loses nothing (the row
//! is still there); a crash between publish and marking publishes it twice, so consumers are idempotent by
//! `event_id`.
//!
//! Each service that publishes has an `outbox` table in its own schema, created by its migrations:
//! `(id bigint identity primary key, stream text, payload jsonb, traceparent text, created_at, published_at)`
//! with a partial index on unpublished rows.
//!
//! A Redis that restarts loses what it had not written down: everything, when it comes back empty, or the last
//! second of writes when it comes back from an AOF fsynced every second. Events relayed into that loss and not yet
//! consumed would be gone. So the relay knows which Redis it relays to (its `run_id`, new at every start): when that
//! changes, it publishes again every event it relayed since a little before the new Redis started (the rows are kept
//! an hour), and consumers, idempotent by `event_id`, apply nothing twice. See [`Relay::replay_if_redis_restarted`].

use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool};
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::store::Store;

/// How often the relay reports its backlog.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
/// How often the relay deletes published rows (kept an hour for inspection), and how many of the oldest rows one
/// deletion looks at.
const CLEANUP_EVERY: Duration = Duration::from_secs(60);
const CLEANUP_BATCH: i64 = 10_000;
/// Deletions per cleanup at most, so that a large backlog of published rows does not hold up publishing.
const CLEANUP_ROUNDS: usize = 10;
/// How often the relay asks which Redis it relays to.
const RESTART_CHECK_EVERY: Duration = Duration::from_secs(1);
/// After a Redis came back empty, events relayed up to this long before it started are published again: the longest
/// a consumer may have lagged behind and still find its unread events replayed (the consumer-lag alert fires long
/// before).
const REPLAY_MARGIN: Duration = Duration::from_secs(600);
/// After a Redis came back from its AOF, the events relayed in this long before the last one it was sent are
/// published again: what `appendfsync everysec` may not have synced (a second, two when the disk lags).
const AOF_WINDOW: Duration = Duration::from_secs(5);

/// The Redis key (without prefix) of an event stream, e.g. `events:facts.imported`.
pub fn stream_key(stream: &str) -> String {
    format!("events:{stream}")
}

/// The publisher's outbox id in an `event_id` (`{source}:{id}`): one publisher's events come in this order when it
/// writes them one at a time, as declaration does for one person. `None` for an id of another form.
pub fn sequence_of(event_id: &str) -> Option<i64> {
    event_id.rsplit_once(':')?.1.parse().ok()
}

/// The current span's W3C `traceparent`, carried with the event so the consumer continues the trace.
fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// Records an event inside the caller's transaction.
pub async fn enqueue(
    client: &impl GenericClient,
    stream: &str,
    payload: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO outbox (stream, payload, traceparent) VALUES ($1, $2, $3)",
            &[&stream, payload, &current_traceparent()],
        )
        .await?;
    Ok(())
}

/// Publishes outbox rows to Redis Streams.
pub struct Relay {
    pool: Pool,
    store: Store,
    /// Names the publisher in `event_id` (`{source}:{outbox id}`), which consumers deduplicate on.
    source: String,
    batch_size: i64,
    /// Streams are capped (approximately) at this many entries.
    max_stream_len: usize,
}

impl Relay {
    pub fn new(pool: Pool, store: Store, source: &str, batch_size: i64) -> Self {
        Self {
            pool,
            store,
            source: source.to_owned(),
            batch_size,
            max_stream_len: 1_000_000,
        }
    }

    /// Publishes up to one batch and returns how many events went out. Rows are locked with SKIP LOCKED, so
    /// several replicas can relay at once without publishing the same row concurrently.
    pub async fn process_next_batch(&self) -> anyhow::Result<usize> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Shared with other batches, exclusive to a replay: a replay waits for batches under way to commit, so that
        // it sees, and publishes again, what they sent to a Redis that has since restarted.
        tx.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtext('outbox relay ' || $1))",
            &[&self.source],
        )
        .await?;
        let rows = tx
            .query(
                "SELECT id, stream, payload::text, traceparent FROM outbox
                 WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                &[&self.batch_size],
            )
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.get(0);
            let stream: String = row.get(1);
            let payload: String = row.get(2);
            let traceparent: Option<String> = row.get(3);
            let event_id = format!("{}:{id}", self.source);
            let mut fields = vec![("event_id", event_id), ("payload", payload)];
            if let Some(tp) = traceparent {
                fields.push(("traceparent", tp));
            }
            pipe.xadd_maxlen(
                self.store.key(&stream_key(&stream)),
                redis::streams::StreamMaxlen::Approx(self.max_stream_len),
                "*",
                &fields,
            )
            .ignore();
            ids.push(id);
        }
        pipe.query_async::<()>(&mut self.store.conn()).await?;
        tx.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// The key recording which Redis (its run ids) this relay's events were last replayed for.
    fn replayed_for_key(&self) -> String {
        format!("outbox:{}:replayed-for", self.source)
    }

    /// When the Redis (every node of a cluster) started since this relay's outbox was last replayed for it, publishes
    /// again what that restart may have lost; returns how many rows were marked for publishing again. A Redis back
    /// empty gets every event relayed since 10 minutes before it started; one back from its AOF, the last seconds
    /// before the restart. The first start ever replays too: a harmless repeat, since consumers are idempotent.
    pub async fn replay_if_redis_restarted(&self) -> anyhow::Result<u64> {
        let Some((started, replayed_before)) = self
            .store
            .unrecorded_start(&self.replayed_for_key())
            .await?
        else {
            return Ok(0);
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('outbox relay ' || $1))",
            &[&self.source],
        )
        .await?;
        let uptime = started.up_at_least.as_secs_f64();
        let replayed = match replayed_before {
            // The record of the last replay survived, so the Redis came back with its data, from its AOF: only the
            // writes it had not synced are at risk, those just before the last events relayed to it. (Replaying
            // more is harmless but costly: every consumer handles each event again.)
            true => {
                tx.execute(
                    "UPDATE outbox SET published_at = NULL
                     WHERE published_at < now() - make_interval(secs => $1)
                       AND published_at >= (SELECT max(published_at) FROM outbox
                                            WHERE published_at < now() - make_interval(secs => $1))
                                           - make_interval(secs => $2)",
                    &[&uptime, &AOF_WINDOW.as_secs_f64()],
                )
                .await?
            }
            // Back empty (or never replayed for): every event not yet consumed is gone with the streams.
            false => {
                tx.execute(
                    "UPDATE outbox SET published_at = NULL
                     WHERE published_at > now() - make_interval(secs => $1)",
                    &[&(uptime + REPLAY_MARGIN.as_secs_f64())],
                )
                .await?
            }
        };
        tx.commit().await?;
        // Recorded only after the rows are marked: a relay that stops in between replays again, which is harmless.
        self.store
            .record_start(&self.replayed_for_key(), &started)
            .await?;
        metrics::counter!("outbox_replayed_events_total").increment(replayed);
        if replayed > 0 {
            tracing::warn!(
                replayed,
                source = %self.source,
                "Redis restarted: the events it may have lost are published again"
            );
        }
        Ok(replayed)
    }

    /// Deletes the published rows older than an hour among the oldest `CLEANUP_BATCH` rows, and returns how many
    /// went. Only the head of the table is read, through the primary key: rows are published in id order, so the old
    /// ones are there, and a deletion costs the same over a thousand rows or millions. (It was a full scan on every
    /// idle pause of the relay, 20 a second: over the outboxes of a million people that was most of PostgreSQL's
    /// CPU, see docs/capacity.md.)
    pub async fn delete_published(&self) -> anyhow::Result<u64> {
        Ok(self
            .pool
            .get()
            .await?
            .execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT $1)
                   AND published_at < now() - interval '1 hour'",
                &[&CLEANUP_BATCH],
            )
            .await?)
    }

    async fn clean_up(&self) {
        for _ in 0..CLEANUP_ROUNDS {
            match self.delete_published().await {
                Ok(n) if n == CLEANUP_BATCH as u64 => {}
                Ok(_) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "deleting published outbox rows failed");
                    return;
                }
            }
        }
    }

    /// Events committed and not yet relayed (the partial index on unpublished rows keeps the count cheap).
    async fn record_backlog(&self) -> anyhow::Result<()> {
        let unpublished: i64 = self
            .pool
            .get()
            .await?
            .query_one(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                &[],
            )
            .await?
            .get(0);
        metrics::gauge!("outbox_unpublished_events").set(unpublished as f64);
        Ok(())
    }

    /// Relays until cancelled, pausing `idle` when there is nothing to publish.
    pub async fn run(self, cancel: CancellationToken, idle: Duration) {
        let mut backlog_measured: Option<std::time::Instant> = None;
        let mut cleaned = std::time::Instant::now();
        let mut restart_checked: Option<std::time::Instant> = None;
        while !cancel.is_cancelled() {
            if restart_checked.is_none_or(|at| at.elapsed() >= RESTART_CHECK_EVERY) {
                restart_checked = Some(std::time::Instant::now());
                if let Err(err) = self.replay_if_redis_restarted().await {
                    tracing::warn!(error = %err, "checking for a Redis restart failed");
                }
            }
            if cleaned.elapsed() >= CLEANUP_EVERY {
                cleaned = std::time::Instant::now();
                self.clean_up().await;
            }
            if backlog_measured.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
                backlog_measured = Some(std::time::Instant::now());
                if let Err(err) = self.record_backlog().await {
                    tracing::debug!(error = %err, "counting the outbox backlog failed");
                }
            }
            let published = match self.process_next_batch().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox relay step failed");
                    0
                }
            };
            if published == 0 {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(idle) => {}
                }
            }
        }
    }
}
