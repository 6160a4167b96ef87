//! The cache's atomic operations, each a Lua script (`scripts/cache/*.lua`) and its in-memory
//! twin: read a value or take the stampede lock; store a value and release the lock. The lock
//! is released on its own with the lock pattern's owner-checked delete
//! ([`lock::ops::Release`](crate::lock::ops::Release)).

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use redis::{Script, ScriptInvocation, Value};

use crate::backend::{AtomicOp, Txn, millis, unexpected_reply};
use crate::error::Result;

static GET_OR_LOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/cache/get_or_lock.lua")));
static SET_AND_UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/cache/set_and_unlock.lua")));

/// What reading a value or else taking its stampede lock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The value is stored.
    Value(Bytes),
    /// No value; the caller now holds the lock.
    Acquired,
    /// No value; somebody else holds the lock.
    Held,
}

/// The value of `key`, or else the lock `lock_key` taken with `token` for `lock_ttl`
/// (`SET NX PX`), in one atomic step.
pub(crate) struct GetOrLock<'a> {
    pub(crate) key: &'a str,
    pub(crate) lock_key: &'a str,
    pub(crate) token: &'a str,
    pub(crate) lock_ttl: Duration,
}

impl AtomicOp for GetOrLock<'_> {
    type Output = Probe;
    type Reply = Value;

    fn script(&self) -> &'static Script {
        &GET_OR_LOCK
    }

    fn arguments(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation
            .key(self.key)
            .key(self.lock_key)
            .arg(self.token)
            .arg(millis(self.lock_ttl));
    }

    fn answer(&self, reply: Value) -> Result<Probe> {
        let Value::Array(items) = reply else {
            return Err(unexpected_reply("cache/get_or_lock"));
        };
        match <[Value; 2]>::try_from(items) {
            Ok([Value::Int(1), Value::BulkString(bytes)]) => Ok(Probe::Value(Bytes::from(bytes))),
            Ok(_) => Err(unexpected_reply("cache/get_or_lock")),
            Err(items) => match items.as_slice() {
                [Value::Int(2)] => Ok(Probe::Acquired),
                [Value::Int(3)] => Ok(Probe::Held),
                _ => Err(unexpected_reply("cache/get_or_lock")),
            },
        }
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Probe {
        if let Some(value) = txn.get(self.key) {
            return Probe::Value(value.clone());
        }
        if txn.get(self.lock_key).is_some() {
            return Probe::Held;
        }
        txn.set(
            self.lock_key,
            Bytes::copy_from_slice(self.token.as_bytes()),
            Some(self.lock_ttl),
        );
        Probe::Acquired
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

    fn arguments(&self, invocation: &mut ScriptInvocation<'_>) {
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
        };
        let value = Value::Array(vec![Value::Int(1), Value::BulkString(b"x".to_vec())]);
        assert_eq!(
            op.answer(value).unwrap(),
            Probe::Value(Bytes::from_static(b"x"))
        );
        let acquired = Value::Array(vec![Value::Int(2)]);
        assert_eq!(op.answer(acquired).unwrap(), Probe::Acquired);
        assert_eq!(
            op.answer(Value::Array(vec![Value::Int(3)])).unwrap(),
            Probe::Held
        );
        assert!(op.answer(Value::Nil).is_err());
        assert!(op.answer(Value::Array(vec![Value::Int(4)])).is_err());
    }
}
