//! The rules and the risk map in force, as one snapshot each recolouring works from, cached per replica and checked
//! against the database's generation counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{GenericClient, Pool};

use crate::facts::{RiskLevel, RiskMap};
use crate::rules::{Active, RuleBook, RuleSetDoc};

/// What the rules and the risk map were when a recolouring started.
#[derive(Clone)]
pub struct Snapshot {
    pub book: Arc<RuleBook>,
    pub risk: Arc<RiskMap>,
    /// Grows with every change of rules or risk levels (each part of the generation only grows).
    pub basis: i64,
    /// Grows with every change of risk levels in effect (the public map's ETag).
    pub risk_generation: i64,
}

struct Cached {
    snapshot: Snapshot,
    generation: (i64, i64),
    checked: Instant,
}

/// The last snapshot and when it was checked.
#[derive(Default)]
pub struct SnapshotCache {
    cache: Mutex<Option<Cached>>,
}

impl SnapshotCache {
    /// The rules and risk map in force, checked against `db` unless checked within `refresh` (zero: always
    /// checked; reloaded only when they changed).
    pub async fn get(&self, db: &Pool, refresh: Duration) -> anyhow::Result<Snapshot> {
        if let Ok(guard) = self.cache.lock()
            && let Some(c) = guard.as_ref()
            && c.checked.elapsed() < refresh
        {
            return Ok(c.snapshot.clone());
        }
        let client = db.get().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM rule_sets WHERE effective_from <= now()),
                        (SELECT count(*) FROM region_risk WHERE effective_from <= now())",
                &[],
            )
            .await?;
        // Both only grow: rows are never deleted, and time only brings more of them into effect.
        let generation = (row.get(0), row.get(1));
        if let Ok(mut guard) = self.cache.lock()
            && let Some(c) = guard.as_mut()
            && c.generation == generation
        {
            c.checked = Instant::now();
            return Ok(c.snapshot.clone());
        }
        let snapshot = Snapshot {
            book: Arc::new(load_book(&client).await?),
            risk: Arc::new(load_risk(&client).await?),
            basis: generation.0 + generation.1,
            risk_generation: generation.1,
        };
        if let Ok(mut guard) = self.cache.lock() {
            *guard = Some(Cached {
                snapshot: snapshot.clone(),
                generation,
                checked: Instant::now(),
            });
        }
        Ok(snapshot)
    }

    /// Forgets the snapshot: this replica changed the rules or the risk levels.
    pub fn invalidate(&self) {
        if let Ok(mut guard) = self.cache.lock() {
            *guard = None;
        }
    }
}

/// The latest version in force of every region's rule set.
pub async fn load_book(client: &impl GenericClient) -> anyhow::Result<RuleBook> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (region) region, version, document FROM rule_sets
             WHERE effective_from <= now() ORDER BY region, version DESC",
            &[],
        )
        .await?;
    let mut sets = HashMap::new();
    for r in rows {
        let region: String = r.get(0);
        let doc: RuleSetDoc = serde_json::from_value(r.get(2))?;
        sets.insert(
            region,
            Active {
                version: r.get(1),
                doc,
            },
        );
    }
    Ok(RuleBook::new(sets))
}

pub async fn load_risk(client: &impl GenericClient) -> anyhow::Result<RiskMap> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (region) region, level FROM region_risk WHERE effective_from <= now()
             ORDER BY region, effective_from DESC, id DESC",
            &[],
        )
        .await?;
    let levels: Vec<(String, RiskLevel)> = rows
        .into_iter()
        .filter_map(|r| {
            Some((
                r.get::<_, String>(0),
                r.get::<_, &str>(1).parse::<RiskLevel>().ok()?,
            ))
        })
        .collect();
    Ok(RiskMap::new(levels.iter().map(|(r, l)| (r.as_str(), *l))))
}
