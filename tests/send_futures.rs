//! The attributes' functions serve as axum handlers (whose futures must be `Send`) with the
//! return types applications use, here over real HTTP on loopback. The `Send` bound itself,
//! for every attribute and return type, is pinned by `tests/ui/pass/*_futures_are_send.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use redis_patterns::{Client, cached, rate_limited, with_lock};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client::new("mem://send-futures").unwrap());

#[cached(key = "greeting:<name>", ttl = "1m", client = &*CLIENT)]
async fn greeting(name: String) -> Result<String, BoxError> {
    Ok(format!("hello, {name}"))
}

#[with_lock(key = "report:<name>", ttl = "10s", client = &*CLIENT)]
#[rate_limited(key = "report:<name>", limit = 1, window = "1m", client = &*CLIENT)]
async fn report(name: String) -> anyhow::Result<String> {
    Ok(format!("report for {name}"))
}

async fn greet(Path(name): Path<String>) -> String {
    greeting(name).await.unwrap_or_else(|e| e.to_string())
}

async fn report_handler(Path(name): Path<String>) -> String {
    report(name).await.unwrap_or_else(|e| e.to_string())
}

async fn serve() -> SocketAddr {
    let app = Router::new()
        .route("/greeting/{name}", get(greet))
        .route("/report/{name}", get(report_handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The body of `GET path`, over a fresh connection.
async fn get_body(addr: SocketAddr, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let (_head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
        body.to_owned()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_function_with_a_boxed_error_is_an_axum_handler() {
    let addr = serve().await;
    assert_eq!(get_body(addr, "/greeting/alice").await, "hello, alice");
    assert_eq!(get_body(addr, "/greeting/alice").await, "hello, alice");
    assert_eq!(CLIENT.cache_stats().hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_and_rate_limited_function_returning_anyhow_is_an_axum_handler() {
    let addr = serve().await;
    assert_eq!(get_body(addr, "/report/bob").await, "report for bob");
    let denied = get_body(addr, "/report/bob").await;
    assert!(denied.contains("rate limit"), "{denied}");
}
