use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::PersonId;
use uuid::Uuid;

pub struct NewPerson<'a> {
    pub id: PersonId,
    pub id_number_index: &'a [u8],
    pub phone_index: &'a [u8],
    pub name_ct: &'a [u8],
    pub id_number_ct: &'a [u8],
    pub phone_ct: &'a [u8],
    pub data_key_id: &'a str,
    pub home_region: &'a str,
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

/// Inserts the person unless the ID number is registered already; `None` then. A phone registered to
/// someone else is a unique violation on `persons_phone_index_key`.
pub async fn insert(
    client: &impl GenericClient,
    p: &NewPerson<'_>,
) -> Result<Option<PersonId>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "INSERT INTO persons (id, id_number_index, phone_index, name_ct, id_number_ct, phone_ct, data_key_id, home_region)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id_number_index) DO NOTHING
             RETURNING id",
            &[&p.id.0, &p.id_number_index, &p.phone_index, &p.name_ct, &p.id_number_ct, &p.phone_ct, &p.data_key_id, &p.home_region],
        )
        .await?;
    Ok(row.map(|r| PersonId(r.get(0))))
}

pub async fn id_by_id_number_index(
    client: &impl GenericClient,
    index: &[u8],
) -> Result<Option<PersonId>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT id FROM persons WHERE id_number_index = $1",
            &[&index],
        )
        .await?;
    Ok(row.map(|r| PersonId(r.get(0))))
}

pub async fn id_by_phone_index(
    client: &impl GenericClient,
    index: &[u8],
) -> Result<Option<PersonId>, tokio_postgres::Error> {
    let row = client
        .query_opt("SELECT id FROM persons WHERE phone_index = $1", &[&index])
        .await?;
    Ok(row.map(|r| PersonId(r.get(0))))
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
