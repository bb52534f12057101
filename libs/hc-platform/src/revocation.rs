//! Access tokens revoked without a round trip on the hot path: identity publishes `auth.revoked` through its outbox,
//! and every replica of every service follows the stream into its [`TokenVerifier`]'s in-memory list, which
//! `verify` consults. Plain XREAD, not a consumer group: every replica needs every entry. A replica that starts reads
//! back as far as the longest-lived access token, so it knows every revocation that can still refuse something.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;

use crate::auth::TokenVerifier;
use crate::events::AuthRevoked;
use crate::store::Store;
use crate::streams::Delivered;

/// How far back a starting replica reads: longer than any access token lives (`auth` token lifetimes are minutes).
pub const LOOKBACK: Duration = Duration::from_secs(24 * 3600);
/// Entries read at a time.
const BATCH: usize = 500;

/// Follows `auth.revoked` until cancelled, polling every `every` when there is nothing new.
pub async fn follow(
    store: Store,
    verifier: Arc<TokenVerifier>,
    cancel: CancellationToken,
    every: Duration,
) {
    let key = store.key(&crate::outbox::stream_key(AuthRevoked::STREAM));
    let since = chrono::Utc::now().timestamp_millis() - LOOKBACK.as_millis() as i64;
    let mut from = format!("{}-0", since.max(0));
    while !cancel.is_cancelled() {
        let read: redis::RedisResult<StreamReadReply> = store
            .conn()
            .xread_options(
                &[&key],
                &[&from],
                &StreamReadOptions::default().count(BATCH),
            )
            .await;
        let mut heard = 0;
        match read {
            Ok(reply) => {
                for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                    match AuthRevoked::decode(&Delivered::from_entry(&entry)) {
                        Ok(r) => verifier.revoke(&r.subject, r.not_before),
                        Err(malformed) => {
                            tracing::error!(reason = %malformed, "a revocation does not decode")
                        }
                    }
                    from = entry.id;
                    heard += 1;
                }
            }
            Err(err) => tracing::warn!(error = %err, "reading revocations failed; trying again"),
        }
        if heard < BATCH {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
