//! The stream's operations: an append with its length cap (`XADD key MAXLEN ~ cap * d json`)
//! and its length (`XLEN`), each one command; the in-memory twins keep a [`Log`] per key.
//!
//! An event's payload is one field, `d`, holding its JSON, so that other tools (`XRANGE` in
//! `redis-cli`) read it as it was sent.

use std::collections::BTreeMap;

use bytes::Bytes;
use redis::Pipeline;

use super::EventId;
use crate::backend::{CommandOp, Txn};
use crate::error::{BackendError, Error, Result};

/// The field an event's JSON is stored under.
pub(crate) const FIELD: &str = "d";

/// How many entries Redis keeps in one node of a stream (`stream-node-max-entries`): a
/// `MAXLEN ~` trim removes whole nodes, so a stream may hold up to this many more than its cap.
#[cfg(feature = "test-util")]
pub(crate) const TRIM_SLACK: u64 = 100;

/// The `mem://` twin of a stream: its events by id, and the last id it gave.
#[derive(Default)]
pub(crate) struct Log {
    pub(crate) events: BTreeMap<EventId, Bytes>,
    pub(crate) last: EventId,
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
        let now = crate::util::whole_millis(crate::util::window::now());
        let log = txn.state::<Log>(self.key);
        let id = log.last.next(now).ok_or_else(|| {
            Error::Config("the stream's ids are exhausted within this millisecond".into())
        })?;
        log.events.insert(id, Bytes::copy_from_slice(self.payload));
        log.last = id;
        // Exact trimming is one of the outcomes `MAXLEN ~` allows.
        let cap = usize::try_from(self.cap).unwrap_or(usize::MAX);
        while log.events.len() > cap {
            log.events.pop_first();
        }
        Ok(id)
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
