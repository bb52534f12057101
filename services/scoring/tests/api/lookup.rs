//! Officials' audited look-up by ID number, and employers' colour-only view of the staff they listed.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{days_ago, nth_id, problem, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_lookup_is_audited_and_bounded_by_region() {
    let app = spawn_app().await;
    let c = app.citizen("440106", 50).await;
    app.wait_colour(&c.person, "green").await;
    let guangzhou = app.official(&["person:read"], Some("440100")).await;
    let r = app
        .post_json(
            "/v1/status/lookup",
            &guangzhou,
            &json!({"id_number": c.id_number, "reason": "case investigation 2022-031"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let found: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        (
            found["person_id"].as_str(),
            found["status"]["colour"].as_str()
        ),
        (Some(c.person.as_str()), Some("green"))
    );
    let xian = app.official(&["person:read"], Some("610100")).await;
    let r = app
        .post_json(
            "/v1/status/lookup",
            &xian,
            &json!({"id_number": c.id_number, "reason": "curiosity is not a reason"}),
        )
        .await;
    // The same answer as for nobody: a 403 would tell Xi'an that this person exists.
    let outside = problem(r, StatusCode::NOT_FOUND).await;
    let r = app
        .post_json(
            "/v1/status/lookup",
            &xian,
            &json!({"id_number": hc_platform::testing::valid_id_number("44010619900101123"), "reason": "curiosity is not a reason"}),
        )
        .await;
    assert_eq!(problem(r, StatusCode::NOT_FOUND).await, outside);
    let r = app
        .post_json(
            "/v1/status/lookup",
            &guangzhou,
            &json!({"id_number": "123", "reason": "case investigation"}),
        )
        .await;
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "id_number"
    );
    let rows = app
        .pool
        .get()
        .await
        .expect("db")
        .query(
            "SELECT outcome, reason FROM audit_log WHERE action = 'status.lookup' ORDER BY id",
            &[],
        )
        .await
        .expect("audit");
    let outcomes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(outcomes, ["read", "denied_region", "not_found"]);
    assert_eq!(rows[0].get::<_, String>(1), "case investigation 2022-031");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employer_sees_the_colours_only_of_listed_staff_who_accepted_it_and_every_one_is_audited()
 {
    let app = spawn_app().await;
    let listed_red = app.citizen("440106", 60).await;
    let listed_green = app.citizen("440106", 61).await;
    let not_listed = app.citizen("440106", 62).await;
    let lab = app.official(&["import:nat"], None).await;
    app.import(
        &lab,
        "nat-results",
        &[
            json!({"id_number": listed_red.id_number, "sample_time": days_ago(1), "result": "positive", "lab": "lab-1"}),
            json!({"id_number": not_listed.id_number, "sample_time": days_ago(1), "result": "positive", "lab": "lab-1"}),
        ],
    )
    .await;
    app.wait_colour(&listed_red.person, "red").await;
    app.wait_colour(&listed_green.person, "green").await;
    let employer = app.official(&["staff:read"], Some("440100")).await;
    let unregistered = nth_id("440106", 63);
    let list = json!({"employer_name": "广州测试公司", "staff": [
        {"id_number": listed_red.id_number, "label": "E-001"},
        {"id_number": listed_green.id_number, "label": "E-002"},
        {"id_number": unregistered, "label": "E-003"}
    ]});
    let r = app.put_json("/v1/staff", &employer, &list).await;
    assert_eq!(r.status(), StatusCode::OK);
    let json_of = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<serde_json::Value>().await.expect("json")
    };
    let colours = json_of(app.get("/v1/staff/colours", &employer).await).await;
    assert_eq!(
        colours["staff"],
        json!([{"label": "E-001", "accepted": false, "colour": null},
               {"label": "E-002", "accepted": false, "colour": null},
               {"label": "E-003", "accepted": false, "colour": null}]),
        "nobody has accepted yet"
    );

    // Each listed person sees the employer and accepts it.
    let mine = json_of(app.get("/v1/staff/me", &listed_red.token).await).await;
    assert_eq!(mine["employers"][0]["employer_name"], "广州测试公司");
    assert_eq!(mine["employers"][0]["employer_region"], "440100");
    assert_eq!(mine["employers"][0]["label"], "E-001");
    let employer_id = mine["employers"][0]["employer_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let accept = |token: String, accepted: bool| {
        let (app, employer_id) = (&app, &employer_id);
        async move {
            app.put_json(
                &format!("/v1/staff/me/{employer_id}"),
                &token,
                &json!({"accepted": accepted}),
            )
            .await
            .status()
        }
    };
    assert_eq!(
        accept(listed_red.token.clone(), true).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        accept(listed_green.token.clone(), true).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        accept(not_listed.token.clone(), true).await,
        StatusCode::NOT_FOUND
    );

    let colours = json_of(app.get("/v1/staff/colours?limit=2", &employer).await).await;
    assert_eq!(
        colours["staff"],
        json!([{"label": "E-001", "accepted": true, "colour": "red"},
               {"label": "E-002", "accepted": true, "colour": "green"}])
    );
    let next = colours["next_cursor"].as_str().expect("cursor");
    let rest = json_of(
        app.get(
            &format!("/v1/staff/colours?limit=2&cursor={next}"),
            &employer,
        )
        .await,
    )
    .await;
    assert_eq!(
        rest["staff"],
        json!([{"label": "E-003", "accepted": false, "colour": null}])
    );
    assert_eq!(rest["next_cursor"], json!(null));
    let db = app.pool.get().await.expect("db");
    let audited: Vec<String> = db
        .query(
            "SELECT subject::text FROM audit_log WHERE action = 'staff.colour' AND outcome = 'shown' ORDER BY id",
            &[],
        )
        .await
        .expect("audit")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        audited,
        [listed_red.person.clone(), listed_green.person.clone()]
    );

    // Listing again keeps an acceptance; withdrawing ends it.
    assert_eq!(
        app.put_json("/v1/staff", &employer, &list).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        accept(listed_green.token.clone(), false).await,
        StatusCode::NO_CONTENT
    );
    let colours = json_of(app.get("/v1/staff/colours?limit=2", &employer).await).await;
    assert_eq!(
        colours["staff"],
        json!([{"label": "E-001", "accepted": true, "colour": "red"},
               {"label": "E-002", "accepted": false, "colour": null}])
    );

    // Another employer sees nothing of this list; a nationwide client is no employer.
    let other = app.official(&["staff:read"], Some("440100")).await;
    let theirs = json_of(app.get("/v1/staff/colours", &other).await).await;
    assert_eq!(theirs["staff"], json!([]));
    let nationwide = app.official(&["staff:read"], None).await;
    problem(
        app.get("/v1/staff/colours", &nationwide).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.put_json("/v1/staff", &nationwide, &list).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // A bad row is named.
    let r = app
        .put_json(
            "/v1/staff",
            &employer,
            &json!({"employer_name": "x", "staff": [{"id_number": "44010619800101001X", "label": "E-9"}]}),
        )
        .await;
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "staff[0].id_number"
    );
    // Without staff:read, nothing.
    let r = app.get("/v1/staff/colours", &lab).await;
    problem(r, StatusCode::FORBIDDEN).await;
}

/// A citizen withdrawing while the employer's list is being replaced is not undone by the replace. The test holds a
/// replace open as the service runs one (the employer's lock, the acceptances read, the list rewritten with them) and
/// withdraws meanwhile: the withdrawal waits for the replace and then applies. Without the lock it went through at
/// once and the replace wrote the old acceptance back, showing the employer a colour without consent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_during_a_list_replace_is_kept() {
    let app = spawn_app().await;
    let citizen = app.citizen("440106", 70).await;
    // Scoring knows the citizen (their registration is projected) before they ask whom they are listed by.
    app.wait_status(&citizen.person, |_| true).await;
    let employer = app.official(&["staff:read"], Some("440100")).await;
    let list = json!({"employer_name": "广州测试公司", "staff": [{"id_number": citizen.id_number, "label": "E-1"}]});
    assert_eq!(
        app.put_json("/v1/staff", &employer, &list).await.status(),
        StatusCode::OK
    );
    let mine: serde_json::Value = app
        .get("/v1/staff/me", &citizen.token)
        .await
        .json()
        .await
        .expect("json");
    let employer_id = mine["employers"][0]["employer_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v1/staff/me/{employer_id}");
    let accepted = app
        .put_json(&path, &citizen.token, &json!({"accepted": true}))
        .await;
    assert_eq!(accepted.status(), StatusCode::NO_CONTENT);

    let mut db = app.pool.get().await.expect("db");
    let tx = db.transaction().await.expect("transaction");
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('staff:' || $1, 0))",
        &[&employer_id],
    )
    .await
    .expect("the employer's lock");
    let read: Vec<tokio_postgres::Row> = tx
        .query("SELECT id_index, label, accepted_at, employer_name, employer_region FROM staff WHERE employer_id = $1", &[&employer_id])
        .await
        .expect("acceptances");
    let withdraw = {
        let (http, url, token) = (app.http.clone(), app.url(&path), citizen.token.clone());
        tokio::spawn(async move {
            let answer = http
                .put(url)
                .bearer_auth(token)
                .json(&json!({"accepted": false}))
                .send()
                .await;
            answer.expect("withdraw").status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !withdraw.is_finished(),
        "the withdrawal waits for the replace"
    );
    tx.execute("DELETE FROM staff WHERE employer_id = $1", &[&employer_id])
        .await
        .expect("delete");
    for row in &read {
        let (index, label): (Vec<u8>, String) = (row.get(0), row.get(1));
        let (at, name, region): (Option<chrono::DateTime<chrono::Utc>>, String, String) =
            (row.get(2), row.get(3), row.get(4));
        tx.execute(
            "INSERT INTO staff (employer_id, employer_name, employer_region, id_index, label, accepted_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&employer_id, &name, &region, &index, &label, &at],
        )
        .await
        .expect("rewrite");
    }
    tx.commit().await.expect("the replace commits");
    assert_eq!(withdraw.await.expect("withdraw"), StatusCode::NO_CONTENT);
    let colours: serde_json::Value = app
        .get("/v1/staff/colours", &employer)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        colours["staff"][0]["accepted"], false,
        "the withdrawal stands"
    );
}
