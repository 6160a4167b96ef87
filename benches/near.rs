//! The near tier of `#[cached(near = "…")]` (issue 10): a hit answered from process memory,
//! against a Redis round trip, against the best client-side caching a user can get elsewhere,
//! and the cost the tier adds to a Redis hit when it misses.
//!
//! ```text
//! cargo bench --features near-bench --bench near              # or RUNS=3 scripts/bench-report near
//! cargo bench --features near-bench --bench near -- tasks_64  # 64 tasks, multi-thread runtime
//! ```
//!
//! Criterion groups, one caller on a current-thread runtime, each side interleaved with its
//! baseline in every sample:
//! - `near_hit_vs_redis`: a near hit against the baseline of `benches/cached.rs`, a redis-rs
//!   `GET` + `serde_json::from_slice` of the same product on one multiplexed connection;
//! - `near_hit_vs_cached_crate`: against the peer, the `cached` crate's `AsyncRedisCache` with
//!   `client_side_caching(true)`;
//! - `near_hit_vs_redis_rs_csc`: against redis-rs's own client-side caching written by hand (a
//!   RESP3 multiplexed connection with a `CacheConfig`, `GET` + `serde_json::from_slice`);
//! - `near_miss_redis_hit`: `#[cached]` without `near` (a Redis hit) against the same function
//!   with `near = "30s"` on a client whose tier holds one entry while the calls cycle over
//!   1,024 keys, so every call misses the tier, reads Redis and inserts what it read;
//! - `near_miss_mem_hit`: the same on `mem://`, where no round trip hides what the tier adds.
//!
//! `tasks_64` (not criterion, since it reports per-call percentiles): 64 tasks on the default
//! multi-threaded runtime, on one hot key and on 64 distinct keys, per side: calls/s over an
//! untimed pass, then p50/p99 of each call from `Instant` timings over a second pass (each
//! task yields every 32 calls so that all 64 make progress; the yield is not timed), and
//! server commands per call. `RUNS` (default 3) in-process runs, interleaved; medians.
//!
//! **The peer.** The `cached` crate (4.1) supports RESP3 client-side caching on redis 1.x: its
//! `redis_async_cache` feature builds `AsyncRedisCache` on a redis-rs `MultiplexedConnection`
//! with `cache-aio`'s `CacheConfig`, so a hit is answered from redis-rs's cache of the `GET`
//! reply without a round trip, and then decoded (MessagePack, per hit). That is what a user
//! of "the `cached` crate with client-side caching" gets, so it is the peer. redis-rs's
//! `cache-aio` written by hand is measured too: it is the same mechanism without the
//! `cached` crate's pipeline and envelope. The feature `near-bench` brings both in, so default
//! builds compile neither `cached` nor `cache-aio`.
//!
//! The peer's keys are written by a second `AsyncRedisCache` without client-side caching.
//! Written through the caching one, they are never read back (redis-server 7.0.15, `cached`
//! 4.1.0, redis 1.8.1): `async_cache_get` still answered `None` 4 s after the set, while the
//! key held the value, and still 2 s after another connection rewrote it. Most likely its
//! `async_cache_set`, which pipelines `GET` + `PSETEX`, leaves the `GET`'s nil in redis-rs's
//! cache after the server has sent (and stopped tracking the key with) the invalidation, the
//! race that the near tier's tickets (`cache/near`) rule out.
//!
//! The near tier's tracking heartbeat runs on the caller's runtime: on a current-thread
//! runtime whose caller never yields (a loop of near hits) the 1 s serving lease can lapse,
//! and calls go to Redis until a heartbeat is answered. The near side's hit rate during the
//! measurement is therefore printed with each group.
//!
//! 2026-11-23, 2-core VM. Criterion, `RUNS=3 scripts/bench-report near` (medians of per-run
//! medians; per-run range in brackets):
//!
//! | group | baseline | near | baseline ÷ near |
//! |---|---|---|---|
//! | `near_hit_vs_redis` | 33.0 µs | 234 ns | 141× [119–142] |
//! | `near_hit_vs_cached_crate` | 1.08 µs | 231 ns | 4.7× [4.7–4.7] |
//! | `near_hit_vs_redis_rs_csc` | 945 ns | 231 ns | 4.0× [4.0–4.1] |
//! | `near_miss_redis_hit` | 35.0 µs | 38.6 µs | near ÷ baseline 1.11× [1.02–1.14] |
//! | `near_miss_mem_hit` | 0.83 µs | 1.30 µs | near ÷ baseline 1.57×: +0.47 µs |
//!
//! `near_miss_redis_hit` is within the round trip's noise here: 5 more runs gave 0.86–1.35×
//! (median 1.07×), and an A/A run of the same harness (both sides without `near`) 0.85–1.01×.
//! `near_miss_mem_hit` (`cargo bench --features near-bench --bench near -- near_miss_mem_hit`,
//! pinned to one CPU, 3 runs) isolates what the tier adds to a hit it cannot answer: 0.47 µs
//! (a lookup, a ticket, a clone and an insert that evicts), 1.4 % of the 33 µs Redis hit.
//!
//! `tasks_64`, 2 workers, 3 runs: near hits 4.65 M calls/s on one hot key (p50 401 ns, p99
//! 721 ns) and 5.29 M on 64 keys (p50 330 ns, p99 651 ns); the `cached` crate 1.07 M / 0.98 M
//! (p99 3.85 / 3.91 µs): 4.7× / 5.4× the calls/s; Redis `GET` 0.30 M / 0.29 M (p99 475 /
//! 583 µs).

mod support;

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cached::{AsyncRedisCache, ConcurrentCachedAsync};
use criterion::{BenchmarkId, Criterion};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis_patterns::cache::NearCache;
use redis_patterns::{Client, Config, cached};
use support::{
    CONCURRENCY, Product, commands_processed, join_calls, median, percentile, runtime, sample,
    sequential, server,
};
use tokio::runtime::Runtime;

/// Keys the always-missing near side cycles over (the Redis-hit side too, to match).
const KEYS: u64 = 1024;

#[cached(key = "product:<id>", ttl = "1h", client = client)]
async fn product(client: &Client, id: u64) -> Result<Product, String> {
    Ok(sample(id))
}

#[cached(key = "near_product:<id>", ttl = "1h", near = "30s", client = client)]
async fn near_product(client: &Client, id: u64) -> Result<Product, String> {
    Ok(sample(id))
}

/// Everything measured, on one server.
struct Sides {
    /// The baseline: RESP2, no client-side caching.
    conn: MultiplexedConnection,
    /// redis-rs `cache-aio` by hand: RESP3 with a `CacheConfig`.
    csc: MultiplexedConnection,
    /// The peer: the `cached` crate with client-side caching.
    peer: Arc<AsyncRedisCache<u64, Product>>,
    /// A client whose near tier holds every key read.
    near: Client,
    /// A client whose near tier holds one entry.
    tiny: Client,
}

async fn setup(url: &str) -> Sides {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for id in 0..KEYS {
        let json = serde_json::to_vec(&sample(id)).unwrap();
        let _: () = conn.set(format!("baseline:{id}"), json).await.unwrap();
    }
    let csc = redis::Client::open(format!("{url}?protocol=resp3"))
        .unwrap()
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new()
                .set_cache_config(redis::caching::CacheConfig::new()),
        )
        .await
        .unwrap();
    // Written through a second cache: a value set through the client-side caching one is not
    // read back (see the peer in the module comment).
    let writer = AsyncRedisCache::builder("peer")
        .ttl(Duration::from_secs(3600))
        .connection_string(url)
        .build()
        .await
        .unwrap();
    for id in 0..CONCURRENCY {
        let _ = writer.async_cache_set(id, sample(id)).await.unwrap();
    }
    let peer = AsyncRedisCache::builder("peer")
        .ttl(Duration::from_secs(3600))
        .connection_string(url)
        .client_side_caching(true)
        .build()
        .await
        .unwrap();
    let near = Client::new(Config::from_url(url).unwrap().namespace("near-bench")).unwrap();
    near.connect().await.unwrap();
    for id in 0..CONCURRENCY {
        warm_near(&near, id).await;
    }
    let tiny = Client::new(
        Config::from_url(url)
            .unwrap()
            .namespace("near-bench-tiny")
            .near_cache(NearCache::max_entries(1)),
    )
    .unwrap();
    tiny.connect().await.unwrap();
    for id in 0..KEYS {
        product(&tiny, id).await.unwrap();
        near_product(&tiny, id).await.unwrap();
    }
    // Armed, so that the misses measured take a ticket and insert what they read.
    warm_near(&tiny, 0).await;
    let mut sides = Sides {
        conn,
        csc,
        peer: Arc::new(peer),
        near,
        tiny,
    };
    // Each client-side cache has read every key once, so what is measured is its hit.
    for id in 0..CONCURRENCY {
        csc_get(&mut sides.csc, id).await;
        peer_get(&sides.peer, id).await;
    }
    sides
}

/// Calls `near_product(id)` until the near tier answers it (tracking armed, the value read
/// from the server once); panics after 5 s.
async fn warm_near(client: &Client, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = client.cache_stats().near_hits;
        near_product(client, id).await.unwrap();
        if client.cache_stats().near_hits > before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the near tier never answered: {:?}",
            client.cache_stats()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn baseline_get(conn: &mut MultiplexedConnection, id: u64) -> Product {
    let bytes: Vec<u8> = conn.get(format!("baseline:{id}")).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn csc_get(conn: &mut MultiplexedConnection, id: u64) -> Product {
    baseline_get(conn, id).await
}

async fn peer_get(peer: &AsyncRedisCache<u64, Product>, id: u64) -> Product {
    peer.async_cache_get(&id).await.unwrap().unwrap()
}

/// Server commands per call of `op` over 1,000 sequential calls (the `INFO` that reads the
/// counter is not counted).
async fn commands_per_call<Fut: Future>(
    conn: &mut MultiplexedConnection,
    mut op: impl FnMut(u64) -> Fut,
) -> f64 {
    let before = commands_processed(conn).await;
    for i in 0..1000 {
        black_box(op(i).await);
    }
    (commands_processed(conn).await - before - 1) as f64 / 1000.0
}

/// Like `support::Pair` (both sides in every sample, alternating which goes first), for sides
/// whose costs differ by up to three orders of magnitude: the other side runs for about the
/// same time rather than the same number of calls, which keeps a 100× slower baseline from
/// multiplying the benchmark's running time by 100.
struct Interleaved<A, B> {
    baseline: A,
    ours: B,
    /// Latest nanoseconds per call of each side, as `f64` bits.
    per_call: [AtomicU64; 2],
    baseline_first: AtomicBool,
}

impl<A, B> Interleaved<A, B>
where
    A: Fn(&Runtime, u64) -> Duration,
    B: Fn(&Runtime, u64) -> Duration,
{
    fn new(baseline: A, ours: B) -> Self {
        Interleaved {
            baseline,
            ours,
            per_call: [
                AtomicU64::new(1f64.to_bits()),
                AtomicU64::new(1f64.to_bits()),
            ],
            baseline_first: AtomicBool::new(true),
        }
    }

    fn side(&self, side: usize, rt: &Runtime, iters: u64) -> Duration {
        let took = if side == 0 {
            (self.baseline)(rt, iters)
        } else {
            (self.ours)(rt, iters)
        };
        let per_call = took.as_nanos() as f64 / iters as f64;
        self.per_call[side].store(per_call.max(0.1).to_bits(), Ordering::Relaxed);
        took
    }

    /// `iters` calls of `side`, and as long of the other one; returns `side`'s time.
    fn run(&self, side: usize, rt: &Runtime, iters: u64) -> Duration {
        let per_call = |s: usize| f64::from_bits(self.per_call[s].load(Ordering::Relaxed));
        let other = 1 - side;
        let other_iters = ((iters as f64 * per_call(side) / per_call(other)).round() as u64).max(1);
        if self.baseline_first.fetch_xor(true, Ordering::Relaxed) == (side == 0) {
            let took = self.side(side, rt, iters);
            self.side(other, rt, other_iters);
            took
        } else {
            self.side(other, rt, other_iters);
            self.side(side, rt, iters)
        }
    }

    fn bench(&self, c: &mut Criterion, rt: &Runtime, group: &str, names: (&str, &str)) {
        let mut group = c.benchmark_group(group);
        group.bench_function(BenchmarkId::from_parameter(names.0), |b| {
            b.iter_custom(|iters| self.run(0, rt, iters))
        });
        group.bench_function(BenchmarkId::from_parameter(names.1), |b| {
            b.iter_custom(|iters| self.run(1, rt, iters))
        });
        group.finish();
    }
}

/// A current-thread runtime and everything measured, set up on it.
fn criterion_setup() -> (Runtime, Sides) {
    let rt = runtime();
    let sides = rt.block_on(setup(&server().url()));
    (rt, sides)
}

/// Prints the near side's hit rate over what `measure` ran.
fn with_near_hit_rate(group: &str, client: &Client, measure: impl FnOnce()) {
    let before = client.cache_stats();
    measure();
    let after = client.cache_stats();
    let hits = after.near_hits - before.near_hits;
    let misses = after.near_misses - before.near_misses;
    eprintln!(
        "{group}: near hits {hits}, near misses {misses} ({:.4} % hits)",
        100.0 * hits as f64 / (hits + misses).max(1) as f64
    );
}

/// A near hit against the side that `baseline` measures.
fn near_hit_against(
    c: &mut Criterion,
    group: &str,
    baseline_name: &str,
    baseline: impl Fn(&Sides, &Runtime, u64) -> Duration,
) {
    let (rt, sides) = criterion_setup();
    let mut conn = sides.conn.clone();
    let near = &sides.near;
    let cmds = rt.block_on(async {
        [
            commands_per_call(&mut conn, |_| {
                let mut conn = sides.conn.clone();
                async move { baseline_get(&mut conn, 1).await }
            })
            .await,
            commands_per_call(&mut conn, |_| peer_get(&sides.peer, 1)).await,
            commands_per_call(&mut conn, |_| {
                let mut csc = sides.csc.clone();
                async move { csc_get(&mut csc, 1).await }
            })
            .await,
            commands_per_call(&mut conn, |_| near_product(near, 1)).await,
        ]
    });
    eprintln!(
        "{group}: server commands per call: redis GET {:.3}, cached crate {:.3}, \
         redis-rs csc {:.3}, near {:.3}",
        cmds[0], cmds[1], cmds[2], cmds[3]
    );
    with_near_hit_rate(group, near, || {
        Interleaved::new(
            |rt: &Runtime, iters| baseline(&sides, rt, iters),
            |rt: &Runtime, iters| sequential(rt, iters, || near_product(near, 1)),
        )
        .bench(c, &rt, group, (baseline_name, "cached_near"))
    });
}

fn near_hit_vs_redis(c: &mut Criterion) {
    near_hit_against(
        c,
        "near_hit_vs_redis",
        "baseline_get_from_slice",
        |sides, rt, iters| {
            sequential(rt, iters, || {
                let mut conn = sides.conn.clone();
                async move { baseline_get(&mut conn, 1).await }
            })
        },
    );
}

fn near_hit_vs_cached_crate(c: &mut Criterion) {
    near_hit_against(
        c,
        "near_hit_vs_cached_crate",
        "baseline_cached_crate_csc",
        |sides, rt, iters| sequential(rt, iters, || peer_get(&sides.peer, 1)),
    );
}

fn near_hit_vs_redis_rs_csc(c: &mut Criterion) {
    near_hit_against(
        c,
        "near_hit_vs_redis_rs_csc",
        "baseline_redis_rs_csc_from_slice",
        |sides, rt, iters| {
            sequential(rt, iters, || {
                let mut csc = sides.csc.clone();
                async move { csc_get(&mut csc, 1).await }
            })
        },
    );
}

fn near_miss_redis_hit(c: &mut Criterion) {
    let (rt, sides) = criterion_setup();
    let tiny = &sides.tiny;
    // Both sides cycle over the same number of keys, each from where it left off.
    let next = [AtomicU64::new(0), AtomicU64::new(0)];
    let id = |side: usize| next[side].fetch_add(1, Ordering::Relaxed) % KEYS;
    let mut conn = sides.conn.clone();
    let cmds = rt.block_on(async {
        [
            commands_per_call(&mut conn, |i| product(tiny, i % KEYS)).await,
            commands_per_call(&mut conn, |i| near_product(tiny, i % KEYS)).await,
        ]
    });
    eprintln!(
        "near_miss_redis_hit: server commands per call: without near {:.3}, near missing {:.3}",
        cmds[0], cmds[1]
    );
    with_near_hit_rate("near_miss_redis_hit", tiny, || {
        Interleaved::new(
            |rt: &Runtime, iters| sequential(rt, iters, || product(tiny, id(0))),
            |rt: &Runtime, iters| sequential(rt, iters, || near_product(tiny, id(1))),
        )
        .bench(
            c,
            &rt,
            "near_miss_redis_hit",
            ("baseline_cached_without_near", "cached_near_missing"),
        )
    });
}

/// `near_miss_redis_hit` on `mem://`, where a hit costs no round trip: what the near tier adds
/// to a hit it cannot answer (a lookup, a ticket, and inserting what was read), in nanoseconds
/// rather than within a loopback round trip's noise.
fn near_miss_mem_hit(c: &mut Criterion) {
    let rt = runtime();
    let tiny = Client::new(
        Config::from_url("mem://near-miss-bench")
            .unwrap()
            .namespace("near-bench-mem")
            .near_cache(NearCache::max_entries(1)),
    )
    .unwrap();
    rt.block_on(async {
        for id in 0..KEYS {
            product(&tiny, id).await.unwrap();
            near_product(&tiny, id).await.unwrap();
        }
        warm_near(&tiny, 0).await;
    });
    let tiny = &tiny;
    let next = [AtomicU64::new(0), AtomicU64::new(0)];
    let id = |side: usize| next[side].fetch_add(1, Ordering::Relaxed) % KEYS;
    with_near_hit_rate("near_miss_mem_hit", tiny, || {
        Interleaved::new(
            |rt: &Runtime, iters| sequential(rt, iters, || product(tiny, id(0))),
            |rt: &Runtime, iters| sequential(rt, iters, || near_product(tiny, id(1))),
        )
        .bench(
            c,
            &rt,
            "near_miss_mem_hit",
            ("baseline_cached_without_near", "cached_near_missing"),
        )
    });
}

/// 64 tasks on the default multi-threaded runtime: calls/s and per-call p50/p99.
mod tasks_64 {
    use super::*;

    /// How long each pass runs.
    const PASS: Duration = Duration::from_millis(500);
    /// Calls between two yields of a task.
    const BATCH: u64 = 32;

    const SIDES: [&str; 4] = [
        "redis GET + from_slice",
        "cached crate, client-side caching",
        "redis-rs cache-aio + from_slice",
        "#[cached(near)]",
    ];
    const NEAR: usize = 3;

    /// What one task calls through, taken once per task so that a call clones nothing.
    enum Handle {
        Redis(MultiplexedConnection),
        Peer(Arc<AsyncRedisCache<u64, Product>>),
        Csc(MultiplexedConnection),
        Near(Client),
    }

    impl Handle {
        fn new(sides: &Sides, side: usize) -> Self {
            match side {
                0 => Handle::Redis(sides.conn.clone()),
                1 => Handle::Peer(sides.peer.clone()),
                2 => Handle::Csc(sides.csc.clone()),
                _ => Handle::Near(sides.near.clone()),
            }
        }

        async fn call(&mut self, id: u64) {
            match self {
                Handle::Redis(conn) => {
                    black_box(baseline_get(conn, id).await);
                }
                Handle::Peer(peer) => {
                    black_box(peer_get(peer, id).await);
                }
                Handle::Csc(csc) => {
                    black_box(csc_get(csc, id).await);
                }
                Handle::Near(client) => {
                    black_box(near_product(client, id).await.unwrap());
                }
            }
        }
    }

    /// One pass of 64 tasks until [`PASS`] has elapsed: calls, wall time and, when `timed`,
    /// every call's nanoseconds.
    async fn pass(sides: &Sides, side: usize, hot: bool, timed: bool) -> (u64, Duration, Vec<u32>) {
        let start = Instant::now();
        let deadline = start + PASS;
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|task| {
                let mut handle = Handle::new(sides, side);
                let id = if hot { 1 } else { task };
                tokio::spawn(async move {
                    let mut calls = 0;
                    let mut nanos = Vec::new();
                    while Instant::now() < deadline {
                        for _ in 0..BATCH {
                            let op = handle.call(id);
                            if timed {
                                let started = Instant::now();
                                op.await;
                                nanos
                                        .push(started.elapsed().as_nanos().min(u32::MAX as u128)
                                            as u32);
                            } else {
                                op.await;
                            }
                        }
                        calls += BATCH;
                        tokio::task::yield_now().await;
                    }
                    (calls, nanos)
                })
            })
            .collect();
        let (calls, nanos) = join_calls(tasks).await;
        (calls, start.elapsed(), nanos)
    }

    /// One run's numbers for one side.
    #[derive(Clone, Copy)]
    struct Run {
        calls_per_s: f64,
        p50: f64,
        p99: f64,
        commands_per_call: f64,
        near_hit_rate: f64,
    }

    async fn measure(sides: &Sides, side: usize, hot: bool) -> Run {
        let mut conn = sides.conn.clone();
        let stats = sides.near.cache_stats();
        let before = commands_processed(&mut conn).await;
        let (calls, wall, _) = pass(sides, side, hot, false).await;
        let commands = commands_processed(&mut conn).await - before - 1;
        let (_, _, mut nanos) = pass(sides, side, hot, true).await;
        let after = sides.near.cache_stats();
        let near_hits = (after.near_hits - stats.near_hits) as f64;
        let near_reads = near_hits + (after.near_misses - stats.near_misses) as f64;
        Run {
            calls_per_s: calls as f64 / wall.as_secs_f64(),
            p50: percentile(&mut nanos, 0.50),
            p99: percentile(&mut nanos, 0.99),
            commands_per_call: commands as f64 / calls as f64,
            near_hit_rate: near_hits / near_reads.max(1.0),
        }
    }

    fn fmt_ns(ns: f64) -> String {
        if ns >= 1000.0 {
            format!("{:.2} µs", ns / 1000.0)
        } else {
            format!("{ns:.0} ns")
        }
    }

    pub fn run() {
        let runs: usize = std::env::var("RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(3);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("build a tokio runtime");
        let sides = rt.block_on(setup(&server().url()));
        let timer = {
            let mut nanos: Vec<u32> = (0..1_000_000)
                .map(|_| Instant::now().elapsed().as_nanos() as u32)
                .collect();
            percentile(&mut nanos, 0.5)
        };
        eprintln!(
            "tasks_64: {} worker threads, {runs} runs, {} ms per pass; an empty timed call \
             measures {timer:.0} ns (p50)",
            rt.metrics().num_workers(),
            PASS.as_millis()
        );
        // [hot, distinct][side][run]
        let mut results = vec![vec![Vec::<Run>::new(); SIDES.len()]; 2];
        for run in 0..runs {
            for (k, hot) in [true, false].into_iter().enumerate() {
                for i in 0..SIDES.len() {
                    // Rotated, so that no side always follows the same one.
                    let side = (i + run) % SIDES.len();
                    let r = rt.block_on(measure(&sides, side, hot));
                    results[k][side].push(r);
                }
            }
        }
        println!(
            "| keys | side | calls/s | p50 per call | p99 per call | server cmds/call | near: calls/s ×, p99 ÷ (median of per-run ratios) |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (k, keys) in ["1 hot key", "64 keys"].into_iter().enumerate() {
            for (side, name) in SIDES.iter().enumerate() {
                let runs = &results[k][side];
                let med = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
                let near = &results[k][NEAR];
                let ratio = if side == NEAR {
                    format!("near hit rate {:.4} %", 100.0 * med(|r| r.near_hit_rate))
                } else {
                    let speed = median(
                        near.iter()
                            .zip(runs)
                            .map(|(n, b)| n.calls_per_s / b.calls_per_s)
                            .collect(),
                    );
                    let p99 = median(near.iter().zip(runs).map(|(n, b)| b.p99 / n.p99).collect());
                    format!("{speed:.1}× calls/s, {p99:.1}× lower p99")
                };
                println!(
                    "| {keys} | {name} | {:.0} | {} | {} | {:.3} | {ratio} |",
                    med(|r| r.calls_per_s),
                    fmt_ns(med(|r| r.p50)),
                    fmt_ns(med(|r| r.p99)),
                    med(|r| r.commands_per_call),
                );
            }
        }
        for (k, keys) in ["1 hot key", "64 keys"].into_iter().enumerate() {
            let near = &results[k][NEAR];
            let per_run: Vec<String> = near
                .iter()
                .map(|r| {
                    format!(
                        "{:.0}/s p50 {} p99 {}",
                        r.calls_per_s,
                        fmt_ns(r.p50),
                        fmt_ns(r.p99)
                    )
                })
                .collect();
            println!("near, {keys}, per run: {}", per_run.join("; "));
        }
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "tasks_64") {
        tasks_64::run();
        return;
    }
    let mut c = support::criterion().configure_from_args();
    near_hit_vs_redis(&mut c);
    near_hit_vs_cached_crate(&mut c);
    near_hit_vs_redis_rs_csc(&mut c);
    near_miss_redis_hit(&mut c);
    near_miss_mem_hit(&mut c);
    c.final_summary();
}
