//! Waiting for a key to change, woken by the server's invalidations instead of polling: what a
//! `stampede = "lock"` waiter uses to hear that the value was stored the moment it happens, in
//! this process or any other, and a lock waiter that the lock was released (it watches the
//! lock's waiters' mark, which only releases rewrite: `lock/ops.rs`).
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
//! Lock waiters watch a mark rather than the lock key: waking on every change of the lock key
//! (its acquisitions included) made the contended hand-off of `tests/lock_handoff.rs` slower
//! than polling (3.4 s against 3.05 s), since each change cost an attempt per process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tracking::{Coverage, Invalidations, Tracker};

/// The keys waited on in one client, and whether tracking delivers their changes.
#[derive(Default)]
pub(crate) struct Watches {
    keys: Mutex<HashMap<String, Weak>>,
    /// Changes heard, of any key (watched or not), and losses and arrivals of tracking: a
    /// caller that registers only after an attempt knows from it whether anything could have
    /// been missed in between.
    heard: AtomicU64,
    /// The prefixes whose changes tracking delivers now, and until when that is proven.
    coverage: Coverage,
}

type Weak = std::sync::Weak<KeyWatch>;

/// The change count of one key, the changes its waiters have taken, and its sleepers.
#[derive(Default)]
struct KeyWatch {
    changes: AtomicU64,
    /// The last change a waiter was woken for: each change wakes one waiter of the process,
    /// however many saw it happen during their attempt.
    claimed: AtomicU64,
    /// Times tracking came, went or everything changed: these wake every waiter.
    resets: AtomicU64,
    notify: tokio::sync::Notify,
}

impl KeyWatch {
    /// Takes a change newer than `seen` that no other waiter took; `false` if there is none.
    fn claim(&self, seen: Seen) -> bool {
        let mut claimed = self.claimed.load(Ordering::Acquire);
        loop {
            let next = claimed.max(seen.changes) + 1;
            if next > self.changes.load(Ordering::Acquire) {
                return false;
            }
            match self
                .claimed
                .compare_exchange(claimed, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => claimed = now,
            }
        }
    }
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
    resets: u64,
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

    /// The `heard` count: changes and tracking events so far.
    pub(crate) fn heard(&self) -> u64 {
        self.heard.load(Ordering::Acquire)
    }

    /// Wakes every waiter (tracking came, went, or everything changed).
    fn wake_all(&self) {
        self.heard.fetch_add(1, Ordering::AcqRel);
        for watch in crate::util::lock(&self.keys).values() {
            if let Some(watch) = watch.upgrade() {
                watch.resets.fetch_add(1, Ordering::AcqRel);
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
            resets: self.watch.resets.load(Ordering::Acquire),
            changes: self.watch.changes.load(Ordering::Acquire),
            live: self.watches.live(&self.key),
        }
    }

    /// Waits until this waiter takes a change of the key made after `seen` was read (one
    /// waiter per change, so a change that came during many waiters' attempts wakes one of
    /// them, not all), tracking came or went (which wakes every waiter: each then attempts,
    /// and reads whether it may rely on notifications from then on), or `poll` ran out.
    pub(crate) async fn changed(&self, seen: Seen, poll: Duration) {
        let deadline = Instant::now() + poll;
        loop {
            let notified = self.watch.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.watch.resets.load(Ordering::Acquire) != seen.resets || self.watch.claim(seen) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return;
            }
            // Woken: take the change, unless another waiter of the process took it first.
        }
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

impl Watches {
    /// `key` changed: wakes one of its waiters in this process.
    pub(crate) fn changed(&self, key: &str) {
        self.heard.fetch_add(1, Ordering::AcqRel);
        let watch = crate::util::lock(&self.keys)
            .get(key)
            .and_then(std::sync::Weak::upgrade);
        if let Some(watch) = watch {
            watch.changes.fetch_add(1, Ordering::AcqRel);
            // One waiter per change: it attempts, and the others wait for the next change.
            watch.notify.notify_one();
        }
    }
}

impl Invalidations for Watches {
    fn invalidate(&self, key: &[u8]) {
        if let Ok(key) = std::str::from_utf8(key) {
            self.changed(key);
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
        // Waiters that polled for want of tracking may rely on it now (on `mem://` every
        // watch asks again: only a new prefix wakes anyone).
        if self.coverage.cover(prefix) {
            self.wake_all();
        }
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
