use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{problem, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_lists_and_revokes_clients() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create_client(&["import:nat"], Some("440100")).await);
    }
    let admin = app.admin_token().await;

    let page1: Value = app
        .get_with_token("/v1/clients?limit=2", &admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page1["items"].as_array().map(Vec::len), Some(2));
    let cursor = page1["next_cursor"].as_str().expect("more pages");
    let page2: Value = app
        .get_with_token(&format!("/v1/clients?limit=2&cursor={cursor}"), &admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page2["items"].as_array().map(Vec::len), Some(1));
    assert!(page2["next_cursor"].is_null());
    let mut listed: Vec<String> = page1["items"]
        .as_array()
        .into_iter()
        .chain(page2["items"].as_array())
        .flatten()
        .map(|c| c["client_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    listed.sort();
    let mut created: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
    created.sort();
    assert_eq!(listed, created);
    assert!(
        page1.to_string().find("secret").is_none(),
        "a listing never shows secrets"
    );

    let (victim, secret) = &ids[0];
    app.client_token(victim, secret).await;
    let revoked = app
        .http
        .delete(app.url(&format!("/v1/clients/{victim}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let refused = app
        .post_json("/v1/auth/token", &json!({"grant_type": "client_credentials", "client_id": victim, "client_secret": secret}))
        .await;
    problem(refused, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_creation_validates_and_is_idempotent() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let post = |body: Value, key: Option<&'static str>| {
        let mut request = app
            .http
            .post(app.url("/v1/clients"))
            .bearer_auth(&admin)
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    let p = problem(
        post(json!({"name": "x", "scopes": ["verify", "root"]}), None)
            .await
            .expect("req"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "scopes[1]");
    let p = problem(
        post(
            json!({"name": "x", "scopes": ["verify"], "region": "12"}),
            None,
        )
        .await
        .expect("req"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "region");

    let body = json!({"name": "metro gates", "scopes": ["verify"]});
    let first = post(body.clone(), Some("k-1")).await.expect("req");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    let replay = post(body, Some("k-1")).await.expect("req");
    assert_eq!(replay.status(), StatusCode::OK);
    let replay: Value = replay.json().await.expect("json");
    assert_eq!(replay["client_id"], first["client_id"]);
    assert!(replay["client_secret"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_manage_clients_and_the_bootstrap_key_must_match() {
    let app = spawn_app().await;
    let (cid, secret) = app.create_client(&["verify"], None).await;
    let token = app.client_token(&cid, &secret).await;
    problem(
        app.get_with_token("/v1/clients", &token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let wrong = app
        .post_json("/v1/auth/token", &json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": "guess-guess-guess"}))
        .await;
    problem(wrong, StatusCode::UNAUTHORIZED).await;
}
