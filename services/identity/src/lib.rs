//! The identity service: citizens register and sign in with a one-time code, official clients get scoped
//! API keys, and every service verifies the access tokens issued here against `GET /v1/auth/keys`.

mod db;
mod openapi;
mod otp;
mod rate_limit;
mod routes;
mod settings;
mod sms;
mod state;
mod vault;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use hc_platform::auth::KeyRing;
use hc_platform::defences::Defences;
use hc_platform::health::Dependencies;
use hc_platform::http::{Platform, serve};
use hc_platform::outbox::Relay;
use hc_platform::privacy::{BlindIndex, FieldCipher, random_base64};
use hc_platform::settings::Settings;
use hc_platform::store::Store;
use tokio_util::sync::CancellationToken;

pub use otp::otp_key;
pub use settings::{IdentitySettings, OtpSettings};
pub use sms::dev_sms_key;
use state::AppState;

/// The embedded defaults (`config/default.toml`); its comments document every key.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

/// The PostgreSQL schema this service owns.
pub const SCHEMA: &str = "identity";

mod embedded {
    refinery::embed_migrations!("migrations");
}

pub struct Application {
    port: u16,
    server: Server,
    /// Stops the background loops when the server stops.
    background: CancellationToken,
}

impl Application {
    /// Connects to PostgreSQL and Redis, applies migrations and binds the listener (port 0 picks a free one).
    pub async fn build(settings: Settings<IdentitySettings>) -> anyhow::Result<Self> {
        let Settings { platform, service } = settings;
        service.validate()?;
        let db = hc_platform::db::pool(&platform.database, SCHEMA)?;
        hc_platform::db::migrate(&db, SCHEMA, embedded::migrations::runner()).await?;
        let store = Store::connect(&platform.redis).await?;
        let keys = KeyRing::from_spec(&service.signing_keys).context("identity.signing_keys")?;
        let verifier = keys.verifier(&platform.auth)?;
        let state = AppState {
            db: db.clone(),
            store: store.clone(),
            keys: Arc::new(keys),
            cipher: Arc::new(
                FieldCipher::from_spec(&service.data_keys).context("identity.data_keys")?,
            ),
            index: BlindIndex::from_secret(&platform.privacy.blind_index_key)
                .context("privacy.blind_index_key")?,
            sms: sms::gateway(&service, store.clone())?,
            auth: platform.auth.clone(),
            settings: Arc::new(service),
        };
        let listener = TcpListener::bind((platform.server.host.as_str(), platform.server.port))
            .with_context(|| {
                format!("binding {}:{}", platform.server.host, platform.server.port)
            })?;
        let port = listener.local_addr()?.port();
        let background = CancellationToken::new();
        if platform.events.relay_enabled {
            let relay = Relay::new(
                db.clone(),
                store.clone(),
                SCHEMA,
                platform.events.relay_batch,
            );
            tokio::spawn(relay.run(
                background.clone(),
                Duration::from_millis(platform.events.idle_ms),
            ));
        }
        let http = Platform {
            defences: web::Data::new(Defences::from_settings(&platform)),
            verifier: web::Data::new(verifier),
            dependencies: web::Data::new(Dependencies {
                db: Some(db),
                redis: Some(store),
            }),
            json_body_bytes: platform.limits.json_body_bytes,
            workers: platform.server.workers,
        };
        let state = web::Data::new(state);
        let server = serve(listener, http, move |cfg| {
            cfg.app_data(state.clone()).configure(routes::configure);
        })?;
        Ok(Self {
            port,
            server,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let outcome = self.server.await.context("HTTP server");
        self.background.cancel();
        outcome
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
