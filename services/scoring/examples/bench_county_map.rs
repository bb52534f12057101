//! County map benchmark (issue 19): with N people in the projection, spread over ten counties of Hangzhou, and 14
//! days of trajectories and check-ins, how long a round of the levels, of today's and yesterday's indices, and of
//! every day's indices takes, and what a view of the map costs once rendered against its first render, in one run.
//!
//!     make bench-county-map                   # 1,000,000 people
//!     cargo run --release -p scoring --example bench_county_map -- 100000
//!
//! It uses a scratch database next to `HC_TEST_DATABASE_URL` (`hc_platform::testing::TestDatabase`) and drops it.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use hc_domain::RegionCode;
use hc_platform::settings::{Settings, load_with};
use hc_platform::store::Store;
use hc_platform::testing::TestDatabase;
use scoring::county_map::{CountyMap, IndexDays};
use scoring::recolour::Recolourer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let people: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // Dropped with its connections when it goes out of scope, after the run.
    let scratch = TestDatabase::create().await.context("scratch database")?;
    run(&scratch.url, people).await
}

async fn run(url: &str, people: i64) -> anyhow::Result<()> {
    let settings: Settings<scoring::ScoringSettings> =
        load_with(scoring::DEFAULT_CONFIG, "scoring", None, |b| {
            b.set_override("database.url", url)
                .and_then(|b| b.set_override("redis.url", hc_platform::testing::redis_url()))
                .and_then(|b| {
                    b.set_override("redis.key_prefix", format!("bench:{}:", std::process::id()))
                })
                .expect("overrides")
        })?;
    let tls = hc_platform::tls::Tls::from_settings(&settings.platform.tls)?;
    let db = hc_platform::db::pool(&settings.platform.database, &tls, scoring::SCHEMA)?;
    scoring::prepare(&db).await?;
    let store = Store::connect(&settings.platform.redis, &tls).await?;

    let t = Instant::now();
    seed(&db, people).await?;
    let visits = scoring::count(&db.get().await?, "SELECT count(*) FROM f_visits").await?;
    println!(
        "seeded {people} people in 10 counties, {visits} visits over 14 days, in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let service = Arc::new(settings.service.clone());
    let recolourer = Arc::new(Recolourer::new(db.clone(), store, service.clone()));
    let map = CountyMap::new(db.clone(), service.county_map.clone(), recolourer);
    let timed = |what: &'static str, t: Instant| {
        let s = t.elapsed().as_secs_f64();
        println!("{what}: {s:.2} s");
        s
    };
    let t = Instant::now();
    let done = map.levels().await?.context("levels lock")?;
    timed("levels round (after every import)", t);
    println!(
        "  {} counties changed level, {} risks set",
        done.levels, done.risks
    );
    let t = Instant::now();
    let series = map
        .indices(IndexDays::Series)
        .await?
        .context("indices lock")?;
    let series_s = timed(
        "indices of every day of 14 (at start, after trajectories or case lists)",
        t,
    );
    println!("  {series} county-days stored");
    let t = Instant::now();
    map.indices(IndexDays::Recent)
        .await?
        .context("indices lock")?;
    let recent_s = timed("indices of today and yesterday (every scheduled round)", t);
    let interval = service.county_map.interval_ms as f64 / 1000.0;
    println!(
        "  at one round every {interval:.0} s: {:.1} % of one core's time in rounds ({:.1} % for a 14-day round)",
        100.0 * recent_s / interval,
        100.0 * series_s / interval
    );

    let zhejiang = RegionCode::parse("330000")?;
    let t = Instant::now();
    let (_, body) = map.view(zhejiang).await?;
    let first = t.elapsed().as_secs_f64();
    let n = 100_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(map.view(zhejiang).await?);
    }
    let each = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "map view: first render {:.1} ms ({} bytes); from memory {:.2} µs each over {n} views ({:.0} x cheaper)",
        first * 1e3,
        body.len(),
        each * 1e6,
        first / each
    );
    Ok(())
}

/// Ten counties of Hangzhou; everyone registered in one of them and green; each person seen by a carrier in one of
/// them on one of the last 14 days, half of them checked in at a venue there; 0.01 % cases, 0.09 % close contacts,
/// declarations today for 70 %, a negative test yesterday for 60 %.
async fn seed(db: &deadpool_postgres::Pool, people: i64) -> anyhow::Result<()> {
    let client = db.get().await?;
    let batch = r"
        INSERT INTO subjects (id_index, person_id, home_region)
        SELECT decode(md5(i::text) || md5('x' || i::text), 'hex'), md5('p' || i::text)::uuid,
               (ARRAY['330102','330105','330106','330108','330109','330110','330111','330112','330122','330127'])[1 + i % 10]
        FROM generate_series(1, $1::bigint) AS i;
        INSERT INTO f_visits (id_index, region, first_seen, last_seen, source)
        SELECT decode(md5(i::text) || md5('x' || i::text), 'hex'),
               (ARRAY['330102','330105','330106','330108','330109','330110','330111','330112','330122','330127'])[1 + (i / 7) % 10],
               now() - ((i % 14) || ' days')::interval - interval '3 hours', now() - ((i % 14) || ' days')::interval,
               s
        FROM generate_series(1, $1::bigint) AS i, unnest(ARRAY['carrier', 'venue']) AS s
        WHERE s = 'carrier' OR i % 2 = 0;
        INSERT INTO f_cases (id_index, status, since, until, region)
        SELECT id_index, CASE WHEN n % 10 = 0 THEN 'confirmed' ELSE 'close_contact' END,
               (now() AT TIME ZONE 'Asia/Shanghai')::date - (n % 14)::int, NULL, home_region
        FROM (SELECT id_index, home_region, row_number() OVER () AS n FROM subjects) s WHERE n % 997 = 0;
        INSERT INTO f_declarations (id_index, day, declaration_id, fever, symptoms, contact_date)
        SELECT id_index, (now() AT TIME ZONE 'Asia/Shanghai')::date, md5('d' || person_id::text)::uuid, false, false, NULL
        FROM subjects WHERE get_byte(id_index, 0) < 179;
        INSERT INTO f_nat (id_index, sample_time, positive, lab)
        SELECT id_index, now() - interval '1 day', false, 'lab-1' FROM subjects WHERE get_byte(id_index, 1) < 154;
        INSERT INTO status (person_id, colour, variant, reasons, requirements, valid_until, rule_set, version,
                            computed_at, evaluated_at, basis, recheck_at, negative_test_at)
        SELECT person_id, 'green', 'standard', '[]', '[]', NULL, '000000@1', 1, now(), now(), 0, now() + interval '1 day',
               NULL
        FROM subjects;
    ";
    for statement in batch.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if statement.contains("$1") {
            client.execute(statement, &[&people]).await?;
        } else {
            client.execute(statement, &[]).await?;
        }
    }
    client.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}
