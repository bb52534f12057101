//! Whether scoring is keeping the status documents current. Each scoring replica beats on a key in Redis every few
//! seconds ([`hc_platform::status_document::beat`]); every rendering replica reads it once a second. Once the last
//! beat is older than `rendering.scoring_silent_after_seconds`, a document read from Redis is only the last status
//! known, as of that beat: the code is signed with that time and flagged stale, as when scoring cannot be asked.
//! (The time is scoring's clock against rendering's: hosts kept by NTP differ by milliseconds, far under the limit.)

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hc_platform::status_document;
use hc_platform::store::Store;
use tokio_util::sync::CancellationToken;

/// How often a replica reads the beat.
const READ_EVERY: Duration = Duration::from_secs(1);

pub struct ScoringPulse {
    /// The last beat read, Unix milliseconds; 0 until one is read. Kept when Redis cannot be read or has lost the
    /// key (it comes back with the next beat): the last beat known is still the best word on scoring.
    last_beat_ms: AtomicI64,
    silent_after: chrono::Duration,
}

impl ScoringPulse {
    pub fn new(silent_after_seconds: u64) -> Self {
        Self {
            last_beat_ms: AtomicI64::new(0),
            silent_after: chrono::Duration::seconds(silent_after_seconds as i64),
        }
    }

    /// The last beat, when it is older than the limit: scoring is silent, and the documents are as of then.
    pub fn silent_since(&self) -> Option<DateTime<Utc>> {
        let beat = DateTime::from_timestamp_millis(self.last_beat_ms.load(Ordering::Relaxed))
            .filter(|b| b.timestamp_millis() > 0)?;
        (Utc::now() - beat > self.silent_after).then_some(beat)
    }

    /// Reads the beat until `stop`.
    pub async fn follow(&self, store: Store, stop: CancellationToken) {
        loop {
            match status_document::last_beat(&store).await {
                Ok(Some(beat)) => self
                    .last_beat_ms
                    .store(beat.timestamp_millis(), Ordering::Relaxed),
                Ok(None) => {}
                Err(err) => tracing::debug!(error = %err, "reading scoring's pulse failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(READ_EVERY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_only_once_a_beat_older_than_the_limit_was_read() {
        let pulse = ScoringPulse::new(30);
        assert_eq!(pulse.silent_since(), None, "no beat read yet");
        let recent = Utc::now() - chrono::Duration::seconds(10);
        pulse
            .last_beat_ms
            .store(recent.timestamp_millis(), Ordering::Relaxed);
        assert_eq!(pulse.silent_since(), None);
        let old = Utc::now() - chrono::Duration::seconds(31);
        pulse
            .last_beat_ms
            .store(old.timestamp_millis(), Ordering::Relaxed);
        assert_eq!(
            pulse.silent_since().map(|b| b.timestamp_millis()),
            Some(old.timestamp_millis())
        );
    }
}
