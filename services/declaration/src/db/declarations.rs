use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub struct NewDeclaration<'a> {
    pub id: Uuid,
    pub person: Uuid,
    pub day: NaiveDate,
    pub current_region: &'a str,
    pub temperature_tenths: i16,
    pub symptoms: &'a [String],
    pub contact_with_case: bool,
    pub contact_date: Option<NaiveDate>,
    pub travelled_regions: &'a [String],
    pub idempotency_key: Option<&'a str>,
}

/// A declaration as stored and as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeclarationView {
    pub id: Uuid,
    /// The calendar day (Asia/Shanghai) the declaration is for.
    pub day: NaiveDate,
    pub current_region: String,
    pub temperature: f64,
    pub symptoms: Vec<String>,
    pub contact_with_case: bool,
    pub contact_date: Option<NaiveDate>,
    pub travelled_regions: Vec<String>,
    pub submitted_at: DateTime<Utc>,
    /// When a later declaration of the same day replaced this one.
    pub superseded_at: Option<DateTime<Utc>>,
    /// The declaration of the same day this one replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<Uuid>,
}

const COLUMNS: &str = "id, day, current_region, temperature_tenths, symptoms, contact_with_case, contact_date, \
                       travelled_regions, submitted_at, superseded_at";

fn stored(r: &tokio_postgres::Row) -> DeclarationView {
    DeclarationView {
        id: r.get(0),
        day: r.get(1),
        current_region: r.get(2),
        temperature: f64::from(r.get::<_, i16>(3)) / 10.0,
        symptoms: r.get(4),
        contact_with_case: r.get(5),
        contact_date: r.get(6),
        travelled_regions: r.get(7),
        submitted_at: r.get(8),
        superseded_at: r.get(9),
        supersedes: None,
    }
}

/// Serialises one person's declarations for the rest of the transaction.
pub async fn lock_person(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 1))",
            &[&person.to_string()],
        )
        .await?;
    Ok(())
}

pub async fn by_idempotency_key(
    client: &impl GenericClient,
    person: Uuid,
    key: &str,
) -> Result<Option<DeclarationView>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS}, (SELECT p.id FROM declarations p WHERE p.person_id = d.person_id AND p.day = d.day
                                     AND p.submitted_at < d.submitted_at ORDER BY p.submitted_at DESC LIMIT 1)
                 FROM declarations d WHERE person_id = $1 AND idempotency_key = $2"
            ),
            &[&person, &key],
        )
        .await?;
    Ok(row.map(|r| DeclarationView {
        supersedes: r.get(10),
        ..stored(&r)
    }))
}

/// Marks the person's current declaration of `day` superseded; returns its id.
pub async fn supersede(
    client: &impl GenericClient,
    person: Uuid,
    day: NaiveDate,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "UPDATE declarations SET superseded_at = clock_timestamp()
             WHERE person_id = $1 AND day = $2 AND superseded_at IS NULL RETURNING id",
            &[&person, &day],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn insert(
    client: &impl GenericClient,
    d: &NewDeclaration<'_>,
) -> Result<DeclarationView, tokio_postgres::Error> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO declarations (id, person_id, day, current_region, temperature_tenths, symptoms,
                    contact_with_case, contact_date, travelled_regions, commitment, idempotency_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10) RETURNING {COLUMNS}"
            ),
            &[
                &d.id,
                &d.person,
                &d.day,
                &d.current_region,
                &d.temperature_tenths,
                &d.symptoms,
                &d.contact_with_case,
                &d.contact_date,
                &d.travelled_regions,
                &d.idempotency_key,
            ],
        )
        .await?;
    Ok(stored(&row))
}

/// Newest first, strictly before the cursor `(submitted_at, id)`.
pub async fn history(
    client: &impl GenericClient,
    person: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<DeclarationView>, tokio_postgres::Error> {
    let (at, id) = before.unzip();
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM declarations WHERE person_id = $1
                   AND ($2::timestamptz IS NULL OR (submitted_at, id) < ($2, $3))
                 ORDER BY submitted_at DESC, id DESC LIMIT $4"
            ),
            &[&person, &at, &id, &limit],
        )
        .await?;
    Ok(rows.iter().map(stored).collect())
}
