//! The Redis backend: one multiplexed connection shared by all calls and replaced when it
//! breaks (see `connection.rs`), redis-rs's connection and response timeouts, TCP keepalive,
//! and a circuit breaker (`breaker.rs`) that turns a dead server into fast errors.
//!
//! Two background tasks keep the connection honest:
//! * a **health check** after a command timed out: a `PING` on the same connection, and if
//!   that times out too the connection is dropped and the next call dials a new one. A path
//!   that died silently (no reset: a NAT or firewall forgot it) is thus replaced within two
//!   command timeouts, instead of when the kernel gives up (about 15 minutes);
//! * a **probe** while the breaker is open: it dials and `PING`s on a short interval
//!   (`reconnect_backoff`, 50 to 250 ms by default) and closes the breaker on the first
//!   answer, so every client is served again within moments of the server's return while
//!   callers meanwhile fail fast without waiting.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisResult};
use tracing::Instrument;

use super::breaker::{Breaker, Tripped};
use super::connection::{Connector, SharedConnection, Single};
use super::op::millis;
use crate::config::{Config, Secret, Target};
use crate::error::{Error, Result};
use crate::util::spawn_if_runtime;

mod blocking;
mod ordered;
mod subscribe;

/// A Redis topology behind a [`Connector`]: one server ([`Single`]), or a cluster.
pub(crate) struct RedisBackend<C: Connector = Single> {
    inner: Arc<Inner<C>>,
}

/// What the background tasks share with the callers.
struct Inner<C: Connector> {
    conn: Arc<SharedConnection<C>>,
    /// The configured server, for the round trips' spans.
    peer: (String, u16),
    command_timeout: Duration,
    /// The near tier's tracking connections use the same timeouts and backoff.
    tracking: super::tracking::Timeouts,
    breaker: Breaker,
    /// A health check of the current connection is running.
    checking: AtomicBool,
    /// The breaker's background probe is running.
    probing: AtomicBool,
    /// The client's pub/sub subscriptions, once it has any (see `subscribe.rs`).
    pubsub: std::sync::OnceLock<Arc<super::pubsub::Hub>>,
}

impl RedisBackend<Single> {
    /// One server: `redis://`, `rediss://` or `unix://`.
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let Target::Redis(url) = &config.target else {
            return Err(Error::Config("not a redis:// configuration".into()));
        };
        let client = open_client(
            url.clone(),
            config.username.as_deref(),
            config.password.as_ref(),
            config,
        )?;
        let connection_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout));
        Ok(Self::with_connector(
            Single {
                client,
                config: connection_config,
            },
            config,
        ))
    }
}

impl<C: Connector> RedisBackend<C> {
    /// A backend dialling through `connector`, with the config's timeouts and backoff.
    pub(crate) fn with_connector(connector: C, config: &Config) -> Self {
        RedisBackend {
            inner: Arc::new(Inner {
                conn: Arc::new(SharedConnection::new(connector)),
                peer: peer(&config.target),
                command_timeout: config.command_timeout,
                tracking: super::tracking::Timeouts {
                    connect: config.connect_timeout,
                    command: config.command_timeout,
                    min_backoff: config.reconnect_min_backoff,
                    max_backoff: config.reconnect_max_backoff,
                },
                breaker: Breaker::new(config.reconnect_min_backoff, config.reconnect_max_backoff),
                checking: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                pubsub: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Runs one command behind the breaker. redis-rs bounds it: dialling (when there is no
    /// connection) by `connect_timeout`, the answer by `command_timeout`; a second timer here
    /// would only add cost to every call.
    async fn run<T, F, Fut>(&self, operation: Operation, f: F) -> Result<T>
    where
        F: FnOnce(C::Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let span = self.span(operation);
        self.run_untraced(f).instrument(span).await
    }

    /// One round trip's span, in OpenTelemetry's database conventions (level `TRACE`, target
    /// `redis_patterns::redis`): the command, or `EVALSHA` and the script's name, and the
    /// configured server (a cluster's or Sentinel group's first seed).
    fn span(&self, operation: Operation) -> tracing::Span {
        let (command, script) = match operation {
            Operation::Command(command) => (command, None),
            Operation::Script(script) => ("EVALSHA", Some(script)),
        };
        let (address, port) = &self.inner.peer;
        tracing::trace_span!(
            target: "redis_patterns::redis",
            "redis",
            db.system.name = "redis",
            db.operation.name = command,
            db.stored_procedure.name = script,
            server.address = %address,
            server.port = port,
        )
    }

    async fn run_untraced<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(C::Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let inner = &self.inner;
        inner.breaker.check()?;
        let (generation, conn) = match inner.conn.get().await {
            Ok(current) => current,
            Err(e) => {
                inner.failed();
                return Err(Error::from(e));
            }
        };
        // The connection moves into the command (no second clone on every call); a timeout
        // checks the generation's connection if it is still current.
        match f(conn).await {
            Ok(value) => {
                inner.breaker.succeeded();
                Ok(value)
            }
            Err(e) if e.is_timeout() => {
                // A slow answer may be a slow server or a dead path: a health check on the
                // same connection tells them apart.
                inner.failed();
                if let Some(conn) = inner.conn.current(generation) {
                    inner.check_connection(generation, conn);
                }
                Err(Error::Timeout(inner.command_timeout))
            }
            Err(e) => {
                // `READONLY`: the server was a primary and is now a replica (a failover): the
                // next call dials again, and behind Sentinel finds the new primary.
                if e.is_io_error() || e.is_connection_dropped() || e.code() == Some("READONLY") {
                    inner.conn.discard(generation);
                }
                let e = Error::from(e);
                if e.is_connection_failure() {
                    inner.failed();
                }
                Err(e)
            }
        }
    }

    /// Tracks changes for the near tier on this topology's servers (see `tracking.rs`).
    pub(crate) fn track(
        &self,
        sink: Weak<dyn super::tracking::Invalidations>,
    ) -> super::tracking::Tracker {
        let source: Weak<SharedConnection<C>> = Arc::downgrade(&self.inner.conn);
        super::tracking::track(
            source as Weak<dyn super::tracking::TrackingSource>,
            sink,
            self.inner.tracking,
        )
    }

    /// Runs an atomic operation's script (`EVALSHA`, loading it on `NOSCRIPT`) behind the
    /// breaker, and reads its answer.
    pub(crate) async fn run_op<O: super::AtomicOp>(&self, op: &O) -> Result<O::Output> {
        let mut invocation = op.script().prepare_invoke();
        op.arguments(&mut invocation);
        let reply: O::Reply = self.invoke(op.name(), &invocation).await?;
        op.answer(reply)
    }

    /// Runs an atomic operation's commands, pipelined (one round trip).
    pub(crate) async fn exec<O: super::CommandOp>(&self, op: &O) -> Result<O::Output> {
        let pipe = op.commands();
        let pipe = &pipe;
        let reply: O::Reply = self
            .run(Operation::Command(op.name()), |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        op.answer(reply)
    }

    /// Runs a Lua script (`EVALSHA`, loading it on `NOSCRIPT`) behind the breaker.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        self.run(Operation::Script(script), |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        self.run(Operation::Command("PING"), |mut c| async move {
            redis::cmd("PING").query_async::<()>(&mut c).await
        })
        .await
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let value: Option<Vec<u8>> = self
            .run(Operation::Command("GET"), |mut c| async move {
                redis::cmd("GET").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(value.map(Bytes::from))
    }

    /// `GET` of each key, pipelined: one write and one read on the connection. Every key must
    /// be served by this connection's server (not for a cluster, whose keys live on many).
    pub(crate) async fn get_pipelined(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self
            .run(Operation::Command("GET"), |mut c| async move {
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.cmd("GET").arg(*key);
                }
                pipe.query_async(&mut c).await
            })
            .await?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    pub(crate) async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.run(Operation::Command("SET"), |mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let set: Option<()> = self
            .run(Operation::Command("SET"), |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

    pub(crate) async fn del(&self, key: &str) -> Result<bool> {
        let n: u64 = self
            .run(Operation::Command("DEL"), |mut c| async move {
                redis::cmd("DEL").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(n > 0)
    }

    #[cfg(feature = "test-util")]
    pub(crate) async fn pttl(&self, key: &str) -> Result<Option<Duration>> {
        let ms: i64 = self
            .run(Operation::Command("PTTL"), |mut c| async move {
                redis::cmd("PTTL").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }
}

/// What a round trip sends, for its span.
#[derive(Debug, Clone, Copy)]
enum Operation {
    Command(&'static str),
    /// `EVALSHA` of the named script.
    Script(&'static str),
}

/// The configured server's address and port: a `unix://` socket's path and 0; the first seed of
/// a cluster, the first sentinel of a Sentinel group.
fn peer(target: &Target) -> (String, u16) {
    let of = |url: &::url::Url| match url.scheme() {
        "unix" => (url.path().to_owned(), 0),
        _ => (
            url.host_str().unwrap_or_default().to_owned(),
            url.port().unwrap_or(6379),
        ),
    };
    match target {
        Target::Redis(url) => of(url),
        Target::Cluster(seeds) => seeds.first().map(of).unwrap_or_default(),
        Target::Sentinel { sentinels, .. } => sentinels.first().map(of).unwrap_or_default(),
        Target::Memory(_) => ("mem".to_owned(), 0),
    }
}

/// TCP keepalive: probes notice a dead peer on an idle connection (the health check covers
/// busy ones sooner).
pub(crate) fn keepalive() -> redis::io::tcp::socket2::TcpKeepalive {
    redis::io::tcp::socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(15))
        .with_interval(Duration::from_secs(5))
        .with_retries(3)
}

/// The configured certificates, if any beyond the defaults (feature `tls`). Installs ring's
/// crypto provider first: redis-rs leaves rustls without one (unless the application
/// installed its own).
#[cfg(feature = "tls")]
pub(crate) fn tls_certificates(config: &Config) -> Option<redis::TlsCertificates> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = &config.tls;
    if tls.root_certificate.is_none() && tls.client.is_none() {
        return None;
    }
    Some(redis::TlsCertificates {
        client_tls: tls
            .client
            .as_ref()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.0.clone(),
            }),
        root_cert: tls.root_certificate.clone(),
    })
}

/// A redis-rs client for `target` with these credentials, TCP keepalive and the configured
/// certificates, if any.
pub(crate) fn open_client(
    target: impl IntoConnectionInfo,
    username: Option<&str>,
    password: Option<&Secret>,
    config: &Config,
) -> Result<redis::Client> {
    let info = target.into_connection_info()?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = username {
        settings = settings.set_username(user);
    }
    if let Some(password) = password {
        settings = settings.set_password(&password.0);
    }
    let tcp = info.tcp_settings().clone().set_keepalive(keepalive());
    let info = info.set_redis_settings(settings).set_tcp_settings(tcp);
    #[cfg(feature = "tls")]
    if let Some(certificates) = tls_certificates(config) {
        return Ok(redis::Client::build_with_tls(info, certificates)?);
    }
    #[cfg(not(feature = "tls"))]
    let _ = config;
    Ok(redis::Client::open(info)?)
}

impl<C: Connector> Inner<C> {
    fn failed(self: &Arc<Self>) {
        if self.breaker.failed() == Tripped::Opened {
            self.start_probing();
        }
    }

    /// After a timeout: `PING` on the connection that timed out, and drop it if that times
    /// out (or fails) too. At most one check runs at a time.
    fn check_connection(self: &Arc<Self>, generation: u64, mut conn: C::Conn) {
        if self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::clone(self);
        let check = async move {
            let answered = redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .is_ok();
            if !answered {
                tracing::warn!(target: "redis_patterns", "the Redis connection stopped answering; dialling a new one");
                inner.conn.discard(generation);
            }
            inner.checking.store(false, Ordering::Release);
        };
        if !spawn_if_runtime(check) {
            // Nothing can run the check: assume the worst.
            self.conn.discard(generation);
            self.checking.store(false, Ordering::Release);
        }
    }

    /// While the breaker is open: dial and `PING` every backoff (jittered, doubling from the
    /// configured minimum to maximum) until the server answers, then close the breaker. Ends
    /// when the backend is dropped.
    fn start_probing(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Inner<C>> = Arc::downgrade(self);
        let probing = async move {
            for attempt in 1u32.. {
                let pause = match weak.upgrade() {
                    Some(inner) => inner
                        .breaker
                        .backoff(super::breaker::FAILURE_THRESHOLD.saturating_add(attempt)),
                    None => return,
                };
                tokio::time::sleep(pause).await;
                let Some(inner) = weak.upgrade() else { return };
                if !inner.breaker.is_open() || inner.probe().await {
                    inner.breaker.succeeded();
                    inner.probing.store(false, Ordering::Release);
                    return;
                }
            }
        };
        if !spawn_if_runtime(probing) {
            // Callers probe instead, one per backoff (see `Breaker::check`).
            self.probing.store(false, Ordering::Release);
        }
    }

    /// One probe: the current connection (dialled if there is none) answers `PING`.
    async fn probe(&self) -> bool {
        let (generation, mut conn) = match self.conn.get().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(target: "redis_patterns", "probe: dialling failed: {e}");
                return false;
            }
        };
        match redis::cmd("PING").query_async::<()>(&mut conn).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(target: "redis_patterns", "probe: PING failed: {e}");
                self.conn.discard(generation);
                false
            }
        }
    }
}
