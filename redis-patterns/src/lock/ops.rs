//! The lock's atomic operations, each a Lua script (`scripts/lock/*.lua`) and its in-memory
//! twin: a waiter's attempt at the lock, extension, release, and the fencing token. Release is
//! also the stampede lock's (`cache`): both are owner-checked deletes. (A first attempt is a
//! plain `SET NX PX`: [`Backend::set_nx`](crate::backend::Backend::set_nx).)
//!
//! The lock key holds the owner token, followed by [`AWAITED`] once somebody waited for that
//! holder (if the token is [`MARKABLE`]): its release then rewrites the waiters' mark, which is what they hear, and a release
//! nobody waited for is a bare compare-and-delete.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, Value};

use crate::backend::{AtomicOp, ScriptArgs, Txn, millis, unexpected_reply};
use crate::error::Result;

static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../scripts/lock/_fencing_token.lua"),
        include_str!("../scripts/lock/acquire.lua")
    ))
});
static EXTEND: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/lock/extend.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/lock/release.lua")));
static FENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../scripts/lock/_fencing_token.lua"),
        include_str!("../scripts/lock/fence.lua")
    ))
});

/// The suffix of a lock key's value once somebody waited for its holder.
pub(crate) const AWAITED: u8 = b'*';

/// The last character of this version's owner tokens: a holder whose value ends with it
/// releases and extends a value with [`AWAITED`] appended, so waiters may append it, and its
/// release rewrites this version's waiters' mark ([`LockKeys`](super::acquire::LockKeys)).
/// Holders of earlier versions (tokens ending with `+`, or with a hex digit) compare their
/// value exactly: theirs is never changed, and their waiters poll.
pub(crate) const MARKABLE: &str = "!";

/// A new owner token for a lock: 128 random bits in hex, then [`MARKABLE`].
pub(crate) fn new_lock_token() -> String {
    crate::util::new_token_with(MARKABLE)
}

/// Whether a lock key's `value` may get the [`AWAITED`] suffix: this version's token, not yet
/// marked.
fn markable(value: &[u8]) -> bool {
    value.ends_with(MARKABLE.as_bytes())
}

/// Whether a lock key's `value` is this version's token with the [`AWAITED`] suffix.
fn flagged(value: &[u8]) -> bool {
    value
        .strip_suffix(&[AWAITED])
        .is_some_and(|token| token.ends_with(MARKABLE.as_bytes()))
}

/// Whether a lock key's `value` is `token`'s, with or without the [`AWAITED`] suffix; and if
/// so, whether it carries it.
fn owned_by(value: &[u8], token: &str) -> Option<bool> {
    match value.strip_prefix(token.as_bytes()) {
        Some([]) => Some(false),
        Some([AWAITED]) => Some(true),
        _ => None,
    }
}

/// What one attempt to take a lock found.
pub(crate) enum Attempt {
    /// Granted; with the fencing token if the attempt asked for it.
    Acquired(Option<u64>),
    /// Held by another owner for `remaining`; `marked`: the waiters' mark is in place and
    /// the holder is this version's, so the release will be heard.
    Held {
        remaining: Option<Duration>,
        marked: bool,
    },
}

/// A waiter's attempt: `SET mutex token NX PX ttl` (the token marked as awaited if others
/// still wait); when refused, the waiters' mark and the holder's [`AWAITED`] suffix
/// (`scripts/lock/acquire.lua`).
pub(crate) struct Acquire<'a> {
    pub(crate) mutex: &'a str,
    pub(crate) waiters: &'a str,
    /// The fencing key, to issue the fencing token with the grant.
    pub(crate) fence: Option<&'a str>,
    pub(crate) token: &'a str,
    pub(crate) ttl: Duration,
}

impl AtomicOp for Acquire<'_> {
    type Output = Attempt;
    type Reply = Value;

    fn script(&self) -> &'static Script {
        &ACQUIRE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation.key(self.mutex).key(self.waiters);
        if let Some(fence) = self.fence {
            invocation.key(fence);
        }
        invocation.arg(self.token).arg(millis(self.ttl));
    }

    fn answer(&self, reply: Value) -> Result<Attempt> {
        match reply {
            Value::Array(items) => match items.as_slice() {
                [Value::Int(1)] if self.fence.is_none() => Ok(Attempt::Acquired(None)),
                [Value::Int(1), Value::Int(token)] if self.fence.is_some() => {
                    match u64::try_from(*token) {
                        Ok(token) if token > 0 => Ok(Attempt::Acquired(Some(token))),
                        _ => Err(unexpected_reply("lock/acquire")),
                    }
                }
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
        let awaited = txn.get(self.waiters).is_some();
        if let Some(holder) = txn.get(self.mutex).cloned() {
            // As the script: the first waiter marks the lock as awaited, and the holder's
            // value says so (a holder of this version's); a holder of an earlier version will
            // not rewrite this mark, so its waiters poll.
            if !awaited {
                txn.set(self.waiters, b"1".to_vec().into(), Some(self.ttl));
            }
            let ours = if markable(&holder) {
                let mut flagged = holder.to_vec();
                flagged.push(AWAITED);
                let left = txn.pttl(self.mutex);
                txn.set(self.mutex, flagged.into(), left);
                true
            } else {
                flagged(&holder)
            };
            return Attempt::Held {
                remaining: txn.pttl(self.mutex),
                marked: ours,
            };
        }
        let mut value = self.token.as_bytes().to_vec();
        if awaited && markable(&value) {
            value.push(AWAITED);
        }
        txn.set(self.mutex, value.into(), Some(self.ttl));
        Attempt::Acquired(self.fence.map(|fence| issue(txn, fence, self.ttl)))
    }
}

/// The holder's fencing token: the last token + 1, or the server's clock in microseconds if
/// greater; 0 when `token` no longer holds the lock (`scripts/lock/fence.lua`).
pub(crate) struct Fence<'a> {
    pub(crate) mutex: &'a str,
    pub(crate) fence: &'a str,
    pub(crate) token: &'a str,
    pub(crate) ttl: Duration,
}

impl AtomicOp for Fence<'_> {
    type Output = Option<u64>;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &FENCE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.mutex)
            .key(self.fence)
            .arg(self.token)
            .arg(millis(self.ttl));
    }

    fn answer(&self, reply: i64) -> Result<Option<u64>> {
        Ok(u64::try_from(reply).ok().filter(|&token| token > 0))
    }

    fn key(&self) -> &str {
        self.mutex
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Option<u64> {
        txn.get(self.mutex).and_then(|v| owned_by(v, self.token))?;
        Some(issue(txn, self.fence, self.ttl))
    }
}

/// As the scripts: the next fencing token, the last one + 1 or the clock in microseconds if
/// greater, kept in `fence` for `ttl`.
fn issue(txn: &mut Txn<'_>, fence: &str, ttl: Duration) -> u64 {
    let now_us = crate::util::whole_micros(crate::util::unix_time());
    let last = txn.state::<u64>(fence);
    let token = last.saturating_add(1).max(now_us);
    *last = token;
    txn.expire(fence, ttl);
    token
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

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
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
            .is_some_and(|v| owned_by(v, self.token).is_some())
            && txn.expire(self.mutex, self.ttl)
    }
}

/// Compare-and-delete: `true` when `token` held the lock and released it; if somebody waited
/// for it, the waiters' mark is rewritten so that they hear it (`scripts/lock/release.lua`).
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

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
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
        let Some(awaited) = txn.get(self.mutex).and_then(|v| owned_by(v, self.token)) else {
            return false;
        };
        txn.del(self.mutex);
        // `SET … XX KEEPTTL`: the same mark, rewritten, is the change waiters hear.
        if awaited
            && let Some(waiters) = self.waiters
            && let Some(left) = txn.pttl(waiters)
        {
            txn.expire(waiters, left);
        }
        true
    }
}
