use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hc_platform::events::{StatusChange, StatusChanged};
use hc_platform::settings::Builder;
use hc_platform::status_document::{self, CurrentStatus};
use hc_platform::testing::{TestSuite, WAIT, eventually};
use identity::testing::TestIdentity;
use serde_json::Value;

/// The test platform's keys: the signing seed and the pseudonym key, known here so tests can check what they see.
pub const SIGNING_SEED: [u8; 32] = [7; 32];
pub const PSEUDONYM_KEY: [u8; 32] = [9; 32];

/// The tests of this binary run one at a time: they assert on counters of the metrics recorder, which is one per
/// process.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Identity, scoring and rendering on free ports over one fresh database and key prefix.
pub struct TestApp {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    pub suite: TestSuite,
    pub identity: TestIdentity,
    pub scoring: String,
    pub address: String,
}

impl std::ops::Deref for TestApp {
    type Target = TestSuite;
    fn deref(&self) -> &TestSuite {
        &self.suite
    }
}

pub fn signing_keys() -> String {
    format!("t1:{}", STANDARD.encode(SIGNING_SEED))
}

pub fn pseudonyms() -> hc_token::Pseudonyms {
    hc_token::Pseudonyms::new(1, [(1u8, &PSEUDONYM_KEY[..])]).expect("keys")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_scoring(|b| b).await
}

/// As [`spawn_app`], with overrides of scoring's settings.
pub async fn spawn_app_with_scoring(tweak: impl FnOnce(Builder) -> Builder) -> TestApp {
    let turn = ONE_AT_A_TIME.lock().await;
    hc_platform::testing::quiet_telemetry("rendering-tests");
    let suite = TestSuite::new().await;
    let identity = TestIdentity::start(&suite).await;
    let scoring = suite
        .service::<scoring::Scoring>()
        .start_with(tweak)
        .await
        .address;
    let mut app = TestApp {
        _turn: turn,
        suite,
        identity,
        scoring,
        address: String::new(),
    };
    app.address = app.rendering(|b| b).await;
    app
}

impl TestApp {
    /// Starts a rendering service with `tweak`'s overrides (on top of the test keys and this app's scoring), and
    /// returns its address.
    pub async fn rendering(&self, tweak: impl FnOnce(Builder) -> Builder) -> String {
        self.service::<rendering::Rendering>()
            .set("rendering.signing_keys", signing_keys())
            .set(
                "rendering.pseudonym_keys",
                format!("1:{}", STANDARD.encode(PSEUDONYM_KEY)),
            )
            .set("rendering.scoring_url", self.scoring.clone())
            .start_with(tweak)
            .await
            .address
    }

    /// Registers a person living in Guangzhou and signs them in: (person id, citizen token).
    pub async fn citizen(&self, n: u32) -> (String, String) {
        let id_number = hc_platform::testing::valid_id_number(&format!("44010619900101{n:03}"));
        let phone = format!("138{:04}{:04}", std::process::id() % 10_000, n);
        self.identity.citizen(&id_number, &phone, "440106").await
    }

    pub fn status_key(&self, person: &str) -> String {
        status_document::key(&self.prefixed(), person.parse().expect("a person id"))
    }

    /// Waits (up to `WAIT`) for scoring to put the person's status in Redis, and returns its version.
    pub async fn wait_status(&self, person: &str) -> i64 {
        eventually(
            WAIT,
            format!("scoring never stored a status for {person}"),
            || async move {
                redis::cmd("HGET")
                    .arg(self.status_key(person))
                    .arg(status_document::VERSION_FIELD)
                    .query_async::<Option<i64>>(&mut self.store.conn())
                    .await
                    .expect("hget")
            },
        )
        .await
    }

    /// Writes a status document through scoring's writer, and announces it on `status.changed`.
    pub async fn put_status(&self, person: &str, version: i64, colour: &str) {
        let status = CurrentStatus {
            colour: colour.parse().expect("a colour"),
            variant: "standard".into(),
            version,
            computed_at: "2026-01-01T00:00:00Z".parse().expect("time"),
            negative_test_at: Some("2026-01-01T09:41:07Z".parse().expect("time")),
        };
        status_document::write_status(
            &self.prefixed(),
            person.parse().expect("a person id"),
            &status,
        )
        .await
        .expect("status written");
        let change = StatusChanged {
            changes: vec![StatusChange {
                person_id: person.parse().expect("a person id"),
                version,
                colour: status.colour,
            }],
        }
        .encode();
        redis::cmd("XADD")
            .arg(format!(
                "{}{}",
                self.redis.prefix,
                hc_platform::outbox::stream_key(StatusChanged::STREAM)
            ))
            .arg("*")
            .arg("event_id")
            .arg(format!("scoring:test-{}", uuid::Uuid::new_v4()))
            .arg("payload")
            .arg(change.to_string())
            .query_async::<()>(&mut self.store.conn())
            .await
            .expect("xadd");
    }

    /// Requests the payload until `ok` holds (up to `WAIT`: a status change reaches the in-process cache through the
    /// stream), and returns it.
    pub async fn payload_until(
        &self,
        address: &str,
        token: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let ok = &ok;
        eventually(WAIT, "the code never changed as expected", || async move {
            Some(self.payload(address, token).await).filter(ok)
        })
        .await
    }

    pub async fn get(&self, address: &str, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{address}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn payload(&self, address: &str, token: &str) -> Value {
        let r = self
            .get(address, "/v1/codes/me?format=payload", token)
            .await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        r.json().await.expect("json")
    }

    /// A counter's value from a service's /metrics (0 if absent), summed over its labels matching `labels`.
    pub async fn counter(&self, address: &str, name: &str, labels: &str) -> f64 {
        hc_platform::testing::metric(&self.http, address, name, labels).await
    }

    /// The trust store a checkpoint would build from `GET /v1/trust/keys`.
    pub async fn trust(&self) -> hc_token::TrustStore {
        let keys: Value = self
            .http
            .get(format!("{}/v1/trust/keys", self.address))
            .send()
            .await
            .expect("keys")
            .json()
            .await
            .expect("json");
        hc_token::TrustStore::new(keys["keys"].as_array().expect("keys").iter().map(|k| {
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(k["x"].as_str().expect("x"))
                .expect("base64url");
            hc_token::VerifyingKey::new(
                k["iss"].as_str().expect("iss"),
                k["kid"].as_str().expect("kid"),
                &x,
                k["signs_until"].as_i64(),
            )
            .expect("key")
        }))
    }
}
