use hc_platform::events::{CaseFact, FactsImported, ImportedFacts};
use hc_platform::privacy::BlindIndex;
use hc_platform::testing::{WAIT, eventually};
use serde_json::{Value, json};

use crate::helpers::{TestApp, open_policy, problem, spawn_app};

async fn venue_code(app: &TestApp, venue: &str) -> String {
    let r = app
        .http
        .get(app.url(&format!("/v1/venues/{venue}/code?format=payload")))
        .bearer_auth(app.admin().await)
        .send()
        .await
        .expect("code");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["code"].as_str().expect("code").to_owned()
}

async fn check_in(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    check_in_keyed(app, token, code, None).await
}

/// A check-in with an `Idempotency-Key`, when `key` has one.
async fn check_in_keyed(
    app: &TestApp,
    token: &str,
    code: &str,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app.http.post(app.url("/v1/checkins")).bearer_auth(token);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request
        .json(&json!({"venue_code": code}))
        .send()
        .await
        .expect("checkin")
}

/// The events on a stream of this test's prefix, waiting (up to `WAIT`) for at least one.
async fn stream(app: &TestApp, name: &str) -> Vec<Value> {
    let key = format!(
        "{}{}",
        app.redis.prefix,
        hc_platform::outbox::stream_key(name)
    );
    let key = &key;
    eventually(WAIT, format!("no events on {name}"), || async move {
        let entries: redis::streams::StreamRangeReply =
            redis::AsyncCommands::xrange_all(&mut app.store.conn(), key)
                .await
                .expect("xrange");
        let payloads: Vec<Value> = entries
            .ids
            .iter()
            .filter_map(|e| e.get::<String>("payload"))
            .filter_map(|p| serde_json::from_str(&p).ok())
            .collect();
        (!payloads.is_empty()).then_some(payloads)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkin_is_recorded_and_reaches_scoring_as_a_visit_to_the_venues_region() {
    let app = spawn_app().await;
    app.device_at("tianhe-mall", open_policy(), &["verify"])
        .await;
    let code = venue_code(&app, "tianhe-mall").await;
    let (person, token, id_number) = app.citizen(21).await;
    app.wait_registered(&person).await;
    let r = check_in(&app, &token, &code).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE kind = 'checkin'")
            .await,
        1
    );

    // The visit, as scoring receives it: replayed into scoring's own projection, it is a visit to Tianhe.
    let events = stream(&app, "facts.imported").await;
    let visit = events
        .iter()
        .find(|e| e["kind"] == "visits")
        .expect("a visits event");
    let scoring_db = hc_platform::db::pool(
        &app.settings.platform.database,
        &hc_platform::tls::Tls::system(),
        scoring::SCHEMA,
    )
    .expect("pool");
    scoring::prepare(&scoring_db).await.expect("scoring schema");
    let client = scoring_db.get().await.expect("db");
    let delivered = hc_platform::streams::Delivered {
        event_id: "verification:1".into(),
        payload: visit.clone(),
        traceparent: None,
    };
    scoring::projection::facts_imported(&client, &delivered)
        .await
        .expect("scoring takes it");
    let index = BlindIndex::from_secret(&app.blind_key.clone().into())
        .expect("key")
        .id_number(
            &hc_domain::IdNumber::parse(&id_number, chrono::Utc::now().date_naive()).expect("id"),
        );
    let row = client
        .query_one(
            "SELECT region, source FROM f_visits WHERE id_index = $1",
            &[&index],
        )
        .await
        .expect("a visit fact");
    assert_eq!(
        (row.get::<_, String>(0).as_str(), row.get::<_, &str>(1)),
        ("440106", "venue")
    );

    // A made-up venue code is refused.
    let forged = code.replace("tianhe-mall", "other-mall");
    problem(check_in(&app, &token, &forged).await, 422, "venue_code").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cotraveller_check_finds_a_case_in_the_same_hour_without_saying_who() {
    let app = spawn_app().await;
    app.device_at("noodle-shop", open_policy(), &["verify"])
        .await;
    app.device_at("book-shop", open_policy(), &["verify"]).await;
    let noodles = venue_code(&app, "noodle-shop").await;
    let books = venue_code(&app, "book-shop").await;
    let (me, my_token, _) = app.citizen(31).await;
    let (case, case_token, case_id) = app.citizen(32).await;
    let (elsewhere, elsewhere_token, _) = app.citizen(33).await;
    for p in [&me, &case, &elsewhere] {
        app.wait_registered(p).await;
    }
    assert_eq!(check_in(&app, &my_token, &noodles).await.status(), 201);
    assert_eq!(check_in(&app, &case_token, &noodles).await.status(), 201);
    assert_eq!(check_in(&app, &elsewhere_token, &books).await.status(), 201);

    // The case list arrives as declaration announces it.
    let index = BlindIndex::from_secret(&app.blind_key.clone().into())
        .expect("key")
        .id_number(
            &hc_domain::IdNumber::parse(&case_id, chrono::Utc::now().date_naive()).expect("id"),
        );
    let today = chrono::Utc::now().date_naive();
    let payload = FactsImported {
        client_id: "health-commission".into(),
        batch_id: "cases-1".into(),
        through_row: Some(1),
        correction: false,
        people: vec![index.to_vec()],
        facts: ImportedFacts::Cases(vec![CaseFact {
            status: "confirmed".into(),
            since: today,
            until: None,
            region: None,
        }]),
    }
    .encode();
    let key = format!(
        "{}{}",
        app.redis.prefix,
        hc_platform::outbox::stream_key(FactsImported::STREAM)
    );
    let _: String = redis::AsyncCommands::xadd(
        &mut app.store.conn(),
        key,
        "*",
        &[
            ("event_id", "declaration:test-1".to_owned()),
            ("payload", payload.to_string()),
        ],
    )
    .await
    .expect("xadd");
    let app = &app;
    eventually(
        WAIT,
        "the case list never reached verification",
        || async move { (app.count("SELECT count(*) FROM cases").await == 1).then_some(()) },
    )
    .await;

    let exposure = |token: String| {
        let app = &app;
        async move {
            let r = app
                .http
                .get(app.url("/v1/checkins/exposure"))
                .bearer_auth(token)
                .send()
                .await
                .expect("exposure");
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.expect("json")
        }
    };
    let my_token_again = my_token.clone();
    let mine = exposure(my_token).await;
    assert_eq!(mine["exposed"], true, "{mine}");
    assert_eq!(mine["exposures"][0]["venue_name"], "场所 noodle-shop");
    let text = mine.to_string();
    assert!(
        !text.contains(&case) && !text.contains(&case_id),
        "nobody is named: {text}"
    );
    assert_eq!(exposure(elsewhere_token).await["exposed"], false);

    // The check looks at the person's latest visits only (the self-join is bounded): after that many later
    // check-ins elsewhere, the shared hour at the noodle shop is beyond it.
    let visits = verification::EXPOSURE_VISITS;
    let me_id: uuid::Uuid = me.parse().expect("uuid");
    app.pool
        .get()
        .await
        .expect("db")
        .execute(
            "INSERT INTO scan_events (at, id, kind, venue_id, person_id, decision)
             SELECT now() + make_interval(secs => n / 1000.0), gen_random_uuid(), 'checkin', 'book-shop', $1, 'recorded'
             FROM generate_series(1, $2::bigint) AS n",
            &[&me_id, &visits],
        )
        .await
        .expect("later visits");
    assert_eq!(exposure(my_token_again).await["exposed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officials_read_who_was_at_a_venue_page_by_page_and_every_read_is_audited() {
    let app = spawn_app().await;
    app.device_at("hospital-a", open_policy(), &["verify"])
        .await;
    let code = venue_code(&app, "hospital-a").await;
    let mut people = Vec::new();
    for n in 41..44 {
        let (person, token, _) = app.citizen(n).await;
        app.wait_registered(&person).await;
        assert_eq!(check_in(&app, &token, &code).await.status(), 201);
        people.push(person);
    }
    let tracer = app.identity.official(&["trace:read"], Some("440100")).await;
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let from = stamp(chrono::Utc::now() - chrono::Duration::hours(1));
    let to = stamp(chrono::Utc::now() + chrono::Duration::hours(1));
    let visits = |token: &str, cursor: Option<String>| {
        let mut url = app.url(&format!(
            "/v1/venues/hospital-a/visits?from={from}&to={to}&reason=case-2022-001&limit=2"
        ));
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        app.http.get(url).bearer_auth(token).send()
    };
    let page = |cursor: Option<String>| visits(&tracer, cursor);
    let first: Value = page(None).await.expect("page").json().await.expect("json");
    assert_eq!(first["visits"].as_array().map(Vec::len), Some(2), "{first}");
    let cursor = first["next_cursor"].as_str().expect("more").to_owned();
    let second: Value = page(Some(cursor))
        .await
        .expect("page")
        .json()
        .await
        .expect("json");
    assert_eq!(second["visits"].as_array().map(Vec::len), Some(1));
    assert!(second["next_cursor"].is_null());
    let seen: Vec<String> = first["visits"]
        .as_array()
        .into_iter()
        .chain(second["visits"].as_array())
        .flatten()
        .map(|v| v["person_id"].as_str().expect("person").to_owned())
        .collect();
    assert_eq!(seen, people);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'trace.venue_visits'")
            .await,
        2
    );

    // Outside its region scope, or without the scope, nothing.
    let shenzhen = app.identity.official(&["trace:read"], Some("440300")).await;
    let r = visits(&shenzhen, None).await.expect("visits");
    assert_eq!(r.status(), 403);
    let verifier = app.identity.official(&["verify"], None).await;
    let r = visits(&verifier, None).await.expect("visits");
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_checkin_with_its_idempotency_key_is_recorded_once() {
    let app = spawn_app().await;
    app.device_at("cafe-a", open_policy(), &["verify"]).await;
    let code = venue_code(&app, "cafe-a").await;
    let (person, token, _) = app.citizen(61).await;
    app.wait_registered(&person).await;
    let send = |key: &'static str| check_in_keyed(&app, &token, &code, Some(key));
    let first: Value = send("tap-1").await.json().await.expect("json");
    let again = send("tap-1").await;
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.expect("json");
    assert_eq!(
        again["id"], first["id"],
        "the first check-in, answered again"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE kind = 'checkin'")
            .await,
        1
    );
    let other: Value = send("tap-2").await.json().await.expect("json");
    assert_ne!(other["id"], first["id"]);
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE kind = 'checkin'")
            .await,
        2
    );

    // Redis forgets the keys (restarted empty): PostgreSQL's claim still answers the first check-in.
    let forget = || async {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}idem:checkin:*", app.redis.prefix))
            .query_async(&mut app.store.conn())
            .await
            .expect("keys");
        assert!(!keys.is_empty(), "the answers remembered in Redis");
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut app.store.conn())
            .await
            .expect("del");
    };
    forget().await;
    let again = send("tap-1").await;
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again, first, "the first check-in, from PostgreSQL");
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE kind = 'checkin'")
            .await,
        2
    );

    // A key is remembered for a day: past it, the same key records a new check-in, and the sweep forgets old keys.
    forget().await;
    app.count("WITH aged AS (UPDATE checkin_keys SET at = at - interval '25 hours' RETURNING 1) SELECT count(*) FROM aged")
        .await;
    let later: Value = send("tap-1").await.json().await.expect("json");
    assert_ne!(later["id"], first["id"]);
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE kind = 'checkin'")
            .await,
        3
    );
    let client = app.pool.get().await.expect("db");
    verification::partitions::maintain(&client, 1, 28)
        .await
        .expect("maintain");
    assert_eq!(
        app.count("SELECT count(*) FROM checkin_keys").await,
        1,
        "tap-2 (aged) forgotten, tap-1 taken over"
    );
}

/// A repeat that arrives while the first try is still being recorded (its key claimed, no answer yet) is told to come
/// back: 409 with `Retry-After`, recording nothing; once the claim is freed, the same key records the check-in. A
/// claim left pending by a try whose check-in is durable answers that check-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkin_whose_key_is_still_being_recorded_is_told_when_to_retry() {
    let app = spawn_app().await;
    app.device_at("cafe-p", open_policy(), &["verify"]).await;
    let code = venue_code(&app, "cafe-p").await;
    let (person, token, _) = app.citizen(62).await;
    app.wait_registered(&person).await;
    // What the first try's claim leaves in Redis until it answers.
    let claim = format!("{}idem:checkin:{person}:tap-p", app.redis.prefix);
    let claim_pending = || async {
        redis::cmd("SET")
            .arg(&claim)
            .arg("pending")
            .query_async::<()>(&mut app.store.conn())
            .await
            .expect("claim");
    };
    claim_pending().await;
    let send = || check_in_keyed(&app, &token, &code, Some("tap-p"));
    let busy = send().await;
    assert_eq!(busy.status(), 409);
    assert_eq!(
        busy.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..]),
        "told when to come back"
    );
    let problem: Value = busy.json().await.expect("json");
    assert_eq!(problem["type"], "/problems/in-progress");
    assert_eq!(problem["field"], "Idempotency-Key");
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE kind = 'checkin'")
            .await,
        0
    );
    redis::cmd("DEL")
        .arg(&claim)
        .query_async::<()>(&mut app.store.conn())
        .await
        .expect("free");
    let recorded = send().await;
    assert_eq!(recorded.status(), 201);
    let recorded: Value = recorded.json().await.expect("json");

    // A first try cut off after its check-in was durable leaves its claim pending: a retry gets that check-in.
    claim_pending().await;
    let again = send().await;
    assert_eq!(again.status(), 201, "the durable check-in, not a 409");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["id"], recorded["id"]);
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE kind = 'checkin'")
            .await,
        1
    );
}

/// Records of one key committed together (in one batch or in two racing ones) make one check-in: the claim in
/// PostgreSQL decides, whatever Redis's fast path let through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_of_a_key_committed_together_make_one_checkin() {
    use verification::scans::{Recorded, ScanLog, ScanRecord};
    let app = spawn_app().await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let (log, committer) = ScanLog::start(app.pool.clone(), &app.settings.service, cancel.clone());
    let person = uuid::Uuid::new_v4();
    let record = || ScanRecord {
        at: chrono::Utc::now(),
        id: uuid::Uuid::new_v4(),
        kind: "checkin",
        venue_id: "cafe-c".into(),
        client_id: None,
        person_id: Some(person),
        issuer: None,
        colour: None,
        decision: "recorded",
        reason: None,
        visit: None,
        idempotency_key: Some("race".into()),
    };
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (log, record) = (log.clone(), record());
        racing.spawn(async move { log.record(record).await.expect("recorded") });
    }
    let outcomes: Vec<Recorded> = racing.join_all().await;
    assert_eq!(
        outcomes.iter().filter(|o| **o == Recorded::New).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM scan_events WHERE kind = 'checkin'")
            .await,
        1
    );
    // Without a key, nothing is held back.
    let mut plain = record();
    plain.idempotency_key = None;
    assert_eq!(log.record(plain).await.expect("recorded"), Recorded::New);
    cancel.cancel();
    committer.await.expect("drained");
}

/// A person announced again (identity moved them to the certified holder's phone, with the holder's name) keeps the
/// link and takes the new masked name, which the ID-card path shows the guard; within one batch the last one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_announced_again_takes_the_new_masked_name() {
    let app = spawn_app().await;
    let person = uuid::Uuid::new_v4();
    let announce = |n: u32, name: &str| hc_platform::streams::Delivered {
        event_id: format!("identity:{n}"),
        payload: hc_platform::events::PersonRegistered {
            person_id: person,
            id_number_index: vec![7; 32],
            home_region: "440106".into(),
            masked_name: Some(name.into()),
            national_index: None,
        }
        .encode(),
        traceparent: None,
    };
    let masked = || async {
        let row = app.pool.get().await.expect("db");
        let row = row
            .query_one(
                "SELECT masked_name FROM persons WHERE person_id = $1",
                &[&person],
            )
            .await
            .expect("person");
        row.get::<_, Option<String>>(0)
    };
    verification::events::people_registered(app.pool.clone(), vec![announce(1, "吴*")])
        .await
        .expect("first");
    assert_eq!(masked().await.as_deref(), Some("吴*"));
    let batch = vec![announce(2, "吴**"), announce(3, "周**")];
    verification::events::people_registered(app.pool.clone(), batch)
        .await
        .expect("again, twice in one batch");
    assert_eq!(masked().await.as_deref(), Some("周**"));
}
