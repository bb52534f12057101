//! The national trust hub (`hc-hub`, a binary of this crate): each region uploads its signed trust list, which the hub
//! checks against the region's registered root key; the hub publishes one national trust list, signed by the
//! national root, with every region's own keys and colour table. A platform then pins one root, the national one,
//! instead of one per peer. A region withdraws a key by uploading a newer list without it.
//!
//! A binary of the verification crate rather than a mode of the verification service: it shares the trust list's
//! format and checks (the same code verifies a region's list here and a peer's list there), but it is deployed once
//! for the country, holds the national root key, which no region's service should hold, and has no venues, scans or
//! people.

mod db;
mod exchange;
mod routes;

use std::collections::HashMap;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hc_platform::auth::TokenVerifier;
use hc_platform::service::{Launch, Running, Service, launch};
use hc_platform::settings::Settings;
use hc_platform::store::Store;
use hc_platform::tls::Tls;
use hc_token::{SigningKey, VerifyingKey};
use secrecy::ExposeSecret;
use serde::Deserialize;

pub const SCHEMA: &str = "hub";
pub const DEFAULT_CONFIG: &str = include_str!("../../config/hub.toml");

mod embedded {
    refinery::embed_migrations!("hub_migrations");
}

/// The `[hub]` section (documented in config/hub.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct HubSettings {
    pub region: String,
    pub root_key: secrecy::SecretString,
    pub region_roots: String,
    pub exchange_keys: String,
    pub unrouted_days: i32,
    pub list_hours: i64,
}

/// What the handlers share.
pub struct HubState {
    pub db: deadpool_postgres::Pool,
    pub region: String,
    pub root: SigningKey,
    pub roots: HashMap<String, VerifyingKey>,
    /// Each region's key for the fact exchange.
    pub exchange_keys: HashMap<String, VerifyingKey>,
    pub unrouted_days: i32,
    pub list_hours: i64,
}

impl HubState {
    fn from_settings(s: &HubSettings, db: deadpool_postgres::Pool) -> anyhow::Result<Self> {
        hc_platform::check_bounds!(
            "hub.unrouted_days": s.unrouted_days => 1..=60,
            "hub.list_hours": s.list_hours => 1..=720,
        );
        let (kid, seed) = s
            .root_key
            .expose_secret()
            .trim()
            .split_once(':')
            .context("hub.root_key is not kid:base64-seed (see hc-hub generate-secrets)")?;
        let seed = STANDARD
            .decode(seed)
            .context("hub.root_key: the seed is not base64")?;
        let root = SigningKey::from_seed(&s.region, kid, &seed).context("hub.root_key")?;
        Ok(Self {
            db,
            region: s.region.clone(),
            root,
            roots: keys_by_region(&s.region_roots, "hub.region_roots")?,
            exchange_keys: keys_by_region(&s.exchange_keys, "hub.exchange_keys")?,
            unrouted_days: s.unrouted_days,
            list_hours: s.list_hours,
        })
    }
}

/// `region=kid:base64url-key`, comma-separated.
pub(crate) fn keys_by_region(
    spec: &str,
    setting: &str,
) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let mut keys = HashMap::new();
    for entry in hc_platform::settings::list(spec) {
        let key = hc_token::pinned_root(entry)
            .with_context(|| format!("{setting}: {entry:?} is not region=kid:base64url-key"))?;
        keys.insert(key.issuer.clone(), key);
    }
    Ok(keys)
}

pub struct Hub;

impl Service for Hub {
    const NAME: &'static str = "hub";
    const SCHEMA: Option<&'static str> = Some(SCHEMA);
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    type Settings = HubSettings;

    async fn start(settings: Settings<HubSettings>) -> anyhow::Result<Running> {
        let Settings { platform, service } = settings;
        let tls = Tls::from_settings(&platform.tls)?;
        let db = hc_platform::db::pool(&platform.database, &tls, SCHEMA)?;
        hc_platform::db::migrate(&db, SCHEMA, embedded::migrations::runner()).await?;
        let store = Store::connect(&platform.redis, &tls).await?;
        let state = actix_web::web::Data::new(HubState::from_settings(&service, db.clone())?);
        launch(
            Launch {
                platform: &platform,
                schema: SCHEMA,
                db: Some(db),
                store,
                verifier: TokenVerifier::from_jwks_url(&platform.auth, &tls)?,
                openapi: <routes::HubApi as utoipa::OpenApi>::openapi(),
            },
            move |cfg| {
                cfg.app_data(state.clone()).configure(routes::configure);
            },
        )
    }

    fn generate_secrets() -> Option<anyhow::Result<String>> {
        Some(hc_platform::privacy::random_base64(32).map(|seed| {
            format!(
                "HC__HUB__ROOT_KEY=national{}:{seed}\n",
                chrono::Utc::now().format("%Y%m")
            )
        }))
    }
}
