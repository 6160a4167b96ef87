//! Leaderboards on a real redis-server, on `mem://` (and with the root features on the cluster
//! and behind Sentinel): a property test against an in-memory model (random submits under each
//! policy, ties, removals; every read compared), periodic and combined boards, and bad input.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Kind;
use redis_patterns::leaderboard::{Entry, Leaderboard, Order, Policy, Ties};
use redis_patterns::{Client, Error};

/// What a board holds, kept by hand: each member's score and when it was reached.
struct Model {
    policy: Policy,
    order: Order,
    members: HashMap<String, (f64, u64)>,
    clock: u64,
}

impl Model {
    fn new(policy: Policy, order: Order) -> Self {
        Model {
            policy,
            order,
            members: HashMap::new(),
            clock: 0,
        }
    }

    fn better(&self, a: f64, b: f64) -> bool {
        match self.order {
            Order::HighFirst => a > b,
            _ => a < b,
        }
    }

    /// `(changed, score now)`.
    fn submit(&mut self, member: &str, score: f64) -> (bool, f64) {
        let old = self.members.get(member).map(|(s, _)| *s);
        let new = match (self.policy, old) {
            (Policy::Sum, old) => old.unwrap_or(0.0) + score,
            (Policy::Best, Some(old)) if !self.better(score, old) => old,
            _ => score,
        };
        let changed = match (self.policy, old) {
            (Policy::Sum, Some(_)) => score != 0.0,
            (_, Some(old)) => new != old,
            (_, None) => true,
        };
        if changed {
            self.clock += 1;
            self.members.insert(member.to_owned(), (new, self.clock));
        }
        (changed, new)
    }

    fn remove(&mut self, member: &str) -> bool {
        self.members.remove(member).is_some()
    }

    /// Every member in the board's order, ranked under `ties`.
    fn ranked(&self, ties: Ties) -> Vec<(String, f64, u64)> {
        let mut all: Vec<(&String, f64, u64)> =
            self.members.iter().map(|(m, (s, t))| (m, *s, *t)).collect();
        all.sort_by(|a, b| {
            let by_score = match self.order {
                Order::HighFirst => b.1.total_cmp(&a.1),
                _ => a.1.total_cmp(&b.1),
            };
            by_score.then(a.2.cmp(&b.2)).then(a.0.cmp(b.0))
        });
        let scores: Vec<f64> = all.iter().map(|e| e.1).collect();
        all.iter()
            .enumerate()
            .map(|(i, (m, s, _))| {
                let better = scores.iter().filter(|x| self.better(**x, *s)).count() as u64;
                let mut distinct: Vec<f64> = scores
                    .iter()
                    .copied()
                    .filter(|x| self.better(*x, *s))
                    .collect();
                distinct.dedup();
                let rank = match ties {
                    Ties::Ordinal => i as u64 + 1,
                    Ties::Competition => better + 1,
                    _ => distinct.len() as u64 + 1,
                };
                ((*m).clone(), *s, rank)
            })
            .collect()
    }
}

fn triples(entries: Vec<Entry>) -> Vec<(String, f64, u64)> {
    entries
        .into_iter()
        .map(|e| (e.member, e.score, e.rank))
        .collect()
}

/// Compares every read of `board` with the model.
async fn reads_agree(board: &Leaderboard, model: &Model, rng: &mut fastrand::Rng, what: &str) {
    assert_eq!(
        board.size().await.unwrap(),
        model.members.len() as u64,
        "{what}: size"
    );
    for ties in [Ties::Ordinal, Ties::Competition, Ties::Dense] {
        let board = board.clone().ties(ties);
        let expected = model.ranked(ties);
        let all = triples(board.top(100).await.unwrap());
        assert_eq!(all, expected, "{what}: the whole board under {ties:?}");
        let offset = rng.usize(0..=expected.len());
        let n = rng.usize(0..6);
        let page = triples(board.page(offset, n).await.unwrap());
        let end = (offset + n).min(expected.len());
        assert_eq!(
            page,
            expected[offset..end],
            "{what}: page({offset}, {n}) under {ties:?}"
        );
        for (i, (member, score, rank)) in expected.iter().enumerate() {
            let got = board.rank(member).await.unwrap().unwrap();
            assert_eq!(
                (got.score, got.rank),
                (*score, *rank),
                "{what}: rank of {member} under {ties:?}"
            );
            if rng.u8(0..4) == 0 {
                let k = rng.usize(0..3);
                let around = triples(board.around(member, k).await.unwrap());
                let from = i.saturating_sub(k);
                let to = (i + k + 1).min(expected.len());
                assert_eq!(
                    around,
                    expected[from..to],
                    "{what}: around({member}, {k}) under {ties:?}"
                );
            }
        }
    }
    assert_eq!(board.rank("nobody").await.unwrap(), None);
    assert!(board.around("nobody", 2).await.unwrap().is_empty());
}

async fn boards_agree_with_a_model_under_random_submits_ties_and_removals(kind: Kind) {
    let client = common::client(kind, "leaderboard-model");
    let cases = [
        (Policy::Best, Order::HighFirst),
        (Policy::Best, Order::LowFirst),
        (Policy::Latest, Order::HighFirst),
        (Policy::Sum, Order::HighFirst),
        (Policy::Sum, Order::LowFirst),
    ];
    for seed in 0..10u64 {
        for (case, (policy, order)) in cases.into_iter().enumerate() {
            let mut rng = fastrand::Rng::with_seed(seed * 31 + case as u64);
            let board = Leaderboard::new(format!("model:s{seed}c{case}"))
                .client(client.clone())
                .policy(policy)
                .order(order);
            let mut model = Model::new(policy, order);
            for step in 0..60 {
                let member = format!("m{}", rng.u8(0..10));
                if rng.u8(0..8) == 0 {
                    let removed = board.remove(&member).await.unwrap();
                    assert_eq!(
                        removed,
                        model.remove(&member),
                        "seed {seed} {policy:?}: remove {member}"
                    );
                } else {
                    // Few distinct scores, so that ties are common; halves, and negatives.
                    let score = f64::from(rng.i8(-2..6)) / 2.0;
                    let got = board.submit(&member, score).await.unwrap();
                    let (changed, now) = model.submit(&member, score);
                    assert_eq!(
                        (got.changed, got.score),
                        (changed, now),
                        "seed {seed} {policy:?} {order:?}: submit {member} {score}"
                    );
                }
                if step % 15 == 14 {
                    let what = format!("seed {seed} {policy:?} {order:?} step {step}");
                    reads_agree(&board, &model, &mut rng, &what).await;
                }
            }
        }
    }
}

/// Sleeps until `offset` past the start of the next period of `width` on this host's clock.
async fn start_of_next_period(width: Duration, offset: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let width = width.as_millis();
    let wait = (now / width + 1) * width - now;
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap()) + offset).await;
}

async fn periodic_boards_keep_their_periods_and_combine_them(kind: Kind) {
    let client = common::client(kind, "leaderboard-periods");
    let period = Duration::from_millis(1000);
    let board = Leaderboard::new("daily:points")
        .client(client.clone())
        .policy(Policy::Sum)
        .every(period, Duration::ZERO, 3);
    start_of_next_period(period, Duration::from_millis(20)).await;
    board.submit("ann", 5.0).await.unwrap();
    board.submit("bob", 3.0).await.unwrap();
    start_of_next_period(period, Duration::from_millis(20)).await;
    board.submit("bob", 4.0).await.unwrap();
    board.submit("cid", 1.0).await.unwrap();
    let members = |entries: Vec<Entry>| -> Vec<(String, f64)> {
        entries.into_iter().map(|e| (e.member, e.score)).collect()
    };
    assert_eq!(
        members(board.top(10).await.unwrap()),
        [("bob".to_owned(), 4.0), ("cid".to_owned(), 1.0)],
        "today"
    );
    let yesterday = board.clone().previous(1);
    assert_eq!(
        members(yesterday.top(10).await.unwrap()),
        [("ann".to_owned(), 5.0), ("bob".to_owned(), 3.0)]
    );
    assert!(matches!(
        yesterday.submit("x", 1.0).await,
        Err(Error::Config(_))
    ));
    let both = board.clone().combined(2, Duration::from_secs(60));
    assert_eq!(
        members(both.top(10).await.unwrap()),
        [
            ("bob".to_owned(), 7.0),
            ("ann".to_owned(), 5.0),
            ("cid".to_owned(), 1.0)
        ],
        "the two days summed"
    );
    assert_eq!(both.size().await.unwrap(), 3);
    assert_eq!(both.score("bob").await.unwrap(), Some(7.0));
    // Best scores combine by the best.
    let best =
        Leaderboard::new("daily:best")
            .client(client.clone())
            .every(period, Duration::ZERO, 3);
    best.submit("ann", 2.0).await.unwrap();
    let combined = best.clone().combined(3, Duration::from_secs(60));
    assert_eq!(
        combined.rank("ann").await.unwrap().map(|e| e.score),
        Some(2.0)
    );
}

async fn bad_scores_are_refused_before_redis(kind: Kind) {
    let client = common::client(kind, "leaderboard-bad");
    let board = Leaderboard::new("bad").client(client);
    for score in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let refused = board.submit("a", score).await;
        assert!(
            matches!(refused, Err(Error::Config(ref why)) if why.contains("finite")),
            "{refused:?}"
        );
    }
    assert_eq!(board.size().await.unwrap(), 0);
    assert!(board.top(0).await.unwrap().is_empty());
    assert_eq!(board.stats().submits, 0);
}

on_both_backends!(
    boards_agree_with_a_model_under_random_submits_ties_and_removals,
    periodic_boards_keep_their_periods_and_combine_them,
    bad_scores_are_refused_before_redis,
);

/// Periodic boards expire; an all-time board lives until its own `ttl`, if it has one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_boards_expire_and_all_time_boards_only_with_a_ttl() {
    let client: Client = common::client(Kind::Redis, "leaderboard-ttl");
    let ns = client.namespace().unwrap().to_owned();
    Leaderboard::new("weekly")
        .client(client.clone())
        .weekly(4)
        .submit("a", 1.0)
        .await
        .unwrap();
    Leaderboard::new("seasonal")
        .client(client.clone())
        .ttl(Duration::from_secs(3600))
        .submit("a", 1.0)
        .await
        .unwrap();
    let server = common::server();
    assert_eq!(server.keys(&ns).len(), 4, "{:?}", server.keys(&ns));
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
    Leaderboard::new("all-time")
        .client(client.clone())
        .submit("a", 1.0)
        .await
        .unwrap();
    assert_eq!(
        server.keys_without_ttl(&ns).len(),
        2,
        "an all-time board is the record itself"
    );
}
