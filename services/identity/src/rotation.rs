//! Key rotation tools (docs/deploy.md, "Rotate keys"), run as `identity reencrypt` and `identity reindex`; and
//! `identity announce-national`, run once when the platform joins the national fact exchange (docs/interop.md).
//!
//! - `reencrypt` seals every person again under the active data key (the first of `identity.data_keys`), a batch at
//!   a time while the service runs, so that an old key can leave the ring once no row names it.
//! - `reindex` moves every stored blind index from `privacy.blind_index_key` to `HC_NEW_BLIND_INDEX_KEY`, in one
//!   transaction over every service's schema (with the administrator's `HC_ADMIN_DATABASE_URL`), with the services
//!   stopped. Only identity holds the ID numbers and phones (sealed), so it computes each registered person's old
//!   and new index; facts about people never registered cannot be moved and are counted.

use std::collections::HashMap;

use anyhow::Context;
use deadpool_postgres::GenericClient;
use hc_domain::{IdNumber, PersonId, Phone};
use hc_platform::privacy::{BlindIndex, FieldCipher};
use uuid::Uuid;

use crate::vault::{self, Field};

/// Every column that holds a blind index of an ID number, by schema and table. `every_id_index_column_is_listed`
/// (tests) compares it with the migrated schemas, so a new one cannot be forgotten.
pub const ID_INDEX_COLUMNS: &[(&str, &str)] = &[
    ("declaration", "case_status"),
    ("declaration", "fact_corrections"),
    ("declaration", "nat_results"),
    ("declaration", "person_links"),
    ("declaration", "visits"),
    ("scoring", "f_cases"),
    ("scoring", "f_declarations"),
    ("scoring", "f_nat"),
    ("scoring", "f_visits"),
    ("scoring", "staff"),
    ("scoring", "subjects"),
    ("verification", "cases"),
    ("verification", "persons"),
];

const BATCH: i64 = 500;

/// Seals every person whose row names another key than the active one again; returns how many.
pub async fn reencrypt(db: &deadpool_postgres::Pool, cipher: &FieldCipher) -> anyhow::Result<u64> {
    let active = cipher.active_key_id().to_owned();
    let mut done = 0;
    loop {
        let mut client = db.get().await?;
        let tx = client.transaction().await?;
        // SKIP LOCKED: a registration or move holding a row is left for the next batch, not waited for.
        let rows = tx
            .query(
                "SELECT id, name_ct, id_number_ct, phone_ct, data_key_id FROM persons
                 WHERE data_key_id <> $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&active, &BATCH],
            )
            .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        for row in &rows {
            let id = PersonId(row.get::<_, Uuid>(0));
            let key: String = row.get(4);
            let mut sealed = Vec::with_capacity(3);
            for (column, field) in [(1, Field::Name), (2, Field::IdNumber), (3, Field::Phone)] {
                let plain = vault::open(cipher, id, &key, field, row.get(column))
                    .with_context(|| format!("opening person {id} (key {key})"))?;
                sealed.push(vault::seal(cipher, id, field, &plain)?);
            }
            tx.execute(
                "UPDATE persons SET name_ct = $2, id_number_ct = $3, phone_ct = $4, data_key_id = $5 WHERE id = $1",
                &[&id.0, &sealed[0], &sealed[1], &sealed[2], &active],
            )
            .await?;
        }
        tx.commit().await?;
        done += rows.len() as u64;
    }
}

/// Announces every registered person again on `person.registered`, now with their national index (the HMAC of
/// their ID number under `privacy.national_index_key`), a batch at a time while the service runs: people registered
/// before the platform joined the national exchange are otherwise unknown to the hub, and facts other regions report
/// about them never reach them. Consumers are idempotent; running it twice announces everyone twice, harmlessly.
pub async fn announce_national(
    db: &deadpool_postgres::Pool,
    cipher: &FieldCipher,
    national: &BlindIndex,
) -> anyhow::Result<u64> {
    let mut after = Uuid::nil();
    let mut done = 0;
    loop {
        let mut client = db.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT id, name_ct, id_number_ct, data_key_id, id_number_index, home_region FROM persons
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &BATCH],
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(done);
        };
        after = last.get(0);
        for row in &rows {
            let id = PersonId(row.get::<_, Uuid>(0));
            let key: String = row.get(3);
            let open = |column, field| {
                vault::open(cipher, id, &key, field, row.get(column))
                    .with_context(|| format!("opening person {id} (key {key})"))
            };
            let id_number = IdNumber::parse(&open(2, Field::IdNumber)?, chrono::NaiveDate::MAX)
                .map_err(|_| {
                    anyhow::anyhow!("the stored ID number of person {id} does not parse")
                })?;
            let name = hc_domain::PersonName::parse(&open(1, Field::Name)?)
                .map_err(|_| anyhow::anyhow!("the stored name of person {id} does not parse"))?;
            let event = hc_platform::events::PersonRegistered {
                person_id: id.0,
                id_number_index: row.get(4),
                home_region: row.get(5),
                masked_name: Some(name.masked()),
                national_index: Some(national.id_number(&id_number)),
            };
            hc_platform::outbox::enqueue(
                &tx,
                hc_platform::events::PersonRegistered::STREAM,
                &event.encode(),
            )
            .await?;
        }
        tx.commit().await?;
        done += rows.len() as u64;
    }
}

/// What a re-indexing moved: persons, and per table the rows moved and the rows left under the old key.
#[derive(Debug, Default)]
pub struct Reindexed {
    pub persons: u64,
    pub tables: Vec<(String, u64, u64)>,
}

/// Moves every blind index from `old` to `new` in one transaction on the administrator's connection `admin`.
pub async fn reindex(
    admin: &mut deadpool_postgres::Client,
    cipher: &FieldCipher,
    old: &BlindIndex,
    new: &BlindIndex,
) -> anyhow::Result<Reindexed> {
    let tx = admin.transaction().await?;
    let rows = tx
        .query(
            "SELECT id, id_number_ct, phone_ct, data_key_id, id_number_index FROM identity.persons FOR UPDATE",
            &[],
        )
        .await?;
    let today = hc_domain::china_time::day_of(chrono::Utc::now());
    let mut moved: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id = PersonId(row.get::<_, Uuid>(0));
        let key: String = row.get(3);
        let id_number = vault::open(cipher, id, &key, Field::IdNumber, row.get(1))?;
        let id_number = IdNumber::parse(&id_number, today).context("a stored ID number")?;
        let phone = vault::open(cipher, id, &key, Field::Phone, row.get(2))?;
        let phone = Phone::parse(&phone).context("a stored phone")?;
        let stored: Vec<u8> = row.get(4);
        anyhow::ensure!(
            old.id_number(&id_number) == stored,
            "privacy.blind_index_key is not the key the stored indexes were made with"
        );
        let new_index = new.id_number(&id_number);
        tx.execute(
            "UPDATE identity.persons SET id_number_index = $2, phone_index = $3 WHERE id = $1",
            &[&id.0, &new_index, &new.phone(&phone)],
        )
        .await?;
        moved.insert(stored, new_index);
    }
    tx.batch_execute("CREATE TEMPORARY TABLE index_moves (old bytea PRIMARY KEY, new bytea NOT NULL) ON COMMIT DROP")
        .await?;
    let (olds, news): (Vec<Vec<u8>>, Vec<Vec<u8>>) = moved.into_iter().unzip();
    tx.execute(
        "INSERT INTO index_moves SELECT * FROM unnest($1::bytea[], $2::bytea[])",
        &[&olds, &news],
    )
    .await?;
    let mut report = Reindexed {
        persons: rows.len() as u64,
        tables: Vec::new(),
    };
    for (schema, table) in ID_INDEX_COLUMNS {
        let name = format!("{schema}.{table}");
        // A service this deployment does not run has no schema to re-index.
        let present: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await?
            .get(0);
        if !present {
            continue;
        }
        let moved = tx
            .execute(
                &format!("UPDATE {name} t SET id_index = m.new FROM index_moves m WHERE t.id_index = m.old"),
                &[],
            )
            .await
            .with_context(|| format!("re-indexing {name}"))?;
        let left: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM {name} t WHERE NOT EXISTS (SELECT 1 FROM index_moves m WHERE m.new = t.id_index)"
                ),
                &[],
            )
            .await?
            .get(0);
        report.tables.push((name, moved, left as u64));
    }
    tx.commit().await?;
    Ok(report)
}

/// `identity reencrypt` and `identity reindex`: `None` for any other command line (the service's own).
pub async fn command() -> Option<anyhow::Result<()>> {
    let name = std::env::args().nth(1)?;
    if !["reencrypt", "reindex", "announce-national"].contains(&name.as_str()) {
        return None;
    }
    Some(run(&name).await)
}

async fn run(name: &str) -> anyhow::Result<()> {
    let settings: hc_platform::settings::Settings<crate::IdentitySettings> =
        hc_platform::settings::load(crate::DEFAULT_CONFIG, "identity")?;
    let tls = hc_platform::tls::Tls::from_settings(&settings.platform.tls)?;
    let cipher =
        FieldCipher::from_spec(&settings.service.data_keys).context("identity.data_keys")?;
    let old = settings.platform.privacy.blind_index()?;
    if name == "announce-national" {
        let national = settings
            .platform.privacy.national_index()?
            .context("privacy.national_index_key is not set: this platform takes no part in the national exchange")?;
        let db = hc_platform::db::pool(&settings.platform.database, &tls, crate::SCHEMA)?;
        let done = announce_national(&db, &cipher, &national).await?;
        println!("announced {done} persons with their national index");
        return Ok(());
    }
    if name == "reencrypt" {
        let db = hc_platform::db::pool(&settings.platform.database, &tls, crate::SCHEMA)?;
        let done = reencrypt(&db, &cipher).await?;
        println!(
            "sealed {done} persons again under data key {}",
            cipher.active_key_id()
        );
        return Ok(());
    }
    let new = std::env::var("HC_NEW_BLIND_INDEX_KEY")
        .context("HC_NEW_BLIND_INDEX_KEY must hold the new blind-index key")?;
    let new = BlindIndex::from_secret(&new.into()).context("HC_NEW_BLIND_INDEX_KEY")?;
    let admin_url = std::env::var("HC_ADMIN_DATABASE_URL")
        .context("HC_ADMIN_DATABASE_URL must name an administrator's connection (every schema is re-indexed)")?;
    let mut database = settings.platform.database.clone();
    database.url = admin_url.into();
    let admin = hc_platform::db::pool(&database, &tls, crate::SCHEMA)?;
    let report = reindex(&mut admin.get().await?, &cipher, &old, &new).await?;
    println!("re-indexed {} persons", report.persons);
    for (table, moved, left) in &report.tables {
        println!(
            "{table}: {moved} rows moved, {left} rows of people never registered left under the old key"
        );
    }
    Ok(())
}
