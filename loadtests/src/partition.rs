//! Scenario 6 of `make chaos`: a network partition between one replica and Redis. A second replica of a service
//! (rendering, verification, identity, declaration or scoring) runs in a network namespace of its own (`ip netns`,
//! a veth pair to the host), reaching Redis, PostgreSQL and the other services through forwarders on the host's end
//! of the pair; a balancer in front of both replicas sends each new connection to a ready one, as a Kubernetes Service
//! does, probing `/health/ready` as a readiness probe would. The fault drops the replica's packets to Redis (iptables
//! in its namespace: a partition, not a refusal); the replica must report not ready, the balancer take it out, and
//! the other replica carry the load. A cut between services drops a rendering replica's packets to scoring instead:
//! rendering needs scoring only for a status Redis lacks, so the replica must stay in and keep serving, its breaker
//! on scoring bounding what the cut costs.
//!
//! The probe runs every second and takes a replica out after two failures in a row (the manifests probe every 5 s,
//! so a cluster takes about 10 s where this takes 2-3 s: the fault here lasts 10 s). A backend taken out has its
//! connections closed, as an L7 balancer (an ingress, Envoy) stops sending it requests at once; kube-proxy alone
//! would leave established keep-alive connections where they were.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

use crate::proxy::Proxy;
use crate::suite::{Suite, lock};

const NAMESPACE: &str = "hc-chaos";
const HOST_VETH: &str = "hc-chaos0";
const REPLICA_VETH: &str = "hc-chaos1";
const HOST_IP: &str = "10.203.0.1";
const REPLICA_IP: &str = "10.203.0.2";
/// Where the generator reaches the replicated service during a partition run: the balancer.
const BALANCER_PORT: u16 = 19094;
/// What a replica in the namespace needs from the host: the suite's Redis and PostgreSQL (behind their proxies),
/// identity's keys, scoring (rendering's fallback) and rendering's code-signing keys (verification's).
pub const FORWARDED: [u16; 5] = [
    crate::suite::OWN_REDIS_PORT,
    crate::suite::OWN_POSTGRES_PORT,
    crate::suite::SERVICES[0].1,
    crate::suite::SERVICES[2].1,
    crate::suite::SERVICES[3].1,
];
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
const FAILURES_TO_TAKE_OUT: u32 = 2;

/// What the partition showed, in seconds from the cut and from the heal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionOutcome {
    /// From the cut until the balancer took the cut-off replica out; `None`: it never did.
    pub taken_out_after_s: Option<f64>,
    /// From the heal until it was back in; `None`: never within the run.
    pub back_in_after_s: Option<f64>,
    /// Connections the balancer gave each replica over the run (the one on the host first).
    pub connections: Vec<u64>,
}

/// The namespace, its veth pair and the firewall rule of a cut. Deleted on drop (the host's end goes with it).
struct Namespace;

/// Runs `ip` with `args` (space-separated).
fn ip(args: &str) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args.split(' '))
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "ip {args}: {} (a partition run needs root and iproute2)",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Namespace {
    fn create() -> anyhow::Result<Namespace> {
        // What an interrupted run left behind goes first.
        drop(Namespace);
        ip(&format!("netns add {NAMESPACE}"))?;
        let ns = Namespace;
        for args in [
            format!("link add {HOST_VETH} type veth peer name {REPLICA_VETH}"),
            format!("link set {REPLICA_VETH} netns {NAMESPACE}"),
            format!("addr add {HOST_IP}/30 dev {HOST_VETH}"),
            format!("link set {HOST_VETH} up"),
            format!("netns exec {NAMESPACE} ip addr add {REPLICA_IP}/30 dev {REPLICA_VETH}"),
            format!("netns exec {NAMESPACE} ip link set {REPLICA_VETH} up"),
            format!("netns exec {NAMESPACE} ip link set lo up"),
        ] {
            ip(&args)?;
        }
        Ok(ns)
    }

    /// Drops (`-A`) or stops dropping (`-D`) the namespace's packets to the host's `port`.
    fn firewall(action: &str, port: u16) -> anyhow::Result<()> {
        ip(&format!(
            "netns exec {NAMESPACE} iptables {action} OUTPUT -d {HOST_IP} -p tcp --dport {port} -j DROP"
        ))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&format!("netns del {NAMESPACE}"));
        let _ = ip(&format!("link del {HOST_VETH}"));
    }
}

struct Backend {
    addr: SocketAddr,
    ready: AtomicBool,
    /// Bumped when the backend is taken out: its connections end.
    drained: tokio::sync::watch::Sender<u64>,
    connections: AtomicU64,
    /// When it went out (false) or came back in (true).
    changes: Mutex<Vec<(Instant, bool)>>,
}

/// Sends each new connection to the next ready backend; probes them every second.
pub struct Balancer {
    /// Where it listens.
    pub local: SocketAddr,
    backends: Arc<Vec<Backend>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Balancer {
    pub async fn start(listen: SocketAddr, backends: &[SocketAddr]) -> anyhow::Result<Balancer> {
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let backends: Arc<Vec<Backend>> = Arc::new(
            backends
                .iter()
                .map(|&addr| Backend {
                    addr,
                    ready: AtomicBool::new(true),
                    drained: tokio::sync::watch::Sender::new(0),
                    connections: AtomicU64::new(0),
                    changes: Mutex::new(Vec::new()),
                })
                .collect(),
        );
        let next = Arc::new(AtomicUsize::new(0));
        let accepting = tokio::spawn({
            let backends = backends.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let n = backends.len();
                    let start = next.fetch_add(1, Ordering::Relaxed);
                    // No ready backend: the connection is closed, as a Service without endpoints refuses it.
                    let Some(i) = (0..n)
                        .map(|k| (start + k) % n)
                        .find(|&i| backends[i].ready.load(Ordering::Relaxed))
                    else {
                        continue;
                    };
                    let backends = backends.clone();
                    tokio::spawn(async move { forward(client, &backends[i]).await });
                }
            }
        });
        let mut tasks = vec![accepting];
        for i in 0..backends.len() {
            let backends = backends.clone();
            tasks.push(tokio::spawn(async move { probe(&backends[i]).await }));
        }
        Ok(Balancer {
            local,
            backends,
            tasks,
        })
    }

    /// Whether backend `i` is in, and the changes of that since `since`: (seconds after `since`, in).
    fn changes_since(&self, i: usize, since: Instant) -> Vec<(f64, bool)> {
        lock(&self.backends[i].changes)
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(at, ready)| ((*at - since).as_secs_f64(), *ready))
            .collect()
    }

    fn connections(&self) -> Vec<u64> {
        self.backends
            .iter()
            .map(|b| b.connections.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn forward(mut client: TcpStream, backend: &Backend) {
    let mut drained = backend.drained.subscribe();
    let Ok(mut server) = TcpStream::connect(backend.addr).await else {
        return;
    };
    backend.connections.fetch_add(1, Ordering::Relaxed);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = drained.changed() => {}
    }
}

async fn probe(backend: &Backend) {
    let http = reqwest::Client::new();
    let url = format!("http://{}/health/ready", backend.addr);
    let mut failures = 0u32;
    loop {
        let ok = http
            .get(&url)
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        failures = if ok { 0 } else { failures + 1 };
        let was = backend.ready.load(Ordering::Relaxed);
        let now = if ok {
            true
        } else if failures >= FAILURES_TO_TAKE_OUT {
            false
        } else {
            was
        };
        if now != was {
            backend.ready.store(now, Ordering::Relaxed);
            if !now {
                backend.drained.send_modify(|g| *g += 1);
            }
            lock(&backend.changes).push((Instant::now(), now));
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// A second replica of a service in its namespace, behind the balancer with the first; the generator's requests
/// to that service go to the balancer while this lives.
pub struct Partitioned<'a> {
    suite: &'a Suite,
    service: &'static str,
    /// The replica's process name in the suite (`rendering-2`).
    replica: String,
    balancer: Balancer,
    _forwarders: Vec<Proxy>,
    _namespace: Namespace,
    /// The host's port whose packets the cut drops: Redis's, or a service's.
    cut_port: u16,
    cut_at: Mutex<Option<Instant>>,
    healed_at: Mutex<Option<Instant>>,
}

impl<'a> Partitioned<'a> {
    /// A second replica of `service` and its balancer; `cut_port` is what [`Partitioned::cut`] will cut it off from
    /// (one of [`FORWARDED`]).
    pub async fn start(
        suite: &'a Suite,
        service: &'static str,
        cut_port: u16,
    ) -> anyhow::Result<Partitioned<'a>> {
        anyhow::ensure!(
            FORWARDED.contains(&cut_port),
            "the replica reaches only ports {FORWARDED:?} of the host"
        );
        let namespace = Namespace::create()?;
        let host =
            |port: u16| -> SocketAddr { format!("{HOST_IP}:{port}").parse().expect("address") };
        let mut forwarders = Vec::new();
        for port in FORWARDED {
            forwarders.push(Proxy::start_between(host(port), ([127, 0, 0, 1], port).into()).await?);
        }
        let port = crate::suite::port(service);
        let replica: SocketAddr = format!("{REPLICA_IP}:{port}").parse()?;
        let name = format!("{service}-2");
        let [redis, postgres, identity, scoring, rendering] = FORWARDED;
        // The suite's database URL names its PostgreSQL on loopback; the replica reaches it on the host's end.
        let database = suite.db_url.replace(
            &format!("127.0.0.1:{postgres}"),
            &format!("{HOST_IP}:{postgres}"),
        );
        suite.spawn_as(
            service,
            &name,
            Some(NAMESPACE),
            &[
                ("HC__SERVER__HOST", REPLICA_IP.to_owned()),
                ("HC__REDIS__URL", format!("redis://{HOST_IP}:{redis}")),
                ("HC__DATABASE__URL", database),
                (
                    "HC__AUTH__JWKS_URL",
                    format!("http://{HOST_IP}:{identity}/v1/auth/keys"),
                ),
                (
                    "HC__RENDERING__SCORING_URL",
                    format!("http://{HOST_IP}:{scoring}"),
                ),
                (
                    "HC__VERIFICATION__OWN_KEYS_URL",
                    format!("http://{HOST_IP}:{rendering}/v1/trust/keys"),
                ),
            ],
        )?;
        suite
            .wait_ready_at(&name, &format!("http://{replica}/health/ready"))
            .await?;
        let balancer = Balancer::start(
            ([127, 0, 0, 1], BALANCER_PORT).into(),
            &[([127, 0, 0, 1], port).into(), replica],
        )
        .await?;
        crate::suite::route(service, format!("http://{}", balancer.local));
        Ok(Partitioned {
            suite,
            service,
            replica: name,
            balancer,
            _forwarders: forwarders,
            _namespace: namespace,
            cut_port,
            cut_at: Mutex::new(None),
            healed_at: Mutex::new(None),
        })
    }

    /// Drops the replica's packets to what it is cut off from.
    pub fn cut(&self) -> anyhow::Result<()> {
        Namespace::firewall("-A", self.cut_port)?;
        *lock(&self.cut_at) = Some(Instant::now());
        Ok(())
    }

    /// Lets them through again.
    pub fn heal(&self) -> anyhow::Result<()> {
        Namespace::firewall("-D", self.cut_port)?;
        *lock(&self.healed_at) = Some(Instant::now());
        Ok(())
    }

    pub fn outcome(&self) -> PartitionOutcome {
        let cut = *lock(&self.cut_at);
        let healed = *lock(&self.healed_at);
        let first = |since: Option<Instant>, ready: bool| {
            since.and_then(|s| {
                self.balancer
                    .changes_since(1, s)
                    .into_iter()
                    .find(|(_, r)| *r == ready)
                    .map(|(t, _)| t)
            })
        };
        PartitionOutcome {
            taken_out_after_s: first(cut, false),
            back_in_after_s: first(healed, true),
            connections: self.balancer.connections(),
        }
    }
}

impl Drop for Partitioned<'_> {
    fn drop(&mut self) {
        crate::suite::unroute(self.service);
        self.suite.kill(&self.replica);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that answers `/health/ready` with `ready`'s status to every request, on connections it keeps open.
    async fn backend(ready: Arc<AtomicBool>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let ready = ready.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let status = if ready.load(Ordering::Relaxed) {
                            "200 OK"
                        } else {
                            "503 No"
                        };
                        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                        if s.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_backend_that_turns_not_ready_is_taken_out_and_its_connections_closed() {
        let (a_ready, b_ready) = (
            Arc::new(AtomicBool::new(true)),
            Arc::new(AtomicBool::new(true)),
        );
        let (a, b) = (
            backend(a_ready.clone()).await,
            backend(b_ready.clone()).await,
        );
        let balancer = Balancer::start("127.0.0.1:0".parse().expect("addr"), &[a, b])
            .await
            .expect("balancer");
        let listen = balancer.local;
        let http = reqwest::Client::new();
        let get = |http: reqwest::Client| async move {
            http.get(format!("http://{listen}/"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        };
        for _ in 0..4 {
            get(reqwest::Client::new()).await.expect("an answer");
        }
        assert_eq!(balancer.connections(), vec![2, 2], "round robin");
        // A keep-alive connection, and b turns not ready.
        get(http.clone()).await.expect("an answer");
        let since = Instant::now();
        b_ready.store(false, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(10);
        while balancer.changes_since(1, since).is_empty() {
            assert!(Instant::now() < deadline, "b never taken out");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before = balancer.connections();
        for _ in 0..4 {
            get(reqwest::Client::new()).await.expect("an answer");
        }
        let after = balancer.connections();
        assert_eq!(
            (after[0] - before[0], after[1] - before[1]),
            (4, 0),
            "only a is sent to"
        );
        b_ready.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !balancer.changes_since(1, since).iter().any(|(_, r)| *r) {
            assert!(Instant::now() < deadline, "b never back in");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(a_ready.load(Ordering::Relaxed));
    }
}
