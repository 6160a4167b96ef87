//! The stream's operations: an append with its length cap (`XADD key MAXLEN ~ cap * d json`)
//! and its length (`XLEN`), each one command; the in-memory twins keep a [`Log`] per key.
//!
//! An event's payload is one field, `d`, holding its JSON, so that other tools (`XRANGE` in
//! `redis-cli`) read it as it was sent. Consumer groups' operations are in `ops/group.rs`
//! (reading, acknowledging, forgetting consumers) and `ops/failure.rs` (retries, reclaiming
//! from dead consumers, dead letters).

mod failure;
mod group;
mod reply;

use std::collections::BTreeMap;

use bytes::Bytes;
use redis::Pipeline;
use tokio::sync::watch;

use super::EventId;
use crate::backend::{CommandOp, Txn};
use crate::error::{BackendError, Error, Result};

pub(crate) use self::failure::{DeadLetters, Fail, Failed, Reclaim, Retried, Retry};
pub(crate) use self::group::{
    Ack, CreateGroup, Delivered, Extend, Group, Held, PendingCount, Prune, ReadGroup,
};

/// The field an event's JSON is stored under.
pub(crate) const FIELD: &str = "d";

/// How many entries Redis keeps in one node of a stream (`stream-node-max-entries`): a
/// `MAXLEN ~` trim removes whole nodes, so a stream may hold up to this many more than its cap.
#[cfg(feature = "test-util")]
pub(crate) const TRIM_SLACK: u64 = 100;

/// The `mem://` twin of a stream: its events by id (each its fields, as `XADD` stored them),
/// the last id it gave, its consumer groups, and a wake-up for blocked readers.
pub(crate) struct Log {
    pub(crate) events: BTreeMap<EventId, Fields>,
    pub(crate) last: EventId,
    pub(crate) groups: BTreeMap<String, Group>,
    /// Changed on every append: readers waiting for events (`XREADGROUP … BLOCK`) try again.
    pub(crate) appended: watch::Sender<()>,
}

/// An event's fields and values, in order.
pub(crate) type Fields = Vec<(String, Bytes)>;

impl Default for Log {
    fn default() -> Self {
        Log {
            events: BTreeMap::new(),
            last: EventId::default(),
            groups: BTreeMap::new(),
            appended: watch::Sender::new(()),
        }
    }
}

impl Log {
    /// `XADD key MAXLEN cap * fields`, trimming exactly (one of the outcomes `~` allows).
    pub(crate) fn add(&mut self, fields: Fields, cap: u64) -> Result<EventId> {
        let now = crate::util::whole_millis(crate::util::window::now());
        let id = self.last.next(now).ok_or_else(|| {
            Error::Config("the stream's ids are exhausted within this millisecond".into())
        })?;
        self.events.insert(id, fields);
        self.last = id;
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        while self.events.len() > cap {
            self.events.pop_first();
        }
        self.appended.send_modify(|()| {});
        Ok(id)
    }
}

/// The value of `name` among `fields`.
pub(crate) fn field<'a>(fields: &'a [(String, Bytes)], name: &str) -> Option<&'a Bytes> {
    fields.iter().find(|(f, _)| f == name).map(|(_, v)| v)
}

/// Appends an event, trimming the oldest beyond `cap` (approximately, as `MAXLEN ~` does).
pub(crate) struct Append<'a> {
    pub(crate) key: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) cap: u64,
}

impl CommandOp for Append<'_> {
    type Output = EventId;
    type Reply = (String,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.cap)
            .arg("*")
            .arg(FIELD)
            .arg(self.payload);
        pipe
    }

    fn answer(&self, (id,): (String,)) -> Result<EventId> {
        id.parse()
            .map_err(|_| Error::Backend(BackendError::unexpected_reply("stream append")))
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<EventId> {
        let fields = vec![(FIELD.to_owned(), Bytes::copy_from_slice(self.payload))];
        txn.state::<Log>(self.key).add(fields, self.cap)
    }

    fn name(&self) -> &'static str {
        "XADD"
    }
}

/// How many events a stream holds.
pub(crate) struct Length<'a> {
    pub(crate) key: &'a str,
}

impl CommandOp for Length<'_> {
    type Output = u64;
    type Reply = (u64,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN").arg(self.key);
        pipe
    }

    fn answer(&self, (n,): (u64,)) -> Result<u64> {
        Ok(n)
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<u64> {
        Ok(txn
            .state_if::<Log>(self.key)
            .map_or(0, |log| log.events.len() as u64))
    }

    fn name(&self) -> &'static str {
        "XLEN"
    }
}
