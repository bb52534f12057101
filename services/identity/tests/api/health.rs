use std::net::SocketAddr;

use hc_platform::testing::{TcpProxy, redis_url};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with, unique_person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_redis_when_it_becomes_unreachable() {
    let redis: SocketAddr = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("HC_TEST_REDIS_URL as redis://host:port");
    let proxy = TcpProxy::start(redis).await.expect("proxy");
    let via_proxy = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(|b| b.set_override("redis.url", via_proxy).expect("override")).await;

    let ready = app
        .http
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::OK);

    proxy.cut();
    let ready = app
        .http
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["checks"]["redis"], "unreachable");
    assert_eq!(body["checks"]["postgres"], "ok");
    // Codes live in Redis only: asking for one, or signing in with one, is "come back", not "broken".
    for (path, body) in [
        ("/v1/auth/otp", serde_json::json!({"phone": "13900000001"})),
        (
            "/v1/auth/token",
            serde_json::json!({"grant_type": "otp", "phone": "13900000001", "code": "123456"}),
        ),
    ] {
        let r = app.post_json(path, &body).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(r.headers().contains_key("retry-after"), "{path}");
    }
    let live = app
        .http
        .get(app.url("/health/live"))
        .send()
        .await
        .expect("live");
    assert_eq!(live.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_not_raw_path() {
    let app = spawn_app().await;
    let (id, _) = unique_person();
    app.http
        .get(app.url(&format!("/v1/persons/by-id-number/{id}")))
        .send()
        .await
        .expect("request");
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains(r#"route="/v1/persons/by-id-number/{id_number}""#));
    assert!(metrics.contains("http_request_duration_seconds_bucket"));
    assert!(!metrics.contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_endpoint() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    for path in [
        "/v1/persons",
        "/v1/persons/me",
        "/v1/persons/by-id-number/{id_number}",
        "/v1/auth/otp",
        "/v1/auth/token",
        "/v1/auth/keys",
        "/v1/clients",
        "/v1/clients/{id}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(doc["paths"]["/v1/persons"]["post"]["responses"]["422"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_is_404_and_a_known_one_asked_with_another_method_is_405() {
    let app = spawn_app().await;
    let unknown = app
        .http
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        crate::helpers::problem(unknown, StatusCode::NOT_FOUND).await["type"],
        "/problems/not-found"
    );
    // Each 405 names the methods the path answers (RFC 9110 §15.5.6), from the OpenAPI document.
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/v1/persons", "POST"),
        (reqwest::Method::TRACE, "/v1/auth/keys", "GET"),
        (
            reqwest::Method::PUT,
            "/v1/clients/6f1b8c2e-3a4d-4e5f-9a0b-1c2d3e4f5a6b",
            "DELETE",
        ),
    ] {
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
        let p = crate::helpers::problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(p["detail"], format!("this route does not answer {method}"));
    }
}
