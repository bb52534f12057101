//! A person's status: computed from the outcome (or an accepted appeal's override), written in batches to
//! PostgreSQL, announced with `status.changed`, and pipelined to Redis (`status:{person}`) for the hot paths.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::Colour;
use hc_platform::status_document;
use hc_platform::store::Store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::rules::{Reason, Requirement};

/// What the hot paths read from Redis and the citizen sees: colour, why, what to do, until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    #[schema(value_type = String, example = "green")]
    pub colour: Colour,
    /// `standard` (green / yellow / red) or `international` (green / yellow / orange).
    pub variant: String,
    pub reasons: Vec<Reason>,
    pub requirements: Vec<Requirement>,
    /// When the colour lapses if nothing new happens.
    pub valid_until: Option<DateTime<Utc>>,
    /// The rule-set versions that decided (`000000@1+610000@2`), or `appeal` for an override.
    pub rule_set: String,
    /// Increases on every change.
    pub version: i64,
    pub computed_at: DateTime<Utc>,
    /// The latest negative test (carried in the code token; venues admit on it).
    pub negative_test_at: Option<DateTime<Utc>>,
}

/// A freshly computed status, before it is stored.
#[derive(Debug, Clone)]
pub struct Computed {
    pub person_id: Uuid,
    pub colour: Colour,
    pub variant: &'static str,
    pub reasons: Vec<Reason>,
    pub requirements: Vec<Requirement>,
    pub valid_until: Option<DateTime<Utc>>,
    pub rule_set: String,
    pub negative_test_at: Option<DateTime<Utc>>,
    pub override_appeal: Option<Uuid>,
    pub recheck_at: DateTime<Utc>,
}

/// A stored status: its version, and whether this write changed it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub view: StatusView,
    pub person_id: Uuid,
    pub changed: bool,
}

/// What a batch write did.
#[derive(Debug, Default)]
pub struct Written {
    pub stored: Vec<Stored>,
    /// People whose status was evaluated again by someone else since their facts were read: their newer status
    /// stands, and the caller evaluates them again under a lock.
    pub skipped: Vec<Uuid>,
}

/// The content columns: a status whose content is unchanged keeps its version (only its evaluation and recheck
/// times move); a changed one gets the next version. `now()` is the transaction's start, which is how a changed
/// row is told apart in `RETURNING`.
const CHANGED: &str = "(s.colour, s.variant, s.reasons, s.requirements, s.valid_until, s.rule_set, s.negative_test_at,
      s.override_appeal) IS DISTINCT FROM (t.colour, t.variant, t.reasons, t.requirements, t.valid_until, t.rule_set,
      t.negative_test_at, t.override_appeal)";

/// Writes a batch in one statement. `read_at` is when the facts were read and `basis` which rules and risk levels
/// they were evaluated under: a stored status evaluated after `read_at` (on newer facts) or under a newer basis is
/// left alone, and the person is reported as skipped.
pub async fn write(
    client: &impl GenericClient,
    mut batch: Vec<Computed>,
    read_at: DateTime<Utc>,
    basis: i64,
) -> Result<Written, tokio_postgres::Error> {
    if batch.is_empty() {
        return Ok(Written::default());
    }
    // Rows locked in one order by every writer: two overlapping batches wait for each other instead of deadlocking.
    batch.sort_by_key(|c| c.person_id);
    let ids: Vec<Uuid> = batch.iter().map(|c| c.person_id).collect();
    let colours: Vec<&str> = batch.iter().map(|c| c.colour.as_str()).collect();
    let variants: Vec<&str> = batch.iter().map(|c| c.variant).collect();
    let reasons: Vec<String> = batch
        .iter()
        .map(|c| serde_json::to_string(&c.reasons).unwrap_or_default())
        .collect();
    let requirements: Vec<String> = batch
        .iter()
        .map(|c| serde_json::to_string(&c.requirements).unwrap_or_default())
        .collect();
    let valid: Vec<Option<DateTime<Utc>>> = batch.iter().map(|c| c.valid_until).collect();
    let sets: Vec<&str> = batch.iter().map(|c| c.rule_set.as_str()).collect();
    let negative: Vec<Option<DateTime<Utc>>> = batch.iter().map(|c| c.negative_test_at).collect();
    let appeals: Vec<Option<Uuid>> = batch.iter().map(|c| c.override_appeal).collect();
    let recheck: Vec<DateTime<Utc>> = batch.iter().map(|c| c.recheck_at).collect();
    let changed = CHANGED.replace("t.", "excluded.");
    let sql = format!(
        "INSERT INTO status AS s (person_id, colour, variant, reasons, requirements, valid_until, rule_set,
                                  negative_test_at, override_appeal, version, computed_at, evaluated_at, basis,
                                  recheck_at)
         SELECT person_id, colour, variant, reasons, requirements, valid_until, rule_set, negative_test_at,
                override_appeal, 1, now(), clock_timestamp(), $12, recheck_at
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[],
                     $8::timestamptz[], $9::uuid[], $10::timestamptz[])
              AS t(person_id, colour, variant, reasons, requirements, valid_until, rule_set, negative_test_at,
                   override_appeal, recheck_at)
         ON CONFLICT (person_id) DO UPDATE SET
             colour = excluded.colour, variant = excluded.variant, reasons = excluded.reasons,
             requirements = excluded.requirements, valid_until = excluded.valid_until, rule_set = excluded.rule_set,
             negative_test_at = excluded.negative_test_at, override_appeal = excluded.override_appeal,
             recheck_at = excluded.recheck_at, evaluated_at = excluded.evaluated_at, basis = excluded.basis,
             version = CASE WHEN {changed} THEN s.version + 1 ELSE s.version END,
             computed_at = CASE WHEN {changed} THEN now() ELSE s.computed_at END
         WHERE s.evaluated_at < $11 AND s.basis <= $12
         RETURNING person_id, version, computed_at, computed_at = now()"
    );
    let rows = client
        .query(
            &sql,
            &[
                &ids,
                &colours,
                &variants,
                &reasons,
                &requirements,
                &valid,
                &sets,
                &negative,
                &appeals,
                &recheck,
                &read_at,
                &basis,
            ],
        )
        .await?;
    let mut by_id: std::collections::HashMap<Uuid, Computed> =
        batch.into_iter().map(|c| (c.person_id, c)).collect();
    let stored = rows
        .into_iter()
        .filter_map(|r| {
            let person_id: Uuid = r.get(0);
            let c = by_id.remove(&person_id)?;
            Some(Stored {
                person_id,
                changed: r.get(3),
                view: StatusView {
                    colour: c.colour,
                    variant: c.variant.to_owned(),
                    reasons: c.reasons,
                    requirements: c.requirements,
                    valid_until: c.valid_until,
                    rule_set: c.rule_set,
                    version: r.get(1),
                    computed_at: r.get(2),
                    negative_test_at: c.negative_test_at,
                },
            })
        })
        .collect();
    Ok(Written {
        stored,
        skipped: by_id.into_keys().collect(),
    })
}

/// Writes every stored status to Redis, as the status document rendering and verification read.
pub async fn publish(store: &Store, stored: &[Stored]) -> redis::RedisResult<()> {
    let writes: Vec<_> = stored
        .iter()
        .map(|s| status_document::Write {
            person: s.person_id,
            version: s.view.version,
            view: &s.view,
        })
        .collect();
    status_document::write_all(store, &writes).await
}

/// Reads a status back from its document in Redis.
pub async fn read_cached(store: &Store, person: Uuid) -> redis::RedisResult<Option<StatusView>> {
    status_document::read_as(store, person).await
}

/// The columns a status view is read from, in the order [`view_of`] takes them.
const VIEW_COLUMNS: &str = "colour, variant, reasons, requirements, valid_until, rule_set, version, computed_at, negative_test_at";

fn view_of(r: &tokio_postgres::Row, first: usize) -> StatusView {
    StatusView {
        colour: r.get::<_, String>(first).parse().unwrap_or(Colour::Red),
        variant: r.get(first + 1),
        reasons: serde_json::from_str(r.get(first + 2)).unwrap_or_default(),
        requirements: serde_json::from_str(r.get(first + 3)).unwrap_or_default(),
        valid_until: r.get(first + 4),
        rule_set: r.get(first + 5),
        version: r.get(first + 6),
        computed_at: r.get(first + 7),
        negative_test_at: r.get(first + 8),
    }
}

/// Reads a status from PostgreSQL.
pub async fn read(
    client: &impl GenericClient,
    person: Uuid,
) -> Result<Option<StatusView>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {VIEW_COLUMNS} FROM status WHERE person_id = $1"),
            &[&person],
        )
        .await?;
    Ok(row.map(|r| view_of(&r, 0)))
}

/// Up to `limit` statuses of the people after `after` (by person id), for writing every document again.
pub async fn read_page(
    client: &impl GenericClient,
    after: Uuid,
    limit: i64,
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT person_id, {VIEW_COLUMNS} FROM status WHERE person_id > $1 ORDER BY person_id LIMIT $2"
            ),
            &[&after, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Stored {
            person_id: r.get(0),
            view: view_of(r, 1),
            changed: false,
        })
        .collect())
}
