use serde_json::json;

use crate::helpers::{TestApp, open_policy, problem, spawn_app, subject_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_can_narrow_the_colour_rule_but_never_widen_it() {
    let app = spawn_app().await;
    let body = |policy: serde_json::Value| json!({"name": "体育中心", "region": "440106", "policy": policy, "devices": []});
    let r = app
        .put_venue("stadium", &body(json!({"colours": ["green", "red"], "nat_within_hours": null, "international_admitted": false, "hours": null})))
        .await;
    problem(r, 422, "policy.colours[1]").await;
    let r = app.put_venue("Stadium!", &body(open_policy())).await;
    problem(r, 422, "id").await;
    let r = app
        .put_venue(
            "stadium",
            &json!({"name": "体育中心", "region": "999999", "policy": open_policy()}),
        )
        .await;
    problem(r, 422, "region").await;
    let r = app.put_venue("stadium", &body(open_policy())).await;
    assert_eq!(r.status(), 200);
    let venue: serde_json::Value = r.json().await.expect("json");
    assert!(
        venue["venue_code"]
            .as_str()
            .expect("code")
            .starts_with("HCV1:stadium.")
    );

    // Only admins, and only within their region.
    let other = app.identity.official(&["verify"], None).await;
    let r = app
        .http
        .put(app.url("/v1/venues/stadium"))
        .bearer_auth(other)
        .json(&body(open_policy()))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 403);
    let shenzhen = app.identity.official(&["admin"], Some("440300")).await;
    let r = app
        .http
        .put(app.url("/v1/venues/stadium"))
        .bearer_auth(shenzhen)
        .json(&body(open_policy()))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 403);
    // The printed venue code is an SVG QR code.
    let r = app
        .http
        .get(app.url("/v1/venues/stadium/code"))
        .bearer_auth(app.admin().await)
        .send()
        .await
        .expect("code");
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.expect("svg").contains("<svg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_partitions_are_made_ahead_and_dropped_after_their_retention() {
    let app = spawn_app().await;
    let client = app.pool.get().await.expect("db");
    let today = hc_domain::china_time::day_of(chrono::Utc::now());
    let old = today - chrono::Duration::days(40);
    verification::partitions::ensure_day(&client, old)
        .await
        .expect("old partition");
    let at = hc_domain::china_time::start_of(old) + chrono::Duration::hours(9);
    client
        .execute("INSERT INTO scan_events (at, id, kind, venue_id, decision) VALUES ($1, gen_random_uuid(), 'scan', 'x', 'pass')", &[&at])
        .await
        .expect("an old scan");
    let dropped = verification::partitions::maintain(&client, 3, 28)
        .await
        .expect("maintain");
    assert_eq!(dropped, [old]);
    assert_eq!(app.count("SELECT count(*) FROM scan_events").await, 0);
    let ahead = today + chrono::Duration::days(3);
    let name = format!("scan_events_{}", ahead.format("%Y%m%d"));
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .expect("regclass")
        .get(0);
    assert!(exists, "{name} is made ahead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_take_a_device_bound_to_a_venue_outside_its_region() {
    let app = spawn_app().await;
    // Bound to a gate in Tianhe (440106).
    let device = app
        .device_at("tianhe-gate", open_policy(), &["verify"])
        .await;
    let put = |admin: String| {
        let body = json!({"name": "白云门", "region": "440111", "policy": open_policy(), "devices": [subject_of(&device)]});
        app.http
            .put(app.url("/v1/venues/baiyun-gate"))
            .bearer_auth(admin)
            .json(&body)
            .send()
    };
    // Baiyun's admin (440111) lists it for a venue of its own: refused, and the device stays in Tianhe.
    let baiyun = app.identity.official(&["admin"], Some("440111")).await;
    let r = put(baiyun).await.expect("put");
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.expect("problem");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("devices[0]"),
        "{body}"
    );
    assert_eq!(
        devices_at(&app, "tianhe-gate").await,
        json!([subject_of(&device)])
    );
    // Guangzhou's admin covers both districts and moves it.
    let guangzhou = app.identity.official(&["admin"], Some("440100")).await;
    assert_eq!(put(guangzhou).await.expect("put").status(), 200);
    assert_eq!(devices_at(&app, "tianhe-gate").await, json!([]));
    assert_eq!(
        devices_at(&app, "baiyun-gate").await,
        json!([subject_of(&device)])
    );
}

async fn devices_at(app: &TestApp, venue: &str) -> serde_json::Value {
    let r = app
        .http
        .get(app.url(&format!("/v1/venues/{venue}")))
        .bearer_auth(app.admin().await)
        .send()
        .await
        .expect("get");
    r.json::<serde_json::Value>().await.expect("json")["devices"].clone()
}
