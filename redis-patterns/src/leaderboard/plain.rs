//! A page of a board read with one plain `ZREVRANGE` (`ZRANGE` on a lower-first board): the
//! hand-written read, at the hand-written read's cost. Redis orders equal scores by member,
//! the board orders them first come first, so the plain read answers only when no two scores
//! it needs to tell apart are equal: the page's own, and its neighbour on either side (a
//! neighbour with the score of the page's first or last member means that score's group
//! crosses the page's edge, and which of its members the page shows depends on their times).
//! Otherwise it answers `None`, and the caller reads the page with `page.lua`, which orders
//! ties. A board with distinct scores, the common case for scores of fine grain, is then one
//! plain command per page whatever its tie policy — except dense ranks past the first page,
//! which count the distinct scores above the page and always take the script.

use redis::Pipeline;

use super::zset::ZSet;
use super::{Entry, Order, Ties};
use crate::backend::{CommandOp, Txn};
use crate::error::Result;

/// The members at 0-based positions `[start, start + count)` of a plain (not combined) board,
/// when no tie decides them.
pub(crate) struct PlainPage<'a> {
    pub(crate) board: &'a str,
    pub(crate) order: Order,
    pub(crate) ties: Ties,
    pub(crate) start: u64,
    pub(crate) count: u64,
}

/// Positions Redis accepts in a range (`i64`): a page past them is empty.
const LAST_POSITION: u64 = i64::MAX as u64;

impl PlainPage<'_> {
    /// Whether the plain read can answer this page at all: dense ranks past the first page
    /// depend on the number of distinct scores above it.
    pub(crate) fn applies(ties: Ties, start: u64) -> bool {
        ties != Ties::Dense || start == 0
    }

    /// The positions read: the page and its neighbour on either side.
    fn range(&self) -> (u64, u64) {
        let from = self.start.saturating_sub(1).min(LAST_POSITION);
        let to = self.start.saturating_add(self.count).min(LAST_POSITION);
        (from, to)
    }

    /// The page from the members at positions `range()`, in the board's order and by member
    /// within a score; `None` when a tie decides it.
    fn decide(&self, read: Vec<(String, f64)>) -> Option<Vec<Entry>> {
        if self.start > LAST_POSITION {
            return Some(Vec::new());
        }
        if !Self::applies(self.ties, self.start) {
            return None;
        }
        let mut read = read.into_iter();
        let before = if self.start > 0 { read.next() } else { None };
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        let page: Vec<(String, f64)> = read.by_ref().take(count).collect();
        let after = read.next();
        let scores: Vec<f64> = before
            .iter()
            .chain(&page)
            .chain(after.iter())
            .map(|(_, score)| *score)
            .collect();
        if scores.windows(2).any(|pair| pair[0] == pair[1]) {
            return None;
        }
        // Every member above the page has a strictly better score (no tie crosses its first
        // edge), so a member's place is its rank under each policy; for dense ranks the page
        // starts at the top.
        Some(
            (self.start.saturating_add(1)..)
                .zip(page)
                .map(|(rank, (member, score))| Entry {
                    member,
                    score,
                    rank,
                })
                .collect(),
        )
    }
}

impl CommandOp for PlainPage<'_> {
    type Output = Option<Vec<Entry>>;
    type Reply = (Vec<(String, f64)>,);

    fn commands(&self) -> Pipeline {
        let (from, to) = self.range();
        let mut pipe = redis::pipe();
        let command = match self.order {
            Order::HighFirst => "ZREVRANGE",
            Order::LowFirst => "ZRANGE",
        };
        pipe.cmd(command)
            .arg(self.board)
            .arg(from)
            .arg(to)
            .arg("WITHSCORES");
        pipe
    }

    fn answer(&self, (read,): Self::Reply) -> Result<Option<Vec<Entry>>> {
        Ok(self.decide(read))
    }

    fn key(&self) -> &str {
        self.board
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Result<Option<Vec<Entry>>> {
        let (from, to) = self.range();
        let read = match txn.state_if::<ZSet>(self.board) {
            Some(board) => {
                let ordered: Box<dyn Iterator<Item = (&str, f64)>> = match self.order {
                    Order::HighFirst => Box::new(board.ascending().rev()),
                    Order::LowFirst => Box::new(board.ascending()),
                };
                let skip = usize::try_from(from).unwrap_or(usize::MAX);
                let take = usize::try_from(to - from).map_or(usize::MAX, |n| n.saturating_add(1));
                ordered
                    .skip(skip)
                    .take(take)
                    .map(|(member, score)| (member.to_owned(), score))
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(self.decide(read))
    }

    fn name(&self) -> &'static str {
        match self.order {
            Order::HighFirst => "ZREVRANGE",
            Order::LowFirst => "ZRANGE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(ties: Ties, start: u64, count: u64) -> PlainPage<'static> {
        PlainPage {
            board: "b",
            order: Order::HighFirst,
            ties,
            start,
            count,
        }
    }

    fn read(scores: &[f64]) -> Vec<(String, f64)> {
        scores
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("m{i}"), *s))
            .collect()
    }

    fn ranks(entries: Option<Vec<Entry>>) -> Option<Vec<(String, u64)>> {
        entries.map(|e| e.into_iter().map(|e| (e.member, e.rank)).collect())
    }

    #[test]
    fn distinct_scores_answer_with_places_as_ranks() {
        let got = ranks(page(Ties::Competition, 2, 2).decide(read(&[9.0, 8.0, 7.0, 6.0])));
        assert_eq!(got, Some(vec![("m1".into(), 3), ("m2".into(), 4)]));
        let top = ranks(page(Ties::Dense, 0, 2).decide(read(&[9.0, 8.0, 7.0])));
        assert_eq!(top, Some(vec![("m0".into(), 1), ("m1".into(), 2)]));
    }

    #[test]
    fn a_tie_inside_or_across_an_edge_defers_to_the_script() {
        assert!(
            page(Ties::Ordinal, 0, 3)
                .decide(read(&[9.0, 8.0, 8.0, 7.0]))
                .is_none()
        );
        assert!(
            page(Ties::Ordinal, 1, 2)
                .decide(read(&[9.0, 9.0, 8.0, 7.0]))
                .is_none()
        );
        assert!(
            page(Ties::Ordinal, 0, 2)
                .decide(read(&[9.0, 8.0, 8.0]))
                .is_none()
        );
        // A tie beyond the neighbours does not matter.
        assert!(
            page(Ties::Ordinal, 0, 1)
                .decide(read(&[9.0, 8.0]))
                .is_some()
        );
    }

    #[test]
    fn dense_ranks_past_the_first_page_and_pages_past_the_end() {
        assert!(
            page(Ties::Dense, 1, 2)
                .decide(read(&[9.0, 8.0, 7.0]))
                .is_none()
        );
        assert_eq!(
            ranks(page(Ties::Ordinal, 5, 2).decide(Vec::new())),
            Some(vec![])
        );
        assert_eq!(
            ranks(page(Ties::Ordinal, 3, 2).decide(read(&[1.0]))),
            Some(vec![])
        );
        assert_eq!(
            ranks(page(Ties::Ordinal, 0, 0).decide(read(&[1.0]))),
            Some(vec![])
        );
    }
}
