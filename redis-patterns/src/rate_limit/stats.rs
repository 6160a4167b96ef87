//! Counters of rate limit decisions, per limiter and per `#[rate_limited]` template.

use crate::stats::{Registered, Registry, Tally};

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

const EVENTS: usize = 3;

/// Live counters of a limiter.
#[doc(hidden)]
pub struct Counters(Tally<EVENTS>);

impl Counters {
    pub(crate) const fn new() -> Self {
        Counters(Tally::new())
    }

    pub(crate) fn count(&self, event: Event) {
        self.0.add(event as usize);
    }

    pub(crate) fn snapshot(&self) -> RateLimitStats {
        snapshot(&|event| self.0.get(event))
    }
}

fn snapshot(count: &dyn Fn(usize) -> u64) -> RateLimitStats {
    let get = |e: Event| count(e as usize);
    RateLimitStats {
        allowed: get(Event::Allowed),
        denied: get(Event::Denied),
        backend_errors: get(Event::BackendError),
    }
}

static TEMPLATES: Registry<EVENTS> = Registry::new();

/// Counters of one `#[rate_limited]` attribute.
#[doc(hidden)]
pub struct TemplateCounters(Registered<EVENTS>);

impl TemplateCounters {
    pub const fn new(name: &'static str) -> Self {
        TemplateCounters(Registered::new(name, &TEMPLATES))
    }

    pub(crate) fn name(&self) -> &'static str {
        self.0.name()
    }

    pub(crate) fn count(&'static self, event: Event) {
        self.0.add(event as usize);
    }
}

/// Counters of every `#[rate_limited]` attribute used so far in this process, by key template
/// (e.g. `"api:<user_id>"`), across all clients. Attributes with the same template add up.
///
/// ```
/// for (template, stats) in redis_patterns::rate_limit_stats() {
///     println!("{template}: {} allowed, {} denied", stats.allowed, stats.denied);
/// }
/// ```
pub fn rate_limit_stats() -> Vec<(&'static str, RateLimitStats)> {
    TEMPLATES.snapshots(snapshot)
}
