//! Redis Cluster specifics (feature `cluster`) on a cluster of 3 primaries and 3 replicas the
//! harness spawns once for this binary: both ways of configuring it, and calls whose keys live
//! on different primaries. Every pattern suite also runs on this topology through
//! `on_both_backends!` (`on_cluster::…`) when the root feature `cluster` is on.

mod common;
#[path = "cluster/pubsub.rs"]
mod pubsub;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Calls;
use common::cluster::cluster;
use redis_patterns::rate_limit::{DenyReason, RateLimited};
use redis_patterns::{Client, Config, cached, rate_limited, with_lock};

/// The failover test changes which node is a primary: the tests of this binary take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[cached(key = "greeting:<name>", ttl = "1m", client = client, skip(calls))]
async fn greeting(client: &Client, calls: &Calls, name: &str) -> String {
    calls.hit();
    format!("hello {name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_and_the_builder_reach_the_same_cluster() {
    let _turn = SERIAL.lock().await;
    let ns = common::namespace("both-forms");
    let from_url = Client::new(Config::from_url(&cluster().url()).unwrap().namespace(&ns)).unwrap();
    let seeds: Vec<String> = cluster()
        .nodes
        .iter()
        .take(2)
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    let from_builder = Client::new(Config::cluster(&seeds).unwrap().namespace(&ns)).unwrap();
    from_url.connect().await.unwrap();
    from_builder.connect().await.unwrap();
    let calls = Calls::default();
    for name in ["ann", "bob", "cy", "dee", "eve", "fay"] {
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
        6,
        "the second client read what the first stored"
    );
    assert_eq!(from_builder.cache_stats().hits, 6);
}

#[derive(Debug)]
struct Limited(#[allow(dead_code)] RateLimited);

impl From<RateLimited> for Limited {
    fn from(e: RateLimited) -> Self {
        Limited(e)
    }
}

#[rate_limited(key = "minute:<user>", limit = 10, window = "1m", client = client)]
#[rate_limited(key = "burst:<user>", limit = 5, window = "1m", algorithm = "token_bucket", client = client)]
async fn stacked(client: &Client, user: &str) -> Result<(), Limited> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacked_limits_on_different_primaries_admit_exactly_the_tightest() {
    let _turn = SERIAL.lock().await;
    let cluster = cluster();
    // A user whose two limits live on different primaries, so the stack crosses nodes.
    let user = (0..100)
        .map(|i| format!("u{i}"))
        .find(|u| {
            cluster.primary_of(&format!("{{minute:#{u}}}"))
                != cluster.primary_of(&format!("{{burst:#{u}}}"))
        })
        .expect("some user's limits land on different primaries");
    let client = Arc::new(common::client(common::Kind::Cluster, "stacked"));
    let calls = (0..64).map(|_| {
        let (client, user) = (Arc::clone(&client), user.clone());
        tokio::spawn(async move { stacked(&client, &user).await.is_ok() })
    });
    let mut admitted = 0;
    for call in calls {
        admitted += u32::from(call.await.unwrap());
    }
    assert_eq!(admitted, 5, "the tighter limit, across two primaries");
    let mut more = 0;
    for _ in 0..10 {
        more += u32::from(stacked(&client, &user).await.is_ok());
    }
    assert_eq!(more, 0, "the burst limit is spent");
}

#[test]
fn templates_of_one_test_spread_over_the_primaries() {
    let _turn = SERIAL.blocking_lock();
    let cluster = cluster();
    let primaries: std::collections::HashSet<u16> = (0..20)
        .map(|i| cluster.primary_of(&format!("{{product:#{i}}}")))
        .collect();
    assert_eq!(primaries.len(), 3, "keys spread over all three primaries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_refuses_cluster_clients_and_says_why() {
    let clients: Vec<Client> = (0..3)
        .map(|_| common::client(common::Kind::Cluster, "redlock"))
        .collect();
    let refused = redis_patterns::lock::Redlock::new(clients)
        .acquire("invoice:1")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("independent Redis primaries"),
        "{refused}"
    );
}

#[cached(key = "stock:<sku>", ttl = "1m", stampede = "lock", client = client, skip(calls))]
async fn stock(client: &Client, calls: &Calls, sku: u64) -> u64 {
    calls.hit();
    sku * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_on_every_node_under_load_costs_no_call() {
    let _turn = SERIAL.lock().await;
    let client = Arc::new(common::client(common::Kind::Cluster, "script-flush"));
    let calls = Calls::default();
    let limiter =
        redis_patterns::rate_limit::RateLimiter::sliding_window(1_000_000, Duration::from_secs(60))
            .client((*client).clone());
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let (client, calls, stop, limiter) = (
                Arc::clone(&client),
                calls.clone(),
                Arc::clone(&stop),
                limiter.clone(),
            );
            tokio::spawn(async move {
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(stock(&client, &calls, i % 32).await, (i % 32) * 2);
                    limiter
                        .check(&format!("api:{i}"), 1)
                        .await
                        .expect("a decision");
                    done += 1;
                }
                done
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for node in &cluster().nodes {
        node.script_flush();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut done = 0;
    for task in tasks {
        done += task.await.expect("no task panicked: every call answered");
    }
    assert!(done > 64, "the tasks kept going: {done} calls");
    assert_eq!(
        client.cache_stats().backend_errors,
        0,
        "each node reloaded the scripts on NOSCRIPT; no call failed"
    );
    assert_eq!(limiter.stats().backend_errors, 0);
}

// The hot account: its cached value, its limit and its lock share one hash tag, so one slot.
#[with_lock(key = "account:<id>", ttl = "5s", wait = "10s", retry = "5ms", client = client)]
async fn guarded(client: &Client, id: u64, inside: &AtomicU32) -> Result<(), Held> {
    let _ = id;
    assert_eq!(
        inside.fetch_add(1, Ordering::SeqCst),
        0,
        "two holders at once"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    inside.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

#[cached(key = "account:<id>", ttl = "1m", client = client, skip(calls))]
async fn balance(client: &Client, calls: &Calls, id: u64) -> u64 {
    calls.hit();
    id * 3
}

/// Admissions of the hot account per minute.
const LIMIT: u64 = 300;

#[rate_limited(key = "account:<id>", limit = 300, window = "1m", on_error = "deny", client = client)]
async fn limited(client: &Client, id: u64) -> Result<(), Limited> {
    let _ = id;
    Ok(())
}

#[derive(Debug)]
struct Held(#[allow(dead_code)] redis_patterns::lock::LockError);

impl From<redis_patterns::lock::LockError> for Held {
    fn from(e: redis_patterns::lock::LockError) -> Self {
        Held(e)
    }
}

/// The command and connect timeout of the clients under load.
const COMMAND: Duration = Duration::from_millis(500);

/// What 64 tasks saw while the topology changed under them.
struct Outcome {
    /// From the change starting to the cluster agreeing again.
    settled: Duration,
    /// From the cluster agreeing to the first write that succeeded on the hot slot.
    recovered: Duration,
    slowest: Duration,
    /// Calls of the hot account the limiter admitted, and denied because it could not decide.
    admitted: u64,
    undecided: u64,
    /// The client the tasks used.
    client: Arc<Client>,
}

impl Outcome {
    /// Admissions of the hot account over the whole test: those under load plus those left
    /// now. Exactly [`LIMIT`] if the limit's state survived the change intact.
    async fn total_admissions(&self) -> u64 {
        let mut total = self.admitted;
        for _ in 0..=2 * LIMIT {
            match limited(&self.client, 7).await {
                Ok(()) => total += 1,
                Err(Limited(denied)) if denied.reason == DenyReason::LimitExceeded => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        total
    }
}

/// Runs 64 tasks, each calling in a loop a cached read of keys all over the cluster and, on the
/// hot account, a cached read, a rate-limited call and a guarded critical section (which
/// asserts that no two holders overlap), while `change` (on a blocking thread, given the hot
/// key) changes the topology and returns when it started and when the cluster agreed again.
/// Asserts that no task panicked and that a write to the hot slot succeeds within 5 s of the
/// cluster agreeing.
async fn under_load(
    name: &str,
    change: impl FnOnce(String) -> (Instant, Instant) + Send + 'static,
) -> Outcome {
    let ns = common::namespace(name);
    let client = Arc::new(
        Client::new(
            Config::from_url(&cluster().url())
                .unwrap()
                .namespace(&ns)
                .connect_timeout(COMMAND)
                .command_timeout(COMMAND),
        )
        .unwrap(),
    );
    let hot = format!("{ns}:{{account:#7}}");
    let calls = Calls::default();
    let inside = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let slowest_us = Arc::new(AtomicU64::new(0));
    let admitted = Arc::new(AtomicU64::new(0));
    let undecided = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let (client, calls, stop) = (Arc::clone(&client), calls.clone(), Arc::clone(&stop));
            let (inside, slowest_us) = (Arc::clone(&inside), Arc::clone(&slowest_us));
            let (admitted, undecided) = (Arc::clone(&admitted), Arc::clone(&undecided));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    assert_eq!(stock(&client, &calls, i % 16).await, (i % 16) * 2);
                    assert_eq!(balance(&client, &calls, 7).await, 21);
                    match limited(&client, 7).await {
                        Ok(()) => admitted.fetch_add(1, Ordering::Relaxed),
                        Err(Limited(denied)) if denied.reason == DenyReason::BackendUnavailable => {
                            undecided.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(_) => 0,
                    };
                    // Fails closed while the slot has no reachable primary.
                    let _ = guarded(&client, 7, &inside).await;
                    let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    slowest_us.fetch_max(took, Ordering::Relaxed);
                    // A handler yields between requests (to read the next one); a loop that
                    // never yields while the breaker fails it fast would starve the runtime.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let probe = format!("{hot}:probe");
    let (changed_at, settled_at) = tokio::task::spawn_blocking(move || change(hot))
        .await
        .expect("the topology change");
    // Calls succeed again: a write to the hot slot (the guarded section's own key is contended
    // by the 64 tasks, so it would measure the queue, not the recovery).
    let store = redis_patterns::test_util::Store::of(&client);
    let recovered_at = loop {
        if store
            .set(&probe, "x", Duration::from_secs(10))
            .await
            .is_ok()
        {
            break Instant::now();
        }
        assert!(
            settled_at.elapsed() < Duration::from_secs(5),
            "calls did not succeed within 5 s of the cluster settling"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await
            .expect("no task panicked, no two lock holders overlapped");
    }
    let outcome = Outcome {
        settled: settled_at.saturating_duration_since(changed_at),
        recovered: recovered_at.saturating_duration_since(settled_at),
        slowest: Duration::from_micros(slowest_us.load(Ordering::Relaxed)),
        admitted: admitted.load(Ordering::Relaxed),
        undecided: undecided.load(Ordering::Relaxed),
        client,
    };
    println!(
        "{name}: settled {:?} after the change began; calls succeeded {:?} after that; slowest \
         call under load {:?}; limit admitted {} (of {LIMIT}), undecided {}",
        outcome.settled, outcome.recovered, outcome.slowest, outcome.admitted, outcome.undecided
    );
    // A call makes a handful of round trips, each bounded by the command timeout (the cluster
    // client's overall timeout covers its retries), plus the lock's 10 s wait.
    assert!(
        outcome.slowest <= Duration::from_secs(10) + 8 * COMMAND,
        "a call took {:?}",
        outcome.slowest
    );
    outcome
}

/// Waits until the primary serving `key` is no longer `old` and the running nodes agree.
fn until_moved_from(key: &str, old: u16) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster().primary_of(key) == old {
        assert!(Instant::now() < deadline, "no failover within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster().wait_until_ready(Duration::from_secs(30));
    Instant::now()
}

/// `CLUSTER FAILOVER` on the replica of the hot slot's primary: a coordinated switch (the
/// replica catches up first), so the limit stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_under_load_is_followed_within_bounds() {
    let _turn = SERIAL.lock().await;
    let outcome = under_load("manual-failover", |hot| {
        let primary = cluster().primary_of(&hot);
        let replica = cluster().replica_of(primary);
        let at = Instant::now();
        let _: () = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query(&mut replica.redis())
            .expect("CLUSTER FAILOVER");
        (at, until_moved_from(&hot, primary))
    })
    .await;
    assert_eq!(outcome.total_admissions().await, LIMIT);
}

/// The hot slot's primary is killed: its replica takes over after `cluster-node-timeout`
/// (2 s here); meanwhile caching fails open, the lock fails closed and the limit denies
/// (`on_error = "deny"`). The killed node then comes back as a replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_within_bounds() {
    let _turn = SERIAL.lock().await;
    let outcome = under_load("killed-primary", |hot| {
        let primary = cluster().primary_of(&hot);
        let at = Instant::now();
        cluster().node(primary).stop();
        let settled = until_moved_from(&hot, primary);
        cluster().node(primary).restart();
        (at, settled)
    })
    .await;
    assert!(outcome.undecided > 0, "the limiter saw the outage");
    tokio::task::spawn_blocking(|| cluster().wait_until_ready(Duration::from_secs(30)))
        .await
        .unwrap();
}

/// The hot slot moves to another primary key by key (`ASK` for keys already moved, `TRYAGAIN`
/// for scripts whose keys are split, `MOVED` at the end) while 64 tasks use it.
///
/// This is where redis-rs 1.8's cluster connection is most likely to stall in its slot refresh
/// (see `backend/cluster.rs`): calls then fail per their policy until the health check has
/// replaced the connection, about two command timeouts. The limit never over-admits (it denies
/// when undecided) and its state moves with the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_the_hot_slot_under_load_is_followed_within_bounds() {
    let _turn = SERIAL.lock().await;
    let outcome = under_load("slot-migration", |hot| {
        let slot = cluster().slot_of(&hot);
        let from = cluster().primary_of_slot(slot);
        let to = cluster()
            .primaries()
            .into_iter()
            .find(|p| *p != from)
            .expect("another primary");
        let at = Instant::now();
        cluster().migrate_slot(slot, to, Duration::from_millis(20));
        assert_eq!(cluster().primary_of_slot(slot), to);
        (at, Instant::now())
    })
    .await;
    assert_eq!(outcome.total_admissions().await, LIMIT);
}

/// A user that exists on every node, for the credentials test.
const ACL_USER: &str = "rp-cluster-app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_credentials_reach_every_node() {
    let _turn = SERIAL.lock().await;
    cluster().set_user(ACL_USER, &["reset", "on", ">s3cret", "~*", "+@all"]);
    let ns = common::namespace("acl");
    // In the URL, and on the builder.
    let url = cluster().url().replacen(
        "redis+cluster://",
        &format!("redis+cluster://{ACL_USER}:s3cret@"),
        1,
    );
    let from_url = Client::new(Config::from_url(&url).unwrap().namespace(&ns)).unwrap();
    let wrong = Client::new(
        Config::from_url(&cluster().url())
            .unwrap()
            .username(ACL_USER)
            .password("wrong")
            .namespace(&ns)
            .connect_timeout(COMMAND)
            .command_timeout(COMMAND),
    )
    .unwrap();
    let calls = Calls::default();
    // Twenty names: their keys live on all three primaries.
    let names: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
    let primaries: std::collections::HashSet<u16> = names
        .iter()
        .map(|name| cluster().primary_of(&format!("{{greeting:#{name}}}")))
        .collect();
    assert_eq!(primaries.len(), 3);
    for name in &names {
        assert_eq!(
            greeting(&from_url, &calls, name).await,
            format!("hello {name}")
        );
    }
    for name in &names {
        assert_eq!(
            greeting(&from_url, &calls, name).await,
            format!("hello {name}")
        );
    }
    assert_eq!(from_url.cache_stats().hits, 20);
    assert_eq!(from_url.cache_stats().backend_errors, 0);
    // Every primary served this client as the ACL user, not as the default user.
    for port in primaries {
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut cluster().node(port).redis())
            .unwrap();
        assert!(
            clients.contains(&format!(" user={ACL_USER} ")),
            "no connection as {ACL_USER} on {port}:\n{clients}"
        );
    }
    // A wrong password fails (open) with a backend error, never silently.
    assert_eq!(greeting(&wrong, &calls, "user0").await, "hello user0");
    assert!(wrong.cache_stats().backend_errors > 0);
}

#[cached(key = "near:<id>", ttl = "10m", near = "5m", client = client, skip(version))]
async fn near_row(client: &Client, id: u64, version: &AtomicU64) -> u64 {
    let _ = id;
    version.load(Ordering::SeqCst)
}

/// Calls `near_row(id)` until a call is answered from the near tier, within `limit`.
async fn near_hit(client: &Client, id: u64, version: &AtomicU64, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let before = client.cache_stats().near_hits;
        near_row(client, id, version).await;
        if client.cache_stats().near_hits > before {
            return started.elapsed();
        }
        assert!(
            started.elapsed() <= limit,
            "no near hit within {limit:?}: {:?}",
            client.cache_stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bumps `version`, invalidates `id` through `writer`, and calls `reader` until it returns the
/// new version, within `limit` of the acknowledgement.
async fn near_change_seen(
    reader: &Client,
    writer: &Client,
    id: u64,
    version: &AtomicU64,
    limit: Duration,
) {
    let expected = version.fetch_add(1, Ordering::SeqCst) + 1;
    near_row_invalidate(writer, id).await.unwrap();
    let acked = Instant::now();
    while near_row(reader, id, version).await != expected {
        assert!(
            acked.elapsed() <= limit,
            "an invalidated value was served {:?} after the change: {:?}",
            acked.elapsed(),
            reader.cache_stats()
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// One id per primary, in `ns`.
fn one_id_per_primary(ns: &str) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut ids = Vec::new();
    for id in 0.. {
        let primary = cluster().primary_of(&format!("{ns}:{{near:#{id}}}"));
        if !seen.contains(&primary) {
            seen.push(primary);
            ids.push(id);
        }
        if seen.len() == cluster().primaries().len() {
            return ids;
        }
    }
    unreachable!()
}

/// Every primary's changes reach the near tier (each node is tracked), and a `CLUSTER
/// FAILOVER` re-arms it: afterwards the promoted replica's changes are seen too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_near_tier_hears_every_primary_and_follows_a_failover() {
    let _turn = SERIAL.lock().await;
    let ns = common::namespace("near-cluster");
    let config = || Config::from_url(&cluster().url()).unwrap().namespace(&ns);
    let (reader, writer) = (
        Client::new(config()).unwrap(),
        Client::new(config()).unwrap(),
    );
    let version = AtomicU64::new(0);
    let ids = one_id_per_primary(&ns);
    assert_eq!(ids.len(), 3);
    for &id in &ids {
        near_hit(&reader, id, &version, Duration::from_secs(5)).await;
        near_change_seen(&reader, &writer, id, &version, Duration::from_millis(100)).await;
    }
    // Fail over the primary of the first id.
    let key = format!("{ns}:{{near:#{}}}", ids[0]);
    let primary = cluster().primary_of(&key);
    near_hit(&reader, ids[0], &version, Duration::from_secs(5)).await;
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut cluster().replica_of(primary).redis())
        .expect("CLUSTER FAILOVER");
    let settled = tokio::task::spawn_blocking({
        let key = key.clone();
        move || until_moved_from(&key, primary)
    })
    .await
    .unwrap();
    // The promoted node's changes are seen, and the tier is used again.
    near_change_seen(&reader, &writer, ids[0], &version, Duration::from_secs(3)).await;
    let again = near_hit(&reader, ids[0], &version, Duration::from_secs(10)).await;
    eprintln!(
        "near tier used again {again:?} after the failover settled ({:?} ago)",
        settled.elapsed()
    );
    for &id in &ids {
        near_hit(&reader, id, &version, Duration::from_secs(5)).await;
        near_change_seen(&reader, &writer, id, &version, Duration::from_millis(100)).await;
    }
}
