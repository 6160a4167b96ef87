//! `examples/axum_rate_limit.rs` driven over real HTTP on loopback, on a real redis-server and
//! on `mem://`: 100 per minute for signed-in users, 20 per minute per IP for anonymous ones,
//! 429 with `Retry-After` on denial, rate limit headers on every response.

mod common;

#[path = "../examples/axum_rate_limit.rs"]
#[allow(dead_code)]
mod example;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::Kind;

/// Starts the example's server on a free loopback port.
async fn start(kind: Kind, test: &str) -> SocketAddr {
    let client = common::client(kind, test);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example::serve(listener, client));
    addr
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<u64> {
        self.headers.get(name).and_then(|v| v.parse().ok())
    }
}

/// One `GET /hello` over a fresh connection, as a plain HTTP/1.1 client sends it.
async fn get(addr: SocketAddr, user: Option<&str>) -> Reply {
    let user = user.map(|u| format!("{}: {u}\r\n", example::USER_HEADER));
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let request = format!(
            "GET /hello HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{}\r\n",
            user.unwrap_or_default()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let (head, _body) = raw
            .split_once("\r\n\r\n")
            .expect("a complete HTTP response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        Reply { status, headers }
    })
    .await
    .unwrap()
}

fn assert_limit_headers(reply: &Reply, limit: u64, remaining: u64) {
    for prefix in ["", "x-"] {
        assert_eq!(
            reply.header(&format!("{prefix}ratelimit-limit")),
            Some(limit)
        );
        assert_eq!(
            reply.header(&format!("{prefix}ratelimit-remaining")),
            Some(remaining)
        );
    }
    // The IETF header counts seconds from now; the legacy one is a Unix time.
    let reset = reply.header("ratelimit-reset").unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let reset_at = reply.header("x-ratelimit-reset").unwrap();
    assert!(
        (now..=now + 61).contains(&reset_at),
        "{reset_at} vs now {now}"
    );
}

async fn signed_in_users_get_100_requests_a_minute_then_429_with_retry_after(kind: Kind) {
    let addr = start(kind, "http-user").await;
    for i in 0..100 {
        let reply = get(addr, Some("alice")).await;
        assert_eq!(reply.status, 200, "request {i}");
        assert_limit_headers(&reply, 100, 99 - i);
    }
    let denied = get(addr, Some("alice")).await;
    assert_eq!(denied.status, 429);
    let retry = denied.header("retry-after").expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_limit_headers(&denied, 100, 0);
    assert_eq!(get(addr, Some("bob")).await.status, 200, "a limit per user");
    assert_eq!(
        get(addr, None).await.status,
        200,
        "anonymous requests have their own"
    );
}

async fn anonymous_requests_get_20_a_minute_per_ip(kind: Kind) {
    let addr = start(kind, "http-anonymous").await;
    for i in 0..20 {
        let reply = get(addr, None).await;
        assert_eq!(reply.status, 200, "request {i}");
        assert_limit_headers(&reply, 20, 19 - i);
    }
    let denied = get(addr, None).await;
    assert_eq!(denied.status, 429);
    assert!(denied.header("retry-after").is_some());
    assert_eq!(
        get(addr, Some("carol")).await.status,
        200,
        "signing in lifts the limit"
    );
}

on_both_backends!(
    signed_in_users_get_100_requests_a_minute_then_429_with_retry_after,
    anonymous_requests_get_20_a_minute_per_ip,
);
