//! Counters against the hand-written redis-rs code of the same guarantee, in one run against
//! one server, both sides interleaved in every sample:
//!
//! | ours | hand-written |
//! |---|---|
//! | `Counter::incr` | `MULTI; SET k 0 NX PX ttl; INCRBY k 1; EXEC` |
//! | `WindowedCounter::incr` | `MULTI; INCRBY k 1; PEXPIREAT k end; EXEC` on the window's key |
//! | `WindowedCounter::sum(7)` | `MGET` of the 7 windows' keys, summed |
//! | `UniqueCounter::add` | `MULTI; PFADD k e; PEXPIREAT k end; EXEC` |
//! | `UniqueCounter::count_over(7)` | `PFCOUNT` of the 7 windows' keys |
//! | `#[counted]` (empty body) | the `MULTI`/`EXEC` of `WindowedCounter::incr`, then the body |
//!
//! ```text
//! cargo bench --bench counter          # or RUNS=3 scripts/bench-report counter
//! ```
//!
//! Each operation in two groups: `<op>_latency`, one caller on a current-thread runtime, and
//! `<op>_throughput_64`, 64 tasks on the default multi-threaded runtime, each on a key of its
//! own.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use redis::aio::MultiplexedConnection;
use redis_patterns::counter::{Counter, UniqueCounter, WindowedCounter};
use redis_patterns::{Client, Config, counted};
use support::{compare, server};
use tokio::runtime::Runtime;

const DAY_MS: u64 = 86_400_000;
const KEEP: u64 = 30;

#[counted(key = "views:<page>", window = "1d", keep = 30, client = client)]
async fn view(client: &Client, page: u64) {
    std::hint::black_box(page);
}

/// The hand-written side's connection and our client, made on the runtime that uses them.
#[derive(Clone)]
struct Sides {
    conn: MultiplexedConnection,
    client: Client,
    counter: Counter,
    views: WindowedCounter,
    visitors: UniqueCounter,
}

fn sides(rt: &Runtime) -> Sides {
    rt.block_on(async {
        let url = server().url();
        let conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let client = Client::new(Config::from_url(&url).unwrap().namespace("bench")).unwrap();
        client.connect().await.unwrap();
        Sides {
            conn,
            counter: Counter::new(Duration::from_secs(3600)).client(client.clone()),
            views: WindowedCounter::daily(30).client(client.clone()),
            visitors: UniqueCounter::daily(30).client(client.clone()),
            client,
        }
    })
}

/// The current day's index and when its key expires, as a hand-written caller computes them.
fn today() -> (u64, u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let day = u64::try_from(now.as_millis()).unwrap() / DAY_MS;
    (day, (day + KEEP) * DAY_MS)
}

async fn multi_incr_expire_at(conn: &mut MultiplexedConnection, key: &str, at: u64) {
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .cmd("INCRBY")
        .arg(key)
        .arg(1)
        .cmd("PEXPIREAT")
        .arg(key)
        .arg(at)
        .ignore()
        .query_async(conn)
        .await
        .unwrap();
    std::hint::black_box(n);
}

fn counter_incr(c: &mut Criterion) {
    compare(
        c,
        sides,
        "counter_incr",
        |mut s: Sides, task| async move {
            let key = format!("base:{{signups:{task}}}:count");
            let (n,): (i64,) = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("NX")
                .arg("PX")
                .arg(3_600_000)
                .ignore()
                .cmd("INCRBY")
                .arg(&key)
                .arg(1)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(n);
        },
        |s: Sides, task| async move {
            let name = format!("signups:{task}");
            std::hint::black_box(s.counter.incr(&name).await.unwrap());
        },
    );
}

fn windowed_incr(c: &mut Criterion) {
    compare(
        c,
        sides,
        "windowed_incr",
        |mut s: Sides, task| async move {
            let (day, at) = today();
            let key = format!("base:{{views:{task}}}:count:{DAY_MS}:{day}");
            multi_incr_expire_at(&mut s.conn, &key, at).await;
        },
        |s: Sides, task| async move {
            std::hint::black_box(s.views.incr(&format!("views:{task}")).await.unwrap());
        },
    );
}

fn windowed_sum(c: &mut Criterion) {
    compare(
        c,
        sides,
        "windowed_sum_7",
        |mut s: Sides, task| async move {
            let (day, _) = today();
            let keys: Vec<String> = (0..7)
                .map(|back| format!("base:{{views:{task}}}:count:{DAY_MS}:{}", day - back))
                .collect();
            let counts: Vec<Option<i64>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(counts.into_iter().flatten().sum::<i64>());
        },
        |s: Sides, task| async move {
            std::hint::black_box(s.views.sum(&format!("views:{task}"), 7).await.unwrap());
        },
    );
}

fn unique_add(c: &mut Criterion) {
    compare(
        c,
        sides,
        "unique_add",
        |mut s: Sides, task| async move {
            let (day, at) = today();
            let key = format!("base:{{visitors:{task}}}:hll:{DAY_MS}:{day}");
            let (changed,): (bool,) = redis::pipe()
                .atomic()
                .cmd("PFADD")
                .arg(&key)
                .arg("visitor-42")
                .cmd("PEXPIREAT")
                .arg(&key)
                .arg(at)
                .ignore()
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(changed);
        },
        |s: Sides, task| async move {
            let name = format!("visitors:{task}");
            std::hint::black_box(s.visitors.add(&name, "visitor-42").await.unwrap());
        },
    );
}

fn unique_count(c: &mut Criterion) {
    compare(
        c,
        sides,
        "unique_count_over_7",
        |mut s: Sides, task| async move {
            let (day, _) = today();
            let keys: Vec<String> = (0..7)
                .map(|back| format!("base:{{visitors:{task}}}:hll:{DAY_MS}:{}", day - back))
                .collect();
            let n: u64 = redis::cmd("PFCOUNT")
                .arg(&keys)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(n);
        },
        |s: Sides, task| async move {
            let name = format!("visitors:{task}");
            std::hint::black_box(s.visitors.count_over(&name, 7).await.unwrap());
        },
    );
}

fn counted_call(c: &mut Criterion) {
    compare(
        c,
        sides,
        "counted_call",
        |mut s: Sides, task| async move {
            let (day, at) = today();
            let key = format!("base:{{views:{task}}}:count:{DAY_MS}:{day}");
            multi_incr_expire_at(&mut s.conn, &key, at).await;
            std::hint::black_box(task);
        },
        |s: Sides, task| async move { view(&s.client, task).await },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = counter_incr, windowed_incr, windowed_sum, unique_add, unique_count, counted_call
}
criterion_main!(benches);
