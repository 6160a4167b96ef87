//! The sliding-window log (`RateLimiter::sliding_window`, `algorithm = "sliding_window"`): one
//! member per call whatever its cost, so a huge cost neither blocks the server nor grows its
//! memory; exact `retry_after` found by a search of the log; refunds in the middle of the log.
//! Server work is measured on the server: its member count, its memory, and the commands each
//! call runs (`INFO commandstats`). The same measure checks the other algorithms' state: the
//! fixed window's counter, the token bucket's single value, the sliding window counter's one
//! `HINCRBY` after a window's first call.

mod common;

use std::time::Duration;

use common::{Kind, RedisServer};
use redis_patterns::rate_limit::RateLimiter;
use redis_patterns::{Client, Config};

/// A window that does not end during a test.
const LONG: Duration = Duration::from_secs(1000 * 86_400);

/// The log of `key` under a sliding window of `window`, as the runtime names it.
/// The log of `key` (plain segments only): its first segment is the literal name, each
/// further one a value, marked with `#`.
fn log_key(client: &Client, key: &str, window: Duration) -> String {
    format!(
        "{}:{{{}}}:sw2:{}",
        client.namespace().unwrap(),
        key.replace(':', ":#"),
        window.as_millis()
    )
}

async fn sliding_window_retry_after_is_when_enough_cost_has_left(kind: Kind) {
    let client = common::client(kind, "sliding-retry");
    let window = Duration::from_secs(10);
    let limiter = RateLimiter::sliding_window(10, window).client(client);
    let first = limiter.check("export:alice", 4).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = limiter.check("export:alice", 3).await.unwrap();
    assert!(first.allowed && second.allowed);
    // 7 of 10 taken: 5 more fit once the first call's 4 units have left.
    let d = limiter.check("export:alice", 5).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after, first.at + window - d.at, "{d:?}");
    assert_eq!(d.reset_after, second.at + window - d.at, "{d:?}");
    // 8 more need both calls gone.
    let d = limiter.check("export:alice", 8).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after, second.at + window - d.at, "{d:?}");
    assert_eq!(d.remaining, 3);
}

async fn sliding_window_retry_after_finds_the_call_whose_leaving_makes_room(kind: Kind) {
    let client = common::client(kind, "sliding-search");
    let window = Duration::from_secs(10);
    let limiter = RateLimiter::sliding_window(100, window).client(client);
    let mut admitted = Vec::new();
    for cost in 1..=12 {
        let d = limiter.check("export:alice", cost).await.unwrap();
        assert!(d.allowed, "{cost}");
        admitted.push((d.at, cost));
        // Distinct admission times, so that each call's `at` is its place in the log.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let taken: u64 = admitted.iter().map(|(_, c)| c).sum();
    for cost in [23, 24, 30, 57, 99, 100] {
        let d = limiter.check("export:alice", cost).await.unwrap();
        assert!(!d.allowed, "{cost}");
        let needed = taken + cost - 100;
        let mut freed = 0;
        let (leaving, _) = admitted
            .iter()
            .find(|(_, c)| {
                freed += c;
                freed >= needed
            })
            .unwrap();
        assert_eq!(d.retry_after, *leaving + window - d.at, "cost {cost}");
    }
}

on_both_backends!(
    sliding_window_retry_after_is_when_enough_cost_has_left,
    sliding_window_retry_after_finds_the_call_whose_leaving_makes_room,
);

/// A sliding window far above any cost these tests use, so that every call is admitted.
const MAX_LIMIT: u64 = 1 << 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_sliding_window_cost_stores_one_member() {
    // A server of its own: on a log with a member per unit this call would block it for
    // seconds and fail the other tests of the binary.
    let (_server, mut conn, client) = private_server("huge");
    let limiter = RateLimiter::sliding_window(MAX_LIMIT, LONG).client(client.clone());
    let d = limiter.check("export:alice", 1_000_000).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, MAX_LIMIT - 1_000_000);
    let key = log_key(&client, "export:alice", LONG);
    let members: u64 = redis::cmd("ZCARD").arg(&key).query(&mut conn).unwrap();
    assert_eq!(members, 1, "one member per call, whatever its cost");
    let bytes: u64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&key)
        .query(&mut conn)
        .unwrap();
    assert!(bytes < 4096, "the log of one call takes {bytes} bytes");
}

/// Starts a server of its own whose slow log records every command that holds it for over
/// 100 ms: the server's own measure, not a client-side timing. (Not 1 ms: on a loaded machine
/// the scheduler alone can stretch a single `ZADD` past that; the work a call does is counted
/// exactly by [`commands_run`].)
fn server_logging_slow_commands() -> (RedisServer, redis::Connection) {
    let server = RedisServer::start();
    let mut conn = server.redis();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(100_000)
        .query::<()>(&mut conn)
        .unwrap();
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query::<()>(&mut conn)
        .unwrap();
    (server, conn)
}

fn slow_commands(conn: &mut redis::Connection) -> Vec<redis::Value> {
    redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(16)
        .query(conn)
        .unwrap()
}

/// How many times the server ran each command (scripts' own calls included), from
/// `INFO commandstats`: an exact, server-side count of the work done.
fn commands_run(conn: &mut redis::Connection) -> std::collections::HashMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// The commands run between two [`commands_run`] snapshots, except the `INFO` that took them.
fn commands_between(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
    command: &str,
) -> u64 {
    after.get(command).copied().unwrap_or(0) - before.get(command).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_sliding_window_costs_run_a_few_commands_and_never_block_the_server() {
    let (server, mut conn) = server_logging_slow_commands();
    let client = Client::new(Config::from_url(&server.url()).unwrap().namespace("slow")).unwrap();
    let limiter = RateLimiter::sliding_window(MAX_LIMIT, LONG).client(client);
    for cost in [1_000_000, 1, 3_000_000] {
        let before = commands_run(&mut conn);
        assert!(limiter.check("export:alice", cost).await.unwrap().allowed);
        let after = commands_run(&mut conn);
        assert_eq!(commands_between(&before, &after, "zadd"), 1, "cost {cost}");
        let zrange = commands_between(&before, &after, "zrange");
        assert!(zrange <= 2, "cost {cost}: {zrange} ZRANGE");
    }
    let denied = limiter.check("export:alice", MAX_LIMIT).await.unwrap();
    assert!(!denied.allowed);
    assert!(denied.retry_after > Duration::ZERO && denied.retry_after <= LONG);
    let slow = slow_commands(&mut conn);
    assert!(
        slow.is_empty(),
        "commands held the server for over 100 ms: {slow:?}"
    );
}

/// A server of its own (its `INFO commandstats` count only this test's commands), a connection
/// to it, and a client in namespace `ns`.
fn private_server(ns: &str) -> (RedisServer, redis::Connection, Client) {
    let server = RedisServer::start();
    let conn = server.redis();
    let client = Client::new(Config::from_url(&server.url()).unwrap().namespace(ns)).unwrap();
    (server, conn, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_sliding_window_call_searches_a_log_of_20000_calls_in_a_few_commands() {
    let (_server, mut conn, client) = private_server("many");
    let limiter = RateLimiter::sliding_window(MAX_LIMIT, LONG).client(client.clone());
    assert!(limiter.check("export:bob", 1).await.unwrap().allowed);
    // 20,000 more admitted calls, pipelined by hand with the runtime's own script.
    let script = redis::Script::new(include_str!(
        "../redis-patterns/src/scripts/rate_limit/sliding_window.lua"
    ));
    let key = log_key(&client, "export:bob", LONG);
    let mut pipe = redis::pipe();
    for _ in 0..20_000 {
        pipe.cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(1)
            .arg(&key)
            .arg("take")
            .arg(MAX_LIMIT)
            .arg(LONG.as_micros() as u64)
            .arg(1)
            .arg(0)
            .ignore();
    }
    pipe.query::<()>(&mut conn).unwrap();
    assert_eq!(
        limiter.check("export:bob", 0).await.unwrap().remaining,
        MAX_LIMIT - 20_001
    );
    // Room for this one appears once half of those calls have left: found by a binary search
    // over the log (15 probes for 20,001 calls), not a walk along it.
    let before = commands_run(&mut conn);
    let denied = limiter
        .check("export:bob", MAX_LIMIT - 10_000)
        .await
        .unwrap();
    let after = commands_run(&mut conn);
    assert!(!denied.allowed);
    assert!(denied.retry_after > Duration::ZERO && denied.retry_after <= LONG);
    let zrange = commands_between(&before, &after, "zrange");
    assert!(zrange <= 20, "{zrange} ZRANGE for one denied call");
}

/// One call of the sliding-window script by hand: `take` replies `[allowed, remaining,
/// retry_after, reset_after, stamp, now]`, `refund` replies 1.
fn sliding_script(
    conn: &mut redis::Connection,
    key: &str,
    op: &str,
    cost: u64,
    stamp: i64,
) -> Vec<i64> {
    static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(include_str!(
            "../redis-patterns/src/scripts/rate_limit/sliding_window.lua"
        ))
    });
    let reply: redis::Value = SCRIPT
        .key(key)
        .arg(op)
        .arg(10)
        .arg(10_000_000)
        .arg(cost)
        .arg(stamp)
        .invoke(conn)
        .unwrap();
    match reply {
        redis::Value::Int(one) => vec![one],
        other => redis::from_redis_value(other).unwrap(),
    }
}

/// The refund a stacked limit makes when a later limit denies usually removes the newest call;
/// when other calls were admitted in between, their place in the log moves back with it, and
/// they can still be refunded themselves.
#[test]
fn sliding_window_refund_in_the_middle_keeps_later_calls_exact_on_redis() {
    let mut conn = common::server().redis();
    let conn = &mut conn;
    let key = format!("{}:{{refund}}:sw2:10000", common::namespace("refund"));
    let window_us = 10_000_000;
    let first = sliding_script(conn, &key, "take", 3, 0);
    std::thread::sleep(Duration::from_millis(2));
    let second = sliding_script(conn, &key, "take", 4, 0);
    std::thread::sleep(Duration::from_millis(2));
    let third = sliding_script(conn, &key, "take", 1, 0);
    sliding_script(conn, &key, "refund", 3, first[4]);
    sliding_script(conn, &key, "refund", 1, third[4]);
    assert_eq!(sliding_script(conn, &key, "take", 0, 0)[1], 6);
    // 7 do not fit until the second call, the only one left, has left the window.
    let denied = sliding_script(conn, &key, "take", 7, 0);
    assert_eq!(denied[0], 0);
    assert_eq!(denied[2], second[5] + window_us - denied[5]);
    sliding_script(conn, &key, "refund", 4, second[4]);
    assert_eq!(sliding_script(conn, &key, "take", 0, 0)[1], 10);
    let exists: u64 = redis::cmd("EXISTS").arg(&key).query(conn).unwrap();
    assert_eq!(exists, 0, "an empty log is deleted");
}

/// The commands one `check` runs on the server, by name (scripts' own calls included).
async fn commands_of(
    conn: &mut redis::Connection,
    limiter: &RateLimiter,
    key: &str,
    cost: u64,
) -> (bool, std::collections::BTreeMap<String, u64>) {
    let before = commands_run(conn);
    let allowed = limiter.check(key, cost).await.unwrap().allowed;
    let after = commands_run(conn);
    let ran = after
        .keys()
        .filter(|name| name.as_str() != "info")
        .map(|name| (name.clone(), commands_between(&before, &after, name)))
        .filter(|(_, n)| *n > 0)
        .collect();
    (allowed, ran)
}

fn ran(commands: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    commands.iter().map(|(c, n)| (c.to_string(), *n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_window_state_is_one_counter_that_expires_with_its_window() {
    let (_server, mut conn, client) = private_server("fw");
    let hour = Duration::from_secs(3600);
    let limiter = RateLimiter::fixed_window(5, hour).client(client.clone());
    let key = format!("{}:{{api:#alice}}:fw2:3600000", client.namespace().unwrap());
    // Connected, and the script loaded, before anything is counted.
    limiter.check("api:warm", 1).await.unwrap();
    // The window's first call creates the counter and its deadline; the next only count.
    let (allowed, first) = commands_of(&mut conn, &limiter, "api:alice", 2).await;
    assert!(allowed);
    assert_eq!(
        first,
        ran(&[("evalsha", 1), ("time", 1), ("incrby", 1), ("pexpireat", 1)])
    );
    let (allowed, second) = commands_of(&mut conn, &limiter, "api:alice", 2).await;
    assert!(allowed);
    assert_eq!(second, ran(&[("evalsha", 1), ("time", 1), ("incrby", 1)]));
    // Denied: the units are given back at once, so a denied call counts for nothing.
    let (allowed, denied) = commands_of(&mut conn, &limiter, "api:alice", 2).await;
    assert!(!allowed);
    assert_eq!(
        denied,
        ran(&[("evalsha", 1), ("time", 1), ("incrby", 1), ("decrby", 1)])
    );
    let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
    let count: u64 = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    assert_eq!((kind.as_str(), count), ("string", 4));
    // The deadline is the end of the hour of the server clock the window belongs to.
    let deadline: u64 = redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query(&mut conn)
        .unwrap();
    let (secs, _): (u64, u64) = redis::cmd("TIME").query(&mut conn).unwrap();
    assert_eq!(deadline % 3_600_000, 0, "{deadline}");
    assert!(deadline > secs * 1000 && deadline <= (secs + 3600) * 1000);
    let one = limiter.check("api:alice", 1).await.unwrap();
    assert!(one.allowed && one.remaining == 0);
    // The time to the window's end, in µs: its whole milliseconds are one of these two.
    let to_end = deadline - one.at.as_millis() as u64;
    let reset = one.reset_after.as_millis() as u64;
    assert!(
        reset == to_end || reset + 1 == to_end,
        "{reset} ms, {to_end}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_bucket_state_is_one_value_read_and_written_once() {
    let (_server, mut conn, client) = private_server("tb");
    // One token every 10 s.
    let limiter =
        RateLimiter::token_bucket(10, Duration::from_secs(100), 10).client(client.clone());
    limiter.check("api:warm", 1).await.unwrap();
    let (allowed, commands) = commands_of(&mut conn, &limiter, "api:bob", 4).await;
    assert!(allowed);
    assert_eq!(
        commands,
        ran(&[("evalsha", 1), ("time", 1), ("get", 1), ("set", 1)])
    );
    let key = format!("{}:{{api:#bob}}:tb2:100000", client.namespace().unwrap());
    let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
    assert_eq!(kind, "string");
    // 4 of 10 tokens taken, one back every 10 s: full again in 40 s, when the key goes.
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!((30_000..=40_000).contains(&ttl), "{ttl}");
    let next = limiter.check("api:bob", 0).await.unwrap();
    assert_eq!((next.limit, next.remaining), (10, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_window_counter_sets_its_deadline_once_per_window() {
    let (_server, mut conn, client) = private_server("swc");
    let limiter =
        RateLimiter::sliding_window_counter(100, Duration::from_secs(3600)).client(client);
    limiter.check("api:warm", 1).await.unwrap();
    let (_, first) = commands_of(&mut conn, &limiter, "api:carol", 1).await;
    assert_eq!(
        first,
        ran(&[
            ("evalsha", 1),
            ("hmget", 1),
            ("time", 1),
            ("hset", 1),
            ("pexpireat", 1)
        ])
    );
    let (_, second) = commands_of(&mut conn, &limiter, "api:carol", 1).await;
    assert_eq!(
        second,
        ran(&[("evalsha", 1), ("hmget", 1), ("time", 1), ("hincrby", 1)])
    );
}
