//! Pub/sub on a Redis topology: `PUBLISH` and `SPUBLISH` on the command connection (on a
//! cluster, `SPUBLISH` goes to its channel's slot), subscriptions on the dedicated
//! connection of the client's [`Hub`] (see `backend/pubsub.rs`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Operation, RedisBackend};
use crate::backend::connection::{Connector, SharedConnection};
use crate::backend::pubsub::{self, Hub};
use crate::backend::tracking::TrackingSource;
use crate::error::{Error, Result};

impl<C: Connector> RedisBackend<C> {
    /// `PUBLISH channel payload` (or `SPUBLISH`): how many subscriptions received it.
    pub(crate) async fn publish(
        &self,
        how: pubsub::Publish,
        channel: &[u8],
        payload: &[u8],
    ) -> Result<u64> {
        let command = match how {
            pubsub::Publish::Plain => "PUBLISH",
            pubsub::Publish::Sharded => "SPUBLISH",
        };
        self.run(Operation::Command(command), |mut c| async move {
            redis::cmd(command)
                .arg(channel)
                .arg(payload)
                .query_async(&mut c)
                .await
        })
        .await
    }

    /// The client's subscriptions, their task started with the first.
    pub(crate) fn hub(&self) -> Result<Arc<Hub>> {
        let inner = &self.inner;
        if let Some(hub) = inner.pubsub.get() {
            return Ok(hub.clone());
        }
        let hub = Arc::new(Hub::default());
        if inner.pubsub.set(hub.clone()).is_err() {
            // Another caller set it first.
            return inner
                .pubsub
                .get()
                .cloned()
                .ok_or_else(|| Error::Config("pub/sub could not start".into()));
        }
        let source: Weak<SharedConnection<C>> = Arc::downgrade(&inner.conn);
        if !pubsub::serve(
            source as Weak<dyn TrackingSource>,
            Arc::downgrade(&hub),
            inner.tracking,
        ) {
            return Err(Error::Config(
                "subscriptions need a Tokio runtime to run their connection".into(),
            ));
        }
        Ok(hub)
    }

    /// How long a new subscription waits for the server's confirmation: dialling (which may
    /// first ask a Sentinel or a cluster for the server, and on a cluster dial its sharded
    /// channels' connection) and the `SUBSCRIBE`.
    pub(crate) fn subscribe_timeout(&self) -> Duration {
        let t = &self.inner.tracking;
        // One more command timeout of slack: a heartbeat or a sync may be under way.
        t.connect
            .saturating_mul(5)
            .saturating_add(t.command.saturating_mul(2))
    }
}
