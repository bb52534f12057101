//! The identity service as other services' tests need it: started in-process over their test database and Redis
//! prefix, and the two ways in, a signed-in citizen and an official client with scopes. Test support only (nothing
//! in the service calls it).

use hc_platform::privacy::random_base64;
use hc_platform::settings::{Settings, load_with};
use hc_platform::store::Store;
use hc_platform::testing::{TestDatabase, TestRedis, shared_overrides};
use serde_json::{Value, json};

use crate::{Application, DEFAULT_CONFIG, IdentitySettings};

pub struct TestIdentity {
    pub address: String,
    http: reqwest::Client,
    admin_key: String,
    redis_prefix: String,
    /// The same Redis, without a prefix.
    store: Store,
}

impl TestIdentity {
    /// Starts identity on a free port; `blind_index_key` must be the one the other services under test use.
    pub async fn start(db: &TestDatabase, redis: &TestRedis, blind_index_key: &str) -> Self {
        let admin_key = random_base64(24).expect("rand");
        let settings: Settings<IdentitySettings> =
            load_with(DEFAULT_CONFIG, "identity", None, |b| {
                shared_overrides(b, db, redis, blind_index_key)
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
                    .expect("identity overrides")
            })
            .expect("identity settings");
        let mut unprefixed = settings.platform.redis.clone();
        unprefixed.key_prefix = String::new();
        let store = Store::connect(&unprefixed).await.expect("redis");
        let app = Application::build(settings).await.expect("identity builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            http: reqwest::Client::new(),
            admin_key,
            redis_prefix: redis.prefix.clone(),
            store,
        }
    }

    /// Where identity publishes its signing keys (`auth.jwks_url` of the other services).
    pub fn jwks_url(&self) -> String {
        format!("{}/v1/auth/keys", self.address)
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("identity");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// Registers a person living in `home` and signs them in with a one-time code; returns (person id, access
    /// token).
    pub async fn citizen(&self, id_number: &str, phone: &str, home: &str) -> (String, String) {
        let person = self
            .post(
                "/v1/persons",
                &json!({"name": "测试", "id_number": id_number, "phone": phone, "home_region": home}),
            )
            .await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        self.post("/v1/auth/otp", &json!({"phone": phone})).await;
        let key = format!("{}{}", self.redis_prefix, crate::dev_sms_key(phone));
        let code: String = redis::AsyncCommands::get(&mut self.store.conn(), key)
            .await
            .expect("code");
        let tokens = self
            .post(
                "/v1/auth/token",
                &json!({"grant_type": "otp", "phone": phone, "code": code}),
            )
            .await;
        (
            person,
            tokens["access_token"].as_str().expect("token").to_owned(),
        )
    }

    /// The access token of a new official client with `scopes`, limited to `region` if given.
    pub async fn official(&self, scopes: &[&str], region: Option<&str>) -> String {
        let admin = self
            .post("/v1/auth/token", &json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": self.admin_key}))
            .await["access_token"]
            .as_str()
            .expect("admin")
            .to_owned();
        let mut body = json!({"name": "official", "scopes": scopes});
        if let Some(region) = region {
            body["region"] = json!(region);
        }
        let r = self
            .http
            .post(format!("{}/v1/clients", self.address))
            .bearer_auth(admin)
            .json(&body)
            .send()
            .await
            .expect("client");
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        let c: Value = r.json().await.expect("json");
        self.post("/v1/auth/token", &json!({"grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]}))
            .await["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }
}
