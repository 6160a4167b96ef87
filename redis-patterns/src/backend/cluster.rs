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

use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{ConnectionAddr, ErrorKind, ProtocolVersion, RedisError, RedisResult};

use super::connection::Connector;
use super::pubsub::{PushSender, ShardSubscriber};
use super::redis::{RedisBackend, keepalive, open_client};
use crate::config::{Config, Target};
use crate::error::{Error, Result};

/// Dials a cluster connection: one multiplexed connection per node, routed by slot.
pub(crate) struct ClusterNodes {
    client: ClusterClient,
    /// The seed nodes as RESP3 clients with the configured credentials: where the near tier's
    /// tracking asks for the nodes, and the settings it connects to each node with.
    seeds: Vec<redis::Client>,
    /// What the client was built from: the sharded subscriptions' cluster connections are
    /// built from it too, speaking RESP3 with a push sender each.
    config: Config,
}

impl Connector for ClusterNodes {
    type Conn = ClusterConnection;

    async fn connect(&self) -> RedisResult<ClusterConnection> {
        self.client.get_async_connection().await
    }

    /// Every node, primaries and replicas: replicas broadcast the invalidations of the writes
    /// they replicate, so a promoted replica was tracked before its promotion.
    fn tracking_nodes(&self) -> BoxFuture<'_, RedisResult<Vec<redis::Client>>> {
        Box::pin(async {
            let mut last_error = None;
            for seed in &self.seeds {
                let nodes = async {
                    let mut conn = seed.get_multiplexed_async_connection().await?;
                    self.nodes_of(&mut conn).await
                };
                match nodes.await {
                    Ok(nodes) => return Ok(nodes),
                    Err(e) => last_error = Some(e),
                }
            }
            Err(last_error
                .unwrap_or_else(|| RedisError::from((ErrorKind::Client, "no cluster seed nodes"))))
        })
    }

    fn nodes_changed<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
        tracked: &'a [redis::Client],
    ) -> BoxFuture<'a, RedisResult<bool>> {
        Box::pin(async move {
            let now = self.nodes_of(conn).await?;
            Ok(!same_nodes(&now, tracked))
        })
    }

    /// A cluster connection of its own, pushing to `pushes`: the redis crate routes each
    /// `SSUBSCRIBE` to its slot's primary and follows `MOVED`.
    fn shard_subscriber(
        &self,
        pushes: PushSender,
    ) -> Option<BoxFuture<'_, RedisResult<Box<dyn ShardSubscriber>>>> {
        Some(Box::pin(async move {
            let client = builder(&self.config)
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(pushes)
                .build()?;
            let conn = client.get_async_connection().await?;
            Ok(Box::new(conn) as Box<dyn ShardSubscriber>)
        }))
    }
}

impl ShardSubscriber for ClusterConnection {
    fn subscribe<'a>(&'a mut self, names: &'a [&'a [u8]]) -> BoxFuture<'a, RedisResult<()>> {
        // One command per channel: the channels of one command must share a slot.
        let calls = names.iter().map(|name| {
            let mut conn = self.clone();
            async move { conn.ssubscribe(*name).await }
        });
        Box::pin(async move { futures_util::future::try_join_all(calls).await.map(drop) })
    }

    fn unsubscribe<'a>(&'a mut self, names: &'a [&'a [u8]]) -> BoxFuture<'a, RedisResult<()>> {
        let calls = names.iter().map(|name| {
            let mut conn = self.clone();
            async move { conn.sunsubscribe(*name).await }
        });
        Box::pin(async move { futures_util::future::try_join_all(calls).await.map(drop) })
    }

    fn ping(&mut self) -> BoxFuture<'_, RedisResult<()>> {
        let every_primary = RoutingInfo::MultiNode((
            MultipleNodeRoutingInfo::AllMasters,
            Some(ResponsePolicy::AllSucceeded),
        ));
        Box::pin(async move {
            self.route_command(redis::cmd("PING"), every_primary)
                .await
                .map(drop)
        })
    }
}

impl ClusterNodes {
    /// The nodes `conn`'s node knows of (`CLUSTER NODES`), except those marked failed, without
    /// an address, or still joining, as clients with the seeds' settings.
    async fn nodes_of(&self, conn: &mut MultiplexedConnection) -> RedisResult<Vec<redis::Client>> {
        let listing: String = redis::cmd("CLUSTER").arg("NODES").query_async(conn).await?;
        let Some(seed) = self.seeds.first() else {
            return Err(RedisError::from((
                ErrorKind::Client,
                "no cluster seed nodes",
            )));
        };
        let template = seed.get_connection_info();
        let mut nodes = Vec::new();
        for (host, port) in live_nodes(&listing) {
            let addr = match template.addr() {
                ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => ConnectionAddr::Tcp(host, port),
            };
            nodes.push(redis::Client::open(template.clone().set_addr(addr))?);
        }
        Ok(nodes)
    }
}

/// Whether `a` and `b` are the same servers, in any order.
fn same_nodes(a: &[redis::Client], b: &[redis::Client]) -> bool {
    let addresses = |nodes: &[redis::Client]| {
        let mut list: Vec<String> = nodes
            .iter()
            .map(|n| n.get_connection_info().addr().to_string())
            .collect();
        list.sort();
        list
    };
    addresses(a) == addresses(b)
}

/// Host and port of each usable node in a `CLUSTER NODES` listing
/// (`<id> <ip:port@cport[,hostname]> <flags> …` per line).
fn live_nodes(listing: &str) -> Vec<(String, u16)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_id, address, flags) = (fields.next()?, fields.next()?, fields.next()?);
            let unusable = flags
                .split(',')
                .any(|flag| matches!(flag, "fail" | "noaddr" | "handshake"));
            if unusable {
                return None;
            }
            let host_port = address.split(['@', ',']).next()?;
            let (host, port) = host_port.rsplit_once(':')?;
            let port: u16 = port.parse().ok()?;
            (!host.is_empty() && port != 0).then(|| (host.to_owned(), port))
        })
        .collect()
}

/// The shortest wait between two tries of one request on a cluster, in milliseconds; the
/// waits double from 10 ms (jittered between this and the doubled value) up to
/// [`CLUSTER_MAX_RETRY_WAIT_MS`].
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 10;
/// The longest wait between two tries of one request on a cluster, in milliseconds.
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 250;

impl RedisBackend<ClusterNodes> {
    /// A cluster reached through the seed nodes of `config` (`redis+cluster://…`).
    pub(crate) fn cluster(config: &Config) -> Result<Self> {
        let Target::Cluster(nodes) = &config.target else {
            return Err(Error::Config("not a redis+cluster:// configuration".into()));
        };
        let client = builder(config).build()?;
        let seeds = nodes
            .iter()
            .map(|node| {
                let seed = open_client(
                    node.as_str(),
                    config.username.as_deref(),
                    config.password.as_ref(),
                    config,
                )?;
                Ok(super::tracking::resp3(&seed)?)
            })
            .collect::<Result<_>>()?;
        Ok(Self::with_connector(
            ClusterNodes {
                client,
                seeds,
                config: config.clone(),
            },
            config,
        ))
    }
}

/// A cluster client of `config`'s seed nodes, timeouts, retry waits, credentials and
/// certificates.
fn builder(config: &Config) -> ClusterClientBuilder {
    let nodes = match &config.target {
        Target::Cluster(nodes) => nodes.as_slice(),
        _ => &[],
    };
    let mut builder = ClusterClientBuilder::new(nodes.iter().map(::url::Url::as_str))
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.command_timeout)
        // redis-rs waits 1.28 s to 655 s between the retries of a request (16 of them), so
        // a call to a slot whose node it could not reach took minutes under a long command
        // timeout; a node that comes back (a failover, a restart) is tried again within
        // a quarter of a second instead. The command timeout still bounds the whole call.
        .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
        .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
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
    builder
}

#[cfg(test)]
mod tests {
    #[test]
    fn cluster_nodes_listings_give_the_usable_nodes() {
        let listing = "\
a1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:30002@40002,host-b master - 0 0 2 connected 5461-10922
c3 127.0.0.1:30003@40003 master,fail - 0 0 3 disconnected
d4 :0@0 slave,noaddr a1 0 0 1 disconnected
e5 127.0.0.1:30005@40005 slave,fail? a1 0 0 1 connected
";
        assert_eq!(
            super::live_nodes(listing),
            vec![
                ("127.0.0.1".to_owned(), 30001),
                ("127.0.0.1".to_owned(), 30002),
                ("127.0.0.1".to_owned(), 30005),
            ]
        );
    }
}
