//! Blocking commands (`XREADGROUP … BLOCK`) on a connection of the caller's own: on the
//! shared multiplexed connection a blocked command would hold up every reply queued behind
//! it, so each consumer loop dials one connection for its blocking reads (to the server, the
//! primary the sentinels name, or a cluster connection of its own) and keeps it until it
//! fails. The breaker does not gate these reads: a consumer that cannot read backs off and
//! tries again by itself.

use std::time::Duration;

use redis::RedisResult;
use tracing::Instrument;

use super::{Operation, RedisBackend};
use crate::backend::CommandOp;
use crate::backend::connection::Connector;
use crate::error::{Error, Result};

impl<C: Connector> RedisBackend<C> {
    /// Runs `op`'s commands on `conn`, dialled first when it is `None` and dropped after a
    /// failure that may have broken it (a timeout, an I/O error, `READONLY` from a demoted
    /// primary), so that the next call dials again.
    pub(crate) async fn exec_on<O: CommandOp>(
        &self,
        conn: &mut Option<C::Conn>,
        op: &O,
    ) -> Result<O::Output> {
        let span = self.span(Operation::Command(op.name()));
        async {
            if conn.is_none() {
                *conn = Some(self.inner.conn.dial_dedicated().await?);
            }
            let Some(c) = conn.as_mut() else {
                return Err(Error::Config(
                    "the dedicated connection was not dialled".into(),
                ));
            };
            let reply: RedisResult<O::Reply> = op.commands().query_async(c).await;
            match reply {
                Ok(reply) => op.answer(reply),
                Err(e) => {
                    let broken = e.is_timeout()
                        || e.is_io_error()
                        || e.is_connection_dropped()
                        || e.code() == Some("READONLY");
                    if broken {
                        *conn = None;
                    }
                    if e.is_timeout() {
                        return Err(Error::Timeout(self.inner.command_timeout));
                    }
                    Err(Error::from(e))
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The longest a blocking command may wait on the server: half the command timeout, so
    /// that its empty answer arrives well within the connection's response timeout.
    pub(crate) fn longest_block(&self) -> Duration {
        self.inner.command_timeout / 2
    }
}
