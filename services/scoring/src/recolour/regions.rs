//! Whom a change of a region touches: the codes inside it, the people living there, the people seen there.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::projection::Index;
use crate::rules;

/// The range of codes inside a region (`RegionCode::span`), or every code for the national rule set.
pub fn span(region: &str) -> (String, String) {
    if region == rules::NATIONAL {
        return ("000000".into(), "999999".into());
    }
    match hc_domain::RegionCode::parse(region) {
        Ok(code) => code.span(),
        Err(_) => (region.to_owned(), region.to_owned()),
    }
}

/// Everyone whose home lies in `region` (the national region: everyone), e.g. after its rules changed.
pub async fn population(client: &impl GenericClient, region: &str) -> anyhow::Result<Vec<Index>> {
    let (lo, hi) = span(region);
    let rows = client
        .query(
            "SELECT id_index FROM subjects WHERE home_region BETWEEN $1 AND $2",
            &[&lo, &hi],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

/// Everyone seen in `region` (or a county inside it) since `since`: the one set-based query behind a change of
/// risk.
pub async fn visitors(
    client: &impl GenericClient,
    region: &str,
    since: DateTime<Utc>,
) -> anyhow::Result<Vec<Index>> {
    let (lo, hi) = span(region);
    let rows = client
        .query(
            "SELECT DISTINCT id_index FROM f_visits WHERE region BETWEEN $1 AND $2 AND last_seen >= $3",
            &[&lo, &hi, &since],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}
