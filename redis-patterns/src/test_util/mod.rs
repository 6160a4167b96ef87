//! Helpers for testing code that uses redis-patterns (feature `test-util`, off by default; as
//! tokio's `test-util`, enable it for your tests only, under `[dev-dependencies]`):
//!
//! * [`Store`]: the raw keys of a [`Client`]'s backend — read what a cached function stored
//!   and how long it lives, plant a value, delete a lock to simulate its loss — on Redis and
//!   on `mem://` alike;
//! * [`conformance_checks`]: every atomic operation the patterns are built from, checked
//!   against a client's backend, for a backend (or a deployment: a cluster, a proxy, a managed
//!   Redis) that must behave as the reference ones do.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), redis_patterns::Error> {
//! use std::time::Duration;
//! use redis_patterns::test_util::Store;
//! use redis_patterns::{Client, Config, cached};
//!
//! #[cached(key = "greeting:<name>", ttl = "1m", client = client)]
//! async fn greeting(client: &Client, name: &str) -> String {
//!     format!("hello {name}")
//! }
//!
//! let client = Client::new(Config::from_url("mem://")?.namespace("test"))?;
//! greeting(&client, "ann").await;
//!
//! let store = Store::of(&client);
//! let key = greeting_key(&client, "ann"); // the whole key, namespace included
//! let ttl = store.pttl(&key).await?.expect("stored with a TTL");
//! assert!(ttl > Duration::ZERO && ttl <= Duration::from_secs(60));
//! assert!(store.del(&key).await?, "the next call is a miss");
//! # Ok(()) }
//! ```

pub(crate) mod conformance;

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;

pub use self::conformance::{Check, conformance_checks};

/// Plain commands on a client's backend, by raw key: `GET`, `SET … PX`, `DEL` and `PTTL` on
/// Redis, the same steps on `mem://`, so a test reads the same on either.
///
/// Keys are used as given: include the client's namespace, as the generated `<fn>_key`
/// functions and [`Client::namespace`] do (`"ns:{greeting:#ann}"`). Values are bytes;
/// what a cached function stores is an envelope around its serialized value, not the bare
/// value.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use std::time::Duration;
/// use redis_patterns::Client;
/// use redis_patterns::test_util::Store;
///
/// let client = Client::new("mem://")?;
/// let store = Store::of(&client);
/// store.set("job:{7}:owner", "worker-1", Duration::from_secs(30)).await?;
/// assert_eq!(store.get("job:{7}:owner").await?.as_deref(), Some(&b"worker-1"[..]));
/// assert!(store.del("job:{7}:owner").await?);
/// assert_eq!(store.get("job:{7}:owner").await?, None);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
}

impl Store {
    /// The store behind `client` (the client is cloned, which is cheap and shares its
    /// connection).
    pub fn of(client: &Client) -> Store {
        Store {
            client: client.clone(),
        }
    }

    /// The value of `key`, or `None` when it does not exist (or has expired).
    ///
    /// On Redis, a key holding something other than a string (a rate limiter's sorted set)
    /// is an error; on `mem://` it reads as `None`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.client.backend().get(key).await?.map(Vec::from))
    }

    /// Stores `value` under `key` for `ttl` (at least a millisecond), replacing whatever was
    /// there.
    pub async fn set(&self, key: &str, value: impl Into<Vec<u8>>, ttl: Duration) -> Result<()> {
        self.client.backend().set(key, value.into(), ttl).await
    }

    /// Deletes `key`; `true` when it existed.
    pub async fn del(&self, key: &str) -> Result<bool> {
        self.client.backend().del(key).await
    }

    /// The time `key` has left to live: `None` when it does not exist or never expires.
    pub async fn pttl(&self, key: &str) -> Result<Option<Duration>> {
        self.client.backend().pttl(key).await
    }
}
