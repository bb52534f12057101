//! `venues` and `devices`: venues, their policies, and the devices bound to them (reads of one venue are in
//! `crate::venues`, behind the cache).

use deadpool_postgres::GenericClient;

/// The client ids of the devices bound to a venue, in order.
pub async fn devices(
    client: &impl GenericClient,
    venue: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT client_id FROM devices WHERE venue_id = $1 ORDER BY client_id",
            &[&venue],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// A venue as stored by an official client.
pub struct StoredVenue<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub region: &'a str,
    pub policy: serde_json::Value,
    pub updated_by: &'a str,
}

/// Those of `devices` bound to a venue other than `venue`, with that venue's region; their rows stay locked until the
/// transaction ends, so that no concurrent request moves them between the check and the store.
pub async fn bound_elsewhere(
    client: &impl GenericClient,
    devices: &[String],
    venue: &str,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT d.client_id, v.region FROM devices d JOIN venues v ON v.id = d.venue_id
             WHERE d.client_id = ANY($1) AND d.venue_id <> $2 FOR UPDATE OF d",
            &[&devices, &venue],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Creates or replaces the venue, and binds exactly `devices` to it (a device bound elsewhere moves here). Run in a
/// transaction.
pub async fn store(
    client: &impl GenericClient,
    venue: &StoredVenue<'_>,
    devices: &[String],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO venues (id, name, region, policy, updated_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, region = excluded.region, policy = excluded.policy,
                 updated_by = excluded.updated_by, updated_at = now()",
            &[&venue.id, &venue.name, &venue.region, &venue.policy, &venue.updated_by],
        )
        .await?;
    client
        .execute("DELETE FROM devices WHERE venue_id = $1", &[&venue.id])
        .await?;
    client
        .execute(
            "INSERT INTO devices (client_id, venue_id) SELECT d, $2 FROM unnest($1::text[]) d
             ON CONFLICT (client_id) DO UPDATE SET venue_id = excluded.venue_id",
            &[&devices, &venue.id],
        )
        .await?;
    Ok(())
}
