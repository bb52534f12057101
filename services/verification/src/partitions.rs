//! Scan records are partitioned by day (China time): a partition per day is created ahead of time, and a day's
//! partition is dropped whole once it is older than `verification.retention_days` (no row-by-row delete, no bloat).

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Pool};
use hc_domain::china_time;
use tokio_util::sync::CancellationToken;

fn name(day: NaiveDate) -> String {
    format!("scan_events_{}", day.format("%Y%m%d"))
}

/// Creates the partition of `day` unless it exists (another replica may be creating it at the same moment).
pub async fn ensure_day(client: &impl GenericClient, day: NaiveDate) -> anyhow::Result<()> {
    let from = china_time::start_of(day);
    let to = china_time::start_of(day.succ_opt().unwrap_or(NaiveDate::MAX));
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF scan_events FOR VALUES FROM ('{}') TO ('{}')",
        name(day),
        from.to_rfc3339(),
        to.to_rfc3339()
    );
    match client.batch_execute(&sql).await {
        Ok(()) => Ok(()),
        Err(err)
            if err.code().is_some_and(|c| {
                *c == tokio_postgres::error::SqlState::DUPLICATE_TABLE
                    || *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            }) =>
        {
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

/// Yesterday to `ahead` days from today exist afterwards; partitions before today minus `retention_days` are
/// dropped, and check-in keys past their day forgotten. Returns the days dropped.
pub async fn maintain(
    client: &impl GenericClient,
    ahead: i64,
    retention_days: i64,
) -> anyhow::Result<Vec<NaiveDate>> {
    let today = china_time::day_of(Utc::now());
    for offset in -1..=ahead {
        ensure_day(client, today + chrono::Duration::days(offset)).await?;
    }
    let oldest_kept = today - chrono::Duration::days(retention_days);
    let rows = client
        .query(
            "SELECT c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = 'scan_events' AND p.relnamespace = current_schema()::regnamespace",
            &[],
        )
        .await?;
    let mut dropped = Vec::new();
    for row in rows {
        let relname: String = row.get(0);
        let Some(day) = relname
            .strip_prefix("scan_events_")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        if day < oldest_kept {
            client
                .batch_execute(&format!("DROP TABLE IF EXISTS {relname}"))
                .await?;
            tracing::info!(%day, "scan records past their retention dropped");
            dropped.push(day);
        }
    }
    // Check-in keys are remembered for a day; the same round forgets older ones.
    let forgotten = crate::db::checkin_keys::sweep(client).await?;
    if forgotten > 0 {
        tracing::debug!(forgotten, "check-in keys older than a day forgotten");
    }
    Ok(dropped)
}

pub async fn run(
    pool: Pool,
    ahead: i64,
    retention_days: i64,
    every: Duration,
    cancel: CancellationToken,
) {
    // The first round is start-up's own, done before the service answered.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let outcome = async { maintain(&pool.get().await?, ahead, retention_days).await }.await;
        if let Err(err) = outcome {
            tracing::warn!(error = %err, "maintaining scan partitions failed; trying again next round");
        }
    }
}
