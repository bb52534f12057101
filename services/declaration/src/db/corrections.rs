//! Corrections of stored facts: the fact locked, changed, and the change recorded with who made it and why.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;

/// A stored fact's region (where it arose; none for facts from before regions were kept) and its correctable value.
pub struct Stored<T> {
    pub region: Option<String>,
    pub value: T,
}

/// The case `(index, status, since)` and its end date, locked until the transaction ends.
pub async fn lock_case(
    client: &impl GenericClient,
    index: &[u8],
    status: &str,
    since: NaiveDate,
) -> Result<Option<Stored<Option<NaiveDate>>>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT region, until FROM case_status WHERE id_index = $1 AND status = $2 AND since = $3 FOR UPDATE",
            &[&index, &status, &since],
        )
        .await?;
    Ok(row.map(|r| Stored {
        region: r.get(0),
        value: r.get(1),
    }))
}

pub async fn set_case_until(
    client: &impl GenericClient,
    index: &[u8],
    status: &str,
    since: NaiveDate,
    until: Option<NaiveDate>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE case_status SET until = $4 WHERE id_index = $1 AND status = $2 AND since = $3",
            &[&index, &status, &since, &until],
        )
        .await?;
    Ok(())
}

/// The test result `(index, sample_time, lab)` and whether it was positive, locked until the transaction ends.
pub async fn lock_nat(
    client: &impl GenericClient,
    index: &[u8],
    sample_time: DateTime<Utc>,
    lab: &str,
) -> Result<Option<Stored<bool>>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT region, positive FROM nat_results WHERE id_index = $1 AND sample_time = $2 AND lab = $3 FOR UPDATE",
            &[&index, &sample_time, &lab],
        )
        .await?;
    Ok(row.map(|r| Stored {
        region: r.get(0),
        value: r.get(1),
    }))
}

pub async fn set_nat_result(
    client: &impl GenericClient,
    index: &[u8],
    sample_time: DateTime<Utc>,
    lab: &str,
    positive: bool,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE nat_results SET positive = $4 WHERE id_index = $1 AND sample_time = $2 AND lab = $3",
            &[&index, &sample_time, &lab, &positive],
        )
        .await?;
    Ok(())
}

pub struct NewCorrection<'a> {
    pub kind: &'a str,
    pub index: &'a [u8],
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub client_id: &'a str,
    pub reason: &'a str,
}

/// Records a correction; returns its id.
pub async fn record(
    client: &impl GenericClient,
    c: &NewCorrection<'_>,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO fact_corrections (kind, id_index, before, after, client_id, reason)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &c.kind,
                &c.index,
                &c.before,
                &c.after,
                &c.client_id,
                &c.reason,
            ],
        )
        .await?;
    Ok(row.get(0))
}
