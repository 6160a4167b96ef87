//! What `#[with_lock]` expands to: acquire, run the function under a watchdog that renews the
//! lease and ends it (cancel or flag) the instant the lease runs out unconfirmed, release.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::stats::{Event, TemplateCounters};
use super::{LockError, LockGuard, acquire_key};
use crate::client::Client;
use crate::util::observe;
use tracing::Instrument;

/// What a `#[with_lock]` function does when its lease is lost while it runs.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLost {
    /// Drop the function's future and return [`LockError::Lost`].
    Abort,
    /// Let the function finish; log and flag the loss (see [`lease_lost`]).
    Continue,
}

/// Whether a `#[with_lock]` lease is renewed while the function runs.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Renewed every `ttl / 3` (`extend = true`, the default).
    Renewed,
    /// Ends `ttl` after it was taken (`extend = false`).
    Fixed,
}

/// The static description of one `#[with_lock]` function.
#[doc(hidden)]
pub struct LockSpec {
    ttl: Duration,
    wait: Duration,
    retry: Duration,
    lease: Lease,
    on_lost: OnLost,
    fenced: bool,
    counters: TemplateCounters,
}

impl LockSpec {
    pub const fn new(
        name: &'static str,
        ttl: Duration,
        wait: Duration,
        retry: Duration,
        lease: Lease,
        on_lost: OnLost,
        fenced: bool,
    ) -> Self {
        LockSpec {
            ttl,
            wait,
            retry,
            lease,
            on_lost,
            fenced,
            counters: TemplateCounters::new(name),
        }
    }

    fn name(&self) -> &'static str {
        self.counters.name()
    }
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
    client: Client,
    counters: &'static TemplateCounters,
    mutex: String,
    token: String,
    ttl: Duration,
    fencing_token: std::sync::OnceLock<u64>,
    lost: AtomicBool,
}

tokio::task_local! {
    static CONTEXT: Arc<Context>;
}

/// Inside a `#[with_lock]` function: the fencing token of the lock it holds, as
/// [`LockGuard::fencing_token`] (issued by the server on the first call, while the lock is
/// still held; later calls return it at once).
///
/// [`LockError::Lost`] if the lock is no longer held, [`LockError::Backend`] if the server
/// cannot be reached, and [`LockError::OutsideLock`] outside a `#[with_lock]` function.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use redis_patterns::lock::{LockError, fencing_token};
/// assert!(matches!(fencing_token().await, Err(LockError::OutsideLock)));
/// # }
/// ```
pub async fn fencing_token() -> Result<u64, LockError> {
    let Ok(context) = CONTEXT.try_with(Arc::clone) else {
        return Err(LockError::OutsideLock);
    };
    let c = &*context;
    let issued =
        super::guard::issue_fencing_token(&c.client, &c.mutex, &c.token, c.ttl, &c.fencing_token)
            .await;
    match &issued {
        Err(LockError::Lost) => super::count(&c.client, Some(c.counters), Event::Lost),
        Err(LockError::Backend(_)) => {
            super::count(&c.client, Some(c.counters), Event::BackendError)
        }
        _ => {}
    }
    issued
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
/// `ttl / 3` (if `extend`), release. When the lease ends without a confirmed renewal, the
/// body is dropped or flagged at that instant, as `on_lost` says.
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
    let terms = super::Terms {
        ttl: spec.ttl,
        wait: spec.wait,
        retry: spec.retry,
        fenced: spec.fenced,
    };
    let span = tracing::debug_span!(
        target: "redis_patterns",
        "lock",
        lock = spec.name(),
        outcome = tracing::field::Empty,
        wait_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let locked = locked(client, spec, &key, terms, from_lock_error, body)
        .instrument(span.clone())
        .await;
    if observe::TIMING {
        spec.counters.duration(started.elapsed());
    }
    locked
}

/// The locked call, in its span: acquire (recording the wait), run, release.
async fn locked<R, F>(
    client: &Client,
    spec: &'static LockSpec,
    key: &str,
    terms: super::Terms,
    from_lock_error: fn(LockError) -> R,
    body: F,
) -> R
where
    F: Future<Output = R>,
{
    let span = tracing::Span::current();
    let started = Instant::now();
    let acquired = acquire_key(client, key, terms, Some(&spec.counters)).await;
    let waited = started.elapsed();
    span.record("wait_ms", waited.as_secs_f64() * 1e3);
    observe::seconds("lock_wait_seconds", "lock", spec.name(), waited);
    span.record(
        "outcome",
        match &acquired {
            Ok(_) => "acquired",
            Err(LockError::Timeout { .. }) => "timeout",
            Err(LockError::LeaseTooShort { .. }) => "late_grant",
            Err(LockError::Backend(_)) => "backend_error",
            Err(LockError::Lost | LockError::OutsideLock) => "lost",
        },
    );
    let guard = match acquired {
        Ok(guard) => guard,
        Err(error) => {
            if let LockError::Backend(e) = &error {
                tracing::warn!(target: "redis_patterns", lock = spec.name(), error = %e, "lock backend failed; the function did not run");
            }
            return from_lock_error(error);
        }
    };
    let context = Arc::new(Context {
        client: client.clone(),
        counters: &spec.counters,
        mutex: guard.lock_key.clone(),
        token: guard.token.clone(),
        ttl: guard.ttl,
        fencing_token: guard.fencing_token.clone(),
        lost: AtomicBool::new(false),
    });
    let body = CONTEXT.scope(Arc::clone(&context), body);
    let mut body = std::pin::pin!(body);
    tokio::select! {
        ret = &mut body => return finish(guard, spec, ret).await,
        () = watchdog(&guard, spec) => {}
    }
    // The lease is lost.
    context.lost.store(true, Ordering::Release);
    super::count(client, Some(&spec.counters), Event::Lost);
    span.record("outcome", "lost");
    let mut guard = guard;
    guard.armed = false; // not ours any more: nothing to release
    match spec.on_lost {
        OnLost::Abort => {
            tracing::error!(target: "redis_patterns", lock = spec.name(), "lock lost while the function ran; it was cancelled");
            from_lock_error(LockError::Lost)
        }
        OnLost::Continue => {
            tracing::error!(target: "redis_patterns", lock = spec.name(), "lock lost while the function ran; letting it finish (on_lost = \"continue\")");
            body.await
        }
    }
}

/// Returns the instant the lease is lost: the lock is found no longer ours, or its lease ends
/// without a confirmed renewal. With `extend`, renews every `ttl / 3` counted from the last
/// confirmed renewal's request (sooner after a failed one); no renewal is waited for past the
/// lease it would renew.
async fn watchdog(guard: &LockGuard, spec: &LockSpec) {
    let interval = (spec.ttl / 3).max(Duration::from_millis(1));
    let mut next = Instant::now() + interval;
    loop {
        let lease_end = guard.valid_until();
        if spec.lease == Lease::Fixed || next >= lease_end {
            tokio::time::sleep_until(lease_end).await;
            if guard.valid_until() <= lease_end {
                return;
            }
            continue;
        }
        tokio::time::sleep_until(next).await;
        let sent = Instant::now();
        match guard.extend_before(spec.ttl, Some(lease_end)).await {
            Ok(()) => next = sent + interval,
            Err(error @ LockError::Backend(_)) => {
                guard.count_failure(&error);
                tracing::warn!(target: "redis_patterns", lock = spec.name(), %error, "renewing the lock's lease failed; retrying while the lease lasts");
                next = Instant::now() + (interval / 4).max(Duration::from_millis(1));
            }
            Err(_) => return,
        }
    }
}

async fn finish<R>(guard: LockGuard, spec: &LockSpec, ret: R) -> R {
    match guard.release().await {
        Ok(()) => {}
        Err(LockError::Lost) => tracing::warn!(
            target: "redis_patterns",
            lock = spec.name(),
            "the lock's lease ran out before the function finished (use `extend = true` or a longer `ttl`)"
        ),
        Err(error) => {
            tracing::warn!(target: "redis_patterns", lock = spec.name(), %error, "releasing the lock failed; it expires with its lease")
        }
    }
    ret
}
