use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::PersonId;
use uuid::Uuid;

/// A person's personal fields, each sealed under `data_key_id` and bound to the person's id.
pub struct SealedPerson {
    pub id: PersonId,
    pub phone_index: Vec<u8>,
    pub name_ct: Vec<u8>,
    pub id_number_ct: Vec<u8>,
    pub phone_ct: Vec<u8>,
    pub data_key_id: String,
}

pub struct StoredPerson {
    pub id: PersonId,
    pub name_ct: Vec<u8>,
    pub id_number_ct: Vec<u8>,
    pub phone_ct: Vec<u8>,
    pub data_key_id: String,
    pub home_region: String,
    pub created_at: DateTime<Utc>,
}

/// Inserts the person; `None` if a concurrent registration of the ID number came first. A phone registered to
/// someone else is a unique violation on `persons_phone_index_key`.
pub async fn insert(
    client: &impl GenericClient,
    p: &SealedPerson,
    id_number_index: &[u8],
    home_region: &str,
) -> Result<Option<PersonId>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "INSERT INTO persons (id, id_number_index, phone_index, name_ct, id_number_ct, phone_ct, data_key_id, home_region)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id_number_index) DO NOTHING
             RETURNING id",
            &[&p.id.0, &id_number_index, &p.phone_index, &p.name_ct, &p.id_number_ct, &p.phone_ct, &p.data_key_id, &home_region],
        )
        .await?;
    Ok(row.map(|r| PersonId(r.get(0))))
}

/// The person holding an ID number and the phone it is bound to.
pub struct Binding {
    pub id: PersonId,
    pub phone_index: Vec<u8>,
}

/// The person registered under an ID number, locked until the transaction ends.
pub async fn lock_by_id_number_index(
    client: &impl GenericClient,
    index: &[u8],
) -> Result<Option<Binding>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT id, phone_index FROM persons WHERE id_number_index = $1 FOR UPDATE",
            &[&index],
        )
        .await?;
    Ok(row.map(|r| Binding {
        id: PersonId(r.get(0)),
        phone_index: r.get(1),
    }))
}

/// Replaces the person's sealed fields and phone (a re-binding to a new phone).
pub async fn reseal(
    client: &impl GenericClient,
    p: &SealedPerson,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE persons SET phone_index = $2, name_ct = $3, id_number_ct = $4, phone_ct = $5, data_key_id = $6
             WHERE id = $1",
            &[&p.id.0, &p.phone_index, &p.name_ct, &p.id_number_ct, &p.phone_ct, &p.data_key_id],
        )
        .await?;
    Ok(())
}

/// Holds the person's row (`FOR SHARE`) until the transaction ends, as a sign-in does
/// (`refresh_tokens::insert_for_phone`).
pub async fn share(
    client: &impl GenericClient,
    person: PersonId,
) -> Result<(), tokio_postgres::Error> {
    client
        .query_opt(
            "SELECT 1 FROM persons WHERE id = $1 FOR SHARE",
            &[&person.0],
        )
        .await
        .map(drop)
}

pub async fn id_by_phone_index(
    client: &impl GenericClient,
    index: &[u8],
) -> Result<Option<PersonId>, tokio_postgres::Error> {
    // Prepared once per connection: every sign-in code asks, and each preparation is a round trip of its own.
    let statement = client
        .prepare_cached("SELECT id FROM persons WHERE phone_index = $1")
        .await?;
    let row = client.query_opt(&statement, &[&index]).await?;
    Ok(row.map(|r| PersonId(r.get(0))))
}

/// One stored person with the index of their ID number, to check the index key against (`index_key_check`).
pub async fn any_with_index(
    client: &impl GenericClient,
) -> Result<Option<(StoredPerson, Vec<u8>)>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS}, id_number_index FROM persons LIMIT 1"),
            &[],
        )
        .await?;
    Ok(row.map(|r| (stored(&r), r.get(7))))
}

const COLUMNS: &str = "id, name_ct, id_number_ct, phone_ct, data_key_id, home_region, created_at";

fn stored(row: &tokio_postgres::Row) -> StoredPerson {
    StoredPerson {
        id: PersonId(row.get::<_, Uuid>(0)),
        name_ct: row.get(1),
        id_number_ct: row.get(2),
        phone_ct: row.get(3),
        data_key_id: row.get(4),
        home_region: row.get(5),
        created_at: row.get(6),
    }
}

pub async fn by_id(
    client: &impl GenericClient,
    id: PersonId,
) -> Result<Option<StoredPerson>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM persons WHERE id = $1"),
            &[&id.0],
        )
        .await?;
    Ok(row.as_ref().map(stored))
}

pub async fn by_id_number_index(
    client: &impl GenericClient,
    index: &[u8],
) -> Result<Option<StoredPerson>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM persons WHERE id_number_index = $1"),
            &[&index],
        )
        .await?;
    Ok(row.as_ref().map(stored))
}
