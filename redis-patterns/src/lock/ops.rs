//! The lock's atomic operations, each a Lua script (`scripts/lock/*.lua`) and its in-memory
//! twin: take the lock and issue a fencing token, extend it, release it. Release is also the
//! stampede lock's (`cache`): both are owner-checked deletes.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, ScriptInvocation, Value};

use crate::backend::{AtomicOp, Txn, millis, unexpected_reply};
use crate::error::Result;

static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/lock/acquire.lua")));
static EXTEND: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/lock/extend.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/lock/release.lua")));

/// What one attempt to take a lock found.
pub(crate) enum Attempt {
    Acquired {
        fencing_token: u64,
    },
    /// Held by another owner for `remaining`; `marked`: the waiters' mark is in place, so
    /// the release will be heard.
    Held {
        remaining: Option<Duration>,
        marked: bool,
    },
}

/// `SET mutex token NX PX ttl`, and on success the next fencing token; when refused, the
/// waiters' mark (`scripts/lock/acquire.lua`).
pub(crate) struct Acquire<'a> {
    pub(crate) mutex: &'a str,
    pub(crate) fence: &'a str,
    pub(crate) waiters: &'a str,
    pub(crate) token: &'a str,
    pub(crate) ttl: Duration,
}

impl AtomicOp for Acquire<'_> {
    type Output = Attempt;
    type Reply = Value;

    fn script(&self) -> &'static Script {
        &ACQUIRE
    }

    fn arguments(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation
            .key(self.mutex)
            .key(self.fence)
            .key(self.waiters)
            .arg(self.token)
            .arg(millis(self.ttl));
    }

    fn answer(&self, reply: Value) -> Result<Attempt> {
        match reply {
            Value::Array(items) => match items.as_slice() {
                [Value::Int(1), Value::Int(fence)] => Ok(Attempt::Acquired {
                    fencing_token: u64::try_from(*fence).unwrap_or(0),
                }),
                [Value::Int(0), Value::Int(pttl), Value::Int(marked)] => Ok(Attempt::Held {
                    remaining: u64::try_from(*pttl).ok().map(Duration::from_millis),
                    marked: *marked == 1,
                }),
                _ => Err(unexpected_reply("lock/acquire")),
            },
            _ => Err(unexpected_reply("lock/acquire")),
        }
    }

    fn key(&self) -> &str {
        self.mutex
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Attempt {
        if txn.get(self.mutex).is_some() {
            // As the script: the first waiter marks the lock as awaited.
            if txn.get(self.waiters).is_none() {
                txn.set(self.waiters, b"1".to_vec().into(), Some(self.ttl));
            }
            return Attempt::Held {
                remaining: txn.pttl(self.mutex),
                marked: true,
            };
        }
        txn.set(
            self.mutex,
            self.token.as_bytes().to_vec().into(),
            Some(self.ttl),
        );
        // As the script: the last token + 1, or the clock in microseconds if greater.
        let now_us = crate::util::whole_micros(crate::util::unix_time());
        let last = txn.state::<u64>(self.fence);
        let token = last.saturating_add(1).max(now_us);
        *last = token;
        txn.expire(self.fence, self.ttl);
        Attempt::Acquired {
            fencing_token: token,
        }
    }
}

/// Compare-and-`PEXPIRE`: `true` when the lock was still `token`'s (`scripts/lock/extend.lua`).
pub(crate) struct Extend<'a> {
    pub(crate) mutex: &'a str,
    pub(crate) token: &'a str,
    pub(crate) ttl: Duration,
}

impl AtomicOp for Extend<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &EXTEND
    }

    fn arguments(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation
            .key(self.mutex)
            .arg(self.token)
            .arg(millis(self.ttl));
    }

    fn answer(&self, reply: i64) -> Result<bool> {
        Ok(reply == 1)
    }

    fn key(&self) -> &str {
        self.mutex
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        txn.get(self.mutex)
            .is_some_and(|v| v == self.token.as_bytes())
            && txn.expire(self.mutex, self.ttl)
    }
}

/// Compare-and-delete: `true` when `token` held the lock and released it; a lock's waiters'
/// mark, if any, is rewritten so that they hear it (`scripts/lock/release.lua`).
pub(crate) struct Release<'a> {
    pub(crate) mutex: &'a str,
    pub(crate) token: &'a str,
    /// The lock's waiters' mark; `None` for the stampede lock (its waiters watch the value).
    pub(crate) waiters: Option<&'a str>,
}

impl AtomicOp for Release<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &RELEASE
    }

    fn arguments(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation.key(self.mutex);
        if let Some(waiters) = self.waiters {
            invocation.key(waiters);
        }
        invocation.arg(self.token);
    }

    fn answer(&self, reply: i64) -> Result<bool> {
        Ok(reply == 1)
    }

    fn key(&self) -> &str {
        self.mutex
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        let owned = txn
            .get(self.mutex)
            .is_some_and(|v| v == self.token.as_bytes());
        if owned {
            txn.del(self.mutex);
            // `SET … XX KEEPTTL`: the same mark, rewritten, is the change waiters hear.
            if let Some(waiters) = self.waiters
                && let Some(left) = txn.pttl(waiters)
            {
                txn.expire(waiters, left);
            }
        }
        owned
    }
}
