use reqwest::StatusCode;
use serde_json::{Value, json};

use hc_platform::testing::{WAIT, eventually};

use crate::helpers::{problem, spawn_app, unique_person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("冯二", &id, &phone).await;
    let first = app.sign_in(&phone).await;
    let r1 = first["refresh_token"].as_str().expect("refresh").to_owned();

    let response = app
        .post_json(
            "/v1/auth/token",
            &json!({"grant_type": "refresh_token", "refresh_token": r1}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.expect("json");
    let r2 = second["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    assert_ne!(r1, r2);
    let me = app
        .get_with_token(
            "/v1/persons/me",
            second["access_token"].as_str().expect("access"),
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);

    // The rotated token presented again: reuse, and the whole family goes.
    let reuse = app
        .post_json(
            "/v1/auth/token",
            &json!({"grant_type": "refresh_token", "refresh_token": r1}),
        )
        .await;
    assert!(
        problem(reuse, StatusCode::UNAUTHORIZED).await["detail"]
            .as_str()
            .unwrap_or("")
            .contains("reuse")
    );
    let newest = app
        .post_json(
            "/v1/auth/token",
            &json!({"grant_type": "refresh_token", "refresh_token": r2}),
        )
        .await;
    problem(newest, StatusCode::UNAUTHORIZED).await;
    // So do the family's access tokens, at every service long before they expire (identity hears its own
    // revocation like the others).
    let access = second["access_token"].as_str().expect("access").to_owned();
    let (app_ref, access) = (&app, &access);
    eventually(
        WAIT,
        "the reused family's access token still works",
        || async move {
            let status = app_ref
                .get_with_token("/v1/persons/me", access)
                .await
                .status();
            (status == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;

    // A fresh sign-in starts a new family that works.
    let third = app.sign_in(&phone).await;
    let r3 = third["refresh_token"].as_str().expect("refresh");
    let ok = app
        .post_json(
            "/v1/auth/token",
            &json!({"grant_type": "refresh_token", "refresh_token": r3}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_grant_or_missing_field_is_named() {
    let app = spawn_app().await;
    let p = problem(
        app.post_json("/v1/auth/token", &json!({"grant_type": "password"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "grant_type");
    let p = problem(
        app.post_json("/v1/auth/token", &json!({"grant_type": "refresh_token"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "refresh_token");
    let p = problem(
        app.post_json(
            "/v1/auth/token",
            &json!({"grant_type": "refresh_token", "refresh_token": "forged"}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(p["detail"].is_string());
}
