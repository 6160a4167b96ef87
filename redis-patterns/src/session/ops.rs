//! The sessions' atomic operations, each on one slot: on a session's key (`create.lua`,
//! `load.lua` (which also slides its expiry, and is `touch` without the data), `save.lua`
//! (with its version check), `take.lua` (delete and return)), or on its user's index
//! (`index_add.lua`, `index_take.lua`). A user's sessions live in slots of their own, so "log
//! out everywhere" takes the ids out of the index in one step, then deletes each session by its
//! key: per slot, never one script across slots. Times are the server's (`TIME`), in
//! milliseconds since the Unix epoch; the in-memory twins read the system clock.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use crate::backend::{AtomicOp, ScriptArgs, Txn, millis, unexpected_reply};
use crate::error::Result;
use crate::leaderboard::zset::ZSet;

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| Script::new(include_str!(concat!("../scripts/session/", $file))))
    };
}

static CREATE: LazyLock<Script> = script!("create.lua");
static LOAD: LazyLock<Script> = script!("load.lua");
static SAVE: LazyLock<Script> = script!("save.lua");
static TAKE: LazyLock<Script> = script!("take.lua");
static INDEX_ADD: LazyLock<Script> = script!("index_add.lua");
static INDEX_TAKE: LazyLock<Script> = script!("index_take.lua");

/// A stored session, as the twins keep it (a hash on Redis).
#[derive(Default)]
struct Stored {
    data: Vec<u8>,
    version: u64,
    user: String,
    created: u64,
    ends: u64,
}

/// What a session holds, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub(crate) data: Vec<u8>,
    pub(crate) version: u64,
    pub(crate) user: String,
    /// Milliseconds since the Unix epoch.
    pub(crate) created: u64,
    /// The absolute end, in milliseconds since the Unix epoch.
    pub(crate) ends: u64,
}

/// The system clock in milliseconds since the Unix epoch (the twins' `TIME`).
fn now_ms() -> u64 {
    crate::util::whole_millis(crate::util::window::now())
}

/// How long a session read or written now stays: the idle timeout, never past its end.
fn sliding(idle: Duration, ends: u64, now: u64) -> Option<Duration> {
    let left = ends.checked_sub(now).filter(|&ms| ms > 0)?;
    Some(idle.min(Duration::from_millis(left)))
}

/// Creates a session unless its key exists: `(created, ends)`, or `None`.
pub(crate) struct Create<'a> {
    pub(crate) key: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) user: &'a str,
    pub(crate) idle: Duration,
    pub(crate) absolute: Duration,
    /// `(created, ends)` kept from the session a rotation replaces.
    pub(crate) kept: Option<(u64, u64)>,
}

impl AtomicOp for Create<'_> {
    type Output = Option<(u64, u64)>;
    type Reply = Vec<u64>;

    fn script(&self) -> &'static Script {
        &CREATE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .arg(self.data)
            .arg(self.user)
            .arg(millis(self.idle))
            .arg(millis(self.absolute));
        if let Some((created, ends)) = self.kept {
            invocation.arg(created).arg(ends);
        }
    }

    fn answer(&self, reply: Vec<u64>) -> Result<Option<(u64, u64)>> {
        match reply.as_slice() {
            [1, created, ends] => Ok(Some((*created, *ends))),
            [0] => Ok(None),
            _ => Err(unexpected_reply("session create")),
        }
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Option<(u64, u64)> {
        if txn.state_if::<Stored>(self.key).is_some() {
            return None;
        }
        let now = now_ms();
        let (created, ends) = self.kept.unwrap_or((
            now,
            now.saturating_add(crate::util::whole_millis(self.absolute)),
        ));
        let ttl = sliding(self.idle, ends, now)?;
        *txn.state::<Stored>(self.key) = Stored {
            data: self.data.to_vec(),
            version: 1,
            user: self.user.to_owned(),
            created,
            ends,
        };
        txn.expire(self.key, ttl);
        Some((created, ends))
    }
}

/// Reads a session (or with `with_data: false`, only touches it) and slides its expiry.
pub(crate) struct Load<'a> {
    pub(crate) key: &'a str,
    pub(crate) idle: Duration,
    pub(crate) with_data: bool,
}

impl AtomicOp for Load<'_> {
    type Output = Option<Loaded>;
    type Reply = Option<(Vec<u8>, u64, String, u64, u64)>;

    fn script(&self) -> &'static Script {
        &LOAD
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .arg(millis(self.idle))
            .arg(if self.with_data { "1" } else { "0" });
    }

    fn answer(&self, reply: Self::Reply) -> Result<Option<Loaded>> {
        Ok(reply.map(|(data, version, user, created, ends)| Loaded {
            data,
            version,
            user,
            created,
            ends,
        }))
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Option<Loaded> {
        let ends = txn.state_if::<Stored>(self.key)?.ends;
        let Some(ttl) = sliding(self.idle, ends, now_ms()) else {
            txn.del(self.key);
            return None;
        };
        txn.expire(self.key, ttl);
        let stored = txn.state_if::<Stored>(self.key)?;
        Some(Loaded {
            data: if self.with_data {
                stored.data.clone()
            } else {
                Vec::new()
            },
            version: stored.version,
            user: stored.user.clone(),
            created: stored.created,
            ends: stored.ends,
        })
    }
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaveOutcome {
    /// Written; the new version.
    Written(u64),
    /// The session no longer exists.
    Gone,
    /// Somebody saved it since it was read; the version now.
    Conflict(u64),
}

/// Writes a session's data if its version is still `version`, and slides its expiry.
pub(crate) struct Save<'a> {
    pub(crate) key: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) version: u64,
    pub(crate) idle: Duration,
}

impl AtomicOp for Save<'_> {
    type Output = SaveOutcome;
    type Reply = Vec<i64>;

    fn script(&self) -> &'static Script {
        &SAVE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .arg(self.data)
            .arg(self.version)
            .arg(millis(self.idle));
    }

    fn answer(&self, reply: Vec<i64>) -> Result<SaveOutcome> {
        let version = |v: i64| u64::try_from(v).map_err(|_| unexpected_reply("session save"));
        match reply.as_slice() {
            [1, v] => Ok(SaveOutcome::Written(version(*v)?)),
            [0] => Ok(SaveOutcome::Gone),
            [-1, v] => Ok(SaveOutcome::Conflict(version(*v)?)),
            _ => Err(unexpected_reply("session save")),
        }
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> SaveOutcome {
        let Some(stored) = txn.state_if::<Stored>(self.key) else {
            return SaveOutcome::Gone;
        };
        let (ends, current) = (stored.ends, stored.version);
        let Some(ttl) = sliding(self.idle, ends, now_ms()) else {
            txn.del(self.key);
            return SaveOutcome::Gone;
        };
        if current != self.version {
            return SaveOutcome::Conflict(current);
        }
        let stored = txn.state::<Stored>(self.key);
        stored.data = self.data.to_vec();
        stored.version = stored.version.saturating_add(1);
        let version = stored.version;
        txn.expire(self.key, ttl);
        SaveOutcome::Written(version)
    }
}

/// Deletes a session and returns what it held.
pub(crate) struct Take<'a> {
    pub(crate) key: &'a str,
}

impl AtomicOp for Take<'_> {
    type Output = Option<Loaded>;
    type Reply = Option<(Vec<u8>, String, u64, u64)>;

    fn script(&self) -> &'static Script {
        &TAKE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation.key(self.key);
    }

    fn answer(&self, reply: Self::Reply) -> Result<Option<Loaded>> {
        Ok(reply.map(|(data, user, created, ends)| Loaded {
            data,
            version: 0,
            user,
            created,
            ends,
        }))
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Option<Loaded> {
        let stored = txn.state_if::<Stored>(self.key)?;
        let loaded = Loaded {
            data: stored.data.clone(),
            version: 0,
            user: stored.user.clone(),
            created: stored.created,
            ends: stored.ends,
        };
        txn.del(self.key);
        Some(loaded)
    }
}

/// Adds a session (its key's hash) to its user's index, pruning ended ones: whether the hash
/// was not indexed yet, and how many sessions the index lists.
pub(crate) struct IndexAdd<'a> {
    pub(crate) index: &'a str,
    pub(crate) digest: &'a str,
    pub(crate) ends: IndexEnd,
}

/// When a session leaves its user's index.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IndexEnd {
    /// At its absolute end, in ms since the Unix epoch.
    At(u64),
    /// This long after the index's clock reads now.
    In(Duration),
}

impl AtomicOp for IndexAdd<'_> {
    type Output = (bool, u64);
    type Reply = (u8, u64);

    fn script(&self) -> &'static Script {
        &INDEX_ADD
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation.key(self.index).arg(self.digest);
        match self.ends {
            IndexEnd::At(ends) => invocation.arg(ends),
            IndexEnd::In(lifetime) => invocation.arg(millis(lifetime)).arg("in"),
        };
    }

    fn answer(&self, (added, indexed): (u8, u64)) -> Result<(bool, u64)> {
        Ok((added == 1, indexed))
    }

    fn key(&self) -> &str {
        self.index
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> (bool, u64) {
        let now = now_ms();
        let ends = match self.ends {
            IndexEnd::At(ends) => ends,
            IndexEnd::In(lifetime) => now.saturating_add(millis(lifetime)),
        };
        let index = txn.state::<ZSet>(self.index);
        let ended: Vec<String> = index
            .ascending()
            .take_while(|(_, ends)| *ends <= now as f64)
            .map(|(member, _)| member.to_owned())
            .collect();
        for member in ended {
            index.remove(&member);
        }
        let added = index.score(self.digest).is_none();
        index.insert(self.digest, ends as f64);
        let last = index.ascending().next_back().map_or(0.0, |(_, ends)| ends);
        let count = index.len() as u64;
        txn.expire_at(self.index, Duration::from_millis(last as u64));
        (added, count)
    }
}

/// Takes one session, or all of a user's sessions, out of the index: the hashes removed.
pub(crate) struct IndexTake<'a> {
    pub(crate) index: &'a str,
    pub(crate) one: Option<&'a str>,
}

impl AtomicOp for IndexTake<'_> {
    type Output = Vec<String>;
    type Reply = Vec<String>;

    fn script(&self) -> &'static Script {
        &INDEX_TAKE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation.key(self.index);
        if let Some(digest) = self.one {
            invocation.arg(digest);
        }
    }

    fn answer(&self, taken: Vec<String>) -> Result<Vec<String>> {
        Ok(taken)
    }

    fn key(&self) -> &str {
        self.index
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Vec<String> {
        if txn.state_if::<ZSet>(self.index).is_none() {
            return Vec::new();
        }
        let taken = match self.one {
            Some(digest) => {
                let index = txn.state::<ZSet>(self.index);
                if index.remove(digest) {
                    vec![digest.to_owned()]
                } else {
                    Vec::new()
                }
            }
            None => {
                let all = txn
                    .state_if::<ZSet>(self.index)
                    .map(|index| index.ascending().map(|(m, _)| m.to_owned()).collect())
                    .unwrap_or_default();
                txn.del(self.index);
                all
            }
        };
        if txn
            .state_if::<ZSet>(self.index)
            .is_some_and(|i| i.len() == 0)
        {
            txn.del(self.index);
        }
        taken
    }
}
