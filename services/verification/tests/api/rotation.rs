//! Key rotation over the whole platform (identity, declaration, scoring and verification in one database): the
//! blind-index key moves every stored index, and the list of index columns it moves is every one there is.

use hc_domain::IdNumber;
use hc_platform::privacy::{BlindIndex, FieldCipher, random_base64};
use hc_platform::testing::{WAIT, eventually, valid_id_number};
use identity::rotation::{ID_INDEX_COLUMNS, reindex};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

/// The whole platform: verification's suite with declaration and scoring started on it too; and declaration's
/// address.
async fn platform() -> (TestApp, String) {
    let app = spawn_app().await;
    let declaration = app
        .suite
        .service::<declaration::Declaration>()
        .start()
        .await;
    app.suite.service::<scoring::Scoring>().start().await;
    (app, declaration.address)
}

/// Rows holding `index` in every listed table, and in identity's persons.
async fn rows_with(app: &TestApp, index: &[u8]) -> i64 {
    let mut sql =
        String::from("SELECT (SELECT count(*) FROM identity.persons WHERE id_number_index = $1)");
    for (schema, table) in ID_INDEX_COLUMNS {
        sql.push_str(&format!(
            " + (SELECT count(*) FROM {schema}.{table} WHERE id_index = $1)"
        ));
    }
    let client = app.pool.get().await.expect("db");
    client
        .query_one(&sql, &[&index])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_id_index_column_of_every_schema_is_listed_for_re_indexing() {
    let (app, _) = platform().await;
    let client = app.pool.get().await.expect("db");
    let rows = client
        .query(
            "SELECT table_schema, table_name FROM information_schema.columns c
             WHERE column_name = 'id_index' AND table_schema IN ('identity', 'declaration', 'scoring', 'verification')
               AND NOT EXISTS (SELECT 1 FROM pg_class p JOIN pg_namespace n ON n.oid = p.relnamespace
                               WHERE n.nspname = c.table_schema AND p.relname = c.table_name AND p.relispartition)
             ORDER BY 1, 2",
            &[],
        )
        .await
        .expect("columns");
    let found: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let listed: Vec<(String, String)> = ID_INDEX_COLUMNS
        .iter()
        .map(|(s, t)| (s.to_string(), t.to_string()))
        .collect();
    assert_eq!(found, listed, "identity::rotation::ID_INDEX_COLUMNS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindexing_moves_every_registered_persons_indexes_to_the_new_key_and_leaves_the_rest() {
    let (app, declaration) = platform().await;
    let (_, _, id) = app.citizen(1).await;
    let stranger = valid_id_number("44010619900101999");
    let cdc = app.identity.official(&["import:cases"], None).await;
    let body: String = [&id, &stranger]
        .iter()
        .map(|n| {
            format!(
                "{}\n",
                json!({"id_number": n, "status": "confirmed", "since": "2026-12-01"})
            )
        })
        .collect();
    let imported = app
        .http
        .post(format!("{declaration}/v1/imports/cases"))
        .bearer_auth(&cdc)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("import");
    assert_eq!(imported.status(), 201);
    let today = hc_domain::china_time::day_of(chrono::Utc::now());
    let old =
        BlindIndex::from_secret(&SecretString::from(app.suite.blind_key.clone())).expect("key");
    let (mine, theirs) = (
        old.id_number(&IdNumber::parse(&id, today).expect("id")),
        old.id_number(&IdNumber::parse(&stranger, today).expect("id")),
    );
    // The person in identity; a link, a subject and a person in the three others; the case in all three.
    eventually(WAIT, "every service has the facts", || async {
        (rows_with(&app, &mine).await == 7 && rows_with(&app, &theirs).await == 3).then_some(())
    })
    .await;

    let new_key = SecretString::from(random_base64(32).expect("rand"));
    let new = BlindIndex::from_secret(&new_key).expect("key");
    let cipher = FieldCipher::from_spec(&SecretString::from(app.identity.data_keys.clone()))
        .expect("data keys");
    let mut admin = app.pool.get().await.expect("db");
    let report = reindex(&mut admin, &cipher, &old, &new)
        .await
        .expect("re-indexed");
    assert_eq!(report.persons, 1);
    let moved: u64 = report.tables.iter().map(|(_, moved, _)| moved).sum();
    let left: u64 = report.tables.iter().map(|(_, _, left)| left).sum();
    assert_eq!((moved, left), (6, 3), "{report:?}");
    let now_mine = new.id_number(&IdNumber::parse(&id, today).expect("id"));
    assert_eq!(
        rows_with(&app, &now_mine).await,
        7,
        "all of the person's rows under the new key"
    );
    assert_eq!(
        rows_with(&app, &mine).await,
        0,
        "none left under the old one"
    );
    assert_eq!(
        rows_with(&app, &theirs).await,
        3,
        "a stranger's facts cannot be moved"
    );

    // Run again with the old key, it refuses: the stored indexes are no longer the old key's.
    let again = reindex(&mut admin, &cipher, &old, &new).await;
    assert!(again.is_err(), "a second run with the old key is refused");
}
