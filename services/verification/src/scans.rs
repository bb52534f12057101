//! The scan log: every scan and check-in is appended to an in-process queue and group-committed to PostgreSQL (one
//! multi-row insert per batch, a batch whenever a writer is free, holding what arrived meanwhile), and the request
//! is answered only after its batch committed. Nothing acknowledged is lost; a crash loses only records nobody was
//! told about. Check-ins also become visit facts for scoring, through the outbox in the same transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use hc_platform::events::{FactsImported, ImportedFacts, VisitFact};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::partitions;
use crate::settings::VerificationSettings;

/// One record of who was where, and what the gate said.
#[derive(Debug, Clone, Default)]
pub struct ScanRecord {
    pub at: DateTime<Utc>,
    pub id: Uuid,
    /// `scan`, `id_card` or `checkin`.
    pub kind: &'static str,
    pub venue_id: String,
    pub client_id: Option<String>,
    pub person_id: Option<Uuid>,
    pub issuer: Option<String>,
    pub colour: Option<&'static str>,
    pub decision: &'static str,
    pub reason: Option<&'static str>,
    /// For check-ins: the person's blind index and the venue's region, announced as a visit fact.
    pub visit: Option<(Vec<u8>, String)>,
    /// For check-ins: the client's Idempotency-Key, claimed in the same transaction (with `person_id`).
    pub idempotency_key: Option<String>,
}

impl ScanRecord {
    /// A record of `kind` at the venue, denied until judged otherwise.
    pub fn new(kind: &'static str, venue_id: &str, at: DateTime<Utc>) -> Self {
        ScanRecord {
            at,
            id: Uuid::new_v4(),
            kind,
            venue_id: venue_id.to_owned(),
            decision: "deny",
            ..Self::default()
        }
    }
}

/// What became of a record once its batch committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Durable now.
    New,
    /// Not stored: its person's Idempotency-Key names a check-in recorded before (`db::checkin_keys::first`).
    Repeat,
}

type Ack = oneshot::Sender<Result<Recorded, Arc<anyhow::Error>>>;

#[derive(Clone)]
pub struct ScanLog {
    queue: mpsc::Sender<(ScanRecord, Ack)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the scan log is shut down")]
    Closed,
    #[error("committing the batch failed: {0}")]
    Commit(Arc<anyhow::Error>),
}

impl ScanLog {
    /// Starts the committer; it drains what is queued when `cancel` fires, and its task ends once it has.
    pub fn start(
        pool: Pool,
        s: &VerificationSettings,
        cancel: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(s.commit_queue);
        let committer = tokio::spawn(commit_loop(
            rx,
            pool,
            s.commit_max_batch,
            Duration::from_millis(s.commit_max_wait_ms),
            s.commit_writers,
            cancel,
        ));
        (Self { queue: tx }, committer)
    }

    /// Returns once the record is durable in PostgreSQL, or known to repeat a check-in recorded before.
    pub async fn record(&self, record: ScanRecord) -> Result<Recorded, RecordError> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send((record, ack))
            .await
            .map_err(|_| RecordError::Closed)?;
        match done.await {
            Ok(Ok(recorded)) => Ok(recorded),
            Ok(Err(err)) => Err(RecordError::Commit(err)),
            Err(_) => Err(RecordError::Closed),
        }
    }
}

async fn commit_loop(
    mut rx: mpsc::Receiver<(ScanRecord, Ack)>,
    pool: Pool,
    max_batch: usize,
    max_wait: Duration,
    writers: usize,
    cancel: CancellationToken,
) {
    let free = Arc::new(Semaphore::new(writers));
    loop {
        // Wait for a free writer first: while every writer is busy, records pile up and the next batch is larger.
        let Ok(permit) = free.clone().acquire_owned().await else {
            return;
        };
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = cancel.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else {
            // Drained: wait for the batches still committing, so the loop ends only when every record is durable.
            drop(permit);
            let _ = free.acquire_many(writers as u32).await;
            return;
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + max_wait;
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(item)) => batch.push(item),
                        _ => break,
                    }
                }
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (records, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let outcome = commit(&pool, &records).await.map_err(Arc::new);
            if let Ok(repeats) = &outcome
                && !repeats.is_empty()
            {
                metrics::counter!("verification_checkin_repeats_total")
                    .increment(repeats.len() as u64);
            }
            metrics::histogram!("verification_commit_batch_size").record(records.len() as f64);
            metrics::histogram!("verification_commit_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            if let Err(err) = &outcome {
                tracing::error!(error = %err, records = records.len(), "a scan batch failed to commit");
            }
            for (n, ack) in acks.into_iter().enumerate() {
                let answer = match &outcome {
                    Ok(repeats) if repeats.contains(&n) => Ok(Recorded::Repeat),
                    Ok(_) => Ok(Recorded::New),
                    Err(err) => Err(err.clone()),
                };
                // A request that gave up waiting is no reason to stop answering the others.
                let _ = ack.send(answer);
            }
            drop(permit);
        });
    }
}

/// One transaction per batch; a missing day partition (a clock past the maintained range) is created and the
/// batch tried once more. Returns the positions of the check-ins not stored because their key was used before.
async fn commit(pool: &Pool, records: &[ScanRecord]) -> anyhow::Result<Vec<usize>> {
    let mut client = pool.get().await?;
    match insert(&mut client, records).await {
        Err(err) if is_missing_partition(&err) => {
            for day in records.iter().map(|r| hc_domain::china_time::day_of(r.at)) {
                partitions::ensure_day(&client, day).await?;
            }
            insert(&mut client, records).await
        }
        other => other,
    }
}

fn is_missing_partition(err: &anyhow::Error) -> bool {
    err.downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
        .is_some_and(|e| e.message().contains("no partition of relation"))
}

const INSERT: &str = "INSERT INTO scan_events (at, id, kind, venue_id, client_id, person_id, issuer, colour, decision, reason)
     SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[],
                          $7::text[], $8::text[], $9::text[], $10::text[])";

async fn insert(
    client: &mut deadpool_postgres::Object,
    batch: &[ScanRecord],
) -> anyhow::Result<Vec<usize>> {
    if batch
        .iter()
        .all(|r| r.visit.is_none() && r.idempotency_key.is_none())
    {
        // One statement is its own transaction: one round trip, durable when it returns (synchronous_commit on).
        insert_rows(&*client, &batch.iter().collect::<Vec<_>>()).await?;
        return Ok(Vec::new());
    }
    let tx = client.transaction().await?;
    let repeats = claim_keys(&tx, batch).await?;
    let records: Vec<&ScanRecord> = batch
        .iter()
        .enumerate()
        .filter(|(n, _)| !repeats.contains(n))
        .map(|(_, r)| r)
        .collect();
    if !records.is_empty() {
        insert_rows(&tx, &records).await?;
        announce_visits(&tx, &records).await?;
    }
    tx.commit().await?;
    Ok(repeats)
}

/// Claims the batch's Idempotency-Keys and returns the positions of the records that repeat a key: used by a check-in
/// recorded before, or earlier in this same batch.
async fn claim_keys(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &[ScanRecord],
) -> anyhow::Result<Vec<usize>> {
    let mut seen = std::collections::HashSet::new();
    let mut repeats = Vec::new();
    let mut claims = Vec::new();
    for (n, r) in batch.iter().enumerate() {
        let (Some(key), Some(person)) = (r.idempotency_key.as_deref(), r.person_id) else {
            continue;
        };
        if seen.insert((person, key)) {
            claims.push((
                n,
                crate::db::checkin_keys::Claim {
                    person,
                    key,
                    checkin: r.id,
                    venue: &r.venue_id,
                    at: r.at,
                },
            ));
        } else {
            repeats.push(n);
        }
    }
    if claims.is_empty() {
        return Ok(repeats);
    }
    let (positions, claims): (Vec<usize>, Vec<_>) = claims.into_iter().unzip();
    let won: std::collections::HashSet<Uuid> = crate::db::checkin_keys::claim(tx, &claims)
        .await?
        .into_iter()
        .collect();
    repeats.extend(
        positions
            .into_iter()
            .zip(&claims)
            .filter(|(_, c)| !won.contains(&c.checkin))
            .map(|(n, _)| n),
    );
    Ok(repeats)
}

/// Inserts the records with one multi-row statement, a column array each.
async fn insert_rows(
    client: &impl GenericClient,
    r: &[&ScanRecord],
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(INSERT).await?;
    client
        .execute(
            &statement,
            &[
                &r.iter().map(|r| r.at).collect::<Vec<_>>(),
                &r.iter().map(|r| r.id).collect::<Vec<_>>(),
                &r.iter().map(|r| r.kind).collect::<Vec<_>>(),
                &r.iter().map(|r| r.venue_id.as_str()).collect::<Vec<_>>(),
                &r.iter().map(|r| r.client_id.as_deref()).collect::<Vec<_>>(),
                &r.iter().map(|r| r.person_id).collect::<Vec<_>>(),
                &r.iter().map(|r| r.issuer.as_deref()).collect::<Vec<_>>(),
                &r.iter().map(|r| r.colour).collect::<Vec<_>>(),
                &r.iter().map(|r| r.decision).collect::<Vec<_>>(),
                &r.iter().map(|r| r.reason).collect::<Vec<_>>(),
            ],
        )
        .await
}

/// A check-in is a visit, announced as declaration announces imported ones, through the outbox in the same
/// transaction.
async fn announce_visits(
    tx: &deadpool_postgres::Transaction<'_>,
    records: &[&ScanRecord],
) -> anyhow::Result<()> {
    let visits: Vec<_> = records
        .iter()
        .filter_map(|r| r.visit.as_ref().map(|(index, region)| (r, index, region)))
        .collect();
    if !visits.is_empty() {
        let event = FactsImported {
            client_id: "verification".into(),
            batch_id: format!("checkins-{}", visits[0].0.id),
            through_row: None,
            correction: false,
            people: visits.iter().map(|(_, index, _)| index.to_vec()).collect(),
            facts: ImportedFacts::Visits(
                visits
                    .iter()
                    .map(|(r, _, region)| VisitFact {
                        region: region.to_string(),
                        first_seen: r.at,
                        last_seen: r.at,
                        source: "venue".into(),
                    })
                    .collect(),
            ),
        };
        hc_platform::outbox::enqueue(tx, FactsImported::STREAM, &event.encode()).await?;
    }
    Ok(())
}
