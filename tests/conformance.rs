//! The conformance suite of the backend facade (`redis_patterns::test_util::conformance_checks`:
//! every plain command and every atomic operation, written next to the operations in the
//! runtime) run against a real redis-server and against `mem://`. A new backend adds its kind
//! here and gets every operation verified.

mod common;

use std::time::Duration;

use common::Kind;
use redis_patterns::Client;
use redis_patterns::test_util::{Store, conformance_checks};

/// Runs every check concurrently against `client` and fails listing each one that failed.
async fn every_check_passes(kind: Kind) {
    let client = common::client(kind, "conformance");
    let checks = conformance_checks();
    let results = futures::future::join_all(
        checks
            .iter()
            .map(|check| async { (check.name(), check.run(&client).await) }),
    )
    .await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, result)| result.err().map(|why| format!("{name}\n    {why}")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} conformance checks failed on {kind:?}:\n  {}",
        failed.len(),
        checks.len(),
        failed.join("\n  ")
    );
}

/// Independent clients (separate connections) of one store see each other's keys.
async fn independent_clients_share_one_store(kind: Kind) {
    let ns = common::namespace("shared-store");
    let clients = common::clients(kind, &ns, 2);
    let (a, b) = (Store::of(&clients[0]), Store::of(&clients[1]));
    let k = key(&clients[0], "k");
    a.set(&k, "from a", Duration::from_secs(10)).await.unwrap();
    assert_eq!(b.get(&k).await.unwrap().as_deref(), Some(&b"from a"[..]));
    assert!(b.del(&k).await.unwrap());
    assert_eq!(a.get(&k).await.unwrap(), None);
}

on_both_backends!(every_check_passes, independent_clients_share_one_store);

fn key(client: &Client, name: &str) -> String {
    format!("{}:{{{name}}}", client.namespace().unwrap())
}

#[test]
fn every_operation_of_the_facade_has_checks() {
    let checks = conformance_checks();
    assert!(!checks.is_empty(), "the conformance suite is empty");
    let operations = [
        "backend/ping",
        "backend/get",
        "backend/get_many",
        "backend/set",
        "backend/set_nx",
        "backend/del",
        "backend/pttl",
        "backend/publish",
        "backend/spublish",
        "cache/get_or_lock",
        "cache/set_and_unlock",
        "cache/tag_version",
        "cache/tag_invalidate",
        "lock/acquire",
        "lock/extend",
        "lock/fence",
        "lock/release",
        "rate_limit/fixed_window",
        "rate_limit/sliding_window",
        "rate_limit/sliding_window_counter",
        "rate_limit/token_bucket",
        "rate_limit/gcra",
        "counter/incr",
        "counter/read",
        "counter/unique_add",
        "counter/unique_count",
        "leaderboard/submit",
        "leaderboard/page",
        "leaderboard/plain_page",
        "leaderboard/rank",
        "leaderboard/remove",
        "session/create",
        "session/load",
        "session/save",
        "session/take",
        "session/index_add",
        "session/index_take",
        "session/put_record",
        "stream/append",
        "stream/length",
        "stream/create_group",
        "stream/read_group",
        "stream/ack",
        "stream/pending",
        "stream/fail",
        "stream/retry",
        "stream/reclaim",
        "stream/extend",
        "stream/prune",
        "stream/dead_letters",
        "queue/push",
        "queue/claim",
        "queue/complete",
        "queue/fail",
        "queue/extend",
        "queue/wait",
        "queue/count",
        "queue/dead_jobs",
    ];
    for operation in operations {
        assert!(
            checks.iter().any(|c| c.operation() == operation),
            "no conformance check for {operation}"
        );
    }
    for check in &checks {
        assert!(
            operations.contains(&check.operation()),
            "{:?} checks an operation this list does not name",
            check.name()
        );
    }
}

#[tokio::test]
async fn redis_keys_of_one_call_share_a_hash_slot() {
    // Checked by Redis itself, on a cluster-enabled node.
    let node = common::RedisServer::start_with(&["--cluster-enabled", "yes"]);
    let mut conn = node.redis();
    let client = common::client(Kind::Redis, "slots");
    let k = key(&client, "product:42");
    let mut slot = |key: &str| -> i64 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .unwrap()
    };
    let (value, lock, bare) = (slot(&k), slot(&format!("{k}:lock")), slot("{product:42}"));
    assert_eq!(value, lock);
    assert_eq!(value, bare);
}
