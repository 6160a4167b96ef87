//! A primary with replicas behind Redis Sentinel (feature `sentinel`). Dialling asks the
//! sentinels for the current primary (and checks its role) before connecting to it, so every
//! redial follows a failover. A redial happens when the connection breaks, when a command
//! times out and the health check finds the connection dead, and when the server answers
//! `READONLY` (the old primary was demoted to a replica): see `RedisBackend::run`. And from
//! the first dial on, a background task listens to the sentinels' `+switch-master`
//! notifications (on one sentinel at a time) and drops the connection when they name this
//! service, so that even a client that only reads moves to the new primary at once. Breaker,
//! timeouts and failure policies are those of `redis.rs`.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError, RedisResult};

use super::connection::{Connector, SharedConnection};
use super::redis::{RedisBackend, keepalive, open_client};
use crate::config::{Config, Target};
use crate::error::{Error, Result};

/// Dials the primary the sentinels name.
pub(crate) struct SentinelPrimary {
    client: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    /// Bounds asking the sentinels and dialling the primary together.
    dial_timeout: Duration,
    /// The sentinels, to subscribe to their `+switch-master` notifications.
    sentinels: Vec<redis::Client>,
    /// The service name the sentinels monitor.
    service: String,
}

impl Connector for SentinelPrimary {
    type Conn = MultiplexedConnection;

    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        let dial = async {
            let mut client = self.client.lock().await;
            client.get_async_connection_with_config(&self.config).await
        };
        match tokio::time::timeout(self.dial_timeout, dial).await {
            Ok(connection) => connection,
            Err(_) => Err(RedisError::from((
                ErrorKind::Io,
                "timed out asking the sentinels for the primary and connecting to it",
            ))),
        }
    }

    fn tracking_nodes(&self) -> BoxFuture<'_, RedisResult<Vec<redis::Client>>> {
        Box::pin(async {
            let primary = self.client.lock().await.async_get_client().await?;
            Ok(vec![super::tracking::resp3(&primary)?])
        })
    }

    fn follow(&self, conn: Weak<SharedConnection<Self>>) -> Option<BoxFuture<'static, ()>> {
        let switches = Switches {
            sentinels: self.sentinels.clone(),
            service: self.service.clone(),
            timeout: self.dial_timeout,
        };
        Some(Box::pin(switches.follow(conn)))
    }
}

/// Where to hear of failovers.
struct Switches {
    sentinels: Vec<redis::Client>,
    service: String,
    /// Bounds subscribing to one sentinel.
    timeout: Duration,
}

impl Switches {
    /// Subscribes to `+switch-master` on one sentinel after the other (the next when one
    /// fails, with a backoff from 100 ms to 5 s), and drops `conn`'s current connection
    /// whenever a notification names this service. Returns once `conn` is gone.
    async fn follow(self, conn: Weak<SharedConnection<SentinelPrimary>>) {
        let mut backoff = Duration::from_millis(100);
        for sentinel in self.sentinels.iter().cycle() {
            if conn.strong_count() == 0 {
                return;
            }
            let subscribed = tokio::time::timeout(self.timeout, async {
                let mut pubsub = sentinel.get_async_pubsub().await?;
                pubsub.subscribe("+switch-master").await?;
                Ok::<_, RedisError>(pubsub)
            })
            .await;
            if let Ok(Ok(mut pubsub)) = subscribed {
                backoff = Duration::from_millis(100);
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => {
                            let Some(message) = message else { break };
                            // `<service> <old ip> <old port> <new ip> <new port>`
                            let payload: String = message.get_payload().unwrap_or_default();
                            if payload.split(' ').next() != Some(self.service.as_str()) {
                                continue;
                            }
                            let Some(conn) = conn.upgrade() else { return };
                            tracing::info!(
                                target: "redis_patterns",
                                "the sentinels switched the primary; dialling the new one"
                            );
                            conn.discard_current();
                        }
                        () = tokio::time::sleep(Duration::from_secs(1)) => {
                            if conn.strong_count() == 0 {
                                return;
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(Duration::from_secs(5));
        }
    }
}

impl RedisBackend<SentinelPrimary> {
    /// The primary named by `config`'s sentinels (`redis+sentinel://…/name`).
    pub(crate) fn sentinel(config: &Config) -> Result<Self> {
        let Target::Sentinel { sentinels, service } = &config.target else {
            return Err(Error::Config(
                "not a redis+sentinel:// configuration".into(),
            ));
        };
        let tls = sentinels.iter().any(|s| s.scheme() == "rediss");
        let addresses = sentinels.iter().map(|s| {
            let host = s.host_str().unwrap_or_default().to_owned();
            let port = s.port().unwrap_or(26379);
            if tls {
                ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(host, port)
            }
        });
        let addresses: Vec<ConnectionAddr> = addresses.collect();
        let tcp = redis::io::tcp::TcpSettings::default().set_keepalive(keepalive());
        let mut builder =
            SentinelClientBuilder::new(addresses.clone(), service, SentinelServerType::Master)?
                .set_client_to_redis_tcp_settings(tcp.clone())
                .set_client_to_sentinel_tcp_settings(tcp);
        if let Some(user) = &config.username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = &config.password {
            builder = builder.set_client_to_redis_password(&password.0);
        }
        if let Some(user) = &config.sentinel_username {
            builder = builder.set_client_to_sentinel_username(user);
        }
        if let Some(password) = &config.sentinel_password {
            builder = builder.set_client_to_sentinel_password(&password.0);
        }
        #[cfg(feature = "tls")]
        if tls {
            builder = builder
                .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
            if let Some(certificates) = super::redis::tls_certificates(config) {
                builder = builder
                    .set_client_to_redis_certificates(certificates.clone())
                    .set_client_to_sentinel_certificates(certificates);
            }
        }
        let connector = SentinelPrimary {
            client: tokio::sync::Mutex::new(builder.build()?),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.command_timeout)),
            dial_timeout: config.connect_timeout.saturating_mul(2),
            sentinels: addresses
                .into_iter()
                .map(|address| sentinel_client(address, config))
                .collect::<Result<_>>()?,
            service: service.clone(),
        };
        Ok(Self::with_connector(connector, config))
    }
}

/// A client of one sentinel, with the sentinels' credentials and the configured certificates.
fn sentinel_client(address: ConnectionAddr, config: &Config) -> Result<redis::Client> {
    open_client(
        address,
        config.sentinel_username.as_deref(),
        config.sentinel_password.as_ref(),
        config,
    )
}
