//! Rule sets over HTTP: errors with their position, versions, inheritance applied to the population, dry runs.

use hc_platform::testing::{WAIT, eventually};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{date_ago, problem, spawn_app};

fn close_contact_red_for(days: i64) -> serde_json::Value {
    json!({
        "description": "Guangzhou: close contacts red",
        "rules": [{
            "id": "close-contact", "colour": "red",
            "when": {"<=": [{"var": "close_contact.days_ago"}, days]},
            "expires_in_days": {"-": [days + 1, {"var": "close_contact.days_ago"}]},
            "reason": {"zh": "{close_contact.date} 密接", "en": "close contact on {close_contact.date}"}
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_set_with_an_error_is_rejected_with_its_position() {
    let app = spawn_app().await;
    let token = app.official(&["rules:write"], None).await;
    // JSON syntax: line and column.
    let r = app
        .http
        .put(app.url("/v1/rules/440100"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{\"rules\": [\n  {\"id\": \"x\",, }\n]}")
        .send()
        .await
        .expect("put");
    let p = problem(r, StatusCode::BAD_REQUEST).await;
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .contains("line 2 column"),
        "{p}"
    );
    // An unknown fact: the JSON pointer of the var.
    let mut doc = close_contact_red_for(14);
    doc["rules"][0]["when"] =
        json!({"and": [true, {"<=": [{"var": "close_contacts.days_ago"}, 14]}]});
    let r = app.put_json("/v1/rules/440100", &token, &doc).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["field"], "/rules/0/when/and/1/<=/0/var");
    // A wrong shape: the field's path.
    let r = app
        .put_json(
            "/v1/rules/440100",
            &token,
            &json!({"rules": [{"id": "a", "colour": "purple"}]}),
        )
        .await;
    eprintln!("DEBUG {:?}", r.headers());
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["field"], "rules[0].colour");
    // A colour that can never be reached.
    let mut doc = close_contact_red_for(14);
    doc["rules"][0]["colour"] = json!("orange");
    let r = app.put_json("/v1/rules/440100", &token, &doc).await;
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "/rules/0/colour"
    );
    // Not a region.
    let r = app
        .put_json("/v1/rules/999999", &token, &close_contact_red_for(14))
        .await;
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "region"
    );
    // Without the scope.
    let other = app.official(&["risk:write"], None).await;
    let r = app
        .put_json("/v1/rules/440100", &other, &close_contact_red_for(14))
        .await;
    problem(r, StatusCode::FORBIDDEN).await;
    // Nothing was stored.
    let r = app.get("/v1/rules/440100", &token).await;
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_override_inherits_the_baseline_recolours_its_residents_and_keeps_its_versions() {
    let app = spawn_app().await;
    let resident = app.citizen("440106", 20).await;
    let outsider = app.citizen("440306", 21).await;
    let cdc = app.official(&["import:cases"], None).await;
    app.import(
        &cdc,
        "cases",
        &[
            json!({"id_number": resident.id_number, "status": "close_contact", "since": date_ago(10)}),
            json!({"id_number": outsider.id_number, "status": "close_contact", "since": date_ago(10)}),
        ],
    )
    .await;
    // Nationally a close contact is yellow for 7 days: 10 days ago is green, the colour the resident already had, so
    // wait for the facts themselves before asking what a draft would change.
    app.wait_rows("f_cases", 2).await;
    app.wait_colour(&resident.person, "green").await;
    let token = app.official(&["rules:write"], Some("440000")).await;

    // A dry run says what would change, and changes nothing.
    let r = app
        .post_json(
            "/v1/rules/440100/dry-run",
            &token,
            &close_contact_red_for(14),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let dry: serde_json::Value = r.json().await.expect("json");
    assert_eq!(dry["evaluated"], 1, "only Guangzhou's residents: {dry}");
    assert_eq!(
        dry["changes"],
        json!([{"from": "green", "to": "red", "people": 1}])
    );
    assert_eq!(
        app.cached(&resident.person).await.expect("status")["colour"],
        "green"
    );

    let r = app
        .put_json("/v1/rules/440100", &token, &close_contact_red_for(14))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let stored: serde_json::Value = r.json().await.expect("json");
    assert_eq!(stored["version"], 1);
    let red = app.wait_colour(&resident.person, "red").await;
    assert_eq!(red["rule_set"], "000000@1+440100@1");
    assert_eq!(
        red["reasons"][0]["en"],
        format!("close contact on {}", date_ago(10))
    );
    // Shenzhen is not in Guangzhou.
    assert_eq!(
        app.cached(&outsider.person).await.expect("status")["colour"],
        "green"
    );

    // Version 2 shortens it to 7 days: green again, and version 1 stays readable.
    let r = app
        .put_json("/v1/rules/440100", &token, &close_contact_red_for(7))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.wait_colour(&resident.person, "green").await;
    let v1: serde_json::Value = app
        .get("/v1/rules/440100?version=1", &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v1["document"]["rules"][0]["when"]["<="][1], 14);
    assert_eq!(v1["versions"], json!([1, 2]));
    let current: serde_json::Value = app
        .get("/v1/rules/440100", &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(current["version"], 2);
    // The shipped national baseline is there too, and a provincial client cannot replace it.
    let national = app.get("/v1/rules/000000", &token).await;
    assert_eq!(national.status(), StatusCode::OK);
    let r = app
        .put_json("/v1/rules/000000", &token, &close_contact_red_for(7))
        .await;
    problem(r, StatusCode::FORBIDDEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_set_that_comes_into_force_later_is_applied_when_it_does() {
    let app = spawn_app().await;
    let resident = app.citizen("440106", 30).await;
    let cdc = app.official(&["import:cases"], None).await;
    app.import(&cdc, "cases", &[json!({"id_number": resident.id_number, "status": "close_contact", "since": date_ago(10)})]).await;
    app.wait_colour(&resident.person, "green").await;
    let token = app.official(&["rules:write"], None).await;
    let mut doc = close_contact_red_for(14);
    doc["effective_from"] = json!((chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339());
    let r = app.put_json("/v1/rules/440100", &token, &doc).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        app.cached(&resident.person).await.expect("status")["colour"],
        "green",
        "not yet in force"
    );
    app.wait_colour(&resident.person, "red").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_store_the_shipped_rule_set_once_and_all_start() {
    let app = spawn_app().await;
    let db = app.pool.get().await.expect("db");
    let row = db
        .query_one(
            "SELECT document, effective_from FROM rule_sets WHERE region = '610000' AND version = 1",
            &[],
        )
        .await
        .expect("shipped 610000");
    let (document, from): (serde_json::Value, chrono::DateTime<chrono::Utc>) =
        (row.get(0), row.get(1));
    db.execute("DELETE FROM rule_sets WHERE region = '610000'", &[])
        .await
        .expect("delete");
    // Another replica is storing the same rule set and has not committed yet.
    let mut other = app.pool.get().await.expect("db");
    let tx = other.transaction().await.expect("begin");
    tx.execute(
        "INSERT INTO rule_sets (region, version, document, effective_from, created_by)
         VALUES ('610000', 1, $1, $2, 'shipped')",
        &[&document, &from],
    )
    .await
    .expect("insert");
    let pool = app.pool.clone();
    let starting = tokio::spawn(async move { scoring::prepare(&pool).await });
    // Commit only once this replica's insert waits on the other's row, so that it cannot have seen it.
    let db = &db;
    eventually(
        WAIT,
        "the second replica's insert never waited on the first's",
        || async move {
            let locked = scoring::count(
                db,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await
            .expect("activity");
            (locked > 0).then_some(())
        },
    )
    .await;
    tx.commit().await.expect("commit");
    starting
        .await
        .expect("joined")
        .expect("the second replica starts");
    let stored = scoring::count(db, "SELECT count(*) FROM rule_sets WHERE region = '610000'")
        .await
        .expect("count");
    assert_eq!(stored, 1);
}
