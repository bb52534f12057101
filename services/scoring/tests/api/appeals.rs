//! Appeals: accepted with an override that shows in the reasons and ends on schedule, or rejected; audited.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{days_ago, problem, spawn_app};

async fn red_person(app: &crate::helpers::TestApp, n: u32) -> crate::helpers::Citizen {
    let c = app.citizen("440106", n).await;
    let lab = app.official(&["import:nat"], None).await;
    app.import(&lab, "nat-results", &[json!({"id_number": c.id_number, "sample_time": days_ago(2), "result": "positive", "lab": "lab-1"})]).await;
    app.wait_colour(&c.person, "red").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_appeal_overrides_the_colour_until_its_expiry_and_is_audited() {
    let app = spawn_app().await;
    let c = red_person(&app, 40).await;
    let r = app
        .http
        .post(app.url("/v1/appeals"))
        .bearer_auth(&c.token)
        .header("Idempotency-Key", "a1")
        .json(&json!({"reason": "the lab mixed up two samples; my retest was negative"}))
        .send()
        .await
        .expect("file");
    assert_eq!(r.status(), StatusCode::CREATED);
    let appeal: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        (
            appeal["state"].as_str(),
            appeal["colour_at_filing"].as_str()
        ),
        (Some("open"), Some("red"))
    );
    // A retry is the same appeal; a second one while it is open is a conflict.
    let again: serde_json::Value = app
        .http
        .post(app.url("/v1/appeals"))
        .bearer_auth(&c.token)
        .header("Idempotency-Key", "a1")
        .json(&json!({"reason": "the lab mixed up two samples; my retest was negative"}))
        .send()
        .await
        .expect("file")
        .json()
        .await
        .expect("json");
    assert_eq!(again["id"], appeal["id"]);
    let r = app
        .post_json(
            "/v1/appeals",
            &c.token,
            &json!({"reason": "another appeal while one is open"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT).await;

    let official = app.official(&["appeals:resolve"], None).await;
    let open: serde_json::Value = app
        .get("/v1/appeals", &official)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(open["appeals"][0]["id"], appeal["id"]);
    // A citizen cannot resolve.
    let path = format!(
        "/v1/appeals/{}/resolution",
        appeal["id"].as_str().expect("id")
    );
    let until = chrono::Utc::now() + chrono::Duration::seconds(3);
    let r = app.post_json(&path, &c.token, &json!({"decision": "accept", "resolution": "retest negative", "colour": "green", "until": until})).await;
    problem(r, StatusCode::FORBIDDEN).await;
    let r = app
        .post_json(
            &path,
            &official,
            &json!({"decision": "accept", "resolution": "retest negative at lab-2"}),
        )
        .await;
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "colour"
    );
    let r = app.post_json(&path, &official, &json!({"decision": "accept", "resolution": "retest negative at lab-2", "colour": "green", "until": until})).await;
    assert_eq!(r.status(), StatusCode::OK);

    let green = app.wait_colour(&c.person, "green").await;
    assert_eq!(green["reasons"][0]["rule"], "appeal-override");
    assert!(
        green["reasons"][0]["en"]
            .as_str()
            .expect("en")
            .contains("retest negative at lab-2")
    );
    assert_eq!(
        green["reasons"][1]["rule"], "positive-nat",
        "the rules' verdict stays visible"
    );
    let audit = app
        .pool
        .get()
        .await
        .expect("db")
        .query_one(
            "SELECT actor, outcome FROM audit_log WHERE action = 'appeal.resolve' AND subject = $1",
            &[&c.person.parse::<uuid::Uuid>().expect("uuid")],
        )
        .await
        .expect("audit row");
    assert!(audit.get::<_, String>(1).starts_with("accepted: green"));
    // Resolving twice is a conflict.
    let r = app
        .post_json(
            &path,
            &official,
            &json!({"decision": "reject", "resolution": "changed my mind"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT).await;
    // The override ends on schedule, not on the next request: the scheduler recolours.
    app.wait_colour(&c.person, "red").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_appeal_leaves_the_colour_and_tells_why() {
    let app = spawn_app().await;
    let c = red_person(&app, 41).await;
    let before = app.cached(&c.person).await.expect("status");
    let r = app
        .post_json("/v1/appeals", &c.token, &json!({"reason": "short"}))
        .await;
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "reason"
    );
    let appeal: serde_json::Value = app
        .post_json(
            "/v1/appeals",
            &c.token,
            &json!({"reason": "I was not at the testing site that day"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let official = app.official(&["appeals:resolve"], None).await;
    let path = format!(
        "/v1/appeals/{}/resolution",
        appeal["id"].as_str().expect("id")
    );
    let r = app.post_json(&path, &official, &json!({"decision": "reject", "resolution": "the sample barcode matches your registration"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mine: serde_json::Value = app
        .get("/v1/appeals/mine", &c.token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(mine["appeals"][0]["state"], "rejected");
    assert_eq!(
        mine["appeals"][0]["resolution"],
        "the sample barcode matches your registration"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.cached(&c.person).await.expect("status"), before);
}
