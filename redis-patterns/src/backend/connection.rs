//! One shared multiplexed connection, replaced when it breaks.
//!
//! This does what redis-rs's `ConnectionManager` does, minus the per-command costs that
//! show up under load (an `ArcSwap` guard held across every await, which exhausts its fast
//! slots with many commands in flight, and cloning a shared future's output per command):
//! callers clone the current `MultiplexedConnection` out of a read lock. A command that fails
//! with an I/O error or a dropped connection discards that connection, and the next caller
//! dials a new one. Concurrent callers share one dialling attempt: if it fails they all get
//! the error at once, rather than queueing up to dial one after another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, RedisResult};

pub(crate) struct SharedConnection {
    client: redis::Client,
    config: AsyncConnectionConfig,
    /// The connection in use and its generation.
    current: RwLock<Option<(u64, MultiplexedConnection)>>,
    /// Serialises dialling; holds the last attempt's failure, if it failed.
    dialling: tokio::sync::Mutex<Option<String>>,
    /// Dialling attempts finished, readable without waiting for `dialling`.
    finished: AtomicU64,
    generation: AtomicU64,
}

impl SharedConnection {
    pub(crate) fn new(client: redis::Client, config: AsyncConnectionConfig) -> Self {
        SharedConnection {
            client,
            config,
            current: RwLock::new(None),
            dialling: tokio::sync::Mutex::new(None),
            finished: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<(u64, MultiplexedConnection)>> {
        crate::util::read(&self.current)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Option<(u64, MultiplexedConnection)>> {
        crate::util::write(&self.current)
    }

    /// The current connection and its generation, dialling one if there is none. Dialling is
    /// bounded by the configured connection timeout.
    pub(crate) async fn get(&self) -> RedisResult<(u64, MultiplexedConnection)> {
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
        let dialled = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await;
        self.finished.fetch_add(1, Ordering::Release);
        match dialled {
            Ok(conn) => {
                *last_error = None;
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                *self.write() = Some((generation, conn.clone()));
                Ok((generation, conn))
            }
            Err(e) => {
                *last_error = Some(e.to_string());
                Err(e)
            }
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

fn dial_error(message: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        format!("connecting to Redis failed: {message}"),
    ))
}
