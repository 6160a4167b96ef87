//! The fault-injection suite (`../shared/TESTING.md`): every pattern's documented failure
//! policy, asserted with numbers, under a fault proxy (delay, blackhole, reset) and server
//! faults (kill and restart, `DEBUG SLEEP`, `CLIENT KILL`, OOM, `WRONGTYPE`, `SCRIPT FLUSH`).
//!
//! Bounds asserted here are the ones README's "Failure policy" section promises. Servers that a
//! test restarts or misconfigures are private to it; the others share one server.

#[path = "../common/mod.rs"]
mod common;

mod cache;
mod counter;
mod leaderboard;
mod lock;
mod near;
mod pubsub;
mod queue;
mod rate_limit;
mod recovery;
mod session;
mod stream;

use std::time::Duration;

/// A client of `url` under namespace `ns` with the given timeouts.
pub fn client_with(
    url: &str,
    ns: &str,
    connect: Duration,
    command: Duration,
) -> redis_patterns::Client {
    redis_patterns::Client::new(
        redis_patterns::Config::from_url(url)
            .unwrap()
            .namespace(ns)
            .connect_timeout(connect)
            .command_timeout(command),
    )
    .unwrap()
}

/// Fails the test instead of hanging if a call blocks far past what its timeouts allow.
pub async fn bounded<F: std::future::Future>(limit: Duration, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("a call waited longer than {limit:?}"))
}
