use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hc_platform::settings::{Builder, Settings};
use hc_platform::status_document::{self, CurrentStatus};
use hc_platform::testing::{TestSuite, WAIT, eventually};
use hc_token::{CodeClaims, Flags, SigningKey};
use identity::testing::TestIdentity;
use serde_json::{Value, json};

/// Asserts a problem+json answer with `status` naming `field`, and returns it.
pub async fn problem(r: reqwest::Response, status: u16, field: &str) -> Value {
    let status = reqwest::StatusCode::from_u16(status).expect("status");
    let body = hc_platform::testing::problem(r, status).await;
    assert_eq!(body["field"], field, "{body}");
    body
}

/// Guangzhou's code-signing seed and pseudonym key (rendering and verification share the latter), and root key.
pub const GZ_SIGNING_SEED: [u8; 32] = [7; 32];
pub const PSEUDONYM_KEY: [u8; 32] = [9; 32];
pub const GZ_ROOT_SEED: [u8; 32] = [5; 32];
/// Xi'an's: its own platform, other keys.
pub const XA_SIGNING_SEED: [u8; 32] = [12; 32];
pub const XA_PSEUDONYM_KEY: [u8; 32] = [13; 32];
pub const XA_ROOT_SEED: [u8; 32] = [11; 32];

pub fn root(region: &str, seed: [u8; 32]) -> SigningKey {
    let kid = if region == "440100" {
        "gz-root"
    } else {
        "xa-root"
    };
    SigningKey::from_seed(region, kid, &seed).expect("root key")
}

/// `region=kid:key` as verification.peer_roots lists it.
pub fn pinned(region: &str, seed: [u8; 32]) -> String {
    let key = root(region, seed).verifying_key();
    format!(
        "{region}={}:{}",
        key.kid,
        URL_SAFE_NO_PAD.encode(key.public)
    )
}

pub fn gz_code_key() -> SigningKey {
    SigningKey::from_seed("440100", "gz1", &GZ_SIGNING_SEED).expect("key")
}

pub fn pseudonyms() -> hc_token::Pseudonyms {
    hc_token::Pseudonyms::new(1, [(1u8, &PSEUDONYM_KEY[..])]).expect("keys")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a code of ours for `person` (fresh, green, version 1 unless changed).
pub fn claims(person: &str, colour: hc_domain::Colour, version: u64) -> CodeClaims {
    CodeClaims {
        issuer: "440100".into(),
        issued_at: now() - 10,
        expires_at: now() + 290,
        subject: pseudonyms().seal(person.parse().expect("uuid")),
        colour,
        status_version: version,
        negative_test_at: Some(now() - 3600),
        status_at: None,
        flags: Flags::default(),
    }
}

/// One platform: identity, rendering and verification over one fresh database and key prefix.
pub struct TestApp {
    pub suite: TestSuite,
    pub identity: TestIdentity,
    pub rendering: String,
    pub address: String,
    /// The verification schema.
    pub pool: deadpool_postgres::Pool,
    pub settings: Settings<verification::VerificationSettings>,
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

/// Guangzhou (440100), trusting Xi'an's pinned root; `tweak` adds verification overrides.
pub async fn spawn_app_with(tweak: impl FnOnce(Builder) -> Builder) -> TestApp {
    spawn_platform("440100", tweak).await
}

/// A platform of `region` (440100 Guangzhou or 610100 Xi'an), each pinning the other's root.
pub async fn spawn_platform(region: &str, tweak: impl FnOnce(Builder) -> Builder) -> TestApp {
    hc_platform::testing::quiet_telemetry("verification-tests");
    let suite = TestSuite::new().await;
    let identity = TestIdentity::start(&suite).await;
    let gz = region == "440100";
    let (seed, pseudo, kid) = if gz {
        (GZ_SIGNING_SEED, PSEUDONYM_KEY, "gz1")
    } else {
        (XA_SIGNING_SEED, XA_PSEUDONYM_KEY, "xa1")
    };
    let pseudonym_keys = format!("1:{}", STANDARD.encode(pseudo));
    let rendering = suite
        .service::<rendering::Rendering>()
        .set("rendering.issuer", region)
        .set(
            "rendering.signing_keys",
            format!("{kid}:{}", STANDARD.encode(seed)),
        )
        .set("rendering.pseudonym_keys", pseudonym_keys.clone())
        // No scoring here: statuses are put into Redis as scoring does.
        .set("rendering.scoring_url", "http://127.0.0.1:9")
        .start()
        .await
        .address;

    let (root_seed, peer) = if gz {
        (GZ_ROOT_SEED, pinned("610100", XA_ROOT_SEED))
    } else {
        (XA_ROOT_SEED, pinned("440100", GZ_ROOT_SEED))
    };
    let root_kid = if gz { "gz-root" } else { "xa-root" };
    let verification = suite
        .service::<verification::Verification>()
        .set("verification.issuer", region)
        .set(
            "verification.own_keys_url",
            format!("{rendering}/v1/trust/keys"),
        )
        .set("verification.pseudonym_keys", pseudonym_keys)
        .set(
            "verification.root_key",
            format!("{root_kid}:{}", STANDARD.encode(root_seed)),
        )
        .set("verification.peer_roots", peer)
        .set("verification.peers_refresh_ms", 200)
        .set("verification.venue_cache_ms", 100)
        .start_with(tweak)
        .await;
    let app = TestApp {
        pool: verification.pool(verification::SCHEMA),
        address: verification.address,
        settings: verification.settings,
        suite,
        identity,
        rendering,
    };
    app.wait_trusting(region).await;
    app
}

/// The `sub` (client id) of an access token (no verification: the test made it).
pub fn subject_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("jwt");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json");
    claims["sub"].as_str().expect("sub").to_owned()
}

pub fn open_policy() -> Value {
    json!({"colours": ["green"], "nat_within_hours": null, "international_admitted": true, "hours": null})
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Waits until our trust list names `region` (our own keys are fetched from rendering at start).
    pub async fn wait_trusting(&self, region: &str) {
        eventually(
            WAIT,
            format!("the trust list never named {region}"),
            || async move {
                let list = self.trust_list().await;
                list.issuers
                    .iter()
                    .any(|i| i.region == region)
                    .then_some(())
            },
        )
        .await
    }

    /// Our trust list, verified against our root key.
    pub async fn trust_list(&self) -> hc_token::TrustList {
        let signed = self.signed_trust_list().await;
        let me = &self.settings.service.issuer;
        let seed = if me == "440100" {
            GZ_ROOT_SEED
        } else {
            XA_ROOT_SEED
        };
        signed
            .verify(&root(me, seed).verifying_key(), now())
            .expect("our list verifies")
    }

    pub async fn signed_trust_list(&self) -> hc_token::SignedTrustList {
        let r = self
            .http
            .get(self.url("/v1/trust/list"))
            .send()
            .await
            .expect("list");
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    pub async fn admin(&self) -> String {
        self.identity.official(&["admin"], None).await
    }

    /// A checkpoint device with `scopes`, bound to `venue` (created with `policy` in 440106, Tianhe) by an admin.
    pub async fn device_at(&self, venue: &str, policy: Value, scopes: &[&str]) -> String {
        let token = self.identity.official(scopes, None).await;
        let region = if self.settings.service.issuer == "440100" {
            "440106"
        } else {
            "610113"
        };
        let r = self
            .put_venue(venue, &json!({"name": format!("场所 {venue}"), "region": region, "policy": policy, "devices": [subject_of(&token)]}))
            .await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        token
    }

    pub async fn put_venue(&self, venue: &str, body: &Value) -> reqwest::Response {
        let admin = self.admin().await;
        self.http
            .put(self.url(&format!("/v1/venues/{venue}")))
            .bearer_auth(admin)
            .json(body)
            .send()
            .await
            .expect("venue")
    }

    /// POST /v1/verify; returns (status, body).
    pub async fn verify(&self, device: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/v1/verify"))
            .bearer_auth(device)
            .json(&body)
            .send()
            .await
            .expect("verify");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers a person living in Guangzhou (Tianhe) and signs them in: (person id, citizen token, ID number).
    pub async fn citizen(&self, n: u32) -> (String, String, String) {
        let id_number = hc_platform::testing::valid_id_number(&format!("44010619900101{n:03}"));
        let phone = format!("137{:04}{:04}", std::process::id() % 10_000, n);
        let (person, token) = self.identity.citizen(&id_number, &phone, "440106").await;
        (person, token, id_number)
    }

    /// Waits until verification has heard of the person's registration.
    pub async fn wait_registered(&self, person: &str) {
        let id: uuid::Uuid = person.parse().expect("uuid");
        let id = &id;
        eventually(
            WAIT,
            format!("verification never heard of {person}"),
            || async move {
                let n: i64 = self
                    .pool
                    .get()
                    .await
                    .expect("db")
                    .query_one("SELECT count(*) FROM persons WHERE person_id = $1", &[id])
                    .await
                    .expect("count")
                    .get(0);
                (n == 1).then_some(())
            },
        )
        .await
    }

    /// Writes a status document through scoring's writer.
    pub async fn put_status(
        &self,
        person: &str,
        version: i64,
        colour: &str,
        tested_hours_ago: i64,
    ) {
        let status = CurrentStatus {
            colour: colour.parse().expect("a colour"),
            variant: "standard".into(),
            version,
            computed_at: chrono::Utc::now(),
            negative_test_at: Some(chrono::Utc::now() - chrono::Duration::hours(tested_hours_ago)),
        };
        status_document::write_status(
            &self.prefixed(),
            person.parse().expect("a person id"),
            &status,
        )
        .await
        .expect("status written");
    }

    /// The citizen's code from rendering (payload format).
    pub async fn code_of(&self, token: &str) -> String {
        let r = self
            .http
            .get(format!("{}/v1/codes/me?format=payload", self.rendering))
            .bearer_auth(token)
            .send()
            .await
            .expect("code");
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        let v: Value = r.json().await.expect("json");
        v["code"].as_str().expect("code").to_owned()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.pool
            .get()
            .await
            .expect("db")
            .query_one(sql, &[])
            .await
            .expect("count")
            .get(0)
    }
}
