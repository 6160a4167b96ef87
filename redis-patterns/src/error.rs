//! The error type shared by the runtime.

use std::time::Duration;

/// What went wrong talking to the cache backend or setting up a [`Client`](crate::Client).
///
/// Cached functions never return this error: caching fails open (the function body runs and
/// its result is returned). It is returned by the explicit APIs — [`Client::connect`],
/// companions such as `product_invalidate(..)` — so callers can decide.
///
/// ```
/// use redis_patterns::{Client, Error};
///
/// let err = Client::new("ftp://example.com").unwrap_err();
/// assert!(matches!(err, Error::Config(_)));
/// assert!(err.to_string().contains("redis://"));
/// ```
///
/// [`Client::connect`]: crate::Client::connect
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; the message says which setting and how to fix it.
    #[error("invalid redis-patterns configuration: {0}")]
    Config(String),

    /// The server did not answer within the configured timeout.
    #[error(
        "Redis did not answer within {0:?}; the server is slow or unreachable \
         (raise `command_timeout` in the config if this is expected)"
    )]
    Timeout(Duration),

    /// Recent calls failed, so calls are refused until the reconnect backoff has elapsed.
    #[error(
        "Redis is unavailable after repeated failures; the next attempt is in {retry_in:?} \
         (check that the server is running and reachable)"
    )]
    Unavailable {
        /// Time until the client tries the server again.
        retry_in: Duration,
    },

    /// The Redis client or server reported an error.
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),

    /// A value could not be serialized.
    #[error("could not serialize the value: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl Error {
    /// `true` when the failure is about reaching the server (timeouts, refused or dropped
    /// connections) rather than about one command; such failures feed the reconnect backoff.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(redis_patterns::Error::Timeout(Duration::from_millis(5)).is_connection_failure());
    /// ```
    pub fn is_connection_failure(&self) -> bool {
        match self {
            Error::Timeout(_) | Error::Unavailable { .. } => true,
            Error::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
            }
            Error::Config(_) | Error::Serialize(_) => false,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
