//! One-time sign-in codes in Redis: stored as a keyed hash (never the code itself), expiring, single use,
//! burnt after `max_attempts` wrong tries. The check is one Lua script so concurrent tries cannot both win.

use std::sync::LazyLock;

use anyhow::anyhow;
use hc_platform::privacy::BlindIndex;
use hc_platform::store::Store;

/// The Redis key (without prefix) of the code for a phone, by the phone's blind index.
pub fn otp_key(phone_index: &[u8]) -> String {
    format!("otp:{}", hex(phone_index))
}

pub use hc_platform::privacy::to_hex as hex;

static CHECK_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local mac = redis.call('HGET', KEYS[1], 'mac')
        if not mac then return 0 end
        if mac == ARGV[1] then
            redis.call('DEL', KEYS[1])
            return 1
        end
        if redis.call('HINCRBY', KEYS[1], 'tries', 1) >= tonumber(ARGV[2]) then
            redis.call('DEL', KEYS[1])
        end
        return 0
        ",
    )
});

fn mac(index: &BlindIndex, phone_index: &[u8], code: &str) -> String {
    let mut input = phone_index.to_vec();
    input.extend_from_slice(code.as_bytes());
    hex(&index.other("otp", &input))
}

/// Creates a fresh six-digit code for the phone, replacing any earlier one.
pub async fn issue(
    store: &Store,
    index: &BlindIndex,
    phone_index: &[u8],
    ttl_seconds: u64,
) -> anyhow::Result<String> {
    let code = random_code()?;
    let key = store.key(&otp_key(phone_index));
    let mut conn = store.conn();
    redis::pipe()
        .atomic()
        .del(&key)
        .hset(&key, "mac", mac(index, phone_index, &code))
        .hset(&key, "tries", 0)
        .expire(&key, ttl_seconds as i64)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(code)
}

/// Whether `code` is the phone's current code, which it then uses up. A wrong try counts against the code, and the
/// last one allowed burns it. The caller learns nothing else: not whether a code was sent, nor how many tries are
/// left, since either would tell an attacker whether the phone is registered.
pub async fn check(
    store: &Store,
    index: &BlindIndex,
    phone_index: &[u8],
    code: &str,
    max_attempts: u32,
) -> anyhow::Result<bool> {
    let accepted: i64 = CHECK_SCRIPT
        .key(store.key(&otp_key(phone_index)))
        .arg(mac(index, phone_index, code))
        .arg(max_attempts)
        .invoke_async(&mut store.conn())
        .await?;
    Ok(accepted == 1)
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
