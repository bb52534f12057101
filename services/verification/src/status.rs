//! A person's current status, from the status document scoring keeps in Redis for the hot paths
//! (`hc_platform::status_document`; only the fields a gate needs are read).

use hc_platform::status_document::CurrentStatus;

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
