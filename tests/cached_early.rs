//! `stampede = "early"` (XFetch) with `ttl_jitter`, on a real redis-server and on `mem://`:
//! the stored envelope expires when the entry does, and an early recomputation keeps
//! single-flight. Each test runs on both backends (`on_redis::…`, `on_memory::…`).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Calls, Kind};
use redis_patterns::test_util::Store;
use redis_patterns::{Client, cached};
use tokio::sync::Semaphore;

#[cached(key = "jittered:<id>", ttl = "60s", ttl_jitter = "50%", stampede = "early", client = client, skip(calls))]
async fn jittered(client: &Client, calls: &Calls, id: u32) -> u32 {
    calls.hit();
    id
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since_epoch.as_millis()).unwrap()
}

async fn the_envelope_expires_with_the_jittered_ttl(kind: Kind) {
    let client = common::client(kind, "jittered-envelope");
    let calls = Calls::default();
    // Five entries: with a jitter of up to 30 s, an envelope that ignored it would match its
    // key's TTL within the tolerance below by chance about once in 10^14.
    for id in 0..5 {
        jittered(&client, &calls, id).await;
        let key = jittered_key(&client, id);
        let stored = Store::of(&client).get(&key).await.unwrap().unwrap();
        let ttl = Store::of(&client).pttl(&key).await.unwrap().unwrap();
        // The envelope's header: bytes 8..16 are the expiry, Unix ms (see `envelope.rs`).
        let expires_ms = u64::from_le_bytes(stored[8..16].try_into().unwrap());
        let key_expires_ms = now_ms() + u64::try_from(ttl.as_millis()).unwrap();
        let gap = expires_ms.abs_diff(key_expires_ms);
        assert!(
            gap <= 100,
            "entry {id}: the envelope expires {gap} ms away from its key ({ttl:?} left)"
        );
    }
}

/// A body that runs only when the test lets it: each run takes a permit.
#[cached(key = "gated:<id>", ttl = "60s", ttl_jitter = "50%", stampede = "early", beta = 1000000000.0, client = client, skip(calls, gate))]
async fn gated(client: &Client, calls: &Calls, gate: &Semaphore, id: u32) -> u32 {
    calls.hit();
    gate.acquire().await.unwrap().forget();
    // XFetch's delta: how long a recomputation takes.
    tokio::time::sleep(Duration::from_millis(20)).await;
    id
}

async fn an_early_recomputation_runs_once_per_process_for_20_concurrent_callers(kind: Kind) {
    let client = common::client(kind, "early-flight");
    let calls = Calls::default();
    let gate = Semaphore::new(1);
    assert_eq!(gated(&client, &calls, &gate, 1).await, 1);
    // With beta = 10^9 every read of the entry is inside XFetch's early-refresh window (it
    // recomputes unless its draw is below about 10^-7): the next caller recomputes, and waits
    // at the gate while it does.
    let (client, calls, gate) = (&client, &calls, &gate);
    let leader = async { gated(client, calls, gate, 1).await };
    let others = async {
        let recomputing = async {
            while calls.get() < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), recomputing)
            .await
            .expect("the second caller recomputes early");
        // 19 more callers while the recomputation runs: they get the stored value at once.
        let callers = (0..19).map(|_| gated(client, calls, gate, 1));
        let values =
            tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(callers)).await;
        // Let every computation that started finish, so that the count below is complete.
        gate.add_permits(100);
        let values = match values {
            Ok(values) => values,
            Err(_) => panic!(
                "callers waited for the recomputation instead of getting the stored value; \
                 {} computations ran",
                calls.get()
            ),
        };
        assert!(values.iter().all(|v| *v == 1));
    };
    let (value, ()) = tokio::join!(leader, others);
    assert_eq!(value, 1);
    let stats = client.cache_stats();
    assert_eq!(stats.early_recomputations, 1, "{stats:?}");
    assert_eq!(calls.get(), 2, "one cold miss and one early recomputation");
}

on_both_backends!(
    the_envelope_expires_with_the_jittered_ttl,
    an_early_recomputation_runs_once_per_process_for_20_concurrent_callers,
);
