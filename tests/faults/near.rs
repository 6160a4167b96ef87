//! The near tier under faults: whenever tracking is lost (the connection killed, blackholed,
//! the server restarted) or refused, nothing that might have missed an invalidation is served
//! from process memory; the tier is used again once tracking is re-armed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis_patterns::{Client, Config, cached};
use tokio::time::Instant;

use crate::common::{self, RedisServer, proxy::FaultProxy};

#[derive(Clone, Default)]
struct Db(Arc<AtomicU64>);

#[cached(key = "row:<id>", ttl = "10m", near = "5m", client = client, skip(db))]
async fn row(client: &Client, db: &Db, id: u32) -> u64 {
    let _ = id;
    db.0.load(Ordering::SeqCst)
}

const CONNECT: Duration = Duration::from_millis(400);
const COMMAND: Duration = Duration::from_millis(250);

/// The tracking lease plus one heartbeat: the longest a value may be served after its
/// invalidations silently stopped arriving (README, "Near tier").
const LEASE_AND_HEARTBEAT: Duration = Duration::from_millis(1_250);

fn client(url: &str, ns: &str) -> Client {
    Client::new(
        Config::from_url(url)
            .unwrap()
            .namespace(ns)
            .connect_timeout(CONNECT)
            .command_timeout(COMMAND),
    )
    .unwrap()
}

/// Calls until one is a near hit; the time that took (at most `limit`).
async fn near_again(client: &Client, db: &Db, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let before = client.cache_stats().near_hits;
        row(client, db, 1).await;
        if client.cache_stats().near_hits > before {
            return started.elapsed();
        }
        assert!(
            started.elapsed() <= limit,
            "the near tier was not used again within {limit:?}: {:?}",
            client.cache_stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bumps the row in the "database" and drops the entry through `writer` (another client, not
/// behind the fault); then calls `reader` until it returns the new version, which must take at
/// most `limit` after the writer's acknowledgement.
async fn change_is_seen(reader: &Client, writer: &Client, db: &Db, limit: Duration) -> Duration {
    let version = db.0.fetch_add(1, Ordering::SeqCst) + 1;
    row_invalidate(writer, 1).await.unwrap();
    let acked = Instant::now();
    while row(reader, db, 1).await != version {
        assert!(
            acked.elapsed() <= limit,
            "an invalidated value was still served {:?} after the change: {:?}",
            acked.elapsed(),
            reader.cache_stats()
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    acked.elapsed()
}

/// Ids of the server's clients that track keys (flag `t`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_tracking_connection_flushes_the_tier_until_it_is_rearmed() {
    let server = RedisServer::start();
    let ns = common::namespace("near-kill");
    let (reader, writer) = (client(&server.url(), &ns), client(&server.url(), &ns));
    let db = Db::default();
    near_again(&reader, &db, Duration::from_secs(5)).await;
    let ids = server.tracking_clients();
    assert_eq!(ids.len(), 1, "one tracking connection: {ids:?}");
    assert_eq!(server.kill_tracking_clients(), 1);
    // Changes while tracking is down are read from Redis at once: the tier was flushed.
    let seen = change_is_seen(&reader, &writer, &db, Duration::from_millis(200)).await;
    eprintln!("change seen {seen:?} after CLIENT KILL of the tracking connection");
    let rearmed = near_again(&reader, &db, Duration::from_secs(3)).await;
    eprintln!("near tier used again {rearmed:?} later");
    assert_eq!(server.tracking_clients().len(), 1, "tracking again");
    let seen = change_is_seen(&reader, &writer, &db, Duration::from_millis(50)).await;
    eprintln!("change seen {seen:?} after re-arming");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_tracking_connection_stops_serving_within_the_lease() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("near-blackhole");
    let reader = client(&proxy.url(), &ns);
    let writer = client(&server.url(), &ns);
    let db = Db::default();
    near_again(&reader, &db, Duration::from_secs(5)).await;
    proxy.blackhole();
    // The invalidation never arrives; the lease ends serving regardless. Calls that reach
    // Redis fail open meanwhile (the command connection is blackholed too).
    let bound = LEASE_AND_HEARTBEAT + COMMAND + Duration::from_millis(250);
    let seen = change_is_seen(&reader, &writer, &db, bound).await;
    eprintln!("change seen {seen:?} after a blackholed change (bound {bound:?})");
    let rearmed = near_again(&reader, &db, Duration::from_secs(5)).await;
    eprintln!("near tier used again {rearmed:?} later, on new connections");
    change_is_seen(&reader, &writer, &db, Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_rearms_tracking() {
    let server = RedisServer::start();
    let ns = common::namespace("near-restart");
    let (reader, writer) = (client(&server.url(), &ns), client(&server.url(), &ns));
    let db = Db::default();
    near_again(&reader, &db, Duration::from_secs(5)).await;
    server.restart();
    // The restarted server lost the entry; the reader must not keep its near copy.
    db.0.fetch_add(1, Ordering::SeqCst);
    let version = db.0.load(Ordering::SeqCst);
    let restarted = Instant::now();
    while row(&reader, &db, 1).await != version {
        assert!(
            restarted.elapsed() < Duration::from_millis(500),
            "a value from before the restart was served {:?} after it",
            restarted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    near_again(&reader, &db, Duration::from_secs(5)).await;
    change_is_seen(&reader, &writer, &db, Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_tracking_is_read_every_time() {
    // `CLIENT` renamed away: `CLIENT TRACKING` fails, as on a proxy or an old server.
    let server = RedisServer::start_with(&["--rename-command", "CLIENT", "\"\""]);
    let ns = common::namespace("near-refused");
    let (reader, writer) = (client(&server.url(), &ns), client(&server.url(), &ns));
    let db = Db::default();
    for _ in 0..50 {
        row(&reader, &db, 1).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = reader.cache_stats();
    assert_eq!(stats.near_hits, 0, "{stats:?}");
    assert!(stats.hits >= 45, "still cached in Redis: {stats:?}");
    change_is_seen(&reader, &writer, &db, Duration::from_millis(50)).await;
}

#[cached(key = "slow:<id>", ttl = "10m", stampede = "lock", lock_wait = "20s", client = client, skip(work))]
async fn slow(client: &Client, id: u32, work: Duration) -> u32 {
    tokio::time::sleep(work).await;
    id
}

/// `stampede = "lock"` waiters are woken by the stored value through a tracking connection of
/// their own; when it is killed they fall back to polling and still get the holder's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_waiters_still_get_the_value_when_their_notifications_are_killed() {
    let server = RedisServer::start();
    let ns = common::namespace("stampede-kill");
    let (holder, waiter) = (client(&server.url(), &ns), client(&server.url(), &ns));
    // A first contended round arms the waiter's notifications.
    for (id, kill) in [(1u32, false), (2, true)] {
        let computing = tokio::spawn({
            let holder = holder.clone();
            async move { slow(&holder, id, Duration::from_millis(600)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = tokio::spawn({
            let waiter = waiter.clone();
            async move {
                let value = slow(&waiter, id, Duration::ZERO).await;
                (value, Instant::now())
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        if kill {
            assert!(
                server.kill_tracking_clients() > 0,
                "the waiter tracks the key"
            );
        }
        assert_eq!(computing.await.unwrap(), id);
        let stored = Instant::now();
        let (value, got) = waiting.await.unwrap();
        assert_eq!(value, id);
        assert!(
            got.saturating_duration_since(stored) < Duration::from_millis(500),
            "round {id}: the waiter got the value {:?} after it was stored",
            got.saturating_duration_since(stored)
        );
    }
    assert_eq!(
        waiter.cache_stats().computations,
        0,
        "{:?}",
        waiter.cache_stats()
    );
}
