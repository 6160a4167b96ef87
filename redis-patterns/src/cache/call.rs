//! One cached call's machinery: the flight's leader reads the backend, decodes, decides on
//! XFetch, computes (under the stampede lock in lock mode), encodes and stores; every backend
//! failure is logged and counted, and the function runs instead (fail open).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::attribute::{CacheSpec, Stampede};
use super::kind::Cacheable;
use super::ops::SetAndUnlock;
use super::stale::{Background, Stale};
use super::stampede::{StampedeLock, xfetch_recompute};
use super::stats::Event;
use crate::backend::Backend;
use crate::client::Client;
use crate::envelope;
use crate::error::Error;
use crate::flight::{Leader, Shared};
use crate::lock::ops::Release;

pub(super) struct Call<'a, H = ()> {
    pub(super) client: &'a Client,
    pub(super) spec: &'static CacheSpec,
    pub(super) key: &'a str,
    /// The keys of the entry's tags (`tags = […]`), in the order the function names them.
    pub(super) tags: &'a [String],
    /// The stamp of the tags' versions this call last read (`tags.rs`); 0 without tags.
    pub(super) tag_stamp: AtomicU64,
    /// Sees every value this call's own read found in the backend (the near tier's fill).
    pub(super) on_hit: H,
    /// The call's `cache` span, which its outcome is recorded in.
    pub(super) span: tracing::Span,
}

impl<'a, H> Call<'a, H> {
    pub(super) fn new(
        client: &'a Client,
        spec: &'static CacheSpec,
        key: &'a str,
        tags: &'a [String],
        on_hit: H,
    ) -> Self {
        let tag_stamp = if tags.is_empty() {
            0
        } else {
            envelope::UNKNOWN_TAGS
        };
        Call {
            client,
            spec,
            key,
            tags,
            tag_stamp: AtomicU64::new(tag_stamp),
            on_hit,
            span: tracing::Span::none(),
        }
    }

    /// The call, recording its outcome in `span`.
    pub(super) fn in_span(mut self, span: tracing::Span) -> Self {
        self.span = span;
        self
    }
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
        if let Some(outcome) = event.outcome() {
            self.span.record("outcome", outcome);
        }
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

    /// What readers of this call's entries accept.
    pub(super) fn expected<V>(&self) -> envelope::Expected {
        envelope::Expected {
            schema: self.spec.schema::<V>(),
            tags: self.tag_stamp.load(Ordering::Relaxed),
        }
    }

    pub(super) async fn lead<R, K, F, S>(
        &self,
        kind: &K,
        body: F,
        background: &S,
        leader: Leader<'_>,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
        S: Background<R, K, F>,
        H: OnHit<K::Value>,
    {
        let mut leader = leader;
        match self.read().await {
            Ok(Some(stored)) => {
                if let Some((value, header)) = self.decode::<R, K>(&stored) {
                    if self.spec.keeps_stale() {
                        let now = envelope::now_ms();
                        if !header.fresh_at(now) {
                            let stale = Stale {
                                value,
                                stored,
                                header,
                            };
                            return self
                                .found_stale(kind, body, background, leader, stale, now)
                                .await;
                        }
                    }
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
                return self.compute_and_share(kind, body, &mut leader, None).await;
            }
        }
        self.compute_missing(kind, body, leader, None).await
    }

    /// No usable entry: compute, under the stampede lock if the function has one.
    pub(super) async fn compute_missing<R, K, F>(
        &self,
        kind: &K,
        body: F,
        leader: Leader<'_>,
        stale: Option<Stale<K::Value>>,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
        H: OnHit<K::Value>,
    {
        let mut leader = leader;
        match self.spec.stampede {
            Stampede::Lock {
                lock_ttl,
                lock_wait,
            } => {
                self.under_lock(kind, body, &mut leader, (lock_ttl, lock_wait), stale)
                    .await
            }
            Stampede::None | Stampede::Early { .. } => {
                self.compute_and_store(kind, body, Some(&mut leader), stale)
                    .await
            }
        }
    }

    /// Decodes a stored envelope; `None` (counted, logged) when it is not decodable.
    pub(super) fn decode<R, K: Cacheable<R>>(
        &self,
        stored: &[u8],
    ) -> Option<(K::Value, envelope::Header)> {
        match envelope::decode_value(stored, self.expected::<K::Value>()) {
            Ok(decoded) => Some(decoded),
            Err(why) => {
                let (event, what) = match why {
                    envelope::Unusable::OtherSchema => (
                        Event::OtherVersion,
                        "stored value was written for another version of the type",
                    ),
                    envelope::Unusable::Invalidated => {
                        (Event::Miss, "stored value's tags were invalidated")
                    }
                    envelope::Unusable::Foreign | envelope::Unusable::Undecodable => (
                        Event::Undecodable,
                        "stored value does not decode into the return type",
                    ),
                };
                if !matches!(event, Event::Miss) {
                    self.count(event);
                }
                tracing::debug!(
                    target: "redis_patterns",
                    cache = self.spec.name(),
                    "{what}; treating it as a miss"
                );
                None
            }
        }
    }

    pub(super) async fn compute<R, F: Future<Output = R>>(&self, body: F) -> R {
        self.count(Event::Computation);
        body.await
    }

    /// Runs the body and returns what to share and store.
    pub(super) async fn run_body<R, K, F>(&self, kind: &K, body: F) -> (R, Option<Encoded>)
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        // The tags' versions before the function runs: an invalidation during the run leaves
        // this entry stamped with the old version. `None`: they could not be read; not stored.
        let tags = self.write_stamp().await;
        let started = Instant::now();
        let ret = self.compute(body).await;
        let delta = started.elapsed();
        // One jittered TTL for both the key and the envelope, so that XFetch aims at the
        // moment the entry really goes stale.
        let ttl = self.spec.ttl();
        let stamp = envelope::Stamp {
            delta,
            fresh_for: ttl,
            schema: self.spec.schema::<K::Value>(),
            tags: tags.unwrap_or(0),
        };
        let value = kind.value(&ret).filter(|_| tags.is_some());
        let encoded = value.and_then(|value| {
            envelope::encode(value, self.spec.encoding_for(self.client), stamp)
                .map(|bytes| Encoded {
                    bytes,
                    stored_ttl: ttl.saturating_add(self.spec.stale_window()),
                })
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
        if let Some(Encoded { bytes, stored_ttl }) = encoded.filter(|_| kind.store(ret)) {
            let written = self.backend().set(self.key, bytes, stored_ttl).await;
            self.client.near_changed(self.key);
            match written {
                Ok(()) => self.count(Event::Write),
                Err(e) => self.backend_failed("write", &e),
            }
        }
    }

    /// Runs the body and hands the result to the flight's followers, without storing it.
    pub(super) async fn compute_and_share<R, K, F>(
        &self,
        kind: &K,
        body: F,
        leader: &mut Leader<'_>,
        stale: Option<Stale<K::Value>>,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        match self.run_body_or_stale(kind, body, stale).await {
            Ok((ret, encoded)) => {
                Self::share(Some(leader), encoded.as_ref());
                ret
            }
            Err(stale) => self.serve_stale(kind, Some(leader), stale),
        }
    }

    pub(super) async fn compute_and_store<R, K, F>(
        &self,
        kind: &K,
        body: F,
        leader: Option<&mut Leader<'_>>,
        stale: Option<Stale<K::Value>>,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        match self.run_body_or_stale(kind, body, stale).await {
            Ok((ret, encoded)) => {
                Self::share(leader, encoded.as_ref());
                self.store(kind, &ret, encoded).await;
                ret
            }
            Err(stale) => self.serve_stale(kind, leader, stale),
        }
    }

    /// Computes while holding the stampede lock `guard`, stores and releases it in one step
    /// (or only releases it, when there is nothing to store).
    pub(super) async fn compute_and_store_unlocking<R, K, F>(
        &self,
        kind: &K,
        body: F,
        leader: Option<&mut Leader<'_>>,
        stale: Option<Stale<K::Value>>,
        mut guard: StampedeLock<'_>,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        let (ret, encoded) = match self.run_body_or_stale(kind, body, stale).await {
            Ok(ran) => ran,
            Err(stale) => {
                let released = self
                    .backend()
                    .run(&Release {
                        mutex: guard.lock_key,
                        token: guard.token,
                        waiters: None,
                    })
                    .await;
                guard.armed = false;
                if let Err(e) = released {
                    self.backend_failed("unlock", &e);
                }
                return self.serve_stale(kind, leader, stale);
            }
        };
        Self::share(leader, encoded.as_ref());
        let result = match encoded.filter(|_| kind.store(&ret)) {
            Some(Encoded { bytes, stored_ttl }) => self
                .backend()
                .run(&SetAndUnlock {
                    key: self.key,
                    value: bytes.into(),
                    ttl: stored_ttl,
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

/// A result ready to store: its envelope, and the TTL of its key: the (jittered) freshness the
/// envelope's expiry was computed from, plus the function's stale window.
pub(super) struct Encoded {
    bytes: Vec<u8>,
    stored_ttl: Duration,
}

impl Encoded {
    /// The envelope, for the flight's followers.
    fn payload(&self) -> Shared {
        Shared::Value(Bytes::copy_from_slice(&self.bytes))
    }
}
