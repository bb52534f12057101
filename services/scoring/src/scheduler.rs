//! What time alone changes: statuses whose recheck time has come (every `days_ago` moves on at midnight, an
//! override ends), and rule sets or risk levels whose `effective_from` has come. One replica at a time runs it,
//! under a PostgreSQL advisory lock.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::recolour::{Recolourer, Summary, regions};

/// The advisory lock key of the scheduler ("scoring" in ASCII).
const LOCK: i64 = 0x73636f72696e67;
/// Statuses rechecked per round.
const RECHECK_BATCH: i64 = 50_000;
/// The people whose status is due for a recheck, the earliest first (read through `status_recheck_idx`).
pub const DUE_STATUSES: &str = "SELECT s.id_index FROM status st JOIN subjects s USING (person_id)
     WHERE st.recheck_at <= now() ORDER BY st.recheck_at LIMIT $1";

pub async fn run(recolourer: Arc<Recolourer>, interval: Duration, cancel: CancellationToken) {
    let mut digests_checked = false;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        // Once per start: digests that fell out of date outside the event handlers (the migration that added
        // them; a crash between storing facts and recolouring) are rebuilt, so bulk recolourings read digests.
        // Safe on several replicas at once: each write checks the facts' version.
        if !digests_checked {
            match crate::loader::refresh_digests(
                &recolourer.db,
                recolourer.since(chrono::Utc::now()),
                10_000,
            )
            .await
            {
                Ok(n) => {
                    digests_checked = true;
                    if n > 0 {
                        tracing::info!(people = n, "fact digests rebuilt");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "rebuilding fact digests failed"),
            }
        }
        match tick(&recolourer).await {
            Ok(s) if s.evaluated > 0 => {
                tracing::info!(
                    evaluated = s.evaluated,
                    changed = s.changed,
                    "scheduled recheck"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "scheduler round failed"),
        }
    }
}

/// One round: due rule sets and risk levels first, then due statuses.
pub async fn tick(recolourer: &Recolourer) -> anyhow::Result<Summary> {
    let lock = recolourer.db.get().await?;
    let held: bool = lock
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK])
        .await?
        .get(0);
    if !held {
        return Ok(Summary::default());
    }
    let result = async {
        // The record of handled events needs to outlast only the publishers' outbox rows (an hour).
        recolourer
            .db
            .get()
            .await?
            .execute(
                "DELETE FROM handled_events WHERE handled_at < now() - interval '2 hours'",
                &[],
            )
            .await?;
        let mut total = apply_due_rules(recolourer).await?;
        total += apply_due_risks(recolourer).await?;
        loop {
            let client = recolourer.db.get().await?;
            let rows = client.query(DUE_STATUSES, &[&RECHECK_BATCH]).await?;
            drop(client);
            if rows.is_empty() {
                break;
            }
            let n = rows.len();
            total += recolourer
                .recolour(rows.into_iter().map(|r| r.get(0)).collect())
                .await?;
            if (n as i64) < RECHECK_BATCH {
                break;
            }
        }
        anyhow::Ok(total)
    }
    .await;
    lock.execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await?;
    result
}

/// Rule-set versions in force but not yet applied: recolour the people they govern, then mark them.
pub async fn apply_due_rules(recolourer: &Recolourer) -> anyhow::Result<Summary> {
    let client = recolourer.db.get().await?;
    let due = client
        .query(
            "SELECT id, region FROM rule_sets WHERE activated_at IS NULL AND effective_from <= now() ORDER BY id",
            &[],
        )
        .await?;
    drop(client);
    let mut total = Summary::default();
    if due.is_empty() {
        return Ok(total);
    }
    recolourer.invalidate();
    for row in due {
        let (id, region): (i64, String) = (row.get(0), row.get(1));
        let people = regions::population(&recolourer.db.get().await?, &region).await?;
        total += recolourer.recolour(people).await?;
        recolourer
            .db
            .get()
            .await?
            .execute(
                "UPDATE rule_sets SET activated_at = now() WHERE id = $1",
                &[&id],
            )
            .await?;
        tracing::info!(region = %region, "rule set applied");
    }
    Ok(total)
}

/// Risk changes in effect but not yet applied: recolour everyone seen there (under the levels in effect now), then
/// mark them.
pub async fn apply_due_risks(recolourer: &Recolourer) -> anyhow::Result<Summary> {
    let client = recolourer.db.get().await?;
    let due = client
        .query(
            "SELECT id, region FROM region_risk WHERE recoloured_at IS NULL AND effective_from <= now() ORDER BY id",
            &[],
        )
        .await?;
    drop(client);
    let mut total = Summary::default();
    if due.is_empty() {
        return Ok(total);
    }
    recolourer.invalidate();
    let mut regions: Vec<String> = due.iter().map(|r| r.get(1)).collect();
    regions.sort();
    regions.dedup();
    for region in &regions {
        let since = recolourer.since(Utc::now());
        let people = regions::visitors(&recolourer.db.get().await?, region, since).await?;
        total += recolourer.recolour(people).await?;
        tracing::info!(region = %region, "risk level applied");
    }
    let ids: Vec<i64> = due.iter().map(|r| r.get(0)).collect();
    recolourer
        .db
        .get()
        .await?
        .execute(
            "UPDATE region_risk SET recoloured_at = now() WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    Ok(total)
}
