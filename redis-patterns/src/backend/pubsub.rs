//! Pub/sub subscriptions of one client: a [`Hub`] holds who listens to which channel or
//! pattern, and hands each message to their buffers.
//!
//! * **Redis** (one server, Sentinel, Cluster): a background task keeps one dedicated RESP3
//!   connection (never the command connection, which a subscription would block) subscribed to
//!   every name the hub holds. A lost connection (`CLIENT KILL`, a restart, a failover, a
//!   `PING` unanswered within the command timeout) is dialled again with the configured
//!   backoff; every name is subscribed again, and each subscriber whose subscription was live
//!   before hears [`Delivery::Resubscribed`]: what was published in between is lost
//!   (at-most-once). On a cluster the connection goes to one node: a `PUBLISH` on any node
//!   reaches every node's subscribers.
//! * **Sharded channels** (`SSUBSCRIBE`, Redis 7): on one server and behind Sentinel, on the
//!   same connection; on a cluster, on a cluster connection of their own (`shards.rs`) that
//!   subscribes each at the primary owning its slot. When a slot moves, its old owner
//!   unsubscribes its channels (an `sunsubscribe` push the hub did not ask for): the session
//!   ends and every name is subscribed again where the slots now are, with the same
//!   [`Delivery::Resubscribed`].
//! * **`mem://`**: the store hands published messages to every hub registered with it; see
//!   `memory.rs`.
//!
//! Each subscriber has a buffer of its own (a `tokio::sync::broadcast` channel of one
//! receiver): a full buffer drops the oldest message, and the subscriber hears how many it
//! missed. Delivery never waits for a slow subscriber.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::sync::{broadcast, oneshot};

use crate::util::glob::matches;

mod serve;
mod shards;
pub(crate) use self::serve::serve;
pub(crate) use self::shards::{PushSender, ShardSubscriber};

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub(crate) enum Delivery {
    /// A message published on `channel` (the full name, namespace included).
    Message { channel: Bytes, payload: Bytes },
    /// The subscription was renewed on a new connection; messages may have been lost.
    Resubscribed,
}

/// What a subscription listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// One channel (`SUBSCRIBE`).
    Channel,
    /// Every channel matching a glob-style pattern (`PSUBSCRIBE`).
    Pattern,
    /// One sharded channel (`SSUBSCRIBE`): reached by `SPUBLISH` only, never by `PUBLISH` or
    /// a pattern.
    Shard,
}

type Name = (Kind, Vec<u8>);

struct Subscriber {
    id: u64,
    buffer: broadcast::Sender<Delivery>,
    /// Completed once the server confirmed the name (at once when it already had), or
    /// refused it.
    confirmed: Option<oneshot::Sender<Result<(), Refusal>>>,
}

/// Why the server refused to subscribe a name: its subscribers are told, and the name is
/// dropped; the other names of the connection go on.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// The ACL user may not use the channel (`NOPERM`).
    Permission(String),
    /// Any other error reply: a server without the command (`SSUBSCRIBE` before Redis 7.0).
    Refused(String),
}

impl Refusal {
    /// The refusal an error reply to a subscription command is, if it is one; `None` for
    /// failures of the connection or the topology, which are retried.
    pub(crate) fn of(e: &redis::RedisError) -> Option<Refusal> {
        use redis::{ErrorKind, ServerErrorKind};
        let message = |code: &str| match e.detail() {
            Some(detail) => format!("{code} {detail}"),
            None => format!("{code} ({e})"),
        };
        match e.kind() {
            ErrorKind::Server(ServerErrorKind::NoPerm) => {
                Some(Refusal::Permission(message("NOPERM")))
            }
            ErrorKind::Server(ServerErrorKind::ResponseError) => {
                Some(Refusal::Refused(message("ERR")))
            }
            _ => None,
        }
    }
}

impl From<Refusal> for crate::error::Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Permission(why) => crate::error::Error::Permission(format!(
                "{why}; subscribing needs the channel in the user's `&` channel patterns"
            )),
            Refusal::Refused(why) => crate::error::Error::Config(format!(
                "Redis refused the subscription ({why}); sharded topics need Redis 7.0 or later"
            )),
        }
    }
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    subscribers: HashMap<Name, Vec<Subscriber>>,
    /// The names subscribed on the live connection.
    live: HashSet<Name>,
}

/// The subscriptions of one client.
#[derive(Default)]
pub(crate) struct Hub {
    registry: Mutex<Registry>,
    /// Woken when a name is added or its last subscriber leaves.
    changed: tokio::sync::Notify,
    /// Whether names are live as soon as they are registered (in process).
    immediate: bool,
}

/// A subscriber's place in a hub: leaves it when dropped.
pub(crate) struct Registration {
    hub: Weak<Hub>,
    name: Name,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let mut registry = crate::util::lock(&hub.registry);
        let Some(subscribers) = registry.subscribers.get_mut(&self.name) else {
            return;
        };
        subscribers.retain(|s| s.id != self.id);
        if subscribers.is_empty() {
            registry.subscribers.remove(&self.name);
            drop(registry);
            hub.changed.notify_one();
        }
    }
}

/// A new subscriber: its place, its buffer, and the server's confirmation.
pub(crate) struct Joined {
    pub(crate) registration: Registration,
    pub(crate) buffer: broadcast::Receiver<Delivery>,
    pub(crate) confirmed: oneshot::Receiver<Result<(), Refusal>>,
}

impl Hub {
    /// A hub whose names are live at once: the `mem://` store's.
    pub(crate) fn immediate() -> Self {
        Hub {
            immediate: true,
            ..Hub::default()
        }
    }

    /// Adds a subscriber to `name` with a buffer of `capacity` messages.
    pub(crate) fn join(self: &Arc<Self>, kind: Kind, name: &[u8], capacity: usize) -> Joined {
        let (buffer, receiver) = broadcast::channel(capacity.max(1));
        let (confirm, confirmed) = oneshot::channel();
        let name = (kind, name.to_vec());
        let mut registry = crate::util::lock(&self.registry);
        registry.next_id = registry.next_id.wrapping_add(1);
        let id = registry.next_id;
        if self.immediate {
            registry.live.insert(name.clone());
        }
        let live = registry.live.contains(&name);
        let confirm = if live {
            let _ = confirm.send(Ok(()));
            None
        } else {
            Some(confirm)
        };
        registry
            .subscribers
            .entry(name.clone())
            .or_default()
            .push(Subscriber {
                id,
                buffer,
                confirmed: confirm,
            });
        drop(registry);
        if !live {
            self.changed.notify_one();
        }
        Joined {
            registration: Registration {
                hub: Arc::downgrade(self),
                name,
                id,
            },
            buffer: receiver,
            confirmed,
        }
    }

    /// Hands a message on `channel` to the subscribers of `name`; `true` if `name` is held.
    fn deliver(&self, name: &Name, channel: &Bytes, payload: &Bytes) -> bool {
        let registry = crate::util::lock(&self.registry);
        let Some(subscribers) = registry.subscribers.get(name) else {
            return false;
        };
        for s in subscribers {
            // A subscriber that is gone is removed by its registration.
            let _ = s.buffer.send(Delivery::Message {
                channel: channel.clone(),
                payload: payload.clone(),
            });
        }
        true
    }

    /// In process: hands a message on `channel` to every subscription of this hub it matches;
    /// how many subscriptions received it, as Redis counts them: a `PUBLISH` (`sharded` false)
    /// reaches channel and pattern subscriptions, an `SPUBLISH` sharded ones.
    pub(crate) fn publish_here(&self, sharded: bool, channel: &[u8], payload: &Bytes) -> u64 {
        let names: Vec<Name> = crate::util::lock(&self.registry)
            .subscribers
            .keys()
            .filter(|(kind, name)| match kind {
                Kind::Channel => !sharded && name.as_slice() == channel,
                Kind::Pattern => !sharded && matches(name, channel),
                Kind::Shard => sharded && name.as_slice() == channel,
            })
            .cloned()
            .collect();
        let channel = Bytes::copy_from_slice(channel);
        names
            .iter()
            .filter(|name| self.deliver(name, &channel, payload))
            .count() as u64
    }

    /// The names to subscribe and unsubscribe to make the live set what the subscribers hold.
    fn wanted(&self) -> (Vec<Name>, Vec<Name>) {
        let registry = crate::util::lock(&self.registry);
        let add = registry
            .subscribers
            .keys()
            .filter(|n| !registry.live.contains(*n))
            .cloned()
            .collect();
        let remove = registry
            .live
            .iter()
            .filter(|n| !registry.subscribers.contains_key(*n))
            .cloned()
            .collect();
        (add, remove)
    }

    /// Records what the server now has and confirms the subscribers waiting for it.
    fn settled(&self, added: &[Name], removed: &[Name]) {
        let mut registry = crate::util::lock(&self.registry);
        for name in removed {
            registry.live.remove(name);
        }
        for name in added {
            registry.live.insert(name.clone());
            if let Some(subscribers) = registry.subscribers.get_mut(name) {
                for s in subscribers {
                    if let Some(confirm) = s.confirmed.take() {
                        let _ = confirm.send(Ok(()));
                    }
                }
            }
        }
    }

    /// The server refused these names: their subscribers are told why and dropped (a
    /// subscription confirmed before, whose permission was revoked since, ends).
    fn refuse(&self, refused: Vec<(Name, Refusal)>) {
        let mut registry = crate::util::lock(&self.registry);
        for (name, why) in refused {
            for s in registry.subscribers.remove(&name).into_iter().flatten() {
                if let Some(confirm) = s.confirmed {
                    let _ = confirm.send(Err(why.clone()));
                }
            }
        }
    }

    /// The connection is gone: every name must be subscribed again. Returns those that were
    /// live, whose subscribers will hear that they were resubscribed.
    fn lost(&self) -> HashSet<Name> {
        std::mem::take(&mut crate::util::lock(&self.registry).live)
    }

    fn resubscribed(&self, names: &HashSet<Name>) {
        let registry = crate::util::lock(&self.registry);
        for name in names {
            for s in registry.subscribers.get(name).into_iter().flatten() {
                let _ = s.buffer.send(Delivery::Resubscribed);
            }
        }
    }

    fn is_empty(&self) -> bool {
        crate::util::lock(&self.registry).subscribers.is_empty()
    }

    /// Whether the server unsubscribed `name` by itself: it is live, and still held.
    fn dropped_by_server(&self, name: &Name) -> bool {
        let registry = crate::util::lock(&self.registry);
        registry.live.contains(name) && registry.subscribers.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_immediate_hub_delivers_by_channel_and_pattern_and_counts_as_redis_does() {
        let hub = Arc::new(Hub::immediate());
        let mut a = hub.join(Kind::Channel, b"news", 4);
        let mut b = hub.join(Kind::Pattern, b"n*", 4);
        let _other = hub.join(Kind::Channel, b"sport", 4);
        assert!(matches!(a.confirmed.try_recv(), Ok(Ok(()))));
        assert_eq!(
            hub.publish_here(false, b"news", &Bytes::from_static(b"hi")),
            2
        );
        assert!(matches!(a.buffer.try_recv(), Ok(Delivery::Message { .. })));
        assert!(matches!(b.buffer.try_recv(), Ok(Delivery::Message { .. })));
        drop(a);
        assert_eq!(
            hub.publish_here(false, b"news", &Bytes::from_static(b"hi")),
            1
        );
    }

    #[tokio::test]
    async fn sharded_channels_are_apart_from_channels_and_patterns_as_on_redis() {
        let hub = Arc::new(Hub::immediate());
        let mut plain = hub.join(Kind::Channel, b"news", 4);
        let mut pattern = hub.join(Kind::Pattern, b"n*", 4);
        let mut shard = hub.join(Kind::Shard, b"news", 4);
        assert_eq!(
            hub.publish_here(true, b"news", &Bytes::from_static(b"s")),
            1
        );
        assert!(matches!(
            shard.buffer.try_recv(),
            Ok(Delivery::Message { .. })
        ));
        assert!(plain.buffer.try_recv().is_err() && pattern.buffer.try_recv().is_err());
        assert_eq!(
            hub.publish_here(false, b"news", &Bytes::from_static(b"p")),
            2
        );
        assert!(shard.buffer.try_recv().is_err());
        assert_eq!(
            hub.publish_here(true, b"other", &Bytes::from_static(b"s")),
            0
        );
    }

    #[tokio::test]
    async fn a_full_buffer_drops_the_oldest_and_says_how_many() {
        let hub = Arc::new(Hub::immediate());
        let mut a = hub.join(Kind::Channel, b"c", 2);
        for i in 0..5u8 {
            hub.publish_here(false, b"c", &Bytes::from(vec![i]));
        }
        assert!(matches!(
            a.buffer.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
    }
}
