//! Uncontended lock acquire + release against the hand-written baseline, in one run against
//! one server: `SET key token NX PX ttl` + a Lua compare-and-delete, with redis-rs on one
//! multiplexed connection.
//!
//! ```text
//! cargo bench --bench lock          # or RUNS=3 scripts/bench-report lock
//! ```
//!
//! `Lock` sends the same commands (a plain `SET NX PX`; a release nobody waited for is `GET` +
//! `DEL` in one script); its fencing token is issued only when asked for, and the owner token
//! is 128 random bits from the OS.

mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use redis::Script;
use redis_patterns::lock::Lock;
use redis_patterns::{Client, Config};
use support::{Pair, runtime, sequential, server};

async fn baseline_cycle(conn: &mut redis::aio::MultiplexedConnection, release: &Script, n: u64) {
    let token = format!("owner-{n}");
    let acquired: Option<String> = redis::cmd("SET")
        .arg("baseline-lock")
        .arg(&token)
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .query_async(conn)
        .await
        .unwrap();
    assert!(acquired.is_some(), "uncontended");
    let released: i64 = release
        .key("baseline-lock")
        .arg(&token)
        .invoke_async(conn)
        .await
        .unwrap();
    assert_eq!(released, 1);
}

async fn lock_cycle(lock: &Lock) {
    let guard = lock.acquire().await.unwrap();
    guard.release().await.unwrap();
}

fn acquire_release(c: &mut Criterion) {
    let rt = runtime();
    let url = server().url();
    let conn = rt.block_on(async {
        redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });
    let release = Script::new(support::RELEASE_SCRIPT);
    let client = Client::new(Config::from_url(&url).unwrap().namespace("bench")).unwrap();
    rt.block_on(client.connect()).unwrap();
    let lock = Lock::new("report:daily")
        .client(&client)
        .ttl(Duration::from_secs(10));
    let counter = std::cell::Cell::new(0u64);
    Pair::new(
        |rt: &tokio::runtime::Runtime, iters| {
            sequential(rt, iters, || {
                let mut conn = conn.clone();
                let n = counter.replace(counter.get() + 1);
                let release = &release;
                async move { baseline_cycle(&mut conn, release, n).await }
            })
        },
        |rt: &tokio::runtime::Runtime, iters| sequential(rt, iters, || lock_cycle(&lock)),
    )
    .bench(
        c,
        &rt,
        "lock_acquire_release",
        ("baseline_set_nx_lua_release", "lock"),
        None,
    );

    let mem = Client::new("mem://").unwrap();
    let lock = Lock::new("report:daily").client(&mem);
    let mut group = c.benchmark_group("mem_lock_acquire_release");
    group.bench_function("lock", |b| b.to_async(&rt).iter(|| lock_cycle(&lock)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = acquire_release
}
criterion_main!(benches);
