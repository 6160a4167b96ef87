//! Waiting for a key to change, woken by the server's invalidations instead of polling: what a
//! `stampede = "lock"` waiter uses to hear that the value was stored the moment it happens, in
//! this process or any other.
//!
//! A client's [`Watches`] is a sink of its own tracking (`tracking.rs`: one more `CLIENT
//! TRACKING` connection per tracked server on Redis, the store's listeners on `mem://`), with
//! the prefixes of the keys waited on. A waiter registers its key ([`Watches::watch`]) and,
//! *before* each attempt, reads the key's change count and whether tracking covers the key
//! ([`Watch::before_attempt`]). After a failed attempt it waits for a change after that count
//! ([`Watch::changed`]): a change between the attempt and the wait is not lost, since the
//! count moved. When tracking did not cover the key at the attempt (not armed yet, lost,
//! refused by the server), the waiter polls as before: notifications only ever shorten waits.
//!
//! Each change wakes one waiter of the key in this process (the others stay asleep until the
//! next change or their own timeout), so a change costs one probe per process rather than one
//! per waiter.
//!
//! Lock waiters do not use this yet: measured on the contended read-modify-write of
//! `tests/lock_handoff.rs`, waking on every change of the lock key (its acquisitions included)
//! made the hand-off slower than polling (3.4 s against 3.05 s), since each change costs an
//! attempt per process. A release-only signal is the next step (issue 11).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tracking::{Coverage, Invalidations, Tracker};

/// The keys waited on in one client, and whether tracking delivers their changes.
#[derive(Default)]
pub(crate) struct Watches {
    keys: Mutex<HashMap<String, Weak>>,
    /// The prefixes whose changes tracking delivers now, and until when that is proven.
    coverage: Coverage,
}

type Weak = std::sync::Weak<KeyWatch>;

/// The change count of one key, and its sleepers.
#[derive(Default)]
struct KeyWatch {
    changes: AtomicU64,
    notify: tokio::sync::Notify,
}

/// A waiter's registration of its key; dropping it unregisters.
pub(crate) struct Watch {
    key: String,
    watch: Arc<KeyWatch>,
    watches: Arc<Watches>,
}

/// What [`Watch::before_attempt`] saw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    changes: u64,
    /// Tracking delivered the key's changes when the attempt was made.
    pub(crate) live: bool,
}

impl Watches {
    fn live(&self, key: &str) -> bool {
        self.coverage.serving(Instant::now()) && self.coverage.covers(key)
    }

    /// Registers a waiter for `key`, asking `tracker` for the key's prefix.
    pub(crate) fn watch(self: &Arc<Self>, key: &str, tracker: &Tracker) -> Watch {
        tracker.watch(super::tracking::prefix_of(key));
        let mut keys = crate::util::lock(&self.keys);
        let watch = match keys.get(key).and_then(std::sync::Weak::upgrade) {
            Some(watch) => watch,
            None => {
                let watch = Arc::new(KeyWatch::default());
                keys.insert(key.to_owned(), Arc::downgrade(&watch));
                watch
            }
        };
        Watch {
            key: key.to_owned(),
            watch,
            watches: Arc::clone(self),
        }
    }

    /// Wakes every waiter (tracking came, went, or everything changed).
    fn wake_all(&self) {
        for watch in crate::util::lock(&self.keys).values() {
            if let Some(watch) = watch.upgrade() {
                watch.changes.fetch_add(1, Ordering::AcqRel);
                watch.notify.notify_waiters();
            }
        }
    }
}

impl Watch {
    /// Call before each attempt: the key's change count, and whether its changes are
    /// delivered now.
    pub(crate) fn before_attempt(&self) -> Seen {
        Seen {
            changes: self.watch.changes.load(Ordering::Acquire),
            live: self.watches.live(&self.key),
        }
    }

    /// Waits until the key changed after `seen` was taken, or `poll` ran out. (Tracking being
    /// armed or lost counts as a change: the waiter then attempts, and reads whether it may
    /// rely on notifications from then on.)
    pub(crate) async fn changed(&self, seen: Seen, poll: Duration) {
        let notified = self.watch.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.watch.changes.load(Ordering::Acquire) != seen.changes {
            return;
        }
        let _ = tokio::time::timeout(poll, notified).await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut keys = crate::util::lock(&self.watches.keys);
        // The last waiter of the key (besides this one) is gone: forget the key.
        if Arc::strong_count(&self.watch) == 1 {
            keys.remove(&self.key);
        }
    }
}

impl Invalidations for Watches {
    fn invalidate(&self, key: &[u8]) {
        let Ok(key) = std::str::from_utf8(key) else {
            return;
        };
        let watch = crate::util::lock(&self.keys)
            .get(key)
            .and_then(std::sync::Weak::upgrade);
        if let Some(watch) = watch {
            watch.changes.fetch_add(1, Ordering::AcqRel);
            // One waiter per change: it attempts, and the others wait for the next change.
            watch.notify.notify_one();
        }
    }

    fn invalidate_all(&self) {
        self.wake_all();
    }

    fn armed(&self, prefixes: &[String], lease: Option<Instant>) {
        self.coverage.arm(prefixes, lease);
        self.wake_all();
    }

    fn covering(&self, prefix: &str) {
        self.coverage.cover(prefix);
        // Waiters that polled for want of tracking may rely on it now.
        self.wake_all();
    }

    fn renew(&self, lease: Instant) {
        self.coverage.renew(lease);
    }

    fn disarmed(&self) {
        self.coverage.disarm();
        // Waiters relying on notifications go back to polling.
        self.wake_all();
    }
}
