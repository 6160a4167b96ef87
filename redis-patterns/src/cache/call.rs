//! One cached call's machinery: the flight's leader reads the backend, decodes, decides on
//! XFetch, computes (under the stampede lock in lock mode), encodes and stores; every backend
//! failure is logged and counted, and the function runs instead (fail open).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::attribute::{CacheSpec, Stampede};
use super::kind::Cacheable;
use super::ops::Probe;
use super::ops::{GetOrLock, SetAndUnlock};
use super::stats::Event;
use crate::backend::Backend;
use crate::client::Client;
use crate::envelope;
use crate::error::Error;
use crate::flight::{Leader, Shared};
use crate::lock::ops::Release;

/// With notifications of the stored value, a stampede-lock waiter still probes this often.
const NOTIFIED_POLL: Duration = Duration::from_secs(1);

pub(super) struct Call<'a, H = ()> {
    pub(super) client: &'a Client,
    pub(super) spec: &'static CacheSpec,
    pub(super) key: &'a str,
    /// Sees every value this call's own read found in the backend (the near tier's fill).
    pub(super) on_hit: H,
}

/// What a call does with a value its own backend read found, besides returning it.
pub(super) trait OnHit<V> {
    /// `value` was read and decoded from `stored` (its envelope, with `header`).
    fn hit(&self, value: &V, header: envelope::Header, stored: &[u8]);
}

/// Nothing: a call without a near tier.
impl<V> OnHit<V> for () {
    #[inline]
    fn hit(&self, _: &V, _: envelope::Header, _: &[u8]) {}
}

impl<H> Call<'_, H> {
    pub(super) fn backend(&self) -> &Backend {
        &self.client.inner().backend
    }

    pub(super) fn count(&self, event: Event) {
        self.spec.count(self.client, event);
    }

    pub(super) fn backend_failed(&self, what: &str, error: &Error) {
        self.count(Event::BackendError);
        tracing::warn!(
            target: "redis_patterns",
            cache = self.spec.name(),
            %error,
            "cache {what} failed; running the function uncached"
        );
    }

    pub(super) async fn lead<R, K, F>(&self, kind: &K, body: F, leader: Leader<'_>) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
        H: OnHit<K::Value>,
    {
        match self.backend().get(self.key).await {
            Ok(Some(stored)) => {
                if let Some((value, header)) = self.decode::<R, K>(&stored) {
                    let payload = || Shared::Value(stored.clone());
                    if let Stampede::Early { beta } = self.spec.stampede
                        && xfetch_recompute(header, beta, envelope::now_ms(), fastrand::f64())
                    {
                        return self.refresh_early(kind, body, leader, payload).await;
                    }
                    // Callers waiting on this flight get the stored value.
                    leader.finish(payload);
                    self.count(Event::Hit);
                    self.on_hit.hit(&value, header, &stored);
                    return kind.rebuild(value);
                }
                self.count(Event::Miss);
            }
            Ok(None) => self.count(Event::Miss),
            Err(e) => {
                // Fail open, but still one computation for this process's concurrent callers:
                // an outage is when the origin needs the protection most.
                self.backend_failed("read", &e);
                let mut leader = leader;
                return self.compute_and_share(kind, body, &mut leader).await;
            }
        }
        let mut leader = leader;
        match self.spec.stampede {
            Stampede::Lock {
                lock_ttl,
                lock_wait,
            } => {
                self.under_lock(kind, body, &mut leader, lock_ttl, lock_wait)
                    .await
            }
            Stampede::None | Stampede::Early { .. } => {
                self.compute_and_store(kind, body, Some(&mut leader)).await
            }
        }
    }

    /// Decodes a stored envelope; `None` (counted, logged) when it is not decodable.
    fn decode<R, K: Cacheable<R>>(&self, stored: &[u8]) -> Option<(K::Value, envelope::Header)> {
        let decoded = envelope::decode_value(stored);
        if decoded.is_none() {
            self.count(Event::Undecodable);
            tracing::debug!(
                target: "redis_patterns",
                cache = self.spec.name(),
                "stored value does not decode into the return type; treating it as a miss"
            );
        }
        decoded
    }

    async fn under_lock<R, K, F>(
        &self,
        kind: &K,
        body: F,
        leader: &mut Leader<'_>,
        lock_ttl: Duration,
        lock_wait: Duration,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
        H: OnHit<K::Value>,
    {
        let lock_key = lock_key(self.key);
        let token = crate::util::new_token();
        let deadline = Instant::now() + lock_wait;
        let mut delay = Duration::from_millis(1);
        let mut waited = false;
        // Once the lock was found held: woken when the value key changes (the holder stored
        // it) instead of only polling; see `backend/watch.rs`.
        let mut watch: Option<crate::backend::watch::Watch> = None;
        loop {
            let seen = watch.as_ref().map(|w| w.before_attempt());
            let probe = GetOrLock {
                key: self.key,
                lock_key: &lock_key,
                token: &token,
                lock_ttl,
            };
            match self.backend().run(&probe).await {
                Ok(Probe::Acquired) => {
                    let guard = StampedeLock {
                        backend: Arc::clone(&self.client.inner().backend),
                        lock_key: &lock_key,
                        token: &token,
                        armed: true,
                    };
                    return self
                        .compute_and_store_unlocking(kind, body, leader, guard)
                        .await;
                }
                Ok(Probe::Value(stored)) => {
                    if let Some((value, header)) = self.decode::<R, K>(&stored) {
                        leader.publish(|| Shared::Value(stored.clone()));
                        self.on_hit.hit(&value, header, &stored);
                        return kind.rebuild(value);
                    }
                    // Somebody stored something this type cannot read: replace it.
                    return self.compute_and_store(kind, body, Some(leader)).await;
                }
                Ok(Probe::Held) => {
                    if !waited {
                        waited = true;
                        self.count(Event::LockWait);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        self.count(Event::LockTimeout);
                        tracing::debug!(
                            target: "redis_patterns",
                            cache = self.spec.name(),
                            ?lock_wait,
                            "stampede lock wait ran out; computing without the lock"
                        );
                        return self.compute_and_store(kind, body, Some(leader)).await;
                    }
                    // Poll quickly at first, so a fast computation is picked up within
                    // milliseconds, then back off to at most 20 ms (with jitter) — unless
                    // tracking tells of the stored value, when it waits for that.
                    let jittered = delay.mul_f64(0.75 + fastrand::f64() * 0.5);
                    let left = deadline - now;
                    match (&watch, seen) {
                        (None, _) | (_, None) => {
                            watch = Some(self.client.watch(self.key));
                            continue;
                        }
                        (Some(watch), Some(seen)) if seen.live => {
                            watch.changed(seen, left.min(NOTIFIED_POLL)).await;
                        }
                        (Some(watch), Some(seen)) => watch.changed(seen, jittered.min(left)).await,
                    }
                    delay = (delay * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    self.backend_failed("lock", &e);
                    return self.compute_and_share(kind, body, leader).await;
                }
            }
        }
    }

    pub(super) async fn compute<R, F: Future<Output = R>>(&self, body: F) -> R {
        self.count(Event::Computation);
        body.await
    }

    /// Runs the body and returns what to share and store.
    async fn run_body<R, K, F>(&self, kind: &K, body: F) -> (R, Option<Encoded>)
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        let started = Instant::now();
        let ret = self.compute(body).await;
        let delta = started.elapsed();
        // One jittered TTL for both the key and the envelope, so that XFetch aims at the
        // moment the entry really expires.
        let ttl = self.spec.ttl();
        let encoded = kind.value(&ret).and_then(|value| {
            envelope::encode(value, self.spec.encoding_for(self.client), delta, ttl)
                .map(|bytes| Encoded { bytes, ttl })
                .map_err(|e| {
                    tracing::error!(
                        target: "redis_patterns",
                        cache = self.spec.name(),
                        error = %Error::Serialize(e),
                        "result not cached"
                    );
                })
                .ok()
        });
        (ret, encoded)
    }

    fn share(leader: Option<&mut Leader<'_>>, encoded: Option<&Encoded>) {
        if let Some(leader) = leader {
            leader.publish(|| match encoded {
                Some(encoded) => encoded.payload(),
                None => Shared::NotShareable,
            });
        }
    }

    /// XFetch chose this caller to recompute the value ahead of expiry. The flight stays open
    /// until the new value is written: callers arriving meanwhile get the stored value at once
    /// instead of starting recomputations of their own (at most one per key per process).
    async fn refresh_early<R, K, F>(
        &self,
        kind: &K,
        body: F,
        mut leader: Leader<'_>,
        stored: impl FnOnce() -> Shared,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        leader.publish(stored);
        self.count(Event::EarlyRecomputation);
        let (ret, encoded) = self.run_body(kind, body).await;
        // Callers still arriving get the fresh value; a failed recomputation leaves them the
        // stored one, which is still valid.
        if let Some(encoded) = &encoded {
            leader.publish(|| encoded.payload());
        }
        self.store(kind, &ret, encoded).await;
        ret
    }

    /// Writes what `run_body` encoded, if the result is to be stored.
    async fn store<R, K: Cacheable<R>>(&self, kind: &K, ret: &R, encoded: Option<Encoded>) {
        if let Some(Encoded { bytes, ttl }) = encoded.filter(|_| kind.store(ret)) {
            let written = self.backend().set(self.key, bytes, ttl).await;
            self.client.near_changed(self.key);
            match written {
                Ok(()) => self.count(Event::Write),
                Err(e) => self.backend_failed("write", &e),
            }
        }
    }

    /// Runs the body and hands the result to the flight's followers, without storing it.
    async fn compute_and_share<R, K, F>(&self, kind: &K, body: F, leader: &mut Leader<'_>) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        let (ret, encoded) = self.run_body(kind, body).await;
        Self::share(Some(leader), encoded.as_ref());
        ret
    }

    pub(super) async fn compute_and_store<R, K, F>(
        &self,
        kind: &K,
        body: F,
        leader: Option<&mut Leader<'_>>,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        let (ret, encoded) = self.run_body(kind, body).await;
        Self::share(leader, encoded.as_ref());
        self.store(kind, &ret, encoded).await;
        ret
    }

    async fn compute_and_store_unlocking<R, K, F>(
        &self,
        kind: &K,
        body: F,
        leader: &mut Leader<'_>,
        mut guard: StampedeLock<'_>,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        let (ret, encoded) = self.run_body(kind, body).await;
        Self::share(Some(leader), encoded.as_ref());
        let result = match encoded.filter(|_| kind.store(&ret)) {
            Some(Encoded { bytes, ttl }) => self
                .backend()
                .run(&SetAndUnlock {
                    key: self.key,
                    value: bytes.into(),
                    ttl,
                    lock_key: guard.lock_key,
                    token: guard.token,
                })
                .await
                .map(|_| self.count(Event::Write)),
            None => self
                .backend()
                .run(&Release {
                    mutex: guard.lock_key,
                    token: guard.token,
                    waiters: None,
                })
                .await
                .map(drop),
        };
        guard.armed = false;
        self.client.near_changed(self.key);
        if let Err(e) = result {
            self.backend_failed("write", &e);
        }
        ret
    }
}

/// A result ready to store: its envelope, and the (jittered) TTL the envelope's expiry was
/// computed from.
struct Encoded {
    bytes: Vec<u8>,
    ttl: Duration,
}

impl Encoded {
    /// The envelope, for the flight's followers.
    fn payload(&self) -> Shared {
        Shared::Value(Bytes::copy_from_slice(&self.bytes))
    }
}

/// Releases a stampede lock if the computation is cancelled or panics, instead of leaving the
/// other callers to wait for its TTL.
struct StampedeLock<'a> {
    backend: Arc<Backend>,
    lock_key: &'a str,
    token: &'a str,
    armed: bool,
}

impl Drop for StampedeLock<'_> {
    fn drop(&mut self) {
        if self.armed {
            crate::backend::unlock_in_background(
                &self.backend,
                self.lock_key.to_owned(),
                None,
                self.token.to_owned(),
            );
        }
    }
}

/// XFetch (Vattani et al., VLDB 2015): recompute when
/// `now - delta * beta * ln(rand) >= expiry`, with `rand` uniform in (0, 1].
pub(super) fn xfetch_recompute(
    header: envelope::Header,
    beta: f64,
    now_ms: u64,
    uniform: f64,
) -> bool {
    let rand = 1.0 - uniform; // (0, 1]
    let gap = -(f64::from(header.delta_ms)) * beta * rand.ln();
    now_ms as f64 + gap >= header.expires_ms as f64
}

pub(crate) fn lock_key(key: &str) -> String {
    let mut lock = String::with_capacity(key.len() + 5);
    lock.push_str(key);
    lock.push_str(":lock");
    lock
}
