//! The connection that keeps a [`Hub`]'s names subscribed on a Redis topology: dialled (to
//! the server, the Sentinel group's primary, or one cluster node), every name subscribed,
//! pushed messages handed to the hub, a `PING` every heartbeat; dialled again with backoff
//! when lost, telling the subscribers whose names were live that they were renewed.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::Instant;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc;

use super::{Hub, Kind, Name};
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
        let mut conn = match self.connect(node, pushes).await {
            Ok(conn) => conn,
            Err(e) => return Ended::Lost(format!("connecting failed: {e}")),
        };
        if let Err(e) = self.sync(&mut conn).await {
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
                    Some(push) => dispatch(&hub, push),
                    None => return Ended::Lost("the connection closed".into()),
                },
                () = hub.changed.notified() => {
                    drop(hub);
                    if let Err(e) = self.sync(&mut conn).await {
                        return Ended::Lost(format!("subscribing failed: {e}"));
                    }
                }
                () = source.moved().notified() => return Ended::Lost("the topology changed".into()),
                () = tokio::time::sleep(HEARTBEAT) => {
                    drop(hub);
                    if self.hub.strong_count() == 0 {
                        return Ended::Dropped;
                    }
                    let ping = redis::cmd("PING");
                    let pong = ping.query_async::<Value>(&mut conn);
                    match tokio::time::timeout(self.timeouts.command, pong).await {
                        Ok(Ok(_)) => {}
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

    /// Subscribes the names the hub holds and the connection lacks, unsubscribes those it no
    /// longer holds, and confirms the waiting subscribers.
    async fn sync(&self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let Some(hub) = self.hub.upgrade() else {
            return Ok(());
        };
        let (add, remove) = hub.wanted();
        drop(hub);
        for kind in [Kind::Channel, Kind::Pattern] {
            let names = of_kind(&add, kind);
            if !names.is_empty() {
                match kind {
                    Kind::Channel => conn.subscribe(&names).await?,
                    Kind::Pattern => conn.psubscribe(&names).await?,
                }
            }
            let names = of_kind(&remove, kind);
            if !names.is_empty() {
                match kind {
                    Kind::Channel => conn.unsubscribe(&names).await?,
                    Kind::Pattern => conn.punsubscribe(&names).await?,
                }
            }
        }
        if let Some(hub) = self.hub.upgrade() {
            hub.settled(&add, &remove);
        }
        Ok(())
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

/// Hands a pushed message to its subscribers; confirmations and other pushes are not messages.
fn dispatch(hub: &Hub, push: PushInfo) {
    let mut data = push.data.into_iter().map(bytes_of);
    let (name, channel, payload) = match push.kind {
        PushKind::Message => match (data.next().flatten(), data.next().flatten()) {
            (Some(channel), Some(payload)) => ((Kind::Channel, channel.to_vec()), channel, payload),
            _ => return,
        },
        PushKind::PMessage => match (
            data.next().flatten(),
            data.next().flatten(),
            data.next().flatten(),
        ) {
            (Some(pattern), Some(channel), Some(payload)) => {
                ((Kind::Pattern, pattern.to_vec()), channel, payload)
            }
            _ => return,
        },
        _ => return,
    };
    hub.deliver(&name, &channel, &payload);
}

fn bytes_of(value: Value) -> Option<Bytes> {
    match value {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s.into_bytes())),
        _ => None,
    }
}
