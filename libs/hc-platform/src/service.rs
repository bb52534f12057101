//! Starting a service the same way everywhere: the listener bound (port 0 picks a free one), the HTTP server behind
//! the platform's middleware, the outbox relay, stream consumers and the service's own loops as background tasks of
//! one handle, and all of it stopped together: shutdown waits for the background tasks to finish their work.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use deadpool_postgres::Pool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenVerifier;
use crate::defences::Defences;
use crate::health::Dependencies;
use crate::http::{Platform, serve};
use crate::outbox::Relay;
use crate::settings::{EventSettings, PlatformSettings, Settings};
use crate::store::Store;
use crate::streams::{Consumer, Delivered};

/// A service as its binary and the test harness start it.
pub trait Service {
    /// Its settings section and environment prefix, and its name in logs.
    const NAME: &'static str;
    /// Its embedded `config/default.toml`.
    const DEFAULT_CONFIG: &'static str;
    /// Its own settings section.
    type Settings: serde::de::DeserializeOwned + Clone;
    /// Its PostgreSQL schema, for a service that has one (`provision-database`).
    const SCHEMA: Option<&'static str> = None;

    /// Migrates, connects and starts serving (port 0 picks a free port).
    fn start(settings: Settings<Self::Settings>) -> impl Future<Output = anyhow::Result<Running>>;

    /// Development secrets for `make up` (`<binary> generate-secrets`), for a service that has any.
    fn generate_secrets() -> Option<anyhow::Result<String>> {
        None
    }
}

/// The `main` of every service binary: `generate-secrets`, `provision-database`, or settings from the environment,
/// telemetry, and serving until SIGTERM.
pub async fn main<S: Service>() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("provision-database") {
        return provision_database::<S>().await;
    }
    if std::env::args().nth(1).as_deref() == Some("generate-secrets") {
        let secrets = S::generate_secrets()
            .with_context(|| format!("{} has no secrets to generate", S::NAME))??;
        print!("{secrets}");
        return Ok(());
    }
    let settings: Settings<S::Settings> = crate::settings::load(S::DEFAULT_CONFIG, S::NAME)?;
    let _telemetry = crate::telemetry::init(S::NAME, &settings.platform.telemetry)?;
    let running = S::start(settings).await?;
    tracing::info!(port = running.port(), "{} listening", S::NAME);
    running.run_until_stopped().await
}

/// Makes the service's own role (the user and password of its `database.url`) and schema, with the administrator's
/// connection of `HC_ADMIN_DATABASE_URL` (see [`crate::db::provision`]).
async fn provision_database<S: Service>() -> anyhow::Result<()> {
    let schema = S::SCHEMA.with_context(|| format!("{} opens no database", S::NAME))?;
    let settings: Settings<S::Settings> = crate::settings::load(S::DEFAULT_CONFIG, S::NAME)?;
    let admin_url = std::env::var("HC_ADMIN_DATABASE_URL")
        .context("HC_ADMIN_DATABASE_URL must name an administrator's connection")?;
    let tls = crate::tls::Tls::from_settings(&settings.platform.tls)?;
    let mut database = settings.platform.database.clone();
    database.url = admin_url.into();
    let admin = crate::db::pool(&database, &tls, schema)?.get().await?;
    let url = secrecy::ExposeSecret::expose_secret(&settings.platform.database.url).to_owned();
    let role = crate::db::provision(&admin, schema, &url).await?;
    println!("{}: role {role} owns schema {schema}", S::NAME);
    Ok(())
}

/// What a service brings to [`launch`].
pub struct Launch<'a> {
    pub platform: &'a PlatformSettings,
    /// The service's schema: names its outbox in `event_id`s and its consumer group.
    pub schema: &'static str,
    /// `None` for a service without PostgreSQL (no readiness check on it, no outbox).
    pub db: Option<Pool>,
    pub store: Store,
    pub verifier: TokenVerifier,
    /// The service's OpenAPI document: which methods each path answers.
    pub openapi: utoipa::openapi::OpenApi,
}

/// How often a replica looks for new revocations: a revoked token works at most this much longer.
const REVOCATION_POLL: Duration = Duration::from_millis(500);

/// A started service.
pub struct Running {
    port: u16,
    server: Server,
    background: CancellationToken,
    tasks: TaskTracker,
    events: EventSettings,
    schema: &'static str,
    store: Store,
}

/// Binds the listener, starts the HTTP server with `configure`'s routes, and the outbox relay when the service has
/// a database and `events.relay_enabled` is on.
pub fn launch<F>(launch: Launch<'_>, configure: F) -> anyhow::Result<Running>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let Launch {
        platform,
        schema,
        db,
        store,
        verifier,
        openapi,
    } = launch;
    let background = CancellationToken::new();
    let tasks = TaskTracker::new();
    if let Some(db) = db.as_ref().filter(|_| platform.events.relay_enabled) {
        let relay = Relay::new(
            db.clone(),
            store.clone(),
            schema,
            platform.events.relay_batch,
        );
        tasks.spawn(relay.run(
            background.clone(),
            Duration::from_millis(platform.events.idle_ms),
        ));
    }
    let verifier = web::Data::new(verifier);
    tasks.spawn(crate::revocation::follow(
        store.clone(),
        verifier.clone().into_inner(),
        background.clone(),
        REVOCATION_POLL,
    ));
    let listener = TcpListener::bind((platform.server.host.as_str(), platform.server.port))
        .with_context(|| format!("binding {}:{}", platform.server.host, platform.server.port))?;
    let port = listener.local_addr()?.port();
    let http = Platform {
        defences: web::Data::new(Defences::from_settings(platform)?),
        verifier,
        dependencies: web::Data::new(Dependencies {
            db,
            redis: Some(store.clone()),
        }),
        json_body_bytes: platform.limits.json_body_bytes,
        workers: platform.server.workers,
        cors_origins: crate::settings::list(&platform.server.cors_allowed_origins)
            .map(str::to_owned)
            .collect(),
        tls: crate::tls::server_config(&platform.tls)?,
        routes: web::Data::new(crate::openapi::Routes::of(&openapi)),
    };
    let server = serve(listener, http, configure)?;
    Ok(Running {
        port,
        server,
        background,
        tasks,
        events: platform.events.clone(),
        schema,
        store,
    })
}

impl Running {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Consumes `stream` with the service's consumer group when `events.consumers_enabled` is on, reading at most
    /// `batch` entries at a time (large events want small batches).
    pub fn consume_batched<H, Fut>(&self, stream: &str, batch: usize, handler: H)
    where
        H: Fn(Delivered) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.spawn_consumer(stream, batch, false, move |events: Vec<Delivered>| {
            let handler = handler.clone();
            async move {
                for event in events {
                    handler(event).await?;
                }
                Ok(())
            }
        });
    }

    /// As [`Self::consume_batched`], the handler given up to `batch` events at once, to apply them together (one
    /// transaction, one recolouring): what keeps a consumer up with a bulk of small events. A batch that fails
    /// is handled again one event at a time (see [`Consumer::process_next_group`]).
    pub fn consume_grouped<H, Fut>(&self, stream: &str, batch: usize, handler: H)
    where
        H: Fn(Vec<Delivered>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn_consumer(stream, batch, true, handler);
    }

    fn spawn_consumer<H, Fut>(&self, stream: &str, batch: usize, grouped: bool, handler: H)
    where
        H: Fn(Vec<Delivered>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        if !self.events.consumers_enabled {
            return;
        }
        let consumer = Consumer::new(
            self.store.clone(),
            stream,
            self.schema,
            &consumer_name(),
            batch,
        );
        let idle = Duration::from_millis(self.events.idle_ms);
        self.spawn_background(|stop| consumer.run(stop, idle, grouped, handler));
    }

    /// Starts one of the service's own background loops; `loop_` gets the token that is cancelled when the service
    /// stops, and shutdown waits (up to [`SHUTDOWN_GRACE`]) for the loop to return.
    pub fn spawn_background<F, Fut>(&self, loop_: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(loop_(self.background.clone()));
    }

    /// Serves until the server stops (SIGTERM or SIGINT: in-flight requests drain), then stops the background loops
    /// and waits for them: a consumer finishes the batch it holds, the scan log commits what it has queued.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let outcome = self.server.await.context("HTTP server");
        self.background.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tasks.len(),
                "background tasks still running after the shutdown grace; stopping anyway"
            );
        }
        outcome
    }
}

/// How long shutdown waits for the background loops once the HTTP server has drained (Kubernetes gives a pod 30 s
/// between SIGTERM and SIGKILL by default; the server's own drain takes part of it).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A consumer name unique to this process, so each replica has its own pending entries.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!("{host}-{}", std::process::id())
}
