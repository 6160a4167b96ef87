//! The client: one backend connection shared by every call, plus the process-wide default
//! instance the attributes use.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::backend::Backend;
use crate::cache::CacheStats;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::flight::Flights;
use crate::lock::LockStats;

/// A handle on one backend: a long-lived multiplexed Redis connection (reconnected with
/// backoff when it drops) or an in-process store. Cloning is cheap and shares everything.
///
/// Creating a client never touches the network; the connection is made on first use, and
/// [`connect`](Client::connect) makes it eagerly and reports whether the server answers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use redis_patterns::{Client, Config};
///
/// let client = Client::new(Config::from_url("mem://")?.namespace("shop"))?;
/// client.connect().await?;
/// assert_eq!(client.namespace(), Some("shop"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Option<Config>,
    pub(crate) namespace: Option<String>,
    /// The codec `#[cached]` writes in by default.
    pub(crate) codec: crate::cache::Codec,
    /// Payloads larger than this are compressed.
    pub(crate) compress_above: Option<usize>,
    pub(crate) backend: Arc<Backend>,
    pub(crate) flights: Flights,
    /// Keys of `stale_while_revalidate` entries being refreshed in the background by this
    /// client: one refresh per key at a time in the process (the stampede lock makes it one
    /// across processes).
    pub(crate) refreshing: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The near tier of `#[cached(near = "…")]`, created on first use.
    near: crate::cache::near::NearSlot,
    near_size: crate::cache::NearCache,
    /// Keys waited on (lock releases), woken by the server's invalidations; created on first
    /// use, with a tracking of its own.
    watches: OnceLock<(
        Arc<crate::backend::watch::Watches>,
        crate::backend::tracking::Tracker,
    )>,
    pub(crate) cache_counters: crate::cache::Counters,
    pub(crate) lock_counters: crate::lock::Counters,
}

/// Anything a [`Client`] can be built from: a [`Config`] or a URL.
pub trait IntoConfig {
    /// Converts into a configuration.
    fn into_config(self) -> Result<Config>;
}

impl IntoConfig for Config {
    fn into_config(self) -> Result<Config> {
        Ok(self)
    }
}

impl IntoConfig for &str {
    fn into_config(self) -> Result<Config> {
        Config::from_url(self)
    }
}

impl IntoConfig for String {
    fn into_config(self) -> Result<Config> {
        Config::from_url(&self)
    }
}

impl Client {
    /// A client for `config` (a [`Config`] or a URL such as `"redis://127.0.0.1:6379"`).
    /// Fails only on an invalid configuration, never because the server is down.
    ///
    /// ```
    /// let client = redis_patterns::Client::new("redis://127.0.0.1:1")?; // nothing listens: fine
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn new(config: impl IntoConfig) -> Result<Self> {
        let config = config.into_config()?;
        config.validate()?;
        let backend = Backend::new(&config)?;
        Ok(Self::from_parts(Some(config), backend))
    }

    /// A client configured from the `REDIS_URL` environment variable, or `mem://` when it is
    /// unset (see [`Config::from_env`]).
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env()?)
    }

    fn from_parts(config: Option<Config>, backend: Backend) -> Self {
        Client {
            inner: Arc::new(Inner {
                namespace: config.as_ref().and_then(|c| c.namespace.clone()),
                codec: config.as_ref().map(|c| c.codec).unwrap_or_default(),
                compress_above: config.as_ref().and_then(|c| c.compress_above),
                backend: Arc::new(backend),
                flights: Flights::new(),
                refreshing: Default::default(),
                near: Default::default(),
                watches: OnceLock::new(),
                near_size: config.as_ref().map(|c| c.near_cache).unwrap_or_default(),
                config,
                cache_counters: Default::default(),
                lock_counters: Default::default(),
            }),
        }
    }

    /// Invalidates every entry of this client tagged `tag`; see
    /// [`cache::invalidate_tag`](crate::cache::invalidate_tag).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), redis_patterns::Error> {
    /// let client = redis_patterns::Client::new("mem://")?;
    /// assert!(!client.invalidate_tag("brand:acme").await?); // nothing carries it yet
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_tag(&self, tag: &str) -> Result<bool> {
        crate::cache::tags::invalidate(self, tag).await
    }

    /// Connects now and checks that the server answers `PING` within the timeouts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let client = redis_patterns::Client::new("redis://127.0.0.1:1").unwrap();
    /// assert!(client.connect().await.is_err());
    /// # }
    /// ```
    pub async fn connect(&self) -> Result<()> {
        self.backend().ping().await
    }

    /// The configuration, or `None` for a default client whose `REDIS_URL` was unusable.
    pub fn config(&self) -> Option<&Config> {
        self.inner.config.as_ref()
    }

    /// The key prefix of this client, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.inner.namespace.as_deref()
    }

    /// Counters of every cached call made through this client.
    ///
    /// ```
    /// let client = redis_patterns::Client::new("mem://")?;
    /// assert_eq!(client.cache_stats().hits, 0);
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache_counters.snapshot()
    }

    /// Counters of every lock taken through this client, with [`Lock`](crate::lock::Lock) or
    /// `#[with_lock]` ([`Redlock`](crate::lock::Redlock) is not counted).
    ///
    /// ```
    /// let client = redis_patterns::Client::new("mem://")?;
    /// assert_eq!(client.lock_stats().acquired, 0);
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn lock_stats(&self) -> LockStats {
        self.inner.lock_counters.snapshot()
    }

    /// Makes this client the process-wide default used by the attributes (those without a
    /// `client = …` option). Call it once at start-up, before the first cached call.
    ///
    /// Fails if a default is already in place — set explicitly, or created from `REDIS_URL`
    /// by an earlier cached call.
    ///
    /// ```
    /// let client = redis_patterns::Client::new("mem://")?;
    /// client.set_as_default()?;
    /// assert!(redis_patterns::Client::new("mem://")?.set_as_default().is_err());
    /// # Ok::<(), redis_patterns::Error>(())
    /// ```
    pub fn set_as_default(&self) -> Result<()> {
        let mut installed = false;
        DEFAULT.get_or_init(|| {
            installed = true;
            self.clone()
        });
        if installed {
            Ok(())
        } else {
            Err(Error::Config(
                "a default client is already set; call `set_as_default` once, at start-up, \
                 before the first cached call (or pass `client = …` to the attribute)"
                    .into(),
            ))
        }
    }

    /// The process-wide default client. When none was set, the first call creates one from
    /// `REDIS_URL` (or `mem://` when unset). A malformed `REDIS_URL` does not panic: the
    /// error is logged, cached functions run uncached, and explicit operations return it.
    pub fn default_client() -> &'static Client {
        DEFAULT.get_or_init(|| match Client::from_env() {
            Ok(client) => {
                if let Some(config) = client.config() {
                    tracing::info!(target: "redis_patterns", %config, "default client created from the environment");
                }
                client
            }
            Err(e) => {
                tracing::error!(
                    target: "redis_patterns",
                    error = %e,
                    "cannot create the default client; cached functions will run uncached"
                );
                Client::from_parts(None, Backend::broken(e.to_string()))
            }
        })
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The backend this client's operations run on.
    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// `key` was written or deleted through this client: drop it from the near tier now (if
    /// there is one), so that this client reads its own writes even before the server's
    /// invalidation arrives on the tracking connection.
    pub(crate) fn near_changed(&self, key: &str) {
        if let Some(near) = self.inner.near.get() {
            near.tier().changed(key);
        }
    }

    /// `key` (a lock's waiters' mark) was rewritten by this client's release: wake a waiter of
    /// this process now, rather than when the server's invalidation comes back.
    pub(crate) fn watched_changed(&self, key: &str) {
        if let Some((watches, _)) = self.inner.watches.get() {
            watches.changed(key);
        }
    }

    /// How many changes this client's waiters' tracking has heard, of any key; `None` if it
    /// tracks nothing yet (see `backend/watch.rs`).
    pub(crate) fn changes_heard(&self) -> Option<u64> {
        let (watches, _) = self.inner.watches.get()?;
        Some(watches.heard())
    }

    /// Registers a waiter for changes of `key` (see `backend/watch.rs`).
    pub(crate) fn watch(&self, key: &str) -> crate::backend::watch::Watch {
        let inner = &self.inner;
        let (watches, tracker) = inner.watches.get_or_init(|| {
            let watches = Arc::new(crate::backend::watch::Watches::default());
            let sink: Arc<dyn crate::backend::tracking::Invalidations> = watches.clone();
            let tracker = inner.backend.track(Arc::downgrade(&sink));
            (watches, tracker)
        });
        watches.watch(key, tracker)
    }

    /// The near tier, created (and its tracking started) on first use.
    pub(crate) fn near(&self) -> &crate::cache::near::Near {
        let inner = &self.inner;
        inner.near.get_or_init(|| {
            crate::cache::near::Near::new(inner.near_size, |sink| inner.backend.track(sink))
        })
    }
}

static DEFAULT: OnceLock<Client> = OnceLock::new();

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AsRef<Client> for Client {
    fn as_ref(&self) -> &Client {
        self
    }
}

/// What a `client = …` attribute option may give: a [`Client`], a reference to one, or one
/// behind `Arc`, `Box`, `Rc` or a `LazyLock` static.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`client = …` must give a `redis_patterns::Client`, not `{Self}`",
    label = "expected a `Client`, `&Client`, `Arc<Client>` or `LazyLock<Client>`",
    note = "build one with `redis_patterns::Client::new(url)`"
)]
pub trait AsClient {
    fn as_client(&self) -> &Client;
}

impl AsClient for Client {
    fn as_client(&self) -> &Client {
        self
    }
}

macro_rules! as_client_through {
    ($($t:ty),*) => {$(
        #[diagnostic::do_not_recommend]
        impl AsClient for $t {
            fn as_client(&self) -> &Client {
                self
            }
        }
    )*};
}
as_client_through!(
    std::sync::Arc<Client>,
    Box<Client>,
    std::rc::Rc<Client>,
    std::sync::LazyLock<Client>
);

#[diagnostic::do_not_recommend]
impl<T: AsClient + ?Sized> AsClient for &T {
    fn as_client(&self) -> &Client {
        (**self).as_client()
    }
}

/// Connects with `config`, checks the server answers, and makes the client the process-wide
/// default for the attributes: the one line a service runs at start-up.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// redis_patterns::init("mem://").await?;
/// # Ok(()) }
/// ```
pub async fn init(config: impl IntoConfig) -> Result<Client> {
    let client = Client::new(config)?;
    client.connect().await?;
    client.set_as_default()?;
    Ok(client)
}

/// [`init`] with the URL from `REDIS_URL` (or `mem://` when unset).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// redis_patterns::init_from_env().await?;
/// # Ok(()) }
/// ```
pub async fn init_from_env() -> Result<Client> {
    init(Config::from_env()?).await
}
