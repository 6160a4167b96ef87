//! A primary with replicas behind Redis Sentinel (feature `sentinel`). Dialling asks the
//! sentinels for the current primary (and checks its role) before connecting to it, so every
//! redial follows a failover. A redial happens when the connection breaks, when a command
//! times out and the health check finds the connection dead, and when the server answers
//! `READONLY` (the old primary was demoted to a replica): see `RedisBackend::run`. Breaker,
//! timeouts and failure policies are those of `redis.rs`.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError, RedisResult};

use super::connection::Connector;
use super::redis::{RedisBackend, keepalive};
use crate::config::{Config, Target};
use crate::error::{Error, Result};

/// Dials the primary the sentinels name.
pub(crate) struct SentinelPrimary {
    client: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    /// Bounds asking the sentinels and dialling the primary together.
    dial_timeout: Duration,
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
        let tcp = redis::io::tcp::TcpSettings::default().set_keepalive(keepalive());
        let mut builder =
            SentinelClientBuilder::new(addresses, service, SentinelServerType::Master)?
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
        };
        Ok(Self::with_connector(connector, config))
    }
}
