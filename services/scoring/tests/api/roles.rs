//! Each service connects as a role of its own (`<service> provision-database`), which owns the service's schema and
//! can read or create nothing elsewhere; an installation from before the roles has its tables handed over.

use hc_platform::settings::DatabaseSettings;
use hc_platform::testing::TestSuite;
use hc_platform::tls::Tls;
use reqwest::StatusCode;
use secrecy::SecretString;
use tokio_postgres::error::SqlState;

/// A pool on the suite's database as `user`, with its search path on `schema`.
fn pool_as(suite: &TestSuite, user: &str, schema: &str) -> deadpool_postgres::Pool {
    let settings = DatabaseSettings {
        url: SecretString::from(url_as(&suite.db.url, user)),
        pool_max_size: 2,
        pool_wait_timeout_ms: 5_000,
        connect_timeout_ms: 5_000,
        read_url: SecretString::from(String::new()),
    };
    hc_platform::db::pool(&settings, &Tls::system(), schema).expect("pool")
}

/// The suite's database URL with `user` (password `pw-{user}`) instead of the administrator; `""` keeps it.
fn url_as(url: &str, user: &str) -> String {
    if user.is_empty() {
        return url.to_owned();
    }
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (_, host) = rest.rsplit_once('@').expect("user info");
    format!("{scheme}://{user}:pw-{user}@{host}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_runs_as_its_own_role_with_rights_on_its_own_schema_only() {
    let suite = TestSuite::new().await;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let (scoring_role, other_role) = (format!("hc_scoring_{tag}"), format!("hc_other_{tag}"));

    // An installation from before the roles: scoring's tables made by the administrator, and another service's
    // schema with a table of its own.
    let admin = pool_as(&suite, "", "scoring");
    scoring::prepare(&admin)
        .await
        .expect("scoring's schema as the administrator");
    let client = admin.get().await.expect("admin");
    hc_platform::db::provision(&client, "scoring", &url_as(&suite.db.url, &scoring_role))
        .await
        .expect("provision scoring");
    hc_platform::db::provision(&client, "elsewhere", &url_as(&suite.db.url, &other_role))
        .await
        .expect("provision another");
    client
        .batch_execute(
            "CREATE TABLE elsewhere.facts (id int); INSERT INTO elsewhere.facts VALUES (1)",
        )
        .await
        .expect("another schema's table");
    // Provisioning again changes nothing (the deploy Job runs on every rollout).
    hc_platform::db::provision(&client, "scoring", &url_as(&suite.db.url, &scoring_role))
        .await
        .expect("provision again");
    let foreign: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'scoring' AND pg_get_userbyid(c.relowner) <> $1",
            &[&scoring_role],
        )
        .await
        .expect("owners")
        .get(0);
    assert_eq!(
        foreign, 0,
        "everything in scoring's schema is handed to its role"
    );

    // Scoring starts, migrates and serves as its own role.
    let url = url_as(&suite.db.url, &scoring_role);
    let scoring = suite
        .service::<scoring::Scoring>()
        .start_with(|b| b.set_override("database.url", url).expect("override"))
        .await;
    let ready = suite
        .http
        .get(format!("{}/health/ready", scoring.address))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::OK);

    // As that role: its own tables yes; another schema, a new schema or the public schema, no.
    let own = pool_as(&suite, &scoring_role, "scoring")
        .get()
        .await
        .expect("as scoring");
    own.query_one("SELECT count(*) FROM rule_sets", &[])
        .await
        .expect("its own tables");
    for sql in [
        "SELECT count(*) FROM elsewhere.facts",
        "CREATE SCHEMA mine",
        "CREATE TABLE public.mine (id int)",
    ] {
        let err = own
            .batch_execute(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} was allowed"));
        assert_eq!(
            err.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {err}"
        );
    }
}
