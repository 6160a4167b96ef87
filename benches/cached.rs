//! `#[cached]` hits against the hand-written baseline, in one run against one server:
//! redis-rs `GET` + `serde_json::from_slice` on one multiplexed connection.
//!
//! ```text
//! cargo bench --bench cached        # or RUNS=3 scripts/bench-report cached
//! ```
//!
//! Groups: `hit_latency` (one caller), `hit_throughput_64` (64 concurrent callers on distinct
//! keys), `mem_hit` (the in-process backend).

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands;
use redis_patterns::{Client, Config, cached};
use support::{CONCURRENCY, Pair, Product, concurrent, runtime, sample, sequential, server};

#[cached(key = "product:<id>", ttl = "1h", client = client)]
async fn product(client: &Client, id: u64) -> Result<Product, String> {
    Ok(sample(id))
}

/// The baseline's keys hold the same JSON the cached function stores (without the envelope).
async fn baseline_setup(url: &str) -> redis::aio::MultiplexedConnection {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for id in 0..CONCURRENCY {
        let json = serde_json::to_vec(&sample(id)).unwrap();
        let _: () = conn.set(format!("baseline:{id}"), json).await.unwrap();
    }
    conn
}

async fn baseline_get(conn: &mut redis::aio::MultiplexedConnection, id: u64) -> Product {
    let bytes: Vec<u8> = conn.get(format!("baseline:{id}")).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn cached_client(url: &str) -> Client {
    let client = Client::new(Config::from_url(url).unwrap().namespace("bench")).unwrap();
    client.connect().await.unwrap();
    for id in 0..CONCURRENCY {
        product(&client, id).await.unwrap();
    }
    client
}

/// A runtime, the baseline's connection and a warmed-up client, both on the bench server.
fn setup() -> (
    tokio::runtime::Runtime,
    redis::aio::MultiplexedConnection,
    Client,
) {
    let rt = runtime();
    let url = server().url();
    let conn = rt.block_on(baseline_setup(&url));
    let client = rt.block_on(cached_client(&url));
    (rt, conn, client)
}

fn hit_latency(c: &mut Criterion) {
    let (rt, conn, client) = setup();
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
        "hit_latency",
        ("baseline_get_from_slice", "cached"),
        None,
    );
}

fn hit_throughput_64(c: &mut Criterion) {
    let (rt, conn, client) = setup();
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
        "hit_throughput_64",
        ("baseline_get_from_slice", "cached"),
        Some(CONCURRENCY),
    );
}

fn mem_hit(c: &mut Criterion) {
    let rt = runtime();
    let client = rt.block_on(cached_client("mem://"));
    let mut group = c.benchmark_group("mem_hit");
    group.bench_function("cached", |b| b.to_async(&rt).iter(|| product(&client, 1)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = hit_latency, hit_throughput_64, mem_hit
}
criterion_main!(benches);
