//! `region_risk`: every risk level set for a region, with when it takes effect and who set it.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

pub async fn insert(
    client: &impl GenericClient,
    region: &str,
    level: &str,
    effective_from: DateTime<Utc>,
    updated_by: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO region_risk (region, level, effective_from, updated_by) VALUES ($1, $2, $3, $4)",
            &[&region, &level, &effective_from, &updated_by],
        )
        .await?;
    Ok(())
}
