//! Cache-aside with stampede protection: what `#[cached]`, `#[cache_evict]` and
//! `#[cache_put]` expand to.
//!
//! A call builds its key, then:
//! 1. joins the in-process flight for that key (one backend read and at most one computation
//!    per key at a time in this process);
//! 2. the flight's leader reads the backend; a decodable value is a hit (with
//!    `stampede = "early"`, XFetch may decide to recompute it ahead of expiry, keeping the
//!    flight open meanwhile so that it is the process's only recomputation);
//! 3. on a miss it computes the value — with `stampede = "lock"` only while holding a
//!    distributed lock, so that across processes one caller computes and the others wait for
//!    its value — and stores it with the TTL;
//! 4. any backend failure makes the call run the function and return its result (fail open).

pub(crate) mod ops;

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::ops::Probe;
use self::ops::{GetOrLock, SetAndUnlock};
use crate::backend::Backend;
use crate::client::Client;
use crate::envelope;
use crate::error::{Error, Result};
use crate::flight::{Join, Leader, Shared};
use crate::lock::ops::Release;
use crate::stats::{Event, FunctionCounters};

/// How a cache miss is protected against many callers computing the same value.
#[derive(Debug, Clone, Copy, PartialEq)]
#[doc(hidden)]
pub enum Stampede {
    /// In-process single-flight only.
    None,
    /// A distributed lock: one caller across all processes computes; the others wait up to
    /// `lock_wait` for its value, then compute themselves. A crashed holder's lock expires
    /// after `lock_ttl`.
    Lock {
        lock_ttl: Duration,
        lock_wait: Duration,
    },
    /// XFetch probabilistic early recomputation with parameter `beta`.
    Early { beta: f64 },
}

/// The static description of one cached function.
#[doc(hidden)]
pub struct CacheSpec {
    pub ttl: Duration,
    /// Extra random TTL, in thousandths of `ttl` (`"10%"` = 100).
    pub ttl_jitter_permille: u32,
    pub stampede: Stampede,
    pub counters: FunctionCounters,
}

impl CacheSpec {
    pub const fn new(
        name: &'static str,
        ttl: Duration,
        ttl_jitter_permille: u32,
        stampede: Stampede,
    ) -> Self {
        CacheSpec {
            ttl,
            ttl_jitter_permille,
            stampede,
            counters: FunctionCounters::new(name),
        }
    }

    fn name(&self) -> &'static str {
        self.counters.name()
    }

    fn ttl(&self) -> Duration {
        if self.ttl_jitter_permille == 0 {
            return self.ttl;
        }
        let max_extra = self
            .ttl
            .mul_f64(f64::from(self.ttl_jitter_permille) / 1000.0);
        self.ttl + max_extra.mul_f64(fastrand::f64())
    }

    fn count(&'static self, client: &Client, event: Event) {
        client.inner().counters.count(event);
        self.counters.count(event);
    }
}

/// How a function's return type maps to what is cached.
#[doc(hidden)]
pub trait ReturnKind<R> {
    /// Whether the call succeeded (`Ok` for `Result`; always for other types).
    fn succeeded(&self, ret: &R) -> bool;
}

/// A return type whose successful part can be stored.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the return type `{R}` cannot be cached",
    label = "the value this function returns must implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait Cacheable<R>: ReturnKind<R> + StoredValue {
    /// The part of `ret` to hand to concurrent callers, if any.
    fn value<'r>(&self, ret: &'r R) -> Option<&'r Self::Value>;
    /// Whether `ret` is stored in the backend.
    fn store(&self, ret: &R) -> bool;
    /// Rebuilds a return value from a stored one.
    fn rebuild(&self, value: Self::Value) -> R;
}

/// What a return kind stores, as a function of the kind alone.
///
/// Not an associated type of [`Cacheable`]: a projection `<K as Cacheable<R>>::Value` names
/// the return type twice (in `K` and in `R`), and the `Send` check of a future that holds one
/// across an `.await` erases each lifetime in it separately, so for a return type with a
/// lifetime (`Box<dyn Error + Send + Sync>` is `+ 'static`) it asked for `Cacheable` "for any
/// two lifetimes" and failed. `<K as StoredValue>::Value` names it once.
#[doc(hidden)]
pub trait StoredValue {
    /// What is stored: `T` for `T` and `Result<T, E>`, `Option<T>` for `Option<T>`.
    type Value: Serialize + DeserializeOwned;
}

/// Chooses how to treat a return type by its type, not its name: `Result<T, E>` (cache
/// `Ok`), `Option<T>` (cache `Some`, or also `None` with `cache_none`), anything else
/// (cache it). Uses autoref-based selection: `(&&&Select::<R>::new()).kind()`.
#[doc(hidden)]
pub struct Select<R>(PhantomData<fn() -> R>);

impl<R> Select<R> {
    pub const fn new() -> Self {
        Select(PhantomData)
    }
}

impl<R> Default for Select<R> {
    fn default() -> Self {
        Self::new()
    }
}

#[doc(hidden)]
pub trait SelectResult {
    type Kind;
    fn kind(&self) -> Self::Kind;
}
#[doc(hidden)]
pub trait SelectOption {
    type Kind;
    fn kind(&self) -> Self::Kind;
}
#[doc(hidden)]
pub trait SelectValue {
    type Kind;
    fn kind(&self) -> Self::Kind;
}

impl<T, E> SelectResult for &&Select<Result<T, E>> {
    type Kind = ResultKind<T, E>;
    fn kind(&self) -> Self::Kind {
        ResultKind(PhantomData)
    }
}
impl<T> SelectOption for &Select<Option<T>> {
    type Kind = OptionKind<T>;
    fn kind(&self) -> Self::Kind {
        OptionKind {
            cache_none: false,
            _t: PhantomData,
        }
    }
}
impl<R> SelectValue for Select<R> {
    type Kind = ValueKind<R>;
    fn kind(&self) -> Self::Kind {
        ValueKind(PhantomData)
    }
}

#[doc(hidden)]
pub struct ResultKind<T, E>(PhantomData<fn() -> (T, E)>);
#[doc(hidden)]
pub struct OptionKind<T> {
    cache_none: bool,
    _t: PhantomData<fn() -> T>,
}
#[doc(hidden)]
pub struct ValueKind<R>(PhantomData<fn() -> R>);

impl<T> OptionKind<T> {
    /// Also store `None` results.
    pub fn cache_none(self) -> Self {
        OptionKind {
            cache_none: true,
            _t: PhantomData,
        }
    }
}

/// Only `Option` return types accept `cache_none`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`cache_none` only applies to functions returning `Option<T>`",
    label = "this function does not return an `Option`"
)]
pub trait CacheNone {
    fn cache_none(self) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T> CacheNone for OptionKind<T> {
    fn cache_none(self) -> Self {
        OptionKind::cache_none(self)
    }
}

impl<T, E> ReturnKind<Result<T, E>> for ResultKind<T, E> {
    fn succeeded(&self, ret: &Result<T, E>) -> bool {
        ret.is_ok()
    }
}
impl<T: Serialize + DeserializeOwned, E> StoredValue for ResultKind<T, E> {
    type Value = T;
}
impl<T: Serialize + DeserializeOwned, E> Cacheable<Result<T, E>> for ResultKind<T, E> {
    fn value<'r>(&self, ret: &'r Result<T, E>) -> Option<&'r T> {
        ret.as_ref().ok()
    }
    fn store(&self, ret: &Result<T, E>) -> bool {
        ret.is_ok()
    }
    fn rebuild(&self, value: T) -> Result<T, E> {
        Ok(value)
    }
}

impl<T> ReturnKind<Option<T>> for OptionKind<T> {
    fn succeeded(&self, _: &Option<T>) -> bool {
        true
    }
}
impl<T: Serialize + DeserializeOwned> StoredValue for OptionKind<T> {
    type Value = Option<T>;
}
impl<T: Serialize + DeserializeOwned> Cacheable<Option<T>> for OptionKind<T> {
    fn value<'r>(&self, ret: &'r Option<T>) -> Option<&'r Option<T>> {
        Some(ret)
    }
    fn store(&self, ret: &Option<T>) -> bool {
        ret.is_some() || self.cache_none
    }
    fn rebuild(&self, value: Option<T>) -> Option<T> {
        value
    }
}

impl<R> ReturnKind<R> for ValueKind<R> {
    fn succeeded(&self, _: &R) -> bool {
        true
    }
}
impl<R: Serialize + DeserializeOwned> StoredValue for ValueKind<R> {
    type Value = R;
}
impl<R: Serialize + DeserializeOwned> Cacheable<R> for ValueKind<R> {
    fn value<'r>(&self, ret: &'r R) -> Option<&'r R> {
        Some(ret)
    }
    fn store(&self, _: &R) -> bool {
        true
    }
    fn rebuild(&self, value: R) -> R {
        value
    }
}

/// Pins a future's output type to the kind's return type, so that type errors land on the
/// attribute's return type rather than deep inside the runtime.
#[doc(hidden)]
pub fn check_cacheable<R, K: Cacheable<R>>(kind: K) -> K {
    kind
}

/// The cached call: see the module documentation.
#[doc(hidden)]
pub async fn cached<R, K, F>(
    client: &Client,
    spec: &'static CacheSpec,
    key: String,
    kind: K,
    body: F,
) -> R
where
    K: Cacheable<R>,
    F: Future<Output = R>,
{
    let call = Call {
        client,
        spec,
        key: &key,
    };
    loop {
        match client.inner().flights.join(&key) {
            Join::Leader(leader) => return call.lead(&kind, body, leader).await,
            Join::Follower(follower) => match follower.wait().await {
                Some(Shared::Value(payload)) => {
                    if let Ok(value) = serde_json::from_slice(&payload) {
                        spec.count(client, Event::Hit);
                        return kind.rebuild(value);
                    }
                    // The leader serialized this very type; a failure means a non-round-trip
                    // Serialize impl. Computing is the only correct answer left.
                    return call.compute(body).await;
                }
                Some(Shared::NotShareable) => return call.compute(body).await,
                // The leader was cancelled before it had a result: start over.
                None => continue,
            },
        }
    }
}

struct Call<'a> {
    client: &'a Client,
    spec: &'static CacheSpec,
    key: &'a str,
}

impl Call<'_> {
    fn backend(&self) -> &Backend {
        &self.client.inner().backend
    }

    fn count(&self, event: Event) {
        self.spec.count(self.client, event);
    }

    fn backend_failed(&self, what: &str, error: &Error) {
        self.count(Event::BackendError);
        tracing::warn!(
            target: "redis_patterns",
            cache = self.spec.name(),
            %error,
            "cache {what} failed; running the function uncached"
        );
    }

    async fn lead<R, K, F>(&self, kind: &K, body: F, leader: Leader<'_>) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        match self.backend().get(self.key).await {
            Ok(Some(stored)) => {
                if let Some((value, header)) = self.decode::<R, K>(&stored) {
                    let payload = || Shared::Value(stored.slice(envelope::HEADER_LEN..));
                    if let Stampede::Early { beta } = self.spec.stampede
                        && xfetch_recompute(header, beta, envelope::now_ms(), fastrand::f64())
                    {
                        return self.refresh_early(kind, body, leader, payload).await;
                    }
                    // Callers waiting on this flight get the stored value.
                    leader.finish(payload);
                    self.count(Event::Hit);
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
        let decoded = envelope::decode(stored)
            .and_then(|(header, payload)| Some((serde_json::from_slice(payload).ok()?, header)));
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
    {
        let lock_key = lock_key(self.key);
        let token = new_token();
        let deadline = Instant::now() + lock_wait;
        let mut delay = Duration::from_millis(1);
        let mut waited = false;
        loop {
            let probe = GetOrLock {
                key: self.key,
                lock_key: &lock_key,
                token: &token,
                lock_ttl,
            };
            match self.backend().run(&probe).await {
                Ok(Probe::Acquired) => {
                    let guard = LockGuard {
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
                    if let Some((value, _)) = self.decode::<R, K>(&stored) {
                        leader.publish(|| Shared::Value(stored.slice(envelope::HEADER_LEN..)));
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
                    // milliseconds, then back off to at most 20 ms (with jitter).
                    let jittered = delay.mul_f64(0.75 + fastrand::f64() * 0.5);
                    tokio::time::sleep(jittered.min(deadline - now)).await;
                    delay = (delay * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    self.backend_failed("lock", &e);
                    return self.compute_and_share(kind, body, leader).await;
                }
            }
        }
    }

    async fn compute<R, F: Future<Output = R>>(&self, body: F) -> R {
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
            envelope::encode(value, delta, ttl)
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
            match self.backend().set(self.key, bytes, ttl).await {
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

    async fn compute_and_store<R, K, F>(
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
        mut guard: LockGuard<'_>,
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
                })
                .await
                .map(drop),
        };
        guard.armed = false;
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
    /// The JSON payload, for the flight's followers.
    fn payload(&self) -> Shared {
        Shared::Value(Bytes::copy_from_slice(&self.bytes[envelope::HEADER_LEN..]))
    }
}

/// Releases a stampede lock if the computation is cancelled or panics, instead of leaving the
/// other callers to wait for its TTL.
struct LockGuard<'a> {
    backend: Arc<Backend>,
    lock_key: &'a str,
    token: &'a str,
    armed: bool,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            crate::backend::unlock_in_background(
                &self.backend,
                self.lock_key.to_owned(),
                self.token.to_owned(),
            );
        }
    }
}

/// XFetch (Vattani et al., VLDB 2015): recompute when
/// `now - delta * beta * ln(rand) >= expiry`, with `rand` uniform in (0, 1].
fn xfetch_recompute(header: envelope::Header, beta: f64, now_ms: u64, uniform: f64) -> bool {
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

/// A random 128-bit owner token, hex-encoded.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to a seeded generator, still unique per process.
        bytes = fastrand::u128(..).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deletes `key` (after the annotated function succeeded); failures are logged and counted.
#[doc(hidden)]
pub async fn evict(client: &Client, counters: &'static FunctionCounters, key: String) {
    match client.inner().backend.del(&key).await {
        Ok(_) => {
            client.inner().counters.count(Event::Eviction);
            counters.count(Event::Eviction);
        }
        Err(error) => {
            client.inner().counters.count(Event::BackendError);
            counters.count(Event::BackendError);
            tracing::warn!(target: "redis_patterns", cache = counters.name(), %error, "cache eviction failed");
        }
    }
}

/// What `<fn>_refresh(..)` companions call: runs the body without reading the cache and stores
/// its result (with its computation time, for `stampede = "early"`).
#[doc(hidden)]
pub async fn refresh<R, K, F>(
    client: &Client,
    spec: &'static CacheSpec,
    key: String,
    kind: K,
    body: F,
) -> R
where
    K: Cacheable<R>,
    F: Future<Output = R>,
{
    let call = Call {
        client,
        spec,
        key: &key,
    };
    call.compute_and_store(&kind, body, None).await
}

/// Stores the successful part of `ret` under `key` (write-through); failures are logged.
#[doc(hidden)]
pub async fn put<R, K: Cacheable<R>>(
    client: &Client,
    spec: &'static CacheSpec,
    key: String,
    kind: &K,
    ret: &R,
) {
    if !kind.store(ret) {
        return;
    }
    let Some(value) = kind.value(ret) else { return };
    let call = Call {
        client,
        spec,
        key: &key,
    };
    let ttl = spec.ttl();
    match envelope::encode(value, Duration::ZERO, ttl) {
        Ok(bytes) => match call.backend().set(&key, bytes, ttl).await {
            Ok(()) => call.count(Event::Write),
            Err(e) => call.backend_failed("write-through", &e),
        },
        Err(e) => tracing::error!(
            target: "redis_patterns",
            cache = spec.name(),
            error = %Error::Serialize(e),
            "write-through value not cached"
        ),
    }
}

/// Deletes `key`; what `<fn>_invalidate(..)` companions call. `true` when a value was stored.
#[doc(hidden)]
pub async fn invalidate(client: &Client, name: &'static str, key: String) -> Result<bool> {
    let deleted = client.inner().backend.del(&key).await.inspect_err(|error| {
        tracing::warn!(target: "redis_patterns", cache = name, %error, "cache invalidation failed");
    })?;
    client.inner().counters.count(Event::Eviction);
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Header;

    #[test]
    fn xfetch_never_recomputes_far_from_expiry_and_always_at_expiry() {
        let h = Header {
            delta_ms: 100,
            expires_ms: 1_000_000,
        };
        // Far from expiry: only an astronomically unlikely draw would trigger.
        assert!(!xfetch_recompute(h, 1.0, 900_000, 0.5));
        // At or after expiry: always.
        assert!(xfetch_recompute(h, 1.0, 1_000_000, 0.0));
        // Within a few deltas: with a draw close to 0 (ln -> -inf) it triggers.
        assert!(xfetch_recompute(h, 1.0, 999_800, 0.999));
        // A larger beta recomputes earlier.
        assert!(!xfetch_recompute(h, 1.0, 999_000, 0.9));
        assert!(xfetch_recompute(h, 10.0, 999_000, 0.9));
    }

    #[test]
    fn xfetch_probability_grows_toward_expiry() {
        let h = Header {
            delta_ms: 100,
            expires_ms: 10_000,
        };
        let rate = |now| {
            (0..10_000)
                .filter(|i| xfetch_recompute(h, 1.0, now, f64::from(*i) / 10_000.0))
                .count()
        };
        let (far, mid, near) = (rate(9_500), rate(9_850), rate(9_990));
        assert!(far < mid && mid < near, "{far} {mid} {near}");
    }

    #[test]
    fn tokens_are_unique_128_bit_hex() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_token());
    }

    #[test]
    fn ttl_jitter_stays_in_bounds() {
        let spec = CacheSpec::new("t", Duration::from_secs(100), 100, Stampede::None);
        for _ in 0..1000 {
            let ttl = spec.ttl();
            assert!(ttl >= Duration::from_secs(100) && ttl <= Duration::from_secs(110));
        }
    }
}
