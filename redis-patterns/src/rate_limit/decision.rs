//! What a limit decided, and the error a denied call returns.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// What one rate limit check decided.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use std::time::Duration;
/// use redis_patterns::Client;
/// use redis_patterns::rate_limit::RateLimiter;
///
/// let limiter = RateLimiter::fixed_window(2, Duration::from_secs(60)).client(Client::new("mem://")?);
/// let first = limiter.check("api:alice", 1).await?;
/// assert!(first.allowed);
/// assert_eq!((first.limit, first.remaining), (2, 1));
/// limiter.check("api:alice", 1).await?;
/// let third = limiter.check("api:alice", 1).await?;
/// assert!(!third.allowed);
/// assert!(third.retry_after > Duration::ZERO && third.retry_after <= Duration::from_secs(60));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the units were admitted (and consumed).
    pub allowed: bool,
    /// The limit: units per window, or the capacity (`burst`) of `token_bucket` and `gcra`, as
    /// redis-cell's `CL.THROTTLE` reports it.
    pub limit: u64,
    /// Units that could still be admitted right now, after this decision.
    pub remaining: u64,
    /// Time until the limiter is back to its full `limit` if nothing else is admitted.
    pub reset_after: Duration,
    /// When denied, the time until a request of the same cost can be admitted (a cost above
    /// the capacity is never admitted; its `retry_after` is the whole window). Zero when
    /// allowed.
    pub retry_after: Duration,
    /// The backend's clock when it decided: Redis `TIME` since the Unix epoch, or for
    /// `mem://` the time since the store was created. Decisions of one backend are ordered by
    /// it, whichever process made them.
    pub at: Duration,
}

/// What to do when the limit cannot be checked because the backend is unreachable, slow
/// (past `command_timeout`) or failing. Either way the event is logged (`tracing`, target
/// `redis_patterns`) and counted in [`RateLimitStats::backend_errors`](super::RateLimitStats::backend_errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Admit the call (fail open): an outage of Redis does not become an outage of the API.
    #[default]
    Allow,
    /// Deny the call with [`RateLimited`] ([`RateLimited::reason`] is
    /// [`DenyReason::BackendUnavailable`]).
    Deny,
}

/// Why a call was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// The limit is reached.
    LimitExceeded,
    /// The limit could not be checked and the policy is [`OnError::Deny`].
    BackendUnavailable,
}

/// The error of a denied call: `#[rate_limited]` functions return it through `E:
/// From<RateLimited>`, and [`RateLimiter::admit`](super::RateLimiter::admit) returns it.
///
/// It names the limit by its key template (`"api:<user_id>"`) or limiter name, never by the
/// rendered key, which may hold personal data such as a user id or an IP address.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use std::time::Duration;
/// use redis_patterns::Client;
/// use redis_patterns::rate_limit::{RateLimited, RateLimiter};
///
/// let limiter = RateLimiter::sliding_window(1, Duration::from_secs(10))
///     .name("login")
///     .client(Client::new("mem://")?);
/// limiter.admit("login:10.0.0.1", 1).await.unwrap();
/// let denied: RateLimited = limiter.admit("login:10.0.0.1", 1).await.unwrap_err();
/// assert_eq!(denied.name, "login");
/// assert_eq!(denied.limit, 1);
/// assert!(denied.retry_after <= Duration::from_secs(10));
/// assert!(!denied.to_string().contains("10.0.0.1"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimited {
    /// The key template (`#[rate_limited]`) or the limiter's name.
    pub name: Cow<'static, str>,
    /// The limit that denied the call (see [`Decision::limit`]).
    pub limit: u64,
    /// Units still available (fewer than the call's cost).
    pub remaining: u64,
    /// Time until a call of the same cost can be admitted.
    pub retry_after: Duration,
    /// Time until the limit is full again.
    pub reset_after: Duration,
    /// Why the call was denied.
    pub reason: DenyReason,
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            DenyReason::LimitExceeded => write!(
                f,
                "rate limit `{}` exceeded (limit {}); retry in {:?}",
                self.name, self.limit, self.retry_after
            ),
            DenyReason::BackendUnavailable => write!(
                f,
                "rate limit `{}` could not be checked because the backend is unavailable, and \
                 its policy is to deny (`on_error = \"deny\"`); retry in {:?}",
                self.name, self.retry_after
            ),
        }
    }
}

impl std::error::Error for RateLimited {}

impl RateLimited {
    pub(super) fn exceeded(name: Cow<'static, str>, d: &Decision) -> Self {
        RateLimited {
            name,
            limit: d.limit,
            remaining: d.remaining,
            retry_after: d.retry_after,
            reset_after: d.reset_after,
            reason: DenyReason::LimitExceeded,
        }
    }

    pub(super) fn unavailable(name: Cow<'static, str>, limit: u64, error: &Error) -> Self {
        let retry_after = match error {
            Error::Unavailable { retry_in } => *retry_in,
            _ => Duration::from_secs(1),
        };
        RateLimited {
            name,
            limit,
            remaining: 0,
            retry_after,
            reset_after: retry_after,
            reason: DenyReason::BackendUnavailable,
        }
    }
}
