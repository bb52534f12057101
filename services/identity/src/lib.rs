//! The identity service: citizens register and sign in with a one-time code, official clients get scoped
//! API keys, and every service verifies the access tokens issued here against `GET /v1/auth/keys`.

mod db;
mod openapi;
mod otp;
mod providers;
mod rate_limit;
mod routes;
mod settings;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod vault;

use std::sync::Arc;

use actix_web::web;
use anyhow::Context;
use hc_platform::auth::KeyRing;
use hc_platform::privacy::{BlindIndex, FieldCipher, random_base64};
use hc_platform::service::{Launch, Running, Service, launch};
use hc_platform::settings::Settings;
use hc_platform::store::Store;
use hc_platform::tls::Tls;

pub use otp::{Purpose as OtpPurpose, otp_key};
pub use providers::{dev_notice_key, dev_real_name_ticket, dev_sms_key};
pub use settings::{IdentitySettings, OtpSettings};
use state::AppState;

/// The embedded defaults (`config/default.toml`); its comments document every key.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

/// The PostgreSQL schema this service owns.
pub const SCHEMA: &str = "identity";

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The identity service, as its binary and the tests start it.
pub struct Identity;

impl Service for Identity {
    const NAME: &'static str = "identity";
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    type Settings = IdentitySettings;

    /// Connects to PostgreSQL and Redis, applies migrations and binds the listener (port 0 picks a free one).
    async fn start(settings: Settings<IdentitySettings>) -> anyhow::Result<Running> {
        let Settings { platform, service } = settings;
        service.validate()?;
        let tls = Tls::from_settings(&platform.tls)?;
        let db = hc_platform::db::pool(&platform.database, &tls, SCHEMA)?;
        hc_platform::db::migrate(&db, SCHEMA, embedded::migrations::runner()).await?;
        let store = Store::connect(&platform.redis, &tls).await?;
        let keys = KeyRing::from_spec(&service.signing_keys).context("identity.signing_keys")?;
        let verifier = keys.verifier(&platform.auth)?;
        let state = web::Data::new(AppState {
            db: db.clone(),
            store: store.clone(),
            keys: Arc::new(keys),
            cipher: Arc::new(
                FieldCipher::from_spec(&service.data_keys).context("identity.data_keys")?,
            ),
            index: BlindIndex::from_secret(&platform.privacy.blind_index_key)
                .context("privacy.blind_index_key")?,
            sms: Arc::new(providers::Sms::new(&service.sms, store.clone(), &tls)?),
            real_name: Arc::new(providers::RealName::new(&service.real_name, &tls)?),
            auth: platform.auth.clone(),
            settings: Arc::new(service),
        });
        let running = launch(
            Launch {
                platform: &platform,
                schema: SCHEMA,
                db: Some(db),
                store,
                verifier,
            },
            move |cfg| {
                cfg.app_data(state.clone()).configure(routes::configure);
            },
        )?;
        Ok(running)
    }

    fn generate_secrets() -> Option<anyhow::Result<String>> {
        Some(generate_secrets())
    }
}

/// Fresh secrets as environment lines, for a new deployment or `make up`.
pub fn generate_secrets() -> anyhow::Result<String> {
    let kid = format!("k{}", chrono::Utc::now().format("%Y%m%d"));
    Ok(format!(
        "HC__IDENTITY__SIGNING_KEYS={}\nHC__IDENTITY__DATA_KEYS=d1:{}\nHC__IDENTITY__ADMIN_KEY={}\nHC__PRIVACY__BLIND_INDEX_KEY={}\n",
        KeyRing::generate_spec(&kid)?,
        random_base64(32)?,
        random_base64(24)?.replace(['+', '/'], "x"),
        random_base64(32)?,
    ))
}
