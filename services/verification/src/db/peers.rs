//! `trust_peers`: other platforms' trust lists, as imported.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// A peer's signed trust list to store.
pub struct PeerList<'a> {
    pub region: &'a str,
    pub signed: &'a str,
    pub sequence: i64,
    pub expires_at: DateTime<Utc>,
    pub colour_map: serde_json::Value,
    pub imported_by: &'a str,
}

/// Stores the list unless the one held is newer; `false` when it is.
pub async fn store(
    client: &impl GenericClient,
    list: &PeerList<'_>,
) -> Result<bool, tokio_postgres::Error> {
    let updated = client
        .execute(
            "INSERT INTO trust_peers (region, signed, sequence, expires_at, colour_map, imported_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (region) DO UPDATE SET signed = excluded.signed, sequence = excluded.sequence,
                 expires_at = excluded.expires_at, colour_map = excluded.colour_map,
                 imported_by = excluded.imported_by, imported_at = now()
             WHERE trust_peers.sequence <= excluded.sequence",
            &[&list.region, &list.signed, &list.sequence, &list.expires_at, &list.colour_map, &list.imported_by],
        )
        .await?;
    Ok(updated > 0)
}
