use serde::Deserialize;

/// The `[rendering]` section (documented in config/default.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct RenderingSettings {
    pub issuer: String,
    pub signing_keys: secrecy::SecretString,
    pub pseudonym_keys: secrecy::SecretString,
    pub token_seconds: i64,
    pub render_cache_enabled: bool,
    pub memory_cache_enabled: bool,
    pub memory_cache_bytes: u64,
    pub status_from_redis: bool,
    pub scoring_url: String,
    pub scoring_timeout_ms: u64,
    pub breaker_enabled: bool,
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
    pub stale_fallback_enabled: bool,
    pub stale_max_age_seconds: u64,
    pub scoring_silent_after_seconds: u64,
    pub last_known_capacity: usize,
    pub qr_module_px: u32,
    pub page_identity_url: String,
    pub page_scoring_url: String,
    pub page_declaration_url: String,
    /// The province whose county map `/map` shows.
    pub map_province: hc_domain::RegionCode,
}

impl RenderingSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.map_province.level() == hc_domain::RegionLevel::Province,
            "rendering.map_province must be a province's code"
        );
        anyhow::ensure!(
            self.issuer.len() == 6 && self.issuer.bytes().all(|b| b.is_ascii_digit()),
            "rendering.issuer must be a six-digit region code"
        );
        hc_platform::check_bounds!(
            "rendering.token_seconds": self.token_seconds => 60..=3600,
            "rendering.scoring_timeout_ms": self.scoring_timeout_ms => 1..=60_000,
            "rendering.breaker_failures": self.breaker_failures => 1..,
            "rendering.stale_max_age_seconds": self.stale_max_age_seconds => 1..=86_400,
            "rendering.scoring_silent_after_seconds": self.scoring_silent_after_seconds => 2..=3600,
            "rendering.qr_module_px": self.qr_module_px => 1..=32,
        );
        Ok(())
    }

    /// Codes are cached per time bucket: half a token's life, so a code served from the cache at the end of its
    /// bucket still has half its life ahead.
    pub fn bucket_seconds(&self) -> i64 {
        self.token_seconds / 2
    }
}
