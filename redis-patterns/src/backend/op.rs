//! An atomic operation: one Lua script on Redis and its in-memory twin, which must give the
//! same answer for the same state. A pattern defines each of its atomic steps once, as a
//! value implementing [`AtomicOp`] in its own `ops.rs`; [`Backend::run`](super::Backend::run)
//! is the one place that picks the implementation for the backend at hand, so a new backend
//! implements `run` once and every pattern works on it.
//!
//! An operation that Redis does as well with plain commands (one command, or a `MULTI`/`EXEC`
//! transaction of commands on keys of one hash tag) is a [`CommandOp`] instead: no script to
//! run, so it costs the server what the hand-written commands cost
//! ([`Backend::exec`](super::Backend::exec)).

use redis::{Cmd, FromRedisValue, Pipeline, Script, ScriptInvocation, ToRedisArgs};

use super::Txn;
use crate::error::{Error, Result};

pub(crate) trait AtomicOp {
    /// What the operation answers.
    type Output;
    /// The script's reply as redis-rs decodes it.
    type Reply: FromRedisValue;

    /// The script (hashed once; sent with `EVALSHA`, loaded on `NOSCRIPT`).
    fn script(&self) -> &'static Script;

    /// Adds the operation's `KEYS` and `ARGV` to a call of its script.
    fn arguments(&self, invocation: &mut impl ScriptArgs);

    /// The answer from the script's reply.
    fn answer(&self, reply: Self::Reply) -> Result<Self::Output>;

    /// A key the operation touches: its hash tag, shared by every key it touches, picks the
    /// in-memory shard.
    fn key(&self) -> &str;

    /// The in-memory twin: the script's steps on the shard of [`key`](Self::key), atomically.
    fn in_memory(&self, txn: &mut Txn<'_>) -> Self::Output;

    /// The operation's name in round-trip spans: its type's (`GetOrLock`).
    fn name(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        let path = full.split('<').next().unwrap_or(full);
        path.rsplit("::").next().unwrap_or(path)
    }
}

/// Where an operation writes its `KEYS` and `ARGV`: a [`ScriptInvocation`] (one `EVALSHA`,
/// loading the script on `NOSCRIPT`), or an [`EvalSha`] command for a pipeline. Keys come
/// first, then arguments.
pub(crate) trait ScriptArgs {
    fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self;
    fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self;
}

impl ScriptArgs for ScriptInvocation<'_> {
    fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        ScriptInvocation::key(self, key)
    }

    fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        ScriptInvocation::arg(self, arg)
    }
}

/// A script's `EVALSHA` as a command of a pipeline (a [`ScriptInvocation`] only runs alone).
/// The caller handles `NOSCRIPT`.
#[derive(Default)]
pub(crate) struct EvalSha {
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl EvalSha {
    /// The `EVALSHA` of `op`.
    pub(crate) fn of<O: AtomicOp>(op: &O) -> Cmd {
        let mut call = EvalSha::default();
        op.arguments(&mut call);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(op.script().get_hash())
            .arg(call.keys.len())
            .arg(call.keys)
            .arg(call.args);
        cmd
    }
}

impl ScriptArgs for EvalSha {
    fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }
}

/// An atomic operation that Redis runs as plain commands: what [`AtomicOp`] is for scripts.
pub(crate) trait CommandOp {
    /// What the operation answers.
    type Output;
    /// The pipeline's reply as redis-rs decodes it (a tuple of the commands' replies; of the
    /// `EXEC`'s for a transaction).
    type Reply: FromRedisValue;

    /// The commands: every key they touch carries the hash tag of [`key`](Self::key), so a
    /// cluster routes them to one node; several writes go in a transaction (`.atomic()`).
    fn commands(&self) -> Pipeline;

    /// The answer from the commands' replies.
    fn answer(&self, reply: Self::Reply) -> Result<Self::Output>;

    /// A key the operation touches; see [`AtomicOp::key`].
    fn key(&self) -> &str;

    /// The in-memory twin: the commands' steps on the shard of [`key`](Self::key), atomically,
    /// failing where Redis would (an increment past `i64`).
    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<Self::Output>;

    /// The command in round-trip spans (`INCRBY`, `MULTI` for a transaction).
    fn name(&self) -> &'static str;
}

/// The error for a script reply of an unexpected shape.
pub(crate) fn unexpected_reply(script: &'static str) -> Error {
    Error::Backend(crate::error::BackendError::unexpected_reply(script))
}

/// Milliseconds for `PX`, at least 1 (Redis rejects 0).
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    crate::util::whole_millis(d).max(1)
}
