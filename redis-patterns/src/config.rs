//! Client configuration: where to connect, how long to wait, how to name keys.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// How to reach the backend and how patiently.
///
/// Built from a URL — `redis://[user[:password]@]host[:port][/db]`, `rediss://…` (feature
/// `tls`), `unix:///path/to/redis.sock`, or `mem://[name]` for the in-process backend — and
/// refined with builder methods. Passwords never appear in `Debug` or `Display`.
///
/// ```
/// use std::time::Duration;
/// use redis_patterns::Config;
///
/// let config = Config::from_url("redis://app:hunter2@cache.internal:6380/2")?
///     .namespace("shop")
///     .command_timeout(Duration::from_millis(200));
/// assert_eq!(config.to_string(), "redis://app:***@cache.internal:6380/2 (namespace `shop`)");
/// assert!(!format!("{config:?}").contains("hunter2"));
/// # Ok::<(), redis_patterns::Error>(())
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) target: Target,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) namespace: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) reconnect_min_backoff: Duration,
    pub(crate) reconnect_max_backoff: Duration,
    /// Certificates for `rediss://` beyond the defaults (feature `tls`).
    pub(crate) tls: TlsFiles,
}

/// A CA to trust instead of the webpki roots, and a client certificate for mutual TLS. The
/// certificates are public; the client key is a secret and never printed.
#[derive(Clone, Default)]
pub(crate) struct TlsFiles {
    pub(crate) root_certificate: Option<Vec<u8>>,
    pub(crate) client: Option<(Vec<u8>, Secret<Vec<u8>>)>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |present: bool| if present { "<set>" } else { "<none>" };
        f.debug_struct("Tls")
            .field("root_certificate", &set(self.root_certificate.is_some()))
            .field("client_certificate", &set(self.client.is_some()))
            .finish()
    }
}

#[derive(Clone)]
pub(crate) enum Target {
    /// The URL with any password removed (it lives in [`Config::password`]).
    Redis(url::Url),
    /// `mem://` (a private store) or `mem://name` (a store shared by every client of that name
    /// in this process).
    Memory(Option<String>),
}

/// The longest timeout or backoff a configuration keeps; longer ones are clamped to it.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// A value (a password, a private key) that is never printed.
#[derive(Clone)]
pub(crate) struct Secret<T = String>(pub(crate) T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Config {
    /// The environment variable read by [`Config::from_env`] and by the lazily created
    /// default client: `REDIS_URL`.
    pub const URL_ENV: &str = "REDIS_URL";

    /// The URL used when [`URL_ENV`](Self::URL_ENV) is not set: `mem://`, an in-process store,
    /// so development and tests work without a server. Production deployments set `REDIS_URL`.
    pub const DEFAULT_URL: &str = "mem://";

    /// Parses a backend URL with the default timeouts (connect 1 s, command 500 ms, reconnect
    /// probes 50 ms apart doubling up to 250 ms, with jitter). User and password may come as
    /// URL user info (`redis://user:pass@host`) or, in the socket form, as query parameters
    /// (`unix:///run/redis.sock?db=1&user=app&pass=…`); either way they are kept out of the
    /// URL, and never printed.
    ///
    /// ```
    /// let config = redis_patterns::Config::from_url("unix:///run/redis.sock?db=1&pass=hunter2")?;
    /// assert_eq!(config.to_string(), "unix:///run/redis.sock?db=1&pass=***");
    /// assert!(!format!("{config:?}").contains("hunter2"));
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    ///
    /// ```
    /// let config = redis_patterns::Config::from_url("mem://")?;
    /// assert_eq!(config.to_string(), "mem://");
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let target = parse_target(url)?;
        let mut config = Config {
            target,
            username: None,
            password: None,
            namespace: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_millis(500),
            reconnect_min_backoff: Duration::from_millis(50),
            reconnect_max_backoff: Duration::from_millis(250),
            tls: TlsFiles::default(),
        };
        if let Target::Redis(parsed) = &mut config.target {
            if !parsed.username().is_empty() {
                config.username = Some(percent_decode(parsed.username()));
            }
            if let Some(password) = parsed.password() {
                config.password = Some(Secret(percent_decode(password)));
            }
            // Neither stays in the URL: they are applied from the fields, so that the
            // builder methods can override them and printing the URL never leaks them.
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            // `unix:///path?user=…&pass=…` (redis-rs's socket form) carries them as query
            // parameters: take those out the same way.
            let mut kept = Vec::new();
            for (name, value) in parsed.query_pairs() {
                match &*name {
                    "pass" | "password" => config.password = Some(Secret(value.into_owned())),
                    "user" | "username" => config.username = Some(value.into_owned()),
                    _ => kept.push((name.into_owned(), value.into_owned())),
                }
            }
            if parsed.query().is_some() {
                if kept.is_empty() {
                    parsed.set_query(None);
                } else {
                    parsed.query_pairs_mut().clear().extend_pairs(kept);
                }
            }
        }
        Ok(config)
    }

    /// Reads the URL from the `REDIS_URL` environment variable, or uses [`Config::DEFAULT_URL`]
    /// (`mem://`) when it is unset or empty.
    ///
    /// ```
    /// // With REDIS_URL unset this is the in-process backend.
    /// let config = redis_patterns::Config::from_env()?;
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn from_env() -> Result<Self> {
        match std::env::var(Self::URL_ENV) {
            Ok(url) if !url.trim().is_empty() => Self::from_url(url.trim()).map_err(|e| match e {
                Error::Config(msg) => Error::Config(format!("{}: {msg}", Self::URL_ENV)),
                other => other,
            }),
            Ok(_) | Err(std::env::VarError::NotPresent) => Self::from_url(Self::DEFAULT_URL),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::Config(format!(
                "{} is not valid UTF-8",
                Self::URL_ENV
            ))),
        }
    }

    /// The ACL user name (overrides one given in the URL).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (overrides one given in the URL). Never printed.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(Secret(password.into()));
        self
    }

    /// A prefix for every key this client writes, e.g. `"shop"` gives `shop:{product:#42}`.
    /// Letters, digits and `_ - . / :` only; checked by [`Client::new`](crate::Client::new).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// How long to wait for a connection to be established (default 1 s; at most an hour,
    /// longer values are clamped; zero is rejected by [`Client::new`](crate::Client::new)).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.min(LONGEST_TIMEOUT);
        self
    }

    /// How long to wait for the answer to one command or script (default 500 ms; at most an
    /// hour, longer values are clamped; zero is rejected by [`Client::new`](crate::Client::new)).
    /// A cached call whose read takes longer runs the function instead.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout.min(LONGEST_TIMEOUT);
        self
    }

    /// After repeated connection failures the client stops sending calls to the server (they
    /// fail at once) and probes it in the background, `min` apart at first and doubling up to
    /// `max` (with jitter), until it answers. So a dead server costs callers nothing but a
    /// fast error, and a server that is back is used again within about `max`. Defaults:
    /// 50 ms and 250 ms; both at most an hour.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min_backoff = min.min(LONGEST_TIMEOUT);
        self.reconnect_max_backoff = max.max(min).min(LONGEST_TIMEOUT);
        self
    }

    /// Trust this CA (PEM) for `rediss://` instead of the webpki root certificates, e.g. a
    /// private CA of your own (feature `tls`).
    ///
    /// ```no_run
    /// let ca = std::fs::read("/etc/redis/ca.crt")?;
    /// let config = redis_patterns::Config::from_url("rediss://cache.internal:6380")?
    ///     .tls_root_certificate(ca);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.root_certificate = Some(pem.into());
        self
    }

    /// Present this certificate and private key (both PEM) to the server, for servers that
    /// require client certificates (`tls-auth-clients yes`; feature `tls`). The key is never
    /// printed.
    #[cfg(feature = "tls")]
    pub fn tls_client_certificate(
        mut self,
        certificate_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client = Some((certificate_pem.into(), Secret(key_pem.into())));
        self
    }

    /// `true` for `mem://` configurations.
    pub fn is_memory(&self) -> bool {
        matches!(self.target, Target::Memory(_))
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(ns) = &self.namespace
            && (ns.is_empty()
                || !ns
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':')))
        {
            return Err(Error::Config(format!(
                "namespace {ns:?} must be non-empty and use only letters, digits and `_ - . / :`"
            )));
        }
        if self.command_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::Config(
                "connect_timeout and command_timeout must be greater than zero".into(),
            ));
        }
        Ok(())
    }
}

fn parse_target(url: &str) -> Result<Target> {
    let bad = |why: &str| {
        Error::Config(format!(
            "{why}; expected `redis://host[:port][/db]`, `rediss://…`, `unix:///path` or `mem://[name]`"
        ))
    };
    if let Some(rest) = url.strip_prefix("mem://") {
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("a `mem://` URL takes only a store name"));
        }
        return Ok(Target::Memory((!rest.is_empty()).then(|| rest.to_owned())));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(&format!("cannot parse the URL ({e})")))?;
    match parsed.scheme() {
        "redis" | "unix" | "redis+unix" => Ok(Target::Redis(parsed)),
        "rediss" if cfg!(feature = "tls") => Ok(Target::Redis(parsed)),
        "rediss" => Err(Error::Config(
            "`rediss://` needs TLS support: enable the `tls` feature of redis-patterns".into(),
        )),
        other => Err(bad(&format!("unsupported scheme `{other}`"))),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Memory(None) => f.write_str("mem://")?,
            Target::Memory(Some(name)) => write!(f, "mem://{name}")?,
            Target::Redis(url) => f.write_str(&self.shown_url(url))?,
        }
        if let Some(ns) = &self.namespace {
            write!(f, " (namespace `{ns}`)")?;
        }
        Ok(())
    }
}

impl Config {
    /// The URL as given, with the user name and `***` in place of the password: as user info
    /// for host URLs, as query parameters for the socket form.
    fn shown_url(&self, url: &url::Url) -> String {
        let mut shown = url.clone();
        let as_user_info = shown.has_host() && !shown.host_str().unwrap_or_default().is_empty();
        if as_user_info {
            if let Some(user) = &self.username {
                let _ = shown.set_username(user);
            }
            if self.password.is_some() {
                let _ = shown.set_password(Some("***"));
            }
        } else {
            let mut query = shown.query_pairs_mut();
            if let Some(user) = &self.username {
                query.append_pair("user", user);
            }
            if self.password.is_some() {
                query.append_pair("pass", "***");
            }
        }
        shown.as_str().replace("pass=%2A%2A%2A", "pass=***")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Redis(url) => self.shown_url(url),
            Target::Memory(None) => "mem://".to_owned(),
            Target::Memory(Some(name)) => format!("mem://{name}"),
        };
        f.debug_struct("Config")
            .field("url", &target)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("namespace", &self.namespace)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect_min_backoff", &self.reconnect_min_backoff)
            .field("reconnect_max_backoff", &self.reconnect_max_backoff)
            .field("tls", &self.tls)
            .finish()
    }
}

impl std::str::FromStr for Config {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        Self::from_url(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_never_printed() {
        let c = Config::from_url("redis://u:p%40ss@h:1/0").unwrap();
        assert_eq!(c.password.as_ref().unwrap().0, "p@ss");
        assert_eq!(c.username.as_deref(), Some("u"));
        let shown = format!("{c} {c:?}");
        assert!(
            !shown.contains("p@ss") && !shown.contains("p%40ss"),
            "{shown}"
        );
        assert!(shown.contains("redis://u:***@h:1/0"), "{shown}");
    }

    #[test]
    fn secrets_of_every_url_form_are_redacted() {
        for (url, secret, shown) in [
            (
                "unix:///run/redis.sock?db=1&pass=hunter2",
                "hunter2",
                "unix:///run/redis.sock?db=1&pass=***",
            ),
            (
                "redis+unix:///run/redis.sock?user=app&pass=s3cr%40t&db=2",
                "s3cr",
                "redis+unix:///run/redis.sock?db=2&user=app&pass=***",
            ),
            (
                "unix:///run/redis.sock?password=pw9",
                "pw9",
                "unix:///run/redis.sock?pass=***",
            ),
            (
                "redis://:pw7@h:1/?protocol=resp3",
                "pw7",
                "redis://:***@h:1/?protocol=resp3",
            ),
            ("redis://h:1/?password=pw8", "pw8", "redis://:***@h:1/"),
        ] {
            let c = Config::from_url(url).unwrap();
            assert!(c.password.is_some(), "{url}");
            let printed = format!("{c} {c:?} {c:#?}");
            assert!(!printed.contains(secret), "{printed}");
            assert_eq!(c.to_string(), shown);
        }
        let c = Config::from_url("unix:///run/redis.sock?pass=hunter2").unwrap();
        assert_eq!(c.password.unwrap().0, "hunter2");
    }

    #[test]
    fn builder_password_overrides_url() {
        let c = Config::from_url("redis://h").unwrap().password("x");
        assert_eq!(c.password.unwrap().0, "x");
    }

    #[test]
    fn memory_urls() {
        assert!(matches!(
            Config::from_url("mem://").unwrap().target,
            Target::Memory(None)
        ));
        assert!(matches!(
            Config::from_url("mem://shared").unwrap().target,
            Target::Memory(Some(ref n)) if n == "shared"
        ));
        assert!(Config::from_url("mem://a/b").is_err());
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in ["", "http://x", "redis//x", "nonsense"] {
            assert!(
                matches!(Config::from_url(url), Err(Error::Config(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn namespace_is_validated() {
        let ok = Config::from_url("mem://").unwrap().namespace("shop-1:v2");
        assert!(ok.validate().is_ok());
        for bad in ["", "a b", "a{b}", "ä"] {
            let c = Config::from_url("mem://").unwrap().namespace(bad);
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }
}
