//! The load defences through the real server: admission control sheds with 503 + Retry-After, the request
//! timeout answers 503 instead of hanging, and the per-IP limit answers 429. A handler that waits on a
//! `Notify` holds requests in flight for exactly as long as the test wants, without sleeps.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{HttpResponse, web};
use hc_platform::auth::KeyRing;
use hc_platform::defences::Defences;
use hc_platform::health::Dependencies;
use hc_platform::http::{Platform, serve};
use hc_platform::settings::{PlatformSettings, load_with};
use secrecy::SecretString;
use tokio::sync::Notify;

fn settings(overrides: &[(&str, i64)]) -> PlatformSettings {
    load_with::<serde_json::Value>("[demo]\nx = 1\n", "demo", None, |mut b| {
        for (key, value) in overrides {
            b = b.set_override(*key, *value).expect("override");
        }
        b
    })
    .expect("settings")
    .platform
}

/// Serves `/hold` (waits for the gate), `/slow` (300 ms), `/fast`, on a free port; returns the base URL.
async fn start(settings: &PlatformSettings, gate: Arc<Notify>) -> String {
    let ring = KeyRing::from_spec(&SecretString::from(
        KeyRing::generate_spec("k").expect("keygen"),
    ))
    .expect("ring");
    let platform = Platform {
        defences: web::Data::new(Defences::from_settings(settings).expect("defences")),
        verifier: web::Data::new(ring.verifier(&settings.auth).expect("verifier")),
        dependencies: web::Data::new(Dependencies {
            db: None,
            redis: None,
        }),
        json_body_bytes: 1024,
        workers: 2,
        cors_origins: vec!["http://page.example".into()],
        tls: None,
        routes: Default::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = serve(listener, platform, move |cfg| {
        let gate = gate.clone();
        cfg.route(
            "/hold",
            web::get().to(move || {
                let gate = gate.clone();
                async move {
                    gate.notified().await;
                    HttpResponse::Ok().finish()
                }
            }),
        )
        .route(
            "/slow",
            web::get().to(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                HttpResponse::Ok().finish()
            }),
        )
        .route(
            "/fast",
            web::get().to(|| async { HttpResponse::Ok().finish() }),
        );
    })
    .expect("serve");
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

async fn metrics_text(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_inflight_requests_are_shed_at_once_with_retry_after() {
    let gate = Arc::new(Notify::new());
    let base = start(
        &settings(&[("admission.max_inflight", 1), ("timeouts.request_ms", 0)]),
        gate.clone(),
    )
    .await;
    let http = reqwest::Client::new();

    // The held request is itself shed if it arrives while a probe below holds the permit: it tries again until it
    // is in (on a busy machine that race is real).
    let held = tokio::spawn({
        let (http, url) = (http.clone(), format!("{base}/hold"));
        async move {
            loop {
                let status = http.get(&url).send().await?.status();
                if status != 503 {
                    return Ok::<_, reqwest::Error>(status);
                }
            }
        }
    });
    // Wait until the first request is really in flight: then the only permit is taken. Bounded by time, not by a
    // count of tries: on a loaded machine 500 quick tries could all finish before the first request got in.
    let mut shed = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let r = http
            .get(format!("{base}/fast"))
            .send()
            .await
            .expect("request");
        if r.status() == 503 {
            shed = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let shed = shed.expect("a second request is shed while the first holds the only permit");
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(
        shed.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    // Counted, by reason, for the SheddingLoad alert.
    let metrics = metrics_text(&base).await;
    assert!(
        metrics.contains("http_requests_shed_total{reason=\"admission\"}"),
        "{metrics}"
    );
    // Health stays reachable under overload.
    assert_eq!(
        http.get(format!("{base}/health/live"))
            .send()
            .await
            .expect("live")
            .status(),
        200
    );

    gate.notify_waiters();
    assert_eq!(held.await.expect("join").expect("response"), 200);
    assert_eq!(
        http.get(format!("{base}/fast"))
            .send()
            .await
            .expect("request")
            .status(),
        200,
        "permit returned"
    );
}

/// When every request takes longer than the latency target (here each waits 300 ms, as every request does on a
/// saturated CPU), a queue is standing: the limit comes down from the ceiling of 512 and requests are shed long
/// before 512 are in flight. Once the load is gone, requests are admitted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_queue_brings_the_limit_down_and_the_excess_is_shed() {
    let gate = Arc::new(Notify::new());
    let base = start(
        &settings(&[
            ("admission.max_inflight", 512),
            ("admission.latency_target_ms", 50),
            ("admission.min_inflight", 4),
            ("timeouts.request_ms", 0),
        ]),
        gate,
    )
    .await;
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (http, url) = (http.clone(), format!("{base}/slow"));
        clients.spawn(async move {
            let mut shed = 0;
            while std::time::Instant::now() < deadline {
                let r = http.get(&url).send().await.expect("request");
                if r.status() == 503 {
                    shed += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            shed
        });
    }
    let mut shed = 0;
    while let Some(n) = clients.join_next().await {
        shed += n.expect("client");
    }
    // Only 40 clients, far below the ceiling of 512: a shed means the limit came down below 40.
    assert!(shed > 0, "40 clients of a 300 ms endpoint were never shed");
    for _ in 0..5 {
        assert_eq!(
            http.get(format!("{base}/fast"))
                .send()
                .await
                .expect("request")
                .status(),
            200,
            "admitted again once the load is gone"
        );
    }
}

#[tokio::test]
async fn with_admission_off_the_same_load_is_queued_not_shed() {
    let gate = Arc::new(Notify::new());
    let base = start(
        &settings(&[("admission.max_inflight", 0), ("timeouts.request_ms", 0)]),
        gate.clone(),
    )
    .await;
    let http = reqwest::Client::new();
    let held = tokio::spawn({
        let (http, url) = (http.clone(), format!("{base}/hold"));
        async move { http.get(url).send().await.map(|r| r.status()) }
    });
    for _ in 0..20 {
        assert_eq!(
            http.get(format!("{base}/fast"))
                .send()
                .await
                .expect("request")
                .status(),
            200
        );
    }
    // notify_one stores a permit if the held request has not reached its wait yet.
    gate.notify_one();
    assert_eq!(held.await.expect("join").expect("response"), 200);
}

#[tokio::test]
async fn a_stuck_request_times_out_with_503() {
    let gate = Arc::new(Notify::new());
    let base = start(&settings(&[("timeouts.request_ms", 50)]), gate).await;
    let r = reqwest::get(format!("{base}/hold")).await.expect("request");
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(body["type"], "/problems/timeout");
    let metrics = metrics_text(&base).await;
    assert!(
        metrics.contains("http_requests_shed_total{reason=\"timeout\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn exempt_prefixes_escape_the_request_timeout() {
    let gate = Arc::new(Notify::new());
    let mut settings = settings(&[("timeouts.request_ms", 50)]);
    settings.timeouts.exempt_prefixes = "/other, /hold".into();
    let base = start(&settings, gate.clone()).await;
    let held = tokio::spawn(async move {
        reqwest::get(format!("{base}/hold"))
            .await
            .map(|r| r.status())
    });
    // Three times the timeout passes; the exempt request is still waiting, then completes normally.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(!held.is_finished());
    gate.notify_one();
    assert_eq!(held.await.expect("join").expect("response"), 200);
}

#[tokio::test]
async fn the_per_ip_bucket_answers_429_when_empty() {
    let gate = Arc::new(Notify::new());
    let base = start(
        &settings(&[
            ("rate_limit.per_ip_per_second", 1),
            ("rate_limit.per_ip_burst", 2),
        ]),
        gate,
    )
    .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            http.get(format!("{base}/fast"))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..2], &[200, 200]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    // Metrics are exempt from the limit.
    assert_eq!(
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_routes_are_problem_json_404() {
    let base = start(&settings(&[]), Arc::new(Notify::new())).await;
    let r = reqwest::get(format!("{base}/nowhere"))
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
}

/// A browser page from an allowed origin may call (preflight answered before the rate limit and admission);
/// any other origin's preflight is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_origins_may_call_from_a_browser() {
    let base = start(&settings(&[]), Arc::new(Notify::new())).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{base}/fast"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let allowed = preflight("http://page.example").await.expect("preflight");
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://page.example"
    );
    let refused = preflight("http://evil.example").await.expect("preflight");
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let get = client
        .get(format!("{base}/fast"))
        .header("Origin", "http://page.example")
        .send()
        .await
        .expect("get");
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "http://page.example"
    );
}
