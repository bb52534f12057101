use std::process::Command;

use hc_token::Validation;
use serde_json::Value;

use crate::helpers::{pseudonyms, spawn_app};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Decodes a QR image with zbarimg (Debian's zbar-tools), independently of our code.
fn zbar(path: &std::path::Path) -> String {
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(path)
        .output()
        .expect("zbarimg (Debian's zbar-tools) must be installed; make test installs it");
    assert!(
        out.status.success(),
        "zbarimg found no QR code in {}",
        path.display()
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim_end()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_signed_over_the_current_status_and_signed_again_only_when_it_changes() {
    let app = spawn_app().await;
    let (person, token) = app.citizen(1).await;
    let version = app.wait_status(&person).await;

    let signed_before = app
        .counter(&app.address, "rendering_signatures_total", "")
        .await;
    let first = app.payload(&app.address, &token).await;
    let code = first["code"].as_str().expect("code");
    let claims =
        hc_token::decode(code, &app.trust().await, Validation::at(now())).expect("verifies");
    assert_eq!(claims.colour.as_str(), "green");
    assert_eq!(claims.status_version, version as u64);
    assert_eq!(claims.issuer, "440100");
    assert!(!claims.flags.stale());
    assert_eq!(
        pseudonyms().open(&claims.subject).map(|p| p.to_string()),
        Some(person.clone())
    );
    assert_eq!(first["status_version"], version);

    // Again: the same code from the cache, no new signature.
    let again = app.payload(&app.address, &token).await;
    assert_eq!(again["code"], first["code"]);
    let signed = app
        .counter(&app.address, "rendering_signatures_total", "")
        .await;
    assert_eq!(
        signed - signed_before,
        1.0,
        "one signature for two requests"
    );
    assert!(
        app.counter(
            &app.address,
            "rendering_code_requests_total",
            "outcome=\"memory_hit\""
        )
        .await
            >= 1.0,
        "the second request is answered from this replica's memory"
    );
    // Another replica has no memory of it: its first request is a Redis hit, again without signing. (The
    // metrics recorder is one per process, shared by both replicas here.)
    let hits = app
        .counter(
            &app.address,
            "rendering_code_requests_total",
            "outcome=\"hit\"",
        )
        .await;
    let other = app.rendering(|b| b).await;
    assert_eq!(app.payload(&other, &token).await["code"], first["code"]);
    assert_eq!(
        app.counter(&other, "rendering_code_requests_total", "outcome=\"hit\"")
            .await
            - hits,
        1.0
    );
    assert_eq!(
        app.counter(&other, "rendering_signatures_total", "").await - signed_before,
        1.0
    );

    // A refresh without change is a 304.
    let r = app
        .get(&app.address, "/v1/codes/me?format=payload", &token)
        .await;
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    assert!(r.headers()["cache-control"].to_str().expect("cc") == "private, no-cache");
    let r = app
        .http
        .get(format!("{}/v1/codes/me?format=payload", app.address))
        .bearer_auth(&token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 304);

    // Scoring changes the status: the next code says so, signed afresh.
    app.put_status(&person, version + 1, "red").await;
    let changed = app
        .payload_until(&app.address, &token, |p| p["colour"] == "red")
        .await;
    assert_ne!(changed["code"], first["code"]);
    let claims = hc_token::decode(
        changed["code"].as_str().expect("code"),
        &app.trust().await,
        Validation::at(now()),
    )
    .expect("verifies");
    assert_eq!(claims.colour.as_str(), "red");
    assert_eq!(claims.status_version, version as u64 + 1);
    assert_eq!(
        claims.negative_test_at,
        Some(
            chrono::DateTime::parse_from_rfc3339("2026-01-01T09:00:00Z")
                .expect("time")
                .timestamp()
        ),
        "the latest negative test, rounded down to the hour"
    );
    let r = app
        .http
        .get(format!("{}/v1/codes/me?format=payload", app.address))
        .bearer_auth(&token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "the old ETag no longer matches");
    assert_eq!(
        app.counter(&app.address, "rendering_signatures_total", "")
            .await
            - signed_before,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_svg_and_png_decode_back_to_the_exact_code_with_zbarimg() {
    let app = spawn_app().await;
    let (person, token) = app.citizen(2).await;
    let version = app.wait_status(&person).await;
    app.put_status(&person, version + 1, "yellow").await;
    let dir = std::env::temp_dir().join(format!("hc-rendering-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    // The three formats of one bucket share one token; a bucket boundary in between is retried.
    for attempt in 0.. {
        assert!(attempt < 3, "three bucket boundaries in a row");
        let payload: Value = app.payload(&app.address, &token).await;
        let svg = app
            .get(&app.address, "/v1/codes/me?format=svg", &token)
            .await;
        assert_eq!(svg.headers()["content-type"], "image/svg+xml");
        assert_eq!(svg.headers()["x-code-colour"], "yellow");
        let svg = svg.bytes().await.expect("svg");
        let png = app
            .get(&app.address, "/v1/codes/me?format=png", &token)
            .await;
        assert_eq!(png.headers()["content-type"], "image/png");
        let png = png.bytes().await.expect("png");
        if app.payload(&app.address, &token).await["refresh_after"] != payload["refresh_after"] {
            continue;
        }
        let code = payload["code"].as_str().expect("code");
        std::fs::write(dir.join("code.png"), &png).expect("write");
        std::fs::write(dir.join("code.svg"), &svg).expect("write");
        let converted = Command::new("rsvg-convert")
            .args(["-w", "480", "-b", "white", "-o"])
            .arg(dir.join("svg.png"))
            .arg(dir.join("code.svg"))
            .status()
            .expect(
                "rsvg-convert (Debian's librsvg2-bin) must be installed; make test installs it",
            );
        assert!(converted.success());
        assert_eq!(
            zbar(&dir.join("code.png")),
            code,
            "the PNG holds the exact code"
        );
        assert_eq!(
            zbar(&dir.join("svg.png")),
            code,
            "the SVG holds the exact code"
        );
        break;
    }
    let _ = std::fs::remove_dir_all(&dir);

    // The status changes within the bucket: the payload is signed anew, and the SVG must be of that new code, not
    // the older render left in the cache entry.
    app.put_status(&person, version + 2, "red").await;
    let red = app
        .payload_until(&app.address, &token, |p| p["colour"] == "red")
        .await;
    let svg = app
        .get(&app.address, "/v1/codes/me?format=svg", &token)
        .await;
    assert_eq!(svg.headers()["x-code-colour"], "red");
    let expected =
        rendering::render::svg(red["code"].as_str().expect("code"), hc_domain::Colour::Red)
            .expect("svg");
    assert_eq!(
        svg.text().await.expect("svg"),
        expected,
        "the SVG shows the new code"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_needs_a_citizen_token_and_a_known_format() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(format!("{}/v1/codes/me", app.address))
        .send()
        .await
        .expect("request");
    hc_platform::testing::problem(r, reqwest::StatusCode::UNAUTHORIZED).await;
    let (_, token) = app.citizen(3).await;
    let r = app
        .get(&app.address, "/v1/codes/me?format=gif", &token)
        .await;
    let problem = hc_platform::testing::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("format"),
        "{problem}"
    );
    let official = app.identity.official(&["person:read"], None).await;
    let r = app.get(&app.address, "/v1/codes/me", &official).await;
    hc_platform::testing::problem(r, reqwest::StatusCode::FORBIDDEN).await;

    let keys: Value = app
        .http
        .get(format!("{}/v1/trust/keys", app.address))
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    assert_eq!(keys["issuer"], "440100");
    assert_eq!(keys["keys"][0]["kid"], "t1");
    assert_eq!(keys["keys"][0]["crv"], "Ed25519");
}
