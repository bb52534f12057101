//! `identity reencrypt`: every person sealed again under the active data key, so that the old key can go.

use hc_platform::privacy::{FieldCipher, random_base64};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::{spawn_app, unique_person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reencrypting_seals_every_person_under_the_new_key_alone() {
    let app = spawn_app().await;
    for name in ["甲一", "乙二"] {
        let (id, phone) = unique_person();
        app.register(name, &id, &phone).await;
    }
    let old = app.settings.service.data_keys.expose_secret().to_owned();
    let new = format!("d2:{}", random_base64(32).expect("rand"));
    let ring = FieldCipher::from_spec(&SecretString::from(format!("{new},{old}"))).expect("ring");
    assert_eq!(
        identity::rotation::reencrypt(&app.pool, &ring)
            .await
            .expect("reencrypt"),
        2
    );
    assert_eq!(
        identity::rotation::reencrypt(&app.pool, &ring)
            .await
            .expect("again"),
        0,
        "nothing left to do"
    );

    // The new key alone opens every field of every person.
    let alone = FieldCipher::from_spec(&SecretString::from(new)).expect("new key");
    let client = app.pool.get().await.expect("db");
    let rows = client
        .query(
            "SELECT id::text, data_key_id, name_ct, id_number_ct, phone_ct FROM persons",
            &[],
        )
        .await
        .expect("persons");
    assert_eq!(rows.len(), 2);
    for row in rows {
        let (id, key): (String, String) = (row.get(0), row.get(1));
        assert_eq!(key, "d2");
        for (column, field) in [(2, "name"), (3, "id_number"), (4, "phone")] {
            let sealed: Vec<u8> = row.get(column);
            let context = format!("persons/{id}/{field}");
            alone
                .decrypt("d2", &sealed, context.as_bytes())
                .unwrap_or_else(|e| panic!("{field} of {id}: {e}"));
        }
    }
}

/// `identity announce-national`: people registered before the platform joined the national exchange are announced
/// again, each with the national index of their ID number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcing_gives_every_registered_person_their_national_index() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in ["甲一", "乙二", "丙三"] {
        let (id, phone) = unique_person();
        app.register(name, &id, &phone).await;
        ids.push(id);
    }
    let national = hc_platform::privacy::BlindIndex::from_secret(&SecretString::from(
        hc_platform::testing::NATIONAL_INDEX_KEY,
    ))
    .expect("key");
    let cipher = FieldCipher::from_spec(&app.settings.service.data_keys).expect("ring");
    let client = app.pool.get().await.expect("db");
    let outbox = "SELECT count(*) FROM outbox WHERE stream = 'person.registered'";
    let before: i64 = client.query_one(outbox, &[]).await.expect("count").get(0);
    assert_eq!(
        identity::rotation::announce_national(&app.pool, &cipher, &national)
            .await
            .expect("announce"),
        3
    );
    let rows = client
        .query(
            "SELECT payload FROM outbox WHERE stream = 'person.registered' ORDER BY id OFFSET $1",
            &[&before],
        )
        .await
        .expect("events");
    let mut announced: Vec<String> = rows
        .iter()
        .map(|r| {
            r.get::<_, serde_json::Value>(0)["national_index"]
                .as_str()
                .expect("a national index")
                .to_owned()
        })
        .collect();
    let mut expected: Vec<String> = ids
        .iter()
        .map(|id| {
            let id = hc_domain::IdNumber::parse(id, chrono::NaiveDate::MAX).expect("an ID number");
            hc_platform::privacy::to_hex(&national.id_number(&id))
        })
        .collect();
    announced.sort();
    expected.sort();
    assert_eq!(announced, expected);
}
