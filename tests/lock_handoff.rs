//! Hand-offs under contention (issue 11). `stampede = "lock"` waiters are woken when the value
//! is stored, and lock waiters when the lock is released (the server's invalidation of the
//! value, or of the lock's waiters' mark: see `backend/watch.rs`), instead of polling. The lock
//! scenario of the issue — 4 clients × 25 tasks × 10 guarded read-modify-writes (`GET`, 1 ms of
//! work, `SET`) — must count exactly 1,000; its wall time and hand-off latencies are printed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Kind;
use redis_patterns::lock::{Lock, LockError};
use redis_patterns::test_util::Store;
use redis_patterns::{Client, cached, with_lock};

#[derive(Debug)]
#[allow(dead_code)] // read by `Debug` when a test fails
enum Failed {
    Lock(LockError),
}

impl From<LockError> for Failed {
    fn from(e: LockError) -> Self {
        Failed::Lock(e)
    }
}

/// Per counter: when the last body ended, and the gaps from a body's end to the next one's
/// start (the hand-off: the release, and the next holder's acquisition).
type Gaps = std::collections::HashMap<String, (Option<Instant>, Vec<Duration>)>;
static HANDOFFS: std::sync::Mutex<Option<Gaps>> = std::sync::Mutex::new(None);

fn body_boundary(counter: &str, starts: bool) {
    let mut handoffs = HANDOFFS.lock().unwrap();
    let (last_end, gaps) = handoffs
        .get_or_insert_with(Default::default)
        .entry(counter.to_owned())
        .or_default();
    let now = Instant::now();
    if starts {
        if let Some(end) = last_end.take() {
            gaps.push(now - end);
        }
    } else {
        *last_end = Some(now);
    }
}

/// The default `retry` (50 ms).
#[with_lock(key = "rmw:<name>", ttl = "5s", wait = "60s", client = client)]
async fn read_modify_write(client: &Client, name: &str, counter: &str) -> Result<(), Failed> {
    let _ = name;
    body_boundary(counter, true);
    let store = Store::of(client);
    let value: u64 = store
        .get(counter)
        .await
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap().parse().unwrap())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(1)).await;
    store
        .set(counter, (value + 1).to_string(), Duration::from_secs(60))
        .await
        .unwrap();
    body_boundary(counter, false);
    Ok(())
}

async fn contended_read_modify_writes_count_exactly(kind: Kind) {
    let ns = common::namespace("handoff");
    let clients = common::clients(kind, &ns, 4);
    let counter = format!("{ns}:{{rmw-counter}}");
    // Warm-up: every client's connection and scripts.
    for client in &clients {
        read_modify_write(client, "x", &counter).await.unwrap();
    }
    Store::of(&clients[0]).del(&counter).await.unwrap();
    HANDOFFS
        .lock()
        .unwrap()
        .get_or_insert_with(Default::default)
        .remove(&counter);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..25 {
            let (client, counter) = (client.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    read_modify_write(&client, "x", &counter).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let took = started.elapsed();
    let value = Store::of(&clients[0]).get(&counter).await.unwrap().unwrap();
    assert_eq!(String::from_utf8(value).unwrap(), "1000");
    let mut gaps = HANDOFFS
        .lock()
        .unwrap()
        .get_or_insert_with(Default::default)
        .remove(&counter)
        .map(|(_, gaps)| gaps)
        .unwrap_or_default();
    gaps.sort();
    assert_eq!(gaps.len(), 999, "one hand-off between each two bodies");
    eprintln!(
        "{kind:?}: 4 clients x 25 tasks x 10 guarded read-modify-writes took {took:?}; \
         hand-off (a body's end to the next one's start) p50 {:?}, p90 {:?}, p99 {:?}",
        gaps[gaps.len() / 2],
        gaps[gaps.len() * 9 / 10],
        gaps[gaps.len() * 99 / 100]
    );
    assert!(took < Duration::from_secs(30), "the hand-off took {took:?}");
}

#[cached(key = "slow:<id>", ttl = "1m", stampede = "lock", lock_wait = "20s", client = client, skip(work, started))]
async fn slow(
    client: &Client,
    id: u64,
    work: Duration,
    started: Option<Arc<tokio::sync::Notify>>,
) -> Result<u64, String> {
    // Computing: the stampede lock is held.
    if let Some(started) = started {
        started.notify_one();
    }
    tokio::time::sleep(work).await;
    Ok(id)
}

/// A stampede waiter whose probe finds the lock held just before the value is stored must not
/// sleep out its poll (a second with tracking): the change count it read before the probe has
/// moved, so it probes again at once.
async fn a_store_between_probe_and_wait_is_not_lost(kind: Kind) {
    let ns = common::namespace("stampede-race");
    let clients = common::clients(kind, &ns, 2);
    // Warm-up: the waiter's tracking is armed by a first contended round.
    for round in 0..40u64 {
        let started = Arc::new(tokio::sync::Notify::new());
        let computing = {
            let client = clients[0].clone();
            let work = Duration::from_micros(2_000 + round * 250);
            let started = started.clone();
            tokio::spawn(async move {
                slow(&client, round, work, Some(started)).await.unwrap();
                Instant::now()
            })
        };
        // The other client comes once the first holds the lock (on a loaded machine a fixed
        // pause could let it in first, and then it would compute).
        tokio::time::timeout(Duration::from_secs(20), started.notified())
            .await
            .expect("the first client computes");
        slow(&clients[1], round, Duration::ZERO, None)
            .await
            .unwrap();
        let got = Instant::now();
        let stored = computing.await.unwrap();
        let late = got.saturating_duration_since(stored);
        assert!(
            late < Duration::from_millis(300),
            "round {round}: the waiter got the value {late:?} after it was stored"
        );
    }
    let stats = clients[1].cache_stats();
    assert_eq!(
        stats.computations, 0,
        "the waiter never computed: {stats:?}"
    );
}

/// When the body of this function returned, per test (by namespace).
static STORED: std::sync::Mutex<Vec<(String, Instant)>> = std::sync::Mutex::new(Vec::new());

#[cached(key = "report:<id>", ttl = "1m", stampede = "lock", lock_wait = "10s", client = client)]
async fn report(client: &Client, id: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ns = client.namespace().unwrap().to_owned();
    STORED.lock().unwrap().push((ns, Instant::now()));
    Ok(id)
}

/// 200 callers on 4 clients miss at once: one computes under the stampede lock, and the
/// others get its value moments after it is stored (the other clients' waiters are woken by
/// the stored value's invalidation, each client's own callers by its in-process flight).
async fn stampede_waiters_get_the_value_moments_after_it_is_stored(kind: Kind) {
    let ns = common::namespace("stampede-notified");
    let clients = common::clients(kind, &ns, 4);
    // Warm-up: every client's connection.
    for client in &clients {
        report(client, 0).await.unwrap();
    }
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..50 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                report(&client, 1).await.unwrap();
                Instant::now()
            }));
        }
    }
    let mut returned = Vec::new();
    for task in tasks {
        returned.push(task.await.unwrap());
    }
    let stored: Vec<Instant> = STORED
        .lock()
        .unwrap()
        .iter()
        .filter(|(of, _)| *of == ns)
        .map(|(_, at)| *at)
        .collect();
    // The warm-up computed id 0 once; the 200 callers computed id 1 once.
    assert_eq!(stored.len(), 2, "computed once for the 200 callers");
    let stored = stored[1];
    let mut delays: Vec<Duration> = returned
        .iter()
        .map(|at| at.saturating_duration_since(stored))
        .collect();
    delays.sort();
    let p99 = delays[delays.len() * 99 / 100 - 1];
    eprintln!(
        "{kind:?}: 200 stampede waiters got the value p50 {:?}, p99 {p99:?}, max {:?} after it was stored",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
}

/// A lock waiter that polls only every 5–15 s (`retry` 10 s) still takes the lock moments
/// after each release: releases are heard, and one that comes between the waiter's attempt and
/// its sleep is not lost (the mark's change count it read before the attempt has moved). The
/// release comes at a different moment of the waiter's attempt in each round.
async fn a_release_between_attempt_and_wait_is_not_lost(kind: Kind) {
    let ns = common::namespace("lock-race");
    let clients = common::clients(kind, &ns, 2);
    let lease = Duration::from_secs(30);
    let holder = Lock::new("race").client(&clients[0]).ttl(lease);
    let patient = Lock::new("race")
        .client(&clients[1])
        .ttl(lease)
        .wait(Duration::from_secs(60))
        .retry(Duration::from_secs(10));
    // Warm-up: a contended round polling every 5 ms, which arms the waiter's tracking.
    let guard = holder.acquire().await.unwrap();
    let brisk = patient.clone().retry(Duration::from_millis(5));
    let waiting = tokio::spawn(async move { brisk.acquire().await.unwrap().release().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    guard.release().await.unwrap();
    waiting.await.unwrap().unwrap();
    for round in 0..40u64 {
        let guard = holder.acquire().await.unwrap();
        let waiting = tokio::spawn({
            let patient = patient.clone();
            async move {
                let guard = patient.acquire().await.unwrap();
                let acquired = Instant::now();
                guard.release().await.unwrap();
                acquired
            }
        });
        tokio::time::sleep(Duration::from_micros(round * 250)).await;
        guard.release().await.unwrap();
        let released = Instant::now();
        let late = waiting.await.unwrap().saturating_duration_since(released);
        assert!(
            late < Duration::from_secs(1),
            "round {round}: the waiter took the lock {late:?} after the release \
             (polling alone: 5 to 15 s)"
        );
    }
}

on_both_backends!(
    a_release_between_attempt_and_wait_is_not_lost,
    contended_read_modify_writes_count_exactly,
    a_store_between_probe_and_wait_is_not_lost,
    stampede_waiters_get_the_value_moments_after_it_is_stored,
);
