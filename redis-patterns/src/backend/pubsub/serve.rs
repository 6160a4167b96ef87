//! The connection that keeps a [`Hub`]'s names subscribed on a Redis topology: dialled (to
//! the server, the Sentinel group's primary, or one cluster node), every name subscribed,
//! pushed messages handed to the hub, a `PING` every heartbeat; dialled again with backoff
//! when lost, telling the subscribers whose names were live that they were renewed. On a
//! cluster, sharded channels go over a cluster connection of the same session (`shards.rs`),
//! dialled with the first of them. When that one fails (a node lost or silent, a slot moved),
//! only it is replaced, with its own backoff: the session and its channels and patterns go on.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::Instant;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc;

use super::sync::{Conns, Failed, Shards, timed_out};
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
        let node = match self.connect(node, pushes).await {
            Ok(conn) => conn,
            Err(e) => return Ended::Lost(format!("connecting failed: {e}")),
        };
        let mut conns = Conns::new(node);
        let mut shard_pushes = None;
        let mut retry = ShardRetry {
            at: None,
            backoff: self.timeouts.min_backoff,
        };
        let settled = self.settle(&*source, &mut conns, &mut shard_pushes).await;
        if let Some(ended) = self.after(settled, &mut conns, &mut shard_pushes, renewed, &mut retry)
        {
            return ended;
        }
        loop {
            let Some(hub) = self.hub.upgrade() else {
                return Ended::Dropped;
            };
            // Why the sharded channels' connection (a cluster's) must be replaced, if it must.
            let mut shards_lost = None;
            tokio::select! {
                push = received.recv() => match push {
                    Some(push) if push.kind == PushKind::Disconnection => {
                        return Ended::Lost("the connection closed".into());
                    }
                    Some(push) => {
                        if let Some(channel) = dispatch(&hub, push, &mut conns) {
                            return Ended::Lost(format!(
                                "the server unsubscribed the sharded channel {:?}",
                                String::from_utf8_lossy(&channel)
                            ));
                        }
                    }
                    None => return Ended::Lost("the connection closed".into()),
                },
                push = next_push(&mut shard_pushes) => match push {
                    Some(push) if push.kind == PushKind::Disconnection => {
                        shards_lost = Some("its connection to a node closed".to_owned());
                    }
                    Some(push) => {
                        shards_lost = dispatch(&hub, push, &mut conns).map(|channel| {
                            format!(
                                "the server unsubscribed {:?}: its slot moved",
                                String::from_utf8_lossy(&channel)
                            )
                        });
                    }
                    None => shards_lost = Some("its connection closed".to_owned()),
                },
                () = hub.changed.notified() => {
                    drop(hub);
                    let settled = self.settle(&*source, &mut conns, &mut shard_pushes).await;
                    if let Some(ended) =
                        self.after(settled, &mut conns, &mut shard_pushes, renewed, &mut retry)
                    {
                        return ended;
                    }
                }
                () = wait_until(retry.at) => {}
                () = source.moved().notified() => return Ended::Lost("the topology changed".into()),
                () = tokio::time::sleep(HEARTBEAT) => {
                    drop(hub);
                    if self.hub.strong_count() == 0 {
                        return Ended::Dropped;
                    }
                    let ping = redis::cmd("PING");
                    let pong = ping.query_async::<Value>(&mut conns.node);
                    match tokio::time::timeout(self.timeouts.command, pong).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Ended::Lost(format!("heartbeat failed: {e}")),
                        Err(_) => return Ended::Lost("heartbeat timed out".into()),
                    }
                    if let Some(shards) = &mut conns.shards {
                        match tokio::time::timeout(self.timeouts.command, shards.ping()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => shards_lost = Some(format!("its heartbeat failed: {e}")),
                            Err(_) => shards_lost = Some("its heartbeat timed out".to_owned()),
                        }
                    }
                    if source.topology_generation() != generation {
                        return Ended::Lost("the topology changed".into());
                    }
                }
            }
            if let Some(why) = shards_lost {
                // Only the sharded channels are renewed, on a new cluster connection (the
                // redis crate takes an unrequested `sunsubscribe` for a reply, so the old one
                // may pair its replies wrongly): channels and patterns go on undisturbed.
                tracing::info!(target: "redis_patterns", "pub/sub: renewing the sharded subscriptions ({why}); messages published meanwhile on them are not received");
                self.drop_shards(&mut conns, &mut shard_pushes, renewed);
                retry.at = Some(tokio::time::Instant::now());
            }
            if retry.at.is_some_and(|at| at <= tokio::time::Instant::now()) {
                let settled = self.settle(&*source, &mut conns, &mut shard_pushes).await;
                if let Some(ended) =
                    self.after(settled, &mut conns, &mut shard_pushes, renewed, &mut retry)
                {
                    return ended;
                }
            }
        }
    }

    /// What a sync's outcome means: the session ends when its own connection failed; a
    /// failure of the sharded channels' connection drops it, to be dialled again after its
    /// backoff. Once every name is subscribed, the subscribers of `renewed` names hear so.
    fn after(
        &self,
        settled: Result<(), Failed>,
        conns: &mut Conns,
        shard_pushes: &mut Option<mpsc::UnboundedReceiver<PushInfo>>,
        renewed: &mut HashSet<Name>,
        retry: &mut ShardRetry,
    ) -> Option<Ended> {
        match settled {
            Ok(()) => {
                retry.at = None;
                retry.backoff = self.timeouts.min_backoff;
                if let Some(hub) = self.hub.upgrade() {
                    hub.resubscribed(renewed);
                }
                renewed.clear();
                None
            }
            Err(Failed::Node(e)) => Some(Ended::Lost(format!("subscribing failed: {e}"))),
            Err(Failed::Shards(e)) => {
                tracing::debug!(target: "redis_patterns", "pub/sub: the sharded channels' connection failed ({e}); trying again");
                self.drop_shards(conns, shard_pushes, renewed);
                // The other names are subscribed: their subscribers hear so now.
                if let Some(hub) = self.hub.upgrade() {
                    let now: HashSet<Name> = renewed
                        .iter()
                        .filter(|(kind, _)| *kind != Kind::Shard)
                        .cloned()
                        .collect();
                    hub.resubscribed(&now);
                    renewed.retain(|(kind, _)| *kind == Kind::Shard);
                }
                retry.at = Some(tokio::time::Instant::now() + crate::util::jittered(retry.backoff));
                retry.backoff = retry
                    .backoff
                    .saturating_mul(2)
                    .min(self.timeouts.max_backoff);
                None
            }
        }
    }

    /// Drops the sharded channels' connection; its live names are to be renewed.
    fn drop_shards(
        &self,
        conns: &mut Conns,
        shard_pushes: &mut Option<mpsc::UnboundedReceiver<PushInfo>>,
        renewed: &mut HashSet<Name>,
    ) {
        conns.shards = None;
        *shard_pushes = None;
        conns.unconfirmed.clear();
        if let Some(hub) = self.hub.upgrade() {
            renewed.extend(hub.lost_of(Kind::Shard));
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

    /// Dials the sharded channels' connection when the hub has come to need it (on a
    /// cluster), then brings the connections to what the hub holds. A failed dial leaves the
    /// sharded names for the next try, after the channels and patterns are synced.
    async fn settle(
        &self,
        source: &dyn TrackingSource,
        conns: &mut Conns,
        shard_pushes: &mut Option<mpsc::UnboundedReceiver<PushInfo>>,
    ) -> Result<(), Failed> {
        let mut dial_failed = None;
        if conns.shards.is_none()
            && let Some(hub) = self.hub.upgrade()
            && hub.holds(Kind::Shard)
        {
            let (pushes, received) = mpsc::unbounded_channel();
            if let Some(dial) = source.shard_subscriber(pushes) {
                let limit = self.timeouts.connect.saturating_mul(2);
                match tokio::time::timeout(limit, dial).await {
                    Ok(Ok(dialled)) => {
                        conns.shards = Some(dialled);
                        *shard_pushes = Some(received);
                    }
                    Ok(Err(e)) => dial_failed = Some(e),
                    Err(_) => {
                        let why = "connecting to the cluster for sharded channels";
                        dial_failed = Some(timed_out(why, limit));
                    }
                }
            }
        }
        match dial_failed {
            None => conns.sync(&self.hub, Shards::Up).await,
            Some(e) => {
                conns.sync(&self.hub, Shards::Down).await?;
                Err(Failed::Shards(e))
            }
        }
    }
}

/// When the sharded channels' connection is dialled again, if it is to be.
struct ShardRetry {
    at: Option<tokio::time::Instant>,
    backoff: std::time::Duration,
}

/// Ready at `at`; never without one.
async fn wait_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next push of the sharded channels' connection; never, without one.
async fn next_push(received: &mut Option<mpsc::UnboundedReceiver<PushInfo>>) -> Option<PushInfo> {
    match received {
        Some(received) => received.recv().await,
        None => std::future::pending().await,
    }
}

/// Hands a pushed message to its subscribers; confirmations and other pushes are not messages.
/// Answers the sharded channel the server unsubscribed by itself (its slot moved away), if
/// that is what `push` says.
fn dispatch(hub: &Hub, push: PushInfo, conns: &mut Conns) -> Option<Bytes> {
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
            if conns.confirms_own(&channel) {
                return None;
            }
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
