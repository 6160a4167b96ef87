//! What happens to events whose handling failed: a failed event stays pending and is retried
//! by its consumer (`fail.lua`, then `retry.lua`, which claims it again and so counts the
//! delivery) until `max_deliveries`, when it moves to the group's dead-letter stream with the
//! last error; events of consumers that stopped are claimed by live ones after the visibility
//! timeout (`reclaim.lua`, `XAUTOCLAIM`), or dead-lettered if they already had their
//! deliveries. Dead letters are read with `XRANGE`. The scripts share `_dead_letter.lua`.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use redis::{Pipeline, Script, Value};

use super::group::Held;
use super::reply::{bytes, parse_entries, text};
use super::{FIELD, Fields, Log, field};
use crate::backend::{AtomicOp, CommandOp, ScriptArgs, Txn, unexpected_reply};
use crate::error::Result;
use crate::stream::EventId;
use crate::stream::ops::Delivered;

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../../scripts/stream/_dead_letter.lua"),
                include_str!(concat!("../../scripts/stream/", $file))
            ))
        })
    };
}

static RECLAIM: LazyLock<Script> = script!("reclaim.lua");
static FAIL: LazyLock<Script> = script!("fail.lua");
static RETRY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../scripts/stream/retry.lua")));

/// Why an event claimed from a stopped consumer after its last delivery is dead-lettered.
const STOPPED: &str = "its consumer stopped during its last delivery (it crashed, or the handler \
                       ran past the visibility timeout)";

/// The in-memory `_dead_letter.lua`: moves the pending event `id` to the dead-letter stream
/// `dead` with why it failed, and acknowledges it.
#[allow(clippy::too_many_arguments)]
fn dead_letter(
    txn: &mut Txn<'_>,
    stream: &str,
    dead: &str,
    group: &str,
    id: EventId,
    deliveries: u64,
    consumer: &str,
    why: &str,
    cap: u64,
) {
    let log = txn.state::<Log>(stream);
    let payload = log
        .events
        .get(&id)
        .and_then(|fields| field(fields, FIELD).cloned())
        .unwrap_or_default();
    if let Some(group) = log.groups.get_mut(group) {
        group.pending.remove(&id);
    }
    let fields: Fields = vec![
        (FIELD.to_owned(), payload),
        ("id".to_owned(), Bytes::from(id.to_string())),
        ("group".to_owned(), Bytes::copy_from_slice(group.as_bytes())),
        (
            "consumer".to_owned(),
            Bytes::copy_from_slice(consumer.as_bytes()),
        ),
        ("deliveries".to_owned(), Bytes::from(deliveries.to_string())),
        ("error".to_owned(), Bytes::copy_from_slice(why.as_bytes())),
    ];
    // An id clash within one millisecond's counter is the only failure; the event is acked
    // either way, as the script's XADD would fail the whole script only on a full counter.
    let _ = txn.state::<Log>(dead).add(fields, cap);
}

/// What a pass of [`Reclaim`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Reclaimed {
    /// Where the next pass starts (`0-0`: the pending entries were scanned to the end).
    pub(crate) cursor: EventId,
    pub(crate) claimed: Vec<Delivered>,
    /// Events moved to the dead-letter stream instead.
    pub(crate) dead: u64,
}

/// Claims for `consumer` up to `count` events idle for `min_idle` or longer, from `cursor`
/// (`XAUTOCLAIM`); those already delivered `max_deliveries` times are dead-lettered.
pub(crate) struct Reclaim<'a> {
    pub(crate) key: &'a str,
    pub(crate) dead: &'a str,
    pub(crate) group: &'a str,
    pub(crate) consumer: &'a str,
    pub(crate) min_idle: Duration,
    pub(crate) cursor: EventId,
    pub(crate) count: usize,
    pub(crate) max_deliveries: u64,
    pub(crate) dead_cap: u64,
}

impl AtomicOp for Reclaim<'_> {
    type Output = Reclaimed;
    type Reply = Value;

    fn script(&self) -> &'static Script {
        &RECLAIM
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .key(self.dead)
            .arg(self.group)
            .arg(self.consumer)
            .arg(crate::util::whole_millis(self.min_idle))
            .arg(self.cursor.to_string())
            .arg(self.count.max(1))
            .arg(self.max_deliveries)
            .arg(self.dead_cap);
    }

    fn answer(&self, reply: Value) -> Result<Reclaimed> {
        let bad = || unexpected_reply("reclaim.lua");
        let Value::Array(items) = reply else {
            return Err(bad());
        };
        let mut items = items.into_iter();
        let cursor = items
            .next()
            .and_then(text)
            .and_then(|c| c.parse().ok())
            .ok_or_else(bad)?;
        let Some(Value::Int(dead)) = items.next() else {
            return Err(bad());
        };
        let mut claimed = Vec::new();
        while let (Some(id), Some(payload), Some(Value::Int(deliveries))) =
            (items.next(), items.next(), items.next())
        {
            claimed.push(Delivered {
                id: text(id).and_then(|id| id.parse().ok()).ok_or_else(bad)?,
                payload: optional_bytes(payload)?,
                deliveries: u64::try_from(deliveries).map_err(|_| bad())?,
            });
        }
        Ok(Reclaimed {
            cursor,
            claimed,
            dead: u64::try_from(dead).map_err(|_| bad())?,
        })
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Reclaimed {
        let now = txn.clock();
        let Log { events, groups, .. } = txn.state::<Log>(self.key);
        let Some(group) = groups.get_mut(self.group) else {
            return Reclaimed::default();
        };
        group.consumers.insert(self.consumer.to_owned(), now);
        let count = self.count.max(1);
        let mut reclaimed = Reclaimed::default();
        let mut to_bury = Vec::new();
        let mut attempts = count.saturating_mul(10);
        let ids: Vec<EventId> = group
            .pending
            .range(self.cursor..)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if reclaimed.claimed.len() + to_bury.len() >= count || attempts == 0 {
                reclaimed.cursor = id;
                break;
            }
            attempts -= 1;
            let Some(pending) = group.pending.get_mut(&id) else {
                continue;
            };
            if now.saturating_sub(pending.at) < self.min_idle {
                continue;
            }
            let Some(fields) = events.get(&id) else {
                // Trimmed from the stream: XAUTOCLAIM drops its entry.
                group.pending.remove(&id);
                continue;
            };
            pending.consumer = self.consumer.to_owned();
            pending.at = now;
            pending.deliveries = pending.deliveries.saturating_add(1);
            if pending.deliveries > self.max_deliveries {
                to_bury.push((id, pending.deliveries - 1));
            } else {
                reclaimed.claimed.push(Delivered {
                    id,
                    payload: field(fields, FIELD).cloned(),
                    deliveries: pending.deliveries,
                });
            }
        }
        reclaimed.dead = to_bury.len() as u64;
        for (id, deliveries) in to_bury {
            dead_letter(
                txn,
                self.key,
                self.dead,
                self.group,
                id,
                deliveries,
                self.consumer,
                STOPPED,
                self.dead_cap,
            );
        }
        reclaimed
    }
}

/// What became of a failed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// It stays pending, delivered this many times: retry it.
    Pending { deliveries: u64 },
    /// It had its deliveries and is in the dead-letter stream now.
    DeadLettered,
    /// It is no longer this consumer's (another reclaimed it, or it was acknowledged).
    Lost,
}

/// A handler failed on `id` with `error`: dead-letter it after `max_deliveries`, else leave
/// it pending for a retry.
pub(crate) struct Fail<'a> {
    pub(crate) event: Held<'a>,
    pub(crate) dead: &'a str,
    pub(crate) error: &'a str,
    pub(crate) max_deliveries: u64,
    pub(crate) dead_cap: u64,
}

impl AtomicOp for Fail<'_> {
    type Output = Failed;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &FAIL
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        let event = &self.event;
        invocation
            .key(event.key)
            .key(self.dead)
            .arg(event.group)
            .arg(event.consumer)
            .arg(event.id.to_string())
            .arg(self.error)
            .arg(self.max_deliveries)
            .arg(self.dead_cap);
    }

    fn answer(&self, reply: i64) -> Result<Failed> {
        Ok(match u64::try_from(reply) {
            Err(_) => Failed::Lost,
            Ok(0) => Failed::DeadLettered,
            Ok(deliveries) => Failed::Pending { deliveries },
        })
    }

    fn key(&self) -> &str {
        self.event.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Failed {
        let event = self.event;
        let log = txn.state::<Log>(event.key);
        let Some(pending) = event.pending(&mut log.groups) else {
            return Failed::Lost;
        };
        let deliveries = pending.deliveries;
        if deliveries < self.max_deliveries {
            return Failed::Pending { deliveries };
        }
        dead_letter(
            txn,
            event.key,
            self.dead,
            event.group,
            event.id,
            deliveries,
            event.consumer,
            self.error,
            self.dead_cap,
        );
        Failed::DeadLettered
    }
}

/// What a retry found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Retried {
    /// Delivered again.
    Again(Delivered),
    /// Trimmed from the stream meanwhile (and acknowledged): nothing left to handle.
    Trimmed,
    /// No longer this consumer's.
    Lost,
}

/// Delivers a failed event to its consumer again (`XCLAIM`), if it is still the consumer's.
pub(crate) struct Retry<'a>(pub(crate) Held<'a>);

impl AtomicOp for Retry<'_> {
    type Output = Retried;
    type Reply = Value;

    fn script(&self) -> &'static Script {
        &RETRY
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.0.arguments(invocation);
    }

    fn answer(&self, reply: Value) -> Result<Retried> {
        let bad = || unexpected_reply("retry.lua");
        let Value::Array(items) = reply else {
            return Err(bad());
        };
        let mut items = items.into_iter();
        Ok(match (items.next(), items.next()) {
            (None, _) => Retried::Lost,
            (Some(Value::Int(0)), None) => Retried::Trimmed,
            (Some(Value::Int(deliveries)), Some(payload)) => Retried::Again(Delivered {
                id: self.0.id,
                payload: optional_bytes(payload)?,
                deliveries: u64::try_from(deliveries).map_err(|_| bad())?,
            }),
            _ => return Err(bad()),
        })
    }

    fn key(&self) -> &str {
        self.0.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Retried {
        let (event, now) = (self.0, txn.clock());
        let log = txn.state::<Log>(event.key);
        let Some(pending) = event.pending(&mut log.groups) else {
            return Retried::Lost;
        };
        let Some(fields) = log.events.get(&event.id) else {
            if let Some(group) = log.groups.get_mut(event.group) {
                group.pending.remove(&event.id);
            }
            return Retried::Trimmed;
        };
        pending.at = now;
        pending.deliveries = pending.deliveries.saturating_add(1);
        let delivered = Delivered {
            id: event.id,
            payload: field(fields, FIELD).cloned(),
            deliveries: pending.deliveries,
        };
        if let Some(group) = log.groups.get_mut(event.group) {
            group.consumers.insert(event.consumer.to_owned(), now);
        }
        Retried::Again(delivered)
    }
}

/// A script's payload: a bulk string, or `false` (nil) for an entry without the field `d`.
fn optional_bytes(payload: Value) -> Result<Option<Bytes>> {
    match payload {
        Value::Nil | Value::Boolean(false) => Ok(None),
        payload => Ok(Some(bytes(payload)?)),
    }
}

/// The oldest `count` entries of a dead-letter stream (`XRANGE dead - + COUNT n`).
pub(crate) struct DeadLetters<'a> {
    pub(crate) dead: &'a str,
    pub(crate) count: usize,
}

impl CommandOp for DeadLetters<'_> {
    type Output = Vec<(EventId, Fields)>;
    type Reply = (Value,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(self.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(self.count.max(1));
        pipe
    }

    fn answer(&self, (entries,): (Value,)) -> Result<Vec<(EventId, Fields)>> {
        Ok(parse_entries(entries)?
            .into_iter()
            .map(|(id, fields)| (id, fields.unwrap_or_default()))
            .collect())
    }

    fn key(&self) -> &str {
        self.dead
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<Vec<(EventId, Fields)>> {
        Ok(txn.state_if::<Log>(self.dead).map_or_else(Vec::new, |log| {
            log.events
                .iter()
                .take(self.count.max(1))
                .map(|(id, fields)| (*id, fields.clone()))
                .collect()
        }))
    }

    fn name(&self) -> &'static str {
        "XRANGE"
    }
}
