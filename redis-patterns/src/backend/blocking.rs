//! Operations that wait on the server for something to arrive (`XREADGROUP … BLOCK`): run on
//! a [`Blocking`] handle, which keeps a connection of its own per caller on Redis (see
//! `redis/blocking.rs`), and in memory retries the twin whenever the state it waits on
//! changes, until it answers or the wait runs out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Backend, CommandOp, Txn};
use crate::error::Result;

/// A [`CommandOp`] whose commands may wait on the server (for at most
/// [`Backend::longest_block`]).
pub(crate) trait BlockingOp: CommandOp {
    /// Whether `output` ends the wait; an empty answer is tried again in memory.
    fn ready(&self, output: &Self::Output) -> bool;

    /// In memory: what changes when a later try may answer otherwise (an append to the
    /// stream). `None`: nothing will; the answer stands.
    fn waker(&self, txn: &mut Txn<'_>) -> Option<watch::Receiver<()>>;

    /// How long the commands wait for something to arrive.
    fn block(&self) -> Duration;
}

/// One caller's handle for blocking operations: its own connection on Redis (dialled on first
/// use, again after a failure), its own waits in memory. Not shared: each consumer loop owns
/// one.
pub(crate) struct Blocking {
    backend: Arc<Backend>,
    /// One server's or a Sentinel group primary's connection.
    single: Option<redis::aio::MultiplexedConnection>,
    #[cfg(feature = "cluster")]
    cluster: Option<redis::cluster_async::ClusterConnection>,
}

impl Blocking {
    pub(crate) fn new(backend: Arc<Backend>) -> Self {
        Blocking {
            backend,
            single: None,
            #[cfg(feature = "cluster")]
            cluster: None,
        }
    }

    /// Runs `op`, which may wait for up to its [`block`](BlockingOp::block).
    pub(crate) async fn exec<O: BlockingOp>(&mut self, op: &O) -> Result<O::Output> {
        match &*self.backend {
            Backend::Redis(r) => r.exec_on(&mut self.single, op).await,
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.exec_on(&mut self.cluster, op).await,
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.exec_on(&mut self.single, op).await,
            Backend::Memory(m) => {
                let deadline = tokio::time::Instant::now() + op.block();
                loop {
                    let (output, waker) = m.atomically(op.key(), |txn| {
                        let output = op.in_memory(txn)?;
                        let waker = if op.ready(&output) {
                            None
                        } else {
                            op.waker(txn)
                        };
                        Ok::<_, crate::Error>((output, waker))
                    })?;
                    let Some(mut waker) = waker else {
                        return Ok(output);
                    };
                    if tokio::time::timeout_at(deadline, waker.changed())
                        .await
                        .is_err()
                    {
                        return Ok(output);
                    }
                }
            }
            Backend::Unusable(why) => Err(Backend::unusable(why)),
        }
    }
}

impl Backend {
    /// The longest a blocking operation should wait on the server: on Redis half the command
    /// timeout (its empty answer must arrive within the connection's response timeout).
    pub(crate) fn longest_block(&self) -> Duration {
        match self {
            Backend::Redis(r) => r.longest_block(),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.longest_block(),
            #[cfg(feature = "sentinel")]
            Backend::Sentinel(c) => c.longest_block(),
            Backend::Memory(_) | Backend::Unusable(_) => Duration::from_secs(1),
        }
    }
}
