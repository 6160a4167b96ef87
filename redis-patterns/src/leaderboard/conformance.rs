//! Conformance checks of the leaderboard's operations (`ops.rs`): submits under each policy,
//! reads ordering equal scores first come first with each tie policy, combined boards, and
//! removals.

use std::time::Duration;

use super::ops::{Expiry, Keys, Page, Rank, Remove, ScoreOf, Shape, Size, Submit};
use super::plain::PlainPage;
use super::{Aggregate, Entry, Order, Policy, Ties};
use crate::client::Client;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, Failure, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "leaderboard/submit: best keeps the better score, latest replaces, sum adds; the expiry is set",
            submit_policies,
        ),
        check!(
            "leaderboard/page: members in order, equal scores first come first, ranked by each tie policy",
            page_ties,
        ),
        check!(
            "leaderboard/page: around a member, and a combined board built from its sources with a TTL",
            page_around_and_combined,
        ),
        check!(
            "leaderboard/plain_page: a page no tie decides, as the script reads it; none across a tie",
            plain_page,
        ),
        check!(
            "leaderboard/rank: 1-based by each tie policy, lower-first boards, absent members",
            rank_ties,
        ),
        check!(
            "leaderboard/remove: removes a member and its time; size and score follow",
            remove_member,
        ),
    ]
}

fn keys(client: &Client) -> Keys {
    let board = format!("{}:lb", scratch_key(client));
    Keys {
        times: format!("{board}:t"),
        board,
        sources: Vec::new(),
    }
}

fn shape(order: Order, ties: Ties) -> Shape {
    Shape {
        order,
        ties,
        aggregate: Aggregate::Max,
        refresh: Duration::from_secs(10),
    }
}

async fn submit(
    client: &Client,
    keys: &Keys,
    member: &str,
    score: f64,
    policy: Policy,
    order: Order,
) -> Result<(bool, f64), Failure> {
    let op = Submit {
        keys,
        member,
        score,
        policy,
        order,
        expiry: Expiry::After(Duration::from_secs(60)),
    };
    Ok(client.backend().run(&op).await?)
}

/// A board of `members` with their scores, submitted in that order.
async fn board(client: &Client, members: &[(&str, f64)]) -> Result<Keys, Failure> {
    let keys = keys(client);
    for (member, score) in members {
        submit(
            client,
            &keys,
            member,
            *score,
            Policy::Latest,
            Order::HighFirst,
        )
        .await?;
    }
    Ok(keys)
}

/// (member, rank) of a page.
async fn page(
    client: &Client,
    keys: &Keys,
    shape: Shape,
    start: u64,
    count: u64,
) -> Result<Vec<(String, u64)>, Failure> {
    let op = Page {
        keys,
        shape,
        start,
        count,
        around: None,
    };
    let entries: Vec<Entry> = client.backend().run(&op).await?;
    Ok(entries.into_iter().map(|e| (e.member, e.rank)).collect())
}

fn pairs(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected
        .iter()
        .map(|(m, r)| ((*m).to_owned(), *r))
        .collect()
}

async fn submit_policies(client: &Client) -> CheckResult {
    let keys = keys(client);
    let high = Order::HighFirst;
    ensure_eq!(
        submit(client, &keys, "a", 10.0, Policy::Best, high).await?,
        (true, 10.0),
        "a first score"
    );
    ensure_eq!(
        submit(client, &keys, "a", 5.0, Policy::Best, high).await?,
        (false, 10.0),
        "a worse score under best"
    );
    ensure_eq!(
        submit(client, &keys, "a", 12.5, Policy::Best, high).await?,
        (true, 12.5),
        "a better score under best"
    );
    ensure_eq!(
        submit(client, &keys, "a", 3.0, Policy::Best, Order::LowFirst).await?,
        (true, 3.0),
        "a lower score under best, lower first"
    );
    ensure_eq!(
        submit(client, &keys, "a", 7.0, Policy::Latest, high).await?,
        (true, 7.0),
        "latest replaces"
    );
    ensure_eq!(
        submit(client, &keys, "a", 7.0, Policy::Latest, high).await?,
        (false, 7.0),
        "the same score again"
    );
    ensure_eq!(
        submit(client, &keys, "a", -2.25, Policy::Sum, high).await?,
        (true, 4.75),
        "sum adds"
    );
    ensure_eq!(
        submit(client, &keys, "b", 0.0, Policy::Sum, high).await?,
        (true, 0.0),
        "sum creates"
    );
    for key in [&keys.board, &keys.times] {
        let ttl = client.backend().pttl(key).await?;
        ensure!(
            ttl.is_some_and(|t| t > Duration::from_secs(55) && t <= Duration::from_secs(60)),
            "{key}'s TTL {ttl:?} is not about 60 s"
        );
    }
    Ok(())
}

async fn page_ties(client: &Client) -> CheckResult {
    let keys = keys(client);
    // c reaches 5 first, then a, then b; d has 9, e has 1.
    for (member, score) in [("c", 5.0), ("d", 9.0), ("a", 5.0), ("e", 1.0), ("b", 5.0)] {
        submit(client, &keys, member, score, Policy::Best, Order::HighFirst).await?;
    }
    let high = |ties| shape(Order::HighFirst, ties);
    ensure_eq!(
        page(client, &keys, high(Ties::Ordinal), 0, 10).await?,
        pairs(&[("d", 1), ("c", 2), ("a", 3), ("b", 4), ("e", 5)]),
        "ordinal"
    );
    ensure_eq!(
        page(client, &keys, high(Ties::Competition), 0, 10).await?,
        pairs(&[("d", 1), ("c", 2), ("a", 2), ("b", 2), ("e", 5)]),
        "competition"
    );
    ensure_eq!(
        page(client, &keys, high(Ties::Dense), 0, 10).await?,
        pairs(&[("d", 1), ("c", 2), ("a", 2), ("b", 2), ("e", 3)]),
        "dense"
    );
    ensure_eq!(
        page(client, &keys, high(Ties::Ordinal), 2, 2).await?,
        pairs(&[("a", 3), ("b", 4)]),
        "a page cutting through a group of equal scores"
    );
    ensure_eq!(
        page(client, &keys, high(Ties::Dense), 3, 5).await?,
        pairs(&[("b", 2), ("e", 3)]),
        "a dense page starting inside a group"
    );
    ensure_eq!(
        page(client, &keys, shape(Order::LowFirst, Ties::Ordinal), 0, 3).await?,
        pairs(&[("e", 1), ("c", 2), ("a", 3)]),
        "lower first"
    );
    ensure_eq!(
        page(client, &keys, high(Ties::Ordinal), 5, 3).await?,
        pairs(&[]),
        "past the end"
    );
    Ok(())
}

async fn page_around_and_combined(client: &Client) -> CheckResult {
    let base = scratch_key(client);
    let board = |i: u32| Keys {
        board: format!("{base}:lb:{i}"),
        times: format!("{base}:lb:{i}:t"),
        sources: Vec::new(),
    };
    let (day1, day2) = (board(1), board(2));
    for (member, score) in [("a", 3.0), ("b", 1.0)] {
        submit(client, &day1, member, score, Policy::Sum, Order::HighFirst).await?;
    }
    for (member, score) in [("b", 4.0), ("c", 2.0), ("d", 0.5)] {
        submit(client, &day2, member, score, Policy::Sum, Order::HighFirst).await?;
    }
    let around = Page {
        keys: &day2,
        shape: shape(Order::HighFirst, Ties::Ordinal),
        start: 1,
        count: 3,
        around: Some("c"),
    };
    let entries: Vec<String> = client
        .backend()
        .run(&around)
        .await?
        .into_iter()
        .map(|e| e.member)
        .collect();
    ensure_eq!(entries, vec!["b", "c", "d"], "one above and one below c");
    let combined = Keys {
        board: format!("{base}:lb:1-2"),
        times: format!("{base}:lb:1-2:t"),
        sources: vec![
            (day1.board.clone(), day1.times.clone()),
            (day2.board.clone(), day2.times.clone()),
        ],
    };
    let sum = Shape {
        aggregate: Aggregate::Sum,
        ..shape(Order::HighFirst, Ties::Ordinal)
    };
    ensure_eq!(
        page(client, &combined, sum, 0, 10).await?,
        pairs(&[("b", 1), ("a", 2), ("c", 3), ("d", 4)]),
        "the sum of two days"
    );
    let ttl = client.backend().pttl(&combined.board).await?;
    ensure!(
        ttl.is_some_and(|t| t <= Duration::from_secs(10)),
        "the combined board's TTL {ttl:?} is not its refresh"
    );
    // Kept until it expires: a later submit is not in it yet.
    submit(client, &day2, "e", 100.0, Policy::Sum, Order::HighFirst).await?;
    ensure_eq!(
        client
            .backend()
            .run(&Rank {
                keys: &combined,
                shape: sum,
                member: "e"
            })
            .await?,
        None,
        "a member submitted after the combination was built"
    );
    Ok(())
}

async fn rank_ties(client: &Client) -> CheckResult {
    let keys = board(client, &[("x", 2.0), ("y", 2.0), ("z", 1.0), ("w", 3.0)]).await?;
    let rank = |ties, order, member| {
        let keys = &keys;
        async move {
            let op = Rank {
                keys,
                shape: shape(order, ties),
                member,
            };
            Ok::<_, Failure>(client.backend().run(&op).await?.map(|e| (e.rank, e.score)))
        }
    };
    ensure_eq!(
        rank(Ties::Ordinal, Order::HighFirst, "y").await?,
        Some((3, 2.0)),
        "ordinal, second to reach 2"
    );
    ensure_eq!(
        rank(Ties::Competition, Order::HighFirst, "y").await?,
        Some((2, 2.0)),
        "competition"
    );
    ensure_eq!(
        rank(Ties::Competition, Order::HighFirst, "z").await?,
        Some((4, 1.0)),
        "competition after a tie"
    );
    ensure_eq!(
        rank(Ties::Dense, Order::HighFirst, "z").await?,
        Some((3, 1.0)),
        "dense after a tie"
    );
    ensure_eq!(
        rank(Ties::Ordinal, Order::LowFirst, "x").await?,
        Some((2, 2.0)),
        "lower first"
    );
    ensure_eq!(
        rank(Ties::Ordinal, Order::HighFirst, "nobody").await?,
        None,
        "an absent member"
    );
    Ok(())
}

async fn plain_page(client: &Client) -> CheckResult {
    let keys = board(
        client,
        &[("e", 1.0), ("a", 5.0), ("c", 3.0), ("b", 4.0), ("d", 2.0)],
    )
    .await?;
    let plain = |order, ties, start, count| {
        let op = PlainPage {
            board: &keys.board,
            order,
            ties,
            start,
            count,
        };
        async move {
            let entries = client.backend().exec(&op).await?;
            Ok::<_, Failure>(entries.map(|e| {
                e.into_iter()
                    .map(|e| (e.member, e.rank))
                    .collect::<Vec<_>>()
            }))
        }
    };
    for (order, ties, start, count) in [
        (Order::HighFirst, Ties::Ordinal, 0, 3),
        (Order::HighFirst, Ties::Competition, 2, 2),
        (Order::HighFirst, Ties::Dense, 0, 10),
        (Order::LowFirst, Ties::Ordinal, 1, 3),
        (Order::HighFirst, Ties::Ordinal, 4, 3),
        (Order::HighFirst, Ties::Ordinal, 9, 3),
    ] {
        ensure_eq!(
            plain(order, ties, start, count).await?,
            Some(page(client, &keys, shape(order, ties), start, count).await?),
            "a page of distinct scores"
        );
    }
    // "b" ties with "a" at the top, and "d" with "c" in the middle.
    submit(client, &keys, "b", 5.0, Policy::Latest, Order::HighFirst).await?;
    submit(client, &keys, "d", 3.0, Policy::Latest, Order::HighFirst).await?;
    ensure_eq!(
        plain(Order::HighFirst, Ties::Ordinal, 0, 3).await?,
        None,
        "a tie on the page"
    );
    ensure_eq!(
        plain(Order::HighFirst, Ties::Ordinal, 1, 1).await?,
        None,
        "a tie across the page's first edge"
    );
    ensure_eq!(
        plain(Order::HighFirst, Ties::Ordinal, 0, 1).await?,
        None,
        "a tie across the page's last edge"
    );
    ensure_eq!(
        plain(Order::LowFirst, Ties::Ordinal, 0, 1).await?,
        Some(pairs(&[("e", 1)])),
        "ties elsewhere on the board"
    );
    Ok(())
}

async fn remove_member(client: &Client) -> CheckResult {
    let keys = keys(client);
    submit(client, &keys, "a", 1.0, Policy::Best, Order::HighFirst).await?;
    submit(client, &keys, "b", 2.0, Policy::Best, Order::HighFirst).await?;
    ensure_eq!(
        client.backend().exec(&Size { board: &keys.board }).await?,
        2,
        "size"
    );
    ensure_eq!(
        client
            .backend()
            .run(&Remove {
                keys: &keys,
                member: "a"
            })
            .await?,
        true,
        "removing a"
    );
    ensure_eq!(
        client
            .backend()
            .run(&Remove {
                keys: &keys,
                member: "a"
            })
            .await?,
        false,
        "removing a again"
    );
    ensure_eq!(
        client.backend().exec(&Size { board: &keys.board }).await?,
        1,
        "size after"
    );
    ensure_eq!(
        client
            .backend()
            .exec(&ScoreOf {
                board: &keys.board,
                member: "b"
            })
            .await?,
        Some(2.0),
        "b's score"
    );
    ensure_eq!(
        client
            .backend()
            .exec(&ScoreOf {
                board: &keys.board,
                member: "a"
            })
            .await?,
        None,
        "a's score"
    );
    Ok(())
}
