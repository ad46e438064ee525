//! The accept loop: HTTP/1.1 connections with a header timeout and a cap on open connections.
//!
//! axum's own `serve` sets no timer on hyper, so hyper's header-read timeout never fires: an
//! attacker held 1,000 half-sent requests open for as long as it liked, and every accepted
//! socket counted against the process's open-file limit until `accept` itself failed. Here:
//!
//! - each connection must send a request's headers within `http_timeout`, and a kept-alive
//!   connection that sends no new request within it is closed (hyper applies the same timer to
//!   the wait for the next request);
//! - open connections (upgraded WebSockets included) are counted, in all and per client address,
//!   and past either cap a new one is answered with a bare `503` and closed, instead of the
//!   server running out of files or one address taking every place;
//! - every request carries the client's address as [`ConnectInfo`], for per-address limits;
//! - on shutdown the listener closes and each connection finishes its current request
//!   (WebSockets are closed by their own tasks, see [`crate::startup`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long shutdown waits for in-flight HTTP requests.
const DRAIN: Duration = Duration::from_secs(5);
/// The answer to a connection over the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\nContent-Length: 74\r\nConnection: close\r\n\r\n{\"error\":\"unavailable\",\"message\":\"The server is full; try again shortly.\"}";

/// How the accept loop treats connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most (0: no cap), so that one address
    /// cannot take every place under `max_connections`.
    pub max_per_address: usize,
    /// Time allowed for a request's headers, and for an idle keep-alive connection.
    pub header_timeout: Duration,
}

/// Open connections, in all and per client address, shared by the accept loop and the
/// connections' guards.
#[derive(Debug, Default)]
pub struct OpenConnections {
    total: AtomicUsize,
    /// A `std` mutex: held for one map update, never across `.await`.
    by_addr: Mutex<HashMap<IpAddr, usize>>,
}

impl OpenConnections {
    /// How many are open now.
    pub fn get(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts a new connection from `addr` if both caps allow it (`per_addr` 0: no cap).
    fn admit(&self, addr: IpAddr, limits: &Limits) -> bool {
        if self.total.fetch_add(1, Ordering::Relaxed) >= limits.max_connections {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let mut by_addr = self.by_addr.lock().unwrap_or_else(PoisonError::into_inner);
        let n = by_addr.entry(addr).or_insert(0);
        if limits.max_per_address > 0 && *n >= limits.max_per_address {
            drop(by_addr);
            self.total.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, addr: IpAddr) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        let mut by_addr = self.by_addr.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = by_addr.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                by_addr.remove(&addr);
            }
        }
    }
}

/// A TCP stream that counts itself among the open connections until dropped. It stays inside
/// the upgraded WebSocket, so sockets count for as long as they live.
struct Counted {
    stream: TcpStream,
    addr: IpAddr,
    open: Arc<OpenConnections>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.release(self.addr);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `signal` resolves, then stops accepting and lets open HTTP
/// requests finish (bounded by [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    open: Arc<OpenConnections>,
    tls: Option<TlsAcceptor>,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    // Cancelled when the signal comes: each connection then finishes its request and closes.
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let mut signal = std::pin::pin!(signal);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of files or the like: the cap should prevent it, but never spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        // Chat frames are small and written as they come: with Nagle's algorithm on, a second
        // frame (say an ack right after a message) waits for the peer's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let key = crate::limits::client_key(remote.ip());
        if !open.admit(key, &limits) {
            tokio::spawn(refuse(stream));
            continue;
        }
        let counted = Counted {
            stream,
            addr: key,
            open: Arc::clone(&open),
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req)
        });
        let stopping = stopping.clone();
        let http = http.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let result = match tls {
                None => run_connection(&http, counted, service, &stopping).await,
                // The handshake has the same time as a request's headers, in this task, so a
                // slow or silent client holds nothing but its own connection.
                Some(tls) => {
                    match tokio::time::timeout(limits.header_timeout, tls.accept(counted)).await {
                        Ok(Ok(stream)) => run_connection(&http, stream, service, &stopping).await,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %remote, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections did not finish in time");
    }
    Ok(())
}

/// Serves HTTP/1.1 (with upgrades) on one connection until it ends or the server stops, when it
/// finishes the request in flight and closes.
async fn run_connection<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    stopping: &CancellationToken,
) -> hyper::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = axum::response::Response>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => result,
        () = stopping.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Answers a connection over the cap with a 503 and closes it, without reading its request.
async fn refuse(mut stream: TcpStream) {
    let answer = async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
}

/// The address of a request's client, as recorded by [`serve`].
pub fn client_addr(req_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    req_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

#[cfg(test)]
mod tests {
    use super::BUSY;

    #[test]
    fn the_busy_answer_has_the_right_length() {
        let text = std::str::from_utf8(BUSY).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
