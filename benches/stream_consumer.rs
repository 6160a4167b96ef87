//! Stream consumers (issue 14) against the hand-written redis-rs consumer loop of the same
//! guarantee (at least once: an event is acknowledged after its handler ran), in one run
//! against one server, on the default multi-threaded runtime, both sides interleaved in every
//! sample:
//!
//! | ours | hand-written |
//! |---|---|
//! | a `Consumer` with a no-op handler, `.concurrency(b).batch(b)` | a loop: `XREADGROUP GROUP g c COUNT b BLOCK 250 STREAMS key >`, `serde_json::from_slice` and the handler for each event, one `XACK key g id…` for the batch |
//! | `EventStream::append`, then a `Consumer`'s handler (default settings) signalling a channel | `serde_json::to_vec`, `XADD key MAXLEN ~ 100000 * d json`, then the handler of the loop above (`COUNT 8`) signalling a channel |
//!
//! ```text
//! cargo bench --bench stream_consumer     # or RUNS=3 scripts/bench-report stream_consumer
//! ```
//!
//! `consume_throughput_<b>`, per event (issue 14 asks ours for at least 0.9× the baseline's
//! events per second): each side's consumer runs all along, blocked on a stream of its own; a
//! sample appends its events in one `MULTI`/`EXEC` (not timed: the server hands a blocked
//! reader nothing before `EXEC` is done), then times from `EXEC`'s answer until every event is
//! acknowledged. `round_trip_latency`: one event at a time, from the append to its handler
//! having run (the handler's signal received). Before measuring, one pass per side and batch
//! size prints the events per `XREADGROUP` and per `XACK` (`INFO commandstats` deltas; other
//! consumers' empty reads every 250 ms included).

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use redis::aio::MultiplexedConnection;
use redis_patterns::stream::{Consumer, ConsumerHandle, Delivery, EventStream};
use redis_patterns::{Client, Config};
use serde::{Deserialize, Serialize};
use support::{Pair, multi_thread_runtime, round_trips, server, smoke};
use tokio::runtime::Runtime;
use tokio::sync::{Mutex, Notify, mpsc};

#[derive(Serialize, Deserialize)]
struct PriceChanged {
    sku: u64,
    cents: u64,
    currency: String,
}

fn event(sku: u64) -> PriceChanged {
    PriceChanged {
        sku,
        cents: 4_999,
        currency: "EUR".into(),
    }
}

const GROUP: &str = "bench";
/// The hand-written loop's wait: ours waits half the client's 500 ms command timeout.
const BLOCK_MS: u64 = 250;
/// The streams' length cap, `EventStream`'s default.
const MAX_LEN: u64 = 100_000;
/// The most events one `MULTI` appends: well within the cap, so none is trimmed unread.
const ROUND: u64 = 50_000;
/// The read sizes measured (`COUNT`; ours `.concurrency(b).batch(b)`).
const BATCHES: [usize; 2] = [16, 64];
/// The hand-written loop's `COUNT` in the round trip: ours' default concurrency.
const ROUND_TRIP_COUNT: usize = 8;

/// The key of the stream `name` on a client of namespace `bench`, as `EventStream` writes it.
fn key(name: &str) -> String {
    format!("bench:{{{name}}}:stream")
}

async fn connection() -> MultiplexedConnection {
    redis::Client::open(server().url().as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn client() -> Client {
    let config = Config::from_url(&server().url())
        .unwrap()
        .namespace("bench");
    let client = Client::new(config).unwrap();
    client.connect().await.unwrap();
    client
}

/// How far a consumer got; its handler counts each event.
#[derive(Default)]
struct Progress {
    handled: AtomicU64,
    /// The hand-written loop's acknowledgements (ours counts them in `ConsumerStats::acked`).
    acked: AtomicU64,
    /// `handled` at the end of the current sample.
    target: AtomicU64,
    /// Signalled when `handled` reaches `target`.
    reached: Notify,
}

impl Progress {
    /// The no-op handler's bookkeeping, the same on both sides.
    fn handled(&self) {
        let handled = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if handled == self.target.load(Ordering::SeqCst) {
            self.reached.notify_one();
        }
    }
}

/// `XREADGROUP`'s answer: nil after a wait with nothing new, else
/// `[[key, [[id, [field, value, …]], …]]]`.
type ReadReply = Option<Vec<(String, Vec<(String, Vec<(String, Vec<u8>)>)>)>>;

/// The hand-written consumer: read up to `count` new events (waiting for the first), decode
/// and handle each, acknowledge them all with one `XACK`; again. Runs until the runtime ends.
fn spawn_hand_written(
    mut conn: MultiplexedConnection,
    key: String,
    count: usize,
    progress: Arc<Progress>,
    handler: impl Fn(PriceChanged) + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            let reply: ReadReply = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg("hand-written")
                .arg("COUNT")
                .arg(count)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&key)
                .arg(">")
                .query_async(&mut conn)
                .await
                .unwrap();
            let Some(streams) = reply else { continue };
            let mut ack = redis::cmd("XACK");
            ack.arg(&key).arg(GROUP);
            let mut handled = 0;
            for (_, entries) in streams {
                for (id, fields) in entries {
                    let (_, json) = fields.iter().find(|(field, _)| field == "d").unwrap();
                    handler(serde_json::from_slice(json).unwrap());
                    ack.arg(id);
                    handled += 1;
                }
            }
            if handled > 0 {
                let _: u64 = ack.query_async(&mut conn).await.unwrap();
                progress.acked.fetch_add(handled, Ordering::SeqCst);
            }
        }
    });
}

/// `XGROUP CREATE key bench 0 MKSTREAM`: what the hand-written consumer's deployment does once.
async fn create_group(conn: &mut MultiplexedConnection, key: &str) {
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await
        .unwrap();
}

/// One side's consumer, running all along on a stream of its own.
struct Consuming {
    key: String,
    appender: MultiplexedConnection,
    progress: Arc<Progress>,
    /// Ours; `None` for the hand-written loop.
    ours: Option<ConsumerHandle>,
}

impl Consuming {
    async fn start(client: &Client, name: &str, batch: usize, ours: bool) -> Consuming {
        let progress = Arc::new(Progress::default());
        let mut appender = connection().await;
        let key = key(name);
        let handler = {
            let progress = progress.clone();
            move |event: PriceChanged| {
                std::hint::black_box(event);
                progress.handled();
            }
        };
        let ours = if ours {
            let consumer = Consumer::new(
                name.to_owned(),
                GROUP,
                move |event: PriceChanged, _: Delivery| {
                    handler(event);
                    std::future::ready(Ok::<(), Infallible>(()))
                },
            );
            let handle = consumer
                .client(client.clone())
                .concurrency(batch)
                .batch(batch)
                .spawn()
                .unwrap();
            Some(handle)
        } else {
            create_group(&mut appender, &key).await;
            spawn_hand_written(
                connection().await,
                key.clone(),
                batch,
                progress.clone(),
                handler,
            );
            None
        };
        let side = Consuming {
            key,
            appender,
            progress,
            ours,
        };
        // Ours creates its group and dials its connection now, not in the first sample.
        side.round(1).await;
        side
    }

    fn acked(&self) -> u64 {
        match &self.ours {
            Some(handle) => handle.stats().acked,
            None => self.progress.acked.load(Ordering::SeqCst),
        }
    }

    /// The time `events` events take from their append to their acknowledgement.
    async fn consume(&self, events: u64) -> Duration {
        let mut took = Duration::ZERO;
        let mut left = events;
        while left > 0 {
            let round = left.min(ROUND);
            took += self.round(round).await;
            left -= round;
        }
        took
    }

    /// Appends `events` at once, then times until every one is acknowledged.
    async fn round(&self, events: u64) -> Duration {
        let target = self.progress.target.fetch_add(events, Ordering::SeqCst) + events;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for sku in 0..events {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(MAX_LEN)
                .arg("*")
                .arg("d")
                .arg(serde_json::to_vec(&event(sku)).unwrap())
                .ignore();
        }
        let () = pipe.query_async(&mut self.appender.clone()).await.unwrap();
        let start = Instant::now();
        tokio::time::timeout(Duration::from_secs(30), self.progress.reached.notified())
            .await
            .expect("every event handled within 30 s");
        // The last acknowledgement follows the last handler by a round trip: spin for it on
        // this thread (not a worker's), handing the CPU to the workers at every turn.
        while self.acked() < target {
            std::thread::yield_now();
        }
        start.elapsed()
    }
}

/// `calls` of each of `commands` in `INFO commandstats`.
async fn calls<const N: usize>(conn: &mut MultiplexedConnection, commands: [&str; N]) -> [u64; N] {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    commands.map(|command| {
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    })
}

/// Prints each side's events per read and per acknowledgement over one pass, and checks that
/// it left nothing pending.
async fn census(sides: &[(usize, Consuming, Consuming)]) {
    let events = if smoke() { 200 } else { 20_000 };
    let mut conn = connection().await;
    eprintln!("events per XREADGROUP / per XACK, {events} events appended at once:");
    for (batch, hand, ours) in sides {
        for (name, side) in [("hand-written", hand), ("redis-patterns", ours)] {
            let before = calls(&mut conn, ["xreadgroup", "xack"]).await;
            side.consume(events).await;
            let after = calls(&mut conn, ["xreadgroup", "xack"]).await;
            let (reads, acks) = (after[0] - before[0], after[1] - before[1]);
            eprintln!(
                "  batch {batch}, {name}: {:.1} / {:.1} ({:.0} commands per 1,000 events)",
                events as f64 / reads.max(1) as f64,
                events as f64 / acks.max(1) as f64,
                (reads + acks) as f64 * 1_000.0 / events as f64
            );
            let pending: (u64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
                .arg(&side.key)
                .arg(GROUP)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(pending.0, 0, "{name} left events pending");
        }
    }
}

fn consume(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let sides: Vec<(usize, Consuming, Consuming)> = rt.block_on(async {
        let client = client().await;
        let mut sides = Vec::new();
        for batch in BATCHES {
            let hand = Consuming::start(&client, &format!("tp-hand-{batch}"), batch, false).await;
            let ours = Consuming::start(&client, &format!("tp-ours-{batch}"), batch, true).await;
            let stream =
                EventStream::<PriceChanged>::new(format!("tp-ours-{batch}")).client(client.clone());
            assert_eq!(
                stream.len().await.unwrap(),
                1,
                "the hand-built key is the stream's"
            );
            sides.push((batch, hand, ours));
        }
        census(&sides).await;
        sides
    });
    for (batch, hand, ours) in &sides {
        Pair::new(
            |rt: &Runtime, iters| rt.block_on(hand.consume(iters)),
            |rt: &Runtime, iters| rt.block_on(ours.consume(iters)),
        )
        .bench(
            c,
            &rt,
            &format!("consume_throughput_{batch}"),
            ("baseline_hand_written", "redis_patterns"),
            Some(*batch as u64),
        );
    }
}

/// Both sides of the round trip: each consumer's handler signals its channel.
struct RoundTrip {
    conn: MultiplexedConnection,
    hand_key: String,
    hand_signals: Mutex<mpsc::UnboundedReceiver<()>>,
    stream: EventStream<PriceChanged>,
    ours_signals: Mutex<mpsc::UnboundedReceiver<()>>,
    _ours: ConsumerHandle,
}

async fn round_trip_sides() -> RoundTrip {
    let client = client().await;
    let mut conn = connection().await;
    let hand_key = key("rt-hand");
    create_group(&mut conn, &hand_key).await;
    let (hand_tx, hand_signals) = mpsc::unbounded_channel();
    spawn_hand_written(
        connection().await,
        hand_key.clone(),
        ROUND_TRIP_COUNT,
        Arc::new(Progress::default()),
        move |event| {
            std::hint::black_box(event);
            let _ = hand_tx.send(());
        },
    );
    let (ours_tx, ours_signals) = mpsc::unbounded_channel();
    let ours = Consumer::new("rt-ours", GROUP, move |event: PriceChanged, _: Delivery| {
        let signal = ours_tx.clone();
        async move {
            std::hint::black_box(event);
            let _ = signal.send(());
            Ok::<(), Infallible>(())
        }
    })
    .client(client.clone())
    .spawn()
    .unwrap();
    let sides = RoundTrip {
        conn,
        hand_key,
        hand_signals: Mutex::new(hand_signals),
        stream: EventStream::new("rt-ours").client(client),
        ours_signals: Mutex::new(ours_signals),
        _ours: ours,
    };
    // Ours creates its group and dials its connection now, not in the first sample.
    sides.stream.append(&event(0)).await.unwrap();
    sides.ours_signals.lock().await.recv().await.unwrap();
    sides
}

fn round_trip(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let s = rt.block_on(round_trip_sides());
    Pair::new(
        |rt: &Runtime, iters| {
            let hand_key = &s.hand_key;
            round_trips(rt, iters, &s.hand_signals, |sku| {
                let mut conn = s.conn.clone();
                async move {
                    let payload = serde_json::to_vec(&event(sku)).unwrap();
                    let _: String = redis::cmd("XADD")
                        .arg(hand_key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(MAX_LEN)
                        .arg("*")
                        .arg("d")
                        .arg(payload)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
            })
        },
        |rt: &Runtime, iters| {
            let stream = &s.stream;
            round_trips(rt, iters, &s.ours_signals, |sku| async move {
                stream.append(&event(sku)).await.unwrap();
            })
        },
    )
    .bench(
        c,
        &rt,
        "round_trip_latency",
        ("baseline_hand_written", "redis_patterns"),
        None,
    );
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = consume, round_trip
}
criterion_main!(benches);
