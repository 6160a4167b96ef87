//! A sorted set for the `mem://` twins of the leaderboard's scripts: members ordered by score,
//! then by member bytes, as Redis orders them. Positions are found by walking the ordered set:
//! O(position), where Redis's skip list takes O(log n); fine for the boards of development,
//! tests and single-instance services.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

/// A score ordered as Redis orders them (`-0.0` is stored as `0.0`; NaN never gets in).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Score(pub(crate) f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Default)]
pub(crate) struct ZSet {
    scores: HashMap<String, f64>,
    order: BTreeSet<(Score, String)>,
}

impl ZSet {
    pub(crate) fn len(&self) -> usize {
        self.scores.len()
    }

    pub(crate) fn score(&self, member: &str) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// `ZADD`: sets `member`'s score.
    pub(crate) fn insert(&mut self, member: &str, score: f64) {
        let score = if score == 0.0 { 0.0 } else { score };
        if let Some(old) = self.scores.insert(member.to_owned(), score) {
            self.order.remove(&(Score(old), member.to_owned()));
        }
        self.order.insert((Score(score), member.to_owned()));
    }

    /// `ZINCRBY`: adds `by` to `member`'s score (0 when absent); the new score.
    pub(crate) fn incr(&mut self, member: &str, by: f64) -> f64 {
        let score = self.score(member).unwrap_or(0.0) + by;
        self.insert(member, score);
        score
    }

    /// `ZREM`: `true` when the member was there.
    pub(crate) fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(old) => {
                self.order.remove(&(Score(old), member.to_owned()));
                true
            }
            None => false,
        }
    }

    /// Members from lowest to highest score.
    pub(crate) fn ascending(&self) -> impl DoubleEndedIterator<Item = (&str, f64)> {
        self.order.iter().map(|(s, m)| (m.as_str(), s.0))
    }

    /// Members with a score strictly above (`high`) or below `score`.
    pub(crate) fn count_beyond(&self, score: f64, high: bool) -> usize {
        let pivot = (Score(score), String::new());
        if high {
            self.order
                .range((Bound::Excluded(pivot), Bound::Unbounded))
                .filter(|(s, _)| s.0 > score)
                .count()
        } else {
            self.order.range(..pivot).count()
        }
    }

    /// The members with exactly `score`, in member order.
    pub(crate) fn with_score(&self, score: f64) -> Vec<&str> {
        let from = (Score(score), String::new());
        self.order
            .range(from..)
            .take_while(|(s, _)| s.0 == score)
            .map(|(_, m)| m.as_str())
            .collect()
    }

    /// The number of distinct scores strictly above (`high`) or below `score`.
    pub(crate) fn distinct_beyond(&self, score: f64, high: bool) -> usize {
        let mut scores: Vec<f64> = self
            .order
            .iter()
            .map(|(s, _)| s.0)
            .filter(|s| if high { *s > score } else { *s < score })
            .collect();
        scores.dedup();
        scores.len()
    }

    /// `ZUNIONSTORE … AGGREGATE`: every member of `sets`, its scores combined by `combine`.
    pub(crate) fn union<'a>(
        sets: impl Iterator<Item = &'a ZSet>,
        combine: fn(f64, f64) -> f64,
    ) -> ZSet {
        let mut out = ZSet::default();
        for set in sets {
            for (member, score) in set.ascending() {
                let combined = match out.score(member) {
                    Some(old) => combine(old, score),
                    None => score,
                };
                out.insert(member, combined);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_ordered_by_score_then_bytes() {
        let mut z = ZSet::default();
        z.insert("b", 1.0);
        z.insert("a", 1.0);
        z.insert("c", -0.0);
        z.insert("d", 5.0);
        let order: Vec<&str> = z.ascending().map(|(m, _)| m).collect();
        assert_eq!(order, ["c", "a", "b", "d"]);
        assert_eq!(z.count_beyond(1.0, true), 1);
        assert_eq!(z.count_beyond(1.0, false), 1);
        assert_eq!(z.with_score(1.0), ["a", "b"]);
        assert_eq!(z.distinct_beyond(0.0, true), 2);
        assert_eq!(z.incr("a", 2.5), 3.5);
        assert!(z.remove("d") && !z.remove("d"));
        assert_eq!(z.len(), 3);
    }
}
