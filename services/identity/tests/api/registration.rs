use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{id_number, problem, spawn_app, unique_person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_twice_returns_the_same_person() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    let first = app.register("张三", &id, &phone).await;

    let again = app
        .post_json("/v1/persons", &json!({"name": "张三", "id_number": id.to_lowercase(), "phone": phone, "home_region": "440106"}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.expect("json")["id"], first);

    let client = app.pool.get().await.expect("db");
    let count: i64 = client
        .query_one("SELECT count(*) FROM persons", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_id_numbers_get_422_naming_the_field() {
    let app = spawn_app().await;
    let (_, phone) = unique_person();
    let cases = [
        ("bad check character", {
            let valid = id_number("44010619900307003");
            let last = if valid.ends_with('0') { '1' } else { '0' };
            format!("{}{last}", &valid[..17])
        }),
        ("30 February", id_number("44010619900230003")),
        ("future birth date", id_number("44010621000101003")),
        ("unknown region", id_number("99999919900307003")),
        ("wrong length", "4401061990030700".to_owned()),
    ];
    for (case, id) in cases {
        let response = app
            .post_json(
                "/v1/persons",
                &json!({"name": "李四", "id_number": id, "phone": phone, "home_region": "440106"}),
            )
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["field"], "id_number", "{case}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{case}: no detail"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_invalid_fields_are_named_too() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    let valid = json!({"name": "王五", "id_number": id, "phone": phone, "home_region": "440106"});
    for (field, bad) in [
        ("phone", json!("02012345678")),
        ("home_region", json!("999999")),
        ("name", json!("  ")),
    ] {
        let mut body = valid.clone();
        body[field] = bad;
        let p = problem(
            app.post_json("/v1/persons", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(p["field"], field);
    }
    let mut missing = valid.clone();
    missing.as_object_mut().expect("object").remove("phone");
    let p = problem(
        app.post_json("/v1/persons", &missing).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "phone");
    let mut wrong_type = valid.clone();
    wrong_type["name"] = json!(42);
    let p = problem(
        app.post_json("/v1/persons", &wrong_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "name");

    let not_json = app
        .http
        .post(app.url("/v1/persons"))
        .body("name=x")
        .send()
        .await
        .expect("request");
    problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_to_someone_else_is_a_conflict_on_phone() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("赵六", &id, &phone).await;
    let (other_id, _) = unique_person();
    let response = app
        .post_json("/v1/persons", &json!({"name": "钱七", "id_number": other_id, "phone": phone, "home_region": "440106"}))
        .await;
    let body = problem(response, StatusCode::CONFLICT).await;
    assert_eq!(body["field"], "phone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused() {
    let app = spawn_app().await;
    let huge = "x".repeat(100_000);
    let response = app
        .post_json(
            "/v1/persons",
            &json!({"name": huge, "id_number": "", "phone": "", "home_region": ""}),
        )
        .await;
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}
