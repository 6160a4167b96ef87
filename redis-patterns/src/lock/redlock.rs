//! Redlock: a lock over N independent Redis servers, held when a majority grants it within
//! the validity time (the algorithm of the Redis documentation, "Distributed Locks with
//! Redis").

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::ops::new_lock_token;
use super::{Attempt, LockError, LockKeys, clamp_duration, try_acquire};
use crate::backend::Backend;
use crate::client::Client;
use crate::error::Error;
use crate::util::jittered;

/// A lock over several independent servers (typically 3 or 5 masters, not replicas of each
/// other). It is held while a majority of them hold it; the lease left is
/// [`validity`](RedlockGuard::validity).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::lock::LockError> {
/// use std::time::Duration;
/// use redis_patterns::{Client, lock::Redlock};
///
/// let servers = ["mem://a", "mem://b", "mem://c"].map(|url| Client::new(url).unwrap());
/// let redlock = Redlock::new(servers).ttl(Duration::from_secs(10));
/// let guard = redlock.acquire("invoice:42").await?;
/// assert!(guard.validity() <= Duration::from_secs(10));
/// guard.release().await;
/// # Ok(()) }
/// ```
///
/// Redlock gives no fencing tokens (its instances share no counter); use a single-server
/// [`Lock`](super::Lock) when the storage you protect can check one.
#[derive(Debug, Clone)]
#[must_use = "a Redlock does nothing until `acquire` is awaited"]
pub struct Redlock {
    clients: Vec<Client>,
    ttl: Duration,
    wait: Duration,
    retry: Duration,
}

impl Redlock {
    /// A Redlock over these clients, one per independent server.
    pub fn new(clients: impl IntoIterator<Item = Client>) -> Self {
        Redlock {
            clients: clients.into_iter().collect(),
            ttl: Duration::from_secs(30),
            wait: Duration::ZERO,
            retry: Duration::from_millis(50),
        }
    }

    /// The lease on each server (1 ms to a year, see [`MAX_LOCK_DURATION`](super::MAX_LOCK_DURATION)).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = clamp_duration(ttl, Duration::from_millis(1));
        self
    }

    /// How long to keep trying to reach a majority (0: one round; at most a year).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = clamp_duration(wait, Duration::ZERO);
        self
    }

    /// The pause between rounds (randomised by ±50 %; 1 ms to a year).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = clamp_duration(retry, Duration::from_millis(1));
        self
    }

    /// Takes the lock called `name` on a majority of the servers.
    ///
    /// A round sends `SET NX PX` to every server at once, each bounded by a timeout small
    /// next to the lease (`ttl / 10`); it succeeds if a majority answered yes and time is
    /// left: validity = `ttl` − elapsed − clock drift (1 % of `ttl` + 2 ms). Otherwise the
    /// round's locks are released everywhere and, within `wait`, another round follows.
    /// Fails with [`LockError::Backend`] when a majority of servers could not be reached in the
    /// last round, and with [`LockError::Timeout`] otherwise.
    ///
    /// Refuses ([`LockError::Backend`] with a configuration error) clients of a Redis Cluster
    /// or a Sentinel group: their nodes replicate each other, so a "majority" of them is not
    /// independent evidence. Use a [`Lock`](super::Lock) on the cluster or group instead (its
    /// fencing token is the guard across failovers), or Redlock over independent primaries.
    pub async fn acquire(&self, name: &str) -> Result<RedlockGuard, LockError> {
        if self
            .clients
            .iter()
            .any(|c| !c.inner().backend.is_independent_server())
        {
            return Err(LockError::Backend(Error::Config(
                "Redlock needs independent Redis primaries (one-server clients); a Redis Cluster \
                 or Sentinel client is one replicated deployment: take a `Lock` on it instead"
                    .into(),
            )));
        }
        let token = new_lock_token();
        let quorum = self.clients.len() / 2 + 1;
        let started = Instant::now();
        let deadline = started + self.wait;
        let per_server = (self.ttl / 10).max(Duration::from_millis(5));
        let drift = self.ttl / 100 + Duration::from_millis(2);
        let keys: Vec<LockKeys> = self
            .clients
            .iter()
            .map(|c| LockKeys::new(&crate::key::name_key(c.namespace(), name), false))
            .collect();
        loop {
            let round = Instant::now();
            let attempts = join_all(self.clients.iter().zip(&keys).map(|(client, key)| {
                let backend = &client.inner().backend;
                let token = &token;
                async move {
                    tokio::time::timeout(
                        per_server,
                        try_acquire(backend, key, token, self.ttl, false),
                    )
                    .await
                }
            }))
            .await;
            let granted = attempts
                .iter()
                .filter(|a| matches!(a, Ok(Ok(Attempt::Acquired { .. }))))
                .count();
            let failed: Vec<_> = attempts
                .into_iter()
                .filter_map(|a| match a {
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(crate::Error::Timeout(per_server)),
                    Ok(Ok(_)) => None,
                })
                .collect();
            let validity = self.ttl.checked_sub(round.elapsed() + drift);
            if granted >= quorum
                && let Some(validity) = validity.filter(|v| !v.is_zero())
            {
                return Ok(RedlockGuard {
                    backends: self
                        .clients
                        .iter()
                        .map(|c| Arc::clone(&c.inner().backend))
                        .collect(),
                    keys: keys.into_iter().map(|k| k.mutex).collect(),
                    token,
                    validity,
                    acquired: round,
                });
            }
            release_all(
                self.clients.iter().map(|c| &*c.inner().backend),
                keys.iter().map(|k| k.mutex.as_str()),
                &token,
            )
            .await;
            let now = Instant::now();
            if now >= deadline {
                if failed.len() >= quorum {
                    let first = failed.into_iter().next().expect("quorum >= 1");
                    return Err(LockError::Backend(first));
                }
                return Err(LockError::Timeout {
                    waited: now - started,
                });
            }
            tokio::time::sleep(jittered(self.retry).min(deadline - now)).await;
        }
    }
}

async fn release_all<'a>(
    backends: impl Iterator<Item = &'a Backend>,
    lock_keys: impl Iterator<Item = &'a str>,
    token: &str,
) {
    join_all(backends.zip(lock_keys).map(|(backend, key)| async move {
        let _ = backend
            .run(&super::ops::Release {
                mutex: key,
                token,
                // Redlock's waiters poll; a mark its refusals left expires with its lease.
                waiters: None,
            })
            .await;
    }))
    .await;
}

/// A Redlock held on a majority of servers.
#[must_use = "release the lock when the work is done"]
pub struct RedlockGuard {
    backends: Vec<Arc<Backend>>,
    keys: Vec<String>,
    token: String,
    validity: Duration,
    acquired: Instant,
}

impl std::fmt::Debug for RedlockGuard {
    // The owner token stays out: whoever knows it can release the lock.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedlockGuard")
            .field("keys", &self.keys)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

impl RedlockGuard {
    /// How long the lock was valid for when it was acquired: finish the work within it.
    pub fn validity(&self) -> Duration {
        self.validity
    }

    /// Time left of the validity.
    pub fn remaining(&self) -> Duration {
        self.validity.saturating_sub(self.acquired.elapsed())
    }

    /// Releases the lock on every server (including those that did not grant it, in case
    /// their answer was lost).
    pub async fn release(self) {
        release_all(
            self.backends.iter().map(|b| &**b),
            self.keys.iter().map(String::as_str),
            &self.token,
        )
        .await;
    }
}
