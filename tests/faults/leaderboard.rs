//! Leaderboards under faults: every operation returns a typed error within the timeouts while
//! the server is down or refuses writes (OOM), nothing half-written is left, and boards are
//! served again once the fault is gone.

use std::time::Duration;

use redis_patterns::Client;
use redis_patterns::leaderboard::{Leaderboard, Policy};
use tokio::time::Instant;

use crate::bounded;
use crate::common::{self, RedisServer};

const CONNECT: Duration = Duration::from_millis(400);
const COMMAND: Duration = Duration::from_millis(250);

fn client_of(server: &RedisServer, ns: &str) -> Client {
    crate::client_with(&server.url(), ns, CONNECT, COMMAND)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaderboards_fail_with_typed_errors_while_the_server_is_down_and_serve_after_a_restart() {
    let server = RedisServer::start();
    let ns = common::namespace("leaderboard-down");
    let client = client_of(&server, &ns);
    let board = Leaderboard::new("arena").client(client.clone()).daily(7);
    board.submit("ann", 10.0).await.unwrap();
    server.stop();
    let week = board.clone().combined(7, Duration::from_secs(60));
    for round in 0..2 {
        let started = Instant::now();
        let limit = Duration::from_secs(5);
        assert!(bounded(limit, board.submit("bob", 5.0)).await.is_err());
        assert!(bounded(limit, board.top(10)).await.is_err());
        assert!(bounded(limit, board.rank("ann")).await.is_err());
        assert!(bounded(limit, week.around("ann", 2)).await.is_err());
        assert!(bounded(limit, board.size()).await.is_err());
        let waited = started.elapsed();
        assert!(
            waited <= 5 * (CONNECT + COMMAND) + Duration::from_millis(500),
            "round {round}: five operations waited {waited:?}"
        );
    }
    assert!(board.stats().backend_errors >= 10);
    server.restart();
    let restarted = Instant::now();
    loop {
        if board.submit("cid", 3.0).await.is_ok() {
            break;
        }
        assert!(
            restarted.elapsed() < CONNECT + 2 * COMMAND + Duration::from_secs(1),
            "not served again after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The restarted server is empty: nothing persisted, by design of the test server.
    assert_eq!(board.top(10).await.unwrap().len(), 1);
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_refused_for_memory_changes_nothing() {
    let server = RedisServer::start();
    let ns = common::namespace("leaderboard-oom");
    let client = client_of(&server, &ns);
    let board = Leaderboard::new("arena")
        .client(client)
        .policy(Policy::Sum)
        .weekly(2);
    board.submit("ann", 10.0).await.unwrap();
    server.out_of_memory(true);
    assert!(board.submit("ann", 5.0).await.is_err());
    assert!(board.submit("bob", 5.0).await.is_err());
    assert_eq!(
        board.score("ann").await.unwrap(),
        Some(10.0),
        "reads still work"
    );
    server.out_of_memory(false);
    let top: Vec<(String, f64)> = board
        .top(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.member, e.score))
        .collect();
    assert_eq!(top, [("ann".to_owned(), 10.0)]);
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}
