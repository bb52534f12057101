use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::providers::ProviderSettings;

/// The `[identity]` section (documented in config/default.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct IdentitySettings {
    pub signing_keys: SecretString,
    pub data_keys: SecretString,
    pub admin_key: SecretString,
    pub citizen_token_ttl_seconds: i64,
    pub client_token_ttl_seconds: i64,
    pub refresh_token_ttl_days: i64,
    pub sms: ProviderSettings,
    pub real_name: ProviderSettings,
    pub otp: OtpSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OtpSettings {
    pub ttl_seconds: u64,
    pub max_attempts: u32,
    /// To one phone from one client address.
    pub per_phone_per_hour: u32,
    /// To one phone from every address together: bounds what a phone receives, set above what one address may ask.
    pub per_phone_all_addresses_per_hour: u32,
    pub per_ip_per_hour: u32,
}

impl IdentitySettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.otp.per_phone_all_addresses_per_hour >= self.otp.per_phone_per_hour,
            "identity.otp.per_phone_all_addresses_per_hour must be at least identity.otp.per_phone_per_hour"
        );
        hc_platform::check_bounds!(
            "identity.citizen_token_ttl_seconds": self.citizen_token_ttl_seconds => 1..,
            "identity.client_token_ttl_seconds": self.client_token_ttl_seconds => 1..,
            "identity.refresh_token_ttl_days": self.refresh_token_ttl_days => 1..,
            "identity.otp.max_attempts": self.otp.max_attempts => 1..,
            "identity.otp.ttl_seconds": self.otp.ttl_seconds => 60..=3600,
        );
        let admin = self.admin_key.expose_secret();
        anyhow::ensure!(
            admin.is_empty() || admin.len() >= 16,
            "identity.admin_key must be at least 16 characters"
        );
        Ok(())
    }
}
