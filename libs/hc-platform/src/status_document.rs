//! The status document: a person's current status as scoring keeps it in Redis for the hot paths, read by rendering
//! (to sign a code) and verification (at a gate). Its key, its fields and its version rule are written here once:
//! scoring writes through [`write_all`], the others read through [`read`], and their tests seed it through the
//! same writer, so a change to the layout breaks them rather than leaving each side with its own copy.
//!
//! Layout: the hash `status:{person}` (under the deployment's prefix, with the person's cluster hash tag) holding
//! `v`, the status version, and `doc`, scoring's status view as JSON. A write never replaces a newer version: two
//! recolourings that finish out of order leave the newer status in place.

use chrono::{DateTime, Utc};
use hc_domain::Colour;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::Store;

/// The hash field holding the status version (compared by the writer, and by rendering's cache on every read).
pub const VERSION_FIELD: &str = "v";
/// The hash field holding the document.
pub const DOC_FIELD: &str = "doc";

/// What every reader relies on. Scoring's view carries more (reasons, requirements, the rule set), which readers
/// that do not need it ignore; scoring's `/v1/status/me` answers the same view, so this also reads that answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentStatus {
    pub colour: Colour,
    /// `standard`, or the variant of a rule set (`international`, `inbound`).
    pub variant: String,
    pub version: i64,
    pub computed_at: DateTime<Utc>,
    pub negative_test_at: Option<DateTime<Utc>>,
}

/// The Redis key of a person's status document.
pub fn key(store: &Store, person: Uuid) -> String {
    store.key(&crate::store::status_key(person))
}

/// Sets the document only if its version is not older than the one there.
static SET_IF_NEWER: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local v = redis.call('HGET', KEYS[1], ARGV[3])
if v and tonumber(v) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[1], ARGV[4], ARGV[2])
return 1",
    )
});

/// One document to write: whose, its version, and the view (serialised as it is).
pub struct Write<'a, T: Serialize> {
    pub person: Uuid,
    pub version: i64,
    pub view: &'a T,
}

/// Writes the documents in one pipeline of `EVALSHA` (the script loaded once, and again if Redis has forgotten
/// it), each only if it is not older than the one there.
pub async fn write_all<T: Serialize>(
    store: &Store,
    writes: &[Write<'_, T>],
) -> redis::RedisResult<()> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for w in writes {
        let doc = serde_json::to_string(w.view).map_err(|e| {
            redis::RedisError::from((
                redis::ErrorKind::Client,
                "serialising a status",
                e.to_string(),
            ))
        })?;
        pipe.cmd("EVALSHA")
            .arg(SET_IF_NEWER.get_hash())
            .arg(1)
            .arg(key(store, w.person))
            .arg(w.version)
            .arg(doc)
            .arg(VERSION_FIELD)
            .arg(DOC_FIELD)
            .ignore();
    }
    match pipe.query_async::<()>(&mut store.conn()).await {
        Err(err) if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            SET_IF_NEWER
                .prepare_invoke()
                .load_async(&mut store.conn())
                .await?;
            pipe.query_async::<()>(&mut store.conn()).await
        }
        other => other,
    }
}

/// Writes one person's status as scoring would (tests of the readers seed statuses with it).
pub async fn write_status(
    store: &Store,
    person: Uuid,
    status: &CurrentStatus,
) -> redis::RedisResult<()> {
    write_all(
        store,
        &[Write {
            person,
            version: status.version,
            view: status,
        }],
    )
    .await
}

/// A person's status as every reader needs it; `None` when scoring has none for them in Redis.
pub async fn read(store: &Store, person: Uuid) -> redis::RedisResult<Option<CurrentStatus>> {
    read_as(store, person).await
}

/// The document as `T` (scoring reads its whole view back). A document that does not parse is our own bug (or a
/// writer of another layout): counted and logged (with no personal data), then read as absent, so that the reader
/// falls back as it would for a person scoring has not reached yet.
pub async fn read_as<T: DeserializeOwned>(
    store: &Store,
    person: Uuid,
) -> redis::RedisResult<Option<T>> {
    let doc: Option<String> = redis::cmd("HGET")
        .arg(key(store, person))
        .arg(DOC_FIELD)
        .query_async(&mut store.conn())
        .await?;
    Ok(doc.and_then(|d| {
        serde_json::from_str(&d)
            .inspect_err(|err| {
                metrics::counter!("status_documents_invalid_total").increment(1);
                tracing::error!(error = %err, "a status document in Redis does not parse");
            })
            .ok()
    }))
}

/// The key scoring's replicas beat on (`SET` to the time, Unix milliseconds, every few seconds): while it is recent
/// the documents are kept current; once it is old, they are the last status known, and rendering flags its codes
/// stale with that time. (Scoring is up but far behind on its streams: the consumer-lag alert says that.)
fn pulse_key(store: &Store) -> String {
    store.key("status:writer-pulse")
}

/// Records that a writer of the documents is running, as of `at`.
pub async fn beat(store: &Store, at: DateTime<Utc>) -> redis::RedisResult<()> {
    redis::cmd("SET")
        .arg(pulse_key(store))
        .arg(at.timestamp_millis())
        .query_async(&mut store.conn())
        .await
}

/// When a writer of the documents last beat; `None` if none has since Redis started.
pub async fn last_beat(store: &Store) -> redis::RedisResult<Option<DateTime<Utc>>> {
    let ms: Option<i64> = redis::cmd("GET")
        .arg(pulse_key(store))
        .query_async(&mut store.conn())
        .await?;
    Ok(ms.and_then(DateTime::from_timestamp_millis))
}
