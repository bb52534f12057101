//! Loading people to evaluate: their subject row and their facts, for a few people (locked, one index lookup per
//! fact table) or for many (set-based: a temporary table joined to each fact table, or their digests), and the
//! digests written back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::facts::{Declared, Listed, RawFacts, Tested, Visited};
use crate::projection::Index;

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
    let facts = read_facts(client, People::Listed(&locked), since).await?;
    Ok((assemble(subjects, facts), read_at))
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
    let subjects = tx
        .query(
            &format!("SELECT {SUBJECT_COLUMNS} FROM {table} JOIN subjects s USING (id_index)"),
            &[],
        )
        .await?;
    let facts = read_facts(tx, People::InTable(table), since).await?;
    Ok(assemble(subjects, facts))
}

/// Whose facts to read: the people of an index array, or of a temporary table (joined: the set-based path).
#[derive(Clone, Copy)]
enum People<'a> {
    Listed(&'a [Index]),
    InTable(&'a str),
}

/// How far back a fact table is read: facts older than the rules can look are left out.
#[derive(Clone, Copy)]
enum Since {
    Day(&'static str),
    Time(&'static str),
    All,
}

/// A fact table as the rules read it: its columns after `id_index`, in the order [`assemble`] takes them.
struct FactTable {
    name: &'static str,
    columns: &'static str,
    since: Since,
}

/// Declarations, cases, NAT results and visits: the one definition of what a person's facts are read from.
const FACT_TABLES: [FactTable; 4] = [
    FactTable {
        name: "f_declarations",
        columns: "f.day, f.fever, f.symptoms, f.contact_date",
        since: Since::Day("f.day"),
    },
    FactTable {
        name: "f_cases",
        columns: "f.status, f.since, f.until, f.region",
        since: Since::All,
    },
    FactTable {
        name: "f_nat",
        columns: "f.sample_time, f.positive",
        since: Since::Time("f.sample_time"),
    },
    FactTable {
        name: "f_visits",
        columns: "f.region, f.first_seen, f.last_seen",
        since: Since::Time("f.last_seen"),
    },
];

impl FactTable {
    fn sql(&self, people: People<'_>) -> String {
        let (from, mut conditions) = match people {
            People::Listed(_) => (
                format!("{} f", self.name),
                vec!["f.id_index = ANY($1)".to_owned()],
            ),
            People::InTable(table) => (
                format!("{table} JOIN {} f USING (id_index)", self.name),
                vec![],
            ),
        };
        if let Since::Day(column) | Since::Time(column) = self.since {
            conditions.push(format!("{column} >= ${}", conditions.len() + 1));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        format!("SELECT f.id_index, {} FROM {from}{filter}", self.columns)
    }
}

/// The rows of every fact table for `people` from `since` on, the four queries in flight at once on the one
/// connection (tokio-postgres pipelines them).
async fn read_facts(
    client: &impl GenericClient,
    people: People<'_>,
    since: DateTime<Utc>,
) -> anyhow::Result<[Vec<tokio_postgres::Row>; 4]> {
    let since_day = hc_domain::china_time::day_of(since);
    let query = |table: &'static FactTable| {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(2);
        if let People::Listed(indexes) = &people {
            params.push(indexes);
        }
        match table.since {
            Since::Day(_) => params.push(&since_day),
            Since::Time(_) => params.push(&since),
            Since::All => {}
        }
        let sql = table.sql(people);
        async move { client.query(&sql, &params).await }
    };
    let [d, c, n, v] = &FACT_TABLES;
    let (declarations, cases, tests, visits) =
        tokio::try_join!(query(d), query(c), query(n), query(v))?;
    Ok([declarations, cases, tests, visits])
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
    facts: [Vec<tokio_postgres::Row>; 4],
) -> Vec<Loaded> {
    let [decls, cases, tests, visits] = facts;
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
            region: r.get::<_, Option<String>>(4).map(|r| r.trim().to_owned()),
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
            // The rows are locked in index order first (no deadlock with a concurrent writer), and the update
            // joins that locked set to subjects by key only: joining it to the unnested input as well made the
            // planner compare every row with every other (a nested loop over two CTEs), quadratic in the batch.
            "WITH d AS (SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::text[]) AS d(id_index, version, digest)),
                  l AS (SELECT s.id_index, d.version, d.digest FROM subjects s JOIN d USING (id_index)
                        ORDER BY s.id_index FOR UPDATE OF s)
             UPDATE subjects s SET digest = l.digest, digest_version = l.version
             FROM l
             WHERE s.id_index = l.id_index AND s.facts_version = l.version",
            &[&indexes, &versions, &digests],
        )
        .await?;
    Ok(())
}
