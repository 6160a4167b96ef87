//! Bringing a session's connections to what its [`Hub`] holds: the names to subscribe and
//! unsubscribe, each kind on its connection, refusals sorted out from failures.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};

use super::{Hub, Kind, Name, Refusal, ShardSubscriber};

/// Which connection failed: the session's own (it ends), or a cluster's sharded channels'
/// (only it is replaced).
#[derive(Debug)]
pub(super) enum Failed {
    Node(redis::RedisError),
    Shards(redis::RedisError),
}

/// Whether the sharded channels can be synced: on one server always (they share the
/// session's connection); on a cluster while their connection is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shards {
    Up,
    Down,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Node(e) => write!(f, "{e}"),
            Failed::Shards(e) => write!(f, "the sharded channels' connection: {e}"),
        }
    }
}

/// Whether a command adds names or removes them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Subscribe,
    Unsubscribe,
}

/// The connections of one session.
pub(super) struct Conns {
    /// Channels and patterns, and sharded channels off a cluster.
    pub(super) node: MultiplexedConnection,
    /// A cluster's sharded channels: dialled by the session with the first of them.
    pub(super) shards: Option<Box<dyn ShardSubscriber>>,
    /// `SUNSUBSCRIBE`s sent whose confirmation was not seen yet, per channel: those pushes
    /// are the hub's own, not the server unsubscribing a channel whose slot moved.
    pub(super) unconfirmed: HashMap<Vec<u8>, usize>,
}

impl Conns {
    pub(super) fn new(node: MultiplexedConnection) -> Self {
        Conns {
            node,
            shards: None,
            unconfirmed: HashMap::new(),
        }
    }

    /// Whether an `sunsubscribe` push for `channel` confirms one the hub sent (and counts it).
    pub(super) fn confirms_own(&mut self, channel: &[u8]) -> bool {
        let Some(pending) = self.unconfirmed.get_mut(channel) else {
            return false;
        };
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            self.unconfirmed.remove(channel);
        }
        true
    }

    /// Subscribes the names `hub` holds and the connections lack, unsubscribes those it no
    /// longer holds, and confirms the waiting subscribers. A name the server refuses (an ACL
    /// without the channel, a server without sharded pub/sub) fails its subscribers; the
    /// others are subscribed. An error is a connection's failure. Without `shards` (a cluster
    /// whose sharded channels' connection is down) the sharded names wait for the next sync;
    /// channels and patterns never wait for them: they are confirmed even when the sharded
    /// connection fails meanwhile.
    pub(super) async fn sync(&mut self, hub: &Weak<Hub>, shards: Shards) -> Result<(), Failed> {
        let Some(strong) = hub.upgrade() else {
            return Ok(());
        };
        let (add, remove) = strong.wanted();
        drop(strong);
        let mut refused = Vec::new();
        let mut shards_failed = None;
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            if kind == Kind::Shard && shards == Shards::Down {
                // Their connection is gone, and its subscriptions with it.
                continue;
            }
            match self.sync_kind(kind, &add, &remove, &mut refused).await {
                Ok(()) => {}
                Err(Failed::Shards(e)) => shards_failed = Some(e),
                Err(node) => return Err(node),
            }
        }
        let sharded_done = shards == Shards::Up && shards_failed.is_none();
        if let Some(hub) = hub.upgrade() {
            let added: Vec<Name> = add
                .into_iter()
                .filter(|name| name.0 != Kind::Shard || sharded_done)
                .filter(|name| !refused.iter().any(|(r, _)| r == name))
                .collect();
            hub.settled(&added);
            hub.refuse(refused);
        }
        shards_failed.map_or(Ok(()), |e| Err(Failed::Shards(e)))
    }

    /// [`sync`](Self::sync) of the names of one kind.
    async fn sync_kind(
        &mut self,
        kind: Kind,
        add: &[Name],
        remove: &[Name],
        refused: &mut Vec<(Name, Refusal)>,
    ) -> Result<(), Failed> {
        let on_shards = kind == Kind::Shard && self.shards.is_some();
        let failed = |e| {
            if on_shards {
                Failed::Shards(e)
            } else {
                Failed::Node(e)
            }
        };
        let names = of_kind(add, kind);
        if !names.is_empty()
            && let Err(e) = self.apply(kind, Change::Subscribe, &names).await
        {
            Refusal::of(&e, kind).ok_or_else(|| failed(e))?;
            // One refusal fails the whole command: name by name, only those refused fail.
            for name in names {
                if let Err(e) = self.apply(kind, Change::Subscribe, &[name]).await {
                    let refusal = Refusal::of(&e, kind).ok_or_else(|| failed(e))?;
                    refused.push(((kind, name.to_vec()), refusal));
                }
            }
        }
        let names = of_kind(remove, kind);
        if !names.is_empty() {
            self.apply(kind, Change::Unsubscribe, &names)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// Subscribes (or unsubscribes) `names` of `kind`, once the server confirmed them.
    async fn apply(&mut self, kind: Kind, change: Change, names: &[&[u8]]) -> RedisResult<()> {
        let node = &mut self.node;
        match (kind, change) {
            (Kind::Channel, Change::Subscribe) => node.subscribe(names).await,
            (Kind::Channel, Change::Unsubscribe) => node.unsubscribe(names).await,
            (Kind::Pattern, Change::Subscribe) => node.psubscribe(names).await,
            (Kind::Pattern, Change::Unsubscribe) => node.punsubscribe(names).await,
            (Kind::Shard, _) => {
                if change == Change::Unsubscribe {
                    for name in names {
                        *self.unconfirmed.entry(name.to_vec()).or_default() += 1;
                    }
                }
                match (&mut self.shards, change) {
                    (Some(shards), Change::Subscribe) => shards.subscribe(names).await,
                    (Some(shards), Change::Unsubscribe) => shards.unsubscribe(names).await,
                    // One server: one command per channel (pipelined), so that the connection
                    // pairs each confirmation with its command.
                    (None, _) => {
                        let command = match change {
                            Change::Subscribe => "SSUBSCRIBE",
                            Change::Unsubscribe => "SUNSUBSCRIBE",
                        };
                        if let [name] = names {
                            // Alone, its error reply keeps the server's message.
                            let cmd = redis::cmd(command).arg(*name).take();
                            return cmd.query_async::<Value>(node).await.map(drop);
                        }
                        let mut pipe = redis::pipe();
                        for name in names {
                            pipe.cmd(command).arg(*name);
                        }
                        pipe.query_async::<Vec<Value>>(node).await.map(drop)
                    }
                }
            }
        }
    }
}

/// The names of `kind` among `names`.
fn of_kind(names: &[Name], kind: Kind) -> Vec<&[u8]> {
    names
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, n)| n.as_slice())
        .collect()
}

/// An I/O error saying that `what` timed out.
pub(super) fn timed_out(what: &str, after: Duration) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} timed out after {after:?}"),
    ))
}
