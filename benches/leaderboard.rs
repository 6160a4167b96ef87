//! Leaderboards against the hand-written redis-rs code a user writes for them, in one run
//! against one server, both sides interleaved in every sample. The hand-written side gives
//! less: equal scores in member order (not first come first), and no atomic policy beyond
//! `ZADD GT`. So the ratios are what the guarantees cost.
//!
//! | ours | hand-written |
//! |---|---|
//! | `submit` (best) | `ZADD board GT score member` |
//! | `top(10)` | `ZREVRANGE board 0 9 WITHSCORES` |
//! | `rank` | `ZREVRANK` and `ZSCORE`, pipelined |
//! | `around(member, 2)` | `ZREVRANK`, then `ZREVRANGE rank-2 rank+2 WITHSCORES` (two round trips) |
//!
//! Each board holds 10,000 members with distinct scores (64 boards for the 64 tasks).
//!
//! ```text
//! cargo bench --bench leaderboard      # or RUNS=3 scripts/bench-report leaderboard
//! ```

mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use redis::aio::MultiplexedConnection;
use redis_patterns::leaderboard::Leaderboard;
use redis_patterns::{Client, Config};
use support::{CONCURRENCY, compare, server, smoke};
use tokio::runtime::Runtime;

const MEMBERS: u64 = 10_000;
/// A member near the middle of a smoke run's board too.
const PLAYER: &str = "player-43";

#[derive(Clone)]
struct Sides {
    conn: MultiplexedConnection,
    boards: Vec<Leaderboard>,
}

/// The hand-written side's board `task`, in the same hash tag layout as ours.
fn base_key(task: u64) -> String {
    format!("base:{{arena:{task}}}:lb")
}

fn sides(rt: &Runtime) -> Sides {
    rt.block_on(async {
        let url = server().url();
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let client = Client::new(Config::from_url(&url).unwrap().namespace("bench")).unwrap();
        client.connect().await.unwrap();
        let boards: Vec<Leaderboard> = (0..CONCURRENCY)
            .map(|task| Leaderboard::new(format!("arena:{task}")).client(client.clone()))
            .collect();
        // Filled once (both sides, pipelined: our board's keys written as its submits write
        // them), by whichever runtime sets up first; a smoke run fills less.
        let members = if smoke() { 100 } else { MEMBERS };
        if boards[0].size().await.unwrap() < members {
            for task in 0..CONCURRENCY {
                let mut pipe = redis::pipe();
                let ours = format!("bench:{{arena:#{task}}}:lb");
                for i in 0..members {
                    let member = format!("player-{i}");
                    pipe.cmd("ZADD")
                        .arg(base_key(task))
                        .arg(i)
                        .arg(&member)
                        .ignore();
                    pipe.cmd("ZADD").arg(&ours).arg(i).arg(&member).ignore();
                    pipe.cmd("ZADD")
                        .arg(format!("{ours}:t"))
                        .arg(i)
                        .arg(&member)
                        .ignore();
                }
                let () = pipe.query_async(&mut conn).await.unwrap();
            }
            assert_eq!(boards[0].size().await.unwrap(), members);
        }
        Sides { conn, boards }
    })
}

fn board(s: &Sides, task: u64) -> &Leaderboard {
    &s.boards[task as usize % s.boards.len()]
}

fn submit(c: &mut Criterion) {
    compare(
        c,
        sides,
        "submit_best",
        |mut s: Sides, task| async move {
            let changed: i64 = redis::cmd("ZADD")
                .arg(base_key(task))
                .arg("GT")
                .arg(50)
                .arg("player-50")
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(changed);
        },
        |s: Sides, task| async move {
            let submitted = board(&s, task).submit("player-50", 50.0).await.unwrap();
            std::hint::black_box(submitted);
        },
    );
}

fn top(c: &mut Criterion) {
    compare(
        c,
        sides,
        "top_10",
        |mut s: Sides, task| async move {
            let top: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
                .arg(base_key(task))
                .arg(0)
                .arg(9)
                .arg("WITHSCORES")
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(top);
        },
        |s: Sides, task| async move {
            std::hint::black_box(board(&s, task).top(10).await.unwrap());
        },
    );
}

fn rank(c: &mut Criterion) {
    compare(
        c,
        sides,
        "rank",
        |mut s: Sides, task| async move {
            let (rank, score): (Option<u64>, Option<f64>) = redis::pipe()
                .cmd("ZREVRANK")
                .arg(base_key(task))
                .arg(PLAYER)
                .cmd("ZSCORE")
                .arg(base_key(task))
                .arg(PLAYER)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box((rank.map(|r| r + 1), score));
        },
        |s: Sides, task| async move {
            std::hint::black_box(board(&s, task).rank(PLAYER).await.unwrap());
        },
    );
}

fn around(c: &mut Criterion) {
    compare(
        c,
        sides,
        "around_2",
        |mut s: Sides, task| async move {
            let rank: Option<u64> = redis::cmd("ZREVRANK")
                .arg(base_key(task))
                .arg(PLAYER)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            let rank = rank.unwrap();
            let near: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
                .arg(base_key(task))
                .arg(rank.saturating_sub(2))
                .arg(rank + 2)
                .arg("WITHSCORES")
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(near);
        },
        |s: Sides, task| async move {
            std::hint::black_box(board(&s, task).around(PLAYER, 2).await.unwrap());
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = submit, top, rank, around
}
criterion_main!(benches);
