use hc_platform::outbox::Relay;
use hc_platform::testing::{WAIT, eventually};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{nth_id, spawn_app, spawn_app_with, valid_declaration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_for_an_unregistered_person_is_kept_and_counts_after_registration() {
    let app = spawn_app().await;
    let lab = app.official(&["import:nat"]).await;
    let id = nth_id(42);
    let row = format!(
        r#"{{"id_number":"{id}","sample_time":"2022-01-04T08:00:00+08:00","result":"positive","lab":"XA-3"}}"#
    );
    let r = app
        .import(
            &lab,
            "nat-results",
            "early",
            "application/x-ndjson",
            format!("{row}\n"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let events = app.events("facts.imported", 1).await;
    assert_eq!(events[0]["people_count"], 1);
    assert_eq!(
        events[0]["people"].as_str().map(str::len),
        Some(44),
        "one 32-byte index in base64"
    );

    // Registration happens later; identity's event links the person to the stored result.
    let (_, token) = app.citizen(&id, "13900000042").await;
    let (app, token) = (&app, &token);
    let facts = eventually(
        WAIT,
        "the stored result was never linked after registration",
        || async move {
            let facts: Value = app
                .http
                .get(app.url("/v1/facts/me"))
                .bearer_auth(token)
                .send()
                .await
                .expect("facts")
                .json()
                .await
                .expect("json");
            (facts["linked"] == true).then_some(facts)
        },
    )
    .await;
    assert_eq!(facts["nat_results"][0]["positive"], true);
    assert_eq!(facts["nat_results"][0]["lab"], "XA-3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_but_not_yet_published_still_arrives() {
    // The relay is off: the process "crashed" between commit and publish.
    let app = spawn_app_with(|b| {
        b.set_override("events.relay_enabled", false)
            .expect("override")
    })
    .await;
    let (person, token) = app.citizen(&nth_id(7), "13900000007").await;
    let declared: Value = app
        .declare(&token, &valid_declaration(), None)
        .await
        .json()
        .await
        .expect("json");

    let db = app.pool.get().await.expect("db");
    let pending: i64 = db
        .query_one(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(pending, 1, "the event is durable in the outbox");

    // A relay starting afterwards (the restarted process) publishes it.
    let store = app.prefixed();
    let relay = Relay::new(app.pool.clone(), store, declaration::SCHEMA, 100);
    assert_eq!(relay.process_next_batch().await.expect("relay"), 1);
    assert_eq!(
        relay.process_next_batch().await.expect("relay"),
        0,
        "published once"
    );

    let events = app.events("declaration.submitted", 1).await;
    assert_eq!(events[0]["declaration_id"], declared["id"]);
    assert_eq!(events[0]["person_id"], person);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_continues_the_trace_of_the_request_that_caused_it() {
    let app = spawn_app().await;
    let (_, token) = app.citizen(&nth_id(8), "13900000008").await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .http
        .post(app.url("/v1/declarations"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&valid_declaration())
        .send()
        .await
        .expect("declare");
    assert_eq!(response.status(), StatusCode::CREATED);
    let entries = app.entries("declaration.submitted", 1).await;
    let traceparent = entries[0]
        .1
        .clone()
        .expect("the event carries a traceparent");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    assert!(
        !traceparent.contains("00f067aa0ba902b7"),
        "the event's parent is the service's own span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_deletes_published_events_after_an_hour_and_nothing_unpublished() {
    let app = spawn_app_with(|b| {
        b.set_override("events.relay_enabled", false)
            .expect("override")
    })
    .await;
    let db = app.pool.get().await.expect("db");
    db.batch_execute(
        "INSERT INTO outbox (stream, payload, created_at, published_at) VALUES
           ('s', '{\"n\": 1}', now() - interval '3 hours', now() - interval '2 hours'),
           ('s', '{\"n\": 2}', now() - interval '3 hours', NULL),
           ('s', '{\"n\": 3}', now() - interval '2 hours', now() - interval '61 minutes'),
           ('s', '{\"n\": 4}', now() - interval '1 hour', now() - interval '59 minutes')",
    )
    .await
    .expect("seed the outbox");
    let relay = Relay::new(app.pool.clone(), app.prefixed(), declaration::SCHEMA, 100);
    assert_eq!(relay.delete_published().await.expect("delete"), 2);
    let left: Vec<i32> = db
        .query("SELECT (payload->>'n')::int FROM outbox ORDER BY id", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, [2, 4], "the unpublished and the recent one stay");
}
