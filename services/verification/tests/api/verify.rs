use hc_domain::Colour;
use hc_token::SigningKey;
use serde_json::json;

use hc_platform::testing::{WAIT, eventually};

use crate::helpers::{claims, gz_code_key, now, open_policy, problem, spawn_app, subject_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_code_from_rendering_passes_and_the_scan_is_recorded_before_the_answer() {
    let app = spawn_app().await;
    let device = app
        .device_at("metro-tiyuxilu-a", open_policy(), &["verify"])
        .await;
    let (person, token, _) = app.citizen(1).await;
    app.put_status(&person, 3, "green", 2).await;
    let code = app.code_of(&token).await;

    let (status, answer) = app.verify(&device, json!({"code": code})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "pass", "{answer}");
    assert_eq!(answer["colour"], "green");
    assert_eq!(answer["rule"], "venue.policy");
    assert_eq!(answer["judged_on"], "current_status");
    assert_eq!(answer["issuer"], "440100");
    assert!(
        answer.get("masked_name").is_none_or(|m| m.is_null()),
        "a code answer names no one"
    );

    // Answered after the commit: the row is there as soon as the answer is.
    let scan: uuid::Uuid = answer["scan_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let row = app
        .pool
        .get()
        .await
        .expect("db")
        .query_one(
            "SELECT kind, person_id, decision, venue_id FROM scan_events WHERE id = $1",
            &[&scan],
        )
        .await
        .expect("the scan is recorded");
    assert_eq!(row.get::<_, &str>(0), "scan");
    assert_eq!(
        row.get::<_, Option<uuid::Uuid>>(1).map(|p| p.to_string()),
        Some(person)
    );
    assert_eq!(row.get::<_, &str>(2), "pass");
    assert_eq!(row.get::<_, &str>(3), "metro-tiyuxilu-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_being_refused_is_named() {
    let app = spawn_app().await;
    let (person, _, _) = app.citizen(2).await;
    app.put_status(&person, 1, "green", 72).await;
    let open = app.device_at("office-a", open_policy(), &["verify"]).await;
    let deny = |answer: &serde_json::Value, reason: &str, rule: &str| {
        assert_eq!(answer["decision"], "deny", "{answer}");
        assert_eq!(answer["reason"], reason, "{answer}");
        assert_eq!(answer["rule"], rule, "{answer}");
    };

    // The code itself: another key under our key id (a forgery), expired, an issuer on no list.
    let forged = SigningKey::from_seed("440100", "gz1", &[66; 32]).expect("key");
    let code = hc_token::encode(&claims(&person, Colour::Green, 1), &forged).expect("sign");
    deny(
        &app.verify(&open, json!({"code": code})).await.1,
        "bad_signature",
        "code",
    );
    let mut old = claims(&person, Colour::Green, 1);
    old.issued_at = now() - 1000;
    old.expires_at = now() - 700;
    let code = hc_token::encode(&old, &gz_code_key()).expect("sign");
    deny(
        &app.verify(&open, json!({"code": code})).await.1,
        "expired",
        "code",
    );
    let shanghai = SigningKey::from_seed("310100", "sh1", &[67; 32]).expect("key");
    let mut from_shanghai = claims(&person, Colour::Green, 1);
    from_shanghai.issuer = "310100".into();
    let code = hc_token::encode(&from_shanghai, &shanghai).expect("sign");
    let (_, answer) = app.verify(&open, json!({"code": code})).await;
    deny(&answer, "unknown_issuer", "code");
    assert!(
        answer["reasons"][0]["en"]
            .as_str()
            .expect("en")
            .contains("310100"),
        "{answer}"
    );
    deny(
        &app.verify(&open, json!({"code": "HCX1:not ours"})).await.1,
        "bad_prefix",
        "code",
    );
    // An EU certificate's prefix goes to the DCC path (tests/api/dcc.rs), which names its own failures.
    deny(
        &app.verify(&open, json!({"code": "HC1:not base45"})).await.1,
        "bad_base45",
        "code",
    );

    // The venue's policy: colour, negative test, international variant, opening hours.
    let ours = hc_token::encode(&claims(&person, Colour::Green, 1), &gz_code_key()).expect("sign");
    app.put_status(&person, 1, "yellow", 72).await;
    deny(
        &app.verify(&open, json!({"code": ours})).await.1,
        "colour_not_admitted",
        "venue.colours",
    );
    app.put_status(&person, 1, "green", 72).await;
    let pharmacy = app
        .device_at("pharmacy-a", json!({"colours": ["green"], "nat_within_hours": 48, "international_admitted": false, "hours": null}), &["verify"])
        .await;
    deny(
        &app.verify(&pharmacy, json!({"code": ours})).await.1,
        "nat_too_old",
        "venue.nat_within_hours",
    );
    app.put_status(&person, 1, "green", 47).await;
    assert_eq!(
        app.verify(&pharmacy, json!({"code": ours})).await.1["decision"],
        "pass"
    );
    let mut inbound = claims(&person, Colour::Green, 1);
    inbound.flags = hc_token::Flags::default().with(hc_token::Flags::INTERNATIONAL, true);
    let inbound = hc_token::encode(&inbound, &gz_code_key()).expect("sign");
    // Judged on the current status (standard variant here) unless the code is newer: make it newer.
    let mut newer = claims(&person, Colour::Green, 2);
    newer.flags = hc_token::Flags::default().with(hc_token::Flags::INTERNATIONAL, true);
    let newer = hc_token::encode(&newer, &gz_code_key()).expect("sign");
    assert_eq!(
        app.verify(&pharmacy, json!({"code": inbound})).await.1["decision"],
        "pass"
    );
    deny(
        &app.verify(&pharmacy, json!({"code": newer})).await.1,
        "international_not_admitted",
        "venue.international_admitted",
    );
    // Open for the hour starting two hours from now only.
    let china = chrono::Utc::now() + chrono::Duration::hours(8);
    let opens = (china + chrono::Duration::hours(2))
        .format("%H:00")
        .to_string();
    let closes = (china + chrono::Duration::hours(3))
        .format("%H:00")
        .to_string();
    let closed = app
        .device_at("night-market", json!({"colours": ["green"], "nat_within_hours": null, "international_admitted": true, "hours": {"opens": opens, "closes": closes}}), &["verify"])
        .await;
    deny(
        &app.verify(&closed, json!({"code": ours})).await.1,
        "venue_closed",
        "venue.hours",
    );

    // Every refusal is recorded too.
    let denied = app
        .count("SELECT count(*) FROM scan_events WHERE decision = 'deny'")
        .await;
    assert_eq!(denied, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_older_than_the_current_status_is_judged_on_the_current_status() {
    let app = spawn_app().await;
    let device = app.device_at("metro-a", open_policy(), &["verify"]).await;
    let (person, token, _) = app.citizen(3).await;
    app.put_status(&person, 1, "green", 2).await;
    let green_code = app.code_of(&token).await;
    // Five minutes later the person turns red; the green code in their hand is still unexpired.
    app.put_status(&person, 2, "red", 2).await;
    let (_, answer) = app.verify(&device, json!({"code": green_code})).await;
    assert_eq!(answer["decision"], "deny", "{answer}");
    assert_eq!(answer["colour"], "red");
    assert_eq!(answer["judged_on"], "current_status");
    assert_eq!(answer["reason"], "colour_not_admitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_card_path_answers_with_the_masked_name_and_is_audited() {
    let app = spawn_app().await;
    let (person, _, id_number) = app.citizen(4).await;
    app.wait_registered(&person).await;
    app.put_status(&person, 1, "green", 2).await;
    let scanner_only = app.device_at("clinic-a", open_policy(), &["verify"]).await;
    let r = app
        .verify(&scanner_only, json!({"id_number": id_number}))
        .await;
    assert_eq!(r.0, 403, "verify:id is needed: {}", r.1);

    let gate = app
        .device_at("clinic-b", open_policy(), &["verify", "verify:id"])
        .await;
    let (status, answer) = app.verify(&gate, json!({"id_number": id_number})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "pass");
    assert_eq!(answer["masked_name"], "测*");
    assert!(
        !answer.to_string().contains(&id_number),
        "the ID number is not echoed"
    );
    let audited = app
        .pool
        .get()
        .await
        .expect("db")
        .query_one(
            "SELECT actor, subject, outcome FROM audit_log WHERE action = 'verify.id_card'",
            &[],
        )
        .await
        .expect("one audit row");
    assert_eq!(
        audited.get::<_, String>(0),
        crate::helpers::subject_of(&gate)
    );
    assert_eq!(
        audited
            .get::<_, Option<uuid::Uuid>>(1)
            .map(|p| p.to_string()),
        Some(person)
    );
    assert_eq!(audited.get::<_, &str>(2), "pass");

    let unknown = hc_platform::testing::valid_id_number("44010619900101999");
    assert_eq!(
        app.verify(&gate, json!({"id_number": unknown})).await.1["reason"],
        "not_registered"
    );
    let r = app
        .http
        .post(app.url("/v1/verify"))
        .bearer_auth(&gate)
        .json(&json!({"id_number": "440106199001011234"}))
        .send()
        .await
        .expect("verify");
    problem(r, 422, "id_number").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_must_be_bound_to_a_venue_and_send_one_thing_to_verify() {
    let app = spawn_app().await;
    let loose = app.identity.official(&["verify"], None).await;
    let (status, _) = app.verify(&loose, json!({"code": "HCQ1:X"})).await;
    assert_eq!(status, 403);
    let device = app.device_at("gate-a", open_policy(), &["verify"]).await;
    let r = app
        .http
        .post(app.url("/v1/verify"))
        .bearer_auth(&device)
        .json(&json!({}))
        .send()
        .await
        .expect("verify");
    problem(r, 422, "code").await;
    let r = app
        .http
        .post(app.url("/v1/verify"))
        .json(&json!({"code": "HCQ1:X"}))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status(), 401);
    let citizen = app.citizen(5).await.1;
    let (status, _) = app.verify(&citizen, json!({"code": "HCQ1:X"})).await;
    assert_eq!(status, 403, "a citizen token is no device");
}

/// A device revoked at identity is refused here within a poll of `auth.revoked`, though its token has minutes to live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_refused_at_the_gate_long_before_its_token_expires() {
    let app = spawn_app().await;
    let device = app
        .device_at("metro-gate", open_policy(), &["verify"])
        .await;
    let body = json!({"code": "HCQ1:not-a-code"});
    assert_eq!(app.verify(&device, body.clone()).await.0, 200);
    app.identity.revoke(&subject_of(&device)).await;
    let (app, device, body) = (&app, &device, &body);
    eventually(
        WAIT,
        "the revoked device is still admitted",
        || async move { (app.verify(device, body.clone()).await.0 == 401).then_some(()) },
    )
    .await;
}
