//! `#[cached]`'s stale entries (`stale_if_error`, `timeout`, `stale_while_revalidate`) and
//! schema versions (`version = N`, the default fingerprint), on a real redis-server, on
//! `mem://` and (features `cluster`, `sentinel`) on a cluster and behind sentinels.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::Kind;
use redis_patterns::test_util::Store;
use redis_patterns::{Client, cache_put, cached};
use tokio::time::Instant;

/// An origin whose answers the test controls: a version number that moves on every call, and
/// a switch that makes it fail or hang.
#[derive(Default)]
struct Origin {
    calls: AtomicU64,
    failing: AtomicBool,
    hanging: AtomicBool,
}

impl Origin {
    async fn answer(&self) -> Result<u64, String> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.hanging.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(format!("origin down (call {n})"));
        }
        Ok(n)
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

#[cached(key = "price:<sku>", ttl = "300ms", stale_if_error = "1h", client = client, skip(origin))]
async fn price(client: &Client, origin: &Origin, sku: u32) -> Result<u64, String> {
    let _ = sku;
    origin.answer().await
}

async fn a_stale_entry_is_served_when_the_function_fails(kind: Kind) {
    let client = common::client(kind, "stale-if-error");
    let origin = Origin::default();
    assert_eq!(price(&client, &origin, 1).await, Ok(1));
    // Stored for the TTL plus the stale window.
    let ttl = Store::of(&client)
        .pttl(&price_key(&client, 1))
        .await
        .unwrap()
        .expect("a TTL");
    assert!(
        ttl > Duration::from_secs(3500) && ttl <= Duration::from_millis(3_600_300),
        "{ttl:?}"
    );
    assert_eq!(price(&client, &origin, 1).await, Ok(1), "fresh: a hit");
    assert_eq!(origin.calls(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;

    origin.fail(true);
    assert_eq!(
        price(&client, &origin, 1).await,
        Ok(1),
        "stale, origin failing"
    );
    assert_eq!(origin.calls(), 2, "a stale entry is recomputed first");
    assert_eq!(price(&client, &origin, 1).await, Ok(1));
    let stats = client.cache_stats();
    assert_eq!((stats.stale_on_error, stats.hits), (2, 1));

    origin.fail(false);
    assert_eq!(
        price(&client, &origin, 1).await,
        Ok(4),
        "the origin is back"
    );
    assert_eq!(
        price(&client, &origin, 1).await,
        Ok(4),
        "and its value is fresh"
    );
    assert_eq!(origin.calls(), 4);

    // Nothing stale: the error is returned.
    origin.fail(true);
    assert_eq!(
        price(&client, &origin, 2).await,
        Err("origin down (call 5)".to_owned())
    );
}

#[cached(
    key = "quote:<sku>",
    ttl = "300ms",
    stale_if_error = "1h",
    timeout = "100ms",
    client = client,
    skip(origin)
)]
async fn quote(client: &Client, origin: &Origin, sku: u32) -> Result<u64, String> {
    let _ = sku;
    origin.answer().await
}

async fn a_function_past_its_timeout_gives_way_to_the_stale_entry(kind: Kind) {
    let client = common::client(kind, "stale-timeout");
    let origin = Origin::default();
    // No stale value yet: the timeout does not apply, the slow first call completes.
    assert_eq!(quote(&client, &origin, 1).await, Ok(1));
    tokio::time::sleep(Duration::from_millis(400)).await;
    origin.hanging.store(true, Ordering::SeqCst);
    let started = Instant::now();
    assert_eq!(quote(&client, &origin, 1).await, Ok(1), "the stale value");
    // The origin hangs for 30 s; the call was cut at its timeout (not a speed assertion: the
    // alternative is the 30 s hang).
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(origin.calls(), 2);
    assert_eq!(client.cache_stats().stale_on_error, 1);
}

#[cached(
    key = "stock:<sku>",
    ttl = "300ms",
    stale_if_error = "1h",
    stampede = "lock",
    lock_wait = "5s",
    client = client,
    skip(origin)
)]
async fn stock(client: &Client, origin: &Origin, sku: u32) -> Result<u64, String> {
    let _ = sku;
    tokio::time::sleep(Duration::from_millis(50)).await;
    origin.answer().await
}

async fn under_the_stampede_lock_one_caller_recomputes_a_stale_entry(kind: Kind) {
    let ns = common::namespace("stale-lock");
    let clients = common::clients(kind, &ns, 4);
    let origin = Arc::new(Origin::default());
    assert_eq!(stock(&clients[0], &origin, 1).await, Ok(1));
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Four processes find it stale at once: one recomputes, the others wait for its value.
    let calls = clients.iter().map(|client| {
        let (client, origin) = (client.clone(), Arc::clone(&origin));
        tokio::spawn(async move { stock(&client, &origin, 1).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap(), Ok(2));
    }
    assert_eq!(
        origin.calls(),
        2,
        "one recomputation for four stale readers"
    );

    // Stale again, and the origin fails: every caller gets the stale value.
    tokio::time::sleep(Duration::from_millis(400)).await;
    origin.fail(true);
    let calls = clients.iter().map(|client| {
        let (client, origin) = (client.clone(), Arc::clone(&origin));
        tokio::spawn(async move { stock(&client, &origin, 1).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap(), Ok(2));
    }
    let served: u64 = clients.iter().map(|c| c.cache_stats().stale_on_error).sum();
    assert!(served >= 1, "{served}");
}

#[cached(
    key = "rate:<sku>",
    ttl = "300ms",
    stale_while_revalidate = "1h",
    client = client,
    skip(origin)
)]
async fn rate(client: Client, origin: Arc<Origin>, sku: u32) -> Result<u64, String> {
    let _ = sku;
    tokio::time::sleep(Duration::from_millis(100)).await;
    origin.answer().await
}

async fn stale_while_revalidate_answers_at_once_and_refreshes_once(kind: Kind) {
    let ns = common::namespace("swr");
    let clients = common::clients(kind, &ns, 3);
    let origin = Arc::new(Origin::default());
    let call = |i: usize| rate(clients[i % 3].clone(), Arc::clone(&origin), 1);
    assert_eq!(call(0).await, Ok(1));
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Thirty stale readers in three processes: all get the stale value, one refresh runs.
    let answers = futures::future::join_all((0..30).map(call)).await;
    assert!(answers.iter().all(|a| *a == Ok(1)), "{answers:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(0).await != Ok(2) {
        assert!(Instant::now() < deadline, "the refresh never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        origin.calls(),
        2,
        "one background refresh across three processes"
    );
    let total = |f: fn(&redis_patterns::cache::CacheStats) -> u64| -> u64 {
        clients.iter().map(|c| f(&c.cache_stats())).sum()
    };
    assert_eq!(total(|s| s.background_refreshes), 1);
    assert!(total(|s| s.stale_while_revalidating) >= 1);

    // A failing refresh keeps the stale value and is tried again by a later reader.
    tokio::time::sleep(Duration::from_millis(400)).await;
    origin.fail(true);
    assert_eq!(call(1).await, Ok(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    while origin.calls() < 3 {
        assert!(Instant::now() < deadline, "no refresh was attempted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    origin.fail(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = call(1).await;
        if answer.as_ref().is_ok_and(|n| *n > 3) {
            break;
        }
        assert_eq!(answer, Ok(2), "the stale value until a refresh succeeds");
        assert!(Instant::now() < deadline, "no refresh succeeded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cached(
    key = "feed:<id>",
    ttl = "300ms",
    stale_while_revalidate = "1h",
    stale_if_error = "1h",
    timeout = "100ms",
    client = client,
    skip(origin)
)]
async fn feed(client: Client, origin: Arc<Origin>, id: u32) -> Result<u64, String> {
    let _ = id;
    origin.answer().await
}

async fn a_background_refresh_past_its_timeout_gives_way_to_the_next(kind: Kind) {
    let client = common::client(kind, "swr-timeout");
    let origin = Arc::new(Origin::default());
    let call = || feed(client.clone(), Arc::clone(&origin), 1);
    assert_eq!(call().await, Ok(1));
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Every refresh hangs for 30 s: each is cut at 100 ms and releases its lock, so later stale
    // reads start new ones (without the cut, the first would hold the key for `lock_ttl`).
    origin.hanging.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while origin.calls() < 3 {
        assert_eq!(call().await, Ok(1), "the stale value, at once");
        assert!(
            Instant::now() < deadline,
            "no second refresh after the first was cut"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    origin.hanging.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while call().await == Ok(1) {
        assert!(
            Instant::now() < deadline,
            "no refresh succeeded once the origin answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cached(key = "catalog:<id>", ttl = "1m", version = 1, client = client, skip(origin))]
async fn catalog_v1(client: &Client, origin: &Origin, id: u32) -> Result<u64, String> {
    let _ = id;
    origin.answer().await
}

#[cached(key = "catalog:<id>", ttl = "1m", version = 2, client = client, skip(origin))]
async fn catalog_v2(client: &Client, origin: &Origin, id: u32) -> Result<u64, String> {
    let _ = id;
    origin.answer().await
}

#[cache_put(key = "catalog:<id>", ttl = "1m", version = 2, client = client)]
async fn put_catalog_v2(client: &Client, id: u32, value: u64) -> Result<u64, String> {
    let _ = id;
    Ok(value)
}

async fn an_entry_of_another_version_is_a_miss_and_is_overwritten(kind: Kind) {
    let client = common::client(kind, "versions");
    let origin = Origin::default();
    // The same type under two versions: only the version tells them apart.
    assert_eq!(catalog_v1(&client, &origin, 1).await, Ok(1));
    assert_eq!(catalog_v1(&client, &origin, 1).await, Ok(1));
    assert_eq!(
        catalog_v2(&client, &origin, 1).await,
        Ok(2),
        "another version"
    );
    assert_eq!(catalog_v2(&client, &origin, 1).await, Ok(2), "now stored");
    assert_eq!(client.cache_stats().other_versions, 1);
    assert_eq!(catalog_v1(&client, &origin, 1).await, Ok(3), "and back");
    // Writers of the same version share entries with the readers.
    put_catalog_v2(&client, 1, 99).await.unwrap();
    assert_eq!(catalog_v2(&client, &origin, 1).await, Ok(99));
    assert_eq!(origin.calls(), 3);
}

on_both_backends!(
    a_stale_entry_is_served_when_the_function_fails,
    a_function_past_its_timeout_gives_way_to_the_stale_entry,
    under_the_stampede_lock_one_caller_recomputes_a_stale_entry,
    stale_while_revalidate_answers_at_once_and_refreshes_once,
    a_background_refresh_past_its_timeout_gives_way_to_the_next,
    an_entry_of_another_version_is_a_miss_and_is_overwritten,
);
