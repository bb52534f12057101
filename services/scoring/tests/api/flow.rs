//! End to end: identity's registration and declaration's events reach scoring, whose status lands in PostgreSQL
//! and Redis, is announced, and is what the citizen reads.

use base64::Engine;
use hc_platform::events::DeclarationSubmitted;
use hc_platform::testing::{WAIT, eventually};
use serde_json::json;

use crate::helpers::{date_ago, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_and_a_fever_declaration_colour_a_person_with_reasons() {
    let app = spawn_app().await;
    let c = app.citizen("440106", 1).await;
    let green = app.wait_colour(&c.person, "green").await;
    assert_eq!(green["reasons"], json!([]));
    assert_eq!(green["rule_set"], "000000@1");

    let r = app
        .http
        .post(format!("{}/v1/declarations", app.declaration))
        .bearer_auth(&c.token)
        .json(&json!({"current_region": "440106", "temperature": 38.4, "symptoms": ["cough"], "contact_with_case": false, "commitment": true}))
        .send()
        .await
        .expect("declare");
    assert_eq!(r.status(), 201);
    let yellow = app.wait_colour(&c.person, "yellow").await;
    assert_eq!(yellow["reasons"][0]["rule"], "fever-or-symptoms");
    assert!(
        yellow["reasons"][0]["en"]
            .as_str()
            .expect("en")
            .contains(&date_ago(0))
    );
    assert!(yellow["version"].as_i64() > green["version"].as_i64());
    assert_eq!(
        yellow["valid_until"].as_str().map(|v| v.len() > 10),
        Some(true)
    );

    // What the citizen reads is the same status.
    let me: serde_json::Value = app
        .get("/v1/status/me", &c.token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["colour"], "yellow");
    assert_eq!(me["requirements"][0]["rule"], "fever-or-symptoms");

    // The status document scoring wrote is what rendering and verification read (through the one reader they
    // use): the same colour, variant, version, times.
    let read = app
        .as_readers_see_it(&c.person)
        .await
        .expect("a status document");
    let expected: hc_platform::status_document::CurrentStatus =
        serde_json::from_value(yellow.clone()).expect("the view holds every field readers need");
    assert_eq!(read, expected);
    assert_eq!(read.colour, hc_domain::Colour::Yellow);
    assert_eq!(read.version, yellow["version"].as_i64().expect("version"));
    assert_eq!(read.variant, "standard");

    // Every change was announced.
    let key = format!(
        "{}{}",
        app.redis.prefix,
        hc_platform::outbox::stream_key("status.changed")
    );
    let (app, key, c) = (&app, &key, &c);
    let announced = eventually(
        WAIT,
        "fewer than two status changes were announced",
        || async move {
            let reply: redis::streams::StreamRangeReply =
                redis::AsyncCommands::xrange_all(&mut app.store.conn(), key)
                    .await
                    .expect("xrange");
            let announced = reply
                .ids
                .iter()
                .flat_map(|e| {
                    let payload: String = e.get("payload").unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(&payload).expect("json");
                    v["changes"].as_array().cloned().unwrap_or_default()
                })
                .filter(|c2| c2["person_id"] == c.person.as_str())
                .map(|c2| c2["colour"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>();
            (announced.len() >= 2).then_some(announced)
        },
    )
    .await;
    assert_eq!(announced, ["green", "yellow"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_read_needs_a_citizen_token_and_an_unknown_person_has_none() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/v1/status/me"))
        .send()
        .await
        .expect("get");
    crate::helpers::problem(r, reqwest::StatusCode::UNAUTHORIZED).await;
    let official = app.official(&["person:read"], None).await;
    let r = app.get("/v1/status/me", &official).await;
    crate::helpers::problem(r, reqwest::StatusCode::FORBIDDEN).await;
}

/// The naive profile's status read: computed afresh from the facts in PostgreSQL every time, Redis not consulted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_naive_profile_every_status_read_computes_the_colour_from_postgresql() {
    let app = crate::helpers::spawn_app_with(|b| {
        b.set_override("scoring.recompute_on_read", true)
            .expect("override")
    })
    .await;
    let c = app.citizen("440106", 3).await;
    app.wait_colour(&c.person, "green").await;
    let person: uuid::Uuid = c.person.parse().expect("uuid");
    let evaluated = || async {
        app.pool
            .get()
            .await
            .expect("db")
            .query_one(
                "SELECT evaluated_at FROM status WHERE person_id = $1",
                &[&person],
            )
            .await
            .expect("status")
            .get::<_, chrono::DateTime<chrono::Utc>>(0)
    };
    let before = evaluated().await;
    redis::cmd("DEL")
        .arg(format!(
            "{}{}",
            app.redis.prefix,
            hc_platform::store::status_key(c.person.parse().expect("a person id"))
        ))
        .query_async::<()>(&mut app.store.conn())
        .await
        .expect("del");
    let r = app.get("/v1/status/me", &c.token).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["colour"], "green");
    assert!(evaluated().await > before, "evaluated again for the read");
}

/// Hangzhou's rule through the event path: red for a close contact until 14 consecutive clean daily declarations;
/// the 14th turns it green.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_hangzhou_the_fourteenth_clean_declaration_turns_a_close_contact_green() {
    let app = spawn_app().await;
    let c = app.citizen("330102", 2).await;
    app.wait_colour(&c.person, "green").await;
    let cdc = app.official(&["import:cases"], None).await;
    app.import(
        &cdc,
        "cases",
        &[json!({"id_number": c.id_number, "status": "close_contact", "since": date_ago(20)})],
    )
    .await;
    app.wait_colour(&c.person, "red").await;
    // Declarations of the 13 days before today (as declaration would have announced them on each day).
    for ago in 1..=13 {
        let declared = DeclarationSubmitted {
            declaration_id: uuid::Uuid::new_v4(),
            person_id: c.person.parse().expect("a person id"),
            day: date_ago(ago).parse().expect("a day"),
            current_region: "330102".into(),
            fever: false,
            symptoms: Vec::new(),
            contact_with_case: false,
            contact_date: None,
            travelled_regions: Vec::new(),
            supersedes: None,
        };
        app.inject(DeclarationSubmitted::STREAM, declared.encode())
            .await;
    }
    let red = app
        .wait_status(&c.person, |s| {
            s["requirements"][0]["en"]
                .as_str()
                .is_some_and(|t| t.contains("13 so far"))
        })
        .await;
    assert_eq!(red["colour"], "red");
    // Today's, through the real declaration service.
    let r = app
        .http
        .post(format!("{}/v1/declarations", app.declaration))
        .bearer_auth(&c.token)
        .json(&json!({"current_region": "330102", "temperature": 36.5, "symptoms": [], "contact_with_case": false, "commitment": true}))
        .send()
        .await
        .expect("declare");
    assert_eq!(r.status(), 201);
    app.wait_colour(&c.person, "green").await;
}

/// A malformed event (an older publisher's format, a bug) must not block every later one: it goes to the
/// dead-letter stream with its reason, and the next event is handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_is_dead_lettered_and_the_stream_goes_on() {
    let app = spawn_app().await;
    let c = app.citizen("440106", 3).await;
    app.wait_colour(&c.person, "green").await;
    // Every way an event can be the wrong shape is malformed, not a failure to retry: before the one decoder, a
    // bad base64 string or a length mismatch was retried for ever, and every later event waited behind it.
    let one = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let row = json!({"sample_time": crate::helpers::days_ago(1), "positive": true, "lab": "lab-1"});
    let common = |extra: serde_json::Value| {
        let mut e = json!({"kind": "nat-results", "client_id": "lab", "batch_id": "b", "people_count": 1,
                           "people": one, "facts": [row]});
        for (k, v) in extra.as_object().expect("object") {
            e[k] = v.clone();
        }
        e
    };
    let broken = [
        json!({"kind": "nat-results", "people_count": 1}),
        common(json!({"people": "not base64!"})),
        common(json!({"people": base64::engine::general_purpose::STANDARD.encode([7u8; 33])})),
        common(json!({"facts": [row, row]})),
        common(json!({"facts": [{"sample_time": "yesterday"}]})),
        common(json!({"kind": "vaccinations"})),
    ];
    for event in &broken {
        app.inject("facts.imported", event.clone()).await;
    }
    let lab = app.official(&["import:nat"], None).await;
    app.import(
        &lab,
        "nat-results",
        &[json!({"id_number": c.id_number, "sample_time": crate::helpers::days_ago(1), "result": "positive", "lab": "lab-1"})],
    )
    .await;
    app.wait_colour(&c.person, "red").await;
    let key = format!(
        "{}{}:dead",
        app.redis.prefix,
        hc_platform::outbox::stream_key("facts.imported")
    );
    let dead: redis::streams::StreamRangeReply =
        redis::AsyncCommands::xrange_all(&mut app.store.conn(), &key)
            .await
            .expect("xrange");
    assert_eq!(dead.ids.len(), broken.len());
    let reasons: Vec<String> = dead
        .ids
        .iter()
        .map(|e| e.get("reason").expect("reason"))
        .collect();
    for expected in [
        "missing field",
        "not base64",
        "32-byte",
        "differ in length",
        "facts:",
        "unknown fact kind",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_finds_due_statuses_through_an_index_instead_of_reading_every_status() {
    let app = spawn_app_with(|b| {
        b.set_override("scoring.scheduler_enabled", false)
            .expect("override")
    })
    .await;
    let db = app.pool.get().await.expect("db");
    // The tables are tiny here, where a scan is cheapest: forbid it, and an index must be there to answer.
    db.batch_execute("SET enable_seqscan = off")
        .await
        .expect("set");
    let plan: Vec<String> = db
        .query(
            &format!("EXPLAIN {}", scoring::scheduler::DUE_STATUSES),
            &[&50_000_i64],
        )
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("status_recheck_idx"), "{plan}");
}

/// Scoring used to upsert a case's end date from any import, so a case row sent again under a new batch could end a
/// red person's case unseen. Now an import keeps the fact as it is, and only a correction changes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_sent_again_in_another_batch_changes_nothing_and_a_correction_does() {
    let app = spawn_app().await;
    let c = app.citizen("440106", 21).await;
    let marker = app.citizen("440106", 22).await;
    let health = app.official(&["import:cases", "import:nat"], None).await;
    let case = json!({"id_number": c.id_number, "status": "confirmed", "since": date_ago(3)});
    app.import(&health, "cases", std::slice::from_ref(&case))
        .await;
    app.wait_colour(&c.person, "red").await;

    let mut ended = case.clone();
    ended["until"] = json!(date_ago(1));
    app.import(&health, "cases", &[ended]).await;
    // Once a later import has reached scoring, the one before it has too.
    app.import(
        &health,
        "nat-results",
        &[json!({"id_number": marker.id_number, "sample_time": crate::helpers::days_ago(1), "result": "positive", "lab": "lab-1"})],
    )
    .await;
    app.wait_colour(&marker.person, "red").await;
    let until = || async {
        app.pool
            .get()
            .await
            .expect("db")
            .query_one("SELECT until::text FROM f_cases", &[])
            .await
            .expect("case")
            .get::<_, Option<String>>(0)
    };
    assert_eq!(until().await, None, "the import did not end the case");
    app.wait_colour(&c.person, "red").await;

    let r = app
        .http
        .post(format!("{}/v1/facts/corrections", app.declaration))
        .bearer_auth(&health)
        .json(&json!({"kind": "cases", "id_number": c.id_number, "status": "confirmed", "since": date_ago(3),
                      "until": date_ago(1), "reason": "discharged from hospital"}))
        .send()
        .await
        .expect("correction");
    assert_eq!(r.status(), 200);
    eventually(WAIT, "the correction reached scoring", || async {
        (until().await == Some(date_ago(1))).then_some(())
    })
    .await;
}

/// A Redis that comes back empty has lost every status document; scoring writes them all again from PostgreSQL
/// (scoring::refill), so that gates reading a status by ID number do not deny everyone "no status" until their next
/// change. Here the documents and the record of the Redis they were written to are deleted, as an empty restart
/// would leave them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_documents_lost_with_redis_are_written_again() {
    // Without the scheduler, whose rechecks also write documents: only the refill can bring this one back.
    let app = spawn_app_with(|b| {
        b.set_override("scoring.scheduler_enabled", false)
            .expect("override")
    })
    .await;
    let c = app.citizen("440106", 1).await;
    let green = app.wait_colour(&c.person, "green").await;
    let store = app.prefixed();
    let person: uuid::Uuid = c.person.parse().expect("person id");
    redis::cmd("DEL")
        .arg(hc_platform::status_document::key(&store, person))
        .arg(store.key("status:documents-written-for"))
        .query_async::<()>(&mut store.conn())
        .await
        .expect("del");
    assert!(app.cached(&c.person).await.is_none());
    let again = app.wait_colour(&c.person, "green").await;
    assert_eq!(again["version"], green["version"]);
}

/// After a Redis restart the relays publish again what the restart may have lost, most of it handled already: scoring
/// skips an event it handled to the end before (by its event id) instead of recolouring its people again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_handled_before_is_skipped_when_it_comes_again() {
    let app = spawn_app().await;
    let c = app.citizen("440106", 1).await;
    app.wait_colour(&c.person, "green").await;
    let declared = DeclarationSubmitted {
        declaration_id: uuid::Uuid::new_v4(),
        person_id: c.person.parse().expect("a person id"),
        day: date_ago(0).parse().expect("a day"),
        current_region: "440106".into(),
        fever: true,
        symptoms: Vec::new(),
        contact_with_case: false,
        contact_date: None,
        travelled_regions: Vec::new(),
        supersedes: None,
    };
    app.inject_as(
        DeclarationSubmitted::STREAM,
        "declaration:7",
        declared.encode(),
    )
    .await;
    app.wait_colour(&c.person, "yellow").await;
    let skipped = || async {
        hc_platform::testing::metric(
            &app.http,
            &app.address,
            "scoring_events_already_handled_total",
            "",
        )
        .await
    };
    // The counter is the process's, shared with the tests running beside this one: count from here.
    let before = skipped().await;
    app.inject_as(
        DeclarationSubmitted::STREAM,
        "declaration:7",
        declared.encode(),
    )
    .await;
    eventually(WAIT, "the replayed event skipped", || async {
        (skipped().await > before).then_some(())
    })
    .await;
}

/// A replay or a redelivery can bring a person's older declaration of the day after a newer one: the newer one (by the
/// publisher's outbox id) stays in force, instead of whichever came last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_declaration_arriving_late_does_not_replace_the_newer() {
    let app = spawn_app().await;
    let c = app.citizen("440106", 1).await;
    app.wait_colour(&c.person, "green").await;
    let declared = |fever: bool| DeclarationSubmitted {
        declaration_id: uuid::Uuid::new_v4(),
        person_id: c.person.parse().expect("a person id"),
        day: date_ago(0).parse().expect("a day"),
        current_region: "440106".into(),
        fever,
        symptoms: Vec::new(),
        contact_with_case: false,
        contact_date: None,
        travelled_regions: Vec::new(),
        supersedes: None,
    };
    // The newer (outbox id 20) says fever; the older (10), handled after it, said none.
    let newer = declared(true);
    app.inject_as(
        DeclarationSubmitted::STREAM,
        "declaration:20",
        newer.encode(),
    )
    .await;
    app.wait_colour(&c.person, "yellow").await;
    app.inject_as(
        DeclarationSubmitted::STREAM,
        "declaration:10",
        declared(false).encode(),
    )
    .await;
    let db = app.pool.get().await.expect("db");
    eventually(WAIT, "the older declaration handled", || async {
        let handled: i64 = db
            .query_one(
                "SELECT count(*) FROM handled_events WHERE event_id = 'declaration:10'",
                &[],
            )
            .await
            .expect("count")
            .get(0);
        (handled == 1).then_some(())
    })
    .await;
    let kept: uuid::Uuid = db
        .query_one("SELECT declaration_id FROM f_declarations", &[])
        .await
        .expect("the day's declaration")
        .get(0);
    assert_eq!(kept, newer.declaration_id);
    assert_eq!(
        app.cached(&c.person).await.expect("status")["colour"],
        "yellow"
    );
}
