//! The storage operations every pattern is built from, with one implementation on Redis and
//! one in process memory. Both keep the same semantics (TTLs, `NX`, owner-checked unlock),
//! checked by one conformance suite run against each: the checks live next to the operations
//! they verify (`conformance.rs` here for the plain commands, and in each pattern's room),
//! `test_util::conformance_checks` gathers them (feature `test-util`) and
//! `tests/conformance.rs` runs them on every backend.

mod blocking;
mod breaker;
#[cfg(feature = "cluster")]
mod cluster;
#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod connection;
mod coverage;
mod memory;
mod op;
pub(crate) mod pubsub;
mod redis;
#[cfg(feature = "sentinel")]
mod sentinel;
pub(crate) mod tracking;
pub(crate) mod watch;

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::config::{Config, Target};
use crate::error::{Error, Result};
use crate::lock::ops::Release;

use self::tracking::{Invalidations, Tracker};

pub(crate) use self::blocking::{Blocking, BlockingOp};
pub(crate) use self::memory::{MemoryBackend, Txn};
pub(crate) use self::op::{AtomicOp, CommandOp, EvalSha, ScriptArgs, millis, unexpected_reply};
pub(crate) use self::redis::RedisBackend;

/// A backend instance. Cheap to share: clients hold one each.
pub(crate) enum Backend {
    Redis(Box<RedisBackend>),
    /// Redis Cluster (feature `cluster`).
    #[cfg(feature = "cluster")]
    Cluster(Box<RedisBackend<cluster::ClusterNodes>>),
    /// A primary behind Redis Sentinel (feature `sentinel`).
    #[cfg(feature = "sentinel")]
    Sentinel(Box<RedisBackend<sentinel::SentinelPrimary>>),
    Memory(MemoryBackend),
    /// The configuration could not be used (e.g. a malformed `REDIS_URL` for the lazily
    /// created default client): every operation reports why.
    Unusable(String),
}

impl Backend {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        Ok(match &config.target {
            Target::Memory(name) => Backend::Memory(MemoryBackend::new(name.as_deref())),
            Target::Redis(_) => Backend::Redis(Box::new(RedisBackend::new(config)?)),
            #[cfg(feature = "cluster")]
            Target::Cluster(_) => Backend::Cluster(Box::new(RedisBackend::cluster(config)?)),
            // `parse_target` refuses cluster URLs without the feature.
            #[cfg(not(feature = "cluster"))]
            Target::Cluster(_) => {
                Backend::Unusable("Redis Cluster needs the `cluster` feature".into())
            }
            #[cfg(feature = "sentinel")]
            Target::Sentinel { .. } => Backend::Sentinel(Box::new(RedisBackend::sentinel(config)?)),
            // `parse_target` refuses sentinel URLs without the feature.
            #[cfg(not(feature = "sentinel"))]
            Target::Sentinel { .. } => {
                Backend::Unusable("Redis Sentinel needs the `sentinel` feature".into())
            }
        })
    }

    /// `true` for one server or a `mem://` store, `false` for a cluster or a Sentinel group:
    /// what Redlock needs to know (its servers must not replicate each other).
    pub(crate) fn is_independent_server(&self) -> bool {
        match self {
            Backend::Redis(_) | Backend::Memory(_) | Backend::Unusable(_) => true,
            #[cfg(feature = "cluster")]
            Backend::Cluster(_) => false,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(_) => false,
        }
    }

    /// A backend whose configuration could not be used: every operation reports `why`.
    pub(crate) fn broken(why: String) -> Self {
        Backend::Unusable(why)
    }

    pub(crate) fn unusable(why: &str) -> Error {
        Error::Config(why.to_owned())
    }

    /// Runs an atomic operation: its script on Redis, its twin in memory.
    pub(crate) async fn run<O: AtomicOp>(&self, op: &O) -> Result<O::Output> {
        match self {
            Backend::Redis(r) => r.run_op(op).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.run_op(op).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.run_op(op).await,
            Backend::Memory(m) => Ok(m.atomically(op.key(), |txn| op.in_memory(txn))),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// Runs `first`, then `second`, each atomically (not the two as one): on one server (or a
    /// Sentinel group's primary) in one round trip, both scripts pipelined on the connection,
    /// which the server runs in order; on a cluster, whose keys of two slots may live on two
    /// nodes, and in memory, one after the other. The second runs whatever the first answers.
    /// `Err` when the round trip failed, and neither answer is known.
    pub(crate) async fn run_in_order<A: AtomicOp, B: AtomicOp>(
        &self,
        first: &A,
        second: &B,
    ) -> Result<(Result<A::Output>, Result<B::Output>)> {
        match self {
            Backend::Redis(r) => r.run_in_order(first, second).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.run_in_order(first, second).await,
            _ => Ok((self.run(first).await, self.run(second).await)),
        }
    }

    /// Runs an atomic operation made of plain commands: the commands on Redis (one round
    /// trip), its twin in memory.
    pub(crate) async fn exec<O: CommandOp>(&self, op: &O) -> Result<O::Output> {
        match self {
            Backend::Redis(r) => r.exec(op).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.exec(op).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.exec(op).await,
            Backend::Memory(m) => m.atomically(op.key(), |txn| op.in_memory(txn)),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// `PUBLISH channel payload` (or `SPUBLISH`, as `how` says): how many subscriptions (of
    /// channels and patterns, or of the sharded channel) received it.
    pub(crate) async fn publish(
        &self,
        how: pubsub::Publish,
        channel: &[u8],
        payload: &[u8],
    ) -> Result<u64> {
        match self {
            Backend::Redis(r) => r.publish(how, channel, payload).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.publish(how, channel, payload).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.publish(how, channel, payload).await,
            Backend::Memory(m) => Ok(m.publish(how, channel, payload)),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// Subscribes to a channel or a pattern with a buffer of `capacity` messages, once the
    /// server confirmed it: messages published after this returns are received. Fails with
    /// [`Error::Timeout`](crate::Error::Timeout) when the server does not confirm within the
    /// connection and command timeouts, with [`Error::Permission`](crate::Error::Permission)
    /// or [`Error::Config`](crate::Error::Config) when it refuses the name. Dropping the
    /// registration unsubscribes.
    pub(crate) async fn subscribe(
        &self,
        kind: pubsub::Kind,
        name: &[u8],
        capacity: usize,
    ) -> Result<(
        pubsub::Registration,
        tokio::sync::broadcast::Receiver<pubsub::Delivery>,
    )> {
        let (hub, wait) = match self {
            Backend::Redis(r) => (r.hub()?, r.subscribe_timeout()),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => (c.hub()?, c.subscribe_timeout()),
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => (c.hub()?, c.subscribe_timeout()),
            Backend::Memory(m) => (m.hub(), std::time::Duration::from_secs(1)),
            Backend::Unusable(why) => return Err(Self::unusable(why)),
        };
        let joined = hub.join(kind, name, capacity);
        match tokio::time::timeout(wait, joined.confirmed).await {
            Ok(Ok(Ok(()))) => Ok((joined.registration, joined.buffer)),
            Ok(Ok(Err(refused))) => Err(refused.into()),
            _ => Err(Error::Timeout(wait)),
        }
    }

    /// Starts tracking changes for the near tier `sink`: on the servers, or in the `mem://`
    /// store. Dropping the tracker ends it.
    pub(crate) fn track(&self, sink: Weak<dyn Invalidations>) -> Tracker {
        match self {
            Backend::Redis(r) => r.track(sink),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.track(sink),
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.track(sink),
            Backend::Memory(m) => m.track(sink),
            Backend::Unusable(_) => Tracker::Unavailable,
        }
    }

    /// Checks that the backend answers (`PING`).
    pub(crate) async fn ping(&self) -> Result<()> {
        match self {
            Backend::Redis(r) => r.ping().await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.ping().await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.ping().await,
            Backend::Memory(_) => Ok(()),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// `GET key`.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self {
            Backend::Redis(r) => r.get(key).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.get(key).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.get(key).await,
            Backend::Memory(m) => Ok(m.get(key)),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// `GET` of several keys in one round trip: pipelined on one server (or a Sentinel group's
    /// primary); on a cluster, sent at once to the nodes of their slots.
    pub(crate) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        match self {
            Backend::Redis(r) => r.get_pipelined(keys).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => {
                futures_util::future::try_join_all(keys.iter().map(|key| c.get(key))).await
            }
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.get_pipelined(keys).await,
            Backend::Memory(m) => Ok(keys.iter().map(|key| m.get(key)).collect()),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// `SET key value PX ttl`.
    pub(crate) async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        match self {
            Backend::Redis(r) => r.set(key, &value, ttl).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.set(key, &value, ttl).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.set(key, &value, ttl).await,
            Backend::Memory(m) => {
                m.set(key, value.into(), ttl);
                Ok(())
            }
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// `SET key value NX PX ttl`: `true` when the key was set (it did not exist).
    pub(crate) async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        match self {
            Backend::Redis(r) => r.set_nx(key, value, ttl).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.set_nx(key, value, ttl).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.set_nx(key, value, ttl).await,
            Backend::Memory(m) => Ok(m.atomically(key, |txn| {
                let free = txn.get(key).is_none();
                if free {
                    txn.set(key, Bytes::copy_from_slice(value), Some(ttl));
                }
                free
            })),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// `DEL key`; `true` when a key was deleted.
    pub(crate) async fn del(&self, key: &str) -> Result<bool> {
        match self {
            Backend::Redis(r) => r.del(key).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.del(key).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.del(key).await,
            Backend::Memory(m) => Ok(m.del(key)),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }

    /// Remaining time to live of `key`: `None` when it does not exist or has no expiry. Only
    /// tests read TTLs (`test_util::Store`, the conformance checks).
    #[cfg(feature = "test-util")]
    pub(crate) async fn pttl(&self, key: &str) -> Result<Option<Duration>> {
        match self {
            Backend::Redis(r) => r.pttl(key).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.pttl(key).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.pttl(key).await,
            Backend::Memory(m) => Ok(m.pttl(key)),
            Backend::Unusable(why) => Err(Self::unusable(why)),
        }
    }
}

/// Releases `lock_key` (if `token` still holds it) from a background task: for guards dropped
/// by cancellation or a panic, so that others need not wait for the lease to run out. Outside
/// a tokio runtime nothing can be spawned, and the lease expires as usual. `waiters`: a lock's
/// waiters' mark, rewritten so that they hear the release (`None` for the stampede lock).
pub(crate) fn unlock_in_background(
    backend: &Arc<Backend>,
    lock_key: String,
    waiters: Option<String>,
    token: String,
) {
    let backend = Arc::clone(backend);
    crate::util::spawn_if_runtime(async move {
        let release = Release {
            mutex: &lock_key,
            token: &token,
            waiters: waiters.as_deref(),
        };
        if let Err(error) = backend.run(&release).await {
            tracing::warn!(target: "redis_patterns", %error, "releasing a dropped lock failed; it expires with its lease");
        }
    });
}

/// The slot-determining part of a key: the text between the first `{` and the next `}`, as
/// Redis Cluster defines it, or the whole key.
pub(crate) fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{')
        && let Some(len) = key[open + 1..].find('}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

#[cfg(test)]
mod tests {
    use super::hash_tag;

    #[test]
    fn hash_tags_follow_redis_cluster_rules() {
        assert_eq!(hash_tag("ns:{product:42}"), "product:42");
        assert_eq!(hash_tag("ns:{product:42}:lock"), "product:42");
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("a{}b"), "a{}b");
        assert_eq!(hash_tag("a{b"), "a{b");
    }
}
