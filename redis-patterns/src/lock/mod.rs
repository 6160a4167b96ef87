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
//! `SET NX PX` in a Lua script that also increments the fencing counter
//! `namespace:{name}:fence` (which never expires, so tokens keep increasing). Release and
//! extension are compare-and-delete / compare-and-`PEXPIRE` scripts: nobody ever deletes or
//! extends another owner's lock. Locks fail closed: if the backend cannot be reached, the
//! acquisition fails with [`LockError::Backend`] and the protected work does not run.

mod redlock;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::{Script, Value};
use tokio::time::Instant;

pub use self::redlock::{Redlock, RedlockGuard};
use crate::backend::Backend;
use crate::cache::new_token;
use crate::client::Client;
use crate::error::Error;

static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/lock_acquire.lua")));
static EXTEND: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/lock_extend.lua")));

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
}

impl From<Error> for LockError {
    fn from(e: Error) -> Self {
        LockError::Backend(e)
    }
}

/// A lock by name, configured with a builder and taken with [`acquire`](Lock::acquire).
///
/// Defaults: lease (`ttl`) 30 s, no waiting (`wait` 0: one attempt), 50 ms between attempts
/// (with jitter), the process-wide default [`Client`].
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

    /// How long the lock is held if its owner neither releases nor extends it (at least 1 ms).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// How long to keep trying while another owner holds the lock (0: try once).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The pause between attempts while waiting (randomised by ±50 %).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = retry.max(Duration::from_millis(1));
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
        acquire_key(&client, &key, self.ttl, self.wait, self.retry).await
    }
}

/// A held lock. Dropping it releases the lock in the background (so a cancelled task does
/// not leave others waiting for the lease to run out); [`release`](LockGuard::release) does
/// it now and reports whether the lock was still ours.
#[must_use = "dropping the guard releases the lock"]
pub struct LockGuard {
    backend: Arc<Backend>,
    lock_key: String,
    token: String,
    fencing_token: u64,
    ttl: Duration,
    armed: bool,
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

    /// Resets the lease to `ttl` from now; [`LockError::Lost`] if the lock is no longer ours.
    pub async fn extend(&self, ttl: Duration) -> Result<(), LockError> {
        match extend(&self.backend, &self.lock_key, &self.token, ttl).await? {
            true => Ok(()),
            false => Err(LockError::Lost),
        }
    }

    /// Releases the lock; [`LockError::Lost`] if it had already expired or been taken over.
    pub async fn release(mut self) -> Result<(), LockError> {
        self.armed = false;
        match self.backend.unlock(&self.lock_key, &self.token).await? {
            true => Ok(()),
            false => Err(LockError::Lost),
        }
    }
}

impl std::fmt::Debug for LockGuard {
    // The owner token stays out: whoever knows it can release the lock.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.lock_key)
            .field("fencing_token", &self.fencing_token)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.armed {
            crate::backend::unlock_in_background(
                &self.backend,
                std::mem::take(&mut self.lock_key),
                std::mem::take(&mut self.token),
            );
        }
    }
}

/// What one attempt to take a lock found.
pub(crate) enum Attempt {
    Acquired { fencing_token: u64 },
    Held { remaining: Option<Duration> },
}

/// The two keys of a lock named by `key` (`ns:{name}`), built once per acquisition.
pub(crate) struct LockKeys {
    /// `ns:{name}:mutex`: holds the owner token.
    pub(crate) mutex: String,
    /// `ns:{name}:fence`: the fencing counter.
    fence: String,
}

impl LockKeys {
    pub(crate) fn new(key: &str) -> Self {
        LockKeys {
            mutex: format!("{key}:mutex"),
            fence: format!("{key}:fence"),
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
    let (lock, fence) = (&keys.mutex, &keys.fence);
    match backend {
        Backend::Redis(r) => {
            let reply: Value = r
                .invoke(ACQUIRE.key(lock).key(fence).arg(token).arg(millis(ttl)))
                .await?;
            match reply {
                Value::Array(items) => match items.as_slice() {
                    [Value::Int(1), Value::Int(fence)] => Ok(Attempt::Acquired {
                        fencing_token: u64::try_from(*fence).unwrap_or(0),
                    }),
                    [Value::Int(0), Value::Int(pttl)] => Ok(Attempt::Held {
                        remaining: u64::try_from(*pttl).ok().map(Duration::from_millis),
                    }),
                    _ => Err(unexpected_reply()),
                },
                _ => Err(unexpected_reply()),
            }
        }
        Backend::Memory(m) => Ok(m.atomically(lock, |txn| {
            if txn.get(lock).is_some() {
                return Attempt::Held {
                    remaining: txn.pttl(lock),
                };
            }
            txn.set(lock, token.as_bytes().to_vec().into(), Some(ttl));
            let counter = txn.state::<u64>(fence);
            *counter += 1;
            Attempt::Acquired {
                fencing_token: *counter,
            }
        })),
        Backend::Unusable(why) => Err(Backend::unusable(why)),
    }
}

/// Compare-and-`PEXPIRE`: `true` when the lock was still `token`'s.
pub(crate) async fn extend(
    backend: &Backend,
    lock_key: &str,
    token: &str,
    ttl: Duration,
) -> Result<bool, Error> {
    match backend {
        Backend::Redis(r) => {
            let n: i64 = r
                .invoke(EXTEND.key(lock_key).arg(token).arg(millis(ttl)))
                .await?;
            Ok(n == 1)
        }
        Backend::Memory(m) => Ok(m.atomically(lock_key, |txn| {
            txn.get(lock_key).is_some_and(|v| v == token.as_bytes()) && txn.expire(lock_key, ttl)
        })),
        Backend::Unusable(why) => Err(Backend::unusable(why)),
    }
}

fn unexpected_reply() -> Error {
    Error::Redis(redis::RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected reply from the lock script",
    )))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A pause of `base` randomised by ±50 %, so that waiters do not retry in lockstep.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(0.5 + fastrand::f64())
}

pub(crate) async fn acquire_key(
    client: &Client,
    key: &str,
    ttl: Duration,
    wait: Duration,
    retry: Duration,
) -> Result<LockGuard, LockError> {
    let backend = &client.inner().backend;
    let token = new_token();
    let started = Instant::now();
    let deadline = started + wait;
    let keys = LockKeys::new(key);
    loop {
        match try_acquire(backend, &keys, &token, ttl).await? {
            Attempt::Acquired { fencing_token } => {
                return Ok(LockGuard {
                    backend: Arc::clone(backend),
                    lock_key: keys.mutex,
                    token,
                    fencing_token,
                    ttl,
                    armed: true,
                });
            }
            Attempt::Held { remaining } => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(LockError::Timeout {
                        waited: now - started,
                    });
                }
                // No point waking before the holder's lease could have run out, nor after
                // the deadline.
                let pause = jittered(retry)
                    .min(
                        remaining
                            .unwrap_or(Duration::MAX)
                            .max(Duration::from_millis(1)),
                    )
                    .min(deadline - now);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// What a `#[with_lock]` function does when its lease is lost while it runs.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLost {
    /// Drop the function's future and return [`LockError::Lost`].
    Abort,
    /// Let the function finish; log and flag the loss (see [`lease_lost`]).
    Continue,
}

/// The static description of one `#[with_lock]` function.
#[doc(hidden)]
pub struct LockSpec {
    pub name: &'static str,
    pub ttl: Duration,
    pub wait: Duration,
    pub retry: Duration,
    pub extend: bool,
    pub on_lost: OnLost,
}

/// The return type of a `#[with_lock]` function.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a #[with_lock] function must return `Result<T, E>` where `E: From<LockError>`, not `{Self}`",
    label = "the lock's own failures (timeout, lost lease, backend down) are returned through this type",
    note = "implement `From<redis_patterns::lock::LockError>` for your error type"
)]
pub trait LockReturn {
    fn from_lock_error(error: LockError) -> Self;
}

impl<T, E: From<LockError>> LockReturn for Result<T, E> {
    fn from_lock_error(error: LockError) -> Self {
        Err(E::from(error))
    }
}

/// Checks the return type where the attribute's return type is written, and hands the
/// conversion to [`with_lock`] (which then needs no bound of its own, so a wrong return type
/// is reported once, there).
#[doc(hidden)]
pub fn check_lock_return<R: LockReturn>() -> fn(LockError) -> R {
    R::from_lock_error
}

struct Context {
    fencing_token: u64,
    lost: AtomicBool,
}

tokio::task_local! {
    static CONTEXT: Arc<Context>;
}

/// Inside a `#[with_lock]` function: the fencing token of the lock it holds.
///
/// ```
/// assert_eq!(redis_patterns::lock::fencing_token(), None); // not inside #[with_lock]
/// ```
pub fn fencing_token() -> Option<u64> {
    CONTEXT.try_with(|c| c.fencing_token).ok()
}

/// Inside a `#[with_lock(…, on_lost = "continue")]` function: `true` once the lease was found
/// lost. Check it before committing work that must not overlap with the next holder.
///
/// ```
/// assert!(!redis_patterns::lock::lease_lost()); // not inside #[with_lock]
/// ```
pub fn lease_lost() -> bool {
    CONTEXT
        .try_with(|c| c.lost.load(Ordering::Acquire))
        .unwrap_or(false)
}

/// What `#[with_lock]` expands to: acquire, run the body with the lease renewed every
/// `ttl / 3`, release.
#[doc(hidden)]
pub async fn with_lock<R, F>(
    client: &Client,
    spec: &'static LockSpec,
    key: String,
    from_lock_error: fn(LockError) -> R,
    body: F,
) -> R
where
    F: Future<Output = R>,
{
    let guard = match acquire_key(client, &key, spec.ttl, spec.wait, spec.retry).await {
        Ok(guard) => guard,
        Err(error) => {
            if let LockError::Backend(e) = &error {
                tracing::warn!(target: "redis_patterns", lock = spec.name, error = %e, "lock backend failed; the function did not run");
            }
            return from_lock_error(error);
        }
    };
    let context = Arc::new(Context {
        fencing_token: guard.fencing_token,
        lost: AtomicBool::new(false),
    });
    let body = CONTEXT.scope(Arc::clone(&context), body);
    let mut body = std::pin::pin!(body);
    if spec.extend {
        let renewal = keep_alive(&guard, spec);
        tokio::select! {
            ret = &mut body => return finish(guard, spec, ret).await,
            () = renewal => {}
        }
        // The lease is lost.
        context.lost.store(true, Ordering::Release);
        let mut guard = guard;
        guard.armed = false; // not ours any more: nothing to release
        match spec.on_lost {
            OnLost::Abort => {
                tracing::error!(target: "redis_patterns", lock = spec.name, "lock lost while the function ran; it was cancelled");
                from_lock_error(LockError::Lost)
            }
            OnLost::Continue => {
                tracing::error!(target: "redis_patterns", lock = spec.name, "lock lost while the function ran; letting it finish (on_lost = \"continue\")");
                body.await
            }
        }
    } else {
        let ret = body.await;
        finish(guard, spec, ret).await
    }
}

/// Renews the lease every `ttl / 3`; returns when it is lost: the lock is no longer ours, or
/// renewals failed until the lease must have run out.
async fn keep_alive(guard: &LockGuard, spec: &LockSpec) {
    let interval = (spec.ttl / 3).max(Duration::from_millis(1));
    let mut lease_until = Instant::now() + spec.ttl;
    loop {
        tokio::time::sleep(interval).await;
        let attempted = Instant::now();
        match extend(&guard.backend, &guard.lock_key, &guard.token, spec.ttl).await {
            Ok(true) => lease_until = attempted + spec.ttl,
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(target: "redis_patterns", lock = spec.name, %error, "renewing the lock's lease failed");
                if Instant::now() >= lease_until {
                    return;
                }
            }
        }
    }
}

async fn finish<R>(guard: LockGuard, spec: &LockSpec, ret: R) -> R {
    match guard.release().await {
        Ok(()) => {}
        Err(LockError::Lost) => tracing::warn!(
            target: "redis_patterns",
            lock = spec.name,
            "the lock's lease ran out before the function finished (use `extend = true` or a longer `ttl`)"
        ),
        Err(error) => {
            tracing::warn!(target: "redis_patterns", lock = spec.name, %error, "releasing the lock failed; it expires with its lease")
        }
    }
    ret
}
