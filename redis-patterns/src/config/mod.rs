//! Client configuration: where to connect, how long to wait, how to name keys.

use crate::cache::{Codec, NearCache};
use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

mod target;

pub(crate) use self::target::Target;
use self::target::parse_target;

/// How to reach the backend and how patiently.
///
/// Built from a URL — `redis://[user[:password]@]host[:port][/db]`, `rediss://…` (feature
/// `tls`), `unix:///path/to/redis.sock`, `redis+cluster://host:port,host:port,…` (feature
/// `cluster`), `redis+sentinel://host:port,host:port/name` (feature `sentinel`), or
/// `mem://[name]` for the in-process backend — and refined with builder
/// methods. Passwords never appear in `Debug` or `Display`.
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
    /// Credentials for the Sentinel nodes themselves, when they differ from the data nodes'.
    pub(crate) sentinel_username: Option<String>,
    pub(crate) sentinel_password: Option<Secret>,
    /// How `#[cached]` values are written unless the function says otherwise.
    pub(crate) codec: Codec,
    /// Payloads larger than this many bytes are LZ4-compressed.
    pub(crate) compress_above: Option<usize>,
    /// The bounds of the near tier of `#[cached(near = "…")]`.
    pub(crate) near_cache: NearCache,
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
            sentinel_username: None,
            sentinel_password: None,
            codec: Codec::Json,
            compress_above: None,
            near_cache: NearCache::default(),
        };
        config.take_credentials();
        Ok(config)
    }

    /// A Redis Cluster reached through its seed nodes (feature `cluster`): `"host:port"`
    /// each, or `"rediss://host:port"` for TLS (feature `tls`). The rest of the topology is
    /// discovered and followed. Credentials and certificates set on the config apply to every
    /// node. The same as the URL `redis+cluster://host:port,host:port`.
    ///
    /// ```
    /// let config = redis_patterns::Config::cluster(["10.0.0.1:6379", "10.0.0.2:6379"])?
    ///     .username("app")
    ///     .password("s3cret");
    /// assert_eq!(config.to_string(), "redis+cluster://app:***@10.0.0.1:6379,10.0.0.2:6379");
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    #[cfg(feature = "cluster")]
    pub fn cluster<I>(nodes: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut tls = None;
        let mut hosts = Vec::new();
        for node in nodes {
            let node = node.as_ref();
            let (secure, host) = match node.split_once("://") {
                Some(("rediss", host)) => (true, host),
                Some(("redis", host)) => (false, host),
                Some((other, _)) => {
                    return Err(Error::Config(format!(
                        "cluster node `{node}`: unsupported scheme `{other}`; give `host:port`, \
                         `redis://host:port` or `rediss://host:port`"
                    )));
                }
                None => (false, node),
            };
            if *tls.get_or_insert(secure) != secure {
                return Err(Error::Config(
                    "cluster nodes mix `redis://` and `rediss://`: TLS is all or nothing".into(),
                ));
            }
            hosts.push(host.trim_end_matches('/').to_owned());
        }
        if hosts.is_empty() {
            return Err(Error::Config(
                "a cluster needs at least one seed node".into(),
            ));
        }
        let scheme = if tls == Some(true) { "rediss" } else { "redis" };
        Self::from_url(&format!("{scheme}+cluster://{}", hosts.join(",")))
    }

    /// A primary with replicas behind Redis Sentinel (feature `sentinel`): the sentinels'
    /// addresses (`"host:port"`, 26379 by default) and the name they monitor the primary under.
    /// The current primary is asked of the sentinels, and asked again after a failover. The same
    /// as the URL `redis+sentinel://host:port,host:port/name`. Credentials set on the config
    /// are the data nodes'; the sentinels' own are [`sentinel_credentials`](Self::sentinel_credentials).
    ///
    /// ```
    /// let config = redis_patterns::Config::sentinel(["10.0.0.1:26379", "10.0.0.2:26379"], "mymaster")?;
    /// assert_eq!(config.to_string(), "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster");
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    #[cfg(feature = "sentinel")]
    pub fn sentinel<I>(sentinels: I, service: &str) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let hosts: Vec<String> = sentinels
            .into_iter()
            .map(|s| {
                s.as_ref()
                    .trim_start_matches("redis://")
                    .trim_end_matches('/')
                    .to_owned()
            })
            .collect();
        if hosts.is_empty() {
            return Err(Error::Config(
                "Sentinel needs at least one sentinel address".into(),
            ));
        }
        Self::from_url(&format!("redis+sentinel://{}/{service}", hosts.join(",")))
    }

    /// The user name and password of the Sentinel nodes, when they require their own (their
    /// `requirepass` / ACL user). Never printed.
    #[cfg(feature = "sentinel")]
    pub fn sentinel_credentials(
        mut self,
        username: Option<impl Into<String>>,
        password: impl Into<String>,
    ) -> Self {
        self.sentinel_username = username.map(Into::into);
        self.sentinel_password = Some(Secret(password.into()));
        self
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

    /// How `#[cached]` and `#[cache_put]` write values unless the function sets `codec`
    /// (default [`Codec::Json`]). Reading follows each stored entry's own codec, so changing
    /// this needs no migration.
    ///
    /// ```
    /// use redis_patterns::cache::Codec;
    /// let config = redis_patterns::Config::from_url("mem://")?.codec(Codec::MessagePack);
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Compresses cached values whose encoded form is larger than `bytes` with LZ4 (when that
    /// makes them smaller); off by default. Entries are read whether or not they are
    /// compressed, so turning this on or off needs no migration. Worth it for large,
    /// repetitive values (lists, text); a few hundred bytes is a sensible threshold.
    ///
    /// ```
    /// let config = redis_patterns::Config::from_url("mem://")?.compress_above(1024);
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.compress_above = Some(bytes);
        self
    }

    /// Bounds the near tier: the decoded values of `#[cached(near = "…")]` functions kept in
    /// this process (default: 10,000 values). The tier is only created, and the server's
    /// tracking connection only opened, when such a function first runs through the client.
    ///
    /// ```
    /// use redis_patterns::cache::NearCache;
    /// let config = redis_patterns::Config::from_url("mem://")?
    ///     .near_cache(NearCache::max_entries(100_000));
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn near_cache(mut self, size: NearCache) -> Self {
        self.near_cache = size;
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

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown_target())?;
        if let Some(ns) = &self.namespace {
            write!(f, " (namespace `{ns}`)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.shown_target())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("namespace", &self.namespace)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect_min_backoff", &self.reconnect_min_backoff)
            .field("reconnect_max_backoff", &self.reconnect_max_backoff)
            .field("tls", &self.tls)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &self.sentinel_password)
            .field("codec", &self.codec)
            .field("compress_above", &self.compress_above)
            .field("near_cache", &self.near_cache)
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
mod tests;
