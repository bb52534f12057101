//! Links a blind index to the registered person, from identity's `person.registered` events, so facts that
//! arrived before registration count from then on. Idempotent: a redelivered event changes nothing.

use deadpool_postgres::Pool;
use hc_platform::privacy::from_hex;
use hc_platform::streams::{Delivered, Malformed};
use uuid::Uuid;

pub async fn link_person(pool: Pool, event: Delivered) -> anyhow::Result<()> {
    let person: Uuid = event.payload["person_id"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| Malformed(format!("person_id: {e}")))?;
    let index = from_hex(
        event.payload["id_number_index"]
            .as_str()
            .unwrap_or_default(),
    )
    .filter(|i| i.len() == 32)
    .ok_or_else(|| anyhow::anyhow!("id_number_index must be 64 hex digits"))?;
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO person_links (id_index, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&index, &person],
        )
        .await?;
    tracing::debug!(person = %person, event = %event.event_id, "person linked");
    Ok(())
}
