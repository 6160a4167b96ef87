//! Counters of rate limit decisions, per limiter and per `#[rate_limited]` template.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A snapshot of rate limit counters: per [`RateLimiter`](crate::RateLimiter)
/// ([`RateLimiter::stats`](crate::RateLimiter::stats)) or per `#[rate_limited]` key template
/// ([`rate_limit_stats`]).
///
/// ```
/// use std::time::Duration;
/// let limiter = redis_patterns::RateLimiter::fixed_window(10, Duration::from_secs(1));
/// assert_eq!(limiter.stats().allowed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitStats {
    /// Calls admitted.
    pub allowed: u64,
    /// Calls denied because a limit was reached.
    pub denied: u64,
    /// Calls whose limit could not be checked (backend unreachable, slow or failing); they
    /// were admitted or denied by the `on_error` policy.
    pub backend_errors: u64,
}

#[derive(Clone, Copy)]
pub(crate) enum Event {
    Allowed,
    Denied,
    BackendError,
}

/// Live counters.
#[doc(hidden)]
#[derive(Default)]
pub struct Counters([AtomicU64; 3]);

impl Counters {
    pub(crate) const fn new() -> Self {
        Counters([const { AtomicU64::new(0) }; 3])
    }

    pub(crate) fn count(&self, event: Event) {
        self.0[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> RateLimitStats {
        let get = |e: Event| self.0[e as usize].load(Ordering::Relaxed);
        RateLimitStats {
            allowed: get(Event::Allowed),
            denied: get(Event::Denied),
            backend_errors: get(Event::BackendError),
        }
    }
}

/// Counters of one `#[rate_limited]` attribute, registered on first use so they can be listed.
#[doc(hidden)]
pub struct TemplateCounters {
    name: &'static str,
    counters: Counters,
    registered: AtomicBool,
}

static REGISTRY: Mutex<Vec<&'static TemplateCounters>> = Mutex::new(Vec::new());

impl TemplateCounters {
    pub const fn new(name: &'static str) -> Self {
        TemplateCounters {
            name,
            counters: Counters::new(),
            registered: AtomicBool::new(false),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

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

/// Counters of every `#[rate_limited]` attribute used so far in this process, by key template
/// (e.g. `"api:<user_id>"`), across all clients. Two attributes with the same template are
/// listed twice.
///
/// ```
/// for (template, stats) in redis_patterns::rate_limit_stats() {
///     println!("{template}: {} allowed, {} denied", stats.allowed, stats.denied);
/// }
/// ```
pub fn rate_limit_stats() -> Vec<(&'static str, RateLimitStats)> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .map(|t| (t.name, t.counters.snapshot()))
        .collect()
}
