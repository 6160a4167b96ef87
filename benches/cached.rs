//! `#[cached]` hits against the hand-written baseline, in one run against one server:
//! redis-rs `GET` + `serde_json::from_slice` on one multiplexed connection.
//!
//! ```text
//! cargo bench --bench cached        # or RUNS=3 scripts/bench-report cached
//! ```
//!
//! Groups: `hit_latency` (one caller), `hit_throughput_64` (64 concurrent callers on distinct
//! keys), `mem_hit` (the in-process backend), `tagged_hit_latency` (a hit of a function with
//! two tags against the same function untagged: the cost of tags, interleaved).
//!
//! With `--features redis-patterns/metrics` (and no recorder installed) the same groups measure
//! what the feature costs when nothing records (`scripts/bench-report` with
//! `FEATURES=redis-patterns/metrics`).

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
#[cached(key = "tagged:<id>", ttl = "1h", tags = ["catalog", "brand:<brand>"], client = client)]
async fn tagged(client: &Client, id: u64, brand: &str) -> Result<Product, String> {
    let _ = brand;
    Ok(sample(id))
}

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

fn tagged_hit_latency(c: &mut Criterion) {
    let (rt, _, client) = setup();
    rt.block_on(tagged(&client, 1, "acme")).unwrap();
    Pair::new(
        |rt: &tokio::runtime::Runtime, iters| sequential(rt, iters, || product(&client, 1)),
        |rt: &tokio::runtime::Runtime, iters| sequential(rt, iters, || tagged(&client, 1, "acme")),
    )
    .bench(
        c,
        &rt,
        "tagged_hit_latency",
        ("baseline_untagged", "two_tags"),
        None,
    );
}

/// What a hit adds with feature `metrics` and no recorder installed, measured alone, as
/// `util/counters.rs` does it: the `cache_gets_total` counter and the duration histogram by
/// their keys (built once per attribute), and two clock reads; the facade's no-op recorder
/// answers both.
fn metrics_without_recorder(c: &mut Criterion) {
    static METADATA: metrics::Metadata<'static> =
        metrics::Metadata::new("bench", metrics::Level::INFO, None);
    let label = metrics::Label::from_static_parts;
    let gets = metrics::Key::from_parts(
        "cache_gets_total",
        vec![
            label("cache", "product:<id>"),
            label("result", "hit"),
            label("tier", "remote"),
        ],
    );
    let duration = metrics::Key::from_parts(
        "redis_patterns_operation_duration_seconds",
        vec![label("pattern", "cache"), label("name", "product:<id>")],
    );
    let mut group = c.benchmark_group("metrics_without_recorder");
    group.bench_function("per_hit", |b| {
        b.iter(|| {
            let started = std::time::Instant::now();
            let gets = std::hint::black_box(&gets);
            metrics::with_recorder(|r| r.register_counter(gets, &METADATA).increment(1));
            let duration = std::hint::black_box(&duration);
            metrics::with_recorder(|r| {
                r.register_histogram(duration, &METADATA)
                    .record(started.elapsed().as_secs_f64())
            });
        })
    });
    group.finish();
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
    targets = hit_latency, hit_throughput_64, mem_hit, tagged_hit_latency, metrics_without_recorder
}
criterion_main!(benches);
