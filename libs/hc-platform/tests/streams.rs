//! Stream consumers against a real Redis: an entry left unacknowledged by a consumer that went away is taken over
//! by another consumer of the group, not left pending forever.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hc_platform::settings::RedisSettings;
use hc_platform::store::Store;
use hc_platform::streams::Consumer;
use hc_platform::testing::TestRedis;
use redis::AsyncCommands;

async fn connect(redis: &TestRedis) -> Store {
    Store::connect(
        &RedisSettings {
            url: redis.url.clone().into(),
            cluster_urls: String::new(),
            key_prefix: redis.prefix.clone(),
            response_timeout_ms: 1000,
        },
        &hc_platform::tls::Tls::system(),
    )
    .await
    .expect("redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_abandoned_by_a_consumer_is_taken_over_by_another() {
    let redis = TestRedis::new();
    let store = connect(&redis).await;
    let gone = Consumer::new(store.clone(), "test.things", "tests", "replica-gone", 10);
    gone.ensure_group().await.expect("group");
    store
        .conn()
        .xadd::<_, _, _, _, ()>(
            store.key("events:test.things"),
            "*",
            &[("event_id", "src:1"), ("payload", "{\"n\":1}")],
        )
        .await
        .expect("xadd");
    // The first replica takes the entry and fails on it (then it is gone for good).
    let failed = gone
        .process_next_batch(|_| async { anyhow::bail!("crashed mid-way") })
        .await;
    assert!(failed.is_err());

    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = |d: hc_platform::streams::Delivered| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("lock").push(d.event_id);
            Ok(())
        }
    };
    let patient = Consumer::new(store.clone(), "test.things", "tests", "replica-new", 10);
    assert_eq!(
        patient.process_next_batch(handler).await.expect("step"),
        0,
        "before the claim time, another replica's pending entry is left alone"
    );
    let survivor = Consumer::new(store.clone(), "test.things", "tests", "replica-new-2", 10)
        .claiming_after(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(survivor.process_next_batch(handler).await.expect("step"), 1);
    assert_eq!(*seen.lock().expect("lock"), vec!["src:1".to_owned()]);
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(store.key("events:test.things"))
        .arg("tests")
        .query_async(&mut store.conn())
        .await
        .expect("xpending");
    assert!(
        matches!(&pending, redis::Value::Array(v) if v.first() == Some(&redis::Value::Int(0))),
        "nothing left pending: {pending:?}"
    );
}

/// Adds events `src:{n}` with payload `{"n": n}` to the stream `test.grouped`.
async fn add_numbered(store: &Store, numbers: std::ops::RangeInclusive<i64>) {
    for n in numbers {
        store
            .conn()
            .xadd::<_, _, _, _, ()>(
                store.key("events:test.grouped"),
                "*",
                &[
                    ("event_id", format!("src:{n}")),
                    ("payload", format!("{{\"n\":{n}}}")),
                ],
            )
            .await
            .expect("xadd");
    }
}

/// A grouped consumer hands a whole batch over at once; a batch with a malformed event in it is taken again one
/// event at a time, so that only that event goes to the dead-letter stream, and a transient failure leaves it and
/// every later event pending, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grouped_batch_that_fails_is_handled_one_event_at_a_time() {
    // The process's metrics recorder, installed before anything records.
    let metrics = hc_platform::metrics::handle();
    let redis = TestRedis::new();
    let store = connect(&redis).await;
    let consumer = Consumer::new(store.clone(), "test.grouped", "tests", "replica", 10);
    consumer.ensure_group().await.expect("group");
    add_numbered(&store, 1..=4).await;
    // Calls of the handler, each the events it was given; event 3 is malformed the first time round, and the
    // transaction the handler stands for applies nothing when any event of it fails.
    let calls = Arc::new(Mutex::new(Vec::<Vec<i64>>::new()));
    let applied = Arc::new(Mutex::new(Vec::<i64>::new()));
    let transient_on = Arc::new(Mutex::new(None::<i64>));
    let handler = |events: Vec<hc_platform::streams::Delivered>| {
        let (calls, applied, transient_on) = (calls.clone(), applied.clone(), transient_on.clone());
        async move {
            let ns: Vec<i64> = events
                .iter()
                .map(|e| e.payload["n"].as_i64().expect("n"))
                .collect();
            calls.lock().expect("lock").push(ns.clone());
            if ns.contains(&3) {
                anyhow::bail!(hc_platform::streams::Malformed("three".into()));
            }
            if let Some(t) = *transient_on.lock().expect("lock")
                && ns.contains(&t)
            {
                anyhow::bail!("the database is away");
            }
            applied.lock().expect("lock").extend(ns);
            Ok(())
        }
    };
    assert_eq!(
        consumer
            .process_next_group(true, handler)
            .await
            .expect("step"),
        4
    );
    assert_eq!(
        *calls.lock().expect("lock"),
        vec![vec![1, 2, 3, 4], vec![1], vec![2], vec![3], vec![4]]
    );
    assert_eq!(*applied.lock().expect("lock"), vec![1, 2, 4]);
    let dead: Vec<redis::streams::StreamId> = store
        .conn()
        .xrange_all::<_, redis::streams::StreamRangeReply>(store.key("events:test.grouped:dead"))
        .await
        .expect("dead letters")
        .ids;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].get::<String>("event_id").as_deref(), Some("src:3"));

    // A whole batch applied at once, then a transient failure: the batch is taken again one by one and the
    // consumer stops at the failing event, which stays pending with the one after it.
    add_numbered(&store, 5..=7).await;
    calls.lock().expect("lock").clear();
    *transient_on.lock().expect("lock") = Some(6);
    assert!(consumer.process_next_group(true, handler).await.is_err());
    assert_eq!(
        *calls.lock().expect("lock"),
        vec![vec![5, 6, 7], vec![5], vec![6]]
    );
    *transient_on.lock().expect("lock") = None;
    calls.lock().expect("lock").clear();
    assert_eq!(
        consumer
            .process_next_group(true, handler)
            .await
            .expect("step"),
        2,
        "the pending events come again, the failing one first"
    );
    assert_eq!(*calls.lock().expect("lock"), vec![vec![6, 7]]);
    assert_eq!(*applied.lock().expect("lock"), vec![1, 2, 4, 5, 6, 7]);
    // Each applied event's wait in the stream is measured, as a histogram with buckets (the recolour-lag alert).
    let metrics = metrics.render();
    assert!(
        metrics.contains("stream_event_age_seconds_bucket{stream=\"test.grouped\",le=\"0.5\"}"),
        "{metrics}"
    );
}

/// A Redis that stops answering (a network slower than the response timeout) opens the store's breaker after a few
/// timeouts: from then on a command is refused at once instead of waiting out its timeout, so a request with several
/// commands takes its fallbacks in milliseconds, not seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stops_answering_is_refused_at_once_after_a_few_timeouts() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = TestRedis::new();
    let target: std::net::SocketAddr = redis
        .url
        .trim_start_matches("redis://")
        .parse()
        .expect("host:port");
    // A proxy whose answers can be withheld.
    let silent = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let withheld = silent.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(target).await.expect("redis");
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
            let withheld = withheld.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    if !withheld.load(Ordering::SeqCst) && cw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let store = Store::connect(
        &RedisSettings {
            url: format!("redis://127.0.0.1:{port}").into(),
            cluster_urls: String::new(),
            key_prefix: redis.prefix.clone(),
            response_timeout_ms: 200,
        },
        &hc_platform::tls::Tls::system(),
    )
    .await
    .expect("redis");
    store.ping().await.expect("answers at first");
    silent.store(true, Ordering::SeqCst);
    let mut waited = Vec::new();
    for _ in 0..8 {
        let started = std::time::Instant::now();
        assert!(store.ping().await.is_err());
        waited.push(started.elapsed());
    }
    assert!(
        waited[0] >= Duration::from_millis(150),
        "the first commands wait out their timeout: {waited:?}"
    );
    assert!(
        waited[6..].iter().all(|w| *w < Duration::from_millis(50)),
        "then they are refused at once: {waited:?}"
    );
}
