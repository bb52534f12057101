use crate::helpers::{LOG, spawn_app, unique_person};

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_row_holds_no_plaintext_personal_data() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    let name = "欧阳明月";
    let person = app.register(name, &id, &phone).await;

    let db = app.pool.get().await.expect("db");
    // Every column as text: bytea shows as hex, so look for both spellings.
    let row: String = db
        .query_one(
            "SELECT row_to_json(p)::text FROM persons p WHERE id = $1::text::uuid",
            &[&person],
        )
        .await
        .expect("row")
        .get(0);
    for secret in [name, id.as_str(), phone.as_str()] {
        assert!(!row.contains(secret), "plaintext {secret} in row");
        assert!(!row.contains(&hex(secret)), "hex of {secret} in row");
    }
    assert!(row.contains("440106"), "the row was read: {row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_registration_sign_in_and_lookup_logs_no_personal_data() {
    let app = spawn_app().await;
    let (id, phone) = unique_person();
    let name = "司马长风";
    let person = app.register(name, &id, &phone).await;
    let tokens = app.sign_in(&phone).await;
    app.get_with_token(
        "/v1/persons/me",
        tokens["access_token"].as_str().expect("token"),
    )
    .await;
    let (cid, secret) = app.create_client(&["person:read"], None).await;
    let official = app.client_token(&cid, &secret).await;
    app.get_with_token(
        &format!("/v1/persons/by-id-number/{id}?reason=audit%20test"),
        &official,
    )
    .await;
    // A failing call logs too (the duplicate phone conflict).
    let (other, _) = unique_person();
    let body = app.registration(name, &other, &phone).await;
    app.post_json("/v1/persons", &body).await;

    let log = LOG.contents();
    assert!(log.contains(&person), "the log did capture this flow");
    assert!(
        log.contains("/v1/persons/by-id-number/{id_number}"),
        "routes are logged as templates"
    );
    for secret in [name, id.as_str(), phone.as_str(), &id[..17], &phone[3..]] {
        assert!(!log.contains(secret), "{secret} found in the log");
    }
}
