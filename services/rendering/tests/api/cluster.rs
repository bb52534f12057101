//! On a Redis Cluster the show-code path reads a person's status and code cache in one pipeline: both keys must
//! hash to one slot (the person id is their hash tag), or the cluster client refuses the pipeline as cross-slot.

use hc_platform::settings::RedisSettings;
use hc_platform::store::Store;
use rendering::cache::{self, Format};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_status_and_code_cache_are_read_together_on_a_redis_cluster() {
    let store = Store::connect(
        &RedisSettings {
            url: String::new().into(),
            cluster_urls: hc_platform::testing::redis_cluster_urls(),
            key_prefix: format!("hc:test-{}:", Uuid::new_v4()),
            response_timeout_ms: 2000,
        },
        &hc_platform::tls::Tls::system(),
    )
    .await
    .expect("cluster");
    // Several people, so that without the hash tag some pair of keys would land in different slots.
    for _ in 0..20 {
        let person = Uuid::new_v4();
        let found = cache::read(&store, person, 12345, Format::Svg).await;
        assert!(found.is_ok(), "{:?}", found.err());
        assert!(found.expect("read").status_version.is_none());
    }
}
