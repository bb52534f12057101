//! `scan_events`: every verification and check-in, read back for a venue's visit log and a citizen's co-traveller
//! check.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One scan at a venue, as the visit log lists it (the API's `VisitRecord`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = VisitRecord)]
pub struct Visit {
    pub at: DateTime<Utc>,
    pub id: Uuid,
    /// `scan`, `id_card` or `checkin`.
    pub kind: String,
    /// The person (resolvable by officials with person:read); null for other issuers' codes and refused codes.
    pub person_id: Option<Uuid>,
    pub issuer: Option<String>,
    pub colour: Option<String>,
    pub decision: String,
}

/// A page of a venue's scans in `[from, to)`, after the cursor `(after_at, after_id)`, in time order.
pub async fn at_venue(
    client: &impl GenericClient,
    venue: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    (after_at, after_id): (DateTime<Utc>, Uuid),
    limit: i64,
) -> Result<Vec<Visit>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT at, id, kind, person_id, issuer, colour, decision FROM scan_events
             WHERE venue_id = $1 AND at >= $2 AND at < $3 AND (at, id) > ($4, $5)
             ORDER BY at, id LIMIT $6",
            &[&venue, &from, &to, &after_at, &after_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Visit {
            at: r.get(0),
            id: r.get(1),
            kind: r.get(2),
            person_id: r.get(3),
            issuer: r.get(4),
            colour: r.get(5),
            decision: r.get(6),
        })
        .collect())
}

/// How near in time and in days a case must have been to count.
pub struct Window {
    pub minutes: i32,
    pub case_days: i32,
    pub lookback_days: i32,
}

/// The most recent of the person's own visits that [`exposures`] looks at: the self-join below costs the person's
/// visits times the visitors near each, so a person who checked in everywhere cannot make it unbounded.
pub const EXPOSURE_VISITS: i64 = 200;

/// The person's own visits (venue name, hour) that a listed case was at within the window, newest first; of the
/// person's latest [`EXPOSURE_VISITS`] visits in the lookback.
pub async fn exposures(
    client: &impl GenericClient,
    person: Uuid,
    w: &Window,
) -> Result<Vec<(String, DateTime<Utc>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "WITH mine AS (
                 SELECT venue_id, at, person_id FROM scan_events
                 WHERE person_id = $1 AND at > now() - make_interval(days => $4)
                 ORDER BY at DESC LIMIT $5
             )
             SELECT DISTINCT v.name, date_trunc('hour', mine.at) AS hour
             FROM mine
             JOIN scan_events other ON other.venue_id = mine.venue_id
                  AND other.at BETWEEN mine.at - make_interval(mins => $2) AND mine.at + make_interval(mins => $2)
                  AND other.person_id IS NOT NULL AND other.person_id <> mine.person_id
             JOIN persons p ON p.person_id = other.person_id
             JOIN cases c ON c.id_index = p.id_index
                  AND c.since BETWEEN (other.at - make_interval(days => $3))::date
                                  AND (other.at + make_interval(days => $3))::date
             JOIN venues v ON v.id = mine.venue_id
             ORDER BY hour DESC LIMIT 100",
            &[&person, &w.minutes, &w.case_days, &w.lookback_days, &EXPOSURE_VISITS],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
