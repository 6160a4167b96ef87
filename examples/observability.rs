//! A small axum service whose caching, rate limiting and locking are observable: Prometheus
//! text at `/metrics` (feature `redis-patterns/metrics` with `metrics-exporter-prometheus`),
//! and the patterns' tracing spans printed to the console (`RUST_LOG`).
//!
//! ```sh
//! cargo run --example observability --features redis-patterns/metrics   # REDIS_URL, or mem://
//! curl http://127.0.0.1:3001/product/7      # a miss, then hits
//! curl http://127.0.0.1:3001/quote          # 5 per 10 s, then 429
//! curl http://127.0.0.1:3001/pay/7          # holds payment:<order_id> for 200 ms
//! curl http://127.0.0.1:3001/metrics
//! ```

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use redis_patterns::lock::LockError;
use redis_patterns::rate_limit::RateLimited;
use redis_patterns::{Client, cached, rate_limited, with_lock};

/// What the handlers share: the Redis client and the exporter's handle.
#[derive(Clone)]
pub struct AppState {
    pub client: Client,
    pub metrics: PrometheusHandle,
}

/// Installs the Prometheus recorder for this process and returns the handle that renders it.
/// Histograms are exported as buckets (seconds) rather than summaries.
pub fn install_recorder() -> PrometheusHandle {
    PrometheusBuilder::new()
        .set_buckets(&[
            0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        ])
        .and_then(PrometheusBuilder::install_recorder)
        .unwrap_or_else(|e| panic!("cannot install the Prometheus recorder: {e}"))
}

/// The service: `/product/{id}` (cached), `/quote` (rate limited), `/pay/{id}` (locked) and
/// `/metrics`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/product/{id}", get(product_page))
        .route("/quote", get(quote_page))
        .route("/pay/{id}", get(pay_page))
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move { s.metrics.render() }),
        )
        .with_state(state)
}

#[cached(key = "product:<id>", ttl = "5m", stampede = "lock", client = client)]
async fn product(client: &Client, id: u64) -> Result<String, String> {
    tokio::time::sleep(Duration::from_millis(20)).await; // the database
    Ok(format!("product {id}\n"))
}

async fn product_page(
    State(s): State<AppState>,
    Path(id): Path<u64>,
) -> Result<String, StatusCode> {
    product(&s.client, id)
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)
}

#[rate_limited(key = "quote", limit = 5, window = "10s", client = client)]
async fn quote(client: &Client) -> Result<String, RateLimited> {
    Ok("42\n".to_owned())
}

async fn quote_page(State(s): State<AppState>) -> (StatusCode, String) {
    match quote(&s.client).await {
        Ok(body) => (StatusCode::OK, body),
        Err(limited) => (StatusCode::TOO_MANY_REQUESTS, format!("{limited}\n")),
    }
}

#[with_lock(key = "payment:<order_id>", ttl = "5s", wait = "2s", client = client)]
async fn pay(client: &Client, order_id: u64) -> Result<String, LockError> {
    tokio::time::sleep(Duration::from_millis(200)).await; // the payment provider
    Ok(format!("paid {order_id}\n"))
}

async fn pay_page(State(s): State<AppState>, Path(id): Path<u64>) -> (StatusCode, String) {
    match pay(&s.client, id).await {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => (StatusCode::CONFLICT, format!("{e}\n")),
    }
}

/// Serves the service on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, app(state)).await
}

#[allow(dead_code)] // the test drives `serve` instead
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "redis_patterns=debug".into()),
        )
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    let metrics = install_recorder();
    let client = Client::from_env()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, AppState { client, metrics }).await?;
    Ok(())
}
