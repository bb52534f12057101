//! The identity service: citizens register and sign in with a one-time code, official clients get scoped
//! API keys, and every service verifies the access tokens issued here against `GET /v1/auth/keys`.

mod db;
mod openapi;
mod otp;
mod providers;
mod rate_limit;
pub mod rotation;
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
    const SCHEMA: Option<&'static str> = Some(SCHEMA);
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
        let cipher = FieldCipher::from_spec(&service.data_keys).context("identity.data_keys")?;
        let index = platform.privacy.blind_index()?;
        index_key_check(&db, &cipher, &index).await?;
        let keys = KeyRing::from_spec(&service.signing_keys).context("identity.signing_keys")?;
        let verifier = keys.verifier(&platform.auth)?;
        let state = web::Data::new(AppState {
            db: db.clone(),
            store: store.clone(),
            keys: Arc::new(keys),
            cipher: Arc::new(cipher),
            index,
            national: platform.privacy.national_index()?,
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
                openapi: <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
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

/// Refuses to start when `privacy.blind_index_key` does not index the stored persons (another key, or data indexed
/// before the per-purpose keys): every service would then find nobody by ID number and key new facts apart from the
/// old ones. One stored person is enough to tell; identity is the one service that can, holding the ID numbers.
async fn index_key_check(
    db: &deadpool_postgres::Pool,
    cipher: &FieldCipher,
    index: &BlindIndex,
) -> anyhow::Result<()> {
    let Some((person, stored)) = db::persons::any_with_index(&db.get().await?).await? else {
        return Ok(());
    };
    let sealed = &person.id_number_ct;
    let id = vault::open(
        cipher,
        person.id,
        &person.data_key_id,
        vault::Field::IdNumber,
        sealed,
    )
    .with_context(|| {
        format!("{KEYS_MISMATCH}: identity.data_keys do not open the stored persons")
    })?;
    let today = hc_domain::china_time::day_of(chrono::Utc::now());
    let id = hc_domain::IdNumber::parse(&id, today).context("a stored ID number")?;
    anyhow::ensure!(
        index.id_number(&id) == stored,
        "{KEYS_MISMATCH}: privacy.blind_index_key is another key than the stored indexes were made with, or they \
         predate the per-purpose keys; re-index them (docs/deploy.md, \"Rotate keys\") or start from an empty database"
    );
    Ok(())
}

/// The start of the errors of [`index_key_check`], which `make up` recognises to reset its demo data.
pub const KEYS_MISMATCH: &str = "the stored persons were sealed or indexed under other keys";

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
