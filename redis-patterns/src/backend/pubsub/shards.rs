//! Sharded channels on a cluster: a channel lives on the primary owning its slot, so their
//! subscriptions go over a cluster connection (the redis crate's, with a push sender) that
//! sends each `SSUBSCRIBE` there. Off a cluster, the hub's one connection takes them.

use futures_util::future::BoxFuture;
use redis::{PushInfo, RedisResult};

/// Where a subscription connection hands the messages and notices the server pushes.
pub(crate) type PushSender = tokio::sync::mpsc::UnboundedSender<PushInfo>;

/// A connection subscribing sharded channels at the primaries owning their slots; a session
/// of the hub's task holds one while it has sharded channels.
pub(crate) trait ShardSubscriber: Send {
    /// `SSUBSCRIBE` each of `names`, once confirmed.
    fn subscribe<'a>(&'a mut self, names: &'a [&'a [u8]]) -> BoxFuture<'a, RedisResult<()>>;

    /// `SUNSUBSCRIBE` each of `names`, once confirmed.
    fn unsubscribe<'a>(&'a mut self, names: &'a [&'a [u8]]) -> BoxFuture<'a, RedisResult<()>>;

    /// A `PING` to every primary: an error when one of them does not answer.
    fn ping(&mut self) -> BoxFuture<'_, RedisResult<()>>;
}
