//! A person's current status, from the status document scoring keeps in Redis for the hot paths
//! (`hc_platform::status_document`; only the fields a gate needs are read).

use hc_platform::status_document::{self, CurrentStatus};
use hc_platform::store::Store;
use uuid::Uuid;

use crate::policy::Subject;

/// What the gate judges of a status.
pub fn subject(status: &CurrentStatus) -> Subject {
    Subject {
        colour: status.colour,
        international: status.variant == "international",
        negative_test_at: status.negative_test_at,
        stale_since: None,
    }
}

pub async fn current(store: &Store, person: Uuid) -> redis::RedisResult<Option<CurrentStatus>> {
    status_document::absent_if_invalid(status_document::read(store, person).await)
}
