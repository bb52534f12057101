//! Facts are bounded by the importing client's region, keep who sent them, and change only by an audited correction.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, nth_id, problem, spawn_app};

fn ndjson(rows: &[Value]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}

async fn imported(app: &TestApp, token: &str, kind: &str, batch: &str, rows: &[Value]) -> Value {
    let r = app
        .import(token, kind, batch, "application/x-ndjson", ndjson(rows))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regional_clients_facts_must_arise_in_its_region_and_each_keeps_its_client_batch_and_region()
 {
    let app = spawn_app().await;
    let guangzhou = app
        .identity
        .official(
            &["import:nat", "import:cases", "import:visits"],
            Some("440100"),
        )
        .await;
    let nat = imported(&app, &guangzhou, "nat-results", "gz-nat-1", &[
        json!({"id_number": nth_id(1), "sample_time": "2022-01-04T08:30:00+08:00", "result": "positive", "lab": "KingMed"}),
        json!({"id_number": nth_id(2), "sample_time": "2022-01-04T08:30:00+08:00", "result": "negative", "lab": "KingMed", "region": "440106"}),
        json!({"id_number": nth_id(3), "sample_time": "2022-01-04T08:30:00+08:00", "result": "positive", "lab": "KingMed", "region": "610113"}),
    ])
    .await;
    assert_eq!(
        (nat["accepted"].as_i64(), nat["rejected"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(nat["errors"][0]["field"], "region", "{nat}");
    assert_eq!(nat["errors"][0]["reason"], "is outside the client's region");
    let visits = imported(&app, &guangzhou, "visits", "gz-visits-1", &[
        json!({"id_number": nth_id(4), "region": "440106", "first_seen": "2022-01-03T10:00:00+08:00", "last_seen": "2022-01-03T11:00:00+08:00", "source": "carrier"}),
        json!({"id_number": nth_id(5), "region": "610113", "first_seen": "2022-01-03T10:00:00+08:00", "last_seen": "2022-01-03T11:00:00+08:00", "source": "carrier"}),
    ])
    .await;
    assert_eq!(
        (visits["accepted"].as_i64(), visits["rejected"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(visits["errors"][0]["field"], "region");

    // A nationwide client may name any region, or none.
    let national = app.official(&["import:cases"]).await;
    imported(&app, &national, "cases", "national-cases-1", &[
        json!({"id_number": nth_id(6), "status": "close_contact", "since": "2022-01-02", "region": "610113"}),
        json!({"id_number": nth_id(7), "status": "close_contact", "since": "2022-01-02"}),
    ])
    .await;

    let db = app.pool.get().await.expect("db");
    let rows: Vec<(Option<String>, Option<String>, Option<String>)> = db
        .query(
            "SELECT region::text, client_id, batch_id FROM nat_results
             UNION ALL SELECT region::text, client_id, batch_id FROM case_status
             UNION ALL SELECT region::text, client_id, batch_id FROM visits ORDER BY 3, 1",
            &[],
        )
        .await
        .expect("facts")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let batches: Vec<_> = rows
        .iter()
        .map(|(region, client, batch)| (region.clone(), client.is_some(), batch.clone()))
        .collect();
    assert_eq!(
        batches,
        [
            (Some("440100".into()), true, Some("gz-nat-1".into())),
            (Some("440106".into()), true, Some("gz-nat-1".into())),
            (Some("440106".into()), true, Some("gz-visits-1".into())),
            (Some("610113".into()), true, Some("national-cases-1".into())),
            (None, true, Some("national-cases-1".into())),
        ]
    );

    // A row sent again in another batch, by another client, keeps its first sender and its value.
    imported(&app, &national, "cases", "national-cases-2", &[
        json!({"id_number": nth_id(6), "status": "close_contact", "since": "2022-01-02", "until": "2022-01-03", "region": "610113"}),
    ])
    .await;
    let kept = db
        .query_one(
            "SELECT until, batch_id FROM case_status WHERE region = '610113'",
            &[],
        )
        .await
        .expect("case");
    assert_eq!(kept.get::<_, Option<chrono::NaiveDate>>(0), None);
    assert_eq!(kept.get::<_, String>(1), "national-cases-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fact_changes_only_by_a_correction_within_the_clients_region_with_its_reason_recorded() {
    let app = spawn_app().await;
    let guangzhou = app
        .identity
        .official(&["import:cases"], Some("440100"))
        .await;
    imported(
        &app,
        &guangzhou,
        "cases",
        "gz-cases-1",
        &[json!({"id_number": nth_id(11), "status": "close_contact", "since": "2022-01-02"})],
    )
    .await;
    let correction = json!({"kind": "cases", "id_number": nth_id(11), "status": "close_contact",
        "since": "2022-01-02", "until": "2022-01-09", "reason": "released after 7 days of negative tests"});
    let post = |token: String, body: Value| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/v1/facts/corrections"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("correction")
        }
    };

    // Another region's client, a client without the scope, and a missing reason change nothing.
    let xian = app
        .identity
        .official(&["import:cases"], Some("610100"))
        .await;
    let p = problem(post(xian, correction.clone()).await, StatusCode::NOT_FOUND).await;
    let mut unknown = correction.clone();
    unknown["since"] = json!("2022-01-01");
    let q = problem(
        post(guangzhou.clone(), unknown).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        p["detail"], q["detail"],
        "out of region answers as not found"
    );
    let lab = app.identity.official(&["import:nat"], Some("440100")).await;
    problem(post(lab, correction.clone()).await, StatusCode::FORBIDDEN).await;
    let mut no_reason = correction.clone();
    no_reason["reason"] = json!(" ");
    let p = problem(
        post(guangzhou.clone(), no_reason).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "reason");
    let mut backwards = correction.clone();
    backwards["until"] = json!("2022-01-01");
    let p = problem(
        post(guangzhou.clone(), backwards).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "until");

    let done = post(guangzhou.clone(), correction.clone()).await;
    assert_eq!(done.status(), StatusCode::OK);
    let done: Value = done.json().await.expect("json");
    assert_eq!(done["changed"], true);
    let again: Value = post(guangzhou.clone(), correction.clone())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        again,
        json!({"changed": false, "correction_id": null}),
        "a retry changes nothing"
    );

    let db = app.pool.get().await.expect("db");
    let until: Option<chrono::NaiveDate> = db
        .query_one("SELECT until FROM case_status", &[])
        .await
        .expect("case")
        .get(0);
    assert_eq!(until, chrono::NaiveDate::from_ymd_opt(2022, 1, 9));
    let recorded = db
        .query_one(
            "SELECT id, kind, before, after, reason, client_id FROM fact_corrections",
            &[],
        )
        .await
        .expect("the correction is recorded");
    assert_eq!(
        Some(recorded.get::<_, i64>(0)),
        done["correction_id"].as_i64()
    );
    assert_eq!(recorded.get::<_, String>(1), "cases");
    assert_eq!(recorded.get::<_, Value>(2), json!({"until": null}));
    assert_eq!(recorded.get::<_, Value>(3), json!({"until": "2022-01-09"}));
    assert_eq!(
        recorded.get::<_, String>(4),
        "released after 7 days of negative tests"
    );

    // Scoring hears of it as a correction.
    let events = app.events("facts.imported", 2).await;
    let announced = events
        .iter()
        .find(|e| e["correction"] == true)
        .expect("a correction event");
    assert_eq!(announced["facts"][0]["until"], "2022-01-09");
    assert_eq!(announced["client_id"], recorded.get::<_, String>(5));
}
