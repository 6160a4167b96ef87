//! Counters: `Counter`, `WindowedCounter`, `UniqueCounter` and `#[counted]` on a real
//! redis-server, on `mem://` (and with the root features on the cluster and behind Sentinel):
//! exact under concurrency across clients, every key with its TTL, windows aligned on the clock,
//! and unique counts identical on Redis and `mem://`.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Kind;
use redis_patterns::counter::{Counter, UniqueCounter, WindowedCounter};
use redis_patterns::test_util::Store;
use redis_patterns::{Client, counted};

/// Sleeps until `offset` past the start of the next window of `width` on this host's clock, so
/// that what follows runs well inside one window.
async fn start_of_next_window(width: Duration, offset: Duration) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let width_ms = width.as_millis();
    let next = (now.as_millis() / width_ms + 1) * width_ms;
    let wait = Duration::from_millis(u64::try_from(next - now.as_millis()).unwrap()) + offset;
    tokio::time::sleep(wait).await;
}

async fn increments_are_exact_across_clients_and_keep_the_first_ttl(kind: Kind) {
    let ns = common::namespace("counter-exact");
    let clients = common::clients(kind, &ns, 4);
    let ttl = Duration::from_secs(60);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let counter = Counter::new(ttl).client(clients[i % 4].clone());
            tokio::spawn(async move { counter.incr("signups:december").await.unwrap() })
        })
        .collect();
    let mut seen: Vec<i64> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=200).collect::<Vec<i64>>(),
        "each increment saw its own value"
    );
    let counter = Counter::new(ttl).client(clients[0].clone());
    assert_eq!(counter.get("signups:december").await.unwrap(), 200);
    let key = format!("{ns}:{{signups:#december}}:count");
    let left = Store::of(&clients[0]).pttl(&key).await.unwrap();
    assert!(
        left.is_some_and(|t| t > Duration::from_secs(55) && t <= ttl),
        "{key}: {left:?}"
    );
    assert!(counter.reset("signups:december").await.unwrap());
    assert_eq!(counter.get("signups:december").await.unwrap(), 0);
    assert_eq!(counter.stats().reads, 2);
}

async fn a_counter_expires_after_its_first_increment_a_sliding_one_after_its_latest(kind: Kind) {
    let client = common::client(kind, "counter-expiry");
    let ttl = Duration::from_millis(600);
    let fixed = Counter::new(ttl).client(client.clone());
    let sliding = Counter::new(ttl).sliding().client(client.clone());
    fixed.incr("attempts:fixed").await.unwrap();
    sliding.incr("attempts:sliding").await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        fixed.incr("attempts:fixed").await.unwrap();
        sliding.incr("attempts:sliding").await.unwrap();
    }
    // 750 ms after the first increments, 0 after the latest.
    let now_fixed = fixed.get("attempts:fixed").await.unwrap();
    assert!(
        now_fixed < 4,
        "the fixed counter outlived its TTL: {now_fixed}"
    );
    assert_eq!(sliding.get("attempts:sliding").await.unwrap(), 4);
    assert_eq!(sliding.stats().increments, 4);
    assert_eq!(sliding.stats().reads, 1);
}

async fn windowed_counts_fall_in_their_window_and_sum_over_the_latest(kind: Kind) {
    let client = common::client(kind, "counter-windows");
    let width = Duration::from_millis(1000);
    let views = WindowedCounter::new(width, 3).client(client.clone());
    start_of_next_window(width, Duration::from_millis(20)).await;
    for _ in 0..3 {
        views.incr("views:home").await.unwrap();
    }
    assert_eq!(views.incr_by("views:home", 2).await.unwrap(), 5);
    start_of_next_window(width, Duration::from_millis(20)).await;
    assert_eq!(views.incr("views:home").await.unwrap(), 1, "a new window");
    assert_eq!(views.get("views:home").await.unwrap(), 1);
    assert_eq!(views.sum("views:home", 2).await.unwrap(), 6);
    assert_eq!(
        views.sum("views:home", 100).await.unwrap(),
        6,
        "clamped to keep"
    );
    let windows = views.windows("views:home", 3).await.unwrap();
    let counts: Vec<i64> = windows.iter().map(|w| w.count).collect();
    assert_eq!(counts, [1, 5, 0], "newest first");
    assert_eq!(
        windows[0].start.duration_since(windows[1].start).unwrap(),
        width
    );
    let start_ms = windows[0]
        .start
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(start_ms % 1000, 0, "aligned on the epoch");
    // Each window's key expires when 3 windows have started after it.
    let index = start_ms / 1000;
    let key = format!(
        "{}:{{views:#home}}:count:1000:{index}",
        client.namespace().unwrap()
    );
    let left = Store::of(&client).pttl(&key).await.unwrap();
    assert!(
        left.is_some_and(|t| t > Duration::from_millis(2500) && t <= 3 * width),
        "{key}: {left:?}"
    );
}

async fn unique_counts_are_the_union_of_their_windows(kind: Kind) {
    let client = common::client(kind, "counter-unique");
    let width = Duration::from_millis(1000);
    let visitors = UniqueCounter::new(width, 7).client(client.clone());
    start_of_next_window(width, Duration::from_millis(20)).await;
    assert!(visitors.add("visitors:home", "alice").await.unwrap());
    assert!(!visitors.add("visitors:home", "alice").await.unwrap());
    visitors
        .add_all("visitors:home", ["bob", "carol"])
        .await
        .unwrap();
    assert_eq!(visitors.count("visitors:home").await.unwrap(), 3);
    start_of_next_window(width, Duration::from_millis(20)).await;
    visitors
        .add_all("visitors:home", [b"bob".to_vec(), b"dave".to_vec()])
        .await
        .unwrap();
    assert_eq!(visitors.count("visitors:home").await.unwrap(), 2);
    assert_eq!(
        visitors.count_over("visitors:home", 2).await.unwrap(),
        4,
        "bob counts once"
    );
    assert_eq!(visitors.count("visitors:other").await.unwrap(), 0);
}

#[counted(key = "views:<page>", window = "1h", keep = 24, client = client)]
async fn show(client: &Client, page: &str) -> usize {
    page.len()
}

async fn counted_counts_every_call_across_clients(kind: Kind) {
    let ns = common::namespace("counted");
    let clients = common::clients(kind, &ns, 2);
    let calls = (0..100).map(|i| {
        let client = clients[i % 2].clone();
        async move { show(&client, "home page").await }
    });
    let lengths = futures::future::join_all(calls).await;
    assert!(lengths.iter().all(|&n| n == 9), "every body ran");
    let views = WindowedCounter::hourly(24).client(clients[0].clone());
    let counted = views.get("views:home page").await.unwrap();
    // The hour may have turned during the calls.
    let both = views.sum("views:home page", 2).await.unwrap();
    assert!(
        counted <= 100 && both == 100,
        "{counted} this hour, {both} in two"
    );
    assert_eq!(views.get("views:about").await.unwrap(), 0);
}

on_both_backends!(
    increments_are_exact_across_clients_and_keep_the_first_ttl,
    a_counter_expires_after_its_first_increment_a_sliding_one_after_its_latest,
    windowed_counts_fall_in_their_window_and_sum_over_the_latest,
    unique_counts_are_the_union_of_their_windows,
    counted_counts_every_call_across_clients,
);

/// The `mem://` HyperLogLog is Redis's: the same elements give the same counts, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_counts_on_memory_are_redis_counts_exactly() {
    let on_redis = common::client(Kind::Redis, "unique-same");
    let on_memory = common::client(Kind::Memory, "unique-same");
    let window = Duration::from_secs(86_400 * 365);
    let redis = UniqueCounter::new(window, 1).client(on_redis.clone());
    let memory = UniqueCounter::new(window, 1).client(on_memory);
    let mut added = 0u32;
    for target in [1u32, 10, 100, 1000, 5000, 20_000, 60_000] {
        let batch: Vec<String> = (added..target).map(|i| format!("visitor-{i}")).collect();
        for chunk in batch.chunks(5000) {
            let (a, b) = tokio::join!(redis.add_all("u:x", chunk), memory.add_all("u:x", chunk));
            assert_eq!(a.unwrap(), b.unwrap(), "PFADD's answer after {target}");
        }
        added = target;
        let (a, b) = tokio::join!(redis.count("u:x"), memory.count("u:x"));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            a, b,
            "{target} distinct elements: Redis counted {a}, mem:// {b}"
        );
    }
    // Binary elements.
    let bytes: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let (a, b) = tokio::join!(redis.add_all("u:y", &bytes), memory.add_all("u:y", &bytes));
    assert_eq!(a.unwrap(), b.unwrap());
    let (a, b) = tokio::join!(redis.count("u:y"), memory.count("u:y"));
    assert_eq!(a.unwrap(), b.unwrap(), "binary elements");
    assert!(
        common::server()
            .keys_without_ttl(on_redis.namespace().unwrap())
            .is_empty()
    );
}

/// Every key the counters write has a TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_counter_key_is_left_without_a_ttl() {
    let client = common::client(Kind::Redis, "counter-ttls");
    Counter::new(Duration::from_secs(60))
        .client(client.clone())
        .incr_by("a:b", 3)
        .await
        .unwrap();
    Counter::new(Duration::from_secs(60))
        .sliding()
        .client(client.clone())
        .incr("a:c")
        .await
        .unwrap();
    WindowedCounter::daily(7)
        .client(client.clone())
        .incr("a:d")
        .await
        .unwrap();
    UniqueCounter::daily(7)
        .client(client.clone())
        .add("a:e", "x")
        .await
        .unwrap();
    show(&client, "x").await;
    let ns = client.namespace().unwrap();
    let server = common::server();
    assert_eq!(server.keys(ns).len(), 5, "{:?}", server.keys(ns));
    assert_eq!(server.keys_without_ttl(ns), Vec::<String>::new());
}
