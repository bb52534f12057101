//! The rendering service: a citizen's code, signed over their current status (from Redis, else scoring, else the
//! last known one flagged stale), rendered as a QR code and cached per status version and time bucket; and the
//! public keys that verify it. It owns no database.

pub mod cache;
pub mod keys;
pub mod memory;
mod openapi;
mod pulse;
pub mod render;
mod routes;
mod settings;
mod state;
pub mod status;

use std::sync::Arc;

use actix_web::web;
use hc_platform::auth::TokenVerifier;
use hc_platform::service::{Launch, Running, Service, launch};
use hc_platform::settings::Settings;
use hc_platform::store::Store;
use hc_platform::tls::Tls;

pub use keys::generate_secrets;
pub use routes::codes::CodePayload;
pub use settings::RenderingSettings;
use state::AppState;

pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");
/// Names its metrics and logs; rendering has no schema of its own.
pub const SERVICE: &str = "rendering";

/// The rendering service, as its binary and the tests start it.
pub struct Rendering;

impl Service for Rendering {
    const NAME: &'static str = "rendering";
    const DEFAULT_CONFIG: &'static str = DEFAULT_CONFIG;
    type Settings = RenderingSettings;

    async fn start(settings: Settings<RenderingSettings>) -> anyhow::Result<Running> {
        let Settings { platform, service } = settings;
        service.validate()?;
        let tls = Tls::from_settings(&platform.tls)?;
        let keys = Arc::new(keys::Keys::from_settings(&service)?);
        let store = Store::connect(&platform.redis, &tls).await?;
        let pulse = Arc::new(pulse::ScoringPulse::new(
            service.scoring_silent_after_seconds,
        ));
        let status = Arc::new(status::StatusSource::new(
            store.clone(),
            &service,
            &tls,
            pulse.clone(),
        )?);
        let memory = (service.memory_cache_enabled
            && service.render_cache_enabled
            && service.status_from_redis)
            .then(|| Arc::new(memory::Memory::new(service.memory_cache_bytes)));
        let page = Arc::new(routes::page::Page::new(
            &service.page_identity_url,
            &service.page_scoring_url,
            &service.page_declaration_url,
            service.map_province,
        ));
        let state = web::Data::new(AppState {
            page,
            store: store.clone(),
            settings: Arc::new(service),
            keys,
            status,
            memory: memory.clone(),
        });
        let follower = store.clone();
        let running = launch(
            Launch {
                platform: &platform,
                schema: SERVICE,
                db: None,
                store,
                verifier: TokenVerifier::from_jwks_url(&platform.auth, &tls)?,
                openapi: <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
            },
            move |cfg| {
                cfg.app_data(state.clone()).configure(routes::configure);
            },
        )?;
        let pulse_store = follower.clone();
        running.spawn_background(|stop| async move { pulse.follow(pulse_store, stop).await });
        if let Some(memory) = memory {
            let idle = std::time::Duration::from_millis(platform.events.idle_ms);
            running.spawn_background(|stop| memory::follow_changes(follower, memory, stop, idle));
        }
        Ok(running)
    }

    fn generate_secrets() -> Option<anyhow::Result<String>> {
        Some(generate_secrets())
    }
}
