//! Recolouring: a set of people in, their statuses out. Chunks of people are locked and loaded with one query per
//! fact table, evaluated on the blocking pool (compiled rules, no I/O), written with one upsert per chunk plus one
//! `status.changed` event, and pipelined to Redis; several chunks are in flight at once. Never one round trip per
//! person.

mod evaluate;
mod overrides;
pub mod regions;
mod snapshot;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures_util::{StreamExt, TryStreamExt};
use hc_platform::events::{StatusChange, StatusChanged};
use hc_platform::store::Store;
use uuid::Uuid;

use crate::loader::{Loaded, load_many, lock_and_load, store_digests};
use crate::projection::Index;
use crate::settings::ScoringSettings;
use crate::status;
use evaluate::evaluate_all;
use overrides::active_overrides;
pub use regions::span;
use snapshot::SnapshotCache;
pub use snapshot::{Snapshot, load_book, load_risk};

/// What one recolouring did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub evaluated: usize,
    pub changed: usize,
    pub evaluations: u64,
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, o: Self) {
        self.evaluated += o.evaluated;
        self.changed += o.changed;
        self.evaluations += o.evaluations;
    }
}

/// People loaded (and held in memory) at once by a bulk recolouring.
const BULK_SLICE: usize = 200_000;

pub struct Recolourer {
    pub db: Pool,
    pub store: Store,
    pub settings: Arc<ScoringSettings>,
    snapshots: SnapshotCache,
    /// Wakes whoever follows the facts as a whole (the county map) once imported facts are stored.
    pub facts_arrived: tokio::sync::Notify,
    /// Set when trajectories or case lists were stored: they arrive dated days back, so the county map's next
    /// scheduled round recomputes every day of its indices.
    pub past_days_changed: std::sync::atomic::AtomicBool,
}

impl Recolourer {
    pub fn new(db: Pool, store: Store, settings: Arc<ScoringSettings>) -> Self {
        Self {
            db,
            store,
            settings,
            snapshots: SnapshotCache::default(),
            facts_arrived: tokio::sync::Notify::new(),
            past_days_changed: Default::default(),
        }
    }

    /// The rules and risk map in force. Another replica's change is seen within `snapshot_refresh_ms`; this
    /// replica's own changes call [`Self::invalidate`].
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        self.snapshot_within(Duration::from_millis(self.settings.snapshot_refresh_ms))
            .await
    }

    /// The rules and risk map in force, checked against the database unless this replica checked within `refresh`
    /// (zero: always checked; reloaded only when they changed).
    pub async fn snapshot_within(&self, refresh: Duration) -> anyhow::Result<Snapshot> {
        self.snapshots.get(&self.db, refresh).await
    }

    pub fn invalidate(&self) {
        self.snapshots.invalidate();
    }

    /// Recolours the people behind `indexes` (those not registered are skipped). A large set is loaded set-based
    /// and written without locks, each write checking that nobody evaluated the person meanwhile; a small one (an
    /// event's people) is locked and loaded per person. Either way statuses are written a chunk at a time, several
    /// chunks in flight.
    pub async fn recolour(&self, mut indexes: Vec<Index>) -> anyhow::Result<Summary> {
        if indexes.is_empty() {
            return Ok(Summary::default());
        }
        indexes.sort();
        indexes.dedup();
        let started = Instant::now();
        let snapshot = self.snapshot().await?;
        let chunk = self.settings.recolour_chunk;
        let mut total = Summary::default();
        let mut retry = Vec::new();
        if indexes.len() > 2 * chunk {
            for slice in indexes.chunks(BULK_SLICE) {
                let now = Utc::now();
                let since = self.since(now);
                let parallelism = self.settings.recolour_parallelism;
                // Chunks are evaluated and written while the rest of the slice is still being read.
                let (sender, receiver) = tokio::sync::mpsc::channel(parallelism);
                let load = async {
                    let mut client = self.db.get().await?;
                    load_many(&mut client, slice, since, chunk, sender).await
                };
                let batches = futures_util::stream::unfold(receiver, |mut rx| async move {
                    rx.recv().await.map(|batch| (batch, rx))
                });
                let write = batches
                    .map(|(loaded, read_at)| {
                        self.write_chunk(loaded, snapshot.clone(), now, read_at)
                    })
                    .buffer_unordered(parallelism)
                    .try_collect::<Vec<(Summary, Vec<Index>)>>();
                let ((), results) = tokio::try_join!(load, write)?;
                for (s, skipped) in results {
                    total += s;
                    retry.extend(skipped);
                }
            }
        } else {
            retry = indexes;
        }
        // Small sets, and whoever a write skipped: under a lock, a few times if need be, with the rules and risk
        // levels read afresh after a skip (someone evaluated under newer ones).
        let mut snapshot = snapshot;
        for round in 0..4 {
            if retry.is_empty() {
                break;
            }
            if round > 0 || total.evaluated > 0 {
                self.invalidate();
                snapshot = self.snapshot().await?;
            }
            let results: Vec<(Summary, Vec<Index>)> = futures_util::stream::iter(
                retry
                    .chunks(chunk)
                    .map(<[Index]>::to_vec)
                    .collect::<Vec<_>>(),
            )
            .map(|c| self.recolour_locked(c, snapshot.clone()))
            .buffer_unordered(self.settings.recolour_parallelism)
            .try_collect()
            .await?;
            retry = Vec::new();
            for (s, skipped) in results {
                total += s;
                retry.extend(skipped);
            }
        }
        if !retry.is_empty() {
            tracing::warn!(
                people = retry.len(),
                "statuses kept changing under recolouring; the scheduler will recheck them"
            );
        }
        metrics::counter!("scoring_recoloured_total").increment(total.evaluated as u64);
        metrics::counter!("scoring_status_changes_total").increment(total.changed as u64);
        metrics::histogram!("scoring_recolour_seconds").record(started.elapsed().as_secs_f64());
        Ok(total)
    }

    /// The start of the lookback: facts before it are not read.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::days(self.settings.lookback_days)
    }

    async fn recolour_locked(
        &self,
        chunk: Vec<Index>,
        snapshot: Snapshot,
    ) -> anyhow::Result<(Summary, Vec<Index>)> {
        let now = Utc::now();
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        let (loaded, read_at) = lock_and_load(&tx, &chunk, self.since(now), true).await?;
        self.evaluate_and_write(tx, loaded, snapshot, now, read_at)
            .await
    }

    async fn write_chunk(
        &self,
        loaded: Vec<Loaded>,
        snapshot: Snapshot,
        now: DateTime<Utc>,
        read_at: DateTime<Utc>,
    ) -> anyhow::Result<(Summary, Vec<Index>)> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        // A bulk recolouring's statuses are derived data, and whatever starts one (a risk level or rule set not yet
        // marked applied, a recheck time not yet moved) is marked only after its last chunk: a crash that loses
        // the last commits leaves that mark unset, and the work is done again. So no need to wait for each
        // chunk's WAL flush.
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await?;
        self.evaluate_and_write(tx, loaded, snapshot, now, read_at)
            .await
    }

    /// Evaluates (on the blocking pool), writes, announces and commits one chunk, then pipelines it to Redis.
    /// Returns the indexes of people skipped because someone evaluated them meanwhile.
    async fn evaluate_and_write(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        loaded: Vec<Loaded>,
        snapshot: Snapshot,
        now: DateTime<Utc>,
        read_at: DateTime<Utc>,
    ) -> anyhow::Result<(Summary, Vec<Index>)> {
        if loaded.is_empty() {
            return Ok((Summary::default(), Vec::new()));
        }
        let basis = snapshot.basis;
        // Before the statuses: subjects are locked before statuses everywhere.
        store_digests(&tx, &loaded).await?;
        let persons: Vec<Uuid> = loaded.iter().map(|l| l.subject.person_id).collect();
        let overrides = active_overrides(&tx, &persons).await?;
        let (computed, evaluations, loaded) = tokio::task::spawn_blocking(move || {
            evaluate_all(&loaded, &snapshot, &overrides, now).map(|(c, e)| (c, e, loaded))
        })
        .await??;
        let written = status::write(&tx, computed, read_at, basis).await?;
        let changes: Vec<StatusChange> = written
            .stored
            .iter()
            .filter(|s| s.changed)
            .map(|s| StatusChange {
                person_id: s.person_id,
                version: s.view.version,
                colour: s.view.colour,
            })
            .collect();
        let changed = changes.len();
        if !changes.is_empty() {
            let event = StatusChanged { changes };
            hc_platform::outbox::enqueue(&tx, StatusChanged::STREAM, &event.encode()).await?;
        }
        tx.commit().await?;
        status::publish(&self.store, &written.stored).await?;
        let skipped: std::collections::HashSet<Uuid> = written.skipped.into_iter().collect();
        let retry = loaded
            .into_iter()
            .filter(|l| skipped.contains(&l.subject.person_id))
            .map(|l| l.subject.index)
            .collect();
        Ok((
            Summary {
                evaluated: written.stored.len(),
                changed,
                evaluations,
            },
            retry,
        ))
    }
}
