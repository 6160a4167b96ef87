//! Cache-aside with stampede protection: the counters of `#[cached]`, `#[cache_evict]` and
//! `#[cache_put]` ([`CacheStats`], per client with
//! [`Client::cache_stats`](crate::Client::cache_stats) and per function with
//! [`stats_by_function`]). The attributes themselves are at the crate root
//! ([`cached`](crate::cached), [`cache_evict`](crate::cache_evict),
//! [`cache_put`](crate::cache_put)), with their option tables.
//!
//! How a call works: it builds its key, then
//! 1. joins the in-process flight for that key (one backend read and at most one computation
//!    per key at a time in this process);
//! 2. the flight's leader reads the backend; a decodable value is a hit (with
//!    `stampede = "early"`, XFetch may decide to recompute it ahead of expiry, keeping the
//!    flight open meanwhile so that it is the process's only recomputation);
//! 3. on a miss it computes the value — with `stampede = "lock"` only while holding a
//!    distributed lock, so that across processes one caller computes and the others wait for
//!    its value — and stores it with the TTL;
//! 4. any backend failure makes the call run the function and return its result (fail open).
//!
//! An entry written for another version of the value type (`version = N`, or the default
//! fingerprint) is a miss. With `stale_if_error` or `stale_while_revalidate`, an entry outlives
//! its TTL by the stale window, and a call that finds it stale either returns it at once and
//! refreshes it in the background, or recomputes it and returns it in place of a failure (see
//! `stale.rs`).

pub(crate) mod attribute;
mod call;
#[cfg(feature = "test-util")]
pub(crate) mod conformance;
pub(crate) mod kind;
pub(crate) mod near;
pub(crate) mod ops;
pub(crate) mod stale;
mod stampede;
pub(crate) mod stats;
pub(crate) mod tags;

pub use self::near::NearCache;
pub(crate) use self::stats::Event;
pub use self::stats::{CacheStats, stats_by_function};
pub use self::tags::invalidate_tag;
pub use crate::envelope::Codec;

/// Live cache counters of a client.
pub(crate) type Counters = crate::util::counters::Counters<Event>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::attribute::{CacheSpec, Stampede};
    use super::stampede::xfetch_recompute;
    use crate::envelope::Header;

    #[test]
    fn xfetch_never_recomputes_far_from_expiry_and_always_at_expiry() {
        let h = Header {
            delta_ms: 100,
            expires_ms: 1_000_000,
            codec: crate::cache::Codec::Json,
            flags: 0,
            schema: None,
            tags: 0,
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
            codec: crate::cache::Codec::Json,
            flags: 0,
            schema: None,
            tags: 0,
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
