//! The seeded population of traffic-model.md and what each person must get: 0.01 % confirmed (red), 0.1 % close
//! contacts (yellow), 5 % with a visit to the region that turns high risk during a run (green, then red), 70 %
//! declared today, 60 % tested within 48 h; citizen tokens; the official clients; the venue and its gate.
//!
//! Seeding goes through the suite's own APIs, as production data would: registration (encrypted, blind-indexed,
//! announced to the others), imports of cases, visits and test results, daily declarations. Only the citizens'
//! access tokens are minted here with the run's identity key, as identity itself signs them (the sign-in persona
//! exercises the real one-time-code flow). Seeding is never part of a timed figure.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{Days, NaiveDate, Utc};
use futures_util::{StreamExt, stream};
use hc_platform::auth::{AccessClaims, KeyRing, SubjectKind};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::schedule::backoff_s;
use crate::suite::{Suite, url};

/// Home of the population (Guangzhou, Tianhe); the venue's county.
pub const HOME: &str = "440106";
/// HOME's province, whose county map the map's viewers open.
pub const PROVINCE: &str = "440000";
/// The region that turns high risk in a run (Guangzhou, Baiyun): 5 % of the people were seen there.
pub const RISK_REGION: &str = "440111";
pub const VENUE: &str = "load-gate";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Confirmed,
    CloseContact,
    Visitor,
    Plain,
}

impl Group {
    /// Deterministic by index, so that every run and the checks agree; small populations still hold one of each
    /// (indexes 3, 9 and 17).
    pub fn of(i: usize) -> Group {
        if i % 10_000 == 17 {
            Group::Confirmed
        } else if i % 1_000 == 3 {
            Group::CloseContact
        } else if i % 20 == 9 {
            Group::Visitor
        } else {
            Group::Plain
        }
    }

    /// The colour the national baseline rules give, before and after the risk change.
    pub fn colour(self, risk_changed: bool) -> &'static str {
        match self {
            Group::Confirmed => "red",
            Group::CloseContact => "yellow",
            Group::Visitor if risk_changed => "red",
            Group::Visitor | Group::Plain => "green",
        }
    }

    /// Whether `colour` is a right answer: after the change, a visitor's recolouring may still be under way.
    pub fn accepts(self, colour: &str, risk_changed: bool) -> bool {
        colour == self.colour(risk_changed)
            || (risk_changed && self == Group::Visitor && colour == "green")
    }
}

pub fn declared_today(i: usize) -> bool {
    i % 10 < 7
}

pub fn tested_recently(i: usize) -> bool {
    (i / 10) % 10 < 6
}

/// The i-th person's ID number: born in Tianhe on a day from 1950 on, a thousand people per day.
pub fn id_number(i: usize) -> String {
    let born = NaiveDate::from_ymd_opt(1950, 1, 1)
        .and_then(|d| d.checked_add_days(Days::new((i / 1000) as u64)))
        .unwrap_or_default();
    let first17 = format!("{HOME}{}{:03}", born.format("%Y%m%d"), i % 1000);
    format!(
        "{first17}{}",
        hc_domain::check_character(first17.as_bytes()) as char
    )
}

pub fn phone(i: usize) -> String {
    format!("13{:09}", i % 1_000_000_000)
}

/// What a run needs of the seeded suite.
pub struct Population {
    pub people: Vec<String>,
    tokens: Vec<OnceLock<String>>,
    keys: KeyRing,
    pub device: Client,
    pub importer: Client,
    pub risk: Client,
    pub venue_code: String,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

impl Population {
    pub fn len(&self) -> usize {
        self.people.len()
    }

    /// The i-th citizen's access token, signed on first use and kept (as identity signs one at sign-in).
    pub fn token(&self, i: usize) -> &str {
        self.tokens[i].get_or_init(|| {
            let now = Utc::now().timestamp();
            let claims = AccessClaims {
                iss: "hc-identity".into(),
                aud: "hc-platform".into(),
                sub: self.people[i].clone(),
                iat: now,
                exp: now + 4 * 3600,
                jti: uuid::Uuid::new_v4().to_string(),
                scope: hc_domain::Scope::Citizen.into(),
                kind: SubjectKind::Citizen,
                region: None,
            };
            self.keys.sign(&claims).unwrap_or_default()
        })
    }
}

/// How long each seeding step took (printed, and reported as seeding speed; never part of a load figure).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SeedTimes {
    pub people: usize,
    pub register_s: f64,
    pub facts_s: f64,
    pub declarations_s: f64,
    pub statuses_s: f64,
}

pub async fn client_token(
    http: &reqwest::Client,
    id: &str,
    secret: &str,
) -> anyhow::Result<String> {
    let body =
        json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret});
    let r = http.post(format!("{}/v1/auth/token", url("identity")));
    let r = json_of(r.json(&body).send().await?, "client token").await?;
    r["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access_token")
}

async fn create_client(
    http: &reqwest::Client,
    admin: &str,
    name: &str,
    scopes: &[&str],
) -> anyhow::Result<Client> {
    let r = http
        .post(format!("{}/v1/clients", url("identity")))
        .bearer_auth(admin)
        .json(&json!({"name": name, "scopes": scopes, "region": "440100"}));
    let r = json_of(r.send().await?, &format!("creating client {name}")).await?;
    Ok(Client {
        id: r["client_id"].as_str().context("client_id")?.to_owned(),
        secret: r["client_secret"]
            .as_str()
            .context("client_secret")?
            .to_owned(),
    })
}

/// A response's JSON body, or an error naming `what` for an error status.
async fn json_of(r: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    Ok(r.error_for_status()
        .with_context(|| what.to_owned())?
        .json()
        .await?)
}

/// The last one-time code the development SMS gateway sent to `phone` (the suites under load run it).
pub async fn dev_code(
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
    phone: &str,
) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET")
        .arg(format!("{prefix}sms:dev:{phone}"))
        .query_async(redis)
        .await
}

/// Sends a request again while the suite sheds it before it reached a handler (429, or 503 `overloaded` from
/// admission control), after its `Retry-After` with jitter, as the citizen's page does; for up to two minutes.
/// Such a request was never handled, so even a request without an idempotency key is safe to send again.
async fn send_unless_shed(
    request: impl Fn() -> reqwest::RequestBuilder,
) -> anyhow::Result<reqwest::Response> {
    let give_up = Instant::now() + Duration::from_secs(120);
    let rng = std::sync::Mutex::new(<rand::rngs::StdRng as rand::SeedableRng>::from_os_rng());
    let mut lost = 0;
    loop {
        let r = match request().send().await {
            Ok(r) => r,
            // Every seeding request is idempotent (an Idempotency-Key, or a natural key such as the ID number): a
            // connection lost or a request stalled past the client's timeout is sent again, a few times.
            Err(err) if lost < 5 => {
                lost += 1;
                eprintln!("seeding: {err}; sending again ({lost} of 5)");
                tokio::time::sleep(Duration::from_secs(1 << lost)).await;
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        let retry_after = r
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let status = r.status().as_u16();
        let (Some(wait), true) = (retry_after, matches!(status, 429 | 503)) else {
            return Ok(r);
        };
        if Instant::now() > give_up {
            return Ok(r);
        }
        let bytes = r.bytes().await?;
        let problem: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if status == 503 && problem["type"] != "/problems/overloaded" {
            bail!("{status} {problem}");
        }
        tokio::time::sleep(Duration::from_secs_f64(backoff_s(Some(wait), &rng))).await;
    }
}

/// Runs `f` over `0..n` with `concurrency` requests in flight, failing on the first error.
async fn each<F, Fut>(n: usize, concurrency: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut s = stream::iter(0..n).map(f).buffer_unordered(concurrency);
    while let Some(r) = s.next().await {
        r?;
    }
    Ok(())
}

pub async fn seed(suite: &Suite, people: usize) -> anyhow::Result<(Population, SeedTimes)> {
    anyhow::ensure!(
        (20..=10_000_000).contains(&people),
        "--people must be between 20 and 10,000,000"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let admin_key = suite
        .secrets
        .get("HC__IDENTITY__ADMIN_KEY")
        .context("admin key")?;
    let admin = client_token(&http, "admin", admin_key).await?;
    let device = create_client(&http, &admin, "load gate", &["verify", "verify:id"]).await?;
    let importer = create_client(
        &http,
        &admin,
        "load lab",
        &["import:nat", "import:cases", "import:visits"],
    )
    .await?;
    let risk = create_client(&http, &admin, "load health commission", &["risk:write"]).await?;
    let venue = http
        .put(format!("{}/v1/venues/{VENUE}", url("verification")))
        .bearer_auth(&admin)
        .json(&json!({"name": "压测闸机", "region": HOME, "devices": [device.id],
                      "policy": {"colours": ["green"], "nat_within_hours": null, "international_admitted": true,
                                 "hours": null}}));
    let venue = json_of(venue.send().await?, "venue").await?;
    let venue_code = venue["venue_code"]
        .as_str()
        .context("venue_code")?
        .to_owned();

    if suite.attached {
        // A live suite may hold the test region at any risk (an earlier run raised it): the population starts with
        // it low, as the plans assume (the region belongs to the load test: a staging suite).
        let risk_token = client_token(&http, &risk.id, &risk.secret).await?;
        http.put(format!("{}/v1/regions/{RISK_REGION}/risk", url("scoring")))
            .bearer_auth(&risk_token)
            .json(&json!({"level": "low"}))
            .send()
            .await?
            .error_for_status()
            .context("setting the test region's risk low")?;
    }

    let mut times = SeedTimes {
        people,
        ..Default::default()
    };
    let t = Instant::now();
    let ids: Vec<OnceLock<String>> = (0..people).map(|_| OnceLock::new()).collect();
    let redis =
        redis::aio::ConnectionManager::new(redis::Client::open(suite.redis_url.as_str())?).await?;
    each(people, 64, |i| {
        let (http, ids, mut redis) = (&http, &ids, redis.clone());
        async move {
            // As a citizen registers: a code to the phone first, then the registration with it and the
            // development verifier's ticket for the ID number.
            let phone = phone(i);
            let r = send_unless_shed(|| {
                http.post(format!("{}/v1/auth/otp", url("identity")))
                    .json(&json!({"phone": phone, "purpose": "register"}))
            })
            .await?;
            if r.status() != reqwest::StatusCode::ACCEPTED {
                bail!("a registration code for person {i}: {}", r.status());
            }
            let code = dev_code(&mut redis, &suite.prefix, &phone)
                .await?
                .with_context(|| format!("no registration code sent to person {i}"))?;
            let r = send_unless_shed(|| {
                http.post(format!("{}/v1/persons", url("identity")))
                    .json(&json!({"name": "压测", "id_number": id_number(i), "phone": phone, "home_region": HOME,
                        "phone_code": code, "real_name_ticket": format!("dev:{}", id_number(i))}))
            })
            .await?;
            if !r.status().is_success() {
                bail!("registering person {i}: {}", r.status());
            }
            let v: Value = r.json().await?;
            let _ = ids[i].set(v["id"].as_str().context("id")?.to_owned());
            Ok(())
        }
    })
    .await?;
    times.register_s = t.elapsed().as_secs_f64();
    let keys = KeyRing::from_spec(&SecretString::from(
        suite
            .secrets
            .get("HC__IDENTITY__SIGNING_KEYS")
            .context("signing keys")?
            .clone(),
    ))?;
    let population = Population {
        people: ids
            .into_iter()
            .map(|c| c.into_inner().unwrap_or_default())
            .collect(),
        tokens: (0..people).map(|_| OnceLock::new()).collect(),
        keys,
        device,
        importer,
        risk,
        venue_code,
    };

    let t = Instant::now();
    let lab = client_token(&http, &population.importer.id, &population.importer.secret).await?;
    let today = Utc::now().date_naive();
    let since = today - Days::new(2);
    let seen = Utc::now() - chrono::Duration::days(2);
    let mut cases = Vec::new();
    let mut visits = Vec::new();
    let mut nat = Vec::new();
    for i in 0..people {
        match Group::of(i) {
            Group::Confirmed => cases.push(json!({"id_number": id_number(i), "status": "confirmed", "since": since})),
            Group::CloseContact => {
                cases.push(json!({"id_number": id_number(i), "status": "close_contact", "since": since}))
            }
            Group::Visitor => visits.push(json!({"id_number": id_number(i), "region": RISK_REGION,
                "first_seen": seen, "last_seen": seen + chrono::Duration::hours(1), "source": "carrier"})),
            Group::Plain => {}
        }
        if tested_recently(i) {
            let sampled = Utc::now() - chrono::Duration::minutes((i % (47 * 60)) as i64);
            nat.push(
                json!({"id_number": id_number(i), "sample_time": sampled, "result": "negative",
                            "lab": "seed-lab"}),
            );
        }
    }
    for (kind, rows) in [("cases", cases), ("visits", visits), ("nat-results", nat)] {
        for (k, chunk) in rows.chunks(20_000).enumerate() {
            let body: String = chunk.iter().map(|r| format!("{r}\n")).collect();
            let r = send_unless_shed(|| {
                http.post(format!("{}/v1/imports/{kind}", url("declaration")))
                    .bearer_auth(&lab)
                    .header("Idempotency-Key", format!("seed-{kind}-{k}"))
                    .header("Content-Type", "application/x-ndjson")
                    .body(body.clone())
            })
            .await?;
            let r = json_of(r, &format!("seed import of {kind}")).await?;
            // A suite seeded before (an attached run again) has these rows already: duplicates, not errors.
            let stored =
                r["accepted"].as_u64().unwrap_or(0) + r["duplicates"].as_u64().unwrap_or(0);
            anyhow::ensure!(stored == chunk.len() as u64, "seed import of {kind}: {r}");
        }
    }
    times.facts_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let declared: Vec<usize> = (0..people).filter(|&i| declared_today(i)).collect();
    each(declared.len(), 64, |k| {
        let (http, population, declared) = (&http, &population, &declared);
        async move {
            let i = declared[k];
            let r = send_unless_shed(|| {
                http.post(format!("{}/v1/declarations", url("declaration")))
                    .bearer_auth(population.token(i))
                    .header("Idempotency-Key", format!("seed-{i}"))
                    .json(&declaration())
            })
            .await?;
            if !r.status().is_success() {
                bail!("declaration of person {i}: {}", r.status());
            }
            Ok(())
        }
    })
    .await?;
    times.declarations_s = t.elapsed().as_secs_f64();

    // Every person has the status their facts give before any load starts.
    let t = Instant::now();
    wait_for_statuses(suite, people, &population.people).await?;
    if !suite.attached {
        wait_until_quiet(suite, &mut redis.clone()).await?;
    }
    times.statuses_s = t.elapsed().as_secs_f64();
    Ok((population, times))
}

pub fn declaration() -> Value {
    json!({"current_region": HOME, "temperature": 36.5, "symptoms": [], "contact_with_case": false,
           "travelled_regions": [], "commitment": true})
}

/// Waits until the seeding has left nothing to do: every outbox relayed and every consumer group caught up. The
/// statuses are in place while scoring may still be consuming events that change no colour (the declarations): a
/// run that starts then measures the seeding's tail (the smoke's first second did, with scoring at a full core and
/// rendering's calls to it timing out, on a day when the declarations came last).
async fn wait_until_quiet(
    suite: &Suite,
    redis: &mut redis::aio::ConnectionManager,
) -> anyhow::Result<()> {
    use hc_platform::events::{DeclarationSubmitted, FactsImported, PersonRegistered};
    let (db, conn) = tokio_postgres::connect(&suite.db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let unpublished = db
        .query(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let schema: String = r.get(0);
            format!("SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")
        })
        .collect::<Vec<_>>();
    let streams = [
        PersonRegistered::STREAM,
        DeclarationSubmitted::STREAM,
        FactsImported::STREAM,
    ]
    .map(|s| format!("{}{}", suite.prefix, hc_platform::outbox::stream_key(s)));
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut left = 0;
        for query in &unpublished {
            left += db.query_one(query.as_str(), &[]).await?.get::<_, i64>(0) as usize;
        }
        for key in &streams {
            // A stream nobody has written yet has no groups to wait for.
            if let Ok(info) = redis::AsyncCommands::xinfo_groups::<
                _,
                redis::streams::StreamInfoGroupsReply,
            >(redis, key)
            .await
            {
                left += info
                    .groups
                    .iter()
                    .map(|g| g.pending + g.lag.unwrap_or(0))
                    .sum::<usize>();
            }
        }
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the suite never caught up with its seeding: {left} events unrelayed or unconsumed"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until scoring holds every seeded person's status. A suite of our own holds only them, counted by colour;
/// an attached one (a live suite) holds others too, so there each seeded person's status is read, and a visitor may
/// be red already (its region may be high risk from an earlier run).
async fn wait_for_statuses(suite: &Suite, people: usize, ids: &[String]) -> anyhow::Result<()> {
    let (db, conn) = tokio_postgres::connect(&suite.db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let deadline = Instant::now() + Duration::from_secs(600);
    if suite.attached {
        let ids: Vec<uuid::Uuid> = ids.iter().filter_map(|i| i.parse().ok()).collect();
        let mut wrong = Vec::new();
        let mut last_report = Instant::now();
        while Instant::now() < deadline {
            let colours: std::collections::HashMap<uuid::Uuid, String> = db
                .query(
                    "SELECT person_id, colour FROM scoring.status WHERE person_id = ANY($1)",
                    &[&ids],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            wrong = ids
                .iter()
                .enumerate()
                .filter(|(i, id)| {
                    !colours
                        .get(id)
                        .is_some_and(|c| Group::of(*i).accepts(c, true))
                })
                .map(|(i, id)| format!("person {i} ({:?}): {:?}", Group::of(i), colours.get(id)))
                .take(5)
                .collect();
            if wrong.is_empty() {
                return Ok(());
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                eprintln!("waiting for the seeded statuses, e.g. {wrong:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("the seeded statuses never matched the population, e.g. {wrong:?}")
    }
    let expected = |colour: &str| {
        (0..people)
            .filter(|&i| Group::of(i).colour(false) == colour)
            .count() as i64
    };
    let want = ["green", "yellow", "red"].map(|c| (c, expected(c)));
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = db
            .query(
                "SELECT colour, count(*) FROM scoring.status GROUP BY colour ORDER BY colour",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect::<Vec<_>>();
        let count = |c: &str| {
            seen.iter()
                .find(|(k, _)| k == c)
                .map(|(_, n)| *n)
                .unwrap_or(0)
        };
        if want.iter().all(|(c, n)| count(c) == *n) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("the seeded statuses never matched the population: want {want:?}, scoring has {seen:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_have_the_traffic_models_shares() {
        let n = 1_000_000;
        let count = |g: Group| (0..n).filter(|&i| Group::of(i) == g).count();
        assert_eq!(count(Group::Confirmed), 100);
        assert_eq!(count(Group::CloseContact), 1_000);
        assert_eq!(count(Group::Visitor), 50_000);
        assert_eq!((0..n).filter(|&i| declared_today(i)).count(), 700_000);
        assert_eq!((0..n).filter(|&i| tested_recently(i)).count(), 600_000);
        // Even a smoke run's few people hold one of each.
        let small: Vec<Group> = (0..20).map(Group::of).collect();
        for g in [
            Group::Confirmed,
            Group::CloseContact,
            Group::Visitor,
            Group::Plain,
        ] {
            assert!(small.contains(&g), "{g:?}");
        }
    }

    #[test]
    fn id_numbers_and_phones_are_valid_and_distinct() {
        let ids: std::collections::BTreeSet<String> = (0..5_000).map(id_number).collect();
        assert_eq!(ids.len(), 5_000);
        for i in [0, 999, 1_000, 999_999, 3_000_000] {
            let id = id_number(i);
            assert!(
                hc_domain::IdNumber::parse(&id, Utc::now().date_naive()).is_ok(),
                "{id}"
            );
            assert!(hc_domain::Phone::parse(&phone(i)).is_ok());
        }
    }

    #[test]
    fn a_visitor_may_still_be_green_while_the_recolouring_runs_but_no_one_else_may_differ() {
        assert!(Group::Visitor.accepts("green", true));
        assert!(Group::Visitor.accepts("red", true));
        assert!(!Group::Visitor.accepts("red", false));
        assert!(!Group::Plain.accepts("red", true));
        assert!(!Group::CloseContact.accepts("green", false));
    }
}
