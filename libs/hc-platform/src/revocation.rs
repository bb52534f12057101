//! Access tokens revoked without a round trip on the hot path: identity publishes `auth.revoked` through its outbox,
//! and every replica of every service follows the stream into its [`TokenVerifier`]'s in-memory list, which
//! `verify` consults. Plain XREAD, not a consumer group: every replica needs every entry. A replica that starts reads
//! back as far as the longest-lived access token, so it knows every revocation that can still refuse something.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::TokenVerifier;
use crate::events::AuthRevoked;
use crate::store::Store;
use crate::streams::{Start, follow as follow_stream};

/// How far back a starting replica reads: longer than any access token lives (`auth` token lifetimes are minutes).
pub const LOOKBACK: Duration = Duration::from_secs(24 * 3600);

/// Follows `auth.revoked` until cancelled, polling every `every` when there is nothing new.
pub async fn follow(
    store: Store,
    verifier: Arc<TokenVerifier>,
    cancel: CancellationToken,
    every: Duration,
) {
    follow_stream(
        store,
        AuthRevoked::STREAM,
        Start::Within(LOOKBACK),
        cancel,
        every,
        |event| match AuthRevoked::decode(event) {
            Ok(r) => verifier.revoke(&r.subject, r.not_before),
            Err(malformed) => tracing::error!(reason = %malformed, "a revocation does not decode"),
        },
        |err| tracing::warn!(error = %err, "reading revocations failed; trying again"),
    )
    .await;
}
