//! `region_risk`: every risk level set for a region, with when it takes effect and who set it.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_platform::events::RegionRiskChanged;

use crate::facts::RiskLevel;

/// Sets a region's level from `effective_from`, and announces it (`region.risk_changed`) in the same transaction.
pub async fn set(
    client: &impl GenericClient,
    region: &str,
    level: RiskLevel,
    effective_from: DateTime<Utc>,
    updated_by: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO region_risk (region, level, effective_from, updated_by) VALUES ($1, $2, $3, $4)",
            &[&region, &level.as_str(), &effective_from, &updated_by],
        )
        .await?;
    let event = RegionRiskChanged {
        region: region.to_owned(),
        level: level.as_str().into(),
        effective_from,
    };
    hc_platform::outbox::enqueue(client, RegionRiskChanged::STREAM, &event.encode()).await
}
