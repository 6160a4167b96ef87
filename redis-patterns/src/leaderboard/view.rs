//! The `mem://` twins' reading of a board, as `_board.lua` reads it: a combined board built
//! from its sources when missing, members of equal score first come first, and a member's
//! place and rank.

use super::Ties;
use super::ops::{Keys, Shape};
use super::zset::ZSet;
use crate::backend::Txn;

/// `_board.lua`'s first step: a combined board missing from the store is built from its
/// sources, and kept for `refresh`.
pub(super) fn combine(txn: &mut Txn<'_>, keys: &Keys, shape: Shape) {
    if keys.sources.is_empty() || txn.state_if::<ZSet>(&keys.board).is_some() {
        return;
    }
    let scores = {
        let sets = keys
            .sources
            .iter()
            .filter_map(|(board, _)| txn.state_if::<ZSet>(board));
        ZSet::union(sets, shape.aggregate.combine())
    };
    let times = {
        let sets = keys
            .sources
            .iter()
            .filter_map(|(_, times)| txn.state_if::<ZSet>(times));
        ZSet::union(sets, f64::max)
    };
    for (key, set) in [(&keys.board, scores), (&keys.times, times)] {
        if set.len() == 0 {
            txn.del(key);
        } else {
            *txn.state::<ZSet>(key) = set;
            txn.expire(key, shape.refresh);
        }
    }
}

/// A board and its times, read as `_board.lua` reads them.
pub(super) struct View<'t> {
    pub(super) board: Option<&'t ZSet>,
    times: Option<&'t ZSet>,
    shape: Shape,
}

impl<'t> View<'t> {
    pub(super) fn of(txn: &'t Txn<'_>, keys: &Keys, shape: Shape) -> Self {
        View {
            board: txn.state_if::<ZSet>(&keys.board),
            times: txn.state_if::<ZSet>(&keys.times),
            shape,
        }
    }

    /// The members with `score`, first come first (by time, then by member).
    pub(super) fn group(&self, score: f64) -> Vec<&'t str> {
        let Some(board) = self.board else {
            return Vec::new();
        };
        let mut members = board.with_score(score);
        let at = |m: &str| self.times.and_then(|t| t.score(m)).unwrap_or(f64::INFINITY);
        members.sort_by(|a, b| at(a).total_cmp(&at(b)).then_with(|| a.cmp(b)));
        members
    }

    /// A member's 0-based position in the board's order, and its rank by the tie policy.
    pub(super) fn place(&self, member: &str, score: f64) -> (u64, u64) {
        let Some(board) = self.board else {
            return (0, 0);
        };
        let high = self.shape.high();
        let better = board.count_beyond(score, high) as u64;
        let within = self
            .group(score)
            .iter()
            .position(|m| *m == member)
            .unwrap_or(0) as u64;
        let rank = match self.shape.ties {
            Ties::Dense => board.distinct_beyond(score, high) as u64 + 1,
            _ => better + 1,
        };
        (better + within, rank)
    }
}
