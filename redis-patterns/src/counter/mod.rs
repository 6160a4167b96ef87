//! Counters with expiry, windowed counters and unique counts: [`Counter`],
//! [`WindowedCounter`] and [`UniqueCounter`] by name at run time; `#[counted]` (at the crate
//! root) counts a function's calls in a windowed counter.
//!
//! The hand-written `INCR` followed by `EXPIRE` leaves a counter without a TTL forever when the
//! process dies (or the connection drops) between the two. Here every increment and its expiry
//! are one `MULTI`/`EXEC` transaction, in one round trip: a key these types write always
//! expires.
//!
//! | type | stores | keys of `"views:home"` (namespace `ns`) | expires |
//! |---|---|---|---|
//! | [`Counter`] | one integer | `ns:{views:#home}:count` | `ttl` after its first increment, or after its latest ([`sliding`](Counter::sliding)) |
//! | [`WindowedCounter`] | an integer per window of the clock | `ns:{views:#home}:count:<window ms>:<index>` | when `keep` windows have started after it |
//! | [`UniqueCounter`] | a HyperLogLog per window | `ns:{visitors:#home}:hll:<window ms>:<index>` | when `keep` windows have started after it |
//!
//! A name reads as a key template of its shape (as [`RateLimiter`](crate::rate_limit::RateLimiter)
//! keys do): the first `:`-separated segment is literal, each further one a value, escaped. So
//! `"views:home"` is the counter of `#[counted(key = "views:<page>")]` for `page = "home"`. All
//! windows of one counter share its hash tag, so a read over many windows is one `MGET` or
//! `PFCOUNT`, on a cluster too.

pub(crate) mod attribute;
#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod hll;
mod ops;
pub(crate) mod stats;
mod unique;
mod windowed;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Client;
use crate::error::Result;

pub use self::attribute::OnError;
use self::ops::{Expiry, IncrBy, Read};
pub use self::stats::{CounterStats, stats_by_template};
use self::stats::{Counters, Event};
pub use self::unique::UniqueCounter;
pub use self::windowed::{Window, WindowedCounter};
pub use crate::util::window::MAX_KEEP;

/// A counter per name that expires, incremented atomically with its expiry:
/// `counter.incr("signups:2026-12")`. Cheap to clone; clones share their stats.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use std::time::Duration;
/// use redis_patterns::Client;
/// use redis_patterns::counter::Counter;
///
/// let client = Client::new("mem://")?; // or redis://…; without `.client(…)`, the default client
/// let attempts = Counter::new(Duration::from_secs(900)).client(client);
/// assert_eq!(attempts.incr("login-failures:alice").await?, 1);
/// assert_eq!(attempts.incr_by("login-failures:alice", 2).await?, 3);
/// assert_eq!(attempts.get("login-failures:alice").await?, 3);
/// assert_eq!(attempts.get("login-failures:bob").await?, 0, "a missing counter is 0");
/// assert!(attempts.reset("login-failures:alice").await?);
/// # Ok(()) }
/// ```
///
/// Without [`sliding`](Self::sliding), a counter expires `ttl` after the increment that
/// created it, however often it is incremented since: a count per period that starts with its
/// first event. A TTL below 1 ms is 1 ms.
#[derive(Clone)]
pub struct Counter {
    expiry: Expiry,
    handle: Handle,
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter")
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

impl Counter {
    /// Counters that expire `ttl` after their first increment.
    ///
    /// ```
    /// let c = redis_patterns::counter::Counter::new(std::time::Duration::from_secs(60));
    /// assert_eq!(c.ttl(), std::time::Duration::from_secs(60));
    /// ```
    pub fn new(ttl: Duration) -> Self {
        Counter {
            expiry: Expiry::AfterFirst(ttl),
            handle: Handle::default(),
        }
    }

    /// Counters that expire `ttl` after their latest increment (an idle timeout) instead.
    ///
    /// ```
    /// let c = redis_patterns::counter::Counter::new(std::time::Duration::from_secs(60)).sliding();
    /// assert!(c.is_sliding());
    /// ```
    pub fn sliding(mut self) -> Self {
        self.expiry = Expiry::AfterLast(self.ttl());
        self
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        self.handle.client = Some(client);
        self
    }

    /// How long a counter lives after its first (or, [`sliding`](Self::sliding), its latest)
    /// increment.
    pub fn ttl(&self) -> Duration {
        match self.expiry {
            Expiry::AfterFirst(ttl) | Expiry::AfterLast(ttl) | Expiry::At(ttl) => ttl,
        }
    }

    /// Whether the TTL restarts at every increment.
    pub fn is_sliding(&self) -> bool {
        matches!(self.expiry, Expiry::AfterLast(_))
    }

    /// Adds 1 to `name`'s counter (created at 0), and answers its new value.
    pub async fn incr(&self, name: &str) -> Result<i64> {
        self.incr_by(name, 1).await
    }

    /// Adds `by` (negative to subtract) to `name`'s counter, and answers its new value. Fails
    /// like Redis's `INCRBY` when the key holds something else than an integer, or the sum
    /// would leave `i64`; the counter is then unchanged.
    pub async fn incr_by(&self, name: &str, by: i64) -> Result<i64> {
        let key = self.key(name);
        let op = IncrBy {
            key: &key,
            by,
            expiry: self.expiry,
        };
        self.handle.exec(&op, Event::Incremented).await
    }

    /// `name`'s counter: 0 when it does not exist (or has expired).
    pub async fn get(&self, name: &str) -> Result<i64> {
        let keys = [self.key(name)];
        let values = self.handle.exec(&Read { keys: &keys }, Event::Read).await?;
        Ok(values.first().copied().unwrap_or_default())
    }

    /// Deletes `name`'s counter; `true` when it existed.
    pub async fn reset(&self, name: &str) -> Result<bool> {
        let key = self.key(name);
        let deleted = self.handle.client().backend().del(&key).await;
        if deleted.is_err() {
            self.handle.counters.count(Event::BackendError);
        }
        deleted
    }

    /// Activity of this counter and its clones.
    pub fn stats(&self) -> CounterStats {
        self.handle.counters.snapshot()
    }

    fn key(&self, name: &str) -> String {
        let mut key = self.handle.base(name);
        key.push_str(":count");
        key
    }
}

/// What the three counter types share: the client they use and their stats.
#[derive(Clone, Default)]
struct Handle {
    client: Option<Client>,
    counters: Arc<Counters>,
}

impl Handle {
    fn client(&self) -> &Client {
        match &self.client {
            Some(client) => client,
            None => Client::default_client(),
        }
    }

    /// The key base of `name`: `ns:{views:#home}`.
    fn base(&self, name: &str) -> String {
        crate::key::name_key(self.client().namespace(), name)
    }

    async fn exec<O: crate::backend::CommandOp>(&self, op: &O, event: Event) -> Result<O::Output> {
        let result = self.client().backend().exec(op).await;
        self.count(&result, event);
        result
    }

    fn count<T>(&self, result: &Result<T>, event: Event) {
        self.counters.count(match result {
            Ok(_) => event,
            Err(_) => Event::BackendError,
        });
    }
}
