use hc_platform::auth::{SubjectKind, TokenVerifier};
use hc_platform::settings::AuthSettings;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, unique_person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_service_verifies_tokens_with_the_published_keys_alone() {
    let app = spawn_app().await;
    let jwks = app
        .http
        .get(app.url("/v1/auth/keys"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(jwks.status(), StatusCode::OK);
    let jwks: Value = jwks.json().await.expect("json");
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private part published"
    );

    let (id, phone) = unique_person();
    let person = app.register("韩七", &id, &phone).await;
    let tokens = app.sign_in(&phone).await;
    let verifier = TokenVerifier::from_jwks_url(
        &AuthSettings {
            issuer: "hc-identity".into(),
            audience: "hc-platform".into(),
            jwks_url: app.url("/v1/auth/keys"),
            leeway_seconds: 0,
            verified_cache_capacity: 0,
        },
        &hc_platform::tls::Tls::system(),
    )
    .expect("verifier");
    let claims = verifier
        .verify(tokens["access_token"].as_str().expect("token"))
        .await
        .expect("verifies");
    assert_eq!(claims.sub, person);
    assert_eq!(claims.kind, SubjectKind::Citizen);
    assert!(
        verifier
            .verify("eyJhbGciOiJFZERTQSJ9.e30.sig")
            .await
            .is_err()
    );
}
