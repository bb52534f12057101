//! Recolouring benchmark (issue 5): with N people in the projection, a region turns high risk so that M of them
//! are affected; how long until every affected status is in PostgreSQL and Redis, and how many rule evaluations
//! per second that is, against the compiled rule set alone (the ceiling) in the same run.
//!
//!     make bench-scoring                      # 1,000,000 people, 200,000 affected
//!     cargo run --release -p scoring --example bench_recolour -- 100000 20000
//!
//! It uses a scratch database next to `HC_TEST_DATABASE_URL` and a scratch Redis prefix, and drops both.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use hc_platform::settings::{Settings, load_with};
use hc_platform::store::Store;
use scoring::facts::document;
use scoring::recolour::{Recolourer, load_book, load_risk};
use scoring::rules::Evaluator;
use tokio_postgres::NoTls;

const REGION: &str = "610113";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let people = args.first().copied().unwrap_or(1_000_000) as i64;
    let affected = args.get(1).copied().unwrap_or(200_000) as i64;
    anyhow::ensure!(affected <= people, "affected must not exceed people");
    let admin_url = hc_platform::testing::admin_database_url();
    let name = format!("hc_bench_scoring_{}", std::process::id());
    let (admin, conn) = tokio_postgres::connect(&admin_url, NoTls)
        .await
        .context("admin connection")?;
    tokio::spawn(conn);
    admin
        .execute(&format!("CREATE DATABASE {name}"), &[])
        .await?;
    let url = {
        let mut u = url_without_db(&admin_url);
        u.push_str(&name);
        u
    };
    let outcome = run(&url, people, affected).await;
    if std::env::var("BENCH_KEEP").is_ok() {
        println!("kept database {name}");
    } else {
        admin
            .execute(&format!("DROP DATABASE {name} WITH (FORCE)"), &[])
            .await?;
    }
    outcome
}

fn url_without_db(url: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/")
}

async fn run(url: &str, people: i64, affected: i64) -> anyhow::Result<()> {
    let prefix = format!("bench:{}:", std::process::id());
    let settings: Settings<scoring::ScoringSettings> =
        load_with(scoring::DEFAULT_CONFIG, "scoring", None, |b| {
            b.set_override("database.url", url)
                .and_then(|b| b.set_override("database.pool_max_size", 8))
                .and_then(|b| b.set_override("redis.url", hc_platform::testing::redis_url()))
                .and_then(|b| b.set_override("redis.key_prefix", prefix.clone()))
                .expect("overrides")
        })?;
    let tls = hc_platform::tls::Tls::from_settings(&settings.platform.tls)?;
    let db = hc_platform::db::pool(&settings.platform.database, &tls, scoring::SCHEMA)?;
    scoring::prepare(&db).await?;
    let store = Store::connect(&settings.platform.redis, &tls).await?;

    let started = Instant::now();
    seed(&db, people, affected).await?;
    println!(
        "seeded {people} people ({affected} of them seen in {REGION}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let service = Arc::new(settings.service.clone());
    let recolourer = Recolourer::new(db.clone(), store.clone(), service.clone());
    // The projection as it stands in service: every person's fact digest up to date (the event handlers write it
    // whenever they evaluate someone; the scheduler rebuilds any left behind, which is what runs here).
    let t = Instant::now();
    let digests =
        scoring::loader::refresh_digests(&db, recolourer.since(chrono::Utc::now()), 50_000).await?;
    db.get()
        .await?
        .batch_execute("VACUUM ANALYZE subjects")
        .await?;
    println!(
        "built {digests} fact digests in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // The region turns high, as PUT /v1/regions/{code}/risk records it, then the recolouring it starts.
    let client = db.get().await?;
    client
        .execute(
            "INSERT INTO region_risk (region, level, effective_from, updated_by) VALUES ($1, 'high', now(), 'bench')",
            &[&REGION],
        )
        .await?;
    if let Ok(pause) = std::env::var("BENCH_PAUSE_S") {
        // Time to attach a profiler to the recolouring alone.
        println!("recolouring in {pause} s");
        tokio::time::sleep(std::time::Duration::from_secs(pause.parse().unwrap_or(5))).await;
    }
    let t0 = Instant::now();
    let summary = scoring::scheduler::apply_due_risks(&recolourer).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    if let Ok(pause) = std::env::var("BENCH_PAUSE_S") {
        // And after it, so that a profile of a few seconds holds the recolouring only.
        println!("recoloured; checking in {pause} s");
        tokio::time::sleep(std::time::Duration::from_secs(pause.parse().unwrap_or(5))).await;
    }

    let red = scoring::count(&client, "SELECT count(*) FROM status WHERE colour = 'red'").await?;
    let in_redis = count_redis(&store, &prefix).await?;
    println!(
        "recoloured: {} evaluated, {} changed, {red} red in PostgreSQL, {in_redis} statuses in Redis",
        summary.evaluated, summary.changed
    );
    anyhow::ensure!(
        red == affected && in_redis as i64 == affected,
        "not every affected status landed"
    );
    println!(
        "time until every affected status is in PostgreSQL and Redis: {elapsed:.2} s ({:.0} people/s, {:.0} rule evaluations/s)",
        summary.evaluated as f64 / elapsed,
        summary.evaluations as f64 / elapsed
    );

    // The ceiling: the same people's fact documents, built once, evaluated by the compiled rule set alone on
    // every core.
    let book = Arc::new(load_book(&client).await?);
    let risk = load_risk(&client).await?;
    let indexes =
        scoring::recolour::regions::visitors(&client, REGION, recolourer.since(chrono::Utc::now()))
            .await?;
    let since = chrono::Utc::now() - chrono::Duration::days(service.lookback_days);
    let now = chrono::Utc::now();
    let mut docs = Vec::with_capacity(indexes.len());
    for chunk in indexes.chunks(20_000) {
        for l in scoring::loader::lock_and_load(&client, chunk, since, false)
            .await?
            .0
        {
            let home = l.subject.home_region;
            docs.push((home.clone(), document(&l.facts, &home, now, &risk)));
        }
    }
    let docs = Arc::new(docs);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let t1 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (docs, book) = (docs.clone(), book.clone());
            std::thread::spawn(move || {
                let mut evaluator = Evaluator::default();
                let mut red = 0u64;
                for (home, facts) in docs.iter().skip(t).step_by(threads) {
                    let set = book.for_home(home).expect("rule set");
                    if evaluator.evaluate(&set, facts).colour == hc_domain::Colour::Red {
                        red += 1;
                    }
                }
                (evaluator.evaluations, red)
            })
        })
        .collect();
    let (mut evaluations, mut red_again) = (0, 0);
    for h in handles {
        let (e, r) = h
            .join()
            .map_err(|_| anyhow::anyhow!("evaluation thread panicked"))?;
        evaluations += e;
        red_again += r;
    }
    let ceiling_s = t1.elapsed().as_secs_f64();
    anyhow::ensure!(red_again as i64 == affected, "the ceiling run disagrees");
    println!(
        "compiled rule set alone ({threads} threads): {} people in {ceiling_s:.2} s = {:.0} people/s, {:.0} rule evaluations/s",
        docs.len(),
        docs.len() as f64 / ceiling_s,
        evaluations as f64 / ceiling_s
    );
    println!(
        "recolouring ran at {:.0} % of the ceiling (rule evaluations/s)",
        100.0 * (summary.evaluations as f64 / elapsed) / (evaluations as f64 / ceiling_s)
    );
    clear_redis(&store, &prefix).await?;
    Ok(())
}

/// A realistic projection: everyone registered and green, a clean declaration yesterday and a negative test two
/// days ago; the affected seen in the region within the last ten days, everyone else at home.
async fn seed(db: &deadpool_postgres::Pool, people: i64, affected: i64) -> anyhow::Result<()> {
    let client = db.get().await?;
    let batch = r"
        INSERT INTO subjects (id_index, person_id, home_region)
        SELECT decode(md5(i::text) || md5('x' || i::text), 'hex'), md5('p' || i::text)::uuid,
               (ARRAY['440106','440104','440111','440112'])[1 + i % 4]
        FROM generate_series(1, $1::bigint) AS i;
        INSERT INTO f_declarations (id_index, day, declaration_id, fever, symptoms, contact_date)
        SELECT id_index, (now() AT TIME ZONE 'Asia/Shanghai')::date - 1, md5('d' || person_id::text)::uuid, false, false, NULL
        FROM subjects;
        INSERT INTO f_nat (id_index, sample_time, positive, lab)
        SELECT id_index, now() - interval '2 days', false, 'lab-1' FROM subjects;
        INSERT INTO f_visits (id_index, region, first_seen, last_seen, source)
        SELECT decode(md5(i::text) || md5('x' || i::text), 'hex'),
               CASE WHEN i <= $2::bigint THEN '610113' ELSE '440106' END,
               now() - ((i % 10) || ' days')::interval - interval '3 hours',
               now() - ((i % 10) || ' days')::interval,
               'carrier'
        FROM generate_series(1, $1::bigint) AS i;
        INSERT INTO status (person_id, colour, variant, reasons, requirements, valid_until, rule_set, version,
                            computed_at, evaluated_at, basis, recheck_at, negative_test_at)
        SELECT person_id, 'green', 'standard', '[]', '[]', NULL, '000000@1', 1, now(), now(), 0, now() + interval '1 day',
               now() - interval '2 days'
        FROM subjects;
    ";
    for statement in batch.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            match statement.matches('$').count() {
                0 => vec![],
                _ if statement.contains("$2") => vec![&people, &affected],
                _ => vec![&people],
            };
        client.execute(statement, &params).await?;
    }
    client.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

async fn count_redis(store: &Store, prefix: &str) -> anyhow::Result<usize> {
    let mut conn = store.conn();
    let mut cursor: u64 = 0;
    let mut n = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}status:*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await?;
        n += keys.len();
        cursor = next;
        if cursor == 0 {
            return Ok(n);
        }
    }
}

async fn clear_redis(store: &Store, prefix: &str) -> anyhow::Result<()> {
    let mut conn = store.conn();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut conn)
                .await?;
        }
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}
