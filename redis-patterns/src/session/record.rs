//! The one write of the `tower-sessions` store: a session record `SET` with its absolute
//! expiry (`PXAT`), only if the key is missing (`NX`: a new id never overwrites a session) or
//! only if it exists (`XX`: a save never brings back a deleted session). Reads and deletes are
//! the facade's `GET` and `DEL`.

use std::time::Duration;

use bytes::Bytes;
use redis::Pipeline;

use crate::backend::{CommandOp, Txn};
use crate::error::Result;

/// Which keys a [`PutRecord`] may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    /// Only a missing key (`NX`).
    Missing,
    /// Only an existing key (`XX`).
    Existing,
}

/// `SET key value PXAT at NX|XX`: `true` when written.
pub(crate) struct PutRecord<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: &'a [u8],
    /// The absolute expiry: time since the Unix epoch.
    pub(crate) at: Duration,
    pub(crate) condition: Condition,
}

impl CommandOp for PutRecord<'_> {
    type Output = bool;
    type Reply = (Option<String>,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.key)
            .arg(self.value)
            .arg("PXAT")
            .arg(crate::util::whole_millis(self.at).max(1))
            .arg(match self.condition {
                Condition::Missing => "NX",
                Condition::Existing => "XX",
            });
        pipe
    }

    fn answer(&self, (reply,): (Option<String>,)) -> Result<bool> {
        Ok(reply.is_some())
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<bool> {
        let exists = txn.get(self.key).is_some();
        let allowed = match self.condition {
            Condition::Missing => !exists,
            Condition::Existing => exists,
        };
        if !allowed {
            return Ok(false);
        }
        let now = crate::util::window::now();
        match self.at.checked_sub(now).filter(|ttl| !ttl.is_zero()) {
            Some(ttl) => txn.set(self.key, Bytes::copy_from_slice(self.value), Some(ttl)),
            // Redis stores a key whose expiry has passed as already expired.
            None => {
                txn.del(self.key);
            }
        }
        Ok(true)
    }

    fn name(&self) -> &'static str {
        "SET"
    }
}
