//! The declaration service: citizens' daily health declarations, and the official facts every colour is computed
//! from (test results, case lists, visits), imported in bulk. Every committed change is announced on Redis Streams
//! through the transactional outbox.

mod db;
pub mod exchange;
mod imports;
mod links;
mod openapi;
mod routes;
mod settings;
mod state;

use std::sync::Arc;

use actix_web::web;
use hc_platform::auth::TokenVerifier;
use hc_platform::service::{Launch, Running, Service, launch};
use hc_platform::settings::Settings;
use hc_platform::store::Store;
use hc_platform::tls::Tls;

pub use imports::{Format, FramingError, Kind, RowError, check_upload};
pub use links::link_people;
pub use settings::DeclarationSettings;
use state::AppState;

pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");
pub const SCHEMA: &str = "declaration";

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The declaration service, as its binary and the tests start it.
pub struct Declaration;

impl Service for Declaration {
    const NAME: &'static str = "declaration";
    const SCHEMA: Option<&'static str> = Some(SCHEMA);
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    type Settings = DeclarationSettings;

    async fn start(settings: Settings<DeclarationSettings>) -> anyhow::Result<Running> {
        let Settings { platform, service } = settings;
        service.validate()?;
        let tls = Tls::from_settings(&platform.tls)?;
        let db = hc_platform::db::pool(&platform.database, &tls, SCHEMA)?;
        hc_platform::db::migrate(&db, SCHEMA, embedded::migrations::runner()).await?;
        let store = Store::connect(&platform.redis, &tls).await?;
        let index = platform.privacy.blind_index()?;
        let db_read = hc_platform::db::read_pool(&platform.database, &tls, SCHEMA, &db)?;
        let hub = exchange::Hub::from_settings(&service, &tls)?;
        let national = platform.privacy.national_index()?;
        anyhow::ensure!(
            hub.is_none() || national.is_some(),
            "declaration.hub_url is set, so privacy.national_index_key must be too"
        );
        let exchange_every = std::time::Duration::from_millis(service.hub_exchange_ms);
        let state = web::Data::new(AppState {
            db: db.clone(),
            db_read,
            index,
            national: if hub.is_some() { national } else { None },
            import_permits: (service.import_max_concurrent > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(service.import_max_concurrent))),
            imports_by_client: Default::default(),
            settings: Arc::new(service),
        });
        let running = launch(
            Launch {
                platform: &platform,
                schema: SCHEMA,
                db: Some(db.clone()),
                store,
                verifier: TokenVerifier::from_jwks_url(&platform.auth, &tls)?,
                openapi: <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
            },
            move |cfg| {
                cfg.app_data(state.clone()).configure(routes::configure);
            },
        )?;
        // Registrations come in bulk: a batch of them is one insert.
        let exchanging = hub.is_some();
        let d = db.clone();
        running.consume_grouped(
            hc_platform::events::PersonRegistered::STREAM,
            200,
            move |events| link_people(d.clone(), events, exchanging),
        );
        if let Some(hub) = hub {
            running.spawn_background(|stop| exchange::run(hub, db, exchange_every, stop));
        }
        Ok(running)
    }
}
