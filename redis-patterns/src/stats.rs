//! Client-side counters: Redis's `INFO stats` only knows server-wide hits and misses, so
//! per-cache figures have to be counted here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A snapshot of cache counters, per client ([`Client::cache_stats`]) or per cached function
/// ([`cache_stats_by_function`]).
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
    /// Reads answered from the cache (including followers served by an in-process leader).
    pub hits: u64,
    /// Reads that found nothing usable, so the function ran (or a lock holder's value was
    /// awaited).
    pub misses: u64,
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
}

impl CacheStats {
    /// `hits / (hits + misses)`, or `None` before the first read. Below ~0.7 the TTL or the
    /// key is usually wrong.
    pub fn hit_rate(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
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
}

/// Live counters.
#[derive(Default)]
#[doc(hidden)]
pub struct Counters([AtomicU64; 10]);

impl Counters {
    pub(crate) const fn new() -> Self {
        Counters([const { AtomicU64::new(0) }; 10])
    }

    #[inline]
    pub(crate) fn count(&self, event: Event) {
        self.0[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let get = |e: Event| self.0[e as usize].load(Ordering::Relaxed);
        CacheStats {
            hits: get(Event::Hit),
            misses: get(Event::Miss),
            undecodable: get(Event::Undecodable),
            computations: get(Event::Computation),
            writes: get(Event::Write),
            backend_errors: get(Event::BackendError),
            lock_waits: get(Event::LockWait),
            lock_timeouts: get(Event::LockTimeout),
            early_recomputations: get(Event::EarlyRecomputation),
            evictions: get(Event::Eviction),
        }
    }
}

/// Per-function counters, registered on first use so they can be listed.
#[doc(hidden)]
pub struct FunctionCounters {
    pub(crate) name: &'static str,
    pub(crate) counters: Counters,
    registered: AtomicBool,
}

static REGISTRY: Mutex<Vec<&'static FunctionCounters>> = Mutex::new(Vec::new());

impl FunctionCounters {
    pub const fn new(name: &'static str) -> Self {
        FunctionCounters {
            name,
            counters: Counters::new(),
            registered: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn count(&'static self, event: Event) {
        if !self.registered.load(Ordering::Relaxed)
            && !self.registered.swap(true, Ordering::Relaxed)
        {
            REGISTRY
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(self);
        }
        self.counters.count(event);
    }
}

/// Counters of every cached function used so far in this process, keyed by its key template
/// (e.g. `"product:<id>"`), across all clients.
///
/// ```
/// for (template, stats) in redis_patterns::cache_stats_by_function() {
///     println!("{template}: hit rate {:?}", stats.hit_rate());
/// }
/// ```
pub fn cache_stats_by_function() -> Vec<(&'static str, CacheStats)> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .map(|f| (f.name, f.counters.snapshot()))
        .collect()
}
