//! The near tier: decoded values of `#[cached(near = "…")]` functions in process memory, kept
//! coherent by the server's invalidation messages (`backend/tracking.rs`).
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
//! **No tracking, no near tier.** A ticket is only given for a key whose template prefix the
//! server already tracks. While tracking is down (not yet armed, lost, refused by the server),
//! the tier is empty and every insert is refused; and values are served only within the lease
//! of the last heartbeat of the tracking connections, so that even invalidations that
//! silently stop arriving (a blackholed path) leave a value stale for at most
//! [`LEASE`](crate::backend::tracking::LEASE).

use std::any::Any;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::call::OnHit;
use crate::backend::tracking::{Coverage, Invalidations, Tracker};
use crate::envelope;

/// Shards of the invalidation epochs: an invalidation refuses the inserts in flight for the
/// keys of its shard only.
const SHARDS: usize = 64;

/// Size of a client's near tier (see [`Config::near_cache`](crate::Config::near_cache)).
///
/// The tier only exists once a function with `near = "…"` runs through the client; its
/// default bound is 10,000 values.
///
/// ```
/// use redis_patterns::{Config, cache::NearCache};
///
/// let config = Config::from_url("mem://")?
///     .near_cache(NearCache::max_entries(100_000).max_bytes(64 << 20));
/// # Ok::<(), redis_patterns::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearCache {
    max_entries: usize,
    max_bytes: Option<u64>,
}

impl NearCache {
    /// At most `n` values (at least 1); the least recently and frequently used go first
    /// (quick_cache's CLOCK-Pro).
    pub fn max_entries(n: usize) -> Self {
        NearCache {
            max_entries: n.max(1),
            max_bytes: None,
        }
    }

    /// Also at most `bytes` in total, counting each value by its stored (encoded) size plus
    /// its key: the decoded size is not knowable in general, and the encoded one tracks it.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes.max(1));
        self
    }
}

impl Default for NearCache {
    fn default() -> Self {
        NearCache::max_entries(10_000)
    }
}

/// A decoded value and when it stops being served.
#[derive(Clone)]
struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    until: Instant,
    weight: u64,
    /// A tagged value: the tag generation it was read in; served only while it is current.
    tag_generation: Option<u64>,
}

/// Weighs entries so that one capacity bounds both entries and bytes: each entry weighs its
/// size, but at least `max_bytes / max_entries`.
#[derive(Clone)]
struct Weigh;

impl quick_cache::Weighter<String, Entry> for Weigh {
    fn weight(&self, _key: &String, entry: &Entry) -> u64 {
        entry.weight
    }
}

/// The near tier of one client.
pub(crate) struct NearTier {
    entries: quick_cache::sync::Cache<String, Entry, Weigh>,
    /// The least weight of an entry (1 without a byte bound).
    min_weight: u64,
    /// Whether entries weigh their bytes.
    by_bytes: bool,
    /// Per shard: invalidations (and flushes) so far. Its lock orders inserts against them.
    epochs: [Mutex<u64>; SHARDS],
    /// Changes of any cache tag so far (`tags.rs`): a tagged value read in an older generation
    /// is not served. Coarse on purpose: a tag changes when it is invalidated, and its TTL
    /// about once per entry lifetime.
    tag_generation: AtomicU64,
    /// The prefixes whose changes the server delivers, and the lease values are served in.
    coverage: Coverage,
    hasher: foldhash::fast::FixedState,
}

/// Taken before reading the backend; required to insert what was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    shard: usize,
    epoch: u64,
    /// `Some` for a tagged value: the tag generation before the read.
    tag_generation: Option<u64>,
}

impl NearTier {
    /// A tier of the given size, disarmed until tracking arms it.
    pub(crate) fn new(size: NearCache) -> Self {
        let (capacity, min_weight) = match size.max_bytes {
            None => (size.max_entries as u64, 1),
            Some(bytes) => (bytes, bytes.div_ceil(size.max_entries as u64).max(1)),
        };
        NearTier {
            entries: quick_cache::sync::Cache::with_weighter(size.max_entries, capacity, Weigh),
            min_weight,
            by_bytes: size.max_bytes.is_some(),
            epochs: std::array::from_fn(|_| Mutex::new(0)),
            tag_generation: AtomicU64::new(0),
            coverage: Coverage::default(),
            hasher: foldhash::fast::FixedState::with_seed(0x6e65_6172),
        }
    }

    fn shard(&self, key: &str) -> usize {
        // The modulo keeps the index below SHARDS, so the conversion never truncates.
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    /// The value of `key` if it is here, within its lifetime and the tracking lease, and of
    /// type `T`.
    #[inline]
    pub(crate) fn get<T: Clone + Send + Sync + 'static>(
        &self,
        key: &str,
        now: Instant,
    ) -> Option<T> {
        if !self.coverage.serving(now) {
            return None;
        }
        let entry = self.entries.get(key)?;
        let untagged = entry
            .tag_generation
            .is_none_or(|g| g == self.tag_generation.load(Ordering::Acquire));
        if now >= entry.until || !untagged {
            self.entries.remove(key);
            return None;
        }
        entry.value.downcast_ref::<T>().cloned()
    }

    /// A ticket for reading `key` from the backend now, if changes of `key` are tracked.
    pub(crate) fn ticket(&self, key: &str) -> Option<Ticket> {
        if !self.coverage.covers(key) {
            return None;
        }
        let shard = self.shard(key);
        Some(Ticket {
            shard,
            epoch: *crate::util::lock(&self.epochs[shard]),
            tag_generation: None,
        })
    }

    /// `ticket` for a tagged value, if changes of every tag are tracked too.
    pub(crate) fn tagged(&self, ticket: Ticket, tags: &[String]) -> Option<Ticket> {
        if !tags.iter().all(|tag| self.coverage.covers(tag)) {
            return None;
        }
        Some(Ticket {
            tag_generation: Some(self.tag_generation.load(Ordering::Acquire)),
            ..ticket
        })
    }

    /// Stores `value` (whose stored form has `size` bytes) for `key` for `lifetime`, unless an
    /// invalidation of its shard or a flush happened since `ticket` was taken, or the tier is
    /// not serving. `true` if stored.
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(
        &self,
        ticket: Ticket,
        key: &str,
        value: T,
        size: usize,
        lifetime: Duration,
        now: Instant,
    ) -> bool {
        let Some(until) = now.checked_add(lifetime) else {
            return false;
        };
        if lifetime.is_zero() {
            return false;
        }
        let weight = if self.by_bytes {
            u64::try_from(size.saturating_add(key.len()))
                .unwrap_or(u64::MAX)
                .max(self.min_weight)
        } else {
            1
        };
        let epoch = crate::util::lock(&self.epochs[ticket.shard]);
        let tags_unchanged = ticket
            .tag_generation
            .is_none_or(|g| g == self.tag_generation.load(Ordering::Acquire));
        if *epoch != ticket.epoch || !tags_unchanged || !self.coverage.serving(now) {
            return false;
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value: Arc::new(value),
                until,
                weight,
                tag_generation: ticket.tag_generation,
            },
        );
        true
    }

    /// `key` changed: refuse the inserts in flight for its shard, then drop it. A tag's key:
    /// every tagged value read before is not served again.
    fn invalidate_key(&self, key: &str) {
        if is_tag_key(key) {
            self.tag_generation.fetch_add(1, Ordering::AcqRel);
        }
        let mut epoch = crate::util::lock(&self.epochs[self.shard(key)]);
        *epoch = epoch.wrapping_add(1);
        self.entries.remove(key);
    }

    /// This client changed `key`: as if the server's invalidation had arrived already.
    pub(crate) fn changed(&self, key: &str) {
        self.invalidate(key.as_bytes());
    }

    /// Drops everything and refuses every insert in flight (a `FLUSHDB`, a lost invalidation
    /// channel, a topology change). Each shard's epoch moves under its lock first, so an insert
    /// either lands before (and is cleared below) or sees the new epoch.
    fn flush(&self) {
        self.tag_generation.fetch_add(1, Ordering::AcqRel);
        for epoch in &self.epochs {
            let mut epoch = crate::util::lock(epoch);
            *epoch = epoch.wrapping_add(1);
        }
        self.entries.clear();
    }

    /// Values held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Invalidations for NearTier {
    fn invalidate(&self, key: &[u8]) {
        // Every key this crate writes is ASCII; another key cannot be in the tier.
        if let Ok(key) = std::str::from_utf8(key)
            && self.coverage.covers(key)
        {
            self.invalidate_key(key);
        }
    }

    fn invalidate_all(&self) {
        self.flush();
    }

    fn armed(&self, prefixes: &[String], lease: Option<Instant>) {
        // Emptied first: nothing from before the outage is served once the lease is set.
        self.flush();
        self.coverage.arm(prefixes, lease);
    }

    fn covering(&self, prefix: &str) {
        self.coverage.cover(prefix);
    }

    fn renew(&self, lease: Instant) {
        self.coverage.renew(lease);
    }

    fn disarmed(&self) {
        self.coverage.disarm();
        self.flush();
    }
}

/// The near tier of a client and its tracking, created when a near-cached function first
/// runs through the client.
pub(crate) struct Near {
    tier: Arc<NearTier>,
    tracker: Tracker,
}

impl Near {
    pub(crate) fn new(
        size: NearCache,
        track: impl FnOnce(Weak<dyn Invalidations>) -> Tracker,
    ) -> Self {
        let tier = Arc::new(NearTier::new(size));
        let sink: Arc<dyn Invalidations> = tier.clone();
        let tracker = track(Arc::downgrade(&sink));
        Near { tier, tracker }
    }

    pub(crate) fn tier(&self) -> &NearTier {
        &self.tier
    }

    /// A ticket for reading `key` from the backend now; `None` (and its prefix is asked for)
    /// when changes of `key` are not tracked yet.
    pub(crate) fn ticket(&self, key: &str) -> Option<Ticket> {
        let ticket = self.tier.ticket(key);
        if ticket.is_none() {
            self.tracker.watch(prefix_of(key));
        }
        ticket
    }
}

impl Near {
    /// What fills the tier with the values a call's own backend read finds: the ticket is
    /// taken now, before that read. A tagged value is kept only when its tags' changes are
    /// tracked too (they are asked for otherwise).
    pub(crate) fn fill<'a>(&'a self, key: &'a str, tags: &[String], near: Duration) -> Fill<'a> {
        let mut ticket = self.ticket(key);
        if !tags.is_empty() {
            for tag in tags {
                if !self.tier.coverage.covers(tag) {
                    self.tracker.watch(prefix_of(tag));
                }
            }
            ticket = ticket.and_then(|ticket| self.tier.tagged(ticket, tags));
        }
        Fill {
            tier: &self.tier,
            ticket,
            key,
            near,
        }
    }
}

/// Fills the near tier with a call's backend hit, for `min(near, remaining TTL)`.
pub(crate) struct Fill<'a> {
    tier: &'a NearTier,
    /// `None`: the key's changes are not tracked yet; nothing is stored.
    ticket: Option<Ticket>,
    key: &'a str,
    near: Duration,
}

impl<V: Clone + Send + Sync + 'static> OnHit<V> for Fill<'_> {
    fn hit(&self, value: &V, header: envelope::Header, stored: &[u8]) {
        let Some(ticket) = self.ticket else { return };
        let remaining = Duration::from_millis(header.expires_ms.saturating_sub(envelope::now_ms()));
        self.tier.insert(
            ticket,
            self.key,
            value.clone(),
            stored.len(),
            self.near.min(remaining),
            Instant::now(),
        );
    }
}

/// Whether `key` is a cache tag's (`namespace:^tag:{…}`).
fn is_tag_key(key: &str) -> bool {
    let tag = crate::key::TAG_PREFIX;
    key.starts_with(tag)
        || key
            .find(tag)
            .is_some_and(|at| key[..at].ends_with(':') && !key[..at].contains('{'))
}

/// The near tier slot of a client.
pub(crate) type NearSlot = OnceLock<Near>;

pub(crate) use crate::backend::tracking::prefix_of;

#[cfg(test)]
mod tests;
