//! A consumer group's own operations: creating it (`create_group.lua`: `XGROUP CREATE …
//! MKSTREAM`, answering whether it existed), reading new events for one consumer
//! (`XREADGROUP`, which may block), acknowledging handled ones (`XACK`), and forgetting
//! consumers that stopped (`prune.lua`), and renewing a slow handler's claim (`extend.lua`). The in-memory twins keep a [`Group`] in the stream's
//! [`Log`].

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use redis::{Pipeline, Script, Value};
use tokio::sync::watch;

use super::reply::parse_entries;
use super::{FIELD, Log, field};
use crate::backend::{AtomicOp, BlockingOp, CommandOp, ScriptArgs, Txn, unexpected_reply};
use crate::error::{BackendError, Error, Result};
use crate::stream::EventId;

static CREATE_GROUP: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../scripts/stream/create_group.lua")));
static EXTEND: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../scripts/stream/extend.lua")));
static PRUNE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../scripts/stream/prune.lua")));

/// The `mem://` twin of a consumer group.
#[derive(Default)]
pub(crate) struct Group {
    /// The last event handed out as new (`>`).
    pub(crate) delivered: EventId,
    /// Events delivered and not yet acknowledged.
    pub(crate) pending: BTreeMap<EventId, Pending>,
    /// Each consumer by name, with when it last read (the store's clock).
    pub(crate) consumers: BTreeMap<String, Duration>,
}

/// A delivered event awaiting its acknowledgement.
pub(crate) struct Pending {
    pub(crate) consumer: String,
    /// When it was last delivered (the store's clock).
    pub(crate) at: Duration,
    pub(crate) deliveries: u64,
}

/// An event handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub(crate) id: EventId,
    /// Its JSON (field `d`); `None` for an entry without one (written by another tool).
    pub(crate) payload: Option<Bytes>,
    /// How many times it was delivered, this time included.
    pub(crate) deliveries: u64,
}

/// Redis's error for a group (or stream) that does not exist.
fn no_group() -> Error {
    Error::Backend(BackendError::from_redis(redis::RedisError::from((
        redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
        "NOGROUP No such key or consumer group",
    ))))
}

/// Creates a group reading from the start (`from_start`) or from the next event, and the
/// stream if it is missing: `true` when created, `false` when the group existed.
pub(crate) struct CreateGroup<'a> {
    pub(crate) key: &'a str,
    pub(crate) group: &'a str,
    pub(crate) from_start: bool,
}

impl AtomicOp for CreateGroup<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &CREATE_GROUP
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .arg(self.group)
            .arg(if self.from_start { "0" } else { "$" });
    }

    fn answer(&self, created: i64) -> Result<bool> {
        Ok(created == 1)
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        let log = txn.state::<Log>(self.key);
        if log.groups.contains_key(self.group) {
            return false;
        }
        let delivered = if self.from_start {
            EventId::default()
        } else {
            log.last
        };
        let group = Group {
            delivered,
            ..Group::default()
        };
        log.groups.insert(self.group.to_owned(), group);
        true
    }
}

/// Up to `count` new events for `consumer`, waiting up to `block` for the first:
/// `XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS key >`.
pub(crate) struct ReadGroup<'a> {
    pub(crate) key: &'a str,
    pub(crate) group: &'a str,
    pub(crate) consumer: &'a str,
    pub(crate) count: usize,
    pub(crate) block: Duration,
}

impl CommandOp for ReadGroup<'_> {
    type Output = Vec<Delivered>;
    type Reply = Value;

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        let cmd = pipe
            .cmd("XREADGROUP")
            .arg("GROUP")
            .arg(self.group)
            .arg(self.consumer)
            .arg("COUNT")
            .arg(self.count.max(1));
        if !self.block.is_zero() {
            cmd.arg("BLOCK").arg(crate::backend::millis(self.block));
        }
        cmd.arg("STREAMS").arg(self.key).arg(">");
        pipe
    }

    fn answer(&self, reply: Value) -> Result<Vec<Delivered>> {
        // The pipeline's one reply.
        let reply = match reply {
            Value::Array(mut replies) if replies.len() == 1 => replies.pop().unwrap_or(Value::Nil),
            other => other,
        };
        let entries = match reply {
            Value::Nil => return Ok(Vec::new()),
            // RESP2: [[key, entries]]; RESP3: {key: entries}.
            Value::Array(streams) => streams.into_iter().next().and_then(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
                _ => None,
            }),
            Value::Map(streams) => streams.into_iter().next().map(|(_, entries)| entries),
            _ => None,
        };
        let entries = entries.ok_or_else(|| unexpected_reply("XREADGROUP"))?;
        Ok(parse_entries(entries)?
            .into_iter()
            .map(|(id, fields)| Delivered {
                id,
                payload: fields.and_then(|f| field(&f, FIELD).cloned()),
                deliveries: 1,
            })
            .collect())
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<Vec<Delivered>> {
        let now = txn.clock();
        let log = txn.state::<Log>(self.key);
        let Some(group) = log.groups.get_mut(self.group) else {
            return Err(no_group());
        };
        let mut delivered = Vec::new();
        let start = std::ops::Bound::Excluded(group.delivered);
        for (id, fields) in log.events.range((start, std::ops::Bound::Unbounded)) {
            if delivered.len() >= self.count.max(1) {
                break;
            }
            group.pending.insert(
                *id,
                Pending {
                    consumer: self.consumer.to_owned(),
                    at: now,
                    deliveries: 1,
                },
            );
            group.delivered = *id;
            delivered.push(Delivered {
                id: *id,
                payload: field(fields, FIELD).cloned(),
                deliveries: 1,
            });
        }
        // Redis (7.0) creates the consumer when it is handed something.
        if !delivered.is_empty() {
            group.consumers.insert(self.consumer.to_owned(), now);
        }
        Ok(delivered)
    }

    fn name(&self) -> &'static str {
        "XREADGROUP"
    }
}

impl BlockingOp for ReadGroup<'_> {
    fn ready(&self, output: &Vec<Delivered>) -> bool {
        !output.is_empty()
    }

    fn waker(&self, txn: &mut Txn<'_>) -> Option<watch::Receiver<()>> {
        Some(txn.state::<Log>(self.key).appended.subscribe())
    }

    fn block(&self) -> Duration {
        self.block
    }
}

/// Acknowledges handled events: `XACK key group id…`; how many were pending.
pub(crate) struct Ack<'a> {
    pub(crate) key: &'a str,
    pub(crate) group: &'a str,
    pub(crate) ids: &'a [EventId],
}

impl CommandOp for Ack<'_> {
    type Output = u64;
    type Reply = (u64,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        let cmd = pipe.cmd("XACK").arg(self.key).arg(self.group);
        for id in self.ids {
            cmd.arg(id);
        }
        pipe
    }

    fn answer(&self, (acked,): (u64,)) -> Result<u64> {
        Ok(acked)
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<u64> {
        let Some(group) = txn.state::<Log>(self.key).groups.get_mut(self.group) else {
            return Ok(0);
        };
        Ok(self
            .ids
            .iter()
            .filter(|id| group.pending.remove(id).is_some())
            .count() as u64)
    }

    fn name(&self) -> &'static str {
        "XACK"
    }
}

/// Forgets the group's consumers idle for `idle` or longer with nothing pending, and
/// `consumer` itself when `leaving` with nothing pending; how many were forgotten (none
/// when the group does not exist).
pub(crate) struct Prune<'a> {
    pub(crate) key: &'a str,
    pub(crate) group: &'a str,
    pub(crate) consumer: &'a str,
    pub(crate) idle: Duration,
    pub(crate) leaving: bool,
}

impl AtomicOp for Prune<'_> {
    type Output = u64;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &PRUNE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .arg(self.group)
            .arg(self.consumer)
            .arg(crate::util::whole_millis(self.idle))
            .arg(if self.leaving { "1" } else { "0" });
    }

    fn answer(&self, deleted: i64) -> Result<u64> {
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> u64 {
        let now = txn.clock();
        let log = txn.state::<Log>(self.key);
        let Some(group) = log.groups.get_mut(self.group) else {
            return 0;
        };
        let before = group.consumers.len();
        let pending = &group.pending;
        group.consumers.retain(|name, last| {
            let has_pending = pending.values().any(|p| &p.consumer == name);
            let gone = if name == self.consumer {
                self.leaving
            } else {
                now.saturating_sub(*last) >= self.idle
            };
            has_pending || !gone
        });
        (before - group.consumers.len()) as u64
    }
}

/// An event pending for one consumer of a group, as the operations on it name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held<'a> {
    pub(crate) key: &'a str,
    pub(crate) group: &'a str,
    pub(crate) consumer: &'a str,
    pub(crate) id: EventId,
}

impl Held<'_> {
    /// `KEYS[1]` the stream; `ARGV` group, consumer, id.
    pub(crate) fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .arg(self.group)
            .arg(self.consumer)
            .arg(self.id.to_string());
    }

    /// Its pending entry in the twin, if it is still the consumer's.
    pub(crate) fn pending<'l>(
        &self,
        groups: &'l mut BTreeMap<String, Group>,
    ) -> Option<&'l mut Pending> {
        groups
            .get_mut(self.group)
            .and_then(|g| g.pending.get_mut(&self.id))
            .filter(|p| p.consumer == self.consumer)
    }
}

/// Renews a consumer's claim on its event while a slow handler runs (`XCLAIM … JUSTID`: the
/// visibility timeout starts again, no delivery is counted); `false` when the event is no
/// longer the consumer's.
pub(crate) struct Extend<'a>(pub(crate) Held<'a>);

impl AtomicOp for Extend<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &EXTEND
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.0.arguments(invocation);
    }

    fn answer(&self, renewed: i64) -> Result<bool> {
        Ok(renewed == 1)
    }

    fn key(&self) -> &str {
        self.0.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        let now = txn.clock();
        let log = txn.state::<Log>(self.0.key);
        match self.0.pending(&mut log.groups) {
            Some(pending) => {
                pending.at = now;
                true
            }
            None => false,
        }
    }
}

/// How many events the group's consumers were handed and have not acknowledged
/// (`XPENDING key group`, its summary's count).
pub(crate) struct PendingCount<'a> {
    pub(crate) key: &'a str,
    pub(crate) group: &'a str,
}

impl CommandOp for PendingCount<'_> {
    type Output = u64;
    type Reply = (Value,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("XPENDING").arg(self.key).arg(self.group);
        pipe
    }

    fn answer(&self, (summary,): (Value,)) -> Result<u64> {
        match summary {
            Value::Array(items) => match items.first() {
                Some(Value::Int(n)) => u64::try_from(*n).map_err(|_| unexpected_reply("XPENDING")),
                _ => Err(unexpected_reply("XPENDING")),
            },
            _ => Err(unexpected_reply("XPENDING")),
        }
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<u64> {
        txn.state_if::<Log>(self.key)
            .and_then(|log| log.groups.get(self.group))
            .map(|group| group.pending.len() as u64)
            .ok_or_else(no_group)
    }

    fn name(&self) -> &'static str {
        "XPENDING"
    }
}
