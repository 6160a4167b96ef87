//! Server-assisted invalidation for the near tier: whoever changes a tracked key — this
//! process, another one, `redis-cli`, an expiry, an eviction, a `FLUSHDB` — the change reaches
//! an [`Invalidations`] sink within moments.
//!
//! * **Redis** (one server, Sentinel, Cluster): a dedicated RESP3 connection per tracked server
//!   with `CLIENT TRACKING ON BCAST PREFIX …`, one prefix per near-cached key template. The
//!   server pushes `invalidate` messages for every change of a key under those prefixes; they
//!   are applied inside the connection's reader, before any later reply on it is delivered.
//!   A `PING` every [`HEARTBEAT`] proves the path alive: its answer renews the sink's lease
//!   (values may be served for [`LEASE`] after the `PING` was sent, since every invalidation
//!   sent before the server answered has been applied). A lost connection, a failed heartbeat
//!   or a moved topology disarms the sink at once; the tracker then dials again with backoff
//!   and re-arms it. A server that refuses tracking (Redis before 6, a proxy without
//!   `CLIENT`) leaves the sink disarmed: values are then never served from process memory.
//! * **`mem://`**: the store calls its registered sinks under its shard lock on every write;
//!   see `memory.rs`.
//!
//! Replicas broadcast invalidations for the writes they replicate, so a cluster is tracked on
//! every node, primaries and replicas alike: a promoted replica was tracked before its
//! promotion, and a failover loses nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, try_join_all};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, RedisResult, Value};

pub(crate) use super::coverage::Coverage;

/// How often each tracking connection proves it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(250);

/// How long after a heartbeat was sent values may be served without a newer one: the most a
/// near value can lag behind the server if its invalidations silently stop arriving.
pub(crate) const LEASE: Duration = Duration::from_secs(1);

/// Every this many heartbeats, a tracker checks whether the topology moved (a cluster's
/// nodes).
const TOPOLOGY_EVERY: u32 = 4;

/// What the server's invalidations drive: the near tier.
pub(crate) trait Invalidations: Send + Sync + 'static {
    /// `key` changed, expired or was evicted.
    fn invalidate(&self, key: &[u8]);
    /// Any key may have changed (`FLUSHDB`, `FLUSHALL`).
    fn invalidate_all(&self);
    /// Changes of keys under `prefixes` are delivered from now on; values may be served until
    /// `lease` (`None`: no lease, in process).
    fn armed(&self, prefixes: &[String], lease: Option<Instant>);
    /// Changes of keys under `prefix` are delivered from now on, too.
    fn covering(&self, prefix: &str);
    /// A heartbeat came back: values may be served until `lease`.
    fn renew(&self, lease: Instant);
    /// Changes may go unseen from now on: serve nothing until armed again.
    fn disarmed(&self);
}

/// The prefixes a sink wants tracked, and a wake-up for the tracker when one is added.
#[derive(Default)]
pub(crate) struct Wanted {
    prefixes: Mutex<Vec<String>>,
    added: tokio::sync::Notify,
}

impl Wanted {
    /// Adds `prefix`; `true` if it is new.
    fn add(&self, prefix: &str) -> bool {
        let mut prefixes = crate::util::lock(&self.prefixes);
        if prefixes.iter().any(|p| p == prefix) {
            return false;
        }
        prefixes.push(prefix.to_owned());
        drop(prefixes);
        self.added.notify_one();
        true
    }

    fn snapshot(&self) -> Vec<String> {
        crate::util::lock(&self.prefixes).clone()
    }
}

/// A client's handle on its tracking. Dropping it ends the tracking (the task notices within
/// a heartbeat and closes its connections).
pub(crate) enum Tracker {
    /// In process: prefixes are covered as soon as they are asked for.
    Immediate(Weak<dyn Invalidations>),
    /// A background task tracks on the servers.
    Servers(Arc<Wanted>),
    /// Nothing can be tracked (an unusable configuration, no runtime to run the task).
    Unavailable,
}

impl Tracker {
    /// Asks for changes of keys under `prefix`. The sink hears of it through
    /// [`Invalidations::covering`] once the server delivers them (at once in process).
    pub(crate) fn watch(&self, prefix: &str) {
        match self {
            Tracker::Immediate(sink) => {
                if let Some(sink) = sink.upgrade() {
                    sink.covering(prefix);
                }
            }
            Tracker::Servers(wanted) => {
                wanted.add(prefix);
            }
            Tracker::Unavailable => {}
        }
    }
}

/// Where a tracker connects: the servers of a topology.
pub(crate) trait TrackingSource: Send + Sync + 'static {
    /// The servers to track now, as RESP3 clients with the configured credentials.
    fn tracking_nodes(&self) -> BoxFuture<'_, RedisResult<Vec<redis::Client>>>;
    /// Whether `tracked` is no longer the set of servers to track, asked of one of them.
    fn nodes_changed<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
        tracked: &'a [redis::Client],
    ) -> BoxFuture<'a, RedisResult<bool>>;
    /// Changes whenever the topology moved in a way tracking connections cannot notice
    /// themselves (Sentinel's `+switch-master`).
    fn topology_generation(&self) -> u64;
    /// Woken (`notify_waiters`) when the topology moves that way.
    fn moved(&self) -> &tokio::sync::Notify;
    /// On a cluster, a connection for sharded pub/sub channels (`Connector::shard_subscriber`).
    fn shard_subscriber(
        &self,
        pushes: crate::backend::pubsub::PushSender,
    ) -> Option<BoxFuture<'_, RedisResult<Box<dyn crate::backend::pubsub::ShardSubscriber>>>>;
}

/// `client`'s connection settings, speaking RESP3 (the protocol of push messages).
pub(crate) fn resp3(client: &redis::Client) -> RedisResult<redis::Client> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(settings))
}

/// Timeouts of the tracking connections: the configured ones.
#[derive(Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) command: Duration,
    pub(crate) min_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

/// Starts tracking on `source`'s servers for `sink`.
pub(crate) fn track(
    source: Weak<dyn TrackingSource>,
    sink: Weak<dyn Invalidations>,
    timeouts: Timeouts,
) -> Tracker {
    let wanted = Arc::new(Wanted::default());
    let task = Task {
        source,
        sink,
        wanted: Arc::downgrade(&wanted),
        timeouts,
        session: Arc::new(AtomicU64::new(0)),
    };
    if crate::util::spawn_if_runtime(task.run()) {
        Tracker::Servers(wanted)
    } else {
        Tracker::Unavailable
    }
}

struct Task {
    source: Weak<dyn TrackingSource>,
    sink: Weak<dyn Invalidations>,
    wanted: Weak<Wanted>,
    timeouts: Timeouts,
    /// The session running now: a connection of an earlier one that closes late must not
    /// disarm the tier this one armed.
    session: Arc<AtomicU64>,
}

/// Why a tracking session ended.
enum Ended {
    /// The client is gone.
    Dropped,
    /// Tracking was lost (or could not be established); the sink was disarmed.
    Lost(String),
    /// The server answered that it does not do tracking (Redis before 6 has neither `HELLO 3`
    /// nor `CLIENT TRACKING`; proxies and ACLs may refuse `CLIENT`): asked again rarely.
    Refused(String),
}

/// How long to wait before asking a server that refused tracking again.
const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// `Refused` when the server answered with an error, `Lost` when the path failed.
fn failed(what: &str, e: &redis::RedisError) -> Ended {
    let path =
        e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal();
    if path {
        Ended::Lost(format!("{what} failed: {e}"))
    } else {
        Ended::Refused(format!("{what} failed: {e}"))
    }
}

impl Task {
    async fn run(self) {
        let mut backoff = self.timeouts.min_backoff;
        // Whether the current outage was reported already (at `warn`; then at `debug`).
        let mut warned = false;
        loop {
            let Some(wanted) = self.wanted.upgrade() else {
                return;
            };
            if wanted.snapshot().is_empty() {
                // Nothing to track yet; look again when a prefix is added (or the client is
                // dropped, noticed within a heartbeat).
                let _ = tokio::time::timeout(HEARTBEAT, wanted.added.notified()).await;
                continue;
            }
            drop(wanted);
            let started = Instant::now();
            let ended = self.session().await;
            if let Some(sink) = self.sink.upgrade() {
                sink.disarmed();
            }
            // A session that ran a while was healthy: this is a new outage.
            if started.elapsed() > self.timeouts.max_backoff.saturating_mul(4) {
                backoff = self.timeouts.min_backoff;
                warned = false;
            }
            let why = match ended {
                Ended::Dropped => return,
                Ended::Lost(why) => why,
                Ended::Refused(why) => {
                    if !warned {
                        warned = true;
                        tracing::warn!(target: "redis_patterns", "near cache: the server refuses tracking ({why}); near-cached functions read Redis on every call; asking again every {REFUSED_RETRY:?}");
                    }
                    tokio::time::sleep(REFUSED_RETRY).await;
                    continue;
                }
            };
            if warned {
                tracing::debug!(target: "redis_patterns", "near cache: tracking still down ({why})");
            } else {
                warned = true;
                tracing::warn!(target: "redis_patterns", "near cache: tracking lost ({why}); values are read from Redis until it is back");
            }
            tokio::time::sleep(crate::util::jittered(backoff)).await;
            backoff = backoff.saturating_mul(2).min(self.timeouts.max_backoff);
        }
    }

    /// Connects to every node, enables tracking, arms the sink, then keeps the connections
    /// honest until one fails or the topology moves.
    async fn session(&self) -> Ended {
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
            // Mid-failover, the sentinels or the cluster may not name a node yet: not a refusal.
            Ok(Err(e)) => return Ended::Lost(format!("finding the servers to track failed: {e}")),
            Err(_) => return Ended::Lost("finding the servers to track timed out".into()),
        };
        let lost = Arc::new(tokio::sync::Notify::new());
        let session = self.session.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        let mut conns = Vec::with_capacity(nodes.len());
        for node in &nodes {
            match self.connect(node, &lost, session).await {
                Ok(conn) => conns.push(conn),
                Err(e) => return failed("connecting", &e),
            }
        }
        let Some(wanted) = self.wanted.upgrade() else {
            return Ended::Dropped;
        };
        let mut covered = wanted.snapshot();
        let enabled = Instant::now();
        if let Err(e) = enable(&mut conns, &covered).await {
            return failed("CLIENT TRACKING", &e);
        }
        let Some(sink) = self.sink.upgrade() else {
            return Ended::Dropped;
        };
        sink.armed(&covered, Some(enabled + LEASE));
        drop(sink);
        let mut beats = 0u32;
        loop {
            tokio::select! {
                () = wanted.added.notified() => {
                    let added: Vec<String> = wanted
                        .snapshot()
                        .into_iter()
                        .filter(|p| !covered.contains(p))
                        .collect();
                    if let Err(e) = enable(&mut conns, &added).await {
                        return failed("CLIENT TRACKING", &e);
                    }
                    let Some(sink) = self.sink.upgrade() else { return Ended::Dropped };
                    for prefix in added {
                        sink.covering(&prefix);
                        covered.push(prefix);
                    }
                }
                () = lost.notified() => return Ended::Lost("the connection closed".into()),
                // A move between two waits is caught by the generation check below.
                () = source.moved().notified() => return Ended::Lost("the topology changed".into()),
                () = tokio::time::sleep(HEARTBEAT) => {
                    // The tracker was dropped with its client: only this task holds `wanted`.
                    if Arc::strong_count(&wanted) == 1 {
                        return Ended::Dropped;
                    }
                    let sent = Instant::now();
                    if let Err(e) = heartbeat(&mut conns).await {
                        return Ended::Lost(format!("heartbeat failed: {e}"));
                    }
                    if source.topology_generation() != generation {
                        return Ended::Lost("the topology changed".into());
                    }
                    beats = beats.wrapping_add(1);
                    if beats.is_multiple_of(TOPOLOGY_EVERY)
                        && let Some(conn) = conns.first_mut()
                    {
                        match source.nodes_changed(conn, &nodes).await {
                            Ok(false) => {}
                            Ok(true) => return Ended::Lost("the cluster's nodes changed".into()),
                            Err(e) => return Ended::Lost(format!("reading the topology failed: {e}")),
                        }
                    }
                    let Some(sink) = self.sink.upgrade() else { return Ended::Dropped };
                    sink.renew(sent + LEASE);
                }
            }
        }
    }

    /// A RESP3 connection to `node` whose push messages go straight to the sink.
    async fn connect(
        &self,
        node: &redis::Client,
        lost: &Arc<tokio::sync::Notify>,
        session: u64,
    ) -> RedisResult<MultiplexedConnection> {
        let (sink, lost, current) = (
            self.sink.clone(),
            Arc::clone(lost),
            Arc::clone(&self.session),
        );
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.command))
            .set_push_sender(move |push: PushInfo| {
                let live = current.load(Ordering::Acquire) == session;
                deliver(push, &sink, &lost, live);
                Ok::<(), std::convert::Infallible>(())
            });
        node.get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// Applies one push message: invalidations, and the end of a connection of the `live` session.
fn deliver(push: PushInfo, sink: &Weak<dyn Invalidations>, lost: &tokio::sync::Notify, live: bool) {
    let Some(sink) = sink.upgrade() else { return };
    match push.kind {
        PushKind::Invalidate => match push.data.first() {
            Some(Value::Array(keys)) => {
                for key in keys {
                    if let Value::BulkString(key) = key {
                        sink.invalidate(key);
                    }
                }
            }
            // `FLUSHDB`/`FLUSHALL`: every key.
            _ => sink.invalidate_all(),
        },
        PushKind::Disconnection if live => {
            sink.disarmed();
            lost.notify_one();
        }
        _ => {}
    }
}

/// `CLIENT TRACKING ON BCAST PREFIX …` for `prefixes` on every connection.
async fn enable(conns: &mut [MultiplexedConnection], prefixes: &[String]) -> RedisResult<()> {
    if prefixes.is_empty() {
        return Ok(());
    }
    let mut command = redis::cmd("CLIENT");
    command.arg("TRACKING").arg("ON").arg("BCAST");
    for prefix in prefixes {
        command.arg("PREFIX").arg(prefix);
    }
    try_join_all(conns.iter_mut().map(|conn| command.query_async::<()>(conn))).await?;
    Ok(())
}

/// `PING` on every connection.
async fn heartbeat(conns: &mut [MultiplexedConnection]) -> RedisResult<()> {
    let ping = redis::cmd("PING");
    try_join_all(conns.iter_mut().map(|conn| ping.query_async::<()>(conn))).await?;
    Ok(())
}

/// The prefix tracking watches for `key`: everything up to its first placeholder value (the
/// `#`), or the whole key for a template without placeholders. Literal template text and
/// namespaces never contain `#`, so the prefixes of two templates are equal or disjoint, as
/// `CLIENT TRACKING` requires of one connection's prefixes.
pub(crate) fn prefix_of(key: &str) -> &str {
    match key.find('#') {
        Some(at) => &key[..=at],
        None => key,
    }
}
