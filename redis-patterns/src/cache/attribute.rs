//! What the cache attributes expand to: `#[cached]` (`cached`), its `_refresh` and
//! `_invalidate` companions, `#[cache_put]` (`put`) and `#[cache_evict]` (`evict`). Each is one
//! call into the machinery of `call.rs`.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::call::{Call, OnHit};
use super::kind::Cacheable;
use super::stale::Background;
use super::stats::{Event, FunctionCounters};
use crate::client::Client;
use crate::envelope;
use crate::error::{Error, Result};
use crate::flight::{Join, Shared};
use crate::util::observe;

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

/// The lease of a background refresh without `stampede = "lock"`: `lock_ttl`'s default.
const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(10);

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
    /// `stale_if_error = "…"`: how long past its TTL an entry is kept to be served when the
    /// function fails or times out.
    pub stale_if_error: Duration,
    /// `stale_while_revalidate = "…"`: how long past its TTL an entry is served at once while
    /// it is refreshed in the background.
    pub stale_while_revalidate: Duration,
    /// `timeout = "…"`: how long the function may run when a stale value could be served
    /// instead.
    pub timeout: Option<Duration>,
    /// `version = N`, or `None` for the fingerprint.
    pub version: Option<u32>,
    /// The defining crate's name and version, for the fingerprint.
    pub krate: (&'static str, &'static str),
    /// The schema, computed on first use (the fingerprint needs the value type's name).
    pub schema: OnceLock<u32>,
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
            stale_if_error: Duration::ZERO,
            stale_while_revalidate: Duration::ZERO,
            timeout: None,
            version: None,
            krate: ("", ""),
            schema: OnceLock::new(),
            counters: FunctionCounters::new(name),
        }
    }

    /// Keeps entries `window` past their TTL, to serve when the function fails.
    pub const fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = window;
        self
    }

    /// Serves entries up to `window` past their TTL at once, refreshing them in the background.
    pub const fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.stale_while_revalidate = window;
        self
    }

    /// Bounds the function's run at `timeout` when a stale value could be served instead.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The value type's version (`version = N`), instead of the fingerprint.
    pub const fn version(mut self, version: u32) -> Self {
        self.version = Some(version);
        self
    }

    /// The defining crate's name and version (`env!("CARGO_PKG_NAME")`,
    /// `env!("CARGO_PKG_VERSION")`), part of the default fingerprint.
    pub const fn defined_in(
        mut self,
        name: Option<&'static str>,
        version: Option<&'static str>,
    ) -> Self {
        self.krate = match (name, version) {
            (Some(name), Some(version)) => (name, version),
            (Some(name), None) => (name, ""),
            (None, Some(version)) => ("", version),
            (None, None) => ("", ""),
        };
        self
    }

    /// The schema entries of value type `V` are written with and read by.
    pub(super) fn schema<V>(&self) -> u32 {
        *self.schema.get_or_init(|| {
            envelope::schema(
                self.version,
                std::any::type_name::<V>(),
                self.krate.0,
                self.krate.1,
            )
        })
    }

    /// How long a stampede lock (or a background refresh's) is held at most.
    pub(super) fn lock_ttl(&self) -> Duration {
        match self.stampede {
            Stampede::Lock { lock_ttl, .. } => lock_ttl,
            Stampede::None | Stampede::Early { .. } => DEFAULT_LOCK_TTL,
        }
    }

    /// The longest an entry is stored: the TTL with all its jitter, plus the stale window.
    pub(super) fn longest_stored_ttl(&self) -> Duration {
        let jitter = self
            .ttl
            .mul_f64(f64::from(self.ttl_jitter_permille) / 1000.0);
        self.ttl
            .saturating_add(jitter)
            .saturating_add(self.stale_window())
    }

    /// How long past its freshness an entry is kept.
    pub(super) fn stale_window(&self) -> Duration {
        self.stale_if_error.max(self.stale_while_revalidate)
    }

    /// Whether entries are kept past their freshness.
    pub(super) fn keeps_stale(&self) -> bool {
        !self.stale_window().is_zero()
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

    /// The `cache` span of one call (level `DEBUG`): the template, and the outcome once known.
    pub(super) fn span(&self) -> tracing::Span {
        tracing::debug_span!(
            target: "redis_patterns",
            "cache",
            cache = self.name(),
            outcome = tracing::field::Empty,
        )
    }

    pub(super) fn count(&'static self, client: &Client, event: Event) {
        client.inner().cache_counters.count(event);
        self.counters.count(event);
    }
}

/// The cached call: see the module documentation.
#[doc(hidden)]
pub async fn cached<R, K, F, S>(
    client: &Client,
    spec: &'static CacheSpec,
    key: String,
    tags: &[String],
    kind: K,
    body: F,
    background: S,
) -> R
where
    K: Cacheable<R>,
    F: Future<Output = R>,
    S: Background<R, K, F>,
{
    let span = spec.span();
    let call = Call::new(client, spec, &key, tags, ()).in_span(span.clone());
    timed(spec, flow(&call, kind, body, &background).instrument(span)).await
}

/// `#[cached(near = "…")]`: the near tier first, then the cached call, whose own backend hits
/// fill the near tier (see `near/`).
#[doc(hidden)]
pub async fn cached_near<R, K, F, S>(
    client: &Client,
    spec: &'static CacheSpec,
    key: String,
    tags: &[String],
    kind: K,
    body: F,
    background: S,
) -> R
where
    K: Cacheable<R>,
    K::Value: Clone + Send + Sync + 'static,
    F: Future<Output = R>,
    S: Background<R, K, F>,
{
    let near = client.near();
    if let Some(value) = near.tier().get::<K::Value>(&key, std::time::Instant::now()) {
        // Not timed: a near hit takes a fraction of a microsecond, which reading the clock
        // twice would add to.
        spec.count(client, Event::NearHit);
        spec.span().record("outcome", "near_hit");
        return kind.rebuild(value);
    }
    spec.count(client, Event::NearMiss);
    let span = spec.span();
    let fill = near.fill(&key, tags, spec.near.unwrap_or(Duration::ZERO));
    let call = Call::new(client, spec, &key, tags, fill).in_span(span.clone());
    timed(spec, flow(&call, kind, body, &background).instrument(span)).await
}

/// Runs a cached call, recording its duration with the `metrics` feature.
async fn timed<R>(spec: &CacheSpec, call: impl Future<Output = R>) -> R {
    if !observe::TIMING {
        return call.await;
    }
    let started = Instant::now();
    let ret = call.await;
    spec.counters.duration(started.elapsed());
    ret
}

/// One cached call: lead the key's flight, or follow it.
async fn flow<R, K, F, S, H>(call: &Call<'_, H>, kind: K, body: F, background: &S) -> R
where
    K: Cacheable<R>,
    F: Future<Output = R>,
    S: Background<R, K, F>,
    H: OnHit<K::Value>,
{
    let (client, key) = (call.client, call.key);
    loop {
        match client.inner().flights.join(key) {
            Join::Leader(leader) => return call.lead(&kind, body, background, leader).await,
            Join::Follower(follower) => match follower.wait().await {
                // A follower's value never fills the near tier: the leader's read may have
                // started before an invalidation this caller's ticket already saw.
                Some(Shared::Value(stored)) => {
                    // The leader checked the tags of what it hands over (or just computed it).
                    let expected = envelope::Expected {
                        tags: envelope::ANY_TAGS,
                        ..call.expected::<K::Value>()
                    };
                    if let Ok((value, _)) = envelope::decode_value(&stored, expected) {
                        call.count(Event::Hit);
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
    tags: &[String],
    kind: K,
    body: F,
) -> R
where
    K: Cacheable<R>,
    F: Future<Output = R>,
{
    let call = Call::new(client, spec, &key, tags, ());
    call.compute_and_store(&kind, body, None, None).await
}

/// Stores the successful part of `ret` under `key` (write-through); failures are logged.
#[doc(hidden)]
pub async fn put<R, K: Cacheable<R>>(
    client: &Client,
    spec: &'static CacheSpec,
    key: String,
    tags: &[String],
    kind: &K,
    ret: &R,
) {
    if !kind.store(ret) {
        return;
    }
    let Some(value) = kind.value(ret) else { return };
    let call = Call::new(client, spec, &key, tags, ());
    let Some(tags) = call.write_stamp().await else {
        return;
    };
    let ttl = spec.ttl();
    let stamp = envelope::Stamp {
        delta: Duration::ZERO,
        fresh_for: ttl,
        schema: spec.schema::<K::Value>(),
        tags,
    };
    match envelope::encode(value, spec.encoding_for(client), stamp) {
        Ok(bytes) => {
            let stored_ttl = ttl.saturating_add(spec.stale_window());
            let written = call.backend().set(&key, bytes, stored_ttl).await;
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
    let count = |event: Event| {
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
