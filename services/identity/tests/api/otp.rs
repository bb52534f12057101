use hc_platform::testing::{WAIT, eventually};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with, unique_person};

const REFUSED: &str = "the code is wrong, used or expired; request a new one";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_signs_the_citizen_in_once_and_expires_within_five_minutes() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("孙八", &id, &phone).await;

    assert_eq!(app.request_otp(&phone).await.status(), StatusCode::ACCEPTED);
    let ttl: i64 = app
        .store
        .conn()
        .ttl(app.otp_key(&phone))
        .await
        .expect("ttl");
    assert!((1..=300).contains(&ttl), "OTP TTL {ttl}");
    let code = app.sent_code(&phone).await.expect("code sent");
    assert_eq!(code.len(), 6);

    let exchange = json!({"grant_type": "otp", "phone": phone, "code": code});
    let response = app.post_json("/v1/auth/token", &exchange).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: serde_json::Value = response.json().await.expect("json");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].is_string());

    // Single use.
    problem(
        app.post_json("/v1/auth/token", &exchange).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("周九", &id, &phone).await;
    app.request_otp(&phone).await;
    let code = app.sent_code(&phone).await.expect("code");

    // Let Redis expire the code now instead of waiting five minutes.
    let key = app.otp_key(&phone);
    let mut redis = app.store.conn();
    let _: bool = redis.pexpire(&key, 1).await.expect("pexpire");
    let (store, key) = (&app.store, &key);
    eventually(WAIT, "the expired code was never removed", || async move {
        let exists: bool = store.conn().exists(key).await.expect("exists");
        (!exists).then_some(())
    })
    .await;
    let response = app
        .post_json(
            "/v1/auth/token",
            &json!({"grant_type": "otp", "phone": phone, "code": code}),
        )
        .await;
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["detail"], REFUSED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_tries_burn_the_code() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("吴十", &id, &phone).await;
    app.request_otp(&phone).await;
    let code = app.sent_code(&phone).await.expect("code");
    let wrong = if code == "000000" { "111111" } else { "000000" };

    // Every wrong try, the one that burns the code, and a try at a phone never sent a code get one answer: none
    // tells whether a code was sent (so whether the phone is registered), nor how many tries are left.
    let (_, stranger) = unique_person();
    for (phone, code) in [(&phone, wrong); 5]
        .into_iter()
        .chain([(&stranger, "123456")])
    {
        let r = app
            .post_json(
                "/v1/auth/token",
                &json!({"grant_type": "otp", "phone": phone, "code": code}),
            )
            .await;
        let body = problem(r, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["detail"], REFUSED, "{body}");
    }

    // Even the right code no longer works.
    let right = app
        .post_json(
            "/v1/auth/token",
            &json!({"grant_type": "otp", "phone": phone, "code": code}),
        )
        .await;
    problem(right, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_are_rate_limited_per_phone() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("郑一", &id, &phone).await;
    // Registering took one of the phone's five sends.
    for _ in 0..4 {
        assert_eq!(app.request_otp(&phone).await.status(), StatusCode::ACCEPTED);
    }
    let sixth = app.request_otp(&phone).await;
    let retry_after: u64 = sixth
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=3600).contains(&retry_after));
    problem(sixth, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_are_rate_limited_per_ip_across_phones() {
    let app = spawn_app_with(|b| {
        b.set_override("identity.otp.per_ip_per_hour", 3)
            .expect("override")
    })
    .await;
    for _ in 0..3 {
        let (_, phone) = unique_person();
        assert_eq!(app.request_otp(&phone).await.status(), StatusCode::ACCEPTED);
    }
    let (_, phone) = unique_person();
    problem(app.request_otp(&phone).await, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_phone_gets_the_same_answer_but_no_code() {
    let app = spawn_app().await;
    let (_, phone) = unique_person();
    assert_eq!(app.request_otp(&phone).await.status(), StatusCode::ACCEPTED);
    assert_eq!(app.sent_code(&phone).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_works_the_same_on_a_redis_cluster() {
    let nodes = hc_platform::testing::redis_cluster_urls();
    let app = spawn_app_with(|b| {
        b.set_override("redis.cluster_urls", nodes)
            .expect("override")
    })
    .await;
    let (id, phone) = unique_person();
    app.register("林九", &id, &phone).await;
    let tokens = app.sign_in(&phone).await;
    assert!(tokens["access_token"].is_string());
    // The OTP state lived on the cluster, not on the single node.
    let single = redis::Client::open(app.redis.url.as_str()).expect("url");
    let mut single = single
        .get_multiplexed_async_connection()
        .await
        .expect("single node");
    let on_single: Option<String> = single
        .get(format!(
            "{}{}",
            app.redis.prefix,
            identity::dev_sms_key(&phone)
        ))
        .await
        .expect("get");
    assert_eq!(on_single, None);
    for _ in 0..5 {
        app.request_otp(&phone).await;
    }
    problem(app.request_otp(&phone).await, StatusCode::TOO_MANY_REQUESTS).await;
    let ready = app
        .http
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::OK);
}

/// Sends a code request as if from `from`, as a proxy would forward it.
async fn request_otp_from(app: &TestApp, phone: &str, from: &str) -> StatusCode {
    app.http
        .post(app.url("/v1/auth/otp"))
        .header("X-Forwarded-For", format!("198.51.100.9, {from}"))
        .json(&json!({"phone": phone}))
        .send()
        .await
        .expect("otp")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let app = spawn_app_with(|b| {
        b.set_override("identity.otp.per_ip_per_hour", 2)
            .and_then(|b| b.set_override("server.trusted_proxies", "127.0.0.0/8"))
            .expect("override")
    })
    .await;
    // The right-most address the proxy added is the client; the one left of it is the client's own word.
    for from in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            let (_, phone) = unique_person();
            assert_eq!(
                request_otp_from(&app, &phone, from).await,
                StatusCode::ACCEPTED
            );
        }
        let (_, phone) = unique_person();
        assert_eq!(
            request_otp_from(&app, &phone, from).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_address_from_an_untrusted_peer_counts_for_nothing() {
    let app = spawn_app_with(|b| {
        b.set_override("identity.otp.per_ip_per_hour", 2)
            .expect("override")
    })
    .await;
    for (i, from) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .into_iter()
        .enumerate()
    {
        let (_, phone) = unique_person();
        let expected = if i < 2 {
            StatusCode::ACCEPTED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(
            request_otp_from(&app, &phone, from).await,
            expected,
            "{from}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_else_asking_for_a_phone_does_not_use_up_its_owners_sends() {
    let app = spawn_app_with(|b| {
        b.set_override("identity.otp.per_phone_per_hour", 2)
            .and_then(|b| b.set_override("server.trusted_proxies", "127.0.0.1"))
            .expect("override")
    })
    .await;
    let (id, phone) = unique_person();
    app.register("冯二", &id, &phone).await;
    for _ in 0..2 {
        assert_eq!(
            request_otp_from(&app, &phone, "203.0.113.66").await,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        request_otp_from(&app, &phone, "203.0.113.66").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner, from their own address, still gets a code.
    assert_eq!(
        request_otp_from(&app, &phone, "203.0.113.7").await,
        StatusCode::ACCEPTED
    );
}

/// A public operation judges no token: a bad body with a stale token is the body's 422, not a 401 (a page that kept
/// an expired token must not be told to sign in to ask for a code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_operation_answers_its_body_error_whatever_token_comes_with_it() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/v1/auth/otp"))
        .bearer_auth("not-a-token")
        .json(&serde_json::json!({"phone": "13800138000", "purpose": "nonsense"}))
        .send()
        .await
        .expect("otp");
    let p = crate::helpers::problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["field"], "purpose");
}
