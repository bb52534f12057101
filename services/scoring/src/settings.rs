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
    pub county_map: CountyMapSettings,
}

/// The `[scoring.county_map]` section: the county map's published thresholds and when it is recomputed
/// (docs/indices.md).
#[derive(Debug, Clone, serde::Serialize, Deserialize, utoipa::ToSchema)]
pub struct CountyMapSettings {
    /// Recomputed this often, and `after_import_ms` after an import of facts.
    pub interval_ms: u64,
    pub after_import_ms: u64,
    /// Cases in the last 14 days from which a county is red, or red when they are rising and at least
    /// `red_rising_cases`.
    pub red_cases: i64,
    pub red_rising_cases: i64,
    /// The same for orange.
    pub orange_cases: i64,
    pub orange_rising_cases: i64,
    /// Longest override an official may set.
    pub override_max_days: i64,
    /// Where a county's level sets its three-level risk (the regions that adopted the five-colour map; elsewhere
    /// the map is published only and officials set the risk).
    #[schema(value_type = Vec<String>)]
    pub sets_risk_in: Vec<hc_domain::RegionCode>,
    /// Check-ins per resident and day, and travellers per resident and day, that count as full flow.
    pub full_checkins_per_resident: f64,
    pub full_travel_per_resident: f64,
}

impl ScoringSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        hc_platform::check_bounds!(
            "scoring.recolour_chunk": self.recolour_chunk => 1..=50_000,
            "scoring.recolour_parallelism": self.recolour_parallelism => 1..=64,
            "scoring.lookback_days": self.lookback_days => 14..=365,
            "scoring.scheduler_interval_ms": self.scheduler_interval_ms => 100..,
            "scoring.pulse_interval_ms": self.pulse_interval_ms => 100..=600_000,
            "scoring.appeal_max_override_days": self.appeal_max_override_days => 1..=365,
            "scoring.county_map.override_max_days": self.county_map.override_max_days => 1..=365,
        );
        let m = &self.county_map;
        anyhow::ensure!(
            m.interval_ms >= 100 && m.after_import_ms <= 600_000,
            "scoring.county_map.interval_ms must be at least 100 and after_import_ms at most 600000"
        );
        anyhow::ensure!(
            1 <= m.orange_rising_cases
                && m.orange_rising_cases <= m.orange_cases
                && m.orange_rising_cases <= m.red_rising_cases
                && m.orange_cases <= m.red_cases
                && m.red_rising_cases <= m.red_cases,
            "scoring.county_map thresholds must grow from orange to red, rising below steady, all at least 1"
        );
        anyhow::ensure!(
            m.full_checkins_per_resident > 0.0 && m.full_travel_per_resident > 0.0,
            "scoring.county_map.full_* must be above 0"
        );
        Ok(())
    }
}
