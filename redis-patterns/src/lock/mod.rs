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
//! let token = guard.fencing_token(); // strictly increasing per lock name
//! // … write to storage that rejects writes with a token lower than one it has seen …
//! guard.release().await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! A lock is a key `namespace:{name}:mutex` holding a random 128-bit owner token, set with
//! `SET NX PX` in a Lua script that also issues the fencing token. Release and extension are
//! compare-and-delete / compare-and-`PEXPIRE` scripts: nobody ever deletes or extends another
//! owner's lock. Locks fail closed: if the backend cannot be reached, the acquisition fails
//! with [`LockError::Backend`] and the protected work does not run.
//!
//! # Waiting
//!
//! A refused attempt marks the lock as awaited (`namespace:{name}:waiters`, with the waiter's
//! lease as TTL) and the release rewrites the mark, so waiters that watch it through the
//! client's tracking connection sleep until a release (or the holder's lease runs out)
//! instead of polling; one waiter per process is woken per release, not FIFO across processes.
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
//! A token is the greater of (the last token of this lock name + 1) and the server's clock in
//! microseconds (`TIME`). Tokens therefore increase strictly per lock name even when the
//! server forgets the last one: a restart without persistence, `FLUSHALL`, eviction, or the
//! fencing key expiring (it lives as long as the lease, so no lock name leaves a key behind).
//! What this cannot cover: a failover to a replica whose clock is behind the old primary's by
//! more than the time since the last acquisition, when the replica missed the last token
//! (asynchronous replication), may issue a token lower than one already handed out. Keep
//! server clocks synchronised (NTP) and, where that risk matters, have the fenced storage also
//! reject writes while it is unsure (e.g. after the Redis failover alert).

pub(crate) mod attribute;
#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod guard;
pub(crate) mod ops;
mod redlock;
mod stats;

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub use self::attribute::{fencing_token, lease_lost};
pub use self::guard::LockGuard;
pub(crate) use self::ops::Attempt;
use self::ops::{Acquire, Extend};
pub use self::redlock::{Redlock, RedlockGuard};
pub(crate) use self::stats::Counters;
use self::stats::{Event, TemplateCounters};
pub use self::stats::{LockStats, stats_by_template};
use crate::backend::Backend;
use crate::client::Client;
use crate::error::Error;
use crate::util::{jittered, new_token};

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
        acquire_key(&client, &key, self.ttl, self.wait, self.retry, None).await
    }
}

/// The keys of a lock named by `key` (`ns:{name}`), built once per acquisition.
pub(crate) struct LockKeys {
    /// `ns:{name}:mutex`: holds the owner token.
    pub(crate) mutex: String,
    /// `ns:{name}:fence`: the last fencing token issued; expires with the lease.
    fence: String,
    /// `ns:{name}:waiters`: exists while someone waits; rewritten by each release, which is
    /// what waiters hear. Expires with the lease of the waiter that wrote it.
    pub(crate) waiters: String,
}

impl LockKeys {
    pub(crate) fn new(key: &str) -> Self {
        LockKeys {
            mutex: format!("{key}:mutex"),
            fence: format!("{key}:fence"),
            waiters: format!("{key}:waiters"),
        }
    }
}

/// One attempt at the lock with `token`.
pub(crate) async fn try_acquire(
    backend: &Backend,
    keys: &LockKeys,
    token: &str,
    ttl: Duration,
) -> Result<Attempt, Error> {
    backend
        .run(&Acquire {
            mutex: &keys.mutex,
            fence: &keys.fence,
            waiters: &keys.waiters,
            token,
            ttl,
        })
        .await
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

/// Takes the lock `key` (`ns:{name}`): attempts until one is granted with its lease still
/// valid when the reply arrives, another owner holds it past `wait`, or the backend fails.
/// Counted for the client and, for `#[with_lock]`, its `template`.
pub(crate) async fn acquire_key(
    client: &Client,
    key: &str,
    ttl: Duration,
    wait: Duration,
    retry: Duration,
    template: Option<&'static TemplateCounters>,
) -> Result<LockGuard, LockError> {
    let guard = async {
        let backend = &client.inner().backend;
        let mut contended = false;
        let started = Instant::now();
        let deadline = started + wait;
        let keys = LockKeys::new(key);
        let validity = lease_validity(ttl);
        let mut token = new_token();
        // The watch of the waiters' mark, from the first refusal on (an uncontended
        // acquisition registers nothing).
        let mut watch: Option<crate::backend::watch::Watch> = None;
        loop {
            let mut seen = watch.as_ref().map(|w| w.before_attempt());
            // Until then: how many changes this client's tracking had heard, of any key.
            let heard = if watch.is_none() {
                client.changes_heard()
            } else {
                None
            };
            let sent = Instant::now();
            let valid_until = sent + validity;
            let attempt =
                tokio::time::timeout_at(valid_until, try_acquire(backend, &keys, &token, ttl))
                    .await;
            let pause = match attempt {
                Ok(Ok(Attempt::Acquired { fencing_token })) if Instant::now() < valid_until => {
                    return Ok(LockGuard {
                        client: client.clone(),
                        template,
                        lock_key: keys.mutex,
                        waiters: keys.waiters,
                        token,
                        fencing_token,
                        ttl,
                        valid_until: Mutex::new(valid_until),
                        armed: true,
                    });
                }
                Ok(Ok(Attempt::Acquired { .. })) | Err(_) => {
                    // Granted (or perhaps granted: the reply never came) too late to be used. Give
                    // it back, and try again under a new token, so the give-back can never release
                    // a later grant.
                    let round_trip = sent.elapsed();
                    crate::backend::unlock_in_background(
                        backend,
                        keys.mutex.clone(),
                        Some(keys.waiters.clone()),
                        std::mem::replace(&mut token, new_token()),
                    );
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(LockError::LeaseTooShort { ttl, round_trip });
                    }
                    jittered(retry)
                }
                Ok(Ok(Attempt::Held { remaining, marked })) => {
                    if !contended {
                        contended = true;
                        count(client, template, Event::Contended);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(LockError::Timeout {
                            waited: now - started,
                        });
                    }
                    // No point waking before the holder's lease could have run out.
                    let lease_left = remaining
                        .unwrap_or(Duration::MAX)
                        .max(Duration::from_millis(1));
                    if watch.is_none() {
                        // First refusal: watch the mark. A release between this attempt and
                        // the watch would be missing from the count the watch starts at,
                        // unless the client's tracking heard nothing at all since before the
                        // attempt: then wait from that count; else (or if it tracked nothing
                        // yet) attempt again at once. (The count is read before the check: a
                        // change heard after the check is counted after it.)
                        let w = client.watch(&keys.waiters);
                        let now_seen = w.before_attempt();
                        let quiet = heard.is_some_and(|h| client.changes_heard() == Some(h));
                        watch = Some(w);
                        if !quiet {
                            continue;
                        }
                        seen = Some(now_seen);
                    }
                    match (&watch, seen) {
                        // The release rewrites the mark, and tracking delivers that: sleep
                        // until it does (a release since `seen` returns at once) or the
                        // holder's lease runs out, which no message announces.
                        (Some(w), Some(seen)) if seen.live && marked => {
                            w.changed(seen, lease_left.min(deadline - now)).await;
                            if w.before_attempt().live {
                                continue;
                            }
                            // Woken because tracking was lost (a dropped connection, a
                            // restarting server): poll from here, starting with a pause
                            // rather than an attempt that would likely meet the outage.
                            jittered(retry)
                        }
                        // Not delivered (tracking not armed yet, lost, refused) or no mark
                        // (it could not be written): poll, woken early when tracking comes.
                        (Some(w), Some(seen)) => {
                            let pause = jittered(retry).min(lease_left);
                            w.changed(seen, pause.min(deadline - now)).await;
                            continue;
                        }
                        _ => jittered(retry).min(lease_left),
                    }
                }
                Ok(Err(error)) => {
                    if !error.is_connection_failure() {
                        return Err(LockError::Backend(error));
                    }
                    // The request may have been carried out after we stopped waiting: give
                    // back a grant nobody will use rather than block others for a lease, and
                    // go on (if at all) under a new token, which the give-back cannot release.
                    crate::backend::unlock_in_background(
                        backend,
                        keys.mutex.clone(),
                        Some(keys.waiters.clone()),
                        std::mem::replace(&mut token, new_token()),
                    );
                    // A caller that was already waiting waits through a dropped connection or a
                    // restart, polling, within its `wait`; a first attempt fails at once, and
                    // so does a waiter whose backend is still unreachable at the deadline.
                    let pause = jittered(retry);
                    if !contended || Instant::now() + pause >= deadline {
                        return Err(LockError::Backend(error));
                    }
                    pause
                }
            };
            let now = Instant::now();
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(now))).await;
        }
    }
    .await;
    let count = |event| count(client, template, event);
    match &guard {
        Ok(_) => count(Event::Acquired),
        Err(LockError::Timeout { .. }) => count(Event::Timeout),
        Err(LockError::LeaseTooShort { .. }) => count(Event::LateGrant),
        Err(LockError::Backend(_)) => count(Event::BackendError),
        Err(LockError::Lost) => count(Event::Lost),
    }
    guard
}

/// Counts `event` for `client` and, for `#[with_lock]`, its `template`.
pub(crate) fn count(client: &Client, template: Option<&'static TemplateCounters>, event: Event) {
    client.inner().lock_counters.count(event);
    if let Some(template) = template {
        template.count(event);
    }
}
