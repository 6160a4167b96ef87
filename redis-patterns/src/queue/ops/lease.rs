//! The operations of a worker on the job it leased: completing it (`complete.lua`), failing
//! it (`fail.lua`: retried after a backoff, or buried after its last attempt), renewing its
//! lease (`extend.lua`). Each checks that the worker still holds the lease.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::Keys;
use super::state::{State, now_ms};
use crate::backend::{AtomicOp, ScriptArgs, Txn, millis, unexpected_reply};
use crate::error::Result;

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../../scripts/queue/_keys.lua"),
                include_str!(concat!("../../scripts/queue/", $file))
            ))
        })
    };
}

static COMPLETE: LazyLock<Script> = script!("complete.lua");
static FAIL: LazyLock<Script> = script!("fail.lua");
static EXTEND: LazyLock<Script> = script!("extend.lua");

/// A claimed job by the worker holding it: what completing, failing and renewing name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leased<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) id: &'a str,
    pub(crate) owner: &'a str,
}

impl Leased<'_> {
    fn add_to(&self, invocation: &mut impl ScriptArgs) {
        self.keys.add_to(invocation);
        invocation.arg(self.id).arg(self.owner);
    }
}

/// The job succeeded: forgets it; `false` when the lease was lost.
pub(crate) struct Complete<'a>(pub(crate) Leased<'a>);

impl AtomicOp for Complete<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &COMPLETE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.0.add_to(invocation);
    }

    fn answer(&self, done: i64) -> Result<bool> {
        Ok(done == 1)
    }

    fn key(&self) -> &str {
        &self.0.keys.jobs
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        let Leased { keys, id, owner } = self.0;
        let state = txn.state::<State>(&keys.jobs);
        if !state.held_by(id, owner) {
            return false;
        }
        state.unlease(id);
        state.jobs.remove(id);
        true
    }
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// The lease was lost: the job went back to the queue meanwhile.
    Lost,
    /// It will be retried after the backoff.
    Retry,
    /// It had its attempts: buried.
    Buried,
}

/// The job failed with `error`: buried after `max_attempts`, else retried after `backoff`.
pub(crate) struct Fail<'a> {
    pub(crate) job: Leased<'a>,
    pub(crate) error: &'a str,
    pub(crate) max_attempts: u64,
    pub(crate) backoff: Duration,
    pub(crate) dead_cap: u64,
}

impl AtomicOp for Fail<'_> {
    type Output = Failed;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &FAIL
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.job.add_to(invocation);
        invocation
            .arg(self.error)
            .arg(self.max_attempts)
            .arg(crate::util::whole_millis(self.backoff))
            .arg(self.dead_cap);
    }

    fn answer(&self, outcome: i64) -> Result<Failed> {
        match outcome {
            0 => Ok(Failed::Lost),
            1 => Ok(Failed::Retry),
            2 => Ok(Failed::Buried),
            _ => Err(unexpected_reply("fail.lua")),
        }
    }

    fn key(&self) -> &str {
        &self.job.keys.jobs
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Failed {
        let Leased { keys, id, owner } = self.job;
        let now = now_ms();
        let state = txn.state::<State>(&keys.jobs);
        if !state.held_by(id, owner) {
            return Failed::Lost;
        }
        let attempts = state.jobs.get(id).map_or(0, |job| job.attempts);
        if attempts >= self.max_attempts {
            state.bury(id, self.error, self.dead_cap, now);
            return Failed::Buried;
        }
        state.unlease(id);
        if let Some(job) = state.jobs.get_mut(id) {
            job.owner = None;
        }
        let at = now.saturating_add(crate::util::whole_millis(self.backoff));
        state.delay(id, at);
        Failed::Retry
    }
}

/// Renews the lease for `lease` from now; `false` when it was lost.
pub(crate) struct Extend<'a> {
    pub(crate) job: Leased<'a>,
    pub(crate) lease: Duration,
}

impl AtomicOp for Extend<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &EXTEND
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.job.add_to(invocation);
        invocation.arg(millis(self.lease));
    }

    fn answer(&self, renewed: i64) -> Result<bool> {
        Ok(renewed == 1)
    }

    fn key(&self) -> &str {
        &self.job.keys.jobs
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        let Leased { keys, id, owner } = self.job;
        let state = txn.state::<State>(&keys.jobs);
        if !state.held_by(id, owner) {
            return false;
        }
        state.unlease(id);
        let until = now_ms().saturating_add(millis(self.lease));
        state.expiry.insert(id.to_owned(), until);
        state.leases.insert((until, id.to_owned()));
        true
    }
}
