use std::time::Duration;

use hc_platform::privacy::random_base64;
use hc_platform::settings::{Settings, load_with};
use hc_platform::store::Store;
use hc_platform::testing::{TestDatabase, TestRedis, shared_overrides};
pub use hc_platform::testing::{problem, valid_id_number as id_number};
use reqwest::StatusCode;
use serde_json::{Value, json};

type Builder = config::ConfigBuilder<config::builder::DefaultState>;

pub struct TestApp {
    pub identity: String,
    pub address: String,
    pub http: reqwest::Client,
    pub _db: TestDatabase,
    pub redis: TestRedis,
    pub pool: deadpool_postgres::Pool,
    /// Same Redis as the apps, without a prefix.
    pub store: Store,
    admin_key: String,
}

/// Telemetry as in production (a tracer provider, W3C propagation), logs discarded.
static TELEMETRY: std::sync::LazyLock<()> = std::sync::LazyLock::new(|| {
    let settings = hc_platform::settings::TelemetrySettings {
        log_filter: "warn".into(),
        otlp_endpoint: String::new(),
    };
    std::mem::forget(hc_platform::telemetry::init_with_writer(
        "declaration-tests",
        &settings,
        std::io::sink,
    ));
});

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|b| b).await
}

/// Starts identity and declaration on free ports over one fresh database and key prefix; `tweak` adds
/// overrides to the declaration service's settings.
pub async fn spawn_app_with(tweak: impl FnOnce(Builder) -> Builder) -> TestApp {
    std::sync::LazyLock::force(&TELEMETRY);
    let db = TestDatabase::create().await.expect("test database");
    let redis = TestRedis::new();
    let blind_key = random_base64(32).expect("rand");
    let admin_key = random_base64(24).expect("rand");
    let common = |b: Builder| -> Builder { shared_overrides(b, &db, &redis, &blind_key) };

    let identity_settings: Settings<identity::IdentitySettings> =
        load_with(identity::DEFAULT_CONFIG, "identity", None, |b| {
            common(b)
                .set_override("identity.admin_key", admin_key.clone())
                .and_then(|b| {
                    b.set_override(
                        "identity.signing_keys",
                        hc_platform::auth::KeyRing::generate_spec("k").expect("key"),
                    )
                })
                .and_then(|b| {
                    b.set_override(
                        "identity.data_keys",
                        format!("d1:{}", random_base64(32).expect("rand")),
                    )
                })
                .expect("overrides")
        })
        .expect("identity settings");
    let identity_app = identity::Application::build(identity_settings)
        .await
        .expect("identity builds");
    let identity = format!("http://127.0.0.1:{}", identity_app.port());
    tokio::spawn(identity_app.run_until_stopped());

    let jwks = format!("{identity}/v1/auth/keys");
    let settings: Settings<declaration::DeclarationSettings> =
        load_with(declaration::DEFAULT_CONFIG, "declaration", None, |b| {
            tweak(
                common(b)
                    .set_override("auth.jwks_url", jwks)
                    .expect("override"),
            )
        })
        .expect("declaration settings");
    let pool =
        hc_platform::db::pool(&settings.platform.database, declaration::SCHEMA).expect("pool");
    let mut unprefixed = settings.platform.redis.clone();
    unprefixed.key_prefix = String::new();
    let store = Store::connect(&unprefixed).await.expect("redis");
    let app = declaration::Application::build(settings)
        .await
        .expect("declaration builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        identity,
        address,
        http: reqwest::Client::new(),
        _db: db,
        redis,
        pool,
        store,
        admin_key,
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

    async fn identity_post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.identity))
            .json(body)
            .send()
            .await
            .expect("identity");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// Registers a person in identity and signs them in; returns (person id, access token).
    pub async fn citizen(&self, id_number: &str, phone: &str) -> (String, String) {
        let person = self
            .identity_post("/v1/persons", &json!({"name": "测试", "id_number": id_number, "phone": phone, "home_region": "440106"}))
            .await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        self.identity_post("/v1/auth/otp", &json!({"phone": phone}))
            .await;
        let key = format!("{}{}", self.redis.prefix, identity::dev_sms_key(phone));
        let code: String = redis::AsyncCommands::get(&mut self.store.conn(), key)
            .await
            .expect("code");
        let tokens = self
            .identity_post(
                "/v1/auth/token",
                &json!({"grant_type": "otp", "phone": phone, "code": code}),
            )
            .await;
        (
            person,
            tokens["access_token"].as_str().expect("token").to_owned(),
        )
    }

    /// A token of an official client with `scopes`.
    pub async fn official(&self, scopes: &[&str]) -> String {
        let admin = self
            .identity_post("/v1/auth/token", &json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": self.admin_key}))
            .await["access_token"]
            .as_str()
            .expect("admin")
            .to_owned();
        let r = self
            .http
            .post(format!("{}/v1/clients", self.identity))
            .bearer_auth(admin)
            .json(&json!({"name": "lab", "scopes": scopes}))
            .send()
            .await
            .expect("client");
        assert_eq!(r.status(), StatusCode::CREATED);
        let c: Value = r.json().await.expect("json");
        self.identity_post("/v1/auth/token", &json!({"grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]}))
            .await["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
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

    /// Entries of an event stream (whole key), waiting up to 5 s for at least `at_least`.
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
        for _ in 0..500 {
            let reply: redis::streams::StreamRangeReply =
                redis::AsyncCommands::xrange_all(&mut self.store.conn(), &key)
                    .await
                    .expect("xrange");
            if reply.ids.len() >= at_least {
                return reply
                    .ids
                    .iter()
                    .map(|e| {
                        let payload: String = e.get("payload").unwrap_or_default();
                        (
                            serde_json::from_str(&payload).unwrap_or(Value::Null),
                            e.get("traceparent"),
                        )
                    })
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {at_least} events on {stream}");
    }
}

pub fn valid_declaration() -> Value {
    json!({
        "current_region": "440106", "temperature": 36.6, "symptoms": [], "contact_with_case": false,
        "travelled_regions": ["440300"], "commitment": true
    })
}
