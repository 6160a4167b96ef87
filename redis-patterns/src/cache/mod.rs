//! Cache-aside with stampede protection: what `#[cached]`, `#[cache_evict]` and
//! `#[cache_put]` expand to.
//!
//! A call builds its key, then:
//! 1. joins the in-process flight for that key (one backend read and at most one computation
//!    per key at a time in this process);
//! 2. the flight's leader reads the backend; a decodable value is a hit (with
//!    `stampede = "early"`, XFetch may decide to recompute it ahead of expiry, keeping the
//!    flight open meanwhile so that it is the process's only recomputation);
//! 3. on a miss it computes the value — with `stampede = "lock"` only while holding a
//!    distributed lock, so that across processes one caller computes and the others wait for
//!    its value — and stores it with the TTL;
//! 4. any backend failure makes the call run the function and return its result (fail open).

mod attribute;
mod call;
#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod kind;
pub(crate) mod ops;

use std::time::Duration;

use crate::client::Client;
use crate::stats::{Event, FunctionCounters};

pub use self::attribute::{cached, evict, invalidate, put, refresh};
pub use self::kind::{
    CacheNone, Cacheable, ReturnKind, Select, SelectOption, SelectResult, SelectValue,
    check_cacheable,
};
pub(crate) use self::ops::Probe;

/// How a cache miss is protected against many callers computing the same value.
#[derive(Debug, Clone, Copy, PartialEq)]
#[doc(hidden)]
pub enum Stampede {
    /// In-process single-flight only.
    None,
    /// A distributed lock: one caller across all processes computes; the others wait up to
    /// `lock_wait` for its value, then compute themselves. A crashed holder's lock expires
    /// after `lock_ttl`.
    Lock {
        lock_ttl: Duration,
        lock_wait: Duration,
    },
    /// XFetch probabilistic early recomputation with parameter `beta`.
    Early { beta: f64 },
}

/// The static description of one cached function.
#[doc(hidden)]
pub struct CacheSpec {
    pub ttl: Duration,
    /// Extra random TTL, in thousandths of `ttl` (`"10%"` = 100).
    pub ttl_jitter_permille: u32,
    pub stampede: Stampede,
    pub counters: FunctionCounters,
}

impl CacheSpec {
    pub const fn new(
        name: &'static str,
        ttl: Duration,
        ttl_jitter_permille: u32,
        stampede: Stampede,
    ) -> Self {
        CacheSpec {
            ttl,
            ttl_jitter_permille,
            stampede,
            counters: FunctionCounters::new(name),
        }
    }

    fn name(&self) -> &'static str {
        self.counters.name()
    }

    fn ttl(&self) -> Duration {
        if self.ttl_jitter_permille == 0 {
            return self.ttl;
        }
        let max_extra = self
            .ttl
            .mul_f64(f64::from(self.ttl_jitter_permille) / 1000.0);
        self.ttl + max_extra.mul_f64(fastrand::f64())
    }

    fn count(&'static self, client: &Client, event: Event) {
        client.inner().counters.count(event);
        self.counters.count(event);
    }
}

#[cfg(test)]
mod tests {
    use super::call::xfetch_recompute;
    use super::*;
    use crate::envelope::Header;

    #[test]
    fn xfetch_never_recomputes_far_from_expiry_and_always_at_expiry() {
        let h = Header {
            delta_ms: 100,
            expires_ms: 1_000_000,
        };
        // Far from expiry: only an astronomically unlikely draw would trigger.
        assert!(!xfetch_recompute(h, 1.0, 900_000, 0.5));
        // At or after expiry: always.
        assert!(xfetch_recompute(h, 1.0, 1_000_000, 0.0));
        // Within a few deltas: with a draw close to 0 (ln -> -inf) it triggers.
        assert!(xfetch_recompute(h, 1.0, 999_800, 0.999));
        // A larger beta recomputes earlier.
        assert!(!xfetch_recompute(h, 1.0, 999_000, 0.9));
        assert!(xfetch_recompute(h, 10.0, 999_000, 0.9));
    }

    #[test]
    fn xfetch_probability_grows_toward_expiry() {
        let h = Header {
            delta_ms: 100,
            expires_ms: 10_000,
        };
        let rate = |now| {
            (0..10_000)
                .filter(|i| xfetch_recompute(h, 1.0, now, f64::from(*i) / 10_000.0))
                .count()
        };
        let (far, mid, near) = (rate(9_500), rate(9_850), rate(9_990));
        assert!(far < mid && mid < near, "{far} {mid} {near}");
    }

    #[test]
    fn ttl_jitter_stays_in_bounds() {
        let spec = CacheSpec::new("t", Duration::from_secs(100), 100, Stampede::None);
        for _ in 0..1000 {
            let ttl = spec.ttl();
            assert!(ttl >= Duration::from_secs(100) && ttl <= Duration::from_secs(110));
        }
    }
}
