//! The queue's atomic operations, one script each on the keys of its hash tag (see
//! `scripts/queue/_keys.lua`): pushing a job (`push.lua`), claiming the next one with a lease
//! after promoting due jobs and taking back expired leases (`claim.lua`), completing
//! (`complete.lua`), failing (`fail.lua`: retried after a backoff, or buried after its last
//! attempt), renewing a lease (`extend.lua`); and as plain commands the wait for work
//! (`BLPOP` of a wake-up token), the counts, and the dead list (`LRANGE`). Times are the
//! server's; the in-memory twins keep one [`State`] and read the system clock.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use redis::{Pipeline, Script, Value};
use tokio::sync::watch;

use crate::backend::{AtomicOp, BlockingOp, CommandOp, ScriptArgs, Txn, millis, unexpected_reply};
use crate::error::Result;

mod lease;
mod state;

pub(crate) use self::lease::{Complete, Extend, Fail, Failed, Leased};
pub(crate) use self::state::State;
use self::state::{Job, now_ms};

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../scripts/queue/_keys.lua"),
                include_str!(concat!("../scripts/queue/", $file))
            ))
        })
    };
}

static PUSH: LazyLock<Script> = script!("push.lua");
static CLAIM: LazyLock<Script> = script!("claim.lua");

/// A queue's keys, all under its hash tag.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) ready: String,
    pub(crate) delayed: String,
    pub(crate) leases: String,
    pub(crate) jobs: String,
    pub(crate) dead: String,
    pub(crate) wake: String,
}

impl Keys {
    /// The keys of the queue whose key prefix (`ns:{emails}`) is `base`.
    pub(crate) fn new(base: &str) -> Self {
        let key = |suffix: &str| format!("{base}:{suffix}");
        Keys {
            ready: key("ready"),
            delayed: key("delayed"),
            leases: key("leases"),
            jobs: key("jobs"),
            dead: key("dead"),
            wake: key("wake"),
        }
    }

    pub(super) fn add_to(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(&self.ready)
            .key(&self.delayed)
            .key(&self.leases)
            .key(&self.jobs)
            .key(&self.dead)
            .key(&self.wake);
    }
}

/// Adds a job, ready now or due after `delay`; `false` when its id exists.
pub(crate) struct Push<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) id: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) delay: Duration,
}

impl AtomicOp for Push<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &PUSH
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.keys.add_to(invocation);
        invocation
            .arg(self.id)
            .arg(self.payload)
            .arg(crate::util::whole_millis(self.delay));
    }

    fn answer(&self, added: i64) -> Result<bool> {
        Ok(added == 1)
    }

    fn key(&self) -> &str {
        &self.keys.jobs
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        let state = txn.state::<State>(&self.keys.jobs);
        if state.jobs.contains_key(self.id) {
            return false;
        }
        let job = Job {
            payload: Bytes::copy_from_slice(self.payload),
            attempts: 0,
            owner: None,
        };
        state.jobs.insert(self.id.to_owned(), job);
        let delay = crate::util::whole_millis(self.delay);
        if delay > 0 {
            state.delay(self.id, now_ms().saturating_add(delay));
        } else {
            state.ready.push_back(self.id.to_owned());
        }
        state.wake_one();
        true
    }
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimed {
    pub(crate) id: String,
    pub(crate) payload: Bytes,
    /// This attempt's number: 1 the first time.
    pub(crate) attempts: u64,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    Job(Claimed),
    /// Nothing ready; the next delayed job is due (or a lease runs out) in this long.
    Empty(Option<Duration>),
}

/// Claims the next ready job for `owner` with a lease (see `claim.lua`).
pub(crate) struct ClaimNext<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) owner: &'a str,
    pub(crate) lease: Duration,
    pub(crate) max_attempts: u64,
    pub(crate) dead_cap: u64,
}

impl AtomicOp for ClaimNext<'_> {
    type Output = Claim;
    type Reply = Value;

    fn script(&self) -> &'static Script {
        &CLAIM
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.keys.add_to(invocation);
        invocation
            .arg(self.owner)
            .arg(millis(self.lease))
            .arg(self.max_attempts)
            .arg(self.dead_cap);
    }

    fn answer(&self, reply: Value) -> Result<Claim> {
        let bad = || unexpected_reply("claim.lua");
        let Value::Array(items) = reply else {
            return Err(bad());
        };
        let mut items = items.into_iter();
        Ok(match (items.next(), items.next(), items.next()) {
            (
                Some(Value::BulkString(id)),
                Some(Value::BulkString(payload)),
                Some(Value::Int(n)),
            ) => Claim::Job(Claimed {
                id: String::from_utf8(id).map_err(|_| bad())?,
                payload: Bytes::from(payload),
                attempts: u64::try_from(n).map_err(|_| bad())?,
            }),
            (Some(Value::Nil | Value::Boolean(false)), Some(Value::Int(next)), None) => {
                Claim::Empty(u64::try_from(next).ok().map(Duration::from_millis))
            }
            _ => return Err(bad()),
        })
    }

    fn key(&self) -> &str {
        &self.keys.jobs
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Claim {
        let now = now_ms();
        let state = txn.state::<State>(&self.keys.jobs);
        let due: Vec<(u64, String)> = state
            .delayed
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(100)
            .cloned()
            .collect();
        for (at, id) in due {
            state.delayed.remove(&(at, id.clone()));
            state.due.remove(&id);
            state.ready.push_back(id);
        }
        let expired: Vec<(u64, String)> = state
            .leases
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(100)
            .cloned()
            .collect();
        // Latest first, each to the front: the first to expire is claimed first.
        for (_, id) in expired.into_iter().rev() {
            let attempts = state.jobs.get(&id).map_or(0, |job| job.attempts);
            if attempts >= self.max_attempts {
                state.bury(&id, STOPPED, self.dead_cap, now);
            } else {
                state.unlease(&id);
                if let Some(job) = state.jobs.get_mut(&id) {
                    job.owner = None;
                }
                state.ready.push_front(id);
            }
        }
        while let Some(id) = state.ready.pop_front() {
            let Some(job) = state.jobs.get_mut(&id) else {
                continue;
            };
            job.attempts = job.attempts.saturating_add(1);
            job.owner = Some(self.owner.to_owned());
            let claimed = Claimed {
                id: id.clone(),
                payload: job.payload.clone(),
                attempts: job.attempts,
            };
            let until = now.saturating_add(millis(self.lease));
            state.expiry.insert(id.clone(), until);
            state.leases.insert((until, id));
            return Claim::Job(claimed);
        }
        let next = [state.delayed.first(), state.leases.first()]
            .into_iter()
            .flatten()
            .map(|(at, _)| at.saturating_sub(now))
            .min();
        Claim::Empty(next.map(Duration::from_millis))
    }
}

/// Why a job taken back from a worker after its last attempt is buried.
pub(crate) const STOPPED: &str = "its worker stopped during its last attempt (it crashed, or the \
                                  handler ran past the visibility timeout)";

/// Waits up to `block` for a wake-up token (`BLPOP wake`): `true` when one was taken.
pub(crate) struct Wait<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) block: Duration,
}

impl CommandOp for Wait<'_> {
    type Output = bool;
    type Reply = (Option<(String, String)>,);

    fn commands(&self) -> Pipeline {
        let seconds = self.block.max(Duration::from_millis(1)).as_secs_f64();
        let mut pipe = redis::pipe();
        pipe.cmd("BLPOP")
            .arg(&self.keys.wake)
            .arg(format!("{seconds:.3}"));
        pipe
    }

    fn answer(&self, (token,): (Option<(String, String)>,)) -> Result<bool> {
        Ok(token.is_some())
    }

    fn key(&self) -> &str {
        &self.keys.jobs
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<bool> {
        let state = txn.state::<State>(&self.keys.jobs);
        if state.wake_tokens == 0 {
            return Ok(false);
        }
        state.wake_tokens -= 1;
        Ok(true)
    }

    fn name(&self) -> &'static str {
        "BLPOP"
    }
}

impl BlockingOp for Wait<'_> {
    fn ready(&self, woken: &bool) -> bool {
        *woken
    }

    fn waker(&self, txn: &mut Txn<'_>) -> Option<watch::Receiver<()>> {
        Some(txn.state::<State>(&self.keys.jobs).woken.subscribe())
    }

    fn block(&self) -> Duration {
        self.block
    }
}

/// How many jobs are ready, delayed (or waiting for a retry), and running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) ready: u64,
    pub(crate) delayed: u64,
    pub(crate) running: u64,
}

/// `LLEN ready`, `ZCARD delayed`, `ZCARD leases`, in one round trip.
pub(crate) struct Count<'a> {
    pub(crate) keys: &'a Keys,
}

impl CommandOp for Count<'_> {
    type Output = Counts;
    type Reply = (u64, u64, u64);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("LLEN").arg(&self.keys.ready);
        pipe.cmd("ZCARD").arg(&self.keys.delayed);
        pipe.cmd("ZCARD").arg(&self.keys.leases);
        pipe
    }

    fn answer(&self, (ready, delayed, running): (u64, u64, u64)) -> Result<Counts> {
        Ok(Counts {
            ready,
            delayed,
            running,
        })
    }

    fn key(&self) -> &str {
        &self.keys.jobs
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<Counts> {
        Ok(txn
            .state_if::<State>(&self.keys.jobs)
            .map_or_else(Counts::default, |state| Counts {
                ready: state.ready.len() as u64,
                delayed: state.delayed.len() as u64,
                running: state.leases.len() as u64,
            }))
    }

    fn name(&self) -> &'static str {
        "LLEN"
    }
}

/// The oldest `count` dead jobs, as JSON records (`LRANGE dead 0 count-1`).
pub(crate) struct DeadJobs<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) count: usize,
}

impl CommandOp for DeadJobs<'_> {
    type Output = Vec<Bytes>;
    type Reply = (Vec<Vec<u8>>,);

    fn commands(&self) -> Pipeline {
        let last = i64::try_from(self.count.max(1)).unwrap_or(i64::MAX) - 1;
        let mut pipe = redis::pipe();
        pipe.cmd("LRANGE").arg(&self.keys.dead).arg(0).arg(last);
        pipe
    }

    fn answer(&self, (records,): (Vec<Vec<u8>>,)) -> Result<Vec<Bytes>> {
        Ok(records.into_iter().map(Bytes::from).collect())
    }

    fn key(&self) -> &str {
        &self.keys.jobs
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<Vec<Bytes>> {
        Ok(txn
            .state_if::<State>(&self.keys.jobs)
            .map_or_else(Vec::new, |state| {
                state.dead.iter().take(self.count.max(1)).cloned().collect()
            }))
    }

    fn name(&self) -> &'static str {
        "LRANGE"
    }
}
