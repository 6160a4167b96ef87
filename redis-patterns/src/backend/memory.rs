//! The in-process backend behind `mem://` URLs.
//!
//! Keys live in shards chosen by the key's hash tag — as Redis Cluster chooses slots — so a
//! value and its lock are always in the same shard and multi-key operations are atomic under
//! one shard mutex. Expired entries are invisible at once and are swept when a shard has seen
//! more writes than half its size since the last sweep (amortised O(1) per write).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use foldhash::fast::RandomState;
use tokio::time::Instant;

use super::hash_tag;
use super::pubsub::{Hub, Publish};
use super::tracking::{Invalidations, Tracker};
use crate::util::Sharded;
use crate::util::lock;

const SHARDS: usize = 32;
const MIN_SWEEP_WRITES: usize = 64;

/// Stores shared by name (`mem://name`) inside this process.
static NAMED: LazyLock<Mutex<HashMap<String, Weak<Store>>>> = LazyLock::new(Default::default);

pub(crate) struct MemoryBackend {
    store: Arc<Store>,
    /// This client's pub/sub subscriptions, registered with the store on first use.
    hub: std::sync::OnceLock<Arc<Hub>>,
}

struct Store {
    shards: Sharded<Shard, SHARDS>,
    /// Zero of the store's clock (see [`Txn::clock`]).
    origin: Instant,
    /// The near tiers of the store's clients, told of every change.
    listeners: Listeners,
    /// The pub/sub subscriptions of the store's clients.
    hubs: Mutex<Vec<Weak<Hub>>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            shards: Sharded::default(),
            origin: Instant::now(),
            listeners: Listeners::default(),
            hubs: Mutex::default(),
        }
    }
}

/// The near tiers to tell of changes: every client of the store that near-caches. Told under
/// the shard lock of the change, so a change and its invalidation are one step for readers.
#[derive(Default)]
struct Listeners {
    any: AtomicBool,
    sinks: RwLock<Vec<Weak<dyn Invalidations>>>,
}

impl Listeners {
    #[inline]
    fn changed(&self, key: &str) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        for sink in crate::util::read(&self.sinks).iter() {
            if let Some(sink) = sink.upgrade() {
                sink.invalidate(key.as_bytes());
            }
        }
    }

    fn add(&self, sink: Weak<dyn Invalidations>) {
        let mut sinks = crate::util::write(&self.sinks);
        sinks.retain(|s| s.strong_count() > 0);
        sinks.push(sink);
        self.any.store(true, Ordering::Release);
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry, RandomState>,
    writes_since_sweep: usize,
}

struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

/// What a key holds: bytes (what `GET`/`SET` see), or a feature's own structure (a rate
/// limiter's log, a fencing counter), as Redis keys hold strings, sorted sets or counters.
enum Value {
    Bytes(Bytes),
    State(Box<dyn Any + Send>),
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

impl MemoryBackend {
    pub(crate) fn new(name: Option<&str>) -> Self {
        let store = match name {
            None => Arc::new(Store::default()),
            Some(name) => {
                let mut named = lock(&NAMED);
                match named.get(name).and_then(Weak::upgrade) {
                    Some(store) => store,
                    None => {
                        let store = Arc::new(Store::default());
                        named.insert(name.to_owned(), Arc::downgrade(&store));
                        store
                    }
                }
            }
        };
        MemoryBackend {
            store,
            hub: std::sync::OnceLock::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        self.store.shards.lock(hash_tag(key))
    }

    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        self.shard(key).get(key, Instant::now()).cloned()
    }

    pub(crate) fn set(&self, key: &str, value: Bytes, ttl: Duration) {
        let mut shard = self.shard(key);
        shard.set(key, value, Some(ttl), Instant::now());
        self.store.listeners.changed(key);
    }

    pub(crate) fn del(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let deleted = shard.map.remove(key).is_some_and(|entry| entry.live(now));
        self.store.listeners.changed(key);
        deleted
    }

    /// Tells `sink` of every change of the store's keys from now on, as Redis's tracking does;
    /// every prefix is covered at once.
    pub(crate) fn track(&self, sink: Weak<dyn Invalidations>) -> Tracker {
        if let Some(armed) = sink.upgrade() {
            armed.armed(&[], None);
        }
        self.store.listeners.add(sink.clone());
        Tracker::Immediate(sink)
    }

    /// Hands `payload` to every subscription of the store's clients that `channel` matches;
    /// how many received it, as Redis's `PUBLISH` (or `SPUBLISH`) counts them.
    pub(crate) fn publish(&self, how: Publish, channel: &[u8], payload: &[u8]) -> u64 {
        let payload = Bytes::copy_from_slice(payload);
        let hubs: Vec<Arc<Hub>> = lock(&self.store.hubs)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        hubs.iter()
            .map(|hub| hub.publish_here(how, channel, &payload))
            .sum()
    }

    /// This client's subscriptions.
    pub(crate) fn hub(&self) -> Arc<Hub> {
        self.hub
            .get_or_init(|| {
                let hub = Arc::new(Hub::immediate());
                let mut hubs = lock(&self.store.hubs);
                hubs.retain(|h| h.strong_count() > 0);
                hubs.push(Arc::downgrade(&hub));
                hub
            })
            .clone()
    }

    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn pttl(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let shard = self.shard(key);
        let entry = shard.map.get(key).filter(|e| e.live(now))?;
        entry.expires_at.map(|t| t - now)
    }

    /// Runs `f` atomically on the shard of `key`'s hash tag: every key with that tag can be
    /// read and written in one step, as a Lua script does on Redis.
    pub(crate) fn atomically<T>(&self, key: &str, f: impl FnOnce(&mut Txn<'_>) -> T) -> T {
        let mut shard = self.shard(key);
        let mut txn = Txn {
            shard: &mut shard,
            now: Instant::now(),
            origin: self.store.origin,
            listeners: &self.store.listeners,
        };
        f(&mut txn)
    }
}

/// Atomic access to one shard; see [`MemoryBackend::atomically`].
pub(crate) struct Txn<'a> {
    shard: &'a mut Shard,
    now: Instant,
    origin: Instant,
    listeners: &'a Listeners,
}

impl Txn<'_> {
    /// The store's clock: time since the store was created. Every client of a store reads the
    /// same clock, as every client of a Redis server reads its `TIME`.
    pub(crate) fn clock(&self) -> Duration {
        self.now - self.origin
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Bytes> {
        self.shard.get(key, self.now)
    }

    pub(crate) fn set(&mut self, key: &str, value: Bytes, ttl: Option<Duration>) {
        self.shard.set(key, value, ttl, self.now);
        self.listeners.changed(key);
    }

    /// `true` when a live key was deleted.
    pub(crate) fn del(&mut self, key: &str) -> bool {
        let now = self.now;
        let deleted = self.shard.map.remove(key).is_some_and(|e| e.live(now));
        self.listeners.changed(key);
        deleted
    }

    pub(crate) fn pttl(&self, key: &str) -> Option<Duration> {
        let entry = self.shard.map.get(key).filter(|e| e.live(self.now))?;
        entry.expires_at.map(|t| t - self.now)
    }

    /// `PEXPIRE`: sets a live key's TTL; `false` when the key does not exist.
    pub(crate) fn expire(&mut self, key: &str, ttl: Duration) -> bool {
        let now = self.now;
        match self.shard.map.get_mut(key).filter(|e| e.live(now)) {
            Some(entry) => {
                entry.expires_at = Some(now + ttl);
                self.listeners.changed(key);
                true
            }
            None => false,
        }
    }

    /// `INCRBY`: adds `by` to the integer stored as text under `key` (0 when missing), keeping
    /// its TTL. `None` where Redis fails: the value is not an integer, or the sum overflows.
    pub(crate) fn incr_by(&mut self, key: &str, by: i64) -> Option<i64> {
        let current = match self.get(key) {
            Some(text) => std::str::from_utf8(text).ok()?.parse::<i64>().ok()?,
            None => 0,
        };
        let sum = current.checked_add(by)?;
        let ttl = self.pttl(key);
        self.set(key, Bytes::from(sum.to_string()), ttl);
        Some(sum)
    }

    /// `PEXPIREAT`: expires a live key at `at` (time since the Unix epoch on the system clock,
    /// as Redis reads it); a time already past deletes it. `false` when the key does not exist.
    pub(crate) fn expire_at(&mut self, key: &str, at: Duration) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        match at.checked_sub(now).filter(|ttl| !ttl.is_zero()) {
            Some(ttl) => self.expire(key, ttl),
            None => self.del(key),
        }
    }

    /// The structure stored under `key`, if it holds one of type `T`, without creating it.
    pub(crate) fn state_if<T: Any + Send>(&self, key: &str) -> Option<&T> {
        match self.shard.map.get(key).filter(|e| e.live(self.now)) {
            Some(Entry {
                value: Value::State(state),
                ..
            }) => state.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// The structure stored under `key`, created with `T::default()` (and no TTL) when the
    /// key is missing, expired, or holds something else.
    pub(crate) fn state<T: Any + Send + Default>(&mut self, key: &str) -> &mut T {
        let now = self.now;
        let fresh = !matches!(
            self.shard.map.get(key),
            Some(e) if e.live(now) && matches!(&e.value, Value::State(s) if s.is::<T>())
        );
        if fresh {
            self.shard
                .insert(key, Value::State(Box::<T>::default()), None, now);
        }
        // The caller may change the structure.
        self.listeners.changed(key);
        match self.shard.map.get_mut(key).map(|e| &mut e.value) {
            Some(Value::State(state)) => state
                .downcast_mut::<T>()
                .expect("the state was just checked or created with this type"),
            _ => unreachable!("the state was just checked or created"),
        }
    }
}

impl Shard {
    fn get(&self, key: &str, now: Instant) -> Option<&Bytes> {
        match self.map.get(key).filter(|e| e.live(now)).map(|e| &e.value) {
            Some(Value::Bytes(bytes)) => Some(bytes),
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: Bytes, ttl: Option<Duration>, now: Instant) {
        self.insert(key, Value::Bytes(value), ttl, now);
    }

    fn insert(&mut self, key: &str, value: Value, ttl: Option<Duration>, now: Instant) {
        let entry = Entry {
            value,
            expires_at: ttl.map(|ttl| now + ttl),
        };
        match self.map.get_mut(key) {
            Some(slot) => *slot = entry,
            None => {
                self.map.insert(key.to_owned(), entry);
            }
        }
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= MIN_SWEEP_WRITES.max(self.map.len() / 2) {
            self.map.retain(|_, e| e.live(now));
            self.writes_since_sweep = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire() {
        let m = MemoryBackend::new(None);
        m.set("k", Bytes::from_static(b"v"), Duration::from_secs(10));
        assert_eq!(m.get("k").as_deref(), Some(&b"v"[..]));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(m.get("k"), None);
        assert!(!m.del("k"), "an expired key does not count as deleted");
    }

    #[tokio::test(start_paused = true)]
    async fn sweeping_drops_expired_entries() {
        let m = MemoryBackend::new(None);
        for i in 0..10_000 {
            m.set(&format!("k{i}"), Bytes::new(), Duration::from_secs(1));
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        for i in 0..10_000 {
            m.set(&format!("j{i}"), Bytes::new(), Duration::from_secs(100));
        }
        let total: usize = m.store.shards.iter().map(|s| s.map.len()).sum();
        assert!(total < 15_000, "expired entries were not swept: {total}");
    }

    #[tokio::test(start_paused = true)]
    async fn transactions_see_typed_state_and_expiry() {
        let m = MemoryBackend::new(None);
        m.atomically("{t}", |txn| {
            *txn.state::<u64>("{t}:n") += 5;
            assert!(txn.expire("{t}:n", Duration::from_secs(1)));
            assert!(txn.get("{t}:n").is_none(), "a structure is not bytes");
        });
        assert_eq!(m.atomically("{t}", |txn| *txn.state::<u64>("{t}:n")), 5);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            m.atomically("{t}", |txn| *txn.state::<u64>("{t}:n")),
            0,
            "expired"
        );
        let before = m.atomically("{t}", |txn| txn.clock());
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(
            m.atomically("{t}", |txn| txn.clock()) - before,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn named_stores_are_shared_and_anonymous_ones_are_not() {
        let a = MemoryBackend::new(Some("conformance-shared"));
        let b = MemoryBackend::new(Some("conformance-shared"));
        let c = MemoryBackend::new(None);
        a.set("x", Bytes::from_static(b"1"), Duration::from_secs(60));
        assert!(b.get("x").is_some());
        assert!(c.get("x").is_none());
    }
}
