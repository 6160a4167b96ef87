//! Stale entries: `stale_if_error` serves the entry past its TTL when the function fails or
//! times out; `stale_while_revalidate` serves it at once and refreshes it in the background.
//!
//! An entry is stored for `ttl + max(stale_if_error, stale_while_revalidate)`, and its envelope
//! says when it stops being fresh (`expires_ms`). A call that finds it stale
//! - within `stale_while_revalidate` of that moment: returns it at once, and one background task
//!   per key in the process (and, through the stampede lock key, in the whole deployment)
//!   computes and stores the new value;
//! - otherwise: computes as on a miss (under the stampede lock with `stampede = "lock"`); if the
//!   function returns `Err` or runs past `timeout`, the stale value is returned instead.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::attribute::CacheSpec;
use super::call::{Call, Encoded, OnHit};
use super::kind::Cacheable;
use super::ops::{GetOrLock, Probe};
use super::stampede::{StampedeLock, lock_key};
use super::stats::Event;
use crate::client::Client;
use crate::envelope;
use crate::flight::{Leader, Shared};

/// A stale entry at hand: decoded, and as stored (for the flight's followers).
pub(super) struct Stale<V> {
    pub(super) value: V,
    pub(super) stored: Bytes,
    pub(super) header: envelope::Header,
}

impl<V> Stale<V> {
    /// Whether `now_ms` is still within `window` of the entry going stale.
    pub(super) fn within(&self, window: Duration, now_ms: u64) -> bool {
        now_ms
            < self
                .header
                .expires_ms
                .saturating_add(crate::util::whole_millis(window))
    }
}

/// Whether a `#[cached]` body can be refreshed in the background: [`Inline`] (it cannot) or
/// [`Spawn`] (`stale_while_revalidate`). A type parameter rather than an associated type of
/// the body, so that the `Send` check of the cached call's future meets no projection (see
/// `kind::StoredValue`).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "with `stale_while_revalidate`, the function must be able to run in the background",
    label = "its parameters must be owned and `Send` (`String`, not `&str`), and its result `Send + 'static`",
    note = "a stale value is returned at once and the function then runs in a spawned task, after the call has returned"
)]
pub trait Background<R, K, F> {
    /// Starts refreshing `key` with `body` in the background, and `None`; or gives the body
    /// back when it cannot run in the background.
    fn refresh(
        &self,
        client: &Client,
        spec: &'static CacheSpec,
        key: &str,
        tags: &[String],
        kind: &K,
        body: F,
    ) -> Option<F>;
}

/// The body runs in the call only.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Inline;

/// The body may also run in a spawned task (`stale_while_revalidate`).
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Spawn;

impl<R, K, F> Background<R, K, F> for Inline {
    #[inline]
    fn refresh(
        &self,
        _: &Client,
        _: &'static CacheSpec,
        _: &str,
        _: &[String],
        _: &K,
        body: F,
    ) -> Option<F> {
        Some(body)
    }
}

/// Checks, at the attribute, that the body can run in the background.
#[doc(hidden)]
pub fn check_revalidatable<R, K, F>(spawn: Spawn, _: &F, _: &K) -> Spawn
where
    Spawn: Background<R, K, F>,
{
    spawn
}

impl<R, K, F> Background<R, K, F> for Spawn
where
    F: Future<Output = R> + Send + 'static,
    R: Send + 'static,
    K: Cacheable<R> + Clone + Send + Sync + 'static,
    K::Value: Send,
{
    fn refresh(
        &self,
        client: &Client,
        spec: &'static CacheSpec,
        key: &str,
        tags: &[String],
        kind: &K,
        body: F,
    ) -> Option<F> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Some(body);
        };
        {
            let Ok(mut refreshing) = client.inner().refreshing.lock() else {
                return Some(body);
            };
            if !refreshing.insert(key.to_owned()) {
                // Already refreshing in this process: the stale value is all this call needs.
                return None;
            }
        }
        let (client, key, tags, kind) =
            (client.clone(), key.to_owned(), tags.to_vec(), kind.clone());
        runtime.spawn(async move {
            let _done = Refreshing {
                client: &client,
                key: &key,
            };
            let call = Call::new(&client, spec, &key, &tags, ());
            refresh(&call, &kind, body).await;
        });
        None
    }
}

/// Removes a key from the client's refreshing set when its refresh ends (or is dropped).
struct Refreshing<'a> {
    client: &'a Client,
    key: &'a str,
}

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        if let Ok(mut refreshing) = self.client.inner().refreshing.lock() {
            refreshing.remove(self.key);
        }
    }
}

/// The background refresh: takes the key's stampede lock (so one process refreshes), computes,
/// stores and releases; does nothing when another caller holds the lock or the entry is fresh
/// again.
async fn refresh<R, K, F>(call: &Call<'_>, kind: &K, body: F)
where
    K: Cacheable<R>,
    F: Future<Output = R>,
{
    let spec = call.spec;
    let lock_key = lock_key(call.key);
    let token = crate::util::new_token();
    let probe = GetOrLock {
        key: call.key,
        lock_key: &lock_key,
        token: &token,
        lock_ttl: spec.lock_ttl(),
        now_ms: envelope::now_ms(),
    };
    match call.backend().run(&probe).await {
        Ok(Probe::Acquired(_)) => {}
        Ok(Probe::Value(_) | Probe::Held(_)) => return,
        Err(e) => return call.backend_failed("background refresh", &e),
    }
    call.count(Event::BackgroundRefresh);
    let guard = StampedeLock::new(call.client, &lock_key, &token);
    let refresh = call.compute_and_store_unlocking(kind, body, None, None, guard);
    // `timeout` bounds a refresh too: cut, it releases the lock (the guard's drop), so that
    // the next stale read can try again instead of waiting out `lock_ttl`.
    let refreshed = match spec.timeout {
        Some(timeout) => tokio::time::timeout(timeout, refresh).await.ok(),
        None => Some(refresh.await),
    };
    if !refreshed.is_some_and(|ret| kind.succeeded(&ret)) {
        tracing::warn!(
            target: "redis_patterns",
            cache = spec.name(),
            "background refresh failed or ran past its timeout; the stale value is served \
             until the next attempt"
        );
    }
}

/// The stale paths of a cached call.
impl<H> Call<'_, H> {
    /// The entry is there but stale: within `stale_while_revalidate`, served at once while a
    /// background task refreshes it; otherwise recomputed as on a miss, with the stale value
    /// served if the function fails (`stale_if_error`).
    pub(super) async fn found_stale<R, K, F, S>(
        &self,
        kind: &K,
        body: F,
        background: &S,
        leader: Leader<'_>,
        stale: Stale<K::Value>,
        now_ms: u64,
    ) -> R
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
        S: Background<R, K, F>,
        H: OnHit<K::Value>,
    {
        let mut body = body;
        if stale.within(self.spec.stale_while_revalidate, now_ms) {
            match background.refresh(self.client, self.spec, self.key, self.tags, kind, body) {
                None => {
                    leader.finish(|| Shared::Value(stale.stored.clone()));
                    self.count(Event::StaleWhileRevalidating);
                    return kind.rebuild(stale.value);
                }
                Some(back) => body = back,
            }
        }
        self.count(Event::Miss);
        self.compute_missing(kind, body, leader, Some(stale)).await
    }

    /// A stale value the backend returned with a stampede lock's outcome, if it decodes.
    pub(super) fn stale_from<R, K: Cacheable<R>>(
        &self,
        stored: Option<Bytes>,
    ) -> Option<Stale<K::Value>> {
        let stored = stored?;
        let (value, header) = envelope::decode_value(&stored, self.expected::<K::Value>()).ok()?;
        Some(Stale {
            value,
            stored,
            header,
        })
    }

    /// Runs the body, unless a stale value is at hand and the body fails or runs past the
    /// function's `timeout`: then `Err` with the stale value, to serve.
    pub(super) async fn run_body_or_stale<R, K, F>(
        &self,
        kind: &K,
        body: F,
        stale: Option<Stale<K::Value>>,
    ) -> Result<(R, Option<Encoded>), Stale<K::Value>>
    where
        K: Cacheable<R>,
        F: Future<Output = R>,
    {
        let Some(stale) = stale else {
            return Ok(self.run_body(kind, body).await);
        };
        let run = self.run_body(kind, body);
        let ran = match self.spec.timeout {
            Some(timeout) => match tokio::time::timeout(timeout, run).await {
                Ok(ran) => ran,
                Err(_) => {
                    tracing::warn!(
                        target: "redis_patterns",
                        cache = self.spec.name(),
                        ?timeout,
                        "the function ran past its timeout; serving the stale value"
                    );
                    return Err(stale);
                }
            },
            None => run.await,
        };
        if kind.succeeded(&ran.0) {
            return Ok(ran);
        }
        tracing::warn!(
            target: "redis_patterns",
            cache = self.spec.name(),
            "the function failed; serving the stale value"
        );
        Err(stale)
    }

    /// Returns a stale value instead of the function's failure, and hands it to the flight.
    pub(super) fn serve_stale<R, K: Cacheable<R>>(
        &self,
        kind: &K,
        leader: Option<&mut Leader<'_>>,
        stale: Stale<K::Value>,
    ) -> R {
        if let Some(leader) = leader {
            leader.publish(|| Shared::Value(stale.stored.clone()));
        }
        self.count(Event::StaleOnError);
        kind.rebuild(stale.value)
    }
}
