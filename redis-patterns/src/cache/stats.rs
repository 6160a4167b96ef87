//! Counters of caching, per client ([`Client::cache_stats`](crate::Client::cache_stats)) and
//! per cached function ([`stats_by_function`]), on the crate's one counters mechanism.

use crate::util::counters::{Events, Registered, Registry};
use crate::util::observe::Metric;

/// A snapshot of cache counters, per client ([`Client::cache_stats`]) or per cached function
/// ([`stats_by_function`]).
///
/// ```
/// let client = redis_patterns::Client::new("mem://")?;
/// let stats = client.cache_stats();
/// assert_eq!(stats.hit_rate(), None); // no reads yet
/// # Ok::<(), redis_patterns::Error>(())
/// ```
///
/// [`Client::cache_stats`]: crate::Client::cache_stats
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered by Redis (or the `mem://` store), including followers served by an
    /// in-process leader's read.
    pub hits: u64,
    /// Reads that found nothing usable, so the function ran (or a lock holder's value was
    /// awaited).
    pub misses: u64,
    /// `near = "…"`: reads answered from process memory, without a round trip.
    pub near_hits: u64,
    /// `near = "…"`: reads the near tier could not answer, which went on to Redis (and are
    /// counted there as a hit or a miss).
    pub near_misses: u64,
    /// Stored values that could not be decoded (type changed, foreign data); counted as
    /// misses too and overwritten.
    pub undecodable: u64,
    /// Times the function body ran.
    pub computations: u64,
    /// Values written to the backend.
    pub writes: u64,
    /// Backend failures (unreachable, timeout, error) that the cache failed open on.
    pub backend_errors: u64,
    /// `stampede = "lock"`: misses that waited for another caller's lock.
    pub lock_waits: u64,
    /// `stampede = "lock"`: waits that ran out, after which the caller computed itself.
    pub lock_timeouts: u64,
    /// `stampede = "early"`: hits that chose to recompute before expiry (XFetch).
    pub early_recomputations: u64,
    /// Keys deleted by `#[cache_evict]` or an `_invalidate` companion.
    pub evictions: u64,
    /// Stored entries written for another version of the value type (`version = N`, or the
    /// default fingerprint); counted as misses too and overwritten.
    pub other_versions: u64,
    /// `stale_if_error`: stale values returned because the function failed or timed out.
    pub stale_on_error: u64,
    /// `stale_while_revalidate`: stale values returned at once while a background refresh ran.
    pub stale_while_revalidating: u64,
    /// `stale_while_revalidate`: background refreshes started (at most one per key at a time
    /// across processes).
    pub background_refreshes: u64,
}

impl CacheStats {
    /// Reads answered from either tier, over all reads: `(near_hits + hits) / (near_hits +
    /// hits + misses)`, or `None` before the first read. Below ~0.7 the TTL or the key is
    /// usually wrong.
    pub fn hit_rate(&self) -> Option<f64> {
        let hits = self.near_hits.saturating_add(self.hits);
        let reads = hits.saturating_add(self.misses);
        (reads > 0).then(|| hits as f64 / reads as f64)
    }

    /// `near = "…"`: the share of near-cached reads answered from process memory, or `None`
    /// before the first.
    pub fn near_hit_rate(&self) -> Option<f64> {
        let reads = self.near_hits.saturating_add(self.near_misses);
        (reads > 0).then(|| self.near_hits as f64 / reads as f64)
    }
}

/// What the cache counts.
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub enum Event {
    Hit,
    Miss,
    Undecodable,
    Computation,
    Write,
    BackendError,
    LockWait,
    LockTimeout,
    EarlyRecomputation,
    Eviction,
    NearHit,
    NearMiss,
    OtherVersion,
    StaleOnError,
    StaleWhileRevalidating,
    BackgroundRefresh,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &FUNCTIONS;
    type Stats = CacheStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[
        Event::Hit,
        Event::Miss,
        Event::Undecodable,
        Event::Computation,
        Event::Write,
        Event::BackendError,
        Event::LockWait,
        Event::LockTimeout,
        Event::EarlyRecomputation,
        Event::Eviction,
        Event::NearHit,
        Event::NearMiss,
        Event::OtherVersion,
        Event::StaleOnError,
        Event::StaleWhileRevalidating,
        Event::BackgroundRefresh,
    ];
    const PATTERN: &'static str = "cache";
    const TEMPLATE_LABEL: &'static str = "cache";

    /// The counter this event increments (README, "Observability"): gets by result and tier
    /// (`cache_gets_total`, as Micrometer and its Prometheus names have them), and one counter
    /// per other event.
    fn metric(self) -> Option<Metric> {
        const GETS: &str = "cache_gets_total";
        Some(match self {
            Event::Hit => Metric::with(GETS, &[("result", "hit"), ("tier", "remote")]),
            Event::Miss => Metric::with(GETS, &[("result", "miss"), ("tier", "remote")]),
            Event::NearHit => Metric::with(GETS, &[("result", "hit"), ("tier", "near")]),
            Event::NearMiss => Metric::with(GETS, &[("result", "miss"), ("tier", "near")]),
            Event::StaleWhileRevalidating => {
                Metric::with(GETS, &[("result", "stale"), ("tier", "remote")])
            }
            Event::StaleOnError => Metric::with("cache_stale_served_total", &[("reason", "error")]),
            Event::Undecodable => {
                Metric::with("cache_rejected_entries_total", &[("reason", "undecodable")])
            }
            Event::OtherVersion => Metric::with(
                "cache_rejected_entries_total",
                &[("reason", "other_version")],
            ),
            Event::Computation => Metric::new("cache_computations_total"),
            Event::Write => Metric::new("cache_puts_total"),
            Event::Eviction => Metric::new("cache_evictions_total"),
            Event::BackendError => Metric::new("cache_errors_total"),
            Event::LockWait => Metric::new("cache_stampede_waits_total"),
            Event::LockTimeout => Metric::new("cache_stampede_timeouts_total"),
            Event::EarlyRecomputation => Metric::new("cache_early_recomputations_total"),
            Event::BackgroundRefresh => Metric::new("cache_background_refreshes_total"),
        })
    }

    fn stats(count: impl Fn(Self) -> u64) -> CacheStats {
        CacheStats {
            hits: count(Event::Hit),
            misses: count(Event::Miss),
            undecodable: count(Event::Undecodable),
            computations: count(Event::Computation),
            writes: count(Event::Write),
            backend_errors: count(Event::BackendError),
            lock_waits: count(Event::LockWait),
            lock_timeouts: count(Event::LockTimeout),
            early_recomputations: count(Event::EarlyRecomputation),
            evictions: count(Event::Eviction),
            near_hits: count(Event::NearHit),
            near_misses: count(Event::NearMiss),
            other_versions: count(Event::OtherVersion),
            stale_on_error: count(Event::StaleOnError),
            stale_while_revalidating: count(Event::StaleWhileRevalidating),
            background_refreshes: count(Event::BackgroundRefresh),
        }
    }
}

impl Event {
    /// What this event says of a call's outcome, for its span's `outcome` field (the last one
    /// recorded wins: a miss that then served a stale value is `stale_on_error`).
    pub(crate) fn outcome(self) -> Option<&'static str> {
        match self {
            Event::Hit => Some("hit"),
            Event::Miss => Some("miss"),
            Event::NearHit => Some("near_hit"),
            Event::StaleWhileRevalidating => Some("stale"),
            Event::StaleOnError => Some("stale_on_error"),
            Event::BackendError => Some("backend_error"),
            _ => None,
        }
    }
}

static FUNCTIONS: Registry<Event> = Registry::new();

/// The counters of one cached function (and of the `#[cache_put]`/`#[cache_evict]`
/// attributes and companions under its template).
#[doc(hidden)]
pub type FunctionCounters = Registered<Event>;

/// Counters of every cached function used so far in this process, keyed by its key template
/// (e.g. `"product:<id>"`), across all clients. What `#[cache_put]`, `#[cache_evict]` and the
/// `_refresh` and `_invalidate` companions do under the same template is counted there too.
///
/// ```
/// for (template, stats) in redis_patterns::cache::stats_by_function() {
///     println!("{template}: hit rate {:?}", stats.hit_rate());
/// }
/// ```
pub fn stats_by_function() -> Vec<(&'static str, CacheStats)> {
    FUNCTIONS.snapshots()
}
