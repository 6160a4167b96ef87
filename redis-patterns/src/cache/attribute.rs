//! What the cache attributes expand to: `#[cached]` (`cached`), its `_refresh` and
//! `_invalidate` companions, `#[cache_put]` (`put`) and `#[cache_evict]` (`evict`). Each is one
//! call into the machinery of `call.rs`.

use std::future::Future;
use std::time::Duration;

use super::call::{Call, OnHit};
use super::kind::Cacheable;
use super::stats::{Event, FunctionCounters};
use crate::client::Client;
use crate::envelope;
use crate::error::{Error, Result};
use crate::flight::{Join, Shared};

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
    /// `codec = "…"`; `None`: the client's ([`Config::codec`](crate::Config::codec)).
    pub codec: Option<envelope::Codec>,
    /// `near = "…"`: the longest a value lives in the near tier.
    pub near: Option<Duration>,
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
            codec: None,
            near: None,
            counters: FunctionCounters::new(name),
        }
    }

    /// Keeps decoded values in the client's near tier for at most `lifetime`.
    pub const fn near(mut self, lifetime: Duration) -> Self {
        self.near = Some(lifetime);
        self
    }

    /// Writes in `codec` instead of the client's default.
    pub const fn codec(mut self, codec: envelope::Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// How values are written for `client`: this function's codec or the client's, and the
    /// client's compression threshold.
    pub(super) fn encoding_for(&self, client: &Client) -> envelope::Encoding {
        envelope::Encoding {
            codec: self.codec.unwrap_or(client.inner().codec),
            compress_above: client.inner().compress_above,
        }
    }

    pub(super) fn name(&self) -> &'static str {
        self.counters.name()
    }

    pub(super) fn ttl(&self) -> Duration {
        if self.ttl_jitter_permille == 0 {
            return self.ttl;
        }
        let max_extra = self
            .ttl
            .mul_f64(f64::from(self.ttl_jitter_permille) / 1000.0);
        self.ttl + max_extra.mul_f64(fastrand::f64())
    }

    pub(super) fn count(&'static self, client: &Client, event: Event) {
        client.inner().cache_counters.count(event);
        self.counters.count(event);
    }
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
        on_hit: (),
    };
    flow(&call, kind, body).await
}

/// `#[cached(near = "…")]`: the near tier first, then the cached call, whose own backend hits
/// fill the near tier (see `near/`).
#[doc(hidden)]
pub async fn cached_near<R, K, F>(
    client: &Client,
    spec: &'static CacheSpec,
    key: String,
    kind: K,
    body: F,
) -> R
where
    K: Cacheable<R>,
    K::Value: Clone + Send + Sync + 'static,
    F: Future<Output = R>,
{
    let near = client.near();
    if let Some(value) = near.tier().get::<K::Value>(&key, std::time::Instant::now()) {
        spec.count(client, Event::NearHit);
        return kind.rebuild(value);
    }
    spec.count(client, Event::NearMiss);
    let call = Call {
        client,
        spec,
        key: &key,
        on_hit: near.fill(&key, spec.near.unwrap_or(Duration::ZERO)),
    };
    flow(&call, kind, body).await
}

/// One cached call: lead the key's flight, or follow it.
async fn flow<R, K, F, H>(call: &Call<'_, H>, kind: K, body: F) -> R
where
    K: Cacheable<R>,
    F: Future<Output = R>,
    H: OnHit<K::Value>,
{
    let (client, spec, key) = (call.client, call.spec, call.key);
    loop {
        match client.inner().flights.join(key) {
            Join::Leader(leader) => return call.lead(&kind, body, leader).await,
            Join::Follower(follower) => match follower.wait().await {
                // A follower's value never fills the near tier: the leader's read may have
                // started before an invalidation this caller's ticket already saw.
                Some(Shared::Value(stored)) => {
                    if let Some((value, _)) = envelope::decode_value(&stored) {
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

/// Deletes `key` (after the annotated function succeeded); failures are logged and counted.
#[doc(hidden)]
pub async fn evict(client: &Client, counters: &'static FunctionCounters, key: String) {
    // Nobody awaits the outcome: it is logged and counted, and caching fails open.
    let _ = delete(client, counters, &key, "cache eviction failed").await;
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
        on_hit: (),
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
        on_hit: (),
    };
    let ttl = spec.ttl();
    match envelope::encode(value, spec.encoding_for(client), Duration::ZERO, ttl) {
        Ok(bytes) => {
            let written = call.backend().set(&key, bytes, ttl).await;
            client.near_changed(&key);
            match written {
                Ok(()) => call.count(Event::Write),
                Err(e) => call.backend_failed("write-through", &e),
            }
        }
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
pub async fn invalidate(
    client: &Client,
    counters: &'static FunctionCounters,
    key: String,
) -> Result<bool> {
    delete(client, counters, &key, "cache invalidation failed").await
}

/// Deletes `key`, counting the eviction (or the failure, logged with `failure`) for the
/// client and the function.
async fn delete(
    client: &Client,
    counters: &'static FunctionCounters,
    key: &str,
    failure: &'static str,
) -> Result<bool> {
    let count = |event| {
        client.inner().cache_counters.count(event);
        counters.count(event);
    };
    let deleted = client.inner().backend.del(key).await;
    client.near_changed(key);
    match deleted {
        Ok(deleted) => {
            count(Event::Eviction);
            Ok(deleted)
        }
        Err(error) => {
            count(Event::BackendError);
            tracing::warn!(target: "redis_patterns", cache = counters.name(), %error, "{failure}");
            Err(error)
        }
    }
}
