//! The PostgreSQL pool of one service (its own schema first on the search path) and its embedded migrations.

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;
use tokio_postgres::config::SslMode;

use crate::settings::DatabaseSettings;
use crate::tls::Tls;

/// Builds the pool (connections open lazily). `schema` must be a plain lower-case identifier.
pub fn pool(settings: &DatabaseSettings, tls: &Tls, schema: &str) -> anyhow::Result<Pool> {
    let url = settings.url.expose_secret();
    build(settings, tls, url, "database.url", schema)
}

/// The pool for reads that tolerate lag: the replica of `database.read_url`, or `primary` when none is set.
pub fn read_pool(
    settings: &DatabaseSettings,
    tls: &Tls,
    schema: &str,
    primary: &Pool,
) -> anyhow::Result<Pool> {
    let url = settings.read_url.expose_secret();
    if url.is_empty() {
        return Ok(primary.clone());
    }
    build(settings, tls, url, "database.read_url", schema)
}

fn build(
    settings: &DatabaseSettings,
    tls: &Tls,
    url: &str,
    key: &str,
    schema: &str,
) -> anyhow::Result<Pool> {
    anyhow::ensure!(
        !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "schema name {schema:?} must be lower-case letters and underscores"
    );
    let mut pg = crate::tls::postgres_config(url).with_context(|| key.to_owned())?;
    // `prefer` (libpq's default) would take an unverified certificate or none: here it means plain, and TLS is
    // asked for with `sslmode=verify-full`.
    if pg.get_ssl_mode() == SslMode::Prefer {
        pg.ssl_mode(SslMode::Disable);
    }
    tls.check_postgres(key, &pg)?;
    pg.options(format!("-c search_path={schema}"));
    pg.application_name(schema);
    pg.connect_timeout(Duration::from_millis(settings.connect_timeout_ms));
    let manager = Manager::from_config(
        pg,
        tls.postgres(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // A zero wait timeout means "wait for ever": the naive profile, which lets requests queue without bound.
    let wait = (settings.pool_wait_timeout_ms > 0)
        .then(|| Duration::from_millis(settings.pool_wait_timeout_ms));
    Pool::builder(manager)
        .max_size(settings.pool_max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(wait)
        .create_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
        .build()
        .context("building the PostgreSQL pool")
}

/// Creates the schema and applies the embedded migrations, holding an advisory lock so that replicas
/// starting together do not race.
pub async fn migrate(
    pool: &Pool,
    schema: &str,
    mut runner: refinery::Runner,
) -> anyhow::Result<()> {
    let mut client = pool
        .get()
        .await
        .context("connecting to PostgreSQL for migrations")?;
    let lock = format!("SELECT pg_advisory_lock(hashtext('migrate:{schema}'))");
    client.batch_execute(&lock).await?;
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await?;
    let outcome = runner
        .set_migration_table_name(format!("{schema}_migrations"))
        .run_async(&mut **client)
        .await
        .context("applying migrations");
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_unlock(hashtext('migrate:{schema}'))"
        ))
        .await?;
    outcome.map(|_| ())
}
