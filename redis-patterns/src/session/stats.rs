//! Counters of sessions' activity, per [`Sessions`](super::Sessions) and its clones, on the
//! crate's one counters mechanism.

use crate::util::counters::{Events, Registry};
use crate::util::observe::Metric;

/// A snapshot of sessions' activity ([`Sessions::stats`](super::Sessions::stats)).
///
/// ```
/// let sessions = redis_patterns::session::Sessions::<String>::new(
///     std::time::Duration::from_secs(1800),
///     std::time::Duration::from_secs(86_400),
/// );
/// assert_eq!(sessions.stats().created, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Sessions created (rotations included).
    pub created: u64,
    /// Loads that found a session.
    pub loaded: u64,
    /// Loads that found none (unknown, expired, deleted or forged ids).
    pub missing: u64,
    /// Saves written.
    pub saved: u64,
    /// Saves refused because another save came first.
    pub conflicts: u64,
    /// Sessions ended by `delete` or `delete_all_for`.
    pub deleted: u64,
    /// Data refused for its size.
    pub too_large: u64,
    /// Operations the backend failed (unreachable, slow or failing): sessions fail closed.
    pub backend_errors: u64,
}

/// What sessions count.
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub enum Event {
    Created,
    Loaded,
    Missing,
    Saved,
    Conflict,
    Deleted,
    TooLarge,
    BackendError,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &TEMPLATES;
    type Stats = SessionStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[
        Event::Created,
        Event::Loaded,
        Event::Missing,
        Event::Saved,
        Event::Conflict,
        Event::Deleted,
        Event::TooLarge,
        Event::BackendError,
    ];
    const PATTERN: &'static str = "session";
    const TEMPLATE_LABEL: &'static str = "session";

    /// Sessions have no attribute, so no per-template metrics.
    fn metric(self) -> Option<Metric> {
        None
    }

    fn stats(count: impl Fn(Self) -> u64) -> SessionStats {
        SessionStats {
            created: count(Event::Created),
            loaded: count(Event::Loaded),
            missing: count(Event::Missing),
            saved: count(Event::Saved),
            conflicts: count(Event::Conflict),
            deleted: count(Event::Deleted),
            too_large: count(Event::TooLarge),
            backend_errors: count(Event::BackendError),
        }
    }
}

/// Live counters of one `Sessions` and its clones.
pub(crate) type Counters = crate::util::counters::Counters<Event>;

/// Sessions have no attributes: nothing is ever listed here.
static TEMPLATES: Registry<Event> = Registry::new();
