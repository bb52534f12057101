//! One-time sign-in codes in Redis: stored as a keyed hash (never the code itself), expiring, single use,
//! burnt after `max_attempts` wrong tries. The check is one Lua script so concurrent tries cannot both win.

use std::sync::LazyLock;

use anyhow::anyhow;
use hc_platform::privacy::BlindIndex;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// What a code is for. A code sent for one purpose never serves the other.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Purpose {
    /// Signing in to a registered phone's person (the code is used up by the sign-in).
    #[default]
    SignIn,
    /// Proving the phone when registering: sent to any phone, and valid until it expires, so that a registration
    /// retried after a lost answer proves the phone again and gets the same person.
    Register,
}

/// The Redis key (without prefix) of the code for a purpose and phone, by the phone's blind index.
pub fn otp_key(purpose: Purpose, phone_index: &[u8]) -> String {
    format!("otp:{}:{}", <&str>::from(purpose), hex(phone_index))
}

pub use hc_platform::privacy::to_hex as hex;

static CHECK_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local mac = redis.call('HGET', KEYS[1], 'mac')
        if not mac then return 0 end
        if mac == ARGV[1] then
            if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
            return 1
        end
        if redis.call('HINCRBY', KEYS[1], 'tries', 1) >= tonumber(ARGV[2]) then
            redis.call('DEL', KEYS[1])
        end
        return 0
        ",
    )
});

fn mac(index: &BlindIndex, purpose: Purpose, phone_index: &[u8], code: &str) -> String {
    let mut input = <&str>::from(purpose).as_bytes().to_vec();
    input.extend_from_slice(phone_index);
    input.extend_from_slice(code.as_bytes());
    hex(&index.of(hc_platform::privacy::Purpose::OneTimeCode, &input))
}

/// Creates a fresh six-digit code for the purpose and phone, replacing any earlier one.
pub async fn issue(
    state: &AppState,
    purpose: Purpose,
    phone_index: &[u8],
) -> anyhow::Result<String> {
    let code = random_code()?;
    let key = state.store.key(&otp_key(purpose, phone_index));
    let mut conn = state.store.conn();
    redis::pipe()
        .atomic()
        .del(&key)
        .hset(&key, "mac", mac(&state.index, purpose, phone_index, &code))
        .hset(&key, "tries", 0)
        .expire(&key, state.settings.otp.ttl_seconds as i64)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(code)
}

/// Whether `code` is the phone's current code for the purpose; a sign-in uses it up. A wrong try counts against the
/// code, and the last one allowed burns it. The caller learns nothing else: not whether a code was sent, nor how many tries are
/// left, since either would tell an attacker whether the phone is registered.
pub async fn check(
    state: &AppState,
    purpose: Purpose,
    phone_index: &[u8],
    code: &str,
) -> anyhow::Result<bool> {
    let accepted: i64 = CHECK_SCRIPT
        .key(state.store.key(&otp_key(purpose, phone_index)))
        .arg(mac(&state.index, purpose, phone_index, code))
        .arg(state.settings.otp.max_attempts)
        .arg(if purpose == Purpose::SignIn { "1" } else { "0" })
        .invoke_async(&mut state.store.conn())
        .await?;
    Ok(accepted == 1)
}

/// Counts a try that the code let through but that failed further on (a registration whose real-name ticket the
/// verifier refused) against the phone's code, as a wrong code counts: one code buys at most `max_attempts` calls
/// to the verifier. It is the check's own wrong-code path, with a MAC no code has.
pub async fn count_failure(
    state: &AppState,
    purpose: Purpose,
    phone_index: &[u8],
) -> anyhow::Result<()> {
    CHECK_SCRIPT
        .key(state.store.key(&otp_key(purpose, phone_index)))
        .arg("")
        .arg(state.settings.otp.max_attempts)
        .arg("0")
        .invoke_async::<i64>(&mut state.store.conn())
        .await?;
    Ok(())
}

/// One answer for a wrong, a burnt and a missing code: which of them it was would tell whether this phone was sent a
/// code, and so whether it is registered.
pub fn refused() -> hc_platform::ApiError {
    hc_platform::ApiError::unauthorized("the code is wrong, used or expired; request a new one")
}

/// A uniformly distributed six-digit code (rejection sampling avoids the modulo bias).
fn random_code() -> anyhow::Result<String> {
    loop {
        let mut bytes = [0u8; 4];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness"))?;
        let n = u32::from_le_bytes(bytes);
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}
