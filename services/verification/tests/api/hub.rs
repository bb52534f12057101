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
    // Another region's key id is refused.
    let r = gz
        .http
        .put(format!("{}/v1/hub/regions/610100/list", hub.address))
        .json(&xa_list(7, &[&xa_key("gz1", [15; 32])]))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 422, "gz1 is Guangzhou's key id");

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
