//! What users run under load (issue 11, part 3): every pattern against the hand-written code a
//! careful user would write for the same guarantee, in one process against one `redis-server`,
//! baseline and redis-patterns interleaved in every run.
//!
//! ```text
//! cargo bench --bench throughput                  # RUNS=5 PASS_MS=1000 to tighten the ranges
//! ONLY=lock cargo bench --bench throughput        # the patterns whose name contains `lock`
//! ```
//!
//! Patterns, each on both sides:
//! - `#[cached]` hit: a redis-rs `GET` + `serde_json::from_slice` of the same [`Product`]
//!   against `#[cached(key = "product:<id>", ttl = "1h")]` whose entries are stored beforehand;
//! - a rate-limit decision of each of the five algorithms, with a limit far above the rate so
//!   that every call is admitted, against the hand-written script of the same algorithm sent
//!   with redis-rs `Script` (`EVALSHA`): the `*_SCRIPT` constants below, each with the
//!   guarantee it gives;
//! - the fixed-window decision once more, against the widely copied fixed window that also
//!   reports when its window resets (what a `RateLimit-Reset` header needs, and what ours
//!   reports): `INCR` + `PTTL`, as `rate-limit-redis` does;
//! - lock acquire + release: `SET key token NX PX ttl` + a compare-and-delete script against
//!   `Lock::acquire` + `LockGuard::release`;
//! - fenced lock acquire + release: our lock issuing its fencing token with the grant
//!   (`Lock::fenced(true)`, the holder reads it with `LockGuard::fencing_token`) against the hand-written lock that also issues fencing
//!   tokens (`SET NX PX` + `INCR` of a counter, in one script): what the fencing token costs,
//!   next to the line above.
//!
//! Modes, each measured for both sides back to back (the order alternates between runs):
//! - one caller: a single task on a current-thread runtime, one key; the median and p99 of
//!   each call's time over a pass of `PASS_MS` (default 500);
//! - 64 tasks on the default multi-threaded runtime, on 64 distinct keys (one per task) and on
//!   one hot key: calls/s over an untimed pass, then p50/p99 of each call over a timed pass.
//!   On the hot lock the tasks contend: a refused attempt waits `RETRY` (±50 %) and tries
//!   again, on both sides, and a call is one acquisition + release, waits included.
//!
//! On the hot key, concurrent `#[cached]` calls for the same key share one read (single
//! flight), so ours sends far fewer commands than the baseline there: that is what users get,
//! and it is measured as such. The 64 distinct keys are the case no in-process coalescing
//! can help.
//!
//! Server commands per call are `total_commands_processed` deltas over the pass (the `INFO`
//! that reads them excluded). On redis-server 7, `total_commands_processed` counts the
//! commands a script runs as well as the `EVALSHA` itself (`INFO commandstats` agrees: the
//! one-caller breakdown printed first has the same sum), so it is what the server pays.
//!
//! Next to them, CPU per call over the same pass: redis-server's (`INFO cpu`, user + system)
//! and this process's (`getrusage`), to tell a server-bound gap from a client-bound one.
//!
//! `RUNS` (default 3) runs; the tables give the median over runs and the per-run range in
//! brackets, and ratios are ours ÷ baseline per run (median [range]).

mod support;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script};
use redis_patterns::lock::Lock;
use redis_patterns::rate_limit::RateLimited;
use redis_patterns::{Client, Config, cached, rate_limited};
use support::{
    CONCURRENCY, Product, join_calls, median, multi_thread_runtime, percentile, runs, sample,
    server, smoke,
};

/// Units per window of every rate limit, on both sides: far above the rate reached here, so
/// every call is admitted (the `#[rate_limited]` functions below spell it as a literal).
const LIMIT: u64 = 1_000_000;
/// The window of every rate limit (`"1s"` below).
const WINDOW: Duration = Duration::from_secs(1);
/// The lease of every lock.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// The pause between two attempts at a held lock, randomised by ±50 % on both sides (what
/// `Lock::retry` does).
const RETRY: Duration = Duration::from_millis(1);
/// The key id of the one-caller mode and of the hot key (tasks of the distinct-keys mode use
/// `0..64`).
const HOT: u64 = CONCURRENCY;

/// Sliding-window log, the classic: never more than `ARGV[1]` calls in any interval of
/// `ARGV[2]` µs, on the server's clock. One sorted-set member per admitted call (`ARGV[3]`,
/// unique per call) scored by its admission time; the key expires a window after the last
/// admission. Commands: `TIME`, `ZREMRANGEBYSCORE`, `ZCARD`, `ZADD`, `PEXPIRE`.
const SLIDING_WINDOW_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then return {0, 0} end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return {1, limit - count - 1}
"#;

/// Sliding-window counter (Cloudflare's): the current fixed window's count plus the previous
/// window's, weighted by how much of it the sliding window still overlaps, must stay within
/// `ARGV[1]` per `ARGV[2]` µs: close to a sliding window in O(1) memory, on the server's clock.
/// A hash of window number → count that lives two windows; the first call of a window drops
/// the field of the window before the previous one. Commands: `TIME`, `HMGET`, `HINCRBY`,
/// `PEXPIRE` (and `HDEL` once per window).
const SLIDING_WINDOW_COUNTER_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local current = math.floor(now / window)
local field = string.format('%.0f', current)
local counts = redis.call('HMGET', KEYS[1], field, string.format('%.0f', current - 1))
local count, previous = tonumber(counts[1]) or 0, tonumber(counts[2]) or 0
local weighted = previous * (1 - (now - current * window) / window)
if weighted + count + 1 > limit then return {0, 0} end
if count == 0 then redis.call('HDEL', KEYS[1], string.format('%.0f', current - 2)) end
redis.call('HINCRBY', KEYS[1], field, 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * window / 1000))
return {1, math.floor(limit - weighted - count - 1)}
"#;

/// Fixed window, the classic counter: `INCR`, and `PEXPIRE` on the window's first call, in
/// one script so that the key never lacks a TTL. At most `ARGV[1]` calls per window of
/// `ARGV[2]` ms starting at that first call (up to twice as many across an edge); denied calls
/// count too. Commands: `INCR` (and `PEXPIRE` once per window).
const FIXED_WINDOW_SCRIPT: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local limit = tonumber(ARGV[1])
if n > limit then return {0, 0} end
return {1, limit - n}
"#;

/// Fixed window reporting when it resets, as `rate-limit-redis` (express-rate-limit's Redis
/// store) does it, for the `RateLimit-Reset` header: `INCR`, `PTTL`, and `PEXPIRE` when the
/// key has no TTL yet (the window's first call). The caller compares the count with its
/// limit. Commands: `INCR`, `PTTL` (and `PEXPIRE` once per window).
const FIXED_WINDOW_RESET_SCRIPT: &str = r#"
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}
"#;

/// Token bucket, the widely copied version: up to `ARGV[1]` tokens, refilled continuously at
/// `ARGV[2]` tokens per second (floating point), a call admitted when a whole token is there.
/// State: a hash {tokens, ts} on the server's clock that expires when the bucket would be full
/// again (a missing bucket is full). Commands: `TIME`, `HMGET`, `HSET`, `PEXPIRE`.
const TOKEN_BUCKET_SCRIPT: &str = r#"
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
if tokens < 1 then return {0, 0} end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000))
return {1, math.floor(tokens)}
"#;

/// GCRA, as in rwz/redis-gcra and Brandur's throttled: calls spaced `ARGV[2]` µs apart on
/// average, `ARGV[1]` at once from idle. State: the theoretical arrival time in server µs, a
/// string that expires once it is in the past. Commands: `TIME`, `GET`, `SET … PX`.
const GCRA_SCRIPT: &str = r#"
local burst, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now) + interval
local allow_at = tat - burst * interval
if allow_at > now then return {0, 0} end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval)}
"#;

/// The fenced lock as usually hand-written: `SET NX PX` and, when granted, `INCR` of a
/// per-lock counter that never expires (the next fencing token). Commands: `SET`, `INCR`.
const FENCED_ACQUIRE_SCRIPT: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
"#;

#[cached(key = "product:<id>", ttl = "1h", client = client)]
async fn product(client: &Client, id: u64) -> Result<Product, String> {
    Ok(sample(id))
}

#[rate_limited(key = "sw:<user>", limit = 1_000_000, window = "1s", algorithm = "sliding_window", client = client)]
async fn sliding_window(client: &Client, user: u64) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

#[rate_limited(key = "swc:<user>", limit = 1_000_000, window = "1s", algorithm = "sliding_window_counter", client = client)]
async fn sliding_window_counter(client: &Client, user: u64) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

#[rate_limited(key = "fw:<user>", limit = 1_000_000, window = "1s", algorithm = "fixed_window", client = client)]
async fn fixed_window(client: &Client, user: u64) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

#[rate_limited(key = "tb:<user>", limit = 1_000_000, window = "1s", algorithm = "token_bucket", client = client)]
async fn token_bucket(client: &Client, user: u64) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

#[rate_limited(key = "gcra:<user>", limit = 1_000_000, window = "1s", algorithm = "gcra", client = client)]
async fn gcra(client: &Client, user: u64) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Algorithm {
    SlidingWindow,
    SlidingWindowCounter,
    FixedWindow,
    TokenBucket,
    Gcra,
}

const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::SlidingWindow,
    Algorithm::SlidingWindowCounter,
    Algorithm::FixedWindow,
    Algorithm::TokenBucket,
    Algorithm::Gcra,
];

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::SlidingWindow => "sliding_window",
            Algorithm::SlidingWindowCounter => "sliding_window_counter",
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::Gcra => "gcra",
        }
    }

    fn script(self) -> &'static str {
        match self {
            Algorithm::SlidingWindow => SLIDING_WINDOW_SCRIPT,
            Algorithm::SlidingWindowCounter => SLIDING_WINDOW_COUNTER_SCRIPT,
            Algorithm::FixedWindow => FIXED_WINDOW_SCRIPT,
            Algorithm::TokenBucket => TOKEN_BUCKET_SCRIPT,
            Algorithm::Gcra => GCRA_SCRIPT,
        }
    }

    /// The hand-written decision: the script with what its caller passes, for key `id`.
    async fn baseline(
        self,
        conn: &mut MultiplexedConnection,
        script: &Script,
        id: u64,
        member: u64,
    ) {
        let window_us = WINDOW.as_micros() as u64;
        let mut call = script.prepare_invoke();
        call.key(format!("baseline:{{rl:{}:{id}}}", self.name()));
        match self {
            Algorithm::SlidingWindow => call.arg(LIMIT).arg(window_us).arg(member),
            Algorithm::SlidingWindowCounter => call.arg(LIMIT).arg(window_us),
            Algorithm::FixedWindow => call.arg(LIMIT).arg(WINDOW.as_millis() as u64),
            Algorithm::TokenBucket => call.arg(LIMIT).arg(LIMIT as f64 / WINDOW.as_secs_f64()),
            Algorithm::Gcra => call.arg(LIMIT).arg(window_us / LIMIT),
        };
        let reply: (i64, i64) = call.invoke_async(conn).await.unwrap();
        assert_eq!(reply.0, 1, "{}: admitted", self.name());
    }

    async fn ours(self, client: &Client, id: u64) {
        match self {
            Algorithm::SlidingWindow => sliding_window(client, id).await,
            Algorithm::SlidingWindowCounter => sliding_window_counter(client, id).await,
            Algorithm::FixedWindow => fixed_window(client, id).await,
            Algorithm::TokenBucket => token_bucket(client, id).await,
            Algorithm::Gcra => gcra(client, id).await,
        }
        .unwrap_or_else(|denied| panic!("{}: admitted, got {denied:?}", self.name()));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pattern {
    CachedHit,
    Decision(Algorithm),
    /// Our `fixed_window` against the widely copied fixed window that also reports when the
    /// window resets ([`FIXED_WINDOW_RESET_SCRIPT`]).
    FixedWindowWithReset,
    Lock,
    /// The same lock of ours against a hand-written lock that also issues fencing tokens.
    FencedLock,
}

impl Pattern {
    fn all() -> Vec<Pattern> {
        let mut all = vec![Pattern::CachedHit];
        all.extend(ALGORITHMS.map(Pattern::Decision));
        all.push(Pattern::FixedWindowWithReset);
        all.push(Pattern::Lock);
        all.push(Pattern::FencedLock);
        all
    }

    fn name(self) -> String {
        match self {
            Pattern::CachedHit => "`#[cached]` hit".into(),
            Pattern::Decision(a) => format!("decision `{}`", a.name()),
            Pattern::FixedWindowWithReset => "decision `fixed_window`, reporting its reset".into(),
            Pattern::Lock => "lock acquire + release".into(),
            Pattern::FencedLock => "fenced lock acquire + release".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    OneCaller,
    Distinct,
    Hot,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::OneCaller => "one caller",
            Mode::Distinct => "64 tasks, 64 keys",
            Mode::Hot => "64 tasks, 1 hot key",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Baseline,
    Ours,
}

const SIDES: [Side; 2] = [Side::Baseline, Side::Ours];

/// What both sides share on one runtime (each runtime has its own: a multiplexed connection
/// and a client drive their connections on the runtime that made them).
#[derive(Clone)]
struct Shared {
    conn: MultiplexedConnection,
    client: Client,
    scripts: Arc<Scripts>,
}

struct Scripts {
    decide: [Script; 5],
    fixed_window_reset: Script,
    fenced_acquire: Script,
    release: Script,
}

impl Shared {
    async fn new(url: &str) -> Shared {
        let mut conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let client = Client::new(Config::from_url(url).unwrap().namespace("throughput")).unwrap();
        client.connect().await.unwrap();
        // The baseline's keys hold the same JSON the cached function stores (without the
        // envelope); both sides' entries are stored before anything is measured.
        for id in 0..=HOT {
            let json = serde_json::to_vec(&sample(id)).unwrap();
            let _: () = conn
                .set(format!("baseline:product:{id}"), json)
                .await
                .unwrap();
            product(&client, id).await.unwrap();
        }
        let shared = Shared {
            conn,
            client,
            scripts: Arc::new(Scripts {
                decide: ALGORITHMS.map(|a| Script::new(a.script())),
                fixed_window_reset: Script::new(FIXED_WINDOW_RESET_SCRIPT),
                fenced_acquire: Script::new(FENCED_ACQUIRE_SCRIPT),
                release: Script::new(support::RELEASE_SCRIPT),
            }),
        };
        // Scripts loaded, keys created, on both sides.
        for pattern in Pattern::all() {
            for side in SIDES {
                let mut caller = Caller::new(&shared, pattern, side, HOT, 0);
                for _ in 0..10 {
                    caller.call().await;
                }
            }
        }
        shared
    }
}

/// One task's caller: what it calls through, taken once so that a call clones nothing.
struct Caller {
    pattern: Pattern,
    side: Side,
    id: u64,
    conn: MultiplexedConnection,
    client: Client,
    scripts: Arc<Scripts>,
    /// Ours, for [`Pattern::Lock`] and [`Pattern::FencedLock`].
    lock: Lock,
    /// SplitMix64 state: the baseline's lock tokens, retry jitter and sorted-set members.
    rng: u64,
}

impl Caller {
    fn new(shared: &Shared, pattern: Pattern, side: Side, id: u64, task: u64) -> Caller {
        let seed = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), task);
        Caller {
            pattern,
            side,
            id,
            conn: shared.conn.clone(),
            client: shared.client.clone(),
            scripts: shared.scripts.clone(),
            lock: Lock::new(format!("lock:{id}"))
                .client(&shared.client)
                .ttl(LOCK_TTL)
                .wait(Duration::from_secs(60))
                .retry(RETRY)
                .fenced(pattern == Pattern::FencedLock),
            rng: seed,
        }
    }

    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    async fn call(&mut self) {
        let id = self.id;
        match (self.pattern, self.side) {
            (Pattern::CachedHit, Side::Baseline) => {
                let bytes: Vec<u8> = self
                    .conn
                    .get(format!("baseline:product:{id}"))
                    .await
                    .unwrap();
                black_box(serde_json::from_slice::<Product>(&bytes).unwrap());
            }
            (Pattern::CachedHit, Side::Ours) => {
                black_box(product(&self.client, id).await.unwrap());
            }
            (Pattern::Decision(algorithm), Side::Baseline) => {
                let member = self.random();
                let script = &self.scripts.decide[algorithm as usize];
                algorithm.baseline(&mut self.conn, script, id, member).await;
            }
            (Pattern::Decision(algorithm), Side::Ours) => algorithm.ours(&self.client, id).await,
            (Pattern::FixedWindowWithReset, Side::Baseline) => {
                let (hits, reset_ms): (u64, i64) = self
                    .scripts
                    .fixed_window_reset
                    .key(format!("baseline:{{rl:fw-reset:{id}}}"))
                    .arg(WINDOW.as_millis() as u64)
                    .invoke_async(&mut self.conn)
                    .await
                    .unwrap();
                assert!(hits <= LIMIT && reset_ms > 0, "admitted, with its reset");
            }
            (Pattern::FixedWindowWithReset, Side::Ours) => {
                Algorithm::FixedWindow.ours(&self.client, id).await
            }
            (Pattern::Lock, Side::Baseline) => self.baseline_lock(false).await,
            (Pattern::FencedLock, Side::Baseline) => self.baseline_lock(true).await,
            (Pattern::Lock, Side::Ours) => {
                let guard = self.lock.acquire().await.unwrap();
                guard.release().await.unwrap();
            }
            (Pattern::FencedLock, Side::Ours) => {
                let guard = self.lock.acquire().await.unwrap();
                assert!(black_box(guard.fencing_token().await.unwrap()) > 0);
                guard.release().await.unwrap();
            }
        }
    }

    /// `SET key token NX PX ttl` until it succeeds (a 128-bit random token, as
    /// `rand::random::<u128>()` would give), then the compare-and-delete script; `fenced`:
    /// [`FENCED_ACQUIRE_SCRIPT`] instead of the `SET`.
    async fn baseline_lock(&mut self, fenced: bool) {
        let key = format!("baseline:{{lock:{}}}", self.id);
        let token = format!("{:016x}{:016x}", self.random(), self.random());
        loop {
            let acquired = if fenced {
                let fencing_token: u64 = self
                    .scripts
                    .fenced_acquire
                    .key(&key)
                    .key(format!("{key}:fence"))
                    .arg(&token)
                    .arg(LOCK_TTL.as_millis() as u64)
                    .invoke_async(&mut self.conn)
                    .await
                    .unwrap();
                fencing_token > 0
            } else {
                support::set_nx_px(&mut self.conn, &key, &token, LOCK_TTL).await
            };
            if acquired {
                break;
            }
            let pause = RETRY.as_micros() as u64 / 2 + self.random() % RETRY.as_micros() as u64;
            tokio::time::sleep(Duration::from_micros(pause)).await;
        }
        let released: i64 = self
            .scripts
            .release
            .key(&key)
            .arg(&token)
            .invoke_async(&mut self.conn)
            .await
            .unwrap();
        assert_eq!(released, 1, "released by its owner");
    }
}

/// The server's counters: `total_commands_processed`, the calls of each command and the CPU
/// seconds it has used (user + system, all its threads).
struct ServerStats {
    total: u64,
    calls: BTreeMap<String, u64>,
    cpu: f64,
}

async fn server_stats(conn: &mut MultiplexedConnection) -> ServerStats {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .arg("commandstats")
        .arg("cpu")
        .query_async(conn)
        .await
        .unwrap();
    let mut stats = ServerStats {
        total: 0,
        calls: BTreeMap::new(),
        cpu: 0.0,
    };
    for line in info.lines() {
        if let Some(n) = line.strip_prefix("total_commands_processed:") {
            stats.total = n.trim().parse().unwrap();
        } else if let Some(s) = line
            .strip_prefix("used_cpu_user:")
            .or_else(|| line.strip_prefix("used_cpu_sys:"))
        {
            stats.cpu += s.trim().parse::<f64>().unwrap();
        } else if let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(":calls="))
        {
            let calls = rest.split(',').next().unwrap().parse().unwrap();
            stats.calls.insert(name.to_string(), calls);
        }
    }
    assert!(stats.total > 0, "INFO stats has total_commands_processed");
    stats
}

/// Commands per call between two snapshots, the `INFO` that took `before` excluded: the
/// total, and each command's share (`INFO commandstats`).
fn commands_per_call(before: &ServerStats, after: &ServerStats, calls: u64) -> (f64, String, u64) {
    let total = after.total - before.total - 1;
    let mut breakdown = Vec::new();
    let mut sum = 0;
    for (name, &n) in &after.calls {
        let mut delta = n - before.calls.get(name).copied().unwrap_or(0);
        if name == "info" {
            delta -= 1;
        }
        sum += delta;
        if delta > 0 {
            breakdown.push(format!("{name} {:.2}", delta as f64 / calls as f64));
        }
    }
    (total as f64 / calls as f64, breakdown.join(", "), sum)
}

/// CPU seconds this process has used (user + system, all threads).
fn process_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// One side's numbers in one run.
#[derive(Debug, Clone)]
struct Run {
    calls_per_s: f64,
    p50: f64,
    p99: f64,
    commands_per_call: f64,
    /// redis-server CPU per call, µs.
    server_cpu: f64,
    /// This process's CPU per call, µs (both sides' clients and runtimes).
    client_cpu: f64,
}

/// How long a pass lasts (short in a smoke run: `support::smoke`).
fn pass_length() -> Duration {
    let ms = std::env::var("PASS_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(if smoke() { 20 } else { 500 });
    Duration::from_millis(ms)
}

fn elapsed_nanos(started: Instant) -> u32 {
    started.elapsed().as_nanos().min(u32::MAX as u128) as u32
}

/// Calls `caller` until `deadline`: the number of calls and, when `timed`, each call's time.
async fn call_until(mut caller: Caller, deadline: Instant, timed: bool) -> (u64, Vec<u32>) {
    let mut calls = 0;
    let mut nanos = Vec::new();
    while Instant::now() < deadline {
        if timed {
            let started = Instant::now();
            caller.call().await;
            nanos.push(elapsed_nanos(started));
        } else {
            caller.call().await;
        }
        calls += 1;
    }
    (calls, nanos)
}

/// One pass of one side: calls, wall time and, when `timed`, every call's nanoseconds.
async fn pass(
    shared: &Shared,
    pattern: Pattern,
    side: Side,
    mode: Mode,
    timed: bool,
) -> (u64, Duration, Vec<u32>) {
    let start = Instant::now();
    let deadline = start + pass_length();
    if mode == Mode::OneCaller {
        let (calls, nanos) =
            call_until(Caller::new(shared, pattern, side, HOT, 0), deadline, timed).await;
        return (calls, start.elapsed(), nanos);
    }
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|task| {
            let id = if mode == Mode::Hot { HOT } else { task };
            let caller = Caller::new(shared, pattern, side, id, task);
            tokio::spawn(call_until(caller, deadline, timed))
        })
        .collect();
    let (calls, nanos) = join_calls(tasks).await;
    (calls, start.elapsed(), nanos)
}

/// Measures `pattern` in `mode`, both sides, in `order`: on one caller a timed pass each; on
/// 64 tasks an untimed pass each (calls/s, commands) and then a timed pass each (p50, p99).
/// Prints the commands breakdown when `breakdown`.
async fn measure(
    shared: &Shared,
    pattern: Pattern,
    mode: Mode,
    order: [Side; 2],
    breakdown: bool,
) -> BTreeMap<Side, Run> {
    let mut conn = shared.conn.clone();
    let mut counted = BTreeMap::new();
    for side in order {
        let before = server_stats(&mut conn).await;
        let client_before = process_cpu();
        let (calls, wall, nanos) = pass(shared, pattern, side, mode, mode == Mode::OneCaller).await;
        let client_cpu = (process_cpu() - client_before) * 1e6 / calls as f64;
        let after = server_stats(&mut conn).await;
        let server_cpu = (after.cpu - before.cpu) * 1e6 / calls as f64;
        let (per_call, detail, sum) = commands_per_call(&before, &after, calls);
        if breakdown {
            eprintln!(
                "  {} {side:?}, {}: {per_call:.3} commands per call \
                 (total_commands_processed Δ {}, INFO commandstats Σ {sum}): {detail}",
                pattern.name(),
                mode.name(),
                after.total - before.total - 1,
            );
        }
        counted.insert(
            side,
            (calls, wall, nanos, [per_call, server_cpu, client_cpu]),
        );
    }
    if mode != Mode::OneCaller {
        for side in order {
            let (_, _, nanos) = pass(shared, pattern, side, mode, true).await;
            counted.get_mut(&side).unwrap().2 = nanos;
        }
    }
    counted
        .into_iter()
        .map(
            |(side, (calls, wall, mut nanos, [commands, server, client]))| {
                let run = Run {
                    calls_per_s: calls as f64 / wall.as_secs_f64(),
                    p50: percentile(&mut nanos, 0.50),
                    p99: percentile(&mut nanos, 0.99),
                    commands_per_call: commands,
                    server_cpu: server,
                    client_cpu: client,
                };
                (side, run)
            },
        )
        .collect()
}

fn fmt_us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else {
        format!("{:.1} k/s", per_s / 1e3)
    }
}

/// Median [min–max] of `values`, each formatted by `fmt`.
fn spread(values: &[f64], fmt: impl Fn(f64) -> String) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{} [{}–{}]",
        fmt(median(values.to_vec())),
        fmt(min),
        fmt(max)
    )
}

fn ratio(r: f64) -> String {
    format!("{r:.2}×")
}

type Results = BTreeMap<(Pattern, Mode, Side), Vec<Run>>;

fn values(results: &Results, key: (Pattern, Mode, Side), f: fn(&Run) -> f64) -> Vec<f64> {
    results[&key].iter().map(f).collect()
}

fn ratios(results: &Results, pattern: Pattern, mode: Mode, f: fn(&Run) -> f64) -> Vec<f64> {
    let baseline = values(results, (pattern, mode, Side::Baseline), f);
    let ours = values(results, (pattern, mode, Side::Ours), f);
    ours.iter().zip(&baseline).map(|(o, b)| o / b).collect()
}

fn print_tables(results: &Results, patterns: &[Pattern], runs: usize, workers: usize) {
    println!();
    println!(
        "### 64 tasks, multi-threaded runtime ({workers} workers); median [range] over {runs} runs"
    );
    println!();
    println!(
        "| pattern | keys | baseline calls/s | ours calls/s | ours ÷ baseline calls/s | \
         baseline p50 / p99 | ours p50 / p99 | ours ÷ baseline p99 | server cmds/call: baseline / ours | \
         server CPU µs/call: baseline / ours | client CPU µs/call: baseline / ours |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &pattern in patterns {
        for mode in [Mode::Distinct, Mode::Hot] {
            let side = |side: Side, f: fn(&Run) -> f64| values(results, (pattern, mode, side), f);
            println!(
                "| {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {:.2} / {:.2} | {:.1} / {:.1} | {:.1} / {:.1} |",
                pattern.name(),
                if mode == Mode::Hot {
                    "1 hot"
                } else {
                    "64 distinct"
                },
                spread(&side(Side::Baseline, |r| r.calls_per_s), fmt_rate),
                spread(&side(Side::Ours, |r| r.calls_per_s), fmt_rate),
                spread(&ratios(results, pattern, mode, |r| r.calls_per_s), ratio),
                fmt_us(median(side(Side::Baseline, |r| r.p50))),
                fmt_us(median(side(Side::Baseline, |r| r.p99))),
                fmt_us(median(side(Side::Ours, |r| r.p50))),
                fmt_us(median(side(Side::Ours, |r| r.p99))),
                spread(&ratios(results, pattern, mode, |r| r.p99), ratio),
                median(side(Side::Baseline, |r| r.commands_per_call)),
                median(side(Side::Ours, |r| r.commands_per_call)),
                median(side(Side::Baseline, |r| r.server_cpu)),
                median(side(Side::Ours, |r| r.server_cpu)),
                median(side(Side::Baseline, |r| r.client_cpu)),
                median(side(Side::Ours, |r| r.client_cpu)),
            );
        }
    }
    println!();
    println!("### One caller, current-thread runtime; median [range] over {runs} runs");
    println!();
    println!(
        "| pattern | baseline median | baseline p99 | ours median | ours p99 | \
         ours ÷ baseline median | ours ÷ baseline p99 | server cmds/call: baseline / ours | \
         server CPU µs/call: baseline / ours | client CPU µs/call: baseline / ours |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mode = Mode::OneCaller;
    for &pattern in patterns {
        let side = |side: Side, f: fn(&Run) -> f64| values(results, (pattern, mode, side), f);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} / {:.2} | {:.1} / {:.1} | {:.1} / {:.1} |",
            pattern.name(),
            spread(&side(Side::Baseline, |r| r.p50), fmt_us),
            fmt_us(median(side(Side::Baseline, |r| r.p99))),
            spread(&side(Side::Ours, |r| r.p50), fmt_us),
            fmt_us(median(side(Side::Ours, |r| r.p99))),
            spread(&ratios(results, pattern, mode, |r| r.p50), ratio),
            spread(&ratios(results, pattern, mode, |r| r.p99), ratio),
            median(side(Side::Baseline, |r| r.commands_per_call)),
            median(side(Side::Ours, |r| r.commands_per_call)),
            median(side(Side::Baseline, |r| r.server_cpu)),
            median(side(Side::Ours, |r| r.server_cpu)),
            median(side(Side::Baseline, |r| r.client_cpu)),
            median(side(Side::Ours, |r| r.client_cpu)),
        );
    }
}

/// A measurement on the one-caller runtime, and where its result goes.
type OneCallerJob = (
    Pattern,
    [Side; 2],
    bool,
    std::sync::mpsc::Sender<BTreeMap<Side, Run>>,
);

/// The one-caller runtime on a thread of its own, always inside `block_on` like an
/// application's: between passes the client's background tasks keep running, so a pass never
/// starts on a connection that sat undriven through the 64-task passes.
fn one_caller_runtime(url: String) -> tokio::sync::mpsc::UnboundedSender<OneCallerJob> {
    let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<OneCallerJob>();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        support::runtime().block_on(async move {
            let shared = Shared::new(&url).await;
            ready_tx.send(()).unwrap();
            while let Some((pattern, order, breakdown, reply)) = rx.recv().await {
                let measured = measure(&shared, pattern, Mode::OneCaller, order, breakdown).await;
                reply.send(measured).unwrap();
            }
        })
    });
    ready.recv().expect("one-caller runtime set up");
    jobs
}

fn main() {
    let runs = runs();
    let url = server().url();
    let multi = multi_thread_runtime();
    let on_multi = multi.block_on(Shared::new(&url));
    let one_caller = one_caller_runtime(url);
    let workers = multi.metrics().num_workers();
    eprintln!(
        "throughput: {runs} runs, {} ms per pass, 64 tasks on {workers} workers; \
         server commands per call of the first run:",
        pass_length().as_millis()
    );
    let mut results = Results::new();
    let mut turn = 0;
    // `ONLY=gcra` (a part of a pattern's name) measures those patterns only.
    let only = std::env::var("ONLY").unwrap_or_default();
    let patterns: Vec<Pattern> = Pattern::all()
        .into_iter()
        .filter(|p| p.name().contains(only.as_str()))
        .collect();
    for run in 0..runs {
        for &pattern in &patterns {
            for mode in [Mode::OneCaller, Mode::Distinct, Mode::Hot] {
                // Alternated, so that neither side always goes first.
                turn += 1;
                let order = if turn % 2 == 0 {
                    [Side::Baseline, Side::Ours]
                } else {
                    [Side::Ours, Side::Baseline]
                };
                let measured = if mode == Mode::OneCaller {
                    let (reply, measured) = std::sync::mpsc::channel();
                    one_caller
                        .send((pattern, order, run == 0, reply))
                        .expect("one-caller runtime alive");
                    measured.recv().expect("one-caller measurement")
                } else {
                    multi.block_on(measure(&on_multi, pattern, mode, order, run == 0))
                };
                for (side, r) in measured {
                    eprintln!(
                        "run {run}: {} {side:?}, {}: {} p50 {} p99 {} cmds/call {:.2} \
                         server CPU {:.1} µs/call client CPU {:.1} µs/call",
                        pattern.name(),
                        mode.name(),
                        fmt_rate(r.calls_per_s),
                        fmt_us(r.p50),
                        fmt_us(r.p99),
                        r.commands_per_call,
                        r.server_cpu,
                        r.client_cpu,
                    );
                    results.entry((pattern, mode, side)).or_default().push(r);
                }
            }
        }
    }
    print_tables(&results, &patterns, runs, workers);
}
