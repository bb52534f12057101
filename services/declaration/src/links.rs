//! Links a blind index to the registered person, from identity's `person.registered` events, so facts that
//! arrived before registration count from then on. Idempotent: a redelivered event changes nothing.

use deadpool_postgres::Pool;
use hc_platform::events::PersonRegistered;
use hc_platform::streams::Delivered;

pub async fn link_people(pool: Pool, events: Vec<Delivered>) -> anyhow::Result<()> {
    let mut people = Vec::with_capacity(events.len());
    let mut indexes = Vec::with_capacity(events.len());
    for event in &events {
        let e = PersonRegistered::decode(event)?;
        people.push(e.person_id);
        indexes.push(e.id_number_index);
    }
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO person_links (id_index, person_id)
             SELECT * FROM unnest($1::bytea[], $2::uuid[]) ON CONFLICT DO NOTHING",
            &[&indexes, &people],
        )
        .await?;
    tracing::debug!(people = people.len(), "people linked");
    Ok(())
}
