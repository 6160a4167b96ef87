//! Candidate stores for the near cache tier (issue 10), measured before choosing one: the cost
//! of a hit (a `get` that clones an `Arc` of a decoded value) on one thread and with 64
//! threads' worth of concurrent readers on the 2 cores, for `quick_cache::sync::Cache`,
//! `moka::sync::Cache` and a plain sharded `RwLock<HashMap>` as the floor.
//!
//! ```text
//! cargo bench --features near-store-bench --bench near_store   # unpinned: 64 threads, 2 cores
//! ```
//!
//! 2026-11-23, 3 runs on the 2-core VM (per get; with 64 threads, wall time per get):
//!
//! | store | 1 thread | 64 threads |
//! |---|---|---|
//! | `quick_cache::sync::Cache` | 53–63 ns | 50–79 ns |
//! | sharded `RwLock<HashMap>` (no eviction) | 122–137 ns | 63–68 ns |
//! | `moka::sync::Cache` | 440–586 ns | 165–255 ns |
//!
//! The near tier uses `quick_cache`: about a tenth of moka's cost per hit, bounded, and
//! cheaper than the unbounded floor on one thread.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

const KEYS: u64 = 10_000;

fn key(i: u64) -> String {
    format!("shop:{{product:#{i}}}")
}

/// A decoded value as the near tier would hold it.
type Value = Arc<(u64, String)>;

fn value(i: u64) -> Value {
    Arc::new((i, format!("Product #{i}")))
}

/// The floor: 64 shards of `RwLock<HashMap>`, no eviction.
struct Sharded {
    shards: Vec<RwLock<HashMap<String, Value>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Sharded {
    fn new() -> Self {
        Sharded {
            shards: (0..64).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }
    fn shard(&self, key: &str) -> &RwLock<HashMap<String, Value>> {
        &self.shards[(self.hasher.hash_one(key) % 64) as usize]
    }
    fn insert(&self, key: String, value: Value) {
        self.shard(&key).write().unwrap().insert(key, value);
    }
    fn get(&self, key: &str) -> Option<Value> {
        self.shard(key).read().unwrap().get(key).cloned()
    }
}

/// `iters` gets spread over `threads` OS threads, each cycling through the keys.
fn threaded(iters: u64, threads: u64, get: impl Fn(&str) -> Option<Value> + Sync) -> Duration {
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let per_thread = iters.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (keys, get) = (&keys, &get);
            scope.spawn(move || {
                for i in 0..per_thread {
                    let k = &keys[((t * 7919 + i) % KEYS) as usize];
                    std::hint::black_box(get(k));
                }
            });
        }
    });
    start.elapsed()
}

fn stores(c: &mut Criterion) {
    let quick: quick_cache::sync::Cache<String, Value> = quick_cache::sync::Cache::new(100_000);
    let moka: moka::sync::Cache<String, Value> = moka::sync::Cache::new(100_000);
    let sharded = Sharded::new();
    for i in 0..KEYS {
        quick.insert(key(i), value(i));
        moka.insert(key(i), value(i));
        sharded.insert(key(i), value(i));
    }
    for (group, threads) in [("near_get_1_thread", 1), ("near_get_64_threads", 64)] {
        let mut g = c.benchmark_group(group);
        g.bench_function("quick_cache", |b| {
            b.iter_custom(|iters| threaded(iters, threads, |k| quick.get(k)))
        });
        g.bench_function("moka", |b| {
            b.iter_custom(|iters| threaded(iters, threads, |k| moka.get(k)))
        });
        g.bench_function("sharded_rwlock_hashmap", |b| {
            b.iter_custom(|iters| threaded(iters, threads, |k| sharded.get(k)))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = stores
}
criterion_main!(benches);
