//! The five algorithms and a limit's resolved policy: clamped limits and windows, the key of
//! its state, and the decision read from a script's reply. The atomic steps themselves are in
//! `ops.rs` (scripts `scripts/rate_limit/*.lua` and their twins in `ops/memory.rs`).

use std::fmt;
use std::time::Duration;

use super::Decision;

/// How a [`RateLimiter`](super::RateLimiter) counts.
///
/// ```
/// use redis_patterns::rate_limit::{Algorithm, RateLimiter};
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
    /// An exact log of admitted calls (one entry per call, carrying its cost): never more
    /// than `limit` units in any interval of `window`.
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
    pub(super) fn suffix(self) -> &'static str {
        match self {
            // `fw2`: a counter that expires with its window (`fw` was a hash {w, n}).
            Algorithm::FixedWindow => "fw2",
            // `sw2`: one member per call (`sw` held one per unit); during a rolling upgrade the
            // two formats keep apart instead of misreading each other's members.
            Algorithm::SlidingWindow => "sw2",
            Algorithm::SlidingWindowCounter => "swc",
            // `tb2`: the time the bucket is full again (`tb` was a hash {t, s}).
            Algorithm::TokenBucket => "tb2",
            Algorithm::Gcra => "gcra",
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

/// The longest time a `token_bucket` or `gcra` takes to refill its whole capacity
/// (`burst × window / limit`), about 71 years: every time their scripts compute, the server
/// clock included, then stays below 2^53. A `burst` beyond it could never be refilled anyway.
pub(crate) const MAX_REFILL_US: u64 = 1 << 51;

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
    /// Limits and windows beyond [`MAX_UNITS`] and [`MAX_WINDOW_US`] are clamped to them, a
    /// window shorter than a microsecond is one microsecond, and the capacity of
    /// `token_bucket` and `gcra` is at most what refills in [`MAX_REFILL_US`].
    pub(crate) fn new(algorithm: Algorithm, limit: u64, window: Duration, burst: u64) -> Self {
        let mut policy = Policy {
            algorithm,
            limit: limit.min(MAX_UNITS),
            window_us: crate::util::whole_micros(window).clamp(1, MAX_WINDOW_US),
            burst: burst.min(MAX_UNITS),
        };
        if algorithm.has_burst() {
            // `interval_us` is at least 1, so this cannot divide by zero.
            let refillable = (MAX_REFILL_US / policy.interval_us()).max(1);
            policy.burst = policy.burst.min(refillable);
        }
        policy
    }

    /// What `Decision::limit` reports and the scripts' `ARGV[2]`: the capacity (`burst`) of
    /// `token_bucket` and `gcra`, the limit per window of the others.
    pub(super) fn capacity(&self) -> u64 {
        if self.algorithm.has_burst() {
            self.burst
        } else {
            self.limit
        }
    }

    pub(crate) fn window(&self) -> Duration {
        Duration::from_micros(self.window_us)
    }

    /// Microseconds per unit for `token_bucket` and `gcra`: `window / limit`, rounded to a
    /// whole microsecond so that both backends count in exact integers.
    pub(super) fn interval_us(&self) -> u64 {
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
}

/// What one take decided, and what a refund of it needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub decision: Decision,
    /// The window number for the window algorithms, the admission time of the call for the
    /// sliding log: what identifies the units taken.
    pub(super) stamp: u64,
}

/// The raw reply of a take: `{allowed, remaining, retry_after µs (-1: never), reset_after µs,
/// stamp, now µs}` (the limit is the caller's own).
pub(super) type Raw = [i64; 6];

/// The raw reply of a fixed-window take from the three integers its script returns (`{allowed,
/// units counted, now µs}`): the rest follows from the caller's own limit, window and cost,
/// and the server's script saves that much work on the hottest path. `mem://` answers through
/// here too.
pub(super) fn fixed_window_raw(
    policy: &Policy,
    cost: u64,
    allowed: bool,
    count: u64,
    now: u64,
) -> Raw {
    let signed = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    // `window_us` is at least 1 (`Policy::new` clamps it).
    let window = policy.window_us.max(1);
    let reset_after = window - now % window;
    let retry_after = if allowed {
        0
    } else if cost > policy.limit {
        -1
    } else {
        signed(reset_after)
    };
    [
        i64::from(allowed),
        signed(policy.limit.saturating_sub(count)),
        retry_after,
        signed(reset_after),
        signed(now / window),
        signed(now),
    ]
}

pub(super) fn outcome(policy: &Policy, raw: Raw) -> Outcome {
    let [allowed, remaining, retry_us, reset_us, stamp, now_us] = raw;
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
            limit: policy.capacity(),
            remaining: u64::try_from(remaining).unwrap_or(0),
            reset_after: micros(reset_us),
            retry_after: if allowed == 1 {
                Duration::ZERO
            } else {
                retry_after
            },
            at: micros(now_us),
        },
        stamp: u64::try_from(stamp).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_keep_the_hash_tag_and_separate_windows() {
        let p = Policy::new(Algorithm::SlidingWindow, 10, Duration::from_secs(1), 10);
        assert_eq!(p.state_key("ns:{api:alice}"), "ns:{api:alice}:sw2:1000");
        let q = Policy::new(
            Algorithm::SlidingWindow,
            10,
            Duration::from_micros(1500),
            10,
        );
        assert_eq!(q.state_key("{x}"), "{x}:sw2:1500us");
        assert_eq!(
            crate::backend::hash_tag(&p.state_key("ns:{api:alice}")),
            "api:alice"
        );
    }

    #[test]
    fn token_bucket_and_gcra_capacity_is_what_refills_in_71_years() {
        let p = Policy::new(Algorithm::Gcra, 1, Duration::MAX, u64::MAX);
        assert_eq!(
            (p.window_us, p.interval_us()),
            (MAX_WINDOW_US, MAX_WINDOW_US)
        );
        assert_eq!(p.burst, 2);
        let q = Policy::new(Algorithm::TokenBucket, u64::MAX, Duration::MAX, u64::MAX);
        assert_eq!(q.burst, MAX_UNITS);
        let r = Policy::new(Algorithm::TokenBucket, 1, Duration::from_secs(1), 0);
        assert_eq!(r.burst, 0, "a zero capacity stays zero");
        for p in [p, q, r] {
            assert!(p.burst * p.interval_us() <= MAX_REFILL_US);
        }
    }

    #[test]
    fn a_fixed_window_reply_of_three_integers_says_everything_a_decision_needs() {
        let p = Policy::new(Algorithm::FixedWindow, 10, Duration::from_secs(1), 10);
        // Admitted, 7 counted, 250 ms into window 5.
        let now = 5_250_000;
        assert_eq!(
            fixed_window_raw(&p, 2, true, 7, now),
            [1, 3, 0, 750_000, 5, now as i64]
        );
        // Denied: retry when the window resets; a count above the limit leaves nothing.
        assert_eq!(
            fixed_window_raw(&p, 2, false, 12, now),
            [0, 0, 750_000, 750_000, 5, now as i64]
        );
        // A cost above the limit never fits.
        assert_eq!(fixed_window_raw(&p, 11, false, 4, now)[..3], [0, 6, -1]);
        // On a window's first microsecond, the whole window is left.
        assert_eq!(fixed_window_raw(&p, 1, true, 1, 6_000_000)[3], 1_000_000);
    }

    #[test]
    fn intervals_are_whole_microseconds() {
        let p = Policy::new(Algorithm::Gcra, 7, Duration::from_secs(60), 1);
        assert_eq!(p.interval_us(), 8_571_429);
        let zero = Policy::new(Algorithm::Gcra, 0, Duration::from_secs(1), 1);
        assert_eq!(zero.interval_us(), 1_000_000);
    }
}
