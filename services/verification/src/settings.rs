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
        anyhow::ensure!(
            (1..=10_000).contains(&self.commit_max_batch),
            "verification.commit_max_batch must be 1 to 10000"
        );
        anyhow::ensure!(
            (1..=64).contains(&self.commit_writers),
            "verification.commit_writers must be 1 to 64"
        );
        anyhow::ensure!(
            self.commit_queue >= self.commit_max_batch,
            "verification.commit_queue must hold at least one batch"
        );
        anyhow::ensure!(
            (1..=3650).contains(&self.retention_days),
            "verification.retention_days must be 1 to 3650"
        );
        anyhow::ensure!(
            (1..=30).contains(&self.partition_days_ahead),
            "verification.partition_days_ahead must be 1 to 30"
        );
        anyhow::ensure!(
            (1..=365).contains(&self.trust_list_days),
            "verification.trust_list_days must be 1 to 365"
        );
        anyhow::ensure!(
            self.hub_refresh_ms >= 100,
            "verification.hub_refresh_ms must be at least 100"
        );
        self.ceiling()?;
        Ok(())
    }

    /// The colours any venue may admit at most.
    pub fn ceiling(&self) -> anyhow::Result<Vec<Colour>> {
        self.colour_ceiling
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<Colour>().map_err(|_| {
                    anyhow::anyhow!("verification.colour_ceiling: {c:?} is not a colour")
                })
            })
            .collect()
    }
}
