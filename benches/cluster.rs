//! `#[cached]` hits and `#[rate_limited]` decisions on a Redis Cluster against the
//! hand-written baselines, in one run against one cluster: the redis crate's async cluster
//! client (`ClusterClient` → `cluster_async::ClusterConnection`, one multiplexed connection
//! per node, routed by slot) with the same seed nodes and timeouts as ours.
//!
//! ```text
//! cargo bench --features cluster --bench cluster   # or RUNS=3 scripts/bench-report cluster
//! ```
//!
//! The harness spawns the cluster (3 primaries, 3 replicas, loopback) once for this binary.
//!
//! Groups:
//! - `cluster_hit_latency`: one caller, one key; baseline `GET` + `serde_json::from_slice` of
//!   the same ~190-byte product.
//! - `cluster_hit_throughput_64`: 64 concurrent callers on 64 distinct keys.
//! - `cluster_rate_limit_latency`: one caller; baseline the sliding-window script (the same
//!   file the runtime uses) via `Script` (`EVALSHA`) on the cluster connection. Every call is
//!   admitted (the limit is far above the rate), on both sides.
//! - `cluster_rate_limit_throughput_64`: 64 concurrent callers on 64 distinct limits.
//! - `cluster_spublish_latency`: one caller publishing a small struct on a sharded topic
//!   (`Topic::sharded`); baseline `serde_json::to_vec`, then `SPUBLISH` on the cluster
//!   connection (routed to the channel's slot). No subscribers: the measure is the publish.
//! - `cluster_spublish_throughput_64`: 64 concurrent callers on 64 sharded topics.
//!
//! Each baseline key carries the same hash tag as the key redis-patterns writes for the same
//! caller (`baseline:{product:#7}` next to `bench:{product:#7}`), so both sides of a task
//! talk to the same primary; setup asserts that, and that the 64 tasks reach all three.
//!
//! `scripts/bench-report` pins this client to CPU 0 and all six servers to CPU 1. A hit costs
//! the client more than the servers, so the hit groups measure the client; a sliding-window
//! decision costs the servers more (Lua, and the replica applying its writes), so in
//! `cluster_rate_limit_throughput_64` both sides wait on CPU 1 and the ratio says what each
//! side costs the cluster: one `EVALSHA` of the same script.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands;
use redis::Script;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis_patterns::pubsub::Topic;
use redis_patterns::rate_limit::RateLimited;
use redis_patterns::{Client, Config, cached, rate_limited};
use support::common::cluster::cluster;
use support::{CONCURRENCY, Pair, Product, concurrent, runtime, sample, sequential};

/// Both sides' timeouts (ours: `Config`'s defaults, spelled out).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

const LIMIT: u64 = 1_000_000_000;
const WINDOW_US: u64 = 1_000_000;

#[cached(key = "product:<id>", ttl = "1h", client = client)]
async fn product(client: &Client, id: u64) -> Result<Product, String> {
    Ok(sample(id))
}

#[rate_limited(key = "api:<user>", limit = 1_000_000_000, window = "1s", client = client)]
async fn decide(client: &Client, user: u64) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

/// The key `#[cached]` writes for `id` (namespace `bench`), and the baseline's beside it.
fn cached_key(id: u64) -> String {
    format!("bench:{{product:#{id}}}")
}

fn baseline_cached_key(id: u64) -> String {
    format!("baseline:{{product:#{id}}}")
}

/// The sorted set `#[rate_limited]` writes for `user` (window 1 s), and the baseline's.
fn limit_key(user: u64) -> String {
    format!("bench:{{api:#{user}}}:sw2:1000")
}

fn baseline_limit_key(user: u64) -> String {
    format!("baseline:{{api:#{user}}}:sw2")
}

/// Every task's baseline key lives on the same primary as its redis-patterns key, and the
/// tasks' keys cover all three primaries.
fn assert_spread(ours: fn(u64) -> String, baseline: fn(u64) -> String) {
    let primaries: BTreeSet<u16> = (0..CONCURRENCY)
        .map(|task| {
            let primary = cluster().primary_of(&ours(task));
            assert_eq!(primary, cluster().primary_of(&baseline(task)), "same slot");
            primary
        })
        .collect();
    assert_eq!(primaries.len(), 3, "the tasks' keys reach every primary");
}

/// The baseline's cluster connection: same seeds, same timeouts.
async fn connection() -> ClusterConnection {
    let seeds: Vec<String> = cluster().nodes.iter().map(|n| n.url()).collect();
    ClusterClientBuilder::new(seeds)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(COMMAND_TIMEOUT)
        .build()
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

async fn client() -> Client {
    let config = Config::from_url(&cluster().url())
        .unwrap()
        .namespace("bench")
        .connect_timeout(CONNECT_TIMEOUT)
        .command_timeout(COMMAND_TIMEOUT);
    let client = Client::new(config).unwrap();
    client.connect().await.unwrap();
    client
}

/// The baseline's keys hold the same JSON the cached function stores (without the envelope).
async fn cache_setup() -> (ClusterConnection, Client) {
    let mut conn = connection().await;
    let client = client().await;
    for id in 0..CONCURRENCY {
        let json = serde_json::to_vec(&sample(id)).unwrap();
        let _: () = conn.set(baseline_cached_key(id), json).await.unwrap();
        product(&client, id).await.unwrap();
        let stored: bool = conn.exists(cached_key(id)).await.unwrap();
        assert!(stored, "#[cached] stores under {}", cached_key(id));
    }
    (conn, client)
}

async fn baseline_get(conn: &mut ClusterConnection, id: u64) -> Product {
    let bytes: Vec<u8> = conn.get(baseline_cached_key(id)).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn script() -> Script {
    Script::new(include_str!(
        "../redis-patterns/src/scripts/rate_limit/sliding_window.lua"
    ))
}

/// What a hand-written caller sends: the key, the limit, the window and the cost.
async fn baseline_decide(conn: &mut ClusterConnection, script: &Script, user: u64) {
    let reply: Vec<i64> = script
        .key(baseline_limit_key(user))
        .arg("take")
        .arg(LIMIT)
        .arg(WINDOW_US)
        .arg(1)
        .arg(0)
        .invoke_async(conn)
        .await
        .unwrap();
    assert_eq!(reply[0], 1, "admitted");
}

/// Both sides have taken once for every task, so each script is loaded on every primary.
async fn rate_limit_setup(script: &Script) -> (ClusterConnection, Client) {
    let mut conn = connection().await;
    let client = client().await;
    for user in 0..CONCURRENCY {
        baseline_decide(&mut conn, script, user).await;
        decide(&client, user).await.unwrap();
        let stored: bool = conn.exists(limit_key(user)).await.unwrap();
        assert!(stored, "#[rate_limited] stores under {}", limit_key(user));
    }
    (conn, client)
}

fn cluster_hit_latency(c: &mut Criterion) {
    let rt = runtime();
    let (conn, client) = rt.block_on(cache_setup());
    Pair::new(
        |rt: &tokio::runtime::Runtime, iters| {
            sequential(rt, iters, || {
                let mut conn = conn.clone();
                async move { baseline_get(&mut conn, 1).await }
            })
        },
        |rt: &tokio::runtime::Runtime, iters| sequential(rt, iters, || product(&client, 1)),
    )
    .bench(
        c,
        &rt,
        "cluster_hit_latency",
        ("baseline_get_from_slice", "cached"),
        None,
    );
}

fn cluster_hit_throughput_64(c: &mut Criterion) {
    assert_spread(cached_key, baseline_cached_key);
    let rt = runtime();
    let (conn, client) = rt.block_on(cache_setup());
    Pair::new(
        |rt: &tokio::runtime::Runtime, iters| {
            let conn = conn.clone();
            concurrent(rt, iters, move |id| {
                let mut conn = conn.clone();
                async move {
                    baseline_get(&mut conn, id).await;
                }
            })
        },
        |rt: &tokio::runtime::Runtime, iters| {
            let client = client.clone();
            concurrent(rt, iters, move |id| {
                let client = client.clone();
                async move {
                    product(&client, id).await.unwrap();
                }
            })
        },
    )
    .bench(
        c,
        &rt,
        "cluster_hit_throughput_64",
        ("baseline_get_from_slice", "cached"),
        Some(CONCURRENCY),
    );
}

fn cluster_rate_limit_latency(c: &mut Criterion) {
    let rt = runtime();
    let script = script();
    let (conn, client) = rt.block_on(rate_limit_setup(&script));
    Pair::new(
        |rt: &tokio::runtime::Runtime, iters| {
            sequential(rt, iters, || {
                let mut conn = conn.clone();
                let script = &script;
                async move { baseline_decide(&mut conn, script, 1).await }
            })
        },
        |rt: &tokio::runtime::Runtime, iters| sequential(rt, iters, || decide(&client, 1)),
    )
    .bench(
        c,
        &rt,
        "cluster_rate_limit_latency",
        ("baseline_script", "rate_limited"),
        None,
    );
}

fn cluster_rate_limit_throughput_64(c: &mut Criterion) {
    assert_spread(limit_key, baseline_limit_key);
    let rt = runtime();
    let script = Arc::new(script());
    let (conn, client) = rt.block_on(rate_limit_setup(&script));
    Pair::new(
        |rt: &tokio::runtime::Runtime, iters| {
            let (conn, script) = (conn.clone(), script.clone());
            concurrent(rt, iters, move |user| {
                let (mut conn, script) = (conn.clone(), script.clone());
                async move { baseline_decide(&mut conn, &script, user).await }
            })
        },
        |rt: &tokio::runtime::Runtime, iters| {
            let client = client.clone();
            concurrent(rt, iters, move |user| {
                let client = client.clone();
                async move { decide(&client, user).await.unwrap() }
            })
        },
    )
    .bench(
        c,
        &rt,
        "cluster_rate_limit_throughput_64",
        ("baseline_script", "rate_limited"),
        Some(CONCURRENCY),
    );
}

/// The baseline's channel for a task: the same slot as ours (`bench:prices:<task>`).
fn baseline_channel(task: u64) -> String {
    format!("{{bench:prices:{task}}}:baseline")
}

async fn baseline_spublish(conn: &mut ClusterConnection, task: u64) {
    let payload = serde_json::to_vec(&sample(task)).unwrap();
    let receivers: u64 = redis::cmd("SPUBLISH")
        .arg(baseline_channel(task))
        .arg(payload)
        .query_async(conn)
        .await
        .unwrap();
    assert_eq!(receivers, 0);
}

async fn spublish_setup() -> (ClusterConnection, Arc<Vec<Topic<Product>>>) {
    let client = client().await;
    let topics = (0..CONCURRENCY)
        .map(|task| {
            Topic::new(format!("prices:{task}"))
                .sharded()
                .client(client.clone())
        })
        .collect();
    (connection().await, Arc::new(topics))
}

async fn spublish(topics: &[Topic<Product>], task: u64) {
    let topic = &topics[task as usize % topics.len()];
    assert_eq!(topic.publish(&sample(task)).await.unwrap(), 0);
}

fn cluster_spublish_latency(c: &mut Criterion) {
    let rt = runtime();
    let (conn, topics) = rt.block_on(spublish_setup());
    Pair::new(
        |rt: &tokio::runtime::Runtime, iters| {
            sequential(rt, iters, || {
                let mut conn = conn.clone();
                async move { baseline_spublish(&mut conn, 1).await }
            })
        },
        |rt: &tokio::runtime::Runtime, iters| sequential(rt, iters, || spublish(&topics, 1)),
    )
    .bench(
        c,
        &rt,
        "cluster_spublish_latency",
        ("baseline_spublish", "sharded_topic"),
        None,
    );
}

fn cluster_spublish_throughput_64(c: &mut Criterion) {
    assert_spread(|task| format!("bench:prices:{task}"), baseline_channel);
    let rt = runtime();
    let (conn, topics) = rt.block_on(spublish_setup());
    Pair::new(
        |rt: &tokio::runtime::Runtime, iters| {
            let conn = conn.clone();
            concurrent(rt, iters, move |task| {
                let mut conn = conn.clone();
                async move { baseline_spublish(&mut conn, task).await }
            })
        },
        |rt: &tokio::runtime::Runtime, iters| {
            let topics = topics.clone();
            concurrent(rt, iters, move |task| {
                let topics = topics.clone();
                async move { spublish(&topics, task).await }
            })
        },
    )
    .bench(
        c,
        &rt,
        "cluster_spublish_throughput_64",
        ("baseline_spublish", "sharded_topic"),
        Some(CONCURRENCY),
    );
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = cluster_hit_latency, cluster_hit_throughput_64, cluster_rate_limit_latency,
        cluster_rate_limit_throughput_64, cluster_spublish_latency, cluster_spublish_throughput_64
}
criterion_main!(benches);
