//! Status documents written again after Redis lost them. Rendering and verification read a person's status from
//! their document in Redis; scoring writes it after each change. A Redis that comes back empty has none, and ID-card
//! checks then deny everyone with "no status" until their next change (seen under `make chaos`, redis-empty). So
//! scoring notes which Redis holds its documents (its run ids, new at each start) and, when that changes, writes
//! every status from PostgreSQL again, a page at a time. A write never replaces a newer version, so racing a
//! recolouring is harmless, and so is a second replica doing the same.

use std::time::Duration;

use deadpool_postgres::Pool;
use hc_platform::store::Store;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::status;

/// How often scoring asks which Redis holds the documents.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The key recording which Redis (its run ids) holds every document.
const MARKER: &str = "status:documents-written-for";
/// Statuses read and written per round trip.
const PAGE: i64 = 2_000;

pub async fn run(db: Pool, store: Store, stop: CancellationToken) {
    loop {
        if let Err(err) = refill_if_redis_restarted(&db, &store).await {
            tracing::warn!(error = %err, "checking the status documents after a Redis restart failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

/// Writes every status document again when the Redis is one they were not yet written to; returns how many.
pub async fn refill_if_redis_restarted(db: &Pool, store: &Store) -> anyhow::Result<u64> {
    let Some((started, _)) = store.unrecorded_start(MARKER).await? else {
        return Ok(0);
    };
    let (mut after, mut written) = (Uuid::nil(), 0u64);
    loop {
        let page = status::read_page(&db.get().await?, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.person_id;
        status::publish(store, &page).await?;
        written += page.len() as u64;
    }
    // Recorded once every document is written: a scoring stopped half-way starts over, which is harmless.
    store.record_start(MARKER, &started).await?;
    metrics::counter!("scoring_status_documents_refilled_total").increment(written);
    if written > 0 {
        tracing::warn!(
            written,
            "Redis restarted: every status document is written again"
        );
    }
    Ok(written)
}
