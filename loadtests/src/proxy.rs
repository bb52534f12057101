//! A TCP proxy in front of the suite's own Redis, for chaos runs. It passes bytes through; or adds latency to every
//! byte (a slow network); or holds a share of what it forwards for a retransmission timeout (a lossy network). This
//! machine's kernel has no netem, and a proxy cannot drop bytes from a TCP stream without corrupting it, so the lossy
//! condition models what a lost segment costs the application: Linux's minimum retransmission timeout, 200 ms, with
//! everything behind it on the connection waiting too, as TCP delivers in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the network between the suite and its Redis does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    Clear,
    /// Every chunk forwarded this much later.
    Slow(Duration),
    /// This share of chunks (0 to 1) forwarded a retransmission timeout later, and what follows it on the connection
    /// behind it.
    Lossy {
        share: f64,
        rto: Duration,
    },
}

pub struct Proxy {
    condition: Arc<Mutex<Condition>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1:`listen` and forwards each connection to 127.0.0.1:`target`.
    pub async fn start(listen: u16, target: u16) -> anyhow::Result<Proxy> {
        Self::start_between(
            ([127, 0, 0, 1], listen).into(),
            ([127, 0, 0, 1], target).into(),
        )
        .await
    }

    /// Listens on `listen` and forwards each connection to `target`.
    pub async fn start_between(
        listen: std::net::SocketAddr,
        target: std::net::SocketAddr,
    ) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let condition = Arc::new(Mutex::new(Condition::Clear));
        let shared = condition.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let condition = shared.clone();
                tokio::spawn(async move {
                    // A target that is down: the client's connection is closed at once, as a refused one would be.
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        relay(client, server, condition).await;
                    }
                });
            }
        });
        Ok(Proxy {
            condition,
            accepting,
        })
    }

    pub fn set(&self, condition: Condition) {
        *crate::suite::lock(&self.condition) = condition;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Both directions of one connection, until either side closes.
async fn relay(client: TcpStream, server: TcpStream, condition: Arc<Mutex<Condition>>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = one_way(client_read, server_write, condition.clone()) => {}
        () = one_way(server_read, client_write, condition) => {}
    }
}

/// Reads chunks as they come and writes each once it is due, in order: latency without a cap on throughput.
async fn one_way(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    condition: Arc<Mutex<Condition>>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let delay = match *crate::suite::lock(&condition) {
                Condition::Clear => Duration::ZERO,
                Condition::Slow(by) => by,
                Condition::Lossy { share, rto } => {
                    if rand::rng().random_bool(share.clamp(0.0, 1.0)) {
                        rto
                    } else {
                        Duration::ZERO
                    }
                }
            };
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                return;
            }
        }
    };
    // The writer ends once the reader has ended (its sender dropped) and everything queued has been written.
    tokio::join!(reader, writer);
}
