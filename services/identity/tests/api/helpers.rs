use std::sync::LazyLock;

use hc_domain::Phone;
use hc_platform::privacy::{BlindIndex, random_base64};
use hc_platform::settings::Builder;
use hc_platform::store::Store;
use hc_platform::testing::{CapturedLog, TestSuite};
pub use hc_platform::testing::{problem, valid_id_number as id_number};
use identity::Identity;
use redis::AsyncCommands;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

/// Everything the services log during the tests, at debug level, for the privacy assertions.
pub static LOG: LazyLock<CapturedLog> = LazyLock::new(|| {
    let log = CapturedLog::default();
    let settings = hc_platform::settings::TelemetrySettings {
        log_filter: "info,identity=trace,hc_platform=trace,access=debug,tokio_postgres=debug"
            .into(),
        otlp_endpoint: String::new(),
    };
    std::mem::forget(hc_platform::telemetry::init_with_writer(
        "identity-tests",
        &settings,
        log.clone(),
    ));
    log
});

pub struct TestApp {
    /// The database and key prefix (dropped with the app), the HTTP client.
    pub suite: TestSuite,
    pub address: String,
    pub pool: deadpool_postgres::Pool,
    /// The same Redis (node or cluster) as the app, without a prefix: tests spell whole keys.
    pub store: Store,
    pub admin_key: String,
    pub index: BlindIndex,
    /// The settings it started with.
    pub settings: hc_platform::settings::Settings<identity::IdentitySettings>,
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

/// Starts the real application with a fresh database and key prefix; `tweak` adds setting overrides.
pub async fn spawn_app_with(tweak: impl FnOnce(Builder) -> Builder) -> TestApp {
    LazyLock::force(&LOG);
    let suite = TestSuite::new().await;
    let admin_key = random_base64(24).expect("rand");
    let started = suite
        .service::<Identity>()
        .set("identity.admin_key", admin_key.clone())
        .set(
            "identity.signing_keys",
            hc_platform::auth::KeyRing::generate_spec("test-key").expect("keygen"),
        )
        .set(
            "identity.data_keys",
            format!("d1:{}", random_base64(32).expect("rand")),
        )
        .set("identity.sms.kind", "dev")
        .set("identity.real_name.kind", "dev")
        .start_with(tweak)
        .await;
    let index =
        BlindIndex::from_secret(&SecretString::from(suite.blind_key.clone())).expect("index");
    TestApp {
        pool: started.pool(identity::SCHEMA),
        store: started.unprefixed_store().await,
        address: started.address,
        settings: started.settings,
        suite,
        admin_key,
        index,
    }
}

/// A unique valid ID number and phone for one test (Tianhe district, born 1990).
pub fn unique_person() -> (String, String) {
    let n = uuid::Uuid::new_v4().as_u128();
    let seq = n % 1000;
    let day = 1 + (n / 1000 % 28) as u32;
    let id = id_number(&format!(
        "4401061990{:02}{:02}{:03}",
        1 + (n / 100_000 % 12) as u32,
        day,
        seq
    ));
    let phone = format!("139{:08}", n / 7 % 100_000_000);
    (id, phone)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// A registration body for a person of Tianhe district, with a fresh `register` code for the phone and the
    /// development verifier's ticket for the ID number.
    pub async fn registration(&self, name: &str, id_number: &str, phone: &str) -> Value {
        let sent = self
            .post_json(
                "/v1/auth/otp",
                &json!({"phone": phone, "purpose": "register"}),
            )
            .await;
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
        json!({"name": name, "id_number": id_number, "phone": phone, "home_region": "440106",
            "phone_code": self.sent_code(phone).await.expect("a code was sent"),
            "real_name_ticket": identity::dev_real_name_ticket(id_number)})
    }

    /// Registers a person and returns the id, asserting 201.
    pub async fn register(&self, name: &str, id_number: &str, phone: &str) -> String {
        let body = self.registration(name, id_number, phone).await;
        let response = self.post_json("/v1/persons", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// The code the development SMS gateway left in Redis for `phone`.
    pub async fn sent_code(&self, phone: &str) -> Option<String> {
        let key = format!("{}{}", self.redis.prefix, identity::dev_sms_key(phone));
        self.store.conn().get(key).await.expect("redis get")
    }

    /// The Redis key holding the sign-in code's state for `phone`.
    pub fn otp_key(&self, phone: &str) -> String {
        let phone = Phone::parse(phone).expect("phone");
        format!(
            "{}{}",
            self.redis.prefix,
            identity::otp_key(identity::OtpPurpose::SignIn, &self.index.phone(&phone))
        )
    }

    pub async fn request_otp(&self, phone: &str) -> reqwest::Response {
        self.post_json("/v1/auth/otp", &json!({"phone": phone}))
            .await
    }

    /// Full citizen sign-in: request a code, read it from the dev gateway, exchange it. Returns the token body.
    pub async fn sign_in(&self, phone: &str) -> Value {
        assert_eq!(self.request_otp(phone).await.status(), StatusCode::ACCEPTED);
        let code = self.sent_code(phone).await.expect("a code was sent");
        let response = self
            .post_json(
                "/v1/auth/token",
                &json!({"grant_type": "otp", "phone": phone, "code": code}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// How many persons are registered.
    pub async fn persons(&self) -> i64 {
        let db = self.pool.get().await.expect("db");
        db.query_one("SELECT count(*) FROM persons", &[])
            .await
            .expect("count")
            .get(0)
    }

    /// Signs in with `phone` and reads the citizen's own record (masked), asserting 200.
    pub async fn own_record(&self, phone: &str) -> Value {
        let tokens = self.sign_in(phone).await;
        let access = tokens["access_token"].as_str().expect("token");
        let response = self.get_with_token("/v1/persons/me", access).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn admin_token(&self) -> String {
        self.client_token("admin", &self.admin_key.clone()).await
    }

    pub async fn client_token(&self, client_id: &str, secret: &str) -> String {
        let response = self
            .post_json(
                "/v1/auth/token",
                &json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "client_credentials for {client_id}"
        );
        response.json::<Value>().await.expect("json")["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Creates an API client with `scopes` (and optional region) and returns (client_id, secret).
    pub async fn create_client(&self, scopes: &[&str], region: Option<&str>) -> (String, String) {
        let admin = self.admin_token().await;
        let response = self
            .http
            .post(self.url("/v1/clients"))
            .bearer_auth(admin)
            .json(&json!({"name": "test client", "scopes": scopes, "region": region}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        (
            body["client_id"].as_str().expect("id").to_owned(),
            body["client_secret"].as_str().expect("secret").to_owned(),
        )
    }
}
