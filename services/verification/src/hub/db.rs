//! `region_lists`: each region's last uploaded trust list.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// Stores a region's list unless the one held is newer; `false` when it is.
pub async fn store(
    client: &impl GenericClient,
    region: &str,
    signed: &str,
    sequence: i64,
    expires_at: DateTime<Utc>,
) -> Result<bool, tokio_postgres::Error> {
    let updated = client
        .execute(
            "INSERT INTO region_lists (region, signed, sequence, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (region) DO UPDATE SET signed = excluded.signed, sequence = excluded.sequence,
                 expires_at = excluded.expires_at, uploaded_at = now()
             WHERE region_lists.sequence <= excluded.sequence",
            &[&region, &signed, &sequence, &expires_at],
        )
        .await?;
    Ok(updated > 0)
}

/// Every region's list that has not expired: (region, signed).
pub async fn current(
    client: &impl GenericClient,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT region, signed FROM region_lists WHERE expires_at > now() ORDER BY region",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}
