//! Redis Cluster (feature `cluster`): the redis crate's async cluster client behind the same
//! facade as one server. It discovers the topology from the seed nodes and follows it: every
//! command and script goes to the primary of its keys' slot (`EVALSHA` there, the script
//! loaded on `NOSCRIPT` there, so also on a freshly promoted replica), `MOVED` and `ASK` are
//! followed, and `TRYAGAIN`, `CLUSTERDOWN` and broken connections are retried within the
//! command timeout (the client's overall response timeout). The breaker, health check and
//! fail-open / fail-closed policies of `redis.rs` apply unchanged.
//!
//! The health check matters here: after a `CLUSTER FAILOVER` under load, redis-rs 1.8's
//! cluster connection can stay inside a slot refresh that never completes, so that every
//! command on it times out. The health check's `PING` times out too, the connection is
//! dropped, and the next call dials a fresh one (1.1–1.2 s after the failover settled, with a
//! 500 ms command timeout; `tests/cluster.rs`).

use redis::RedisResult;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;

use super::connection::Connector;
use super::redis::{RedisBackend, keepalive};
use crate::config::{Config, Target};
use crate::error::{Error, Result};

/// Dials a cluster connection: one multiplexed connection per node, routed by slot.
pub(crate) struct ClusterNodes {
    client: ClusterClient,
}

impl Connector for ClusterNodes {
    type Conn = ClusterConnection;

    async fn connect(&self) -> RedisResult<ClusterConnection> {
        self.client.get_async_connection().await
    }
}

impl RedisBackend<ClusterNodes> {
    /// A cluster reached through the seed nodes of `config` (`redis+cluster://…`).
    pub(crate) fn cluster(config: &Config) -> Result<Self> {
        let Target::Cluster(nodes) = &config.target else {
            return Err(Error::Config("not a redis+cluster:// configuration".into()));
        };
        let mut builder = ClusterClientBuilder::new(nodes.iter().map(::url::Url::as_str))
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.command_timeout)
            .tcp_settings(redis::io::tcp::TcpSettings::default().set_keepalive(keepalive()));
        if let Some(user) = &config.username {
            builder = builder.username(user);
        }
        if let Some(password) = &config.password {
            builder = builder.password(&password.0);
        }
        #[cfg(feature = "tls")]
        if let Some(certificates) = super::redis::tls_certificates(config) {
            builder = builder.certs(certificates);
        }
        let client = builder.build()?;
        Ok(Self::with_connector(ClusterNodes { client }, config))
    }
}
