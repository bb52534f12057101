use serde::Deserialize;

/// The `[scoring]` section (documented in config/default.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct ScoringSettings {
    pub recolour_chunk: usize,
    pub recolour_parallelism: usize,
    pub lookback_days: i64,
    pub snapshot_refresh_ms: u64,
    pub scheduler_enabled: bool,
    pub scheduler_interval_ms: u64,
    pub pulse_interval_ms: u64,
    pub appeal_max_override_days: i64,
    pub staff_max: usize,
    pub recompute_on_read: bool,
}

impl ScoringSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=50_000).contains(&self.recolour_chunk),
            "scoring.recolour_chunk must be 1 to 50000"
        );
        anyhow::ensure!(
            (1..=64).contains(&self.recolour_parallelism),
            "scoring.recolour_parallelism must be 1 to 64"
        );
        anyhow::ensure!(
            (14..=365).contains(&self.lookback_days),
            "scoring.lookback_days must be 14 to 365"
        );
        anyhow::ensure!(
            self.scheduler_interval_ms >= 100,
            "scoring.scheduler_interval_ms must be at least 100"
        );
        anyhow::ensure!(
            (100..=600_000).contains(&self.pulse_interval_ms),
            "scoring.pulse_interval_ms must be 100 to 600000"
        );
        anyhow::ensure!(
            (1..=365).contains(&self.appeal_max_override_days),
            "scoring.appeal_max_override_days must be 1 to 365"
        );
        Ok(())
    }
}
