//! `persons`: who is registered, by blind index, as `person.registered` events brought them.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// The blind index of a registered person, `None` while their registration event is still on its way.
pub async fn index_of(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT id_index FROM persons WHERE person_id = $1",
            &[&person],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The person registered with an ID number's blind index, and their masked name (if the event carried one).
pub async fn by_index(
    client: &impl GenericClient,
    index: &[u8],
) -> Result<Option<(Uuid, Option<String>)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT person_id, masked_name FROM persons WHERE id_index = $1",
            &[&index],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
}
