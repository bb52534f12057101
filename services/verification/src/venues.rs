//! Venues, the devices bound to them, and a short per-replica cache of both for the hot path (a venue's policy is
//! read on every scan; it changes rarely).

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{GenericClient, Pool};
use hc_platform::ApiError;

use crate::policy::Policy;

#[derive(Debug, Clone)]
pub struct Venue {
    pub id: String,
    pub name: String,
    pub region: String,
    pub policy: Policy,
}

pub async fn load(client: &impl GenericClient, id: &str) -> Result<Option<Venue>, ApiError> {
    let row = client
        .query_opt(
            "SELECT id, name, region, policy FROM venues WHERE id = $1",
            &[&id],
        )
        .await?;
    row.map(|r| {
        Ok(Venue {
            id: r.get(0),
            name: r.get(1),
            region: r.get(2),
            policy: serde_json::from_value(r.get(3)).map_err(anyhow::Error::from)?,
        })
    })
    .transpose()
}

async fn venue_of_device(
    client: &impl GenericClient,
    client_id: &str,
) -> Result<Option<Venue>, ApiError> {
    let row = client
        .query_opt(
            "SELECT venue_id FROM devices WHERE client_id = $1",
            &[&client_id],
        )
        .await?;
    match row {
        Some(r) => load(client, r.get::<_, &str>(0)).await,
        None => Ok(None),
    }
}

type Entry = (Instant, Option<Arc<Venue>>);

/// Venues by id and by device, each entry kept `ttl`.
pub struct Venues {
    db: Pool,
    ttl: Duration,
    by_id: quick_cache::sync::Cache<String, Entry>,
    by_device: quick_cache::sync::Cache<String, Entry>,
}

impl Venues {
    pub fn new(db: Pool, ttl: Duration) -> Self {
        Self {
            db,
            ttl,
            by_id: quick_cache::sync::Cache::new(100_000),
            by_device: quick_cache::sync::Cache::new(100_000),
        }
    }

    fn fresh(&self, entry: Option<Entry>) -> Option<Option<Arc<Venue>>> {
        entry
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v)
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<Arc<Venue>>, ApiError> {
        if let Some(v) = self.fresh(self.by_id.get(id)) {
            return Ok(v);
        }
        let v = load(&self.db.get().await?, id).await?.map(Arc::new);
        self.by_id
            .insert(id.to_owned(), (Instant::now(), v.clone()));
        Ok(v)
    }

    /// The venue a checkpoint device is bound to.
    pub async fn of_device(&self, client_id: &str) -> Result<Option<Arc<Venue>>, ApiError> {
        if let Some(v) = self.fresh(self.by_device.get(client_id)) {
            return Ok(v);
        }
        let v = venue_of_device(&self.db.get().await?, client_id)
            .await?
            .map(Arc::new);
        self.by_device
            .insert(client_id.to_owned(), (Instant::now(), v.clone()));
        Ok(v)
    }

    /// After a change here: this replica sees it at once (others within the ttl).
    pub fn forget(&self) {
        self.by_id.clear();
        self.by_device.clear();
    }
}
