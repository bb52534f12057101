//! After a chaos run: what clients were told had succeeded, against what is stored, row by row. Every acknowledged
//! declaration, check-in, scan and imported row must be in PostgreSQL, and each once; the events that carry them must
//! have reached scoring (declarations and test results among its facts); and no status document in Redis may be
//! older than the status in PostgreSQL. The goal is zero lost, zero duplicated, zero stale.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::suite::Suite;

/// What the load's clients were told had succeeded (filled by the personas as the answers come).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub declarations: Vec<Uuid>,
    pub checkins: Vec<Uuid>,
    pub scans: Vec<Uuid>,
    /// Import batches by their lab name (each batch is its own lab), 1,000 rows each.
    pub import_labs: Vec<String>,
    /// When codes came flagged stale, whole seconds into the run (not a write: what a fault showed the citizens).
    pub stale_codes_at_s: Vec<u64>,
}

/// Rows of an import batch in the load.
pub const IMPORT_ROWS: u64 = 1_000;

/// One kind of acknowledged write, against what is stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub acknowledged: u64,
    pub stored: u64,
    pub lost: u64,
    pub duplicated: u64,
}

impl Tally {
    fn of(acknowledged: u64, distinct: i64, rows: i64) -> Tally {
        let (distinct, rows) = (distinct.max(0) as u64, rows.max(0) as u64);
        Tally {
            acknowledged,
            stored: distinct,
            lost: acknowledged.saturating_sub(distinct),
            duplicated: rows.saturating_sub(distinct),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    pub declarations: Tally,
    /// Acknowledged declarations still current (not superseded the same day), against scoring's facts.
    pub declarations_in_scoring: Tally,
    pub checkins: Tally,
    pub scans: Tally,
    pub import_rows: Tally,
    pub import_rows_in_scoring: Tally,
    /// People whose status document in Redis is older than their status in PostgreSQL.
    pub stale_status_documents: u64,
    /// Status documents compared (the absent ones are read through from scoring, so they cannot be stale).
    pub status_documents: u64,
    /// How long the events took to settle after the load (the check is repeated until nothing is missing).
    pub settled_after_s: f64,
    /// Events still in an outbox or a consumer group's backlog at the last check: not lost, late. Anything missing
    /// while this is above zero may be among them.
    #[serde(default)]
    pub pending_events: u64,
    /// Where they were: `outbox {schema}: n`, `{stream} / {group}: lag n, pending n`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_where: Vec<String>,
}

impl Accounting {
    /// Nothing lost, nothing duplicated, nothing stale.
    pub fn clean(&self) -> bool {
        self.problems().is_empty()
    }

    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let tallies = [
            ("declarations", &self.declarations),
            ("declarations in scoring", &self.declarations_in_scoring),
            ("check-ins", &self.checkins),
            ("scans", &self.scans),
            ("imported rows", &self.import_rows),
            ("imported rows in scoring", &self.import_rows_in_scoring),
        ];
        // Events still pending while every write is where it belongs are not the ledger's business (a consumer
        // group's lag, say, that counts entries it will skip); with writes missing, those may be among them.
        let missing = if self.pending_events > 0 && tallies.iter().any(|(_, t)| t.lost > 0) {
            out.push(format!(
                "{} events still pending after {:.0} s ({}): the suite had not caught up",
                self.pending_events,
                self.settled_after_s,
                self.pending_where.join("; ")
            ));
            "not yet stored (pending)"
        } else {
            "lost"
        };
        for (what, t) in tallies {
            if t.lost > 0 {
                out.push(format!(
                    "{} of {} acknowledged {what} {missing}",
                    t.lost, t.acknowledged
                ));
            }
            if t.duplicated > 0 {
                out.push(format!("{} {what} stored twice", t.duplicated));
            }
        }
        if self.stale_status_documents > 0 {
            out.push(format!(
                "{} status documents in Redis older than PostgreSQL's",
                self.stale_status_documents
            ));
        }
        out
    }
}

/// Waits until the events have settled (every outbox published, every consumer group caught up, asked cheaply every
/// 2 s), then checks the ledger against the suite's stores; again every 5 s while something is missing, until `settle`
/// has passed. (A full check every second scanned scoring's facts on the suite's half core and slowed the very
/// catching-up it waited for.)
pub async fn check(suite: &Suite, ledger: &Ledger, settle: Duration) -> anyhow::Result<Accounting> {
    let (db, conn) = tokio_postgres::connect(&suite.db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let mut redis =
        redis::aio::ConnectionManager::new(redis::Client::open(suite.redis_url.as_str())?).await?;
    let started = Instant::now();
    while started.elapsed() < settle
        && backlog(&db, &mut redis, &suite.prefix)
            .await
            .map_or(1, |(n, _)| n)
            > 0
    {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    loop {
        let mut a = once(&db, &mut redis, &suite.prefix, ledger).await?;
        a.settled_after_s = started.elapsed().as_secs_f64();
        (a.pending_events, a.pending_where) = backlog(&db, &mut redis, &suite.prefix).await?;
        if a.clean() || started.elapsed() >= settle {
            return Ok(a);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Events not yet where they are going: outbox rows not yet published, and entries of every stream that a consumer
/// group has not yet read or not yet acknowledged: how many, and where.
async fn backlog(
    db: &tokio_postgres::Client,
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
) -> anyhow::Result<(u64, Vec<String>)> {
    let (mut total, mut places) = (0u64, Vec::new());
    let schemas = db
        .query(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'",
            &[],
        )
        .await?;
    for row in schemas {
        let schema: String = row.get(0);
        let n: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"),
                &[],
            )
            .await?
            .get(0);
        total += n.max(0) as u64;
        if n > 0 {
            places.push(format!("outbox {schema}: {n}"));
        }
    }
    let streams: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}events:*"))
        .query_async(redis)
        .await?;
    for stream in streams.iter().filter(|s| !s.ends_with(":dead")) {
        let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(redis)
            .await
            .unwrap_or_default();
        // A group has read everything when its last delivered id is the stream's last. (Its `lag` is no guide: it
        // counts from `entries-read`, which a replay after an AOF restart left 92-128 short for good.)
        let info: std::collections::HashMap<String, redis::Value> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(stream)
            .query_async(redis)
            .await
            .unwrap_or_default();
        let text = |v: Option<&redis::Value>| match v {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(redis::Value::SimpleString(s)) => s.clone(),
            _ => String::new(),
        };
        let last = text(info.get("last-generated-id"));
        for group in groups {
            let count = |field: &str| match group.get(field) {
                Some(redis::Value::Int(n)) => (*n).max(0) as u64,
                _ => 0,
            };
            let lag = match text(group.get("last-delivered-id")) == last {
                true => 0,
                false => count("lag").max(1),
            };
            let pending = count("pending");
            total += lag + pending;
            if lag + pending > 0 {
                let name = text(group.get("name"));
                let stream = stream.strip_prefix(prefix).unwrap_or(stream);
                places.push(format!("{stream} / {name}: lag {lag}, pending {pending}"));
            }
        }
    }
    Ok((total, places))
}

async fn once(
    db: &tokio_postgres::Client,
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
    ledger: &Ledger,
) -> anyhow::Result<Accounting> {
    let (d, dr) = distinct_and_rows(
        db,
        "SELECT count(DISTINCT id), count(*) FROM declaration.declarations WHERE id = ANY($1)",
        &ledger.declarations,
    )
    .await?;
    let current = db
        .query_one(
            "SELECT count(*) FILTER (WHERE superseded_at IS NULL),
                    count(*) FILTER (WHERE superseded_at IS NULL AND EXISTS
                      (SELECT 1 FROM scoring.f_declarations f WHERE f.declaration_id = d.id))
             FROM declaration.declarations d WHERE id = ANY($1)",
            &[&ledger.declarations],
        )
        .await?;
    let (current, in_scoring): (i64, i64) = (current.get(0), current.get(1));
    let (c, cr) = distinct_and_rows(
        db,
        "SELECT count(DISTINCT id), count(*) FROM verification.scan_events
         WHERE kind = 'checkin' AND id = ANY($1)",
        &ledger.checkins,
    )
    .await?;
    // Every check-in of the load carries an Idempotency-Key, and verification keeps each key with the check-in it
    // named first: a check-in of the same people stored under no key is one recorded again for a retry.
    let again: i64 = db
        .query_one(
            "SELECT count(*) FROM verification.scan_events e
             WHERE kind = 'checkin'
               AND person_id IN (SELECT person_id FROM verification.checkin_keys)
               AND NOT EXISTS (SELECT 1 FROM verification.checkin_keys k WHERE k.checkin_id = e.id)",
            &[],
        )
        .await?
        .get(0);
    let (s, sr) = distinct_and_rows(
        db,
        "SELECT count(DISTINCT id), count(*) FROM verification.scan_events
         WHERE kind IN ('scan', 'id_card') AND id = ANY($1)",
        &ledger.scans,
    )
    .await?;
    let (n, nr) = distinct_and_rows(
        db,
        "SELECT count(DISTINCT (id_index, sample_time, lab)), count(*) FROM declaration.nat_results
         WHERE lab = ANY($1)",
        &ledger.import_labs,
    )
    .await?;
    let (f, fr) = distinct_and_rows(
        db,
        "SELECT count(DISTINCT (id_index, sample_time, lab)), count(*) FROM scoring.f_nat WHERE lab = ANY($1)",
        &ledger.import_labs,
    )
    .await?;
    let imported = ledger.import_labs.len() as u64 * IMPORT_ROWS;
    let (stale, compared) = stale_documents(db, redis, prefix).await?;
    Ok(Accounting {
        declarations: Tally::of(ledger.declarations.len() as u64, d, dr),
        declarations_in_scoring: Tally::of(current.max(0) as u64, in_scoring, in_scoring),
        checkins: Tally::of(ledger.checkins.len() as u64, c, cr + again),
        scans: Tally::of(ledger.scans.len() as u64, s, sr),
        import_rows: Tally::of(imported, n, nr),
        import_rows_in_scoring: Tally::of(imported, f, fr),
        stale_status_documents: stale,
        status_documents: compared,
        ..Default::default()
    })
}

/// The two counts a tally query answers (distinct rows, all rows) for the acknowledged ids or labs in `$1`.
async fn distinct_and_rows(
    db: &tokio_postgres::Client,
    sql: &str,
    acknowledged: &(dyn tokio_postgres::types::ToSql + Sync),
) -> anyhow::Result<(i64, i64)> {
    let row = db.query_one(sql, &[acknowledged]).await?;
    Ok((row.get(0), row.get(1)))
}

/// Every person's status version in PostgreSQL against their document's in Redis: (older in Redis, compared).
async fn stale_documents(
    db: &tokio_postgres::Client,
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
) -> anyhow::Result<(u64, u64)> {
    let rows = db
        .query("SELECT person_id, version FROM scoring.status", &[])
        .await?;
    let (mut stale, mut compared) = (0, 0);
    for chunk in rows.chunks(1_000) {
        let mut pipe = redis::pipe();
        for row in chunk {
            let person: Uuid = row.get(0);
            pipe.hget(
                format!("{prefix}{}", hc_platform::store::status_key(person)),
                hc_platform::status_document::VERSION_FIELD,
            );
        }
        let versions: Vec<Option<i64>> = pipe.query_async(redis).await?;
        for (row, version) in chunk.iter().zip(versions) {
            if let Some(v) = version {
                compared += 1;
                if v < row.get::<_, i64>(1) {
                    stale += 1;
                }
            }
        }
    }
    Ok((stale, compared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_what_is_missing_and_what_is_there_twice() {
        let t = Tally::of(10, 8, 9);
        assert_eq!((t.stored, t.lost, t.duplicated), (8, 2, 1));
        let a = Accounting {
            declarations: t,
            ..Default::default()
        };
        assert_eq!(
            a.problems(),
            vec![
                "2 of 10 acknowledged declarations lost".to_owned(),
                "1 declarations stored twice".to_owned()
            ]
        );
        assert!(Accounting::default().clean());
    }
}
