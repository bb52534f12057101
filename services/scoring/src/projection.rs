//! Scoring's projection of the facts, fed by events: each handler stores what its event says (idempotently, by the
//! same natural keys as the publisher) and returns whose colour may have changed.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use hc_domain::china_time::start_of;
use hc_platform::events::{DeclarationSubmitted, FactsImported, ImportedFacts, PersonRegistered};
use hc_platform::streams::Delivered;
use std::collections::HashMap;
use uuid::Uuid;

use crate::facts::{Declared, Listed, RawFacts, Tested, Visited};

/// A blind index: 32 bytes.
pub type Index = Vec<u8>;

/// `person.registered`, any number of them: links each index to its person, in one statement.
pub async fn people_registered(
    client: &impl GenericClient,
    events: &[Delivered],
) -> anyhow::Result<Vec<Index>> {
    let mut people = Vec::with_capacity(events.len());
    let mut indexes = Vec::with_capacity(events.len());
    let mut homes = Vec::with_capacity(events.len());
    for event in events {
        let e = PersonRegistered::decode(event)?;
        people.push(e.person_id);
        indexes.push(e.id_number_index);
        homes.push(e.home_region);
    }
    client
        .execute(
            "INSERT INTO subjects (id_index, person_id, home_region)
             SELECT * FROM unnest($1::bytea[], $2::uuid[], $3::text[]) ON CONFLICT DO NOTHING",
            &[&indexes, &people, &homes],
        )
        .await?;
    Ok(indexes)
}

/// `declaration.submitted`: the day's declaration replaces an earlier one of the same day; the regions declared
/// become visits on that day. A declaration of a person whose registration has not reached us yet fails, so the
/// event stays pending and comes again. The caller marks the digests out of date ([`facts_changed`]).
pub async fn declaration_submitted(
    client: &impl GenericClient,
    event: &Delivered,
) -> anyhow::Result<Vec<Index>> {
    let d = DeclarationSubmitted::decode(event)?;
    let Some(row) = client
        .query_opt(
            "SELECT id_index FROM subjects WHERE person_id = $1",
            &[&d.person_id],
        )
        .await?
    else {
        anyhow::bail!("person {} is not registered here yet", d.person_id);
    };
    let index: Index = row.get(0);
    client
        .execute(
            "INSERT INTO f_declarations (id_index, day, declaration_id, fever, symptoms, contact_date)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id_index, day) DO UPDATE SET declaration_id = excluded.declaration_id,
                 fever = excluded.fever, symptoms = excluded.symptoms, contact_date = excluded.contact_date",
            &[&index, &d.day, &d.declaration_id, &d.fever, &!d.symptoms.is_empty(), &d.contact_date],
        )
        .await?;
    let at = start_of(d.day);
    let mut regions = d.travelled_regions;
    regions.push(d.current_region);
    regions.sort();
    regions.dedup();
    client
        .execute(
            "INSERT INTO f_visits (id_index, region, first_seen, last_seen, source)
             SELECT $1, r, $3, $3, 'declared' FROM unnest($2::text[]) AS r ON CONFLICT DO NOTHING",
            &[&index, &regions, &at],
        )
        .await?;
    Ok(vec![index])
}

/// `facts.imported`: a chunk of official facts, row `i` belonging to `people[i]`. The caller marks the digests out
/// of date ([`facts_changed`]).
pub async fn facts_imported(
    client: &impl GenericClient,
    event: &Delivered,
) -> anyhow::Result<Vec<Index>> {
    let FactsImported { people, facts, .. } = FactsImported::decode(event)?;
    match &facts {
        ImportedFacts::NatResults(rows) => {
            let times: Vec<_> = rows.iter().map(|r| r.sample_time).collect();
            let positive: Vec<_> = rows.iter().map(|r| r.positive).collect();
            let lab: Vec<_> = rows.iter().map(|r| r.lab.as_str()).collect();
            client
                .execute(
                    "INSERT INTO f_nat (id_index, sample_time, positive, lab)
                     SELECT * FROM unnest($1::bytea[], $2::timestamptz[], $3::bool[], $4::text[]) ON CONFLICT DO NOTHING",
                    &[&people, &times, &positive, &lab],
                )
                .await?;
        }
        ImportedFacts::Cases(rows) => {
            let status: Vec<_> = rows.iter().map(|r| r.status.as_str()).collect();
            let since: Vec<_> = rows.iter().map(|r| r.since).collect();
            let until: Vec<_> = rows.iter().map(|r| r.until).collect();
            client
                .execute(
                    "INSERT INTO f_cases (id_index, status, since, until)
                     SELECT * FROM unnest($1::bytea[], $2::text[], $3::date[], $4::date[])
                     ON CONFLICT (id_index, status, since) DO UPDATE SET until = excluded.until",
                    &[&people, &status, &since, &until],
                )
                .await?;
        }
        ImportedFacts::Visits(rows) => {
            let region: Vec<_> = rows.iter().map(|r| r.region.as_str()).collect();
            let first: Vec<_> = rows.iter().map(|r| r.first_seen).collect();
            let last: Vec<_> = rows.iter().map(|r| r.last_seen).collect();
            let source: Vec<_> = rows.iter().map(|r| r.source.as_str()).collect();
            client
                .execute(
                    "INSERT INTO f_visits (id_index, region, first_seen, last_seen, source)
                     SELECT * FROM unnest($1::bytea[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[])
                     ON CONFLICT DO NOTHING",
                    &[&people, &region, &first, &last, &source],
                )
                .await?;
        }
    }
    Ok(people)
}

/// Marks the digests of `indexes` (sorted, without duplicates) out of date, in the transaction that stored their
/// new facts (so a digest built on a version no older than this one includes them). Locks the subjects in index
/// order, as every recolouring does, and only once every fact of the transaction is written, so two
/// transactions never wait on each other's subjects in opposite orders.
pub async fn facts_changed(client: &impl GenericClient, indexes: &[Index]) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE subjects s SET facts_version = s.facts_version + 1
             FROM (SELECT id_index FROM subjects WHERE id_index = ANY($1) ORDER BY id_index FOR UPDATE) l
             WHERE s.id_index = l.id_index",
            &[&indexes],
        )
        .await?;
    Ok(())
}

/// Writes back the digests of people evaluated from the fact tables, each only if no fact of theirs was stored
/// since it was read. Locks in index order.
pub async fn store_digests(client: &impl GenericClient, loaded: &[Loaded]) -> anyhow::Result<()> {
    let mut rebuilt: Vec<&Loaded> = loaded.iter().filter(|l| l.rebuilt).collect();
    if rebuilt.is_empty() {
        return Ok(());
    }
    rebuilt.sort_by(|a, b| a.subject.index.cmp(&b.subject.index));
    let indexes: Vec<&Index> = rebuilt.iter().map(|l| &l.subject.index).collect();
    let versions: Vec<i64> = rebuilt.iter().map(|l| l.subject.facts_version).collect();
    let digests: Vec<String> = rebuilt
        .iter()
        .map(|l| serde_json::to_string(&l.facts))
        .collect::<Result<_, _>>()?;
    client
        .execute(
            "WITH d AS (SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::text[]) AS d(id_index, version, digest)),
                  l AS (SELECT s.id_index FROM subjects s JOIN d USING (id_index) ORDER BY s.id_index FOR UPDATE OF s)
             UPDATE subjects s SET digest = d.digest, digest_version = d.version
             FROM d JOIN l USING (id_index)
             WHERE s.id_index = d.id_index AND s.facts_version = d.version",
            &[&indexes, &versions, &digests],
        )
        .await?;
    Ok(())
}

/// A registered person as the projection knows them.
#[derive(Debug, Clone)]
pub struct Subject {
    pub index: Index,
    pub person_id: Uuid,
    pub home_region: String,
    /// The version of their facts that was read.
    pub facts_version: i64,
}

/// A person ready to evaluate: who, and their facts.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub subject: Subject,
    pub facts: RawFacts,
    /// Read from the fact tables rather than the digest: the digest is to be written back.
    pub rebuilt: bool,
}

const SUBJECT_COLUMNS: &str = "s.id_index, s.person_id, s.home_region, s.facts_version";

/// Loads the subjects among `indexes` and their facts from `since` on, one query per table with the indexes as an
/// array (for small sets: an index lookup per person). With `lock`, the subjects are locked in index order
/// first, so concurrent recolourings of the same people never deadlock, and a later one waits for an earlier one
/// and then reads the newer facts (a dry run reads without locking).
pub async fn lock_and_load(
    client: &impl GenericClient,
    indexes: &[Index],
    since: DateTime<Utc>,
    lock: bool,
) -> anyhow::Result<(Vec<Loaded>, DateTime<Utc>)> {
    let sql = format!(
        "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.id_index = ANY($1) ORDER BY s.id_index {}",
        if lock { "FOR UPDATE OF s" } else { "" }
    );
    let subjects = client.query(&sql, &[&indexes]).await?;
    // After the locks: a status evaluated later than this was evaluated on facts at least as new as ours.
    let read_at: DateTime<Utc> = client
        .query_one("SELECT clock_timestamp()", &[])
        .await?
        .get(0);
    if subjects.is_empty() {
        return Ok((Vec::new(), read_at));
    }
    let locked: Vec<Index> = subjects.iter().map(|r| r.get(0)).collect();
    let since_day = hc_domain::china_time::day_of(since);
    let by_day: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&locked, &since_day];
    let by_time: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&locked, &since];
    let all: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&locked];
    // Four queries in flight at once on the one connection (tokio-postgres pipelines them).
    let (decls, cases, tests, visits) = tokio::try_join!(
        client.query(
            "SELECT id_index, day, fever, symptoms, contact_date FROM f_declarations WHERE id_index = ANY($1) AND day >= $2",
            &by_day,
        ),
        client.query(
            "SELECT id_index, status, since, until FROM f_cases WHERE id_index = ANY($1)",
            &all,
        ),
        client.query(
            "SELECT id_index, sample_time, positive FROM f_nat WHERE id_index = ANY($1) AND sample_time >= $2",
            &by_time,
        ),
        client.query(
            "SELECT id_index, region, first_seen, last_seen FROM f_visits WHERE id_index = ANY($1) AND last_seen >= $2",
            &by_time,
        ),
    )?;
    Ok((assemble(subjects, decls, cases, tests, visits), read_at))
}

/// A chunk of people loaded by [`load_many`], and when their facts were read.
pub type Batch = (Vec<Loaded>, DateTime<Utc>);

/// Loads many people at once, set-based, and hands them on `chunk` at a time as they arrive (the caller evaluates
/// and writes while the rest is still being read). Their indexes go into a temporary table (binary COPY) joined to
/// `subjects`: one hash join, each person's facts read from their digest. The few whose digest is out of date are
/// read from the fact tables (one hash join per table) and marked for the digest to be written back. Reads in one
/// repeatable-read snapshot and takes no locks: the writes check `evaluated_at` against the read time.
pub async fn load_many(
    client: &mut deadpool_postgres::Object,
    indexes: &[Index],
    since: DateTime<Utc>,
    chunk: usize,
    out: tokio::sync::mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await?;
    // The transaction's start, before its snapshot: a status evaluated later may rest on newer facts.
    let read_at: DateTime<Utc> = tx.query_one("SELECT now()", &[]).await?.get(0);
    // Enough memory for each hash join to stay in one batch (at 200,000 people about 15 MB), instead of spilling.
    tx.batch_execute("SET LOCAL work_mem = '64MB'").await?;
    copy_indexes(&tx, "job", indexes).await?;
    let send = |batch: Vec<Loaded>| {
        let out = out.clone();
        async move {
            out.send((batch, read_at))
                .await
                .map_err(|_| anyhow::anyhow!("the recolouring stopped taking batches"))
        }
    };
    let rows = tx
        .query_raw(
            &format!(
                "SELECT {SUBJECT_COLUMNS}, CASE WHEN s.digest_version = s.facts_version THEN s.digest END
                 FROM job JOIN subjects s USING (id_index)"
            ),
            std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
        )
        .await?;
    futures_util::pin_mut!(rows);
    let mut batch = Vec::with_capacity(chunk);
    let mut stale = Vec::new();
    while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
        let subject = subject(&r);
        // An unreadable digest is treated as out of date, and rebuilt.
        match r
            .get::<_, Option<&str>>(4)
            .and_then(|d| serde_json::from_str::<RawFacts>(d).ok())
        {
            Some(facts) => batch.push(Loaded {
                subject,
                facts: facts.within(since),
                rebuilt: false,
            }),
            None => stale.push(subject.index),
        }
        if batch.len() == chunk {
            send(std::mem::replace(&mut batch, Vec::with_capacity(chunk))).await?;
        }
    }
    if !batch.is_empty() {
        send(batch).await?;
    }
    if !stale.is_empty() {
        copy_indexes(&tx, "stale", &stale).await?;
        let mut rebuilt = load_joined(&tx, "stale", since).await?;
        while !rebuilt.is_empty() {
            let rest = rebuilt.split_off(rebuilt.len().saturating_sub(chunk));
            send(rest).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Builds the digest of every subject whose digest is out of date (after the migration that added digests, or
/// after a crash between storing facts and recolouring), `slice` people at a time. Returns how many.
pub async fn refresh_digests(
    db: &deadpool_postgres::Pool,
    since: DateTime<Utc>,
    slice: i64,
) -> anyhow::Result<usize> {
    let mut after: Index = Vec::new();
    let mut total = 0;
    loop {
        let mut client = db.get().await?;
        let stale: Vec<Index> = client
            .query(
                "SELECT id_index FROM subjects
                 WHERE id_index > $1 AND digest_version IS DISTINCT FROM facts_version
                 ORDER BY id_index LIMIT $2",
                &[&after, &slice],
            )
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        let Some(last) = stale.last() else {
            return Ok(total);
        };
        after = last.clone();
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?;
        tx.batch_execute("SET LOCAL work_mem = '64MB'").await?;
        copy_indexes(&tx, "stale", &stale).await?;
        let loaded = load_joined(&tx, "stale", since).await?;
        tx.commit().await?;
        store_digests(&client, &loaded).await?;
        total += loaded.len();
    }
}

/// Copies indexes into a new temporary table (dropped at commit) by binary COPY, and analyses it so that the
/// planner sizes the joins to it.
async fn copy_indexes(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    indexes: &[Index],
) -> anyhow::Result<()> {
    tx.batch_execute(&format!(
        "CREATE TEMPORARY TABLE {table} (id_index bytea PRIMARY KEY) ON COMMIT DROP"
    ))
    .await?;
    let sink = tx
        .copy_in(&format!(
            "COPY {table} (id_index) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(
        sink,
        &[tokio_postgres::types::Type::BYTEA],
    );
    futures_util::pin_mut!(writer);
    for index in indexes {
        writer.as_mut().write(&[index]).await?;
    }
    writer.finish().await?;
    tx.batch_execute(&format!("ANALYZE {table}")).await?;
    Ok(())
}

/// The subjects in `table` and their facts from the fact tables, one hash join per table.
async fn load_joined(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    since: DateTime<Utc>,
) -> anyhow::Result<Vec<Loaded>> {
    let since_day = hc_domain::china_time::day_of(since);
    let subjects = tx
        .query(
            &format!("SELECT {SUBJECT_COLUMNS} FROM {table} JOIN subjects s USING (id_index)"),
            &[],
        )
        .await?;
    let decls = tx
        .query(
            &format!("SELECT f.id_index, f.day, f.fever, f.symptoms, f.contact_date FROM {table} JOIN f_declarations f USING (id_index) WHERE f.day >= $1"),
            &[&since_day],
        )
        .await?;
    let cases = tx
        .query(
            &format!("SELECT f.id_index, f.status, f.since, f.until FROM {table} JOIN f_cases f USING (id_index)"),
            &[],
        )
        .await?;
    let tests = tx
        .query(
            &format!("SELECT f.id_index, f.sample_time, f.positive FROM {table} JOIN f_nat f USING (id_index) WHERE f.sample_time >= $1"),
            &[&since],
        )
        .await?;
    let visits = tx
        .query(
            &format!("SELECT f.id_index, f.region, f.first_seen, f.last_seen FROM {table} JOIN f_visits f USING (id_index) WHERE f.last_seen >= $1"),
            &[&since],
        )
        .await?;
    Ok(assemble(subjects, decls, cases, tests, visits))
}

fn subject(r: &tokio_postgres::Row) -> Subject {
    Subject {
        index: r.get(0),
        person_id: r.get(1),
        home_region: r.get::<_, String>(2),
        facts_version: r.get(3),
    }
}

fn assemble(
    subjects: Vec<tokio_postgres::Row>,
    decls: Vec<tokio_postgres::Row>,
    cases: Vec<tokio_postgres::Row>,
    tests: Vec<tokio_postgres::Row>,
    visits: Vec<tokio_postgres::Row>,
) -> Vec<Loaded> {
    let mut facts: HashMap<Index, RawFacts> = HashMap::with_capacity(subjects.len());
    for r in decls {
        facts
            .entry(r.get(0))
            .or_default()
            .declarations
            .push(Declared {
                day: r.get(1),
                fever: r.get(2),
                symptoms: r.get(3),
                contact_date: r.get(4),
            });
    }
    for r in cases {
        facts.entry(r.get(0)).or_default().cases.push(Listed {
            status: r.get(1),
            since: r.get(2),
            until: r.get(3),
        });
    }
    for r in tests {
        facts.entry(r.get(0)).or_default().tests.push(Tested {
            sample_time: r.get(1),
            positive: r.get(2),
        });
    }
    for r in visits {
        facts.entry(r.get(0)).or_default().visits.push(Visited {
            region: r.get::<_, String>(1),
            first_seen: r.get(2),
            last_seen: r.get(3),
        });
    }
    subjects
        .into_iter()
        .map(|r| {
            let subject = subject(&r);
            let raw = facts.remove(&subject.index).unwrap_or_default();
            Loaded {
                subject,
                facts: raw,
                rebuilt: true,
            }
        })
        .collect()
}
