//! The gRPC servers' accepted connections: Nagle off, a cap on connections
//! (in all and per client address), idle connections closed, and an accept
//! loop that backs off when the process runs out of file descriptors.
//!
//! tonic's own accept loop retries a failed `accept` at once: with the
//! process's descriptors used up (EMFILE) by idle connections, it spun at
//! 100 % of a core, logged nothing and new clients hung. Here an `accept`
//! that fails for lack of resources waits (10 ms, doubling to 1 s), and the
//! failure is logged at WARN at most every 10 s with the count since.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Binds a listener, naming the flag and address when it cannot ("Address
/// already in use" alone does not say which of a server's ports is taken).
pub async fn listen(address: std::net::SocketAddr, flag: &str) -> io::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|e| io::Error::new(e.kind(), format!("listen on {address} ({flag}): {e}")))
}

/// Limits on the connections a server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once; more are closed as they are accepted.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_per_address: usize,
    /// A connection that neither sends nor receives a byte for this long is
    /// closed (clients' HTTP/2 keep-alive pings count as traffic).
    pub idle_timeout: Option<Duration>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 10_000,
            max_per_address: 1_000,
            idle_timeout: Some(Duration::from_secs(600)),
        }
    }
}

/// Open connections, in all and per address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// A connection's place among the open ones, given back when it closes.
#[derive(Debug)]
struct Slot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(n) = open.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&self.address);
            }
        }
    }
}

/// An accepted connection (see the module doc).
#[derive(Debug)]
pub struct Connection {
    tcp: TcpStream,
    idle: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    _slot: Slot,
}

impl Connection {
    /// The client's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp.peer_addr()
    }

    fn active(&mut self) {
        if let Some((after, timer)) = &mut self.idle {
            timer.as_mut().reset(tokio::time::Instant::now() + *after);
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.tcp).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match &mut self.idle {
                Some((after, timer)) => match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, format!("idle for {after:?}"))))
                    }
                    Poll::Pending => Poll::Pending,
                },
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp.connect_info()
    }
}

/// Logs a recurring condition at most every 10 s, with the count since.
#[derive(Debug, Default)]
struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    /// The number of occurrences to report now (this one included), or
    /// `None` to stay quiet.
    fn due(&mut self) -> Option<u64> {
        self.suppressed += 1;
        if self.last.is_some_and(|l| l.elapsed() < Duration::from_secs(10)) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// True for the `accept` failures that mean the process or system lacks
/// resources (descriptors, memory), which a retry at once cannot cure.
fn lacks_resources(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM))
}

/// The errno values used above (Linux), without a libc dependency.
mod libc_errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// The connections `listener` accepts, within `limits`, with Nagle's
/// algorithm off. `Server::tcp_nodelay` only applies to listeners tonic
/// binds itself; on ours every small response after another waited for the
/// client's delayed ACK (up to 40 ms on Linux). The accept loop runs as a
/// task that ends (closing the listener) when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Connection>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let open = Arc::new(Mutex::new(Open::default()));
        let (mut starved, mut refused) = (RateLimited::default(), RateLimited::default());
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(10);
                    a
                }
                Err(e) if lacks_resources(&e) => {
                    if let Some(n) = starved.due() {
                        tracing::warn!(error = %e, failures = n, ?backoff, "cannot accept connections; backing off");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            };
            let address = peer.ip();
            {
                let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
                let from_address = o.per_address.get(&address).copied().unwrap_or(0);
                if o.total >= limits.max_connections || from_address >= limits.max_per_address {
                    if let Some(n) = refused.due() {
                        tracing::warn!(%peer, open = o.total, from_address, refused = n, "too many connections; closing new ones");
                    }
                    continue; // dropping `tcp` closes it
                }
                o.total += 1;
                *o.per_address.entry(address).or_default() += 1;
            }
            let slot = Slot { open: open.clone(), address };
            let _ = tcp.set_nodelay(true);
            let idle = limits
                .idle_timeout
                .map(|after| (after, Box::pin(tokio::time::sleep_until(tokio::time::Instant::now() + after))));
            if tx.send(Ok(Connection { tcp, idle, _slot: slot })).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// How long a client gets to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connections of `incoming` over TLS, each handshake with the
/// configuration current when it starts (see `goulette_tls::ServerTls`),
/// run on its own task so that a slow client holds up no other. A failed
/// handshake (a plaintext client, an untrusted certificate) closes its
/// connection, is logged (rate-limited) and calls `failed`.
pub fn tls(
    mut incoming: tokio_stream::wrappers::ReceiverStream<io::Result<Connection>>,
    tls: Arc<goulette_tls::ServerTls>,
    failed: impl Fn() + Send + Sync + 'static,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<tokio_rustls::server::TlsStream<Connection>>> {
    use tokio_stream::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let failed = Arc::new(failed);
    tokio::spawn(async move {
        let refused = Arc::new(Mutex::new(RateLimited::default()));
        loop {
            let next = tokio::select! {
                next = incoming.next() => next,
                _ = tx.closed() => return,
            };
            let Some(next) = next else { return };
            let connection = match next {
                Ok(c) => c,
                Err(e) => {
                    if tx.send(Err(e)).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let (tx, acceptor, failed, refused) = (tx.clone(), tls.acceptor(), failed.clone(), refused.clone());
            tokio::spawn(async move {
                let peer = connection.peer_addr().ok();
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(connection)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    outcome => {
                        failed();
                        let why = match outcome {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".to_owned(),
                        };
                        if let Some(n) = refused.lock().unwrap_or_else(|p| p.into_inner()).due() {
                            tracing::info!(?peer, error = %why, refused = n, "TLS handshake failed (a plaintext client, or an untrusted certificate?)");
                        }
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_report_counts_what_it_kept_quiet() {
        let mut r = RateLimited::default();
        assert_eq!(r.due(), Some(1));
        assert_eq!(r.due(), None);
        assert_eq!(r.due(), None);
        r.last = Some(Instant::now() - Duration::from_secs(11));
        assert_eq!(r.due(), Some(3));
    }

    #[test]
    fn resource_errors_are_told_apart() {
        assert!(lacks_resources(&io::Error::from_raw_os_error(24)));
        assert!(!lacks_resources(&io::Error::from_raw_os_error(103)));
    }
}
