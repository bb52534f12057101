//! The scoring service: a projection of every person's facts (from events), rules as data per region, and the
//! explained colour of every person, recoloured in batches when facts, risk levels or rules change, and when time
//! alone changes it.

mod audit;
pub mod county_map;
mod db;
mod events;
pub mod facts;
pub mod loader;
mod openapi;
pub mod projection;
mod pulse;
pub mod recolour;
pub mod refill;
mod routes;
pub mod rules;
pub mod scheduler;
mod settings;
mod state;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use deadpool_postgres::GenericClient;
use hc_platform::auth::TokenVerifier;
use hc_platform::service::{Launch, Running, Service, launch};
use hc_platform::settings::Settings;
use hc_platform::store::Store;
use hc_platform::tls::Tls;

use events::Fact;
pub use recolour::Recolourer;
pub use settings::ScoringSettings;
use state::AppState;

pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");
pub const SCHEMA: &str = "scoring";

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Runs the migrations and stores the shipped rule sets as version 1 of any region that has none. Replicas starting
/// together all try it: the first insert wins and the others do nothing (`NOT EXISTS` alone let a second replica,
/// whose snapshot predated the first one's commit, fail on the unique key and exit).
pub async fn prepare(db: &deadpool_postgres::Pool) -> anyhow::Result<()> {
    hc_platform::db::migrate(db, SCHEMA, embedded::migrations::runner()).await?;
    let client = db.get().await?;
    for (region, text) in rules::SHIPPED {
        let doc: rules::RuleSetDoc = serde_json::from_str(text).context("shipped rule set")?;
        client
            .execute(
                "INSERT INTO rule_sets (region, version, document, effective_from, created_by)
                 SELECT $1, 1, $2, '2020-01-01T00:00:00Z', 'shipped'
                 WHERE NOT EXISTS (SELECT 1 FROM rule_sets WHERE region = $1)
                 ON CONFLICT ON CONSTRAINT rule_sets_version DO NOTHING",
                &[region, &serde_json::to_value(&doc)?],
            )
            .await?;
    }
    Ok(())
}

/// The scoring service, as its binary and the tests start it.
pub struct Scoring;

impl Service for Scoring {
    const NAME: &'static str = "scoring";
    const SCHEMA: Option<&'static str> = Some(SCHEMA);
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    type Settings = ScoringSettings;

    async fn start(settings: Settings<ScoringSettings>) -> anyhow::Result<Running> {
        let Settings { platform, service } = settings;
        service.validate()?;
        let tls = Tls::from_settings(&platform.tls)?;
        let db = hc_platform::db::pool(&platform.database, &tls, SCHEMA)?;
        prepare(&db).await?;
        let store = Store::connect(&platform.redis, &tls).await?;
        let index = platform.privacy.blind_index()?;
        let settings = Arc::new(service);
        let recolourer = Arc::new(Recolourer::new(db.clone(), store.clone(), settings.clone()));
        let county_map = Arc::new(county_map::CountyMap::new(
            db.clone(),
            settings.county_map.clone(),
            recolourer.clone(),
        ));
        let state = web::Data::new(AppState {
            county_map: county_map.clone(),
            db: db.clone(),
            store: store.clone(),
            index,
            settings: settings.clone(),
            recolourer: recolourer.clone(),
            risk_map: Default::default(),
        });
        let running = launch(
            Launch {
                platform: &platform,
                schema: SCHEMA,
                db: Some(db.clone()),
                store: store.clone(),
                verifier: TokenVerifier::from_jwks_url(&platform.auth, &tls)?,
                openapi: <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
            },
            move |cfg| {
                cfg.app_data(state.clone()).configure(routes::configure);
            },
        )?;
        let store_for_refill = store;
        // Registrations and declarations come in bulk (a city registering, a morning's declarations): a batch
        // is one transaction and one recolouring.
        for (fact, batch) in [
            (Fact::PersonRegistered, 200),
            (Fact::DeclarationSubmitted, 200),
        ] {
            let r = recolourer.clone();
            running.consume_grouped(fact.stream(), batch, move |events| {
                events::handle(r.clone(), fact, events)
            });
        }
        // An import event carries up to a chunk of rows already; a consumer behind (after an outage, or labs
        // finishing together) applies four at once, one transaction and one recolouring of everyone they touch.
        let r = recolourer.clone();
        running.consume_grouped(Fact::FactsImported.stream(), 4, move |events| {
            events::handle(r.clone(), Fact::FactsImported, events)
        });
        let pulse_every = Duration::from_millis(settings.pulse_interval_ms);
        running.spawn_background({
            let store = store_for_refill.clone();
            move |stop| pulse::run(store, pulse_every, stop)
        });
        running.spawn_background({
            let (db, store) = (db.clone(), store_for_refill);
            |stop| refill::run(db, store, stop)
        });
        running.spawn_background(|stop| county_map::run(county_map, stop));
        if settings.scheduler_enabled {
            let interval = Duration::from_millis(settings.scheduler_interval_ms);
            running.spawn_background(|stop| scheduler::run(recolourer, interval, stop));
        }
        Ok(running)
    }
}

/// Counts rows of a table (for tests and the benchmark).
pub async fn count(client: &impl GenericClient, sql: &str) -> anyhow::Result<i64> {
    Ok(client.query_one(sql, &[]).await?.get(0))
}
