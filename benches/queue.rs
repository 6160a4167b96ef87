//! Job queues (issue 14: "queue round trip (push → handler → done) reported") against the
//! hand-written reliable queue of redis-rs code, in one run against one server, on the
//! default multi-threaded runtime, both sides interleaved in every sample:
//!
//! | ours | hand-written |
//! |---|---|
//! | `Queue::push`, then a `Worker`'s handler (concurrency 1) signalling a channel; the worker completes the job after | `serde_json::to_vec`, `LPUSH ready json`; a loop: `BLMOVE ready processing RIGHT LEFT 0.25`, `serde_json::from_slice`, the handler signalling the channel, `LREM processing 1 json` |
//!
//! ```text
//! cargo bench --bench queue     # or RUNS=3 scripts/bench-report queue
//! ```
//!
//! `round_trip_latency`: one job at a time, from the push to its handler having run (the
//! handler's signal received). The guarantees differ in ours' favour, so the baseline is the
//! cheapest at-least-once queue, not one of the same guarantee: the hand-written list has no
//! lease (a job stuck in `processing` after a crash needs a reaper that knows which worker
//! died), no attempt count, no retry backoff and no dead list; ours claims with a lease,
//! counts the attempt, and completes only while it holds the lease.

mod support;

use std::convert::Infallible;

use criterion::{Criterion, criterion_group, criterion_main};
use redis::aio::MultiplexedConnection;
use redis_patterns::queue::{Job, Queue, Worker, WorkerHandle};
use redis_patterns::{Client, Config};
use serde::{Deserialize, Serialize};
use support::{Pair, multi_thread_runtime, round_trips, server};
use tokio::runtime::Runtime;
use tokio::sync::{Mutex, mpsc};

#[derive(Serialize, Deserialize)]
struct Mail {
    id: u64,
    to: String,
}

fn mail(id: u64) -> Mail {
    Mail {
        id,
        to: "ada@example.com".into(),
    }
}

const READY: &str = "bench:{hand}:ready";
const PROCESSING: &str = "bench:{hand}:processing";

async fn connection() -> MultiplexedConnection {
    redis::Client::open(server().url().as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

struct Sides {
    conn: MultiplexedConnection,
    hand_signals: Mutex<mpsc::UnboundedReceiver<()>>,
    queue: Queue<Mail>,
    ours_signals: Mutex<mpsc::UnboundedReceiver<()>>,
    _worker: WorkerHandle,
}

/// The hand-written worker: move the next job to the processing list (waiting up to 250
/// ms), handle it, remove it from the processing list; again.
fn spawn_hand_written(mut conn: MultiplexedConnection, signal: mpsc::UnboundedSender<()>) {
    tokio::spawn(async move {
        loop {
            let job: Option<Vec<u8>> = redis::cmd("BLMOVE")
                .arg(READY)
                .arg(PROCESSING)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(0.25)
                .query_async(&mut conn)
                .await
                .unwrap();
            let Some(job) = job else { continue };
            let mail: Mail = serde_json::from_slice(&job).unwrap();
            std::hint::black_box(mail);
            let _ = signal.send(());
            let _: u64 = redis::cmd("LREM")
                .arg(PROCESSING)
                .arg(1)
                .arg(&job)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    });
}

async fn sides() -> Sides {
    let conn = connection().await;
    let (hand_tx, hand_signals) = mpsc::unbounded_channel();
    spawn_hand_written(connection().await, hand_tx);
    let config = Config::from_url(&server().url())
        .unwrap()
        .namespace("bench");
    let client = Client::new(config).unwrap();
    client.connect().await.unwrap();
    let (ours_tx, ours_signals) = mpsc::unbounded_channel();
    let worker = Worker::new("mail", move |mail: Mail, _: Job| {
        let signal = ours_tx.clone();
        async move {
            std::hint::black_box(mail);
            let _ = signal.send(());
            Ok::<(), Infallible>(())
        }
    })
    .client(client.clone())
    .concurrency(1)
    .spawn()
    .unwrap();
    let sides = Sides {
        conn,
        hand_signals: Mutex::new(hand_signals),
        queue: Queue::new("mail").client(client),
        ours_signals: Mutex::new(ours_signals),
        _worker: worker,
    };
    // Ours dials its waiting connection now, not in the first sample.
    sides.queue.push(&mail(0)).await.unwrap();
    sides.ours_signals.lock().await.recv().await.unwrap();
    sides
}

fn round_trip(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let s = rt.block_on(sides());
    Pair::new(
        |rt: &Runtime, iters| {
            round_trips(rt, iters, &s.hand_signals, |id| {
                let mut conn = s.conn.clone();
                async move {
                    let payload = serde_json::to_vec(&mail(id)).unwrap();
                    let _: u64 = redis::cmd("LPUSH")
                        .arg(READY)
                        .arg(payload)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
            })
        },
        |rt: &Runtime, iters| {
            let queue = &s.queue;
            round_trips(rt, iters, &s.ours_signals, |id| async move {
                queue.push(&mail(id)).await.unwrap();
            })
        },
    )
    .bench(
        c,
        &rt,
        "queue_round_trip_latency",
        ("baseline_hand_written", "redis_patterns"),
        None,
    );
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = round_trip
}
criterion_main!(benches);
