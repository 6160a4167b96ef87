//! Counters of rate limit decisions, per limiter and per `#[rate_limited]` template.

use crate::util::counters::{Events, Registered, Registry};
use crate::util::observe::Metric;

/// A snapshot of rate limit counters: per [`RateLimiter`](super::RateLimiter)
/// ([`RateLimiter::stats`](super::RateLimiter::stats)) or per `#[rate_limited]` key template
/// ([`stats_by_template`]).
///
/// ```
/// use std::time::Duration;
/// let limiter = redis_patterns::rate_limit::RateLimiter::fixed_window(10, Duration::from_secs(1));
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

/// What rate limiting counts.
#[derive(Clone, Copy)]
#[doc(hidden)]
pub enum Event {
    Allowed,
    Denied,
    BackendError,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &TEMPLATES;
    type Stats = RateLimitStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[Event::Allowed, Event::Denied, Event::BackendError];
    const PATTERN: &'static str = "rate_limit";
    const TEMPLATE_LABEL: &'static str = "limiter";

    /// Decisions are reported with their reason where they are made
    /// (`rate_limit_decisions_total`, in `mod.rs`); backend failures here.
    fn metric(self) -> Option<Metric> {
        match self {
            Event::Allowed | Event::Denied => None,
            Event::BackendError => Some(Metric::new("rate_limit_errors_total")),
        }
    }

    fn stats(count: impl Fn(Self) -> u64) -> RateLimitStats {
        RateLimitStats {
            allowed: count(Event::Allowed),
            denied: count(Event::Denied),
            backend_errors: count(Event::BackendError),
        }
    }
}

/// Live counters of a limiter and its clones.
pub(crate) type Counters = crate::util::counters::Counters<Event>;

static TEMPLATES: Registry<Event> = Registry::new();

/// Counters of one `#[rate_limited]` attribute.
pub(crate) type TemplateCounters = Registered<Event>;

/// Counters of every `#[rate_limited]` attribute used so far in this process, by key template
/// (e.g. `"api:<user_id>"`), across all clients. Attributes with the same template add up.
///
/// ```
/// for (template, stats) in redis_patterns::rate_limit::stats_by_template() {
///     println!("{template}: {} allowed, {} denied", stats.allowed, stats.denied);
/// }
/// ```
pub fn stats_by_template() -> Vec<(&'static str, RateLimitStats)> {
    TEMPLATES.snapshots()
}
