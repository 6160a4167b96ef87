//! A small axum API behind `redis_patterns::rate_limit::http::RateLimitLayer`: 100 requests per minute
//! per user for requests bearing an `x-user-id` header, 20 per minute per client IP for
//! anonymous ones. Denied requests get `429 Too Many Requests` with `Retry-After`; every
//! response carries `RateLimit-*` and `X-RateLimit-*` headers.
//!
//! ```sh
//! cargo run --example axum_rate_limit --features redis-patterns/tower   # REDIS_URL, or mem://
//! curl -i -H 'x-user-id: alice' http://127.0.0.1:3000/hello
//! ```
//!
//! (In a real service the user id comes from authentication in front of this layer, never
//! from a header the client chooses.)

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, Request};
use axum::routing::get;
use redis_patterns::Client;
use redis_patterns::rate_limit::RateLimiter;
use redis_patterns::rate_limit::http::{KeyExtractor, RateLimitLayer};

/// The header that marks a signed-in user.
pub const USER_HEADER: &str = "x-user-id";

/// The API and its limits, on `client`.
pub fn app(client: Client) -> Router {
    let minute = Duration::from_secs(60);
    let signed_in = RateLimiter::sliding_window(100, minute)
        .name("signed-in")
        .client(client.clone());
    let anonymous = RateLimiter::sliding_window(20, minute)
        .name("anonymous")
        .client(client);
    let user = KeyExtractor::header(HeaderName::from_static(USER_HEADER));
    let ip = KeyExtractor::client_ip_from::<ConnectInfo<SocketAddr>>();
    let limits = RateLimitLayer::new(move |request: &Request<Body>| match user.extract(request) {
        Some(key) => Some((signed_in.clone(), key)),
        // Without an address (not served with connect info) all anonymous requests share one limit.
        None => Some((
            anonymous.clone(),
            ip.extract(request).unwrap_or_else(|| "~".into()),
        )),
    });
    Router::new().route("/hello", get(hello)).layer(limits)
}

async fn hello(headers: HeaderMap) -> String {
    match headers.get(USER_HEADER).and_then(|v| v.to_str().ok()) {
        Some(user) => format!("hello, {user}\n"),
        None => "hello, stranger\n".to_owned(),
    }
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, client: Client) -> std::io::Result<()> {
    let app = app(client).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let client = Client::from_env()?; // REDIS_URL, or mem:// when unset
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    println!("  curl -i -H '{USER_HEADER}: alice' http://{addr}/hello   # 100 per minute");
    println!("  curl -i http://{addr}/hello                          # 20 per minute per IP");
    serve(listener, client).await?;
    Ok(())
}
