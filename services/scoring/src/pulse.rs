//! Scoring's beat on the status documents' pulse key, every `scoring.pulse_interval_ms`: while it keeps coming,
//! rendering takes the documents in Redis as current; once it stops (every scoring replica down, or cut off from
//! Redis), rendering flags its codes stale as of the last beat. See [`hc_platform::status_document::beat`].

use std::time::Duration;

use hc_platform::status_document;
use hc_platform::store::Store;
use tokio_util::sync::CancellationToken;

pub async fn run(store: Store, every: Duration, stop: CancellationToken) {
    loop {
        if let Err(err) = status_document::beat(&store, chrono::Utc::now()).await {
            tracing::debug!(error = %err, "scoring's beat not written");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
