//! Facts that follow the person (docs/interop.md): three platforms' worth of services and the national hub. Xi'an
//! lists a Guangzhou resident as a close contact; within 5 s their Guangzhou status carries it, with the region that
//! reported it, and Xi'an learns nothing about them beyond what it sent.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hc_platform::testing::{TestSuite, eventually};
use hc_token::SigningKey;
use identity::testing::TestIdentity;
use serde_json::{Value, json};

use crate::helpers::nth_id;

const GZ_EXCHANGE_SEED: [u8; 32] = [41; 32];
const XA_EXCHANGE_SEED: [u8; 32] = [42; 32];

fn exchange_key(region: &str, kid: &str, seed: [u8; 32]) -> String {
    let key = SigningKey::from_seed(region, kid, &seed)
        .expect("key")
        .verifying_key();
    format!("{region}={kid}:{}", URL_SAFE_NO_PAD.encode(key.public))
}

/// Identity and declaration of a region, exchanging facts through the hub; `scoring` adds Guangzhou's colours.
async fn platform(
    suite: &TestSuite,
    region: &str,
    kid: &str,
    seed: [u8; 32],
    hub: &str,
) -> (
    TestIdentity,
    hc_platform::testing::Started<declaration::DeclarationSettings>,
) {
    let identity = TestIdentity::start(suite).await;
    let declaration = suite
        .service::<declaration::Declaration>()
        .set("declaration.region", region)
        .set("declaration.hub_url", hub)
        .set(
            "declaration.exchange_key",
            format!("{kid}:{}", STANDARD.encode(seed)),
        )
        .set("declaration.hub_exchange_ms", 100)
        .start()
        .await;
    (identity, declaration)
}

async fn count(pool: &deadpool_postgres::Pool, sql: &str) -> i64 {
    scoring::count(&pool.get().await.expect("db"), sql)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_contact_listed_in_xian_reaches_the_guangzhou_residents_status_within_5_s() {
    hc_platform::testing::quiet_telemetry("scoring-tests");
    let hub_suite = TestSuite::new().await;
    let hub = hub_suite
        .service::<verification::hub::Hub>()
        .set(
            "hub.root_key",
            format!("cn-root:{}", STANDARD.encode([43; 32])),
        )
        .set(
            "hub.exchange_keys",
            format!(
                "{},{}",
                exchange_key("440100", "gz-x", GZ_EXCHANGE_SEED),
                exchange_key("610100", "xa-x", XA_EXCHANGE_SEED)
            ),
        )
        .start()
        .await;
    let hub_db = hub.pool(verification::hub::SCHEMA);

    let gz = TestSuite::new().await;
    let (gz_identity, _) = platform(&gz, "440100", "gz-x", GZ_EXCHANGE_SEED, &hub.address).await;
    gz.service::<scoring::Scoring>()
        .set("scoring.scheduler_interval_ms", 200)
        .set("scoring.snapshot_refresh_ms", 100)
        .start()
        .await;
    let xa = TestSuite::new().await;
    let (xa_identity, xa_declaration) =
        platform(&xa, "610100", "xa-x", XA_EXCHANGE_SEED, &hub.address).await;
    let xa_db = xa_declaration.pool(declaration::SCHEMA);

    // A Guangzhou resident registers; Guangzhou tells the hub (by national index only).
    let id_number = nth_id("440106", 7);
    let (person, _) = gz_identity
        .citizen(&id_number, "13900000777", "440106")
        .await;
    eventually(
        Duration::from_secs(10),
        "the hub never learnt the resident",
        || {
            let hub_db = &hub_db;
            async move {
                (count(
                    hub_db,
                    "SELECT count(*) FROM residents WHERE region = '440100'",
                )
                .await
                    == 1)
                    .then_some(())
            }
        },
    )
    .await;

    // Xi'an's health commission lists them as a close contact.
    let official = xa_identity
        .official(&["import:cases"], Some("610100"))
        .await;
    let today = hc_domain::china_time::day_of(chrono::Utc::now()).to_string();
    let r = gz
        .http
        .post(format!("{}/v1/imports/cases", xa_declaration.address))
        .bearer_auth(official)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .header("Content-Type", "application/x-ndjson")
        .body(format!(
            "{}\n",
            json!({"id_number": id_number, "status": "close_contact", "since": today})
        ))
        .send()
        .await
        .expect("import");
    let imported = hc_platform::testing::expect_json(r, reqwest::StatusCode::CREATED).await;
    assert_eq!(imported["accepted"], 1, "{imported}");
    let listed = Instant::now();

    // Within 5 s, Guangzhou's status of the person says so, and who reported it.
    let status: Value = eventually(
        Duration::from_secs(5),
        "the Guangzhou status never showed the Xi'an listing",
        || {
            let gz = &gz;
            let person = person.clone();
            async move {
                let doc: Value = hc_platform::status_document::read_as(
                    &gz.prefixed(),
                    person.parse().expect("a person id"),
                )
                .await
                .expect("Redis answers")?;
                (doc["reasons"]
                    .as_array()?
                    .iter()
                    .any(|r| r["rule"] == "close-contact"))
                .then_some(doc)
            }
        },
    )
    .await;
    let took = listed.elapsed();
    let reason = status["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .find(|r| r["rule"] == "close-contact")
        .expect("the reason")
        .clone();
    // The national rules make a close contact yellow; Guangzhou's rule set has no stricter one (610000's red applies
    // to people judged in Shaanxi).
    assert_eq!(status["colour"], "yellow", "{status}");
    assert_eq!(
        reason["en"],
        format!("listed as a close contact on {today} (reported by 610100)"),
        "{reason}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // Xi'an learnt nothing back: it holds no link to the person, stored nothing from the hub, and its queue to the
    // hub has been sent without a refusal. The hub knows the person by a 32-byte index and a region, nothing else
    // (what the hub routes to whom: tests/api/hub.rs in verification).
    let xa_count = |sql: &'static str| {
        let xa_db = &xa_db;
        async move { count(xa_db, sql).await }
    };
    assert_eq!(xa_count("SELECT count(*) FROM person_links").await, 0);
    assert_eq!(
        xa_count("SELECT count(*) FROM case_status").await,
        1,
        "what it sent, and only that"
    );
    // Its fetches succeed and bring nothing: nothing it stored came from the hub.
    assert_eq!(
        xa_count("SELECT count(*) FROM case_status WHERE client_id = 'hub'").await,
        0
    );
    assert_eq!(xa_count("SELECT count(*) FROM hub_refused").await, 0);
    eventually(
        Duration::from_secs(5),
        "Xi'an's queue to the hub was never sent",
        || async { (xa_count("SELECT count(*) FROM hub_outbox").await == 0).then_some(()) },
    )
    .await;
    assert_eq!(
        count(
            &hub_db,
            "SELECT count(*) FROM residents WHERE length(national_index) <> 32"
        )
        .await,
        0
    );
    assert_eq!(count(&hub_db, "SELECT count(*) FROM residents").await, 1);
}
