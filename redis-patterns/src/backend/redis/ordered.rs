//! Two atomic operations in order, in one round trip: their `EVALSHA`s pipelined on the
//! connection, which the server runs one after the other.

use redis::{FromRedisValue, RedisResult};

use super::{Operation, RedisBackend};
use crate::backend::connection::Connector;
use crate::backend::{AtomicOp, EvalSha};
use crate::error::{Error, Result};

impl<C: Connector> RedisBackend<C> {
    /// Runs `first`, then `second`, each atomically, in one round trip (see
    /// [`Backend::run_in_order`](crate::backend::Backend::run_in_order)). A script the server does not
    /// know yet (`NOSCRIPT`), or any other error of the first, runs it again on its own,
    /// loading it, and then the second again, so that the second always runs after the first.
    pub(crate) async fn run_in_order<A: AtomicOp, B: AtomicOp>(
        &self,
        first: &A,
        second: &B,
    ) -> Result<(Result<A::Output>, Result<B::Output>)> {
        let mut pipe = redis::pipe();
        pipe.add_command(EvalSha::of(first))
            .add_command(EvalSha::of(second))
            .ignore_errors();
        let pipe = &pipe;
        let replies: Vec<RedisResult<redis::Value>> = self
            .run(Operation::Script(first.name()), |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let mut replies = replies.into_iter();
        let (Some(Ok(a)), Some(b)) = (replies.next(), replies.next()) else {
            return Ok((self.run_op(first).await, self.run_op(second).await));
        };
        let a = A::Reply::from_redis_value(a)
            .map_err(|e| Error::from(redis::RedisError::from(e)))
            .and_then(|reply| first.answer(reply));
        let b = match b {
            Ok(b) => B::Reply::from_redis_value(b)
                .map_err(|e| Error::from(redis::RedisError::from(e)))
                .and_then(|reply| second.answer(reply)),
            Err(_) => self.run_op(second).await,
        };
        Ok((a, b))
    }
}
