//! Counters of the counters: per counter object ([`Counter::stats`](super::Counter::stats) and
//! its siblings) and per `#[counted]` key template ([`stats_by_template`]), on the crate's one
//! counters mechanism.

use crate::util::counters::{Events, Registered, Registry};
use crate::util::observe::Metric;

/// A snapshot of a counter's activity: per [`Counter`](super::Counter),
/// [`WindowedCounter`](super::WindowedCounter) or [`UniqueCounter`](super::UniqueCounter)
/// (and its clones), or per `#[counted]` key template ([`stats_by_template`]).
///
/// ```
/// let views = redis_patterns::counter::WindowedCounter::daily(30);
/// assert_eq!(views.stats().increments, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CounterStats {
    /// Increments (and unique-counter additions) stored.
    pub increments: u64,
    /// Reads answered.
    pub reads: u64,
    /// Operations the backend failed (unreachable, slow or failing). For `#[counted]`, calls
    /// that ran uncounted (`on_error = "ignore"`) or failed (`on_error = "fail"`).
    pub backend_errors: u64,
}

/// What counters count.
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub enum Event {
    Incremented,
    Read,
    BackendError,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &TEMPLATES;
    type Stats = CounterStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[Event::Incremented, Event::Read, Event::BackendError];
    const PATTERN: &'static str = "counter";
    const TEMPLATE_LABEL: &'static str = "counter";

    /// The counter this event increments (README, "Observability").
    fn metric(self) -> Option<Metric> {
        match self {
            Event::Incremented => Some(Metric::new("counter_increments_total")),
            Event::Read => None,
            Event::BackendError => Some(Metric::new("counter_errors_total")),
        }
    }

    fn stats(count: impl Fn(Self) -> u64) -> CounterStats {
        CounterStats {
            increments: count(Event::Incremented),
            reads: count(Event::Read),
            backend_errors: count(Event::BackendError),
        }
    }
}

/// Live counters of one counter object and its clones.
pub(crate) type Counters = crate::util::counters::Counters<Event>;

static TEMPLATES: Registry<Event> = Registry::new();

/// Counters of one `#[counted]` attribute.
pub(crate) type TemplateCounters = Registered<Event>;

/// Counters of every `#[counted]` attribute used so far in this process, by key template
/// (e.g. `"views:<page>"`), across all clients.
///
/// ```
/// for (template, stats) in redis_patterns::counter::stats_by_template() {
///     println!("{template}: {} counted, {} uncounted", stats.increments, stats.backend_errors);
/// }
/// ```
pub fn stats_by_template() -> Vec<(&'static str, CounterStats)> {
    TEMPLATES.snapshots()
}
