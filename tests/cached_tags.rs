//! Cache tags (`#[cached(tags = […])]`, `invalidate_tag`) on a real redis-server, on `mem://`
//! and (features `cluster`, `sentinel`) on a cluster, where a tag's entries live in many slots,
//! and behind sentinels.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Calls, Kind};
use redis_patterns::test_util::Store;
use redis_patterns::{Client, cache_put, cached};
use tokio::time::Instant;

#[cached(
    key = "product:<id>",
    ttl = "1m",
    tags = ["catalog", "brand:<brand>"],
    client = client,
    skip(calls)
)]
async fn product(client: &Client, calls: &Calls, id: u64, brand: &str) -> String {
    calls.hit();
    format!("product {id} of {brand}")
}

async fn invalidating_a_tag_makes_exactly_its_entries_misses(kind: Kind) {
    let client = common::client(kind, "tags");
    let calls = Calls::default();
    let all = [(1, "acme"), (2, "acme"), (3, "globex")];
    for (id, brand) in all {
        product(&client, &calls, id, brand).await;
    }
    for (id, brand) in all {
        product(&client, &calls, id, brand).await;
    }
    assert_eq!(calls.get(), 3, "tagged entries are hits");

    assert!(client.invalidate_tag("brand:acme").await.unwrap());
    for (id, brand) in all {
        product(&client, &calls, id, brand).await;
    }
    assert_eq!(
        calls.get(),
        5,
        "products 1 and 2 were recomputed, 3 was not"
    );

    assert!(client.invalidate_tag("catalog").await.unwrap());
    for (id, brand) in all {
        product(&client, &calls, id, brand).await;
    }
    assert_eq!(calls.get(), 8, "every product carries `catalog`");
    for (id, brand) in all {
        product(&client, &calls, id, brand).await;
    }
    assert_eq!(calls.get(), 8, "and each was stored again");

    assert!(!client.invalidate_tag("brand:initech").await.unwrap());
    let stats = client.cache_stats();
    assert_eq!((stats.hits, stats.misses), (7, 8));
}

async fn every_key_a_tagged_entry_writes_expires_and_tags_outlive_their_entries(kind: Kind) {
    let client = common::client(kind, "tags-ttl");
    let calls = Calls::default();
    product(&client, &calls, 1, "acme").await;
    let store = Store::of(&client);
    let entry_ttl = store
        .pttl(&product_key(&client, 1))
        .await
        .unwrap()
        .expect("the entry has a TTL");
    for tag in ["catalog", "brand:acme"] {
        let key = tag_key(&client, tag);
        let tag_ttl = store.pttl(&key).await.unwrap();
        assert!(
            tag_ttl.is_some_and(|t| t >= entry_ttl),
            "tag {tag} ({key}): {tag_ttl:?} against the entry's {entry_ttl:?}"
        );
    }
}

/// The key a tag lives under: `namespace:^tag:{…}` (as the README documents).
fn tag_key(client: &Client, tag: &str) -> String {
    let (literal, values) = tag.split_once(':').map_or((tag, ""), |(l, v)| (l, v));
    let inner = if values.is_empty() {
        literal.to_owned()
    } else {
        format!("{literal}:#{values}")
    };
    format!("{}:^tag:{{{inner}}}", client.namespace().unwrap())
}

async fn a_lost_tag_turns_its_entries_into_misses_never_into_hits(kind: Kind) {
    let client = common::client(kind, "tags-lost");
    let calls = Calls::default();
    product(&client, &calls, 1, "acme").await;
    // Evicted under memory pressure, or deleted by hand.
    assert!(
        Store::of(&client)
            .del(&tag_key(&client, "brand:acme"))
            .await
            .unwrap()
    );
    product(&client, &calls, 1, "acme").await;
    assert_eq!(calls.get(), 2, "a missing tag matches no entry");
    product(&client, &calls, 1, "acme").await;
    assert_eq!(calls.get(), 2, "the tag was created again with the entry");
}

async fn an_invalidation_from_another_process_is_seen_on_the_next_read(kind: Kind) {
    let ns = common::namespace("tags-other");
    let clients = common::clients(kind, &ns, 2);
    let calls = Calls::default();
    product(&clients[0], &calls, 1, "acme").await;
    product(&clients[1], &calls, 1, "acme").await;
    assert_eq!(calls.get(), 1, "shared entry");
    assert!(clients[1].invalidate_tag("brand:acme").await.unwrap());
    product(&clients[0], &calls, 1, "acme").await;
    assert_eq!(calls.get(), 2);
}

#[cached(
    key = "slow:<id>",
    ttl = "1m",
    tags = ["slow:<id>"],
    client = client,
    skip(calls)
)]
async fn slow(client: &Client, calls: &Calls, id: u64) -> u64 {
    calls.hit();
    tokio::time::sleep(Duration::from_millis(300)).await;
    id
}

async fn an_invalidation_during_the_computation_leaves_the_new_entry_invalid(kind: Kind) {
    let client = common::client(kind, "tags-race");
    let calls = Calls::default();
    let computing = slow(&client, &calls, 1);
    let invalidating = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            client.invalidate_tag("slow:1").await.unwrap(),
            "the tag is created before the function runs"
        );
    };
    tokio::join!(computing, invalidating);
    slow(&client, &calls, 1).await;
    assert_eq!(
        calls.get(),
        2,
        "the value computed across the invalidation is not served"
    );
    slow(&client, &calls, 1).await;
    assert_eq!(calls.get(), 2);
}

#[cache_put(key = "product:<id>", ttl = "1m", tags = ["catalog", "brand:<brand>"], client = client)]
async fn save_product(client: &Client, id: u64, brand: &str, name: String) -> String {
    let _ = (id, brand);
    name
}

async fn a_tagged_write_through_is_read_and_invalidated_like_a_computed_entry(kind: Kind) {
    let client = common::client(kind, "tags-put");
    let calls = Calls::default();
    save_product(&client, 1, "acme", "written".into()).await;
    assert_eq!(product(&client, &calls, 1, "acme").await, "written");
    assert_eq!(calls.get(), 0);
    client.invalidate_tag("catalog").await.unwrap();
    assert_eq!(
        product(&client, &calls, 1, "acme").await,
        "product 1 of acme"
    );
}

#[cached(
    key = "near:<id>",
    ttl = "1m",
    near = "1m",
    tags = ["near-brand:<brand>"],
    client = client,
    skip(version)
)]
async fn near_product(client: &Client, version: &AtomicU64, id: u64, brand: &str) -> u64 {
    let _ = (id, brand);
    version.load(Ordering::SeqCst)
}

async fn near_tiers_drop_tagged_values_when_another_process_invalidates_the_tag(kind: Kind) {
    let ns = common::namespace("tags-near");
    let clients = common::clients(kind, &ns, 2);
    let version = Arc::new(AtomicU64::new(1));
    let read = || near_product(&clients[0], &version, 1, "acme");
    // Until tracking covers the key and the tag, values are not kept near; wait for a near hit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while clients[0].cache_stats().near_hits == 0 {
        assert_eq!(read().await, 1);
        assert!(Instant::now() < deadline, "no near hit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    version.store(2, Ordering::SeqCst);
    assert_eq!(read().await, 1, "served near, not recomputed");
    assert!(clients[1].invalidate_tag("near-brand:acme").await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while read().await != 2 {
        assert!(
            Instant::now() < deadline,
            "the near tier kept a value of an invalidated tag"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

on_both_backends!(
    invalidating_a_tag_makes_exactly_its_entries_misses,
    every_key_a_tagged_entry_writes_expires_and_tags_outlive_their_entries,
    a_lost_tag_turns_its_entries_into_misses_never_into_hits,
    an_invalidation_from_another_process_is_seen_on_the_next_read,
    an_invalidation_during_the_computation_leaves_the_new_entry_invalid,
    a_tagged_write_through_is_read_and_invalidated_like_a_computed_entry,
    near_tiers_drop_tagged_values_when_another_process_invalidates_the_tag,
);
