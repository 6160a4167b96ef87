//! Typed pub/sub: fan-out notifications to every process listening now.
//!
//! A [`Topic<T>`] publishes values of `T` (as JSON) on one channel; [`Topic::subscribe`] gives
//! a [`Subscription<T>`], a `Stream` of `Result<T, Notice>`. A [`Pattern<T>`] subscribes to
//! every channel matching a glob-style pattern (`orders:*`) and yields each value with its
//! topic's name ([`Message<T>`]).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use futures_util::StreamExt;
//! use redis_patterns::pubsub::Topic;
//!
//! let client = redis_patterns::Client::new("mem://")?;
//! let prices = Topic::<u64>::new("prices").client(client);
//! let mut updates = prices.subscribe().await?;
//! assert_eq!(prices.publish(&4_999).await?, 1); // one subscription received it
//! assert_eq!(updates.next().await.unwrap()?, 4_999);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! **Delivery: at most once.** Pub/sub keeps nothing: a message reaches the subscriptions that
//! exist when it is published, and no others. When every message must be handled, use a
//! stream with a consumer group or a queue instead.
//!
//! * **Dedicated connection.** A client's subscriptions share one connection of their own
//!   (RESP3), never the command connection, which a subscription would block.
//! * **Reconnects.** A lost connection (killed, a server restart, a failover, a `PING` left
//!   unanswered past the command timeout) is dialled again with the configured backoff and
//!   every subscription renewed; each then yields [`Notice::Resubscribed`] once, where messages
//!   may have been lost. The stream never ends while its topic's client lives, unless the
//!   server refuses to renew it (a permission revoked meanwhile): it then yields
//!   [`Notice::Refused`] last.
//! * **Slow subscribers.** Each subscription buffers up to [`buffer`](Topic::buffer) messages
//!   (1,024 by default). A full buffer drops its oldest message, and the subscription yields
//!   [`Notice::Lagged`] with the number lost; delivery to the others never waits.
//! * **Bad messages.** A message that does not decode as `T` yields
//!   [`Notice::Undecodable`]; the stream goes on.
//! * **Failures.** `publish` fails with a typed error within the command timeout;
//!   `subscribe` fails with [`Error::Timeout`] when the server does not
//!   confirm within the connection and command timeouts, and at once when it refuses the
//!   name: [`Error::Permission`] for a channel outside the ACL user's channel patterns,
//!   [`Error::Config`] for a sharded topic on a server before Redis 7.0. The client's other
//!   subscriptions are not disturbed.
//! * **Names.** Channels carry the client's namespace (`ns:prices`), like keys; a pattern
//!   matches within the namespace.
//! * **Cluster.** The subscription connection goes to one node; a `PUBLISH` on any node
//!   reaches the subscribers of every node, over the cluster bus.
//! * **Sharded topics.** [`Topic::sharded`] publishes with `SPUBLISH` and subscribes with
//!   `SSUBSCRIBE` (Redis 7.0 or later): on a cluster, a message then travels only within the
//!   shard owning its channel's slot, so pub/sub traffic scales with the shards instead of
//!   reaching every node. A sharded topic is a channel of its own: its messages reach its
//!   sharded subscriptions only, never a plain subscription of the same name nor a
//!   [`Pattern`] (Redis has no sharded patterns), so publishers and subscribers of a topic
//!   must agree. Its subscriptions follow slot moves: when a slot migrates, Redis
//!   unsubscribes its channels, and they are subscribed again at the new owner, yielding
//!   [`Notice::Resubscribed`] like any renewal. Off a cluster (one server, Sentinel,
//!   `mem://`), sharded topics behave the same, on the one server.

mod stats;
mod subscription;

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::pubsub::{Kind, Publish};
use crate::client::Client;
use crate::error::{Error, Result};

pub use self::stats::TopicStats;
use self::stats::{Counters, Event};
pub use self::subscription::Subscription;
use self::subscription::join;

/// Messages a subscription buffers by default before dropping its oldest.
pub const DEFAULT_BUFFER: usize = 1024;

/// Why a subscription yields an `Err`: never the end of the stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Notice {
    /// The connection to Redis was lost and the subscription renewed on a new one: messages
    /// published in between were not received.
    #[error(
        "the subscription was renewed after its connection was lost; messages published \
         meanwhile were not received"
    )]
    Resubscribed,
    /// This subscription fell behind: its buffer was full and its `missed` oldest messages
    /// were dropped. Consume faster, or give it a larger [`buffer`](Topic::buffer).
    #[error(
        "the subscription fell behind and lost its {missed} oldest messages (buffer full); \
         consume faster or raise its buffer"
    )]
    Lagged {
        /// How many messages were lost.
        missed: u64,
    },
    /// The server refused to renew the subscription after its connection was lost: the
    /// ACL user lost the channel's permission, or the server no longer has sharded pub/sub
    /// (a failover to an older server). The last item: the stream ends after it.
    #[error("the server refused to renew the subscription: {0}")]
    Refused(#[source] Error),
    /// A message on `topic` that is not the subscribed type (another publisher's format).
    #[error("a message on {topic:?} is not the subscribed type: {error}")]
    Undecodable {
        /// The topic's name (without the namespace).
        topic: String,
        /// Why it did not decode.
        error: serde_json::Error,
    },
}

/// One channel of values of `T`. Cheap to clone; clones share their stats.
pub struct Topic<T> {
    name: String,
    client: Option<Client>,
    buffer: usize,
    sharded: bool,
    counters: Arc<Counters>,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Topic {
            name: self.name.clone(),
            client: self.client.clone(),
            buffer: self.buffer,
            sharded: self.sharded,
            counters: self.counters.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("buffer", &self.buffer)
            .field("sharded", &self.sharded)
            .finish_non_exhaustive()
    }
}

impl<T> Topic<T> {
    /// The topic `name` (the channel `ns:name` under the client's namespace).
    ///
    /// ```
    /// let orders = redis_patterns::pubsub::Topic::<String>::new("orders:paid");
    /// assert_eq!(orders.name(), "orders:paid");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Topic {
            name: name.into(),
            client: None,
            buffer: DEFAULT_BUFFER,
            sharded: false,
            counters: Arc::default(),
            _type: PhantomData,
        }
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How many messages each subscription buffers before dropping its oldest (at least 1).
    ///
    /// ```
    /// let ticks = redis_patterns::pubsub::Topic::<u64>::new("ticks").buffer(16);
    /// assert_eq!(ticks.buffer_size(), 16);
    /// ```
    pub fn buffer(mut self, messages: usize) -> Self {
        self.buffer = messages.max(1);
        self
    }

    /// Makes this a sharded topic: published with `SPUBLISH`, subscribed with `SSUBSCRIBE`
    /// (Redis 7.0 or later). On a cluster its messages stay within the shard owning the
    /// channel's slot instead of reaching every node; its subscriptions follow the slot when
    /// it moves. Its messages reach sharded subscriptions only: not a plain subscription of
    /// the same name, nor a [`Pattern`]. See [the module docs](self).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use futures_util::StreamExt;
    /// use redis_patterns::pubsub::Topic;
    ///
    /// let client = redis_patterns::Client::new("mem://")?;
    /// let prices = Topic::<u64>::new("prices:eu").sharded().client(client.clone());
    /// let mut updates = prices.subscribe().await?;
    /// let plain = Topic::<u64>::new("prices:eu").client(client);
    /// assert_eq!(plain.publish(&1).await?, 0); // not a sharded publish: nobody hears it
    /// assert_eq!(prices.publish(&4_999).await?, 1);
    /// assert_eq!(updates.next().await.unwrap()?, 4_999);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn sharded(mut self) -> Self {
        self.sharded = true;
        self
    }

    /// Whether this is a sharded topic ([`sharded`](Topic::sharded)).
    ///
    /// ```
    /// use redis_patterns::pubsub::Topic;
    /// assert!(Topic::<u64>::new("prices:eu").sharded().is_sharded());
    /// assert!(!Topic::<u64>::new("prices:eu").is_sharded());
    /// ```
    pub fn is_sharded(&self) -> bool {
        self.sharded
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many messages each subscription buffers.
    pub fn buffer_size(&self) -> usize {
        self.buffer
    }

    /// Activity of this topic, its clones and their subscriptions.
    pub fn stats(&self) -> TopicStats {
        self.counters.snapshot()
    }
}

impl<T: Serialize> Topic<T> {
    /// Publishes `message` to the subscriptions that exist now; answers how many received it
    /// (on a cluster, those of the node that took the `PUBLISH`; for a sharded topic, those
    /// on its slot's primary, which took the `SPUBLISH`: a subscription left on the shard's
    /// replica after a failover receives it, uncounted).
    pub async fn publish(&self, message: &T) -> Result<u64> {
        let payload = serde_json::to_vec(message)
            .map_err(|e| Error::Config(format!("the message does not serialize as JSON: {e}")))?;
        let client = resolved(&self.client);
        let channel = channel(client, &self.name);
        let published = client
            .backend()
            .publish(
                if self.sharded {
                    Publish::Sharded
                } else {
                    Publish::Plain
                },
                &channel,
                &payload,
            )
            .await;
        self.counters.count(match published {
            Ok(_) => Event::Published,
            Err(_) => Event::BackendError,
        });
        published
    }
}

impl<T: DeserializeOwned + Send + 'static> Topic<T> {
    /// Subscribes: messages published once this returns are received. The stream ends only
    /// when dropped.
    pub async fn subscribe(&self) -> Result<Subscription<T>> {
        let client = resolved(&self.client).clone();
        let channel = channel(&client, &self.name);
        let topic = self.name.clone();
        let kind = if self.sharded {
            Kind::Shard
        } else {
            Kind::Channel
        };
        join(
            client,
            kind,
            &channel,
            self.buffer,
            self.counters.clone(),
            Box::new(move |_, payload| {
                serde_json::from_slice(payload).map_err(|error| Notice::Undecodable {
                    topic: topic.clone(),
                    error,
                })
            }),
        )
        .await
    }
}

/// A value received on a [`Pattern`] subscription, with the topic it was published on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Message<T> {
    /// The topic's name (without the namespace).
    pub topic: String,
    /// The value published.
    pub value: T,
}

/// Every topic whose name matches a glob-style pattern: `*` any run, `?` one character,
/// `[abc]`, `[^abc]`, `[a-z]` one of a set, `\x` the character `x` (Redis's `PSUBSCRIBE`).
/// Messages of [sharded](Topic::sharded) topics never reach a pattern.
pub struct Pattern<T> {
    pattern: String,
    client: Option<Client>,
    buffer: usize,
    counters: Arc<Counters>,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for Pattern<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern")
            .field("pattern", &self.pattern)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> Pattern<T> {
    /// The topics matching `pattern`, within the client's namespace.
    ///
    /// ```
    /// let all = redis_patterns::pubsub::Pattern::<String>::new("orders:*");
    /// assert_eq!(all.pattern(), "orders:*");
    /// ```
    pub fn new(pattern: impl Into<String>) -> Self {
        Pattern {
            pattern: pattern.into(),
            client: None,
            buffer: DEFAULT_BUFFER,
            counters: Arc::default(),
            _type: PhantomData,
        }
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How many messages each subscription buffers before dropping its oldest (at least 1).
    pub fn buffer(mut self, messages: usize) -> Self {
        self.buffer = messages.max(1);
        self
    }

    /// The pattern, as given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Subscribes to every matching topic: messages published once this returns are
    /// received, each with its topic's name.
    pub async fn subscribe(&self) -> Result<Subscription<Message<T>>> {
        let client = resolved(&self.client).clone();
        let prefix = match client.namespace() {
            Some(ns) => {
                let mut escaped = escape(ns);
                escaped.push(b':');
                escaped
            }
            None => Vec::new(),
        };
        let skip = client.namespace().map_or(0, |ns| ns.len() + 1);
        let mut pattern = prefix;
        pattern.extend_from_slice(self.pattern.as_bytes());
        join(
            client,
            Kind::Pattern,
            &pattern,
            self.buffer,
            self.counters.clone(),
            Box::new(move |channel, payload| {
                let topic =
                    String::from_utf8_lossy(channel.get(skip..).unwrap_or_default()).into_owned();
                match serde_json::from_slice(payload) {
                    Ok(value) => Ok(Message { topic, value }),
                    Err(error) => Err(Notice::Undecodable { topic, error }),
                }
            }),
        )
        .await
    }

    /// Activity of this pattern, its clones and their subscriptions.
    pub fn stats(&self) -> TopicStats {
        self.counters.snapshot()
    }
}

fn resolved(client: &Option<Client>) -> &Client {
    match client {
        Some(client) => client,
        None => Client::default_client(),
    }
}

/// The channel of topic `name`: `ns:name`, or `name` without a namespace.
fn channel(client: &Client, name: &str) -> Bytes {
    match client.namespace() {
        Some(ns) => Bytes::from(format!("{ns}:{name}")),
        None => Bytes::copy_from_slice(name.as_bytes()),
    }
}

/// `text` matching itself only in a glob-style pattern.
fn escape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for b in text.bytes() {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}
