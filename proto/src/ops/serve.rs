//! The gRPC servers' accepted connections.

/// The connections `listener` accepts, with Nagle's algorithm off.
/// `Server::tcp_nodelay` only applies to listeners tonic binds itself; on
/// ours every small response after another waited for the client's delayed
/// ACK (up to 40 ms on Linux), which capped a produce stream's throughput
/// and latency.
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
