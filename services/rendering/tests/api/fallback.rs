use hc_token::Validation;

use hc_platform::settings::Builder;

use crate::helpers::{TestApp, spawn_app, spawn_app_with_scoring};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_status_in_redis_scoring_is_asked() {
    let app = spawn_app().await;
    let (person, token) = app.citizen(10).await;
    let version = app.wait_status(&person).await;
    drop_status(&app, &person).await;
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
    let replica = without_scoring(&app, |b| {
        b.set_override("rendering.breaker_failures", 2)
            .and_then(|b| b.set_override("rendering.breaker_open_ms", 60_000))
            .expect("override")
    })
    .await;
    let (person, token) = app.citizen(11).await;
    let version = app.wait_status(&person).await;
    app.put_status(&person, version + 1, "yellow").await;
    let read_at = chrono::Utc::now().timestamp();
    let fresh = app.payload(&replica, &token).await;
    assert_eq!(fresh["stale"], false);

    drop_status(&app, &person).await;
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
    // As of when this replica last read it (not when scoring computed it: 2026-01-01).
    let status_at = stale["status_at"]
        .as_str()
        .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
        .expect("status_at")
        .timestamp();
    assert!((read_at..=read_at + 5).contains(&status_at), "{stale}");
    let claims = stale_claims(&app, &stale).await;
    assert_eq!(claims.status_at, Some(status_at));
    let svg = app.get(&replica, "/v1/codes/me?format=svg", &token).await;
    assert_eq!(svg.headers()["x-code-stale"], "true");

    let (stranger, stranger_token) = app.citizen(12).await;
    app.wait_status(&stranger).await;
    drop_status(&app, &stranger).await;
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

/// A last-known status older than `rendering.stale_max_age_seconds` is not signed: the colour may have changed since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_known_status_older_than_the_cap_is_not_signed() {
    let app = spawn_app().await;
    let replica = without_scoring(&app, |b| {
        b.set_override("rendering.stale_max_age_seconds", 1)
            .expect("override")
    })
    .await;
    let (person, token) = app.citizen(13).await;
    app.wait_status(&person).await;
    assert_eq!(app.payload(&replica, &token).await["stale"], false);
    drop_status(&app, &person).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let r = app
        .get(&replica, "/v1/codes/me?format=payload", &token)
        .await;
    assert!(r.headers().contains_key("retry-after"));
    hc_platform::testing::problem(r, reqwest::StatusCode::SERVICE_UNAVAILABLE).await;
}

/// Scoring down while Redis still holds the status documents: codes still show, from Redis, but once scoring has
/// not beaten for `rendering.scoring_silent_after_seconds` they are signed with its last beat's time and flagged
/// stale, the cached renders of before included; its next beat ends that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_from_redis_are_flagged_stale_once_scoring_is_silent() {
    // This scoring beats once, as it starts, and then (for the test) not again.
    let app = spawn_app_with_scoring(|b| {
        b.set_override("scoring.pulse_interval_ms", 600_000)
            .expect("override")
    })
    .await;
    let replica = app
        .rendering(|b| {
            b.set_override("rendering.scoring_silent_after_seconds", 2)
                .expect("override")
        })
        .await;
    let (person, token) = app.citizen(14).await;
    let version = app.wait_status(&person).await;
    let beat = chrono::Utc::now();
    hc_platform::status_document::beat(&app.prefixed(), beat)
        .await
        .expect("beat");
    // Rendered while scoring beats, and cached (in memory and in Redis) for this time bucket.
    let fresh = app
        .payload_until(&replica, &token, |p| p["stale"] == false)
        .await;
    assert_eq!(fresh["status_version"], version);

    let stale = app
        .payload_until(&replica, &token, |p| p["stale"] == true)
        .await;
    assert_eq!(stale["status_version"], version, "the document in Redis");
    let claims = stale_claims(&app, &stale).await;
    assert_eq!(
        claims.status_at,
        Some(beat.timestamp()),
        "as of the last beat"
    );
    let svg = app.get(&replica, "/v1/codes/me?format=svg", &token).await;
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["x-code-stale"], "true");

    hc_platform::status_document::beat(&app.prefixed(), chrono::Utc::now())
        .await
        .expect("beat");
    app.payload_until(&replica, &token, |p| p["stale"] == false)
        .await;
}

/// The claims of the code in `payload`, which must still be a signed code, flagged stale.
async fn stale_claims(app: &TestApp, payload: &serde_json::Value) -> hc_token::CodeClaims {
    let claims = hc_token::decode(
        payload["code"].as_str().expect("code"),
        &app.trust().await,
        Validation::at(now()),
    )
    .expect("a stale code is still a signed code");
    assert!(claims.flags.stale());
    claims
}

/// A rendering replica for which scoring is down (its URL is a port nothing listens on), without the in-process
/// cache so that every request reaches the status source; `tweak` adds overrides.
async fn without_scoring(app: &TestApp, tweak: impl FnOnce(Builder) -> Builder) -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    app.rendering(|b| {
        tweak(
            b.set_override("rendering.scoring_url", dead_url)
                .and_then(|b| b.set_override("rendering.memory_cache_enabled", false))
                .expect("override"),
        )
    })
    .await
}

/// Removes the person's status document from Redis, as if scoring had never written it there.
async fn drop_status(app: &TestApp, person: &str) {
    redis::cmd("DEL")
        .arg(app.status_key(person))
        .query_async::<()>(&mut app.store.conn())
        .await
        .expect("del");
}
