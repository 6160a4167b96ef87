//! `RateLimiter` at the edges of what it accepts: every builder with zero, one, `u64::MAX`,
//! one nanosecond and `Duration::MAX`; the same calls on a real redis-server and on `mem://`
//! giving the same decisions for random and extreme inputs; no key ever left without a TTL;
//! and a huge cost costing `mem://` no more memory than a small one.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use common::Kind;
use redis_patterns::Client;
use redis_patterns::rate_limit::{Algorithm, OnError, RateLimiter};

/// Counts the bytes this thread allocates, so that a test on a current-thread runtime can
/// measure what one call allocates while other tests run on other threads.
struct CountingAllocator;

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(bytes as u64)));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocated() -> u64 {
    ALLOCATED.with(Cell::get)
}

const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::FixedWindow,
    Algorithm::SlidingWindow,
    Algorithm::SlidingWindowCounter,
    Algorithm::TokenBucket,
    Algorithm::Gcra,
];

fn limiter(algorithm: Algorithm, limit: u64, window: Duration, burst: u64) -> RateLimiter {
    match algorithm {
        Algorithm::FixedWindow => RateLimiter::fixed_window(limit, window),
        Algorithm::SlidingWindow => RateLimiter::sliding_window(limit, window),
        Algorithm::SlidingWindowCounter => RateLimiter::sliding_window_counter(limit, window),
        Algorithm::TokenBucket => RateLimiter::token_bucket(limit, window, burst),
        Algorithm::Gcra => RateLimiter::gcra(limit, window, burst),
        other => panic!("unknown algorithm {other}"),
    }
}

/// What a fresh key admits at once: the limit, or the bucket's capacity.
fn capacity(limiter: &RateLimiter) -> u64 {
    if limiter.algorithm().has_burst() {
        limiter.burst()
    } else {
        limiter.limit()
    }
}

const EXTREME_COUNTS: [u64; 5] = [0, 1, 1 << 40, (1 << 40) + 1, u64::MAX];
const EXTREME_WINDOWS: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_micros(1 << 50),
    Duration::MAX,
];

async fn every_builder_accepts_extreme_values_and_decides_sensibly(kind: Kind) {
    let client = common::client(kind, "builders");
    let mut case = 0;
    for algorithm in ALGORITHMS {
        for limit in EXTREME_COUNTS {
            for window in EXTREME_WINDOWS {
                for burst in EXTREME_COUNTS {
                    let limiter = limiter(algorithm, limit, window, burst)
                        .name("extreme")
                        .on_error(OnError::Deny)
                        .client(client.clone());
                    let what = format!("{limiter:?} (asked {limit}, {window:?}, {burst})");
                    assert!(limiter.window() >= Duration::from_micros(1), "{what}");
                    assert!(limiter.window() <= Duration::from_micros(1 << 50), "{what}");
                    assert!(
                        limiter.limit() <= limit && limiter.burst() <= 1 << 40,
                        "{what}"
                    );
                    for cost in [0, 1, u64::MAX] {
                        case += 1;
                        // A fresh key each time: the first decision does not depend on time.
                        let d = limiter.check(&format!("k{case}"), cost).await.unwrap();
                        assert_eq!(d.allowed, cost <= capacity(&limiter), "{what}, cost {cost}");
                        let admitted = limiter.admit(&format!("a{case}"), cost).await;
                        assert_eq!(admitted.is_ok(), d.allowed, "{what}, cost {cost}");
                    }
                }
            }
        }
    }
}

/// On a current-thread runtime, so that everything the call allocates is counted. (On Redis,
/// `tests/rate_limit.rs` checks the stored members and the server's slow log.)
#[tokio::test]
async fn a_huge_sliding_window_cost_allocates_no_more_than_a_small_one_on_memory() {
    let client = common::client(Kind::Memory, "huge-cost-memory");
    let limiter = RateLimiter::sliding_window(1 << 40, Duration::from_secs(3600)).client(client);
    // The first call allocates what every call of the key shares (the state, the script).
    assert!(limiter.check("export:alice", 1).await.unwrap().allowed);
    let before = allocated();
    assert!(limiter.check("export:alice", 1).await.unwrap().allowed);
    let small = allocated() - before;
    let before = allocated();
    assert!(
        limiter
            .check("export:alice", 1_000_000)
            .await
            .unwrap()
            .allowed
    );
    let huge = allocated() - before;
    assert!(
        huge <= small + 4096,
        "a cost of a million allocated {huge} bytes, a cost of one {small}"
    );
}

/// A small deterministic generator (SplitMix64): the same seed drives the same calls on both
/// backends, and a failure names its seed. `RATE_LIMIT_SEED` picks another.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }

    /// An extreme value, or a random one of any magnitude.
    fn count(&mut self) -> u64 {
        match self.below(3) {
            0 => self.pick(&EXTREME_COUNTS),
            1 => self.below(100),
            _ => {
                let bits = self.below(45);
                self.below(1 << bits)
            }
        }
    }

    fn window(&mut self) -> Duration {
        match self.below(3) {
            0 => self.pick(&EXTREME_WINDOWS),
            1 => Duration::from_millis(1 + self.below(10_000)),
            _ => {
                let bits = self.below(52);
                Duration::from_micros(self.below(1 << bits))
            }
        }
    }

    /// A cost near the interesting edges of `limiter`, or anywhere.
    fn cost(&mut self, limiter: &RateLimiter) -> u64 {
        let capacity = capacity(limiter);
        match self.below(4) {
            0 => self.pick(&[
                0,
                1,
                capacity,
                capacity.saturating_add(1),
                capacity.saturating_sub(1),
            ]),
            1 => self.count(),
            _ => self.below(capacity.saturating_add(2) / 2),
        }
    }
}

/// Whether a sequence of quick calls decides the same whenever it runs: nothing refills or
/// leaves the window within seconds, and no fixed window edge is near (they fall on
/// multiples of the window on the clock, Unix time on Redis). Otherwise only the first call
/// of a fresh key is compared.
fn time_independent(limiter: &RateLimiter) -> bool {
    let long = Duration::from_secs(100 * 86_400);
    if limiter.algorithm().has_burst() {
        // One unit refills every `window / limit`.
        limiter.window().as_secs() / limiter.limit().max(1) >= long.as_secs()
    } else {
        limiter.window() >= long
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_memory_decide_alike_for_random_and_extreme_inputs() {
    let seed = std::env::var("RATE_LIMIT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0F1A_u64);
    let mut rng = Rng(seed);
    let on_redis = common::client(Kind::Redis, "parity");
    let on_memory = common::client(Kind::Memory, "parity");
    // Per algorithm: [sequences compared, calls admitted, calls denied after an admission].
    let mut seen = [[0u32; 3]; 5];
    for case in 0..1000 {
        let algorithm = ALGORITHMS[case % ALGORITHMS.len()];
        let (limit, window, burst) = (rng.count(), rng.window(), rng.count());
        let redis = limiter(algorithm, limit, window, burst).client(on_redis.clone());
        let memory = limiter(algorithm, limit, window, burst).client(on_memory.clone());
        let calls = if time_independent(&redis) { 8 } else { 1 };
        let key = format!("case{case}");
        let tally = &mut seen[case % ALGORITHMS.len()];
        tally[0] += u32::from(calls > 1);
        let mut admitted_before = false;
        for call in 0..calls {
            let cost = rng.cost(&redis);
            let what = format!(
                "seed {seed:#x}, case {case}, call {call}: {algorithm} limit {limit} window \
                 {window:?} burst {burst} cost {cost}"
            );
            let r = redis
                .check(&key, cost)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let m = memory.check(&key, cost).await.unwrap();
            assert_eq!(
                (r.allowed, r.limit, r.remaining),
                (m.allowed, m.limit, m.remaining),
                "{what}\nredis  {r:?}\nmemory {m:?}"
            );
            tally[1] += u32::from(r.allowed);
            tally[2] += u32::from(!r.allowed && admitted_before);
            admitted_before |= r.allowed && cost > 0;
        }
    }
    // The generator must reach the interesting cases for every algorithm: sequences, and
    // denials that depend on what earlier calls took.
    for (algorithm, [sequences, admitted, denied]) in ALGORITHMS.iter().zip(seen) {
        assert!(
            sequences >= 10 && admitted >= 100 && denied >= 20,
            "{algorithm}: {sequences} sequences, {admitted} admitted, {denied} denied"
        );
    }
    assert_every_key_has_a_ttl(&on_redis);
}

fn assert_every_key_has_a_ttl(client: &Client) {
    let mut conn = common::server().redis();
    let pattern = format!("{}:*", client.namespace().unwrap());
    let mut cursor = 0u64;
    let mut seen = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
            .unwrap();
        for key in keys {
            let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
            // -1 is a key without a TTL; -2 expired between SCAN and PTTL, and 0 is about to.
            assert_ne!(ttl, -1, "{key} has no TTL");
            seen += 1;
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert!(seen > 0, "the test wrote no key under {pattern}");
}

on_both_backends!(every_builder_accepts_extreme_values_and_decides_sensibly);

/// The scripts check their arguments before writing: a caller passing values the runtime
/// would have clamped gets an error and no key, rather than a key left without a TTL.
#[test]
fn out_of_range_script_arguments_are_refused_before_any_write() {
    let scripts = [
        include_str!("../redis-patterns/src/scripts/rate_limit/fixed_window.lua"),
        include_str!("../redis-patterns/src/scripts/rate_limit/sliding_window.lua"),
        include_str!("../redis-patterns/src/scripts/rate_limit/sliding_window_counter.lua"),
        include_str!("../redis-patterns/src/scripts/rate_limit/gcra.lua"),
    ];
    let mut conn = common::server().redis();
    let ns = common::namespace("script-arguments");
    // (limit or burst, window or interval, cost): each out of range in one way; the last one
    // only for gcra (script 3, token_bucket's too), whose burst × interval is bounded.
    let arguments: [(u64, u64, u64); 5] = [
        (1 << 41, 1000, 1),
        (10, 0, 1),
        (10, 1 << 51, 1),
        (10, 1000, (1 << 40) + 2),
        (1 << 40, 1 << 50, 1 << 40),
    ];
    for (i, script) in scripts.iter().enumerate() {
        let cases = if i >= 3 { 5 } else { 4 };
        for (j, (a, b, cost)) in arguments.iter().take(cases).enumerate() {
            let key = format!("{ns}:{{k{i}-{j}}}");
            let reply: redis::RedisResult<redis::Value> = redis::cmd("EVAL")
                .arg(*script)
                .arg(2)
                .arg(&key)
                .arg(format!("{key}:total"))
                .arg("take")
                .arg(a)
                .arg(b)
                .arg(cost)
                .arg(7)
                .query(&mut conn);
            assert!(
                reply.is_err(),
                "script {i} accepted {a} {b} {cost}: {reply:?}"
            );
            let exists: u64 = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
            assert_eq!(exists, 0, "script {i} wrote {key} before failing");
        }
    }
}
