use std::fmt::Write;

use hc_platform::testing::{WAIT, eventually};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{nth_id, problem, spawn_app, spawn_app_with};

/// `n` NAT-result rows as NDJSON; rows listed in `bad` are broken in different ways.
fn nat_rows(n: u32, bad: &[u32]) -> String {
    let mut body = String::new();
    for i in 1..=n {
        let id = nth_id(i);
        let line = match bad.iter().position(|b| *b == i) {
            Some(0) => format!(
                r#"{{"id_number":"{}X","sample_time":"2022-01-04T08:00:00+08:00","result":"negative","lab":"GZ-1"}}"#,
                &id[..16]
            ),
            Some(1) => format!(
                r#"{{"id_number":"{id}","sample_time":"2022-01-04T08:00:00+08:00","result":"maybe","lab":"GZ-1"}}"#
            ),
            Some(_) => format!(r#"{{"id_number":"{id}","result":"negative","lab":"GZ-1"}}"#),
            None => format!(
                r#"{{"id_number":"{id}","sample_time":"2022-01-04T08:00:00+08:00","result":"negative","lab":"GZ-1"}}"#
            ),
        };
        writeln!(body, "{line}").expect("write");
    }
    body
}

/// Starts a chunked NDJSON import of `first_chunk` and keeps its connection open (the body not finished): the
/// import is running until the socket is dropped.
async fn start_held_import(
    app: &crate::helpers::TestApp,
    lab: &str,
    batch: &str,
    first_chunk: &str,
) -> tokio::net::TcpStream {
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/imports/nat-results HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {lab}\r\n\
         Idempotency-Key: {batch}\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{first_chunk}\r\n",
        first_chunk.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut socket, head.as_bytes())
        .await
        .expect("write");
    tokio::io::AsyncWriteExt::flush(&mut socket)
        .await
        .expect("flush");
    socket
}

async fn count(app: &crate::helpers::TestApp, table: &str) -> i64 {
    let db = app.pool.get().await.expect("db");
    db.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_bad_rows_among_a_thousand_are_reported_and_the_rest_land_once() {
    let app = spawn_app_with(|b| {
        b.set_override("declaration.import_chunk_rows", 300)
            .expect("override")
    })
    .await;
    let lab = app.official(&["import:nat"]).await;
    let body = nat_rows(1000, &[17, 500, 999]);

    let first = app
        .import(
            &lab,
            "nat-results",
            "batch-1",
            "application/x-ndjson",
            body.clone(),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["state"], "complete");
    assert_eq!(
        (first["accepted"].as_i64(), first["rejected"].as_i64()),
        (Some(997), Some(3))
    );
    let errors: Vec<(i64, String)> = first["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().unwrap_or(0),
                e["field"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (17, "id_number".into()),
            (500, "result".into()),
            (999, "sample_time".into())
        ]
    );
    assert_eq!(count(&app, "nat_results").await, 997);

    // The same batch again changes nothing.
    let again = app
        .import(
            &lab,
            "nat-results",
            "batch-1",
            "application/x-ndjson",
            body.clone(),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["accepted"], 997);
    assert_eq!(count(&app, "nat_results").await, 997);

    // The same rows under another batch id are duplicates, not new facts.
    let other: Value = app
        .import(&lab, "nat-results", "batch-2", "application/x-ndjson", body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (other["accepted"].as_i64(), other["duplicates"].as_i64()),
        (Some(0), Some(997))
    );
    assert_eq!(count(&app, "nat_results").await, 997);

    let status: Value = app
        .http
        .get(app.url("/v1/imports/batch-1?limit=2"))
        .bearer_auth(&lab)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(status["errors"].as_array().map(Vec::len), Some(2));
    assert_eq!(status["next_errors_after"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_imports_work_and_a_wrong_scope_is_refused() {
    let app = spawn_app().await;
    let lab = app.official(&["import:cases"]).await;
    let csv = format!(
        "id_number,status,since,until\n{},close_contact,2022-01-02,\n{},confirmed,2022-01-03,2022-01-01\n",
        nth_id(1),
        nth_id(2)
    );
    let r: Value = app
        .import(&lab, "cases", "c-1", "text/csv", csv)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (r["accepted"].as_i64(), r["rejected"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        r["errors"][0]["row"], 3,
        "CSV rows are line numbers, the header being line 1"
    );
    assert_eq!(r["errors"][0]["field"], "until");

    let p = problem(
        app.import(
            &lab,
            "nat-results",
            "n-1",
            "application/x-ndjson",
            nat_rows(3, &[]),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(p["detail"].as_str().unwrap_or("").contains("import:nat"));
    problem(
        app.import(&lab, "cases", "c-2", "text/plain", String::new())
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let p = problem(
        app.import(&lab, "vaccinations", "v-1", "text/csv", String::new())
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_batch_resumes_after_its_last_committed_chunk() {
    let app = spawn_app_with(|b| {
        b.set_override("declaration.import_chunk_rows", 100)
            .expect("override")
    })
    .await;
    let lab = app.official(&["import:nat"]).await;
    let body = nat_rows(450, &[]);
    // The first attempt's connection breaks after 250 rows: the two whole chunks (200 rows) commit, the cut rest
    // is not.
    let cut: String = body.lines().take(250).map(|l| format!("{l}\n")).collect();
    let socket = start_held_import(&app, &lab, "resume-1", &cut).await;
    // Once the first chunk is committed (the second is parsed meanwhile), drop the connection mid-body.
    let (app, lab) = (&app, &lab);
    eventually(WAIT, "the first chunk was never committed", || async move {
        (count(app, "nat_results").await >= 100).then_some(())
    })
    .await;
    drop(socket);
    let partial = eventually(
        WAIT,
        "the interrupted import never showed as failed",
        || async move {
            let partial: Value = app
                .http
                .get(app.url("/v1/imports/resume-1"))
                .bearer_auth(lab)
                .send()
                .await
                .expect("status")
                .json()
                .await
                .expect("json");
            (partial["state"] == "failed").then_some(partial)
        },
    )
    .await;
    assert_eq!(partial["committed_through"], 200);
    assert_eq!(count(app, "nat_results").await, 200);

    let resumed: Value = app
        .import(lab, "nat-results", "resume-1", "application/x-ndjson", body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(resumed["state"], "complete");
    assert_eq!(
        (resumed["accepted"].as_i64(), resumed["duplicates"].as_i64()),
        (Some(450), Some(0))
    );
    assert_eq!(count(app, "nat_results").await, 450);
}

/// With a read replica configured (`database.read_url`, CloudNativePG's `-ro` Service), an import's progress is read
/// from it, and the import itself is written to the primary. The stand-in replica here is another database with
/// the same schema that never receives the batch: the import succeeds, its view is not found there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imports_progress_is_read_from_the_replica_when_one_is_configured() {
    let replica = spawn_app().await;
    let replica_url = replica.db.url.clone();
    let app = spawn_app_with(move |b| {
        b.set_override("database.read_url", replica_url)
            .expect("override")
    })
    .await;
    let lab = app.official(&["import:nat"]).await;
    let body = format!(
        "{{\"id_number\":\"{}\",\"sample_time\":\"2022-01-04T08:00:00Z\",\"result\":\"negative\",\"lab\":\"l\"}}\n",
        nth_id(1)
    );
    let imported = app
        .import(
            &lab,
            "nat-results",
            "replica-1",
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(imported.status(), StatusCode::CREATED);
    assert_eq!(
        count(&app, "nat_results").await,
        1,
        "written to the primary"
    );
    let view = app
        .http
        .get(app.url("/v1/imports/replica-1"))
        .bearer_auth(&lab)
        .send()
        .await
        .expect("status");
    assert_eq!(
        view.status(),
        StatusCode::NOT_FOUND,
        "read from the replica"
    );
}

/// With `import_max_concurrent` imports running, another waits `import_queue_ms` for its turn: it is refused with
/// 503 + Retry-After if none comes (its body unread), and taken if a running import finishes meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_imports_a_replica_takes_at_once_another_waits_its_turn() {
    let app = spawn_app_with(|b| {
        b.set_override("declaration.import_max_concurrent", 1)
            .and_then(|b| b.set_override("declaration.import_queue_ms", 3000))
            .expect("override")
    })
    .await;
    let lab = app.official(&["import:nat"]).await;
    // Other labs: one lab waits for its own first import anyway (import_max_per_client).
    let (second_lab, third_lab) = (
        app.official(&["import:nat"]).await,
        app.official(&["import:nat"]).await,
    );
    // The first import sends its head and one row, then holds the connection open: it is running.
    let socket = start_held_import(&app, &lab, "held-1", &nat_rows(1, &[])).await;
    // The held import has its turn once its batch is recorded (the turn is taken before the batch).
    let app = &app;
    eventually(WAIT, "the first import never started", || async move {
        (count(app, "import_batches").await >= 1).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let refused = app
        .import(
            &second_lab,
            "nat-results",
            "second-1",
            "application/x-ndjson",
            nat_rows(3, &[]),
        )
        .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(2900),
        "waited its turn first"
    );
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let body = problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["type"], "/problems/overloaded");

    // A third waits; the first finishes (its client goes away) meanwhile, and the third is taken.
    let third = tokio::spawn({
        let (http, url, lab) = (
            app.http.clone(),
            app.url("/v1/imports/nat-results"),
            third_lab.clone(),
        );
        async move {
            http.post(url)
                .bearer_auth(lab)
                .header("Idempotency-Key", "third-1")
                .header("Content-Type", "application/x-ndjson")
                .body(nat_rows(3, &[]))
                .send()
                .await
                .expect("import")
                .status()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(socket);
    assert_eq!(third.await.expect("join"), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_error_names_the_field_and_the_problem_never_the_value() {
    let app = spawn_app().await;
    let lab = app.official(&["import:nat"]).await;
    // An ID number sent as a JSON number (serde would quote it), one whose region digits are unknown, and a CSV
    // row with a birth date that is no calendar date.
    let ndjson = concat!(
        r#"{"id_number": 440106199001011234, "sample_time": "2026-12-01T08:00:00Z", "result": "negative", "lab": "l"}"#,
        "\n",
        r#"{"id_number": "999999199001011234", "sample_time": "2026-12-01T08:00:00Z", "result": "negative", "lab": "l"}"#,
        "\n",
    );
    let csv =
        "id_number,sample_time,result,lab\n440106199002301234,2026-12-01T08:00:00Z,negative,l\n";
    for (batch, ctype, body) in [
        ("leak-1", "application/x-ndjson", ndjson),
        ("leak-2", "text/csv", csv),
    ] {
        let r = app
            .import(&lab, "nat-results", batch, ctype, body.to_owned())
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let text = r.text().await.expect("body");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert!(v["rejected"].as_i64() > Some(0), "{v}");
        for e in v["errors"].as_array().expect("errors") {
            assert_eq!(e["field"], "id_number", "{e}");
        }
        for digits in ["4401061990", "9999991990", "19900230"] {
            assert!(!text.contains(digits), "{digits} in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_runs_one_import_at_a_time_and_none_runs_past_its_time_limit() {
    let app = spawn_app_with(|b| {
        b.set_override("declaration.import_max_seconds", 2)
            .expect("override")
    })
    .await;
    let lab = app.official(&["import:nat"]).await;
    let other_lab = app.official(&["import:nat"]).await;
    let mut socket = start_held_import(&app, &lab, "held-1", &nat_rows(1, &[])).await;
    let app = &app;
    eventually(WAIT, "the first import never started", || async move {
        (count(app, "import_batches").await >= 1).then_some(())
    })
    .await;

    // The same client waits for its first import; another client goes ahead.
    let second = app
        .import(
            &lab,
            "nat-results",
            "second-1",
            "application/x-ndjson",
            nat_rows(3, &[]),
        )
        .await;
    assert_eq!(
        second
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    problem(second, StatusCode::TOO_MANY_REQUESTS).await;
    let other = app
        .import(
            &other_lab,
            "nat-results",
            "other-1",
            "application/x-ndjson",
            nat_rows(3, &[]),
        )
        .await;
    assert_eq!(other.status(), StatusCode::CREATED);

    // The held import never finishes its body, and well within its idle timeout (30 s) its total time (2 s) ends it.
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        tokio::io::AsyncReadExt::read(&mut socket, &mut answer),
    )
    .await
    .expect("answered within its time limit")
    .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(socket);
    // Its turn is over: the client imports again.
    let again = app
        .import(
            &lab,
            "nat-results",
            "second-1",
            "application/x-ndjson",
            nat_rows(3, &[]),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
}

/// Abuse at the edge (issue 17): an import whose line never ends, sent on past 2 GiB (up to 64 GiB, so that the loop
/// is bounded and a service that read it all would take far longer than the test allows, even over loopback). The
/// framing refuses the line once it passes 64 KiB, so the lab hears a 422 naming the line at once and the service never
/// holds more than one line of it; then the connection is closed (after actix's one-second linger), instead of the
/// service reading the rest of the chunked body to keep the connection alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_a_two_gib_line_is_refused_after_its_first_64_kib() {
    let app = spawn_app().await;
    let lab = app.official(&["import:nat"]).await;
    let answer = endless_line_refused(&app, &lab).await;
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("is longer than 65536 bytes"), "{answer}");
}

/// The same endless line sent with a bad token: the token extractor answers 401 before the route's handler has
/// touched the body, and the platform's hold (hc_platform::unread_body) keeps actix from reading it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_a_bad_token_is_refused_without_reading_its_body() {
    let app = spawn_app().await;
    let answer = endless_line_refused(&app, "not-a-token").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

/// Sends an import whose one line goes on toward 64 GiB; returns the service's answer once it has stopped reading.
async fn endless_line_refused(app: &crate::helpers::TestApp, token: &str) -> String {
    let socket = start_held_import(app, token, "batch-long-line", r#"{"id_number":""#).await;
    hc_platform::testing::answer_to_an_endless_chunked_body(socket).await
}
