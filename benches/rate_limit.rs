//! `#[rate_limited]` decisions against the hand-written baseline, in one run against one
//! server: the sliding-window Lua script (the same file the runtime uses) sent by hand with
//! redis-rs `Script` (`EVALSHA`) on one multiplexed connection.
//!
//! ```text
//! cargo bench --bench rate_limit      # or RUNS=3 scripts/bench-report rate_limit
//! ```
//!
//! Groups: `decision_latency` (one caller), `decision_throughput_64` (64 concurrent callers
//! on distinct keys), `mem_decision` (the in-process backend). Every call is admitted (the
//! limit is far above the rate), so each decision trims the log, reads its oldest and newest calls and adds a member,
//! on both sides.

mod support;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use redis::Script;
use redis_patterns::rate_limit::RateLimited;
use redis_patterns::{Client, Config, rate_limited};
use support::{CONCURRENCY, Pair, concurrent, runtime, sequential, server};

const LIMIT: u64 = 1_000_000_000;
const WINDOW_US: u64 = 1_000_000;

#[rate_limited(key = "api:<user>", limit = 1_000_000_000, window = "1s", client = client)]
async fn decide(client: &Client, user: u64) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

fn script() -> Script {
    Script::new(include_str!(
        "../redis-patterns/src/scripts/rate_limit/sliding_window.lua"
    ))
}

/// What a hand-written caller sends: the key, the limit, the window and the cost.
async fn baseline_decide(conn: &mut redis::aio::MultiplexedConnection, script: &Script, user: u64) {
    let reply: Vec<i64> = script
        .key(format!("baseline:{{api:{user}}}:sw2"))
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

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn client(url: &str) -> Client {
    let client = Client::new(Config::from_url(url).unwrap().namespace("bench")).unwrap();
    client.connect().await.unwrap();
    decide(&client, 0).await.unwrap(); // loads the script
    client
}

fn decision_latency(c: &mut Criterion) {
    let rt = runtime();
    let url = server().url();
    let conn = rt.block_on(connection(&url));
    let client = rt.block_on(client(&url));
    let script = script();
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
        "decision_latency",
        ("baseline_script", "rate_limited"),
        None,
    );
}

fn decision_throughput_64(c: &mut Criterion) {
    let rt = runtime();
    let url = server().url();
    let conn = rt.block_on(connection(&url));
    let client = rt.block_on(client(&url));
    let script = Arc::new(script());
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
        "decision_throughput_64",
        ("baseline_script", "rate_limited"),
        Some(CONCURRENCY),
    );
}

fn mem_decision(c: &mut Criterion) {
    let rt = runtime();
    let client = rt.block_on(client("mem://"));
    let mut group = c.benchmark_group("mem_decision");
    group.bench_function("rate_limited", |b| {
        b.to_async(&rt).iter(|| decide(&client, 1))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4))
        .sample_size(50);
    targets = decision_latency, decision_throughput_64, mem_decision
}
criterion_main!(benches);
