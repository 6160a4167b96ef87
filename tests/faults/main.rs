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
mod rate_limit;
mod recovery;
mod session;

use std::time::Duration;

/// Fails the test instead of hanging if a call blocks far past what its timeouts allow.
pub async fn bounded<F: std::future::Future>(limit: Duration, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("a call waited longer than {limit:?}"))
}
