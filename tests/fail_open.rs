//! The failure policy: when Redis is down, slow or unreachable, cached functions run their
//! body and return its result (fail open), within the configured timeouts, and caching
//! resumes when the server is back.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::RedisServer;
use redis_patterns::{Client, Config, Error, cache_evict, cached};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "user:<id>", ttl = "1m", stampede = "lock", client = client)]
async fn user(client: &Client, id: u32) -> Result<String, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("user {id}"))
}

#[cache_evict(key = "user:<id>", client = client)]
async fn delete_user(client: &Client, id: u32) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn client_for(url: &str, test: &str) -> Client {
    let config = Config::from_url(url)
        .unwrap()
        .namespace(common::namespace(test))
        .connect_timeout(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(200))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
    Client::new(config).unwrap()
}

/// Fails the test instead of hanging if a call blocks far past the configured timeouts.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("a cached call hung past its timeouts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_mid_test_fails_open_and_caching_resumes_on_restart() {
    let server = RedisServer::start();
    let client = client_for(&server.url(), "stopped");

    assert_eq!(bounded(user(&client, 1)).await.unwrap(), "user 1");
    assert_eq!(bounded(user(&client, 1)).await.unwrap(), "user 1");
    assert_eq!(client.cache_stats().hits, 1);

    server.stop();
    for _ in 0..10 {
        // Every call still answers: the body runs in place of the cache.
        assert_eq!(bounded(user(&client, 1)).await.unwrap(), "user 1");
        // The eviction's failure is logged and counted, not returned.
        bounded(delete_user(&client, 1)).await.unwrap();
    }
    let stats = client.cache_stats();
    assert!(stats.backend_errors >= 20, "{stats:?}");
    assert!(matches!(
        bounded(client.connect()).await,
        Err(e) if e.is_connection_failure()
    ));
    assert!(
        bounded(user_invalidate(&client, 1)).await.is_err(),
        "explicit calls report the failure"
    );

    server.restart();
    // The connection comes back by itself (after the reconnect backoff).
    let mut back = false;
    for _ in 0..100 {
        if bounded(client.connect()).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "the client reconnected");
    let hits_before = client.cache_stats().hits;
    bounded(user(&client, 2)).await.unwrap();
    bounded(user(&client, 2)).await.unwrap();
    assert_eq!(
        client.cache_stats().hits,
        hits_before + 1,
        "caching resumed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_open_and_then_fails_fast() {
    // A loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client_for(&format!("redis://127.0.0.1:{port}"), "unreachable");
    for id in 0..20 {
        assert_eq!(
            bounded(user(&client, id)).await.unwrap(),
            format!("user {id}")
        );
    }
    assert_eq!(client.cache_stats().backend_errors, 20);
    // After a few failures the breaker answers at once instead of dialling again.
    assert!(matches!(
        bounded(client.connect()).await,
        Err(Error::Unavailable { .. })
    ));
}

static SLOW_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "report:<id>", ttl = "1m", client = client)]
async fn slow_report(client: &Client, id: u32) -> Result<String, String> {
    SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(format!("report {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_concurrent_calls_in_a_process_still_compute_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client_for(&format!("redis://127.0.0.1:{port}"), "down-single-flight");
    let calls = (0..30).map(|_| slow_report(&client, 1));
    let results = bounded(futures::future::join_all(calls)).await;
    assert!(results.iter().all(|r| r.as_deref() == Ok("report 1")));
    assert_eq!(
        SLOW_CALLS.load(Ordering::SeqCst),
        1,
        "one origin call for 30 callers"
    );
    assert_eq!(
        client.cache_stats().backend_errors,
        1,
        "one failed read for the flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slower_than_the_command_timeout_fails_open() {
    let server = RedisServer::start();
    let client = client_for(&server.url(), "slow");
    bounded(client.connect()).await.unwrap();

    // Block the (single-threaded) server for a second from another connection.
    let blocker = server.stall(1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    assert_eq!(bounded(user(&client, 9)).await.unwrap(), "user 9");
    let waited = started.elapsed();
    blocker.join().unwrap();
    assert!(client.cache_stats().backend_errors >= 1);
    // Bounded by connect + command timeout (200 ms + 200 ms), not by the server's 1 s stall.
    assert!(waited < Duration::from_millis(900), "{waited:?}");
}
