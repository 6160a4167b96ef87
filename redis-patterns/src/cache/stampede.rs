//! The stampede lock of `stampede = "lock"` (and of background refreshes): its key, taking it
//! or waiting for its holder's value, and the guard that releases it if a computation is
//! cancelled; and XFetch, the early recomputation of `stampede = "early"`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::call::{Call, OnHit};
use super::kind::Cacheable;
use super::ops::{GetOrLock, Probe};
use super::stale::Stale;
use super::stats::Event;
use crate::backend::Backend;
use crate::client::Client;
use crate::envelope;
use crate::flight::{Leader, Shared};

/// With notifications of the stored value, a stampede-lock waiter still probes this often.
const NOTIFIED_POLL: Duration = Duration::from_secs(1);

/// Releases a stampede lock if the computation is cancelled or panics, instead of leaving the
/// other callers to wait for its TTL.
pub(super) struct StampedeLock<'a> {
    backend: Arc<Backend>,
    pub(super) lock_key: &'a str,
    pub(super) token: &'a str,
    pub(super) armed: bool,
}

impl<'a> StampedeLock<'a> {
    /// The lock `lock_key`, just taken with `token`.
    pub(super) fn new(client: &Client, lock_key: &'a str, token: &'a str) -> Self {
        StampedeLock {
            backend: Arc::clone(&client.inner().backend),
            lock_key,
            token,
            armed: true,
        }
    }
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

/// The stampede lock's side of a cached call: take the lock or wait for its holder's value.
impl<H> Call<'_, H> {
    pub(super) async fn under_lock<R, K, F>(
        &self,
        kind: &K,
        body: F,
        leader: &mut Leader<'_>,
        (lock_ttl, lock_wait): (Duration, Duration),
        mut stale: Option<Stale<K::Value>>,
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
                now_ms: if self.spec.keeps_stale() {
                    envelope::now_ms()
                } else {
                    0
                },
            };
            match self.backend().run(&probe).await {
                Ok(Probe::Acquired(stored)) => {
                    if stale.is_none() {
                        stale = self.stale_from::<R, K>(stored);
                    }
                    let guard = StampedeLock::new(self.client, &lock_key, &token);
                    return self
                        .compute_and_store_unlocking(kind, body, Some(leader), stale, guard)
                        .await;
                }
                Ok(Probe::Value(stored)) => {
                    if let Some((value, header)) = self.decode::<R, K>(&stored) {
                        leader.publish(|| Shared::Value(stored.clone()));
                        self.on_hit.hit(&value, header, &stored);
                        return kind.rebuild(value);
                    }
                    // Somebody stored something this type cannot read: replace it.
                    return self
                        .compute_and_store(kind, body, Some(leader), stale)
                        .await;
                }
                Ok(Probe::Held(stored)) => {
                    if stale.is_none() {
                        stale = self.stale_from::<R, K>(stored);
                    }
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
                        return self
                            .compute_and_store(kind, body, Some(leader), stale)
                            .await;
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
                    return self.compute_and_share(kind, body, leader, stale).await;
                }
            }
        }
    }
}
