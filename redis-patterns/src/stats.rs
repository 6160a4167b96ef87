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

/// One relaxed atomic per kind of event.
#[doc(hidden)]
pub struct Tally<const N: usize>([AtomicU64; N]);

impl<const N: usize> Tally<N> {
    pub(crate) const fn new() -> Self {
        Tally([const { AtomicU64::new(0) }; N])
    }

    #[inline]
    pub(crate) fn add(&self, event: usize) {
        self.0[event].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, event: usize) -> u64 {
        self.0[event].load(Ordering::Relaxed)
    }
}

/// The counters of one attribute (one `#[cached]` function, one `#[rate_limited]` template),
/// listed in its registry on first use.
#[doc(hidden)]
pub struct Registered<const N: usize> {
    name: &'static str,
    tally: Tally<N>,
    registered: AtomicBool,
    registry: &'static Registry<N>,
}

impl<const N: usize> Registered<N> {
    pub(crate) const fn new(name: &'static str, registry: &'static Registry<N>) -> Self {
        Registered {
            name,
            tally: Tally::new(),
            registered: AtomicBool::new(false),
            registry,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    #[inline]
    pub(crate) fn add(&'static self, event: usize) {
        if !self.registered.load(Ordering::Relaxed)
            && !self.registered.swap(true, Ordering::Relaxed)
        {
            crate::util::lock(&self.registry.0).push(self);
        }
        self.tally.add(event);
    }
}

/// Every [`Registered`] of one kind used so far.
#[doc(hidden)]
pub struct Registry<const N: usize>(Mutex<Vec<&'static Registered<N>>>);

impl<const N: usize> Registry<N> {
    pub(crate) const fn new() -> Self {
        Registry(Mutex::new(Vec::new()))
    }

    /// A snapshot per key template, in order of first use. Attributes sharing a template
    /// (`#[cached]`, its `_refresh` companion, `#[cache_put]`, `#[cache_evict]`) add up.
    pub(crate) fn snapshots<S>(
        &self,
        snapshot: impl Fn(&dyn Fn(usize) -> u64) -> S,
    ) -> Vec<(&'static str, S)> {
        let mut totals: Vec<(&'static str, [u64; N])> = Vec::new();
        for r in crate::util::lock(&self.0).iter() {
            let i = match totals.iter().position(|(name, _)| *name == r.name) {
                Some(i) => i,
                None => {
                    totals.push((r.name, [0; N]));
                    totals.len() - 1
                }
            };
            for (event, total) in totals[i].1.iter_mut().enumerate() {
                *total += r.tally.get(event);
            }
        }
        totals
            .into_iter()
            .map(|(name, counts)| (name, snapshot(&|event| counts[event])))
            .collect()
    }
}

const CACHE_EVENTS: usize = 10;

/// Live cache counters of a client.
#[doc(hidden)]
pub struct Counters(Tally<CACHE_EVENTS>);

impl Counters {
    pub(crate) const fn new() -> Self {
        Counters(Tally::new())
    }

    #[inline]
    pub(crate) fn count(&self, event: Event) {
        self.0.add(event as usize);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        snapshot(&|event| self.0.get(event))
    }
}

fn snapshot(count: &dyn Fn(usize) -> u64) -> CacheStats {
    let get = |e: Event| count(e as usize);
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

static FUNCTIONS: Registry<CACHE_EVENTS> = Registry::new();

/// Per-function cache counters.
#[doc(hidden)]
pub struct FunctionCounters(Registered<CACHE_EVENTS>);

impl FunctionCounters {
    pub const fn new(name: &'static str) -> Self {
        FunctionCounters(Registered::new(name, &FUNCTIONS))
    }

    pub(crate) fn name(&self) -> &'static str {
        self.0.name()
    }

    #[inline]
    pub(crate) fn count(&'static self, event: Event) {
        self.0.add(event as usize);
    }
}

/// Counters of every cached function used so far in this process, keyed by its key template
/// (e.g. `"product:<id>"`), across all clients. What `#[cache_put]`, `#[cache_evict]` and the
/// `_refresh` companion do under the same template is counted there too.
///
/// ```
/// for (template, stats) in redis_patterns::cache_stats_by_function() {
///     println!("{template}: hit rate {:?}", stats.hit_rate());
/// }
/// ```
pub fn cache_stats_by_function() -> Vec<(&'static str, CacheStats)> {
    FUNCTIONS.snapshots(snapshot)
}
