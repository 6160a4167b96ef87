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
//!   unsubscribes its channels (an `sunsubscribe` push the hub did not ask for): that
//!   connection is replaced and every sharded name subscribed again where the slots now are,
//!   with the same [`Delivery::Resubscribed`]; channels and patterns are not disturbed.
//! * **Refusals**: a name the server refuses (`NOPERM`, an unknown command) fails the
//!   subscribers waiting for it; those it had been confirmed for hear [`Delivery::Refused`]
//!   last. The connection and the other names go on.
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

mod refusal;
mod serve;
mod shards;
mod sync;
pub(crate) use self::refusal::Refusal;
pub(crate) use self::serve::serve;
pub(crate) use self::shards::{PushSender, ShardSubscriber};

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub(crate) enum Delivery {
    /// A message published on `channel` (the full name, namespace included).
    Message { channel: Bytes, payload: Bytes },
    /// The subscription was renewed on a new connection; messages may have been lost.
    Resubscribed,
    /// The server refused to renew the subscription (a permission revoked since): the last
    /// delivery before the buffer closes.
    Refused(Refusal),
}

/// How a message is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// `PUBLISH`: to the subscriptions of the channel and of the patterns matching it.
    Plain,
    /// `SPUBLISH`: to the subscriptions of the sharded channel.
    Sharded,
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
    /// how many subscriptions received it, as Redis counts them: a `PUBLISH` reaches channel
    /// and pattern subscriptions, an `SPUBLISH` sharded ones.
    pub(crate) fn publish_here(&self, how: Publish, channel: &[u8], payload: &Bytes) -> u64 {
        let sharded = how == Publish::Sharded;
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
    /// Those to unsubscribe leave the live set at once: a subscriber joining one of them
    /// meanwhile waits for it to be subscribed again.
    fn wanted(&self) -> (Vec<Name>, Vec<Name>) {
        let mut registry = crate::util::lock(&self.registry);
        let add = registry
            .subscribers
            .keys()
            .filter(|n| !registry.live.contains(*n))
            .cloned()
            .collect();
        let remove: Vec<Name> = registry
            .live
            .iter()
            .filter(|n| !registry.subscribers.contains_key(*n))
            .cloned()
            .collect();
        for name in &remove {
            registry.live.remove(name);
        }
        (add, remove)
    }

    /// Whether any subscriber listens to a name of `kind`.
    fn holds(&self, kind: Kind) -> bool {
        let registry = crate::util::lock(&self.registry);
        registry.subscribers.keys().any(|(k, _)| *k == kind)
    }

    /// Records the names the server now has and confirms the subscribers waiting for them.
    fn settled(&self, added: &[Name]) {
        let mut registry = crate::util::lock(&self.registry);
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

    /// The server refused these names: their subscribers are told why and dropped. One
    /// waiting for its first confirmation fails; one confirmed before (its permission was
    /// revoked since) hears [`Delivery::Refused`] last.
    fn refuse(&self, refused: Vec<(Name, Refusal)>) {
        let mut registry = crate::util::lock(&self.registry);
        for (name, why) in refused {
            for s in registry.subscribers.remove(&name).into_iter().flatten() {
                match s.confirmed {
                    Some(confirm) => {
                        let _ = confirm.send(Err(why.clone()));
                    }
                    None => {
                        let _ = s.buffer.send(Delivery::Refused(why.clone()));
                    }
                }
            }
        }
    }

    /// The connection is gone: every name must be subscribed again. Returns those that were
    /// live, whose subscribers will hear that they were resubscribed.
    fn lost(&self) -> HashSet<Name> {
        std::mem::take(&mut crate::util::lock(&self.registry).live)
    }

    /// Like [`lost`](Hub::lost), for the names of `kind` only (their connection is gone, the
    /// others' is not).
    fn lost_of(&self, kind: Kind) -> HashSet<Name> {
        let mut registry = crate::util::lock(&self.registry);
        let lost: HashSet<Name> = registry
            .live
            .iter()
            .filter(|(k, _)| *k == kind)
            .cloned()
            .collect();
        registry.live.retain(|(k, _)| *k != kind);
        lost
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
            hub.publish_here(Publish::Plain, b"news", &Bytes::from_static(b"hi")),
            2
        );
        assert!(matches!(a.buffer.try_recv(), Ok(Delivery::Message { .. })));
        assert!(matches!(b.buffer.try_recv(), Ok(Delivery::Message { .. })));
        drop(a);
        assert_eq!(
            hub.publish_here(Publish::Plain, b"news", &Bytes::from_static(b"hi")),
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
            hub.publish_here(Publish::Sharded, b"news", &Bytes::from_static(b"s")),
            1
        );
        assert!(matches!(
            shard.buffer.try_recv(),
            Ok(Delivery::Message { .. })
        ));
        assert!(plain.buffer.try_recv().is_err() && pattern.buffer.try_recv().is_err());
        assert_eq!(
            hub.publish_here(Publish::Plain, b"news", &Bytes::from_static(b"p")),
            2
        );
        assert!(shard.buffer.try_recv().is_err());
        assert_eq!(
            hub.publish_here(Publish::Sharded, b"other", &Bytes::from_static(b"s")),
            0
        );
    }

    /// A subscriber joining a name while the connection unsubscribes it waits for it to be
    /// subscribed again, and the task hears of it.
    #[tokio::test]
    async fn a_name_joined_again_while_it_is_unsubscribed_is_subscribed_again() {
        let hub = Arc::new(Hub::default());
        let first = hub.join(Kind::Shard, b"c", 4);
        let (add, remove) = hub.wanted();
        assert_eq!((add.len(), remove.len()), (1, 0));
        hub.settled(&add);
        drop(first);
        let (add, remove) = hub.wanted();
        assert_eq!((add.len(), remove.len()), (0, 1), "being unsubscribed");
        let mut again = hub.join(Kind::Shard, b"c", 4);
        assert!(again.confirmed.try_recv().is_err(), "not confirmed yet");
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(1), hub.changed.notified())
                .await
                .is_ok(),
            "the task is woken"
        );
        let (add, _) = hub.wanted();
        assert_eq!(add, vec![(Kind::Shard, b"c".to_vec())]);
        hub.settled(&add);
        assert!(matches!(again.confirmed.try_recv(), Ok(Ok(()))));
    }

    /// A refused name: a subscriber waiting for it fails, one confirmed before hears why last.
    #[tokio::test]
    async fn a_refused_name_fails_its_waiting_subscribers_and_tells_the_others() {
        let hub = Arc::new(Hub::default());
        let mut confirmed = hub.join(Kind::Channel, b"c", 4);
        let (add, _) = hub.wanted();
        hub.settled(&add);
        assert!(matches!(confirmed.confirmed.try_recv(), Ok(Ok(()))));
        hub.lost();
        let mut waiting = hub.join(Kind::Channel, b"c", 4);
        let refusal = Refusal {
            denial: refusal::Denial::Permission,
            kind: Kind::Channel,
            message: "NOPERM no channel".into(),
        };
        hub.refuse(vec![((Kind::Channel, b"c".to_vec()), refusal)]);
        assert!(matches!(waiting.confirmed.try_recv(), Ok(Err(_))));
        assert!(matches!(
            confirmed.buffer.try_recv(),
            Ok(Delivery::Refused(_))
        ));
        assert!(matches!(
            confirmed.buffer.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
        assert!(hub.is_empty());
    }

    #[tokio::test]
    async fn a_full_buffer_drops_the_oldest_and_says_how_many() {
        let hub = Arc::new(Hub::immediate());
        let mut a = hub.join(Kind::Channel, b"c", 2);
        for i in 0..5u8 {
            hub.publish_here(Publish::Plain, b"c", &Bytes::from(vec![i]));
        }
        assert!(matches!(
            a.buffer.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
    }
}
