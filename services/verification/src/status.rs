//! A person's current status, as scoring keeps it in Redis for the hot paths (`status:{person}`, a hash whose `doc`
//! is scoring's status view; only the fields a gate needs are read).

use chrono::{DateTime, Utc};
use hc_domain::Colour;
use hc_platform::store::Store;
use serde::Deserialize;
use uuid::Uuid;

use crate::policy::Subject;

#[derive(Debug, Clone, Deserialize)]
pub struct Current {
    pub colour: Colour,
    pub variant: String,
    pub version: i64,
    pub negative_test_at: Option<DateTime<Utc>>,
}

impl Current {
    /// What the gate judges.
    pub fn subject(&self) -> Subject {
        Subject {
            colour: self.colour,
            international: self.variant == "international",
            negative_test_at: self.negative_test_at,
        }
    }
}

pub async fn current(store: &Store, person: Uuid) -> redis::RedisResult<Option<Current>> {
    let doc: Option<String> = redis::cmd("HGET")
        .arg(store.key(&hc_platform::store::status_key(person)))
        .arg("doc")
        .query_async(&mut store.conn())
        .await?;
    Ok(doc.and_then(|d| serde_json::from_str(&d).ok()))
}
