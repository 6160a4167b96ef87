//! What a sink of the server's invalidations (`tracking.rs`) knows of its tracking: the
//! prefixes whose changes are delivered, and until when that is proven. The near tier and the
//! key watches keep one each.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What a sink knows of its tracking: the prefixes whose changes are delivered, and until when
/// that is proven (the lease of the last answered heartbeat). The near tier and the key watches
/// keep one each and follow the state calls of
/// [`Invalidations`](super::tracking::Invalidations) through it.
pub(crate) struct Coverage {
    covered: RwLock<Vec<Box<str>>>,
    /// Until when (nanoseconds after `origin`) delivery is proven: [`Coverage::DOWN`], a
    /// heartbeat's lease, or [`Coverage::UNLEASED`].
    lease: AtomicU64,
    origin: Instant,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage {
            covered: RwLock::new(Vec::new()),
            lease: AtomicU64::new(Self::DOWN),
            origin: Instant::now(),
        }
    }
}

impl Coverage {
    /// Not armed.
    const DOWN: u64 = 0;
    /// Armed without heartbeats (in process).
    const UNLEASED: u64 = u64::MAX;

    /// `at` in nanoseconds after `origin`, at least 1 (0 means down).
    fn nanos(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos).unwrap_or(Self::UNLEASED - 1).max(1)
    }

    /// Armed, and within the lease at `now`.
    #[inline]
    pub(crate) fn serving(&self, now: Instant) -> bool {
        self.nanos(now) < self.lease.load(Ordering::Acquire)
    }

    /// Whether changes of `key` are delivered (its prefix is tracked).
    pub(crate) fn covers(&self, key: &str) -> bool {
        crate::util::read(&self.covered)
            .iter()
            .any(|prefix| key.starts_with(&**prefix))
    }

    /// [`Invalidations::armed`](super::tracking::Invalidations::armed).
    pub(crate) fn arm(&self, prefixes: &[String], lease: Option<Instant>) {
        *crate::util::write(&self.covered) = prefixes.iter().map(|p| p.as_str().into()).collect();
        let lease = lease.map_or(Self::UNLEASED, |lease| self.nanos(lease));
        self.lease.store(lease, Ordering::Release);
    }

    /// [`Invalidations::covering`](super::tracking::Invalidations::covering).
    /// Covers `prefix`; `true` if it was not covered before.
    pub(crate) fn cover(&self, prefix: &str) -> bool {
        if crate::util::read(&self.covered)
            .iter()
            .any(|p| &**p == prefix)
        {
            return false;
        }
        let mut covered = crate::util::write(&self.covered);
        if covered.iter().any(|p| &**p == prefix) {
            return false;
        }
        covered.push(prefix.into());
        true
    }

    /// [`Invalidations::renew`](super::tracking::Invalidations::renew): never re-arms what is
    /// down (only `arm` does, once tracking is back), and leaves an unleased coverage unleased.
    pub(crate) fn renew(&self, lease: Instant) {
        let lease = self.nanos(lease);
        let _ = self
            .lease
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current != Self::DOWN && current != Self::UNLEASED).then_some(lease)
            });
    }

    /// [`Invalidations::disarmed`](super::tracking::Invalidations::disarmed).
    pub(crate) fn disarm(&self) {
        self.lease.store(Self::DOWN, Ordering::Release);
        crate::util::write(&self.covered).clear();
    }
}
