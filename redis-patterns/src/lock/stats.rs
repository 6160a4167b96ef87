//! Counters of lock acquisitions, per client ([`Client::lock_stats`](crate::Client::lock_stats))
//! and per `#[with_lock]` key template ([`stats_by_template`]), on the crate's one counters
//! mechanism.

use crate::util::counters::{Events, Registered, Registry};
use crate::util::observe::Metric;

/// A snapshot of lock counters, per client or per `#[with_lock]` key template.
///
/// ```
/// let client = redis_patterns::Client::new("mem://")?;
/// assert_eq!(client.lock_stats().acquired, 0);
/// # Ok::<(), redis_patterns::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockStats {
    /// Locks taken.
    pub acquired: u64,
    /// Acquisitions (successful or not) that found the lock held and waited for it.
    pub contended: u64,
    /// Acquisitions that gave up because another owner held the lock for the whole `wait`
    /// ([`LockError::Timeout`](super::LockError::Timeout)).
    pub timeouts: u64,
    /// Grants or renewals that came back after their lease had run out
    /// ([`LockError::LeaseTooShort`](super::LockError::LeaseTooShort)): the network or server
    /// is too slow for the `ttl`.
    pub late_grants: u64,
    /// Leases lost while the work ran ([`LockError::Lost`](super::LockError::Lost)).
    pub lost: u64,
    /// Backend failures (unreachable, timeout, error); the work did not run (locks fail
    /// closed) or, during a renewal, the lease was at risk.
    pub backend_errors: u64,
}

/// What locking counts.
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub enum Event {
    Acquired,
    Contended,
    Timeout,
    LateGrant,
    Lost,
    BackendError,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &TEMPLATES;
    type Stats = LockStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[
        Event::Acquired,
        Event::Contended,
        Event::Timeout,
        Event::LateGrant,
        Event::Lost,
        Event::BackendError,
    ];
    const PATTERN: &'static str = "lock";
    const TEMPLATE_LABEL: &'static str = "lock";

    /// The counter this event increments (README, "Observability").
    fn metric(self) -> Option<Metric> {
        const ACQUISITIONS: &str = "lock_acquisitions_total";
        Some(match self {
            Event::Acquired => Metric::with(ACQUISITIONS, &[("result", "acquired")]),
            Event::Timeout => Metric::with(ACQUISITIONS, &[("result", "timeout")]),
            Event::LateGrant => Metric::with(ACQUISITIONS, &[("result", "late_grant")]),
            Event::Contended => Metric::new("lock_contended_total"),
            Event::Lost => Metric::new("lock_lease_losses_total"),
            Event::BackendError => Metric::new("lock_errors_total"),
        })
    }

    fn stats(count: impl Fn(Self) -> u64) -> LockStats {
        LockStats {
            acquired: count(Event::Acquired),
            contended: count(Event::Contended),
            timeouts: count(Event::Timeout),
            late_grants: count(Event::LateGrant),
            lost: count(Event::Lost),
            backend_errors: count(Event::BackendError),
        }
    }
}

/// Live counters of a client's locks.
pub(crate) type Counters = crate::util::counters::Counters<Event>;

static TEMPLATES: Registry<Event> = Registry::new();

/// Counters of one `#[with_lock]` attribute.
pub(crate) type TemplateCounters = Registered<Event>;

/// Counters of every `#[with_lock]` attribute used so far in this process, by key template
/// (e.g. `"payment:<order_id>"`), across all clients.
///
/// ```
/// for (template, stats) in redis_patterns::lock::stats_by_template() {
///     println!("{template}: {} taken, {} timed out", stats.acquired, stats.timeouts);
/// }
/// ```
pub fn stats_by_template() -> Vec<(&'static str, LockStats)> {
    TEMPLATES.snapshots()
}
