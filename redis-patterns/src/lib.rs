//! Caching, rate limiting and distributed locking on async functions, with one attribute,
//! on Redis or in memory.
//!
//! ```
//! use redis_patterns::cached;
//! # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
//! # struct Product { id: u64, name: String }
//! # #[derive(Debug)] struct DbError;
//! # async fn load(id: u64) -> Result<Product, DbError> { Ok(Product { id, name: "lamp".into() }) }
//!
//! #[cached(key = "product:<id>", ttl = "5m", stampede = "lock")]
//! async fn product(id: u64) -> Result<Product, DbError> {
//!     load(id).await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Once, at start-up: REDIS_URL, or mem:// when unset.
//! redis_patterns::init_from_env().await?;
//!
//! let first = product(7).await;   // miss: runs the body, stores the value for 5 minutes
//! let second = product(7).await;  // hit
//! assert_eq!(first.unwrap(), second.unwrap());
//! assert_eq!(product_key(7), "{product:#7}");
//! product_invalidate(7).await?;   // companion functions are generated next to `product`
//! # Ok(()) }
//! ```
//!
//! The attributes ([`cached`], [`cache_evict`], [`cache_put`], [`rate_limited`],
//! [`with_lock`], [`counted`]) expand to calls into this crate; each attribute's page lists every option.
//! At the root:
//!
//! * [`Client`] and [`Config`]: where the data lives (`redis://`, `rediss://` with feature
//!   `tls`, `unix://`, or `mem://`), timeouts, namespace; [`init`] installs the process-wide
//!   default.
//! * [`KeyPart`]: what may stand in a key template's placeholder; features `uuid`, `ulid`,
//!   `time` and `chrono` implement it for those crates' ids and date-times.
//! * [`Error`]: what the explicit APIs return.
//!
//! One module per pattern, with its types:
//!
//! * [`cache`]: [`CacheStats`](cache::CacheStats), hit rates per client and per function.
//! * [`rate_limit`]: [`RateLimiter`](rate_limit::RateLimiter), the limits of
//!   [`rate_limited`] applied by key at run time, the [`RateLimited`](rate_limit::RateLimited)
//!   error, and with feature `tower`, `rate_limit::http`: an HTTP rate-limit layer for tower
//!   and axum (429, `Retry-After`, `RateLimit-*`).
//! * [`lock`]: [`Lock`](lock::Lock) (owner and fencing tokens, lease extension),
//!   [`Redlock`](lock::Redlock), and the [`LockError`](lock::LockError) of [`with_lock`].
//! * [`counter`]: [`Counter`](counter::Counter) (increments with their expiry in one step),
//!   [`WindowedCounter`](counter::WindowedCounter) (per minute, hour, day; the counts of
//!   [`counted`]) and [`UniqueCounter`](counter::UniqueCounter) (HyperLogLog per window).
//! * [`leaderboard`]: [`Leaderboard`](leaderboard::Leaderboard), sorted sets with submit
//!   policies, first-come tie-breaks, tie policies, and periodic and combined boards.
//! * [`session`]: [`Sessions`](session::Sessions), typed sessions with sliding and absolute
//!   expiry, optimistic versions, rotation and "log out everywhere".
//! * [`pubsub`]: [`Topic`](pubsub::Topic) and [`Pattern`](pubsub::Pattern), typed fan-out
//!   on a dedicated connection, renewed after any loss with a
//!   [`Resubscribed`](pubsub::Notice::Resubscribed) notice (at-most-once delivery);
//!   [sharded](pubsub::Topic::sharded) topics (`SPUBLISH`/`SSUBSCRIBE`) that stay within
//!   their shard on a cluster and follow slot moves.
//! * [`stream`]: [`EventStream`](stream::EventStream), typed events appended to a capped
//!   Redis stream, and consumer groups handling each at least once
//!   ([`stream_consumer`](macro@stream_consumer), [`Consumer`](stream::Consumer)): retries,
//!   dead letters, claims from crashed consumers, graceful shutdown.
//! * [`queue`]: [`Queue`](queue::Queue), reliable job queues with delayed jobs, run by
//!   workers ([`job`](macro@job), [`Worker`](queue::Worker)) under a lease, with retries and
//!   a dead list.
//!
//! For tests of your own code, feature `test-util` adds `test_util`: raw access to the keys a
//! client stores (`test_util::Store`), and the conformance checks every backend passes.
//!
//! Failure policy: caching fails open. If Redis is unreachable, slower than the command
//! timeout, or answers with an error, the function runs and its result is returned; the
//! failure is logged with `tracing` (target `redis_patterns`) and counted in
//! [`CacheStats::backend_errors`](cache::CacheStats::backend_errors). After repeated connection failures the client fails fast,
//! without waiting, while a background probe finds the server again (within 250 ms of its
//! return by default); a connection that stops answering is replaced. The README's "Failure
//! policy" gives the bounds, which the fault-injection tests assert.

#![warn(missing_docs)]

mod backend;
pub mod cache;
mod client;
mod config;
pub mod counter;
mod envelope;
mod error;
mod flight;
mod key;
pub mod leaderboard;
pub mod lock;
pub mod pubsub;
pub mod queue;
pub mod rate_limit;
pub mod session;
pub mod stream;
#[cfg(feature = "test-util")]
pub mod test_util;
mod util;

pub use client::{Client, IntoConfig, init, init_from_env};
pub use config::Config;
pub use error::{BackendError, Error, Result};
pub use key::{KeyPart, KeyWriter};

/// Caches an async function's result: `#[cached(key = "product:<id>", ttl = "5m")]`.
///
/// ```
/// use redis_patterns::{Client, cached};
/// # use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
/// # static LOADS: AtomicU32 = AtomicU32::new(0);
/// # #[derive(Debug)] struct DbError;
///
/// #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// struct Product { id: u64, name: String }
///
/// #[cached(key = "product:<id>", ttl = "5m", stampede = "lock", client = client)]
/// async fn product(client: &Client, id: u64) -> Result<Product, DbError> {
///     LOADS.fetch_add(1, SeqCst); // the database
///     Ok(Product { id, name: "lamp".into() })
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new("mem://")?; // or redis://…
/// assert_eq!(product(&client, 7).await.unwrap().name, "lamp"); // miss: runs the body
/// assert_eq!(product(&client, 7).await.unwrap().name, "lamp"); // hit
/// assert_eq!(LOADS.load(SeqCst), 1);
/// assert!(product_invalidate(&client, 7).await?); // companions: _key, _invalidate, _refresh
/// product(&client, 7).await.unwrap();
/// assert_eq!(LOADS.load(SeqCst), 2);
/// assert_eq!(client.cache_stats().hits, 1);
/// # Ok(()) }
/// ```
///
#[doc = include_str!("../docs/cached.md")]
pub use redis_patterns_macros::cached;

/// Deletes a cache entry after the function succeeds: `#[cache_evict(key = "product:<id>")]`.
///
/// ```
/// use redis_patterns::{Client, cache_evict, cached};
/// # use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
/// # static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cached(key = "price:<sku>", ttl = "1h", client = client)]
/// async fn price(client: &Client, sku: &str) -> u64 {
///     LOADS.fetch_add(1, SeqCst);
///     100
/// }
///
/// /// Changes the price in the database, then drops the cached one (only on `Ok`).
/// #[cache_evict(key = "price:<sku>", client = client)]
/// async fn set_price(client: &Client, sku: &str, cents: u64) -> Result<(), String> {
///     let _ = cents; // UPDATE prices SET … WHERE sku = …
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new("mem://")?;
/// price(&client, "lamp").await;
/// set_price(&client, "lamp", 120).await?;
/// price(&client, "lamp").await; // a miss again: the entry was evicted
/// assert_eq!(LOADS.load(SeqCst), 2);
/// # Ok(()) }
/// ```
///
#[doc = include_str!("../docs/cache_evict.md")]
pub use redis_patterns_macros::cache_evict;

/// Runs the function while holding a distributed lock:
/// `#[with_lock(key = "payment:<order_id>", ttl = "10s", wait = "2s")]`.
///
/// The function must return `Result<T, E>` with `E: From<LockError>`. See [`lock`] for how
/// leases, renewal and fencing tokens work.
///
/// ```
/// use redis_patterns::lock::{LockError, fencing_token};
/// use redis_patterns::{Client, with_lock};
///
/// #[derive(Debug)]
/// enum PayError { Busy(LockError) }
/// impl From<LockError> for PayError {
///     fn from(e: LockError) -> Self { PayError::Busy(e) }
/// }
///
/// /// One payment per order at a time, across every process sharing the server.
/// #[with_lock(key = "payment:<order_id>", ttl = "10s", wait = "2s", client = client)]
/// async fn pay(client: &Client, order_id: u64) -> Result<u64, PayError> {
///     // Hand the fencing token to storage that rejects writes older than one it has seen
///     // (issued on request: a body that does not ask pays nothing for it).
///     Ok(fencing_token().await?)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), PayError> {
/// let client = Client::new("mem://").unwrap();
/// let first = pay(&client, 42).await?;
/// let second = pay(&client, 42).await?;
/// assert!(second > first, "fencing tokens increase strictly per lock");
/// assert_eq!(client.lock_stats().acquired, 2);
/// # Ok(()) }
/// ```
///
#[doc = include_str!("../docs/with_lock.md")]
pub use redis_patterns_macros::with_lock;

/// Admits a call only within a rate limit:
/// `#[rate_limited(key = "api:<user_id>", limit = 100, window = "1m")]`.
///
/// The function must return `Result<T, E>` with `E: From<RateLimited>`; a denied call returns
/// `Err(RateLimited.into())` without running the body. Attributes stack (all must admit; a
/// denied call consumes nothing). [`RateLimiter`](rate_limit::RateLimiter) applies the same limits by key at run time.
///
/// ```
/// use redis_patterns::rate_limited;
/// use redis_patterns::rate_limit::RateLimited;
///
/// #[derive(Debug)]
/// enum ApiError { Busy(RateLimited) }
/// impl From<RateLimited> for ApiError {
///     fn from(e: RateLimited) -> Self { ApiError::Busy(e) }
/// }
///
/// #[rate_limited(key = "report:<user>", limit = 2, window = "1m", algorithm = "gcra", burst = 2)]
/// async fn report(user: &str) -> Result<String, ApiError> {
///     Ok(format!("report for {user}"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # redis_patterns::init("mem://").await.unwrap();
/// assert!(report("alice").await.is_ok());
/// assert!(report("alice").await.is_ok());
/// let Err(ApiError::Busy(denied)) = report("alice").await else { panic!("denied") };
/// assert_eq!(denied.name, "report:<user>");
/// assert!(report("bob").await.is_ok(), "a limit per user");
/// # }
/// ```
///
#[doc = include_str!("../docs/rate_limited.md")]
pub use redis_patterns_macros::rate_limited;

/// Stores the function's result as a cache entry (write-through):
/// `#[cache_put(key = "product:<id>", ttl = "5m")]`.
///
/// ```
/// use redis_patterns::{Client, cache_put, cached};
///
/// #[cached(key = "user:<id>", ttl = "10m", client = client)]
/// async fn user(client: &Client, id: u64) -> Option<String> {
///     None // not in the database yet
/// }
///
/// /// Saves the user, and stores the saved value as the cache entry of `user(id)`.
/// #[cache_put(key = "user:<id>", ttl = "10m", client = client)]
/// async fn save_user(client: &Client, id: u64, name: &str) -> Option<String> {
///     Some(name.to_owned()) // INSERT … RETURNING name
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// let client = Client::new("mem://")?;
/// save_user(&client, 1, "ann").await;
/// assert_eq!(user(&client, 1).await.as_deref(), Some("ann"), "served from the cache");
/// # Ok(()) }
/// ```
///
#[doc = include_str!("../docs/cache_put.md")]
pub use redis_patterns_macros::cache_put;

/// Counts the function's calls per window of the clock:
/// `#[counted(key = "views:<page>", window = "1d")]`.
///
/// Each call adds 1 to the current window of the counter named by `key`, in one atomic step
/// with the window's expiry; [`WindowedCounter`](counter::WindowedCounter) reads the counts by
/// name. Any function can be counted; with `on_error = "fail"` it must return `Result<T, E>`
/// with `E: From<redis_patterns::Error>`.
///
/// ```
/// use redis_patterns::{Client, counted};
/// use redis_patterns::counter::WindowedCounter;
///
/// #[counted(key = "downloads:<file>", window = "1h", keep = 24, client = client)]
/// async fn download(client: &Client, file: &str) -> Vec<u8> {
///     b"...".to_vec()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// let client = Client::new("mem://")?;
/// download(&client, "report.pdf").await;
/// let downloads = WindowedCounter::hourly(24).client(client);
/// assert_eq!(downloads.get("downloads:report.pdf").await?, 1, "this hour");
/// assert_eq!(redis_patterns::counter::stats_by_template()[0].1.increments, 1);
/// # Ok(()) }
/// ```
///
#[doc = include_str!("../docs/counted.md")]
pub use redis_patterns_macros::counted;

/// Turns an `async fn` handling a stream's events into a consumer of a group:
/// `#[stream_consumer(stream = "orders", group = "billing")]`.
///
/// The function becomes a `const` [`Consumer`](stream::Consumer) of the same name, which
/// reads the stream's events as one of the group's consumers, decodes each from JSON and runs
/// the handler on it, up to `concurrency` at once; `Ok` acknowledges the event, `Err` retries
/// it, and after `max_deliveries` it goes to the group's dead-letter stream.
///
/// ```
/// use redis_patterns::stream::{self, Delivery, EventStream};
/// use redis_patterns::stream_consumer;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Order {
///     id: u64,
///     cents: u64,
/// }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the card was declined")]
/// struct Declined;
///
/// #[stream_consumer(stream = "orders", group = "billing", concurrency = 8, max_deliveries = 5)]
/// async fn bill(order: Order, delivery: Delivery) -> Result<(), Declined> {
///     // `delivery.id()` is the same for every delivery of the event: an idempotency key.
///     if order.cents > 1_000_000 { Err(Declined) } else { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// # redis_patterns::init("mem://").await?;
/// let billing = bill.spawn()?; // or `stream::run(bill).await` in a worker's `main`
/// EventStream::new("orders").append(&Order { id: 1, cents: 4_999 }).await?;
/// # while billing.stats().acked < 1 { tokio::time::sleep(std::time::Duration::from_millis(5)).await }
/// billing.shutdown().await; // finishes the running handlers and acknowledges them
/// # Ok(()) }
/// ```
///
#[doc = include_str!("../docs/stream_consumer.md")]
pub use redis_patterns_macros::stream_consumer;

/// Turns an `async fn` running a queue's jobs into a worker: `#[job(queue = "emails")]`.
///
/// The function becomes a `const` [`Worker`](queue::Worker) of the same name, which claims
/// the queue's jobs with a lease, decodes each from JSON and runs the handler on it, up to
/// `concurrency` at once; `Ok` completes the job, `Err` retries it after a backoff, and after
/// `max_attempts` it goes to the queue's dead list.
///
/// ```
/// use redis_patterns::job;
/// use redis_patterns::queue::{Job, Queue};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Mail {
///     to: String,
/// }
///
/// #[job(queue = "emails", concurrency = 4, visibility = "30s", max_attempts = 3)]
/// async fn send_email(mail: Mail, job: Job) -> Result<(), std::io::Error> {
///     // `job.id()` is the same on every attempt: an idempotency key.
///     println!("sending to {} (attempt {})", mail.to, job.attempt());
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// # redis_patterns::init("mem://").await?;
/// let worker = send_email.spawn()?; // or `send_email.run().await` in a worker's `main`
/// Queue::new("emails").push(&Mail { to: "ada@example.com".into() }).await?;
/// # while worker.stats().completed < 1 { tokio::time::sleep(std::time::Duration::from_millis(5)).await }
/// let stats = worker.shutdown().await; // finishes the running jobs
/// assert_eq!(stats.completed, 1);
/// # Ok(()) }
/// ```
///
#[doc = include_str!("../docs/job.md")]
pub use redis_patterns_macros::job;

/// What generated code calls. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::cache::attribute::{
        CacheSpec, Stampede, cached, cached_near, evict, invalidate, put, refresh,
    };
    pub use crate::cache::kind::{
        CacheNone, Cacheable, ReturnKind, Select, SelectOption, SelectResult, SelectValue,
        check_cacheable, check_near,
    };
    pub use crate::cache::stale::{Background, Inline, Spawn, check_revalidatable};
    pub use crate::cache::stats::FunctionCounters;
    pub use crate::client::{AsClient, Client};
    pub use crate::counter::attribute::{
        CountSpec, CountedReturn, OnError as CountOnError, check_counted_return, counted,
    };
    pub use crate::envelope::Codec;
    pub use crate::key::{KeyBuilder, KeyPart};
    pub use crate::lock::attribute::{
        Lease, LockReturn, LockSpec, OnLost, check_lock_return, with_lock,
    };
    pub use crate::queue::{Job, Worker, WorkerSpec};
    pub use crate::rate_limit::attribute::{RateCheck, RateLimitedReturn, RateSpec, rate_limited};
    pub use crate::rate_limit::{Algorithm as RateAlgorithm, OnError as RateOnError};
    pub use crate::stream::attribute::{EventType, HandlerReturn, check_event};
    pub use crate::stream::consumer::ConsumerSpec;
    pub use crate::stream::{Consumer, Delivery, HandlerFuture};
    pub use core::time::Duration;

    /// The client the attributes use when given no `client = …`.
    #[inline]
    pub fn default_client() -> &'static Client {
        Client::default_client()
    }

    /// Starts the key of one call with the client's namespace.
    #[inline]
    pub fn key_builder(client: &Client) -> KeyBuilder {
        KeyBuilder::new(client.namespace())
    }

    /// Starts the key of one of a call's cache tags with the client's namespace.
    #[inline]
    pub fn tag_builder(client: &Client) -> KeyBuilder {
        KeyBuilder::for_tag(client.namespace())
    }
}
