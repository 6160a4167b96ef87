//! Counters of a consumer's work ([`ConsumerHandle::stats`](super::ConsumerHandle::stats)),
//! on the crate's one counters mechanism.

use crate::util::counters::{Events, Registry};
use crate::util::observe::Metric;

/// A snapshot of what a running consumer did. With the feature `metrics`, the same events
/// are reported as `stream_consumer_events_total{stream, group, event}`, and each handler
/// run's duration as `stream_consumer_handler_seconds{stream, group}`.
///
/// ```
/// let stats = redis_patterns::stream::ConsumerStats::default();
/// assert_eq!(stats.handled, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Events whose handler returned `Ok` (acknowledged, or about to be).
    pub handled: u64,
    /// Handler runs that returned `Err` or panicked.
    pub failed: u64,
    /// Failed events delivered to the handler again.
    pub retried: u64,
    /// Events claimed from consumers that stopped (or ran past the visibility timeout).
    pub reclaimed: u64,
    /// Events moved to the dead-letter stream (after their last delivery, or undecodable).
    pub dead_lettered: u64,
    /// Events whose JSON was not the consumer's type (dead-lettered at once).
    pub undecodable: u64,
    /// Acknowledgements written to the server.
    pub acked: u64,
    /// Reads, claims and acknowledgements the backend failed (retried after a backoff).
    pub backend_errors: u64,
}

/// What consumers count.
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub enum Event {
    Handled,
    Failed,
    Retried,
    Reclaimed,
    DeadLettered,
    Undecodable,
    Acked,
    BackendError,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &TEMPLATES;
    type Stats = ConsumerStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[
        Event::Handled,
        Event::Failed,
        Event::Retried,
        Event::Reclaimed,
        Event::DeadLettered,
        Event::Undecodable,
        Event::Acked,
        Event::BackendError,
    ];
    const PATTERN: &'static str = "stream";
    const TEMPLATE_LABEL: &'static str = "stream";

    /// `stream_consumer_events_total{stream, group, event}`, per running consumer.
    fn metric(self) -> Option<Metric> {
        let event: &'static [(&str, &str)] = match self {
            Event::Handled => &[("event", "handled")],
            Event::Failed => &[("event", "failed")],
            Event::Retried => &[("event", "retried")],
            Event::Reclaimed => &[("event", "reclaimed")],
            Event::DeadLettered => &[("event", "dead_lettered")],
            Event::Undecodable => &[("event", "undecodable")],
            Event::Acked => &[("event", "acked")],
            Event::BackendError => &[("event", "backend_error")],
        };
        Some(Metric::with(EVENTS, event))
    }

    fn stats(count: impl Fn(Self) -> u64) -> ConsumerStats {
        ConsumerStats {
            handled: count(Event::Handled),
            failed: count(Event::Failed),
            retried: count(Event::Retried),
            reclaimed: count(Event::Reclaimed),
            dead_lettered: count(Event::DeadLettered),
            undecodable: count(Event::Undecodable),
            acked: count(Event::Acked),
            backend_errors: count(Event::BackendError),
        }
    }
}

/// The counter of consumers' events.
pub(crate) const EVENTS: &str = "stream_consumer_events_total";
/// The histogram of consumers' handler runs, in seconds.
pub(crate) const HANDLER_SECONDS: &str = "stream_consumer_handler_seconds";

/// Consumers register no per-template counters.
static TEMPLATES: Registry<Event> = Registry::new();

/// Live counters of one running consumer, reported as metrics too.
pub(crate) type Counters = crate::util::counters::Reported<Event>;
