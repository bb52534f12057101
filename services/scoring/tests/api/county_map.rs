//! The five-colour county map: derived from imported facts by the published rules, followed by the risk and the
//! colours, overridden only by an audited official action; the indices computed from counts served beside them.

use hc_platform::testing::{WAIT, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, date_ago, days_ago, nth_id, problem, spawn_app_with};

/// Days counted in China time move at its midnight (16:00 UTC): a test that counts one day waits out the two
/// minutes around it.
async fn away_from_china_midnight() {
    let now = chrono::Utc::now();
    let midnight = hc_domain::china_time::next_midnight(now);
    let to_midnight = midnight - now;
    if to_midnight < chrono::Duration::minutes(1) {
        tokio::time::sleep(
            (to_midnight + chrono::Duration::minutes(1))
                .to_std()
                .expect("positive"),
        )
        .await;
    } else if to_midnight > chrono::Duration::hours(24) - chrono::Duration::minutes(1) {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

/// Levels recomputed 50 ms after an import, indices every `interval_ms`.
async fn county_map_app(interval_ms: i64) -> TestApp {
    spawn_app_with(|b| {
        b.set_override("scoring.county_map.after_import_ms", 50)
            .and_then(|b| b.set_override("scoring.county_map.interval_ms", interval_ms))
            .expect("settings")
    })
    .await
}

impl TestApp {
    /// The map of Zhejiang with its ETag.
    async fn zhejiang(&self) -> (Value, String) {
        self.province("330000").await
    }

    async fn province(&self, code: &str) -> (Value, String) {
        let r = (self
            .http
            .get(self.url(&format!("/v1/map?province={code}")))
            .send())
        .await
        .expect("map");
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
        (r.json().await.expect("json"), etag)
    }

    /// Waits until Zhejiang's map shows `county` as `ok` accepts, and returns the county.
    async fn wait_county(&self, county: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let ok = &ok;
        eventually(WAIT, format!("{county} never matched"), || async move {
            let (map, _) = self.zhejiang().await;
            let c = map["counties"]
                .as_array()
                .expect("counties")
                .iter()
                .find(|c| c["region"] == county)
                .expect("the county is on the map")
                .clone();
            ok(&c).then_some(c)
        })
        .await
    }

    async fn detail(&self, county: &str) -> Value {
        let r = (self
            .http
            .get(self.url(&format!("/v1/map/counties/{county}")))
            .send())
        .await
        .expect("county");
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_in_a_county_turn_it_orange_its_visitors_red_and_only_an_audited_override_changes_that()
 {
    let _turn = crate::risk::MAP_RENDERS.lock().await;
    let app = county_map_app(60_000).await;
    let visitor = app.citizen("440106", 1).await;
    app.wait_colour(&visitor.person, "green").await;
    let carrier = app.official(&["import:visits"], None).await;
    app.import(
        &carrier,
        "visits",
        &[json!({"id_number": visitor.id_number, "region": "330106", "first_seen": days_ago(3), "last_seen": days_ago(2), "source": "carrier"})],
    )
    .await;
    let (before, _) = app.zhejiang().await;
    assert_eq!(before["counties"].as_array().expect("counties").len(), 90);
    assert!(
        before["counties"]
            .as_array()
            .expect("counties")
            .iter()
            .all(|c| c["level"] == "green")
    );

    // Ten cases reported in 西湖区 ten days ago, of people not registered here: steady, so orange, not red.
    let health = app.official(&["import:cases"], None).await;
    let cases: Vec<Value> = (0..10)
        .map(|i| json!({"id_number": nth_id("330106", 100 + i), "status": "confirmed", "since": date_ago(10), "region": "330106"}))
        .collect();
    app.import(&health, "cases", &cases).await;
    let county = app.wait_county("330106", |c| c["level"] == "orange").await;
    assert_eq!(county["risk"], "high");
    assert_eq!(county["derived"], "orange");
    assert_eq!(county["reasons"][0]["rule"], "orange-cases");
    assert_eq!(
        county["reasons"][0]["en"],
        "10 cases in the last 14 days (at least 10)"
    );
    assert_eq!(county["name"], "西湖区");
    assert_eq!(county["prefecture_name"], "杭州市");
    // The level is the risk the colour rules read: whoever was there in the window turns red.
    let red = app.wait_colour(&visitor.person, "red").await;
    assert_eq!(red["reasons"][0]["rule"], "visit-high");
    let set_by: String = (app.pool.get().await.expect("db"))
        .query_one(
            "SELECT updated_by FROM region_risk WHERE region = '330106' ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .expect("risk row")
        .get(0);
    assert_eq!(set_by, "county-map");
    // Where the map sets the risk, an official changes a county's level through an override only.
    let official = app.official(&["risk:write"], Some("330100")).await;
    let r = app
        .put_json(
            "/v1/regions/330106/risk",
            &official,
            &json!({"level": "low"}),
        )
        .await;
    assert_eq!(problem(r, StatusCode::CONFLICT).await["field"], "code");

    // Cached: the same ETag answers 304.
    let (_, etag) = app.zhejiang().await;
    let r = (app
        .http
        .get(app.url("/v1/map?province=330000"))
        .header("if-none-match", &etag)
        .send())
    .await
    .expect("map");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // An override: only with risk:write over the county, with a reason, audited; the colours follow.
    let hangzhou = app.official(&["risk:write"], Some("330100")).await;
    let xian = app.official(&["risk:write"], Some("610000")).await;
    let path = "/v1/map/counties/330106/override";
    let body =
        json!({"level": "green", "reason": "cluster closed: every contact tested negative twice"});
    problem(
        app.put_json(path, &xian, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let short = json!({"level": "green", "reason": "ok"});
    let p = problem(
        app.put_json(path, &hangzhou, &short).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "reason");
    let far = json!({"level": "green", "reason": "cluster closed: every contact tested", "until": "2099-01-01T00:00:00Z"});
    let p = problem(
        app.put_json(path, &hangzhou, &far).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "until");
    let p = problem(
        app.put_json(
            path,
            &hangzhou,
            &json!({"level": "purple", "reason": "cluster closed: every contact tested"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "level");
    let r = app.put_json(path, &hangzhou, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let county = app.wait_county("330106", |c| c["level"] == "green").await;
    assert_eq!(county["derived"], "orange");
    assert_eq!(county["overridden"], true);
    assert_eq!(county["reasons"][0]["rule"], "override");
    assert!(
        !county.to_string().contains("twice"),
        "the official's words are not public: {county}"
    );
    app.wait_colour(&visitor.person, "green").await;
    let audited: i64 = (app.pool.get().await.expect("db"))
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'county_map.override' AND reason LIKE '330106 green: cluster closed%'",
            &[],
        )
        .await
        .expect("audit")
        .get(0);
    assert_eq!(audited, 1);

    // Lifted: the rules' level again; a second lift finds nothing.
    let lift = "/v1/map/counties/330106/override/lift";
    let reason = json!({"reason": "new cases found in the cluster"});
    assert_eq!(
        app.post_json(lift, &hangzhou, &reason).await.status(),
        StatusCode::NO_CONTENT
    );
    app.wait_county("330106", |c| {
        c["level"] == "orange" && c["overridden"] == false
    })
    .await;
    problem(
        app.post_json(lift, &hangzhou, &reason).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    app.wait_colour(&visitor.person, "red").await;

    // The county's history, newest first, with what the rules read.
    let detail = app.detail("330106").await;
    let levels: Vec<&str> = detail["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["level"].as_str().expect("level"))
        .collect();
    assert_eq!(levels, ["orange", "green", "orange"]);
    let overridden: Vec<&Value> = (detail["history"].as_array().expect("history").iter())
        .map(|h| &h["overridden"])
        .collect();
    assert_eq!(
        overridden,
        [false, true, false],
        "only the override's row is marked"
    );
    assert_eq!(detail["history"][2]["inputs"]["cases_14d"], 10);
    assert_eq!(detail["history"][2]["inputs"]["cases_prior_7d"], 10);

    // Only a county and a province are accepted where they are meant.
    let r = (app.http.get(app.url("/v1/map/counties/330100")).send())
        .await
        .expect("get");
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "code"
    );
    let r = (app.http.get(app.url("/v1/map?province=330100")).send())
        .await
        .expect("get");
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "province"
    );
    let rules: Value = (app.http.get(app.url("/v1/map/rules")).send())
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(rules["orange_cases"], 10);
    assert_eq!(rules["sets_risk_in"], json!(["330000"]));

    // Guangdong has not adopted the map: a case there colours the county on the map and sets no risk.
    app.import(&health, "cases", &[json!({"id_number": nth_id("440106", 100), "status": "confirmed", "since": date_ago(1), "region": "440106"})]).await;
    eventually(
        WAIT,
        "440106 never turned yellow on Guangdong's map",
        || async {
            let (map, _) = app.province("440000").await;
            map["counties"]
                .as_array()
                .expect("counties")
                .iter()
                .any(|c| c["region"] == "440106" && c["level"] == "yellow")
                .then_some(())
        },
    )
    .await;
    let risks: i64 = (app.pool.get().await.expect("db"))
        .query_one(
            "SELECT count(*) FROM region_risk WHERE region = '440106'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(risks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indices_are_computed_from_the_counts_served_beside_them() {
    let _turn = crate::risk::MAP_RENDERS.lock().await;
    away_from_china_midnight().await;
    let app = county_map_app(300).await;
    // Two residents of 西湖区 and a visitor from Guangzhou.
    let quarantined = app.citizen("330106", 1).await;
    let traveller = app.citizen("330106", 2).await;
    let visitor = app.citizen("440106", 3).await;
    for c in [&quarantined, &traveller, &visitor] {
        app.wait_colour(&c.person, "green").await;
    }
    let now = chrono::Utc::now();
    let (from, to) = (
        days_ago(0),
        (now - chrono::Duration::seconds(30)).to_rfc3339(),
    );
    let visit = |c: &crate::helpers::Citizen, region: &str, source: &str| json!({"id_number": c.id_number, "region": region, "first_seen": from, "last_seen": to, "source": source});
    let carrier = app.official(&["import:visits"], None).await;
    app.import(
        &carrier,
        "visits",
        &[
            visit(&visitor, "330106", "carrier"),
            visit(&visitor, "330106", "venue"),
            visit(&traveller, "440106", "carrier"),
        ],
    )
    .await;
    let lab = app.official(&["import:nat"], None).await;
    app.import(&lab, "nat-results", &[json!({"id_number": quarantined.id_number, "sample_time": to, "result": "negative", "lab": "lab-1"})]).await;
    let health = app.official(&["import:cases"], None).await;
    app.import(&health, "cases", &[json!({"id_number": quarantined.id_number, "status": "close_contact", "since": date_ago(1)})]).await;
    // Hangzhou's rules make a close contact red.
    app.wait_colour(&quarantined.person, "red").await;

    let today = date_ago(0);
    let expected = json!({
        "residents": 2, "carrier_seen": 1, "carrier_checked": 1, "quarantined": 1, "quarantined_declared": 0,
        "contacts": 1, "contacts_tested": 1, "checkins": 1, "visitors_in": 1, "residents_out": 1,
        "with_status": 2, "green": 1,
    });
    let day = eventually(WAIT, "the indices never showed the day's counts", || {
        let (app, today, expected) = (&app, &today, &expected);
        async move {
            let detail = app.detail("330106").await;
            detail["indices"]
                .as_array()
                .expect("indices")
                .iter()
                .find(|d| d["day"] == *today && d["inputs"] == *expected)
                .cloned()
        }
    })
    .await;
    // Control: (1/1 checked + 0/1 declared + 1/1 tested) / 3. Flow: (1 check-in / 2 residents / 1.0 + min(1,
    // 2 travellers / 2 / 0.2) + 1/2 green) / 3.
    assert_eq!(day["control"], 66.7);
    assert_eq!(day["flow"], 66.7);
    // The map carries the day too, for its small charts; a contact listed makes the county blue.
    let county = app
        .wait_county("330106", |c| {
            c["indices"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["day"] == *today && d["control"] == 66.7))
        })
        .await;
    assert_eq!(county["level"], "blue");
    assert_eq!(county["reasons"][0]["rule"], "blue-contacts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_is_rendered_once_per_change_and_served_from_memory() {
    let _turn = crate::risk::MAP_RENDERS.lock().await;
    let app = county_map_app(60_000).await;
    let renders = || {
        hc_platform::testing::metric(
            &app.http,
            &app.address,
            "scoring_county_map_renders_total",
            "",
        )
    };
    let before = renders().await;
    let (first, etag) = app.zhejiang().await;
    for _ in 0..20 {
        let (again, same) = app.zhejiang().await;
        assert_eq!((&again, &same), (&first, &etag));
    }
    assert_eq!(
        renders().await - before,
        1.0,
        "twenty-one reads, one render"
    );

    // A change moves the ETag and costs one render per generation served.
    let health = app.official(&["import:cases"], None).await;
    app.import(&health, "cases", &[json!({"id_number": nth_id("330782", 1), "status": "confirmed", "since": date_ago(1), "region": "330782"})]).await;
    let served = std::sync::Mutex::new(std::collections::BTreeSet::from([etag.clone()]));
    eventually(WAIT, "330782 never turned yellow", || {
        let (app, served) = (&app, &served);
        async move {
            let (map, etag) = app.zhejiang().await;
            served.lock().expect("etags").insert(etag);
            map["counties"]
                .as_array()
                .expect("counties")
                .iter()
                .any(|c| c["region"] == "330782" && c["level"] == "yellow")
                .then_some(())
        }
    })
    .await;
    let served = served.into_inner().expect("etags");
    assert!(served.len() >= 2, "the ETag did not move");
    assert_eq!(
        renders().await - before,
        served.len() as f64,
        "one render per generation served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_keeps_its_time_under_a_stream_of_imports_and_sets_right_a_risk_it_did_not_write()
 {
    let _turn = crate::risk::MAP_RENDERS.lock().await;
    away_from_china_midnight().await;
    let app = county_map_app(500).await;
    // A county of Zhejiang at high risk by a row the map did not write (an official's, from before the map).
    (app.pool.get().await.expect("db"))
        .execute(
            "INSERT INTO region_risk (region, level, effective_from, updated_by) VALUES ('330102', 'high', now(), 'official')",
            &[],
        )
        .await
        .expect("risk row");
    let visitor = app.citizen("440106", 5).await;
    let carrier = app.official(&["import:visits"], None).await;
    // An import every 200 ms, each waking the levels' round: the indices' rounds (every 500 ms) must still come.
    let importer = async {
        for n in 0..100i64 {
            let seen = (chrono::Utc::now() - chrono::Duration::seconds(30 + n)).to_rfc3339();
            app.import(
                &carrier,
                "visits",
                &[json!({"id_number": visitor.id_number, "region": "330106", "first_seen": seen, "last_seen": seen, "source": "carrier"})],
            )
            .await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    let today = date_ago(0);
    let indexed = eventually(
        WAIT,
        "no index was computed while imports kept coming",
        || {
            let (app, today) = (&app, &today);
            async move {
                let detail = app.detail("330106").await;
                (detail["indices"].as_array().expect("indices").iter())
                    .any(|d| d["day"] == *today && d["inputs"]["carrier_seen"] == 1)
                    .then_some(())
            }
        },
    );
    tokio::select! {
        () = importer => panic!("the imports ended before any index was computed"),
        () = indexed => {}
    }
    let (level, by): (String, String) = eventually(WAIT, "330102's risk was never set right", || async {
        let row = (app.pool.get().await.expect("db"))
            .query_one(
                "SELECT level, updated_by FROM region_risk WHERE region = '330102' ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await
            .expect("risk");
        let (level, by): (String, String) = (row.get(0), row.get(1));
        (by == "county-map").then_some((level, by))
    })
    .await;
    assert_eq!((level.as_str(), by.as_str()), ("low", "county-map"));
}
