//! Contended hand-offs (issue 11): guarded read-modify-writes of one counter (body: `GET`,
//! 1 ms of work, `SET`) by several clients' tasks, against one `redis-server`. Two scenarios:
//! the issue's 4 clients × 25 tasks × 10 bodies (100 waiters, so even slow polling finds the
//! lock free soon after a release), and 2 clients × 1 task × 100 bodies with 2 ms of other work
//! between bodies (one waiter at a time: a poller sleeps through the release, and the releaser
//! comes back first). Every side must count every body exactly once;
//! the report is the wall time and the hand-off latency (a body's end to the next body's start:
//! the release, and the next holder hearing of it and taking the lock).
//!
//! ```text
//! cargo bench --bench handoff                     # RUNS=5 for more runs (default 3)
//! ```
//!
//! Sides, interleaved in every run (the order alternates between runs):
//! - `naive polling`: the recipe of the guides, `SET key token NX PX` retried every 50 ms,
//!   released by a compare-and-delete script;
//! - `tight polling`: the same, retried every 1 ms (±50 %): what a careful hand-written lock
//!   does to hand over fast, at the price of the probes it sends;
//! - `redis-patterns`: `Lock::acquire` (defaults: `retry` 50 ms, used only where releases cannot
//!   be heard) + `LockGuard::release`, each client's waiters woken by the release.
//!
//! The floor set by the work alone is the bodies back to back: 1,000 × (two round trips + a
//! 1 ms tokio sleep, which lasts 1 to 2 ms); it is reported too, from the bodies' own times.
//! Server commands per side are `total_commands_processed` deltas (probes included).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis_patterns::lock::Lock;
use redis_patterns::{Client, Config};
use support::{commands_processed, median, multi_thread_runtime, runs, server, set_nx_px, smoke};

/// (clients, tasks per client, bodies per task, work outside the lock between bodies in ms).
type Scenario = (usize, usize, usize, u64);
const LEASE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    NaivePolling,
    TightPolling,
    Ours,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::NaivePolling => "naive polling (50 ms)",
            Side::TightPolling => "tight polling (1 ms)",
            Side::Ours => "redis-patterns",
        }
    }
}

/// The scenarios; short ones in a smoke run (`support::smoke`).
fn scenarios() -> [Scenario; 2] {
    if smoke() {
        [(4, 5, 2, 0), (2, 1, 5, 2)]
    } else {
        [(4, 25, 10, 0), (2, 1, 100, 2)]
    }
}

/// One "process": its connection for the bodies and the hand-written lock, and its client.
#[derive(Clone)]
struct Process {
    conn: MultiplexedConnection,
    client: Client,
}

/// Ends and starts of bodies, to measure hand-offs.
#[derive(Default)]
struct Timeline {
    last_end: Option<Instant>,
    gaps: Vec<Duration>,
    bodies: Vec<Duration>,
}

struct Run {
    wall: Duration,
    gaps: Vec<Duration>,
    bodies: Vec<Duration>,
    commands: u64,
}

async fn body(conn: &mut MultiplexedConnection, counter: &str, timeline: &Mutex<Timeline>) {
    let started = Instant::now();
    {
        let mut t = timeline.lock().unwrap();
        if let Some(end) = t.last_end.take() {
            t.gaps.push(started - end);
        }
    }
    let value: Option<u64> = conn.get(counter).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let _: () = conn
        .set_ex(counter, value.unwrap_or(0) + 1, 60)
        .await
        .unwrap();
    let ended = Instant::now();
    let mut t = timeline.lock().unwrap();
    t.last_end = Some(ended);
    t.bodies.push(ended - started);
}

/// The hand-written lock: `SET NX PX` every `poll` (±50 %) until granted, the body, then the
/// compare-and-delete script.
async fn hand_written(
    p: &mut Process,
    key: &str,
    poll: Duration,
    release: &redis::Script,
    counter: &str,
    timeline: &Mutex<Timeline>,
) {
    let token = format!("{:016x}{:016x}", random(), random());
    loop {
        if set_nx_px(&mut p.conn, key, &token, LEASE).await {
            break;
        }
        let jitter = (random() % 1_000) as f64 / 1_000.0;
        tokio::time::sleep(poll.mul_f64(0.5 + jitter)).await;
    }
    body(&mut p.conn, counter, timeline).await;
    let released: i64 = release
        .key(key)
        .arg(&token)
        .invoke_async(&mut p.conn)
        .await
        .unwrap();
    assert_eq!(released, 1);
}

/// A random number (std's randomly keyed hasher over a counter; no extra dependency).
fn random() -> u64 {
    use std::hash::BuildHasher;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::hash::RandomState::new().hash_one(n)
}

/// Ours: the same lock name in every run, so that the warm-up's tracking covers it (a lock
/// name's first contention in a client is heard only once the server tracks its prefix).
async fn ours(p: &mut Process, counter: &str, timeline: &Mutex<Timeline>) {
    let guard = Lock::new("handoff")
        .client(&p.client)
        .ttl(LEASE)
        .wait(Duration::from_secs(60))
        .acquire()
        .await
        .unwrap();
    body(&mut p.conn, counter, timeline).await;
    guard.release().await.unwrap();
}

async fn run_side(processes: &[Process], scenario: Scenario, side: Side, run: usize) -> Run {
    let (clients, tasks_per_client, bodies, outside) = scenario;
    let processes = &processes[..clients];
    let tag = format!("handoff-{clients}-{run}-{side:?}");
    let counter = format!("bench:{{{tag}}}:counter");
    let key = format!("bench:{{{tag}}}:lock");
    let release = Arc::new(redis::Script::new(support::RELEASE_SCRIPT));
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let mut admin = processes[0].conn.clone();
    let before = commands_processed(&mut admin).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for process in processes {
        for _ in 0..tasks_per_client {
            let (mut p, counter, key) = (process.clone(), counter.clone(), key.clone());
            let (release, timeline) = (release.clone(), timeline.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..bodies {
                    match side {
                        Side::NaivePolling => {
                            let poll = Duration::from_millis(50);
                            hand_written(&mut p, &key, poll, &release, &counter, &timeline).await
                        }
                        Side::TightPolling => {
                            let poll = Duration::from_millis(1);
                            hand_written(&mut p, &key, poll, &release, &counter, &timeline).await
                        }
                        Side::Ours => ours(&mut p, &counter, &timeline).await,
                    }
                    if outside > 0 {
                        tokio::time::sleep(Duration::from_millis(outside)).await;
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("a task");
    }
    let wall = started.elapsed();
    let commands = commands_processed(&mut admin).await - before - 1;
    let count: u64 = admin.get(&counter).await.unwrap();
    let expected = clients * tasks_per_client * bodies;
    assert_eq!(
        count,
        expected as u64,
        "{}: every body counted once",
        side.name()
    );
    let timeline = std::mem::take(&mut *timeline.lock().unwrap());
    Run {
        wall,
        gaps: timeline.gaps,
        bodies: timeline.bodies,
        commands,
    }
}

fn quantile(values: &[Duration], q: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let runs = runs();
    let url = server().url();
    let runtime = multi_thread_runtime();
    let most = scenarios().iter().map(|s| s.0).max().unwrap_or(1);
    let sides = [Side::NaivePolling, Side::TightPolling, Side::Ours];
    let processes: Vec<Process> = runtime.block_on(async {
        let mut processes = Vec::new();
        for _ in 0..most {
            let conn = redis::Client::open(url.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            // One namespace: the clients contend for the same locks.
            let config = Config::from_url(&url).unwrap().namespace("handoff");
            let client = Client::new(config).unwrap();
            client.connect().await.unwrap();
            processes.push(Process { conn, client });
        }
        // Warm-up of every side (connections, scripts, the waiters' tracking).
        for side in sides {
            run_side(&processes, (most, 5, 2, 0), side, usize::MAX).await;
        }
        processes
    });
    for scenario in scenarios() {
        let mut results: Vec<(Side, Vec<Run>)> = sides.iter().map(|s| (*s, Vec::new())).collect();
        for run in 0..runs {
            let mut order = sides.to_vec();
            if run % 2 == 1 {
                order.reverse();
            }
            for side in order {
                let r = runtime.block_on(run_side(&processes, scenario, side, run));
                eprintln!(
                    "{scenario:?} run {run}: {}: {:.2} s, hand-off p50 {:.2} ms p99 {:.2} ms, \
                     {:.1} commands per body",
                    side.name(),
                    r.wall.as_secs_f64(),
                    ms(quantile(&r.gaps, 0.5)),
                    ms(quantile(&r.gaps, 0.99)),
                    r.commands as f64 / r.bodies.len() as f64,
                );
                results
                    .iter_mut()
                    .find(|(s, _)| *s == side)
                    .expect("a side")
                    .1
                    .push(r);
            }
        }
        print_table(scenario, runs, &results);
    }
}

fn print_table(scenario: Scenario, runs: usize, results: &[(Side, Vec<Run>)]) {
    let (clients, tasks, bodies, outside) = scenario;
    println!();
    println!(
        "### {clients} clients × {tasks} tasks × {bodies} bodies, {outside} ms outside the lock \
         between bodies; median [range] over {runs} runs"
    );
    println!();
    println!(
        "| side | wall time | hand-off p50 | hand-off p99 | server commands per body | floor (bodies back to back) |"
    );
    println!("|---|---|---|---|---|---|");
    for (side, runs) in results {
        let walls: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64()).collect();
        let lo = walls.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = walls.iter().copied().fold(0.0, f64::max);
        let per = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        println!(
            "| {} | {:.2} s [{lo:.2}–{hi:.2}] | {:.2} ms | {:.2} ms | {:.1} | {:.2} s |",
            side.name(),
            median(walls.clone()),
            per(&|r| ms(quantile(&r.gaps, 0.5))),
            per(&|r| ms(quantile(&r.gaps, 0.99))),
            per(&|r| r.commands as f64 / r.bodies.len() as f64),
            per(&|r| r.bodies.iter().sum::<Duration>().as_secs_f64()),
        );
    }
}
