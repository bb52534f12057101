//! Recolouring: a set of people in, their statuses out. Chunks of people are locked and loaded with one query per
//! fact table, evaluated on the blocking pool (compiled rules, no I/O), written with one upsert per chunk plus one
//! `status.changed` event, and pipelined to Redis; several chunks are in flight at once. Never one round trip per
//! person.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use futures_util::{StreamExt, TryStreamExt};
use hc_domain::Colour;
use hc_domain::china_time::{next_midnight, start_of};
use hc_platform::events::{StatusChange, StatusChanged};
use hc_platform::store::Store;
use uuid::Uuid;

use crate::facts::{RiskLevel, RiskMap, document};
use crate::loader::{Loaded, load_many, lock_and_load, store_digests};
use crate::projection::Index;
use crate::rules::{self, Active, Evaluator, Reason, RuleBook, RuleSetDoc};
use crate::settings::ScoringSettings;
use crate::status::{self, Computed};

/// What the rules and the risk map were when a recolouring started.
#[derive(Clone)]
pub struct Snapshot {
    pub book: Arc<RuleBook>,
    pub risk: Arc<RiskMap>,
    /// Grows with every change of rules or risk levels (each part of the generation only grows).
    pub basis: i64,
    /// Grows with every change of risk levels in effect (the public map's ETag).
    pub risk_generation: i64,
}

struct Cached {
    snapshot: Snapshot,
    generation: (i64, i64),
    checked: Instant,
}

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

/// An accepted appeal in force.
#[derive(Debug, Clone)]
struct Override {
    appeal: Uuid,
    colour: Colour,
    until: DateTime<Utc>,
    resolution: String,
}

/// People loaded (and held in memory) at once by a bulk recolouring.
const BULK_SLICE: usize = 200_000;

pub struct Recolourer {
    pub db: Pool,
    pub store: Store,
    pub settings: Arc<ScoringSettings>,
    cache: Mutex<Option<Cached>>,
}

impl Recolourer {
    pub fn new(db: Pool, store: Store, settings: Arc<ScoringSettings>) -> Self {
        Self {
            db,
            store,
            settings,
            cache: Mutex::new(None),
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
        if let Ok(guard) = self.cache.lock()
            && let Some(c) = guard.as_ref()
            && c.checked.elapsed() < refresh
        {
            return Ok(c.snapshot.clone());
        }
        let client = self.db.get().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM rule_sets WHERE effective_from <= now()),
                        (SELECT count(*) FROM region_risk WHERE effective_from <= now())",
                &[],
            )
            .await?;
        // Both only grow: rows are never deleted, and time only brings more of them into effect.
        let generation = (row.get(0), row.get(1));
        if let Ok(mut guard) = self.cache.lock()
            && let Some(c) = guard.as_mut()
            && c.generation == generation
        {
            c.checked = Instant::now();
            return Ok(c.snapshot.clone());
        }
        let snapshot = Snapshot {
            book: Arc::new(load_book(&client).await?),
            risk: Arc::new(load_risk(&client).await?),
            basis: generation.0 + generation.1,
            risk_generation: generation.1,
        };
        if let Ok(mut guard) = self.cache.lock() {
            *guard = Some(Cached {
                snapshot: snapshot.clone(),
                generation,
                checked: Instant::now(),
            });
        }
        Ok(snapshot)
    }

    pub fn invalidate(&self) {
        if let Ok(mut guard) = self.cache.lock() {
            *guard = None;
        }
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

    /// Everyone whose home lies in `region` (the national region: everyone), e.g. after its rules changed.
    pub async fn population(&self, region: &str) -> anyhow::Result<Vec<Index>> {
        let (lo, hi) = span(region);
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT id_index FROM subjects WHERE home_region BETWEEN $1 AND $2",
                &[&lo, &hi],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// Everyone seen in `region` (or a county inside it) within the lookback: the one set-based query behind a
    /// change of risk.
    pub async fn visitors(&self, region: &str) -> anyhow::Result<Vec<Index>> {
        let (lo, hi) = span(region);
        let since = Utc::now() - chrono::Duration::days(self.settings.lookback_days);
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT DISTINCT id_index FROM f_visits WHERE region BETWEEN $1 AND $2 AND last_seen >= $3",
                &[&lo, &hi, &since],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }
}

/// The range of codes inside a region (`RegionCode::span`), or every code for the national rule set.
pub fn span(region: &str) -> (String, String) {
    if region == rules::NATIONAL {
        return ("000000".into(), "999999".into());
    }
    match hc_domain::RegionCode::parse(region) {
        Ok(code) => code.span(),
        Err(_) => (region.to_owned(), region.to_owned()),
    }
}

async fn active_overrides(
    client: &impl GenericClient,
    persons: &[Uuid],
) -> Result<HashMap<Uuid, Override>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (person_id) person_id, id, override_colour, override_until, resolution
             FROM appeals WHERE state = 'accepted' AND person_id = ANY($1) AND override_until > now()
             ORDER BY person_id, resolved_at DESC",
            &[&persons],
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some((
                r.get(0),
                Override {
                    appeal: r.get(1),
                    colour: r.get::<_, Option<String>>(2)?.parse().ok()?,
                    until: r.get::<_, Option<DateTime<Utc>>>(3)?,
                    resolution: r.get::<_, Option<String>>(4).unwrap_or_default(),
                },
            ))
        })
        .collect())
}

/// Evaluates a loaded chunk (CPU only).
fn evaluate_all(
    loaded: &[Loaded],
    snapshot: &Snapshot,
    overrides: &HashMap<Uuid, Override>,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<Computed>, u64)> {
    let mut evaluator = Evaluator::default();
    let mut out = Vec::with_capacity(loaded.len());
    for l in loaded {
        let subject = &l.subject;
        let set = snapshot.book.for_home(&subject.home_region)?;
        let facts = document(&l.facts, &subject.home_region, now, &snapshot.risk);
        let outcome = evaluator.evaluate(&set, &facts);
        let c = computed(
            subject.person_id,
            outcome,
            &set.label,
            &facts,
            overrides.get(&subject.person_id),
            now,
        );
        out.push(c);
    }
    Ok((out, evaluator.evaluations))
}

/// The status from an outcome, with an override applied. Time alone changes colours at midnight (every
/// `days_ago` moves on), so everything is rechecked then, or when an override ends if that is sooner.
fn computed(
    person_id: Uuid,
    outcome: rules::Outcome,
    label: &str,
    facts: &serde_json::Value,
    over: Option<&Override>,
    now: DateTime<Utc>,
) -> Computed {
    let negative_test_at = facts["nat"]["negative"]["time"]
        .as_str()
        .and_then(|t| t.parse().ok());
    let mut c = Computed {
        person_id,
        colour: outcome.colour,
        variant: outcome.variant.as_str(),
        reasons: outcome.reasons,
        requirements: outcome.requirements,
        valid_until: outcome.valid_until.map(start_of),
        rule_set: label.to_owned(),
        negative_test_at,
        override_appeal: None,
        recheck_at: next_midnight(now),
    };
    if let Some(o) = over {
        c.reasons.insert(
            0,
            Reason {
                rule: "appeal-override".into(),
                colour: o.colour,
                zh: format!(
                    "申诉核定为{}，至 {}：{}",
                    o.colour.zh_code(),
                    o.until.format("%Y-%m-%d %H:%M UTC"),
                    o.resolution
                ),
                en: format!(
                    "set to {} on appeal until {}: {}",
                    o.colour,
                    o.until.format("%Y-%m-%d %H:%M UTC"),
                    o.resolution
                ),
            },
        );
        c.colour = o.colour;
        c.valid_until = Some(o.until);
        c.rule_set = format!("appeal:{}", o.appeal);
        c.override_appeal = Some(o.appeal);
        c.recheck_at = c.recheck_at.min(o.until);
    }
    c
}

/// The latest version in force of every region's rule set.
pub async fn load_book(client: &impl GenericClient) -> anyhow::Result<RuleBook> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (region) region, version, document FROM rule_sets
             WHERE effective_from <= now() ORDER BY region, version DESC",
            &[],
        )
        .await?;
    let mut sets = HashMap::new();
    for r in rows {
        let region: String = r.get(0);
        let doc: RuleSetDoc = serde_json::from_value(r.get(2))?;
        sets.insert(
            region,
            Active {
                version: r.get(1),
                doc,
            },
        );
    }
    Ok(RuleBook::new(sets))
}

pub async fn load_risk(client: &impl GenericClient) -> anyhow::Result<RiskMap> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (region) region, level FROM region_risk WHERE effective_from <= now()
             ORDER BY region, effective_from DESC, id DESC",
            &[],
        )
        .await?;
    let levels: Vec<(String, RiskLevel)> = rows
        .into_iter()
        .filter_map(|r| {
            Some((
                r.get::<_, String>(0),
                RiskLevel::parse(r.get::<_, &str>(1))?,
            ))
        })
        .collect();
    Ok(RiskMap::new(levels.iter().map(|(r, l)| (r.as_str(), *l))))
}
