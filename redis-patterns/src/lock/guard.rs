//! A held lock: its fencing token, the lease it can vouch for, extension, release, and
//! release in the background when it is dropped (cancellation, panic).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::ops::{Fence, Release};
use super::stats::{Event, TemplateCounters};
use super::{LockError, clamp_duration, extend, fence_key, lease_validity};
use crate::client::Client;
use crate::util::lock;

/// A held lock. Dropping it releases the lock in the background (so a cancelled task does
/// not leave others waiting for the lease to run out); [`release`](LockGuard::release) does
/// it now and reports whether the lock was still ours.
#[must_use = "dropping the guard releases the lock"]
pub struct LockGuard {
    pub(super) client: Client,
    /// The `#[with_lock]` attribute's counters, if it took the lock.
    pub(super) template: Option<&'static TemplateCounters>,
    pub(super) lock_key: String,
    /// The lock's waiters' mark, rewritten by the release.
    pub(super) waiters: String,
    pub(super) token: String,
    /// Issued on first request ([`fencing_token`](LockGuard::fencing_token)).
    pub(super) fencing_token: OnceLock<u64>,
    pub(super) ttl: Duration,
    /// Until when the lease is trusted: the last confirmed request's send time + validity.
    pub(super) valid_until: Mutex<Instant>,
    pub(super) armed: bool,
}

impl LockGuard {
    /// This holding's fencing token: a number that increases strictly from one holder of this
    /// lock name to the next. Pass it to the storage you write, and have the storage reject
    /// writes carrying a smaller token than one it has already seen: a holder that was paused
    /// past its lease then cannot overwrite the next holder's work.
    ///
    /// The token is issued by the server on the first call (one round trip; later calls
    /// return it at once), and only while the lock is still this guard's: a lock that does
    /// not need fencing costs nothing for it. Since a holder is issued its token while it
    /// holds the lock, the tokens of successive holders increase in the order of their
    /// holdings, whenever each asks. See [the module documentation](super#fencing-tokens)
    /// for what the token is made of.
    ///
    /// [`LockError::Lost`] if the lock is no longer ours (expired, or taken over): then no
    /// write should be made under it. [`LockError::Backend`] if the server cannot be reached.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), redis_patterns::lock::LockError> {
    /// use redis_patterns::{Client, lock::Lock};
    /// let client = Client::new("mem://").unwrap();
    /// let first = Lock::new("ledger").client(&client).acquire().await?;
    /// let token = first.fencing_token().await?;
    /// assert_eq!(first.fencing_token().await?, token); // issued once per holding
    /// first.release().await?;
    /// let second = Lock::new("ledger").client(&client).acquire().await?;
    /// assert!(second.fencing_token().await? > token);
    /// # Ok(()) }
    /// ```
    pub async fn fencing_token(&self) -> Result<u64, LockError> {
        let issued = issue_fencing_token(
            &self.client,
            &self.lock_key,
            &self.token,
            self.ttl,
            &self.fencing_token,
        )
        .await;
        if let Err(error) = &issued {
            self.count_failure(error);
        }
        issued
    }

    /// The lease this lock was taken with.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Time left of the lease as this process can vouch for it: from the last confirmed
    /// acquisition or extension's *request*, minus a margin for clock drift. Zero once the
    /// lease must be treated as lost.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use redis_patterns::{Client, lock::Lock};
    /// let client = Client::new("mem://").unwrap();
    /// let guard = Lock::new("job").client(&client).ttl(Duration::from_secs(10)).acquire().await.unwrap();
    /// assert!(guard.lease_remaining() <= Duration::from_secs(10));
    /// assert!(guard.lease_remaining() > Duration::from_secs(9));
    /// # }
    /// ```
    pub fn lease_remaining(&self) -> Duration {
        self.valid_until().saturating_duration_since(Instant::now())
    }

    pub(crate) fn valid_until(&self) -> Instant {
        *lock(&self.valid_until)
    }

    /// Resets the lease to `ttl` (clamped as [`Lock::ttl`](super::Lock::ttl)) counted from now.
    ///
    /// [`LockError::Lost`] if the lock is no longer ours; [`LockError::LeaseTooShort`] if the
    /// confirmation arrived only after the new lease would have run out.
    pub async fn extend(&self, ttl: Duration) -> Result<(), LockError> {
        let ttl = clamp_duration(ttl, Duration::from_millis(1));
        let extended = self.extend_before(ttl, None).await;
        if let Err(error) = &extended {
            self.count_failure(error);
        }
        extended
    }

    /// Counts a failed extension or release.
    pub(super) fn count_failure(&self, error: &LockError) {
        let event = match error {
            LockError::Lost => Event::Lost,
            LockError::LeaseTooShort { .. } => Event::LateGrant,
            LockError::Backend(_) => Event::BackendError,
            LockError::Timeout { .. } | LockError::OutsideLock => return,
        };
        super::count(&self.client, self.template, event);
    }

    /// One compare-and-`PEXPIRE`, given up at `give_up` (or when the new lease would be over);
    /// on success the lease is trusted until the request's send time + validity.
    pub(crate) async fn extend_before(
        &self,
        ttl: Duration,
        give_up: Option<Instant>,
    ) -> Result<(), LockError> {
        let sent = Instant::now();
        let new_end = sent + lease_validity(ttl);
        let give_up = give_up.map_or(new_end, |g| g.min(new_end));
        let backend = &self.client.inner().backend;
        let renewal = extend(backend, &self.lock_key, &self.token, ttl);
        match tokio::time::timeout_at(give_up, renewal).await {
            Ok(Ok(true)) => {
                *lock(&self.valid_until) = new_end;
                Ok(())
            }
            Ok(Ok(false)) => Err(LockError::Lost),
            Ok(Err(error)) => Err(LockError::Backend(error)),
            Err(_) if give_up < new_end => Err(LockError::Lost),
            Err(_) => Err(LockError::LeaseTooShort {
                ttl,
                round_trip: sent.elapsed(),
            }),
        }
    }

    /// Releases the lock; [`LockError::Lost`] if it had already expired or been taken over.
    pub async fn release(mut self) -> Result<(), LockError> {
        self.armed = false;
        let release = Release {
            mutex: &self.lock_key,
            token: &self.token,
            waiters: Some(&self.waiters),
        };
        let released = match self.client.inner().backend.run(&release).await {
            Ok(true) => {
                // A waiter of this process tries at once; the others hear the server.
                self.client.watched_changed(&self.waiters);
                Ok(())
            }
            Ok(false) => Err(LockError::Lost),
            Err(error) => Err(LockError::Backend(error)),
        };
        if let Err(error) = &released {
            self.count_failure(error);
        }
        released
    }
}

/// The fencing token of the holding of `mutex` by `token`, issued once into `issued`
/// (`scripts/lock/fence.lua`, with the holding's lease as the fencing key's TTL).
pub(super) async fn issue_fencing_token(
    client: &Client,
    mutex: &str,
    token: &str,
    ttl: Duration,
    issued: &OnceLock<u64>,
) -> Result<u64, LockError> {
    if let Some(token) = issued.get() {
        return Ok(*token);
    }
    let fence = Fence {
        mutex,
        fence: &fence_key(mutex),
        token,
        ttl,
    };
    match client.inner().backend.run(&fence).await {
        Ok(Some(new)) => Ok(*issued.get_or_init(|| new)),
        Ok(None) => Err(LockError::Lost),
        Err(error) => Err(LockError::Backend(error)),
    }
}

impl std::fmt::Debug for LockGuard {
    // The owner token stays out: whoever knows it can release the lock.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.lock_key)
            .field("fencing_token", &self.fencing_token.get())
            .field("ttl", &self.ttl)
            .field("lease_remaining", &self.lease_remaining())
            .finish_non_exhaustive()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.armed {
            crate::backend::unlock_in_background(
                &self.client.inner().backend,
                std::mem::take(&mut self.lock_key),
                Some(std::mem::take(&mut self.waiters)),
                std::mem::take(&mut self.token),
            );
        }
    }
}
