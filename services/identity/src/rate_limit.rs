//! Windowed counters in Redis for limits that must hold across replicas (OTP sends per phone and per IP).

use hc_platform::ApiError;
use hc_platform::store::Store;

/// Counts one hit on `key` (without prefix) in a window of `window_seconds` that starts at the first hit;
/// past `limit` hits the caller gets 429 with the seconds until the window ends.
pub async fn hit(
    store: &Store,
    key: &str,
    limit: u32,
    window_seconds: i64,
) -> Result<(), ApiError> {
    let key = store.key(key);
    let (count, ttl): (u32, i64) = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(window_seconds)
        .arg("NX")
        .ignore()
        .ttl(&key)
        .query_async(&mut store.conn())
        .await?;
    if count > limit {
        return Err(ApiError::TooManyRequests {
            retry_after: ttl.max(1) as u64,
        });
    }
    Ok(())
}
