//! Counters of a topic's activity ([`Topic::stats`](super::Topic::stats)), on the crate's one
//! counters mechanism.

use crate::util::counters::{Events, Registry};
use crate::util::observe::Metric;

/// A snapshot of a [`Topic`](super::Topic)'s (or [`Pattern`](super::Pattern)'s) activity,
/// its clones and its subscriptions included.
///
/// ```
/// let topic = redis_patterns::pubsub::Topic::<String>::new("news");
/// assert_eq!(topic.stats().published, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// Messages published.
    pub published: u64,
    /// Messages received by subscriptions, decoded.
    pub received: u64,
    /// Messages received that were not the subscribed type.
    pub undecodable: u64,
    /// Times a subscription fell behind and lost its oldest messages (buffer full).
    pub lagged: u64,
    /// Times a subscription was renewed after its connection was lost.
    pub resubscribed: u64,
    /// Publishes and subscribes the backend failed (unreachable, slow or failing).
    pub backend_errors: u64,
}

/// What topics count.
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub enum Event {
    Published,
    Received,
    Undecodable,
    Lagged,
    Resubscribed,
    BackendError,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &TEMPLATES;
    type Stats = TopicStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[
        Event::Published,
        Event::Received,
        Event::Undecodable,
        Event::Lagged,
        Event::Resubscribed,
        Event::BackendError,
    ];
    const PATTERN: &'static str = "pubsub";
    const TEMPLATE_LABEL: &'static str = "topic";

    /// Topics are counted per object only (no attribute, so no metric).
    fn metric(self) -> Option<Metric> {
        None
    }

    fn stats(count: impl Fn(Self) -> u64) -> TopicStats {
        TopicStats {
            published: count(Event::Published),
            received: count(Event::Received),
            undecodable: count(Event::Undecodable),
            lagged: count(Event::Lagged),
            resubscribed: count(Event::Resubscribed),
            backend_errors: count(Event::BackendError),
        }
    }
}

/// Topics have no attribute: no per-template counters are ever registered.
static TEMPLATES: Registry<Event> = Registry::new();

/// Live counters of one topic and its clones.
pub(crate) type Counters = crate::util::counters::Counters<Event>;
