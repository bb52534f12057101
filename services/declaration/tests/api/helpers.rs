use hc_platform::testing::{TestSuite, WAIT, eventually};
pub use hc_platform::testing::{problem, valid_id_number as id_number};
use identity::testing::TestIdentity;

use serde_json::{Value, json};

type Builder = config::ConfigBuilder<config::builder::DefaultState>;

/// Identity and declaration on free ports over one fresh database and key prefix.
pub struct TestApp {
    pub suite: TestSuite,
    pub identity: TestIdentity,
    pub address: String,
    /// The declaration schema.
    pub pool: deadpool_postgres::Pool,
}

impl std::ops::Deref for TestApp {
    type Target = TestSuite;
    fn deref(&self) -> &TestSuite {
        &self.suite
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|b| b).await
}

/// `tweak` adds overrides to the declaration service's settings.
pub async fn spawn_app_with(tweak: impl FnOnce(Builder) -> Builder) -> TestApp {
    hc_platform::testing::quiet_telemetry("declaration-tests");
    let suite = TestSuite::new().await;
    let identity = TestIdentity::start(&suite).await;
    let declaration = suite
        .service::<declaration::Declaration>()
        .start_with(tweak)
        .await;
    TestApp {
        pool: declaration.pool(declaration::SCHEMA),
        address: declaration.address,
        identity,
        suite,
    }
}

/// The `n`-th of a family of distinct valid ID numbers (Tianhe district, born in the 1980s).
pub fn nth_id(n: u32) -> String {
    id_number(&format!(
        "44010619{:02}{:02}{:02}{:03}",
        80 + n / 336_000 % 10,
        1 + n / 28_000 % 12,
        1 + n / 1000 % 28,
        n % 1000
    ))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Registers a person in identity and signs them in; returns (person id, access token).
    pub async fn citizen(&self, id_number: &str, phone: &str) -> (String, String) {
        self.identity.citizen(id_number, phone, "440106").await
    }

    /// A token of an official client with `scopes`.
    pub async fn official(&self, scopes: &[&str]) -> String {
        self.identity.official(scopes, None).await
    }

    pub async fn declare(&self, token: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
        let mut r = self
            .http
            .post(self.url("/v1/declarations"))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = key {
            r = r.header("Idempotency-Key", key);
        }
        r.send().await.expect("declare")
    }

    pub async fn import(
        &self,
        token: &str,
        kind: &str,
        batch: &str,
        content_type: &str,
        body: String,
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/v1/imports/{kind}")))
            .bearer_auth(token)
            .header("Idempotency-Key", batch)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("import")
    }

    /// Entries of an event stream (whole key), waiting (up to `WAIT`) for at least `at_least`.
    pub async fn events(&self, stream: &str, at_least: usize) -> Vec<Value> {
        self.entries(stream, at_least)
            .await
            .into_iter()
            .map(|(payload, _)| payload)
            .collect()
    }

    /// Entries as (payload, traceparent).
    pub async fn entries(&self, stream: &str, at_least: usize) -> Vec<(Value, Option<String>)> {
        let key = format!(
            "{}{}",
            self.redis.prefix,
            hc_platform::outbox::stream_key(stream)
        );
        let key = &key;
        eventually(
            WAIT,
            format!("fewer than {at_least} events on {stream}"),
            || async move {
                let reply: redis::streams::StreamRangeReply =
                    redis::AsyncCommands::xrange_all(&mut self.store.conn(), key)
                        .await
                        .expect("xrange");
                (reply.ids.len() >= at_least).then(|| {
                    reply
                        .ids
                        .iter()
                        .map(|e| {
                            let payload: String = e.get("payload").unwrap_or_default();
                            (
                                serde_json::from_str(&payload).unwrap_or(Value::Null),
                                e.get("traceparent"),
                            )
                        })
                        .collect()
                })
            },
        )
        .await
    }
}

pub fn valid_declaration() -> Value {
    json!({
        "current_region": "440106", "temperature": 36.6, "symptoms": [], "contact_with_case": false,
        "travelled_regions": ["440300"], "commitment": true
    })
}
