use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{nth_id, problem, spawn_app, valid_declaration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_rule_names_its_field() {
    let app = spawn_app().await;
    let (_, token) = app.citizen(&nth_id(1), "13900000001").await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2))
        .date_naive()
        .to_string();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("temperature", json!(34.9), "temperature"),
        ("temperature", json!(42.1), "temperature"),
        ("symptoms", json!(["cough", "headache"]), "symptoms[1]"),
        ("commitment", json!(false), "commitment"),
        ("current_region", json!("999999"), "current_region"),
        (
            "travelled_regions",
            json!(["440300", "12345"]),
            "travelled_regions[1]",
        ),
    ];
    for (key, bad, field) in cases {
        let mut body = valid_declaration();
        body[key] = bad;
        let p = problem(
            app.declare(&token, &body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(p["field"], field, "{key}: {p}");
    }
    let mut future_contact = valid_declaration();
    future_contact["contact_with_case"] = json!(true);
    future_contact["contact_date"] = json!(tomorrow);
    let p = problem(
        app.declare(&token, &future_contact, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "contact_date");
    future_contact
        .as_object_mut()
        .expect("object")
        .remove("contact_date");
    let p = problem(
        app.declare(&token, &future_contact, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "contact_date");
    let mut missing = valid_declaration();
    missing
        .as_object_mut()
        .expect("object")
        .remove("commitment");
    let p = problem(
        app.declare(&token, &missing, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "commitment");

    problem(
        app.http
            .post(app.url("/v1/declarations"))
            .json(&valid_declaration())
            .send()
            .await
            .expect("anonymous"),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_declaration_the_same_day_supersedes_the_first_and_both_stay() {
    let app = spawn_app().await;
    let (_, token) = app.citizen(&nth_id(2), "13900000002").await;
    let first = app.declare(&token, &valid_declaration(), None).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    let mut fever = valid_declaration();
    fever["temperature"] = json!(38.2);
    fever["symptoms"] = json!(["fever", "cough"]);
    let second: Value = app
        .declare(&token, &fever, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(second["supersedes"], first["id"]);
    assert_eq!(second["temperature"], 38.2);

    let history: Value = app
        .http
        .get(app.url("/v1/declarations?limit=1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    assert_eq!(history["items"][0]["id"], second["id"], "newest first");
    assert!(history["items"][0]["superseded_at"].is_null());
    let cursor = history["next_cursor"].as_str().expect("a second page");
    let older: Value = app
        .http
        .get(app.url(&format!("/v1/declarations?limit=1&cursor={cursor}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    assert_eq!(older["items"][0]["id"], first["id"]);
    assert!(older["items"][0]["superseded_at"].is_string());
    assert!(older["next_cursor"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_key_returns_the_first_answer() {
    let app = spawn_app().await;
    let (person, token) = app.citizen(&nth_id(3), "13900000003").await;
    let first: Value = app
        .declare(&token, &valid_declaration(), Some("morning-1"))
        .await
        .json()
        .await
        .expect("json");
    let retry = app
        .declare(&token, &valid_declaration(), Some("morning-1"))
        .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(retry, first);
    let db = app.pool.get().await.expect("db");
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM declarations WHERE person_id = $1::text::uuid",
            &[&person],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1);
}
