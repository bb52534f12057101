use hc_token::Validation;

use crate::helpers::spawn_app;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_status_in_redis_scoring_is_asked() {
    let app = spawn_app().await;
    let (person, token) = app.citizen(10).await;
    let version = app.wait_status(&person).await;
    redis::cmd("DEL")
        .arg(app.status_key(&person))
        .query_async::<()>(&mut app.store.conn())
        .await
        .expect("del");
    let asked_before = app
        .counter(
            &app.address,
            "rendering_scoring_calls_total",
            "outcome=\"ok\"",
        )
        .await;
    let payload = app.payload(&app.address, &token).await;
    assert_eq!(payload["stale"], false);
    assert_eq!(
        payload["status_version"], version,
        "scoring's answer, from PostgreSQL"
    );
    assert_eq!(
        app.counter(
            &app.address,
            "rendering_scoring_calls_total",
            "outcome=\"ok\""
        )
        .await
            - asked_before,
        1.0
    );
}

/// Scoring down and no status in Redis: the last status this replica saw is signed, flagged stale with its time;
/// someone it never saw gets a 503 with Retry-After (never a hang); and after a few failures the breaker stops
/// the calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_scoring_is_down_the_last_known_status_is_signed_and_flagged_stale() {
    let app = spawn_app().await;
    // A port nothing listens on: scoring is down for this replica.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    let replica = app
        .rendering(|b| {
            // Without the in-process cache, so the request reaches the status source.
            b.set_override("rendering.scoring_url", dead_url.clone())
                .and_then(|b| b.set_override("rendering.memory_cache_enabled", false))
                .and_then(|b| b.set_override("rendering.breaker_failures", 2))
                .and_then(|b| b.set_override("rendering.breaker_open_ms", 60_000))
                .expect("override")
        })
        .await;
    let (person, token) = app.citizen(11).await;
    let version = app.wait_status(&person).await;
    app.put_status(&person, version + 1, "yellow").await;
    let fresh = app.payload(&replica, &token).await;
    assert_eq!(fresh["stale"], false);

    redis::cmd("DEL")
        .arg(app.status_key(&person))
        .query_async::<()>(&mut app.store.conn())
        .await
        .expect("del");
    let r = app
        .get(&replica, "/v1/codes/me?format=payload", &token)
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["etag"]
            .to_str()
            .expect("etag")
            .contains("stale")
    );
    let stale: serde_json::Value = r.json().await.expect("json");
    assert_eq!(stale["stale"], true);
    assert_eq!(stale["colour"], "yellow");
    assert_eq!(stale["status_at"], "2026-01-01T00:00:00Z");
    let claims = hc_token::decode(
        stale["code"].as_str().expect("code"),
        &app.trust().await,
        Validation::at(now()),
    )
    .expect("a stale code is still a signed code");
    assert!(claims.flags.stale());
    assert_eq!(claims.status_at, Some(1_767_225_600));
    let svg = app.get(&replica, "/v1/codes/me?format=svg", &token).await;
    assert_eq!(svg.headers()["x-code-stale"], "true");

    let (stranger, stranger_token) = app.citizen(12).await;
    app.wait_status(&stranger).await;
    redis::cmd("DEL")
        .arg(app.status_key(&stranger))
        .query_async::<()>(&mut app.store.conn())
        .await
        .expect("del");
    let r = app
        .get(&replica, "/v1/codes/me?format=payload", &stranger_token)
        .await;
    assert!(r.headers().contains_key("retry-after"));
    hc_platform::testing::problem(r, reqwest::StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        app.counter(
            &replica,
            "rendering_scoring_calls_total",
            "outcome=\"breaker_open\""
        )
        .await
            >= 1.0,
        "after two failures in a row the breaker refuses at once"
    );
}
