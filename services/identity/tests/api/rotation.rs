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
