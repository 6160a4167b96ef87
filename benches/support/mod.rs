//! What the benchmarks share: the server they measure against, the runtime, and [`Pair`],
//! which measures a baseline and its `redis-patterns` counterpart under the same conditions.

#![allow(dead_code)] // each benchmark uses a subset

#[path = "../../tests/common/mod.rs"]
pub mod common;

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;

/// The criterion settings every benchmark uses: short warm-up, 4 s of samples.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50)
}

/// What the cache benchmarks store: a product of about 190 bytes as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Product {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub price_cents: u64,
    pub tags: Vec<String>,
    pub in_stock: bool,
}

/// The product with id `id`.
pub fn sample(id: u64) -> Product {
    Product {
        id,
        name: format!("Product #{id}"),
        description: "A sturdy desk lamp with a weighted base and a warm-white LED.".into(),
        price_cents: 4_999,
        tags: vec!["lighting".into(), "desk".into(), "led".into()],
        in_stock: true,
    }
}

/// Concurrent callers in the throughput benchmarks.
pub const CONCURRENCY: u64 = 64;

/// A redis-server started by the test harness (free loopback port, killed with the process).
pub fn server() -> &'static common::RedisServer {
    static SERVER: OnceLock<common::RedisServer> = OnceLock::new();
    SERVER.get_or_init(common::RedisServer::start)
}

/// One client thread: on a 2-core machine the other core belongs to redis-server, so both
/// sides run without being descheduled and run-to-run noise stays low. Baseline and
/// redis-patterns run on identical runtimes.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
}

/// Both sides of a comparison, measured under the same conditions: every sample of either
/// benchmark runs the baseline and redis-patterns back to back for the same number of
/// operations, alternating which goes first, and reports its own side's time. (Run one after
/// the other, whichever ran second was measurably penalised on the 2-core VMs this was
/// developed on.)
pub struct Pair<A, B> {
    pub baseline: A,
    pub ours: B,
    baseline_first: AtomicBool,
}

impl<A, B> Pair<A, B>
where
    A: Fn(&Runtime, u64) -> Duration,
    B: Fn(&Runtime, u64) -> Duration,
{
    pub fn new(baseline: A, ours: B) -> Self {
        Pair {
            baseline,
            ours,
            baseline_first: AtomicBool::new(true),
        }
    }

    fn run(&self, rt: &Runtime, iters: u64) -> (Duration, Duration) {
        if self.baseline_first.fetch_xor(true, Ordering::Relaxed) {
            let a = (self.baseline)(rt, iters);
            (a, (self.ours)(rt, iters))
        } else {
            let b = (self.ours)(rt, iters);
            ((self.baseline)(rt, iters), b)
        }
    }

    /// Benchmarks `baseline_name` and `ours_name` in `group`; with `parameter`, as
    /// throughput per element.
    pub fn bench(
        &self,
        c: &mut Criterion,
        rt: &Runtime,
        group: &str,
        (baseline_name, ours_name): (&str, &str),
        parameter: Option<u64>,
    ) {
        let mut group = c.benchmark_group(group);
        if parameter.is_some() {
            group.throughput(Throughput::Elements(1));
        }
        let id = |name: &str| match parameter {
            Some(p) => BenchmarkId::new(name, p),
            None => BenchmarkId::from_parameter(name),
        };
        group.bench_function(id(baseline_name), |b| {
            b.iter_custom(|iters| self.run(rt, iters).0)
        });
        group.bench_function(id(ours_name), |b| {
            b.iter_custom(|iters| self.run(rt, iters).1)
        });
        group.finish();
    }
}

/// Times `iters` sequential calls of `op`.
pub fn sequential<Fut: Future>(rt: &Runtime, iters: u64, mut op: impl FnMut() -> Fut) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(op().await);
        }
        start.elapsed()
    })
}

/// Runs `iters` operations spread over [`CONCURRENCY`] tasks (task `i` calls `op(i)`) and
/// returns the wall time.
pub fn concurrent<F, Fut>(rt: &Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    rt.block_on(async {
        let per_task = iters.div_ceil(CONCURRENCY);
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|task| {
                let op = op.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        op(task).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("benchmark task");
        }
        start.elapsed()
    })
}

/// Times `iters` round trips on `rt`: `send(i)`, then the handler's signal on `signals`.
pub fn round_trips<Fut: Future<Output = ()>>(
    rt: &Runtime,
    iters: u64,
    signals: &tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<()>>,
    mut send: impl FnMut(u64) -> Fut,
) -> Duration {
    rt.block_on(async {
        let mut signals = signals.lock().await;
        let start = Instant::now();
        for i in 0..iters {
            send(i).await;
            signals.recv().await.unwrap();
        }
        start.elapsed()
    })
}

/// The `p` quantile (0 to 1) of per-call times in nanoseconds (reorders `nanos`).
pub fn percentile(nanos: &mut [u32], p: f64) -> f64 {
    let i = ((nanos.len() as f64 * p) as usize).min(nanos.len() - 1);
    *nanos.select_nth_unstable(i).1 as f64
}

/// Run as a test (`cargo test --all-targets` runs every bench once, without `--bench`): a
/// benchmark then makes one short run, to check that every side works, not to measure.
pub fn smoke() -> bool {
    !std::env::args().any(|arg| arg == "--bench")
}

/// How many runs a run-based benchmark makes: `RUNS`, else 3 (1 in a smoke run).
pub fn runs() -> usize {
    std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if smoke() { 1 } else { 3 })
}

/// A multi-threaded tokio runtime with the default worker count, as applications run.
pub fn multi_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
}

/// Commands the server has processed so far (`total_commands_processed`; scripts' own
/// commands included on redis-server 7).
pub async fn commands_processed(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_commands_processed")
}

/// The hand-written lock's attempt: `SET key token NX PX ttl`; whether it was granted.
pub async fn set_nx_px(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    token: &str,
    ttl: Duration,
) -> bool {
    let granted: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .query_async(conn)
        .await
        .unwrap();
    granted.is_some()
}

/// The median of per-run figures.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Awaits tasks that each return their calls and per-call nanoseconds: the total calls and
/// all the times.
pub async fn join_calls(tasks: Vec<tokio::task::JoinHandle<(u64, Vec<u32>)>>) -> (u64, Vec<u32>) {
    let mut calls = 0;
    let mut nanos = Vec::new();
    for task in tasks {
        let (c, n) = task.await.expect("benchmark task");
        calls += c;
        nanos.extend(n);
    }
    (calls, nanos)
}

/// The hand-written release every lock baseline uses: compare-and-delete, releasing the lock
/// only if it still holds the caller's token. Commands: `GET`, `DEL`.
pub const RELEASE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Benchmarks one operation both ways, `baseline(state, key index)` and `ours(…)`: one caller
/// on a current-thread runtime (`<name>_latency`), and 64 tasks on the default multi-threaded
/// runtime, each on a key index of its own (`<name>_throughput_64`). `setup` makes the state
/// (connections, clients) on the runtime that uses it.
pub fn compare<S, B, BF, O, OF>(
    c: &mut Criterion,
    setup: impl Fn(&Runtime) -> S,
    name: &str,
    baseline: B,
    ours: O,
) where
    S: Clone + Send + Sync + 'static,
    B: Fn(S, u64) -> BF + Clone + Send + Sync + 'static,
    BF: Future<Output = ()> + Send,
    O: Fn(S, u64) -> OF + Clone + Send + Sync + 'static,
    OF: Future<Output = ()> + Send,
{
    let rt = runtime();
    let one = setup(&rt);
    Pair::new(
        |rt: &Runtime, iters| sequential(rt, iters, || baseline(one.clone(), 0)),
        |rt: &Runtime, iters| sequential(rt, iters, || ours(one.clone(), 0)),
    )
    .bench(
        c,
        &rt,
        &format!("{name}_latency"),
        ("baseline_hand_written", "redis_patterns"),
        None,
    );
    let mt = multi_thread_runtime();
    let many = setup(&mt);
    Pair::new(
        |rt: &Runtime, iters| {
            let (baseline, many) = (baseline.clone(), many.clone());
            concurrent(rt, iters, move |task| baseline(many.clone(), task))
        },
        |rt: &Runtime, iters| {
            let (ours, many) = (ours.clone(), many.clone());
            concurrent(rt, iters, move |task| ours(many.clone(), task))
        },
    )
    .bench(
        c,
        &mt,
        &format!("{name}_throughput_64"),
        ("baseline_hand_written", "redis_patterns"),
        Some(CONCURRENCY),
    );
}
