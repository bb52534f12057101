//! The national trust hub: Xi'an uploads its list to the hub, Guangzhou pins only the national root, and a Xi'an
//! code passes in Guangzhou; Xi'an withdraws its key through the hub and Guangzhou refuses it within one refresh.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hc_domain::Colour;
use hc_platform::testing::{TestSuite, WAIT, eventually};
use hc_token::{ListedKey, SigningKey, TrustList, TrustedIssuer};
use serde_json::{Value, json};

use crate::helpers::{
    GZ_ROOT_SEED, XA_ROOT_SEED, XA_SIGNING_SEED, claims, now, open_policy, pinned, root,
    spawn_app_with,
};

const NATIONAL_SEED: [u8; 32] = [31; 32];

fn national_pin() -> String {
    let key = SigningKey::from_seed("100000", "cn-root", &NATIONAL_SEED)
        .expect("key")
        .verifying_key();
    format!(
        "100000=cn-root:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.public)
    )
}

fn xa_key(kid: &str, seed: [u8; 32]) -> SigningKey {
    SigningKey::from_seed("610100", kid, &seed).expect("key")
}

fn xa_list(sequence: u64, keys: &[&SigningKey]) -> hc_token::SignedTrustList {
    TrustList {
        signer: "610100".into(),
        sequence,
        issued_at: now(),
        expires_at: now() + 86_400,
        issuers: vec![TrustedIssuer {
            region: "610100".into(),
            keys: keys
                .iter()
                .map(|k| ListedKey::of(&k.verifying_key()))
                .collect(),
            colours: None,
        }],
    }
    .sign(&root("610100", XA_ROOT_SEED))
    .expect("sign")
}

fn xa_code(key: &SigningKey) -> String {
    let mut c = claims("00000000-0000-0000-0000-000000000001", Colour::Green, 4);
    c.issuer = "610100".into();
    hc_token::encode(&c, key).expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_joins_and_withdraws_a_key_through_the_national_hub() {
    hc_platform::testing::quiet_telemetry("verification-tests");
    let hub_suite = TestSuite::new().await;
    let hub = hub_suite
        .service::<verification::hub::Hub>()
        .set(
            "hub.root_key",
            format!("cn-root:{}", STANDARD.encode(NATIONAL_SEED)),
        )
        .set(
            "hub.region_roots",
            format!(
                "{},{}",
                pinned("440100", GZ_ROOT_SEED),
                pinned("610100", XA_ROOT_SEED)
            ),
        )
        .start()
        .await;
    // Guangzhou pins no peer root, only the national one.
    let hub_url = hub.address.clone();
    let gz = spawn_app_with(move |b| {
        b.set_override("verification.peer_roots", "")
            .and_then(|b| b.set_override("verification.hub_url", hub_url))
            .and_then(|b| b.set_override("verification.national_root", national_pin()))
            .and_then(|b| b.set_override("verification.hub_refresh_ms", 200))
            .expect("overrides")
    })
    .await;
    let device = gz
        .device_at("gz-south-station", open_policy(), &["verify"])
        .await;
    let upload = |signed: hc_token::SignedTrustList| {
        gz.http
            .put(format!("{}/v1/hub/regions/610100/list", hub.address))
            .json(&signed)
            .send()
    };

    // Xi'an's upload is checked against its registered root.
    let xa1 = xa_key("xa1", XA_SIGNING_SEED);
    let forged = TrustList {
        signer: "610100".into(),
        sequence: 1,
        issued_at: now(),
        expires_at: now() + 86_400,
        issuers: vec![],
    }
    .sign(&SigningKey::from_seed("610100", "xa-root", &[99; 32]).expect("key"))
    .expect("sign");
    let r = upload(forged).await.expect("upload");
    let body = hc_platform::testing::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("bad_signature")),
        "{body}"
    );
    let r = gz
        .http
        .put(format!("{}/v1/hub/regions/310100/list", hub.address))
        .json(&xa_list(1, &[&xa1]))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 404, "a region that has not joined");
    let r = upload(xa_list(5, &[&xa1])).await.expect("upload");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);

    // Guangzhou takes the national list within a refresh, and a Xi'an code passes there.
    let passes = |code: String| {
        let (gz, device) = (&gz, &device);
        async move { gz.verify(device, json!({"code": code})).await.1 }
    };
    eventually(
        WAIT,
        "Guangzhou never admitted Xi'an's code through the hub",
        || {
            let passes = passes(xa_code(&xa1));
            async move { (passes.await["decision"] == "pass").then_some(()) }
        },
    )
    .await;
    // Guangzhou uploaded its own list to the hub too: the national list names it.
    let national: hc_token::SignedTrustList = gz
        .http
        .get(format!("{}/v1/hub/list", hub.address))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let national = national
        .verify(&hc_token::pinned_root(&national_pin()).expect("pin"), now())
        .expect("the national list verifies against the national root");
    let regions: Vec<&str> = national.issuers.iter().map(|i| i.region.as_str()).collect();
    assert_eq!(regions, ["440100", "610100"]);
    assert!(
        national.issuers.iter().all(|i| i.colours.is_some()),
        "every region's colour table is on the list"
    );

    // Withdrawal: a newer list without xa1. Guangzhou refuses xa1's codes within one refresh.
    let xa2 = xa_key("xa2", [14; 32]);
    let r = upload(xa_list(6, &[&xa2])).await.expect("upload");
    assert_eq!(r.status(), 200);
    eventually(WAIT, "Guangzhou kept admitting a withdrawn key", || {
        let passes = passes(xa_code(&xa1));
        async move {
            let answer: Value = passes.await;
            (answer["decision"] == "deny" && answer["reason"] == "unknown_key_id").then_some(())
        }
    })
    .await;
    assert_eq!(passes(xa_code(&xa2)).await["decision"], "pass");
    // A replay of the older list is refused: the key stays withdrawn.
    let r = upload(xa_list(5, &[&xa1])).await.expect("upload");
    assert_eq!(r.status(), 409);
    // Xi'an listing Guangzhou's key id (its next one, say) changes nothing for Guangzhou: ids may repeat across
    // regions, and a code is verified by the key under its id whose signature verifies.
    let squatter = xa_key("gz1", [15; 32]);
    let r = upload(xa_list(7, &[&xa2, &squatter]))
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    let guangzhou = hc_token::encode(
        &claims("00000000-0000-0000-0000-000000000002", Colour::Green, 1),
        &crate::helpers::gz_code_key(),
    )
    .expect("sign");
    eventually(WAIT, "the squatter's list never reached Guangzhou", || {
        let passes = passes(xa_code(&squatter));
        async move { (passes.await["decision"] == "pass").then_some(()) }
    })
    .await;
    let answer = passes(guangzhou).await;
    assert_ne!(answer["reason"], "bad_signature", "{answer}");
    assert_ne!(answer["reason"], "unknown_key_id", "{answer}");

    // The age of the list in use is a metric.
    let age = hc_platform::testing::metric(
        &gz.http,
        &gz.address,
        "verification_trust_list_age_seconds",
        "",
    )
    .await;
    assert!((0.0..60.0).contains(&age), "age {age}");
}

fn exchange_key(region: &str, seed: u8) -> SigningKey {
    SigningKey::from_seed(region, &format!("x{region}"), &[seed; 32]).expect("key")
}

fn registered(region: &str, seed: u8) -> String {
    let key = exchange_key(region, seed).verifying_key();
    format!(
        "{region}={}:{}",
        key.kid,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.public)
    )
}

/// The fact exchange on the hub alone, each region's messages signed here: a fact reaches only its person's home
/// region (kept until a region claims the person), the first claim stands, and what a region may not say is
/// refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_routes_a_fact_only_to_its_home_and_refuses_what_a_region_may_not_say() {
    use hc_platform::exchange::{Envelope, Fact, Fetched, Message};
    hc_platform::testing::quiet_telemetry("verification-tests");
    let suite = TestSuite::new().await;
    let hub = suite
        .service::<verification::hub::Hub>()
        .set(
            "hub.root_key",
            format!("cn-root:{}", STANDARD.encode(NATIONAL_SEED)),
        )
        .set(
            "hub.exchange_keys",
            format!(
                "{},{},{}",
                registered("440100", 51),
                registered("610100", 52),
                registered("310100", 53)
            ),
        )
        .start()
        .await;
    let send = |region: &'static str, seed: u8, message: Message| {
        let envelope = Envelope {
            region: region.into(),
            at: now(),
            message,
        };
        let signed =
            hc_token::SignedMessage::sign(&envelope, &exchange_key(region, seed)).expect("sign");
        suite
            .http
            .post(format!("{}/v1/hub/regions/{region}/exchange", hub.address))
            .json(&signed)
            .send()
    };
    let index = hc_platform::privacy::to_hex(&[7; 32]);
    let contact = |region: Option<&str>, status: &str| {
        Fact::Cases(hc_platform::events::CaseFact {
            status: status.into(),
            since: chrono::Utc::now().date_naive(),
            until: None,
            region: region.map(str::to_owned),
        })
    };
    let facts = |fact: Fact| Message::Facts {
        facts: vec![hc_platform::exchange::Exchanged {
            index: index.clone(),
            fact,
        }],
    };
    let fetch = |region: &'static str, seed: u8, ack: Vec<i64>| {
        let send = &send;
        async move {
            let r = send(region, seed, Message::Fetch { ack, limit: 100 })
                .await
                .expect("fetch");
            assert_eq!(r.status(), 200);
            r.json::<Fetched>().await.expect("json").facts
        }
    };

    // Xi'an reports a close contact nobody has claimed yet: accepted, kept.
    let r = send(
        "610100",
        52,
        facts(contact(Some("610113"), "close_contact")),
    )
    .await
    .expect("facts");
    assert_eq!(r.status(), 202);
    // Guangzhou claims the person; Shanghai's later claim does not take them over.
    for (region, seed) in [("440100", 51), ("310100", 53)] {
        let r = send(
            region,
            seed,
            Message::Residents {
                indexes: vec![index.clone()],
            },
        )
        .await
        .expect("residents");
        assert_eq!(r.status(), 200);
    }
    let delivered = fetch("440100", 51, vec![]).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].source, "610100");
    assert!(
        fetch("310100", 53, vec![]).await.is_empty(),
        "the second claimant gets nothing"
    );
    assert!(
        fetch("610100", 52, vec![]).await.is_empty(),
        "the sender gets nothing back"
    );
    // Delivered again until acknowledged, then gone.
    assert_eq!(fetch("440100", 51, vec![]).await.len(), 1);
    assert!(fetch("440100", 51, vec![delivered[0].id]).await.is_empty());

    // A case that arose outside the sender's region, a status no import takes, a stale or foreign envelope.
    let r = send(
        "610100",
        52,
        facts(contact(Some("440106"), "close_contact")),
    )
    .await
    .expect("facts");
    hc_platform::testing::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    let r = send("610100", 52, facts(contact(None, "suspected-ish")))
        .await
        .expect("facts");
    let body = hc_platform::testing::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "facts[0].fact", "{body}");
    let stale = Envelope {
        region: "610100".into(),
        at: now() - 3600,
        message: Message::Residents { indexes: vec![] },
    };
    let signed = hc_token::SignedMessage::sign(&stale, &exchange_key("610100", 52)).expect("sign");
    let r = suite
        .http
        .post(format!("{}/v1/hub/regions/610100/exchange", hub.address))
        .json(&signed)
        .send()
        .await
        .expect("send");
    let body = hc_platform::testing::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "at", "{body}");
    // Xi'an's key cannot speak for Guangzhou.
    let envelope = Envelope {
        region: "440100".into(),
        at: now(),
        message: Message::Residents { indexes: vec![] },
    };
    let signed =
        hc_token::SignedMessage::sign(&envelope, &exchange_key("610100", 52)).expect("sign");
    let r = suite
        .http
        .post(format!("{}/v1/hub/regions/440100/exchange", hub.address))
        .json(&signed)
        .send()
        .await
        .expect("send");
    let body = hc_platform::testing::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("wrong_key") || d.contains("bad_signature")),
        "{body}"
    );
}
