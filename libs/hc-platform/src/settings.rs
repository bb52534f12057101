//! Typed settings: embedded platform defaults, the service's embedded defaults, `config/{APP_ENV}.toml`,
//! then environment variables `HC__SECTION__KEY`.

use std::fmt::Display;
use std::ops::{RangeFrom, RangeInclusive};
use std::path::PathBuf;

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

const PLATFORM_DEFAULTS: &str = include_str!("../config/platform.toml");

/// The sections every service has.
#[derive(Debug, Clone, Deserialize)]
pub struct PlatformSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    pub privacy: PrivacySettings,
    pub admission: AdmissionSettings,
    pub timeouts: TimeoutSettings,
    pub limits: LimitSettings,
    pub rate_limit: RateLimitSettings,
    pub events: EventSettings,
    pub tls: TlsSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub cors_allowed_origins: String,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_max_size: usize,
    pub pool_wait_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// A read-only replica for reads that tolerate lag; empty: the primary (`url`).
    pub read_url: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
    pub cluster_urls: String,
    pub key_prefix: String,
    pub response_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub log_filter: String,
    pub otlp_endpoint: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    pub leeway_seconds: u64,
    pub verified_cache_capacity: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PrivacySettings {
    pub blind_index_key: SecretString,
    /// The national blind index's key, the same on every platform (docs/interop.md); empty: no national exchange.
    #[serde(default)]
    pub national_index_key: Option<SecretString>,
}

impl PrivacySettings {
    /// The platform's blind index.
    pub fn blind_index(&self) -> anyhow::Result<crate::privacy::BlindIndex> {
        crate::privacy::BlindIndex::from_secret(&self.blind_index_key)
            .context("privacy.blind_index_key")
    }

    /// The national blind index, where its key is set.
    pub fn national_index(&self) -> anyhow::Result<Option<crate::privacy::BlindIndex>> {
        use secrecy::ExposeSecret;
        match &self.national_index_key {
            Some(key) if !key.expose_secret().trim().is_empty() => {
                crate::privacy::BlindIndex::from_secret(key).map(Some)
            }
            _ => Ok(None),
        }
        .context("privacy.national_index_key")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdmissionSettings {
    pub max_inflight: usize,
    pub min_inflight: usize,
    pub latency_target_ms: u64,
    pub retry_after_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TimeoutSettings {
    pub request_ms: u64,
    pub exempt_prefixes: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub json_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub per_ip_per_second: u32,
    pub per_ip_burst: u32,
    pub per_key_per_second: u32,
    pub per_key_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    pub relay_enabled: bool,
    pub relay_batch: i64,
    pub consumers_enabled: bool,
    pub idle_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TlsSettings {
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    pub required: bool,
}

/// The entries of a comma-separated setting, trimmed, the empty ones skipped.
pub fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// Settings checked against their bounds at start, one line each:
/// `check_bounds!("scoring.lookback_days": self.lookback_days => 14..=365, "x.y": self.y => 100..)` fails with
/// "scoring.lookback_days must be 14 to 365" or "x.y must be at least 100".
#[macro_export]
macro_rules! check_bounds {
    ($($name:literal: $value:expr => $bound:expr),+ $(,)?) => {
        $($crate::settings::check_bound($name, $value, $bound)?;)+
    };
}

/// A bound a setting must keep: a closed range or a floor.
pub trait Bound<T> {
    fn holds(&self, value: &T) -> bool;
    fn describe(&self) -> String;
}

impl<T: PartialOrd + Display> Bound<T> for RangeInclusive<T> {
    fn holds(&self, value: &T) -> bool {
        self.contains(value)
    }
    fn describe(&self) -> String {
        format!("{} to {}", self.start(), self.end())
    }
}

impl<T: PartialOrd + Display> Bound<T> for RangeFrom<T> {
    fn holds(&self, value: &T) -> bool {
        self.contains(value)
    }
    fn describe(&self) -> String {
        format!("at least {}", self.start)
    }
}

pub fn check_bound<T>(name: &str, value: T, bound: impl Bound<T>) -> anyhow::Result<()> {
    anyhow::ensure!(bound.holds(&value), "{name} must be {}", bound.describe());
    Ok(())
}

/// A service's settings: the platform sections, and the service's own section (`[identity]`, …).
#[derive(Debug, Clone)]
pub struct Settings<S> {
    pub platform: PlatformSettings,
    pub service: S,
}

/// Loads settings from the layers in order. `service_defaults` is the service's embedded
/// `config/default.toml`; `section` names its own table. `APP_ENV` picks `config/{APP_ENV}.toml` under
/// `HC_CONFIG_DIR` (default `config`).
pub fn load<S: DeserializeOwned>(
    service_defaults: &str,
    section: &str,
) -> anyhow::Result<Settings<S>> {
    load_with(
        service_defaults,
        section,
        std::env::var("APP_ENV").ok(),
        |builder| builder,
    )
}

/// The settings builder `load_with` hands to its `overrides`.
pub type Builder = config::ConfigBuilder<config::builder::DefaultState>;

/// Like [`load`], with a hook to add overrides last (tests set ports, URLs and switches this way).
pub fn load_with<S: DeserializeOwned>(
    service_defaults: &str,
    section: &str,
    app_env: Option<String>,
    overrides: impl FnOnce(Builder) -> Builder,
) -> anyhow::Result<Settings<S>> {
    let mut builder = Config::builder()
        .add_source(File::from_str(PLATFORM_DEFAULTS, FileFormat::Toml))
        .add_source(File::from_str(service_defaults, FileFormat::Toml));
    if let Some(env) = app_env.filter(|e| !e.is_empty()) {
        let dir = std::env::var("HC_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("config"));
        let path = dir.join(format!("{env}.toml"));
        anyhow::ensure!(
            path.exists(),
            "APP_ENV={env} but {} does not exist",
            path.display()
        );
        builder = builder.add_source(File::from(path));
    }
    builder = builder.add_source(
        Environment::with_prefix("HC")
            .prefix_separator("__")
            .separator("__"),
    );
    let config = overrides(builder).build().context("reading settings")?;
    // Two plain deserialisations rather than one `#[serde(flatten)]` struct: flatten loses config's
    // string-to-number conversion for environment values and the key path in errors.
    let platform = config
        .clone()
        .try_deserialize()
        .context("invalid settings")?;
    let service = config
        .get(section)
        .with_context(|| format!("invalid settings in [{section}]"))?;
    Ok(Settings { platform, service })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Demo {
        greeting: String,
    }

    const DEMO: &str = "[server]\nport = 8081\n[demo]\ngreeting = \"hi\"\n";

    #[test]
    fn layers_apply_in_order_and_numbers_parse_from_overrides() {
        let settings = load_with::<Demo>(DEMO, "demo", None, |b| {
            b.set_override("admission.max_inflight", "0")
                .expect("override")
        })
        .expect("settings load");
        assert_eq!(settings.platform.server.port, 8081);
        assert_eq!(settings.platform.admission.max_inflight, 0);
        assert_eq!(
            settings.platform.database.pool_max_size, 16,
            "platform default kept"
        );
        assert_eq!(settings.service.greeting, "hi");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = load_with::<Demo>(DEMO, "demo", None, |b| {
            b.set_override("server.port", "eighty").expect("override")
        })
        .expect_err("bad port");
        assert!(format!("{err:#}").contains("server.port"), "{err:#}");
    }

    #[test]
    fn a_setting_out_of_its_bounds_is_named_with_them() {
        let check = |days: i64, ms: u64| -> anyhow::Result<()> {
            crate::check_bounds!("x.days": days => 14..=365, "x.ms": ms => 100..);
            Ok(())
        };
        check(14, 100).expect("at the bounds");
        check(365, u64::MAX).expect("at the top");
        let err = check(13, 100).expect_err("below the range");
        assert_eq!(err.to_string(), "x.days must be 14 to 365");
        let err = check(366, 100).expect_err("above the range");
        assert_eq!(err.to_string(), "x.days must be 14 to 365");
        let err = check(14, 99).expect_err("below the floor");
        assert_eq!(err.to_string(), "x.ms must be at least 100");
    }

    #[test]
    fn a_missing_app_env_file_is_an_error() {
        let err = load_with::<Demo>(DEMO, "demo", Some("nowhere".into()), |b| b)
            .expect_err("missing file");
        assert!(format!("{err:#}").contains("nowhere.toml"));
    }
}
