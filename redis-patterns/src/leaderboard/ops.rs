//! The leaderboard's atomic operations: a submit under the board's policy with the time its
//! score was reached (`submit.lua`), a member's rank (`rank.lua`), a page of the board in its
//! order (`page.lua`, also around a member), a removal (`remove.lua`), and the plain reads
//! `ZCARD` and `ZSCORE`. The reads share `_board.lua`: a combined board is built on first read
//! from the boards it combines (`ZUNIONSTORE`, all in one hash tag), and members of equal
//! score are ordered first come first. The in-memory twins take the same steps on [`ZSet`]s.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Pipeline, Script};

use super::view::{View, combine};
use super::zset::ZSet;
use super::{Aggregate, Entry, Order, Policy, Ties};
use crate::backend::{AtomicOp, CommandOp, ScriptArgs, Txn, millis};
use crate::error::Result;

macro_rules! read_script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../scripts/leaderboard/_board.lua"),
                include_str!(concat!("../scripts/leaderboard/", $file))
            ))
        })
    };
}

static SUBMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/leaderboard/submit.lua")));
static RANK: LazyLock<Script> = read_script!("rank.lua");
static PAGE: LazyLock<Script> = read_script!("page.lua");
static REMOVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/leaderboard/remove.lua")));

/// The keys of one board: its sorted set, its times, and for a combined board the boards it
/// combines (each with its times). All in one hash tag.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) board: String,
    pub(crate) times: String,
    pub(crate) sources: Vec<(String, String)>,
}

/// How a board is read: its order, tie policy, and for a combined board how scores combine
/// and how long the combination is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) order: Order,
    pub(crate) ties: Ties,
    pub(crate) aggregate: Aggregate,
    pub(crate) refresh: Duration,
}

impl Shape {
    pub(super) fn high(&self) -> bool {
        self.order == Order::HighFirst
    }

    fn arguments(&self, keys: &Keys, invocation: &mut impl ScriptArgs) {
        invocation.key(&keys.board).key(&keys.times);
        for (board, times) in &keys.sources {
            invocation.key(board).key(times);
        }
        invocation
            .arg(if self.high() { "high" } else { "low" })
            .arg(self.ties.name())
            .arg(self.aggregate.name())
            .arg(millis(self.refresh));
    }
}

/// When a submitted board expires: never, at a period's end of retention, or a TTL after the
/// latest submit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expiry {
    Never,
    At(Duration),
    After(Duration),
}

/// Submits `score` for `member`: `(changed, the member's score now)`.
pub(crate) struct Submit<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) member: &'a str,
    pub(crate) score: f64,
    pub(crate) policy: Policy,
    pub(crate) order: Order,
    pub(crate) expiry: Expiry,
}

impl AtomicOp for Submit<'_> {
    type Output = (bool, f64);
    type Reply = (bool, f64);

    fn script(&self) -> &'static Script {
        &SUBMIT
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        let (expiry, kind) = match self.expiry {
            Expiry::Never => (0, "ttl"),
            Expiry::At(at) => (crate::util::whole_millis(at).max(1), "at"),
            Expiry::After(ttl) => (millis(ttl), "ttl"),
        };
        invocation
            .key(&self.keys.board)
            .key(&self.keys.times)
            .arg(self.member)
            .arg(self.score)
            .arg(self.policy.name())
            .arg(if self.order == Order::HighFirst {
                "high"
            } else {
                "low"
            })
            .arg(expiry)
            .arg(kind);
    }

    fn answer(&self, reply: (bool, f64)) -> Result<(bool, f64)> {
        Ok(reply)
    }

    fn key(&self) -> &str {
        &self.keys.board
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> (bool, f64) {
        // Nanoseconds: two submits in one microsecond still rank first come first.
        let now = txn.clock().as_nanos() as f64;
        let (board, times) = (&self.keys.board, &self.keys.times);
        let zset = txn.state::<ZSet>(board);
        let old = zset.score(self.member);
        let changed = match self.policy {
            Policy::Sum => {
                zset.incr(self.member, self.score);
                old.is_none() || self.score != 0.0
            }
            Policy::Latest => {
                let changed = old != Some(self.score);
                if changed {
                    zset.insert(self.member, self.score);
                }
                changed
            }
            Policy::Best => {
                let better = old.is_none_or(|old| match self.order {
                    Order::HighFirst => self.score > old,
                    Order::LowFirst => self.score < old,
                });
                if better {
                    zset.insert(self.member, self.score);
                }
                better
            }
        };
        let score = zset.score(self.member).unwrap_or(self.score);
        if changed {
            txn.state::<ZSet>(times).insert(self.member, now);
        }
        for key in [board, times] {
            match self.expiry {
                Expiry::Never => {}
                Expiry::At(at) => {
                    txn.expire_at(key, at);
                }
                Expiry::After(ttl) => {
                    txn.expire(key, ttl);
                }
            }
        }
        (changed, score)
    }
}

/// A member's rank: `None` when it is not on the board.
pub(crate) struct Rank<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) shape: Shape,
    pub(crate) member: &'a str,
}

impl AtomicOp for Rank<'_> {
    type Output = Option<Entry>;
    type Reply = Option<(u64, f64, u64)>;

    fn script(&self) -> &'static Script {
        &RANK
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.shape.arguments(self.keys, invocation);
        invocation.arg(self.member);
    }

    fn answer(&self, reply: Option<(u64, f64, u64)>) -> Result<Option<Entry>> {
        Ok(reply.map(|(rank, score, _)| Entry {
            member: self.member.to_owned(),
            score,
            rank,
        }))
    }

    fn key(&self) -> &str {
        &self.keys.board
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Option<Entry> {
        combine(txn, self.keys, self.shape);
        let view = View::of(txn, self.keys, self.shape);
        let score = view.board?.score(self.member)?;
        let (position, rank) = view.place(self.member, score);
        Some(Entry {
            member: self.member.to_owned(),
            score,
            rank: match self.shape.ties {
                Ties::Ordinal => position + 1,
                _ => rank,
            },
        })
    }
}

/// The members at positions `[start, start + count)`, or `start` places above `around` and
/// on to `count` members.
pub(crate) struct Page<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) shape: Shape,
    pub(crate) start: u64,
    pub(crate) count: u64,
    pub(crate) around: Option<&'a str>,
}

impl AtomicOp for Page<'_> {
    type Output = Vec<Entry>;
    type Reply = Vec<(String, f64, u64)>;

    fn script(&self) -> &'static Script {
        &PAGE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        self.shape.arguments(self.keys, invocation);
        invocation.arg(self.start).arg(self.count);
        if let Some(member) = self.around {
            invocation.arg(member);
        }
    }

    fn answer(&self, reply: Vec<(String, f64, u64)>) -> Result<Vec<Entry>> {
        Ok(reply
            .into_iter()
            .map(|(member, score, rank)| Entry {
                member,
                score,
                rank,
            })
            .collect())
    }

    fn key(&self) -> &str {
        &self.keys.board
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Vec<Entry> {
        combine(txn, self.keys, self.shape);
        let view = View::of(txn, self.keys, self.shape);
        let Some(board) = view.board else {
            return Vec::new();
        };
        let (start, end) = match self.around {
            Some(member) => match board.score(member) {
                Some(score) => {
                    let position = view.place(member, score).0;
                    let start = position.saturating_sub(self.start);
                    let end = start
                        .saturating_add(self.count)
                        .min(position.saturating_add(self.start).saturating_add(1));
                    (start, end)
                }
                None => return Vec::new(),
            },
            None => (self.start, self.start.saturating_add(self.count)),
        };
        // Every member in the board's order, walked up to the page's end.
        let mut out = Vec::new();
        let mut position = 0u64;
        let mut scores: Vec<f64> = Vec::new();
        let ordered: Box<dyn Iterator<Item = (&str, f64)>> = if self.shape.order == Order::HighFirst
        {
            Box::new(board.ascending().rev())
        } else {
            Box::new(board.ascending())
        };
        for (_, score) in ordered {
            if scores.last() != Some(&score) {
                scores.push(score);
            }
            if position >= end {
                break;
            }
            position += 1;
        }
        position = 0;
        for (dense, score) in (1u64..).zip(scores) {
            let group = view.group(score);
            let group_rank = position + 1;
            for (i, member) in group.iter().enumerate() {
                let at = position + i as u64;
                if at >= start && at < end {
                    out.push(Entry {
                        member: (*member).to_owned(),
                        score,
                        rank: match self.shape.ties {
                            Ties::Ordinal => at + 1,
                            Ties::Competition => group_rank,
                            Ties::Dense => dense,
                        },
                    });
                }
            }
            position += group.len() as u64;
            if position >= end {
                break;
            }
        }
        out
    }
}

/// Removes a member: `true` when it was on the board.
pub(crate) struct Remove<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) member: &'a str,
}

impl AtomicOp for Remove<'_> {
    type Output = bool;
    type Reply = bool;

    fn script(&self) -> &'static Script {
        &REMOVE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(&self.keys.board)
            .key(&self.keys.times)
            .arg(self.member);
    }

    fn answer(&self, removed: bool) -> Result<bool> {
        Ok(removed)
    }

    fn key(&self) -> &str {
        &self.keys.board
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        let mut removed = false;
        for key in [&self.keys.times, &self.keys.board] {
            if txn.state_if::<ZSet>(key).is_some() {
                let zset = txn.state::<ZSet>(key);
                removed = zset.remove(self.member);
                if zset.len() == 0 {
                    txn.del(key);
                }
            }
        }
        removed
    }
}

/// `ZCARD` of a plain board (a combined one is counted through [`Page`]'s building).
pub(crate) struct Size<'a> {
    pub(crate) board: &'a str,
}

impl CommandOp for Size<'_> {
    type Output = u64;
    type Reply = (u64,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("ZCARD").arg(self.board);
        pipe
    }

    fn answer(&self, (n,): (u64,)) -> Result<u64> {
        Ok(n)
    }

    fn key(&self) -> &str {
        self.board
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<u64> {
        Ok(txn
            .state_if::<ZSet>(self.board)
            .map_or(0, |z| z.len() as u64))
    }

    fn name(&self) -> &'static str {
        "ZCARD"
    }
}

/// `ZSCORE` of a plain board.
pub(crate) struct ScoreOf<'a> {
    pub(crate) board: &'a str,
    pub(crate) member: &'a str,
}

impl CommandOp for ScoreOf<'_> {
    type Output = Option<f64>;
    type Reply = (Option<f64>,);

    fn commands(&self) -> Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("ZSCORE").arg(self.board).arg(self.member);
        pipe
    }

    fn answer(&self, (score,): (Option<f64>,)) -> Result<Option<f64>> {
        Ok(score)
    }

    fn key(&self) -> &str {
        self.board
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<Option<f64>> {
        Ok(txn
            .state_if::<ZSet>(self.board)
            .and_then(|z| z.score(self.member)))
    }

    fn name(&self) -> &'static str {
        "ZSCORE"
    }
}
