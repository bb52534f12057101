use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::PersonId;
use uuid::Uuid;

pub struct RefreshRow {
    pub family_id: Uuid,
    pub person_id: PersonId,
    pub expires_at: DateTime<Utc>,
    pub rotated: bool,
    pub revoked: bool,
}

pub async fn insert(
    client: &impl GenericClient,
    token_hash: &[u8],
    family_id: Uuid,
    person: PersonId,
    expires_at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, person_id, expires_at) VALUES ($1, $2, $3, $4)",
            &[&token_hash, &family_id, &person.0, &expires_at],
        )
        .await?;
    Ok(())
}

/// A new token for the person a phone signs in, in one statement that holds the person's row (`FOR SHARE`) until it
/// is stored: a move to another phone, which updates the row, waits for the sign-in (and revokes the new token), or
/// makes it find nobody (`None`). One round trip to PostgreSQL, the statement prepared once per connection: a
/// transaction around a lock and an insert took six, each its own wait on a slow or distant network.
pub async fn insert_for_phone(
    client: &impl GenericClient,
    phone_index: &[u8],
    token_hash: &[u8],
    family_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<Option<PersonId>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "WITH person AS (SELECT id FROM persons WHERE phone_index = $1 FOR SHARE) \
             INSERT INTO refresh_tokens (token_hash, family_id, person_id, expires_at) \
             SELECT $2, $3, id, $4 FROM person RETURNING person_id",
        )
        .await?;
    let row = client
        .query_opt(
            &statement,
            &[&phone_index, &token_hash, &family_id, &expires_at],
        )
        .await?;
    Ok(row.map(|r| PersonId(r.get(0))))
}

/// Whose token it is, without locking it (to take the person's lock first: see `routes::auth`).
pub async fn person_of(
    client: &impl GenericClient,
    token_hash: &[u8],
) -> Result<Option<PersonId>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT person_id FROM refresh_tokens WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
    Ok(row.map(|r| PersonId(r.get(0))))
}

/// Locks the token's row for the rest of the transaction.
pub async fn lock(
    client: &impl GenericClient,
    token_hash: &[u8],
) -> Result<Option<RefreshRow>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT family_id, person_id, expires_at, rotated_at IS NOT NULL, revoked_at IS NOT NULL
             FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
            &[&token_hash],
        )
        .await?;
    Ok(row.map(|r| RefreshRow {
        family_id: r.get(0),
        person_id: PersonId(r.get(1)),
        expires_at: r.get(2),
        rotated: r.get(3),
        revoked: r.get(4),
    }))
}

pub async fn mark_rotated(
    client: &impl GenericClient,
    token_hash: &[u8],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
    Ok(())
}

pub async fn revoke_family(
    client: &impl GenericClient,
    family_id: Uuid,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", &[&family_id])
        .await
}

/// Revokes every refresh token of the person (it moved to another phone).
pub async fn revoke_person(
    client: &impl GenericClient,
    person: PersonId,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE person_id = $1 AND revoked_at IS NULL",
            &[&person.0],
        )
        .await
}
