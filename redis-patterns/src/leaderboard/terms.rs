//! The terms of a leaderboard: which scores are better ([`Order`]), what a submit keeps
//! ([`Policy`]), how equal scores rank ([`Ties`]), how a combined board combines periods, and
//! what reads and submits answer ([`Entry`], [`Submitted`]).

/// Which scores are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Higher scores rank first (points). The default.
    #[default]
    HighFirst,
    /// Lower scores rank first (times, strokes).
    LowFirst,
}

/// What a submit does with a member's existing score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Keeps the better of the two (a personal best). The default.
    #[default]
    Best,
    /// Replaces it (a rating).
    Latest,
    /// Adds to it (`ZINCRBY`: points earned).
    Sum,
}

impl Policy {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Policy::Best => "best",
            Policy::Latest => "latest",
            Policy::Sum => "sum",
        }
    }
}

/// How members with equal scores are ranked. Whatever the policy, they are *listed* first
/// come first: the one that reached the score earlier comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ties {
    /// 1, 2, 3, 4: every member its own rank, equal scores first come first. The default.
    #[default]
    Ordinal,
    /// 1, 2, 2, 4: equal scores share a rank, and the next rank skips ("1224").
    Competition,
    /// 1, 2, 2, 3: equal scores share a rank, and the next rank follows ("1223").
    Dense,
}

impl Ties {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ties::Ordinal => "ordinal",
            Ties::Competition => "competition",
            Ties::Dense => "dense",
        }
    }
}

/// How a combined board combines a member's scores of several periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Sum,
    Max,
    Min,
}

impl Aggregate {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
        }
    }

    pub(crate) fn combine(self) -> fn(f64, f64) -> f64 {
        match self {
            Aggregate::Sum => |a, b| a + b,
            Aggregate::Max => f64::max,
            Aggregate::Min => f64::min,
        }
    }
}

/// A member on a board: its score and its rank (1-based, by the board's [`Ties`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Entry {
    /// The member.
    pub member: String,
    /// Its score.
    pub score: f64,
    /// Its rank, from 1.
    pub rank: u64,
}

/// What [`Leaderboard::submit`](super::Leaderboard::submit) did.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Submitted {
    /// Whether the member's score changed (under [`Policy::Best`], only a better score does).
    pub changed: bool,
    /// The member's score now.
    pub score: f64,
}
