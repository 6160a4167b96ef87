//! Counters of a leaderboard's activity, per [`Leaderboard`](super::Leaderboard) and its
//! clones, on the crate's one counters mechanism.

use crate::util::counters::{Events, Registry};
use crate::util::observe::Metric;

/// A snapshot of a leaderboard's activity ([`Leaderboard::stats`](super::Leaderboard::stats)).
///
/// ```
/// let board = redis_patterns::leaderboard::Leaderboard::new("chess");
/// assert_eq!(board.stats().submits, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaderboardStats {
    /// Submits and removals stored.
    pub submits: u64,
    /// Reads answered (top, pages, ranks, scores, sizes).
    pub reads: u64,
    /// Operations the backend failed (unreachable, slow or failing).
    pub backend_errors: u64,
}

/// What leaderboards count.
#[derive(Clone, Copy, Debug)]
#[doc(hidden)]
pub enum Event {
    Submitted,
    Read,
    BackendError,
}

impl Events for Event {
    const REGISTRY: &'static Registry<Self> = &TEMPLATES;
    type Stats = LeaderboardStats;

    #[inline]
    fn index(self) -> usize {
        self as usize
    }

    const ALL: &'static [Self] = &[Event::Submitted, Event::Read, Event::BackendError];
    const PATTERN: &'static str = "leaderboard";
    const TEMPLATE_LABEL: &'static str = "leaderboard";

    /// Leaderboards have no attribute, so no per-template metrics.
    fn metric(self) -> Option<Metric> {
        None
    }

    fn stats(count: impl Fn(Self) -> u64) -> LeaderboardStats {
        LeaderboardStats {
            submits: count(Event::Submitted),
            reads: count(Event::Read),
            backend_errors: count(Event::BackendError),
        }
    }
}

/// Live counters of one leaderboard and its clones.
pub(crate) type Counters = crate::util::counters::Counters<Event>;

/// Leaderboards have no attributes: nothing is ever listed here.
static TEMPLATES: Registry<Event> = Registry::new();
