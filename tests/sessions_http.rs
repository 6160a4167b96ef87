//! The `tower-sessions` store (feature `redis-patterns/tower-sessions`): the store's contract
//! checked directly (create never overwrites, save after delete never resurrects, records
//! expire), and `examples/axum_sessions.rs` driven over real HTTP on loopback with a cookie
//! jar: login, a protected route, logout, a replayed cookie after logout. On a real
//! redis-server and on `mem://` (and the cluster and Sentinel with the root features).

mod common;

#[path = "../examples/axum_sessions.rs"]
#[allow(dead_code)]
mod example;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::Kind;
use redis_patterns::session::tower_sessions::RedisSessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::{SessionStore, cookie::time};

fn record(expires_in: time::Duration) -> Record {
    Record {
        id: Id::default(),
        data: HashMap::from([("user".to_owned(), serde_json::json!("alice"))]),
        expiry_date: time::OffsetDateTime::now_utc() + expires_in,
    }
}

async fn the_store_keeps_the_contract_of_tower_sessions(kind: Kind) {
    let store = RedisSessionStore::new(common::client(kind, "tower-sessions-store"));
    let mut first = record(time::Duration::minutes(5));
    store.create(&mut first).await.unwrap();
    assert_eq!(store.load(&first.id).await.unwrap(), Some(first.clone()));
    // A create with an id that is taken draws another instead of overwriting.
    let mut colliding = record(time::Duration::minutes(5));
    colliding.id = first.id;
    colliding
        .data
        .insert("user".into(), serde_json::json!("mallory"));
    store.create(&mut colliding).await.unwrap();
    assert_ne!(colliding.id, first.id);
    assert_eq!(store.load(&first.id).await.unwrap(), Some(first.clone()));
    // Saves write existing records.
    first
        .data
        .insert("cart".into(), serde_json::json!(["lamp"]));
    store.save(&first).await.unwrap();
    assert_eq!(store.load(&first.id).await.unwrap(), Some(first.clone()));
    // A save after a delete does not bring the session back.
    store.delete(&first.id).await.unwrap();
    assert_eq!(store.load(&first.id).await.unwrap(), None);
    store.save(&first).await.unwrap();
    assert_eq!(
        store.load(&first.id).await.unwrap(),
        None,
        "resurrected by a save"
    );
    store.delete(&first.id).await.unwrap();
    // Records expire at their expiry date.
    let mut short = record(time::Duration::milliseconds(300));
    store.create(&mut short).await.unwrap();
    assert!(store.load(&short.id).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(store.load(&short.id).await.unwrap(), None);
    assert_eq!(
        store.load(&Id::default()).await.unwrap(),
        None,
        "an unknown id"
    );
}

/// A minimal HTTP/1.1 client with a cookie jar: it sends the cookies it holds and keeps what
/// `Set-Cookie` gives, dropping cookies set to expire.
#[derive(Default)]
struct Browser {
    jar: HashMap<String, String>,
}

struct Reply {
    status: u16,
    body: String,
}

impl Browser {
    async fn send(
        &mut self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        password: Option<&str>,
    ) -> Reply {
        let cookies = self
            .jar
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        if !cookies.is_empty() {
            request.push_str(&format!("Cookie: {cookies}\r\n"));
        }
        if let Some(password) = password {
            request.push_str(&format!("x-password: {password}\r\n"));
        }
        request.push_str("\r\n");
        let raw = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut raw = String::new();
            stream.read_to_string(&mut raw).unwrap();
            raw
        })
        .await
        .unwrap();
        let (head, body) = raw
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
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let mut parts = value.trim().split(';').map(str::trim);
            let (cookie, content) = parts.next().unwrap().split_once('=').unwrap();
            let expired = parts.any(|p| p.eq_ignore_ascii_case("max-age=0"));
            if expired || content.is_empty() {
                self.jar.remove(cookie);
            } else {
                self.jar.insert(cookie.to_owned(), content.to_owned());
            }
        }
        Reply {
            status,
            body: body.to_owned(),
        }
    }
}

async fn logins_protected_routes_and_logouts_work_over_http(kind: Kind) {
    let client = common::client(kind, "tower-sessions-http");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example::serve(listener, client));

    let mut browser = Browser::default();
    assert_eq!(
        browser.send(addr, "GET", "/me", None).await.status,
        401,
        "not logged in"
    );
    let refused = browser
        .send(addr, "POST", "/login/alice", Some("wrong"))
        .await;
    assert_eq!(refused.status, 401);
    assert!(browser.jar.is_empty(), "no session for a failed login");

    let login = browser
        .send(addr, "POST", "/login/alice", Some(example::PASSWORD))
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(browser.jar.len(), 1, "a session cookie");
    let me = browser.send(addr, "GET", "/me", None).await;
    assert_eq!((me.status, me.body.as_str()), (200, "you are alice\n"));

    // Another browser has its own session.
    let mut other = Browser::default();
    other
        .send(addr, "POST", "/login/bob", Some(example::PASSWORD))
        .await;
    assert_eq!(
        other.send(addr, "GET", "/me", None).await.body,
        "you are bob\n"
    );
    assert_eq!(
        browser.send(addr, "GET", "/me", None).await.body,
        "you are alice\n"
    );

    // A login within a session gives it a new id: the old cookie is worthless.
    let before = browser.jar.clone();
    browser
        .send(addr, "POST", "/login/alice", Some(example::PASSWORD))
        .await;
    assert_ne!(browser.jar, before, "a new id at login");
    let mut replay = Browser { jar: before };
    assert_eq!(
        replay.send(addr, "GET", "/me", None).await.status,
        401,
        "the pre-login id"
    );

    let stolen = browser.jar.clone();
    assert_eq!(
        browser.send(addr, "POST", "/logout", None).await.status,
        200
    );
    assert!(browser.jar.is_empty(), "the cookie is removed at logout");
    assert_eq!(browser.send(addr, "GET", "/me", None).await.status, 401);
    let mut thief = Browser { jar: stolen };
    assert_eq!(
        thief.send(addr, "GET", "/me", None).await.status,
        401,
        "a cookie replayed after logout"
    );
    assert_eq!(
        other.send(addr, "GET", "/me", None).await.body,
        "you are bob\n"
    );
}

on_both_backends!(
    the_store_keeps_the_contract_of_tower_sessions,
    logins_protected_routes_and_logouts_work_over_http,
);
