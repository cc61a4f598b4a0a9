//! The operator's HTTP endpoints of a server:
//!
//! - `GET /health`: 200 while the process answers at all (liveness);
//! - `GET /ready`: 200 when the server does its job, else 503 with the
//!   reason (a load balancer or an orchestrator waits on this);
//! - `GET /metrics`: Prometheus/OpenMetrics text of the server's registry.
//!
//! Served on its own listener, never the gRPC port, so that a scrape cannot
//! queue behind data-plane traffic.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a server reports through its endpoints.
pub trait Probe: Send + Sync + 'static {
    /// `Ok` when ready; otherwise what it still waits for.
    fn ready(&self) -> Result<(), String>;
    /// The metrics in the OpenMetrics text format (gauges brought up to date first).
    fn metrics(&self) -> String;
}

/// `registry` in the OpenMetrics text format.
pub fn encode(registry: &prometheus_client::registry::Registry) -> String {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        // Only a failing fmt::Write can fail it; a String never does.
        text.push_str(&format!("# encoding failed: {e}\n"));
    }
    text
}

/// Content type of the OpenMetrics text format (Prometheus reads it).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves the endpoints on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, probe: Arc<dyn Probe>, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(probe);
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

async fn ready(State(probe): State<Arc<dyn Probe>>) -> impl IntoResponse {
    match probe.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
    }
}

async fn metrics(State(probe): State<Arc<dyn Probe>>) -> impl IntoResponse {
    // Encoding walks every family under locks: off the executor's hot path.
    let text = tokio::task::spawn_blocking(move || probe.metrics()).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, OPENMETRICS)], text)
}
