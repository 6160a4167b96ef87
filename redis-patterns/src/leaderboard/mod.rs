//! Leaderboards on sorted sets: [`Leaderboard`] submits scores under a policy (best, latest,
//! sum) and reads the top, pages, a member's rank and its neighbours, with a tie policy, on
//! all-time boards, periodic boards (daily, weekly, custom) and boards combining several
//! periods.
//!
//! A board `"chess"` (namespace `ns`) is two sorted sets in one hash tag:
//! `ns:{chess}:lb` (members by score) and `ns:{chess}:lb:t` (members by the server time their
//! current score was reached: equal scores rank first come first). A periodic board's keys
//! carry the period, `ns:{chess}:lb:<period ms>:<index>`, and expire when `keep` periods have
//! started after it; all periods of a board share its hash tag, so a combined board is one
//! `ZUNIONSTORE` on a cluster too.
//!
//! A submit is one script (read, compare, write, expiry), one round trip. A page (`top`,
//! `page`) is first read as the hand-written code reads it, one plain `ZREVRANGE` of the page
//! and its neighbour on either side: when no two of them share a score, that read is the
//! answer, places are ranks, and the server does what it does for the hand-written read. A
//! tie on the page or across its edges (or dense ranks past the first page) needs the times:
//! the page is then read again by a script that orders equal scores by time and ranks by the
//! tie policy (a second round trip). `around` and `rank` are one script each.
//!
//! | operation | cost on Redis |
//! |---|---|
//! | [`submit`](Leaderboard::submit) | O(log n) |
//! | [`top`](Leaderboard::top), [`page`](Leaderboard::page), [`around`](Leaderboard::around) | O(log n + m + k), m members shown, k members tied with the first and last shown |
//! | [`rank`](Leaderboard::rank) | O(log n + k), k members tied with it; [`Ties::Dense`] adds O(d log n) for d distinct better scores |
//! | [`score`](Leaderboard::score), [`size`](Leaderboard::size), [`remove`](Leaderboard::remove) | O(1) to O(log n) |
//!
//! On `mem://`, positions are found by walking the board: O(position).

#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod keys;
mod ops;
mod plain;
pub(crate) mod stats;
mod terms;
mod view;
pub(crate) mod zset;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::AtomicOp;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::util::window::Windows;

use self::ops::{Expiry, Page, Rank, Remove, ScoreOf, Shape, Size, Submit};
use self::plain::PlainPage;
pub use self::stats::LeaderboardStats;
use self::stats::{Counters, Event};
use self::terms::Aggregate;
pub use self::terms::{Entry, Order, Policy, Submitted, Ties};

/// The most members one read returns ([`top`](Leaderboard::top), [`page`](Leaderboard::page),
/// [`around`](Leaderboard::around) are clamped to it).
pub const MAX_PAGE: usize = 1000;

/// A leaderboard: `board.submit("alice", 1200.0)`, `board.top(10)`, `board.rank("alice")`.
/// Cheap to clone; clones share their stats.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use redis_patterns::Client;
/// use redis_patterns::leaderboard::{Leaderboard, Ties};
///
/// let client = Client::new("mem://")?; // or redis://…
/// let board = Leaderboard::new("chess").client(client);
/// board.submit("alice", 1200.0).await?;
/// board.submit("bob", 1350.0).await?;
/// board.submit("carol", 1200.0).await?;
/// assert!(!board.submit("alice", 1100.0).await?.changed, "a personal best stays");
///
/// let top: Vec<(String, u64)> = board.top(3).await?.into_iter().map(|e| (e.member, e.rank)).collect();
/// assert_eq!(top, [("bob".into(), 1), ("alice".into(), 2), ("carol".into(), 3)]); // alice came first
/// assert_eq!(board.rank("carol").await?.map(|e| e.rank), Some(3));
/// let shared = board.clone().ties(Ties::Competition);
/// assert_eq!(shared.rank("carol").await?.map(|e| e.rank), Some(2));
/// assert_eq!(board.around("alice", 1).await?.len(), 3, "bob, alice and carol");
/// # Ok(()) }
/// ```
///
/// Scores are finite `f64`s (exact for integers up to 2^53); a NaN or infinite score is
/// refused with [`Error::Config`] before it reaches Redis.
#[derive(Clone)]
pub struct Leaderboard {
    settings: Arc<Settings>,
    counters: Arc<Counters>,
}

#[derive(Clone)]
struct Settings {
    name: String,
    client: Option<Client>,
    order: Order,
    policy: Policy,
    ties: Ties,
    scope: Scope,
    ttl: Option<Duration>,
}

/// Which board the object reads and writes.
#[derive(Clone, Copy)]
enum Scope {
    /// The one all-time board.
    AllTime,
    /// The current period of periodic boards, or `back` periods before it.
    Period { windows: Windows, back: u32 },
    /// The union of the latest `last` periods, rebuilt after `refresh`.
    Combined {
        windows: Windows,
        last: u32,
        aggregate: Aggregate,
        refresh: Duration,
    },
}

impl fmt::Debug for Leaderboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("Leaderboard")
            .field("name", &s.name)
            .field("order", &s.order)
            .field("policy", &s.policy)
            .field("ties", &s.ties)
            .finish_non_exhaustive()
    }
}

impl Leaderboard {
    /// The all-time board `name`: higher scores first, personal bests, ordinal ranks. `name`
    /// reads as a key template of its shape (`"game:42"` is the board `game:<id>` for 42).
    pub fn new(name: impl Into<String>) -> Self {
        Leaderboard {
            settings: Arc::new(Settings {
                name: name.into(),
                client: None,
                order: Order::HighFirst,
                policy: Policy::Best,
                ties: Ties::Ordinal,
                scope: Scope::AllTime,
                ttl: None,
            }),
            counters: Arc::new(Counters::new()),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.settings));
        self
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(self, client: Client) -> Self {
        self.with(|s| s.client = Some(client))
    }

    /// Which scores are better ([`Order::HighFirst`] by default).
    pub fn order(self, order: Order) -> Self {
        self.with(|s| s.order = order)
    }

    /// What a submit does with an existing score ([`Policy::Best`] by default).
    pub fn policy(self, policy: Policy) -> Self {
        self.with(|s| s.policy = policy)
    }

    /// How equal scores rank ([`Ties::Ordinal`] by default). A read setting: boards written
    /// under one are read under any.
    pub fn ties(self, ties: Ties) -> Self {
        self.with(|s| s.ties = ties)
    }

    /// An all-time board expires `ttl` after its latest submit (by default it never expires:
    /// it is the record itself, not a cache of it). Periodic boards expire with their period.
    pub fn ttl(self, ttl: Duration) -> Self {
        self.with(|s| s.ttl = Some(ttl))
    }

    /// One board per day (UTC), each kept until `keep` days have started after it.
    pub fn daily(self, keep: u32) -> Self {
        self.every(Duration::from_secs(86_400), Duration::ZERO, keep)
    }

    /// One board per week (from Monday 00:00 UTC), each kept until `keep` weeks have started
    /// after it.
    pub fn weekly(self, keep: u32) -> Self {
        // The epoch was a Thursday: weeks start 4 days after it.
        self.every(
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(4 * 86_400),
            keep,
        )
    }

    /// One board per `period` (starting `offset` after the Unix epoch's multiples of it),
    /// each kept until `keep` periods have started after it (1 to
    /// [`MAX_KEEP`](crate::counter::MAX_KEEP)).
    pub fn every(self, period: Duration, offset: Duration, keep: u32) -> Self {
        let windows = Windows::new(period, keep).offset(offset);
        self.with(|s| s.scope = Scope::Period { windows, back: 0 })
    }

    /// The period `back` periods before the current one, of a periodic board (`previous(1)`:
    /// yesterday's daily board). Reads only; at most `keep - 1`.
    pub fn previous(self, back: u32) -> Self {
        self.with(|s| {
            if let Scope::Period { windows, .. } = s.scope {
                s.scope = Scope::Period {
                    windows,
                    back: back.min(windows.keep().saturating_sub(1)),
                };
            }
        })
    }

    /// The board combining the latest `last` periods of a periodic board, the current one
    /// included: a member's scores add up under [`Policy::Sum`], the best counts otherwise
    /// (`ZUNIONSTORE … AGGREGATE`). Built on first read and kept for `refresh`, so submits
    /// show in it after at most `refresh`. Reads only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), redis_patterns::Error> {
    /// use std::time::Duration;
    /// use redis_patterns::Client;
    /// use redis_patterns::leaderboard::{Leaderboard, Policy};
    ///
    /// // Points per day, each day kept for a week; and the week so far.
    /// let today = Leaderboard::new("points").policy(Policy::Sum).daily(7).client(Client::new("mem://")?);
    /// today.submit("ann", 30.0).await?;
    /// today.submit("ann", 12.0).await?;
    /// let week = today.clone().combined(7, Duration::from_secs(60));
    /// assert_eq!(week.score("ann").await?, Some(42.0));
    /// assert!(today.clone().previous(1).top(10).await?.is_empty(), "nothing yesterday");
    /// # Ok(()) }
    /// ```
    pub fn combined(self, last: u32, refresh: Duration) -> Self {
        self.with(|s| {
            let windows = match s.scope {
                Scope::Period { windows, .. } | Scope::Combined { windows, .. } => windows,
                Scope::AllTime => return,
            };
            let aggregate = match (s.policy, s.order) {
                (Policy::Sum, _) => Aggregate::Sum,
                (_, Order::HighFirst) => Aggregate::Max,
                (_, Order::LowFirst) => Aggregate::Min,
            };
            s.scope = Scope::Combined {
                windows,
                last: last.clamp(1, windows.keep()),
                aggregate,
                refresh,
            };
        })
    }

    /// Submits `score` for `member` under the board's [`Policy`], atomically; on a periodic
    /// board, to the current period. Fails with [`Error::Config`] on a read-only view
    /// ([`previous`](Self::previous), [`combined`](Self::combined)) or a score that is not
    /// finite.
    pub async fn submit(&self, member: &str, score: f64) -> Result<Submitted> {
        if !score.is_finite() {
            return Err(Error::Config(format!(
                "a leaderboard score must be finite, not {score}"
            )));
        }
        let s = &self.settings;
        let (keys, expiry) = match s.scope {
            Scope::AllTime => (
                self.keys_of(None),
                s.ttl.map_or(Expiry::Never, Expiry::After),
            ),
            Scope::Period { windows, back: 0 } => {
                let current = windows.current();
                (
                    self.keys_of(Some((windows, current))),
                    Expiry::At(windows.expires_at(current)),
                )
            }
            Scope::Period { .. } | Scope::Combined { .. } => {
                return Err(Error::Config(format!(
                    "leaderboard {:?}: a past period or a combined board is read-only; submit to the board itself",
                    s.name
                )));
            }
        };
        let op = Submit {
            keys: &keys,
            member,
            score: score + 0.0,
            policy: s.policy,
            order: s.order,
            expiry,
        };
        let (changed, score) = self.run(&op, Event::Submitted).await?;
        Ok(Submitted { changed, score })
    }

    /// The best `n` members (at most [`MAX_PAGE`]), best first.
    pub async fn top(&self, n: usize) -> Result<Vec<Entry>> {
        self.page(0, n).await
    }

    /// `n` members (at most [`MAX_PAGE`]) from 0-based position `offset` of the board's
    /// order: `page(20, 10)` is ranks 21 to 30 of an ordinal board.
    ///
    /// A page that no tie decides (no two equal scores among its members and its neighbour
    /// on either side) is one plain `ZREVRANGE`, as the hand-written read; otherwise the
    /// page is read again by a script that orders equal scores first come first.
    pub async fn page(&self, offset: usize, n: usize) -> Result<Vec<Entry>> {
        let keys = self.keys();
        let shape = self.shape();
        let (start, count) = (offset as u64, n.min(MAX_PAGE) as u64);
        if keys.sources.is_empty() && PlainPage::applies(shape.ties, start) {
            let plain = PlainPage {
                board: &keys.board,
                order: shape.order,
                ties: shape.ties,
                start,
                count,
            };
            let read = self.resolved_client().backend().exec(&plain).await;
            match read {
                Ok(Some(entries)) => {
                    self.counters.count(Event::Read);
                    return Ok(entries);
                }
                Ok(None) => {}
                Err(e) => {
                    self.counters.count(Event::BackendError);
                    return Err(e);
                }
            }
        }
        let op = Page {
            keys: &keys,
            shape,
            start,
            count,
            around: None,
        };
        self.run(&op, Event::Read).await
    }

    /// `member` with up to `n` members above and `n` below it (at most [`MAX_PAGE`] in all);
    /// empty when it is not on the board.
    pub async fn around(&self, member: &str, n: usize) -> Result<Vec<Entry>> {
        let keys = self.keys();
        let op = Page {
            keys: &keys,
            shape: self.shape(),
            start: n as u64,
            count: n.saturating_mul(2).saturating_add(1).min(MAX_PAGE) as u64,
            around: Some(member),
        };
        self.run(&op, Event::Read).await
    }

    /// `member`'s rank (1-based, by the board's [`Ties`]) and score; `None` when it is not on
    /// the board.
    pub async fn rank(&self, member: &str) -> Result<Option<Entry>> {
        let keys = self.keys();
        let op = Rank {
            keys: &keys,
            shape: self.shape(),
            member,
        };
        self.run(&op, Event::Read).await
    }

    /// `member`'s score; `None` when it is not on the board.
    pub async fn score(&self, member: &str) -> Result<Option<f64>> {
        if matches!(self.settings.scope, Scope::Combined { .. }) {
            return Ok(self.rank(member).await?.map(|e| e.score));
        }
        let keys = self.keys();
        let op = ScoreOf {
            board: &keys.board,
            member,
        };
        self.exec(&op).await
    }

    /// The number of members on the board.
    pub async fn size(&self) -> Result<u64> {
        if let Scope::Combined { .. } = self.settings.scope {
            // Builds the combination if needed, then counts it.
            self.top(0).await?;
        }
        let keys = self.keys();
        self.exec(&Size { board: &keys.board }).await
    }

    /// Removes `member` (from the current period of a periodic board); `true` when it was on
    /// the board.
    pub async fn remove(&self, member: &str) -> Result<bool> {
        let keys = self.keys();
        self.run(
            &Remove {
                keys: &keys,
                member,
            },
            Event::Submitted,
        )
        .await
    }

    /// Activity of this board and its clones.
    pub fn stats(&self) -> LeaderboardStats {
        self.counters.snapshot()
    }

    fn resolved_client(&self) -> &Client {
        match &self.settings.client {
            Some(client) => client,
            None => Client::default_client(),
        }
    }

    fn shape(&self) -> Shape {
        let s = &self.settings;
        let (aggregate, refresh) = match s.scope {
            Scope::Combined {
                aggregate, refresh, ..
            } => (aggregate, refresh),
            _ => (Aggregate::Max, Duration::ZERO),
        };
        Shape {
            order: s.order,
            ties: s.ties,
            aggregate,
            refresh,
        }
    }

    async fn run<O: AtomicOp>(&self, op: &O, event: Event) -> Result<O::Output> {
        let result = self.resolved_client().backend().run(op).await;
        self.count(&result, event);
        result
    }

    async fn exec<O: crate::backend::CommandOp>(&self, op: &O) -> Result<O::Output> {
        let result = self.resolved_client().backend().exec(op).await;
        self.count(&result, Event::Read);
        result
    }

    fn count<T>(&self, result: &Result<T>, event: Event) {
        self.counters.count(match result {
            Ok(_) => event,
            Err(_) => Event::BackendError,
        });
    }
}
