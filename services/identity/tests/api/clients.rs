use reqwest::StatusCode;
use serde_json::{Value, json};

use hc_platform::testing::{WAIT, eventually};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regional_admin_creates_lists_and_revokes_only_within_its_region_and_scopes() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_client(&["admin", "import:nat"], Some("440100"))
        .await;
    let guangzhou = app.client_token(&id, &secret).await;
    let xian = app.create_client(&["verify"], Some("610100")).await.0;
    let create = |body: Value, key: &'static str| {
        app.http
            .post(app.url("/v1/clients"))
            .bearer_auth(&guangzhou)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    // Nationwide, another city, or a scope Guangzhou's admin does not hold itself: refused.
    for (body, names) in [
        (json!({"name": "x", "scopes": ["import:nat"]}), "region"),
        (
            json!({"name": "x", "scopes": ["import:nat"], "region": "610100"}),
            "610100",
        ),
        (
            json!({"name": "x", "scopes": ["import:nat", "person:read"], "region": "440106"}),
            "scopes[1]",
        ),
    ] {
        let p = problem(create(body, "k").await.expect("req"), StatusCode::FORBIDDEN).await;
        assert!(p["detail"].as_str().expect("detail").contains(names), "{p}");
    }
    // Within both: created. The bootstrap admin's key "k" is not Guangzhou's: its own client is created.
    let r = create(
        json!({"name": "Tianhe lab", "scopes": ["import:nat"], "region": "440106"}),
        "k",
    )
    .await
    .expect("req");
    assert_eq!(r.status(), StatusCode::CREATED);
    let tianhe: Value = r.json().await.expect("json");
    let other = app
        .http
        .post(app.url("/v1/clients"))
        .bearer_auth(app.admin_token().await)
        .header("Idempotency-Key", "k")
        .json(&json!({"name": "metro gates", "scopes": ["verify"]}))
        .send()
        .await
        .expect("req");
    assert_eq!(
        other.status(),
        StatusCode::CREATED,
        "another admin's key is not a replay"
    );

    // It lists only Guangzhou's clients, and a Xi'an client is no client to it.
    let page: Value = app
        .get_with_token("/v1/clients?limit=200", &guangzhou)
        .await
        .json()
        .await
        .expect("json");
    let mut listed: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["region"].as_str())
        .collect();
    listed.sort();
    assert_eq!(listed, ["440100", "440106"], "{page}");
    let revoke = |id: String| {
        app.http
            .delete(app.url(&format!("/v1/clients/{id}")))
            .bearer_auth(&guangzhou)
            .send()
    };
    problem(revoke(xian).await.expect("delete"), StatusCode::NOT_FOUND).await;
    let tianhe_id = tianhe["client_id"].as_str().expect("id").to_owned();
    assert_eq!(
        revoke(tianhe_id.clone()).await.expect("delete").status(),
        StatusCode::NO_CONTENT
    );
    // Both are in the audit log, under the admin that did them.
    let rows = app
        .pool
        .get()
        .await
        .expect("db")
        .query(
            "SELECT action, reason FROM audit_log WHERE actor = $1 ORDER BY id",
            &[&id],
        )
        .await
        .expect("audit");
    let audited: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        audited,
        [
            (
                "client.create".to_owned(),
                format!("client {tianhe_id} (import:nat) in 440106")
            ),
            ("client.revoke".to_owned(), format!("client {tianhe_id}")),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_clients_tokens_are_refused_long_before_they_expire() {
    let app = spawn_app().await;
    let (revoked_id, secret) = app.create_client(&["admin"], None).await;
    let revoked = app.client_token(&revoked_id, &secret).await;
    let (kept_id, secret) = app.create_client(&["admin"], None).await;
    let kept = app.client_token(&kept_id, &secret).await;
    assert_eq!(
        app.get_with_token("/v1/clients", &revoked).await.status(),
        StatusCode::OK
    );
    let r = app
        .http
        .delete(app.url(&format!("/v1/clients/{revoked_id}")))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Its token lives five minutes; every service (identity too) hears the revocation within a poll.
    let (app_ref, revoked) = (&app, &revoked);
    eventually(
        WAIT,
        "the revoked client's token still works",
        || async move {
            let status = app_ref
                .get_with_token("/v1/clients", revoked)
                .await
                .status();
            (status == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
    assert_eq!(
        app.get_with_token("/v1/clients", &kept).await.status(),
        StatusCode::OK
    );
}
