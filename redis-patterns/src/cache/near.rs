//! The near tier: decoded values of `#[cached(near = "…")]` functions in process memory, kept
//! coherent by the server's invalidation messages.
//!
//! Storage is a bounded `quick_cache` (about 55 ns per hit; `benches/near_store.rs` measured the
//! candidates). Each entry holds the decoded value behind an `Arc<dyn Any>` and the instant it
//! stops being served: `min(near, the entry's remaining Redis TTL)`.
//!
//! **The race rule.** An invalidation may overtake the reply it invalidates (they travel on
//! different connections). So a reader takes a [`Ticket`] *before* it reads the backend, and
//! [`NearTier::insert`] accepts the value only if no invalidation of the key's shard, and no
//! flush, happened since. An insert checks and stores under its shard's lock, and an
//! invalidation bumps the shard's epoch and removes the key under the same lock, so the two
//! are ordered: a stale value is never stored after its invalidation, not even for an instant.
//! Hits take no lock.
//!
//! **No tracking, no near tier.** While the invalidation channel is down (not yet armed, lost,
//! or refused by the server), the tier is empty and every insert is refused: a value that might
//! have missed an invalidation is never served.

use std::any::Any;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shards of the invalidation epochs: an invalidation refuses the inserts in flight for the
/// keys of its shard only.
const SHARDS: usize = 64;

/// A decoded value and when it stops being served.
#[derive(Clone)]
struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    until: Instant,
}

/// The near tier of one client.
pub(crate) struct NearTier {
    entries: quick_cache::sync::Cache<String, Entry>,
    /// Per shard: invalidations (and flushes) so far. Its lock orders inserts against them.
    epochs: [Mutex<u64>; SHARDS],
    /// The invalidation channel is up: values may be inserted and served.
    armed: AtomicBool,
    hasher: foldhash::fast::FixedState,
}

/// Taken before reading the backend; required to insert what was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    shard: usize,
    epoch: u64,
}

impl NearTier {
    /// A tier of at most `max_entries` values, disarmed until [`arm`](Self::arm).
    pub(crate) fn new(max_entries: usize) -> Self {
        NearTier {
            entries: quick_cache::sync::Cache::new(max_entries.max(1)),
            epochs: std::array::from_fn(|_| Mutex::new(0)),
            armed: AtomicBool::new(false),
            hasher: foldhash::fast::FixedState::with_seed(0x6e65_6172),
        }
    }

    fn shard(&self, key: &str) -> usize {
        // The modulo keeps the index below SHARDS, so the conversion never truncates.
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    /// The value of `key` if it is here, still within its lifetime, and of type `T`.
    pub(crate) fn get<T: Clone + Send + Sync + 'static>(
        &self,
        key: &str,
        now: Instant,
    ) -> Option<T> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let entry = self.entries.get(key)?;
        if now >= entry.until {
            self.entries.remove(key);
            return None;
        }
        entry.value.downcast_ref::<T>().cloned()
    }

    /// A ticket for reading `key` from the backend now.
    pub(crate) fn ticket(&self, key: &str) -> Ticket {
        let shard = self.shard(key);
        Ticket {
            shard,
            epoch: *crate::util::lock(&self.epochs[shard]),
        }
    }

    /// Stores `value` for `key` for `lifetime`, unless an invalidation of its shard or a
    /// flush happened since `ticket` was taken, or the tier is disarmed. `true` if stored.
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(
        &self,
        ticket: Ticket,
        key: &str,
        value: T,
        lifetime: Duration,
        now: Instant,
    ) -> bool {
        let Some(until) = now.checked_add(lifetime) else {
            return false;
        };
        if lifetime.is_zero() {
            return false;
        }
        let epoch = crate::util::lock(&self.epochs[ticket.shard]);
        if *epoch != ticket.epoch || !self.armed.load(Ordering::Acquire) {
            return false;
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value: Arc::new(value),
                until,
            },
        );
        true
    }

    /// The server says `key` changed: refuse the inserts in flight for its shard, then drop it.
    pub(crate) fn invalidate(&self, key: &str) {
        let mut epoch = crate::util::lock(&self.epochs[self.shard(key)]);
        *epoch = epoch.wrapping_add(1);
        self.entries.remove(key);
    }

    /// Drops everything and refuses every insert in flight (a `FLUSHDB`, a lost invalidation
    /// channel, a topology change). Each shard's epoch moves under its lock first, so an insert
    /// either lands before (and is cleared below) or sees the new epoch.
    pub(crate) fn flush(&self) {
        for epoch in &self.epochs {
            let mut epoch = crate::util::lock(epoch);
            *epoch = epoch.wrapping_add(1);
        }
        self.entries.clear();
    }

    /// The invalidation channel is up (again): serve and insert from now on.
    pub(crate) fn arm(&self) {
        self.flush();
        self.armed.store(true, Ordering::Release);
    }

    /// The invalidation channel is down: flush, and neither serve nor insert until re-armed.
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::Release);
        self.flush();
    }

    /// Values held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFE: Duration = Duration::from_secs(30);

    fn armed(capacity: usize) -> NearTier {
        let tier = NearTier::new(capacity);
        tier.arm();
        tier
    }

    #[test]
    fn a_value_is_served_within_its_lifetime_only() {
        let tier = armed(10);
        let now = Instant::now();
        let ticket = tier.ticket("k");
        assert!(tier.insert(ticket, "k", 7u64, Duration::from_secs(1), now));
        assert_eq!(tier.get::<u64>("k", now), Some(7));
        assert_eq!(
            tier.get::<u64>("k", now + Duration::from_millis(999)),
            Some(7)
        );
        assert_eq!(tier.get::<u64>("k", now + Duration::from_secs(1)), None);
        // Another type under the key is not served as this one.
        let ticket = tier.ticket("s");
        assert!(tier.insert(ticket, "s", String::from("x"), LIFE, now));
        assert_eq!(tier.get::<u64>("s", now), None);
    }

    #[test]
    fn an_invalidation_that_overtakes_the_reply_wins() {
        let tier = armed(10);
        let now = Instant::now();
        let ticket = tier.ticket("k");
        // The server changed the key, and its message arrived before our read's reply.
        tier.invalidate("k");
        assert!(!tier.insert(ticket, "k", 1u64, LIFE, now));
        assert_eq!(tier.get::<u64>("k", now), None);
        // A read started after the invalidation may insert.
        let ticket = tier.ticket("k");
        assert!(tier.insert(ticket, "k", 2u64, LIFE, now));
        assert_eq!(tier.get::<u64>("k", now), Some(2));
        // And a later invalidation removes it.
        tier.invalidate("k");
        assert_eq!(tier.get::<u64>("k", now), None);
    }

    #[test]
    fn a_flush_refuses_every_read_in_flight() {
        let tier = armed(10);
        let now = Instant::now();
        let tickets: Vec<_> = (0..100)
            .map(|i| (i, tier.ticket(&format!("k{i}"))))
            .collect();
        tier.flush();
        for (i, ticket) in tickets {
            assert!(!tier.insert(ticket, &format!("k{i}"), i, LIFE, now));
        }
        assert_eq!(tier.len(), 0);
    }

    #[test]
    fn nothing_is_served_or_stored_while_disarmed() {
        let tier = NearTier::new(10);
        let now = Instant::now();
        assert!(
            !tier.insert(tier.ticket("k"), "k", 1u64, LIFE, now),
            "not armed yet"
        );
        tier.arm();
        assert!(tier.insert(tier.ticket("k"), "k", 1u64, LIFE, now));
        let in_flight = tier.ticket("j");
        tier.disarm();
        assert_eq!(tier.get::<u64>("k", now), None);
        assert_eq!(tier.len(), 0, "flushed");
        tier.arm();
        assert!(
            !tier.insert(in_flight, "j", 1u64, LIFE, now),
            "read before the outage"
        );
        assert_eq!(
            tier.get::<u64>("k", now),
            None,
            "nothing from before the outage"
        );
    }

    #[test]
    fn the_tier_is_bounded() {
        let tier = armed(100);
        let now = Instant::now();
        for i in 0..10_000u64 {
            let key = format!("k{i}");
            tier.insert(tier.ticket(&key), &key, i, LIFE, now);
        }
        assert!(tier.len() <= 100, "{}", tier.len());
    }

    #[test]
    fn invalidations_racing_inserts_never_leave_a_stale_value() {
        // Each value records the epoch of the ticket it was read under. Right after an
        // invalidation, whatever is served must have been read after it.
        let tier = Arc::new(armed(1_000));
        let now = Instant::now();
        // Eight keys of eight different shards: every epoch change of a key's shard is then an
        // invalidation of that key.
        let mut shards = std::collections::HashSet::new();
        let keys: Vec<String> = (0..)
            .map(|i| format!("k{i}"))
            .filter(|key| shards.insert(tier.shard(key)))
            .take(8)
            .collect();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let (tier, keys) = (Arc::clone(&tier), &keys);
                scope.spawn(move || {
                    for i in 0..20_000u64 {
                        let key = &keys[(i % 8) as usize];
                        if i % 3 == 0 {
                            tier.invalidate(key);
                            let after = tier.ticket(key).epoch;
                            if let Some(read_under) = tier.get::<u64>(key, now) {
                                assert!(read_under >= after, "{read_under} < {after}");
                            }
                        } else {
                            let ticket = tier.ticket(key);
                            tier.insert(ticket, key, ticket.epoch, LIFE, now);
                        }
                    }
                });
            }
        });
    }
}
