//! `rule_sets`: every region's rule sets, versioned, never changed once stored.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rules::RuleSetDoc;

/// A stored version, as read back and as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredRuleSet {
    pub region: String,
    pub version: i32,
    pub effective_from: DateTime<Utc>,
    /// When everyone it governs was recoloured under it (null: pending).
    pub applied_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Every version of this region, oldest first.
    pub versions: Vec<i32>,
    pub document: RuleSetDoc,
}

const COLUMNS: &str = "version, effective_from, activated_at, created_by, created_at, document";

/// Stores the next version of the region's rule set and returns its number. One writer per region at a time (a
/// transaction lock), so versions are dense. Run in a transaction.
pub async fn store_next(
    client: &impl GenericClient,
    region: &str,
    document: &serde_json::Value,
    effective_from: DateTime<Utc>,
    created_by: &str,
) -> Result<i32, tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('rules:' || $1))",
            &[&region],
        )
        .await?;
    Ok(client
        .query_one(
            "INSERT INTO rule_sets (region, version, document, effective_from, created_by)
             SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM rule_sets WHERE region = $1
             RETURNING version",
            &[&region, &document, &effective_from, &created_by],
        )
        .await?
        .get(0))
}

/// Every version number of the region, in order.
pub async fn versions(
    client: &impl GenericClient,
    region: &str,
) -> Result<Vec<i32>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT version FROM rule_sets WHERE region = $1 ORDER BY version",
            &[&region],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// One version, or (`None`) the version in force, or the first one if none is in force yet.
pub async fn read(
    client: &impl GenericClient,
    region: &str,
    version: Option<i32>,
) -> anyhow::Result<Option<StoredRuleSet>> {
    let row = match version {
        Some(v) => {
            let sql = format!("SELECT {COLUMNS} FROM rule_sets WHERE region = $1 AND version = $2");
            client.query_opt(&sql, &[&region, &v]).await?
        }
        None => {
            let sql = format!(
                "SELECT {COLUMNS} FROM rule_sets WHERE region = $1
                 ORDER BY (effective_from <= now()) DESC, CASE WHEN effective_from <= now() THEN -version ELSE version END
                 LIMIT 1"
            );
            client.query_opt(&sql, &[&region]).await?
        }
    };
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(StoredRuleSet {
        region: region.to_owned(),
        version: r.get(0),
        effective_from: r.get(1),
        applied_at: r.get(2),
        created_by: r.get(3),
        created_at: r.get(4),
        versions: versions(client, region).await?,
        document: serde_json::from_value(r.get(5))?,
    }))
}
