//! The verification service: checkpoints verify codes (ours, judged on the person's current status, and other
//! regions' through their signed trust lists) and ID cards against their venue's policy; citizens check in with
//! venue codes; every scan and check-in is group-committed before the answer, kept by day for contact tracing.

pub mod certlogic;
mod db;
pub mod dcc_testcase;
pub use db::scans::EXPOSURE_VISITS;
pub mod events;
pub mod hub;
mod openapi;
pub mod partitions;
pub mod policy;
mod routes;
pub mod scans;
mod settings;
mod state;
pub mod status;
pub mod trust;
pub mod venues;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use hc_platform::auth::TokenVerifier;
use hc_platform::service::{Launch, Running, Service, launch};
use hc_platform::settings::Settings;
use hc_platform::store::Store;
use hc_platform::tls::Tls;
use secrecy::ExposeSecret;

pub use routes::venues::{venue_code, venue_of_code};
pub use settings::VerificationSettings;
use state::AppState;

pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");
pub const SCHEMA: &str = "verification";

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The verification service, as its binary and the tests start it.
pub struct Verification;

impl Service for Verification {
    const NAME: &'static str = "verification";
    const SCHEMA: Option<&'static str> = Some(SCHEMA);
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    type Settings = VerificationSettings;

    async fn start(settings: Settings<VerificationSettings>) -> anyhow::Result<Running> {
        let Settings { platform, service } = settings;
        service.validate()?;
        let tls = Tls::from_settings(&platform.tls)?;
        let db = hc_platform::db::pool(&platform.database, &tls, SCHEMA)?;
        hc_platform::db::migrate(&db, SCHEMA, embedded::migrations::runner()).await?;
        partitions::maintain(
            &db.get().await?,
            service.partition_days_ahead,
            service.retention_days,
        )
        .await
        .context("creating the scan partitions")?;
        let store = Store::connect(&platform.redis, &tls).await?;
        let index = platform.privacy.blind_index()?;
        let pseudonyms = hc_token::Pseudonyms::from_spec(service.pseudonym_keys.expose_secret())
            .context("verification.pseudonym_keys (the same secret as rendering.pseudonym_keys)")?;
        let trust = Arc::new(trust::Trust::from_settings(&service, &tls)?);
        trust.reload_peers(&db.get().await?).await?;
        trust.reload_dcc_signers(&db.get().await?).await?;
        let settings = Arc::new(service);
        let venues = Arc::new(venues::Venues::new(
            db.clone(),
            Duration::from_millis(settings.venue_cache_ms),
        ));
        // The committer outlives the HTTP server's shutdown until it drains (its own token, cancelled last).
        let commits = tokio_util::sync::CancellationToken::new();
        let (scans, committer) = scans::ScanLog::start(db.clone(), &settings, commits.clone());
        let state = web::Data::new(AppState {
            db: db.clone(),
            store: store.clone(),
            index,
            settings: settings.clone(),
            trust: trust.clone(),
            pseudonyms: Arc::new(pseudonyms),
            venues,
            scans,
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
        let d = db.clone();
        // Registrations come in bulk: a batch of them is one insert.
        running.consume_grouped(
            hc_platform::events::PersonRegistered::STREAM,
            200,
            move |events| events::people_registered(d.clone(), events),
        );
        let d = db.clone();
        running.consume_batched(
            hc_platform::events::FactsImported::STREAM,
            4,
            move |event| events::facts_imported(d.clone(), event),
        );
        let (keys_every, peers_every, hub_every) = (
            Duration::from_millis(settings.keys_refresh_ms),
            Duration::from_millis(settings.peers_refresh_ms),
            Duration::from_millis(settings.hub_refresh_ms),
        );
        let d = db.clone();
        running.spawn_background(|stop| {
            trust.run_refresh(d, keys_every, peers_every, hub_every, stop)
        });
        let (days_ahead, retention_days) = (settings.partition_days_ahead, settings.retention_days);
        let every = Duration::from_millis(settings.maintenance_interval_ms);
        running
            .spawn_background(|stop| partitions::run(db, days_ahead, retention_days, every, stop));
        // The scan log drains what is queued after the HTTP server has stopped taking requests, and shutdown waits
        // for it: every scan acknowledged is committed.
        running.spawn_background(|stop| async move {
            stop.cancelled().await;
            commits.cancel();
            let _ = committer.await;
        });
        Ok(running)
    }

    fn generate_secrets() -> Option<anyhow::Result<String>> {
        Some(generate_secrets())
    }
}

/// Development secrets for `make up`: the trust list's root key.
pub fn generate_secrets() -> anyhow::Result<String> {
    let kid = format!("root{}", chrono::Utc::now().format("%Y%m"));
    Ok(format!(
        "HC__VERIFICATION__ROOT_KEY={kid}:{}\n",
        hc_platform::privacy::random_base64(32)?
    ))
}
