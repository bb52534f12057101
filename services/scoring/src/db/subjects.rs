//! `subjects`: the registered people as the projection knows them (blind index, person, home region).

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::projection::Index;

/// A person's blind index, `None` while their registration event is on its way.
pub async fn index_of(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<Option<Index>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT id_index FROM subjects WHERE person_id = $1",
            &[&person],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The person behind a blind index, and their home region.
pub async fn by_index(
    client: &impl GenericClient,
    index: &[u8],
) -> Result<Option<(Uuid, String)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT person_id, home_region FROM subjects WHERE id_index = $1",
            &[&index],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// A person's home region.
pub async fn home_region(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT home_region FROM subjects WHERE person_id = $1",
            &[&person],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Up to `limit` people living in the code range, chosen at random (a dry run's sample).
pub async fn sample_living_in(
    client: &impl GenericClient,
    (lo, hi): (&str, &str),
    limit: i64,
) -> Result<Vec<Index>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT id_index FROM subjects WHERE home_region BETWEEN $1 AND $2 ORDER BY random() LIMIT $3",
            &[&lo, &hi, &limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
