use hc_platform::settings::Builder;
use hc_platform::status_document;
use hc_platform::testing::{TestSuite, WAIT, eventually};
pub use hc_platform::testing::{problem, valid_id_number as id_number};
use identity::testing::TestIdentity;

use serde_json::Value;

/// Identity, declaration and scoring on free ports over one fresh database and key prefix.
pub struct TestApp {
    pub suite: TestSuite,
    pub identity: TestIdentity,
    pub declaration: String,
    pub address: String,
    /// The scoring schema.
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

/// `tweak` adds overrides to the scoring service's settings. The scheduler runs every 200 ms.
pub async fn spawn_app_with(tweak: impl FnOnce(Builder) -> Builder) -> TestApp {
    hc_platform::testing::quiet_telemetry("scoring-tests");
    let suite = TestSuite::new().await;
    let identity = TestIdentity::start(&suite).await;
    let declaration = suite.service::<declaration::Declaration>().start().await;
    let scoring = suite
        .service::<scoring::Scoring>()
        .set("scoring.scheduler_interval_ms", 200)
        .set("scoring.snapshot_refresh_ms", 100)
        .start_with(tweak)
        .await;
    TestApp {
        pool: scoring.pool(scoring::SCHEMA),
        address: scoring.address,
        declaration: declaration.address,
        identity,
        suite,
    }
}

/// The `n`-th of a family of distinct valid ID numbers (born in the 1980s) registered in `region`.
pub fn nth_id(region: &str, n: u32) -> String {
    id_number(&format!(
        "{region}19{:02}{:02}{:02}{:03}",
        80 + n / 336_000 % 10,
        1 + n / 28_000 % 12,
        1 + n / 1000 % 28,
        n % 1000
    ))
}

/// A person of the tests: their ID number, person id and citizen token.
pub struct Citizen {
    pub id_number: String,
    pub person: String,
    pub token: String,
}

impl TestApp {
    /// How often scoring has rendered the public risk map.
    pub async fn renders(&self) -> f64 {
        hc_platform::testing::metric(
            &self.http,
            &self.address,
            "scoring_risk_map_renders_total",
            "",
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Registers the `n`-th person living in `home` and signs them in.
    pub async fn citizen(&self, home: &str, n: u32) -> Citizen {
        let id_number = nth_id(home, n);
        let phone = format!("139{:04}{:04}", std::process::id() % 10_000, n);
        let (person, token) = self.identity.citizen(&id_number, &phone, home).await;
        Citizen {
            id_number,
            person,
            token,
        }
    }

    /// A token of an official client with `scopes`, limited to `region` if given.
    pub async fn official(&self, scopes: &[&str], region: Option<&str>) -> String {
        self.identity.official(scopes, region).await
    }

    /// The status document in Redis, if any, read as a whole.
    pub async fn cached(&self, person: &str) -> Option<Value> {
        status_document::read_as(&self.prefixed(), person.parse().expect("a person id"))
            .await
            .expect("Redis answers")
    }

    /// The status document in Redis as rendering and verification read it.
    pub async fn as_readers_see_it(&self, person: &str) -> Option<status_document::CurrentStatus> {
        status_document::read(&self.prefixed(), person.parse().expect("a person id"))
            .await
            .expect("Redis answers")
    }

    /// Waits (up to `WAIT`) for the Redis status of `person` to satisfy `ok`, and returns it.
    pub async fn wait_status(&self, person: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let ok = &ok;
        eventually(
            WAIT,
            format!("the status of {person} never matched"),
            || async move { self.cached(person).await.filter(ok) },
        )
        .await
    }

    /// Waits (up to `WAIT`) until the scoring schema holds `rows` rows of `table` (a fact reached the projection even when
    /// it changes no colour).
    pub async fn wait_rows(&self, table: &str, rows: i64) {
        let sql = &format!("SELECT count(*) FROM {table}");
        eventually(
            WAIT,
            format!("{table} never held {rows} rows"),
            || async move {
                let n = scoring::count(&self.pool.get().await.expect("db"), sql)
                    .await
                    .expect("count");
                (n >= rows).then_some(())
            },
        )
        .await
    }

    /// Waits until `person` has the colour, in Redis and in PostgreSQL.
    pub async fn wait_colour(&self, person: &str, colour: &str) -> Value {
        let s = self.wait_status(person, |s| s["colour"] == colour).await;
        let id: uuid::Uuid = person.parse().expect("uuid");
        let row = self
            .pool
            .get()
            .await
            .expect("db")
            .query_one(
                "SELECT colour, version FROM status WHERE person_id = $1",
                &[&id],
            )
            .await
            .expect("status row");
        assert_eq!(
            row.get::<_, String>(0),
            colour,
            "PostgreSQL agrees with Redis"
        );
        assert_eq!(
            row.get::<_, i64>(1),
            s["version"].as_i64().expect("version")
        );
        s
    }

    /// Publishes an event on a stream as its publisher would (for facts dated in the past).
    pub async fn inject(&self, stream: &str, payload: Value) {
        self.inject_as(stream, &format!("test:{}", uuid::Uuid::new_v4()), payload)
            .await;
    }

    /// As [`Self::inject`], with the publisher's event id `id` (the same id twice: a replay).
    pub async fn inject_as(&self, stream: &str, id: &str, payload: Value) {
        let key = format!(
            "{}{}",
            self.redis.prefix,
            hc_platform::outbox::stream_key(stream)
        );
        let _: String = redis::AsyncCommands::xadd(
            &mut self.store.conn(),
            key,
            "*",
            &[("event_id", id), ("payload", &payload.to_string())],
        )
        .await
        .expect("xadd");
    }

    /// Imports facts through the declaration service (NDJSON), asserting they were accepted.
    pub async fn import(&self, token: &str, kind: &str, rows: &[Value]) {
        let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
        let r = self
            .http
            .post(format!("{}/v1/imports/{kind}", self.declaration))
            .bearer_auth(token)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("import");
        let v = hc_platform::testing::expect_json(r, reqwest::StatusCode::CREATED).await;
        assert_eq!(v["rejected"], 0, "{v}");
    }

    pub async fn put_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("put")
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("post")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
    }
}

/// A time `days` days ago (at 10:00 Beijing time), RFC 3339.
pub fn days_ago(days: i64) -> String {
    let now = chrono::Utc::now();
    let day = hc_domain::china_time::day_of(now) - chrono::Duration::days(days);
    (hc_domain::china_time::start_of(day) + chrono::Duration::hours(2))
        .min(now - chrono::Duration::minutes(1))
        .to_rfc3339()
}

/// The date `days` days ago (Beijing), YYYY-MM-DD.
pub fn date_ago(days: i64) -> String {
    (hc_domain::china_time::day_of(chrono::Utc::now()) - chrono::Duration::days(days)).to_string()
}
