//! The PostgreSQL pool of one service (its own schema first on the search path) and its embedded migrations.

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;

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
    check_schema(schema)?;
    let mut pg = crate::tls::postgres_config(url).with_context(|| key.to_owned())?;
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

/// A schema name is spliced into SQL: plain lower-case letters and underscores only.
fn check_schema(schema: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "schema name {schema:?} must be lower-case letters and underscores"
    );
    Ok(())
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
    // A service's own role cannot create schemas (`provision` made its schema for it); ask before creating, since
    // CREATE SCHEMA IF NOT EXISTS checks the privilege even when the schema is there.
    let exists = client
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await?;
    }
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

/// Gives a service a role of its own (`<service> provision-database`, with an administrator's connection): the role
/// of `url` logs in with that URL's password, owns the service's schema and everything in it (what an installation
/// from before the roles left there is handed over), and has no right on any other schema. Idempotent.
pub async fn provision(
    admin: &impl deadpool_postgres::GenericClient,
    schema: &str,
    url: &str,
) -> anyhow::Result<String> {
    let config = crate::tls::postgres_config(url).context("database.url")?;
    let role = config
        .get_user()
        .context("database.url names no user")?
        .to_owned();
    anyhow::ensure!(
        role.starts_with(|c: char| c.is_ascii_lowercase())
            && role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "the role {role:?} of database.url must be lower-case letters, digits and underscores"
    );
    check_schema(schema)?;
    let password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .context("database.url names no password")?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await?
        .is_some();
    if !exists {
        admin
            .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
            .await?;
    }
    // The password as a literal quoted by the server (a utility statement takes no parameters).
    let set_password: String = admin
        .query_one(
            "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
            &[&role, &password],
        )
        .await?
        .get(0);
    admin.batch_execute(&set_password).await?;
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role};
             ALTER SCHEMA {schema} OWNER TO {role};
             REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;
             DO $$ DECLARE r record; BEGIN
               FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
                          AND pg_get_userbyid(c.relowner) <> '{role}'
                          -- a column's own sequence follows its table
                          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                          WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
               LOOP EXECUTE format('ALTER TABLE %I.%I OWNER TO {role}', '{schema}', r.relname); END LOOP;
             END $$;"
        ))
        .await
        .context("provisioning the schema")?;
    Ok(role)
}
