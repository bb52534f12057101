use hc_domain::Colour;
use serde::Deserialize;

/// The `[verification]` section (documented in config/default.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct VerificationSettings {
    pub issuer: String,
    pub own_keys_url: String,
    pub keys_refresh_ms: u64,
    pub pseudonym_keys: secrecy::SecretString,
    pub root_key: secrecy::SecretString,
    pub trust_list_days: i64,
    pub peer_roots: String,
    pub peers_refresh_ms: u64,
    pub hub_url: String,
    pub national_root: String,
    pub hub_refresh_ms: u64,
    pub colour_ceiling: String,
    pub leeway_seconds: i64,
    pub commit_max_batch: usize,
    pub commit_max_wait_ms: u64,
    pub commit_writers: usize,
    pub commit_queue: usize,
    pub retention_days: i64,
    pub partition_days_ahead: i64,
    pub maintenance_interval_ms: u64,
    pub venue_cache_ms: u64,
    pub cotraveller_window_minutes: i64,
    pub case_days: i64,
    pub cotraveller_lookback_days: i64,
}

impl VerificationSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.issuer.len() == 6 && self.issuer.bytes().all(|b| b.is_ascii_digit()),
            "verification.issuer must be a six-digit region code"
        );
        hc_platform::check_bounds!(
            "verification.commit_max_batch": self.commit_max_batch => 1..=10_000,
            "verification.commit_writers": self.commit_writers => 1..=64,
        );
        anyhow::ensure!(
            self.commit_queue >= self.commit_max_batch,
            "verification.commit_queue must hold at least one batch"
        );
        hc_platform::check_bounds!(
            "verification.retention_days": self.retention_days => 1..=3650,
            "verification.partition_days_ahead": self.partition_days_ahead => 1..=30,
            "verification.trust_list_days": self.trust_list_days => 1..=365,
            "verification.hub_refresh_ms": self.hub_refresh_ms => 100..,
        );
        self.ceiling()?;
        Ok(())
    }

    /// The colours any venue may admit at most.
    pub fn ceiling(&self) -> anyhow::Result<Vec<Colour>> {
        hc_platform::settings::list(&self.colour_ceiling)
            .map(|c| {
                c.parse::<Colour>().map_err(|_| {
                    anyhow::anyhow!("verification.colour_ceiling: {c:?} is not a colour")
                })
            })
            .collect()
    }
}
