//! A held lock: its fencing token, the lease it can vouch for, extension, release, and
//! release in the background when it is dropped (cancellation, panic).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::ops::Release;
use super::stats::{Event, TemplateCounters};
use super::{LockError, clamp_duration, extend, lease_validity};
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
    pub(super) fencing_token: u64,
    pub(super) ttl: Duration,
    /// Until when the lease is trusted: the last confirmed request's send time + validity.
    pub(super) valid_until: Mutex<Instant>,
    pub(super) armed: bool,
}

impl LockGuard {
    /// A number that increases strictly with every acquisition of this lock name. Pass it to
    /// the storage you write, and have the storage reject writes carrying a smaller token than
    /// one it has already seen: a holder that was paused past its lease then cannot overwrite
    /// the next holder's work.
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
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
            LockError::Timeout { .. } => return,
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

impl std::fmt::Debug for LockGuard {
    // The owner token stays out: whoever knows it can release the lock.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.lock_key)
            .field("fencing_token", &self.fencing_token)
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
