//! The cache's atomic operations, each a Lua script (`scripts/cache/*.lua`) and its in-memory
//! twin: read a value or take the stampede lock; store a value and release the lock. The lock
//! is released on its own with the lock pattern's owner-checked delete
//! ([`lock::ops::Release`](crate::lock::ops::Release)).

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use redis::{Script, Value};

use crate::backend::{AtomicOp, ScriptArgs, Txn, millis, unexpected_reply};
use crate::envelope;
use crate::error::Result;

static GET_OR_LOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/cache/get_or_lock.lua")));
static SET_AND_UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/cache/set_and_unlock.lua")));

/// What reading a value or else taking its stampede lock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A usable (fresh, or not judged) value is stored.
    Value(Bytes),
    /// No fresh value (the stale one, if any); the caller now holds the lock.
    Acquired(Option<Bytes>),
    /// No fresh value (the stale one, if any); somebody else holds the lock.
    Held(Option<Bytes>),
}

/// The value of `key`, or else the lock `lock_key` taken with `token` for `lock_ttl`
/// (`SET NX PX`), in one atomic step. With `now_ms`, a stored envelope that is no longer fresh
/// then (see [`envelope`](crate::envelope)) does not count as a value: the lock is tried, and
/// the stale value comes back with the outcome.
pub(crate) struct GetOrLock<'a> {
    pub(crate) key: &'a str,
    pub(crate) lock_key: &'a str,
    pub(crate) token: &'a str,
    pub(crate) lock_ttl: Duration,
    /// The caller's clock, or 0 when stored values are always usable.
    pub(crate) now_ms: u64,
}

impl AtomicOp for GetOrLock<'_> {
    type Output = Probe;
    type Reply = Value;

    fn script(&self) -> &'static Script {
        &GET_OR_LOCK
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .key(self.lock_key)
            .arg(self.token)
            .arg(millis(self.lock_ttl))
            .arg(self.now_ms);
    }

    fn answer(&self, reply: Value) -> Result<Probe> {
        let Value::Array(mut items) = reply else {
            return Err(unexpected_reply("cache/get_or_lock"));
        };
        let stored = match items.len() {
            1 => None,
            2 => match items.pop() {
                Some(Value::BulkString(bytes)) => Some(Bytes::from(bytes)),
                _ => return Err(unexpected_reply("cache/get_or_lock")),
            },
            _ => return Err(unexpected_reply("cache/get_or_lock")),
        };
        match (items.as_slice(), stored) {
            ([Value::Int(1)], Some(value)) => Ok(Probe::Value(value)),
            ([Value::Int(2)], stale) => Ok(Probe::Acquired(stale)),
            ([Value::Int(3)], stale) => Ok(Probe::Held(stale)),
            _ => Err(unexpected_reply("cache/get_or_lock")),
        }
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Probe {
        let stale = match txn.get(self.key) {
            Some(value) if self.now_ms == 0 => return Probe::Value(value.clone()),
            Some(value) => match envelope::expires_ms(value) {
                Some(expires) if expires <= self.now_ms => Some(value.clone()),
                _ => return Probe::Value(value.clone()),
            },
            None => None,
        };
        if txn.get(self.lock_key).is_some() {
            return Probe::Held(stale);
        }
        txn.set(
            self.lock_key,
            Bytes::copy_from_slice(self.token.as_bytes()),
            Some(self.lock_ttl),
        );
        Probe::Acquired(stale)
    }
}

/// Stores `value` under `key` for `ttl` and releases `lock_key` if `token` still holds it,
/// atomically; `true` when the lock was released.
pub(crate) struct SetAndUnlock<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: Bytes,
    pub(crate) ttl: Duration,
    pub(crate) lock_key: &'a str,
    pub(crate) token: &'a str,
}

impl AtomicOp for SetAndUnlock<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &SET_AND_UNLOCK
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .key(self.lock_key)
            .arg(&self.value[..])
            .arg(millis(self.ttl))
            .arg(self.token);
    }

    fn answer(&self, reply: i64) -> Result<bool> {
        Ok(reply == 1)
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        txn.set(self.key, self.value.clone(), Some(self.ttl));
        let owned = txn
            .get(self.lock_key)
            .is_some_and(|v| v == self.token.as_bytes());
        if owned {
            txn.del(self.lock_key);
        }
        owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_or_lock_replies_are_read() {
        let op = GetOrLock {
            key: "{k}",
            lock_key: "{k}:lock",
            token: "t",
            lock_ttl: Duration::from_secs(1),
            now_ms: 0,
        };
        let value = Value::Array(vec![Value::Int(1), Value::BulkString(b"x".to_vec())]);
        assert_eq!(
            op.answer(value).unwrap(),
            Probe::Value(Bytes::from_static(b"x"))
        );
        let acquired = Value::Array(vec![Value::Int(2)]);
        assert_eq!(op.answer(acquired).unwrap(), Probe::Acquired(None));
        assert_eq!(
            op.answer(Value::Array(vec![Value::Int(3)])).unwrap(),
            Probe::Held(None)
        );
        let stale = || Value::BulkString(b"s".to_vec());
        assert_eq!(
            op.answer(Value::Array(vec![Value::Int(2), stale()]))
                .unwrap(),
            Probe::Acquired(Some(Bytes::from_static(b"s")))
        );
        assert_eq!(
            op.answer(Value::Array(vec![Value::Int(3), stale()]))
                .unwrap(),
            Probe::Held(Some(Bytes::from_static(b"s")))
        );
        assert!(op.answer(Value::Array(vec![Value::Int(1)])).is_err());
        assert!(op.answer(Value::Nil).is_err());
        assert!(op.answer(Value::Array(vec![Value::Int(4)])).is_err());
    }
}
