//! The load defences through the real server: admission control sheds with 503 + Retry-After, the request
//! timeout answers 503 instead of hanging, and the per-IP limit answers 429. A handler that waits on a
//! `Notify` holds requests in flight for exactly as long as the test wants, without sleeps. Abuse at the edge
//! (issue 17): a client trickling its head or its body, bodies over the limit, a header flood, a JSON nested 10,000
//! deep and 10,000 idle connections each end in a bounded answer while other clients are served.

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
        json_body_bytes: settings.limits.json_body_bytes,
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
        )
        .route(
            "/json",
            web::post().to(
                |body: hc_platform::http::Json<serde_json::Value>| async move {
                    HttpResponse::Ok().json(body.0)
                },
            ),
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

/// The status of the first answer on a raw connection, or `None` when the server closed it without one.
async fn first_status(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let n = reader.read(&mut buf).await.ok()?;
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Writes `head`, then `trickle` a byte a second (or until the server stops reading); returns the first answer's
/// status and when it came.
async fn trickled(
    base: &str,
    head: &str,
    trickle: &'static [u8],
) -> (Option<u16>, std::time::Duration) {
    use tokio::io::AsyncWriteExt;
    let stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.expect("head");
    let started = std::time::Instant::now();
    let writing = tokio::spawn(async move {
        for byte in trickle.chunks(1) {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if writer.write_all(byte).await.is_err() {
                return;
            }
        }
    });
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        first_status(&mut reader),
    )
    .await
    .expect("an answer within 20 s");
    writing.abort();
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_body_is_cut_off_at_the_request_timeout_while_others_are_served() {
    let base = start(
        &settings(&[("timeouts.request_ms", 2000)]),
        Arc::new(Notify::new()),
    )
    .await;
    let head = "POST /json HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n";
    let slow = tokio::spawn({
        let base = base.clone();
        async move { trickled(&base, head, b"[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]").await }
    });
    // Meanwhile everyone else is answered at once.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = reqwest::get(format!("{base}/fast")).await.expect("request");
    assert_eq!(r.status(), 200);
    let (status, after) = slow.await.expect("join");
    assert_eq!(
        status,
        Some(503),
        "the request timeout answers the trickler"
    );
    assert!(
        after < std::time::Duration::from_secs(5),
        "answered after {after:?}, not at the 2 s timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_head_is_dropped_after_the_head_timeout() {
    let base = start(&settings(&[]), Arc::new(Notify::new())).await;
    let (status, after) = trickled(
        &base,
        "GET /fast HTTP/1.1\r\nHost: edge\r\n",
        b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    )
    .await;
    // actix's client_request_timeout (5 s): a 408, or the connection closed without an answer.
    assert!(matches!(status, Some(408) | None), "{status:?}");
    assert!(
        after < std::time::Duration::from_secs(10),
        "dropped after {after:?}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem() {
    let base = start(&settings(&[]), Arc::new(Notify::new())).await;
    let big = format!("[{}1]", "1,".repeat(40_000));
    let r = reqwest::Client::new()
        .post(format!("{base}/json"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 413);
    let problem: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(problem["type"], "/problems/payload-too-large");
}

#[tokio::test]
async fn json_nested_ten_thousand_deep_is_a_400_problem_not_a_crash() {
    let base = start(&settings(&[]), Arc::new(Notify::new())).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = reqwest::Client::new()
        .post(format!("{base}/json"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    let problem: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(problem["type"], "/problems/bad-request");
    let r = reqwest::get(format!("{base}/fast")).await.expect("request");
    assert_eq!(r.status(), 200, "the server is still up");
}

#[tokio::test]
async fn a_header_flood_is_refused_with_431() {
    use tokio::io::AsyncWriteExt;
    let base = start(&settings(&[]), Arc::new(Notify::new())).await;
    let many: String = (0..200).map(|i| format!("X-Flood-{i}: {i}\r\n")).collect();
    // actix's limits: 96 headers, and a head of 128 KiB (held at most for its 5 s head timeout).
    let huge = format!("X-Huge: {}\r\n", "a".repeat(200_000));
    for headers in [many, huge] {
        let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .expect("connect");
        let request = format!("GET /fast HTTP/1.1\r\nHost: edge\r\n{headers}\r\n");
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(request.as_bytes()).await;
        let status = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            first_status(&mut stream),
        )
        .await
        .expect("an answer");
        assert_eq!(status, Some(431), "{}", &headers[..40]);
    }
    let r = reqwest::get(format!("{base}/fast")).await.expect("request");
    assert_eq!(r.status(), 200);
}

/// The next line the child prints, within a minute.
async fn line(lines: &mut tokio::io::Lines<impl tokio::io::AsyncBufRead + Unpin>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("in time")
        .expect("read")
        .expect("a line")
}

/// 10,000 connections that never send a request (held by a child process: this one's descriptors could not hold
/// both ends): the server still answers at once, and drops them all after its head timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_neither_block_others_nor_stay_open() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let base = start(&settings(&[]), Arc::new(Notify::new())).await;
    let port = base.rsplit(':').next().expect("port");
    let holder = r#"
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
print(len(held), flush=True)
sys.stdin.readline()
time.sleep(7)
dropped = 0
for s in held:
    s.setblocking(False)
    try:
        data = s.recv(64)
        dropped += data == b"" or data.startswith(b"HTTP/1.1 408")
    except BlockingIOError:
        pass
    except OSError:
        dropped += 1
print(dropped, flush=True)
"#;
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", holder, port, "10000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let held: usize = line(&mut lines).await.parse().expect("count");
    assert_eq!(held, 10_000);
    let started = std::time::Instant::now();
    let r = reqwest::get(format!("{base}/fast")).await.expect("request");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "a request beside 10,000 idle connections took {:?}",
        started.elapsed()
    );
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").await.expect("go");
    let dropped: usize = line(&mut lines).await.parse().expect("count");
    assert_eq!(
        dropped, 10_000,
        "idle connections still open after the head timeout"
    );
}

/// A request refused before its body is read (here a 405: `/fast` answers GET only; the same holds for a bad token's
/// 401 or a shed 503) leaves a chunked body unread. The platform holds it while the answer goes out, so actix closes
/// the connection; without the hold, actix reads the rest of the body, gigabytes if the client sends them, to keep
/// the connection alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_s_endless_chunked_body_is_not_read() {
    use tokio::io::AsyncWriteExt;
    let base = start(&settings(&[]), Arc::new(Notify::new())).await;
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream
        .write_all(b"POST /fast HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .expect("head");
    let answer = hc_platform::testing::answer_to_an_endless_chunked_body(stream).await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
}
