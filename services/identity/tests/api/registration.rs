use hc_platform::service::Service;
use hc_platform::testing::{WAIT, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{id_number, problem, spawn_app, unique_person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_twice_returns_the_same_person() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    let first = app.register("张三", &id, &phone).await;

    // A retry after a lost answer: the registration code is still good until it expires.
    let mut body = app.registration("张三", &id, &phone).await;
    let again = app.post_json("/v1/persons", &body).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.expect("json")["id"], first);
    body["id_number"] = json!(id.to_lowercase());
    let again = app.post_json("/v1/persons", &body).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.expect("json")["id"], first);

    assert_eq!(app.persons().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_id_numbers_get_422_naming_the_field() {
    let app = spawn_app().await;
    let (_, phone) = unique_person();
    let cases = [
        ("bad check character", {
            let valid = id_number("44010619900307003");
            let last = if valid.ends_with('0') { '1' } else { '0' };
            format!("{}{last}", &valid[..17])
        }),
        ("30 February", id_number("44010619900230003")),
        ("future birth date", id_number("44010621000101003")),
        ("unknown region", id_number("99999919900307003")),
        ("wrong length", "4401061990030700".to_owned()),
    ];
    for (case, id) in cases {
        let response = app
            .post_json(
                "/v1/persons",
                &json!({"name": "李四", "id_number": id, "phone": phone, "home_region": "440106",
                    "phone_code": "000000", "real_name_ticket": "dev:x"}),
            )
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["field"], "id_number", "{case}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{case}: no detail"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_invalid_fields_are_named_too() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    let valid = json!({"name": "王五", "id_number": id, "phone": phone, "home_region": "440106",
        "phone_code": "000000", "real_name_ticket": "dev:x"});
    for (field, bad) in [
        ("phone", json!("02012345678")),
        ("home_region", json!("999999")),
        ("name", json!("  ")),
        ("real_name_ticket", json!(" ")),
        ("real_name_ticket", json!("x".repeat(4097))),
    ] {
        let mut body = valid.clone();
        body[field] = bad;
        let p = problem(
            app.post_json("/v1/persons", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(p["field"], field);
    }
    let mut missing = valid.clone();
    missing.as_object_mut().expect("object").remove("phone");
    let p = problem(
        app.post_json("/v1/persons", &missing).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "phone");
    let mut missing = valid.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("phone_code");
    let p = problem(
        app.post_json("/v1/persons", &missing).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "phone_code");
    let mut wrong_type = valid.clone();
    wrong_type["name"] = json!(42);
    let p = problem(
        app.post_json("/v1/persons", &wrong_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["field"], "name");

    let not_json = app
        .http
        .post(app.url("/v1/persons"))
        .body("name=x")
        .send()
        .await
        .expect("request");
    problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_to_someone_else_is_a_conflict_on_phone() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("赵六", &id, &phone).await;
    let (other_id, _) = unique_person();
    let body = app.registration("钱七", &other_id, &phone).await;
    let response = app.post_json("/v1/persons", &body).await;
    let body = problem(response, StatusCode::CONFLICT).await;
    assert_eq!(body["field"], "phone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused() {
    let app = spawn_app().await;
    let huge = "x".repeat(100_000);
    let response = app
        .post_json(
            "/v1/persons",
            &json!({"name": huge, "id_number": "", "phone": "", "home_region": ""}),
        )
        .await;
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_proves_the_phone_with_a_code_sent_to_it_for_registering() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    let (_, other_phone) = unique_person();
    let mut body = app.registration("孙八", &id, &other_phone).await;
    body["phone"] = json!(phone);
    let refused = problem(
        app.post_json("/v1/persons", &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        refused["detail"],
        "the code is wrong, used or expired; request a new one"
    );
    let mut body = app.registration("孙八", &id, &phone).await;
    let code = body["phone_code"].as_str().expect("code").to_owned();
    body["phone_code"] = json!(if code == "000000" { "000001" } else { "000000" });
    problem(
        app.post_json("/v1/persons", &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        app.persons().await,
        0,
        "nothing is stored without the phone"
    );

    body["phone_code"] = json!(code);
    let created = app.post_json("/v1/persons", &body).await;
    assert_eq!(created.status(), StatusCode::CREATED);

    // A code sent for registering does not sign in, even to the phone it was sent to.
    app.registration("孙八", &id, &phone).await;
    let code = app.sent_code(&phone).await.expect("code");
    let grant = app
        .post_json(
            "/v1/auth/token",
            &json!({"grant_type": "otp", "phone": phone, "code": code}),
        )
        .await;
    problem(grant, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_that_does_not_certify_the_id_number_gets_one_answer_whether_or_not_it_is_registered()
 {
    let app = spawn_app().await;
    let (holder_id, holder_phone) = unique_person();
    let person = app.register("周九", &holder_id, &holder_phone).await;

    let (_, attacker_phone) = unique_person();
    let (attackers_own_id, _) = unique_person();
    let mut answers = Vec::new();
    for target in [&holder_id, &unique_person().0] {
        let mut body = app.registration("周九", target, &attacker_phone).await;
        body["real_name_ticket"] = json!(identity::dev_real_name_ticket(&attackers_own_id));
        let mut p = problem(
            app.post_json("/v1/persons", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(p["field"], "real_name_ticket");
        p.as_object_mut().expect("object").remove("instance");
        answers.push(p);
    }
    assert_eq!(answers[0], answers[1], "the answers tell nothing apart");

    // Each refused ticket counts against the phone's code like a wrong code: one code buys at most five verifier calls.
    let (target, _) = unique_person();
    let mut body = app.registration("周九", &target, &attacker_phone).await;
    body["real_name_ticket"] = json!(identity::dev_real_name_ticket(&attackers_own_id));
    for _ in 0..5 {
        problem(
            app.post_json("/v1/persons", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    body["real_name_ticket"] = json!(identity::dev_real_name_ticket(&target));
    problem(
        app.post_json("/v1/persons", &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // The holder keeps the person and the phone.
    assert_eq!(app.persons().await, 1);
    assert_eq!(app.own_record(&holder_phone).await["id"], person);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_registering_from_a_new_phone_moves_the_person_there_and_ends_the_old_phones_sessions()
 {
    let app = spawn_app().await;
    let (id, old_phone) = unique_person();
    let (_, new_phone) = unique_person();
    let person = app.register("吴十", &id, &old_phone).await;
    let old_session = app.sign_in(&old_phone).await;

    // The holder's certified name may differ from the first registrant's.
    let body = app.registration("吴十一", &id, &new_phone).await;
    let moved = app.post_json("/v1/persons", &body).await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(moved.json::<Value>().await.expect("json")["id"], person);

    // The old phone's refresh token is revoked, its access tokens are announced revoked, and it signs nobody in.
    let refresh = app
        .post_json(
            "/v1/auth/token",
            &json!({"grant_type": "refresh_token", "refresh_token": old_session["refresh_token"]}),
        )
        .await;
    problem(refresh, StatusCode::UNAUTHORIZED).await;
    let old_access = old_session["access_token"].as_str().expect("token");
    eventually(WAIT, "the old phone's access token is refused", || async {
        let status = app
            .get_with_token("/v1/persons/me", old_access)
            .await
            .status();
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    let db = app.pool.get().await.expect("db");
    let announced: i64 = db
        .query_one(
            "SELECT count(*) FROM outbox WHERE stream = 'auth.revoked' AND payload->>'subject' = $1",
            &[&person],
        )
        .await
        .expect("outbox")
        .get(0);
    assert_eq!(announced, 1);
    // The person is announced again with the holder's masked name, for the checkpoints' ID-card path.
    let names: Vec<String> = db
        .query(
            "SELECT payload->>'masked_name' FROM outbox WHERE stream = 'person.registered' AND payload->>'person_id' = $1
             ORDER BY id",
            &[&person],
        )
        .await
        .expect("outbox")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["吴*", "吴*一"]);
    let audit = db
        .query_one(
            "SELECT actor, subject::text, outcome FROM audit_log WHERE action = 'person.rebind_phone'",
            &[],
        )
        .await
        .expect("the move is audited");
    assert_eq!(audit.get::<_, String>(0), "real-name-verifier");
    assert_eq!(audit.get::<_, String>(1), person);
    assert_eq!(audit.get::<_, String>(2), "rebound");
    // The old phone is told that it no longer signs this person in.
    let notice: Option<String> = redis::AsyncCommands::get(
        &mut app.store.conn(),
        format!(
            "{}{}",
            app.redis.prefix,
            identity::dev_notice_key(&old_phone)
        ),
    )
    .await
    .expect("redis");
    assert_eq!(notice.as_deref(), Some("person_moved"));
    let old_code_before = app.sent_code(&old_phone).await;
    assert_eq!(
        app.request_otp(&old_phone).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.sent_code(&old_phone).await,
        old_code_before,
        "no sign-in code goes to the old phone"
    );

    // The new phone signs the same person in, and the record shows it. Revocation is by the second of issue
    // (`iat`), so a session begun in the second of the move would be refused with the old ones: a person cannot
    // receive and type a code that fast, but this test can.
    let next_second = 1_000 - chrono::Utc::now().timestamp_subsec_millis() as u64 + 5;
    tokio::time::sleep(std::time::Duration::from_millis(next_second)).await;
    let me = app.own_record(&new_phone).await;
    assert_eq!(me["id"], person);
    assert_eq!(
        me["phone"],
        format!("{}****{}", &new_phone[..3], &new_phone[7..])
    );
}

/// A sign-in and a refresh under way while the person moves to another phone. The test holds the person's row as
/// a move does (locked and changed, tokens revoked, not yet committed): both must wait for the move and then be
/// refused, so that no session of the old phone outlives it. Without the person's lock the sign-in finished at once
/// with a new refresh token that the move had not revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_or_refresh_racing_a_move_to_another_phone_never_outlives_it() {
    let app = spawn_app().await;
    let (id, old_phone) = unique_person();
    let person = app.register("郑十一", &id, &old_phone).await;
    let session = app.sign_in(&old_phone).await;
    assert_eq!(
        app.request_otp(&old_phone).await.status(),
        StatusCode::ACCEPTED
    );
    let code = app.sent_code(&old_phone).await.expect("a code was sent");

    let mut db = app.pool.get().await.expect("db");
    let tx = db.transaction().await.expect("transaction");
    tx.execute(
        "UPDATE persons SET phone_index = $2 WHERE id::text = $1",
        &[&person, &vec![0u8; 32]],
    )
    .await
    .expect("the move's update");
    tx.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE person_id::text = $1 AND revoked_at IS NULL",
        &[&person],
    )
    .await
    .expect("the move's revocation");

    let grant = |body: Value| {
        let (http, url) = (app.http.clone(), app.url("/v1/auth/token"));
        tokio::spawn(async move {
            let answer = http.post(url).json(&body).send().await.expect("answer");
            answer.status()
        })
    };
    let sign_in = grant(json!({"grant_type": "otp", "phone": old_phone, "code": code}));
    let refresh =
        grant(json!({"grant_type": "refresh_token", "refresh_token": session["refresh_token"]}));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !sign_in.is_finished() && !refresh.is_finished(),
        "both wait for the move"
    );
    tx.commit().await.expect("the move commits");
    assert_eq!(sign_in.await.expect("sign-in"), StatusCode::UNAUTHORIZED);
    assert_eq!(refresh.await.expect("refresh"), StatusCode::UNAUTHORIZED);
    let live: i64 = db
        .query_one(
            "SELECT count(*) FROM refresh_tokens WHERE person_id::text = $1 AND revoked_at IS NULL",
            &[&person],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        live, 0,
        "no refresh token of the old phone outlives the move"
    );
}

/// Identity refuses to start over persons indexed under another blind-index key (or an older derivation): going on
/// would find nobody by ID number in any service and key new facts apart from the old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_refuses_to_start_when_the_index_key_does_not_match_the_stored_persons() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    app.register("王十二", &id, &phone).await;
    let mut settings = app.settings.clone();
    settings.platform.server.port = 0;
    let same = identity::Identity::start(settings.clone()).await;
    assert!(same.is_ok(), "the same key starts");
    settings.platform.privacy.blind_index_key = hc_platform::privacy::random_base64(32)
        .expect("rand")
        .into();
    let err = identity::Identity::start(settings)
        .await
        .err()
        .expect("another key is refused");
    assert!(
        format!("{err:#}").contains(identity::KEYS_MISMATCH),
        "{err:#}"
    );
}
