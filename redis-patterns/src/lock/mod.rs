//! Distributed locks: owner tokens, fencing tokens, lease extension, lease-loss detection,
//! and Redlock over several independent servers.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), redis_patterns::lock::LockError> {
//! use std::time::Duration;
//! use redis_patterns::lock::Lock;
//! # redis_patterns::Client::new("mem://").unwrap().set_as_default().unwrap();
//!
//! let guard = Lock::new("report:daily").ttl(Duration::from_secs(30)).acquire().await?;
//! let token = guard.fencing_token().await?; // strictly increasing per lock name
//! // … write to storage that rejects writes with a token lower than one it has seen …
//! guard.release().await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! A lock is a key `namespace:{name}:mutex` holding a random 128-bit owner token (hex, then
//! `!`), set with `SET NX PX` (followed by `*` once somebody waited for that holder, see
//! *Waiting*). Release
//! and extension are compare-and-delete / compare-and-`PEXPIRE` scripts: nobody ever deletes
//! or extends another owner's lock. An uncontended acquisition and release is thus what a
//! careful hand-written lock sends: one `SET NX PX`, and a script running `GET` and `DEL`. Locks fail closed: if the backend cannot be reached, the acquisition fails
//! with [`LockError::Backend`] and the protected work does not run.
//!
//! # Waiting
//!
//! A refused attempt marks the lock as awaited (`namespace:^{name}:waiters`, with the waiter's
//! lease as TTL, and a `*` after the holder's token) and the holder's release rewrites the
//! mark, so waiters that watch it through the
//! client's tracking connection sleep until a release (or the holder's lease runs out)
//! instead of polling. (The `^` keeps the lock keys out of the prefix the tracking connection
//! watches: it hears releases of awaited locks, not every acquisition.) one waiter per process is woken per release, not FIFO across processes.
//! Where releases cannot be heard, they poll every [`Lock::retry`].
//!
//! # Leases are counted from the request, not the reply
//!
//! A lease of `ttl` is valid locally until *the moment the request was sent* + `ttl` − a
//! margin for clock drift (1 % of `ttl` + 2 ms, at most half of `ttl`). A grant whose reply
//! arrives after that is no acquisition: it is given back and the attempt counts as failed
//! ([`LockError::LeaseTooShort`] if no attempt succeeds within `wait`). Extensions follow the
//! same rule, and `#[with_lock]`'s watchdog cancels (or flags) the function at the instant the
//! lease ends without a confirmed renewal — never later, however slow the network.
//!
//! # Fencing tokens
//!
//! [`LockGuard::fencing_token`] (and [`fencing_token`] inside `#[with_lock]`) asks the server
//! for the holding's token the first time it is called, in a script that issues one only while
//! the lock is still held by the caller: a holder is issued its token during its holding, so
//! the tokens of successive holders increase in the order of their holdings, and a holder whose
//! lease already ran out gets [`LockError::Lost`] instead of a token to write with. A lock that
//! does not use fencing pays nothing for it.
//!
//! A token is the greater of (the last token of this lock name + 1) and the server's clock in
//! microseconds (`TIME`). Tokens therefore increase strictly per lock name even when the
//! server forgets the last one: a restart without persistence, `FLUSHALL`, eviction, or the
//! fencing key expiring (it lives as long as the lease, so no lock name leaves a key behind).
//! What this cannot cover: a failover to a replica whose clock is behind the old primary's by
//! more than the time since the last acquisition, when the replica missed the last token
//! (asynchronous replication), may issue a token lower than one already handed out. Keep
//! server clocks synchronised (NTP) and, where that risk matters, have the fenced storage also
//! reject writes while it is unsure (e.g. after the Redis failover alert).

mod acquire;
pub(crate) mod attribute;
#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod guard;
pub(crate) mod ops;
mod redlock;
pub(crate) mod stats;

use std::time::Duration;

pub(crate) use self::acquire::{LockKeys, Terms, acquire_key, fence_key, try_acquire};
pub use self::attribute::{fencing_token, lease_lost};
pub use self::guard::LockGuard;
pub(crate) use self::ops::Attempt;
use self::ops::Extend;
pub use self::redlock::{Redlock, RedlockGuard};
pub(crate) use self::stats::Counters;
use self::stats::{Event, TemplateCounters};
pub use self::stats::{LockStats, stats_by_template};
use crate::backend::Backend;
use crate::client::Client;
use crate::error::Error;

/// Why a lock operation failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another owner held the lock for the whole wait.
    #[error(
        "the lock is held by another owner and was not released within {waited:?}; \
         retry later, or allow a longer `wait`"
    )]
    Timeout {
        /// How long this caller waited.
        waited: Duration,
    },
    /// The lease ran out or the lock was taken over (expired, deleted, server restarted)
    /// while the work was running.
    #[error(
        "the lock was lost while the work was running (its lease expired or another owner took \
         it); the work may have overlapped with the next holder, so guard writes with the \
         fencing token, and raise `ttl` if the work is simply slow"
    )]
    Lost,
    /// The backend could not be reached or failed. Locks fail closed: the work did not run.
    #[error("the lock backend failed, so the work did not run (locks fail closed): {0}")]
    Backend(#[source] Error),
    /// The server granted the lock (or an extension), but the reply took so long that the
    /// lease had run out by the time it arrived, on every attempt within `wait`: the lock was
    /// given back and the work did not run.
    #[error(
        "the lock's {ttl:?} lease ran out before the server's reply arrived ({round_trip:?} \
         after the request); the network or server is too slow for this lease: raise `ttl`"
    )]
    LeaseTooShort {
        /// The lease asked for.
        ttl: Duration,
        /// How long the last request took (or was waited for).
        round_trip: Duration,
    },

    /// [`fencing_token`] was called outside a `#[with_lock]` function, where there is no lock
    /// to issue a token for.
    #[error(
        "`redis_patterns::lock::fencing_token()` was called outside a `#[with_lock]` function; \
         call it in the function's body, or use `LockGuard::fencing_token` with `Lock`"
    )]
    OutsideLock,
}

impl From<Error> for LockError {
    fn from(e: Error) -> Self {
        LockError::Backend(e)
    }
}

/// The longest lease, wait or pause a lock accepts; longer durations are clamped to it.
pub const MAX_LOCK_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Clamps a builder's duration into `min ..= MAX_LOCK_DURATION`.
pub(crate) fn clamp_duration(d: Duration, min: Duration) -> Duration {
    d.clamp(min, MAX_LOCK_DURATION)
}

/// How long a lease of `ttl` is trusted locally, counted from the moment its request was sent:
/// `ttl` minus a margin for clock drift between client and server (1 % + 2 ms, at most half).
pub(crate) fn lease_validity(ttl: Duration) -> Duration {
    let drift = (ttl / 100 + Duration::from_millis(2)).min(ttl / 2);
    ttl - drift
}

/// A lock by name, configured with a builder and taken with [`acquire`](Lock::acquire).
///
/// Defaults: lease (`ttl`) 30 s, no waiting (`wait` 0: one attempt), 50 ms between attempts
/// (with jitter), the process-wide default [`Client`]. Every duration is clamped to
/// [`MAX_LOCK_DURATION`] (a year), so no input can overflow a clock.
///
/// ```
/// use std::time::Duration;
/// use redis_patterns::lock::{Lock, MAX_LOCK_DURATION};
/// // Any duration is accepted; a "forever" wait becomes a year.
/// let lock = Lock::new("job").ttl(Duration::MAX).wait(Duration::MAX).retry(Duration::ZERO);
/// # let _ = (lock, MAX_LOCK_DURATION);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Lock does nothing until `acquire` is awaited"]
pub struct Lock {
    name: String,
    client: Option<Client>,
    ttl: Duration,
    wait: Duration,
    retry: Duration,
    fenced: bool,
}

impl Lock {
    /// A lock called `name`, e.g. `"report:daily"` or `format!("payment:{order_id}")`.
    /// Characters that would break the key's hash tag (`{ } % * ? [ ]`, whitespace, control,
    /// non-ASCII) are escaped.
    pub fn new(name: impl Into<String>) -> Self {
        Lock {
            name: name.into(),
            client: None,
            ttl: Duration::from_secs(30),
            wait: Duration::ZERO,
            retry: Duration::from_millis(50),
            fenced: false,
        }
    }

    /// The client (and so the server and namespace) to lock on.
    pub fn client(mut self, client: &Client) -> Self {
        self.client = Some(client.clone());
        self
    }

    /// How long the lock is held if its owner neither releases nor extends it (1 ms to a
    /// year). The lease counts from when the request is sent; see the [module docs](self).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = clamp_duration(ttl, Duration::from_millis(1));
        self
    }

    /// How long to keep trying while another owner holds the lock (0: try once; at most a
    /// year).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = clamp_duration(wait, Duration::ZERO);
        self
    }

    /// The pause between attempts while waiting (randomised by ±50 %; 1 ms to a year).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = clamp_duration(retry, Duration::from_millis(1));
        self
    }

    /// Whether the acquisition also issues the [fencing token](LockGuard::fencing_token)
    /// (default `false`: it is issued when first asked for, one more round trip). For holders
    /// that always ask: the token then comes with the grant, in the same round trip, for one
    /// script in place of the plain `SET NX PX` of an uncontended acquisition.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), redis_patterns::lock::LockError> {
    /// use redis_patterns::{Client, lock::Lock};
    /// let client = Client::new("mem://").unwrap();
    /// let guard = Lock::new("ledger").client(&client).fenced(true).acquire().await?;
    /// let token = guard.fencing_token().await?; // no round trip: issued with the grant
    /// # let _ = token;
    /// # Ok(()) }
    /// ```
    pub fn fenced(mut self, fenced: bool) -> Self {
        self.fenced = fenced;
        self
    }

    /// Takes the lock, waiting up to `wait` for the current owner.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use redis_patterns::{Client, lock::{Lock, LockError}};
    /// let client = Client::new("mem://").unwrap();
    /// let held = Lock::new("job").client(&client).acquire().await.unwrap();
    /// let second = Lock::new("job").client(&client).acquire().await;
    /// assert!(matches!(second, Err(LockError::Timeout { .. })));
    /// held.release().await.unwrap();
    /// # }
    /// ```
    pub async fn acquire(&self) -> Result<LockGuard, LockError> {
        let client = self
            .client
            .clone()
            .unwrap_or_else(|| Client::default_client().clone());
        let key = crate::key::name_key(client.namespace(), &self.name);
        let terms = Terms {
            ttl: self.ttl,
            wait: self.wait,
            retry: self.retry,
            fenced: self.fenced,
        };
        acquire_key(&client, &key, terms, None).await
    }
}

/// Compare-and-`PEXPIRE`: `true` when the lock was still `token`'s.
pub(crate) async fn extend(
    backend: &Backend,
    lock_key: &str,
    token: &str,
    ttl: Duration,
) -> Result<bool, Error> {
    backend
        .run(&Extend {
            mutex: lock_key,
            token,
            ttl,
        })
        .await
}

/// Counts `event` for `client` and, for `#[with_lock]`, its `template`.
pub(crate) fn count(client: &Client, template: Option<&'static TemplateCounters>, event: Event) {
    client.inner().lock_counters.count(event);
    if let Some(template) = template {
        template.count(event);
    }
}
