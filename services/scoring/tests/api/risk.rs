//! A region turning high recolours exactly the people seen there within the window, in PostgreSQL and Redis;
//! the public map follows with ETags.

use hc_platform::testing::{WAIT, eventually};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{days_ago, problem, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_turning_high_recolours_exactly_its_recent_visitors() {
    let app = spawn_app().await;
    let recent = app.citizen("440106", 10).await;
    let old = app.citizen("440106", 11).await;
    let elsewhere = app.citizen("440106", 12).await;
    let stranger = app.citizen("610113", 13).await;
    for c in [&recent, &old, &elsewhere, &stranger] {
        app.wait_colour(&c.person, "green").await;
    }
    let carrier = app.official(&["import:visits"], None).await;
    let visit = |id: &str, region: &str, ago: i64| json!({"id_number": id, "region": region, "first_seen": days_ago(ago + 1), "last_seen": days_ago(ago), "source": "carrier"});
    app.import(
        &carrier,
        "visits",
        &[
            visit(&recent.id_number, "610113", 3),
            visit(&old.id_number, "610113", 20),
            visit(&elsewhere.id_number, "610112", 2),
        ],
    )
    .await;
    // The import's event reaches scoring (nothing changes: no region is at risk yet).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = |c: &crate::helpers::Citizen| {
        let app = &app;
        let person = c.person.clone();
        async move {
            app.cached(&person).await.expect("status")["version"]
                .as_i64()
                .expect("version")
        }
    };
    let versions = [
        before(&old).await,
        before(&elsewhere).await,
        before(&stranger).await,
    ];

    let official = app.official(&["risk:write"], Some("610000")).await;
    let r = app
        .put_json(
            "/v1/regions/610113/risk",
            &official,
            &json!({"level": "high"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let red = app.wait_colour(&recent.person, "red").await;
    assert_eq!(red["reasons"][0]["rule"], "visit-high");
    assert!(
        red["reasons"][0]["en"]
            .as_str()
            .expect("en")
            .starts_with("visited 610113 (high risk) on ")
    );
    // Outside the window, another county, or a resident who was never seen there: untouched.
    let after = [
        before(&old).await,
        before(&elsewhere).await,
        before(&stranger).await,
    ];
    assert_eq!(versions, after);
    for c in [&old, &elsewhere, &stranger] {
        assert_eq!(
            app.cached(&c.person).await.expect("status")["colour"],
            "green"
        );
    }

    // The region's own client cannot set another province.
    let r = app
        .put_json(
            "/v1/regions/440106/risk",
            &official,
            &json!({"level": "high"}),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN).await;
    let r = app
        .put_json(
            "/v1/regions/610113/risk",
            &official,
            &json!({"level": "severe"}),
        )
        .await;
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "level"
    );

    // Back to low: green again.
    let r = app
        .put_json(
            "/v1/regions/610113/risk",
            &official,
            &json!({"level": "low"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_colour(&recent.person, "green").await;
}

/// The tests that fetch the public map take turns: the count of map renders is a counter of the metrics recorder,
/// which is one per process, so another test's render would be counted as this one's.
pub(crate) static MAP_RENDERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_map_is_cached_with_an_etag() {
    let _turn = MAP_RENDERS.lock().await;
    let app = spawn_app().await;
    let official = app.official(&["risk:write"], None).await;
    let r = app
        .put_json(
            "/v1/regions/610113/risk",
            &official,
            &json!({"level": "high"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = app
        .http
        .get(app.url("/v1/regions/risk"))
        .send()
        .await
        .expect("map");
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r
        .headers()
        .get("etag")
        .expect("etag")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(r.headers().get("cache-control").is_some());
    let map: serde_json::Value = r.json().await.expect("json");
    let regions = map["regions"].as_array().expect("regions");
    let colour_of = |code: &str| {
        regions
            .iter()
            .find(|e| e["region"] == code)
            .map(|e| e["map_colour"].clone())
    };
    assert_eq!(colour_of("610113"), Some(json!("red")));
    let level_of = |code: &str| {
        regions
            .iter()
            .find(|e| e["region"] == code)
            .map(|e| e["level"].clone())
    };
    assert_eq!(level_of("610113"), Some(json!("high")), "its own level");
    assert_eq!(
        level_of("610112"),
        Some(json!(null)),
        "coloured by its neighbour, no level of its own"
    );
    assert_eq!(colour_of("610112"), Some(json!("yellow")), "same city");
    assert_eq!(colour_of("610502"), Some(json!("blue")), "same province");
    assert_eq!(colour_of("440106"), None, "green is implied");
    let r = app
        .http
        .get(app.url("/v1/regions/risk"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("map");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    // Asked again and again, the map is rendered once per change of the levels, not per request.
    let renders = app.renders().await;
    for _ in 0..5 {
        let r = app
            .http
            .get(app.url("/v1/regions/risk"))
            .send()
            .await
            .expect("map");
        assert_eq!(r.headers()["etag"].to_str().expect("ascii"), etag);
    }
    assert_eq!(app.renders().await, renders);
    let r = app
        .put_json(
            "/v1/regions/610112/risk",
            &official,
            &json!({"level": "medium"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = app
        .http
        .get(app.url("/v1/regions/risk"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("map");
    assert_eq!(r.status(), StatusCode::OK, "a change gives a new ETag");
    assert_eq!(app.renders().await, renders + 1.0);
}

/// With one person per chunk, four visitors make a set-based recolouring (load_many, unlocked writes checked
/// against their read time) rather than the per-person locked one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_recolouring_takes_the_set_based_path_and_lands_everywhere() {
    let app = crate::helpers::spawn_app_with(|b| {
        b.set_override("scoring.recolour_chunk", 1)
            .and_then(|b| b.set_override("scoring.recolour_parallelism", 2))
            .expect("override")
    })
    .await;
    let mut people = Vec::new();
    for n in 0..4 {
        people.push(app.citizen("440106", 70 + n).await);
    }
    for c in &people {
        app.wait_colour(&c.person, "green").await;
    }
    let carrier = app.official(&["import:visits"], None).await;
    let rows: Vec<_> = people
        .iter()
        .map(|c| json!({"id_number": c.id_number, "region": "610113", "first_seen": days_ago(4), "last_seen": days_ago(3), "source": "carrier"}))
        .collect();
    app.import(&carrier, "visits", &rows).await;
    let official = app.official(&["risk:write"], None).await;
    let r = app
        .put_json(
            "/v1/regions/610113/risk",
            &official,
            &json!({"level": "medium"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for c in &people {
        let s = app.wait_colour(&c.person, "yellow").await;
        assert_eq!(s["reasons"][0]["rule"], "visit-medium");
    }
    let app = &app;
    eventually(
        WAIT,
        "the risk level was never marked applied once every chunk landed",
        || async move {
            let applied: bool = app
                .pool
                .get()
                .await
                .expect("db")
                .query_one(
                    "SELECT bool_and(recoloured_at IS NOT NULL) FROM region_risk WHERE region = '610113'",
                    &[],
                )
                .await
                .expect("row")
                .get(0);
            applied.then_some(())
        },
    )
    .await;
}

/// A set-based recolouring reads each person's fact digest, not the fact tables, and only while the digest is
/// as new as their facts. Two digests are tampered with to tell: one left current (so it is believed, wrong as it
/// is) and one whose facts moved on (so it is rebuilt from the fact tables, and written back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_recolouring_reads_digests_only_while_they_are_current() {
    // Without the scheduler: its own pass over the same risk change would run concurrently, find statuses evaluated
    // after its read, and take those people through the locked path, which reads the fact tables (rightly), and
    // the tampered digest would never be put to the test.
    let app = crate::helpers::spawn_app_with(|b| {
        b.set_override("scoring.recolour_chunk", 1)
            .and_then(|b| b.set_override("scoring.recolour_parallelism", 2))
            .and_then(|b| b.set_override("scoring.scheduler_enabled", false))
            .expect("override")
    })
    .await;
    let mut people = Vec::new();
    for n in 0..4 {
        people.push(app.citizen("440106", 90 + n).await);
    }
    let carrier = app.official(&["import:visits"], None).await;
    let rows: Vec<_> = people
        .iter()
        .map(|c| json!({"id_number": c.id_number, "region": "610113", "first_seen": days_ago(4), "last_seen": days_ago(3), "source": "carrier"}))
        .collect();
    app.import(&carrier, "visits", &rows).await;
    let db = app.pool.get().await.expect("db");
    // (digest, whether it is current); nothing while the registration has not reached scoring yet.
    let digest_of = |person: String| {
        let db = &db;
        async move {
            let person: uuid::Uuid = person.parse().expect("uuid");
            db.query_opt(
                "SELECT digest, digest_version = facts_version FROM subjects WHERE person_id = $1",
                &[&person],
            )
            .await
            .expect("subject")
            .map(|r| (r.get::<_, Option<String>>(0), r.get::<_, Option<bool>>(1)))
            .unwrap_or((None, None))
        }
    };
    // The import's own recolouring wrote every digest, with the visit in it.
    let (app, people, digest_of) = (&app, &people, &digest_of);
    eventually(
        WAIT,
        "the event's recolouring never wrote every digest",
        || async move {
            let mut current = true;
            for c in people {
                let (digest, fresh) = digest_of(c.person.clone()).await;
                current &= fresh == Some(true) && digest.is_some_and(|d| d.contains("610113"));
            }
            current.then_some(())
        },
    )
    .await;
    // A digest can be current before every event's recolouring is done (registrations come in batches, beside the
    // import's event): wait until scoring has applied and acknowledged them all, so that none lands after the
    // tampering below and marks the believed digest out of date.
    eventually(WAIT, "scoring never applied every event", || async move {
        let mut drained = true;
        for stream in ["person.registered", "facts.imported"] {
            let key = format!("{}events:{stream}", app.redis.prefix);
            let groups: redis::streams::StreamInfoGroupsReply =
                app.store.conn().xinfo_groups(&key).await.expect("xinfo");
            drained &= groups
                .groups
                .iter()
                .filter(|g| g.name == "scoring")
                .all(|g| g.pending == 0 && g.lag == Some(0));
        }
        drained.then_some(())
    })
    .await;
    let believed: uuid::Uuid = people[0].person.parse().expect("uuid");
    let moved_on: uuid::Uuid = people[1].person.parse().expect("uuid");
    db.execute(
        "UPDATE subjects SET digest = '{}' WHERE person_id = $1",
        &[&believed],
    )
    .await
    .expect("tamper");
    db.execute(
        "UPDATE subjects SET digest = '{}', facts_version = facts_version + 1 WHERE person_id = $1",
        &[&moved_on],
    )
    .await
    .expect("tamper");

    let official = app.official(&["risk:write"], None).await;
    let r = app
        .put_json(
            "/v1/regions/610113/risk",
            &official,
            &json!({"level": "medium"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for c in &people[1..] {
        app.wait_colour(&c.person, "yellow").await;
    }
    let (digest, fresh) = digest_of(people[1].person.clone()).await;
    assert_eq!(fresh, Some(true), "the stale digest was written back");
    assert!(digest.is_some_and(|d| d.contains("610113")));
    let green_since: i64 = db
        .query_one(
            "SELECT count(*) FROM status WHERE person_id = $1 AND colour = 'green'",
            &[&believed],
        )
        .await
        .expect("status")
        .get(0);
    assert_eq!(
        green_since, 1,
        "a current digest is what the set-based path reads"
    );
}

/// A change announced for later leaves the current level in force until then, and applies by itself when it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_risk_level_announced_for_later_applies_when_it_comes() {
    let _turn = MAP_RENDERS.lock().await;
    let app = spawn_app().await;
    let c = app.citizen("440106", 80).await;
    app.wait_colour(&c.person, "green").await;
    let carrier = app.official(&["import:visits"], None).await;
    app.import(
        &carrier,
        "visits",
        &[json!({"id_number": c.id_number, "region": "610113", "first_seen": days_ago(3), "last_seen": days_ago(2), "source": "carrier"})],
    )
    .await;
    let official = app.official(&["risk:write"], None).await;
    let r = app
        .put_json(
            "/v1/regions/610113/risk",
            &official,
            &json!({"level": "high"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_colour(&c.person, "red").await;
    let later = chrono::Utc::now() + chrono::Duration::seconds(2);
    let r = app
        .put_json(
            "/v1/regions/610113/risk",
            &official,
            &json!({"level": "low", "effective_from": later}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["recolouring"], "scheduled");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(
        app.cached(&c.person).await.expect("status")["colour"],
        "red",
        "still high until then"
    );
    let map: serde_json::Value = app
        .http
        .get(app.url("/v1/regions/risk"))
        .send()
        .await
        .expect("map")
        .json()
        .await
        .expect("json");
    assert!(
        map["regions"]
            .as_array()
            .expect("regions")
            .iter()
            .any(|e| e["region"] == "610113" && e["map_colour"] == "red")
    );
    app.wait_colour(&c.person, "green").await;
}
