//! The in-process cache in front of Redis: a code request that hits it costs no network round trip at all. It is
//! correct only as long as it hears of every status change, so every replica follows the `status.changed` stream
//! (plain XREAD, not a consumer group: each replica needs every event) and records, per person, the newest version
//! announced; an entry made from an older version is never served. If the stream cannot be read, the whole cache
//! is dropped. What is left is the relay's delay (tens of milliseconds) before a change is heard of.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use hc_domain::Colour;
use hc_platform::events::StatusChanged;
use hc_platform::store::Store;
use hc_platform::streams::Start;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cache::Format;

/// One render of one code.
#[derive(Debug)]
pub struct Rendered {
    pub bucket: i64,
    pub version: i64,
    pub colour: Colour,
    /// For a code flagged stale, its status time (Unix seconds): served only to requests made while scoring is
    /// silent since that same time, never as a current code.
    pub stale_since: Option<i64>,
    pub body: Bytes,
}

#[derive(Clone)]
struct BodySize;

impl quick_cache::Weighter<(Uuid, Format), Arc<Rendered>> for BodySize {
    fn weight(&self, _: &(Uuid, Format), value: &Arc<Rendered>) -> u64 {
        value.body.len() as u64 + 64
    }
}

pub struct Memory {
    entries: quick_cache::sync::Cache<(Uuid, Format), Arc<Rendered>, BodySize>,
    /// The newest status version heard of per person.
    newest: quick_cache::sync::Cache<Uuid, i64>,
}

impl Memory {
    pub fn new(bytes: u64) -> Self {
        let items = (bytes / 4096).max(16) as usize;
        Self {
            entries: quick_cache::sync::Cache::with_weighter(items, bytes, BodySize),
            newest: quick_cache::sync::Cache::new(items * 2),
        }
    }

    /// The render for `bucket`, current (`stale_since` none) or flagged stale as of `stale_since`.
    pub fn get(
        &self,
        person: Uuid,
        format: Format,
        bucket: i64,
        stale_since: Option<i64>,
    ) -> Option<Arc<Rendered>> {
        let entry = self.entries.get(&(person, format))?;
        let newer = self.newest.get(&person).is_some_and(|v| v > entry.version);
        (entry.bucket == bucket && entry.stale_since == stale_since && !newer).then_some(entry)
    }

    pub fn put(&self, person: Uuid, format: Format, rendered: Rendered) {
        if self
            .newest
            .get(&person)
            .is_some_and(|v| v > rendered.version)
        {
            return;
        }
        self.entries.insert((person, format), Arc::new(rendered));
    }

    pub fn changed(&self, person: Uuid, version: i64) {
        if self.newest.get(&person).is_none_or(|v| v < version) {
            self.newest.insert(person, version);
        }
        // Only older renders go: the announcement of the very version a render was made from (the relay can be
        // slower than the first request) leaves it be.
        for format in [Format::Svg, Format::Png, Format::Payload] {
            if self
                .entries
                .get(&(person, format))
                .is_some_and(|e| e.version < version)
            {
                self.entries.remove(&(person, format));
            }
        }
    }

    pub fn clear(&self) {
        self.entries.clear();
    }
}

/// Follows `status.changed` from its current end until cancelled.
pub async fn follow_changes(
    store: Store,
    memory: Arc<Memory>,
    cancel: CancellationToken,
    idle: Duration,
) {
    hc_platform::streams::follow(
        store,
        StatusChanged::STREAM,
        Start::End,
        cancel,
        idle,
        |event| match StatusChanged::decode(event) {
            Ok(changed) => {
                for change in changed.changes {
                    memory.changed(change.person_id, change.version);
                }
            }
            Err(malformed) => {
                // A change we cannot read may concern any code kept here.
                tracing::error!(reason = %malformed, "a status change does not decode; dropping the in-process code cache");
                memory.clear();
            }
        },
        |err| {
            // Changes may have been missed: nothing cached can be trusted any more.
            tracing::warn!(error = %err, "following status.changed failed; dropping the in-process code cache");
            memory.clear();
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(bucket: i64, version: i64) -> Rendered {
        Rendered {
            bucket,
            version,
            colour: Colour::Green,
            stale_since: None,
            body: Bytes::from_static(b"code"),
        }
    }

    #[test]
    fn a_stale_render_is_served_only_while_scoring_is_silent_since_its_time() {
        let memory = Memory::new(1 << 20);
        let person = Uuid::new_v4();
        memory.put(
            person,
            Format::Svg,
            Rendered {
                stale_since: Some(1_000),
                ..rendered(10, 3)
            },
        );
        assert!(memory.get(person, Format::Svg, 10, Some(1_000)).is_some());
        assert!(
            memory.get(person, Format::Svg, 10, None).is_none(),
            "never as a current code"
        );
        assert!(
            memory.get(person, Format::Svg, 10, Some(2_000)).is_none(),
            "another silence"
        );
        memory.put(person, Format::Svg, rendered(10, 3));
        assert!(
            memory.get(person, Format::Svg, 10, Some(1_000)).is_none(),
            "a current code is not served as a stale one"
        );
    }

    #[test]
    fn a_render_is_served_for_its_bucket_until_a_newer_version_is_heard_of() {
        let memory = Memory::new(1 << 20);
        let person = Uuid::new_v4();
        memory.put(person, Format::Svg, rendered(10, 3));
        assert!(memory.get(person, Format::Svg, 10, None).is_some());
        memory.changed(person, 3);
        assert!(
            memory.get(person, Format::Svg, 10, None).is_some(),
            "its own version announced late"
        );
        assert!(
            memory.get(person, Format::Png, 10, None).is_none(),
            "another format"
        );
        assert!(
            memory.get(person, Format::Svg, 11, None).is_none(),
            "another bucket"
        );
        memory.changed(person, 4);
        assert!(
            memory.get(person, Format::Svg, 10, None).is_none(),
            "dropped on the change"
        );
        memory.put(person, Format::Svg, rendered(10, 3));
        assert!(
            memory.get(person, Format::Svg, 10, None).is_none(),
            "an older render arriving late is refused"
        );
        memory.put(person, Format::Svg, rendered(10, 4));
        assert!(memory.get(person, Format::Svg, 10, None).is_some());
    }
}
