use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{problem, spawn_app, unique_person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_person_needs_person_read_and_is_audited() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    let person = app.register("陈三", &id, &phone).await;
    let path = format!("/v1/persons/by-id-number/{id}?reason=close-contact%20tracing%20case%2042");

    let anonymous = app.http.get(app.url(&path)).send().await.expect("request");
    assert_eq!(
        anonymous
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    problem(anonymous, StatusCode::UNAUTHORIZED).await;

    let (verifier_id, verifier_secret) = app.create_client(&["verify"], None).await;
    let without = app.client_token(&verifier_id, &verifier_secret).await;
    let p = problem(
        app.get_with_token(&path, &without).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(p["detail"].as_str().unwrap_or("").contains("person:read"));

    let citizen = app.sign_in(&phone).await;
    problem(
        app.get_with_token(&path, citizen["access_token"].as_str().expect("token"))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let db = app.pool.get().await.expect("db");
    let audited: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action LIKE 'person.%'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(audited, 0, "refused calls read nothing");

    let (reader_id, reader_secret) = app.create_client(&["person:read"], None).await;
    let token = app.client_token(&reader_id, &reader_secret).await;
    let response = app.get_with_token(&path, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], person);
    assert_eq!(body["id_number"], id);
    assert_eq!(body["name"], "陈三");

    let row = db
        .query_one(
            "SELECT actor, action, subject::text, reason, outcome FROM audit_log WHERE action LIKE 'person.%'",
            &[],
        )
        .await
        .expect("one audit row");
    assert_eq!(row.get::<_, String>(0), reader_id);
    assert_eq!(row.get::<_, String>(1), "person.read_by_id_number");
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some(person.as_str())
    );
    assert_eq!(row.get::<_, String>(3), "close-contact tracing case 42");
    assert_eq!(row.get::<_, String>(4), "found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_without_a_reason_is_refused_naming_reason() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("褚四", &id, &phone).await;
    let (cid, secret) = app.create_client(&["person:read"], None).await;
    let token = app.client_token(&cid, &secret).await;
    let p = problem(
        app.get_with_token(&format!("/v1/persons/by-id-number/{id}"), &token)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "reason");
    let p = problem(
        app.get_with_token("/v1/persons/by-id-number/123?reason=tracing", &token)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "id_number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sees_only_its_region_and_the_attempt_is_audited() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("卫五", &id, &phone).await;
    // Shenzhen's client asks for a Guangzhou (Tianhe) resident.
    let (cid, secret) = app.create_client(&["person:read"], Some("440300")).await;
    let token = app.client_token(&cid, &secret).await;
    let path = format!("/v1/persons/by-id-number/{id}?reason=tracing");
    problem(
        app.get_with_token(&path, &token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let db = app.pool.get().await.expect("db");
    let outcome: String = db
        .query_one(
            "SELECT outcome FROM audit_log WHERE action LIKE 'person.%'",
            &[],
        )
        .await
        .expect("audit")
        .get(0);
    assert_eq!(outcome, "out_of_region");

    // Guangzhou's client may.
    let (gz, gz_secret) = app.create_client(&["person:read"], Some("440100")).await;
    let token = app.client_token(&gz, &gz_secret).await;
    assert_eq!(
        app.get_with_token(&path, &token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_citizen_sees_their_own_record_masked() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("蒋六六", &id, &phone).await;
    let me = app.own_record(&phone).await;
    assert_eq!(me["name"], "蒋*六");
    assert_eq!(
        me["id_number"],
        format!("{}**********{}", &id[..4], &id[14..])
    );
    assert_eq!(me["phone"], format!("{}****{}", &phone[..3], &phone[7..]));
    assert_eq!(me["home_region"], "440106");
}
