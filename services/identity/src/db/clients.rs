use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub client_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub region: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The view's columns, then the secret's hash (only `by_id` returns it).
const COLUMNS: &str = "id, name, scopes, region, created_at, revoked_at, secret_hash";

fn client_view(row: &tokio_postgres::Row) -> ClientView {
    ClientView {
        client_id: row.get(0),
        name: row.get(1),
        scopes: row.get(2),
        region: row.get(3),
        created_at: row.get(4),
        revoked_at: row.get(5),
    }
}

pub struct NewClient<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub secret_hash: &'a [u8],
    pub scopes: &'a [String],
    pub region: Option<&'a str>,
    /// The admin client that creates it: its idempotency keys are its own.
    pub created_by: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// Inserts the client, or returns the one created earlier with the same idempotency key (`false`).
pub async fn insert(
    client: &impl GenericClient,
    c: &NewClient<'_>,
) -> Result<(ClientView, bool), tokio_postgres::Error> {
    let inserted = client
        .query_opt(
            &format!(
                "INSERT INTO api_clients (id, name, secret_hash, scopes, region, created_by, idempotency_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (created_by, idempotency_key) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                &c.id,
                &c.name,
                &c.secret_hash,
                &c.scopes,
                &c.region,
                &c.created_by,
                &c.idempotency_key,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok((client_view(&row), true));
    }
    let row = client
        .query_one(
            &format!(
                "SELECT {COLUMNS} FROM api_clients WHERE created_by = $1 AND idempotency_key = $2"
            ),
            &[&c.created_by, &c.idempotency_key],
        )
        .await?;
    Ok((client_view(&row), false))
}

/// The client and its secret's hash.
pub async fn by_id(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<(ClientView, Vec<u8>)>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM api_clients WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.map(|r| (client_view(&r), r.get(6))))
}

/// One page in id order, starting after `after`; only clients limited to a region within `span` when given.
pub async fn page(
    client: &impl GenericClient,
    span: Option<(String, String)>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ClientView>, tokio_postgres::Error> {
    let (first, last) = span.unzip();
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM api_clients
                 WHERE ($1::uuid IS NULL OR id > $1) AND ($3::text IS NULL OR region BETWEEN $3 AND $4)
                 ORDER BY id LIMIT $2"
            ),
            &[&after, &limit, &first, &last],
        )
        .await?;
    Ok(rows.iter().map(client_view).collect())
}

/// Marks the client revoked; `false` when there is no such client.
pub async fn revoke(client: &impl GenericClient, id: Uuid) -> Result<bool, tokio_postgres::Error> {
    let n = client
        .execute(
            "UPDATE api_clients SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(n == 1)
}
