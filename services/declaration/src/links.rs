//! Links a blind index to the registered person, from identity's `person.registered` events, so facts that
//! arrived before registration count from then on, and the national index by which other regions' facts about the
//! person arrive (announced to the national hub where this platform takes part). Idempotent: a redelivered event
//! changes nothing but the announcement, which the hub upserts.

use deadpool_postgres::Pool;
use hc_platform::events::PersonRegistered;
use hc_platform::streams::Delivered;

pub async fn link_people(
    pool: Pool,
    events: Vec<Delivered>,
    exchanging: bool,
) -> anyhow::Result<()> {
    let mut people = Vec::with_capacity(events.len());
    let mut indexes = Vec::with_capacity(events.len());
    let mut national = Vec::with_capacity(events.len());
    for event in &events {
        let e = PersonRegistered::decode(event)?;
        people.push(e.person_id);
        indexes.push(e.id_number_index);
        national.push(e.national_index);
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO person_links (id_index, person_id, national_index)
         SELECT * FROM unnest($1::bytea[], $2::uuid[], $3::bytea[])
         ON CONFLICT (id_index) DO UPDATE SET national_index = coalesce(excluded.national_index, person_links.national_index)",
        &[&indexes, &people, &national],
    )
    .await?;
    let residents: Vec<Vec<u8>> = national.into_iter().flatten().collect();
    if exchanging && !residents.is_empty() {
        crate::exchange::queue_residents(&tx, &residents).await?;
    }
    tx.commit().await?;
    tracing::debug!(people = people.len(), "people linked");
    Ok(())
}
