//! A Redis Cluster of the test's own (three primaries, no replicas) with one node killed: a command for that node's
//! slots fails at once, as on a single node, instead of retrying until its response timeout runs out (redis-rs's
//! default: 16 retries, from 1.28 s apart), and the other nodes' slots keep answering. The fallbacks behind Redis
//! only help a request that learns quickly that Redis is not there.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hc_platform::settings::RedisSettings;
use hc_platform::store::Store;
use hc_platform::testing::{free_port, wait_for_port};

/// A cluster node of this test: its port, its bus port (given, since port + 10000 may not exist) and its directory.
struct Node {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Node {
    fn start() -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("hc-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("node dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-port"])
            .arg(free_port().to_string())
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        wait_for_port(port);
        Self {
            child: Some(child),
            port,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A key whose slot `node` serves (asked of the node itself: a key of another node's answers MOVED).
async fn key_served_by(node: &Node) -> String {
    let mut conn = redis::Client::open(node.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("node");
    for n in 0.. {
        let key = format!("probe-{n}");
        if redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<String>>(&mut conn)
            .await
            .is_ok()
        {
            return key;
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_down_fails_its_commands_quickly_and_the_others_answer() {
    let mut nodes: Vec<Node> = (0..3).map(|_| Node::start()).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(created.success(), "the cluster was not created");
    let settings = RedisSettings {
        url: String::new().into(),
        cluster_urls: nodes.iter().map(Node::url).collect::<Vec<_>>().join(","),
        key_prefix: String::new(),
        response_timeout_ms: 2000,
    };
    // The nodes agree on the slots a moment after the create: until then a client may be refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    let store = loop {
        match Store::connect(&settings, &hc_platform::tls::Tls::system()).await {
            Ok(store) if store.ping().await.is_ok() => break store,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("the cluster never answered: {:?}", other.err()),
        }
    };
    let doomed = key_served_by(&nodes[0]).await;
    let spared = key_served_by(&nodes[1]).await;
    let mut conn = store.conn();
    for key in [&doomed, &spared] {
        redis::cmd("SET")
            .arg(key)
            .arg("1")
            .query_async::<()>(&mut conn)
            .await
            .expect("set while every node is up");
    }

    nodes[0].kill();
    let started = Instant::now();
    let lost: redis::RedisResult<Option<String>> =
        redis::cmd("GET").arg(&doomed).query_async(&mut conn).await;
    let waited = started.elapsed();
    assert!(lost.is_err(), "the node is down: {lost:?}");
    // The dead node refuses connections at once and the others still name it for its slots: one retry after at most
    // 0.1 s, and the command fails. With redis-rs's defaults (16 retries, from 1.28 s apart) it waited out its whole
    // response timeout (2 s here) and failed as timed out.
    assert!(
        waited < Duration::from_secs(1),
        "a command for the dead node's slots failed only after {waited:?}"
    );
    let answered: Option<String> = redis::cmd("GET")
        .arg(&spared)
        .query_async(&mut conn)
        .await
        .expect("the other nodes still answer");
    assert_eq!(answered.as_deref(), Some("1"));
}
