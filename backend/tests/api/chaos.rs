//! A TCP proxy for fault injection: it forwards bytes between clients and the server and cuts
//! each connection abruptly at a random point (mid-frame, without a close handshake). `tc netem` is not available on these machines; this works anywhere.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A small deterministic PRNG (xorshift64*): reproducible runs without another dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// The proxy. Dropping it stops accepting; open pipes end when either side closes.
pub struct ChaosProxy {
    pub addr: SocketAddr,
    pub cuts: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl ChaosProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`. Each connection is cut after a random number of bytes (in either direction) between
    /// `min_bytes` and `max_bytes`.
    pub async fn start(upstream: SocketAddr, seed: u64, min_bytes: u64, max_bytes: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy addr");
        let cuts = Arc::new(AtomicU64::new(0));
        let cuts2 = Arc::clone(&cuts);
        let accept = tokio::spawn(async move {
            let mut rng = Rng::new(seed);
            while let Ok((client, _)) = listener.accept().await {
                let budget = rng.range(min_bytes, max_bytes);
                let cuts = Arc::clone(&cuts2);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        pipe(client, server, budget, cuts).await;
                    }
                });
            }
        });
        Self { addr, cuts, accept }
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies both ways until either side closes or `budget` bytes have passed;
/// then drops both sockets with data possibly half-written.
async fn pipe(client: TcpStream, server: TcpStream, budget: u64, cuts: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let passed = Arc::new(AtomicU64::new(0));

    let forward = |mut from: OwnedReadHalf, mut to: OwnedWriteHalf| {
        let (passed, cuts) = (Arc::clone(&passed), Arc::clone(&cuts));
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let before = passed.fetch_add(n as u64, Ordering::SeqCst);
                if before + n as u64 > budget {
                    // Forward only part of this chunk: the peer sees a torn frame.
                    let keep = budget.saturating_sub(before).min(n as u64) as usize;
                    let _ = to.write_all(&buf[..keep]).await;
                    cuts.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    // Whichever direction ends first ends the pipe: all four halves drop, closing both sockets
    // without a WebSocket close handshake.
    tokio::select! {
        () = forward(cr, sw) => {}
        () = forward(sr, cw) => {}
    }
}
