//! The connection that keeps a [`Hub`]'s names subscribed on a Redis topology: dialled (to
//! the server, the Sentinel group's primary, or one cluster node), every name subscribed,
//! pushed messages handed to the hub, a `PING` every heartbeat; dialled again with backoff
//! when lost, telling the subscribers whose names were live that they were renewed. On a
//! cluster, sharded channels go over a cluster connection of the same session (`shards.rs`),
//! dialled with the first of them; either connection lost ends the session.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::Instant;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc;

use super::{Hub, Kind, Name, PushSender, Refusal, ShardSubscriber};
use crate::backend::tracking::{HEARTBEAT, Timeouts, TrackingSource, resp3};

/// Starts the task that keeps `hub`'s names subscribed on `source`'s servers; `false` without
/// a runtime to run it.
pub(crate) fn serve(source: Weak<dyn TrackingSource>, hub: Weak<Hub>, timeouts: Timeouts) -> bool {
    crate::util::spawn_if_runtime(
        Task {
            source,
            hub,
            timeouts,
        }
        .run(),
    )
}

struct Task {
    source: Weak<dyn TrackingSource>,
    hub: Weak<Hub>,
    timeouts: Timeouts,
}

/// Why a connection's session ended.
enum Ended {
    /// The client and its subscriptions are gone.
    Dropped,
    Lost(String),
}

impl Task {
    async fn run(self) {
        let mut backoff = self.timeouts.min_backoff;
        let mut warned = false;
        // Names that were live on the last connection: their subscribers hear of the renewal.
        let mut renewed = HashSet::new();
        loop {
            let Some(hub) = self.hub.upgrade() else {
                return;
            };
            if hub.is_empty() {
                let _ = tokio::time::timeout(HEARTBEAT, hub.changed.notified()).await;
                continue;
            }
            drop(hub);
            let started = Instant::now();
            let ended = self.session(&mut renewed).await;
            if let Some(hub) = self.hub.upgrade() {
                renewed.extend(hub.lost());
            }
            if started.elapsed() > self.timeouts.max_backoff.saturating_mul(4) {
                backoff = self.timeouts.min_backoff;
                warned = false;
            }
            let why = match ended {
                Ended::Dropped => return,
                Ended::Lost(why) => why,
            };
            if warned {
                tracing::debug!(target: "redis_patterns", "pub/sub: still disconnected ({why})");
            } else {
                warned = true;
                tracing::warn!(target: "redis_patterns", "pub/sub: subscriptions lost ({why}); subscribing again, messages published meanwhile are not received");
            }
            tokio::time::sleep(crate::util::jittered(backoff)).await;
            backoff = backoff.saturating_mul(2).min(self.timeouts.max_backoff);
        }
    }

    /// Connects, subscribes every name, tells the subscribers of `renewed` names, then
    /// delivers until the connection fails.
    async fn session(&self, renewed: &mut HashSet<Name>) -> Ended {
        let Some(source) = self.source.upgrade() else {
            return Ended::Dropped;
        };
        let generation = source.topology_generation();
        let nodes = match tokio::time::timeout(
            self.timeouts.connect.saturating_mul(2),
            source.tracking_nodes(),
        )
        .await
        {
            Ok(Ok(nodes)) => nodes,
            Ok(Err(e)) => return Ended::Lost(format!("finding a server failed: {e}")),
            Err(_) => return Ended::Lost("finding a server timed out".into()),
        };
        let Some(node) = nodes.first() else {
            return Ended::Lost("the topology names no server".into());
        };
        let (pushes, mut received) = mpsc::unbounded_channel();
        let node = match self.connect(node, pushes.clone()).await {
            Ok(conn) => conn,
            Err(e) => return Ended::Lost(format!("connecting failed: {e}")),
        };
        let mut conns = Conns {
            node,
            shards: None,
            pushes,
        };
        if let Err(e) = self.sync(&*source, &mut conns).await {
            return Ended::Lost(format!("subscribing failed: {e}"));
        }
        if let Some(hub) = self.hub.upgrade() {
            hub.resubscribed(renewed);
            renewed.clear();
        }
        loop {
            let Some(hub) = self.hub.upgrade() else {
                return Ended::Dropped;
            };
            tokio::select! {
                push = received.recv() => match push {
                    Some(push) if push.kind == PushKind::Disconnection => {
                        return Ended::Lost("the connection closed".into());
                    }
                    Some(push) => {
                        if let Some(name) = dispatch(&hub, push) {
                            return Ended::Lost(format!(
                                "the server unsubscribed the sharded channel {:?} (its slot moved)",
                                String::from_utf8_lossy(&name)
                            ));
                        }
                    }
                    None => return Ended::Lost("the connection closed".into()),
                },
                () = hub.changed.notified() => {
                    drop(hub);
                    if let Err(e) = self.sync(&*source, &mut conns).await {
                        return Ended::Lost(format!("subscribing failed: {e}"));
                    }
                }
                () = source.moved().notified() => return Ended::Lost("the topology changed".into()),
                () = tokio::time::sleep(HEARTBEAT) => {
                    drop(hub);
                    if self.hub.strong_count() == 0 {
                        return Ended::Dropped;
                    }
                    let pong = async {
                        redis::cmd("PING").query_async::<Value>(&mut conns.node).await?;
                        match &mut conns.shards {
                            Some(shards) => shards.ping().await,
                            None => Ok(()),
                        }
                    };
                    match tokio::time::timeout(self.timeouts.command, pong).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Ended::Lost(format!("heartbeat failed: {e}")),
                        Err(_) => return Ended::Lost("heartbeat timed out".into()),
                    }
                    if source.topology_generation() != generation {
                        return Ended::Lost("the topology changed".into());
                    }
                }
            }
        }
    }

    async fn connect(
        &self,
        node: &redis::Client,
        pushes: mpsc::UnboundedSender<PushInfo>,
    ) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.command))
            .set_push_sender(pushes);
        resp3(node)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Subscribes the names the hub holds and the connections lack, unsubscribes those it no
    /// longer holds, and confirms the waiting subscribers. A name the server refuses (an ACL
    /// without the channel, a server without sharded pub/sub) fails its subscribers; the
    /// others are subscribed.
    async fn sync(&self, source: &dyn TrackingSource, conns: &mut Conns) -> RedisResult<()> {
        let Some(hub) = self.hub.upgrade() else {
            return Ok(());
        };
        let (add, remove) = hub.wanted();
        drop(hub);
        let mut refused = Vec::new();
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            let names = of_kind(&add, kind);
            if !names.is_empty()
                && let Err(e) = self.apply(source, conns, kind, true, &names).await
            {
                Refusal::of(&e).ok_or(e)?;
                // One refusal fails the whole command: name by name, only those refused fail.
                for name in names {
                    if let Err(e) = self.apply(source, conns, kind, true, &[name]).await {
                        refused.push(((kind, name.to_vec()), Refusal::of(&e).ok_or(e)?));
                    }
                }
            }
            let names = of_kind(&remove, kind);
            if !names.is_empty() {
                self.apply(source, conns, kind, false, &names).await?;
            }
        }
        if let Some(hub) = self.hub.upgrade() {
            let added: Vec<Name> = add
                .into_iter()
                .filter(|name| !refused.iter().any(|(r, _)| r == name))
                .collect();
            hub.settled(&added, &remove);
            hub.refuse(refused);
        }
        Ok(())
    }

    /// Subscribes (or unsubscribes) `names` of `kind`, once the server confirmed them.
    async fn apply(
        &self,
        source: &dyn TrackingSource,
        conns: &mut Conns,
        kind: Kind,
        subscribe: bool,
        names: &[&[u8]],
    ) -> RedisResult<()> {
        let node = &mut conns.node;
        match (kind, subscribe) {
            (Kind::Channel, true) => node.subscribe(names).await,
            (Kind::Channel, false) => node.unsubscribe(names).await,
            (Kind::Pattern, true) => node.psubscribe(names).await,
            (Kind::Pattern, false) => node.punsubscribe(names).await,
            (Kind::Shard, _) => {
                if conns.shards.is_none()
                    && let Some(dial) = source.shard_subscriber(conns.pushes.clone())
                {
                    let dialled =
                        tokio::time::timeout(self.timeouts.connect.saturating_mul(2), dial)
                            .await
                            .map_err(|_| {
                                timed_out("connecting to the cluster for sharded channels")
                            })??;
                    conns.shards = Some(dialled);
                }
                match (&mut conns.shards, subscribe) {
                    (Some(shards), true) => shards.subscribe(names).await,
                    (Some(shards), false) => shards.unsubscribe(names).await,
                    // One server: one command per channel (pipelined), so that the connection
                    // pairs each confirmation with its command.
                    (None, _) => {
                        let command = if subscribe {
                            "SSUBSCRIBE"
                        } else {
                            "SUNSUBSCRIBE"
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

/// The connections of one session.
struct Conns {
    /// Channels and patterns, and sharded channels off a cluster.
    node: MultiplexedConnection,
    /// A cluster's sharded channels, from the first of them on.
    shards: Option<Box<dyn ShardSubscriber>>,
    /// Where both push what they receive.
    pushes: PushSender,
}

fn timed_out(what: &str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} timed out"),
    ))
}

/// The names of `kind` among `names`.
fn of_kind(names: &[Name], kind: Kind) -> Vec<&[u8]> {
    names
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, n)| n.as_slice())
        .collect()
}

/// Hands a pushed message to its subscribers; confirmations and other pushes are not messages.
/// Answers the sharded channel the server unsubscribed by itself (its slot moved away), if
/// that is what `push` says.
fn dispatch(hub: &Hub, push: PushInfo) -> Option<Bytes> {
    let mut data = push.data.into_iter().map(bytes_of);
    let (name, channel, payload) = match push.kind {
        PushKind::Message | PushKind::SMessage => {
            let kind = match push.kind {
                PushKind::SMessage => Kind::Shard,
                _ => Kind::Channel,
            };
            match (data.next().flatten(), data.next().flatten()) {
                (Some(channel), Some(payload)) => ((kind, channel.to_vec()), channel, payload),
                _ => return None,
            }
        }
        PushKind::SUnsubscribe => {
            let channel = data.next().flatten()?;
            let name = (Kind::Shard, channel.to_vec());
            return hub.dropped_by_server(&name).then_some(channel);
        }
        PushKind::PMessage => match (
            data.next().flatten(),
            data.next().flatten(),
            data.next().flatten(),
        ) {
            (Some(pattern), Some(channel), Some(payload)) => {
                ((Kind::Pattern, pattern.to_vec()), channel, payload)
            }
            _ => return None,
        },
        _ => return None,
    };
    hub.deliver(&name, &channel, &payload);
    None
}

fn bytes_of(value: Value) -> Option<Bytes> {
    match value {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s.into_bytes())),
        _ => None,
    }
}
