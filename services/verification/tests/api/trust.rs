use std::process::Command;

use hc_domain::Colour;
use hc_token::{ListedKey, SigningKey, TrustList, TrustedIssuer};
use serde_json::json;

use crate::helpers::{
    XA_ROOT_SEED, XA_SIGNING_SEED, claims, gz_code_key, now, open_policy, problem, root, spawn_app,
    spawn_platform,
};

fn xa_code_key() -> SigningKey {
    SigningKey::from_seed("610100", "xa1", &XA_SIGNING_SEED).expect("key")
}

fn xa_list(signed_by: &SigningKey, sequence: u64) -> hc_token::SignedTrustList {
    TrustList {
        signer: "610100".into(),
        sequence,
        issued_at: now(),
        expires_at: now() + 86_400,
        issuers: vec![TrustedIssuer {
            region: "610100".into(),
            keys: vec![ListedKey::of(&xa_code_key().verifying_key())],
            colours: None,
        }],
    }
    .sign(signed_by)
    .expect("sign")
}

fn same_colours() -> serde_json::Value {
    json!({"green": "green", "yellow": "yellow", "orange": "orange", "red": "red"})
}

fn xa_code(colour: Colour) -> String {
    let mut c = claims("00000000-0000-0000-0000-000000000001", colour, 4);
    c.issuer = "610100".into();
    hc_token::encode(&c, &xa_code_key()).expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_xian_code_passes_in_guangzhou_once_xians_list_is_imported_against_its_pinned_root() {
    let app = spawn_app().await;
    let device = app
        .device_at("baiyun-airport", open_policy(), &["verify"])
        .await;
    let (_, before) = app
        .verify(&device, json!({"code": xa_code(Colour::Green)}))
        .await;
    assert_eq!(before["reason"], "unknown_issuer", "{before}");

    let admin = app.admin().await;
    let put = |body: serde_json::Value| {
        app.http
            .put(app.url("/v1/trust/peers/610100"))
            .bearer_auth(admin.clone())
            .json(&body)
            .send()
    };
    // Signed with another root key: refused, with the reason.
    let impostor = SigningKey::from_seed("610100", "xa-root", &[99; 32]).expect("key");
    let r = put(json!({"list": xa_list(&impostor, 1), "colours": same_colours()}))
        .await
        .expect("put");
    let body = problem(r, 422, "list").await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("bad_signature"),
        "{body}"
    );
    // A colour table that reads a peer's red as green is refused.
    let r = put(json!({"list": xa_list(&root("610100", XA_ROOT_SEED), 1), "colours": {"green": "green", "yellow": "yellow", "orange": "orange", "red": "green"}}))
        .await
        .expect("put");
    problem(r, 422, "colours.red").await;

    let r =
        put(json!({"list": xa_list(&root("610100", XA_ROOT_SEED), 2), "colours": same_colours()}))
            .await
            .expect("put");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let (_, green) = app
        .verify(&device, json!({"code": xa_code(Colour::Green)}))
        .await;
    assert_eq!(
        (
            green["decision"].as_str(),
            green["issuer"].as_str(),
            green["judged_on"].as_str()
        ),
        (Some("pass"), Some("610100"), Some("code")),
        "{green}"
    );
    let (_, red) = app
        .verify(&device, json!({"code": xa_code(Colour::Red)}))
        .await;
    assert_eq!(red["reason"], "colour_not_admitted");
    // An altered Xi'an code fails.
    let mut altered = xa_code(Colour::Green);
    let at = altered.len() - 10;
    let swap = if &altered[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    altered.replace_range(at..at + 1, swap);
    assert_eq!(
        app.verify(&device, json!({"code": altered})).await.1["decision"],
        "deny"
    );
    // An older list than the one held is refused.
    let r =
        put(json!({"list": xa_list(&root("610100", XA_ROOT_SEED), 1), "colours": same_colours()}))
            .await
            .expect("put");
    problem(r, 409, "list").await;
    // Our own list now names both issuers.
    let ours = app.trust_list().await;
    let mut regions: Vec<_> = ours.issuers.iter().map(|i| i.region.as_str()).collect();
    regions.sort();
    assert_eq!(regions, ["440100", "610100"]);
    // No pinned root for Shanghai: nothing to import against.
    let r = app
        .http
        .put(app.url("/v1/trust/peers/310100"))
        .bearer_auth(&admin)
        .json(
            &json!({"list": xa_list(&root("610100", XA_ROOT_SEED), 3), "colours": same_colours()}),
        )
        .send()
        .await
        .expect("put");
    problem(r, 422, "region").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_platforms_recognise_each_others_codes_through_their_served_lists() {
    let gz = spawn_app().await;
    let xa = spawn_platform("610100", |b| b).await;
    // Each imports the other's list as its /v1/trust/list serves it.
    for (importer, exporter, region) in [(&gz, &xa, "610100"), (&xa, &gz, "440100")] {
        let list = exporter.signed_trust_list().await;
        let r = importer
            .http
            .put(importer.url(&format!("/v1/trust/peers/{region}")))
            .bearer_auth(importer.admin().await)
            .json(&json!({"list": list, "colours": same_colours()}))
            .send()
            .await
            .expect("import");
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
    // A Guangzhou citizen's code, from Guangzhou's rendering, passes a gate in Xi'an.
    let (person, token, _) = gz.citizen(11).await;
    gz.put_status(&person, 1, "green", 2).await;
    let code = gz.code_of(&token).await;
    let xa_gate = xa
        .device_at("xianyang-airport", open_policy(), &["verify"])
        .await;
    let (_, answer) = xa.verify(&xa_gate, json!({"code": code})).await;
    assert_eq!(answer["decision"], "pass", "{answer}");
    assert_eq!(answer["issuer"], "440100");
    let scan: uuid::Uuid = answer["scan_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let row = xa
        .pool
        .get()
        .await
        .expect("db")
        .query_one(
            "SELECT person_id, issuer FROM scan_events WHERE id = $1",
            &[&scan],
        )
        .await
        .expect("row");
    assert_eq!(
        row.get::<_, Option<uuid::Uuid>>(0),
        None,
        "Xi'an cannot open Guangzhou's pseudonym"
    );
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("440100"));
    // And the other way: a Xi'an code at a Guangzhou gate.
    let (xa_person, xa_token, _) = xa.citizen(12).await;
    xa.put_status(&xa_person, 1, "green", 2).await;
    let xa_code = xa.code_of(&xa_token).await;
    let gz_gate = gz
        .device_at("canton-tower", open_policy(), &["verify"])
        .await;
    let (_, answer) = gz.verify(&gz_gate, json!({"code": xa_code})).await;
    assert_eq!(
        (answer["decision"].as_str(), answer["issuer"].as_str()),
        (Some("pass"), Some("610100")),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hc_verify_checks_a_code_offline_against_a_trust_list_file() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("hc-verify-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("trust.json");
    std::fs::write(
        &file,
        serde_json::to_string(&app.signed_trust_list().await).expect("json"),
    )
    .expect("write");
    let pinned = crate::helpers::pinned("440100", crate::helpers::GZ_ROOT_SEED);
    let run = |code: &str, root: &str| {
        Command::new(env!("CARGO_BIN_EXE_hc-verify"))
            .arg("--trust-list")
            .arg(&file)
            .args(["--root", root, code])
            .output()
            .expect("hc-verify runs")
    };
    let code = hc_token::encode(
        &claims("00000000-0000-0000-0000-000000000002", Colour::Green, 3),
        &gz_code_key(),
    )
    .expect("sign");
    let out = run(&code, &pinned);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (answer["valid"].as_bool(), answer["colour"].as_str()),
        (Some(true), Some("green"))
    );

    let forged = SigningKey::from_seed("440100", "gz1", &[66; 32]).expect("key");
    let bad = hc_token::encode(
        &claims("00000000-0000-0000-0000-000000000002", Colour::Green, 3),
        &forged,
    )
    .expect("sign");
    let out = run(&bad, &pinned);
    assert_eq!(out.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["reason"], "bad_signature");

    // A list checked against the wrong root is not used at all.
    let wrong = crate::helpers::pinned("440100", [1; 32]);
    let out = run(&code, &wrong);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_covering_the_whole_platform_imports_a_peer_list() {
    let app = spawn_app().await;
    let device = app
        .device_at("baiyun-airport", open_policy(), &["verify"])
        .await;
    let put = |admin: String| {
        let body =
            json!({"list": xa_list(&root("610100", XA_ROOT_SEED), 1), "colours": same_colours()});
        app.http
            .put(app.url("/v1/trust/peers/610100"))
            .bearer_auth(admin)
            .json(&body)
            .send()
    };
    // Tianhe's admin (440106) would decide what every gate of Guangzhou (440100) trusts: refused, nothing imported.
    let tianhe = app.identity.official(&["admin"], Some("440106")).await;
    assert_eq!(put(tianhe).await.expect("put").status(), 403);
    let (_, answer) = app
        .verify(&device, json!({"code": xa_code(Colour::Green)}))
        .await;
    assert_eq!(answer["reason"], "unknown_issuer", "{answer}");
    let guangzhou = app.identity.official(&["admin"], Some("440100")).await;
    let r = put(guangzhou).await.expect("put");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}
