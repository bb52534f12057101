//! The identity service as other services' tests need it: started in-process over their test database and Redis
//! prefix, and the two ways in, a signed-in citizen and an official client with scopes. Test support only (nothing
//! in the service calls it).

use hc_domain::Scope;
use hc_platform::access_matrix::Callers;
use hc_platform::auth::{AccessClaims, KeyRing};
use hc_platform::privacy::random_base64;
use hc_platform::store::Store;
use hc_platform::testing::{TestSuite, expect_json};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Identity;

pub struct TestIdentity {
    pub address: String,
    http: reqwest::Client,
    admin_key: String,
    /// The key ring identity signs with (to forge what only it could sign: an expired token).
    signing_keys: String,
    /// Its data keys (`identity.data_keys`), for the key-rotation tests.
    pub data_keys: String,
    redis_prefix: String,
    /// The same Redis, without a prefix.
    store: Store,
}

impl TestIdentity {
    /// Starts identity in `suite` and makes the services started after it trust its tokens.
    pub async fn start(suite: &TestSuite) -> Self {
        let admin_key = random_base64(24).expect("rand");
        let signing_keys = KeyRing::generate_spec("k").expect("key");
        let data_keys = format!("d1:{}", random_base64(32).expect("rand"));
        let started = suite
            .service::<Identity>()
            .set("identity.admin_key", admin_key.clone())
            .set("identity.signing_keys", signing_keys.clone())
            .set("identity.data_keys", data_keys.clone())
            .set("identity.sms.kind", "dev")
            .set("identity.real_name.kind", "dev")
            .start()
            .await;
        suite.trust_identity_at(&started.address);
        Self {
            address: started.address,
            http: suite.http.clone(),
            admin_key,
            signing_keys,
            data_keys,
            redis_prefix: suite.redis.prefix.clone(),
            store: suite.store.clone(),
        }
    }

    /// Where identity publishes its signing keys (`auth.jwks_url` of the other services).
    pub fn jwks_url(&self) -> String {
        format!("{}/v1/auth/keys", self.address)
    }

    async fn post(&self, path: &str, body: &Value, status: StatusCode) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("identity");
        expect_json(r, status).await
    }

    /// The code the development SMS gateway last sent to `phone`.
    async fn sent_code(&self, phone: &str) -> String {
        let key = format!("{}{}", self.redis_prefix, crate::dev_sms_key(phone));
        redis::AsyncCommands::get(&mut self.store.conn(), key)
            .await
            .expect("a code was sent")
    }

    /// Registers a person living in `home` as a citizen would (the phone proven by a code, the ID number by the
    /// development verifier's ticket) and signs them in with a one-time code; returns (person id, access token).
    pub async fn citizen(&self, id_number: &str, phone: &str, home: &str) -> (String, String) {
        self.post(
            "/v1/auth/otp",
            &json!({"phone": phone, "purpose": "register"}),
            StatusCode::ACCEPTED,
        )
        .await;
        let registration = json!({"name": "测试", "id_number": id_number, "phone": phone, "home_region": home,
            "phone_code": self.sent_code(phone).await, "real_name_ticket": crate::dev_real_name_ticket(id_number)});
        let person = self
            .post("/v1/persons", &registration, StatusCode::CREATED)
            .await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        self.post(
            "/v1/auth/otp",
            &json!({"phone": phone}),
            StatusCode::ACCEPTED,
        )
        .await;
        let code = self.sent_code(phone).await;
        let tokens = self
            .post(
                "/v1/auth/token",
                &json!({"grant_type": "otp", "phone": phone, "code": code}),
                StatusCode::OK,
            )
            .await;
        (
            person,
            tokens["access_token"].as_str().expect("token").to_owned(),
        )
    }

    /// A token of the bootstrap admin.
    async fn admin_token(&self) -> String {
        self
            .post("/v1/auth/token", &json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": self.admin_key}), StatusCode::OK)
            .await["access_token"]
            .as_str()
            .expect("admin")
            .to_owned()
    }

    /// Revokes the official client `client_id` as an operator would, through the admin API.
    pub async fn revoke(&self, client_id: &str) {
        let admin = self.admin_token().await;
        let r = self
            .http
            .delete(format!("{}/v1/clients/{client_id}", self.address))
            .bearer_auth(admin)
            .send()
            .await
            .expect("revoke");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }

    /// The access token of a new official client with `scopes`, limited to `region` if given.
    pub async fn official(&self, scopes: &[&str], region: Option<&str>) -> String {
        let admin = self.admin_token().await;
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
        let c = expect_json(r, StatusCode::CREATED).await;
        self.post("/v1/auth/token", &json!({"grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]}), StatusCode::OK)
            .await["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// The callers of the authorization matrix (`hc_platform::access_matrix`). `wrong_scope` must be a scope that
    /// none of the checked service's operations asks for.
    pub async fn callers(&self, wrong_scope: &str) -> Callers {
        let id_number = hc_platform::testing::valid_id_number("65010219900101123");
        let (_, citizen) = self.citizen(&id_number, "13999990001", "650102").await;
        let wrong_scope = self.official(&[wrong_scope], None).await;
        let every: Vec<&str> = Scope::ALL
            .iter()
            .filter(|s| s.is_official())
            .map(|s| s.into())
            .collect();
        let other_region = self.official(&every, Some("650100")).await;
        // A real client's claims, signed again: expired with identity's own key, and fresh with a key nobody trusts.
        let payload = wrong_scope.split('.').nth(1).expect("a JWT");
        let claims: AccessClaims = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .expect("base64url"),
        )
        .expect("claims");
        let now = chrono::Utc::now().timestamp();
        let ours = KeyRing::from_spec(&self.signing_keys.clone().into()).expect("keys");
        let expired = ours
            .sign(&AccessClaims {
                iat: now - 1_200,
                exp: now - 600,
                ..claims.clone()
            })
            .expect("sign");
        let foreign = KeyRing::from_spec(&KeyRing::generate_spec("k").expect("key").into())
            .expect("keys")
            .sign(&claims)
            .expect("sign");
        Callers {
            foreign_key: foreign,
            expired,
            citizen,
            wrong_scope,
            other_region,
        }
    }
}
