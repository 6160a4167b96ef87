//! One shared multiplexed connection, replaced when it breaks, for every server topology: a
//! [`Connector`] dials it (one server, a cluster's nodes, the master a Sentinel group names).
//!
//! This does what redis-rs's `ConnectionManager` does, minus the per-command costs that
//! show up under load (an `ArcSwap` guard held across every await, which exhausts its fast
//! slots with many commands in flight, and cloning a shared future's output per command):
//! callers clone the current `MultiplexedConnection` out of a read lock. A command that fails
//! with an I/O error or a dropped connection discards that connection, and the next caller
//! dials a new one. Concurrent callers share one dialling attempt: if it fails they all get
//! the error at once, rather than queueing up to dial one after another.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use futures_util::future::BoxFuture;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, RedisError, RedisResult};

use super::pubsub::{PushSender, ShardSubscriber};
use super::tracking::TrackingSource;

/// Dials the connection of one topology. The connection is cloned per command, so it must be
/// a cheap handle onto shared I/O (a multiplexed or cluster connection).
pub(crate) trait Connector: Send + Sync + 'static {
    /// The connection a command runs on.
    type Conn: ConnectionLike + Clone + Send + Sync + 'static;

    /// A new connection, bounded by the configured connection timeout.
    fn connect(&self) -> impl Future<Output = RedisResult<Self::Conn>> + Send;

    /// A task that follows topology changes the connection cannot notice itself (Sentinel's
    /// `+switch-master`) and drops `conn`'s current connection on each, so that the next call
    /// dials where the topology now says. It ends once `conn` is gone. `None`: nothing to
    /// follow.
    fn follow(&self, conn: Weak<SharedConnection<Self>>) -> Option<BoxFuture<'static, ()>>
    where
        Self: Sized,
    {
        let _ = conn;
        None
    }

    /// The servers the near tier's tracking connects to (see `tracking.rs`), as RESP3
    /// clients: the server, the sentinels' primary, or every node of a cluster.
    fn tracking_nodes(&self) -> BoxFuture<'_, RedisResult<Vec<redis::Client>>>;

    /// Whether `tracked` is no longer the set of servers to track, asked of one of them
    /// (`conn`) now and then. Only a cluster's nodes change this way.
    fn nodes_changed<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
        tracked: &'a [redis::Client],
    ) -> BoxFuture<'a, RedisResult<bool>> {
        let _ = (conn, tracked);
        Box::pin(async { Ok(false) })
    }

    /// On a cluster, a connection subscribing sharded channels at their slots' primaries,
    /// pushing to `pushes` (see `pubsub/shards.rs`). `None`: the subscription connection
    /// takes them.
    fn shard_subscriber(
        &self,
        pushes: PushSender,
    ) -> Option<BoxFuture<'_, RedisResult<Box<dyn ShardSubscriber>>>> {
        let _ = pushes;
        None
    }
}

/// One server (`redis://`, `rediss://`, `unix://`).
pub(crate) struct Single {
    pub(crate) client: redis::Client,
    pub(crate) config: AsyncConnectionConfig,
}

impl Connector for Single {
    type Conn = MultiplexedConnection;

    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }

    fn tracking_nodes(&self) -> BoxFuture<'_, RedisResult<Vec<redis::Client>>> {
        let node = super::tracking::resp3(&self.client);
        Box::pin(async move { Ok(vec![node?]) })
    }
}

pub(crate) struct SharedConnection<C: Connector> {
    connector: C,
    /// The connection in use and its generation.
    current: RwLock<Option<(u64, C::Conn)>>,
    /// Serialises dialling; holds the last attempt's failure, if it failed.
    dialling: tokio::sync::Mutex<Option<String>>,
    /// Dialling attempts finished, readable without waiting for `dialling`.
    finished: AtomicU64,
    generation: AtomicU64,
    /// The connector's `follow` task was started.
    following: AtomicBool,
    /// Times the topology moved away from the connection (`discard_current`), and a wake-up
    /// for the near tier's tracking, which must move too.
    moves: AtomicU64,
    moved: tokio::sync::Notify,
}

impl<C: Connector> SharedConnection<C> {
    pub(crate) fn new(connector: C) -> Self {
        SharedConnection {
            connector,
            current: RwLock::new(None),
            dialling: tokio::sync::Mutex::new(None),
            finished: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            following: AtomicBool::new(false),
            moves: AtomicU64::new(0),
            moved: tokio::sync::Notify::new(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<(u64, C::Conn)>> {
        crate::util::read(&self.current)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Option<(u64, C::Conn)>> {
        crate::util::write(&self.current)
    }

    /// The current connection and its generation, dialling one if there is none. Dialling is
    /// bounded by the configured connection timeout; the first successful dial starts the
    /// connector's `follow` task.
    pub(crate) async fn get(self: &Arc<Self>) -> RedisResult<(u64, C::Conn)> {
        if let Some((generation, conn)) = self.read().as_ref() {
            return Ok((*generation, conn.clone()));
        }
        let finished_before = self.finished.load(Ordering::Acquire);
        let mut last_error = self.dialling.lock().await;
        if let Some((generation, conn)) = self.read().as_ref() {
            return Ok((*generation, conn.clone()));
        }
        // An attempt finished, and failed, while this caller waited: share that failure.
        if self.finished.load(Ordering::Acquire) > finished_before
            && let Some(error) = last_error.as_deref()
        {
            return Err(dial_error(error));
        }
        // Boxed: dialling is rare, and a cluster client's dial future is large; inline, it
        // would sit in every command's future (a `#[cached]` call's future, with features
        // `cluster` and `sentinel`: 4,656 bytes inline, 1,864 boxed).
        let dialled = Box::pin(self.connector.connect()).await;
        self.finished.fetch_add(1, Ordering::Release);
        match dialled {
            Ok(conn) => {
                *last_error = None;
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                *self.write() = Some((generation, conn.clone()));
                self.start_following();
                Ok((generation, conn))
            }
            Err(e) => {
                *last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// A connection of its own, outside the shared one: for commands that block it
    /// (`XREADGROUP … BLOCK`), which would stall every caller sharing a multiplexed
    /// connection. Bounded by the configured connection timeout, as [`get`](Self::get) is.
    pub(crate) async fn dial_dedicated(&self) -> RedisResult<C::Conn> {
        Box::pin(self.connector.connect()).await
    }

    fn start_following(self: &Arc<Self>) {
        if self.following.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(follow) = self.connector.follow(Arc::downgrade(self))
            && !crate::util::spawn_if_runtime(follow)
        {
            self.following.store(false, Ordering::Release);
        }
    }

    /// Drops the current connection, whatever its generation: the topology moved away from
    /// it. Commands in flight on it finish there.
    #[cfg(feature = "sentinel")]
    pub(crate) fn discard_current(&self) {
        *self.write() = None;
        self.moves.fetch_add(1, Ordering::AcqRel);
        self.moved.notify_waiters();
    }

    /// The connection of `generation`, if it is still the current one.
    pub(crate) fn current(&self, generation: u64) -> Option<C::Conn> {
        match self.read().as_ref() {
            Some((g, conn)) if *g == generation => Some(conn.clone()),
            _ => None,
        }
    }

    /// Drops the connection of `generation` (if still current) after it failed.
    pub(crate) fn discard(&self, generation: u64) {
        let mut current = self.write();
        if matches!(&*current, Some((g, _)) if *g == generation) {
            *current = None;
        }
    }
}

impl<C: Connector> TrackingSource for SharedConnection<C> {
    fn tracking_nodes(&self) -> BoxFuture<'_, RedisResult<Vec<redis::Client>>> {
        self.connector.tracking_nodes()
    }

    fn nodes_changed<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
        tracked: &'a [redis::Client],
    ) -> BoxFuture<'a, RedisResult<bool>> {
        self.connector.nodes_changed(conn, tracked)
    }

    fn topology_generation(&self) -> u64 {
        self.moves.load(Ordering::Acquire)
    }

    fn moved(&self) -> &tokio::sync::Notify {
        &self.moved
    }

    fn shard_subscriber(
        &self,
        pushes: PushSender,
    ) -> Option<BoxFuture<'_, RedisResult<Box<dyn ShardSubscriber>>>> {
        self.connector.shard_subscriber(pushes)
    }
}

fn dial_error(message: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        format!("connecting to Redis failed: {message}"),
    ))
}
