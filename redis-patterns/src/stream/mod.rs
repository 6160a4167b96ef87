//! Event streams: an append-only log of typed events in a Redis stream.
//!
//! [`EventStream<T>`] appends values of `T` (as JSON, in the entry's field `d`) with a length
//! cap, so that the log never grows without bound: `XADD key MAXLEN ~ cap * d <json>`, one
//! command. Each event gets an [`EventId`] from the server's clock.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use redis_patterns::stream::EventStream;
//!
//! let client = redis_patterns::Client::new("mem://")?;
//! let orders = EventStream::<u64>::new("orders").max_len(10_000).client(client);
//! let first = orders.append(&42).await?;
//! let second = orders.append(&43).await?;
//! assert!(first < second);
//! assert_eq!(orders.len().await?, 2);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! * **Keys**: `ns:{orders}:stream`, under the stream's hash tag, so that everything of one
//!   stream lives in one slot of a cluster.
//! * **No TTL**: a stream is a log that consumers read later; it is bounded by its length cap
//!   instead ([`DEFAULT_MAX_LEN`] events unless set). The cap is approximate (`MAXLEN ~`):
//!   Redis trims whole nodes of 100 events, so a stream may hold up to 100 more than its cap
//!   (`mem://` trims exactly, one of the outcomes `~` allows).
//! * **Failures**: `append` returns the typed error within the command timeout; nothing is
//!   appended when it fails before the server (a timed-out append may have been stored).

#[doc(hidden)]
pub mod attribute;
#[cfg(feature = "test-util")]
pub(crate) mod conformance;
pub(crate) mod consumer;
mod dead;
mod id;
mod ops;
pub(crate) mod stats;
mod worker;

use std::marker::PhantomData;

use serde::Serialize;

use crate::client::Client;
use crate::error::{Error, Result};

pub use self::consumer::{
    Consumer, ConsumerHandle, DEFAULT_CONCURRENCY, DEFAULT_MAX_DELIVERIES, DEFAULT_VISIBILITY,
    Delivery, HandlerFuture, Start, run, spawn,
};
pub use self::dead::DeadLetter;
pub use self::id::{EventId, InvalidEventId};
use self::ops::{Append, Length};
pub use self::stats::ConsumerStats;

/// The length cap of a stream unless [`EventStream::max_len`] sets one.
pub const DEFAULT_MAX_LEN: u64 = 100_000;

/// A stream of events of type `T`. Cheap to clone.
pub struct EventStream<T> {
    name: String,
    client: Option<Client>,
    max_len: u64,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for EventStream<T> {
    fn clone(&self) -> Self {
        EventStream {
            name: self.name.clone(),
            client: self.client.clone(),
            max_len: self.max_len,
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("name", &self.name)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl<T> EventStream<T> {
    /// The stream `name` (the key `ns:{name}:stream`).
    ///
    /// ```
    /// let orders = redis_patterns::stream::EventStream::<String>::new("orders");
    /// assert_eq!((orders.name(), orders.max_len_value()), ("orders", 100_000));
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        EventStream {
            name: name.into(),
            client: None,
            max_len: DEFAULT_MAX_LEN,
            _type: PhantomData,
        }
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Keeps about the newest `events` (at least 1): older ones are trimmed as new ones are
    /// appended.
    pub fn max_len(mut self, events: u64) -> Self {
        self.max_len = events.max(1);
        self
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The length cap.
    pub fn max_len_value(&self) -> u64 {
        self.max_len
    }

    /// How many events the stream holds now.
    pub async fn len(&self) -> Result<u64> {
        let key = self.key();
        self.resolved_client()
            .backend()
            .exec(&Length { key: &key })
            .await
    }

    /// How many events `group`'s consumers were handed and have not acknowledged yet: those
    /// being handled, waiting for a retry, or held by a consumer that stopped (until another
    /// claims them after the visibility timeout). Fails when the group does not exist.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let client = redis_patterns::Client::new("mem://")?;
    /// let orders = redis_patterns::stream::EventStream::<u64>::new("orders").client(client);
    /// assert!(orders.pending("billing").await.is_err(), "no such group yet");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn pending(&self, group: &str) -> Result<u64> {
        let key = self.key();
        let op = self::ops::PendingCount { key: &key, group };
        self.resolved_client().backend().exec(&op).await
    }

    fn resolved_client(&self) -> &Client {
        match &self.client {
            Some(client) => client,
            None => Client::default_client(),
        }
    }

    fn key(&self) -> String {
        stream_key(self.resolved_client(), &self.name)
    }
}

/// The key of the stream `name`: `ns:{name}:stream`.
pub(crate) fn stream_key(client: &Client, name: &str) -> String {
    let mut key = crate::key::name_key(client.namespace(), name);
    key.push_str(":stream");
    key
}

/// The key of `group`'s dead letters of the stream `name`: `ns:{name}:dead:<group>`, in the
/// stream's hash tag (one slot with the stream, for the scripts that move events there).
pub(crate) fn dead_letter_key(client: &Client, name: &str, group: &str) -> String {
    let mut key = crate::key::name_key(client.namespace(), name);
    key.push_str(":dead:");
    key.push_str(group);
    key
}

impl<T: Serialize> EventStream<T> {
    /// Appends `event`, trimming the oldest beyond the cap; answers its id.
    pub async fn append(&self, event: &T) -> Result<EventId> {
        let payload = serde_json::to_vec(event)
            .map_err(|e| Error::Config(format!("the event does not serialize as JSON: {e}")))?;
        let key = self.key();
        let op = Append {
            key: &key,
            payload: &payload,
            cap: self.max_len,
        };
        self.resolved_client().backend().exec(&op).await
    }
}
