//! The declaration service: citizens' daily health declarations, and the official facts every colour is computed
//! from (test results, case lists, visits), imported in bulk. Every committed change is announced on Redis Streams
//! through the transactional outbox.

mod china_time;
mod db;
mod imports;
mod links;
mod openapi;
mod routes;
mod settings;
mod state;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use hc_platform::auth::TokenVerifier;
use hc_platform::defences::Defences;
use hc_platform::health::Dependencies;
use hc_platform::http::{Platform, serve};
use hc_platform::outbox::Relay;
use hc_platform::privacy::BlindIndex;
use hc_platform::settings::Settings;
use hc_platform::store::Store;
use hc_platform::streams::Consumer;
use tokio_util::sync::CancellationToken;

pub use links::link_person;
pub use settings::DeclarationSettings;
use state::AppState;

pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");
pub const SCHEMA: &str = "declaration";

mod embedded {
    refinery::embed_migrations!("migrations");
}

pub struct Application {
    port: u16,
    server: Server,
    background: CancellationToken,
}

impl Application {
    pub async fn build(settings: Settings<DeclarationSettings>) -> anyhow::Result<Self> {
        let Settings { platform, service } = settings;
        service.validate()?;
        let db = hc_platform::db::pool(&platform.database, SCHEMA)?;
        hc_platform::db::migrate(&db, SCHEMA, embedded::migrations::runner()).await?;
        let store = Store::connect(&platform.redis).await?;
        let index = BlindIndex::from_secret(&platform.privacy.blind_index_key)
            .context("privacy.blind_index_key")?;

        let background = CancellationToken::new();
        let idle = Duration::from_millis(platform.events.idle_ms);
        if platform.events.relay_enabled {
            let relay = Relay::new(
                db.clone(),
                store.clone(),
                SCHEMA,
                platform.events.relay_batch,
            );
            tokio::spawn(relay.run(background.clone(), idle));
        }
        if platform.events.consumers_enabled {
            let consumer = Consumer::new(
                store.clone(),
                "person.registered",
                SCHEMA,
                &consumer_name(),
                200,
            );
            let pool = db.clone();
            tokio::spawn(consumer.run(background.clone(), idle, move |event| {
                link_person(pool.clone(), event)
            }));
        }

        let state = web::Data::new(AppState {
            db: db.clone(),
            index,
            settings: Arc::new(service),
        });
        let listener = TcpListener::bind((platform.server.host.as_str(), platform.server.port))
            .with_context(|| {
                format!("binding {}:{}", platform.server.host, platform.server.port)
            })?;
        let port = listener.local_addr()?.port();
        let http = Platform {
            defences: web::Data::new(Defences::from_settings(&platform)),
            verifier: web::Data::new(TokenVerifier::from_jwks_url(&platform.auth)),
            dependencies: web::Data::new(Dependencies {
                db: Some(db),
                redis: Some(store),
            }),
            json_body_bytes: platform.limits.json_body_bytes,
            workers: platform.server.workers,
        };
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

/// A consumer name unique to this process, so each replica has its own pending entries.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!("{host}-{}", std::process::id())
}
