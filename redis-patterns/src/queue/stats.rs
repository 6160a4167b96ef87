//! Counters of a worker's jobs ([`WorkerHandle::stats`](super::WorkerHandle::stats)), on the
//! crate's one counters mechanism.

use crate::util::counters::{Events, Registry};
use crate::util::observe::Metric;

/// A snapshot of what a running worker did. With the feature `metrics`, the same events are
/// reported as `queue_jobs_total{queue, event}`, and each handler run's duration as
/// `queue_handler_seconds{queue}`.
///
/// ```
/// let stats = redis_patterns::queue::WorkerStats::default();
/// assert_eq!(stats.completed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Jobs whose handler returned `Ok`, completed.
    pub completed: u64,
    /// Handler runs that returned `Err` or panicked.
    pub failed: u64,
    /// Failed jobs put back for a retry after a backoff.
    pub retried: u64,
    /// Jobs moved to the dead list (after their last attempt, or undecodable).
    pub dead: u64,
    /// Jobs whose lease ran out while their handler ran: they went back to the queue, so
    /// another worker may run them again.
    pub lost_leases: u64,
    /// Claims, completions and waits the backend failed (retried after a backoff).
    pub backend_errors: u64,
}

/// What workers count.
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub enum Event {
    Completed,
    Failed,
    Retried,
    Dead,
    LostLease,
    BackendError,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &TEMPLATES;
    type Stats = WorkerStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[
        Event::Completed,
        Event::Failed,
        Event::Retried,
        Event::Dead,
        Event::LostLease,
        Event::BackendError,
    ];
    const PATTERN: &'static str = "queue";
    const TEMPLATE_LABEL: &'static str = "queue";

    /// `queue_jobs_total{queue, event}`, per running worker.
    fn metric(self) -> Option<Metric> {
        let event: &'static [(&str, &str)] = match self {
            Event::Completed => &[("event", "completed")],
            Event::Failed => &[("event", "failed")],
            Event::Retried => &[("event", "retried")],
            Event::Dead => &[("event", "dead")],
            Event::LostLease => &[("event", "lost_lease")],
            Event::BackendError => &[("event", "backend_error")],
        };
        Some(Metric::with(EVENTS, event))
    }

    fn stats(count: impl Fn(Self) -> u64) -> WorkerStats {
        WorkerStats {
            completed: count(Event::Completed),
            failed: count(Event::Failed),
            retried: count(Event::Retried),
            dead: count(Event::Dead),
            lost_leases: count(Event::LostLease),
            backend_errors: count(Event::BackendError),
        }
    }
}

/// The counter of workers' jobs.
pub(crate) const EVENTS: &str = "queue_jobs_total";
/// The histogram of workers' handler runs, in seconds.
pub(crate) const HANDLER_SECONDS: &str = "queue_handler_seconds";

/// Workers register no per-template counters.
static TEMPLATES: Registry<Event> = Registry::new();

/// Live counters of one running worker, reported as metrics too.
pub(crate) type Counters = crate::util::counters::Reported<Event>;
