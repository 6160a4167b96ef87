//! The five algorithms, each twice: a Lua script for Redis (`src/scripts/rate_limit_*.lua`,
//! one atomic round trip per decision, on the server's `TIME`) and the same steps in Rust for
//! `mem://` (under the shard lock of the key's hash tag, on the store's clock). The two are
//! kept line for line alike; the integration tests run every behaviour on both.

use std::collections::VecDeque;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, ScriptInvocation};

use crate::backend::{Backend, Txn};
use crate::error::{Error, Result};

use super::Decision;

/// How a [`RateLimiter`](super::RateLimiter) counts.
///
/// ```
/// use redis_patterns::{Algorithm, RateLimiter};
/// use std::time::Duration;
///
/// let limiter = RateLimiter::gcra(100, Duration::from_secs(60), 10);
/// assert_eq!(limiter.algorithm(), Algorithm::Gcra);
/// assert_eq!(Algorithm::Gcra.to_string(), "gcra");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// A counter per window of the clock; at most `limit` per window, but up to twice that
    /// across a window edge.
    FixedWindow,
    /// An exact log of admitted units: never more than `limit` in any interval of `window`.
    SlidingWindow,
    /// The current window's counter plus the previous one's, weighted by overlap: close to a
    /// sliding window in O(1) memory.
    SlidingWindowCounter,
    /// A bucket of `burst` tokens refilled at `limit` per `window`.
    TokenBucket,
    /// The generic cell rate algorithm (as redis-cell's `CL.THROTTLE`): `limit` per `window`
    /// evenly spaced, with up to `burst` at once.
    Gcra,
}

impl Algorithm {
    /// The name used in attributes (`algorithm = "token_bucket"`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::SlidingWindow => "sliding_window",
            Algorithm::SlidingWindowCounter => "sliding_window_counter",
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::Gcra => "gcra",
        }
    }

    /// Whether `burst` applies.
    pub fn has_burst(self) -> bool {
        matches!(self, Algorithm::TokenBucket | Algorithm::Gcra)
    }

    /// The suffix of this algorithm's key, after the hash tag.
    fn suffix(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "fw",
            Algorithm::SlidingWindow => "sw",
            Algorithm::SlidingWindowCounter => "swc",
            Algorithm::TokenBucket => "tb",
            Algorithm::Gcra => "gcra",
        }
    }

    fn script(self) -> &'static Script {
        static FIXED_WINDOW: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("../scripts/rate_limit_fixed_window.lua")));
        static SLIDING_WINDOW: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("../scripts/rate_limit_sliding_window.lua")));
        static SLIDING_WINDOW_COUNTER: LazyLock<Script> = LazyLock::new(|| {
            Script::new(include_str!(
                "../scripts/rate_limit_sliding_window_counter.lua"
            ))
        });
        static TOKEN_BUCKET: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("../scripts/rate_limit_token_bucket.lua")));
        static GCRA: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("../scripts/rate_limit_gcra.lua")));
        match self {
            Algorithm::FixedWindow => &FIXED_WINDOW,
            Algorithm::SlidingWindow => &SLIDING_WINDOW,
            Algorithm::SlidingWindowCounter => &SLIDING_WINDOW_COUNTER,
            Algorithm::TokenBucket => &TOKEN_BUCKET,
            Algorithm::Gcra => &GCRA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest `limit`, `burst` and (effectively) `cost`: far beyond any real limit, small
/// enough that sums of units never overflow and Lua's doubles hold them exactly.
pub(crate) const MAX_UNITS: u64 = 1 << 40;

/// The longest window, about 35 years in microseconds: below 2^53, so Lua's doubles and the
/// server clock arithmetic stay exact.
pub(crate) const MAX_WINDOW_US: u64 = 1 << 50;

/// One limit, fully resolved: what the scripts are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub algorithm: Algorithm,
    pub limit: u64,
    /// At least 1.
    pub window_us: u64,
    /// Capacity of `token_bucket` and `gcra`.
    pub burst: u64,
}

impl Policy {
    /// Limits and windows beyond [`MAX_UNITS`] and [`MAX_WINDOW_US`] are clamped to them.
    pub(crate) fn new(algorithm: Algorithm, limit: u64, window: Duration, burst: u64) -> Self {
        Policy {
            algorithm,
            limit: limit.min(MAX_UNITS),
            window_us: u64::try_from(window.as_micros())
                .unwrap_or(u64::MAX)
                .clamp(1, MAX_WINDOW_US),
            burst: burst.min(MAX_UNITS),
        }
    }

    pub(crate) fn window(&self) -> Duration {
        Duration::from_micros(self.window_us)
    }

    /// Microseconds per unit for `token_bucket` and `gcra`: `window / limit`, rounded to a
    /// whole microsecond so that both backends count in exact integers.
    fn interval_us(&self) -> u64 {
        if self.limit == 0 {
            return self.window_us;
        }
        ((self.window_us + self.limit / 2) / self.limit).max(1)
    }

    /// The key this policy's state lives under: `ns:{template}:<alg>:<window>`. The window is
    /// part of it so that stacked limits on one template (10 per second and 1000 per hour)
    /// keep separate state; the limit is not, so a limit computed per call shares its state.
    pub(crate) fn state_key(&self, base: &str) -> String {
        let mut key = String::with_capacity(base.len() + 24);
        key.push_str(base);
        key.push(':');
        key.push_str(self.algorithm.suffix());
        key.push(':');
        if self.window_us.is_multiple_of(1000) {
            key.push_str(itoa::Buffer::new().format(self.window_us / 1000));
        } else {
            key.push_str(itoa::Buffer::new().format(self.window_us));
            key.push_str("us");
        }
        key
    }

    /// A call of this algorithm's script: `KEYS = [key]`, `ARGV = [op, limit or burst,
    /// window or interval, cost, nonce or stamp]`.
    fn invocation(&self, key: &str, op: &str, cost: u64, last: u64) -> ScriptInvocation<'static> {
        let (a, b) = if self.algorithm.has_burst() {
            (self.burst, self.interval_us())
        } else {
            (self.limit, self.window_us)
        };
        let mut invocation = self.algorithm.script().prepare_invoke();
        invocation
            .key(key)
            .arg(op)
            .arg(a)
            .arg(b)
            .arg(cost)
            .arg(last);
        invocation
    }
}

/// What one take decided, and what a refund of it needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub decision: Decision,
    /// The window number for the window algorithms, the nonce for the sliding log.
    stamp: u64,
}

/// The raw reply of a take: `{allowed, limit, remaining, retry_after µs (-1: never),
/// reset_after µs, stamp, now µs}`.
type Raw = [i64; 7];

fn outcome(policy: &Policy, raw: Raw, nonce: u64) -> Outcome {
    let [allowed, limit, remaining, retry_us, reset_us, stamp, now_us] = raw;
    let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
    let retry_after = if retry_us < 0 {
        // A cost above the capacity is never admitted; a whole window is an honest "not soon".
        policy.window()
    } else {
        micros(retry_us)
    };
    Outcome {
        decision: Decision {
            allowed: allowed == 1,
            limit: u64::try_from(limit).unwrap_or(0),
            remaining: u64::try_from(remaining).unwrap_or(0),
            reset_after: micros(reset_us),
            retry_after: if allowed == 1 {
                Duration::ZERO
            } else {
                retry_after
            },
            at: micros(now_us),
        },
        stamp: if policy.algorithm == Algorithm::SlidingWindow {
            nonce
        } else {
            u64::try_from(stamp).unwrap_or(0)
        },
    }
}

/// Takes `cost` units of `policy` under `base` (`ns:{template}`), atomically.
pub(crate) async fn take(
    backend: &Backend,
    base: &str,
    policy: &Policy,
    cost: u64,
) -> Result<Outcome> {
    // A cost above every limit is denied as "never fits" whatever its size; clamping it keeps
    // the arithmetic in range on both backends.
    let cost = cost.min(MAX_UNITS + 1);
    let key = policy.state_key(base);
    let nonce = fastrand::u64(..);
    match backend {
        Backend::Redis(r) => {
            let invocation = policy.invocation(&key, "take", cost, nonce);
            let reply: Vec<i64> = r.invoke(&invocation).await?;
            let raw: Raw = reply.try_into().map_err(|_| {
                Error::Redis(redis::RedisError::from((
                    redis::ErrorKind::Parse,
                    "unexpected reply from a rate limit script",
                )))
            })?;
            Ok(outcome(policy, raw, nonce))
        }
        Backend::Memory(m) => Ok(outcome(
            policy,
            m.atomically(&key, |txn| memory::take(txn, &key, policy, cost, nonce)),
            nonce,
        )),
        Backend::Unusable(why) => Err(Backend::unusable(why)),
    }
}

/// Gives back the units `taken` took, as far as they are still counted.
pub(crate) async fn refund(
    backend: &Backend,
    base: &str,
    policy: &Policy,
    cost: u64,
    taken: &Outcome,
) -> Result<()> {
    let cost = cost.min(MAX_UNITS + 1);
    let key = policy.state_key(base);
    match backend {
        Backend::Redis(r) => {
            let invocation = policy.invocation(&key, "refund", cost, taken.stamp);
            r.invoke::<i64>(&invocation).await.map(drop)
        }
        Backend::Memory(m) => {
            m.atomically(&key, |txn| {
                memory::refund(txn, &key, policy, cost, taken.stamp)
            });
            Ok(())
        }
        Backend::Unusable(why) => Err(Backend::unusable(why)),
    }
}

/// The `mem://` versions of the scripts, step for step.
mod memory {
    use super::*;

    #[derive(Default)]
    struct FixedWindow {
        window: u64,
        count: u64,
    }

    /// One entry per admitted unit: (admission time µs, nonce of its call).
    #[derive(Default)]
    struct Log(VecDeque<(u64, u64)>);

    #[derive(Default)]
    struct WindowCounter {
        window: u64,
        count: u64,
        previous: u64,
    }

    /// `None` when missing: a full bucket.
    #[derive(Default)]
    struct Bucket(Option<(u64, u64)>);

    /// The theoretical arrival time; `None` when missing.
    #[derive(Default)]
    struct Tat(Option<u64>);

    fn micros(d: Duration) -> u64 {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
    }

    fn ceil_ms(us: u64) -> Duration {
        Duration::from_millis(us.div_ceil(1000).max(1))
    }

    fn signed(x: u64) -> i64 {
        i64::try_from(x).unwrap_or(i64::MAX)
    }

    pub(super) fn take(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, nonce: u64) -> Raw {
        let now = micros(txn.clock());
        match p.algorithm {
            Algorithm::FixedWindow => fixed_window(txn, key, p, cost, now),
            Algorithm::SlidingWindow => sliding_window(txn, key, p, cost, nonce, now),
            Algorithm::SlidingWindowCounter => sliding_window_counter(txn, key, p, cost, now),
            Algorithm::TokenBucket => token_bucket(txn, key, p, cost, now),
            Algorithm::Gcra => gcra(txn, key, p, cost, now),
        }
    }

    pub(super) fn refund(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, stamp: u64) {
        // Every state here carries a TTL, so none means there is nothing left to give back
        // (and asking for the state would create an empty one).
        if txn.pttl(key).is_none() {
            return;
        }
        let now = micros(txn.clock());
        match p.algorithm {
            Algorithm::FixedWindow => {
                let state = txn.state::<FixedWindow>(key);
                if state.window == stamp {
                    state.count = state.count.saturating_sub(cost);
                }
            }
            Algorithm::SlidingWindow => {
                let log = txn.state::<Log>(key);
                let mut left = cost;
                log.0.retain(|&(_, n)| {
                    let ours = n == stamp && left > 0;
                    left -= u64::from(ours);
                    !ours
                });
            }
            Algorithm::SlidingWindowCounter => {
                let state = txn.state::<WindowCounter>(key);
                if state.window == stamp {
                    state.count = state.count.saturating_sub(cost);
                } else if state.window == stamp + 1 {
                    state.previous = state.previous.saturating_sub(cost);
                }
            }
            Algorithm::TokenBucket => {
                let state = txn.state::<Bucket>(key);
                let (tokens, since) = refill(state, p, now);
                let tokens = (tokens + cost).min(p.burst);
                if tokens >= p.burst {
                    txn.del(key);
                } else {
                    state.0 = Some((tokens, since));
                    let reset = (p.burst - tokens)
                        .saturating_mul(p.interval_us())
                        .saturating_sub(now - since);
                    txn.expire(key, ceil_ms(reset));
                }
            }
            Algorithm::Gcra => {
                let state = txn.state::<Tat>(key);
                let tat = state.0.unwrap_or(now).max(now);
                let tat = tat
                    .saturating_sub(cost.saturating_mul(p.interval_us()))
                    .max(now);
                if tat > now {
                    state.0 = Some(tat);
                    txn.expire(key, ceil_ms(tat - now));
                } else {
                    txn.del(key);
                }
            }
        }
    }

    /// The bucket brought up to `now`: whole tokens gained since the last count, and the time
    /// up to which they are counted.
    fn refill(state: &Bucket, p: &Policy, now: u64) -> (u64, u64) {
        let (burst, interval) = (p.burst, p.interval_us());
        let (tokens, since) = match state.0 {
            None => (burst, now),
            Some((tokens, since)) if now > since => {
                let gained = (now - since) / interval;
                (tokens + gained, since + gained * interval)
            }
            Some(stored) => stored,
        };
        if tokens >= burst {
            (burst, now)
        } else {
            (tokens, since)
        }
    }

    fn fixed_window(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, now: u64) -> Raw {
        let (limit, window) = (p.limit, p.window_us);
        let current = now / window;
        let state = txn.state::<FixedWindow>(key);
        let mut count = if state.window == current {
            state.count
        } else {
            0
        };
        let reset_after = (current + 1) * window - now;
        let (mut allowed, mut retry_after) = (0, 0);
        if count + cost <= limit {
            allowed = 1;
            count += cost;
            *state = FixedWindow {
                window: current,
                count,
            };
        } else if cost > limit {
            retry_after = -1;
        } else {
            retry_after = signed(reset_after);
        }
        // A fresh state created by this read expires with its window too.
        txn.expire(key, ceil_ms(reset_after));
        [
            allowed,
            signed(limit),
            signed(limit.saturating_sub(count)),
            retry_after,
            signed(reset_after),
            signed(current),
            signed(now),
        ]
    }

    fn sliding_window(
        txn: &mut Txn<'_>,
        key: &str,
        p: &Policy,
        cost: u64,
        nonce: u64,
        now: u64,
    ) -> Raw {
        let (limit, window) = (p.limit, p.window_us);
        let log = &mut txn.state::<Log>(key).0;
        while log.front().is_some_and(|&(at, _)| at + window <= now) {
            log.pop_front();
        }
        let mut count = log.len() as u64;
        let (mut allowed, mut retry_after) = (0, 0);
        if count + cost <= limit {
            allowed = 1;
            log.extend((0..cost).map(|_| (now, nonce)));
            count += cost;
        } else if cost > limit {
            retry_after = -1;
        } else {
            let k = count + cost - limit;
            let (at, _) = log[usize::try_from(k - 1).unwrap_or(usize::MAX)];
            retry_after = signed(at + window - now);
        }
        let reset_after = log.back().map_or(0, |&(at, _)| at + window - now);
        if log.is_empty() {
            txn.del(key);
        } else {
            txn.expire(key, ceil_ms(reset_after));
        }
        [
            allowed,
            signed(limit),
            signed(limit.saturating_sub(count)),
            retry_after,
            signed(reset_after),
            0,
            signed(now),
        ]
    }

    fn sliding_window_counter(
        txn: &mut Txn<'_>,
        key: &str,
        p: &Policy,
        cost: u64,
        now: u64,
    ) -> Raw {
        let (limit, window) = (p.limit, p.window_us);
        let current = now / window;
        let elapsed = now - current * window;
        let state = txn.state::<WindowCounter>(key);
        let (mut count, mut previous) = (0, 0);
        if state.window == current {
            (count, previous) = (state.count, state.previous);
        } else if state.window + 1 == current {
            previous = state.count;
        }
        let weight = (window - elapsed) as f64 / window as f64;
        let (mut allowed, mut retry_after) = (0, 0);
        let (limit_f, cost_f, window_f, elapsed_f) =
            (limit as f64, cost as f64, window as f64, elapsed as f64);
        if previous as f64 * weight + count as f64 + cost_f <= limit_f {
            allowed = 1;
            count += cost;
            *state = WindowCounter {
                window: current,
                count,
                previous,
            };
        } else if cost > limit {
            retry_after = -1;
        } else {
            let room = limit_f - cost_f - count as f64;
            retry_after = if room >= 0.0 {
                (window_f - elapsed_f - room * window_f / previous as f64).ceil() as i64
            } else {
                (window_f - elapsed_f
                    + (window_f - (limit_f - cost_f) * window_f / count as f64).max(0.0))
                .ceil() as i64
            };
        }
        let reset_after = if count > 0 {
            2 * window - elapsed
        } else if previous > 0 {
            window - elapsed
        } else {
            0
        };
        if reset_after == 0 {
            txn.del(key);
        } else {
            txn.expire(key, ceil_ms(2 * window - elapsed));
        }
        let remaining = (limit_f - previous as f64 * weight - count as f64)
            .floor()
            .max(0.0);
        [
            allowed,
            signed(limit),
            remaining as i64,
            retry_after,
            signed(reset_after),
            signed(current),
            signed(now),
        ]
    }

    fn token_bucket(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, now: u64) -> Raw {
        let (burst, interval) = (p.burst, p.interval_us());
        let state = txn.state::<Bucket>(key);
        let fresh = state.0.is_none();
        let (mut tokens, since) = refill(state, p, now);
        let (mut allowed, mut retry_after) = (0, 0);
        if tokens >= cost {
            allowed = 1;
            tokens -= cost;
        } else if cost > burst {
            retry_after = -1;
        } else {
            retry_after = signed(
                (cost - tokens)
                    .saturating_mul(interval)
                    .saturating_sub(now - since),
            );
        }
        let reset_after = (burst - tokens)
            .saturating_mul(interval)
            .saturating_sub(now - since);
        if allowed == 1 && reset_after > 0 {
            state.0 = Some((tokens, since));
            txn.expire(key, ceil_ms(reset_after));
        } else if allowed == 1 || fresh {
            // Full again, or only this read created it: a missing bucket is a full one.
            txn.del(key);
        }
        [
            allowed,
            signed(burst),
            signed(tokens),
            retry_after,
            signed(reset_after),
            0,
            signed(now),
        ]
    }

    fn gcra(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, now: u64) -> Raw {
        let (burst, interval) = (p.burst, p.interval_us());
        let state = txn.state::<Tat>(key);
        let stored = state.0;
        let tat = stored.unwrap_or(now).max(now);
        let tolerance = interval.saturating_mul(burst);
        let increment = cost.saturating_mul(interval);
        let new_tat = tat.saturating_add(increment);
        let (allowed, retry_after, ttl);
        if new_tat <= now.saturating_add(tolerance) {
            allowed = 1;
            retry_after = 0;
            ttl = new_tat - now;
            if ttl > 0 {
                state.0 = Some(new_tat);
                txn.expire(key, ceil_ms(ttl));
            } else if stored.is_none() {
                txn.del(key);
            }
        } else {
            allowed = 0;
            ttl = tat - now;
            retry_after = if increment <= tolerance {
                signed(new_tat - tolerance - now)
            } else {
                -1
            };
            if stored.is_none() {
                txn.del(key);
            }
        }
        let remaining = tolerance.saturating_sub(ttl) / interval;
        [
            allowed,
            signed(burst),
            signed(remaining),
            retry_after,
            signed(ttl),
            0,
            signed(now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_keep_the_hash_tag_and_separate_windows() {
        let p = Policy::new(Algorithm::SlidingWindow, 10, Duration::from_secs(1), 10);
        assert_eq!(p.state_key("ns:{api:alice}"), "ns:{api:alice}:sw:1000");
        let q = Policy::new(
            Algorithm::SlidingWindow,
            10,
            Duration::from_micros(1500),
            10,
        );
        assert_eq!(q.state_key("{x}"), "{x}:sw:1500us");
        assert_eq!(
            crate::backend::hash_tag(&p.state_key("ns:{api:alice}")),
            "api:alice"
        );
    }

    #[test]
    fn intervals_are_whole_microseconds() {
        let p = Policy::new(Algorithm::Gcra, 7, Duration::from_secs(60), 1);
        assert_eq!(p.interval_us(), 8_571_429);
        let zero = Policy::new(Algorithm::Gcra, 0, Duration::from_secs(1), 1);
        assert_eq!(zero.interval_us(), 1_000_000);
    }
}
