//! Connections and the circuit breaker: a silently dead path is replaced, a restarted server
//! is used again by every client within moments, and a dead server costs callers no waiting.

use std::time::Duration;

use redis_patterns::rate_limit::RateLimiter;
use redis_patterns::{Client, Config, Error, cached};
use tokio::time::Instant;

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

#[cached(key = "greeting:<id>", ttl = "10m", client = client)]
async fn greeting(client: &Client, id: u32) -> Result<String, String> {
    Ok(format!("hello {id}"))
}

/// Calls `greeting` until one is answered from Redis (a cache hit); how long that took.
async fn until_served_by_redis(client: &Client, give_up: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let hits = client.cache_stats().hits;
        let value = bounded(Duration::from_secs(3), greeting(client, 1)).await;
        assert_eq!(value.unwrap(), "hello 1", "fails open meanwhile");
        if client.cache_stats().hits > hits {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < give_up,
            "not served by Redis within {give_up:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dead_connection_is_replaced_within_two_command_timeouts() {
    let server = common::server();
    let proxy = FaultProxy::start(server.port());
    let (connect, command) = (Duration::from_millis(500), Duration::from_millis(300));
    let client = Client::new(
        Config::from_url(&proxy.url())
            .unwrap()
            .namespace(common::namespace("dead-path"))
            .connect_timeout(connect)
            .command_timeout(command),
    )
    .unwrap();
    greeting(&client, 1).await.unwrap();
    until_served_by_redis(&client, Duration::from_secs(1)).await;
    // The path dies without a reset: no FIN, no RST, the socket stays open.
    proxy.blackhole();
    let bound = connect + 2 * command + Duration::from_secs(1);
    let took = until_served_by_redis(&client, Duration::from_secs(20)).await;
    assert!(
        took <= bound,
        "served by Redis again after {took:?}, bound {bound:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_every_client_is_served_within_half_a_second() {
    let server = RedisServer::start();
    let ns = common::namespace("restart-recovery");
    // Default backoff settings: what users get.
    let clients: Vec<Client> = (0..4)
        .map(|_| {
            Client::new(
                Config::from_url(&server.url())
                    .unwrap()
                    .namespace(&ns)
                    .command_timeout(Duration::from_millis(300)),
            )
            .unwrap()
        })
        .collect();
    let limiter_client = clients[0].clone();
    let limiter =
        RateLimiter::fixed_window(1_000_000, Duration::from_secs(60)).client(limiter_client);
    for client in &clients {
        greeting(client, 1).await.unwrap();
    }
    server.stop();
    // Two seconds of outage with steady traffic: the breakers open and their backoff grows.
    let outage = Instant::now();
    let (mut refused_at_once, mut rounds) = (0, 0);
    while outage.elapsed() < Duration::from_secs(2) {
        for client in &clients {
            let started = Instant::now();
            assert_eq!(greeting(client, 1).await.unwrap(), "hello 1");
            assert!(
                started.elapsed() < Duration::from_millis(600),
                "a dead server made a caller wait {:?}",
                started.elapsed()
            );
        }
        assert!(limiter.check("k", 1).await.is_err());
        // With the breaker open, a call does not even try the network (but for one caller
        // per backoff when no probe has closed it yet).
        if matches!(clients[1].connect().await, Err(Error::Unavailable { .. })) {
            refused_at_once += 1;
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused_at_once * 2 > rounds,
        "{refused_at_once} of {rounds}"
    );
    server.restart();
    let back = Instant::now();
    // The first read after the restart misses (the server is empty); the next one hits.
    let recoveries = futures::future::join_all(
        clients
            .iter()
            .map(|client| until_served_by_redis(client, Duration::from_secs(10))),
    )
    .await;
    let limiter_back = loop {
        if limiter.check("k", 1).await.is_ok() {
            break back.elapsed();
        }
        assert!(back.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let slowest = recoveries.into_iter().max().unwrap();
    assert!(
        slowest <= Duration::from_millis(500),
        "slowest client back after {slowest:?}"
    );
    assert!(
        limiter_back <= Duration::from_millis(500),
        "limiter back after {limiter_back:?}"
    );
    for _ in 0..20 {
        assert!(limiter.check("k", 1).await.is_ok(), "no failures once back");
    }
}
