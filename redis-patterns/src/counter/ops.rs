//! The counters' atomic operations. Each is what a careful hand-written version sends, in one
//! round trip: an increment and its expiry in one `MULTI`/`EXEC` transaction (never `INCR`
//! then `EXPIRE` as two steps, which leaves a counter without a TTL when the process dies in
//! between), a read of several windows of one counter in one `MGET` or `PFCOUNT` (their keys
//! share a hash tag, so this works on a cluster). The in-memory twins take the same steps
//! under the shard lock of that hash tag.

use std::time::Duration;

use bytes::Bytes;
use redis::{Pipeline, ServerErrorKind};

use super::hll::Hll;
use crate::backend::{CommandOp, Txn, millis};
use crate::error::{BackendError, Error, Result};

/// When an incremented counter expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// `ttl` after the increment that created it (`SET key 0 NX PX ttl`, then `INCRBY`).
    AfterFirst(Duration),
    /// `ttl` after the latest increment (`INCRBY`, then `PEXPIRE`).
    AfterLast(Duration),
    /// At a time since the Unix epoch on the server's clock (`INCRBY`, then `PEXPIREAT`): the
    /// end of a window's retention.
    At(Duration),
}

/// Adds `by` to the counter under `key` and sets its expiry, atomically; answers the new value.
pub(crate) struct IncrBy<'a> {
    pub(crate) key: &'a str,
    pub(crate) by: i64,
    pub(crate) expiry: Expiry,
}

impl CommandOp for IncrBy<'_> {
    type Output = i64;
    /// The `EXEC` reply: `SET NX` (absent when skipped) or the expiry's, and the `INCRBY`'s.
    type Reply = Vec<redis::Value>;

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.atomic();
        match self.expiry {
            Expiry::AfterFirst(ttl) => {
                pipe.cmd("SET")
                    .arg(self.key)
                    .arg(0)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .ignore();
                pipe.cmd("INCRBY").arg(self.key).arg(self.by);
            }
            Expiry::AfterLast(ttl) => {
                pipe.cmd("INCRBY").arg(self.key).arg(self.by);
                pipe.cmd("PEXPIRE").arg(self.key).arg(millis(ttl)).ignore();
            }
            Expiry::At(at) => {
                pipe.cmd("INCRBY").arg(self.key).arg(self.by);
                pipe.cmd("PEXPIREAT")
                    .arg(self.key)
                    .arg(crate::util::whole_millis(at))
                    .ignore();
            }
        }
        pipe
    }

    fn answer(&self, reply: Vec<redis::Value>) -> Result<i64> {
        match reply.as_slice() {
            [redis::Value::Int(value)] => Ok(*value),
            _ => Err(crate::backend::unexpected_reply("counter incr")),
        }
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<i64> {
        if let Expiry::AfterFirst(ttl) = self.expiry
            && txn.get(self.key).is_none()
        {
            txn.set(self.key, Bytes::from_static(b"0"), Some(ttl));
        }
        let value = txn.incr_by(self.key, self.by).ok_or_else(not_an_integer)?;
        match self.expiry {
            Expiry::AfterFirst(_) => {}
            Expiry::AfterLast(ttl) => {
                txn.expire(self.key, ttl);
            }
            Expiry::At(at) => {
                txn.expire_at(self.key, at);
            }
        }
        Ok(value)
    }

    fn name(&self) -> &'static str {
        "MULTI"
    }
}

/// Reads the counters under `keys` (one hash tag): 0 for a missing one.
pub(crate) struct Read<'a> {
    pub(crate) keys: &'a [String],
}

impl CommandOp for Read<'_> {
    type Output = Vec<i64>;
    type Reply = (Vec<Option<i64>>,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(self.keys);
        pipe
    }

    fn answer(&self, (values,): (Vec<Option<i64>>,)) -> Result<Vec<i64>> {
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn key(&self) -> &str {
        self.keys.first().map_or("", String::as_str)
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<Vec<i64>> {
        self.keys
            .iter()
            .map(|key| match txn.get(key) {
                None => Ok(0),
                Some(text) => std::str::from_utf8(text)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(not_an_integer),
            })
            .collect()
    }

    fn name(&self) -> &'static str {
        "MGET"
    }
}

/// Adds elements to the HyperLogLog under `key` and sets its expiry, atomically: `true` when
/// the estimate may have changed (a register grew).
pub(crate) struct UniqueAdd<'a, E> {
    pub(crate) key: &'a str,
    pub(crate) elements: &'a [E],
    pub(crate) expires_at: Duration,
}

impl<E: AsRef<[u8]>> CommandOp for UniqueAdd<'_, E> {
    type Output = bool;
    type Reply = Vec<redis::Value>;

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let add = pipe.cmd("PFADD").arg(self.key);
        for element in self.elements {
            add.arg(element.as_ref());
        }
        pipe.cmd("PEXPIREAT")
            .arg(self.key)
            .arg(crate::util::whole_millis(self.expires_at))
            .ignore();
        pipe
    }

    fn answer(&self, reply: Vec<redis::Value>) -> Result<bool> {
        match reply.as_slice() {
            [redis::Value::Int(changed)] => Ok(*changed == 1),
            _ => Err(crate::backend::unexpected_reply("counter unique_add")),
        }
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<bool> {
        // `PFADD` answers 1 when it creates the key, even without elements.
        let mut changed = txn.state_if::<Hll>(self.key).is_none();
        let hll = txn.state::<Hll>(self.key);
        for element in self.elements {
            changed |= hll.add(element.as_ref());
        }
        txn.expire_at(self.key, self.expires_at);
        Ok(changed)
    }

    fn name(&self) -> &'static str {
        "MULTI"
    }
}

/// The estimated number of distinct elements in the union of the HyperLogLogs under `keys`
/// (one hash tag; missing ones are empty).
pub(crate) struct UniqueCount<'a> {
    pub(crate) keys: &'a [String],
}

impl CommandOp for UniqueCount<'_> {
    type Output = u64;
    type Reply = (u64,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("PFCOUNT").arg(self.keys);
        pipe
    }

    fn answer(&self, (count,): (u64,)) -> Result<u64> {
        Ok(count)
    }

    fn key(&self) -> &str {
        self.keys.first().map_or("", String::as_str)
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<u64> {
        let mut logs = self.keys.iter().filter_map(|key| txn.state_if::<Hll>(key));
        let Some(first) = logs.next() else {
            return Ok(0);
        };
        let mut rest = logs.peekable();
        if rest.peek().is_none() {
            return Ok(first.count());
        }
        let mut union = Hll::default();
        union.merge(first);
        for log in rest {
            union.merge(log);
        }
        Ok(union.count())
    }

    fn name(&self) -> &'static str {
        "PFCOUNT"
    }
}

/// What Redis answers to `INCRBY` on a value that is not an integer, or that would overflow.
fn not_an_integer() -> Error {
    Error::Backend(BackendError::from_redis(redis::RedisError::from((
        redis::ErrorKind::Server(ServerErrorKind::ResponseError),
        "value is not an integer or out of range",
    ))))
}
