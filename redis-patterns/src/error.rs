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

    /// Redis refused the credentials: a wrong user name or password, a disabled user, or
    /// none given where the server requires one. The message is the server's (it never
    /// contains the password).
    #[error(
        "Redis refused the credentials ({0}); check the user name and password in the URL or \
         `Config::username`/`Config::password`"
    )]
    Authentication(String),

    /// The ACL user may not run a command or touch a key that redis-patterns needs (the
    /// server's message says which).
    #[error(
        "the Redis user lacks a permission ({0}); grant it the commands and the `~namespace:*` \
         key pattern listed in the README's ACL section"
    )]
    Permission(String),

    /// The TLS connection could not be set up, typically because the server's certificate is
    /// not signed by a trusted CA or does not name the host.
    #[error(
        "the TLS connection to Redis failed ({0}); check that the server's certificate names \
         the host and is signed by a CA you trust (`Config::tls_root_certificate`)"
    )]
    Tls(String),

    /// The Redis server or the connection to it reported an error (a failed command, a
    /// dropped connection, a reply of an unexpected shape). [`BackendError`] says what; its
    /// [`source`](std::error::Error::source) is the client library's error.
    #[error(transparent)]
    Backend(BackendError),

    /// A value could not be serialized in its codec ([`cache::Codec`](crate::cache::Codec)).
    #[error("could not serialize the value: {0}")]
    Serialize(#[source] Box<dyn std::error::Error + Send + Sync>),
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
            Error::Backend(e) => e.is_connection_failure(),
            Error::Config(_)
            | Error::Serialize(_)
            | Error::Authentication(_)
            | Error::Permission(_)
            | Error::Tls(_) => false,
        }
    }
}

impl From<redis::RedisError> for Error {
    /// Sorts out the failures a user must act on (credentials, permissions, TLS) from the rest.
    fn from(e: redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind};
        let detail = || e.detail().unwrap_or("no details").to_owned();
        match (e.kind(), e.code()) {
            (ErrorKind::AuthenticationFailed, _) | (_, Some("WRONGPASS" | "NOAUTH")) => {
                Error::Authentication(format!("{}: {}", e.code().unwrap_or("AUTH"), detail()))
            }
            (ErrorKind::Server(ServerErrorKind::NoPerm), _) => {
                Error::Permission(format!("NOPERM {}", detail()))
            }
            _ => match tls_failure(&e) {
                Some(why) => Error::Tls(why),
                None => Error::Backend(BackendError(e)),
            },
        }
    }
}

/// An error reported by Redis or by the connection to it.
///
/// Opaque on purpose, so that this crate's API does not change with the Redis client
/// library's: [`Display`](std::fmt::Display) gives the message (with the server's error code
/// when there is one), [`code`](Self::code) the code alone, and
/// [`source`](std::error::Error::source) the underlying error for logging or downcasting.
///
/// ```
/// # async fn demo(client: &redis_patterns::Client) {
/// if let Err(redis_patterns::Error::Backend(e)) = client.connect().await {
///     eprintln!("Redis failed ({:?}): {e}", e.code());
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct BackendError(redis::RedisError);

impl BackendError {
    /// The server's error code (`"READONLY"`, `"OOM"`, `"BUSY"`, …), or `None` for failures
    /// on the client side (I/O, an unexpected reply).
    pub fn code(&self) -> Option<&str> {
        self.0.code()
    }

    /// `true` for a refused, dropped or timed-out connection rather than one failed command.
    pub fn is_connection_failure(&self) -> bool {
        let e = &self.0;
        e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
    }

    /// A reply whose shape the operation did not expect (a foreign script, a wrong type).
    /// An error as Redis reports it, for the in-memory twins that fail where Redis would.
    pub(crate) fn from_redis(error: redis::RedisError) -> Self {
        BackendError(error)
    }

    pub(crate) fn unexpected_reply(script: &'static str) -> Self {
        BackendError(redis::RedisError::from((
            redis::ErrorKind::Parse,
            "unexpected reply from a script",
            script.to_owned(),
        )))
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redis error: {}", self.0)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The TLS error somewhere in `e`'s chain of sources, if any.
#[cfg(feature = "tls")]
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(e);
    while let Some(error) = cause {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // tokio-rustls wraps the handshake's error in an io::Error, whose `source` skips it.
        if let Some(tls) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls.to_string());
        }
        cause = error.source();
    }
    let text = e.to_string();
    text.contains("certificate").then_some(text)
}

#[cfg(not(feature = "tls"))]
fn tls_failure(_: &(dyn std::error::Error + 'static)) -> Option<String> {
    None
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
