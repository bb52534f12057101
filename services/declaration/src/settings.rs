use serde::Deserialize;

/// The `[declaration]` section (documented in config/default.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct DeclarationSettings {
    pub import_chunk_rows: usize,
    pub import_max_bytes: u64,
    pub import_max_errors: i64,
    pub import_idle_timeout_ms: u64,
    pub import_max_concurrent: usize,
    pub import_queue_ms: u64,
    pub import_retry_after_seconds: u64,
    pub import_block_max_bytes: usize,
    pub import_max_per_client: usize,
    pub import_max_seconds: u64,
    /// This platform's region code: who it is to the national hub.
    pub region: String,
    pub hub_url: String,
    pub exchange_key: secrecy::SecretString,
    pub hub_exchange_ms: u64,
}

impl DeclarationSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        hc_platform::check_bounds!(
            "declaration.import_chunk_rows": self.import_chunk_rows => 1..=100_000,
            "declaration.import_max_bytes": self.import_max_bytes => 1..,
            "declaration.import_max_seconds": self.import_max_seconds => 1..,
            "declaration.hub_exchange_ms": self.hub_exchange_ms => 50..,
            "declaration.import_max_errors": self.import_max_errors => 0..,
        );
        anyhow::ensure!(
            self.import_block_max_bytes >= 64 * 1024,
            "declaration.import_block_max_bytes must be at least 65536 (one line's limit)"
        );
        // Checked here, not when an import's chunk is first passed on to the hub.
        hc_domain::RegionCode::parse(&self.region).map_err(|e| {
            anyhow::anyhow!("declaration.region is not a region code: {}", e.reason)
        })?;
        Ok(())
    }
}
