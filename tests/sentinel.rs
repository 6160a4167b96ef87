//! Redis Sentinel specifics (feature `sentinel`) on a group the harness spawns once for this
//! binary (1 primary, 1 replica, 3 sentinels): both ways of configuring it, and a failover
//! under load. Every pattern suite also runs behind this topology through
//! `on_both_backends!` (`on_sentinel::…`) when the root feature `sentinel` is on.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Calls;
use common::sentinel::{SERVICE, group};
use redis_patterns::lock::{Lock, LockError};
use redis_patterns::test_util::Store;
use redis_patterns::{Client, Config, cached};

/// The failover test changes which server is the primary: the tests of this binary take
/// turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CONNECT: Duration = Duration::from_millis(500);
const COMMAND: Duration = Duration::from_millis(500);

fn client(test: &str) -> Client {
    let config = Config::from_url(&group().url())
        .unwrap()
        .namespace(common::namespace(test))
        .connect_timeout(CONNECT)
        .command_timeout(COMMAND);
    Client::new(config).unwrap()
}

#[cached(key = "greeting:<name>", ttl = "1m", client = client, skip(calls))]
async fn greeting(client: &Client, calls: &Calls, name: u64) -> String {
    calls.hit();
    format!("hello {name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_and_the_builder_find_the_same_primary() {
    let _turn = SERIAL.lock().await;
    let ns = common::namespace("both-forms");
    let from_url = Client::new(Config::from_url(&group().url()).unwrap().namespace(&ns)).unwrap();
    let sentinels: Vec<String> = group()
        .sentinels
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let from_builder = Client::new(
        Config::sentinel(&sentinels, SERVICE)
            .unwrap()
            .namespace(&ns),
    )
    .unwrap();
    let calls = Calls::default();
    for name in 0..5 {
        assert_eq!(
            greeting(&from_url, &calls, name).await,
            format!("hello {name}")
        );
        assert_eq!(
            greeting(&from_builder, &calls, name).await,
            format!("hello {name}")
        );
    }
    assert_eq!(
        calls.get(),
        5,
        "the second client read what the first stored"
    );
}

/// The primary and the replica as the sentinels see them, once they agree and the replica
/// is in sync again.
fn settled_primary(old: u16, within: Duration) -> (u16, Instant) {
    settled(old, within, true)
}

/// The new primary once the sentinels agree on it, while the old one is down (so there is no
/// replica to wait for).
fn settled_primary_of_one(old: u16, within: Duration) -> (u16, Instant) {
    settled(old, within, false)
}

fn settled(old: u16, within: Duration, with_replica: bool) -> (u16, Instant) {
    let deadline = Instant::now() + within;
    loop {
        let ports: Vec<Option<u16>> = group().sentinels.iter().map(|s| s.primary_port()).collect();
        if let Some(Some(primary)) = ports.first().copied()
            && primary != old
            && ports.iter().all(|p| *p == Some(primary))
        {
            if !with_replica {
                return (primary, Instant::now());
            }
            let replica = if primary == group().primary.port() {
                &group().replica
            } else {
                &group().primary
            };
            // A failover may cut this connection: that reads as "not in sync yet".
            let info: String = common::sentinel::query(replica.port(), &["INFO", "replication"])
                .ok()
                .and_then(|v| redis::from_redis_value(v).ok())
                .unwrap_or_default();
            if info.contains("master_link_status:up") {
                return (primary, Instant::now());
            }
        }
        assert!(
            Instant::now() < deadline,
            "no failover within {within:?}: {ports:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs 64 tasks, each calling in a loop a cached read (fails open) and one shared lock (fails
/// closed), while `change` (on a blocking thread) moves the primary and returns when it began
/// and when the sentinels agree on the new primary and its replica is in sync. Asserts that no
/// task panicked, that no two tasks held the lock at once, that a write and a lock succeed
/// within 5 s of that, and that no call took longer than its timeouts allow.
async fn under_load(
    name: &str,
    change: impl FnOnce(u16) -> (Instant, u16, Instant) + Send + 'static,
) {
    let old = group().sentinels[0].primary_port().expect("a primary");
    let client = Arc::new(client(name));
    let calls = Calls::default();
    let stop = Arc::new(AtomicBool::new(false));
    let slowest_us = Arc::new(AtomicU64::new(0));
    let lock_errors = Arc::new(AtomicU64::new(0));
    let inside = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let (client, calls, stop) = (Arc::clone(&client), calls.clone(), Arc::clone(&stop));
            let (slowest_us, lock_errors) = (Arc::clone(&slowest_us), Arc::clone(&lock_errors));
            let inside = Arc::clone(&inside);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    assert_eq!(
                        greeting(&client, &calls, i % 16).await,
                        format!("hello {}", i % 16)
                    );
                    // One lock for all tasks, taken without waiting: no two holders at once.
                    let lock = Lock::new("shared")
                        .client(&client)
                        .ttl(Duration::from_secs(5));
                    match lock.acquire().await {
                        Ok(guard) => {
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            inside.fetch_sub(1, Ordering::SeqCst);
                            drop(guard.release().await);
                        }
                        Err(LockError::Backend(_)) => {
                            lock_errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {} // held by another task
                    }
                    let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    slowest_us.fetch_max(took, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (changed_at, new, settled_at) = tokio::task::spawn_blocking(move || change(old))
        .await
        .expect("the topology change");
    assert_ne!(new, old);
    // Calls succeed again: a write and a lock on the new primary.
    let store = Store::of(&client);
    let recovered_at = loop {
        let key = format!("{}:{{probe}}", client.namespace().unwrap());
        let wrote = store.set(&key, "x", Duration::from_secs(10)).await.is_ok();
        let locked = Lock::new("probe").client(&client).acquire().await;
        if wrote && let Ok(guard) = locked {
            guard.release().await.unwrap();
            break Instant::now();
        }
        assert!(
            settled_at.elapsed() < Duration::from_secs(5),
            "calls did not succeed within 5 s of the failover settling"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await
            .expect("no task panicked, no two lock holders overlapped");
    }
    let slowest = Duration::from_micros(slowest_us.load(Ordering::Relaxed));
    // A call (a cached read, a lock) makes at most a few round trips, each bounded by the
    // command timeout, plus one redial (asking the sentinels and dialling: 2 × connect).
    let bound = 2 * CONNECT + 4 * COMMAND + Duration::from_millis(500);
    println!(
        "{name}: settled {:?} after the change began; calls succeeded {:?} after that; \
         slowest call under load {slowest:?}; lock attempts failed closed {}",
        settled_at - changed_at,
        recovered_at.saturating_duration_since(settled_at),
        lock_errors.load(Ordering::Relaxed)
    );
    assert!(
        slowest <= bound,
        "a call took {slowest:?} (bound {bound:?})"
    );
}

/// Connections on the server on `port` whose last command was a `GET` (only the readers
/// of these tests send one); `None` when the server could not be asked (a failover may cut
/// the connection), which is never taken for "no reader".
fn readers_on(port: u16) -> Option<usize> {
    let list: String = common::sentinel::query(port, &["CLIENT", "LIST"])
        .ok()
        .and_then(|v| redis::from_redis_value(v).ok())?;
    Some(
        list.lines()
            .filter(|line| line.contains(" cmd=get "))
            .count(),
    )
}

#[cached(key = "near:<id>", ttl = "10m", near = "5m", client = client, skip(version))]
async fn near_row(client: &Client, id: u64, version: &AtomicU64) -> u64 {
    let _ = id;
    version.load(Ordering::SeqCst)
}

/// Calls `near_row(1)` until a call is answered from the near tier, within `limit`.
async fn near_hit(client: &Client, version: &AtomicU64, limit: Duration) {
    let started = Instant::now();
    loop {
        let before = client.cache_stats().near_hits;
        near_row(client, 1, version).await;
        if client.cache_stats().near_hits > before {
            return;
        }
        assert!(
            started.elapsed() <= limit,
            "no near hit within {limit:?}: {:?}",
            client.cache_stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Clients of the server on `port` that track keys (flag `t`): the near tier's.
fn tracking_clients(port: u16) -> usize {
    let list: String = common::sentinel::query(port, &["CLIENT", "LIST"])
        .ok()
        .and_then(|v| redis::from_redis_value(v).ok())
        .unwrap_or_default();
    common::tracking_client_ids(&list).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_load_is_followed_within_bounds() {
    let _turn = SERIAL.lock().await;
    // A client that only reads: nothing fails on the old primary, which stays a primary for
    // several seconds after the switch (the sentinels reconfigure it only after a grace
    // period), so only the sentinels' `+switch-master` tells the client to move.
    let reader = client("failover-reader");
    let key = format!("{}:{{read}}", reader.namespace().unwrap());
    let old = group().sentinels[0].primary_port().expect("a primary");
    let stop = Arc::new(AtomicBool::new(false));
    let reading = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let store = Store::of(&reader);
            while !stop.load(Ordering::Relaxed) {
                let _ = store.get(&key).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        readers_on(old),
        Some(1),
        "the reader reads from the primary"
    );
    // A near-caching reader, and a writer that changes its entry after the failover: the
    // reader's tracking must have followed `+switch-master` to the new primary.
    let ns = common::namespace("failover-near");
    let near_client = || {
        Client::new(
            Config::from_url(&group().url())
                .unwrap()
                .namespace(&ns)
                .connect_timeout(CONNECT)
                .command_timeout(COMMAND),
        )
        .unwrap()
    };
    let (near_reader, near_writer) = (near_client(), near_client());
    let version = AtomicU64::new(0);
    // (Warmed after the count above: its own reads are on the old primary too, until the switch.)
    near_hit(&near_reader, &version, Duration::from_secs(5)).await;
    // When the sentinels announce the switch, and when the reader has left the old primary.
    let switched = tokio::task::spawn_blocking(|| {
        let sentinel =
            redis::Client::open(format!("redis://127.0.0.1:{}", group().sentinels[1].port))
                .unwrap();
        let mut conn = sentinel.get_connection().unwrap();
        let mut pubsub = conn.as_pubsub();
        pubsub.subscribe("+switch-master").unwrap();
        pubsub.get_message().expect("+switch-master");
        Instant::now()
    });
    let left = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while readers_on(old) != Some(0) {
            assert!(
                Instant::now() < deadline,
                "the reader never left the old primary"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Instant::now()
    });
    under_load("failover", |old| {
        let at = Instant::now();
        let _: () = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(SERVICE)
            .query(
                &mut redis::Client::open(format!(
                    "redis://127.0.0.1:{}",
                    group().sentinels[0].port
                ))
                .unwrap()
                .get_connection()
                .unwrap(),
            )
            .expect("SENTINEL FAILOVER");
        let (new, settled) = settled_primary(old, Duration::from_secs(30));
        (at, new, settled)
    })
    .await;
    let (switched, left) = (switched.await.unwrap(), left.await.unwrap());
    let moved = left.saturating_duration_since(switched);
    println!("the reader left the old primary {moved:?} after +switch-master");
    assert!(
        moved < Duration::from_secs(1),
        "the reader stayed on the old primary {moved:?} after the switch"
    );
    stop.store(true, Ordering::Relaxed);
    reading.await.unwrap();
    near_hit(&near_reader, &version, Duration::from_secs(5)).await;
    let new = group().sentinels[0].primary_port().expect("a primary");
    assert_eq!(
        tracking_clients(new),
        1,
        "tracking moved to the new primary"
    );
    assert_eq!(tracking_clients(old), 0, "and left the old one");
    let expected = version.fetch_add(1, Ordering::SeqCst) + 1;
    near_row_invalidate(&near_writer, 1).await.unwrap();
    let acked = Instant::now();
    while near_row(&near_reader, 1, &version).await != expected {
        assert!(
            acked.elapsed() < Duration::from_millis(100),
            "a change on the new primary did not reach the near tier: {:?}",
            near_reader.cache_stats()
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The primary dies: the sentinels agree it is down after `down-after-milliseconds` (1 s
/// here) and promote the replica; meanwhile caching fails open and locks fail closed. The
/// killed server then comes back and the sentinels make it a replica of the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_within_bounds() {
    let _turn = SERIAL.lock().await;
    under_load("killed-primary", |old| {
        let server = group().server(old);
        let at = Instant::now();
        server.stop();
        let (new, settled) = settled_primary_of_one(old, Duration::from_secs(30));
        server.restart();
        (at, new, settled)
    })
    .await;
    tokio::task::spawn_blocking(|| group().wait_until_ready(Duration::from_secs(30)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_refuses_sentinel_clients() {
    let clients: Vec<Client> = (0..3).map(|_| client("redlock")).collect();
    let refused = redis_patterns::lock::Redlock::new(clients)
        .acquire("invoice:1")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("independent Redis primaries"),
        "{refused}"
    );
}

/// Connections subscribed to a channel, over all sentinels.
fn sentinel_subscribers() -> usize {
    group()
        .sentinels
        .iter()
        .map(|sentinel| {
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query(
                    &mut redis::Client::open(format!("redis://127.0.0.1:{}", sentinel.port))
                        .unwrap()
                        .get_connection()
                        .unwrap(),
                )
                .unwrap_or_default();
            list.lines().filter(|line| line.contains(" sub=1 ")).count()
        })
        .sum()
}

/// Waits until `sentinel_subscribers()` is `expected`.
async fn until_subscribers(expected: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = tokio::task::spawn_blocking(sentinel_subscribers)
            .await
            .unwrap();
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {now} subscribers, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_listens_to_one_sentinel_and_stops_when_dropped() {
    let _turn = SERIAL.lock().await;
    let before = tokio::task::spawn_blocking(sentinel_subscribers)
        .await
        .unwrap();
    let client = client("follower");
    let calls = Calls::default();
    assert_eq!(greeting(&client, &calls, 1).await, "hello 1");
    until_subscribers(before + 1, "after the first call").await;
    drop(client);
    until_subscribers(before, "after the client was dropped").await;
}
