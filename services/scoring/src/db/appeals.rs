//! `appeals`: filed by citizens, resolved by officials; one open appeal per person at a time.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = AppealView)]
pub struct AppealView {
    pub id: Uuid,
    pub person_id: Uuid,
    pub reason: String,
    pub colour_at_filing: String,
    /// open, accepted or rejected.
    pub state: String,
    pub filed_at: DateTime<Utc>,
    pub resolution: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub override_colour: Option<String>,
    pub override_until: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, person_id, reason, colour_at_filing, state, filed_at, resolution, resolved_at, override_colour, override_until";

fn appeal(r: &tokio_postgres::Row) -> AppealView {
    AppealView {
        id: r.get(0),
        person_id: r.get(1),
        reason: r.get(2),
        colour_at_filing: r.get(3),
        state: r.get(4),
        filed_at: r.get(5),
        resolution: r.get(6),
        resolved_at: r.get(7),
        override_colour: r.get(8),
        override_until: r.get(9),
    }
}

/// Serialises filings of one person until the transaction ends.
pub async fn lock_person(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('appeal:' || $1::uuid::text))",
            &[&person],
        )
        .await?;
    Ok(())
}

/// The appeal the person filed with this idempotency key.
pub async fn by_key(
    client: &impl GenericClient,
    person: Uuid,
    key: &str,
) -> Result<Option<AppealView>, tokio_postgres::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM appeals WHERE person_id = $1 AND idempotency_key = $2");
    Ok(client
        .query_opt(&sql, &[&person, &key])
        .await?
        .as_ref()
        .map(appeal))
}

pub async fn has_open(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM appeals WHERE person_id = $1 AND state = 'open')",
            &[&person],
        )
        .await?
        .get(0))
}

/// The colour being appealed: the person's status now.
pub async fn colour_now(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT colour FROM status WHERE person_id = $1", &[&person])
        .await?
        .map(|r| r.get(0)))
}

pub async fn file(
    client: &impl GenericClient,
    person: Uuid,
    reason: &str,
    colour_at_filing: &str,
    key: Option<&str>,
) -> Result<AppealView, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO appeals (id, person_id, reason, colour_at_filing, state, idempotency_key)
         VALUES ($1, $2, $3, $4, 'open', $5) RETURNING {COLUMNS}"
    );
    let row = client
        .query_one(
            &sql,
            &[&Uuid::new_v4(), &person, &reason, &colour_at_filing, &key],
        )
        .await?;
    Ok(appeal(&row))
}

/// The person's appeals, newest first (at most 100).
pub async fn of_person(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<Vec<AppealView>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM appeals WHERE person_id = $1 ORDER BY filed_at DESC LIMIT 100"
    );
    Ok(client
        .query(&sql, &[&person])
        .await?
        .iter()
        .map(appeal)
        .collect())
}

/// Open appeals of people living in the code range `home`, oldest first, after the cursor `after`.
pub async fn open_in(
    client: &impl GenericClient,
    (lo, hi): (&str, &str),
    after: (DateTime<Utc>, Uuid),
    limit: i64,
) -> Result<Vec<AppealView>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM appeals a
         WHERE state = 'open' AND (filed_at, id) > ($1, $2)
           AND EXISTS (SELECT 1 FROM subjects s WHERE s.person_id = a.person_id AND s.home_region BETWEEN $4 AND $5)
         ORDER BY filed_at, id LIMIT $3"
    );
    let rows = client
        .query(&sql, &[&after.0, &after.1, &limit, &lo, &hi])
        .await?;
    Ok(rows.iter().map(appeal).collect())
}

/// Locks an appeal for its resolution: its state and whose it is.
pub async fn lock(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<(String, Uuid)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT state, person_id FROM appeals WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// An official's decision on an appeal.
pub struct Decision<'a> {
    pub state: &'a str,
    pub by: &'a str,
    pub resolution: &'a str,
    pub colour: Option<&'a str>,
    pub until: Option<DateTime<Utc>>,
}

pub async fn resolve(
    client: &impl GenericClient,
    id: Uuid,
    d: &Decision<'_>,
) -> Result<AppealView, tokio_postgres::Error> {
    let sql = format!(
        "UPDATE appeals SET state = $2, resolved_by = $3, resolved_at = now(), resolution = $4,
             override_colour = $5, override_until = $6
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = client
        .query_one(
            &sql,
            &[&id, &d.state, &d.by, &d.resolution, &d.colour, &d.until],
        )
        .await?;
    Ok(appeal(&row))
}
