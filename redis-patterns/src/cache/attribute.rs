//! What the cache attributes expand to: `#[cached]` (`cached`), its `_refresh` and
//! `_invalidate` companions, `#[cache_put]` (`put`) and `#[cache_evict]` (`evict`). Each is one
//! call into the machinery of `call.rs`.

use std::future::Future;
use std::time::Duration;

use super::call::Call;
use super::{CacheSpec, Cacheable};
use crate::client::Client;
use crate::envelope;
use crate::error::{Error, Result};
use crate::flight::{Join, Shared};
use crate::stats::{Event, FunctionCounters};

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
