//! The county map's SQL: the facts its rules read, its levels and overrides, the indices' counts, and the
//! generation every replica's copy of the public map follows.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::CaseStatus;
use serde_json::Value;

use crate::county_map::indices::IndexInputs;
use crate::county_map::rules::CountyFacts;

type Db = tokio_postgres::Error;

/// Case statuses that count as cases on the map: those that carry the virus.
fn cases() -> Vec<&'static str> {
    let infectious = CaseStatus::ALL.iter().filter(|s| s.is_infectious());
    infectious.map(|s| s.as_str()).collect()
}
/// Case statuses under which a person is in quarantine.
const QUARANTINE: &str = "('close_contact', 'secondary_contact', 'inbound')";

/// The facts the rules read, per region code (any level: the caller keeps the counties), for the 14 days to `today`
/// (and the 14 before, for cases). A person counts in their home county, or, if not registered here, in the region
/// that reported the entry; a case once, on the first day any of their case entries of the 28 days begins and in
/// that entry's region (an asymptomatic case confirmed later is one case, not a rising trend).
pub async fn county_facts(
    client: &impl GenericClient,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<HashMap<String, CountyFacts>, Db> {
    let rows = client
        .query(
            "WITH c AS (
               SELECT COALESCE(s.home_region, f.region) AS region, f.id_index, f.status, f.since
               FROM f_cases f LEFT JOIN subjects s USING (id_index)
               WHERE f.since > $1::date - 28 AND f.since <= $1::date
             ), first_case AS (
               SELECT DISTINCT ON (id_index) region, since FROM c WHERE status = ANY($2)
               ORDER BY id_index, since
             )
             SELECT region,
               count(*) FILTER (WHERE since > $1::date - 14),
               count(*) FILTER (WHERE since > $1::date - 7),
               count(*) FILTER (WHERE since > $1::date - 14 AND since <= $1::date - 7),
               count(*) FILTER (WHERE since <= $1::date - 14)
             FROM first_case WHERE region IS NOT NULL GROUP BY region",
            &[&today, &cases()],
        )
        .await?;
    let mut facts: HashMap<String, CountyFacts> = rows
        .into_iter()
        .map(|r| {
            (
                r.get(0),
                CountyFacts {
                    cases_14d: r.get(1),
                    cases_last_7d: r.get(2),
                    cases_prior_7d: r.get(3),
                    cases_15_to_28d: r.get(4),
                    contacts_14d: 0,
                    positives_14d: 0,
                },
            )
        })
        .collect();
    let contacts = client
        .query(
            "SELECT COALESCE(s.home_region, f.region), count(DISTINCT f.id_index)
             FROM f_cases f LEFT JOIN subjects s USING (id_index)
             WHERE f.status = 'close_contact' AND f.since > $1::date - 14 AND f.since <= $1::date
             GROUP BY 1",
            &[&today],
        )
        .await?;
    for r in contacts {
        if let Some(region) = r.get::<_, Option<String>>(0) {
            facts.entry(region).or_default().contacts_14d = r.get(1);
        }
    }
    let positives = client
        .query(
            "SELECT s.home_region, count(DISTINCT n.id_index) FROM f_nat n JOIN subjects s USING (id_index)
             WHERE n.positive AND n.sample_time > $1::timestamptz - interval '14 days' AND n.sample_time <= $1
             GROUP BY 1",
            &[&now],
        )
        .await?;
    for r in positives {
        facts.entry(r.get(0)).or_default().positives_14d = r.get(1);
    }
    Ok(facts)
}

/// A county's level as last recorded: the level, the one its rules gave, why, and since when.
pub struct LevelRow {
    pub level: String,
    pub derived: String,
    pub override_id: Option<i64>,
    pub reasons: Value,
    pub since: DateTime<Utc>,
}

/// Every county's latest level, by county.
pub async fn latest_levels(client: &impl GenericClient) -> Result<HashMap<String, LevelRow>, Db> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (region) region, level, derived, override_id, reasons, at FROM county_levels
             ORDER BY region, id DESC",
            &[],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get(0),
                LevelRow {
                    level: r.get(1),
                    derived: r.get(2),
                    override_id: r.get(3),
                    reasons: r.get(4),
                    since: r.get(5),
                },
            )
        })
        .collect())
}

/// An override in force.
pub struct OverrideRow {
    pub id: i64,
    pub level: String,
    pub until: DateTime<Utc>,
}

/// The latest override of each county, if it is still in force.
pub async fn overrides_in_force(
    client: &impl GenericClient,
) -> Result<HashMap<String, OverrideRow>, Db> {
    let rows = client
        .query(
            "SELECT region, id, level, until FROM (
               SELECT DISTINCT ON (region) * FROM county_overrides ORDER BY region, id DESC
             ) latest WHERE lifted_at IS NULL AND until > now()",
            &[],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get(0),
                OverrideRow {
                    id: r.get(1),
                    level: r.get(2),
                    until: r.get(3),
                },
            )
        })
        .collect())
}

pub async fn insert_level(
    client: &impl GenericClient,
    region: &str,
    level: &str,
    derived: &str,
    override_id: Option<i64>,
    reasons: &Value,
    inputs: &Value,
) -> Result<(), Db> {
    client
        .execute(
            "INSERT INTO county_levels (region, level, derived, override_id, reasons, inputs)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&region, &level, &derived, &override_id, reasons, inputs],
        )
        .await?;
    Ok(())
}

pub async fn insert_override(
    client: &impl GenericClient,
    region: &str,
    level: &str,
    reason: &str,
    set_by: &str,
    until: DateTime<Utc>,
) -> Result<i64, Db> {
    Ok(client
        .query_one(
            "INSERT INTO county_overrides (region, level, reason, set_by, until) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
            &[&region, &level, &reason, &set_by, &until],
        )
        .await?
        .get(0))
}

/// Lifts the override in force of `region`; false when there is none.
pub async fn lift_override(
    client: &impl GenericClient,
    region: &str,
    lifted_by: &str,
) -> Result<bool, Db> {
    Ok(client
        .execute(
            "UPDATE county_overrides SET lifted_by = $2, lifted_at = now()
             WHERE id = (SELECT max(id) FROM county_overrides WHERE region = $1)
               AND lifted_at IS NULL AND until > now()",
            &[&region, &lifted_by],
        )
        .await?
        > 0)
}

/// The people registered in a home region now: how many, how many have a status, and how many are green.
#[derive(Debug, Clone, Copy, Default)]
pub struct Residents {
    pub count: i64,
    pub with_status: i64,
    pub green: i64,
}

/// The residents of every home region, in one pass over the registered people.
pub async fn residents(client: &impl GenericClient) -> Result<HashMap<String, Residents>, Db> {
    Ok(client
        .query(
            "SELECT s.home_region, count(*), count(st.person_id), count(*) FILTER (WHERE st.colour = 'green')
             FROM subjects s LEFT JOIN status st USING (person_id) GROUP BY 1",
            &[],
        )
        .await?
        .into_iter()
        .map(|r| {
            let residents = Residents {
                count: r.get(1),
                with_status: r.get(2),
                green: r.get(3),
            };
            (r.get(0), residents)
        })
        .collect())
}

/// The counts of the indices for `day`, whose China-time bounds are `[start, end)`, per region code. Residents and
/// green shares are the caller's (read once per round; the green share is only known for the day being lived).
/// Travel is what carriers and venues saw: a declared region is the person's word, dated when they declared.
pub async fn index_inputs(
    client: &impl GenericClient,
    day: NaiveDate,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<HashMap<String, IndexInputs>, Db> {
    let mut all: HashMap<String, IndexInputs> = HashMap::new();
    for r in client
        .query(
            "WITH seen AS (
               SELECT id_index, region, source, first_seen FROM f_visits WHERE first_seen < $2 AND last_seen >= $1
             ), venue AS (SELECT DISTINCT id_index, region FROM seen WHERE source = 'venue')
             SELECT seen.region,
               count(DISTINCT seen.id_index) FILTER (WHERE seen.source = 'carrier'),
               count(DISTINCT seen.id_index) FILTER (WHERE seen.source = 'carrier' AND venue.id_index IS NOT NULL),
               count(*) FILTER (WHERE seen.source = 'venue' AND seen.first_seen >= $1),
               count(DISTINCT seen.id_index) FILTER (WHERE seen.source IN ('carrier', 'venue')
                                                       AND s.home_region IS DISTINCT FROM seen.region)
             FROM seen
             LEFT JOIN venue ON venue.id_index = seen.id_index AND venue.region = seen.region
             LEFT JOIN subjects s ON s.id_index = seen.id_index
             GROUP BY seen.region",
            &[&start, &end],
        )
        .await?
    {
        let i = all.entry(r.get(0)).or_default();
        i.carrier_seen = r.get(1);
        i.carrier_checked = r.get(2);
        i.checkins = r.get(3);
        i.visitors_in = r.get(4);
    }
    for r in client
        .query(
            "SELECT s.home_region, count(DISTINCT v.id_index) FROM f_visits v JOIN subjects s USING (id_index)
             WHERE v.first_seen < $2 AND v.last_seen >= $1 AND v.region <> s.home_region
               AND v.source IN ('carrier', 'venue')
             GROUP BY 1",
            &[&start, &end],
        )
        .await?
    {
        all.entry(r.get(0)).or_default().residents_out = r.get(1);
    }
    for r in client
        .query(
            &format!(
                "SELECT s.home_region, count(DISTINCT c.id_index), count(DISTINCT d.id_index)
                 FROM f_cases c JOIN subjects s USING (id_index)
                 LEFT JOIN f_declarations d ON d.id_index = c.id_index AND d.day = $1
                 WHERE c.status IN {QUARANTINE} AND c.since <= $1 AND (c.until IS NULL OR c.until >= $1)
                 GROUP BY 1"
            ),
            &[&day],
        )
        .await?
    {
        let i = all.entry(r.get(0)).or_default();
        i.quarantined = r.get(1);
        i.quarantined_declared = r.get(2);
    }
    for r in client
        .query(
            "SELECT s.home_region, count(DISTINCT c.id_index), count(DISTINCT n.id_index)
             FROM f_cases c JOIN subjects s USING (id_index)
             LEFT JOIN f_nat n ON n.id_index = c.id_index
                              AND n.sample_time >= $2::timestamptz - interval '1 day' AND n.sample_time < $3
             WHERE c.status = 'close_contact' AND c.since <= $1 AND (c.until IS NULL OR c.until >= $1)
             GROUP BY 1",
            &[&day, &start, &end],
        )
        .await?
    {
        let i = all.entry(r.get(0)).or_default();
        i.contacts = r.get(1);
        i.contacts_tested = r.get(2);
    }
    Ok(all)
}

/// Stores one county's indices of a day; false when they were already stored as they are.
pub async fn upsert_indices(
    client: &impl GenericClient,
    region: &str,
    day: NaiveDate,
    control: Option<f64>,
    flow: Option<f64>,
    inputs: &Value,
) -> Result<bool, Db> {
    Ok(client
        .execute(
            "INSERT INTO county_indices (region, day, control, flow, inputs) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (region, day) DO UPDATE
               SET control = excluded.control, flow = excluded.flow, inputs = excluded.inputs, computed_at = now()
             WHERE (county_indices.control, county_indices.flow, county_indices.inputs)
                   IS DISTINCT FROM (excluded.control, excluded.flow, excluded.inputs)",
            &[&region, &day, &control, &flow, inputs],
        )
        .await?
        > 0)
}

pub async fn generation(client: &impl GenericClient) -> Result<i64, Db> {
    Ok(client
        .query_one("SELECT generation FROM county_map_generation", &[])
        .await?
        .get(0))
}

pub async fn bump_generation(client: &impl GenericClient) -> Result<(), Db> {
    client
        .execute(
            "UPDATE county_map_generation SET generation = generation + 1",
            &[],
        )
        .await?;
    Ok(())
}

/// One county's indices of one day.
pub struct IndexRow {
    pub region: String,
    pub day: NaiveDate,
    pub control: Option<f64>,
    pub flow: Option<f64>,
    pub inputs: Value,
}

/// The indices of every county (or of `region` only) from `from` on, oldest first.
pub async fn indices_since(
    client: &impl GenericClient,
    from: NaiveDate,
    region: Option<&str>,
) -> Result<Vec<IndexRow>, Db> {
    Ok(client
        .query(
            "SELECT region, day, control, flow, inputs FROM county_indices
             WHERE day >= $1 AND ($2::text IS NULL OR region = $2) ORDER BY region, day",
            &[&from, &region],
        )
        .await?
        .into_iter()
        .map(|r| IndexRow {
            region: r.get(0),
            day: r.get(1),
            control: r.get(2),
            flow: r.get(3),
            inputs: r.get(4),
        })
        .collect())
}

/// A county's level changes, newest first.
pub struct HistoryRow {
    pub level: String,
    pub derived: String,
    pub overridden: bool,
    pub reasons: Value,
    pub inputs: Value,
    pub at: DateTime<Utc>,
}

pub async fn history(
    client: &impl GenericClient,
    region: &str,
    limit: i64,
) -> Result<Vec<HistoryRow>, Db> {
    Ok(client
        .query(
            "SELECT level, derived, override_id IS NOT NULL, reasons, inputs, at FROM county_levels
             WHERE region = $1 ORDER BY id DESC LIMIT $2",
            &[&region, &limit],
        )
        .await?
        .into_iter()
        .map(|r| HistoryRow {
            level: r.get(0),
            derived: r.get(1),
            overridden: r.get(2),
            reasons: r.get(3),
            inputs: r.get(4),
            at: r.get(5),
        })
        .collect())
}
