//! `#[cached]`, `#[cache_evict]`, `#[cache_put]` and the companions, on a real redis-server and
//! on `mem://`. Each test runs on both backends (`on_redis::…`, `on_memory::…`).

mod common;

use std::collections::HashSet;

use std::time::Duration;

use common::{Calls, Kind};
use redis_patterns::test_util::Store;
use redis_patterns::{Client, cache_evict, cache_put, cached};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
}

#[cached(key = "product:<id>", ttl = "1m", client = client, skip(calls))]
async fn product(client: &Client, calls: &Calls, id: u64) -> Result<Product, String> {
    calls.hit();
    Ok(Product {
        id,
        name: format!("product {id}"),
    })
}

async fn a_miss_runs_the_body_and_a_hit_does_not(kind: Kind) {
    let client = common::client(kind, "miss-hit");
    let calls = Calls::default();
    let first = product(&client, &calls, 7).await.unwrap();
    let second = product(&client, &calls, 7).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.name, "product 7");
    assert_eq!(calls.get(), 1);
    product(&client, &calls, 8).await.unwrap();
    assert_eq!(calls.get(), 2, "another argument is another entry");
    let stats = client.cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.writes), (1, 2, 2));
    assert_eq!(stats.hit_rate(), Some(1.0 / 3.0));
}

#[cached(key = "short:<id>", ttl = "300ms", client = client, skip(calls))]
async fn short_lived(client: &Client, calls: &Calls, id: u32) -> u32 {
    calls.hit();
    id
}

async fn entries_expire_after_their_ttl(kind: Kind) {
    let client = common::client(kind, "ttl");
    let calls = Calls::default();
    short_lived(&client, &calls, 1).await;
    let ttl = Store::of(&client)
        .pttl(&short_lived_key(&client, 1))
        .await
        .unwrap()
        .expect("the entry has a TTL");
    assert!(
        ttl <= Duration::from_millis(300) && ttl > Duration::ZERO,
        "{ttl:?}"
    );
    short_lived(&client, &calls, 1).await;
    assert_eq!(calls.get(), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    short_lived(&client, &calls, 1).await;
    assert_eq!(calls.get(), 2, "an expired entry is a miss");
}

#[cached(key = "flaky:<id>", ttl = "1m", client = client, skip(calls, fail))]
async fn flaky(client: &Client, calls: &Calls, id: u32, fail: bool) -> Result<u32, String> {
    calls.hit();
    if fail {
        Err(format!("db down for {id}"))
    } else {
        Ok(id)
    }
}

async fn only_ok_results_are_cached(kind: Kind) {
    let client = common::client(kind, "result");
    let calls = Calls::default();
    assert_eq!(
        flaky(&client, &calls, 1, true).await,
        Err("db down for 1".into())
    );
    assert_eq!(
        flaky(&client, &calls, 1, true).await,
        Err("db down for 1".into())
    );
    assert_eq!(calls.get(), 2, "errors are not cached");
    assert_eq!(flaky(&client, &calls, 1, false).await, Ok(1));
    assert_eq!(
        flaky(&client, &calls, 1, true).await,
        Ok(1),
        "the Ok value is served"
    );
    assert_eq!(calls.get(), 3);
}

#[cached(key = "find:<name>", ttl = "1m", client = client, skip(calls, found))]
async fn find(client: &Client, calls: &Calls, name: &str, found: bool) -> Option<String> {
    calls.hit();
    found.then(|| name.to_uppercase())
}

#[cached(key = "find-none:<name>", ttl = "1m", cache_none, client = client, skip(calls, found))]
async fn find_caching_none(
    client: &Client,
    calls: &Calls,
    name: &str,
    found: bool,
) -> Option<String> {
    calls.hit();
    found.then(|| name.to_uppercase())
}

async fn only_some_is_cached_unless_cache_none(kind: Kind) {
    let client = common::client(kind, "option");
    let calls = Calls::default();
    assert_eq!(find(&client, &calls, "a", false).await, None);
    assert_eq!(find(&client, &calls, "a", true).await, Some("A".into()));
    assert_eq!(find(&client, &calls, "a", false).await, Some("A".into()));
    assert_eq!(calls.get(), 2);

    let calls = Calls::default();
    assert_eq!(find_caching_none(&client, &calls, "b", false).await, None);
    assert_eq!(
        find_caching_none(&client, &calls, "b", true).await,
        None,
        "None is cached"
    );
    assert_eq!(calls.get(), 1);
}

#[cache_evict(key = "product:<id>", client = client)]
async fn rename_product(client: &Client, id: u64, ok: bool) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("cannot rename {id}"))
    }
}

#[cache_put(key = "product:<product.id>", ttl = "1m", client = client)]
async fn save_product(client: &Client, product: Product) -> Result<Product, String> {
    Ok(product)
}

async fn evict_deletes_after_success_and_put_writes_through(kind: Kind) {
    let client = common::client(kind, "evict-put");
    let calls = Calls::default();
    product(&client, &calls, 1).await.unwrap();
    rename_product(&client, 1, false).await.unwrap_err();
    product(&client, &calls, 1).await.unwrap();
    assert_eq!(calls.get(), 1, "a failed update does not evict");
    rename_product(&client, 1, true).await.unwrap();
    product(&client, &calls, 1).await.unwrap();
    assert_eq!(calls.get(), 2, "a successful update evicts");

    let saved = Product {
        id: 2,
        name: "written through".into(),
    };
    save_product(&client, saved.clone()).await.unwrap();
    assert_eq!(product(&client, &calls, 2).await.unwrap(), saved);
    assert_eq!(
        calls.get(),
        2,
        "the put value is served without running the body"
    );
}

async fn companions_give_the_key_invalidate_and_refresh(kind: Kind) {
    let client = common::client(kind, "companions");
    let calls = Calls::default();
    let ns = client.namespace().unwrap().to_owned();
    assert_eq!(product_key(&client, 5), format!("{ns}:{{product:#5}}"));

    assert!(
        !product_invalidate(&client, 5).await.unwrap(),
        "nothing stored yet"
    );
    product(&client, &calls, 5).await.unwrap();
    assert!(product_invalidate(&client, 5).await.unwrap());
    product(&client, &calls, 5).await.unwrap();
    assert_eq!(calls.get(), 2);

    product_refresh(&client, &calls, 5).await.unwrap();
    assert_eq!(
        calls.get(),
        3,
        "refresh runs the body even though the value is cached"
    );
    product(&client, &calls, 5).await.unwrap();
    assert_eq!(calls.get(), 3, "and stores what it computed");
}

#[cached(key = "pair:<a>:<b>", ttl = "1m", client = client)]
async fn pair(client: &Client, a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

const ADVERSARIAL: &[&str] = &[
    "",
    "a",
    "a:b",
    ":",
    "a%3Ab",
    "%",
    "~",
    "{",
    "}",
    "}{",
    "a}b",
    "*",
    "?",
    "[x]",
    " ",
    "\n",
    "\r\n",
    "é",
    "%C3%A9",
    "\u{1F600}",
    "pair:a",
    "a:b:c",
    "{pair:a}",
    "\\",
    "\0",
];

async fn adversarial_arguments_never_share_or_escape_a_key(kind: Kind) {
    let client = common::client(kind, "adversarial");
    let ns = client.namespace().unwrap().to_owned();
    let mut keys = HashSet::new();
    for a in ADVERSARIAL {
        for b in ADVERSARIAL {
            assert_eq!(pair(&client, a, b).await, (a.to_string(), b.to_string()));
            let key = pair_key(&client, a, b);
            assert!(
                keys.insert(key.clone()),
                "({a:?}, {b:?}) shares the key {key}"
            );
            // One hash tag spanning the whole rendered template: same slot for value and lock.
            let tag = key
                .strip_prefix(&format!("{ns}:{{"))
                .and_then(|k| k.strip_suffix('}'))
                .unwrap_or_else(|| panic!("{key} is not `ns:{{…}}`"));
            assert!(
                !tag.contains(['{', '}', '*', '?', '[', ']', ' ', '\n', '\r', '\0']),
                "{key}"
            );
            assert_eq!(
                tag.matches(':').count(),
                2,
                "{key}: a value added a segment"
            );
            assert!(key.is_ascii(), "{key}");
        }
    }
    // Served from the cache, every tuple still gets its own value back.
    for a in ADVERSARIAL {
        for b in ADVERSARIAL {
            assert_eq!(pair(&client, a, b).await, (a.to_string(), b.to_string()));
        }
    }
    let stats = client.cache_stats();
    let n = (ADVERSARIAL.len() * ADVERSARIAL.len()) as u64;
    assert_eq!((stats.misses, stats.hits), (n, n));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProductV2 {
    id: u64,
    title: String,
    price_cents: u64,
}

#[cached(key = "product:<id>", ttl = "1m", client = client, skip(calls))]
async fn product_v2(client: &Client, calls: &Calls, id: u64) -> Result<ProductV2, String> {
    calls.hit();
    Ok(ProductV2 {
        id,
        title: "v2".into(),
        price_cents: 100,
    })
}

async fn undecodable_values_are_misses_and_get_overwritten(kind: Kind) {
    let client = common::client(kind, "undecodable");
    let calls = Calls::default();
    // A deploy changed the type stored under `product:<id>`: the fingerprint tells.
    product(&client, &calls, 3).await.unwrap();
    assert_eq!(product_v2(&client, &calls, 3).await.unwrap().title, "v2");
    assert_eq!(calls.get(), 2);
    assert_eq!(client.cache_stats().other_versions, 1);
    product_v2(&client, &calls, 3).await.unwrap();
    assert_eq!(calls.get(), 2, "the new value replaced the old one");

    // Foreign bytes under the key.
    for garbage in [
        &b"not an envelope"[..],
        b"",
        b"\xFE\x01\x01\x00garbage-header",
    ] {
        let key = product_key(&client, 4);
        Store::of(&client)
            .set(&key, garbage, Duration::from_secs(60))
            .await
            .unwrap();
        let before = calls.get();
        assert_eq!(product(&client, &calls, 4).await.unwrap().id, 4);
        product(&client, &calls, 4).await.unwrap();
        assert_eq!(calls.get(), before + 1, "{garbage:?} was overwritten");
    }
    assert_eq!(client.cache_stats().undecodable, 3);
}

#[cached(key = "slow:<id>", ttl = "1m", client = client, skip(calls))]
async fn slow(client: &Client, calls: &Calls, id: u32) -> u32 {
    calls.hit();
    tokio::time::sleep(Duration::from_millis(150)).await;
    id
}

async fn concurrent_calls_in_one_process_run_the_body_once(kind: Kind) {
    let client = common::client(kind, "single-flight");
    let calls = Calls::default();
    let results = futures::future::join_all((0..50).map(|_| slow(&client, &calls, 9))).await;
    assert!(results.iter().all(|r| *r == 9));
    assert_eq!(calls.get(), 1);
    let stats = client.cache_stats();
    assert_eq!(stats.misses, 1, "one backend read for the whole flight");
    assert_eq!(stats.hits, 49);
}

#[cached(key = "herd:<id>", ttl = "1m", stampede = "lock", lock_wait = "10s", client = client, skip(calls))]
async fn herd(client: &Client, calls: &Calls, id: u32) -> Result<u32, String> {
    calls.hit();
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(id * 2)
}

async fn lock_mode_runs_the_body_once_across_clients(kind: Kind) {
    let ns = common::namespace("stampede");
    let clients = common::clients(kind, &ns, 4);
    let calls = Calls::default();
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..50 {
            let (client, calls) = (client.clone(), calls.clone());
            tasks.push(tokio::spawn(async move { herd(&client, &calls, 21).await }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(42));
    }
    assert_eq!(calls.get(), 1, "4 clients x 50 callers on one cold key");
    let waits: u64 = clients.iter().map(|c| c.cache_stats().lock_waits).sum();
    assert_eq!(
        waits, 3,
        "the three clients that lost the lock waited for the value"
    );
}

#[cached(key = "long:<id>", ttl = "1m", stampede = "lock", lock_wait = "100ms", client = client, skip(calls))]
async fn long_running(client: &Client, calls: &Calls, id: u32) -> u32 {
    calls.hit();
    tokio::time::sleep(Duration::from_millis(600)).await;
    id
}

async fn a_waiter_whose_wait_runs_out_computes_itself(kind: Kind) {
    let ns = common::namespace("lock-wait");
    let clients = common::clients(kind, &ns, 2);
    let calls = Calls::default();
    let holder = {
        let (client, calls) = (clients[0].clone(), calls.clone());
        tokio::spawn(async move { long_running(&client, &calls, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waiter = tokio::time::timeout(
        Duration::from_millis(550),
        long_running(&clients[1], &calls, 1),
    );
    // The waiter gives up on the lock after 100 ms and computes (600 ms) rather than failing.
    assert_eq!(waiter.await.ok(), None, "the waiter is still computing");
    assert_eq!(calls.get(), 2);
    assert_eq!(holder.await.unwrap(), 1);
    assert_eq!(clients[1].cache_stats().lock_timeouts, 1);
}

#[cached(key = "orphan:<id>", ttl = "1m", stampede = "lock", lock_ttl = "300ms", lock_wait = "5s", client = client, skip(calls))]
async fn orphaned(client: &Client, calls: &Calls, id: u32) -> u32 {
    calls.hit();
    id
}

async fn a_crashed_lock_holder_is_replaced_after_lock_ttl(kind: Kind) {
    let client = common::client(kind, "crashed-holder");
    let calls = Calls::default();
    // A holder that took the lock and died without storing or releasing.
    let key = orphaned_key(&client, 1);
    let lock = format!("{key}:lock");
    Store::of(&client)
        .set(&lock, "dead-owner", Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(orphaned(&client, &calls, 1).await, 1);
    assert_eq!(calls.get(), 1);
    let stats = client.cache_stats();
    assert_eq!(
        (stats.lock_waits, stats.lock_timeouts),
        (1, 0),
        "it waited for the lock to expire"
    );
}

#[cached(key = "xfetch:<id>", ttl = "1s", stampede = "early", beta = 20.0, client = client, skip(calls))]
async fn xfetched(client: &Client, calls: &Calls, id: u32) -> u32 {
    calls.hit();
    tokio::time::sleep(Duration::from_millis(30)).await;
    id
}

async fn early_mode_recomputes_before_expiry(kind: Kind) {
    let client = common::client(kind, "xfetch");
    let calls = Calls::default();
    // Call steadily for longer than the TTL: XFetch refreshes ahead of expiry, so after the
    // first (cold) miss there is never another.
    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        assert_eq!(xfetched(&client, &calls, 1).await, 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = client.cache_stats();
    assert_eq!(stats.misses, 1, "{stats:?}");
    assert!(stats.early_recomputations >= 2, "{stats:?}");
    assert_eq!(u64::from(calls.get()), 1 + stats.early_recomputations);
}

struct Catalog {
    client: Client,
    region: String,
    calls: Calls,
}

impl Catalog {
    #[cached(key = "catalog:<self.region>:<page>", ttl = "1m", client = self.client)]
    async fn page(&self, page: u32) -> Vec<String> {
        self.calls.hit();
        vec![format!("{}-{page}", self.region)]
    }
}

async fn methods_key_on_self_fields(kind: Kind) {
    let client = common::client(kind, "methods");
    let eu = Catalog {
        client: client.clone(),
        region: "eu".into(),
        calls: Calls::default(),
    };
    let us = Catalog {
        client,
        region: "us".into(),
        calls: eu.calls.clone(),
    };
    assert_eq!(eu.page(1).await, vec!["eu-1"]);
    assert_eq!(us.page(1).await, vec!["us-1"]);
    assert_eq!(eu.page(1).await, vec!["eu-1"]);
    assert_eq!(eu.calls.get(), 2);
    assert!(eu.page_key(1).ends_with("{catalog:#eu:#1}"));
    assert_eq!(eu.page_refresh(1).await, vec!["eu-1"]);
    assert_eq!(eu.calls.get(), 3, "refresh ran the body");
    assert!(eu.page_invalidate(1).await.unwrap());
}

struct Inventory;

impl Inventory {
    /// An associated function without `self`: its companions are associated functions too.
    #[cached(key = "stock:<sku>", ttl = "1m", client = client, skip(calls))]
    async fn stock(client: &Client, calls: &Calls, sku: &str) -> u32 {
        calls.hit();
        u32::try_from(sku.len()).unwrap()
    }
}

async fn associated_functions_without_self_have_companions(kind: Kind) {
    let client = common::client(kind, "associated");
    let calls = Calls::default();
    assert_eq!(Inventory::stock(&client, &calls, "lamp").await, 4);
    assert_eq!(Inventory::stock(&client, &calls, "lamp").await, 4);
    assert_eq!(calls.get(), 1);
    assert_eq!(Inventory::stock_refresh(&client, &calls, "lamp").await, 4);
    assert_eq!(calls.get(), 2, "refresh ran the body");
    assert_eq!(Inventory::stock(&client, &calls, "lamp").await, 4);
    assert_eq!(calls.get(), 2, "and stored its result");
    assert!(Inventory::stock_key(&client, "lamp").ends_with("{stock:#lamp}"));
    assert!(Inventory::stock_invalidate(&client, "lamp").await.unwrap());
    // The function and its `_refresh` companion are one row of the per-template statistics.
    let rows: Vec<_> = redis_patterns::cache::stats_by_function()
        .into_iter()
        .filter(|(template, _)| *template == "stock:<sku>")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let stats = rows[0].1;
    assert!(stats.computations >= 2 && stats.writes >= 2, "{stats:?}");
    assert!(
        stats.evictions >= 1,
        "`_invalidate` counts for its function: {stats:?}"
    );
}

#[cached(ttl = "1m", client = client)]
async fn generic_default_key<T>(client: &Client, value: T, label: String) -> T
where
    T: Serialize + serde::de::DeserializeOwned + redis_patterns::KeyPart + Send,
{
    let _ = label;
    value
}

async fn generic_functions_and_default_keys(kind: Kind) {
    let client = common::client(kind, "generic");
    assert_eq!(generic_default_key(&client, 5u32, "x".into()).await, 5);
    assert_eq!(generic_default_key(&client, 5u64, "y".into()).await, 5);
    let key = generic_default_key_key(&client, 5u32, "x".into());
    assert!(
        key.ends_with("{cached::generic_default_key:#5:#x}"),
        "the default key is the function path and the arguments: {key}"
    );
}

on_both_backends!(
    a_miss_runs_the_body_and_a_hit_does_not,
    entries_expire_after_their_ttl,
    only_ok_results_are_cached,
    only_some_is_cached_unless_cache_none,
    evict_deletes_after_success_and_put_writes_through,
    companions_give_the_key_invalidate_and_refresh,
    adversarial_arguments_never_share_or_escape_a_key,
    undecodable_values_are_misses_and_get_overwritten,
    concurrent_calls_in_one_process_run_the_body_once,
    lock_mode_runs_the_body_once_across_clients,
    a_waiter_whose_wait_runs_out_computes_itself,
    a_crashed_lock_holder_is_replaced_after_lock_ttl,
    early_mode_recomputes_before_expiry,
    methods_key_on_self_fields,
    associated_functions_without_self_have_companions,
    generic_functions_and_default_keys,
);
