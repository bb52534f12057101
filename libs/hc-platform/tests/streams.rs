//! Stream consumers against a real Redis: an entry left unacknowledged by a consumer that went away is taken over
//! by another consumer of the group, not left pending forever.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hc_platform::settings::RedisSettings;
use hc_platform::store::Store;
use hc_platform::streams::Consumer;
use hc_platform::testing::TestRedis;
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_abandoned_by_a_consumer_is_taken_over_by_another() {
    let redis = TestRedis::new();
    let store = Store::connect(&RedisSettings {
        url: redis.url.clone().into(),
        cluster_urls: String::new(),
        key_prefix: redis.prefix.clone(),
        response_timeout_ms: 1000,
    })
    .await
    .expect("redis");
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
